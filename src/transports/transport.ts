// The transport contract (DESIGN.md §2): what the core opens for a driver, as the device supervisor
// sees it — byte streams (connections) or whole files, and the transport's state.
import type { GateLimits, Refusals } from "./connection-gate.ts";
import type { TransportError } from "./transport-errors.ts";

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
