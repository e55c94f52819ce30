// The center's PostgreSQL database: events (deduplicated by id, the highest revision kept), the
// chunks of ECG files until each file is whole, the ECGs with their file and their reading, and the
// gateways' last status. Every worker writes here and nothing is kept in a worker's memory, so the
// event and the chunks of one ECG may reach different workers (docs/protocol.md, "Scaling out at
// the center"): the piece that makes an ECG whole, whichever worker commits it, joins the file,
// checks its length and SHA-256, writes it to disk and marks it stored, under a lock on that ECG.
import { gunzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import pg from "pg";
import type { Envelope, Original, Report } from "./contract.ts";
import { originalSchema } from "./contract.ts";
import { originalPath, writeDurably } from "./files.ts";

/** int8 as a JavaScript number: seq stays below 2^53 (docs/protocol.md, seq). */
pg.types.setTypeParser(20, (v) => Number(v));

/** The channel a worker notifies on after each commit the pages care about (LISTEN in the web process). */
export const NOTIFY_CHANNEL = "vitalgate_center";

/** A device's resend is looked for within this window (docs/protocol.md, "A device's resend"). */
const RESEND_WINDOW = "1 hour";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  id text PRIMARY KEY,
  gw text NOT NULL,
  seq bigint NOT NULL,
  kind text NOT NULL,
  case_id text,
  dev_id text NOT NULL,
  msg_id text,
  msg_n integer,
  t timestamptz NOT NULL,
  rev integer NOT NULL DEFAULT 0,
  received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  worker text NOT NULL,
  envelope jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS events_gw_kind_t ON events (gw, kind, t);
CREATE INDEX IF NOT EXISTS events_case ON events (gw, case_id, kind) WHERE case_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_gw_seq ON events (gw, seq) WHERE case_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_msg ON events (gw, dev_id, msg_id, msg_n) WHERE msg_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS blob_parts (
  event_id text NOT NULL,
  part integer NOT NULL,
  parts integer NOT NULL,
  bytes bytea NOT NULL,
  PRIMARY KEY (event_id, part)
);
CREATE TABLE IF NOT EXISTS ecgs (
  event_id text PRIMARY KEY,
  gw text NOT NULL,
  case_id text,
  t timestamptz NOT NULL,
  event_received_at timestamptz NOT NULL,
  stored_at timestamptz,
  file_path text,
  file_bytes bigint,
  sha256 text,
  file_error text,
  verdict text,
  conclusion text,
  reading_text text,
  reader text,
  read_at timestamptz,
  report_sent_at timestamptz
);
CREATE INDEX IF NOT EXISTS ecgs_unread ON ecgs (t) WHERE read_at IS NULL;
ALTER TABLE ecgs ADD COLUMN IF NOT EXISTS report_id text;
ALTER TABLE ecgs ADD COLUMN IF NOT EXISTS report_acked_at timestamptz;
ALTER TABLE ecgs ADD COLUMN IF NOT EXISTS report_error text;
CREATE INDEX IF NOT EXISTS ecgs_report_id ON ecgs (report_id) WHERE report_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS gateway_status (
  gw text PRIMARY KEY,
  state text NOT NULL,
  at timestamptz,
  received_at timestamptz NOT NULL,
  body jsonb NOT NULL
);
`;

export interface StoreResult {
  /** Ids the center may receipt now (committed: for an ECG, with its whole file on disk). */
  receipt: string[];
  /** What happened, for the log and the counters. */
  outcome: "stored" | "duplicate" | "revised" | "resend" | "part" | "complete" | "file-mismatch";
}

export interface CenterDbOptions {
  pool: pg.PoolConfig;
  /** Where the original files go. */
  filesDir: string;
}

type Tx = pg.PoolClient;

export class CenterDb {
  readonly pool: pg.Pool;
  readonly filesDir: string;

  constructor(o: CenterDbOptions) {
    this.pool = new pg.Pool(o.pool);
    this.filesDir = o.filesDir;
    // An idle client's error (the server restarting) must not crash the process; the next query reconnects.
    this.pool.on("error", () => undefined);
  }

  /** Creates the tables (once, whichever worker comes first: under an advisory lock). */
  async migrate(): Promise<void> {
    await this.tx(async (c) => {
      await c.query("SELECT pg_advisory_xact_lock(7431001)");
      await c.query(SCHEMA);
    });
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  async tx<T>(fn: (c: Tx) => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    try {
      await c.query("BEGIN");
      const r = await fn(c);
      await c.query("COMMIT");
      return r;
    } catch (err) {
      await c.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  /**
   * Stores one event idempotently: a new id is inserted; the same id again is a duplicate (a higher
   * `rev` replaces what is kept); a device's resend (same gw, device, msg id and n, same body, within
   * the window) is dropped. Every one of them is receipted, an ECG only once its file is whole.
   */
  async storeEvent(e: Envelope, worker: string): Promise<StoreResult> {
    return this.tx(async (c) => {
      const ecg = e.kind === "ecg12";
      if (ecg) await lockEcg(c, e.id);
      const rev = e.rev ?? 0;
      const existing = await c.query<{ rev: number }>("SELECT rev FROM events WHERE id = $1 FOR UPDATE", [e.id]);
      let outcome: StoreResult["outcome"];
      if (existing.rowCount) {
        if (existing.rows[0]!.rev >= rev) outcome = "duplicate";
        else {
          await c.query("UPDATE events SET rev = $2, envelope = $3, t = $4, case_id = $5 WHERE id = $1", [
            e.id,
            rev,
            e,
            e.t,
            e.case ?? null,
          ]);
          await c.query("UPDATE ecgs SET case_id = $2, t = $3 WHERE event_id = $1", [e.id, e.case ?? null, e.t]);
          outcome = "revised";
        }
      } else if (e.msg && (await isResend(c, e))) {
        outcome = "resend";
      } else {
        await c.query(
          `INSERT INTO events (id, gw, seq, kind, case_id, dev_id, msg_id, msg_n, t, rev, worker, envelope)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
          [
            e.id,
            e.gw,
            e.seq,
            e.kind,
            e.case ?? null,
            e.dev.id,
            e.msg?.id ?? null,
            e.msg?.n ?? null,
            e.t,
            rev,
            worker,
            e,
          ],
        );
        outcome = "stored";
        if (ecg)
          await c.query(
            "INSERT INTO ecgs (event_id, gw, case_id, t, event_received_at) VALUES ($1, $2, $3, $4, clock_timestamp()) ON CONFLICT DO NOTHING",
            [e.id, e.gw, e.case ?? null, e.t],
          );
        if (e.kind === "case" || e.kind === "position") await notify(c, { type: e.kind, gw: e.gw });
      }
      if (outcome === "resend" || !ecg) return { receipt: [e.id], outcome };
      const done = await this.#complete(c, e.id);
      return done.outcome === "complete" || done.outcome === "file-mismatch"
        ? { receipt: done.receipt, outcome: outcome === "stored" ? done.outcome : outcome }
        : { receipt: done.receipt, outcome };
    });
  }

  /** Stores one chunk of an ECG's file (a repeated part replaces the same bytes); completes the ECG when it was the last piece. */
  async storePart(eventId: string, part: number, parts: number, bytes: Buffer): Promise<StoreResult> {
    return this.tx(async (c) => {
      await lockEcg(c, eventId);
      const stored = await c.query("SELECT 1 FROM ecgs WHERE event_id = $1 AND stored_at IS NOT NULL", [eventId]);
      // A chunk sent again after its ECG was stored (its receipt was lost): receipt the ECG again.
      if (stored.rowCount) return { receipt: [eventId], outcome: "duplicate" };
      await c.query(
        `INSERT INTO blob_parts (event_id, part, parts, bytes) VALUES ($1, $2, $3, $4)
         ON CONFLICT (event_id, part) DO UPDATE SET parts = EXCLUDED.parts, bytes = EXCLUDED.bytes`,
        [eventId, part, parts, bytes],
      );
      const done = await this.#complete(c, eventId);
      return done.outcome === "part" ? { receipt: [], outcome: "part" } : done;
    });
  }

  /**
   * Within the ECG's locked transaction: once its event and every chunk are here, the file is
   * joined, checked against `original` (length, SHA-256), written to disk and marked stored, and its
   * chunks deleted. A file that does not match is not kept: its chunks go, nothing is receipted, and
   * the gateway sends it again after its receipt timeout.
   */
  async #complete(c: Tx, eventId: string): Promise<StoreResult> {
    const ev = await c.query<{ gw: string; t: Date; original: unknown; stored: boolean }>(
      `SELECT e.gw, e.t, e.envelope->'body'->'original' AS original, g.stored_at IS NOT NULL AS stored
       FROM events e JOIN ecgs g ON g.event_id = e.id WHERE e.id = $1`,
      [eventId],
    );
    const row = ev.rows[0];
    if (!row) return { receipt: [], outcome: "part" };
    if (row.stored) return { receipt: [eventId], outcome: "duplicate" };
    const original = originalSchema.safeParse(row.original);
    if (!original.success) {
      // An ECG with no file named (or a malformed `original`): nothing more will come for it.
      await c.query("UPDATE ecgs SET stored_at = clock_timestamp(), file_error = $2 WHERE event_id = $1", [
        eventId,
        row.original === null ? null : "the event's original does not name a file (contentType, bytes, sha256)",
      ]);
      await notify(c, { type: "ecg", gw: row.gw, id: eventId });
      return { receipt: [eventId], outcome: "complete" };
    }
    const parts = await c.query<{ part: number; parts: number; bytes: Buffer }>(
      "SELECT part, parts, bytes FROM blob_parts WHERE event_id = $1 ORDER BY part",
      [eventId],
    );
    const total = parts.rows[0]?.parts;
    const expected = original.data.bytes === 0 ? 0 : total;
    if (expected === undefined || parts.rows.length !== expected || parts.rows.some((p, i) => p.part !== i + 1))
      return { receipt: [], outcome: "part" };
    const joined = Buffer.concat(parts.rows.map((p) => p.bytes));
    const file = original.data.encoding === "gzip" ? gunzipFile(joined, original.data.bytes) : joined;
    const problem = file === undefined ? "the joined chunks are not valid gzip" : mismatch(file, original.data);
    await c.query("DELETE FROM blob_parts WHERE event_id = $1", [eventId]);
    if (problem) {
      await c.query("UPDATE ecgs SET file_error = $2 WHERE event_id = $1", [eventId, problem]);
      return { receipt: [], outcome: "file-mismatch" };
    }
    const path = originalPath(this.filesDir, row.gw, eventId, row.t.toISOString(), original.data.contentType);
    writeDurably(path, file!);
    await c.query(
      "UPDATE ecgs SET stored_at = clock_timestamp(), file_path = $2, file_bytes = $3, sha256 = $4, file_error = NULL WHERE event_id = $1",
      [eventId, path, file!.length, original.data.sha256],
    );
    await notify(c, { type: "ecg", gw: row.gw, id: eventId });
    return { receipt: [eventId], outcome: "complete" };
  }

  async storeStatus(gw: string, body: { state: string; at?: string }): Promise<void> {
    await this.pool.query(
      `INSERT INTO gateway_status (gw, state, at, received_at, body) VALUES ($1, $2, $3, clock_timestamp(), $4)
       ON CONFLICT (gw) DO UPDATE SET state = EXCLUDED.state, at = EXCLUDED.at, received_at = EXCLUDED.received_at, body = EXCLUDED.body`,
      [gw, body.state, body.at ?? null, body],
    );
    await this.pool.query("SELECT pg_notify($1, $2)", [NOTIFY_CHANNEL, JSON.stringify({ type: "status", gw })]);
  }

  /** Records the cardiologist's reading; the ECG's gateway, for the report, or undefined when there is no such ECG. */
  async saveReading(
    eventId: string,
    r: { verdict: string; conclusion: string; text?: string; reader: string; at: string; reportId: string },
  ): Promise<{ gw: string } | undefined> {
    const res = await this.pool.query<{ gw: string }>(
      `UPDATE ecgs SET verdict = $2, conclusion = $3, reading_text = $4, reader = $5, read_at = $6, report_sent_at = NULL,
         report_id = $7, report_acked_at = NULL, report_error = NULL
       WHERE event_id = $1 AND stored_at IS NOT NULL RETURNING gw`,
      [eventId, r.verdict, r.conclusion, r.text ?? null, r.reader, r.at, r.reportId],
    );
    if (res.rowCount)
      await this.pool.query("SELECT pg_notify($1, $2)", [
        NOTIFY_CHANNEL,
        JSON.stringify({ type: "reading", id: eventId }),
      ]);
    return res.rows[0];
  }

  async reportSent(report: Report): Promise<void> {
    await this.pool.query("UPDATE ecgs SET report_sent_at = clock_timestamp() WHERE report_id = $1", [report.id]);
  }

  /** The gateway's answer to a report: kept with the crew's case and shown (ok), or refused (its words). */
  async reportAcknowledged(reportId: string, ok: boolean, error: string | undefined): Promise<void> {
    const r = await this.pool.query<{ event_id: string }>(
      "UPDATE ecgs SET report_acked_at = clock_timestamp(), report_error = $2 WHERE report_id = $1 RETURNING event_id",
      [reportId, ok ? null : (error ?? "refused")],
    );
    if (r.rowCount)
      await this.pool.query("SELECT pg_notify($1, $2)", [
        NOTIFY_CHANNEL,
        JSON.stringify({ type: "reading", id: r.rows[0]!.event_id }),
      ]);
  }
}

async function lockEcg(c: Tx, eventId: string): Promise<void> {
  await c.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [eventId]);
}

async function notify(c: Tx, what: Record<string, string>): Promise<void> {
  await c.query("SELECT pg_notify($1, $2)", [NOTIFY_CHANNEL, JSON.stringify(what)]);
}

/** The same message of the same device, with the same body, stored under another id within the window. */
async function isResend(c: Tx, e: Envelope): Promise<boolean> {
  const r = await c.query(
    `SELECT 1 FROM events WHERE gw = $1 AND dev_id = $2 AND msg_id = $3 AND msg_n = $4 AND id <> $5
       AND t BETWEEN $6::timestamptz - interval '${RESEND_WINDOW}' AND $6::timestamptz + interval '${RESEND_WINDOW}'
       AND envelope->'body' = $7::jsonb LIMIT 1`,
    [e.gw, e.dev.id, e.msg!.id, e.msg!.n, e.id, e.t, JSON.stringify(e.body)],
  );
  return (r.rowCount ?? 0) > 0;
}

/** A file whose chunks travelled gzip-compressed; undefined when they are not gzip (or inflate beyond its length). */
function gunzipFile(joined: Buffer, bytes: number): Buffer | undefined {
  try {
    return gunzipSync(joined, { maxOutputLength: bytes + 1 });
  } catch {
    return undefined;
  }
}

/** Why `file` is not the file `original` names; null when it is. */
function mismatch(file: Buffer, original: Original): string | null {
  if (file.length !== original.bytes) return `the file has ${file.length} bytes, its event says ${original.bytes}`;
  const sha = createHash("sha256").update(file).digest("hex");
  return sha === original.sha256 ? null : `the file's SHA-256 is ${sha}, its event says ${original.sha256}`;
}
