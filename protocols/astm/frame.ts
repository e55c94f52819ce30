// ASTM E1381 (CLSI LIS1-A) frames: <STX> FN text <ETB|ETX> C1 C2 <CR><LF>.
//
// Source: ASTM E1381-02 / CLSI LIS1-A §6.3 "Transfer phase": FN is the frame number, one ASCII digit
// 0-7; the first frame of a transfer is 1, then modulo 8 (§6.3.2.2). A message longer than 240
// characters is split into intermediate frames ending with ETB; the last frame ends with ETX
// (§6.3.1). C1 C2: the checksum, the sum modulo 256 of the characters from FN up to and including
// ETB/ETX, as two ASCII hex digits, upper case (§6.3.3). Frame text may not hold the control
// characters SOH STX ETX EOT ENQ ACK DLE NAK SYN ETB LF DC1-DC4 (§6.3.1.2); CR ends records.
import type { CodecError, FrameResult, Framer } from "../codec.ts";

// E1381 §6.1 control characters.
export const STX = 0x02;
export const ETX = 0x03;
export const EOT = 0x04;
export const ENQ = 0x05;
export const ACK = 0x06;
export const LF = 0x0a;
export const CR = 0x0d;
export const NAK = 0x15;
export const ETB = 0x17;

/** E1381 §6.3.1: at most 247 characters per frame (240 of text). Analysers exceed it (Sysmex XN sends whole messages), hence a larger default cap. */
export const ASTM_MAX_FRAME = 247;
export const ASTM_DEFAULT_MAX_FRAME_BYTES = 64 * 1024;

export interface AstmFrame {
  /** Frame number 0-7. */
  number: number;
  /** Text between FN and ETB/ETX (records, CR-terminated). */
  text: Uint8Array;
  /** true: ETX (last frame of a message); false: ETB (intermediate frame). */
  final: boolean;
}

export type AstmFrameResult = { ok: true; frame: AstmFrame } | { ok: false; error: CodecError };

/** Characters E1381 §6.3.1.2 forbids in frame text. */
function forbidden(b: number): boolean {
  return b < 0x20 && b !== CR && b !== 0x09 ? true : b === 0x7f;
}

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, "0");
}

/** E1381 §6.3.3 checksum over FN..ETB/ETX. */
export function astmChecksum(bytes: Uint8Array, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum = (sum + bytes[i]!) & 0xff;
  return sum;
}

/** Encodes one frame (for simulators and tests). */
export function encodeAstmFrame(number: number, text: Uint8Array, final: boolean): Uint8Array {
  const out = new Uint8Array(text.length + 7);
  out[0] = STX;
  out[1] = 0x30 + (number & 7);
  out.set(text, 2);
  out[2 + text.length] = final ? ETX : ETB;
  const cs = hex2(astmChecksum(out, 1, 3 + text.length));
  out[3 + text.length] = cs.charCodeAt(0);
  out[4 + text.length] = cs.charCodeAt(1);
  out[5 + text.length] = CR;
  out[6 + text.length] = LF;
  return out;
}

/** Splits a message's text into frames of at most 240 text characters, numbered from `first`. */
export function encodeAstmMessage(text: Uint8Array, first = 1, maxText = 240): Uint8Array[] {
  const frames: Uint8Array[] = [];
  let n = first;
  for (let at = 0; at < text.length || frames.length === 0; at += maxText) {
    const part = text.subarray(at, Math.min(text.length, at + maxText));
    frames.push(encodeAstmFrame(n, part, at + maxText >= text.length));
    n = (n + 1) % 8;
  }
  return frames;
}

function fail(code: string, message: string, where?: number): { ok: false; error: CodecError } {
  return { ok: false, error: where === undefined ? { code, message } : { code, message, where } };
}

function describe(b: number | undefined): string {
  if (b === undefined) return "nothing";
  return b >= 0x20 && b < 0x7f ? `'${String.fromCharCode(b)}'` : `byte 0x${hex2(b)}`;
}

/**
 * Checks one frame: from STX to the CR after the checksum (the LF is optional: some analysers omit
 * it). Refuses what is not ASTM with the reason: no frame number, control characters in the text,
 * no end, no checksum. Never throws.
 */
export function parseAstmFrame(bytes: Uint8Array): AstmFrameResult {
  // (the frame's own end is CR LF; either alone is accepted, see below)
  if (bytes[0] !== STX)
    return fail("ASTM_NOT_ASTM", `not an ASTM E1381 frame: it starts with ${describe(bytes[0])}, not STX`, 0);
  const fn = bytes[1];
  if (fn === undefined || fn < 0x30 || fn > 0x37) {
    return fail(
      "ASTM_NOT_ASTM",
      `not an ASTM E1381 frame: STX is followed by ${describe(fn)}, not a frame number 0-7`,
      1,
    );
  }
  let end = -1;
  for (let i = 2; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === ETX || b === ETB) {
      end = i;
      break;
    }
    if (forbidden(b)) {
      return fail(
        "ASTM_NOT_ASTM",
        `not ASTM E1381: frame text holds control ${describe(b)} at offset ${i}, which E1381 §6.3.1.2 forbids`,
        i,
      );
    }
  }
  if (end < 0) return fail("ASTM_NOT_ASTM", "not an ASTM E1381 frame: no ETX or ETB ends the text", bytes.length);
  const c1 = bytes[end + 1];
  const c2 = bytes[end + 2];
  const given = c1 !== undefined && c2 !== undefined ? String.fromCharCode(c1, c2) : "";
  if (!/^[0-9A-Fa-f]{2}$/.test(given)) {
    return fail(
      "ASTM_NOT_ASTM",
      `not an ASTM E1381 frame: ${bytes[end] === ETX ? "ETX" : "ETB"} is followed by ${describe(c1)}, not a two-digit hex checksum`,
      end + 1,
    );
  }
  const want = astmChecksum(bytes, 1, end + 1);
  if (parseInt(given, 16) !== want) {
    return fail(
      "ASTM_BAD_CHECKSUM",
      `frame ${fn - 0x30}: checksum ${given} does not match its content (should be ${hex2(want)})`,
      end + 1,
    );
  }
  // §6.3.1 ends a frame with CR LF; captures and some analysers keep only one of them
  if (bytes[end + 3] !== undefined && bytes[end + 3] !== CR && bytes[end + 3] !== LF) {
    return fail(
      "ASTM_MALFORMED",
      `frame ${fn - 0x30}: the checksum is followed by ${describe(bytes[end + 3])}, not CR LF`,
      end + 3,
    );
  }
  return { ok: true, frame: { number: fn - 0x30, text: bytes.slice(2, end), final: bytes[end] === ETX } };
}

export interface AstmFrameSplitterOptions {
  maxFrameBytes?: number;
}

/**
 * A Framer over a raw capture or a link without the E1381 handshake: it cuts STX ... ETX|ETB C1 C2 CR
 * [LF] out of the stream and skips what lies between (ENQ, EOT, ACK, NAK, line breaks). A frame is
 * checked with parseAstmFrame. Text outside frames is reported once per run as ASTM_NOT_ASTM; a frame
 * that never ends is cut at maxFrameBytes (ASTM_OVERSIZE), or by a new STX (ASTM_TRUNCATED).
 */
export function astmFrameSplitter(options: AstmFrameSplitterOptions = {}): Framer & { end(): FrameResult[] } {
  const max = options.maxFrameBytes ?? ASTM_DEFAULT_MAX_FRAME_BYTES;
  let parts: number[] = [];
  let inFrame = false;
  let after = -1; // bytes seen after ETX/ETB (checksum, CR)
  let start = 0;
  let offset = 0;
  let inGarbage = false;
  let skipping = false;

  return {
    get pending() {
      return parts.length;
    },
    push(chunk: Uint8Array): FrameResult[] {
      const out: FrameResult[] = [];
      for (let i = 0; i < chunk.length; i++, offset++) {
        const b = chunk[i]!;
        if (b === STX) {
          if (inFrame && !skipping)
            out.push({
              error: {
                code: "ASTM_TRUNCATED",
                message: `ASTM frame at byte ${start} was cut off by a new STX at byte ${offset}`,
                where: start,
              },
            });
          inFrame = true;
          skipping = false;
          inGarbage = false;
          parts = [b];
          after = -1;
          start = offset;
          continue;
        }
        if (!inFrame) {
          if (b === ENQ || b === EOT || b === ACK || b === NAK || b === CR || b === LF) {
            inGarbage = false;
          } else if (!inGarbage) {
            inGarbage = true;
            out.push({
              error: {
                code: "ASTM_NOT_ASTM",
                message: `bytes outside an ASTM frame at byte ${offset} (${describe(b)}): not ASTM E1381 framing`,
                where: offset,
              },
            });
          }
          continue;
        }
        if (skipping) {
          if (b === CR || b === LF) inFrame = skipping = false;
          continue;
        }
        if (parts.length >= max) {
          out.push({
            error: {
              code: "ASTM_OVERSIZE",
              message: `ASTM frame at byte ${start} is longer than ${max} bytes; skipped`,
              where: start,
            },
          });
          parts = [];
          skipping = true;
          continue;
        }
        parts.push(b);
        if (after < 0) {
          if (b === ETX || b === ETB) after = 0;
          else if (b === LF) {
            // a line break inside text: this is not E1381 (which forbids LF there); let the parser say so
            out.push(...emit());
          }
          continue;
        }
        after++;
        if (after === 3) out.push(...emit());
      }
      return out;

      function emit(): FrameResult[] {
        const bytes = Uint8Array.from(parts);
        parts = [];
        inFrame = false;
        after = -1;
        const r = parseAstmFrame(bytes);
        if (!r.ok) return [{ error: { ...r.error, where: start } }];
        return [{ frame: bytes }];
      }
    },
    end(): FrameResult[] {
      if (!inFrame || skipping || parts.length === 0) return [];
      const bytes = Uint8Array.from(parts);
      parts = [];
      inFrame = false;
      const r = parseAstmFrame(bytes);
      return r.ok ? [{ frame: bytes }] : [{ error: { ...r.error, where: start } }];
    },
  };
}
