// Stamping: a driver's draft becomes an event with its id, gateway, device and time (DESIGN.md §3,
// §4). The time comes from the gateway's clock (monotonic plus offset), never the raw wall clock.
// Where the device reports its own measurement time, it is kept raw (`time.dev`) and `t` is that
// time corrected by the device's estimated skew (src/time/device-clocks.ts).
import type { Clock, TimeSource } from "../time/clock.ts";
import {
  ENVELOPE_VERSION,
  type DeviceRef,
  type Envelope,
  type EventDraft,
  type EventTime,
  type MessageRef,
  type Observation,
} from "./model.ts";
import { uuidv7 } from "./ids.ts";
import type { StampedEvent } from "../outbox/outbox.ts";

/**
 * `skewMs` is the device's clock minus true time, when known. `t` is then the device's time less
 * the skew; with a device time but no skew known (a record from a device never heard live), the
 * device's time as it is; otherwise the receive time. `time.tFrom` says which. Observation times
 * (`body.observations[].at`) are corrected by the same skew, the device's own kept in `atDev`.
 * Once synchronized, no `t` is later than its receive time: a reading cannot have been taken after
 * it arrived. Before any sync the receive time is no yardstick (the box's clock may be decades
 * off): an uncorrected device time is kept as it is, and judged when the event is restamped.
 */
/** How old an uncorrected device time may be and still be taken as the measurement time. */
const UNKNOWN_SKEW_MAX_AGE_MS = 24 * 3600 * 1000;

export function stamp(
  draft: EventDraft,
  dev: DeviceRef,
  gw: string,
  clock: Clock,
  caseId?: string,
  skewMs?: number,
  msg?: MessageRef,
): StampedEvent {
  const now = clock.now();
  const recv = isoTime(now.ms);
  let t = recv;
  let tFrom: EventTime["tFrom"] = "recv";
  let devSkewMs: number | undefined;
  let body = draft.body;
  if (draft.deviceTime !== undefined) {
    const devMs = deviceTimeMs(draft.deviceTime);
    if (!Number.isNaN(devMs)) {
      if (skewMs !== undefined) devSkewMs = Math.round(skewMs);
      const placed = measurementTime(devMs, devSkewMs, now.ms, now.unbounded === true);
      if (placed !== undefined) {
        t = isoTime(placed.ms);
        tFrom = placed.from;
      }
      if (devSkewMs !== undefined) body = correctObservations(body, devSkewMs, now.ms);
    }
  }
  // Absent optional fields are left undefined rather than spread in: JSON leaves them out, and a
  // literal with a fixed shape is several times cheaper to build than one assembled by spreads.
  return {
    v: ENVELOPE_VERSION,
    id: uuidv7(now.ms),
    seq: 0, // assigned by the store when it commits
    gw,
    dev,
    case: caseId,
    msg,
    kind: draft.kind,
    t,
    time: {
      recv,
      src: now.src,
      uncMs: now.uncMs,
      unbounded: now.unbounded,
      tFrom,
      stepBackMs: now.stepBackMs,
      dev: draft.deviceTimeRaw,
      devSkewMs,
      unsynced: now.src === "unsynced" ? true : undefined,
      boot: now.boot,
      monoMs: now.monoMs,
    },
    body,
  };
}

/**
 * When a device's time (Unix ms) says it was measured, against the receive time `recvMs`: less the
 * skew when known; undefined when the receive time is the better estimate (the device time is after
 * it, or, with no skew known, over a day before it: a clock never set, a replayed capture). With
 * `unplaced` (the receive time is not on true time yet) an uncorrected device time is kept as it is.
 */
function measurementTime(
  devMs: number,
  skewMs: number | undefined,
  recvMs: number,
  unplaced: boolean,
): { ms: number; from: "device" | "device-corrected" } | undefined {
  const measured = devMs - (skewMs ?? 0);
  const from = skewMs === undefined ? "device" : "device-corrected";
  if (unplaced && skewMs === undefined) return { ms: measured, from };
  if (measured >= recvMs) return undefined;
  if (skewMs === undefined && measured <= recvMs - UNKNOWN_SKEW_MAX_AGE_MS) return undefined;
  return { ms: measured, from };
}

/**
 * Observation times corrected by the device's skew (never later than received); the device's own
 * in `atDev`. Returns the body itself when it has none, else a copy.
 */
function correctObservations(body: unknown, skewMs: number, recvMs: number): unknown {
  const observations = (body as { observations?: Observation[] } | null)?.observations;
  if (!Array.isArray(observations) || !observations.some((o) => o.at !== undefined || o.atDev !== undefined))
    return body;
  return {
    ...(body as object),
    observations: observations.map((o) => {
      const raw = o.atDev ?? o.at;
      if (raw === undefined) return o;
      const devMs = Date.parse(raw);
      if (Number.isNaN(devMs)) return o;
      const at = isoTime(Math.min(Math.round(devMs - skewMs), recvMs));
      return at === raw ? { ...o, at, atDev: undefined } : { ...o, at, atDev: raw };
    }),
  };
}

/**
 * Unix ms (an integer) as ISO 8601, as Date#toISOString writes it, but formatting each second
 * once: an event's receive and measurement times fall in one or two recent seconds, and
 * formatting through a Date costs more than the rest of stamping put together.
 */
const isoSeconds: [number, string, number, string] = [NaN, "", NaN, ""];
let isoNext = 0;
export function isoTime(ms: number): string {
  const second = Math.floor(ms / 1000);
  let prefix: string;
  if (second === isoSeconds[0]) prefix = isoSeconds[1];
  else if (second === isoSeconds[2]) prefix = isoSeconds[3];
  else {
    const full = new Date(second * 1000).toISOString(); // "…T15:36:34.000Z"
    prefix = full.slice(0, -4);
    if (isoNext === 0) {
      isoSeconds[0] = second;
      isoSeconds[1] = prefix;
    } else {
      isoSeconds[2] = second;
      isoSeconds[3] = prefix;
    }
    isoNext ^= 1;
  }
  const frac = ms - second * 1000;
  return prefix + (frac < 10 ? "00" : frac < 100 ? "0" : "") + frac + "Z";
}

/**
 * A draft's device time (ISO 8601) as Unix ms, NaN when unreadable. The last one is remembered:
 * the skew estimator and the stamp read the same string one after the other.
 */
let lastDeviceTime = "";
let lastDeviceMs = NaN;
export function deviceTimeMs(iso: string): number {
  if (iso !== lastDeviceTime) {
    lastDeviceTime = iso;
    lastDeviceMs = Date.parse(iso);
  }
  return lastDeviceMs;
}

/** The first synchronization of a run, as restamping needs it. */
export interface Correction {
  /** Added to every time stamped before the sync in this run (when its boot is not known). */
  correctionMs: number;
  /** True UTC minus the monotonic clock since boot: what a stamp of boot `boot` made at monotonic m becomes. */
  offsetMs?: number;
  /** The boot whose stamps are corrected by their own monotonic time and `offsetMs`. */
  boot?: string;
  /** The source that synchronized. */
  src: TimeSource;
  /** Uncertainty of the synchronized clock at `atMs`. */
  uncMs: number;
  /** True UTC of the sync, ms. */
  atMs: number;
  /** Drift allowance: an event stamped d ms before the sync is uncertain by uncMs + d·ppm/10⁶ more. */
  driftPpm: number;
  /** A device's skew on the synchronized timeline, when known: applied to its uncorrected device times. */
  skewOf?: (deviceId: string) => number | undefined;
}

/**
 * Corrects an event stamped before the gateway's first sync: monotonic time was valid all along,
 * only the offset was unknown. An event of the sync's boot becomes its monotonic time plus the
 * synchronized offset, whichever run stamped it (each run had its own unsynchronized offset); one
 * without a known boot, of this run, moves by this run's correction. `t` follows its own clock
 * (`time.tFrom`): a receive time moves with `recv`; a device time corrected by a skew measured on
 * the old timeline moves too (the skew as much the other way); a device's own uncorrected time
 * stays, corrected now by the skew `skewOf` knows on the synchronized timeline (a previous run's),
 * and judged against the corrected receive time as `stamp` does. Marked `restamped`.
 */
export function restamp(e: Envelope, c: Correction): void {
  const before = Date.parse(e.time.recv);
  const correctionMs =
    c.boot !== undefined && c.offsetMs !== undefined && e.time.boot === c.boot && e.time.monoMs !== undefined
      ? e.time.monoMs + c.offsetMs - before
      : c.correctionMs;
  const recv = Math.round(before + correctionMs);
  e.time.recv = isoTime(recv);
  const t = Date.parse(e.t);
  const from = e.time.tFrom ?? (e.time.devSkewMs !== undefined ? "device-corrected" : "recv");
  let skewMs: number | undefined;
  let devMs: number | undefined;
  if (from === "device-corrected" && e.time.devSkewMs !== undefined) {
    devMs = t + e.time.devSkewMs;
    skewMs = e.time.devSkewMs - correctionMs;
  } else if (from === "device") {
    devMs = t;
    skewMs = c.skewOf?.(e.dev.id);
  }
  if (devMs === undefined) {
    e.t = isoTime(Math.round(t + correctionMs));
    e.time.tFrom = "recv";
    if (e.time.devSkewMs !== undefined) e.time.devSkewMs = Math.round(e.time.devSkewMs - correctionMs);
  } else {
    const placed = measurementTime(devMs, skewMs === undefined ? undefined : Math.round(skewMs), recv, false);
    e.t = isoTime(placed === undefined ? recv : Math.round(placed.ms));
    e.time.tFrom = placed?.from ?? "recv";
    e.time.devSkewMs = skewMs === undefined ? undefined : Math.round(skewMs);
    if (skewMs !== undefined) e.body = correctObservations(e.body, Math.round(skewMs), recv);
  }
  e.time.src = c.src;
  e.time.uncMs = Math.ceil(c.uncMs + (Math.max(0, c.atMs - recv) * c.driftPpm) / 1e6);
  e.time.unbounded = undefined;
  e.time.restamped = true;
}
