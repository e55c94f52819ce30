// `vitalgate simulate astm-analyzer`: a point-of-care analyser sending results over ASTM E1381 to the
// gateway, on a serial port (a PTY) or as a serial server on TCP. The messages are a capture's records
// or the synthetic blood-gas result of ./synthetic.ts (written from E1381/E1394, not recorded: no
// public blood-gas capture exists). The sender's rules (ENQ, a reply awaited after each frame, 6
// attempts, EOT) are the pure astmSender; this file moves bytes and waits.
import { EOT } from "../../protocols/astm/index.ts";
import { defineSimulator, delay, type SimulatorLine } from "../../src/devices/simulator.ts";
import { astmSender, captureText, syntheticBloodGasMessage } from "./synthetic.ts";

/** E1381 §6.5.2.1: the sender waits 15 s for a reply. */
const REPLY_TIMEOUT_MS = 15_000;

export interface AstmAnalyserOptions {
  messages: Iterable<string>;
  /** Pause between messages. */
  intervalMs: number;
  /** How long to wait for each reply (E1381: 15 s). */
  replyTimeoutMs?: number;
  /** Each transfer's outcome: "accepted" (final ACK), or why it was given up (it is tried again). */
  onResult?: (index: number, result: string) => void;
}

/** Returns the number of messages whose last frame was acknowledged. */
export async function astmAnalyser(line: SimulatorLine, o: AstmAnalyserOptions, signal?: AbortSignal): Promise<number> {
  const q = byteQueue();
  line.onData((d) => q.push(d));
  const replyMs = o.replyTimeoutMs ?? REPLY_TIMEOUT_MS;
  let accepted = 0;
  let index = 0;
  for (const text of o.messages) {
    if (signal?.aborted) break;
    for (;;) {
      // a line that is down (no client yet, an unplugged adapter): wait for it, then start afresh
      while (!line.up() && !signal?.aborted) await delay(100, signal);
      if (signal?.aborted) break;
      const sender = astmSender(text);
      q.drain();
      let step = sender.start();
      let lost = false;
      while (step.then === "await-reply") {
        if (line.write(step.send) === 0) {
          lost = true;
          break;
        }
        step = sender.reply(await q.next(replyMs, signal));
        if (signal?.aborted) break;
      }
      if (signal?.aborted) break;
      if (lost) continue;
      if (step.then === "done") {
        line.write(step.send);
        accepted++;
        o.onResult?.(index, "accepted");
        break;
      }
      // §6.5.1.2: after 6 attempts the sender sends EOT and tries the whole message later
      if (step.then === "give-up") o.onResult?.(index, `given up: ${step.why}; trying again`);
      line.write(Uint8Array.of(EOT));
      await delay(Math.min(Math.max(o.intervalMs, 250), 2000), signal);
    }
    index++;
    await delay(o.intervalMs, signal);
  }
  return accepted;
}

/** The bytes the gateway sent, read one at a time. */
function byteQueue() {
  const queue: number[] = [];
  let waiter: ((b: number | undefined) => void) | undefined;
  return {
    push(chunk: Uint8Array) {
      for (const b of chunk) {
        if (waiter) {
          const w = waiter;
          waiter = undefined;
          w(b);
        } else if (queue.length < 4096) queue.push(b);
      }
    },
    drain() {
      queue.length = 0;
    },
    next(timeoutMs: number, signal?: AbortSignal): Promise<number | undefined> {
      if (queue.length > 0) return Promise.resolve(queue.shift());
      return new Promise((resolve) => {
        const done = (b: number | undefined) => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", abort);
          waiter = undefined;
          resolve(b);
        };
        const abort = () => done(undefined);
        const timer = setTimeout(() => done(undefined), timeoutMs);
        signal?.addEventListener("abort", abort, { once: true });
        waiter = done;
      });
    },
  };
}

export const simulator = defineSimulator<AstmAnalyserOptions>({
  plays: "an ASTM analyser",
  describe:
    "a point-of-care analyser sending ASTM E1381/E1394 results:\na capture's records, else a synthetic blood gas (every 5 s)",
  link: { type: "line", baudRate: 9600, clients: "latest" },
  file: { flag: "file", meta: "CAPTURE" },
  count: true,
  intervalMs: 5000,
  fromFlags(f, say) {
    const onResult = (i: number, result: string) => say.out(`message ${i + 1}: ${result}`);
    if (f.file !== undefined) {
      const text = captureText(f.file);
      if (text === "") throw new Error("the capture holds no ASTM frame (STX..ETX with a checksum)");
      const n = f.count ?? 1;
      const messages = Array.from({ length: Number.isFinite(n) ? n : 1 }, () => text);
      return {
        options: { messages, intervalMs: f.intervalMs, onResult },
        what: `a capture's records, ${messages.length} time(s)`,
      };
    }
    const count = f.count ?? Infinity;
    const messages = (function* () {
      for (let i = 0; i < count; i++) yield syntheticBloodGasMessage(Date.now(), i + 1);
    })();
    return {
      options: { messages, intervalMs: f.intervalMs, onResult },
      what: "a synthetic blood-gas result (written from E1394, invented values, no patient)",
    };
  },
  run: astmAnalyser,
  counts: "message(s) acknowledged",
});
