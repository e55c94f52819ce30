// Finding HL7 v2 messages in capture files, where they are stored as text rather than as they
// travel: one segment per line (CR, LF or CRLF), messages one after another, sometimes between
// log lines, sometimes still in their MLLP envelopes.
import type { FrameResult, Framer } from "../codec.ts";

const CR = 0x0d;
const LF = 0x0a;
const SB = 0x0b;
const EB = 0x1c;

export interface Hl7CaptureFramer extends Framer {
  /** End of input: returns the message still being collected, if any. */
  end(): FrameResult[];
}

function isUpperOrDigit(b: number | undefined): boolean {
  return b !== undefined && ((b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39));
}

/**
 * A message starts at a line beginning with "MSH" and a field separator; it goes on while lines
 * look like segments (three upper-case letters or digits and that separator); it ends at the next
 * MSH, at a line that is not a segment (a log line), at an MLLP end block, or at end(). Blank lines
 * are skipped. Frames are the segments joined by CR, as on the wire. A line longer than
 * maxFrameBytes is dropped with HL7_CAPTURE_OVERSIZE.
 */
export function hl7CaptureFramer(options: { maxFrameBytes: number }): Hl7CaptureFramer {
  const max = options.maxFrameBytes;
  let line: number[] = [];
  let lineTooLong = false;
  let lineStart = 0;
  let offset = 0;
  let message: Uint8Array[] | undefined;
  let messageBytes = 0;
  let separator = 0;

  function finish(out: FrameResult[]): void {
    if (!message) return;
    const frame = new Uint8Array(messageBytes + message.length);
    let at = 0;
    for (const seg of message) {
      frame.set(seg, at);
      at += seg.length;
      frame[at++] = CR;
    }
    out.push({ frame });
    message = undefined;
    messageBytes = 0;
  }

  function endLine(out: FrameResult[]): void {
    const l = line;
    line = [];
    if (lineTooLong) {
      lineTooLong = false;
      finish(out);
      out.push({
        error: {
          code: "HL7_CAPTURE_OVERSIZE",
          message: `line at byte ${lineStart} is longer than maxFrameBytes (${max}); skipped`,
          where: lineStart,
        },
      });
      return;
    }
    if (l.length === 0) return;
    if (l[0] === 0x4d && l[1] === 0x53 && l[2] === 0x48 && l.length >= 4) {
      finish(out);
      separator = l[3]!;
      message = [Uint8Array.from(l)];
      messageBytes = l.length;
      return;
    }
    if (
      message &&
      isUpperOrDigit(l[0]) &&
      isUpperOrDigit(l[1]) &&
      isUpperOrDigit(l[2]) &&
      (l.length === 3 || l[3] === separator)
    ) {
      if (messageBytes + l.length + message.length > max) {
        message = undefined;
        messageBytes = 0;
        out.push({
          error: {
            code: "HL7_CAPTURE_OVERSIZE",
            message: `message before byte ${lineStart} is larger than maxFrameBytes (${max}); skipped`,
            where: lineStart,
          },
        });
        return;
      }
      message.push(Uint8Array.from(l));
      messageBytes += l.length;
      return;
    }
    finish(out);
  }

  return {
    get pending() {
      return line.length + messageBytes;
    },
    push(chunk: Uint8Array): FrameResult[] {
      const out: FrameResult[] = [];
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i]!;
        if (b === CR || b === LF || b === SB || b === EB) {
          endLine(out);
          if (b === EB) finish(out);
          lineStart = offset + i + 1;
        } else if (!lineTooLong) {
          if (line.length >= max) {
            lineTooLong = true;
            line = [];
          } else line.push(b);
        }
      }
      offset += chunk.length;
      return out;
    },
    end(): FrameResult[] {
      const out: FrameResult[] = [];
      endLine(out);
      finish(out);
      return out;
    },
  };
}
