// The plumbing every `vitalgate simulate` device shares: the line it talks over (a serial port that
// is reopened after an unplug, or a TCP port served as a serial server's is) and an abortable delay.
// The simulators (simulate.ts, simulate-astm.ts, simulate-medibus.ts) only decide what to send.
import { createServer, type Socket } from "node:net";
import { SerialPort } from "serialport";

/** The line a simulated device talks over. */
export interface Line {
  /** The line is there: the port is open, a client is connected. */
  up(): boolean;
  /** Sends the bytes; returns on how many links they went out (0: the line is down, they went nowhere). */
  write(bytes: Uint8Array): number;
  close(): Promise<void>;
}

/** Where a simulated device talks, as its options (the `vitalgate simulate` flags) give it. */
export interface SimulatedLineOptions {
  /** A serial port to talk on: the device end of a PTY pair, or a port wired to the gateway's. */
  path?: string;
  /** Or: listen on this TCP port, as a serial server does (0: any free port); the gateway connects. */
  tcpPort?: number;
  host?: string;
  onListening?: (port: number) => void;
  signal?: AbortSignal;
}

/** Serial settings where the device's differ from 8N1 without flow control. */
export interface SerialSettings {
  dataBits?: 5 | 6 | 7 | 8;
  parity?: "none" | "even" | "odd";
  stopBits?: 1 | 2;
  rtscts?: boolean;
}

export interface LineOptions {
  /** A serial port: the device end of a PTY pair, or a port wired to the gateway's. */
  path?: string;
  baudRate: number;
  serial?: SerialSettings;
  /** Or: listen on this TCP port, as a serial server in TCP server mode does (0: any free port). */
  tcpPort?: number;
  host?: string;
  /** On TCP: "all" sends to every client and hears them all; "latest" keeps only the newest client. */
  clients: "all" | "latest";
  onListening?: (port: number) => void;
  /** What the gateway sends. */
  onData?: (chunk: Buffer) => void;
  /** A new line: the port (re)opened, a client connected. */
  onOpen?: () => void;
}

/** The TCP server line when `tcpPort` is set, else the serial port at `path`. */
export async function openLine(o: LineOptions): Promise<Line> {
  if (o.tcpPort !== undefined) return tcpServerLine(o.host ?? "127.0.0.1", o.tcpPort, o);
  return serialLine(o.path!, o.baudRate, o);
}

/** A serial port, reopened in the background (every 250 ms) whenever it is gone (an unplugged adapter, a PTY that vanishes). */
export function serialLine(
  path: string,
  baudRate: number,
  o: { serial?: SerialSettings; onData?: (chunk: Buffer) => void; onOpen?: () => void } = {},
): Line {
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
    const p = new SerialPort({ path, baudRate, autoOpen: false, ...o.serial });
    p.on("error", () => undefined); // a write into a vanished PTY: seen as "close"
    if (o.onData) p.on("data", o.onData);
    p.open((err) => {
      opening = false;
      if (err) return again();
      if (closed) return void p.close();
      port = p;
      o.onOpen?.();
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
        return 0;
      }
      const p = port;
      p.write(Buffer.from(bytes), (err) => {
        if (err && port === p) {
          port = null;
          if (p.isOpen) p.close(() => undefined);
          again();
        }
      });
      return 1;
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      const p = port;
      port = null;
      if (p?.isOpen) await new Promise<void>((resolve) => p.close(() => resolve()));
    },
  };
}

/**
 * A TCP server, as a serial server's port in TCP server mode: with `clients: "all"` every client gets
 * the stream (and is heard); with "latest" a new client replaces the one before it.
 */
export async function tcpServerLine(
  host: string,
  port: number,
  o: Pick<LineOptions, "clients" | "onListening" | "onData" | "onOpen">,
): Promise<Line> {
  const clients = new Set<Socket>();
  const server = createServer((s) => {
    if (o.clients === "latest") {
      for (const c of clients) c.destroy();
      clients.clear();
    }
    clients.add(s);
    o.onOpen?.();
    s.on("error", () => undefined);
    s.on("data", (d: Buffer) => {
      if (clients.has(s)) o.onData?.(d);
    });
    s.on("close", () => clients.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  o.onListening?.(typeof address === "object" && address ? address.port : port);
  return {
    up: () => [...clients].some((c) => !c.destroyed),
    write(bytes) {
      for (const c of clients) c.write(bytes);
      return clients.size;
    },
    async close() {
      for (const c of clients) c.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Waits `ms` (at once when the signal is already aborted), or until the signal aborts. The listener
 * goes with the timer: a simulator running for days must not pile them up.
 */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Resolves when the signal aborts (never without one): a device that only answers runs until then. */
export function untilAborted(signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    signal?.addEventListener("abort", () => resolve(), { once: true });
  });
}
