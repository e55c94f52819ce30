// HL7 v2 time stamps (TS / DTM): YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ].

export interface Hl7Time {
  /** As sent. */
  raw: string;
  /** The instant in UTC (ISO 8601), when the stamp has an offset or one was assumed. */
  iso?: string;
  /** The stamp had its own UTC offset. */
  hasOffset: boolean;
}

const TS = /^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4})|(\d{3}))?([+-]\d{4})?$/;

/** Minutes east of UTC from "+0800", "+08:00", "-0530"; undefined if malformed. */
export function parseUtcOffset(offset: string): number | undefined {
  const m = /^([+-])(\d{2}):?(\d{2})$/.exec(offset.trim());
  if (!m) return undefined;
  const h = Number(m[2]);
  const min = Number(m[3]);
  if (h > 14 || min > 59) return undefined;
  return (m[1] === "-" ? -1 : 1) * (h * 60 + min);
}

/**
 * The UTC offset (minutes east) to read local times in: a fixed one, or one that depends on the
 * local time itself (a zone with daylight saving), given as if it were UTC (Date.UTC of its fields).
 */
export type AssumedOffset = number | ((localMs: number) => number | undefined);

/**
 * Parses an HL7 time stamp. Without an offset in the stamp the time is the device's local time and
 * says nothing about UTC: `iso` is then only set when `assumeOffsetMinutes` is given (a configured
 * device or box time zone). Stamps less precise than minutes give no `iso` (too coarse for a measurement).
 * Returns undefined for an empty string; a malformed stamp gives just `raw`.
 */
export function parseHl7Time(raw: string, assumeOffsetMinutes?: AssumedOffset): Hl7Time | undefined {
  const s = raw.trim();
  if (s === "") return undefined;
  const m = TS.exec(s);
  if (!m) return { raw, hasOffset: false };
  const [, y, mo, d, h, mi, sec, frac, msNoDot, off] = m;
  const hasOffset = off !== undefined;
  if (mi === undefined) return { raw, hasOffset };
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = sec === undefined ? 0 : Number(sec);
  // Some monitors send milliseconds without the dot (YYYYMMDDHHMMSSsss).
  const ms = frac !== undefined ? Math.round(Number(`0.${frac}`) * 1000) : msNoDot !== undefined ? Number(msNoDot) : 0;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59)
    return { raw, hasOffset };
  const local = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  const check = new Date(local);
  if (check.getUTCDate() !== day || check.getUTCMonth() !== month - 1) return { raw, hasOffset }; // 31 February
  const offsetMin = hasOffset
    ? parseUtcOffset(off)
    : typeof assumeOffsetMinutes === "function"
      ? assumeOffsetMinutes(local)
      : assumeOffsetMinutes;
  if (offsetMin === undefined) return { raw, hasOffset };
  return { raw, hasOffset, iso: new Date(local - offsetMin * 60_000).toISOString() };
}

/** Formats an instant as an HL7 TS with a +0000 offset, to the second. */
export function formatHl7Time(date: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(date.getUTCFullYear(), 4)}${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}${p(date.getUTCHours())}${p(date.getUTCMinutes())}${p(date.getUTCSeconds())}+0000`;
}
