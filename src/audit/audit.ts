// The audit trail (issue 6): every login, user change, pairing change, case action and config
// reload, append-only in the local database and hash-chained, so that a record changed or deleted
// behind the daemon's back is found by verify(). Each row's hash covers the previous row's hash and
// the row itself; a purge past the retention keeps the hash and seq of the last purged row as the
// anchor the remaining chain starts from, and records itself in the chain.
import { createHash } from "node:crypto";
import type { TimeEstimate } from "../time/clock.ts";
import type { LocalDb } from "../local-db.ts";
import { placeUnsynced, unsyncedMark, type UnsyncedMark } from "../time/placement.ts";
import type { FirstSync } from "../time/service.ts";

/** One record of the audit trail: who did what to what, from where, and how it ended. */
export interface AuditEntry {
  /** Username, "center" for commands from the county center, "system" for the daemon itself. */
  actor: string;
  /** Client address for web requests. */
  ip?: string;
  /** Dotted verb: "login", "device.pair", "case.open", "config.reload", ... */
  action: string;
  /** What it acted on: a device id, a case id, a username. Never patient data. */
  target?: string;
  /** Extra facts (never patient data). */
  detail?: Record<string, unknown>;
  result: "ok" | "denied" | "failed";
}

export interface Audit {
  /** Appends to the hash-chained trail (src/audit/audit.ts); synchronous, throws if it cannot be stored. */
  record(entry: AuditEntry): void;
  /**
   * For what anyone can repeat at will (refused requests, reads of patient data): records `entry`
   * at most once per `windowMs` for the same `key`; those held back are counted in the next one's
   * `detail.suppressed`. A flood cannot fill the disk, and the first of each kind is there.
   */
  recordBounded(key: string, entry: AuditEntry, windowMs?: number): void;
}

const GENESIS = "0".repeat(64);
/** Keys recordBounded remembers; beyond, expired ones are dropped, and while none has, records of new keys are dropped too. */
const MAX_BOUNDED_KEYS = 1000;

export interface AuditRow {
  seq: number;
  /** This row's link in the chain: what the center compares with the heads it was sent. */
  hash: string;
  at: string;
  actor: string;
  ip: string | null;
  action: string;
  target: string | null;
  detail: Record<string, unknown> | null;
  result: AuditEntry["result"];
  /**
   * Only for a record made before the gateway's clock was synchronized: `at` is then where the
   * first sync placed it (`placed`), or, where it could not (an earlier boot), the unsynchronized
   * reading (`placed: false`), not a time to rely on. `recordedAt` is what the chain holds.
   */
  time?: { unsynced: true; placed: boolean; recordedAt: string };
}

export interface StoredRow extends Omit<AuditRow, "detail" | "time"> {
  detail: string | null;
  prev: string;
  /** JSON of the record's unsynchronized mark (time/placement.ts), part of the chain; null once synchronized. */
  time: string | null;
  /** Where the first sync placed an unsynchronized record (derived, not chained: the `time.synced` record says how). */
  placed_at?: string | null;
}

export interface ChainReport {
  ok: boolean;
  /** Rows whose hash was checked. */
  checked: number;
  firstBad?: { seq: number; reason: string };
}

/** JSON with object keys sorted, so that the same facts always hash the same. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

/** A row's hash: over the previous row's hash and the row's fields, in order (exported for the tamper tests). */
export function rowHash(r: Omit<StoredRow, "hash">): string {
  const fields: unknown[] = [r.seq, r.at, r.actor, r.ip, r.action, r.target, r.detail, r.result];
  if (r.time !== null && r.time !== undefined) fields.push(r.time); // records from before this field hash as they did
  return createHash("sha256")
    .update(`${r.prev}\n${JSON.stringify(fields)}`)
    .digest("hex");
}

export class AuditLog implements Audit {
  #db: LocalDb;
  #now: () => TimeEstimate;
  /** The newest row this process wrote or saw: rows deleted from the end are found against it. */
  #head: { seq: number; hash: string };
  #onRecord: () => void;
  /** recordBounded's keys: when each was last recorded (monotonic ms) and how many were held back since. */
  #bounded = new Map<string, { lastMs: number; windowMs: number; held: number }>();

  /**
   * `now` is the gateway's synchronized clock (records made before it is synchronized carry their
   * mark and are placed by the first sync); `onRecord` is told after each record is stored (the
   * gateway sends the new head to the center).
   */
  constructor(db: LocalDb, now: () => TimeEstimate, onRecord: () => void = () => undefined) {
    this.#db = db;
    this.#now = now;
    this.#onRecord = onRecord;
    // The tables are local.db's (src/local-db.ts).
    const last = db.prepare("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").get() as
      { seq: number; hash: string } | undefined;
    this.#head = last ?? this.#anchor();
  }

  #anchor(): { seq: number; hash: string } {
    const a = this.#db.prepare("SELECT seq, hash FROM audit_anchor WHERE id = 1").get() as
      { seq: number; hash: string } | undefined;
    return a ?? { seq: 0, hash: GENESIS };
  }

  /** Appends one record; throws when it cannot be stored (the action it records should then fail too). */
  record(entry: AuditEntry): void {
    const now = this.#now();
    const mark = unsyncedMark(now);
    const row = {
      seq: this.#head.seq + 1,
      at: new Date(now.ms).toISOString(),
      actor: entry.actor,
      ip: entry.ip ?? null,
      action: entry.action,
      target: entry.target ?? null,
      detail: entry.detail === undefined ? null : canonical(entry.detail),
      result: entry.result,
      prev: this.#head.hash,
      time: mark ? canonical(mark) : null,
    };
    const hash = rowHash(row);
    this.#db
      .prepare(
        "INSERT INTO audit (seq, at, actor, ip, action, target, detail, result, prev, hash, time) VALUES (@seq, @at, @actor, @ip, @action, @target, @detail, @result, @prev, @hash, @time)",
      )
      .run({ ...row, hash });
    this.#head = { seq: row.seq, hash };
    this.#onRecord();
  }

  recordBounded(key: string, entry: AuditEntry, windowMs = 60_000): void {
    const now = performance.now();
    const b = this.#bounded.get(key);
    if (b && now - b.lastMs < b.windowMs) {
      b.held++;
      return;
    }
    if (!b && this.#bounded.size >= MAX_BOUNDED_KEYS) {
      for (const [k, v] of this.#bounded) if (now - v.lastMs >= v.windowMs && v.held === 0) this.#bounded.delete(k);
      if (this.#bounded.size >= MAX_BOUNDED_KEYS) return;
    }
    this.record(b?.held ? { ...entry, detail: { ...entry.detail, suppressed: b.held } } : entry);
    this.#bounded.set(key, { lastMs: now, windowMs, held: 0 });
  }

  /**
   * The newest row's seq and hash. Sent to the center with the gateway's status: a chain rewritten
   * whole on the box (every hash recomputed, so that it verifies here) no longer holds, at that seq,
   * the hash the center was sent.
   */
  get head(): { seq: number; hash: string } {
    return { ...this.#head };
  }

  /**
   * The first sync: places the records made before it (time/placement.ts), and records how (a
   * `time.synced` record in the chain, from which every placement can be checked). Records of an
   * earlier boot stay unplaced, and say so.
   */
  placeUnsynced(sync: FirstSync): void {
    const rows = this.#db
      .prepare("SELECT seq, at, time FROM audit WHERE time IS NOT NULL AND placed_at IS NULL")
      .all() as { seq: number; at: string; time: string }[];
    if (rows.length === 0) return;
    const update = this.#db.prepare("UPDATE audit SET placed_at = ? WHERE seq = ?");
    let placed = 0;
    this.#db.transaction(() => {
      for (const r of rows) {
        const ms = placeUnsynced(Date.parse(r.at), JSON.parse(r.time) as UnsyncedMark, sync);
        if (ms === undefined) continue;
        update.run(new Date(ms).toISOString(), r.seq);
        placed++;
      }
    })();
    this.record({
      actor: "system",
      action: "time.synced",
      detail: {
        src: sync.src,
        offsetMs: Math.round(sync.offsetMs),
        correctionMs: Math.round(sync.correctionMs),
        boot: sync.boot,
        uncMs: Math.ceil(sync.uncMs),
        placed,
        unplaced: rows.length - placed,
      },
      result: "ok",
    });
  }

  /** Newest first: up to `limit` rows with seq below `before`. */
  list(options: { before?: number; limit: number }): AuditRow[] {
    const rows = this.#db
      .prepare(
        "SELECT seq, hash, at, actor, ip, action, target, detail, result, time, placed_at FROM audit WHERE seq < ? ORDER BY seq DESC LIMIT ?",
      )
      .all(options.before ?? Number.MAX_SAFE_INTEGER, options.limit) as Omit<StoredRow, "prev">[];
    return rows.map(({ time, placed_at: placedAt, ...r }) => ({
      ...r,
      at: placedAt ?? r.at,
      detail: r.detail === null ? null : (JSON.parse(r.detail) as Record<string, unknown>),
      time:
        time === null
          ? undefined
          : { unsynced: true, placed: placedAt !== null && placedAt !== undefined, recordedAt: r.at },
    }));
  }

  /** Walks the whole chain from its anchor; reports the first row that is not as it was written. */
  verify(): ChainReport {
    const anchor = this.#anchor();
    let expected = anchor;
    let checked = 0;
    // An anchor is where a purge left the chain, and that purge's own record, further on, names it
    // (seq and hash): an anchor no purge record names was moved by hand past deleted oldest rows.
    let anchorNamed = anchor.seq === 0;
    for (const r of this.#db.prepare("SELECT * FROM audit ORDER BY seq").iterate() as IterableIterator<StoredRow>) {
      if (r.seq !== expected.seq + 1)
        return {
          ok: false,
          checked,
          firstBad: { seq: expected.seq + 1, reason: `missing: rows ${expected.seq + 1}..${r.seq - 1} were deleted` },
        };
      if (rowHash(r) !== r.hash)
        return { ok: false, checked, firstBad: { seq: r.seq, reason: "edited: its content does not match its hash" } };
      if (r.prev !== expected.hash)
        return {
          ok: false,
          checked,
          firstBad: { seq: r.seq, reason: "broken link: it does not follow the hash of the row before" },
        };
      if (!anchorNamed && r.action === "audit.purge" && r.detail !== null) {
        const d = JSON.parse(r.detail) as { throughSeq?: unknown; throughHash?: unknown };
        anchorNamed = d.throughSeq === anchor.seq && (d.throughHash === undefined || d.throughHash === anchor.hash);
      }
      checked++;
      expected = { seq: r.seq, hash: r.hash };
    }
    if (!anchorNamed)
      return {
        ok: false,
        checked,
        firstBad: {
          seq: anchor.seq,
          reason: `missing: the chain starts after row ${anchor.seq}, but no purge record says so: the oldest rows were deleted`,
        },
      };
    if (expected.seq < this.#head.seq)
      return {
        ok: false,
        checked,
        firstBad: { seq: expected.seq + 1, reason: `missing: the newest rows up to ${this.#head.seq} were deleted` },
      };
    return { ok: true, checked };
  }

  /**
   * Deletes the rows older than `beforeMs`, keeping the last deleted row's seq and hash as the
   * anchor. Refuses while the chain does not verify: a purge must not erase the evidence.
   */
  purge(beforeMs: number): { purged: number; refused?: ChainReport } {
    const report = this.verify();
    if (!report.ok) return { purged: 0, refused: report };
    const cutoff = new Date(beforeMs).toISOString();
    // Only the oldest run of rows before the cutoff: a row stamped by a wrong clock (a box booting
    // in 1970) after newer ones must not take them with it.
    const keep = this.#db.prepare("SELECT MIN(seq) AS seq FROM audit WHERE at >= ?").get(cutoff) as {
      seq: number | null;
    };
    const last = this.#db
      .prepare("SELECT seq, hash FROM audit WHERE seq < ? ORDER BY seq DESC LIMIT 1")
      .get(keep.seq ?? Number.MAX_SAFE_INTEGER) as { seq: number; hash: string } | undefined;
    if (!last) return { purged: 0 };
    // The anchor and the purge's record together: an anchor no record names is a tampered chain.
    const purged = this.#db.transaction(() => {
      const n = this.#db.prepare("DELETE FROM audit WHERE seq <= ?").run(last.seq).changes;
      this.#db
        .prepare(
          "INSERT INTO audit_anchor (id, seq, hash, at) VALUES (1, @seq, @hash, @at) ON CONFLICT (id) DO UPDATE SET seq = @seq, hash = @hash, at = @at",
        )
        .run({ ...last, at: new Date(this.#now().ms).toISOString() });
      this.record({
        actor: "system",
        action: "audit.purge",
        detail: { throughSeq: last.seq, throughHash: last.hash, rows: n, before: cutoff },
        result: "ok",
      });
      return n;
    })();
    return { purged };
  }
}
