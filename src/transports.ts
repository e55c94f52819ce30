// Transports the core opens, watches and reopens for drivers (DESIGN.md §2). A driver names the
// transport it needs (a TransportSpec); it never opens a socket itself.
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";
import { join } from "node:path";
import type { SerialPort } from "serialport";
import { backoffDelay } from "./backoff.ts";
import { dicomScp } from "./dicom-scp.ts";
import type { SerialSettings, TransportSpec } from "./driver.ts";
import { findSerialPort, openSerialPort } from "./ports.ts";

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

/** A complete file found in a watched folder. */
export interface FileDrop {
  name: string;
  bytes: Buffer;
  /** Hex SHA-256 of bytes: the file's identity, so a file picked up twice is stored once. */
  sha256: string;
  /** Committed: move the file to done/. */
  done(): void;
  /** Unreadable: move it to rejected/ with a sidecar saying why. */
  reject(reason: string): void;
  /**
   * Readable, but the store could not take it (quota, disk full): the sender should try again
   * later. A DICOM SCP answers C-STORE "out of resources"; a watched folder has none, its file stays
   * and is tried again.
   */
  refused?(reason: string): void;
}

export interface TransportEvents {
  connection(conn: Connection): void;
  /** A watched folder's file; the transport handles the next one when the promise settles. */
  file(drop: FileDrop): Promise<void>;
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
    case "folder":
      return watchedFolder(spec.dir, spec.stableMs, spec.scanMs, spec.maxBytes);
    case "dicom-scp":
      return dicomScp(spec, options);
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
        // Held from now, not from "listening": a stop() before the listener is up must still close it.
        server = s;
        s.listen(port, host, () => {
          attempt = 0;
          if (stopped) return void s.close();
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
        openSerialPort(path, settings).then(
          (p) => {
            if (stopped) return void p.close();
            attempt = 0;
            port = p;
            events.state({ state: "connected", address: path });
            events.connection(serialConnection(p, path));
            p.once("close", (e?: Error & { disconnected?: boolean }) => retry(e?.disconnected ? "the device was unplugged" : "the port was closed"));
          },
          (err: Error) => retry(err.message),
        );
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

/** Names a writer is still busy with: hidden files, and the temporary names carts and copiers use. */
const UNFINISHED = /^[.~]|\.(tmp|part|partial|crdownload|filepart)$/i;

/**
 * A folder scanned every `scanMs` (polling, not inotify: carts export to network shares and USB
 * sticks, where change notification is unreliable). A file is taken once its size and time have
 * not changed for `stableMs` and it does not carry a temporary name; nothing is deleted: a file
 * goes to done/ once committed, or to rejected/ beside a `.why.txt` sidecar.
 */
function watchedFolder(dir: string, stableMs: number, scanMs: number, maxBytes: number): Transport {
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  let busy: Promise<void> = Promise.resolve();
  const seen = new Map<string, { size: number; mtimeMs: number; since: number }>();
  const moveTo = (sub: string, name: string) => {
    mkdirSync(join(dir, sub), { recursive: true });
    let target = join(dir, sub, name);
    try {
      statSync(target);
      target = join(dir, sub, `${Date.now()}-${name}`); // never overwrite an earlier file of that name
    } catch {
      // free
    }
    renameSync(join(dir, name), target);
    return target;
  };
  return {
    start(events) {
      let watching = false;
      const scan = async () => {
        timer = null;
        try {
          mkdirSync(dir, { recursive: true });
          if (!watching) events.state({ state: "listening", address: dir });
          watching = true;
          for (const entry of readdirSync(dir, { withFileTypes: true })) {
            if (stopped) return;
            if (!entry.isFile() || UNFINISHED.test(entry.name)) continue;
            const st = statSync(join(dir, entry.name));
            const last = seen.get(entry.name);
            const now = Date.now();
            if (!last || last.size !== st.size || last.mtimeMs !== st.mtimeMs) {
              seen.set(entry.name, { size: st.size, mtimeMs: st.mtimeMs, since: now });
              continue;
            }
            if (now - last.since < stableMs) continue;
            seen.delete(entry.name);
            const name = entry.name;
            if (st.size > maxBytes) {
              // Not read: a file this size is no ECG, and reading it whole could exhaust memory.
              const target = moveTo("rejected", name);
              writeFileSync(`${target}.why.txt`, `VG_FILE_TOO_LARGE: ${st.size} bytes, more than the ${maxBytes} this device takes\n`);
              continue;
            }
            const bytes = readFileSync(join(dir, entry.name));
            busy = events.file({
              name,
              bytes,
              sha256: createHash("sha256").update(bytes).digest("hex"),
              done: () => void moveTo("done", name),
              reject: (reason) => {
                const target = moveTo("rejected", name);
                writeFileSync(`${target}.why.txt`, `${reason}\n`);
              },
            });
            await busy;
          }
        } catch (err) {
          watching = false;
          events.state({ state: "retrying", address: dir, inMs: scanMs, error: (err as Error).message });
        }
        if (!stopped) timer = setTimeout(() => void scan(), scanMs);
      };
      void scan();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await busy.catch(() => undefined);
    },
  };
}
