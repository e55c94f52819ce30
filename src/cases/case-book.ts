// Cases: an ambulance mission or a clinic visit, and its time nodes (DESIGN.md §1, §3; issue 6).
//
// A case is opened by the crew on the web page or by the center's dispatch command, and every
// event a device of its location sends while it is open carries its id. The chest-pain-center
// quality audit reads the case's time nodes: the ones only a person knows (onset of symptoms,
// first medical contact) are tapped on the page; the others are taken from the data the moment it
// shows them (the first ECG's acquisition, its transfer to the broker, the center's receipt and
// reading, the GPS entering the hospital's geofence). Each change is also a `case` event to the
// center (docs/protocol.md), so the center holds the same record.
//
// The record lives in the box's local database (src/local-db.ts), written through on every change:
// a node shown on the page is on disk. What ingest asks on every message (which case is open for
// this device) is answered from memory.
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { Clock, TimeEstimate } from "../time/clock.ts";
import type { CasesConfig } from "../config/schema.ts";
import type { Envelope, EventDraft, EventTime } from "../events/model.ts";
import type { CaseBody } from "../events/schemas.ts";
import { VitalgateError } from "../errors.ts";
import type { CenterReport } from "../uplink/messages.ts";
import type { LocalDb } from "../local-db.ts";
import type { Delivery } from "../outbox/outbox.ts";
import { placeUnsynced, RUN_ID, unsyncedMark, type UnsyncedMark } from "../time/placement.ts";
import { NOT_BEFORE_MS, type FirstSync } from "../time/service.ts";
import { distanceM } from "../../protocols/geo.ts";

/** Nodes a person taps on the page (the data cannot show them). */
export const TAPPED_NODES = ["fmc", "onset"] as const;
export type TappedNode = (typeof TAPPED_NODES)[number];

/**
 * Every time node of a case: dispatch (the center's dispatch time, with `case-open`), onset and fmc
 * (first medical contact; tapped), firstEcg, ecgSent, ecgReceived, ecgRead (from the first ECG of
 * the case and its delivery, receipt and reading), arrival (the GPS inside a geofence).
 */
export type CaseNode = "dispatch" | TappedNode | "firstEcg" | "ecgSent" | "ecgReceived" | "ecgRead" | "arrival";

/** One ECG of a case and how far it got. */
interface CaseEcg {
  eventId: string;
  /** The device it came from (its id): a case may have ECGs from more than one cart. */
  device?: string;
  /** Its acquisition time: the event's `t`, the cart's time corrected for the cart's clock skew. */
  acquiredAt: string;
  /** Which clock that time is on (the event's `time.tFrom`): "recv" when the cart stated none it could be placed by. */
  tFrom?: EventTime["tFrom"];
  /** Chunks of its original file, and how many of them the broker has acknowledged. */
  parts: number;
  sent: number;
  /** When the event and every chunk had been acknowledged by the broker. */
  sentAt?: string;
  /** When the center's receipt for it came. */
  receivedAt?: string;
  report?: { reader: string; at: string; conclusion: string; text?: string };
}

/** Where a time of a case was taken before the clock was synchronized; with `event`, the event whose `t` it is. */
type CaseMark = UnsyncedMark & { event?: string };

/** The mark of a time taken from an event stamped before the clock was synchronized (its `t`). */
function eventMark(e: Envelope): CaseMark | undefined {
  return e.time.unsynced && !e.time.restamped
    ? { boot: e.time.boot, monoMs: e.time.monoMs, run: RUN_ID, event: e.id }
    : undefined;
}

/**
 * A case's times by key, for placing them: "openedAt", "closedAt", a node, and an ECG's
 * acquisition, transfer and receipt ("ecg:", "sent:", "received:" and its event id).
 */
function timeAt(c: CaseRecord, key: string): string | undefined {
  if (key === "openedAt") return c.openedAt;
  if (key === "closedAt") return c.closedAt;
  const [kind, id] = key.split(":") as [string, string | undefined];
  if (id === undefined) return c.nodes[kind as CaseNode];
  const ecg = c.ecgs.find((e) => e.eventId === id);
  return kind === "ecg" ? ecg?.acquiredAt : kind === "sent" ? ecg?.sentAt : ecg?.receivedAt;
}

function setTimeAt(c: CaseRecord, key: string, at: string): void {
  if (key === "openedAt") c.openedAt = at;
  else if (key === "closedAt") c.closedAt = at;
  else {
    const [kind, id] = key.split(":") as [string, string | undefined];
    if (id === undefined) c.nodes[kind as CaseNode] = at;
    const ecg = c.ecgs.find((e) => e.eventId === id);
    if (!ecg) return;
    if (kind === "ecg") ecg.acquiredAt = at;
    else if (kind === "sent") ecg.sentAt = at;
    else ecg.receivedAt = at;
  }
}

/** A case as stored (the `data` column). */
interface CaseRecord {
  id: string;
  /** "" for the whole box. */
  location: string;
  openedAt: string;
  closedAt?: string;
  /** The username on the page, or "center" for dispatch. */
  openedBy: string;
  patientId?: string;
  nodes: Partial<Record<CaseNode, string>>;
  /** The geofence of the arrival node. */
  arrivalPlace?: string;
  ecgs: CaseEcg[];
  /**
   * Times taken before the gateway's clock was synchronized, by key (see `timeAt`; "id": the id's
   * date), and where each was taken, until the first sync places them (docs/cases.md).
   */
  unsynced?: Record<string, CaseMark>;
  /** Keys the first sync could not place (taken in an earlier boot): those times are not to be relied on. */
  unplaced?: string[];
  /** The id the case had until the first sync placed the date it was made from. */
  previousId?: string;
}

export interface EcgView {
  eventId: string;
  /** The device it came from. */
  device?: string;
  acquiredAt: string;
  /** "recv": `acquiredAt` is when the ECG reached the gateway, not the cart's acquisition time. */
  tFrom?: EventTime["tFrom"];
  transfer: { parts: number; sent: number; delivered: boolean; receipted: boolean };
  report?: CaseEcg["report"];
}

/** A case as the page and the API show it (docs/web-api.md): the record with its ECGs as views, and its clock. */
export interface CaseView extends Omit<CaseRecord, "location" | "ecgs" | "unsynced"> {
  location?: string;
  /** Keys of times still read from the box's unsynchronized clock (placed when it is synchronized). */
  unsynced?: string[];
  /** Seconds from first medical contact to the ECG's reading (or to now while none came, or to closing). */
  fmcElapsedS?: number;
  /** Whether that clock still runs: no reading yet and the case open. */
  fmcRunning?: boolean;
  targetS: number;
  /** The latest ECG of the case, and all of them in order. */
  ecg?: EcgView;
  ecgs: EcgView[];
}

/** A reading from the center as the page gets it. */
export interface ReportView {
  caseId?: string;
  eventId: string;
  reader: string;
  at: string;
  conclusion: string;
  text?: string;
}

/** Why a case change was refused; `status` is the HTTP status it maps to. */
export class CaseError extends VitalgateError {
  readonly status: number;
  constructor(
    code:
      | "VG_CASE_NOT_FOUND"
      | "VG_CASE_ALREADY_OPEN"
      | "VG_CASE_EXISTS"
      | "VG_CASE_TIME"
      | "VG_CASE_NODE_SET"
      | "VG_CASE_CORRECTION"
      | "VG_REPORT_UNKNOWN_ECG",
    message: string,
    status: number,
  ) {
    super(code, message);
    this.name = "CaseError";
    this.status = status;
  }
}

export interface CaseBookDeps {
  clock: Clock;
  log: Logger;
  /** Commits a `case` event of case `caseId` (stamped by the gateway, from the gateway itself). */
  record(draft: EventDraft, caseId: string): Promise<unknown>;
  /** The location a device belongs to, if any. */
  locationOf(deviceId: string): string | undefined;
  /** An event's delivery so far (the outbox), or undefined when it is not (or no longer) stored. */
  delivery(eventId: string): Delivery | undefined;
  /** A stored event (the outbox), after the first sync's restamping: where an ECG's time is placed from. */
  event(eventId: string): Envelope | undefined;
  /** A case renamed: the events waiting in the outbox carry the new id. */
  renameCase(from: string, to: string): void;
}

/** How long a tapped time may lie ahead of the box's clock (phones and boxes disagree a little). */
const TAP_FUTURE_TOLERANCE_MS = 60_000;
/**
 * How long after it was stored an ECG's transfer and receipt are followed across restarts: a center
 * that never sends receipts must not leave every ECG ever taken to be looked at on each start.
 */
const FOLLOW_MS = 7 * 86_400_000;
/** Cases `list("recent")` returns. */
const RECENT = 50;
/** Readings of ECGs outside any case kept on the box. */
const READINGS_KEPT = 1000;

export class CaseBook extends EventEmitter<{ change: [CaseView]; report: [ReportView] }> {
  #deps: CaseBookDeps;
  #config: CasesConfig;
  #db: LocalDb | null = null;
  /** The open cases by location. */
  #open = new Map<string, CaseRecord>();
  /** ECGs whose transfer to the broker is not complete: event id → case id. */
  #sending = new Map<string, string>();
  /** ECGs whose receipt from the center is awaited: event id → case id. */
  #unreceipted = new Map<string, string>();

  constructor(config: CasesConfig, deps: CaseBookDeps) {
    super();
    this.#config = config;
    this.#deps = deps;
  }

  /** Loads the open cases and the ECGs still under way (the tables are local.db's: src/local-db.ts). */
  open(db: LocalDb): void {
    this.#db = db;
    this.#open.clear();
    this.#sending.clear();
    this.#unreceipted.clear();
    for (const data of db
      .prepare("SELECT data FROM cases WHERE closed_ms IS NULL ORDER BY opened_ms")
      .pluck()
      .all() as string[]) {
      const c = JSON.parse(data) as CaseRecord;
      this.#open.set(c.location, c);
    }
    // Stored before the clock was synchronized, and never placed (an earlier boot): how long ago cannot be told, so followed.
    const since = this.#nowMs() - FOLLOW_MS;
    const rows = db
      .prepare(
        "SELECT event_id AS eventId, case_id AS caseId, sent, received FROM case_ecgs WHERE (sent = 0 OR received = 0) AND (stored_ms > ? OR stored_ms < ?)",
      )
      .all(since, NOT_BEFORE_MS) as { eventId: string; caseId: string; sent: number; received: number }[];
    for (const r of rows) {
      if (!r.sent) this.#sending.set(r.eventId, r.caseId);
      if (!r.received) this.#unreceipted.set(r.eventId, r.caseId);
    }
  }

  close(): void {
    this.#db = null;
    this.#open.clear();
  }

  /** A configuration reload: the target and the geofences apply from the next change on. */
  configure(config: CasesConfig): void {
    this.#config = config;
  }

  /**
   * The open case a device's events belong to: its location's, else the one of the whole box.
   * Called for every message ingested: from memory only.
   */
  caseFor(deviceId: string): string | undefined {
    if (this.#open.size === 0) return undefined;
    const location = this.#deps.locationOf(deviceId);
    return (location ? this.#open.get(location) : undefined)?.id ?? this.#open.get("")?.id;
  }

  get(id: string): CaseView | undefined {
    const c = this.#find(id);
    return c && this.#view(c);
  }

  /** The center's readings of ECGs outside any case, the latest received first. */
  readingsOutsideCases(): ReportView[] {
    return (
      this.#database
        .prepare("SELECT data FROM ecg_readings ORDER BY received_ms DESC LIMIT ?")
        .pluck()
        .all(RECENT) as string[]
    ).map((d) => JSON.parse(d) as ReportView);
  }

  /** The open cases, or the most recent ones (open or closed), newest first. */
  list(state: "open" | "recent"): CaseView[] {
    if (state === "open") return [...this.#open.values()].reverse().map((c) => this.#view(c));
    const rows = this.#database
      .prepare("SELECT data FROM cases ORDER BY opened_ms DESC LIMIT ?")
      .pluck()
      .all(RECENT) as string[];
    // Open cases are written through on every change: the stored copy is theirs as it stands.
    return rows.map((data) => this.#view(JSON.parse(data) as CaseRecord));
  }

  /**
   * Opens a case for a location ("" or absent: the whole box). With `caseId` (the center's), that
   * id; opening it again while it is open at the same location is answered with the case as it
   * is, as a command may arrive twice. Refused while another case is open at the location.
   */
  async openCase(o: {
    location?: string;
    openedBy: string;
    caseId?: string;
    patientId?: string;
    dispatchedAt?: string;
  }): Promise<CaseView> {
    const db = this.#database;
    const location = o.location ?? "";
    const current = this.#open.get(location);
    if (current && o.caseId !== undefined && current.id === o.caseId) return this.#view(current);
    if (current)
      throw new CaseError(
        "VG_CASE_ALREADY_OPEN",
        `case ${current.id} is open ${location ? `at ${location}` : "for the whole box"}: close it first`,
        409,
      );
    if (o.caseId !== undefined && db.prepare("SELECT 1 FROM cases WHERE id = ?").get(o.caseId)) {
      throw new CaseError("VG_CASE_EXISTS", `case ${o.caseId} exists already on this gateway`, 409);
    }
    const clock = this.#deps.clock.now();
    const now = clock.ms;
    const at = new Date(now).toISOString();
    const c: CaseRecord = {
      id: o.caseId ?? this.#nextId(now),
      location,
      openedAt: at,
      openedBy: o.openedBy,
      patientId: o.patientId,
      nodes: o.dispatchedAt ? { dispatch: new Date(o.dispatchedAt).toISOString() } : {},
      ecgs: [],
    };
    this.#mark(c, "openedAt", clock);
    if (o.caseId === undefined) this.#mark(c, "id", clock);
    db.prepare("INSERT INTO cases (id, opened_ms, data) VALUES (?, ?, ?)").run(c.id, now, JSON.stringify(c));
    this.#open.set(location, c);
    this.#deps.log.info({ case: c.id, location, openedBy: o.openedBy }, "case opened");
    return this.#changed(c, {
      action: "opened",
      at,
      unsynced: c.unsynced ? true : undefined,
      location: location || undefined,
      openedBy: o.openedBy,
      dispatchedAt: c.nodes.dispatch,
      patientId: c.patientId,
    });
  }

  /** Closes a case; events from then on carry no case (or the location's next one). Closing twice is no change. */
  async closeCase(id: string): Promise<CaseView> {
    const c = this.#require(id);
    if (c.closedAt) return this.#view(c);
    const clock = this.#deps.clock.now();
    const now = clock.ms;
    c.closedAt = new Date(now).toISOString();
    this.#mark(c, "closedAt", clock);
    this.#open.delete(c.location);
    this.#database.prepare("UPDATE cases SET closed_ms = ?, data = ? WHERE id = ?").run(now, JSON.stringify(c), c.id);
    this.#deps.log.info({ case: c.id }, "case closed");
    return this.#changed(c, { action: "closed", at: c.closedAt, unsynced: c.unsynced?.closedAt ? true : undefined });
  }

  /** Sets (or corrects) the patient id: kept here and sent to the center in the case event, never logged. */
  async setPatient(id: string, patient: string): Promise<CaseView> {
    const c = this.#require(id);
    c.patientId = patient;
    this.#save(c);
    this.#deps.log.info({ case: c.id }, "case patient id set");
    const clock = this.#deps.clock.now();
    return this.#changed(c, {
      action: "patient",
      at: new Date(clock.ms).toISOString(),
      unsynced: clock.src === "unsynced" ? true : undefined,
      patientId: patient,
    });
  }

  /**
   * A tapped node: at `at` (ISO 8601), or now. A node once recorded is never overwritten by a second
   * tap (a scanner's stray Enter, a tap after the reading): it changes only by a correction, which
   * names the time it really was (`correct` with `at`); the audit keeps what it was before.
   */
  async tapNode(id: string, node: TappedNode, at?: string, correct = false): Promise<CaseView> {
    const c = this.#require(id);
    const clock = this.#deps.clock.now();
    const ms = at === undefined ? clock.ms : Date.parse(at);
    // A typed time is on the crew's own clock (the page's device): checked against ours only when ours is synchronized.
    if (at !== undefined && clock.src !== "unsynced" && ms > clock.ms + TAP_FUTURE_TOLERANCE_MS)
      throw new CaseError("VG_CASE_TIME", `${node} at ${at} is in the future`, 400);
    const before = c.nodes[node];
    if (before !== undefined && !correct)
      throw new CaseError(
        "VG_CASE_NODE_SET",
        `${node} was already recorded at ${before}; change it only by a correction with the time it really was`,
        409,
      );
    if (correct && at === undefined)
      throw new CaseError("VG_CASE_CORRECTION", `a correction of ${node} names the time it really was`, 400);
    return this.#setNode(
      c,
      node,
      new Date(ms).toISOString(),
      before === undefined ? {} : { corrects: before },
      at === undefined ? unsyncedMark(clock) : undefined,
    );
  }

  /**
   * Committed events, looked at for the nodes the data shows: an ECG of a case (firstEcg, and its
   * transfer is followed from here), a position of a case inside a geofence (arrival).
   */
  observe(events: readonly Envelope[]): void {
    for (const e of events) {
      if (e.case === undefined) continue;
      if (e.kind === "ecg12") this.#ecgArrived(e);
      else if (e.kind === "position") this.#positioned(e);
    }
  }

  /** The broker acknowledged something: ECG transfers under way may have progressed. */
  onAcked(): void {
    for (const [eventId, caseId] of this.#sending) {
      const c = this.#find(caseId);
      const ecg = c?.ecgs.find((x) => x.eventId === eventId);
      const d = this.#deps.delivery(eventId);
      if (!c || !ecg || !d) {
        this.#sending.delete(eventId);
        continue;
      }
      if (d.sent === ecg.sent && !(d.event && d.sent === d.parts)) continue;
      ecg.sent = d.sent;
      ecg.parts = d.parts;
      if (d.event && d.sent === d.parts) {
        const clock = this.#deps.clock.now();
        ecg.sentAt = new Date(clock.ms).toISOString();
        this.#mark(c, `sent:${eventId}`, clock);
        this.#sending.delete(eventId);
        this.#database.prepare("UPDATE case_ecgs SET sent = 1 WHERE event_id = ?").run(eventId);
        if (!c.nodes.ecgSent) {
          void this.#setNode(c, "ecgSent", ecg.sentAt, { eventId }, unsyncedMark(clock));
          continue;
        }
      }
      this.#save(c);
      this.emit("change", this.#view(c));
    }
  }

  /** The center's receipt names event ids it has stored: the ECGs among them are received. */
  onReceipt(ids: readonly string[]): void {
    if (this.#unreceipted.size === 0) return;
    for (const id of ids) {
      const caseId = this.#unreceipted.get(id);
      if (caseId === undefined) continue;
      this.#unreceipted.delete(id);
      this.#database.prepare("UPDATE case_ecgs SET received = 1 WHERE event_id = ?").run(id);
      const c = this.#find(caseId);
      const ecg = c?.ecgs.find((x) => x.eventId === id);
      if (!c || !ecg) continue;
      const clock = this.#deps.clock.now();
      ecg.receivedAt = new Date(clock.ms).toISOString();
      this.#mark(c, `received:${id}`, clock);
      if (c.nodes.ecgReceived) {
        this.#save(c);
        this.emit("change", this.#view(c));
      } else {
        void this.#setNode(c, "ecgReceived", ecg.receivedAt, { eventId: id }, unsyncedMark(clock));
      }
    }
  }

  /**
   * A reading from the center: kept with the ECG's case (ecgRead at the reader's time), and passed
   * on to the page. Refused (thrown) for an ECG this gateway did not send: a crew must never see a
   * reading of someone else's ECG. Returns the case it was kept with.
   */
  onReport(r: CenterReport): { caseId?: string } {
    const caseId = this.#database.prepare("SELECT case_id FROM case_ecgs WHERE event_id = ?").pluck().get(r.eventId) as
      string | undefined;
    if (caseId === undefined && this.#deps.event(r.eventId)?.kind !== "ecg12")
      throw new CaseError(
        "VG_REPORT_UNKNOWN_ECG",
        `refused: ${r.eventId} is not an ECG this gateway sent (or it is past its retention): the reading is not shown`,
        404,
      );
    const c = caseId === undefined ? undefined : this.#find(caseId);
    const ecg = c?.ecgs.find((x) => x.eventId === r.eventId);
    const report = { reader: r.reader, at: new Date(r.at).toISOString(), conclusion: r.conclusion, text: r.text };
    this.#deps.log.info({ case: caseId, event: r.eventId }, "ECG reading from the center");
    this.emit("report", { caseId: c?.id, eventId: r.eventId, ...report });
    if (!c || !ecg) {
      // Nowhere else to show it: kept, the newest reading of an ECG replacing an older one.
      const db = this.#database;
      db.prepare("INSERT OR REPLACE INTO ecg_readings (event_id, received_ms, data) VALUES (?, ?, ?)").run(
        r.eventId,
        this.#nowMs(),
        JSON.stringify({ eventId: r.eventId, ...report }),
      );
      db.prepare(
        "DELETE FROM ecg_readings WHERE event_id NOT IN (SELECT event_id FROM ecg_readings ORDER BY received_ms DESC LIMIT ?)",
      ).run(READINGS_KEPT);
      return {};
    }
    ecg.report = report;
    if (c.nodes.ecgRead) {
      this.#save(c);
      this.emit("change", this.#view(c));
    } else {
      void this.#setNode(c, "ecgRead", report.at, { eventId: r.eventId, conclusion: r.conclusion });
    }
    return { caseId: c.id };
  }

  #ecgArrived(e: Envelope): void {
    const c = this.#find(e.case!);
    if (!c || c.ecgs.some((x) => x.eventId === e.id)) return;
    const d = this.#deps.delivery(e.id);
    const ecg: CaseEcg = {
      eventId: e.id,
      device: e.dev.id,
      acquiredAt: e.t,
      tFrom: e.time.tFrom,
      parts: d?.parts ?? 0,
      sent: d?.sent ?? 0,
    };
    c.ecgs.push(ecg);
    const mark = eventMark(e);
    if (mark) (c.unsynced ??= {})[`ecg:${e.id}`] = mark;
    this.#database
      .prepare("INSERT OR IGNORE INTO case_ecgs (event_id, case_id, stored_ms) VALUES (?, ?, ?)")
      .run(e.id, c.id, this.#nowMs());
    this.#sending.set(e.id, c.id);
    this.#unreceipted.set(e.id, c.id);
    this.#deps.log.info({ case: c.id, event: e.id, parts: ecg.parts }, "ECG of the case stored");
    if (c.nodes.firstEcg) {
      this.#save(c);
      this.emit("change", this.#view(c));
    } else {
      // An ECG before first medical contact is possible (a cart on the ward), but more often a cart's
      // clock is slow: say so, with which clock the time is on (docs/time.md, "Device clocks"). Not
      // while either time is still unsynchronized: they are not on one timeline yet.
      const beforeFmcMs = c.nodes.fmc && !c.unsynced?.fmc && !mark ? Date.parse(c.nodes.fmc) - Date.parse(e.t) : 0;
      if (beforeFmcMs > 0) {
        this.#deps.log.warn(
          {
            code: "VG_CASE_ECG_BEFORE_FMC",
            case: c.id,
            event: e.id,
            beforeFmcS: Math.round(beforeFmcMs / 1000),
            tFrom: e.time.tFrom ?? null,
            device: e.dev.id,
          },
          `the case's first ECG is dated ${Math.round(beforeFmcMs / 1000)} s before first medical contact: check the cart's clock`,
        );
      }
      void this.#setNode(c, "firstEcg", e.t, { eventId: e.id }, mark);
    }
    // Already acknowledged before we looked (a fast link)?
    this.onAcked();
  }

  #positioned(e: Envelope): void {
    const c = this.#find(e.case!);
    if (!c || c.nodes.arrival || c.closedAt) return;
    const p = e.body as { lat?: unknown; lon?: unknown };
    if (typeof p.lat !== "number" || typeof p.lon !== "number") return;
    const fence = this.#config.geofences.find(
      (g) => distanceM(g, { lat: p.lat as number, lon: p.lon as number }) <= g.radiusM,
    );
    if (!fence) return;
    c.arrivalPlace = fence.name;
    void this.#setNode(c, "arrival", e.t, { place: fence.name }, eventMark(e));
  }

  /**
   * Sets a node, saves, tells the page and the center. `mark`: the time was read from the
   * unsynchronized clock (the center is told: `unsynced`), to be placed by the first sync.
   */
  #setNode(
    c: CaseRecord,
    node: CaseNode,
    at: string,
    extra: Pick<Extract<CaseBody, { action: "node" }>, "eventId" | "conclusion" | "place" | "corrects"> = {},
    mark?: CaseMark,
  ): Promise<CaseView> {
    c.nodes[node] = at;
    this.#setMark(c, node, mark);
    this.#save(c);
    this.#deps.log.info({ case: c.id, node, at }, "case time node");
    return this.#changed(c, { action: "node", node, at, unsynced: mark ? true : undefined, ...extra });
  }

  /** Records (or, for a time from the synchronized clock, clears) where a case's time was taken. */
  #mark(c: CaseRecord, key: string, clock: TimeEstimate): void {
    this.#setMark(c, key, unsyncedMark(clock));
  }

  #setMark(c: CaseRecord, key: string, mark: CaseMark | undefined): void {
    if (c.unplaced?.includes(key)) c.unplaced = c.unplaced.filter((k) => k !== key);
    if (c.unplaced?.length === 0) c.unplaced = undefined;
    if (mark) (c.unsynced ??= {})[key] = mark;
    else if (c.unsynced?.[key]) {
      delete c.unsynced[key];
      if (Object.keys(c.unsynced).length === 0) c.unsynced = undefined;
    }
  }

  /**
   * The gateway's first sync: the times of cases taken before it are placed on true UTC (an ECG's
   * from its restamped event, the others by where they were taken: time/placement.ts), a case id
   * made from an unsynchronized date is made again from the placed one (the old id still finds
   * it), and the center is sent the corrected nodes and a `placed` event. Times of an earlier boot
   * cannot be placed: they are listed in `unplaced`. Call after the outbox was restamped.
   */
  placeUnsynced(sync: FirstSync): void {
    const db = this.#database;
    const ids = db
      .prepare("SELECT id FROM cases WHERE json_extract(data, '$.unsynced') IS NOT NULL")
      .pluck()
      .all() as string[];
    for (const id of ids) {
      const c = this.#find(id);
      if (!c?.unsynced) continue;
      const marks = c.unsynced;
      c.unsynced = undefined;
      const placed: string[] = [];
      const unplaced: string[] = [];
      for (const [key, mark] of Object.entries(marks)) {
        const current = timeAt(c, key);
        if (current === undefined) continue;
        const e = mark.event === undefined ? undefined : this.#deps.event(mark.event);
        const ms =
          e && (e.time.restamped || !e.time.unsynced)
            ? Date.parse(e.t)
            : placeUnsynced(Date.parse(current), mark, sync);
        if (ms === undefined) {
          unplaced.push(key);
          continue;
        }
        setTimeAt(c, key, new Date(ms).toISOString());
        placed.push(key);
        // When the ECG was stored, for following its transfer across restarts (`open`).
        if (key.startsWith("ecg:"))
          db.prepare("UPDATE case_ecgs SET stored_ms = ? WHERE event_id = ?").run(
            e ? Date.parse(e.time.recv) : ms,
            key.slice(4),
          );
      }
      const previousId = marks.id !== undefined && !unplaced.includes("openedAt") ? c.id : undefined;
      if (previousId !== undefined) this.#rename(c, this.#nextId(Date.parse(c.openedAt)));
      else if (marks.id !== undefined) unplaced.push("id");
      if (unplaced.length > 0) c.unplaced = [...(c.unplaced ?? []), ...unplaced];
      db.prepare("UPDATE cases SET opened_ms = ?, closed_ms = ?, data = ? WHERE id = ?").run(
        Date.parse(c.openedAt),
        c.closedAt === undefined ? null : Date.parse(c.closedAt),
        JSON.stringify(c),
        c.id,
      );
      this.#deps.log.info(
        { code: "VG_CASE_TIMES_PLACED", case: c.id, previousId, placed, unplaced },
        `case times taken before the clock was synchronized placed (${placed.length}${unplaced.length ? `; ${unplaced.length} could not be: earlier boot` : ""})`,
      );
      void this.#changed(c, {
        action: "placed",
        at: c.openedAt,
        openedAt: c.openedAt,
        closedAt: c.closedAt,
        previousId,
        placed,
        unplaced: unplaced.length ? unplaced : undefined,
      });
      // The nodes again, corrected: for the center, the latest event of a node wins.
      for (const node of placed) {
        const at = c.nodes[node as CaseNode];
        if (at !== undefined && !node.includes(":") && node !== "openedAt" && node !== "closedAt") {
          void this.#changed(c, { action: "node", node: node as CaseNode, at, placed: true });
        }
      }
    }
  }

  /** Gives a case a new id; the old one still finds it (`case_aliases`). */
  #rename(c: CaseRecord, id: string): void {
    const old = c.id;
    const db = this.#database;
    db.transaction(() => {
      db.prepare("UPDATE cases SET id = ? WHERE id = ?").run(id, old);
      db.prepare("UPDATE case_ecgs SET case_id = ? WHERE case_id = ?").run(id, old);
      db.prepare("INSERT OR REPLACE INTO case_aliases (old, id) VALUES (?, ?)").run(old, id);
    })();
    for (const m of [this.#sending, this.#unreceipted]) for (const [k, v] of m) if (v === old) m.set(k, id);
    c.id = id;
    c.previousId = old;
    this.#deps.renameCase(old, id);
  }

  /**
   * Tells the page, and commits the change's `case` event. A store that cannot take it has raised
   * its own alarm; the case itself is saved here either way.
   */
  async #changed(c: CaseRecord, body: CaseBody): Promise<CaseView> {
    const view = this.#view(c);
    this.emit("change", view);
    try {
      await this.#deps.record({ kind: "case", body }, c.id);
    } catch (err) {
      this.#deps.log.error(
        {
          code: "VG_CASE_EVENT_REFUSED",
          case: c.id,
          action: body.action,
          node: body.action === "node" ? body.node : undefined,
          cause: (err as { code?: string }).code,
        },
        "the case event could not be stored for the center",
      );
    }
    return view;
  }

  #view(c: CaseRecord): CaseView {
    const targetS = Math.round(this.#config.targetMin * 60);
    const ecgs = c.ecgs.map((e): EcgView => ({
      eventId: e.eventId,
      device: e.device,
      acquiredAt: e.acquiredAt,
      tFrom: e.tFrom,
      transfer: {
        parts: e.parts,
        sent: e.sent,
        delivered: e.sentAt !== undefined,
        receipted: e.receivedAt !== undefined,
      },
      report: e.report,
    }));
    const view: CaseView = {
      id: c.id,
      location: c.location || undefined,
      openedAt: c.openedAt,
      closedAt: c.closedAt,
      openedBy: c.openedBy,
      patientId: c.patientId,
      nodes: c.nodes,
      arrivalPlace: c.arrivalPlace,
      targetS,
      ecg: ecgs.at(-1),
      ecgs,
      unsynced: c.unsynced ? Object.keys(c.unsynced) : undefined,
      unplaced: c.unplaced,
      previousId: c.previousId,
    };
    if (c.nodes.fmc) {
      const end = c.nodes.ecgRead ? "ecgRead" : c.closedAt ? "closedAt" : undefined;
      view.fmcRunning = end === undefined;
      // A clock that cannot be told (a time of an earlier boot, or one side unsynchronized and the other not) is not shown.
      const ms = this.#between(c, "fmc", end);
      if (ms !== undefined) view.fmcElapsedS = Math.max(0, Math.round(ms / 1000));
    }
    return view;
  }

  /**
   * Milliseconds from one time of a case to another (or to now): on true UTC when both are, on
   * the monotonic clock when both were taken unsynchronized in one boot (or run); undefined when
   * they cannot be compared.
   */
  #between(c: CaseRecord, from: string, to: string | undefined): number | undefined {
    const now = this.#deps.clock.now();
    const at = (key: string | undefined): { ms: number; mark?: CaseMark } | undefined => {
      if (key === undefined) return { ms: now.ms, mark: unsyncedMark(now) };
      const t = timeAt(c, key);
      if (t === undefined || c.unplaced?.includes(key)) return undefined;
      return { ms: Date.parse(t), mark: c.unsynced?.[key] };
    };
    const a = at(from);
    const b = at(to);
    if (!a || !b) return undefined;
    if (!a.mark && !b.mark) return b.ms - a.ms;
    if (!a.mark || !b.mark) return undefined;
    if (a.mark.boot !== undefined && b.mark.boot !== undefined) {
      return a.mark.boot === b.mark.boot && a.mark.monoMs !== undefined && b.mark.monoMs !== undefined
        ? b.mark.monoMs - a.mark.monoMs
        : undefined;
    }
    return a.mark.run === b.mark.run ? b.ms - a.ms : undefined;
  }

  /** The box's own id: its local date and the day's next number, `20261123-0007`. */
  #nextId(nowMs: number): string {
    const d = new Date(nowMs);
    const day = `${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, "0")}${String(d.getDate()).padStart(2, "0")}`;
    const db = this.#database;
    // A center-given id may look like ours: skip any number already taken.
    for (;;) {
      const n = db
        .prepare("INSERT INTO case_days (day, n) VALUES (?, 1) ON CONFLICT(day) DO UPDATE SET n = n + 1 RETURNING n")
        .pluck()
        .get(day) as number;
      const id = `${day}-${String(n).padStart(4, "0")}`;
      if (!db.prepare("SELECT 1 FROM cases WHERE id = ?").get(id)) return id;
    }
  }

  #find(id: string): CaseRecord | undefined {
    for (const c of this.#open.values()) if (c.id === id) return c;
    const db = this.#database;
    const data = (db.prepare("SELECT data FROM cases WHERE id = ?").pluck().get(id) ??
      db.prepare("SELECT c.data FROM case_aliases a JOIN cases c ON c.id = a.id WHERE a.old = ?").pluck().get(id)) as
      string | undefined;
    if (data === undefined) return undefined;
    const c = JSON.parse(data) as CaseRecord;
    return this.#open.get(c.location)?.id === c.id ? this.#open.get(c.location) : c;
  }

  #require(id: string): CaseRecord {
    const c = this.#find(id);
    if (!c) throw new CaseError("VG_CASE_NOT_FOUND", `no case ${id} on this gateway`, 404);
    return c;
  }

  #save(c: CaseRecord): void {
    this.#database.prepare("UPDATE cases SET data = ? WHERE id = ?").run(JSON.stringify(c), c.id);
  }

  get #database(): LocalDb {
    if (!this.#db) throw new VitalgateError("VG_CASES_CLOSED", "the case book is not open");
    return this.#db;
  }

  #nowMs(): number {
    return this.#deps.clock.now().ms;
  }
}
