// A framer for protocols that send one text line per message, ended by LF (CR LF accepted): gpsd's
// JSON stream, a pulse oximeter's "SPO2=098 HR=072". Pure and bounded: a line longer than
// `maxLineBytes` is reported once (the protocol's `tooLong` code) and skipped to its end without being
// held, so an endless line cannot grow memory. Empty lines are skipped. The frame is the line
// without its terminator.
import type { FrameResult, Framer } from "../codec.ts";

const CR = 0x0d;
const LF = 0x0a;

export interface LineFramer extends Framer {
  end(): FrameResult[];
}

export interface LineFramerOptions {
  maxLineBytes: number;
  /** The error code of a line too long, with the protocol's prefix: "GPSD_LINE_TOO_LONG". */
  tooLong: string;
  /** Who sends the lines, for the error message: "gpsd", "the oximeter". */
  from: string;
}

export function lineFramer({ maxLineBytes, tooLong, from }: LineFramerOptions): LineFramer {
  if (!Number.isInteger(maxLineBytes) || maxLineBytes < 16)
    throw new RangeError("maxLineBytes must be an integer >= 16");
  const buf = new Uint8Array(maxLineBytes);
  let held = 0;
  let offset = 0; // stream offset of the next byte pushed
  let lineStart = 0; // stream offset of the current line's first byte
  let oversize = false;

  function frame(out: FrameResult[]): void {
    let n = held;
    if (n > 0 && buf[n - 1] === CR) n--;
    if (n > 0) out.push({ frame: buf.slice(0, n) });
    held = 0;
  }

  return {
    get pending() {
      return held;
    },
    push(chunk: Uint8Array): FrameResult[] {
      const out: FrameResult[] = [];
      let i = 0;
      while (i < chunk.length) {
        const nl = chunk.indexOf(LF, i);
        const stop = nl === -1 ? chunk.length : nl;
        if (!oversize) {
          const take = stop - i;
          if (held + take > maxLineBytes) {
            out.push({
              error: {
                code: tooLong,
                message: `a line from ${from} starting at byte ${lineStart} is longer than ${maxLineBytes} bytes; skipped to its end`,
                where: lineStart,
              },
            });
            oversize = true;
            held = 0;
          } else {
            buf.set(chunk.subarray(i, stop), held);
            held += take;
          }
        }
        if (nl === -1) break;
        if (oversize) oversize = false;
        else frame(out);
        i = nl + 1;
        lineStart = offset + i;
      }
      offset += chunk.length;
      return out;
    },
    end(): FrameResult[] {
      const out: FrameResult[] = [];
      if (!oversize) frame(out);
      oversize = false;
      held = 0;
      return out;
    },
  };
}
