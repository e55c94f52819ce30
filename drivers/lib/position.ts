// What the GPS drivers (nmea-gps, gpsd) share: the position event body (DESIGN.md §3) and the
// position throttle. Pure: no clock, no I/O; the
// times it judges by are the fixes' own (or the gateway's, handed in, for a fix without one).
//  - the first position, and gaining or losing the fix (none ↔ 2D/3D), are always due;
//  - no fix after no fix is not (a lost fix is said once);
//  - unthrottled (`throttle: false`) or replayed (`vitalgate decode`), every fix is due;
//  - otherwise a fix is due when `minIntervalS` has passed since the last one let through, when the
//    clock it is judged by went backwards or changed (receiver's UTC ↔ gateway time), or when the
//    vehicle has moved `minDistanceM` from the last one let through (great-circle distance).
// 2D ↔ 3D changes go through the throttle: they flap in town and change nothing a dispatcher uses.
import { z } from "zod";
import type { OptionLabels } from "../../src/devices/driver.ts";
import type { FixMode, PositionFix } from "../../protocols/nmea/index.ts";
import { distanceM } from "../../protocols/geo.ts";

/** The position body of DESIGN.md §3; coordinates only with a fix. */
export function positionBody(
  fix: Pick<PositionFix, "mode" | "lat" | "lon" | "altM" | "speedMps" | "courseDeg" | "hdop" | "sats">,
): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (fix.mode !== "none") {
    body.lat = fix.lat;
    body.lon = fix.lon;
    if (fix.altM !== undefined) body.altM = fix.altM;
    if (fix.speedMps !== undefined) body.speedMps = fix.speedMps;
    if (fix.courseDeg !== undefined) body.courseDeg = fix.courseDeg;
  }
  body.fix = fix.mode;
  if (fix.hdop !== undefined) body.hdop = fix.hdop;
  if (fix.sats !== undefined) body.sats = fix.sats;
  return body;
}

/** The throttle's options, as both GPS drivers declare them. */
/** The pairing form's names for the options of `throttleOptionShape`. */
export const THROTTLE_LABELS: OptionLabels = {
  throttle: {
    zh: "节流",
    en: "Throttle",
    helpZh: "打开时只发送移动了足够距离或间隔足够久的定位；关闭则每个定位（约每秒一个）都发送。",
  },
  minIntervalS: {
    zh: "最长发送间隔（秒）",
    en: "At least every (s)",
    helpZh: "车辆停着不动时，至少每隔这么久发送一次定位。",
  },
  minDistanceM: {
    zh: "最小移动距离（米）",
    en: "Distance to send (m)",
    helpZh: "车辆离上次发送的位置超过这个距离就立即发送。",
  },
};

export const throttleOptionShape = {
  throttle: z
    .boolean()
    .default(true)
    .describe(
      "false: every fix becomes a position event (about one a second), not only those that moved or aged enough.",
    ),
  minIntervalS: z
    .number()
    .min(0)
    .max(86_400)
    .default(5)
    .describe("A position is sent at least this often while the vehicle stands still, in seconds."),
  minDistanceM: z
    .number()
    .min(0)
    .max(100_000)
    .default(20)
    .describe("A position is sent as soon as the vehicle has moved this far from the last one sent, in metres."),
};

export interface ThrottleOptions {
  throttle: boolean;
  minIntervalS: number;
  minDistanceM: number;
}

/** One fix as the throttle sees it. */
export interface ThrottleSample {
  mode: FixMode;
  /** The fix's UTC (ms) when it has one, else the gateway's time when it was handled. */
  atMs: number;
  /** `atMs` is the receiver's UTC. */
  onGpsTime: boolean;
  /** With a 2D/3D fix. */
  lat?: number;
  lon?: number;
}

export interface PositionThrottle {
  /** Whether this fix is to be sent; if it is, it becomes the one later fixes are judged against. */
  admit(sample: ThrottleSample, replay?: boolean): boolean;
}

/** Whether `next` is due after `last` (the last fix let through, none yet when undefined). */
export function positionDue(
  last: ThrottleSample | undefined,
  next: ThrottleSample,
  options: ThrottleOptions,
  replay = false,
): boolean {
  if (last === undefined) return true;
  const hadFix = last.mode !== "none";
  const hasFix = next.mode !== "none";
  if (hadFix !== hasFix) return true;
  // No fix, still no fix: said already.
  if (!hasFix) return false;
  if (!options.throttle || replay) return true;
  if (next.onGpsTime !== last.onGpsTime) return true;
  const elapsed = next.atMs - last.atMs;
  // A clock going backwards (a GPS week rollover fixed, a replug onto another receiver) is news too.
  if (elapsed < 0 || elapsed >= options.minIntervalS * 1000) return true;
  return distanceM({ lat: last.lat!, lon: last.lon! }, { lat: next.lat!, lon: next.lon! }) >= options.minDistanceM;
}

/** A throttle for one connection: remembers the last fix let through. */
export function positionThrottle(options: ThrottleOptions): PositionThrottle {
  let last: ThrottleSample | undefined;
  return {
    admit(sample, replay = false) {
      if (!positionDue(last, sample, options, replay)) return false;
      last = { ...sample };
      return true;
    },
  };
}
