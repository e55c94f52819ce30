// NMEA 0183 for GNSS receivers: framer, sentence parser, typed messages, position assembler.
// Pure: bytes in, messages and fixes out.
import type { CodecError } from "../codec.ts";
import { nmeaFramer } from "./framer.ts";
import type { NmeaFramerOptions } from "./framer.ts";
import { decodeNmeaSentence } from "./messages.ts";
import type { NmeaMessage } from "./messages.ts";
import { parseNmeaSentence } from "./sentence.ts";

export { nmeaFramer, NMEA_DEFAULT_MAX_SENTENCE_BYTES, NMEA_MAX_SENTENCE } from "./framer.ts";
export type { NmeaFramer, NmeaFramerOptions } from "./framer.ts";
export { parseNmeaSentence, nmeaChecksum, formatNmeaSentence } from "./sentence.ts";
export type { NmeaSentence, NmeaSentenceResult } from "./sentence.ts";
export { decodeNmeaSentence, NMEA_GNSS_TALKERS, GGA_QUALITY, nmeaYear } from "./messages.ts";
export type {
  NmeaMessage,
  NmeaMessageResult,
  NmeaTime,
  NmeaDate,
  GgaMessage,
  RmcMessage,
  GnsMessage,
  GllMessage,
  VtgMessage,
  GsaMessage,
  ZdaMessage,
  OtherMessage,
} from "./messages.ts";
export { nmeaPositionAssembler } from "./position.ts";
export type { PositionFix, FixMode, NmeaPositionAssembler } from "./position.ts";

export type NmeaDecoded = { ok: true; message: NmeaMessage } | { ok: false; error: CodecError };

export interface NmeaStreamDecoder {
  /** Feeds bytes as they arrive; returns messages and errors in stream order. */
  push(chunk: Uint8Array): NmeaDecoded[];
  /** End of input: a last sentence without its line end. */
  end(): NmeaDecoded[];
  readonly pending: number;
  /** Bytes skipped outside sentences (binary, noise). */
  readonly skipped: number;
}

/** Framer + sentence parser + message decoder in one: what a GPS driver feeds its port's bytes to. */
export function nmeaStreamDecoder(options: NmeaFramerOptions = {}): NmeaStreamDecoder {
  const framer = nmeaFramer(options);
  const decode = (results: ReturnType<typeof framer.push>): NmeaDecoded[] =>
    results.map((r) => {
      if ("error" in r) return { ok: false, error: r.error };
      const s = parseNmeaSentence(r.frame);
      return s.ok ? decodeNmeaSentence(s.sentence) : s;
    });
  return {
    push: (chunk) => decode(framer.push(chunk)),
    end: () => decode(framer.end()),
    get pending() {
      return framer.pending;
    },
    get skipped() {
      return framer.skipped;
    },
  };
}
