// What the reading station and the county picture read from the center's database: the worklist,
// one ECG, a case's time nodes (as the chest-pain center audit lists them), the cases for the CSV
// export, and each vehicle's last position, state and case.
import type pg from "pg";
import { caseBodySchema, positionBodySchema } from "./contract.ts";

/** A case's times: the gateway's nodes (the latest event of each wins), and the center's own. */
export interface CaseTimes {
  gw: string;
  caseId: string;
  openedAt?: string;
  closedAt?: string;
  /** The gateway's nodes by name (fmc, onset, dispatch, firstEcg, ecgSent, ecgReceived, ecgRead, arrival). */
  nodes: Record<string, string>;
  /**
   * Nodes read from the gateway's clock before it was synchronized (`unsynced` in the contract): kept
   * and shown as such, not times to audit by, until the gateway sends them again placed.
   */
  unsynced: string[];
  /** The center's own: when its first ECG was stored here, and when its first reading was made here. */
  received?: string;
  read?: string;
  conclusion?: string;
}

/** The nodes of many cases at once, from their `case` events (ordered by seq: a later one corrects an earlier). */
export async function caseTimes(
  pool: pg.Pool,
  keys: { gw: string; caseId: string }[],
): Promise<Map<string, CaseTimes>> {
  const out = new Map<string, CaseTimes>();
  if (keys.length === 0) return out;
  const gws = keys.map((k) => k.gw);
  const ids = keys.map((k) => k.caseId);
  for (const k of keys) out.set(`${k.gw}/${k.caseId}`, { gw: k.gw, caseId: k.caseId, nodes: {}, unsynced: [] });
  const events = await pool.query<{ gw: string; case_id: string; body: unknown }>(
    `SELECT gw, case_id, envelope->'body' AS body FROM events
     WHERE kind = 'case' AND (gw, case_id) IN (SELECT * FROM unnest($1::text[], $2::text[])) ORDER BY seq`,
    [gws, ids],
  );
  for (const row of events.rows) {
    const c = out.get(`${row.gw}/${row.case_id}`)!;
    const b = caseBodySchema.safeParse(row.body);
    if (!b.success || !b.data.at) continue;
    if (b.data.action === "opened") c.openedAt = b.data.at;
    else if (b.data.action === "closed") c.closedAt = b.data.at;
    else if (b.data.action === "node" && b.data.node) {
      c.nodes[b.data.node] = b.data.at;
      c.unsynced = c.unsynced.filter((n) => n !== b.data.node);
      if (b.data.unsynced) c.unsynced.push(b.data.node);
    }
  }
  const ecgs = await pool.query<{
    gw: string;
    case_id: string;
    received: Date | null;
    read: Date | null;
    conclusion: string | null;
  }>(
    `SELECT gw, case_id, min(stored_at) AS received, min(read_at) AS read,
            (array_agg(conclusion ORDER BY read_at) FILTER (WHERE read_at IS NOT NULL))[1] AS conclusion
     FROM ecgs WHERE (gw, case_id) IN (SELECT * FROM unnest($1::text[], $2::text[])) GROUP BY gw, case_id`,
    [gws, ids],
  );
  for (const row of ecgs.rows) {
    const c = out.get(`${row.gw}/${row.case_id}`)!;
    if (row.received) c.received = row.received.toISOString();
    if (row.read) c.read = row.read.toISOString();
    if (row.conclusion) c.conclusion = row.conclusion;
  }
  return out;
}

export interface WorklistEntry {
  eventId: string;
  gw: string;
  caseId: string | null;
  t: string;
  storedAt: string;
  /** First medical contact of the ECG's case, when the crew recorded it. */
  fmc: string | null;
  /** The FMC was taken on the gateway's clock before it was synchronized. */
  fmcUnsynced: boolean;
  heartRate: number | null;
  statement: string | null;
  fileError: string | null;
}

/** ECGs stored and waiting to be read, oldest first medical contact first (an ECG of no FMC by its own time). */
export async function worklist(pool: pg.Pool, limit = 200): Promise<WorklistEntry[]> {
  const rows = await pool.query<{
    event_id: string;
    gw: string;
    case_id: string | null;
    t: Date;
    stored_at: Date;
    hr: number | null;
    statement: string | null;
    file_error: string | null;
  }>(
    `SELECT g.event_id, g.gw, g.case_id, g.t, g.stored_at, g.file_error,
            (e.envelope->'body'->'measurements'->>'heartRate')::float AS hr,
            e.envelope->'body'->'statements'->>0 AS statement
     FROM ecgs g JOIN events e ON e.id = g.event_id
     WHERE g.stored_at IS NOT NULL AND g.read_at IS NULL
     ORDER BY g.t LIMIT $1`,
    [limit],
  );
  const keys = rows.rows.filter((r) => r.case_id).map((r) => ({ gw: r.gw, caseId: r.case_id! }));
  const times = await caseTimes(pool, keys);
  const list = rows.rows.map((r) => ({
    eventId: r.event_id,
    gw: r.gw,
    caseId: r.case_id,
    t: r.t.toISOString(),
    storedAt: r.stored_at.toISOString(),
    fmc: (r.case_id && times.get(`${r.gw}/${r.case_id}`)?.nodes.fmc) || null,
    fmcUnsynced: Boolean(r.case_id && times.get(`${r.gw}/${r.case_id}`)?.unsynced.includes("fmc")),
    heartRate: r.hr,
    statement: r.statement,
    fileError: r.file_error,
  }));
  const key = (e: WorklistEntry) => Date.parse(e.fmc ?? e.t);
  return list.sort((a, b) => key(a) - key(b));
}

export interface EcgRecord {
  eventId: string;
  gw: string;
  caseId: string | null;
  t: string;
  storedAt: string | null;
  body: Record<string, unknown>;
  dev: Record<string, unknown>;
  file: { path: string | null; bytes: number | null; sha256: string | null; error: string | null };
  reading: {
    verdict: string;
    conclusion: string;
    text: string | null;
    reader: string;
    at: string;
    sentAt: string | null;
    /** The crew's gateway kept and showed it (`ack` ok), or refused it (`error`). */
    ackedAt: string | null;
    error: string | null;
  } | null;
}

export async function ecgRecord(pool: pg.Pool, eventId: string): Promise<EcgRecord | undefined> {
  const r = await pool.query<{
    gw: string;
    case_id: string | null;
    t: Date;
    stored_at: Date | null;
    envelope: { body: Record<string, unknown>; dev: Record<string, unknown> };
    file_path: string | null;
    file_bytes: number | null;
    sha256: string | null;
    file_error: string | null;
    verdict: string | null;
    conclusion: string | null;
    reading_text: string | null;
    reader: string | null;
    read_at: Date | null;
    report_sent_at: Date | null;
    report_acked_at: Date | null;
    report_error: string | null;
  }>(`SELECT g.*, e.envelope FROM ecgs g JOIN events e ON e.id = g.event_id WHERE g.event_id = $1`, [eventId]);
  const row = r.rows[0];
  if (!row) return undefined;
  return {
    eventId,
    gw: row.gw,
    caseId: row.case_id,
    t: row.t.toISOString(),
    storedAt: row.stored_at?.toISOString() ?? null,
    body: row.envelope.body,
    dev: row.envelope.dev,
    file: { path: row.file_path, bytes: row.file_bytes, sha256: row.sha256, error: row.file_error },
    reading:
      row.read_at && row.verdict && row.conclusion && row.reader
        ? {
            verdict: row.verdict,
            conclusion: row.conclusion,
            text: row.reading_text,
            reader: row.reader,
            at: row.read_at.toISOString(),
            sentAt: row.report_sent_at?.toISOString() ?? null,
            ackedAt: row.report_acked_at?.toISOString() ?? null,
            error: row.report_error,
          }
        : null,
  };
}

/** The cases with an ECG or a case event whose time falls in [from, to), newest first. */
export async function casesBetween(pool: pg.Pool, fromIso: string, toIso: string): Promise<CaseTimes[]> {
  const keys = await pool.query<{ gw: string; case_id: string }>(
    `SELECT gw, case_id FROM events WHERE case_id IS NOT NULL AND kind IN ('case', 'ecg12') AND t >= $1 AND t < $2
     GROUP BY gw, case_id ORDER BY max(t) DESC LIMIT 5000`,
    [fromIso, toIso],
  );
  const times = await caseTimes(
    pool,
    keys.rows.map((k) => ({ gw: k.gw, caseId: k.case_id })),
  );
  return [...times.values()];
}

/** The columns of the time-node export, in the chest-pain center audit's order. */
export const CSV_COLUMNS = [
  "gateway",
  "case",
  "onset",
  "dispatch",
  "fmc",
  "firstEcg",
  "ecgSent",
  "ecgReceived",
  "ecgRead",
  "arrival",
  "fmcToEcgMin",
  "fmcToReadMin",
  "conclusion",
  "unsynced",
] as const;

const minutes = (from?: string, to?: string) =>
  from && to ? ((Date.parse(to) - Date.parse(from)) / 60_000).toFixed(1) : "";

/** One CSV row's cells: the gateway's nodes, the center's own receipt and reading times. */
export function csvRow(c: CaseTimes): string[] {
  const n = c.nodes;
  const firstEcg = n.firstEcg;
  const received = c.received ?? n.ecgReceived;
  const read = c.read ?? n.ecgRead;
  return [
    c.gw,
    c.caseId,
    n.onset ?? "",
    n.dispatch ?? "",
    n.fmc ?? "",
    firstEcg ?? "",
    n.ecgSent ?? "",
    received ?? "",
    read ?? "",
    n.arrival ?? "",
    minutes(n.fmc, firstEcg),
    minutes(n.fmc, read),
    c.conclusion ?? "",
    c.unsynced.join(" "),
  ];
}

/** RFC 4180: fields with a comma, quote or line break are quoted, quotes doubled; CRLF line ends. */
export function toCsv(rows: readonly (readonly string[])[]): string {
  const cell = (v: string) => (/[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v);
  return rows.map((r) => r.map(cell).join(",")).join("\r\n") + "\r\n";
}

export interface VehicleRow {
  gw: string;
  state: string | null;
  stateAt: string | null;
  position: { lat: number; lon: number; speedMps?: number; courseDeg?: number; t: string } | null;
  /** The case of its newest event that is not closed. */
  caseId: string | null;
}

/** Each gateway's last position, its state (status) and its open case. */
export async function vehicles(pool: pg.Pool): Promise<VehicleRow[]> {
  const positions = await pool.query<{ gw: string; t: Date; body: unknown }>(
    `SELECT DISTINCT ON (gw) gw, t, envelope->'body' AS body FROM events WHERE kind = 'position' ORDER BY gw, t DESC`,
  );
  const status = await pool.query<{ gw: string; state: string; received_at: Date }>(
    "SELECT gw, state, received_at FROM gateway_status",
  );
  const cases = await pool.query<{ gw: string; case_id: string; closed: boolean }>(
    `SELECT DISTINCT ON (gw) gw, case_id,
            EXISTS (SELECT 1 FROM events c WHERE c.gw = e.gw AND c.case_id = e.case_id AND c.kind = 'case'
                    AND c.envelope->'body'->>'action' = 'closed') AS closed
     FROM events e WHERE case_id IS NOT NULL ORDER BY gw, seq DESC`,
  );
  const byGw = new Map<string, VehicleRow>();
  const row = (gw: string) => {
    let v = byGw.get(gw);
    if (!v) byGw.set(gw, (v = { gw, state: null, stateAt: null, position: null, caseId: null }));
    return v;
  };
  for (const p of positions.rows) {
    const b = positionBodySchema.safeParse(p.body);
    if (!b.success) continue;
    row(p.gw).position = {
      lat: b.data.lat,
      lon: b.data.lon,
      ...(b.data.speedMps !== undefined ? { speedMps: b.data.speedMps } : {}),
      ...(b.data.courseDeg !== undefined ? { courseDeg: b.data.courseDeg } : {}),
      t: p.t.toISOString(),
    };
  }
  for (const s of status.rows) Object.assign(row(s.gw), { state: s.state, stateAt: s.received_at.toISOString() });
  for (const c of cases.rows) if (!c.closed) row(c.gw).caseId = c.case_id;
  return [...byGw.values()].sort((a, b) => a.gw.localeCompare(b.gw));
}
