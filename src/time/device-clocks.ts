// Each device's clock, as seen from the gateway's (DESIGN.md §4). Monitors and carts keep their own
// clocks, often minutes off. Every live message gives one sample of (device time − receive time);
// the skew is the median of the last samples, so a message that was queued in the device, or an
// episodic measurement reported late, does not move it. When `recent` consecutive samples all jump
// away from the median by more than `jumpMs`, to the same side, and agree with each other within
// `agreeMs` (someone set the device's clock), the window restarts from them. A backlog (messages
// buffered during a link drop, sent back to back, each with its own older time) does not: its
// samples are spread by their ages (a backlog of messages made less than `agreeMs` apart is the
// one it cannot tell from a clock set back).
//
// Records made and sent later on purpose (a 12-lead ECG reviewed before sending, a lab result) are
// no samples: their device time is the acquisition time, minutes before sending. They are corrected
// with the device's last known skew.
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import type { EventDraft, EventKind } from "../events/model.ts";
import { deviceTimeMs } from "../events/stamp.ts";

/** Kinds a device sends as it measures: their device time is close to the time of sending. */
export const LIVE_KINDS: ReadonlySet<EventKind> = new Set(["vitals", "alarm", "waveform", "position"]);

export interface DeviceClockOptions {
  /** A device whose clock is off by more than this raises a `device` event. */
  thresholdMs: number;
  /** Samples the median is taken over. */
  window?: number;
  /** Latest samples that, together, can restart the window. */
  recent?: number;
  /** How far each of the recent samples must be from the window's median to count as a clock change. */
  jumpMs?: number;
  /** How closely the recent samples must agree with each other to be a clock change (device times are to the second). */
  agreeMs?: number;
  /** A record (an ECG) whose device time is this much before its arrival is reported as suspect. */
  recordLateMs?: number;
  /** Samples needed before a skew is judged (corrections apply from the first). */
  minSamples?: number;
}

/** A change to report as a `device` event. */
export type ClockChange =
  | { state: "clock-skew"; skewMs: number; thresholdMs: number }
  | { state: "clock-ok"; skewMs: number; thresholdMs: number };

/**
 * What a record sent later on purpose (an ECG) says about a device clock with no live samples: its
 * device time is after its arrival (the clock is fast by at least `aheadMs`), or long before it (a
 * late send, or a slow clock: `lateMs`).
 */
export type RecordCheck =
  | { state: "clock-ahead"; aheadMs: number; thresholdMs: number }
  | { state: "clock-suspect"; lateMs: number; thresholdMs: number };

export interface DeviceClockView {
  id: string;
  /** Device clock minus true time, ms (positive: the device is fast). */
  skewMs: number;
  samples: number;
  state: "ok" | "skewed";
}

/** What is kept across restarts: the last known skew of each device. */
export type DeviceClockSnapshot = Record<string, { skewMs: number }>;

class DeviceClock {
  /** The window, oldest first. */
  samples: number[] = [];
  /** The same samples in ascending order, kept as they come and go: the median without a sort per message. */
  sorted: number[] = [];
  /** Consecutive samples that disagree with the median, to the same side, and agree with each other. */
  pending: number[] = [];
  skewMs: number | undefined;
  /** The state last reported in a `device` event. */
  reported: "ok" | "skewed" = "ok";
  /** Skew known from a previous run only (no samples yet in this one). */
  carried = false;
}

function median(xs: readonly number[]): number {
  if (xs.length === 3) {
    const [a, b, c] = xs as [number, number, number];
    return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
  }
  return medianOfSorted([...xs].sort((a, b) => a - b));
}

function medianOfSorted(s: readonly number[]): number {
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Where `x` goes in ascending `s` (the first index whose value is not below it). */
function lowerBound(s: readonly number[], x: number): number {
  let lo = 0;
  let hi = s.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (s[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class DeviceClocks {
  readonly options: Required<DeviceClockOptions>;
  #clocks = new Map<string, DeviceClock>();

  constructor(options: DeviceClockOptions) {
    this.options = {
      window: 31,
      recent: 3,
      jumpMs: 10_000,
      agreeMs: 2000,
      minSamples: 3,
      recordLateMs: 600_000,
      ...options,
    };
  }

  /**
   * One message from a device, received at `recvMs` on the gateway's clock. Its live drafts give one
   * sample, from the latest device time among them (the closest to when it was sent). Returns the
   * skew to correct the message's times with, or undefined when none is known.
   */
  observe(deviceId: string, drafts: readonly EventDraft[], recvMs: number, synced = true): number | undefined {
    let latest = -Infinity;
    for (const d of drafts) {
      if (d.deviceTime === undefined || !LIVE_KINDS.has(d.kind)) continue;
      const ms = deviceTimeMs(d.deviceTime);
      if (ms > latest) latest = ms;
    }
    let clock = this.#clocks.get(deviceId);
    if (latest === -Infinity) {
      // A skew from a previous run is on the true timeline; while this run is unsynchronized its
      // stamps are not, so it is applied when they are corrected (restamp), not now.
      return clock?.carried && !synced ? undefined : clock?.skewMs;
    }
    if (!clock) {
      clock = new DeviceClock();
      this.#clocks.set(deviceId, clock);
    }
    this.#add(clock, latest - recvMs);
    return clock.skewMs;
  }

  /** The device's skew on the gateway's synchronized timeline, when known (a previous run's included). */
  skewOf(deviceId: string): number | undefined {
    return this.#clocks.get(deviceId)?.skewMs;
  }

  #add(clock: DeviceClock, sample: number): void {
    const o = this.options;
    if (clock.carried) {
      clock.carried = false;
      clock.samples = [];
      clock.sorted = [];
    }
    clock.samples.push(sample);
    clock.sorted.splice(lowerBound(clock.sorted, sample), 0, sample);
    if (clock.samples.length > o.window) clock.sorted.splice(lowerBound(clock.sorted, clock.samples.shift()!), 1);
    const all = medianOfSorted(clock.sorted);
    if (clock.samples.length > o.recent && this.#changed(clock, sample, all)) {
      const run = clock.pending;
      clock.samples = [...run];
      clock.sorted = [...run].sort((a, b) => a - b);
      clock.skewMs = median(run);
      clock.pending = [];
      return;
    }
    clock.skewMs = all;
  }

  /**
   * Whether this sample completes a clock change: `recent` consecutive samples beyond `jumpMs` of
   * the median, on one side, within `agreeMs` of each other.
   */
  #changed(clock: DeviceClock, sample: number, all: number): boolean {
    const o = this.options;
    const side = Math.sign(sample - all);
    if (Math.abs(sample - all) <= o.jumpMs) {
      clock.pending = [];
      return false;
    }
    const first = clock.pending[0];
    if (first === undefined || Math.sign(first - all) !== side || Math.abs(sample - first) > o.agreeMs)
      clock.pending = [];
    clock.pending.push(sample);
    return clock.pending.length >= o.recent;
  }

  /**
   * A record sent later on purpose (an ECG), from a device whose skew is not known from live
   * samples: its device time can still show the clock is wrong. Returns what to report, if anything.
   */
  checkRecord(deviceId: string, deviceMs: number, recvMs: number): RecordCheck | undefined {
    const clock = this.#clocks.get(deviceId);
    if (clock !== undefined && !clock.carried && clock.samples.length > 0) return undefined; // judged by its live samples
    const corrected = deviceMs - (clock?.skewMs ?? 0);
    const thresholdMs = this.options.thresholdMs;
    if (corrected - recvMs > thresholdMs)
      return { state: "clock-ahead", aheadMs: Math.round(corrected - recvMs), thresholdMs };
    if (recvMs - corrected > this.options.recordLateMs)
      return { state: "clock-suspect", lateMs: Math.round(recvMs - corrected), thresholdMs: this.options.recordLateMs };
    return undefined;
  }

  /**
   * Whether the device's clock has crossed the threshold since it was last reported. Call `commit`
   * once the `device` event saying so is stored.
   */
  change(deviceId: string): ClockChange | undefined {
    const clock = this.#clocks.get(deviceId);
    if (!clock || clock.skewMs === undefined || clock.samples.length < this.options.minSamples) return undefined;
    const skewMs = Math.round(clock.skewMs);
    const thresholdMs = this.options.thresholdMs;
    const skewed = Math.abs(skewMs) > thresholdMs;
    if (skewed && clock.reported === "ok") return { state: "clock-skew", skewMs, thresholdMs };
    if (!skewed && clock.reported === "skewed") return { state: "clock-ok", skewMs, thresholdMs };
    return undefined;
  }

  commit(deviceId: string, change: ClockChange): void {
    const clock = this.#clocks.get(deviceId);
    if (clock) clock.reported = change.state === "clock-skew" ? "skewed" : "ok";
  }

  /**
   * The gateway's own timeline moved by `correctionMs` (its first sync, or a step or slew after it):
   * every sample measured against the old one is off by as much, the other way. Skews carried from
   * a previous run were measured against that run's synchronized time: they stay.
   */
  shift(correctionMs: number): void {
    for (const c of this.#clocks.values()) {
      if (c.carried) continue;
      c.samples = c.samples.map((s) => s - correctionMs);
      c.sorted = c.sorted.map((s) => s - correctionMs);
      c.pending = c.pending.map((p) => p - correctionMs);
      if (c.skewMs !== undefined) c.skewMs -= correctionMs;
    }
  }

  /** A device removed from the gateway: its clock is no longer listed nor kept. */
  forget(deviceId: string): void {
    this.#clocks.delete(deviceId);
  }

  list(): DeviceClockView[] {
    return [...this.#clocks]
      .filter(([, c]) => c.skewMs !== undefined)
      .map(([id, c]) => ({
        id,
        skewMs: Math.round(c.skewMs!),
        samples: c.samples.length,
        state: c.reported === "skewed" ? "skewed" : "ok",
      }));
  }

  snapshot(): DeviceClockSnapshot {
    return Object.fromEntries(this.list().map((d) => [d.id, { skewMs: d.skewMs }]));
  }

  /**
   * Last known skews from a previous run: used until the device's own samples arrive (a cart that
   * only sends the odd ECG). Not judged against the threshold: no sample of this run backs them.
   */
  restore(snapshot: DeviceClockSnapshot): void {
    for (const [id, { skewMs }] of Object.entries(snapshot)) {
      if (this.#clocks.has(id) || !Number.isFinite(skewMs)) continue;
      const c = new DeviceClock();
      c.skewMs = skewMs;
      c.carried = true;
      this.#clocks.set(id, c);
    }
  }
}

/** Reads the skews kept by a previous run; an absent or unreadable file is an empty one. */
export function loadDeviceClocks(path: string): DeviceClockSnapshot {
  try {
    const parsed = JSON.parse(readFileSync(path, "utf8")) as unknown;
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
      ? (parsed as DeviceClockSnapshot)
      : {};
  } catch {
    return {};
  }
}

/** Keeps the skews for the next run (written whole, then renamed into place). */
export function saveDeviceClocks(path: string, snapshot: DeviceClockSnapshot): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(snapshot) + "\n");
  renameSync(tmp, path);
}
