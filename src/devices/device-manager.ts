// The device manager: runs each configured device on its own (DESIGN.md §2). It opens the
// transport the driver asks for, frames each connection's bytes with the driver's codec, hands every
// frame to the driver, commits the events, and only then sends the device its acknowledgement.
// A device's failure, thrown or reported, stays with that device: it never stops another one, the
// store or the forwarder.
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import {
  openSession,
  type DriverDefinition,
  type DriverNotice,
  type DriverSession,
  type Exchange,
  type TransportSpec,
} from "./driver.ts";
import type { CodecError } from "../../protocols/codec.ts";
import type { DeviceRef, Envelope, EventDraft } from "../events/model.ts";
import { describeRefusals } from "../transports/connection-gate.ts";
import { StoreRefusedError } from "../errors.ts";
import { nextStep, type NextStep } from "../error-catalog.ts";
import { Conditions } from "../log.ts";
import { openTransport } from "../transports/open.ts";
import type { Connection, FileDrop, Transport, TransportOptions, TransportState } from "../transports/transport.ts";
import type { Framer } from "../../protocols/codec.ts";

export interface DeviceConfig {
  id: string;
  driver: string;
  name?: string;
  /** Where the device is: the case open at this location takes its events. */
  location?: string;
  enabled: boolean;
  options: unknown;
}

/** "silent": connected, but nothing heard for longer than the driver says the device may be quiet. */
export type DeviceState =
  "stopped" | "starting" | "listening" | "connecting" | "connected" | "silent" | "retrying" | "faulted";

export interface DeviceStatus {
  id: string;
  driver: string;
  name?: string;
  state: DeviceState;
  /** ISO 8601, as every time the gateway reports. */
  since: string;
  /** Where the transport listens or connects to. */
  address?: string;
  connections: number;
  frames: number;
  events: number;
  /** Messages the device sent that we could not read (it got a negative acknowledgement). */
  rejected: number;
  /** Messages we could not store (the device got a negative acknowledgement). */
  refused: number;
  lastEventAt?: string;
  /** `next`: the catalog's next step for a VG_ code (src/error-catalog.ts); none for a device protocol's code. */
  lastError?: { code: string; message: string; where?: string | number; next?: NextStep; at: string };
  /** Identity the device reported in its last message (HL7 MSH-3, OBX-18). */
  model?: string;
  serial?: string;
  /**
   * Since start, by code: messages refused for what they are (e.g. `HL7_NO_OBSERVATIONS`) and what the
   * driver noticed in accepted ones (`HL7_DEMO`, `HL7_NO_VALUE`, `HL7_CODE_MISMATCH`). Absent until one.
   */
  conditions?: Record<string, number>;
}

/** What the core knows of a message beyond its events. */
export interface IngestOptions {
  /** Stored once ever under this key (a dropped file's content). */
  dedupKey?: string;
  /** The device's own identity of the message (Exchange.messageId, or a file's name and hash). */
  messageId?: string;
}

/** Distinct notices a device's log tells once; past this many, the rest are only counted. */
const NOTICES_LOGGED = 100;

export interface DeviceManagerDeps {
  /** Stamps drafts into events and commits them; resolves once durable. */
  ingest(device: DeviceRef, drafts: EventDraft[], options?: IngestOptions): Promise<Envelope[]>;
  findDriver(id: string): DriverDefinition<unknown> | undefined;
  log: Logger;
  nowMs(): number;
  /** Monotonic ms, for when a frame arrived. */
  monoMs(): number;
  /** A device's report of UTC (a GPS fix), with the monotonic moment its frame arrived. */
  utcFix?(utcMs: number, monoMs: number, info: { leapSecondsKnown?: boolean }): void;
  /** The box's time zone (`time.zone`), handed to drivers for device times without an offset. */
  timeZone?: string;
  transport: Omit<TransportOptions, "random">;
  /**
   * Whether a device may run with this transport (a watched folder IT allows): its refusal makes the
   * device faulted, never started. Default: every device may.
   */
  admit?(device: DeviceConfig, spec: TransportSpec): CodecError | undefined;
  /** For tests: replaces the real transports. */
  openTransport?: typeof openTransport;
}

/** A device's last error as its status shows it: with the catalog's next step for a VG_ code. */
function lastError(error: CodecError, at: string): NonNullable<DeviceStatus["lastError"]> {
  const next = nextStep(error.code);
  return { ...error, ...(next ? { next } : {}), at };
}

/** For drivers with no framer: every chunk is a message. */
export function wholeChunks(): Framer {
  return { push: (chunk) => [{ frame: chunk }], pending: 0 };
}

/** Frames waiting on one connection before we stop reading from it (backpressure). */
const MAX_QUEUED_FRAMES = 64;

class DeviceRunner {
  readonly config: DeviceConfig;
  readonly status: DeviceStatus;
  #driver: DriverDefinition<unknown>;
  #options: unknown;
  #deps: DeviceManagerDeps;
  #log: Logger;
  #transport: Transport | null = null;
  #connections = new Set<Connection>();
  #onChange: () => void;
  /** Notice texts this device's log has already told. */
  #told = new Set<string>();
  /** Refusals by the store, logged once per stretch rather than once per message. */
  #refusals: Conditions;

  constructor(
    config: DeviceConfig,
    driver: DriverDefinition<unknown>,
    options: unknown,
    deps: DeviceManagerDeps,
    onChange: () => void,
  ) {
    this.config = config;
    this.#driver = driver;
    this.#options = options;
    this.#deps = deps;
    this.#onChange = onChange;
    this.#log = deps.log.child({ device: config.id, driver: driver.id });
    this.#refusals = new Conditions(deps.nowMs);
    this.status = {
      id: config.id,
      driver: config.driver,
      name: config.name,
      state: "stopped",
      since: this.#now(),
      connections: 0,
      frames: 0,
      events: 0,
      rejected: 0,
      refused: 0,
    };
  }

  #now(): string {
    return new Date(this.#deps.nowMs()).toISOString();
  }

  start(): void {
    const spec = this.#driver.transport(this.#options);
    this.#transport = (this.#deps.openTransport ?? openTransport)(spec, this.#deps.transport);
    this.#transport.start({
      state: (s) => this.#transportState(s),
      connection: (conn) => this.#session(conn),
      file: (drop) => this.#file(drop),
      turnedAway: (r) => {
        const message = describeRefusals(r);
        this.#log.warn({ code: "VG_TOO_MANY_CONNECTIONS", refused: r.refused, addresses: r.addresses }, message);
        this.#fault({ code: "VG_TOO_MANY_CONNECTIONS", message });
      },
    });
  }

  async stop(): Promise<void> {
    const t = this.#transport;
    this.#transport = null;
    for (const c of this.#connections) c.close();
    await t?.stop();
    this.#setState("stopped");
  }

  #setState(state: DeviceState, address?: string): void {
    if (address !== undefined) this.status.address = address;
    if (this.status.state === state) return;
    this.status.state = state;
    this.status.since = this.#now();
    this.#onChange();
  }

  #transportState(s: TransportState): void {
    if (s.state === "retrying") {
      // The transport's own code (src/transports/transport-errors.ts): a port without permission is
      // not an unplugged adapter, and the status says which, with what comes next.
      this.#log.warn(
        { code: s.error.code, address: s.address, retryInMs: s.inMs, error: s.error.message },
        "transport down; retrying",
      );
      this.#fault({ code: s.error.code, message: s.error.message });
    } else if (s.state !== "starting") {
      this.#log.info({ address: s.address }, s.state);
    }
    this.#setState(
      s.state === "listening" && this.#connections.size > 0 ? "connected" : s.state,
      "address" in s ? s.address : undefined,
    );
  }

  #fault(error: CodecError): void {
    this.status.lastError = lastError(error, this.#now());
    this.#onChange();
  }

  /** One connection: frames in order, each committed before it is acknowledged, in order. */
  #session(conn: Connection): void {
    const framer = this.#driver.framer?.(this.#options) ?? wholeChunks();
    const session = openSession(this.#driver, this.#options);
    const log = this.#log.child({ remote: conn.remote });
    const reply = (bytes: Uint8Array | undefined) => {
      if (bytes) conn.write(bytes);
    };
    const answer: Answer = { accepted: reply, refused: reply, rejected: reply, failed: () => undefined };
    const silentAfterMs = this.#driver.silentAfterMs?.(this.#options);
    let silence: NodeJS.Timeout | undefined;
    const heard = () => {
      if (silentAfterMs === undefined) return;
      clearTimeout(silence);
      if (this.status.state === "silent") {
        log.info("device speaks again");
        this.#setState("connected");
      }
      silence = setTimeout(() => {
        const message = `nothing received for ${silentAfterMs} ms`;
        log.warn({ code: "VG_DEVICE_SILENT", silentAfterMs }, message);
        this.#fault({ code: "VG_DEVICE_SILENT", message });
        this.#setState("silent");
      }, silentAfterMs);
    };
    heard();
    // Who is on this connection: several monitors may share one listener, so identity is per connection.
    const identity: { model?: string; serial?: string } = {};
    let queued = 0;
    let chain = Promise.resolve();
    this.#connections.add(conn);
    this.status.connections = this.#connections.size;
    this.#setState("connected");
    log.info("device connected");
    // What the session says unprompted: on opening, and on its ticks (polled devices, link timeouts).
    const speak = (what: "open" | "tick") => {
      try {
        const bytes =
          what === "open"
            ? session.open?.({ nowMs: this.#deps.nowMs() })
            : session.tick?.({ nowMs: this.#deps.nowMs() });
        for (const b of bytes ?? []) conn.write(b);
      } catch (err) {
        const error = {
          code: "VG_DRIVER_BUG",
          message: `driver ${this.#driver.id} threw ${(err as Error)?.name ?? typeof err} in ${what}`,
        };
        this.#fault(error);
        log.error(
          {
            code: error.code,
            frames: String((err as Error)?.stack ?? "")
              .split("\n")
              .filter((l) => l.trimStart().startsWith("at "))
              .slice(0, 8),
          },
          error.message,
        );
      }
    };
    speak("open");
    const ticker = session.tick ? setInterval(() => speak("tick"), session.tickMs ?? 1000) : undefined;
    conn.onData((chunk) => {
      heard();
      const arrivedMono = this.#deps.monoMs();
      for (const result of framer.push(chunk)) {
        if ("error" in result) {
          this.#rejectFrame(conn, result.error, log);
          continue;
        }
        queued++;
        if (queued === MAX_QUEUED_FRAMES) conn.pause();
        chain = chain
          .then(() => this.#handleFrame(session, result.frame, arrivedMono, log, identity, answer))
          .finally(() => {
            if (--queued === MAX_QUEUED_FRAMES - 1) conn.resume();
          });
      }
    });
    conn.onClose(() => {
      clearTimeout(silence);
      clearInterval(ticker);
      this.#connections.delete(conn);
      this.status.connections = this.#connections.size;
      // Bytes of an unfinished frame are dropped: that message was never acknowledged, so the
      // device still holds it and sends it again.
      log.info({ unfinishedBytes: framer.pending }, "device disconnected");
      if (this.#connections.size === 0 && (this.status.state === "connected" || this.status.state === "silent")) {
        const spec = this.#driver.transport(this.#options);
        this.#setState(spec.type === "tcp-listen" ? "listening" : "connecting");
      }
    });
  }

  #rejectFrame(conn: Connection, error: CodecError, log: Logger): void {
    this.status.rejected++;
    this.#fault(error);
    log.warn({ code: error.code, where: error.where }, error.message);
    const reply = this.#driver.rejectFrame?.(error, this.#options, { nowMs: this.#deps.nowMs() });
    if (reply) conn.write(reply);
  }

  /**
   * One message: decode it, commit its events, then answer the sender: over a connection by writing
   * the driver's reply, for a dropped file by moving it to done/ or rejected/.
   */
  async #handleFrame(
    session: DriverSession,
    frame: Uint8Array,
    arrivedMono: number,
    log: Logger,
    identity: { model?: string; serial?: string },
    answer: Answer,
    file?: FileDrop,
  ): Promise<void> {
    this.status.frames++;
    let exchange: Exchange;
    try {
      exchange = session.handle(frame, { nowMs: this.#deps.nowMs(), timeZone: this.#deps.timeZone });
    } catch (err) {
      // A driver bug: the device gets no acknowledgement (it will resend), the daemon keeps running.
      // The exception's message may quote the message's content, so only its type and stack frames
      // are logged, never its text.
      const e = err as Error;
      const error = {
        code: "VG_DRIVER_BUG",
        message: `driver ${this.#driver.id} threw ${e?.name ?? typeof err} on a message`,
      };
      this.status.rejected++;
      this.#fault(error);
      log.error(
        {
          code: error.code,
          frames: String(e?.stack ?? "")
            .split("\n")
            .filter((l) => l.trimStart().startsWith("at "))
            .slice(0, 8),
        },
        error.message,
      );
      answer.failed(error);
      return;
    }
    if (!exchange.ok) {
      this.status.rejected++;
      this.#count(exchange.error.code);
      this.#fault(exchange.error);
      log.warn({ code: exchange.error.code, where: exchange.error.where }, exchange.error.message);
      answer.rejected(exchange.reply, exchange.error);
      return;
    }
    if (exchange.utcFix !== undefined)
      this.#deps.utcFix?.(exchange.utcFix, arrivedMono, { leapSecondsKnown: exchange.leapSecondsKnown });
    const first = exchange.events[0];
    if (first?.model) identity.model = this.status.model = first.model;
    if (first?.serial) identity.serial = this.status.serial = first.serial;
    const dev: DeviceRef = {
      id: this.config.id,
      driver: this.#driver.id,
      kind: this.#driver.kind,
      model: identity.model,
      serial: identity.serial,
    };
    let stored = 0;
    try {
      // Fewer than decoded when the message was stored before (the same file dropped again).
      if (exchange.events.length > 0) {
        const options = file
          ? { dedupKey: `file:${file.sha256}`, messageId: exchange.messageId ?? `${file.name}#${file.sha256}` }
          : { messageId: exchange.messageId };
        stored = (await this.#deps.ingest(dev, exchange.events, options)).length;
      }
    } catch (err) {
      const refusal =
        err instanceof StoreRefusedError ? err : new StoreRefusedError("VG_STORE_FAILED", (err as Error).message);
      this.status.refused++;
      this.#fault({ code: refusal.code, message: refusal.message });
      const more = this.#refusals.occur(refusal.code);
      if (more !== undefined)
        log.error(
          { code: refusal.code, ...(more > 0 ? { refusedSinceLastLine: more } : {}) },
          `message not stored, device told so: ${refusal.message}`,
        );
      answer.refused(exchange.refuse?.(refusal.message));
      return;
    }
    if (this.#refusals.clearAll()) log.info("messages are stored again");
    this.status.events += stored;
    this.status.lastEventAt = this.#now();
    // A message the device resent (stored before, so nothing stored now) is not counted twice; the
    // resend itself is, so that whoever resent it (a crew re-exporting an ECG) can be told it had come.
    if (stored > 0 || exchange.events.length === 0) for (const n of exchange.notices ?? []) this.#notice(n, log);
    else {
      this.#count("VG_ALREADY_RECEIVED");
      this.#onChange();
    }
    answer.accepted(exchange.accept);
  }

  #count(code: string): void {
    const c = (this.status.conditions ??= {});
    c[code] = (c[code] ?? 0) + 1;
  }

  /** Counted every time; said once per device and text (the text never holds patient data). */
  #notice(n: DriverNotice, log: Logger): void {
    this.#count(n.code);
    if (this.#told.has(n.message) || this.#told.size >= NOTICES_LOGGED) return;
    this.#told.add(n.message);
    log.warn({ code: n.code }, n.message);
  }

  /** A file dropped into a watched folder: one message, answered by where the file goes. */
  async #file(drop: FileDrop): Promise<void> {
    // Carts often name exports after the patient: logs name the file by its content hash instead.
    const log = this.#log.child({ file: drop.sha256.slice(0, 16) });
    this.#setState("connected");
    await this.#handleFrame(
      openSession(this.#driver, this.#options),
      drop.bytes,
      this.#deps.monoMs(),
      log,
      {},
      {
        accepted: () => drop.done(),
        // The file stays where it is and is tried again: the store may have room later. A sender
        // that can be told (a DICOM SCU) is told why, from the refusal just recorded.
        refused: () =>
          drop.refused?.(
            this.status.lastError
              ? `${this.status.lastError.code}: ${this.status.lastError.message}`
              : "the store refused it",
          ),
        rejected: (_reply, error) => drop.reject(`${error.code}: ${error.message}`),
        failed: (error) => drop.reject(`${error.code}: ${error.message}`),
      },
      drop,
    );
    this.#setState("listening");
  }
}

/** How a message's sender learns what became of it. */
interface Answer {
  accepted(reply: Uint8Array | undefined): void;
  refused(reply: Uint8Array | undefined): void;
  rejected(reply: Uint8Array | undefined, error: CodecError): void;
  /** The driver failed on it (a bug): no answer a protocol could carry. */
  failed(error: CodecError): void;
}

export class DeviceManager extends EventEmitter<{ change: [DeviceStatus] }> {
  #deps: DeviceManagerDeps;
  #runners = new Map<string, DeviceRunner>();
  /** Devices that could not start: unknown driver or invalid options. They stay listed, faulted. */
  #faulted = new Map<string, DeviceStatus>();

  constructor(deps: DeviceManagerDeps) {
    super();
    this.#deps = deps;
  }

  /**
   * Brings the running devices in line with `devices`: starts new ones, stops removed or disabled
   * ones, and restarts only those whose configuration changed. Returns the ids that changed.
   */
  async apply(
    devices: readonly DeviceConfig[],
  ): Promise<{ started: string[]; stopped: string[]; restarted: string[] }> {
    const wanted = new Map(devices.filter((d) => d.enabled).map((d) => [d.id, d]));
    const result = { started: [] as string[], stopped: [] as string[], restarted: [] as string[] };
    for (const [id, runner] of this.#runners) {
      const next = wanted.get(id);
      if (next && JSON.stringify(next) === JSON.stringify(runner.config)) continue;
      await runner.stop();
      this.#runners.delete(id);
      (next ? result.restarted : result.stopped).push(id);
    }
    this.#faulted.clear();
    for (const [id, config] of wanted) {
      if (this.#runners.has(id)) continue;
      const driver = this.#deps.findDriver(config.driver);
      const parsed = driver?.options.safeParse(config.options ?? {});
      const refusal: CodecError | undefined = !driver
        ? { code: "VG_DEVICE_CONFIG", message: `unknown driver "${config.driver}"` }
        : !parsed?.success
          ? {
              code: "VG_DEVICE_CONFIG",
              message: `invalid options: ${parsed!.error!.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
            }
          : this.#deps.admit?.(config, driver.transport(parsed.data));
      if (!driver || !parsed?.success || refusal) {
        const { code, message } = refusal!;
        this.#deps.log.error({ device: id, code }, `device ${id} not started: ${message}`);
        const now = new Date(this.#deps.nowMs()).toISOString();
        this.#faulted.set(id, {
          id,
          driver: config.driver,
          name: config.name,
          state: "faulted",
          since: now,
          connections: 0,
          frames: 0,
          events: 0,
          rejected: 0,
          refused: 0,
          lastError: lastError({ code, message }, now),
        });
        continue;
      }
      const runner = new DeviceRunner(config, driver, parsed.data, this.#deps, () =>
        this.emit("change", runner.status),
      );
      this.#runners.set(id, runner);
      runner.start();
      if (!result.restarted.includes(id)) result.started.push(id);
    }
    return result;
  }

  list(): DeviceStatus[] {
    return [...[...this.#runners.values()].map((r) => r.status), ...this.#faulted.values()];
  }

  /** The location of a running device, if it has one. */
  locationOf(id: string): string | undefined {
    return this.#runners.get(id)?.config.location;
  }

  get(id: string): DeviceStatus | undefined {
    return this.#runners.get(id)?.status ?? this.#faulted.get(id);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.#runners.values()].map((r) => r.stop()));
    this.#runners.clear();
  }
}
