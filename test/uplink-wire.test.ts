// The wire to the center with `uplink.compact` (docs/protocol.md "Batches and compression"): what
// waits travels in gzip-compressed batches, read back by a consumer that follows the docs; an ECG
// never waits; nothing above the message limit is published, also against a real mosquitto that
// enforces the limit.
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { Forwarder, type UplinkOptions } from "../src/uplink/forwarder.ts";
import { silentLogger } from "../src/log.ts";
import { Outbox } from "../src/outbox/outbox.ts";
import {
  chunkBytesFor,
  fitToMessage,
  gzipChunks,
  isGzip,
  PUBLISH_OVERHEAD,
  type WireOptions,
} from "../src/uplink/wire.ts";
import { encodeLeads } from "../protocols/ecg/compact-leads.ts";
import { syntheticEcg, EXPLICIT_LE } from "./support/dicom.ts";
import { part10File } from "../src/transports/dicom-scp.ts";
import { testUplinkOptions } from "./support/uplink.ts";
import { openBroker } from "./support/broker.ts";
import { stampedEvent, vitals } from "./support/events.ts";
import { connectCenter, waitFor } from "./support/mqtt.ts";
import { mosquitto } from "./support/processes.ts";
import type { Envelope } from "../src/events/model.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const COMPACT: WireOptions = { compact: true, batchWaitMs: 0, maxMessageBytes: 256 * 1024, inflightBytes: 16 * 1024 };

function options(url: string, o: Partial<UplinkOptions> = {}): UplinkOptions {
  return testUplinkOptions(url, { wire: COMPACT, ...o });
}

function newOutbox(): Outbox {
  const outbox = new Outbox({
    path: join(mkdtempSync(join(tmpdir(), "vg-wire-")), "outbox.db"),
    quotaBytes: 1 << 30,
    batchMax: 1000,
    nowMs: Date.now,
  });
  outbox.open();
  cleanup.push(() => outbox.close());
  return outbox;
}

function forwarder(url: string, outbox: Outbox, o: Partial<UplinkOptions> = {}, log = silentLogger): Forwarder {
  const fwd = new Forwarder(options(url, o), { outbox, log, nowMs: Date.now, status: () => ({}) }, "test-gw");
  cleanup.push(() => fwd.stop());
  return fwd;
}

async function aedes() {
  const broker = await openBroker("127.0.0.1", 0);
  cleanup.push(() => broker.close());
  const center = await connectCenter(broker.url, "test-gw");
  cleanup.push(() => center.close());
  return { broker, center };
}

/** A waveform event of incompressible samples, about `bytes` of JSON. */
function noisyWaveform(bytes: number): Envelope {
  return stampedEvent("waveform", {
    channel: "ECG1",
    fs: 300,
    unit: "uV",
    scale: 1,
    start: "2026-11-23T15:36:34.000Z",
    samples: randomBytes(Math.floor((bytes * 3) / 4)).toString("base64"),
  });
}

describe("uplink wire, compact", () => {
  it("sends what waits as gzip'd JSON arrays of one priority each on ev/batch, ECGs and alarms alone; a consumer reading per the docs gets every event exactly as stored", async () => {
    const { broker, center } = await aedes();
    const outbox = newOutbox();
    const stored = await outbox.append([
      ...Array.from({ length: 300 }, (_, i) => vitals(60 + (i % 40))),
      ...Array.from({ length: 40 }, () => noisyWaveform(600)),
      stampedEvent("alarm", { code: "MDC_EVT_HI", priority: "high", state: "active", text: "HR High" }),
      stampedEvent("ecg12", { format: "dicom-ecg", leads: [] }),
      stampedEvent("case", { action: "opened", at: "2026-11-23T15:36:34.000Z" }),
    ]);
    forwarder(broker.url, outbox).start();
    await center.waitFor(() => center.events.length === stored.length, 10_000, "every event");
    await waitFor(() => outbox.stats().pending.every((n) => n === 0), 5000, "outbox drained");

    const evMessages = center.messages.filter((m) => m.topic.startsWith("vitalgate/v1/test-gw/ev/"));
    const batches = evMessages.filter((m) => m.topic === "vitalgate/v1/test-gw/ev/batch");
    // Far fewer messages than events: 343 events in a handful of messages.
    expect(evMessages.length).toBeLessThan(20);
    expect(batches.length).toBeGreaterThanOrEqual(2);
    const byId = new Map(stored.map((e) => [e.id, JSON.stringify(e)]));
    for (const m of batches) {
      expect(isGzip(m.payload)).toBe(true);
      // Sized to half the batch window, each priority by its own compression: none over the window.
      expect(m.payload.length).toBeLessThanOrEqual(COMPACT.inflightBytes);
      const text = gunzipSync(m.payload).toString("utf8");
      const events = JSON.parse(text) as Envelope[];
      // One priority per batch: vitals (2) or waveforms (3), never both; the envelope unchanged inside.
      expect(new Set(events.map((e) => e.kind)).size).toBe(1);
      expect(text).toBe(`[${events.map((e) => byId.get(e.id)).join(",")}]`);
    }
    // ECGs, alarms and case events each go alone on their kind's topic, before any batch.
    for (const kind of ["alarm", "ecg12", "case"]) {
      const m = evMessages.filter((x) => x.topic === `vitalgate/v1/test-gw/ev/${kind}`);
      expect(m).toHaveLength(1);
      const text = isGzip(m[0]!.payload) ? gunzipSync(m[0]!.payload).toString() : m[0]!.payload.toString();
      expect(byId.get((JSON.parse(text) as Envelope).id)).toBe(text);
    }
    expect(evMessages.slice(0, 3).map((m) => m.topic.split("/").at(-1))).toEqual(["alarm", "ecg12", "case"]);
    expect(new Set(center.events.map((e) => e.id))).toEqual(new Set(byId.keys()));
    // Vitals batches compress: under a tenth of their JSON.
    const vitalsBatches = batches.filter((m) => gunzipSync(m.payload).toString().includes('"kind":"vitals"'));
    const zipped = vitalsBatches.reduce((n, m) => n + m.payload.length, 0);
    const json = vitalsBatches.reduce((n, m) => n + gunzipSync(m.payload).length, 0);
    expect(zipped).toBeLessThan(json / 10);
  });

  it("lets a vitals event wait for company up to batchWaitMs, while an alarm behind it goes at once; receipts name event ids as before", async () => {
    const { broker, center } = await aedes();
    const outbox = newOutbox();
    const fwd = forwarder(broker.url, outbox, { receipts: true, wire: { ...COMPACT, batchWaitMs: 1500 } });
    fwd.start();
    await waitFor(() => fwd.state === "connected", 5000, "connected");
    const [first] = await outbox.append([vitals(70)]);
    const [alarm] = await outbox.append([stampedEvent("alarm", { code: "X", priority: "high", state: "active" })]);
    await center.waitFor(() => center.events.some((e) => e.id === alarm!.id), 5000, "the alarm");
    // The vitals event is still waiting for company (1.5 s from its commit).
    expect(center.events.some((e) => e.id === first!.id)).toBe(false);
    const more = await outbox.append([vitals(71), vitals(72)]);
    await center.waitFor(() => center.events.length === 4, 5000, "the vitals");
    const batches = center.messages.filter((m) => m.topic.endsWith("/ev/batch"));
    expect(batches).toHaveLength(1);
    expect((JSON.parse(gunzipSync(batches[0]!.payload).toString()) as Envelope[]).map((e) => e.id)).toEqual([
      first!.id,
      ...more.map((e) => e.id),
    ]);
    // Receipts mode: the batch's events are sent, not delivered, until the center names them.
    await waitFor(() => outbox.stats().pending[2] === 3 && fwd.inflight === 0, 5000, "batch acknowledged");
    await center.client.publishAsync(
      "vitalgate/v1/test-gw/receipt",
      JSON.stringify({ ids: [first!.id, more[0]!.id] }),
      { qos: 1 },
    );
    await waitFor(() => outbox.stats().pending[2] === 1, 5000, "two receipted");
  });

  it("publishes nothing above the message limit: batches are cut to fit, an event too large for any message is held and said", async () => {
    const { broker, center } = await aedes();
    const outbox = newOutbox();
    const limit = 8 * 1024;
    const errors: { code?: string; seq?: number }[] = [];
    const log = {
      ...silentLogger,
      error: (o: { code?: string; seq?: number }) => errors.push(o),
    } as typeof silentLogger;
    const backlog = await outbox.append(Array.from({ length: 60 }, () => noisyWaveform(1500)));
    const [huge] = await outbox.append([noisyWaveform(12_000)]);
    const [after] = await outbox.append([vitals(60)]);
    // inflightBytes above the limit: batch size is bounded by the limit alone here.
    forwarder(
      broker.url,
      outbox,
      { wire: { ...COMPACT, maxMessageBytes: limit, inflightBytes: 64 * 1024 } },
      log,
    ).start();
    await center.waitFor(() => center.events.length === backlog.length + 1, 10_000, "every event that fits");
    expect(center.events.some((e) => e.id === huge!.id)).toBe(false);
    expect(center.events.some((e) => e.id === after!.id)).toBe(true);
    for (const m of center.messages) expect(m.payload.length + PUBLISH_OVERHEAD).toBeLessThanOrEqual(limit);
    expect(center.messages.filter((m) => m.topic.endsWith("/ev/batch")).length).toBeGreaterThan(10);
    expect(errors).toContainEqual(expect.objectContaining({ code: "VG_MESSAGE_TOO_LARGE", seq: huge!.seq }));
    // Held, not dropped: still pending in the outbox.
    expect(outbox.stats().pending[3]).toBe(1);
  });

  it("keeps every message under a real mosquitto's max_packet_size of 256 KiB, with MQTT 5 content type and encoding: an ECG's 1 MB file in chunks, a backlog of large waveforms in batches", async () => {
    const limit = 256 * 1024;
    const m = await mosquitto(`max_packet_size ${limit}\nmessage_size_limit ${limit}`);
    cleanup.push(() => m.stop());
    // The broker enforces it: a client sending a larger message is cut off and the message never arrives.
    const watcher = await mqtt.connectAsync(m.url, { protocolVersion: 5, clientId: "watcher" });
    cleanup.push(() => watcher.endAsync(true));
    const seen: { topic: string; bytes: number; properties: mqtt.IPublishPacket["properties"] }[] = [];
    const payloads = new Map<string, Buffer>();
    watcher.on("message", (topic, payload, packet) => {
      seen.push({ topic, bytes: payload.length, properties: packet.properties });
      payloads.set(topic, payload);
    });
    await watcher.subscribeAsync("#", { qos: 1 });
    const rogue = await mqtt.connectAsync(m.url, { protocolVersion: 5, clientId: "rogue", reconnectPeriod: 0 });
    const closed = new Promise<void>((resolve) => rogue.once("close", () => resolve()));
    rogue.publish("probe/too-large", randomBytes(limit + 10), { qos: 1 }, () => undefined);
    await closed;
    rogue.end(true);

    const outbox = newOutbox();
    const file = randomBytes(1024 * 1024); // incompressible: travels as it is, in chunks of the limit's size
    const ecg = stampedEvent("ecg12", { format: "dicom-ecg", leads: [] });
    await outbox.append(Array.from({ length: 400 }, () => noisyWaveform(4000)));
    await outbox.append([ecg], {
      blobs: [{ eventId: ecg.id, bytes: file, chunks: gzipChunks(file, chunkBytesFor(limit)) }],
    });
    const fwd = forwarder(m.url, outbox, { protocolVersion: 5, wire: { ...COMPACT, maxMessageBytes: limit } });
    const states: string[] = [];
    fwd.on("state", (s) => states.push(s));
    fwd.start();
    await waitFor(() => outbox.stats().pending.every((n) => n === 0), 30_000, "everything acknowledged");
    await waitFor(() => seen.filter((s) => s.topic.includes("/ev/")).length > 0, 5000, "events seen");
    expect(seen.some((s) => s.topic === "probe/too-large")).toBe(false);
    // Never cut off by the broker for a large packet: one connection throughout.
    expect(states).toEqual(["connecting", "connected"]);
    const ours = seen.filter((s) => s.topic.startsWith("vitalgate/v1/test-gw/"));
    for (const s of ours) expect(s.bytes + PUBLISH_OVERHEAD).toBeLessThanOrEqual(limit);
    const chunks = ours.filter((s) => s.topic.includes("/blob/"));
    expect(chunks.length).toBe(Math.ceil(file.length / chunkBytesFor(limit)));
    const joined = Buffer.concat(
      chunks.map((_, i) => payloads.get(`vitalgate/v1/test-gw/blob/${ecg.id}/${i + 1}/${chunks.length}`)!),
    );
    expect(joined.equals(file)).toBe(true);
    const batch = ours.find((s) => s.topic.endsWith("/ev/batch"))!;
    expect(batch.properties).toMatchObject({
      contentType: "application/json",
      userProperties: { "content-encoding": "gzip" },
    });
    expect(ours.find((s) => s.topic.includes("/blob/"))!.properties).toMatchObject({
      contentType: "application/octet-stream",
    });
  });

  it("sends an ECG too large for one message without its leads, saying so, and gzips its file into chunks a center joins and gunzips", () => {
    const e = syntheticEcg({ seconds: 30 });
    const file = part10File(e.dataset, {
      sopClassUid: e.sopClassUid,
      sopInstanceUid: e.sopInstanceUid,
      transferSyntaxUid: EXPLICIT_LE,
    });
    // Leads of noise (incompressible): 12 × 5,000 samples, about 160 KB of JSON.
    const leads = encodeLeads(
      ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6", "III", "aVR", "aVL", "aVF"].map((name) => ({
        name,
        uvPerUnit: 2.5,
        samples: new Int16Array(randomBytes(10_000).buffer),
      })),
    );
    const event = { ...stampedEvent("ecg12", { format: "dicom-ecg", fs: 500, leads }), seq: 1 };
    expect(fitToMessage(event, 256 * 1024)).toBe(event);
    const fitted = fitToMessage(event, 16 * 1024);
    const body = fitted.body as { leads?: unknown; warnings: { code: string; message: string }[]; fs: number };
    expect(body.leads).toBeUndefined();
    expect(body.fs).toBe(500);
    expect(body.warnings.at(-1)).toMatchObject({ code: "ECG_LEADS_IN_FILE" });
    expect(Buffer.byteLength(JSON.stringify(fitted)) + PUBLISH_OVERHEAD).toBeLessThanOrEqual(16 * 1024);
    // The file: compressed chunks of 64 KiB of it each, each a gzip member; joined, one gzip stream of the file.
    const chunks = gzipChunks(file, chunkBytesFor(16 * 1024))!;
    expect(chunks.length).toBe(Math.ceil(file.length / chunkBytesFor(16 * 1024)));
    expect(chunks.every((c) => isGzip(c) && c.length + PUBLISH_OVERHEAD <= 16 * 1024)).toBe(true);
    expect(gunzipSync(Buffer.concat(chunks)).equals(Buffer.from(file))).toBe(true);
    expect(gzipChunks(randomBytes(100_000), 65_536)).toBeUndefined();
  });
});
