// npm run fleet -- [--gateways 20] [--workers 2] [--seconds 60] [--ecg-every-s 20] [--vitals-every-ms 1000]
//
// A county on one machine (issue 17): N gateways (`vitalgate start`, each with an HL7 monitor and an
// ECG cart on a folder, receipts on, an open case with its first medical contact) against one
// mosquitto and W center workers (`vitalgate center`, one of them serving the reading station) on a
// scratch PostgreSQL cluster. For `--seconds`, each monitor sends an ORU^R01 every `--vitals-every-ms`
// (acknowledged AA before the next) and each cart exports a 10 s 12-lead every `--ecg-every-s`;
// a scripted cardiologist reads each ECG as soon as the reading station lists it. Measured:
//   - vitals: device (the monitor's send) → stored at the center (the row's commit);
//   - ECG: device (the cart's file written) → stored at the center (file joined, checked, on disk);
//   - reading: sent at the center (POST) → on the crew's page (the gateway's live feed, `report`);
//   - ECG round trip: device → the reading on the crew's page, less the cardiologist's own time;
//   - the workers' CPU (user + system, /proc) per stored event, and each worker's share.
// Prints the distributions (p50, p90, p99, max), and writes them as JSON (--out FILE). Bounded: it
// stops by itself and stops everything it started.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { part10File } from "../src/transports/dicom-scp.ts";
import { pcd01Message } from "../drivers/hl7-pcd01/synthetic.ts";
import { startCenterWorker, startFieldGateway, type CenterWorker, type FieldGateway } from "../test/support/center.ts";
import { EXPLICIT_LE, syntheticEcg } from "../test/support/dicom.ts";
import { MllpSender } from "../test/support/mllp-sender.ts";
import { startPostgres } from "../test/support/postgres.ts";
import { mosquitto } from "../test/support/processes.ts";

const { values } = parseArgs({
  options: {
    gateways: { type: "string", default: "20" },
    workers: { type: "string", default: "2" },
    seconds: { type: "string", default: "60" },
    "ecg-every-s": { type: "string", default: "20" },
    "vitals-every-ms": { type: "string", default: "1000" },
    out: { type: "string" },
  },
});
const N = Number(values.gateways);
const W = Number(values.workers);
const SECONDS = Number(values.seconds);
const ECG_EVERY_MS = Number(values["ecg-every-s"]) * 1000;
const VITALS_EVERY_MS = Number(values["vitals-every-ms"]);
const PASSWORD = "fleet Password 1";

const stops: (() => unknown)[] = [];
async function stopAll(): Promise<void> {
  for (const f of stops.splice(0).reverse()) await Promise.resolve(f()).catch(() => undefined);
}
process.on("SIGINT", () => void stopAll().then(() => process.exit(130)));

/** user + system CPU of a process so far, ms (/proc/<pid>/stat, clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const quantile = (xs: number[], q: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const dist = (xs: number[]) => ({
  n: xs.length,
  p50: quantile(xs, 0.5),
  p90: quantile(xs, 0.9),
  p99: quantile(xs, 0.99),
  max: xs.length ? Math.max(...xs) : NaN,
});

/** A page session on a gateway or the center, from the machine itself (no setup code). */
async function session(base: string) {
  const r = await fetch(`${base}/api/setup`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "admin", password: PASSWORD }),
  });
  if (!r.ok) throw new Error(`setup at ${base}: ${r.status}`);
  const cookie = r.headers.get("set-cookie")!.split(";")[0]!;
  const { csrf } = (await r.json()) as { csrf: string };
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { cookie, "x-csrf-token": csrf, ...(body ? { "content-type": "application/json" } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, unknown>;
  };
  return { cookie, call };
}

/** Calls `onEvent(type, data, atMs)` for each server-sent event of a page's live feed until `signal` aborts. */
async function follow(
  base: string,
  cookie: string,
  signal: AbortSignal,
  onEvent: (type: string, data: unknown, at: number) => void,
) {
  const res = await fetch(`${base}/api/live`, { headers: { cookie }, signal });
  const reader = res.body!.getReader();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      const at = performance.timeOrigin + performance.now();
      buf += Buffer.from(value).toString("utf8");
      let end;
      while ((end = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const type = /^event: (.+)$/m.exec(block)?.[1];
        const data = /^data: (.+)$/m.exec(block)?.[1];
        if (type && data) onEvent(type, JSON.parse(data), at);
      }
    }
  } catch {
    // aborted
  }
}

async function main(): Promise<void> {
  const now = () => performance.timeOrigin + performance.now();
  // Every file of the run (the gateways' and workers' state, the ECG folders) under one directory, removed at the end.
  const root = mkdtempSync(join(tmpdir(), "vg-fleet-"));
  process.env.TMPDIR = root;
  stops.push(() => rmSync(root, { recursive: true, force: true }));
  console.log(
    `fleet: ${N} gateways, ${W} center workers, ${SECONDS} s; an ECG every ${ECG_EVERY_MS / 1000} s and an HL7 message every ${VITALS_EVERY_MS} ms per gateway`,
  );
  const server = await startPostgres();
  stops.push(() => server.stop());
  const db = await server.database("vg_fleet");
  const broker = await mosquitto("set_tcp_nodelay true\nmax_queued_messages 100000");
  stops.push(() => broker.stop());
  const filesDir = join(server.socketDir, "files");
  const workers: CenterWorker[] = [];
  for (let i = 0; i < W; i++) {
    const w = await startCenterWorker({ broker: broker.url, db, worker: `w${i + 1}`, filesDir, web: i === 0 });
    stops.push(() => w.stop());
    workers.push(w);
  }
  const center = await session(`http://127.0.0.1:${workers[0]!.webPort}`);

  const gateways: FieldGateway[] = [];
  const crews: { gw: string; base: string; cookie: string }[] = [];
  for (let i = 0; i < N; i++) {
    const id = `fleet-${String(i + 1).padStart(2, "0")}`;
    const g = await startFieldGateway(id, broker.url, { receiptTimeoutS: 60 });
    stops.push(() => g.daemon.stop());
    gateways.push(g);
    const base = `http://127.0.0.1:${g.daemon.webPort}`;
    const s = await session(base);
    const c = (await s.call("POST", "/api/cases", {})) as { id: string };
    await s.call("POST", `/api/cases/${c.id}/nodes`, { node: "fmc" });
    crews.push({ gw: id, base, cookie: s.cookie });
  }
  console.log(`started: ${W} workers, ${N} gateways`);

  const sql = new pg.Client(db);
  await sql.connect();
  stops.push(() => sql.end());
  const cpu0 = workers.map((w) => cpuMs(w.child.pid!));
  const events0 = Number((await sql.query("SELECT count(*) AS n FROM events")).rows[0]!.n);

  // The crews' pages: the gateway's live feed, where a reading arrives as `report`.
  const abort = new AbortController();
  const onPage = new Map<string, number>();
  for (const c of crews)
    void follow(c.base, c.cookie, abort.signal, (type, data, at) => {
      if (type === "report") onPage.set((data as { eventId: string }).eventId, at);
    });

  // The cardiologist: reads every ECG the worklist shows, at once.
  const readAt = new Map<string, number>();
  const cardiologist = (async () => {
    while (!abort.signal.aborted) {
      const list = (await center.call("GET", "/api/worklist")) as { ecgs: { eventId: string }[] };
      for (const e of list.ecgs) {
        if (readAt.has(e.eventId)) continue;
        readAt.set(e.eventId, now());
        await center.call("POST", `/api/ecgs/${e.eventId}/reading`, { verdict: "not-stemi", text: "fleet" });
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();

  // The devices.
  const sentVitals = new Map<string, number>();
  const writtenEcg = new Map<string, { gw: string; at: number }>();
  const endAt = Date.now() + SECONDS * 1000;
  const monitors = gateways.map(async (g, gi) => {
    const sender = await MllpSender.connect(g.hl7Port);
    for (let i = 0; Date.now() < endAt; i++) {
      const controlId = `F${gi}-${i}`;
      const t0 = now();
      sentVitals.set(`${g.id}/${controlId}`, t0);
      await sender.send(pcd01Message({ controlId, time: new Date(), values: { hr: 60 + (i % 40), spo2: 97 } }), 30_000);
      await new Promise((r) => setTimeout(r, Math.max(0, VITALS_EVERY_MS - (now() - t0))));
    }
    sender.close();
  });
  const carts = gateways.map(async (g, gi) => {
    await new Promise((r) => setTimeout(r, (gi * ECG_EVERY_MS) / N)); // spread over the period
    for (let i = 0; Date.now() < endAt; i++) {
      const ecg = syntheticEcg({ seconds: 10 });
      const file = part10File(ecg.dataset, {
        sopClassUid: ecg.sopClassUid,
        sopInstanceUid: ecg.sopInstanceUid,
        transferSyntaxUid: EXPLICIT_LE,
      });
      writtenEcg.set(ecg.sopInstanceUid, { gw: g.id, at: now() });
      writeFileSync(join(g.cartDir, `ECG_${gi}_${i}.dcm`), file);
      await new Promise((r) => setTimeout(r, ECG_EVERY_MS));
    }
  });
  await Promise.all([...monitors, ...carts]);
  console.log("load sent; waiting for the last ECGs to be stored and read");

  // Drain: every ECG written stored and read back on its crew's page (bounded).
  const drainUntil = Date.now() + 120_000;
  for (;;) {
    const stored = Number((await sql.query("SELECT count(*) AS n FROM ecgs WHERE stored_at IS NOT NULL")).rows[0]!.n);
    const vitalsIn = Number(
      (await sql.query("SELECT count(*) AS n FROM events WHERE kind = 'vitals' AND msg_n = 1")).rows[0]!.n,
    );
    const done = stored >= writtenEcg.size && onPage.size >= writtenEcg.size && vitalsIn >= sentVitals.size;
    if (done || Date.now() > drainUntil) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  abort.abort();
  await cardiologist.catch(() => undefined);
  const cpu = workers.map((w, i) => cpuMs(w.child.pid!) - cpu0[i]!);

  const vitalsRows = await sql.query<{ gw: string; msg_id: string; received_ms: number }>(
    "SELECT gw, msg_id, extract(epoch FROM received_at) * 1000 AS received_ms FROM events WHERE kind = 'vitals' AND msg_n = 1",
  );
  const vitals = vitalsRows.rows
    .map((r) => Number(r.received_ms) - (sentVitals.get(`${r.gw}/${r.msg_id}`) ?? NaN))
    .filter(Number.isFinite);
  const ecgRows = await sql.query<{ event_id: string; uid: string; stored_ms: number }>(
    `SELECT g.event_id, e.msg_id AS uid, extract(epoch FROM g.stored_at) * 1000 AS stored_ms
     FROM ecgs g JOIN events e ON e.id = g.event_id WHERE g.stored_at IS NOT NULL`,
  );
  const ecgStored: number[] = [];
  const reading: number[] = [];
  const roundTrip: number[] = [];
  for (const r of ecgRows.rows) {
    const w = writtenEcg.get(r.uid);
    if (!w) continue;
    const stored = Number(r.stored_ms) - w.at;
    ecgStored.push(stored);
    const read = readAt.get(r.event_id);
    const seen = onPage.get(r.event_id);
    if (read !== undefined && seen !== undefined) {
      reading.push(seen - read);
      roundTrip.push(stored + (seen - read));
    }
  }
  const events = Number((await sql.query("SELECT count(*) AS n FROM events")).rows[0]!.n) - events0;
  const chunks = Number((await sql.query("SELECT count(*) AS n FROM ecgs WHERE stored_at IS NOT NULL")).rows[0]!.n);
  const byWorker = (
    await sql.query<{ worker: string; n: string }>(
      "SELECT worker, count(*) AS n FROM events GROUP BY worker ORDER BY worker",
    )
  ).rows;
  const result = {
    gateways: N,
    workers: W,
    seconds: SECONDS,
    ecgsWritten: writtenEcg.size,
    ecgsStored: chunks,
    ecgsReadOnCrewPage: onPage.size,
    eventsStored: events,
    eventsPerSecond: Math.round((events / SECONDS) * 10) / 10,
    latencyMs: {
      vitalsDeviceToStored: dist(vitals),
      ecgDeviceToStored: dist(ecgStored),
      readingToCrewPage: dist(reading),
      ecgDeviceToCrewPageLessReader: dist(roundTrip),
    },
    workersCpuMs: cpu,
    cpuMsPerEvent: Math.round((cpu.reduce((a, b) => a + b, 0) / Math.max(1, events)) * 100) / 100,
    eventsByWorker: Object.fromEntries(byWorker.map((r) => [r.worker, Number(r.n)])),
  };
  const row = (name: string, d: ReturnType<typeof dist>) =>
    `${name.padEnd(44)} n=${String(d.n).padStart(6)}  p50 ${d.p50.toFixed(0).padStart(6)}  p90 ${d.p90.toFixed(0).padStart(6)}  p99 ${d.p99.toFixed(0).padStart(6)}  max ${d.max.toFixed(0).padStart(6)} ms`;
  console.log(
    [
      "",
      `ECGs written ${result.ecgsWritten}, stored ${result.ecgsStored}, reading on the crew's page ${result.ecgsReadOnCrewPage}; events stored ${events} (${result.eventsPerSecond}/s)`,
      row("vitals: device → stored at the center", result.latencyMs.vitalsDeviceToStored),
      row("ECG: device → stored at the center", result.latencyMs.ecgDeviceToStored),
      row("reading: sent at the center → crew's page", result.latencyMs.readingToCrewPage),
      row("ECG: device → reading on the crew's page*", result.latencyMs.ecgDeviceToCrewPageLessReader),
      "  * less the cardiologist's own time (worklist poll and reading)",
      `workers' CPU: ${cpu.map((c, i) => `w${i + 1} ${(c / 1000).toFixed(1)} s`).join(", ")}; ${result.cpuMsPerEvent} ms per stored event; events by worker ${JSON.stringify(result.eventsByWorker)}`,
    ].join("\n"),
  );
  if (values.out) writeFileSync(values.out, JSON.stringify(result, null, 2) + "\n");
}

main()
  .then(stopAll)
  .catch(async (err: Error) => {
    console.error(`fleet: ${err.stack ?? err.message}`);
    await stopAll();
    process.exitCode = 1;
  });
