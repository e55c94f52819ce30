// The simulator contract: a driver may bring a simulator of its device (`vitalgate simulate <driver>`),
// for the demo, for technicians checking a box, and for tests. The simulator is the device's side of
// the protocol, written against a line the runner (src/cli/simulate.ts) opens for it from the common
// flags: it says how the device is reached and which flags it takes, and plays the device on the line.
// It lives in drivers/<id>/simulator.ts, loaded only by `vitalgate simulate` (never by the daemon).

/** The line a simulated device talks over, opened (and reopened) by the runner. */
export interface SimulatorLine {
  /** The line is there: the port is open, a client is connected, the connection to the gateway is made. */
  up(): boolean;
  /** Sends the bytes; returns on how many links they went out (0: the line is down, they went nowhere). */
  write(bytes: Uint8Array): number;
  /** What the gateway sends, as it arrives. */
  onData(listener: (chunk: Uint8Array) => void): void;
  /** A new link: the port (re)opened, a client connected, the gateway dialled again. */
  onOpen(listener: () => void): void;
  /** A link went away: the port vanished, a client or the gateway closed the connection. */
  onClose(listener: () => void): void;
  /** Drops the link (a gateway that did not answer): a dialling line dials again. */
  drop(): void;
}

/** Serial settings where the device's differ from 8N1 without flow control. */
export interface SimulatorSerial {
  dataBits?: 5 | 6 | 7 | 8;
  parity?: "none" | "even" | "odd";
  stopBits?: 1 | 2;
  rtscts?: boolean;
}

/** How the device reaches the gateway, and so the flags that say where. */
export type SimulatorLink =
  /**
   * The device connects to the gateway's TCP port, as a monitor sending HL7 does:
   * `[--host H] [--port P]`, default 127.0.0.1 and `port`. Dialled again whenever the connection breaks.
   */
  | { type: "dial"; port: number }
  /**
   * The device is on an RS-232 line: `--port PATH [--baud B]` (a PTY, a port wired to the gateway's,
   * reopened after an unplug), or plays a serial-to-Ethernet server the gateway connects to:
   * `--tcp-port P [--host H]` (0: any free port). With "all" clients every client hears the device
   * (and is heard); with "latest" a new client replaces the one before it.
   */
  | { type: "line"; baudRate: number; fixedBaud?: true; serial?: SimulatorSerial; clients: "all" | "latest" };

/** The common flags, checked by the runner, as the simulator declared them. */
export interface SimulatorFlags {
  /** `--count N` when given (the simulator decides what none means). */
  count?: number;
  /** `--interval-ms MS`, or the simulator's default. */
  intervalMs: number;
  /** The bytes of `--file` (or `--log`), read whole. */
  file?: Uint8Array;
  /** The wall clock when the simulator starts. */
  nowMs: number;
}

/** The simulator's output: `out` a line on stdout (each message's outcome), `err` a line on stderr (what it does). */
export interface SimulatorSay {
  out(line: string): void;
  err(line: string): void;
}

export interface SimulatorDefinition<O = unknown> {
  /** What it plays, after "simulating": "a GPS receiver". */
  plays: string;
  /** For `vitalgate simulate`'s list and the usage text: what it sends, in a few short lines. */
  describe: string;
  link: SimulatorLink;
  /** Takes `--count N`. */
  count?: true;
  /** Takes `--interval-ms MS`, with this default. */
  intervalMs?: number;
  /** Takes a file to replay: the flag (`--file`, or `--log` for a GPS's NMEA log) and what to call it in the usage. */
  file?: { flag: "file" | "log"; meta: string };
  /** The device's options from the flags, and what it will send (said when it starts). */
  fromFlags(flags: SimulatorFlags, say: SimulatorSay): { options: O; what: string };
  /** Plays the device on the line until it is done or `signal` aborts; returns the number `counts` names. */
  run(line: SimulatorLine, options: O, signal?: AbortSignal): Promise<number>;
  /** What run's number counts, said at the end: "message(s) acknowledged AA". */
  counts: string;
}

/** Declares a simulator: gives it its type. */
export function defineSimulator<O>(definition: SimulatorDefinition<O>): SimulatorDefinition<O> {
  return definition;
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

/** Waits for the line to be up (looking every 50 ms) for at most `ms`; says whether it is. */
export async function untilUp(line: SimulatorLine, ms: number, signal?: AbortSignal): Promise<boolean> {
  const until = Date.now() + ms;
  while (!line.up() && !signal?.aborted && Date.now() < until) await delay(50, signal);
  return line.up();
}
