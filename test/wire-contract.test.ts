// What docs/protocol.md promises a county center about delivery, queue counts and commands, against
// the real gateway in-process: SQLite on a real file, a real broker (aedes in this process, or a
// mosquitto process where MQTT 5 properties are what is tested).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { Clock } from "../src/time/clock.ts";
import type { Gateway } from "../src/gateway.ts";
import { Outbox } from "../src/outbox/outbox.ts";
import { Forwarder } from "../src/uplink/forwarder.ts";
import { readEventMessage } from "../src/uplink/wire.ts";
import { silentLogger } from "../src/log.ts";
import mqtt from "mqtt";
import { openBroker } from "./support/broker.ts";
import { stampedEvent, vitals } from "./support/events.ts";
import { connectCenter, connectEmbeddedCenter, waitFor, type Center } from "./support/mqtt.ts";
import { mosquitto } from "./support/processes.ts";
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

/** A gateway on its embedded broker (MQTT 3.1.1) with the center logged in as its bridge. */
async function embeddedRig(id: string, o: { devices?: string; clock?: Clock } = {}) {
  const { gw, config } = await startGateway(
    { id, uplink: "embedded", devices: o.devices ?? NO_DEVICES, clock: o.clock },
    cleanup,
  );
  const center = await connectEmbeddedCenter(config);
  cleanup.push(() => center.close());
  await waitFor(() => gw.status().uplink.state === "connected", 5000, "the uplink");
  const base = `vitalgate/v1/${id}`;
  const on = (topic: string) =>
    center.messages
      .filter((m) => m.topic === topic)
      .map((m) => JSON.parse(m.payload.toString()) as Record<string, unknown>);
  const send = (topic: string, body: unknown) =>
    center.client.publishAsync(`${base}/${topic}`, typeof body === "string" ? body : JSON.stringify(body), { qos: 1 });
  return { gw, center, base, on, send };
}

describe("answers to the center", () => {
  it("acknowledges receipts and reports on ack, and refuses a reading of an ECG it never sent: not shown to the crew", async () => {
    const { gw, center, base, on, send } = await embeddedRig("gw-acks");
    const shown: unknown[] = [];
    gw.cases.on("report", (r) => shown.push(r));
    const [ecg] = await gw.ingest({ id: "cart", driver: "ecg-cart", kind: "ecg-cart" }, [
      {
        kind: "ecg12",
        body: { format: "dicom-ecg", fs: 500, durationS: 0, leads: [] },
        original: { contentType: "application/dicom", bytes: new Uint8Array([1, 2, 3]) },
      },
    ]);
    const [vitals] = await heartRate(gw, 70);
    await center.waitFor(() => center.events.length === 2, 5000, "both events");
    await send("receipt", { id: "rc-1", ids: [ecg!.id, vitals!.id, "01a209ad-88fb-7465-aafa-000000000000"] });
    await send("receipt", { id: "rc-2", ids: "not a list" });
    await send("receipt", "{not json");
    const reading = { reader: "Dr. Wang", at: "2026-11-23T16:27:00+08:00", conclusion: "STEMI" };
    await send("report", { id: "rp-1", eventId: ecg!.id, ...reading });
    await send("report", { id: "rp-2", eventId: vitals!.id, ...reading });
    await send("report", { id: "rp-3", eventId: "01a209ad-88fb-7465-aafa-04002edf9dc9", ...reading });
    await center.waitFor(() => on(`${base}/ack`).length === 6, 5000, "six acknowledgements");
    const acks = on(`${base}/ack`);
    const byId = (id: string) => acks.find((a) => a.id === id);
    // Without receipts configured, the broker's PUBACK delivered them already: the receipt is taken, nothing to mark.
    expect(byId("rc-1")).toEqual({ of: "receipt", id: "rc-1", ok: true, result: { ids: 3, delivered: 0 } });
    expect(byId("rc-2")).toMatchObject({
      of: "receipt",
      ok: false,
      error: expect.stringMatching(/^invalid receipt: ids/),
    });
    expect(acks.find((a) => a.id === undefined)).toEqual({ of: "receipt", ok: false, error: "payload is not JSON" });
    expect(byId("rp-1")).toEqual({ of: "report", id: "rp-1", ok: true, result: { eventId: ecg!.id } });
    for (const id of ["rp-2", "rp-3"])
      expect(byId(id)).toMatchObject({
        of: "report",
        ok: false,
        error: expect.stringContaining("is not an ECG this gateway sent"),
      });
    // Only the reading of its own ECG reached the page, and is kept.
    expect(shown).toEqual([expect.objectContaining({ eventId: ecg!.id })]);
    expect(gw.cases.readingsOutsideCases().map((r) => r.eventId)).toEqual([ecg!.id]);
  });

  it("does not run a command past its expiresAt, nor one with an expiry while its clock is unsynchronized", async () => {
    const { base, on, send, center } = await embeddedRig("gw-expiry");
    const past = new Date(Date.now() - 60_000).toISOString();
    const future = new Date(Date.now() + 60_000).toISOString();
    await send("cmd/case-open", { id: "late", args: { caseId: "DISP-1" }, expiresAt: past });
    await send("cmd/case-open", { id: "in-time", args: { caseId: "DISP-2" }, expiresAt: future });
    await center.waitFor(() => on(`${base}/cmd-result`).length === 2, 5000, "two results");
    const results = on(`${base}/cmd-result`);
    expect(results.find((r) => r.id === "late")).toEqual({
      id: "late",
      name: "case-open",
      ok: false,
      error: expect.stringMatching(new RegExp(`^not run: expired at ${past} \\(it is `)),
    });
    expect(results.find((r) => r.id === "in-time")).toMatchObject({ ok: true, result: { caseId: "DISP-2" } });

    // A box whose clock no source has set cannot tell: the command is not run.
    const unsynced: Clock = {
      now: () => ({ ms: Date.UTC(1970, 0, 1, 0, 10), src: "unsynced", uncMs: 86_400_000, unbounded: true }),
      monoMs: () => performance.now(),
    };
    const box = await embeddedRig("gw-expiry-unsynced", { clock: unsynced });
    await box.send("cmd/ping", { id: "p", expiresAt: future });
    await box.send("cmd/ping", { id: "p-no-expiry" });
    await box.center.waitFor(() => box.on(`${box.base}/cmd-result`).length === 2, 5000, "two results");
    const r = box.on(`${box.base}/cmd-result`);
    expect(r.find((x) => x.id === "p")).toMatchObject({
      ok: false,
      error: expect.stringContaining("not synchronized"),
    });
    expect(r.find((x) => x.id === "p-no-expiry")).toMatchObject({ ok: true });
  });

  it("lists its devices and their locations for case-open, and the cases open", async () => {
    const { gw, base, on, send, center } = await embeddedRig("gw-devices", {
      devices: `  - { id: cart, driver: ecg-cart, location: bed-2, options: { dir: "${join(mkdtempSync(join(tmpdir(), "vg-devs-")), "drop")}" } }\n  - { id: gps, driver: nmea-gps, options: { port: /dev/null-gps } }\n`,
    });
    await gw.cases.openCase({ openedBy: "crew1", location: "bed-2" });
    await send("cmd/devices", { id: "d" });
    await center.waitFor(() => on(`${base}/cmd-result`).length === 1, 5000, "the result");
    const [r] = on(`${base}/cmd-result`);
    expect(r).toMatchObject({
      id: "d",
      name: "devices",
      ok: true,
      result: {
        devices: [
          { id: "cart", driver: "ecg-cart", kind: "ecg-cart", location: "bed-2", state: expect.any(String) },
          { id: "gps", driver: "nmea-gps", kind: "gps", state: expect.any(String) },
        ],
        locations: ["bed-2"],
        openCases: [{ caseId: expect.any(String), location: "bed-2" }],
      },
    });
    expect((r!.result as { devices: object[] }).devices[1]).not.toHaveProperty("location");
    // The status says which kinds this box sends: the gateway's own, the cart's and the GPS's.
    const status = center.messages.filter((m) => m.topic === `${base}/status`).at(-1)!;
    expect(JSON.parse(status.payload.toString())).toMatchObject({
      protocol: "1.1",
      kinds: ["ecg12", "alarm", "position", "device", "case", "gap"],
    });
  });
});

describe("answers addressed to the requester, on mosquitto", () => {
  it("MQTT 5: the result goes to the request's response topic with its correlation data; MQTT 3.1.1: to its replyTo; elsewhere is refused", async () => {
    const broker = await mosquitto();
    cleanup.push(() => broker.stop());
    const { gw } = await startGateway(
      { id: "gw-reply", devices: NO_DEVICES, uplink: { url: broker.url, more: "protocolVersion: 5" } },
      cleanup,
    );
    await waitFor(() => gw.status().uplink.state === "connected", 5000, "the uplink");
    const base = "vitalgate/v1/gw-reply";
    // Two workers of the center: each reads only its own answers.
    const worker = async (name: string, protocolVersion: 4 | 5) => {
      const c = await connectCenter(broker.url, "gw-reply-none", { protocolVersion });
      cleanup.push(() => c.close());
      const mine = `${base}/cmd-result/${name}`;
      await c.client.subscribeAsync(mine, { qos: 1 });
      const got = () =>
        c.messages
          .filter((m) => m.topic === mine)
          .map((m) => ({ body: JSON.parse(m.payload.toString()) as Record<string, unknown>, packet: m }));
      return { c, mine, got };
    };
    const w5 = await worker("w5", 5);
    const w4 = await worker("w4", 4);
    const packets: { topic: string; correlation?: string }[] = [];
    w5.c.client.on("message", (topic, _p, packet) =>
      packets.push({ topic, correlation: packet.properties?.correlationData?.toString() }),
    );
    await w5.c.client.publishAsync(`${base}/cmd/ping`, JSON.stringify({ id: "a" }), {
      qos: 1,
      properties: { responseTopic: w5.mine, correlationData: Buffer.from("corr-a") },
    });
    await w4.c.client.publishAsync(`${base}/cmd/ping`, JSON.stringify({ id: "b", replyTo: w4.mine }), { qos: 1 });
    await w5.c.client.publishAsync(`${base}/cmd/ping`, JSON.stringify({ id: "c" }), {
      qos: 1,
      properties: { responseTopic: "center/replies/w5", correlationData: Buffer.from("corr-c") },
    });
    // Receipts are answered the same way, on ack.
    await w5.c.client.subscribeAsync(`${base}/ack/w5`, { qos: 1 });
    await w5.c.client.publishAsync(`${base}/receipt`, JSON.stringify({ ids: [] }), {
      qos: 1,
      properties: { responseTopic: `${base}/ack/w5`, correlationData: Buffer.from("corr-r") },
    });
    const everyone = await connectCenter(broker.url, "gw-reply", { protocolVersion: 5 });
    cleanup.push(() => everyone.close());
    await waitFor(() => w5.got().length === 1 && w4.got().length === 1, 5000, "each worker's answer");
    await waitFor(() => packets.some((p) => p.topic === `${base}/ack/w5`), 5000, "the receipt's acknowledgement");
    expect(w5.got()[0]!.body).toMatchObject({ id: "a", name: "ping", ok: true });
    expect(packets.find((p) => p.topic === w5.mine)?.correlation).toBe("corr-a");
    expect(packets.find((p) => p.topic === `${base}/ack/w5`)?.correlation).toBe("corr-r");
    expect(w4.got()[0]!.body).toMatchObject({ id: "b", ok: true });
    // Neither answer went to the other worker, and the refused one went to the default topic.
    expect(w5.got().map((g) => g.body.id)).toEqual(["a"]);
    const defaults = () =>
      [...w5.c.messages, ...w4.c.messages, ...everyone.messages].filter((m) => m.topic === `${base}/cmd-result`);
    await everyone.waitFor(() => defaults().length > 0, 5000, "the refusal on cmd-result");
    expect(JSON.parse(defaults()[0]!.payload.toString())).toMatchObject({
      id: "c",
      ok: false,
      error: `the answer cannot go to center/replies/w5: only to ${base}/cmd-result or a topic below it`,
    });
  });
});

describe("shared subscriptions, on mosquitto", () => {
  it("two workers share one gateway's stream (MQTT 5 $share, non-persistent sessions, receipts); one killed mid-stream loses nothing", async () => {
    const broker = await mosquitto();
    cleanup.push(() => broker.stop());
    const outbox = new Outbox({
      path: join(mkdtempSync(join(tmpdir(), "vg-share-")), "outbox.db"),
      quotaBytes: 1 << 30,
      batchMax: 1000,
      nowMs: Date.now,
    });
    outbox.open();
    cleanup.push(() => outbox.close());
    // The center's database: events by id, shared by the workers (docs/protocol.md, Scaling out).
    const stored = new Map<string, number>();
    const took: Record<string, number> = { a: 0, b: 0 };
    let aDies = false;
    const worker = async (name: "a" | "b") => {
      const c = await mqtt.connectAsync(broker.url, {
        protocolVersion: 5,
        clientId: `worker-${name}`,
        clean: true,
        properties: { sessionExpiryInterval: 0 },
        reconnectPeriod: 0,
      });
      cleanup.push(() => c.endAsync(true));
      c.on("message", (topic, payload) => {
        took[name]!++;
        // Worker a dies at its 40th message: it took it, and neither stored nor receipted it.
        if (name === "a" && took.a === 40) {
          aDies = true;
          c.stream.destroy();
          return;
        }
        if (name === "a" && aDies) return;
        const events = readEventMessage(topic, payload);
        for (const e of events) stored.set(e.id, (stored.get(e.id) ?? 0) + 1); // stored, then receipted
        c.publish(`vitalgate/v1/${topic.split("/")[2]}/receipt`, JSON.stringify({ ids: events.map((e) => e.id) }), {
          qos: 1,
        });
      });
      await c.subscribeAsync("$share/workers/vitalgate/v1/+/ev/#", { qos: 1 });
      return c;
    };
    await worker("a");
    await worker("b");
    const fwd = new Forwarder(
      {
        url: broker.url,
        protocolVersion: 5,
        clientId: "vitalgate-gw-share",
        rejectUnauthorized: true,
        inflight: 8,
        keepaliveS: 5,
        connectTimeoutS: 5,
        backoff: { initialMs: 50, maxMs: 400 },
        receipts: true,
        receiptTimeoutS: 1, // short, as workers sharing a stream need (10 s or more in a configuration)
        statusIntervalS: 60,
      },
      { outbox, log: silentLogger, nowMs: Date.now, status: () => ({}) },
      "gw-share",
    );
    cleanup.push(() => fwd.stop());
    const sent = await outbox.append(Array.from({ length: 300 }, (_, i) => vitals(60 + (i % 40))));
    fwd.start();
    await waitFor(() => outbox.stats().pending.every((n) => n === 0), 20_000, "every event receipted");
    // Both workers had a share; a died in the middle; every event is stored, none lost.
    expect(aDies).toBe(true);
    expect(took.b).toBeGreaterThan(40);
    expect(sent.every((e) => stored.has(e.id))).toBe(true);
    expect(stored.size).toBe(300);
  });
});
