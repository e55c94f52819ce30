// `vitalgate center` as a county runs it: two workers sharing one mosquitto's event stream through an
// MQTT 5 shared subscription, storing into a real PostgreSQL (a scratch cluster for this file), the
// ECG files on disk checked by SHA-256, and receipts only after the commit; real gateways
// (`vitalgate start`, receipts on) publishing an ECG cart's files and a monitor's HL7 observations.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import type { Socket } from "node:net";
import type pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { part10File } from "../src/transports/dicom-scp.ts";
import {
  centerDbClient,
  startCenterWorker,
  startFieldGateway,
  type CenterWorker,
  type FieldGateway,
} from "./support/center.ts";
import { EXPLICIT_LE, syntheticEcg } from "./support/dicom.ts";
import { message } from "./support/e2e.ts";
import { MllpSender } from "./support/mllp-sender.ts";
import { connectCenter, waitFor } from "./support/mqtt.ts";
import { hasPostgres, startPostgres, type Postgres, type PgTarget } from "./support/postgres.ts";
import { mosquitto, type Mosquitto } from "./support/processes.ts";
import { relay } from "./support/relay.ts";

const hasMosquitto = spawnSync("mosquitto", ["-h"]).error === undefined;
if (!hasPostgres) console.warn("skipping the center's tests: PostgreSQL is not installed (apt-get install postgresql)");
if (!hasMosquitto) console.warn("skipping the center's tests: mosquitto is not installed");

let server: Postgres;
beforeAll(async () => {
  if (hasPostgres && hasMosquitto) server = await startPostgres();
}, 60_000);
afterAll(async () => server?.stop());

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** An ECG file as a cart exports it: a synthetic 12-lead in DICOM Part 10 (`seconds` long: 10 s is 1 chunk, 60 s 8). */
function ecgFile(seconds: number): Buffer {
  const ecg = syntheticEcg({ seconds });
  return part10File(ecg.dataset, {
    sopClassUid: ecg.sopClassUid,
    sopInstanceUid: ecg.sopInstanceUid,
    transferSyntaxUid: EXPLICIT_LE,
  });
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

interface Rig {
  broker: Mosquitto;
  db: PgTarget;
  sql: pg.Client;
  filesDir: string;
}

async function rig(): Promise<Rig> {
  const broker = await mosquitto("set_tcp_nodelay true");
  cleanup.push(() => broker.stop());
  const db = await server.database();
  const sql = await centerDbClient(db);
  cleanup.push(() => sql.end());
  return { broker, db, sql, filesDir: mkdtempSync(join(tmpdir(), "vg-center-files-")) };
}

async function worker(r: Rig, name: string, db: PgTarget = r.db): Promise<CenterWorker> {
  const w = await startCenterWorker({ broker: r.broker.url, db, worker: name, filesDir: r.filesDir });
  cleanup.push(() => w.kill9());
  return w;
}

async function gateway(r: Rig, id: string, receiptTimeoutS?: number): Promise<FieldGateway> {
  const g = await startFieldGateway(id, r.broker.url, receiptTimeoutS ? { receiptTimeoutS } : {});
  cleanup.push(() => g.daemon.kill9());
  return g;
}

/** Each test message (test/support/e2e.ts) has two OBR groups: two vitals events. */
async function sendHl7(g: FieldGateway, from: number, to: number): Promise<void> {
  const sender = await MllpSender.connect(g.hl7Port);
  try {
    for (let i = from; i < to; i++) expect(await sender.send(message(i), 10_000)).toMatchObject({ code: "AA" });
  } finally {
    sender.close();
  }
}

/**
 * A loopback link to the database's TCP port that the test can stall: while stalled, what the
 * worker sends is held (its commits hang, as on a server that stopped answering); `held()` says how
 * many pieces are waiting; resume() lets them through.
 */
async function stallableLink(port: number) {
  let stalled = false;
  const waiting: { target: Socket; data: Buffer }[] = [];
  const link = await relay({ port }, (client, target) => {
    client.on("data", (data: Buffer) => (stalled ? waiting.push({ target, data }) : target.write(data)));
    target.pipe(client);
  });
  cleanup.push(() => link.close());
  return {
    port: link.port,
    stall: () => (stalled = true),
    held: () => waiting.length,
    resume() {
      stalled = false;
      for (const w of waiting.splice(0)) w.target.write(w.data);
    },
  };
}

const count = async (sql: pg.Client, query: string, params: unknown[] = []) =>
  Number((await sql.query<{ n: string }>(query, params)).rows[0]!.n);

/** Polls an async condition (a database query) every 50 ms. */
async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

describe.skipIf(!hasPostgres || !hasMosquitto)("vitalgate center: the receiver", () => {
  it(
    "stores two gateways' events in PostgreSQL once each, shared by two workers, with each ECG's file on disk matching its SHA-256; the gateways' queues empty by the receipts",
    { timeout: 90_000 },
    async () => {
      const r = await rig();
      await worker(r, "w1");
      await worker(r, "w2");
      const a = await gateway(r, "amb-01");
      const b = await gateway(r, "amb-02");
      const files = [ecgFile(60), ecgFile(10)];
      writeFileSync(join(a.cartDir, "ECG_0001.dcm"), files[0]!);
      writeFileSync(join(b.cartDir, "ECG_0002.dcm"), files[1]!);
      await Promise.all([sendHl7(a, 0, 20), sendHl7(b, 100, 120)]);

      await until("both ECGs stored with their files", async () => {
        return (await count(r.sql, "SELECT count(*) AS n FROM ecgs WHERE stored_at IS NOT NULL")) === 2;
      });
      await until("every vitals event stored", async () => {
        return (await count(r.sql, "SELECT count(*) AS n FROM events WHERE kind = 'vitals'")) === 80;
      });
      const ecgs = (
        await r.sql.query<{ gw: string; file_path: string; sha256: string; file_bytes: number }>(
          "SELECT gw, file_path, sha256, file_bytes FROM ecgs ORDER BY gw",
        )
      ).rows;
      for (const [i, e] of ecgs.entries()) {
        const onDisk = readFileSync(e.file_path);
        expect(onDisk.equals(files[i]!)).toBe(true);
        expect(e.sha256).toBe(sha256(files[i]!));
      }
      // Both workers took a share of the stream, and no chunk was left behind.
      const byWorker = (await r.sql.query<{ worker: string }>("SELECT DISTINCT worker FROM events")).rows;
      expect(byWorker.map((w) => w.worker).sort()).toEqual(["w1", "w2"]);
      expect(await count(r.sql, "SELECT count(*) AS n FROM blob_parts")).toBe(0);
      // The gateways delivered everything by the center's receipts (they run with uplink.receipts: true).
      await until("the gateways' queues empty", async () => {
        const p = [...(await a.pending()), ...(await b.pending())];
        return p.every((n) => n === 0);
      });
      expect(await count(r.sql, "SELECT count(*) AS n FROM events WHERE kind = 'ecg12'")).toBe(2);
    },
  );

  it(
    "sends no receipt before its commit: with the database stalled the events arrive and nothing is receipted; once it answers, they are stored and receipted",
    { timeout: 60_000 },
    async () => {
      const r = await rig();
      // The worker reaches PostgreSQL through a link the test stalls once its tables are made.
      const link = await stallableLink(r.db.port);
      await worker(r, "w1", { ...r.db, host: "127.0.0.1", port: link.port });
      link.stall();
      const spy = await connectCenter(r.broker.url, "amb-03");
      cleanup.push(() => spy.close());
      const g = await gateway(r, "amb-03");
      await sendHl7(g, 0, 3);
      // The events reached the broker (the spy has them) and the worker, which cannot commit.
      await spy.waitFor(
        () => spy.events.filter((e) => e.kind === "vitals").length === 6,
        20_000,
        "the events published",
      );
      await waitFor(() => link.held() > 0, 20_000, "the worker to try its commit");
      expect(spy.messages.filter((m) => m.topic.endsWith("/receipt"))).toEqual([]);
      expect(await count(r.sql, "SELECT count(*) AS n FROM events")).toBe(0);

      link.resume();
      await spy.waitFor(
        () =>
          spy.messages
            .filter((m) => m.topic.endsWith("/receipt"))
            .flatMap((m) => (JSON.parse(m.payload.toString()) as { ids: string[] }).ids).length >= 6,
        20_000,
        "the receipts",
      );
      const receipted = spy.messages
        .filter((m) => m.topic.endsWith("/receipt"))
        .flatMap((m) => (JSON.parse(m.payload.toString()) as { ids: string[] }).ids);
      const stored = (await r.sql.query<{ id: string }>("SELECT id FROM events")).rows.map((x) => x.id);
      expect(receipted.every((id) => stored.includes(id))).toBe(true);
    },
  );

  it(
    "survives a worker killed mid-ECG: the other worker completes the ECG from the gateway's resend; nothing lost, nothing stored twice",
    { timeout: 90_000 },
    async () => {
      const r = await rig();
      // Worker A reaches the database through a relay that the test stalls: A takes its share of the
      // ECG's chunks from the broker and cannot commit them (no PUBACK, no receipt); then it is killed.
      const link = await stallableLink(r.db.port);
      const a = await worker(r, "wa", { ...r.db, host: "127.0.0.1", port: link.port });
      await worker(r, "wb");
      // A short receipt timeout (the least the gateway takes): what A held comes again soon.
      const g = await gateway(r, "amb-04", 10);
      link.stall();

      const file = ecgFile(60);
      writeFileSync(join(g.cartDir, "ECG_0007.dcm"), file);
      await sendHl7(g, 0, 10);
      // B stores its share of the chunks; A tried to commit some of its own and hangs.
      await until("worker B to store some of the ECG's chunks", async () => {
        return (await count(r.sql, "SELECT count(*) AS n FROM blob_parts")) > 0;
      });
      await waitFor(() => link.held() > 0, 20_000, "worker A to try a commit");
      await a.kill9();

      await until(
        "the ECG completed by worker B",
        async () => (await count(r.sql, "SELECT count(*) AS n FROM ecgs WHERE stored_at IS NOT NULL")) === 1,
        60_000,
      );
      await until("every vitals event stored", async () => {
        return (await count(r.sql, "SELECT count(*) AS n FROM events WHERE kind = 'vitals'")) === 20;
      });
      const e = (await r.sql.query<{ file_path: string; sha256: string }>("SELECT file_path, sha256 FROM ecgs"))
        .rows[0]!;
      expect(readFileSync(e.file_path).equals(file)).toBe(true);
      expect(e.sha256).toBe(sha256(file));
      // Stored once: one event row, one file in its folder, no chunk left over, no worker A row.
      expect(await count(r.sql, "SELECT count(*) AS n FROM events WHERE kind = 'ecg12'")).toBe(1);
      expect(readdirSync(join(e.file_path, "..")).filter((f) => !f.includes(".part-"))).toHaveLength(1);
      expect(await count(r.sql, "SELECT count(*) AS n FROM blob_parts")).toBe(0);
      expect(await count(r.sql, "SELECT count(*) AS n FROM events WHERE worker = 'wa'")).toBe(0);
      await until("the gateway's queue empty", async () => (await g.pending()).every((n) => n === 0), 40_000);
    },
  );
});
