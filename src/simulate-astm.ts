// `vitalgate simulate astm-analyzer`: a point-of-care analyser sending results over ASTM E1381 to
// the gateway, on a serial port (a PTY) or as a serial server on TCP. The messages are a shared
// capture's records or the synthetic blood-gas result of drivers/astm-analyzer/synthetic.ts (written
// from E1381/E1394, not recorded: no public blood-gas capture exists). The sender's rules (ENQ, a
// reply awaited after each frame, 6 attempts, EOT) are the pure astmSender; this file only moves bytes.
import { createServer, type Socket } from "node:net";
import { SerialPort } from "serialport";
import { EOT } from "../protocols/astm/index.ts";
import { astmSender, captureText, syntheticBloodGasMessage } from "../drivers/astm-analyzer/synthetic.ts";

/** E1381 §6.5.2.1: the sender waits 15 s for a reply. */
const REPLY_TIMEOUT_MS = 15_000;

/** What the simulator sends: a capture's record text (once per count), or a synthetic blood gas. */
export function astmSimulation(o: { capture?: Uint8Array; count: number; nowMs: number }): { messages: Iterable<string>; what: string } {
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

export interface AstmSimulateOptions {
  /** A serial port to talk on: the device end of a PTY pair, or a port wired to the gateway's. */
  path?: string;
  baudRate?: number;
  /** Or: listen on this TCP port, as a serial server does (0: any free port); the gateway connects. */
  tcpPort?: number;
  host?: string;
  messages: Iterable<string>;
  /** Pause between messages. */
  intervalMs: number;
  /** How long to wait for each reply (E1381: 15 s). */
  replyTimeoutMs?: number;
  /** Each transfer's outcome: "accepted" (final ACK), or why it was given up (it is tried again). */
  onResult?: (index: number, result: string) => void;
  onListening?: (port: number) => void;
  signal?: AbortSignal;
}

/** Returns the number of messages whose last frame was acknowledged. */
export async function simulateAstmAnalyzer(o: AstmSimulateOptions): Promise<number> {
  const link = o.tcpPort !== undefined ? await tcpLink(o.host ?? "127.0.0.1", o.tcpPort, o.onListening) : serialLink(o.path!, o.baudRate ?? 9600);
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
        link.drain();
        let step = sender.start();
        let lost = false;
        while (step.then === "await-reply") {
          if (!link.write(step.send)) {
            lost = true;
            break;
          }
          step = sender.reply(await link.next(replyMs, o.signal));
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

interface ByteLink {
  /** The line is there: the port is open, a client is connected. */
  up(): boolean;
  /** false when the line is down (the bytes went nowhere). */
  write(bytes: Uint8Array): boolean;
  /** The next byte from the gateway, or undefined after `timeoutMs`. */
  next(timeoutMs: number, signal?: AbortSignal): Promise<number | undefined>;
  /** Forgets bytes not read yet. */
  drain(): void;
  close(): Promise<void>;
}

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

/** A serial port, reopened in the background (every 250 ms) whenever it is gone (an unplugged adapter). */
function serialLink(path: string, baudRate: number): ByteLink {
  const q = byteQueue();
  let port: SerialPort | null = null;
  let opening = false;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const again = () => {
    if (!closed && timer === undefined) timer = setTimeout(() => ((timer = undefined), open()), 250);
  };
  const open = () => {
    if (opening || closed || port) return;
    opening = true;
    const p = new SerialPort({ path, baudRate, autoOpen: false });
    p.on("error", () => undefined);
    p.on("data", (d: Buffer) => q.push(d));
    p.open((err) => {
      opening = false;
      if (err) return again();
      if (closed) return void p.close();
      port = p;
      p.once("close", () => {
        if (port === p) port = null;
        again();
      });
    });
  };
  open();
  return {
    up: () => port?.isOpen === true,
    write(bytes) {
      if (!port?.isOpen) {
        port = null;
        open();
        return false;
      }
      const p = port;
      p.write(Buffer.from(bytes), (err) => {
        if (err && port === p) {
          port = null;
          if (p.isOpen) p.close(() => undefined);
          again();
        }
      });
      return true;
    },
    next: (ms, signal) => q.next(ms, signal),
    drain: () => q.drain(),
    async close() {
      closed = true;
      clearTimeout(timer);
      const p = port;
      port = null;
      if (p?.isOpen) await new Promise<void>((resolve) => p.close(() => resolve()));
    },
  };
}

/** A TCP server, as a serial server's port in TCP server mode: the latest client is the line. */
async function tcpLink(host: string, port: number, onListening?: (port: number) => void): Promise<ByteLink> {
  const q = byteQueue();
  let client: Socket | null = null;
  const server = createServer((s) => {
    client?.destroy();
    client = s;
    s.on("error", () => undefined);
    s.on("data", (d) => q.push(d));
    s.on("close", () => {
      if (client === s) client = null;
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  onListening?.(typeof address === "object" && address ? address.port : port);
  return {
    up: () => client !== null && !client.destroyed,
    write(bytes) {
      if (!client) return false;
      client.write(bytes);
      return true;
    },
    next: (ms, signal) => q.next(ms, signal),
    drain: () => q.drain(),
    async close() {
      client?.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
