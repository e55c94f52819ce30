// MLLP, the Minimal Lower Layer Protocol that carries HL7 v2 over TCP.
//
// Source: HL7 v2.5.1 Appendix C "Lower Layer Protocols", C.4 "Minimal Lower Layer Protocol (MLLP)",
// and HL7 "Transport Specification: MLLP, Release 2" (HL7 v3 Normative Edition, also referenced by
// IHE PCD TF-2 for PCD-01): a message is <SB> data <EB><CR>, with SB = 0x0B (VT) and
// EB = 0x1C (FS), CR = 0x0D. The data must not contain SB or EB.
//
// Pure: bytes in, frames out. No sockets, no clocks.
import type { CodecError, FrameResult, Framer } from "../codec.ts";

export const MLLP_START = 0x0b;
export const MLLP_END = 0x1c;
export const MLLP_CR = 0x0d;

const LF = 0x0a;

export interface MllpFramerOptions {
  /** Largest frame (the bytes between SB and EB) the framer will hold; larger ones are discarded. */
  maxFrameBytes: number;
}

/** Wraps one HL7 message in an MLLP envelope. */
export function mllpEncode(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length + 3);
  out[0] = MLLP_START;
  out.set(bytes, 1);
  out[bytes.length + 1] = MLLP_END;
  out[bytes.length + 2] = MLLP_CR;
  return out;
}

/**
 * A stream framer for MLLP. Tolerant where senders are known to stray, strict where data could be
 * lost silently:
 *  - bytes outside a frame are garbage: one MLLP_GARBAGE error per run (at its first byte's stream
 *    offset), then skipped. CR and LF between frames are not garbage: many senders end a frame with
 *    <EB><CR><LF> or put a line break between frames.
 *  - EB ends a frame whether or not CR follows (some senders omit it); a CR right after EB is eaten.
 *  - a frame larger than maxFrameBytes: MLLP_OVERSIZE as soon as the limit is passed, and the rest
 *    of it is skipped up to its EB without being held, so memory stays bounded.
 *  - an SB inside a frame (the sender restarted mid-message): MLLP_TRUNCATED for the abandoned
 *    frame, and the new frame starts.
 * Frames and errors come out in stream order, identical however the stream is split into chunks.
 */
export function mllpFramer(options: MllpFramerOptions): Framer {
  const max = options.maxFrameBytes;
  if (!Number.isInteger(max) || max < 1) throw new RangeError("maxFrameBytes must be a positive integer");

  let offset = 0; // stream offset of the next byte to read
  let inFrame = false;
  let frameStart = 0; // stream offset of the current frame's SB
  let parts: Uint8Array[] = [];
  let held = 0; // bytes in parts
  let discarding = false; // inside an oversized frame
  let inGarbage = false;
  let eatCr = false; // the byte before was EB

  function closeFrame(out: FrameResult[]): void {
    if (!discarding) {
      const frame = new Uint8Array(held);
      let at = 0;
      for (const p of parts) {
        frame.set(p, at);
        at += p.length;
      }
      out.push({ frame });
    }
    parts = [];
    held = 0;
    inFrame = false;
    discarding = false;
  }

  function hold(chunk: Uint8Array, from: number, to: number, out: FrameResult[]): void {
    if (discarding || to <= from) return;
    const n = to - from;
    if (held + n > max) {
      const error: CodecError = {
        code: "MLLP_OVERSIZE",
        message: `MLLP frame starting at byte ${frameStart} is larger than maxFrameBytes (${max}); skipping it up to its end block`,
        where: frameStart,
      };
      out.push({ error });
      parts = [];
      held = 0;
      discarding = true;
      return;
    }
    // Copy: the caller may reuse its chunk buffer.
    parts.push(chunk.slice(from, to));
    held += n;
  }

  return {
    get pending() {
      return held;
    },
    push(chunk: Uint8Array): FrameResult[] {
      const out: FrameResult[] = [];
      const base = offset;
      offset += chunk.length;
      let i = 0;
      while (i < chunk.length) {
        if (inFrame) {
          // Scan to the next SB or EB; everything before it is frame content.
          let j = i;
          while (j < chunk.length && chunk[j] !== MLLP_END && chunk[j] !== MLLP_START) j++;
          hold(chunk, i, j, out);
          if (j === chunk.length) break;
          if (chunk[j] === MLLP_END) {
            closeFrame(out);
            eatCr = true;
          } else {
            if (!discarding) {
              out.push({
                error: {
                  code: "MLLP_TRUNCATED",
                  message: `MLLP frame starting at byte ${frameStart} was abandoned: a new start block came at byte ${base + j} before its end block`,
                  where: frameStart,
                },
              });
            }
            parts = [];
            held = 0;
            discarding = false;
            frameStart = base + j;
          }
          i = j + 1;
          continue;
        }
        const b = chunk[i]!;
        if (eatCr) {
          eatCr = false;
          if (b === MLLP_CR) {
            i++;
            continue;
          }
        }
        if (b === MLLP_START) {
          inFrame = true;
          inGarbage = false;
          frameStart = base + i;
        } else if ((b === MLLP_CR || b === LF) && !inGarbage) {
          // a line break between frames: tolerated
        } else if (!inGarbage) {
          inGarbage = true;
          out.push({
            error: {
              code: "MLLP_GARBAGE",
              message: `bytes outside an MLLP frame from byte ${base + i}; skipped up to the next start block`,
              where: base + i,
            },
          });
        }
        i++;
      }
      return out;
    },
  };
}
