// `vitalgate simulate`: the registry's simulators (src/devices/simulator.ts), each a device talking
// its real protocol to a gateway. The runner reads the common flags as each simulator declares them,
// opens its line, plays it until done or stopped, and says how it went. Loaded only by
// `vitalgate simulate` and the usage text, never by the daemon (serialport comes with it).
import { readFileSync } from "node:fs";
import type { DriverDefinition } from "../devices/driver.ts";
import type { SimulatorDefinition, SimulatorLink, SimulatorSay } from "../devices/simulator.ts";
import { serialLine, tcpClientLine, tcpServerLine, type OpenLine } from "./simulate-line.ts";

/** Where the line goes: the place flags, as numbers. */
export interface SimulatorPlace {
  /** A serial port (line). */
  path?: string;
  /** Its speed; default the simulator's. */
  baudRate?: number;
  /** Play a serial server on this TCP port (line; 0: any free port), or dial the gateway's (dial). */
  tcpPort?: number;
  host?: string;
  /** Told the port a serial server listens on (useful with 0). */
  onListening?: (port: number) => void;
}

/** Opens the line a simulator declared, at `place`. */
export async function openSimulatorLine(link: SimulatorLink, place: SimulatorPlace): Promise<OpenLine> {
  const host = place.host ?? "127.0.0.1";
  if (link.type === "dial") return tcpClientLine(host, place.tcpPort ?? link.port);
  if (place.tcpPort !== undefined) return tcpServerLine(host, place.tcpPort, link.clients, place.onListening);
  return serialLine(place.path!, place.baudRate ?? link.baudRate, link.serial);
}

/** Plays `simulator` at `place` with its options until it is done or `signal` aborts; the line is closed after. */
export async function simulate<O>(
  simulator: SimulatorDefinition<O>,
  place: SimulatorPlace,
  options: O,
  signal?: AbortSignal,
): Promise<number> {
  const line = await openSimulatorLine(simulator.link, place);
  try {
    return await simulator.run(line, options, signal);
  } finally {
    await line.close();
  }
}

/** The drivers that bring a simulator, with it loaded. */
export async function simulators(
  drivers: readonly DriverDefinition<unknown>[],
): Promise<{ id: string; simulator: SimulatorDefinition }[]> {
  const found = drivers.filter((d) => d.simulator);
  return Promise.all(found.map(async (d) => ({ id: d.id, simulator: await d.simulator!() })));
}

/** The usage line of one simulator: its flags as it declared them. */
export function simulatorSynopsis(id: string, s: SimulatorDefinition): string {
  const place =
    s.link.type === "dial"
      ? "[--host H] [--port P]"
      : `(--port PATH${s.link.fixedBaud ? "" : " [--baud B]"} | --tcp-port P [--host H])`;
  const file = s.file ? ` [--${s.file.flag} ${s.file.meta}]` : "";
  const count = s.count ? " [--count N]" : "";
  const interval = s.intervalMs !== undefined ? " [--interval-ms MS]" : "";
  return `vitalgate simulate ${id} ${place}${file}${count}${interval}`;
}

/** The usage text's simulator lines: each synopsis, its description below it at the usage's second column. */
export function simulatorsUsage(list: readonly { id: string; simulator: SimulatorDefinition }[]): string {
  const indent = " ".repeat(41);
  return list
    .map(
      ({ id, simulator }) =>
        `  ${simulatorSynopsis(id, simulator)}\n${simulator.describe
          .split("\n")
          .map((l) => indent + l)
          .join("\n")}\n`,
    )
    .join("");
}

/** The command line's values `vitalgate simulate` reads. */
export interface SimulateFlags {
  host?: string;
  port?: string;
  "tcp-port"?: string;
  baud?: string;
  count?: string;
  "interval-ms"?: string;
  file?: string;
  log?: string;
}

/** The flags a simulator does not take, by their names. */
function foreignFlags(s: SimulatorDefinition, v: SimulateFlags): string[] {
  const takes = new Set(["host", "port"]);
  if (s.link.type === "line") takes.add("tcp-port");
  if (s.link.type === "line" && !s.link.fixedBaud) takes.add("baud");
  if (s.count) takes.add("count");
  if (s.intervalMs !== undefined) takes.add("interval-ms");
  if (s.file) takes.add(s.file.flag);
  return (Object.keys(v) as (keyof SimulateFlags)[]).filter((k) => v[k] !== undefined && !takes.has(k));
}

/** `vitalgate simulate ID ...`: checks the flags, runs the simulator until done or SIGINT/SIGTERM. 2 on a usage error. */
export async function simulateCommand(
  id: string,
  s: SimulatorDefinition,
  v: SimulateFlags,
  say: SimulatorSay,
  signal: AbortSignal,
): Promise<number> {
  const usage = (problem: string) => {
    say.err(`simulate ${id}: ${problem}\n  ${simulatorSynopsis(id, s)}`);
    return 2;
  };
  const foreign = foreignFlags(s, v);
  if (foreign.length > 0) return usage(`it takes no ${foreign.map((f) => `--${f}`).join(", ")}`);
  const port = (text: string | undefined, min: number) => {
    const n = Number(text);
    return text !== undefined && Number.isInteger(n) && n >= min && n <= 65535 ? n : undefined;
  };
  const place: SimulatorPlace = { host: v.host, onListening: (p) => say.err(`listening on tcp port ${p}`) };
  let where: string;
  if (s.link.type === "dial") {
    place.tcpPort = v.port === undefined ? s.link.port : port(v.port, 1);
    if (place.tcpPort === undefined) return usage("--port must be 1-65535");
    where = `to ${v.host ?? "127.0.0.1"}:${place.tcpPort}`;
  } else {
    if ((v.port === undefined) === (v["tcp-port"] === undefined))
      return usage("give --port PATH (a serial port or PTY) or --tcp-port 0-65535");
    if (v["tcp-port"] !== undefined) {
      place.tcpPort = port(v["tcp-port"], 0);
      if (place.tcpPort === undefined) return usage("--tcp-port must be 0-65535");
    }
    place.path = v.port;
    place.baudRate = Number(v.baud ?? s.link.baudRate);
    if (!(Number.isInteger(place.baudRate) && place.baudRate > 0)) return usage("--baud must be a positive integer");
    where = v.port !== undefined ? `on ${v.port}` : `on tcp ${v.host ?? "127.0.0.1"}:${place.tcpPort}`;
  }
  const count = v.count === undefined ? undefined : Number(v.count);
  if (count !== undefined && !(count > 0)) return usage("--count must be positive");
  const intervalMs = Number(v["interval-ms"] ?? s.intervalMs ?? 0);
  if (!(intervalMs >= 0)) return usage("--interval-ms must not be negative");
  const fileName = s.file && v[s.file.flag];
  let file: Uint8Array | undefined;
  try {
    file = fileName === undefined ? undefined : new Uint8Array(readFileSync(fileName));
  } catch (err) {
    return usage(`cannot read --${s.file!.flag} ${fileName}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  let device: { options: unknown; what: string };
  try {
    device = s.fromFlags({ count, intervalMs, file, nowMs: Date.now() }, say);
  } catch (err) {
    return usage((err as Error).message);
  }
  say.err(`simulating ${s.plays} ${where}: ${device.what}`);
  const n = await simulate(s, place, device.options, signal);
  say.err(`${n} ${s.counts}`);
  return 0;
}
