// Time zones for device clocks that send local time without a UTC offset (DESIGN.md §4: read in the
// box's configured zone). A zone is an IANA name ("Asia/Shanghai", from the runtime's tz database)
// or a fixed UTC offset ("+08:00"). Pure: no clock is read.
import { parseUtcOffset } from "../../protocols/hl7v2/time.ts";

/** The box's own time zone (TZ, /etc/localtime), as the runtime resolves it: the default of `time.zone`. */
export function systemTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

const formatters = new Map<string, Intl.DateTimeFormat | null>();

function formatter(zone: string): Intl.DateTimeFormat | null {
  let f = formatters.get(zone);
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat("en-US", {
        timeZone: zone,
        hourCycle: "h23",
        year: "numeric",
        month: "numeric",
        day: "numeric",
        hour: "numeric",
        minute: "numeric",
        second: "numeric",
      });
    } catch {
      f = null;
    }
    formatters.set(zone, f);
  }
  return f;
}

/** Minutes east of UTC in `zone` at the instant `utcMs`; undefined for a zone the runtime does not know. */
export function zoneOffsetMinutes(zone: string, utcMs: number): number | undefined {
  const fixed = parseUtcOffset(zone);
  if (fixed !== undefined) return fixed;
  const f = formatter(zone);
  if (!f) return undefined;
  const p = Object.fromEntries(
    f.formatToParts(new Date(Math.floor(utcMs / 1000) * 1000)).map((x) => [x.type, x.value]),
  );
  const local = Date.UTC(
    Number(p.year),
    Number(p.month) - 1,
    Number(p.day),
    Number(p.hour),
    Number(p.minute),
    Number(p.second),
  );
  return Math.round((local - Math.floor(utcMs / 1000) * 1000) / 60_000);
}

/**
 * The UTC offset (minutes) that applies to a local wall time in `zone`, the wall time given as if it
 * were UTC (Date.UTC of its fields). In a daylight-saving change's repeated hour, the earlier.
 */
export function offsetForLocal(zone: string, localMs: number): number | undefined {
  const first = zoneOffsetMinutes(zone, localMs);
  if (first === undefined) return undefined;
  const second = zoneOffsetMinutes(zone, localMs - first * 60_000)!;
  return Math.max(first, second);
}

/** Local date-times without an offset, as carts and monitors write them: 20261123153601[.123], 2026-11-23T15:36:01[.123]. */
const LOCAL = /^(\d{4})-?(\d{2})-?(\d{2})[T ]?(\d{2}):?(\d{2})(?::?(\d{2})(?:\.(\d{1,6}))?)?$/;

/** A local date-time without an offset, read in `zone`, as ISO 8601 UTC; undefined when it is not one. */
export function placeLocalTime(raw: string, zone: string): string | undefined {
  const m = LOCAL.exec(raw.trim());
  if (!m) return undefined;
  const [, y, mo, d, h, mi, sec, frac] = m;
  const ms = frac === undefined ? 0 : Math.round(Number(`0.${frac}`) * 1000);
  const local = Date.UTC(
    Number(y),
    Number(mo) - 1,
    Number(d),
    Number(h),
    Number(mi),
    sec === undefined ? 0 : Number(sec),
    ms,
  );
  const check = new Date(local);
  if (
    Number(h) > 23 ||
    Number(mi) > 59 ||
    Number(sec ?? 0) > 59 ||
    check.getUTCDate() !== Number(d) ||
    check.getUTCMonth() !== Number(mo) - 1
  )
    return undefined;
  const offset = offsetForLocal(zone, local);
  return offset === undefined ? undefined : new Date(local - offset * 60_000).toISOString();
}
