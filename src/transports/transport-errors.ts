// Why a transport is down, as a coded error (src/error-catalog.ts) rather than the system's words,
// so that the device's status tells "permission denied on the port" (a person must act) from "the
// adapter was unplugged" (the gateway waits for it) (issue 14).
import { VitalgateError, type FailureCode } from "../errors.ts";

/** A transport's failure: its code, what comes next (the catalog's), and the system's words. */
export class TransportError extends VitalgateError {
  constructor(code: FailureCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "TransportError";
  }
}

type Errno = Error & { code?: unknown };

/**
 * serialport's native binding rejects with strerror's words, not an errno code ("Error: Permission
 * denied, cannot open /dev/ttyUSB0"; for the exclusive lock, "Error Resource temporarily unavailable
 * Cannot lock port"): the words of glibc's strerror (C locale) are matched, an errno code when
 * there is one.
 */
const SERIAL: [RegExp, FailureCode][] = [
  [/\bEACCES\b|\bEPERM\b|Permission denied|Operation not permitted/, "VG_SERIAL_PERMISSION"],
  [/\bENOENT\b|\bENODEV\b|\bENXIO\b|No such file or directory|No such device/, "VG_SERIAL_MISSING"],
  [/\bEBUSY\b|\bEAGAIN\b|Device or resource busy|Cannot lock port|Resource temporarily unavailable/, "VG_SERIAL_BUSY"],
];

/** A serial port that could not be opened, or failed once open. */
export function serialError(err: Errno, path: string): TransportError {
  const text = `${typeof err.code === "string" ? err.code : ""} ${err.message}`;
  const code = SERIAL.find(([words]) => words.test(text))?.[1] ?? "VG_SERIAL_FAILED";
  const words = err.message.replace(/^Error:? /, "");
  return new TransportError(code, words.includes(path) ? words : `${path}: ${words}`, { cause: err });
}

/** The port closed under us: the adapter (or the PTY) went away, or the port failed. */
export function serialClosed(path: string, disconnected: boolean): TransportError {
  return disconnected
    ? new TransportError("VG_SERIAL_MISSING", `${path}: the device was unplugged`)
    : new TransportError("VG_SERIAL_FAILED", `${path}: the port was closed`);
}

/** Node's errno codes of an outgoing TCP connection (libuv, getaddrinfo). */
const CONNECT: Record<string, FailureCode> = {
  ECONNREFUSED: "VG_TCP_REFUSED",
  EHOSTUNREACH: "VG_TCP_UNREACHABLE",
  ENETUNREACH: "VG_TCP_UNREACHABLE",
  EHOSTDOWN: "VG_TCP_UNREACHABLE",
  ETIMEDOUT: "VG_TCP_UNREACHABLE",
  ENOTFOUND: "VG_TCP_DNS",
  EAI_AGAIN: "VG_TCP_DNS",
  EAI_FAIL: "VG_TCP_DNS",
  ECONNRESET: "VG_TCP_CLOSED",
  EPIPE: "VG_TCP_CLOSED",
};

/** A listening socket's errno codes. */
const LISTEN: Record<string, FailureCode> = {
  EADDRINUSE: "VG_LISTEN_PORT_TAKEN",
  EADDRNOTAVAIL: "VG_LISTEN_ADDRESS",
  EACCES: "VG_LISTEN_PERMISSION",
  EPERM: "VG_LISTEN_PERMISSION",
  ENOTFOUND: "VG_LISTEN_ADDRESS",
  EAI_AGAIN: "VG_LISTEN_ADDRESS",
};

/** A TCP connection to a device that failed (`err`), or that the device closed (no `err`). */
export function connectError(err: Errno | undefined, address: string): TransportError {
  if (!err) return new TransportError("VG_TCP_CLOSED", `${address}: connection closed by the device`);
  return socketError(CONNECT, err, address);
}

/** A listener that could not listen. */
export function listenError(err: Errno, address: string): TransportError {
  return socketError(LISTEN, err, address);
}

function socketError(codes: Record<string, FailureCode>, err: Errno, address: string): TransportError {
  const errno = typeof err.code === "string" ? err.code : undefined;
  const code = (errno !== undefined && codes[errno]) || "VG_TRANSPORT";
  return new TransportError(code, `${address}: ${err.message}`, { cause: err });
}

/** A watched folder's own problem (one it does not know the errno of is VG_FOLDER_UNUSABLE). */
export function folderError(err: unknown, dir: string): TransportError {
  if (err instanceof TransportError) return err;
  return new TransportError("VG_FOLDER_UNUSABLE", `${dir}: ${(err as Error)?.message ?? err}`, { cause: err });
}
