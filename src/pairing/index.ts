// Pairing devices on the web page (DESIGN.md §7, §8): the devices the gateway runs are those of the
// configuration file and those paired here (store.ts), which take effect at once, restart only when
// they change, and survive restarts. Also what the page needs to pair one: the serial ports
// (ports.ts), a listen-only probe (probe.ts) and preview, and the network senders seen but not
// paired (senders.ts), whose ports are released the moment a device is paired on them.
import { BlockList, connect, isIP, type Socket } from "node:net";
import type { Logger } from "pino";
import type { SerialPort } from "serialport";
import { z } from "zod";
import { pairedDeviceInputSchema, type Config } from "../config/schema.ts";
import type { DeviceConfig } from "../devices/device-manager.ts";
import type { DriverDefinition, Text, TransportSpec } from "../devices/driver.ts";
import { openSerialPort, type SysfsRoots } from "../transports/serial-ports.ts";
import { PairingError } from "./errors.ts";
import { listenOnly, type DraftPreview } from "./listen.ts";
import { pairingPorts, resolvePath, type PairingPort } from "./ports.ts";
import { probeSerialPort, type ProbeResult } from "./probe.ts";
import { SenderWatch, type Sender } from "./senders.ts";
import { deviceSetup } from "./setup.ts";
import { loadPairedDevices, pairedDevicesPath, savePairedDevices, type PairedDevice } from "./store.ts";
import type { CodecError } from "../../protocols/codec.ts";
import { folderProblem } from "../transports/watched-folders.ts";

export { PairingError } from "./errors.ts";
export type { PairedDevice } from "./store.ts";
export type { ProbeResult } from "./probe.ts";
export type { Sender } from "./senders.ts";
export type { PairingPort } from "./ports.ts";

export interface PairingDeps {
  log: Logger;
  nowMs(): number;
  /** The gateway's configuration as it is now (it changes on reload). */
  config(): Config;
  findDriver(id: string): DriverDefinition<unknown> | undefined;
  /** Every driver, for the probe and the sender watch; default none (then nothing is probed or recognised). */
  drivers?: readonly DriverDefinition<unknown>[];
  /** Brings the running devices in line with the list (DeviceManager.apply). */
  apply(devices: readonly DeviceConfig[]): Promise<Applied>;
  /** For tests: a fake /sys and /dev. */
  sysfs?: SysfsRoots;
}

/** What changed when the devices were applied: ids started, stopped, restarted. */
export interface Applied {
  started: string[];
  stopped: string[];
  restarted: string[];
}

/** A device as the page sends it when pairing or editing (checked by pairedDeviceInputSchema). */
export type PairedDeviceInput = z.input<ReturnType<typeof pairedDeviceInputSchema>>;

export interface PreviewResult {
  events: DraftPreview[];
  errors: CodecError[];
  bytes: number;
  frames: number;
}

/** Most events a preview returns. */
const PREVIEW_EVENTS = 10;
/** The longest preview, ms. */
export const MAX_PREVIEW_MS = 15_000;

/** The first issue of a failed check as a PairingError naming its field (e.g. `options.port`). */
export function invalid(error: z.ZodError): PairingError {
  const issue = error.issues[0]!;
  const field = issue.path.map(String).join(".");
  return new PairingError("VG_INVALID", field ? `${field}: ${issue.message}` : issue.message, 400, field || undefined);
}

export class Pairing {
  readonly #deps: PairingDeps;
  #paired: PairedDevice[] = [];
  #watch: SenderWatch | null = null;
  /** Ports being probed or previewed (resolved paths). */
  readonly #busy = new Set<string>();
  /** Changes one at a time, each saved and applied before the next. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(deps: PairingDeps) {
    this.#deps = deps;
  }

  get path(): string {
    return pairedDevicesPath(this.#deps.config().stateDir);
  }

  /** Loads the paired devices, starts the sender watch, and runs the config's and the paired devices. */
  async start(): Promise<void> {
    const config = this.#deps.config();
    const loaded = loadPairedDevices(this.path, this.#deps.findDriver, this.#deps.nowMs());
    if (loaded.setAside) {
      this.#deps.log.error(
        { code: "VG_PAIRED_FILE_INVALID", setAside: loaded.setAside.path, reason: loaded.setAside.reason },
        `paired devices file unusable, set aside as ${loaded.setAside.path}: running the configuration's devices only (pair them again on the web page)`,
      );
    }
    this.#paired = loaded.devices;
    const p = config.pairing;
    this.#watch = new SenderWatch(
      {
        host: p.listenHost,
        maxSenders: p.maxSenders,
        maxConnections: p.maxConnections,
        maxPerAddress: Math.min(p.maxConnections, config.listeners.maxPerAddress),
        idleMs: p.idleS * 1000,
        maxBytes: 1 << 20,
        previewSize: 3,
      },
      { log: this.#deps.log, nowMs: this.#deps.nowMs, drivers: this.#deps.drivers ?? [] },
    );
    const applied = await this.#apply();
    this.#deps.log.info({ paired: this.#paired.length, ...applied }, "devices started");
  }

  /** The configuration changed (SIGHUP): its devices are applied, paired ones kept. */
  reload(): Promise<Applied> {
    return this.#serial(() => this.#apply());
  }

  async stop(): Promise<void> {
    await this.#queue.catch(() => undefined);
    await this.#watch?.stop();
    this.#watch = null;
  }

  /** Paired devices, as stored. */
  list(): PairedDevice[] {
    return this.#paired.map((d) => ({ ...d }));
  }

  /** Where a running device comes from, and where it is. */
  deviceInfo(id: string): { source: "config" | "paired"; location?: string } | undefined {
    const d = this.#deps.config().devices.find((c) => c.id === id);
    if (d) return d.location === undefined ? { source: "config" } : { source: "config", location: d.location };
    const p = this.#paired.find((c) => c.id === id);
    if (p) return p.location === undefined ? { source: "paired" } : { source: "paired", location: p.location };
    return undefined;
  }

  ports(): PairingPort[] {
    return pairingPorts(this.#deps.config().pairing.serialPaths, this.#usage().serial, this.#deps.sysfs);
  }

  senders(): Sender[] {
    return this.#watch?.list() ?? [];
  }

  /** Listens to a serial port with every probeable driver (probe.ts). */
  probe(path: string, only?: readonly string[]): Promise<ProbeResult> {
    return this.#withPort(path, () =>
      probeSerialPort(path, this.#deps.drivers ?? [], {
        probeMs: this.#deps.config().pairing.probeMs,
        nowMs: this.#deps.nowMs,
        only,
      }),
    );
  }

  /**
   * Decodes what the device says for up to `ms`, with the driver and options the page has chosen,
   * answering nothing. A device we listen for (HL7, DICOM) is previewed from the sender watch.
   */
  async preview(driverId: string, options: unknown, ms: number): Promise<PreviewResult> {
    const { driver, parsed } = this.#withOptions(driverId, options);
    const spec = driver.transport(parsed.data);
    if (spec.type === "tcp-listen" || spec.type === "dicom-scp") {
      const events = this.senders()
        .filter((s) => s.port === spec.port)
        .flatMap((s) => s.preview)
        .slice(-PREVIEW_EVENTS);
      return { events, errors: [], bytes: 0, frames: 0 };
    }
    this.#reachable(spec);
    if (spec.type === "folder")
      throw new PairingError(
        "VG_PREVIEW_UNSUPPORTED",
        "a watched folder has nothing to listen to: drop a file into it once the device is paired",
        400,
        "driver",
      );
    const listener = listenOnly(driver, parsed.data, this.#deps.nowMs, PREVIEW_EVENTS);
    const run = () =>
      readFor(
        spec,
        ms,
        (chunk) => listener.push(chunk),
        () => listener.tally.events >= PREVIEW_EVENTS,
      );
    await (spec.type === "serial" ? this.#withPort(spec.path, run) : run());
    const t = listener.tally;
    return { events: t.sample, errors: t.errorSample, bytes: t.bytes, frames: t.frames };
  }

  /**
   * What to set on the device so it reaches this box, for a driver with the options the page has
   * chosen (src/pairing/setup.ts); `addresses`: the box's.
   */
  setup(driverId: string, options: unknown, addresses: readonly string[]): { steps: Text[] } {
    const { driver, parsed } = this.#withOptions(driverId, options);
    return { steps: deviceSetup(driver, parsed.data, addresses) };
  }

  /** The driver and the options checked with its schema; a problem names its field (`options.port`). */
  #withOptions(driverId: string, options: unknown) {
    const driver = this.#deps.findDriver(driverId);
    if (!driver) throw new PairingError("VG_INVALID", `unknown driver "${driverId}"`, 400, "driver");
    const parsed = driver.options.safeParse(options ?? {});
    if (!parsed.success)
      throw invalid(new z.ZodError(parsed.error.issues.map((i) => ({ ...i, path: ["options", ...i.path] }))));
    return { driver, parsed };
  }

  /** Pairs a new device: checked, saved, started. */
  add(input: unknown, actor: string): Promise<PairedDevice> {
    return this.#serial(async () => {
      const entry = this.#check(input, actor);
      if (this.#paired.some((d) => d.id === entry.id))
        throw new PairingError(
          "VG_DEVICE_EXISTS",
          `a device "${entry.id}" is already paired: edit it, or choose another id`,
          409,
          "id",
        );
      await this.#commit([...this.#paired, entry]);
      return entry;
    });
  }

  /** Changes a paired device; only it restarts. */
  update(id: string, input: unknown, actor: string): Promise<PairedDevice> {
    return this.#serial(async () => {
      this.#owned(id);
      const given = (input as { id?: unknown } | null)?.id;
      if (given !== undefined && given !== id)
        throw new PairingError("VG_INVALID", "id: a device's id cannot change; remove it and pair it again", 400, "id");
      const entry = this.#check(input, actor, id);
      await this.#commit(this.#paired.map((d) => (d.id === id ? entry : d)));
      return entry;
    });
  }

  /** Removes a paired device; it stops. */
  remove(id: string): Promise<void> {
    return this.#serial(async () => {
      this.#owned(id);
      await this.#commit(this.#paired.filter((d) => d.id !== id));
    });
  }

  #serial<T>(run: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(run);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  #owned(id: string): void {
    if (this.#deps.config().devices.some((d) => d.id === id))
      throw new PairingError(
        "VG_DEVICE_CONFIGURED",
        `device "${id}" is set in the configuration file: IT changes it there`,
        409,
        "id",
      );
    if (!this.#paired.some((d) => d.id === id))
      throw new PairingError("VG_NOT_FOUND", `no paired device "${id}"`, 404, "id");
  }

  /** The entry to store for `input`, or the first problem with it (its field named). */
  #check(input: unknown, actor: string, editing?: string): PairedDevice {
    const result = pairedDeviceInputSchema(this.#deps.findDriver).safeParse(input);
    if (!result.success) throw invalid(result.error);
    const body = input as PairedDeviceInput;
    const d = result.data;
    if (d.id !== editing && this.#deps.config().devices.some((c) => c.id === d.id)) {
      throw new PairingError(
        "VG_DEVICE_ID_TAKEN",
        `id "${d.id}" is a device of the configuration file: choose another id`,
        409,
        "id",
      );
    }
    const entry: PairedDevice = {
      id: d.id,
      name: d.name,
      driver: d.driver,
      ...(d.location === undefined ? {} : { location: d.location }),
      enabled: d.enabled,
      // as the technician gave them: the driver's defaults are filled each time the device starts
      options: (body.options ?? {}) as Record<string, unknown>,
      pairedBy: actor,
      pairedAt: new Date(this.#deps.nowMs()).toISOString(),
    };
    const spec = this.#deps.findDriver(d.driver)?.transport(d.options);
    if (spec) this.#reachable(spec);
    if (spec?.type === "folder") {
      const { watchedFolders, stateDir, store } = this.#deps.config();
      const problem = folderProblem(spec.dir, { roots: watchedFolders.roots, stateDir, storePath: store.path });
      if (problem) throw new PairingError(problem.code, `options.dir: ${problem.message}`, 400, "options.dir");
    }
    const others = this.#usage(this.#devices(this.#paired.filter((p) => p.id !== (editing ?? d.id))));
    const mine = this.#usage([entry]);
    for (const path of mine.serial.keys()) {
      const user = others.serial.get(path);
      if (user !== undefined)
        throw new PairingError(
          "VG_PORT_IN_USE",
          `options.port: ${path} is already used by device "${user}"`,
          409,
          "options.port",
        );
    }
    for (const [port] of mine.tcp) {
      const user = others.tcp.get(port);
      if (user !== undefined)
        throw new PairingError(
          "VG_PORT_IN_USE",
          `options.port: TCP port ${port} is already used by device "${user}"`,
          409,
          "options.port",
        );
    }
    return entry;
  }

  /**
   * A device paired, or previewed, on the page reaches only what IT allows (issue 13 item 10): a serial
   * port listed for pairing, never any file on the box; an address on `pairing.connectNetworks` (and a
   * port of `pairing.connectPorts`), so the page is not a port scanner of the LAN.
   */
  #reachable(spec: TransportSpec): void {
    if (spec.type === "serial") {
      const target = resolvePath(spec.path);
      if (!this.ports().some((p) => p.path === spec.path || p.byId === spec.path || resolvePath(p.path) === target)) {
        throw new PairingError(
          "VG_NOT_A_PORT",
          `options.port: ${spec.path} is not one of the serial ports listed for pairing`,
          400,
          "options.port",
        );
      }
    } else if (spec.type === "tcp-connect") {
      const { connectNetworks, connectPorts } = this.#deps.config().pairing;
      const family = isIP(spec.host);
      const networks = new BlockList();
      for (const cidr of connectNetworks) {
        const [address, prefix] = cidr.split("/");
        networks.addSubnet(address!, Number(prefix), isIP(address!) === 6 ? "ipv6" : "ipv4");
      }
      const allowed = connectNetworks.length === 0 ? "none" : connectNetworks.join(", ");
      if (family === 0)
        throw new PairingError(
          "VG_ADDRESS_NOT_ALLOWED",
          `options.host: give the device's IP address, not a name ("${spec.host.slice(0, 64)}")`,
          400,
          "options.host",
        );
      if (!networks.check(spec.host, family === 6 ? "ipv6" : "ipv4")) {
        throw new PairingError(
          "VG_ADDRESS_NOT_ALLOWED",
          `options.host: ${spec.host} is not on a network IT allows devices to be reached on (pairing.connectNetworks: ${allowed})`,
          400,
          "options.host",
        );
      }
      if (connectPorts.length > 0 && !connectPorts.includes(spec.port)) {
        throw new PairingError(
          "VG_ADDRESS_NOT_ALLOWED",
          `options: port ${spec.port} of ${spec.host} is not one IT allows devices to be reached on (pairing.connectPorts: ${connectPorts.join(", ")})`,
          400,
          "options.host",
        );
      }
    }
  }

  /** Saves the new list, then runs it; a list that cannot be saved is not applied. */
  async #commit(next: PairedDevice[]): Promise<void> {
    try {
      savePairedDevices(this.path, next);
    } catch (err) {
      throw new PairingError(
        "VG_PAIRING_SAVE",
        `the paired devices could not be saved (${(err as Error).message}); nothing changed`,
        500,
      );
    }
    this.#paired = next;
    await this.#apply();
  }

  /** The config's devices, then the paired ones whose ids the config does not use (said once per apply). */
  #devices(paired = this.#paired): DeviceConfig[] {
    const configured = this.#deps.config().devices;
    const ids = new Set(configured.map((d) => d.id));
    const kept = paired.filter((p) => !ids.has(p.id));
    return [
      ...configured,
      ...kept.map(({ id, name, driver, location, enabled, options }) => ({
        id,
        name,
        driver,
        ...(location === undefined ? {} : { location }),
        enabled,
        options,
      })),
    ];
  }

  /** Which device uses which serial port (resolved path) and which TCP port it listens on. */
  #usage(devices: readonly DeviceConfig[] = this.#devices()): {
    serial: Map<string, string>;
    tcp: Map<number, string>;
  } {
    const serial = new Map<string, string>();
    const tcp = new Map<number, string>();
    for (const d of devices) {
      if (!d.enabled) continue;
      const driver = this.#deps.findDriver(d.driver);
      const parsed = driver?.options.safeParse(d.options ?? {});
      if (!driver || !parsed?.success) continue;
      const spec = driver.transport(parsed.data);
      if (spec.type === "serial") serial.set(resolvePath(spec.path), d.id);
      else if (spec.type === "tcp-listen" || spec.type === "dicom-scp") tcp.set(spec.port, d.id);
    }
    return { serial, tcp };
  }

  /** Runs the devices, the sender watch keeping off their ports (released before, taken after). */
  async #apply(): Promise<Applied> {
    const configured = new Set(this.#deps.config().devices.map((d) => d.id));
    for (const p of this.#paired) {
      if (configured.has(p.id))
        this.#deps.log.error(
          { code: "VG_PAIRED_ID_CLASH", device: p.id },
          `paired device "${p.id}" not started: the configuration file has a device with that id (remove or rename one of them)`,
        );
    }
    const devices = this.#devices();
    const used = this.#usage(devices).tcp;
    const watched = this.#deps.config().pairing.listen.filter((port) => !used.has(port));
    await this.#watch?.setPorts(this.#watch.ports.filter((port) => watched.includes(port)));
    const applied = await this.#deps.apply(devices);
    await this.#watch?.setPorts(watched);
    return applied;
  }

  /** Runs `work` on a serial port no device uses and nothing else probes. */
  async #withPort<T>(path: string, work: () => Promise<T>): Promise<T> {
    const target = resolvePath(path);
    const user = this.#usage().serial.get(target);
    if (user !== undefined)
      throw new PairingError(
        "VG_PORT_IN_USE",
        `${path} is used by device "${user}": stop or remove it first`,
        409,
        "path",
      );
    if (this.#busy.has(target))
      throw new PairingError("VG_PORT_BUSY", `${path} is being probed already: wait for that to finish`, 409, "path");
    this.#busy.add(target);
    try {
      return await work();
    } finally {
      this.#busy.delete(target);
    }
  }
}

/** Reads a serial port or a TCP server (a serial server) for `ms`, writing nothing; stops early when `enough`. */
async function readFor(
  spec: TransportSpec,
  ms: number,
  onData: (chunk: Buffer) => void,
  enough: () => boolean,
): Promise<void> {
  if (spec.type !== "serial" && spec.type !== "tcp-connect") return;
  const address = spec.type === "serial" ? spec.path : `${spec.host}:${spec.port}`;
  const fail = (err: Error) => {
    throw new PairingError("VG_PORT_OPEN", `cannot open ${address}: ${err.message}`, 409);
  };
  const source: SerialPort | Socket =
    spec.type === "serial"
      ? await openSerialPort(spec.path, spec).catch(fail)
      : await new Promise<Socket>((resolve, reject) => {
          const socket = connect({ host: spec.host, port: spec.port });
          socket.once("connect", () => resolve(socket)).once("error", reject);
        }).catch(fail);
  source.on("error", () => undefined);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      source.off("data", data);
      resolve();
    }
    function data(chunk: Buffer) {
      onData(chunk);
      if (enough()) done();
    }
    source.on("data", data);
    source.once("close", done);
  });
  if (spec.type === "serial") {
    const port = source as SerialPort;
    if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  } else (source as Socket).destroy();
}
