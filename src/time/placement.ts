// Times the gateway keeps outside its events (case nodes, audit records) that were taken before any
// sync: held as monotonic-plus-offset, like unsynchronized event stamps (stamp.ts `restamp`), and
// placed on true UTC when the first sync comes (docs/time.md "Unsynchronized"). Durations never
// need the placement: they are differences on one monotonic clock.
import { randomUUID } from "node:crypto";
import type { TimeEstimate } from "./clock.ts";
import type { FirstSync } from "./service.ts";

/**
 * This run of the daemon: a time of this run without a boot id is placed by this run's correction
 * (each run reads the wrong wall clock once, at its start).
 */
export const RUN_ID = randomUUID();

/** Where an unsynchronized time was taken: enough to place it when a sync comes. */
export interface UnsyncedMark {
  /** The kernel's boot id and the monotonic ms since that boot, when known. */
  boot?: string;
  monoMs?: number;
  /** The run that took it. */
  run: string;
}

/** The mark of a time read now, or undefined when the clock is synchronized (nothing to place). */
export function unsyncedMark(now: TimeEstimate): UnsyncedMark | undefined {
  if (now.src !== "unsynced") return undefined;
  return { boot: now.boot, monoMs: now.monoMs, run: RUN_ID };
}

/**
 * True UTC of a time `ms` taken unsynchronized, by the first sync; undefined when the sync cannot
 * place it: taken in an earlier boot (the monotonic clock started again), or before a suspension
 * (it stood still meanwhile). The same rule as for events (stamp.ts `restamp`).
 */
export function placeUnsynced(ms: number, mark: UnsyncedMark, sync: FirstSync): number | undefined {
  if (sync.sleptMs > 0) return undefined;
  if (sync.boot !== undefined && mark.boot === sync.boot && mark.monoMs !== undefined)
    return Math.round(mark.monoMs + sync.offsetMs);
  // This run's, where the boot says nothing against it: one wall-clock reading, one correction.
  if (mark.run === RUN_ID && (mark.boot === undefined || sync.boot === undefined || mark.boot === sync.boot))
    return Math.round(ms + sync.correctionMs);
  return undefined;
}

/**
 * Milliseconds from an unsynchronized time to `now`, on the monotonic clock where both lie in one
 * boot (or one run); undefined where they cannot be compared.
 */
export function unsyncedAgeMs(ms: number, mark: UnsyncedMark, now: TimeEstimate): number | undefined {
  if (mark.boot !== undefined && mark.monoMs !== undefined && now.monoMs !== undefined && mark.boot === now.boot)
    return now.monoMs - mark.monoMs;
  if (mark.run === RUN_ID && now.src === "unsynced") return now.ms - ms;
  return undefined;
}
