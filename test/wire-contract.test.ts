// What docs/protocol.md promises a county center about delivery, queue counts and commands, against
// the real gateway in-process: SQLite on a real file, a real broker (aedes in this process, or a
// mosquitto process where MQTT 5 properties are what is tested).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Gateway } from "../src/gateway.ts";
import { Outbox } from "../src/outbox/outbox.ts";
import { openBroker } from "./support/broker.ts";
import { stampedEvent } from "./support/events.ts";
import { connectCenter, waitFor, type Center } from "./support/mqtt.ts";
import { startGateway } from "./support/rig.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const NO_DEVICES = "  []";

/** A heart rate from a monitor, as a driver would hand it to the core. */
function heartRate(gw: Gateway, value: number) {
  return gw.ingest({ id: "monitor", driver: "hl7-pcd01", kind: "monitor" }, [
    { kind: "vitals", body: { observations: [{ code: "MDC_ECG_HEART_RATE", value, unit: "/min" }] } },
  ]);
}

/** A gateway with receipts on (the receipt timeout far away) and a center on an aedes broker. */
async function receiptsRig(id: string): Promise<{ gw: Gateway; center: Center }> {
  const broker = await openBroker("127.0.0.1", 0);
  cleanup.push(() => broker.close());
  const center = await connectCenter(broker.url, id);
  cleanup.push(() => center.close());
  const { gw } = await startGateway(
    {
      id,
      devices: NO_DEVICES,
      uplink: { url: broker.url, more: "protocolVersion: 4, receipts: true, receiptTimeoutS: 600" },
    },
    cleanup,
  );
  await waitFor(() => gw.status().uplink.state === "connected", 5000, "the uplink");
  return { gw, center };
}

function commandResults(center: Center, gw: string) {
  return center.messages
    .filter((m) => m.topic === `vitalgate/v1/${gw}/cmd-result`)
    .map((m) => JSON.parse(m.payload.toString()) as Record<string, unknown>);
}

describe("delivery with receipts", () => {
  it("counts events sent and waiting for a receipt apart from those not sent yet, and a receipt delivers them", async () => {
    const { gw, center } = await receiptsRig("gw-counts");
    const [a] = await heartRate(gw, 61);
    await center.waitFor(() => center.events.length === 1, 5000, "the event");
    await waitFor(() => gw.status().queue.awaitingReceipt[2] === 1, 5000, "the PUBACK marked");
    expect(gw.status().queue.pending).toEqual([0, 0, 1, 0]);
    // The status message the center reads says the same.
    const res = await fetch(`http://127.0.0.1:${gw.config.web.port}/metrics`);
    expect(await res.text()).toMatch(/vitalgate_queue_awaiting_receipt\{priority="2"\} 1/);
    await center.client.publishAsync(`vitalgate/v1/gw-counts/receipt`, JSON.stringify({ ids: [a!.id] }), { qos: 1 });
    await waitFor(() => gw.status().queue.pending[2] === 0, 5000, "the receipt applied");
    expect(gw.status().queue.awaitingReceipt).toEqual([0, 0, 0, 0]);
  });

  it("`resend` sends an event waiting for its receipt again at once, not after the receipt timeout", async () => {
    const { gw, center } = await receiptsRig("gw-resend-wait");
    const [a] = await heartRate(gw, 62);
    await center.waitFor(() => center.events.length === 1, 5000, "the event");
    await waitFor(() => gw.status().queue.awaitingReceipt[2] === 1, 5000, "sent, awaiting its receipt");
    await center.client.publishAsync(
      "vitalgate/v1/gw-resend-wait/cmd/resend",
      JSON.stringify({ id: "r1", args: { fromSeq: a!.seq } }),
      { qos: 1 },
    );
    await center.waitFor(() => commandResults(center, "gw-resend-wait").length === 1, 5000, "the result");
    expect(commandResults(center, "gw-resend-wait")[0]).toMatchObject({ id: "r1", ok: true, result: { requeued: 1 } });
    await center.waitFor(() => center.events.filter((e) => e.id === a!.id).length === 2, 5000, "the event again");
    // Sent again, it waits for its receipt again.
    await waitFor(() => gw.status().queue.awaitingReceipt[2] === 1, 5000, "awaiting its receipt again");
  });
});

describe("revisions", () => {
  it("an event rewritten after it may have left (times placed, case renamed) goes again under its id with a higher rev", async () => {
    const outbox = new Outbox({
      path: join(mkdtempSync(join(tmpdir(), "vg-rev-")), "outbox.db"),
      quotaBytes: 1 << 30,
      batchMax: 100,
      nowMs: Date.now,
    });
    outbox.open();
    cleanup.push(() => outbox.close());
    const unsynced = stampedEvent("vitals", { observations: [] }, Date.UTC(1970, 0, 1, 0, 5), "19700101-0001");
    unsynced.time = { ...unsynced.time, src: "unsynced", unsynced: true };
    const [e] = await outbox.append([unsynced]);
    const sent = JSON.stringify(outbox.eventById(e!.id));
    // As first stored there is no rev: revision 0.
    expect(outbox.eventById(e!.id)!.rev).toBeUndefined();
    outbox.restampUnsynced(e!.seq, (x) => {
      x.time.restamped = true;
      x.t = "2026-11-23T15:00:00.000Z";
    });
    expect(outbox.eventById(e!.id)).toMatchObject({ id: e!.id, seq: e!.seq, rev: 1 });
    expect(outbox.renameCase("19700101-0001", "20261123-0001")).toBe(1);
    const last = outbox.eventById(e!.id)!;
    expect(last).toMatchObject({ id: e!.id, case: "20261123-0001", rev: 2 });
    // What the forwarder publishes is the newest bytes.
    const [row] = outbox.pending(1);
    expect(String(row!.payload)).toBe(JSON.stringify(last));
    expect(String(row!.payload)).not.toBe(sent);
  });
});
