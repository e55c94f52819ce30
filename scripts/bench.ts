// npm run bench: vitalgate's speed, each figure beside its limit measured in the same run, as a
// ratio (DESIGN.md §10). Not a test: it prints, and exits non-zero only when something broke.
//
//   ingest      events/s committed durably through stamping + the outbox's group commit, against
//               raw better-sqlite3 inserts of the same rows, same schema, same pragmas, same batch.
//   time        the same ingest stamped by the synchronized time service, and by it with each
//               device's clock skew estimated and corrected (what Gateway.ingest does), against
//               stamping from a plain monotonic clock; and stamping alone, without the store.
//   forwarding  events/s acknowledged by a local broker through the forwarder, against raw mqtt.js
//               QoS 1 publishing of the same payloads to the same broker.
//   rss         the daemon's resident memory with 10,000 events queued and no uplink reachable.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import mqtt from "mqtt";
import { systemClock } from "../src/clock.ts";
import { Forwarder } from "../src/forwarder.ts";
import { silentLogger } from "../src/log.ts";
import { stamp } from "../src/stamp.ts";
import { DeviceClocks } from "../src/time/device-clocks.ts";
import { TimeService } from "../src/time/service.ts";
import { applyDurablePragmas, Outbox } from "../src/store.ts";
import { startEmbeddedBroker } from "../src/broker.ts";
import type { EventDraft } from "../src/events.ts";
import { freePort, mosquitto, portOpen, ROOT } from "../test/support/processes.ts";

const N = Number(process.env.BENCH_EVENTS ?? 20_000);
/** uplink.inflight: the configuration's default unless BENCH_INFLIGHT says otherwise. */
const INFLIGHT = Number(process.env.BENCH_INFLIGHT ?? 64);
const clock = systemClock();
const dev = { id: "bench-monitor", driver: "hl7-pcd01", kind: "monitor" as const };

function draft(i: number): EventDraft {
  return {
    kind: "vitals",
    // A monitor's own time, as the hl7-pcd01 driver hands it over: a few seconds off the gateway's.
    deviceTime: new Date(Date.now() + 3000 + (i % 7)).toISOString(),
    deviceTimeRaw: "20261123153634+0800",
    body: {
      observations: [
        { code: "MDC_ECG_HEART_RATE", mdc: 147842, value: 60 + (i % 40), unit: "/min", sub: "1.1.1.147842" },
        { code: "MDC_PULS_OXIM_SAT_O2", mdc: 150456, value: 95 + (i % 5), unit: "%", sub: "1.2.1.150456" },
        { code: "MDC_PRESS_BLD_NONINV_SYS", mdc: 150021, value: 120, unit: "mm[Hg]", sub: "1.3.1.150021" },
      ],
    },
  };
}

function tempDb(): string {
  return join(mkdtempSync(join(tmpdir(), "vg-bench-")), "outbox.db");
}

/** Median of `runs` measurements, after one warm-up run (JIT, page cache). */
async function median(runs: number, measure: () => Promise<number>): Promise<number> {
  await measure();
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) xs.push(await measure());
  return xs.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
}

/** Ours: drafts as drivers hand them over, stamped and appended one message each; group commit batches. */
async function ingestOurs(batchMax: number): Promise<number> {
  const outbox = new Outbox({ path: tempDb(), quotaBytes: 1 << 30, batchMax, nowMs: () => clock.now().ms });
  outbox.open();
  const drafts = Array.from({ length: N }, (_, i) => draft(i));
  const t0 = performance.now();
  await Promise.all(drafts.map((d) => outbox.append([stamp(d, dev, "bench", clock)])));
  const rate = N / ((performance.now() - t0) / 1000);
  outbox.close();
  return rate;
}

/** Raw: the same serialized rows, same schema and pragmas, inserted in transactions of batchMax. */
async function ingestRaw(batchMax: number): Promise<number> {
  const source = new Outbox({ path: tempDb(), quotaBytes: 1 << 30, batchMax, nowMs: Date.now });
  source.open();
  await Promise.all(Array.from({ length: N }, (_, i) => source.append([stamp(draft(i), dev, "bench", clock)])));
  const rows = source.pending(N);
  source.close();
  const target = new Outbox({ path: tempDb(), quotaBytes: 1 << 30, batchMax, nowMs: Date.now });
  target.open(); // creates the same schema
  target.close();
  const db = new Database(target.options.path);
  applyDurablePragmas(db);
  const insert = db.prepare("INSERT INTO events (seq, id, priority, kind, evictable, payload, size, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  const tx = db.transaction((chunk: typeof rows) => {
    for (const r of chunk) insert.run(r.seq, r.id, r.priority, r.kind, 1, r.payload, r.payload.length, r.createdMs);
  });
  const t0 = performance.now();
  for (let i = 0; i < rows.length; i += batchMax) tx(rows.slice(i, i + batchMax));
  const rate = rows.length / ((performance.now() - t0) / 1000);
  db.close();
  return rate;
}

/** A time service synchronized by a GPS fix, as a box with a GPS runs. */
function syncedTimeService(): TimeService {
  const time = new TimeService({ driftPpm: 50, gpsLatencyMs: 100, gpsUncMs: 100 }, { monoMs: () => performance.now(), wallMs: Date.now, log: silentLogger });
  time.gpsFix(Date.now() - 100, performance.now());
  return time;
}

/** How events are stamped: as before the time service, with it, and with it and each device's skew. */
type Stamping = "monotonic" | "time service" | "time service + device skew";

/**
 * Stamps one draft: from the plain monotonic clock; with the synchronized time service; or as
 * Gateway.ingest does, also taking the message's device time as a sample of the device's skew and
 * correcting its times by it.
 */
function stamper(how: Stamping): (d: EventDraft) => ReturnType<typeof stamp> {
  if (how === "monotonic") return (d) => stamp(d, dev, "bench", clock);
  const time = syncedTimeService();
  if (how === "time service") return (d) => stamp(d, dev, "bench", time);
  const clocks = new DeviceClocks({ thresholdMs: 60_000 });
  return (d) => stamp(d, dev, "bench", time, undefined, clocks.observe(dev.id, [d], time.now().ms));
}

/** Ingest as ingestOurs, stamped one of the three ways. */
async function ingestStamped(how: Stamping): Promise<number> {
  const make = stamper(how);
  const outbox = new Outbox({ path: tempDb(), quotaBytes: 1 << 30, batchMax: 1000, nowMs: () => clock.now().ms });
  outbox.open();
  const drafts = Array.from({ length: N }, (_, i) => draft(i));
  const t0 = performance.now();
  await Promise.all(drafts.map((d) => outbox.append([make(d)])));
  const rate = N / ((performance.now() - t0) / 1000);
  outbox.close();
  return rate;
}

/** Stamping alone, no store: events/s, over ten passes of the drafts (one pass is too short to time). */
async function stampOnly(how: Stamping): Promise<number> {
  const make = stamper(how);
  const drafts = Array.from({ length: N }, (_, i) => draft(i));
  const t0 = performance.now();
  let keep = 0;
  for (let pass = 0; pass < 10; pass++) for (const d of drafts) keep += make(d).t.length;
  const rate = (10 * N) / ((performance.now() - t0) / 1000);
  if (keep === 0) throw new Error("nothing stamped");
  return rate;
}

/**
 * Medians of `runs` measurements of each alternative, taken in turns, the order rotating each
 * round, after a warm-up of each: whatever drifts during the run (page cache, disk, other load on
 * the machine) and whichever goes first weigh on all alike.
 */
async function interleavedMedians<K extends string>(runs: number, keys: readonly K[], measure: (k: K) => Promise<number>): Promise<Record<K, number>> {
  for (const k of keys) await measure(k);
  const xs = new Map<K, number[]>(keys.map((k) => [k, []]));
  for (let i = 0; i < runs; i++) {
    for (let j = 0; j < keys.length; j++) {
      const k = keys[(i + j) % keys.length]!;
      xs.get(k)!.push(await measure(k));
    }
  }
  return Object.fromEntries(keys.map((k) => [k, xs.get(k)!.sort((a, b) => a - b)[Math.floor(runs / 2)]!])) as Record<K, number>;
}

const STAMPINGS: readonly Stamping[] = ["monotonic", "time service", "time service + device skew"];

async function time(): Promise<{ ingest: Record<Stamping, number>; stamping: Record<Stamping, number> }> {
  return {
    ingest: await interleavedMedians(9, STAMPINGS, ingestStamped),
    stamping: await interleavedMedians(9, STAMPINGS, stampOnly),
  };
}

async function ingest(): Promise<{ ours: number; raw: number }> {
  return { ours: await median(5, () => ingestOurs(1000)), raw: await median(5, () => ingestRaw(1000)) };
}

/** A fresh outbox holding N vitals events, as the forwarder finds it after a backlog. */
async function filledOutbox(): Promise<Outbox> {
  const outbox = new Outbox({ path: tempDb(), quotaBytes: 1 << 30, batchMax: 1000, nowMs: Date.now });
  outbox.open();
  await Promise.all(Array.from({ length: N }, (_, i) => outbox.append([stamp(draft(i), dev, "bench", clock)])));
  return outbox;
}

/**
 * Raw: one mqtt.js client publishing every payload at QoS 1 until every PUBACK: all at once
 * (`window` Infinity), or keeping at most `window` unacknowledged, as the forwarder does.
 */
async function forwardingRaw(url: string, protocolVersion: 4 | 5, window: number): Promise<number> {
  const outbox = await filledOutbox();
  const payloads = outbox.pending(N).map((r) => ({ topic: `vitalgate/v1/bench/ev/${r.kind}`, payload: r.payload }));
  outbox.close();
  const client = await mqtt.connectAsync(url, { protocolVersion, clientId: "bench-raw", clean: true });
  // The same messages the forwarder sends: with MQTT 5, the content type property too.
  const options = protocolVersion === 5 ? { qos: 1 as const, properties: { contentType: "application/json" } } : { qos: 1 as const };
  const t0 = performance.now();
  let next = 0;
  const lane = async () => {
    while (next < payloads.length) {
      const p = payloads[next++]!;
      await client.publishAsync(p.topic, p.payload, options);
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, payloads.length) }, lane));
  const rate = N / ((performance.now() - t0) / 1000);
  await client.endAsync();
  return rate;
}

/** Ours: the forwarder draining the outbox with the configuration's default window, from connected to every PUBACK marked. */
async function forwardingOurs(url: string, protocolVersion: 4 | 5): Promise<number> {
  const outbox = await filledOutbox();
  const fwd = new Forwarder({
    url, protocolVersion, clientId: "bench-fwd", rejectUnauthorized: true, inflight: INFLIGHT, keepaliveS: 30, connectTimeoutS: 10,
    backoff: { initialMs: 100, maxMs: 1000 }, receipts: false, receiptTimeoutS: 600, statusIntervalS: 3600,
  }, { outbox, log: silentLogger, nowMs: Date.now, status: () => ({}) }, "bench");
  let delivered = 0;
  let t0 = 0;
  fwd.on("state", (s) => { if (s === "connected") t0 = performance.now(); });
  const done = new Promise<void>((resolve) => fwd.on("delivered", (n) => { delivered += n; if (delivered >= N) resolve(); }));
  fwd.start();
  await done;
  const rate = N / ((performance.now() - t0) / 1000);
  await fwd.stop();
  outbox.close();
  return rate;
}

async function forwarding(url: string, protocolVersion: 4 | 5): Promise<{ ours: number; rawSameWindow: number; rawUnbounded: number }> {
  return {
    ours: await median(3, () => forwardingOurs(url, protocolVersion)),
    rawSameWindow: await median(3, () => forwardingRaw(url, protocolVersion, INFLIGHT)),
    rawUnbounded: await median(3, () => forwardingRaw(url, protocolVersion, Infinity)),
  };
}

async function daemonRss(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "vg-bench-rss-"));
  const outbox = new Outbox({ path: join(dir, "outbox.db"), quotaBytes: 1 << 30, batchMax: 1000, nowMs: Date.now });
  outbox.open();
  await Promise.all(Array.from({ length: 10_000 }, (_, i) => outbox.append([stamp(draft(i), dev, "bench", clock)])));
  outbox.close();
  const deadPort = await freePort();
  const webPort = await freePort();
  const conf = join(dir, "vitalgate.yaml");
  writeFileSync(conf, `gateway: { id: bench }\nstateDir: ${dir}\nuplink: { url: "mqtt://127.0.0.1:${deadPort}", backoff: { initialMs: 1000, maxMs: 5000 } }\nweb: { host: 127.0.0.1, port: ${webPort} }\nlog: { level: warn, pretty: false }\n`);
  const child = spawn(process.execPath, [...(process.env.BENCH_NODE_FLAGS?.split(" ").filter(Boolean) ?? []), join(ROOT, "src/cli.ts"), "start", "--config", conf], { stdio: "ignore" });
  try {
    const deadline = Date.now() + 20_000;
    while (!(await portOpen(webPort))) {
      if (Date.now() > deadline) throw new Error("daemon did not start");
      await new Promise((r) => setTimeout(r, 100));
    }
    const stats = (await (await fetch(`http://127.0.0.1:${webPort}/api/status`)).json()) as { queue: { pending: number[] }; process: unknown };
    if (stats.queue.pending[2] !== 10_000) throw new Error(`expected 10,000 queued, daemon reports ${stats.queue.pending[2]}`);
    await new Promise((r) => setTimeout(r, 2000)); // let start-up garbage settle
    console.log("  daemon's own view:", JSON.stringify(((await (await fetch(`http://127.0.0.1:${webPort}/api/status`)).json()) as typeof stats).process));
    const status = readFileSync(`/proc/${child.pid}/status`, "utf8");
    const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]) / 1024;
    console.log(`  (RssAnon ${kb("RssAnon").toFixed(0)} MB, RssFile ${kb("RssFile").toFixed(0)} MB: file pages are the node binary and libraries, shared and reclaimable)`);
    return kb("VmRSS");
  } finally {
    child.kill("SIGTERM");
  }
}

function line(name: string, ours: number, limit: number, unit: string, goal: string): void {
  console.log(`${name.padEnd(38)} ${ours.toFixed(0).padStart(9)} ${unit.padEnd(10)} limit ${limit.toFixed(0).padStart(9)} ${unit.padEnd(10)} ratio ${(ours / limit).toFixed(2)}  (goal ${goal})`);
}

// `npm run bench -- ingest forwarding rss` runs a subset; no arguments runs everything.
const only = new Set(process.argv.slice(2));
const want = (name: string) => only.size === 0 || only.has(name);

console.log(`vitalgate bench: ${N} events, uplink.inflight ${INFLIGHT}, node ${process.version}, ${new Date().toISOString()}`);
if (want("ingest")) {
  const ing = await ingest();
  line("ingest (durable commit)", ing.ours, ing.raw, "events/s", ">= 0.70");
}
if (want("time")) {
  const t = await time();
  line("ingest, time service", t.ingest["time service"], t.ingest.monotonic, "events/s", ">= 0.95 of ingest without");
  line("ingest, time service + device skew", t.ingest["time service + device skew"], t.ingest.monotonic, "events/s", ">= 0.90 of ingest without");
  line("stamping alone, time service", t.stamping["time service"], t.stamping.monotonic, "events/s", "(no store: for reference)");
  line("stamping alone, + device skew", t.stamping["time service + device skew"], t.stamping.monotonic, "events/s", "(no store: for reference)");
}
if (want("forwarding")) {
  const report = (name: string, f: Awaited<ReturnType<typeof forwarding>>) => {
    line(`${name}, same window`, f.ours, f.rawSameWindow, "events/s", ">= 0.80");
    line(`${name}, unbounded`, f.ours, f.rawUnbounded, "events/s", "(no window: for reference)");
  };
  const embedded = await startEmbeddedBroker("127.0.0.1", 0);
  report("forwarding aedes 3.1.1", await forwarding(embedded.url, 4));
  await embedded.close();
  if (spawnSync("mosquitto", ["-h"]).error === undefined) {
    const m = await mosquitto();
    report("forwarding mosquitto 5", await forwarding(m.url, 5));
    await m.stop();
  } else {
    console.log("forwarding mosquitto 5: skipped, mosquitto is not installed");
  }
}
if (want("rss")) {
  const rss = await daemonRss();
  line("daemon RSS, 10k queued", rss, 100, "MB", "<= 1.00 of 100 MB");
}
process.exit(0);
