// `vitalgate simulate astm-analyzer`: a point-of-care analyser sending results over ASTM E1381 to
// the gateway, on a serial port (a PTY) or as a serial server on TCP. The messages are a shared
// capture's records or the synthetic blood-gas result of drivers/astm-analyzer/synthetic.ts (written
// from E1381/E1394, not recorded: no public blood-gas capture exists). The sender's rules (ENQ, a
// reply awaited after each frame, 6 attempts, EOT) are the pure astmSender; this file only moves bytes.
import { EOT } from "../../protocols/astm/index.ts";
import { astmSender, captureText, syntheticBloodGasMessage } from "../../drivers/astm-analyzer/synthetic.ts";
import { delay, openLine, type SimulatedLineOptions } from "./simulate-line.ts";

/** E1381 §6.5.2.1: the sender waits 15 s for a reply. */
const REPLY_TIMEOUT_MS = 15_000;

/** What the simulator sends: a capture's record text (once per count), or a synthetic blood gas. */
export function astmSimulation(o: { capture?: Uint8Array; count: number; nowMs: number }): {
  messages: Iterable<string>;
  what: string;
} {
  if (o.capture !== undefined) {
    const text = captureText(o.capture);
    if (text === "") throw new Error("the capture holds no ASTM frame (STX..ETX with a checksum)");
    const n = Number.isFinite(o.count) ? o.count : 1;
    return { messages: Array.from({ length: n }, () => text), what: `a capture's records, ${n} time(s)` };
  }
  const count = o.count;
  return {
    messages: (function* () {
      for (let i = 0; i < count; i++) yield syntheticBloodGasMessage(Date.now(), i + 1);
    })(),
    what: "a synthetic blood-gas result (written from E1394, invented values, no patient)",
  };
}

export interface AstmSimulateOptions extends SimulatedLineOptions {
  baudRate?: number;
  messages: Iterable<string>;
  /** Pause between messages. */
  intervalMs: number;
  /** How long to wait for each reply (E1381: 15 s). */
  replyTimeoutMs?: number;
  /** Each transfer's outcome: "accepted" (final ACK), or why it was given up (it is tried again). */
  onResult?: (index: number, result: string) => void;
}

/** Returns the number of messages whose last frame was acknowledged. */
export async function simulateAstmAnalyzer(o: AstmSimulateOptions): Promise<number> {
  const q = byteQueue();
  const link = await openLine({
    path: o.path,
    baudRate: o.baudRate ?? 9600,
    tcpPort: o.tcpPort,
    host: o.host,
    clients: "latest",
    onListening: o.onListening,
    onData: (d) => q.push(d),
  });
  const replyMs = o.replyTimeoutMs ?? REPLY_TIMEOUT_MS;
  let accepted = 0;
  let index = 0;
  try {
    for (const text of o.messages) {
      if (o.signal?.aborted) break;
      for (;;) {
        // a line that is down (no client yet, an unplugged adapter): wait for it, then start afresh
        while (!link.up() && !o.signal?.aborted) await delay(100, o.signal);
        if (o.signal?.aborted) break;
        const sender = astmSender(text);
        q.drain();
        let step = sender.start();
        let lost = false;
        while (step.then === "await-reply") {
          if (link.write(step.send) === 0) {
            lost = true;
            break;
          }
          step = sender.reply(await q.next(replyMs, o.signal));
          if (o.signal?.aborted) break;
        }
        if (o.signal?.aborted) break;
        if (lost) continue;
        if (step.then === "done") {
          link.write(step.send);
          accepted++;
          o.onResult?.(index, "accepted");
          break;
        }
        // §6.5.1.2: after 6 attempts the sender sends EOT and tries the whole message later
        if (step.then === "give-up") o.onResult?.(index, `given up: ${step.why}; trying again`);
        link.write(Uint8Array.of(EOT));
        await delay(Math.min(Math.max(o.intervalMs, 250), 2000), o.signal);
      }
      index++;
      await delay(o.intervalMs, o.signal);
    }
  } finally {
    await link.close();
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
