// Transports the core opens, watches and reopens for drivers (DESIGN.md §2). A driver names the
// transport it needs (a TransportSpec); it never opens a socket itself.
import { createServer, connect, type Server, type Socket } from "node:net";
import { SerialPort } from "serialport";
import { backoffDelay } from "./backoff.ts";
import type { SerialSettings, TransportSpec } from "./driver.ts";
import { findSerialPort } from "./ports.ts";

/** One byte stream to a device: a TCP connection (later also a serial port). */
export interface Connection {
  /** Where the bytes come from, for state and logs (e.g. "tcp:10.1.2.3:50112"). */
  readonly remote: string;
  write(bytes: Uint8Array): void;
  pause(): void;
  resume(): void;
  close(): void;
  onData(listener: (chunk: Buffer) => void): void;
  onClose(listener: () => void): void;
}

export type TransportState =
  | { state: "starting" }
  | { state: "listening"; address: string }
  | { state: "connecting"; address: string }
  | { state: "connected"; address: string }
  | { state: "retrying"; address: string; inMs: number; error?: string };

export interface TransportEvents {
  connection(conn: Connection): void;
  state(state: TransportState): void;
  /** A connection closed at once because the listener already has its most. */
  turnedAway(remote: string, limit: number): void;
}

export interface Transport {
  start(events: TransportEvents): void;
  stop(): Promise<void>;
}

export interface TransportOptions {
  backoff: { initialMs: number; maxMs: number };
  /** Most simultaneous connections a listener accepts; more are closed at once. */
  maxConnections: number;
  random?: () => number;
}

export function openTransport(spec: TransportSpec, options: TransportOptions): Transport {
  switch (spec.type) {
    case "tcp-listen":
      return tcpListener(spec.host, spec.port, options);
    case "tcp-connect":
      return tcpClient(spec.host, spec.port, options);
    case "serial":
      return serialPort(spec, options);
  }
}

function socketConnection(socket: Socket): Connection {
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 30_000);
  const remote = `tcp:${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`;
  return {
    remote,
    write: (bytes) => {
      if (!socket.destroyed) socket.write(bytes);
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    close: () => socket.destroy(),
    onData: (listener) => socket.on("data", listener),
    onClose: (listener) => socket.once("close", listener),
  };
}

function tcpListener(host: string, port: number, options: TransportOptions): Transport {
  let server: Server | null = null;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const sockets = new Set<Socket>();
  const address = `${host}:${port}`;
  return {
    start(events) {
      let attempt = 0;
      const listen = () => {
        events.state({ state: "starting" });
        const s = createServer((socket) => {
          socket.on("error", () => undefined); // a reset by the peer is a close, reported by onClose
          if (sockets.size >= options.maxConnections) {
            events.turnedAway(`tcp:${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`, options.maxConnections);
            socket.destroy();
            return;
          }
          sockets.add(socket);
          socket.once("close", () => sockets.delete(socket));
          events.connection(socketConnection(socket));
        });
        s.once("error", (err) => {
          // Port in use or not permitted: try again later, the port may be freed.
          server = null;
          if (stopped) return;
          const inMs = backoffDelay(attempt++, options.backoff, options.random);
          events.state({ state: "retrying", address, inMs, error: `${(err as NodeJS.ErrnoException).code ?? "error"}: ${err.message}` });
          timer = setTimeout(listen, inMs);
        });
        s.listen(port, host, () => {
          attempt = 0;
          server = s;
          const a = s.address();
          events.state({ state: "listening", address: typeof a === "object" && a ? `${a.address}:${a.port}` : address });
        });
      };
      listen();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      for (const s of sockets) s.destroy();
      const s = server;
      server = null;
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    },
  };
}

function tcpClient(host: string, port: number, options: TransportOptions): Transport {
  let socket: Socket | null = null;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const address = `${host}:${port}`;
  return {
    start(events) {
      let attempt = 0;
      const dial = () => {
        events.state({ state: "connecting", address });
        const s = connect({ host, port });
        socket = s;
        let lastError: string | undefined;
        s.on("error", (err) => {
          lastError = `${(err as NodeJS.ErrnoException).code ?? "error"}: ${err.message}`;
        });
        s.once("connect", () => {
          attempt = 0;
          events.state({ state: "connected", address });
          events.connection(socketConnection(s));
        });
        s.once("close", () => {
          socket = null;
          if (stopped) return;
          const inMs = backoffDelay(attempt++, options.backoff, options.random);
          events.state({ state: "retrying", address, inMs, error: lastError ?? "connection closed by the device" });
          timer = setTimeout(dial, inMs);
        });
      };
      dial();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      socket?.destroy();
      socket = null;
    },
  };
}

/**
 * A serial port, opened exclusively. An unplugged adapter (or a vanished PTY) closes the port; it is
 * opened again with backoff, found by its USB identity when `match` is set, since it may come back
 * under another name.
 */
function serialPort(settings: SerialSettings, options: TransportOptions): Transport {
  let port: SerialPort | null = null;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  return {
    start(events) {
      let attempt = 0;
      let path = settings.path;
      const retry = (error: string) => {
        port = null;
        if (stopped) return;
        const inMs = backoffDelay(attempt++, options.backoff, options.random);
        events.state({ state: "retrying", address: path, inMs, error });
        timer = setTimeout(open, inMs);
      };
      const open = () => {
        timer = null;
        if (settings.match) path = findSerialPort(settings.match)?.path ?? settings.path;
        events.state({ state: "connecting", address: path });
        const p = new SerialPort({
          path,
          baudRate: settings.baudRate,
          dataBits: settings.dataBits,
          parity: settings.parity,
          stopBits: settings.stopBits,
          rtscts: settings.rtscts,
          xon: settings.xonxoff,
          xoff: settings.xonxoff,
          lock: true, // exclusive: a second program on the same port would steal bytes
          autoOpen: false,
        });
        p.on("error", () => undefined); // reported through open's callback or "close"
        p.open((err) => {
          if (err) return retry(err.message);
          if (stopped) return void p.close();
          attempt = 0;
          port = p;
          events.state({ state: "connected", address: path });
          events.connection(serialConnection(p, path));
          p.once("close", (e?: Error & { disconnected?: boolean }) => retry(e?.disconnected ? "the device was unplugged" : "the port was closed"));
        });
      };
      open();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      const p = port;
      port = null;
      if (p?.isOpen) await new Promise<void>((resolve) => p.close(() => resolve()));
    },
  };
}

function serialConnection(p: SerialPort, path: string): Connection {
  return {
    remote: `serial:${path}`,
    write: (bytes) => {
      if (p.isOpen) p.write(Buffer.from(bytes));
    },
    pause: () => p.pause(),
    resume: () => p.resume(),
    close: () => {
      if (p.isOpen) p.close();
    },
    onData: (listener) => p.on("data", listener),
    onClose: (listener) => p.once("close", () => listener()),
  };
}
