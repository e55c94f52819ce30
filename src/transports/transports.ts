// Transports the core opens, watches and reopens for drivers (DESIGN.md §2). A driver names the
// transport it needs (a TransportSpec); it never opens a socket itself.
import { createHash } from "node:crypto";
import { constants, mkdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import { mkdir, open, opendir, realpath, stat } from "node:fs/promises";
import { createServer, connect, type Server, type Socket } from "node:net";
import { join } from "node:path";
import type { SerialPort } from "serialport";
import { backoffDelay } from "../backoff.ts";
import { ConnectionGate, type GateLimits, type Refusals } from "./connection-gate.ts";
import { dicomScp } from "./dicom-scp.ts";
import type { SerialSettings, TransportSpec } from "../devices/driver.ts";
import { findSerialPort, openSerialPort } from "./serial-ports.ts";
import { pseudoFilesystem } from "./watched-folders.ts";
import {
  TransportError,
  connectError,
  folderError,
  listenError,
  serialClosed,
  serialError,
} from "./transport-errors.ts";

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
  /** Down, tried again in `inMs` (0: only a passing problem of one connection, said as the device's last error). */
  | { state: "retrying"; address: string; inMs: number; error: TransportError };

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
  /** Connections closed at once because the listener, or their address, already had its most (a summary, ConnectionGate). */
  turnedAway(refusals: Refusals): void;
}

export interface Transport {
  start(events: TransportEvents): void;
  stop(): Promise<void>;
}

/** How listeners are bounded (GateLimits: idle timeout, connections in all and per address), and how to retry. */
export interface TransportOptions extends GateLimits {
  backoff: { initialMs: number; maxMs: number };
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
      return watchedFolder(spec);
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
  let gate: ConnectionGate | null = null;
  return {
    start(events) {
      let attempt = 0;
      gate = new ConnectionGate(options, (r) => events.turnedAway(r));
      const listen = () => {
        events.state({ state: "starting" });
        const s = createServer((socket) => {
          socket.on("error", () => undefined); // a reset by the peer is a close, reported by onClose
          if (!gate?.admit(socket)) return;
          sockets.add(socket);
          socket.once("close", () => sockets.delete(socket));
          events.connection(socketConnection(socket));
        });
        s.once("error", (err) => {
          // Port in use or not permitted: try again later, the port may be freed.
          server = null;
          if (stopped) return;
          const inMs = backoffDelay(attempt++, options.backoff, options.random);
          events.state({ state: "retrying", address, inMs, error: listenError(err, address) });
          timer = setTimeout(listen, inMs);
        });
        // Held from now, not from "listening": a stop() before the listener is up must still close it.
        server = s;
        s.listen(port, host, () => {
          attempt = 0;
          if (stopped) return void s.close();
          const a = s.address();
          events.state({
            state: "listening",
            address: typeof a === "object" && a ? `${a.address}:${a.port}` : address,
          });
        });
      };
      listen();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      gate?.close();
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
        let lastError: Error | undefined;
        s.on("error", (err) => {
          lastError = err;
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
          events.state({ state: "retrying", address, inMs, error: connectError(lastError, address) });
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
      const retry = (error: TransportError) => {
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
            p.once("close", (e?: Error & { disconnected?: boolean }) => retry(serialClosed(path, !!e?.disconnected)));
          },
          (err: Error) => retry(serialError(err, path)),
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
 * Most entries of a folder looked at in one scan: a folder holding more is worked through as files
 * leave it for done/ or rejected/ (said once in the device's state).
 */
export const MAX_FOLDER_ENTRIES = 1000;
/** Default for a folder spec's `maxSettleMs`: a file still changing after this long is set aside. */
const MAX_SETTLE_MS = 600_000;
/** Bytes read at a time from a file; between reads the event loop serves everyone else. */
const READ_CHUNK = 1 << 20;

/** A watched file's bytes and their hash, read in chunks; `undefined` when it holds more than `maxBytes`. */
async function readBounded(path: string, maxBytes: number): Promise<{ bytes: Buffer; sha256: string } | undefined> {
  // O_NONBLOCK: a special file that slipped in (a FIFO made between scan and open) never blocks a read;
  // O_NOFOLLOW: a name swapped for a symlink since the scan is not followed out of the folder.
  const file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  try {
    if (!(await file.stat()).isFile()) throw new Error("not a regular file");
    const hash = createHash("sha256");
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      // one byte more than allowed: a file that grew past its size at the scan is caught here, unread beyond it
      const { bytesRead, buffer } = await file.read(
        Buffer.allocUnsafe(Math.min(READ_CHUNK, maxBytes + 1 - total)),
        0,
        Math.min(READ_CHUNK, maxBytes + 1 - total),
        null,
      );
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > maxBytes) return undefined;
      const chunk = buffer.subarray(0, bytesRead);
      hash.update(chunk);
      chunks.push(chunk);
    }
    return { bytes: Buffer.concat(chunks, total), sha256: hash.digest("hex") };
  } finally {
    await file.close();
  }
}

/**
 * A folder scanned every `scanMs` (polling, not inotify: carts export to network shares and USB
 * sticks, where change notification is unreliable). A file is taken once its size and time have
 * not changed for `stableMs` and it does not carry a temporary name; nothing is deleted: a file
 * goes to done/ once committed, or to rejected/ beside a `.why.txt` sidecar.
 *
 * Bounded, so that no folder can hold up the gateway (issue 19 item 9): the folder must resolve to
 * where it did at start and lie on no pseudo filesystem (src/transports/watched-folders.ts), at most
 * MAX_FOLDER_ENTRIES entries are looked at per scan, a file still changing after `maxSettleMs` is
 * set aside, and every read is asynchronous, in chunks, never past `maxBytes` whatever size the
 * file claims (a /proc file claims 0).
 */
function watchedFolder(spec: Extract<TransportSpec, { type: "folder" }>): Transport {
  const { dir, stableMs, scanMs, maxBytes } = spec;
  const maxSettleMs = spec.maxSettleMs ?? MAX_SETTLE_MS;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  let busy: Promise<void> = Promise.resolve();
  /** Each file's last size and time, since when they held, and when it was first seen (monotonic ms). */
  const seen = new Map<string, { size: number; mtimeMs: number; since: number; first: number }>();
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
  const setAside = (name: string, why: string) => {
    const target = moveTo("rejected", name);
    writeFileSync(`${target}.why.txt`, `${why}\n`);
  };
  return {
    start(events) {
      let watching = false;
      let real: string | undefined;
      let crowded = false;
      const scan = async () => {
        timer = null;
        try {
          await mkdir(dir, { recursive: true });
          const now = await realpath(dir);
          real ??= now;
          if (now !== real)
            throw new TransportError(
              "VG_FOLDER_MOVED",
              `${dir} now leads to ${now}, not ${real} as when the device started: not read (restart the device once this is intended)`,
            );
          const pseudo = pseudoFilesystem(real);
          if (pseudo) throw new TransportError("VG_FOLDER_NOT_ALLOWED", `${dir} is not watched: ${pseudo}`);
          if (!watching) events.state({ state: "listening", address: dir });
          watching = true;
          const names: string[] = [];
          for await (const entry of await opendir(dir)) {
            if (names.length === MAX_FOLDER_ENTRIES) {
              if (!crowded) {
                // said once, as the device's last error; the folder is still watched
                events.state({
                  state: "retrying",
                  address: dir,
                  inMs: scanMs,
                  error: new TransportError(
                    "VG_FOLDER_CROWDED",
                    `more than ${MAX_FOLDER_ENTRIES} entries in ${dir}: the first ${MAX_FOLDER_ENTRIES} are taken first, the rest as they leave`,
                  ),
                });
                events.state({ state: "listening", address: dir });
              }
              crowded = true;
              break;
            }
            if (entry.isFile() && !UNFINISHED.test(entry.name)) names.push(entry.name);
          }
          for (const name of seen.keys()) if (!names.includes(name)) seen.delete(name);
          for (const name of names) {
            if (stopped) return;
            const st = await stat(join(dir, name)).catch(() => undefined);
            if (!st?.isFile()) continue;
            const last = seen.get(name);
            const mono = performance.now();
            if (!last || last.size !== st.size || last.mtimeMs !== st.mtimeMs) {
              if (last && mono - last.first > maxSettleMs) {
                seen.delete(name);
                setAside(
                  name,
                  `VG_FILE_NEVER_SETTLED: still changing ${Math.round((mono - last.first) / 1000)} s after it appeared (at most ${Math.round(maxSettleMs / 1000)} s): not a finished export`,
                );
                continue;
              }
              seen.set(name, { size: st.size, mtimeMs: st.mtimeMs, since: mono, first: last?.first ?? mono });
              continue;
            }
            if (mono - last.since < stableMs) continue;
            seen.delete(name);
            // Not read (further): a file this size is no ECG, and reading it whole could exhaust memory.
            const tooLarge = `VG_FILE_TOO_LARGE: ${st.size} bytes, more than the ${maxBytes} this device takes`;
            if (st.size > maxBytes) {
              setAside(name, tooLarge);
              continue;
            }
            const read = await readBounded(join(dir, name), maxBytes);
            if (!read) {
              setAside(name, `${tooLarge} (it grew while read, or holds more than it says)`);
              continue;
            }
            busy = events.file({
              name,
              bytes: read.bytes,
              sha256: read.sha256,
              done: () => void moveTo("done", name),
              reject: (reason) => setAside(name, reason),
            });
            await busy;
          }
        } catch (err) {
          watching = false;
          events.state({ state: "retrying", address: dir, inMs: scanMs, error: folderError(err, dir) });
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
