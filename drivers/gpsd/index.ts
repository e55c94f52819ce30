// GPS receivers already run by gpsd (https://gpsd.io), read over gpsd's JSON protocol on TCP
// (port 2947): for boxes where gpsd owns the receiver (shared with chronyd, navit, ...), so the
// gateway must not open the serial port itself.
//
// Protocol: gpsd_json(5), "gpsd request/response protocol" (https://gpsd.io/gpsd_json.html). On
// connect gpsd sends a VERSION object; the client sends `?WATCH={"enable":true,"json":true}` (with
// `"device":PATH` to watch one receiver only); gpsd answers with DEVICES and WATCH, then streams
// reports, one JSON object per line: TPV (time-position-velocity) once per receiver epoch, SKY
// (satellites, DOPs), and others (GST, ATT, PPS, TOFF, ...) that we ignore.
//
// TPV fields used (gpsd_json(5) "TPV"): `mode` (always present: 0 no mode seen yet, 1 no fix, 2 2D,
// 3 3D); `time` (ISO 8601 UTC, the receiver's time of the fix; may be absent without a fix); `lat`,
// `lon` (degrees, WGS-84); `altHAE` (height above the ellipsoid) and `altMSL` (above mean sea level),
// or the older `alt` (MSL); `speed` (m/s over ground); `track` (degrees true); `status` (2 DGPS, 3/4
// RTK, 5/6 dead reckoning, 7 surveyed time, 8 simulated, ...); `device`. Error estimates (epx, epy,
// eph, ...) are not used. SKY: `uSat` (satellites used; older gpsd: count `satellites[].used`) and
// `hdop`. TPV has no HDOP and no satellite count, so they come from the latest SKY of the receiver.
//
// Position events have the nmea-gps driver's body (DESIGN.md §3): lat, lon, altM, speedMps,
// courseDeg, fix ("2d"/"3d"; "none" without coordinates when the fix is lost), hdop and sats when a
// SKY gave them. altM is above mean sea level like NMEA GGA's: altMSL, else alt; altHAE is not taken
// (it differs by the geoid separation, tens of metres). Throttling is nmea-gps's, the same module
// (drivers/lib/position.ts): `minIntervalS` by the fix's own UTC, `minDistanceM`, the fix gained or
// lost always sent at once, every fix when `throttle` is false or in `vitalgate decode`.
//
// Time: a TPV with a 2D/3D fix and a `time` hands that UTC to the time service (utcFix); gpsd's TPV
// time is the receiver's UTC for the fix. A simulated fix (status 8, a receiver in demo mode) is
// still shown as a position (gpsd reports it as a fix) but its time is not taken. The TPV leaves
// gpsd when it has the receiver's whole epoch, somewhat later than an NMEA RMC would: within
// `time.gpsUncertaintyMs` for common receivers at 1 Hz, and chrony reading gpsd's SHM is the better
// clock on such boxes anyway. `deviceTime` is the TPV time, `deviceTimeRaw` as gpsd sent it.
//
// `vitalgate decode --driver gpsd FILE` reads `gpspipe -w` output (or gpsd's regression .chk
// files): lines that do not start with "{" are skipped there.
import { z } from "zod";
import { defineDriver } from "../../src/devices/driver.ts";
import type { DriverSession, Exchange, FrameContext, TransportSpec } from "../../src/devices/driver.ts";
import type { EventDraft } from "../../src/events/model.ts";
import type { FrameResult, Framer } from "../../protocols/codec.ts";
import type { FixMode } from "../../protocols/nmea/index.ts";
import { THROTTLE_LABELS, positionBody, positionThrottle, throttleOptionShape } from "../lib/position.ts";
import { lineFramer, type LineFramer } from "../../protocols/lines/index.ts";

/**
 * gpsd's own reports stay well under this (a SKY with every satellite in view is a few KiB); the
 * margin is for newer gpsd versions, not for anything we would want to keep.
 */
export const GPSD_DEFAULT_MAX_LINE_BYTES = 32 * 1024;

/** gpsd's JSON stream: one JSON object per line. */
export function jsonLineFramer(maxLineBytes = GPSD_DEFAULT_MAX_LINE_BYTES): LineFramer {
  return lineFramer({ maxLineBytes, tooLong: "GPSD_LINE_TOO_LONG", from: "gpsd" });
}

/** gpsd_json(5): a request line is at most 80 characters, not counting the newline. */
export const GPSD_MAX_REQUEST = 80;

export const gpsdOptions = z.strictObject({
  host: z.string().min(1).default("127.0.0.1").describe("Address of the gpsd to read (usually this box: 127.0.0.1)."),
  port: z.int().min(1).max(65535).default(2947).describe("gpsd's TCP port (2947 unless gpsd was started with -S)."),
  device: z
    .string()
    .min(1)
    .max(1024)
    .optional()
    .describe(
      "Only this receiver of gpsd's, by the path gpsd knows it under (e.g. /dev/ttyACM0, as `gpspipe -w` shows in DEVICES); left out: every receiver gpsd has (one, on most boxes).",
    ),
  ...throttleOptionShape,
  silentAfterS: z
    .number()
    .min(0.5)
    .max(3600)
    .default(5)
    .describe(
      "gpsd sending nothing for this long is a fault (state silent): with a receiver attached it reports every epoch, fix or not, so silence means gpsd has lost its receiver.",
    ),
});

export type GpsdOptions = z.infer<typeof gpsdOptions>;

/** The WATCH request that starts gpsd's JSON reports; `device` is left to our own filter when the line would be too long for gpsd. */
export function watchCommand(device?: string): string {
  const base = { enable: true, json: true };
  const withDevice = `?WATCH=${JSON.stringify({ ...base, device })};`;
  if (device !== undefined && withDevice.length <= GPSD_MAX_REQUEST) return `${withDevice}\n`;
  return `?WATCH=${JSON.stringify(base)};\n`;
}

const dec = new TextDecoder();
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

function bad(code: string, message: string): Exchange {
  return { ok: false, error: { code, message } };
}

/** The TPV's time as Unix ms: ISO 8601 (protocol 3.x), or seconds since the epoch (older gpsd). */
function tpvTime(v: unknown): number | undefined {
  const ms = typeof v === "string" ? Date.parse(v) : isNum(v) ? v * 1000 : NaN;
  return Number.isFinite(ms) ? ms : undefined;
}

/** One connection to gpsd: the last SKY's DOP and satellite count, and the throttle. */
export function gpsdSession(options: GpsdOptions): DriverSession {
  const throttle = positionThrottle(options);
  let sats: number | undefined;
  let hdop: number | undefined;

  function sky(o: Record<string, unknown>): void {
    if (isNum(o.uSat)) sats = o.uSat;
    else if (Array.isArray(o.satellites))
      sats = o.satellites.filter(
        (s) => typeof s === "object" && s !== null && (s as { used?: unknown }).used === true,
      ).length;
    if (isNum(o.hdop)) hdop = o.hdop;
  }

  function tpv(o: Record<string, unknown>, context: FrameContext): Exchange {
    const m = o.mode;
    if (m !== 0 && m !== 1 && m !== 2 && m !== 3)
      return bad("GPSD_BAD_TPV", "a TPV report from gpsd has no valid mode (0-3)");
    const mode: FixMode = m === 3 ? "3d" : m === 2 ? "2d" : "none";
    const fixed = mode !== "none";
    if (fixed && o.lat === undefined && o.lon === undefined) {
      // gpsd reports a mode alone too (a receiver's GSA arriving before its position): nothing to send.
      return { ok: true, events: [] };
    }
    if (fixed && !(isNum(o.lat) && isNum(o.lon) && Math.abs(o.lat) <= 90 && Math.abs(o.lon) <= 180)) {
      return bad("GPSD_BAD_TPV", `a TPV report from gpsd says ${mode} but has no valid lat/lon`);
    }
    // Without a fix, a time (if any) is the receiver's clock: shown as the event's device time, as
    // nmea-gps does with an RMC V, but not handed to the time service.
    const timeMs = tpvTime(o.time);
    const onGpsTime = fixed && timeMs !== undefined;
    const lat = fixed ? (o.lat as number) : undefined;
    const lon = fixed ? (o.lon as number) : undefined;
    const atMs = onGpsTime ? timeMs : context.nowMs;
    const utcFix = onGpsTime && o.status !== 8 ? timeMs : undefined;
    const events: EventDraft[] = [];
    if (throttle.admit({ mode, atMs, onGpsTime, lat, lon }, context.replay === true)) {
      const altM = isNum(o.altMSL) ? o.altMSL : isNum(o.alt) ? o.alt : undefined;
      const body = positionBody({
        mode,
        lat,
        lon,
        altM: mode === "3d" ? altM : undefined,
        speedMps: fixed && isNum(o.speed) ? o.speed : undefined,
        courseDeg: fixed && isNum(o.track) ? o.track : undefined,
        hdop,
        sats,
      });
      const draft: EventDraft = { kind: "position", body };
      if (timeMs !== undefined) {
        draft.deviceTime = new Date(timeMs).toISOString();
        draft.deviceTimeRaw = typeof o.time === "string" ? o.time : String(o.time);
      }
      events.push(draft);
    }
    return utcFix === undefined ? { ok: true, events } : { ok: true, events, utcFix };
  }

  return {
    open: () => [new TextEncoder().encode(watchCommand(options.device))],
    handle(frame: Uint8Array, context: FrameContext): Exchange {
      if (frame.length > GPSD_DEFAULT_MAX_LINE_BYTES)
        return bad(
          "GPSD_LINE_TOO_LONG",
          `a line from gpsd is ${frame.length} bytes, over ${GPSD_DEFAULT_MAX_LINE_BYTES}`,
        );
      let o: unknown;
      try {
        o = JSON.parse(dec.decode(frame));
      } catch {
        return bad("GPSD_BAD_JSON", `a line from gpsd (${frame.length} bytes) is not JSON`);
      }
      if (
        typeof o !== "object" ||
        o === null ||
        Array.isArray(o) ||
        typeof (o as { class?: unknown }).class !== "string"
      ) {
        return bad("GPSD_NO_CLASS", "a line from gpsd is not a JSON object with a class");
      }
      const r = o as Record<string, unknown>;
      // Another receiver's report, when one was asked for (gpsd may not have filtered: see watchCommand).
      if (options.device !== undefined && typeof r.device === "string" && r.device !== options.device)
        return { ok: true, events: [] };
      switch (r.class) {
        case "TPV":
          return tpv(r, context);
        case "SKY":
          sky(r);
          return { ok: true, events: [] };
        case "ERROR":
          return bad(
            "GPSD_ERROR",
            `gpsd reported an error: ${typeof r.message === "string" ? r.message.slice(0, 200) : "(no message)"}`,
          );
        default:
          // VERSION, DEVICES, DEVICE, WATCH, GST, ATT, PPS, TOFF, ...: nothing for us.
          return { ok: true, events: [] };
      }
    },
  };
}

/** For `vitalgate decode`: `gpspipe -w` output or a gpsd .chk file, of which only the JSON lines count. */
function captureFramer(): Framer {
  const lines = jsonLineFramer();
  const json = (rs: FrameResult[]) => rs.filter((r) => "error" in r || r.frame[0] === 0x7b);
  return {
    push: (chunk) => json(lines.push(chunk)),
    end: () => json(lines.end()),
    get pending() {
      return lines.pending;
    },
  };
}

function transport(o: GpsdOptions): TransportSpec {
  return { type: "tcp-connect", host: o.host, port: o.port };
}

export const gpsd = defineDriver<GpsdOptions>({
  id: "gpsd",
  kind: "gps",
  sends: ["position"],
  title: { en: "GPS receiver through gpsd (JSON over TCP)", zh: "GPS 接收机（经 gpsd，TCP 上的 JSON）" },
  options: gpsdOptions,
  labels: {
    host: { zh: "gpsd 地址", en: "gpsd address", helpZh: "要读取的 gpsd 的地址（通常就是本机：127.0.0.1）。" },
    port: { zh: "gpsd 端口", en: "gpsd port", helpZh: "gpsd 的 TCP 端口（除非 gpsd 用 -S 另设，否则为 2947）。" },
    device: {
      zh: "接收机",
      en: "Receiver",
      helpZh: "只读 gpsd 的这一个接收机，按 gpsd 所知的路径（例如 /dev/ttyACM0，gpspipe -w 的 DEVICES 里可见）。",
    },
    ...THROTTLE_LABELS,
    silentAfterS: {
      zh: "无数据判定（秒）",
      en: "Silent after (s)",
      helpZh: "gpsd 这么久没有发来任何数据，就判为故障（无数据）。",
    },
  },
  transport,
  framer: () => jsonLineFramer(),
  captureFramer,
  silentAfterMs: (o) => o.silentAfterS * 1000,
  session: gpsdSession,
});
