// The outbox: an offline-first SQLite store-and-forward queue (DESIGN.md §5).
//
// An event is *accepted* when the transaction holding it commits: WAL with synchronous=FULL, so a
// commit survives power loss. Appends arriving while a commit is under way are grouped into the next
// transaction (group commit), so many events share one fsync. Every acknowledgement to a device waits
// for `append()` to resolve.
import { EventEmitter } from "node:events";
import { fork, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import Database from "better-sqlite3";
import { StoreRefusedError } from "../errors.ts";
import { NEVER_EVICTED, PRIORITY, type DeviceRef, type Envelope } from "../events/model.ts";
import { ownerOnlyDatabase } from "../private-file.ts";
import { CHECK_ARG, type CheckVerdict } from "./check.ts";
import { OUTBOX_SCHEMA } from "./schema.ts";
import { migrate, SchemaTooNewError } from "../migrations.ts";

/**
 * An event ready to store. Its `seq` is a placeholder (0): the store assigns the real one in the
 * transaction that commits it, in place, so the envelope is serialized once with its fields in order.
 */
export type StampedEvent = Envelope;

export interface OutboxOptions {
  path: string;
  /** Upper bound on stored event bytes (payloads plus a per-row overhead estimate). */
  quotaBytes: number;
  /** Most events in one group commit. */
  batchMax: number;
  /** Unix ms, for delivered/created stamps. */
  nowMs: () => number;
  /** Size of the chunks an original file is sent in. */
  blobChunkBytes?: number;
  /** The gap record (a `gap` event) telling the center what the quota thinned or dropped of a device's kind of data. */
  gapEvent?: (gap: Gap) => StampedEvent;
  /** The Node that runs the integrity check (default this process's own). */
  checkExecPath?: string;
}

/** What the quota took of one device's kind of data in one commit: the body of a gap record, and its device. */
export interface Gap {
  dev: DeviceRef;
  /** The kind of the events removed. */
  kind: string;
  /** `thinned`: of each minute the first event was kept; `dropped`: all of them went. */
  action: "thinned" | "dropped";
  /** Receive times (Unix ms) of the first and last events removed. */
  fromMs: number;
  toMs: number;
  events: number;
}

/** Per commit: gaps by action, device and kind. */
type Removal = Map<string, Gap>;
interface RemovedRow {
  seq: number;
  kind: string;
  size: number;
  dev: string | null;
  created_ms: number;
}

/** Adds a removed row to its gap (made on the first row of its device and kind, with the device as its event named it). */
function noteRemoval(removal: Removal, r: RemovedRow, action: Gap["action"], devJson: () => string | null): void {
  const key = `${action}\0${r.dev ?? ""}\0${r.kind}`;
  const gap = removal.get(key);
  if (gap) {
    gap.fromMs = Math.min(gap.fromMs, r.created_ms);
    gap.toMs = Math.max(gap.toMs, r.created_ms);
    gap.events++;
    return;
  }
  const json = devJson();
  const dev = json
    ? (JSON.parse(json) as DeviceRef)
    : { id: r.dev ?? "unknown", driver: "unknown", kind: "gateway" as const };
  removal.set(key, { dev, kind: r.kind, action, fromMs: r.created_ms, toMs: r.created_ms, events: 1 });
}

/** Only events older than this are thinned: the last minutes stay whole (they are dropped, oldest first, if need be). */
const THIN_AFTER_MS = 10 * 60_000;
/** Kinds thinned before anything undelivered is dropped: a minute's first reading stands for the minute. */
const THINNED_KINDS: ReadonlySet<string> = new Set(["waveform", "vitals"]);
/**
 * Eviction frees this share of the quota (at least EVICTION_SLACK_MIN, at most a quarter of it) beyond
 * what the commit needs, so that it runs in bursts: each burst's few gap records (which are never
 * evicted) stay a small fraction of what it freed, and commits in between evict nothing.
 */
const EVICTION_SLACK = 0.02;
const EVICTION_SLACK_MIN = 256 * 1024;

export interface PendingRow {
  seq: number;
  /** The event's id; a blob chunk carries the id of the event whose file it is part of. */
  id: string;
  priority: number;
  /** The event's kind, or "blob" for a chunk of an event's original file. */
  kind: string;
  /** The envelope's JSON, or a blob chunk's bytes. */
  payload: string | Buffer;
  /** For blob chunks: the topic below the gateway's, `blob/{eventId}/{part}/{parts}`. */
  topic: string | null;
  createdMs: number;
}

/** What travels with a message's events beyond the envelopes. */
export interface AppendOptions {
  /**
   * Stored once: when a message with this key was committed before (a dropped file picked up again
   * after a crash between commit and move, a monitor's resend after a lost ACK), nothing is stored
   * and append resolves to [].
   */
  dedupKey?: string;
  /** Only a commit under `dedupKey` less than this long ago counts (a device's resend); default: any. */
  dedupWindowMs?: number;
  /**
   * Original files of some of the events, sent after them as chunks that resume after an outage:
   * cut here into `blobChunkBytes`, or already cut (and encoded) by the caller as `chunks`.
   */
  blobs?: { eventId: string; bytes: Uint8Array; chunks?: Buffer[] }[];
}

export interface OutboxStats {
  /** Undelivered events per priority 0..3: not sent yet, or sent and waiting for the center's receipt. */
  pending: [number, number, number, number];
  /** Of those, sent (the broker acknowledged them) and waiting for the center's receipt, per priority. */
  awaitingReceipt: [number, number, number, number];
  /** Creation time (Unix ms) of the oldest undelivered event, if any. */
  oldestPendingMs: number | null;
  rows: number;
  bytes: number;
  quotaBytes: number;
  /** Undelivered events dropped to stay under the quota since the database was created, by kind. */
  evicted: Record<string, number>;
  /** Undelivered events thinned out (a minute's first kept) to stay under the quota, by kind. */
  thinned: Record<string, number>;
  lastSeq: number;
}

/** How far one event and its original file's chunks have got: acknowledged by the broker (or received). */
export interface Delivery {
  /** The event itself. */
  event: boolean;
  /** Chunks of its file, and how many of them. */
  parts: number;
  sent: number;
}

export interface OpenReport {
  /** Where a corrupt database was moved to before a fresh one was started. */
  setAside?: string;
  reason?: string;
  /**
   * The disk was full: the outbox opened to hand out what it holds, but takes nothing new until
   * there is room (its appends are refused with VG_STORE_DISK_FULL, delivery marks kept in memory).
   */
  diskFull?: boolean;
}

/** SQLite's or the file system's word for a full disk (or a used-up disk quota). */
export function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "SQLITE_FULL" || code === "ENOSPC" || code === "EDQUOT";
}

/** Estimated bytes per row beyond its payload: row header, indexes, page slack. */
const ROW_OVERHEAD = 96;

interface Waiting {
  events: StampedEvent[];
  options: AppendOptions;
  resolve: (stored: Envelope[]) => void;
  reject: (err: Error) => void;
}

/**
 * Opens the store's pragmas the same way for the outbox and for the benchmark's raw baseline, so
 * the two are measured with the same durability.
 */
export function applyDurablePragmas(db: Database.Database): void {
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("foreign_keys = ON");
  db.pragma("busy_timeout = 5000");
  // Checkpoints are scheduled (and also run when the WAL grows past this many pages).
  db.pragma("wal_autocheckpoint = 4000");
  // A 1 MB page cache. better-sqlite3 builds SQLite with 16 MB per connection, which the integrity
  // check at open fills: memory a small box keeps for nothing, as appends touch only the tail of the
  // tables and the kernel caches the file anyway (decision 0008; ingest measured unchanged).
  db.pragma("cache_size = -1000");
}

/** What the background integrity check found: "ok", or what is wrong, and how long it took. */
export interface CheckResult {
  ok: boolean;
  /**
   * With ok false: the check could not run (its process did not start or died, SQLite could not
   * read the file for another cause than damage): nothing is known to be wrong, the file is kept.
   */
  unchecked?: true;
  reason?: string;
  ms: number;
}

/**
 * "full": a write failed because the disk is full (what failed: an append, delivery marks, a
 * checkpoint, the open). "writable": a write succeeded again after that.
 */
export class Outbox extends EventEmitter<{
  appended: [highestPriority: number];
  evicted: [Record<string, number>];
  refused: [StoreRefusedError];
  checked: [CheckResult];
  full: [what: string];
  writable: [];
  thinned: [Record<string, number>];
}> {
  readonly options: OutboxOptions;
  #db: Database.Database | null = null;
  #queue: Waiting[] = [];
  #flushScheduled = false;
  #nextSeq = 1;
  #reserved = 0;
  #bytes = 0;
  #rows = 0;
  #stmt!: ReturnType<typeof prepare>;
  #checker: ChildProcess | null = null;
  /** Per priority: how far thinning went (all undelivered rows up to `seq` are thinned), and each stream's last minute kept. */
  #thinned: Record<number, { seq: number; minute: Map<string, number> }> = {
    2: { seq: 0, minute: new Map() },
    3: { seq: 0, minute: new Map() },
  };
  /** A write failed for want of disk space, and none has succeeded since. */
  #full = false;
  /** Delivery marks the disk had no room for: written with the next write that succeeds; meanwhile not handed out again. */
  #held = { delivered: new Set<number>(), sent: new Set<number>(), received: new Set<string>() };

  constructor(options: OutboxOptions) {
    super();
    this.options = options;
  }

  /**
   * Opens (or creates) the database, ready for writes, and sets aside a file SQLite cannot open as
   * one. The full integrity check reads the whole file and is left to `checkIntegrity()`, run in
   * the background: start-up does not wait for it. "readonly" opens an existing outbox only to look
   * at it (`vitalgate queue stats` beside a running daemon): no checks, no set-aside, nothing written.
   */
  open(mode: "readwrite" | "readonly" = "readwrite"): OpenReport {
    let report: OpenReport = {};
    if (mode === "readonly") {
      this.#db = new Database(this.options.path, { readonly: true, fileMustExist: true });
    } else {
      try {
        this.#db = this.#openWritable();
      } catch (err) {
        if (isDiskFull(err)) return this.#openFull();
        // A file from a newer release is not corrupt: it is refused as it is (the gateway does not start).
        if (err instanceof SchemaTooNewError) throw err;
        const reason = err instanceof Error ? err.message : String(err);
        const setAside = `${this.options.path}.corrupt-${this.options.nowMs()}`;
        for (const suffix of ["", "-wal", "-shm"]) {
          if (existsSync(this.options.path + suffix)) renameSync(this.options.path + suffix, setAside + suffix);
        }
        report = { setAside, reason };
        this.#db = this.#openWritable();
      }
    }
    const db = this.#db;
    this.#stmt = prepare(db);
    let seq = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'queue'").pluck().get() as number | undefined;
    if (mode === "readwrite") {
      // Continue above anything the gateway may have numbered before: the reservation file (which
      // also covers an older copy of the database restored from a backup), what a set-aside file
      // still shows, and, for a new database, the clock's Unix milliseconds. seq is never reused.
      const floor = Math.max(
        readReservation(this.#reservationPath),
        report.setAside ? lastSeqIn(report.setAside) : 0,
        seq === undefined ? Math.floor(this.options.nowMs()) : 0,
      );
      if (seq === undefined) db.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES ('queue', ?)").run(floor);
      seq = Math.max(seq ?? 0, floor);
    }
    this.#nextSeq = (seq ?? 0) + 1;
    if (mode === "readonly") this.#measure(db);
    else {
      try {
        this.#reserve();
      } catch (err) {
        if (!isDiskFull(err)) throw err;
        // No number is handed out before a reservation covers it: the first commit writes it.
        this.#reserved = 0;
        this.#full = true;
        report.diskFull = true;
      }
    }
    return report;
  }

  /** Beside the database: the sequence number below which every number may have been used. */
  get #reservationPath(): string {
    return `${this.options.path}.seq`;
  }

  /**
   * Writes a reservation a block of numbers ahead, so that if the database is ever lost the next
   * one starts above every number this one handed out. Written at open and once per block.
   */
  #reserve(): void {
    const reserved = this.#nextSeq + SEQ_RESERVATION;
    const tmp = `${this.#reservationPath}.tmp`;
    writeFileSync(tmp, `${reserved}\n`, { mode: 0o600 });
    const fd = openSync(tmp, "r");
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, this.#reservationPath);
    this.#reserved = reserved;
  }

  #openWritable(): Database.Database {
    ownerOnlyDatabase(this.options.path);
    const db = new Database(this.options.path);
    try {
      applyDurablePragmas(db);
      migrate(db, this.options.path, OUTBOX_SCHEMA);
      // Reads the whole queue table (not the payloads): a file whose queue cannot be read is set aside now.
      this.#measure(db);
      return db;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /**
   * The disk is too full to bring the file up to date (a schema change, a new database): open it as
   * it is, to hand out what it holds. Appends are refused until a restart finds room.
   */
  #openFull(): OpenReport {
    const db = new Database(this.options.path, { fileMustExist: true });
    db.pragma("busy_timeout = 5000");
    db.pragma("cache_size = -1000");
    this.#db = db;
    this.#stmt = prepare(db);
    const seq = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'queue'").pluck().get() as number | undefined;
    this.#nextSeq = Math.max(seq ?? 0, readReservation(this.#reservationPath)) + 1;
    this.#reserved = 0;
    this.#full = true;
    this.#measure(db);
    return { diskFull: true };
  }

  /** The rows and bytes the quota counts. */
  #measure(db: Database.Database): void {
    const totals = db.prepare("SELECT count(*) AS n, coalesce(sum(size), 0) AS b FROM queue").get() as {
      n: number;
      b: number;
    };
    this.#rows = totals.n;
    this.#bytes = totals.b + totals.n * ROW_OVERHEAD;
  }

  get isOpen(): boolean {
    return this.#db !== null;
  }

  /**
   * SQLite's quick_check of the whole file, in a child process (src/outbox/check.ts) with its own read-only connection:
   * the store takes and hands out events meanwhile. Resolves with what it found (also emitted as
   * "checked"); a corrupt file is then the caller's to set aside (`setAside`).
   */
  checkIntegrity(): Promise<CheckResult> {
    const started = performance.now();
    return new Promise((resolve) => {
      // The daemon's own Node flags and environment (its compile cache) carry over to the child.
      const child = fork(new URL("./check.ts", import.meta.url), [CHECK_ARG, this.options.path], {
        stdio: ["ignore", "ignore", "inherit", "ipc"],
        ...(this.options.checkExecPath ? { execPath: this.options.checkExecPath } : {}),
      });
      this.#checker = child;
      const done = (verdict: CheckVerdict) => {
        if (this.#checker !== child) return;
        this.#checker = null;
        const ms = performance.now() - started;
        const result: CheckResult =
          verdict.found === "ok"
            ? { ok: true, ms }
            : verdict.found === "corrupt"
              ? { ok: false, reason: `integrity check failed: ${verdict.detail}`, ms }
              : { ok: false, unchecked: true, reason: `integrity check could not run: ${verdict.detail}`, ms };
        this.emit("checked", result);
        resolve(result);
      };
      child.once("message", (m) => done(m as CheckVerdict));
      child.once("error", (err) => done({ found: "unchecked", detail: err.message }));
      child.once("exit", (code, signal) =>
        done({ found: "unchecked", detail: `the check ended without an answer (${signal ?? `exit ${code}`})` }),
      );
    });
  }

  /**
   * Moves a database found corrupt while running aside (never deleting it) and goes on in a fresh
   * one, numbering on from where it was. Events queued for the next commit go into the fresh one.
   */
  setAside(reason: string): OpenReport {
    const old = this.#db;
    if (!old) return {};
    old.close();
    const setAside = `${this.options.path}.corrupt-${this.options.nowMs()}`;
    for (const suffix of ["", "-wal", "-shm"]) {
      if (existsSync(this.options.path + suffix)) renameSync(this.options.path + suffix, setAside + suffix);
    }
    const db = (this.#db = this.#openWritable());
    this.#stmt = prepare(db);
    db.prepare("INSERT INTO sqlite_sequence (name, seq) VALUES ('queue', ?)").run(this.#nextSeq - 1);
    return { setAside, reason };
  }

  /**
   * Stores the events of one device message atomically and resolves once they are durable, with
   * their sequence numbers. Rejects with StoreRefusedError when they cannot be accepted (quota
   * reached with nothing evictable, disk full): the device must then get its negative ack.
   */
  append(events: StampedEvent[], options: AppendOptions = {}): Promise<Envelope[]> {
    if (!this.#db) return Promise.reject(new StoreRefusedError("VG_STORE_CLOSED", "the store is not open"));
    return new Promise((resolve, reject) => {
      this.#queue.push({ events, options, resolve, reject });
      if (this.#queue.length >= this.options.batchMax) this.#flush();
      else if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#flushScheduled = false;
    while (this.#queue.length > 0 && this.#db) {
      let take = 0;
      let count = 0;
      while (
        take < this.#queue.length &&
        (take === 0 || count + this.#queue[take]!.events.length <= this.options.batchMax)
      ) {
        count += this.#queue[take]!.events.length;
        take++;
      }
      this.#commit(this.#queue.splice(0, take));
    }
  }

  #commit(batch: Waiting[]): void {
    const db = this.#db!;
    const now = this.options.nowMs();
    const results: (Envelope[] | StoreRefusedError)[] = [];
    const removal: Removal = new Map();
    const startSeq = this.#nextSeq;
    const startBytes = this.#bytes;
    const startRows = this.#rows;
    /** Column values of the rows to insert: QUEUE_COLUMNS per queue row, seq and bytes per payload. */
    const queued: unknown[] = [];
    const payloads: unknown[] = [];
    const gapEvents: Envelope[] = [];
    try {
      db.transaction(() => {
        if (this.#full) this.#writeHeld();
        for (const w of batch) {
          if (w.options.dedupKey !== undefined && this.#seen(w.options.dedupKey, w.options.dedupWindowMs, now)) {
            results.push([]);
            continue;
          }
          // The message's rows go straight into the column lists (taken back if the quota refuses it).
          const queuedBefore = queued.length;
          const payloadsBefore = payloads.length;
          const events = w.events;
          let size = 0;
          for (let i = 0; i < events.length; i++) {
            const e = events[i]!;
            e.seq = this.#nextSeq + i;
            const payload = JSON.stringify(e);
            const bytes = Buffer.byteLength(payload);
            size += bytes + ROW_OVERHEAD;
            queued.push(
              e.seq,
              e.id,
              PRIORITY[e.kind],
              e.kind,
              NEVER_EVICTED.has(e.kind) ? 0 : 1,
              bytes,
              null,
              now,
              e.dev.id,
            );
            payloads.push(e.seq, payload);
          }
          const chunks = this.#chunks(events, w.options.blobs);
          for (const c of chunks) size += c.bytes.length + ROW_OVERHEAD;
          if (
            this.#bytes + size > this.options.quotaBytes &&
            !this.#evict(this.#bytes + size - this.options.quotaBytes, removal, evictionFloor(events))
          ) {
            queued.length = queuedBefore;
            payloads.length = payloadsBefore;
            results.push(
              new StoreRefusedError(
                "VG_STORE_QUOTA",
                `store quota of ${this.options.quotaBytes} bytes reached and nothing left to evict`,
              ),
            );
            continue;
          }
          this.#nextSeq += events.length;
          for (const c of chunks) {
            queued.push(this.#nextSeq, c.eventId, c.priority, "blob", 0, c.bytes.length, c.topic, now, null);
            payloads.push(this.#nextSeq++, c.bytes);
          }
          if (w.options.dedupKey !== undefined)
            this.#stmt.intakeAdd.run(
              w.options.dedupKey,
              events[0]?.seq ?? this.#nextSeq - 1,
              w.options.dedupWindowMs === undefined ? null : now,
            );
          this.#bytes += size;
          this.#rows += events.length + chunks.length;
          results.push(events);
        }
        // What was thinned or dropped reaches the center as gap records, committed with the removal.
        for (const gap of removal.values()) {
          const e = this.options.gapEvent?.(gap);
          if (!e) continue;
          e.seq = this.#nextSeq++;
          const payload = JSON.stringify(e);
          const bytes = Buffer.byteLength(payload);
          queued.push(e.seq, e.id, PRIORITY[e.kind], e.kind, 0, bytes, null, now, gap.dev.id);
          payloads.push(e.seq, payload);
          this.#bytes += bytes + ROW_OVERHEAD;
          this.#rows += 1;
          gapEvents.push(e);
        }
        this.#insertRows(this.#stmt.insertQueueMany, this.#stmt.insertQueue, QUEUE_COLUMNS, queued);
        this.#insertRows(this.#stmt.insertPayloadMany, this.#stmt.insertPayload, 2, payloads);
        if (this.#nextSeq > this.#reserved) this.#reserve();
        for (const gap of removal.values())
          this.#stmt.count.run(`${gap.action === "dropped" ? "evicted" : "thinned"}.${gap.kind}`, gap.events);
      })();
    } catch (err) {
      this.#nextSeq = startSeq;
      this.#bytes = startBytes;
      this.#rows = startRows;
      if (isDiskFull(err)) this.#onFull("append");
      const refusal = isDiskFull(err)
        ? new StoreRefusedError("VG_STORE_DISK_FULL", "the disk is full: events cannot be stored", { cause: err })
        : new StoreRefusedError("VG_STORE_FAILED", `the store failed to commit: ${(err as Error).message}`, {
            cause: err,
          });
      this.emit("refused", refusal);
      for (const w of batch) w.reject(refusal);
      return;
    }
    this.#onWritten();
    if (removal.size > 0) {
      // Thinned or dropped rows may lie behind the cursors of a reader: nothing to do, a read skips them.
      const evicted: Record<string, number> = {};
      const thinned: Record<string, number> = {};
      for (const g of removal.values()) {
        const into = g.action === "dropped" ? evicted : thinned;
        into[g.kind] = (into[g.kind] ?? 0) + g.events;
      }
      if (Object.keys(evicted).length > 0) this.emit("evicted", evicted);
      if (Object.keys(thinned).length > 0) this.emit("thinned", thinned);
    }
    let highest = Infinity;
    batch.forEach((w, i) => {
      const r = results[i]!;
      if (r instanceof StoreRefusedError) {
        this.emit("refused", r);
        w.reject(r);
      } else {
        for (const e of r) highest = Math.min(highest, PRIORITY[e.kind]);
        w.resolve(r);
      }
    });
    for (const e of gapEvents) highest = Math.min(highest, PRIORITY[e.kind]);
    if (highest !== Infinity) this.emit("appended", highest);
  }

  /** Whether a message under `key` was committed (within `windowMs` before `now`, when given). */
  #seen(key: string, windowMs: number | undefined, now: number): boolean {
    const row = this.#stmt.intakeSeen.get(key) as { at_ms: number | null } | undefined;
    if (!row) return false;
    return windowMs === undefined || row.at_ms === null || row.at_ms > now - windowMs;
  }

  /** An original file cut into chunks, each its own row, sent right after its event. */
  #chunks(
    events: StampedEvent[],
    blobs: AppendOptions["blobs"],
  ): { eventId: string; priority: number; bytes: Buffer; topic: string }[] {
    if (!blobs?.length) return [];
    const size = this.options.blobChunkBytes ?? DEFAULT_BLOB_CHUNK_BYTES;
    return blobs.flatMap((blob) => {
      const event = events.find((e) => e.id === blob.eventId);
      if (!event) throw new Error(`a blob for event ${blob.eventId}, which is not in this message`);
      const cut =
        blob.chunks ??
        Array.from({ length: Math.max(1, Math.ceil(blob.bytes.length / size)) }, (_, i) =>
          Buffer.from(blob.bytes.subarray(i * size, (i + 1) * size)),
        );
      return cut.map((bytes, i) => ({
        eventId: blob.eventId,
        priority: PRIORITY[event.kind],
        bytes,
        topic: `blob/${blob.eventId}/${i + 1}/${cut.length}`,
      }));
    });
  }

  /** Inserts rows many to a statement: per-statement overhead dominates single-row inserts. */
  #insertRows(many: Database.Statement, one: Database.Statement, columns: number, values: unknown[]): void {
    const perStatement = columns * ROWS_PER_INSERT;
    let at = 0;
    for (; at + perStatement <= values.length; at += perStatement) many.run(values.slice(at, at + perStatement));
    for (; at < values.length; at += columns) one.run(values.slice(at, at + columns));
  }

  /**
   * Frees at least `need` bytes, and some slack beyond (so that eviction runs in bursts, not on every
   * commit): delivered events first (oldest first); then thins the oldest undelivered waveforms, then
   * vitals, to the first event of each minute of each device; then drops the oldest undelivered
   * evictable events, lowest priority (highest number) first. Never of a higher priority than
   * `floor`; ECGs, alarms, case events and gap records never. What it thins or drops of each device
   * and kind is added to `removal`, for the gap records. Returns whether `need` was freed.
   */
  #evict(need: number, removal: Removal, floor: number): boolean {
    const quota = this.options.quotaBytes;
    const target = need + Math.floor(Math.min(quota / 4, Math.max(quota * EVICTION_SLACK, EVICTION_SLACK_MIN)));
    let freed = 0;
    const take = (r: RemovedRow, action: "thinned" | "dropped" | undefined) => {
      if (action) noteRemoval(removal, r, action, () => this.#stmt.devOf.pluck().get(r.seq) as string | null);
      this.#stmt.remove.run(r.seq);
      this.#stmt.removePayload.run(r.seq);
      freed += r.size + ROW_OVERHEAD;
      this.#bytes -= r.size + ROW_OVERHEAD;
      this.#rows -= 1;
    };
    // Every delivered event goes before any undelivered one.
    for (
      let rows = this.#stmt.oldestDelivered.all(256) as RemovedRow[];
      freed < target && rows.length > 0;
      rows = this.#stmt.oldestDelivered.all(256) as RemovedRow[]
    ) {
      for (const r of rows) if (freed < target) take(r, undefined);
    }
    for (const priority of [3, 2]) {
      if (priority < floor || freed >= target) continue;
      freed += this.#thin(priority, target - freed, this.options.nowMs() - THIN_AFTER_MS, (r) => take(r, "thinned"));
    }
    for (const priority of [3, 2]) {
      if (priority < floor) continue;
      for (
        let rows = this.#stmt.oldestUndelivered.all(priority, 256) as RemovedRow[];
        freed < target && rows.length > 0;
        rows = this.#stmt.oldestUndelivered.all(priority, 256) as RemovedRow[]
      ) {
        for (const r of rows) if (freed < target) take(r, "dropped");
      }
    }
    return freed >= need;
  }

  /**
   * Thins undelivered events of `priority` received before `beforeMs`, from the oldest on: of each
   * device's vitals or waveforms, the first event of each minute (by receive time) is kept and the
   * others go, until `want` bytes are freed. Where it stopped is remembered: what lies before is
   * thinned already. Returns the bytes freed.
   */
  #thin(priority: number, want: number, beforeMs: number, remove: (r: RemovedRow) => void): number {
    let freed = 0;
    const at = this.#thinned[priority]!;
    for (let young = false; freed < want && !young;) {
      const rows = this.#stmt.undeliveredAfter.all(priority, at.seq, 512) as RemovedRow[];
      if (rows.length === 0) break;
      for (const r of rows) {
        if (freed >= want) break;
        if (r.created_ms >= beforeMs) {
          young = true;
          break;
        }
        at.seq = r.seq;
        if (!THINNED_KINDS.has(r.kind)) continue;
        const stream = `${r.dev ?? ""}\0${r.kind}`;
        const minute = Math.floor(r.created_ms / 60_000);
        if (at.minute.get(stream) !== minute) {
          at.minute.set(stream, minute); // the minute's first: kept
          continue;
        }
        remove(r);
        freed += r.size + ROW_OVERHEAD;
      }
    }
    return freed;
  }

  /**
   * Undelivered events in delivery order (priority, then sequence), skipping `skip` (in flight) and
   * those sent less than `resendBeforeMs` ago (waiting for an end-to-end receipt). With `after`,
   * only events that come after that position in delivery order: the forwarder's cursor, so a
   * full window of in-flight rows is not read again on every refill.
   */
  pending(
    limit: number,
    skip: { has(seq: number): boolean } = new Set(),
    resendBeforeMs = Number.MAX_SAFE_INTEGER,
    after: { priority: number; seq: number } = { priority: -1, seq: 0 },
  ): PendingRow[] {
    if (!this.#db) return [];
    const out: PendingRow[] = [];
    // Two seeks, the rest of the cursor's priority and then the priorities after it, rather than one
    // row-value comparison `(priority, seq) > (?, ?)`: SQLite seeks that on priority alone and would
    // step over every pending row of the cursor's priority before the cursor, on every refill. Pages
    // are read with `all()` and a LIMIT: half the CPU per row of stepping an `iterate()` (decision 0007).
    const s = this.#stmt;
    const resend = resendBeforeMs !== Number.MAX_SAFE_INTEGER;
    let at = after;
    while (out.length < limit) {
      const want = limit - out.length;
      let rows = (
        resend
          ? s.pendingOrResendWithin.all(at.priority, at.seq, resendBeforeMs, want)
          : s.pendingWithin.all(at.priority, at.seq, want)
      ) as PendingRow[];
      if (rows.length === 0)
        rows = (
          resend
            ? s.pendingOrResendBeyond.all(at.priority, resendBeforeMs, want)
            : s.pendingBeyond.all(at.priority, want)
        ) as PendingRow[];
      if (rows.length === 0) break;
      const held = this.#held;
      const holding = held.delivered.size + held.sent.size > 0;
      for (const row of rows)
        if (!skip.has(row.seq) && !(holding && (held.delivered.has(row.seq) || held.sent.has(row.seq)))) out.push(row);
      at = rows.at(-1)!;
    }
    return out;
  }

  /** Marks events delivered (the broker's PUBACK, or the center's receipt). */
  markDelivered(seqs: readonly number[]): void {
    const now = this.options.nowMs();
    this.#progress(
      () => this.#stmt.delivered.run(now, JSON.stringify(seqs)),
      seqs.length,
      () => {
        for (const s of seqs) this.#held.delivered.add(s);
      },
    );
  }

  /** Marks events sent but awaiting the center's end-to-end receipt. */
  markSent(seqs: readonly number[]): void {
    const now = this.options.nowMs();
    this.#progress(
      () => this.#stmt.sent.run(now, JSON.stringify(seqs)),
      seqs.length,
      () => {
        for (const s of seqs) this.#held.sent.add(s);
      },
    );
  }

  /** Marks events delivered by id (the center's receipts). Returns how many were found. */
  markReceived(ids: readonly string[]): number {
    const now = this.options.nowMs();
    let n = 0;
    this.#progress(
      () => {
        for (const id of ids) n += this.#stmt.received.run(now, id).changes;
      },
      ids.length,
      () => {
        for (const id of ids) this.#held.received.add(id);
        n = ids.length;
      },
    );
    return n;
  }

  /**
   * Records delivery progress without waiting for the disk: a mark lost to a power cut only means
   * the event is sent again, which at-least-once delivery allows (the center dedups by id). The
   * next durable commit or checkpoint carries the mark to disk with it.
   */
  #progress(write: () => void, count: number, hold: () => void): void {
    const db = this.#db;
    if (!db || count === 0) return;
    this.#stmt.syncNormal.run();
    try {
      db.transaction(() => {
        if (this.#full) this.#writeHeld();
        write();
      })();
      this.#onWritten();
    } catch (err) {
      // A full disk: the marks wait in memory (their events are not sent again meanwhile); a
      // restart before they are written sends those events again, which at-least-once allows.
      if (!isDiskFull(err)) throw err;
      hold();
      this.#onFull("marks");
    } finally {
      this.#stmt.syncFull.run();
    }
  }

  /** The delivery marks held for want of space, written in the transaction under way. */
  #writeHeld(): void {
    const now = this.options.nowMs();
    const held = this.#held;
    if (held.delivered.size > 0) this.#stmt.delivered.run(now, JSON.stringify([...held.delivered]));
    if (held.sent.size > 0) this.#stmt.sent.run(now, JSON.stringify([...held.sent]));
    for (const id of held.received) this.#stmt.received.run(now, id);
  }

  #onFull(what: string): void {
    this.#full = true;
    this.emit("full", what);
  }

  /** A write went through: held marks went with it (see #progress), the disk has room again. */
  #onWritten(): void {
    if (!this.#full) return;
    this.#full = false;
    this.#held = { delivered: new Set(), sent: new Set(), received: new Set() };
    this.emit("writable");
  }

  /** Whether the last write failed for want of disk space. */
  get diskFull(): boolean {
    return this.#full;
  }

  /**
   * While the disk is full: tries a small write (the held delivery marks, a counter), so that the
   * store learns the disk has room again without waiting for a device. Returns whether it could.
   */
  probe(): boolean {
    const db = this.#db;
    if (!db) return false;
    try {
      db.transaction(() => {
        this.#writeHeld();
        this.#stmt.count.run("probe", 1);
        if (this.#nextSeq > this.#reserved) this.#reserve();
      })();
      this.#onWritten();
      return true;
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      return false;
    }
  }

  /**
   * Makes delivered events in [fromSeq, toSeq], and those sent and waiting for the center's receipt,
   * pending again, so they are sent once more now (the center's `resend` command). Only events still
   * kept (within retention) can be. Returns how many.
   */
  requeue(fromSeq: number, toSeq: number): number {
    if (!this.#db) return 0;
    const n = this.#stmt.requeue.run(fromSeq, toSeq).changes;
    if (n > 0) {
      const highest = this.#stmt.highestPriorityIn.pluck().get(fromSeq, toSeq) as number;
      this.emit("appended", highest);
    }
    return n;
  }

  /**
   * Rewrites the undelivered events that were stamped before the gateway's time was synchronized
   * (`time.unsynced` and not yet `restamped`), from `fromSeq` on and, with `boot`, any earlier ones
   * stamped in that boot (`time.boot`), through `restamp`, in one transaction. Events still queued
   * for the next group commit are committed first, so none is missed. Returns how many were
   * rewritten. (The time service calls this on its first sync; src/time/.)
   */
  restampUnsynced(fromSeq: number, restamp: (event: Envelope) => void, boot?: string): number {
    if (!this.#db) return 0;
    this.#flush();
    const db = this.#db;
    const rows = db
      .prepare(
        "SELECT seq, payload, size FROM events WHERE (seq >= ? OR json_extract(payload, '$.time.boot') = ?) AND delivered_ms IS NULL AND kind <> 'blob' AND json_extract(payload, '$.time.unsynced') = 1 AND json_extract(payload, '$.time.restamped') IS NULL",
      )
      .all(fromSeq, boot ?? null) as { seq: number; payload: string; size: number }[];
    this.#rewrite(rows, restamp);
    return rows.length;
  }

  /**
   * A case renamed (its id had been made from an unsynchronized date, src/cases/case-book.ts): the undelivered
   * events that carry the old id carry the new one. Returns how many.
   */
  renameCase(from: string, to: string): number {
    if (!this.#db) return 0;
    this.#flush();
    const rows = this.#db
      .prepare(
        "SELECT seq, payload, size FROM events WHERE delivered_ms IS NULL AND kind <> 'blob' AND json_extract(payload, '$.case') = ?",
      )
      .all(from) as { seq: number; payload: string; size: number }[];
    this.#rewrite(rows, (e) => (e.case = to));
    return rows.length;
  }

  /**
   * Rewrites stored events through `change`, in one transaction, keeping the byte count. Each
   * rewritten event's revision goes up by one: it may have left already as it was, under the same
   * id, and the center keeps the copy of the highest `rev` (docs/protocol.md "Revisions").
   */
  #rewrite(rows: { seq: number; payload: string; size: number }[], change: (event: Envelope) => void): void {
    const db = this.#db!;
    const update = db.prepare("UPDATE payloads SET payload = ? WHERE seq = ?");
    const resize = db.prepare("UPDATE queue SET size = ? WHERE seq = ?");
    let grown = 0;
    db.transaction(() => {
      for (const r of rows) {
        const event = JSON.parse(String(r.payload)) as Envelope;
        change(event);
        event.rev = (event.rev ?? 0) + 1;
        const payload = JSON.stringify(event);
        const size = Buffer.byteLength(payload);
        update.run(payload, r.seq);
        resize.run(size, r.seq);
        grown += size - r.size;
      }
    })();
    this.#bytes += grown;
  }

  /**
   * One event's delivery: whether the broker acknowledged it (sent, awaiting a receipt, or
   * delivered) and each chunk of its file. Undefined when the event is not stored (or purged).
   */
  deliveryOf(eventId: string): Delivery | undefined {
    if (!this.#db) return undefined;
    const rows = this.#db
      .prepare(
        "SELECT kind = 'blob' AS blob, (sent_ms IS NOT NULL OR delivered_ms IS NOT NULL) AS acked FROM queue WHERE id = ?",
      )
      .all(eventId) as { blob: number; acked: number }[];
    const own = rows.find((r) => !r.blob);
    if (!own) return undefined;
    const chunks = rows.filter((r) => r.blob);
    return { event: own.acked === 1, parts: chunks.length, sent: chunks.filter((r) => r.acked).length };
  }

  /** A stored event by id (its envelope), or undefined when not stored (or purged). */
  eventById(eventId: string): Envelope | undefined {
    if (!this.#db) return undefined;
    const payload = this.#db
      .prepare("SELECT payload FROM events WHERE id = ? AND kind <> 'blob'")
      .pluck()
      .get(eventId) as string | Buffer | undefined;
    return payload === undefined ? undefined : (JSON.parse(String(payload)) as Envelope);
  }

  /** Deletes delivered events older than the retention period. Returns how many. */
  purgeDelivered(olderThanMs: number): number {
    if (!this.#db) return 0;
    const db = this.#db;
    const gone = db
      .prepare(
        "SELECT count(*) AS n, coalesce(sum(size), 0) AS b FROM queue WHERE delivered_ms IS NOT NULL AND delivered_ms < ?",
      )
      .get(olderThanMs) as { n: number; b: number };
    db.transaction(() => {
      db.prepare(
        "DELETE FROM payloads WHERE seq IN (SELECT seq FROM queue WHERE delivered_ms IS NOT NULL AND delivered_ms < ?)",
      ).run(olderThanMs);
      db.prepare("DELETE FROM queue WHERE delivered_ms IS NOT NULL AND delivered_ms < ?").run(olderThanMs);
    })();
    this.#rows -= gone.n;
    this.#bytes -= gone.b + gone.n * ROW_OVERHEAD;
    return gone.n;
  }

  /**
   * Forgets the keys of device messages committed before `olderThanMs` (their resend window is
   * over); a dropped file's key is kept as long as the database. Returns how many.
   */
  forgetResends(olderThanMs: number): number {
    return this.#db?.prepare("DELETE FROM intake WHERE at_ms < ?").run(olderThanMs).changes ?? 0;
  }

  /** Folds the WAL back into the database file. */
  checkpoint(): void {
    try {
      this.#db?.pragma("wal_checkpoint(TRUNCATE)");
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      this.#onFull("checkpoint");
    }
  }

  stats(): OutboxStats {
    const pending: [number, number, number, number] = [0, 0, 0, 0];
    const awaitingReceipt: [number, number, number, number] = [0, 0, 0, 0];
    const evicted: Record<string, number> = {};
    const thinned: Record<string, number> = {};
    let oldestPendingMs: number | null = null;
    if (this.#db) {
      for (const r of this.#stmt.pendingByPriority.all() as {
        priority: number;
        n: number;
        sent: number;
        oldest: number;
      }[]) {
        pending[r.priority as 0 | 1 | 2 | 3] = r.n;
        awaitingReceipt[r.priority as 0 | 1 | 2 | 3] = r.sent;
        oldestPendingMs = oldestPendingMs === null ? r.oldest : Math.min(oldestPendingMs, r.oldest);
      }
      for (const r of this.#stmt.counters.all() as { name: string; value: number }[]) {
        if (r.name.startsWith("evicted.")) evicted[r.name.slice(8)] = r.value;
        else if (r.name.startsWith("thinned.")) thinned[r.name.slice(8)] = r.value;
      }
    }
    return {
      pending,
      awaitingReceipt,
      oldestPendingMs,
      rows: this.#rows,
      bytes: this.#bytes,
      quotaBytes: this.options.quotaBytes,
      evicted,
      thinned,
      lastSeq: this.#nextSeq - 1,
    };
  }

  /** Commits what is queued, then closes. */
  close(): void {
    this.#checker?.kill();
    this.#checker = null;
    if (!this.#db) return;
    this.#flush();
    this.#db.close();
    this.#db = null;
  }
}

/**
 * How far ahead of the next sequence number the reservation file is written: the file is written
 * (and fsynced) once per this many events, and a restart skips at most this many numbers. Its
 * fsync blocks the commit that crosses the block: at 10,000 it was one more fsync per 10 group
 * commits of 1,000, and on a busy disk fsyncs are most of ingest's time. The numbers skipped cost
 * nothing (seq starts from Unix milliseconds, ~1.8e12, and has up to 2^53).
 */
export const SEQ_RESERVATION = 100_000;

function readReservation(path: string): number {
  try {
    const n = Number(readFileSync(path, "utf8").trim());
    return Number.isSafeInteger(n) && n > 0 ? n : 0;
  } catch {
    return 0;
  }
}

/** The highest sequence number a set-aside outbox still shows, or 0 when it cannot be read. */
function lastSeqIn(path: string): number {
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      // Either layout: the counter is named after the table that holds the rows.
      const fromSequence =
        (db.prepare("SELECT max(seq) FROM sqlite_sequence WHERE name IN ('events', 'queue')").pluck().get() as
          number | null) ?? 0;
      const fromRows = (db.prepare("SELECT max(seq) FROM events").pluck().get() as number | null) ?? 0;
      return Math.max(fromSequence, fromRows);
    } finally {
      db.close();
    }
  } catch {
    return 0;
  }
}

/**
 * The highest priority a message may evict to make room for itself: waveforms only displace
 * waveforms, vitals displace waveforms and older vitals, and what is never evicted (ECG, alarms,
 * case events) may displace anything evictable.
 */
function evictionFloor(events: StampedEvent[]): number {
  if (events.some((e) => NEVER_EVICTED.has(e.kind))) return 0;
  return Math.min(...events.map((e) => PRIORITY[e.kind]));
}

const QUEUE_COLUMNS = 9;
const ROWS_PER_INSERT = 32;
const INSERT_QUEUE = "INSERT INTO queue (seq, id, priority, kind, evictable, size, topic, created_ms, dev) VALUES ";
const QUEUE_PLACEHOLDERS = "(?, ?, ?, ?, ?, ?, ?, ?, ?)";
const INSERT_PAYLOADS = "INSERT INTO payloads (seq, payload) VALUES ";
const PAYLOAD_PLACEHOLDERS = "(?, ?)";

const PENDING =
  "SELECT q.seq, q.id, q.priority, q.kind, p.payload, q.topic, q.created_ms AS createdMs FROM queue q INDEXED BY events_pending JOIN payloads p ON p.seq = q.seq WHERE q.delivered_ms IS NULL";

/** 64 KiB: small enough to resume cheaply on a 3G link, large enough to keep per-message overhead low. */
const DEFAULT_BLOB_CHUNK_BYTES = 64 * 1024;

function prepare(db: Database.Database) {
  return {
    insertQueue: db.prepare(INSERT_QUEUE + QUEUE_PLACEHOLDERS),
    insertQueueMany: db.prepare(INSERT_QUEUE + Array(ROWS_PER_INSERT).fill(QUEUE_PLACEHOLDERS).join(", ")),
    insertPayload: db.prepare(INSERT_PAYLOADS + PAYLOAD_PLACEHOLDERS),
    insertPayloadMany: db.prepare(INSERT_PAYLOADS + Array(ROWS_PER_INSERT).fill(PAYLOAD_PLACEHOLDERS).join(", ")),
    remove: db.prepare("DELETE FROM queue WHERE seq = ?"),
    removePayload: db.prepare("DELETE FROM payloads WHERE seq = ?"),
    oldestDelivered: db.prepare(
      "SELECT seq, kind, size, dev, created_ms FROM queue WHERE delivered_ms IS NOT NULL ORDER BY delivered_ms LIMIT ?",
    ),
    // One priority at a time: the pending index's own order, no sort of the whole queue per eviction.
    oldestUndelivered: db.prepare(
      "SELECT seq, kind, size, dev, created_ms FROM queue INDEXED BY events_pending WHERE delivered_ms IS NULL AND priority = ? AND evictable = 1 ORDER BY seq LIMIT ?",
    ),
    undeliveredAfter: db.prepare(
      "SELECT seq, kind, size, dev, created_ms FROM queue INDEXED BY events_pending WHERE delivered_ms IS NULL AND priority = ? AND seq > ? AND evictable = 1 ORDER BY seq LIMIT ?",
    ),
    devOf: db.prepare("SELECT json_extract(payload, '$.dev') FROM payloads WHERE seq = ?"),
    pendingWithin: db.prepare(`${PENDING} AND q.priority = ? AND q.seq > ? ORDER BY q.seq LIMIT ?`),
    pendingBeyond: db.prepare(`${PENDING} AND q.priority > ? ORDER BY q.priority, q.seq LIMIT ?`),
    pendingOrResendWithin: db.prepare(
      `${PENDING} AND q.priority = ? AND q.seq > ? AND (q.sent_ms IS NULL OR q.sent_ms < ?) ORDER BY q.seq LIMIT ?`,
    ),
    pendingOrResendBeyond: db.prepare(
      `${PENDING} AND q.priority > ? AND (q.sent_ms IS NULL OR q.sent_ms < ?) ORDER BY q.priority, q.seq LIMIT ?`,
    ),
    pendingByPriority: db.prepare(
      "SELECT priority, count(*) AS n, count(sent_ms) AS sent, min(created_ms) AS oldest FROM queue WHERE delivered_ms IS NULL GROUP BY priority",
    ),
    // One statement per batch of marks: the sequence numbers travel as a JSON array.
    delivered: db.prepare(
      "UPDATE queue SET delivered_ms = ? WHERE seq IN (SELECT value FROM json_each(?)) AND delivered_ms IS NULL",
    ),
    sent: db.prepare("UPDATE queue SET sent_ms = ? WHERE seq IN (SELECT value FROM json_each(?))"),
    // A receipt names an event; its file's chunks count as received only once they were sent (an
    // early receipt must not drop chunks still waiting).
    received: db.prepare(
      "UPDATE queue SET delivered_ms = ? WHERE id = ? AND delivered_ms IS NULL AND (kind <> 'blob' OR sent_ms IS NOT NULL)",
    ),
    // Delivered, or sent and waiting for the center's receipt: either goes out again now.
    requeue: db.prepare(
      "UPDATE queue SET delivered_ms = NULL, sent_ms = NULL WHERE seq BETWEEN ? AND ? AND (delivered_ms IS NOT NULL OR sent_ms IS NOT NULL)",
    ),
    highestPriorityIn: db.prepare("SELECT min(priority) FROM queue WHERE seq BETWEEN ? AND ?"),
    intakeSeen: db.prepare("SELECT at_ms FROM intake WHERE key = ?"),
    // A key seen before, outside its window, is taken again by the new message.
    intakeAdd: db.prepare("INSERT OR REPLACE INTO intake (key, seq, at_ms) VALUES (?, ?, ?)"),
    count: db.prepare(
      "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
    ),
    counters: db.prepare("SELECT name, value FROM counters"),
    // Prepared once: db.pragma() prepares its statement anew on every call, twice per batch of marks.
    syncNormal: db.prepare("PRAGMA synchronous = NORMAL"),
    syncFull: db.prepare("PRAGMA synchronous = FULL"),
  };
}
