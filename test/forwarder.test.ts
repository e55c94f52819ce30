import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Forwarder, type UplinkOptions } from "../src/uplink/forwarder.ts";
import { Outbox } from "../src/outbox/outbox.ts";
import { testUplinkOptions } from "./support/uplink.ts";
import { openBroker } from "./support/broker.ts";
import { silentLogger } from "../src/log.ts";
import { z } from "zod";
import { connectCenter, waitFor } from "./support/mqtt.ts";
import { stampedEvent, vitals } from "./support/events.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const options = testUplinkOptions;

async function setup(o: Partial<UplinkOptions> = {}, port = 0, deps: { markDelayMs?: number } = {}) {
  const broker = await openBroker("127.0.0.1", port);
  const outbox = new Outbox({
    path: join(mkdtempSync(join(tmpdir(), "vg-fwd-")), "outbox.db"),
    quotaBytes: 1 << 30,
    batchMax: 1000,
    nowMs: Date.now,
  });
  outbox.open();
  const center = await connectCenter(broker.url, "test-gw");
  const fwd = new Forwarder(
    options(broker.url, o),
    {
      outbox,
      log: silentLogger,
      nowMs: Date.now,
      status: () => ({ queue: outbox.stats().pending }),
      commands: {
        ping: {
          args: z.object({ echo: z.string().optional() }),
          run: (a) => ({ pong: (a as { echo?: string }).echo ?? true }),
        },
      },
      ...deps,
    },
    "test-gw",
  );
  const state = { broker };
  cleanup.push(
    () => outbox.close(),
    () => state.broker.close(),
    () => center.close(),
    () => fwd.stop(),
  );
  return { state, outbox, center, fwd };
}

describe("forwarder", () => {
  it("publishes every event by priority then sequence, exactly as stored, and marks it delivered on PUBACK", async () => {
    const { outbox, center, fwd } = await setup({ inflight: 1 });
    const stored = await outbox.append([
      vitals(60),
      stampedEvent("waveform"),
      vitals(61),
      stampedEvent("alarm"),
      stampedEvent("case"),
      stampedEvent("ecg12"),
    ]);
    fwd.start();
    await center.waitFor(() => center.events.length === 6, 10_000, "6 events");
    expect(center.events.map((e) => e.kind)).toEqual(["alarm", "ecg12", "case", "vitals", "vitals", "waveform"]);
    const raw = center.messages.filter((m) => m.topic.includes("/ev/")).map((m) => m.payload.toString());
    for (const e of stored) expect(raw).toContain(JSON.stringify(e));
    expect(center.messages.find((m) => m.topic.endsWith("/ev/alarm"))?.topic).toBe("vitalgate/v1/test-gw/ev/alarm");
    await waitFor(() => outbox.stats().pending.every((n) => n === 0), 5000, "outbox drained");
  });

  it("marks delivery as soon as the queue is drained, without waiting to batch more marks", async () => {
    // Marks wait for company only while acknowledgements keep coming: an hour here, so a drained
    // queue whose marks waited for the timer would not show delivered within the test.
    const { outbox, center, fwd } = await setup({ inflight: 4 }, 0, { markDelayMs: 3_600_000 });
    const delivered: number[] = [];
    fwd.on("delivered", (n) => delivered.push(n));
    await outbox.append([vitals(60), vitals(61), stampedEvent("alarm")]);
    fwd.start();
    await center.waitFor(() => center.events.length === 3, 10_000, "3 events");
    await waitFor(() => outbox.stats().pending.every((n) => n === 0), 5000, "marks written");
    expect(delivered.reduce((a, b) => a + b, 0)).toBe(3);
  });

  it("lets a new ECG overtake a backlog of vitals", async () => {
    const { outbox, center, fwd } = await setup({ inflight: 16 });
    await outbox.append(Array.from({ length: 3000 }, (_, i) => vitals(i)));
    fwd.start();
    await center.waitFor(() => center.events.length >= 100, 10_000, "backlog starting");
    const [ecg] = await outbox.append([stampedEvent("ecg12")]);
    await center.waitFor(() => center.events.some((e) => e.id === ecg!.id), 10_000, "the ECG");
    await center.waitFor(() => center.events.length === 3001, 20_000, "the whole backlog");
    // The ECG went out ahead of most of the 3,000 vitals queued before it.
    const after = center.events.length - 1 - center.events.findIndex((e) => e.id === ecg!.id);
    expect(after).toBeGreaterThan(2500);
  });

  it("sends an event appended behind the cursor but ahead of rows already read ahead before those rows", async () => {
    const { outbox, center, fwd } = await setup({ inflight: 1 });
    const [first] = await outbox.append([vitals(1)]);
    await outbox.append(Array.from({ length: 50 }, () => stampedEvent("waveform")));
    // Appended as the uplink comes up: committed (a turn of the event loop later) while the first
    // vitals is in flight, after the forwarder has read the waveforms ahead behind it.
    let second: Promise<{ id: string }[]> | undefined;
    fwd.on("state", (s) => {
      if (s === "connected") second ??= outbox.append([vitals(2)]);
    });
    fwd.start();
    await center.waitFor(() => center.events.length === 52, 10_000, "every event");
    expect(center.events.slice(0, 2).map((e) => e.id)).toEqual([first!.id, (await second!)[0]!.id]);
    expect(center.events.slice(2).every((e) => e.kind === "waveform")).toBe(true);
  });

  it("keeps events while the broker is down and sends them when it returns, with the retained status and last will", async () => {
    const { state, outbox, center, fwd } = await setup();
    fwd.start();
    await waitFor(() => fwd.state === "connected", 5000, "connect");
    const port = state.broker.port;
    await outbox.append([vitals(1)]);
    await center.waitFor(() => center.events.length === 1, 5000, "first event");
    await center.close();
    await state.broker.close();
    await waitFor(() => fwd.state === "waiting", 5000, "uplink down");
    const during = await outbox.append(Array.from({ length: 200 }, (_, i) => vitals(i)));
    expect(outbox.stats().pending[2]).toBe(200);
    state.broker = await openBroker("127.0.0.1", port);
    const center2 = await connectCenter(state.broker.url, "test-gw");
    cleanup.push(() => center2.close());
    await center2.waitFor(
      () => during.every((e) => center2.events.some((x) => x.id === e.id)),
      10_000,
      "all 200 events after the outage",
    );
    await waitFor(() => outbox.stats().pending[2] === 0, 5000, "marked delivered");
    const status = center2.messages.find((m) => m.topic === "vitalgate/v1/test-gw/status");
    expect(JSON.parse(status!.payload.toString())).toMatchObject({ state: "online" });
  });

  it("says offline on the retained status topic when it stops", async () => {
    const { state, fwd } = await setup();
    fwd.start();
    await waitFor(() => fwd.state === "connected", 5000, "connect");
    const watcher = await connectCenter(state.broker.url, "test-gw");
    cleanup.push(() => watcher.close());
    const status = () =>
      watcher.messages.filter((m) => m.topic.endsWith("/status")).map((m) => JSON.parse(m.payload.toString()).state);
    await watcher.waitFor(() => status().includes("online"), 5000, "online status");
    await fwd.stop();
    await watcher.waitFor(() => status().includes("offline"), 5000, "offline status");
  });

  it("with end-to-end receipts, marks delivered only on the center's receipt and resends without one", async () => {
    const { outbox, center, fwd } = await setup({ receipts: true, receiptTimeoutS: 0.5 });
    const [a, b] = await outbox.append([vitals(1), vitals(2)]);
    fwd.start();
    await center.waitFor(() => center.events.length === 2, 5000, "two events");
    await waitFor(() => fwd.inflight === 0, 5000, "acks");
    expect(outbox.stats().pending[2]).toBe(2);
    await center.client.publishAsync("vitalgate/v1/test-gw/receipt", JSON.stringify({ ids: [a!.id] }), { qos: 1 });
    await waitFor(() => outbox.stats().pending[2] === 1, 5000, "receipt applied");
    // No receipt for b: it goes again once the receipt is overdue; a stays delivered.
    await center.waitFor(() => center.events.filter((e) => e.id === b!.id).length >= 2, 5000, "b resent");
    expect(center.events.filter((e) => e.id === a!.id)).toHaveLength(1);
  });

  it("survives a broker that accepts the connection and never answers (connack timeout), retrying", async () => {
    const silent = createServer(() => undefined); // takes the TCP connection, says nothing
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
    const port = (silent.address() as { port: number }).port;
    const sockets: Socket[] = [];
    silent.on("connection", (s) => sockets.push(s));
    cleanup.push(
      () =>
        new Promise((r) => {
          for (const s of sockets) s.destroy();
          silent.close(r);
        }),
    );
    const outbox = new Outbox({
      path: join(mkdtempSync(join(tmpdir(), "vg-fwd-")), "outbox.db"),
      quotaBytes: 1 << 30,
      batchMax: 100,
      nowMs: Date.now,
    });
    outbox.open();
    cleanup.push(() => outbox.close());
    const fwd = new Forwarder(
      options(`mqtt://127.0.0.1:${port}`, { connectTimeoutS: 0.2, backoff: { initialMs: 50, maxMs: 100 } }),
      { outbox, log: silentLogger, nowMs: Date.now, status: () => ({}) },
      "test-gw",
    );
    const states: string[] = [];
    fwd.on("state", (st) => states.push(st));
    fwd.start();
    cleanup.push(() => fwd.stop());
    await waitFor(() => states.filter((st) => st === "waiting").length >= 3, 10_000, "three timed-out attempts");
    expect(states).not.toContain("connected");
  });

  it("answers valid commands and rejects invalid ones without acting", async () => {
    const { center, fwd } = await setup();
    fwd.start();
    await waitFor(() => fwd.state === "connected", 5000, "connect");
    await new Promise((r) => setTimeout(r, 100));
    const results = () =>
      center.messages
        .filter((m) => m.topic === "vitalgate/v1/test-gw/cmd-result")
        .map((m) => JSON.parse(m.payload.toString()));
    await center.client.publishAsync(
      "vitalgate/v1/test-gw/cmd/ping",
      JSON.stringify({ id: "r1", args: { echo: "hi" } }),
      { qos: 1 },
    );
    await center.client.publishAsync("vitalgate/v1/test-gw/cmd/ping", JSON.stringify({ id: "r2", args: { echo: 5 } }), {
      qos: 1,
    });
    await center.client.publishAsync("vitalgate/v1/test-gw/cmd/format-disk", JSON.stringify({ id: "r3" }), { qos: 1 });
    await center.client.publishAsync("vitalgate/v1/test-gw/cmd/ping", "{not json", { qos: 1 });
    await center.client.publishAsync("vitalgate/v1/test-gw/receipt", JSON.stringify({ ids: "nope" }), { qos: 1 });
    await center.waitFor(() => results().length === 4, 5000, "4 command results");
    const r = results();
    expect(r.find((x) => x.id === "r1")).toMatchObject({ ok: true, result: { pong: "hi" } });
    expect(r.find((x) => x.id === "r2")).toMatchObject({ ok: false, error: expect.stringContaining("echo") });
    expect(r.find((x) => x.id === "r3")).toMatchObject({ ok: false, error: 'unknown command "format-disk"' });
    expect(r.find((x) => x.id === undefined)).toMatchObject({ ok: false, error: "payload is not JSON" });
    expect(fwd.state).toBe("connected");
  });
});
