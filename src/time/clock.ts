// The gateway's notion of now. Stamping reads a monotonic clock plus an offset taken once, never the
// raw wall clock, so a wall-clock step (NTP jump, RTC reset) cannot move event times backwards.
// The synchronized time service (GPS, NTP, chrony) replaces `systemClock` with a disciplined source.

/** Where the gateway's time comes from (docs/time.md). */
export type TimeSource = "gps" | "ntp" | "system" | "unsynced";

export interface TimeEstimate {
  /** Best estimate of true UTC, Unix ms. */
  ms: number;
  /** Source of the estimate. */
  src: TimeSource;
  /** Uncertainty, ms. */
  uncMs: number;
  /** Unsynchronized estimates only: the kernel's boot id and the monotonic ms since boot, so the stamp can be corrected later (src/time/boot.ts). */
  boot?: string;
  monoMs?: number;
  /** Only when unsynchronized: `uncMs` is a placeholder, not a bound (the box's clock may be decades off). */
  unbounded?: true;
  /**
   * Set on estimates made after the gateway's time stepped back by this much (ms, negative), while
   * they are not later than the last stamp made before the step: such a time may be earlier than
   * one made before it. Order events by `seq`.
   */
  stepBackMs?: number;
}

export interface Clock {
  now(): TimeEstimate;
  /** Monotonic milliseconds, for timers and ages. */
  monoMs(): number;
}

/** The system clock, read once at start and advanced monotonically from there. */
export function systemClock(): Clock {
  const wallAtStart = Date.now();
  const monoAtStart = performance.now();
  return {
    now: () => ({ ms: Math.round(wallAtStart + (performance.now() - monoAtStart)), src: "system", uncMs: 1000 }),
    monoMs: () => performance.now(),
  };
}
