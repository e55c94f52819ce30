// A recorded NMEA log (a gpsd regression log, a receiver's output saved with `cat /dev/ttyUSB0`)
// cut into the bursts a receiver sends once per measurement epoch, with the time between them, so a
// simulator can send it again at the rate it was recorded. Logs hold no arrival times: the spacing
// comes from the sentences' own UTC time of day. Pure.
import { decodeNmeaSentence, parseNmeaSentence } from "../../protocols/nmea/index.ts";

export interface LogEpoch {
  /** When to send it, ms after the first epoch. */
  offsetMs: number;
  /** The lines of the epoch as recorded, each ending in CRLF. */
  text: string;
}

const DAY_MS = 86_400_000;
/** Between two recorded epochs: what is taken when the times say nothing sensible (a gap, a jump back). */
const DEFAULT_GAP_MS = 1000;
const MAX_GAP_MS = 10_000;

function timeOfDay(line: string): number | undefined {
  const s = parseNmeaSentence(line);
  if (!s.ok) return undefined;
  const m = decodeNmeaSentence(s.sentence);
  return m.ok && "time" in m.message ? m.message.time?.ms : undefined;
}

/**
 * Splits a log into epochs: a sentence with a UTC time other than the epoch's starts the next one.
 * Comment lines ("#", gpsd's log headers) are left out; lines that are not sentences stay where
 * they are (a receiver's binary or noise is part of what a driver must cope with).
 */
export function nmeaLogEpochs(log: string): LogEpoch[] {
  const epochs: LogEpoch[] = [];
  let lines: string[] = [];
  let tod: number | undefined;
  let offset = 0;
  for (const raw of log.split(/\r?\n/)) {
    if (raw.startsWith("#") || raw === "") continue;
    const t = timeOfDay(raw);
    if (t !== undefined && tod !== undefined && t !== tod && lines.length > 0) {
      epochs.push({ offsetMs: offset, text: lines.join("") });
      lines = [];
      const gap = (t - tod + DAY_MS) % DAY_MS;
      offset += gap > 0 && gap <= MAX_GAP_MS ? gap : DEFAULT_GAP_MS;
    }
    if (t !== undefined) tod = t;
    lines.push(`${raw}\r\n`);
  }
  if (lines.length > 0) epochs.push({ offsetMs: offset, text: lines.join("") });
  return epochs;
}
