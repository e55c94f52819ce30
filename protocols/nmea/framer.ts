// NMEA 0183 sentence framer.
//
// Source: NMEA 0183 v4.11 §5.3 "Sentence format" (also IEC 61162-1 §7.2): a sentence starts with "$"
// (parametric) or "!" (encapsulation), carries printable ASCII (0x20..0x7E), at most 82 characters
// including the start and <CR><LF>, and ends with <CR><LF>.
//
// Real serial lines stray from that, so the framer is tolerant where a receiver is known to stray and
// bounded everywhere:
//  - a line may end with CR, LF or both (many receivers send LF only);
//  - bytes outside a sentence (u-blox UBX binary, boot banners, noise) are skipped and counted in
//    `skipped`, without an error each: on a shared GPS port they are normal;
//  - "$$GPGGA" (a doubled start, seen on some loggers) starts the sentence at the last "$";
//  - a sentence broken by a non-printable byte or by a new start is reported as NMEA_TRUNCATED when it
//    had at least an address; shorter false starts (a 0x24 inside binary data) are skipped silently;
//  - a line longer than maxSentenceBytes is reported once as NMEA_OVERSIZE and skipped to its end
//    without being held, so an endless line cannot grow memory.
// The frame is the sentence from its start character up to (not including) the line end.
import type { CodecError, FrameResult, Framer } from "../codec.ts";

const CR = 0x0d;
const LF = 0x0a;
const DOLLAR = 0x24;
const BANG = 0x21;

/** NMEA 0183 v4.11 §5.3: 82 characters including start and CRLF. Receivers exceed it (NMEA 4.10 GSV, proprietary), hence a margin. */
export const NMEA_MAX_SENTENCE = 82;
export const NMEA_DEFAULT_MAX_SENTENCE_BYTES = 512;
/** A false start shorter than "$" + a 5-character address is noise, not a broken sentence. */
const MIN_REPORTED = 6;

export interface NmeaFramerOptions {
  /** Longest sentence held (start character to line end); longer lines are skipped. Default 512. */
  maxSentenceBytes?: number;
}

export interface NmeaFramer extends Framer {
  /** Bytes skipped outside sentences so far (binary, noise, false starts). */
  readonly skipped: number;
  end(): FrameResult[];
}

export function nmeaFramer(options: NmeaFramerOptions = {}): NmeaFramer {
  const max = options.maxSentenceBytes ?? NMEA_DEFAULT_MAX_SENTENCE_BYTES;
  if (!Number.isInteger(max) || max < 8) throw new RangeError("maxSentenceBytes must be an integer >= 8");

  let offset = 0;
  const buf = new Uint8Array(max);
  let held = 0; // bytes of the current sentence in buf; 0 = not in a sentence
  let start = 0; // stream offset of the current sentence's start character
  let oversize = false; // skipping the rest of an over-long line
  let skipped = 0;

  function abandon(out: FrameResult[], why: string): void {
    if (held >= MIN_REPORTED) {
      out.push({
        error: {
          code: "NMEA_TRUNCATED",
          message: `NMEA sentence starting at byte ${start} was cut off (${why}); skipped`,
          where: start,
        },
      });
    } else {
      skipped += held;
    }
    held = 0;
  }

  return {
    get pending() {
      return held;
    },
    get skipped() {
      return skipped;
    },
    push(chunk: Uint8Array): FrameResult[] {
      const out: FrameResult[] = [];
      const base = offset;
      offset += chunk.length;
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i]!;
        if (b === DOLLAR || b === BANG) {
          if (held > 0) abandon(out, `a new sentence started at byte ${base + i}`);
          oversize = false;
          buf[0] = b;
          held = 1;
          start = base + i;
          continue;
        }
        if (oversize) {
          if (b === CR || b === LF) oversize = false;
          skipped++;
          continue;
        }
        if (held === 0) {
          if (b !== CR && b !== LF) skipped++;
          continue;
        }
        if (b === CR || b === LF) {
          const frame = buf.slice(0, held);
          held = 0;
          out.push({ frame });
          continue;
        }
        if (b < 0x20 || b > 0x7e) {
          abandon(out, `non-printable byte 0x${b.toString(16).padStart(2, "0")} at byte ${base + i}`);
          skipped++;
          continue;
        }
        if (held >= max) {
          const error: CodecError = {
            code: "NMEA_OVERSIZE",
            message: `NMEA line starting at byte ${start} is longer than ${max} bytes; skipped to its end`,
            where: start,
          };
          out.push({ error });
          skipped += held + 1;
          held = 0;
          oversize = true;
          continue;
        }
        buf[held++] = b;
      }
      return out;
    },
    end(): FrameResult[] {
      // A last line without its terminator (a capture cut at EOF): give it to the parser, whose
      // checksum decides whether it is whole.
      if (held === 0) return [];
      const frame = buf.slice(0, held);
      held = 0;
      if (frame.length >= MIN_REPORTED) return [{ frame }];
      skipped += frame.length;
      return [];
    },
  };
}
