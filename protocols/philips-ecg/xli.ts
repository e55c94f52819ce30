// XLI, the waveform compression of Philips SierraECG / PhilipsECG XML (named after the HP/Philips
// PageWriter XLi). Philips never published it. The facts below come from the public description by
// the sierra-ecg-tools project (github.com/sixlettervariables/sierra-ecg-tools, wiki "XLI Compression
// in Detail", MIT), which reverse-engineered it, and were checked here against real exports
// (../shared/fixtures/philips-sierraecg). This is our own implementation of those facts.
//
// The waveform blob is one chunk per lead, back to back. Each chunk:
//   bytes 0–3  compressed size n (int32, little endian)
//   bytes 4–5  int16, always 1 in the files seen (meaning unknown; ignored)
//   bytes 6–7  int16, the first "previous delta" of the delta decoder below
//   n bytes    LZW data
// LZW: fixed 10-bit codes packed most significant bit first; codes 0–255 are single bytes, new
// strings take codes 256, 257, … up to 1022, after which the dictionary stays as it is (no reset);
// code 1023 ends the data. The decoder the files were written for reads codes through a 32-bit
// window refilled a byte at a time and stops when it cannot refill past 24 bits, so a code is only
// taken while more than 24 bits of input remain; we keep that rule, since the split point of the
// next step depends on the exact number of bytes produced.
// The LZW output, read as two halves of equal length, holds the high bytes of 16-bit words in its
// first half and the low bytes in the second (an odd length gets a zero byte appended).
// Those words are second-difference codes: with x, y the two previous output samples and p the
// previous code's value minus 64 (for the third sample: the header's int16),
//   sample[i] = 2·y − x − p, for i ≥ 2; samples 0 and 1 are the first two words as they are.
import type { CodecError } from "../codec.ts";

const CODE_BITS = 10;
const MAX_CODE = (1 << CODE_BITS) - 2; // 1022: the last dictionary code; 1023 ends the data
const REFILL_BITS = 24;

export interface XliLimits {
  /** Most chunks (leads) read. */
  maxChunks: number;
  /** Most bytes one chunk may decompress to (2 × samples per lead). */
  maxOutputBytes: number;
}

/** LZW-decodes one chunk. Returns the bytes, or an error for a code the dictionary cannot have. */
export function xliLzw(data: Uint8Array, maxOutput: number): { bytes: Uint8Array } | { error: string } {
  // Dictionary as prefix code + last byte; strings are written out by walking prefixes backwards.
  const prefix = new Int32Array(MAX_CODE + 1).fill(-1);
  const suffix = new Uint8Array(MAX_CODE + 1);
  const length = new Int32Array(MAX_CODE + 1);
  for (let c = 0; c < 256; c++) {
    suffix[c] = c;
    length[c] = 1;
  }
  let next = 256;
  let out = new Uint8Array(Math.min(maxOutput, Math.max(1024, data.length * 4)));
  let outLen = 0;
  const totalBits = data.length * 8;
  let bitPos = 0;
  let previous = -1;

  const firstByte = (code: number): number => {
    let c = code;
    while (prefix[c]! >= 0) c = prefix[c]!;
    return suffix[c]!;
  };
  const emit = (code: number): boolean => {
    const len = length[code]!;
    if (outLen + len > maxOutput) return false;
    if (outLen + len > out.length) {
      const grown = new Uint8Array(Math.min(maxOutput, Math.max(out.length * 2, outLen + len)));
      grown.set(out.subarray(0, outLen));
      out = grown;
    }
    let c = code;
    for (let i = outLen + len - 1; i >= outLen; i--) {
      out[i] = suffix[c]!;
      c = prefix[c]!;
    }
    outLen += len;
    return true;
  };

  while (totalBits - bitPos > REFILL_BITS) {
    // 10 bits, most significant first, starting at bitPos.
    let code = 0;
    for (let k = 0; k < CODE_BITS; k++) {
      const b = bitPos + k;
      code = (code << 1) | ((data[b >> 3]! >> (7 - (b & 7))) & 1);
    }
    bitPos += CODE_BITS;
    if (code > MAX_CODE) break;

    let entry: number;
    if (code < next) {
      entry = code;
      if (previous >= 0 && next <= MAX_CODE) {
        prefix[next] = previous;
        suffix[next] = firstByte(code);
        length[next] = length[previous]! + 1;
        next++;
      }
    } else if (code === next && previous >= 0) {
      // The code being defined by this very step: previous string + its own first byte.
      prefix[next] = previous;
      suffix[next] = firstByte(previous);
      length[next] = length[previous]! + 1;
      entry = next;
      next++;
    } else {
      return { error: `LZW code ${code} at bit ${bitPos - CODE_BITS} is not in the dictionary (next code ${next})` };
    }
    if (!emit(entry)) return { error: `a chunk decompresses to more than ${maxOutput} bytes` };
    previous = entry;
  }
  return { bytes: out.subarray(0, outLen) };
}

/** Interleaves the high-byte and low-byte halves into signed 16-bit words. */
export function xliUnpack(bytes: Uint8Array): Int16Array {
  const even = bytes.length % 2 === 0 ? bytes : Uint8Array.of(...bytes, 0);
  const n = even.length / 2;
  const words = new Int16Array(n);
  for (let i = 0; i < n; i++) words[i] = (((even[i]! << 8) | even[n + i]!) << 16) >> 16;
  return words;
}

/** Undoes the second-difference coding (see the header comment). */
export function xliUndelta(words: Int16Array, first: number): Int32Array {
  const out = Int32Array.from(words);
  if (out.length < 3) return out;
  let x = out[0]!;
  let y = out[1]!;
  let p = first;
  for (let i = 2; i < out.length; i++) {
    const z = 2 * y - x - p;
    p = out[i]! - 64;
    out[i] = z;
    x = y;
    y = z;
  }
  return out;
}

/** Decodes a whole XLI blob into one sample array per chunk, in file order. */
export function xliDecode(blob: Uint8Array, limits: XliLimits): { leads: Int32Array[] } | { error: CodecError } {
  const leads: Int32Array[] = [];
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  let at = 0;
  while (blob.length - at >= 8 && leads.length < limits.maxChunks) {
    const size = view.getInt32(at, true);
    const first = view.getInt16(at + 6, true);
    if (size < 0 || size > blob.length - at - 8) {
      return {
        error: {
          code: "PHILIPS_XLI",
          message: `XLI chunk ${leads.length + 1} declares ${size} bytes but ${blob.length - at - 8} remain`,
          where: `chunk ${leads.length + 1}`,
        },
      };
    }
    const lzw = xliLzw(blob.subarray(at + 8, at + 8 + size), limits.maxOutputBytes);
    if ("error" in lzw)
      return {
        error: {
          code: "PHILIPS_XLI",
          message: `XLI chunk ${leads.length + 1}: ${lzw.error}`,
          where: `chunk ${leads.length + 1}`,
        },
      };
    leads.push(xliUndelta(xliUnpack(lzw.bytes), first));
    at += 8 + size;
  }
  return { leads };
}
