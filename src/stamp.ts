// Stamping: a driver's draft becomes an event with its id, gateway, device and time (DESIGN.md §3,
// §4). The time comes from the gateway's clock (monotonic plus offset), never the raw wall clock.
// Where the device reports its own measurement time, it is kept raw (`time.dev`) and `t` is that
// time corrected by the device's estimated skew (src/time/device-clocks.ts).
import type { Clock } from "./clock.ts";
import { ENVELOPE_VERSION, type DeviceRef, type Envelope, type EventDraft } from "./events.ts";
import { uuidv7 } from "./ids.ts";
import type { StampedEvent } from "./store.ts";

/**
 * `skewMs` is the device's clock minus true time, when known. `t` is then the device's time less
 * the skew; with a device time but no skew known (a record from a device never heard live), the
 * device's time as it is; otherwise the receive time. No `t` is later than its receive time: a
 * reading cannot have been taken after it arrived.
 */
export function stamp(draft: EventDraft, dev: DeviceRef, gw: string, clock: Clock, caseId?: string, skewMs?: number): StampedEvent {
  const now = clock.now();
  const recv = new Date(now.ms).toISOString();
  let t = recv;
  let devSkewMs: number | undefined;
  if (draft.deviceTime !== undefined) {
    const devMs = Date.parse(draft.deviceTime);
    if (!Number.isNaN(devMs)) {
      if (skewMs !== undefined) devSkewMs = Math.round(skewMs);
      const measured = devMs - (devSkewMs ?? 0);
      if (measured < now.ms) t = new Date(measured).toISOString();
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
    kind: draft.kind,
    t,
    time: { recv, src: now.src, uncMs: now.uncMs, dev: draft.deviceTimeRaw, devSkewMs, unsynced: now.src === "unsynced" ? true : undefined },
    body: draft.body,
  };
}

/** The first synchronization of a run, as restamping needs it. */
export interface Correction {
  /** Added to every time stamped before the sync. */
  correctionMs: number;
  /** The source that synchronized. */
  src: string;
  /** Uncertainty of the synchronized clock at `atMs`. */
  uncMs: number;
  /** True UTC of the sync, ms. */
  atMs: number;
  /** Drift allowance: an event stamped d ms before the sync is uncertain by uncMs + d·ppm/10⁶ more. */
  driftPpm: number;
}

/**
 * Corrects an event stamped before the gateway's first sync of this run: monotonic time was valid
 * all along, only the offset was unknown, so every time moves by the same correction and the device
 * skew (measured against the old timeline) by as much the other way. Marked `restamped`.
 */
export function restamp(e: Envelope, c: Correction): void {
  const recv = Date.parse(e.time.recv) + c.correctionMs;
  e.time.recv = new Date(Math.round(recv)).toISOString();
  e.t = new Date(Math.round(Date.parse(e.t) + c.correctionMs)).toISOString();
  if (e.time.devSkewMs !== undefined) e.time.devSkewMs = Math.round(e.time.devSkewMs - c.correctionMs);
  e.time.src = c.src;
  e.time.uncMs = Math.ceil(c.uncMs + Math.max(0, c.atMs - recv) * c.driftPpm / 1e6);
  e.time.restamped = true;
}
