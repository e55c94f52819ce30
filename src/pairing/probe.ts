// Probing a serial port for the pairing page: which driver, at which speed, reads what the device on
// it says? Listen-only: the port is opened and read, never written to. An analyser answered ACK
// would believe its results delivered; a ventilator sent a poll would start talking to a box that
// is not yet meant to read it. So only drivers whose devices talk unprompted (DriverDefinition.probe:
// a GPS, an analyser announcing results with ENQ) can be found; the others are listed as a manual
// choice.
//
// Each attempt opens the port at one line setting (speed, data bits, parity, stop bits, flow
// control) for `probeMs`, and every probeable driver whose device may use that setting decodes the
// same bytes (listen.ts), so a setting shared by several drivers costs one attempt, not several.
// Settings are tried in the drivers' order of likelihood; the probe stops at the first clear match
// (a driver that recognised `probe.matchFrames` frames, more than it found errors), and an attempt ends early
// once its match has decoded an event to show.
import type { SerialPort } from "serialport";
import type { DriverDefinition } from "../devices/driver.ts";
import { openSerialPort, type LineSettings } from "../transports/serial-ports.ts";
import { listenOnly, type Listener, type ListenTally } from "./listen.ts";
import { PairingError } from "./errors.ts";

export type ProbeVerdict = "match" | "noise" | "silent";

/**
 * One driver at one line setting: what it made of the bytes heard (counts as in ListenTally; `bytes`
 * are shared by the drivers tried on the same setting), and the verdict.
 */
export interface ProbeAttempt extends ListenTally {
  driver: string;
  baudRate: number;
  /** match: the driver reads this device; noise: bytes it cannot read; silent: nothing heard. */
  verdict: ProbeVerdict;
}

export interface ProbeResult {
  path: string;
  results: ProbeAttempt[];
  /** The best match, with the options to pair it with. */
  best?: { driver: string; options: Record<string, unknown> };
  /** Drivers of devices that speak only when polled: not probed (a probe never writes), offered by hand. */
  manual: { driver: string; options: Record<string, unknown>; why: string }[];
  /** How long the probe took, ms. */
  tookMs: number;
}

export interface ProbeOptions {
  /** How long each line setting is listened to. */
  probeMs: number;
  nowMs(): number;
  /** Only these drivers (ids); default every probeable one. */
  only?: readonly string[];
}

interface Candidate {
  driver: DriverDefinition<unknown>;
  baudRate: number;
  options: unknown;
}

/** The drivers to try, grouped by the line setting they need, most likely setting first. */
function plan(
  path: string,
  drivers: readonly DriverDefinition<unknown>[],
): { settings: LineSettings; candidates: Candidate[] }[] {
  const groups = new Map<string, { settings: LineSettings; rank: number; order: number; candidates: Candidate[] }>();
  for (const driver of drivers) {
    if (!driver.probe || !driver.serialOptions) continue;
    driver.probe.bauds.forEach((baudRate, rank) => {
      const options = driver.options.parse(driver.serialOptions!(path, baudRate));
      const spec = driver.transport(options);
      if (spec.type !== "serial") return;
      const settings: LineSettings = {
        baudRate: spec.baudRate,
        dataBits: spec.dataBits,
        parity: spec.parity,
        stopBits: spec.stopBits,
        rtscts: spec.rtscts,
        xonxoff: spec.xonxoff,
      };
      const key = JSON.stringify(settings);
      const group = groups.get(key) ?? { settings, rank, order: groups.size, candidates: [] };
      group.rank = Math.min(group.rank, rank);
      group.candidates.push({ driver, baudRate, options });
      groups.set(key, group);
    });
  }
  return [...groups.values()].sort((a, b) => a.rank - b.rank || a.order - b.order);
}

/** Opens the port at one setting, read-only in effect: nothing is ever written to it. */
function openPort(path: string, s: LineSettings): Promise<SerialPort> {
  // A vanished port ends the attempt through "close".
  return openSerialPort(path, s).catch((err: Error) => {
    throw new PairingError("VG_PORT_OPEN", `cannot open ${path}: ${err.message}`, 409);
  });
}

/** Enough recognised frames, and more of them than errors (DriverDefinition.probe). */
function isMatch(l: Listener, probe: NonNullable<DriverDefinition<unknown>["probe"]>): boolean {
  const good = probe.evidence === "answers" ? l.tally.answered : l.tally.ok;
  return good >= probe.matchFrames && good > l.tally.errors;
}

/** Listens to `path` with each probeable driver at its likely speeds; see the top of this file. */
export async function probeSerialPort(
  path: string,
  drivers: readonly DriverDefinition<unknown>[],
  o: ProbeOptions,
): Promise<ProbeResult> {
  const started = Date.now();
  const chosen = o.only ? drivers.filter((d) => o.only!.includes(d.id)) : drivers;
  const results: ProbeAttempt[] = [];
  let best: ProbeResult["best"];
  for (const { settings, candidates } of plan(path, chosen)) {
    const port = await openPort(path, settings);
    const listeners = candidates.map((c) => ({ c, l: listenOnly(c.driver, c.options, o.nowMs) }));
    let bytes = 0;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(finish, o.probeMs);
      function finish() {
        clearTimeout(timer);
        port.off("data", onData);
        port.off("close", finish);
        resolve();
      }
      function onData(chunk: Buffer) {
        bytes += chunk.length;
        for (const { l } of listeners) l.push(chunk);
        // a match that has decoded something to show ends the attempt; one without listens on for a sample
        if (listeners.some(({ c, l }) => isMatch(l, c.driver.probe!) && l.tally.events > 0)) finish();
      }
      port.on("data", onData);
      port.once("close", finish);
    });
    if (port.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
    for (const { c, l } of listeners) {
      const t = l.tally;
      const verdict: ProbeVerdict = bytes === 0 ? "silent" : isMatch(l, c.driver.probe!) ? "match" : "noise";
      results.push({
        driver: c.driver.id,
        baudRate: c.baudRate,
        bytes,
        frames: t.frames,
        ok: t.ok,
        answered: t.answered,
        errors: t.errors,
        events: t.events,
        verdict,
        sample: t.sample,
        errorSample: t.errorSample,
      });
    }
    const matches = results.filter((r) => r.verdict === "match").sort((a, b) => b.ok - a.ok);
    if (matches[0]) {
      const m = matches[0];
      best = { driver: m.driver, options: chosen.find((d) => d.id === m.driver)!.serialOptions!(path, m.baudRate) };
      break;
    }
  }
  const manual = chosen
    .filter((d) => d.serialOptions && !d.probe)
    .map((d) => ({
      driver: d.id,
      options: d.serialOptions!(path),
      why: "speaks only when polled: not probed (a probe never writes to the port); choose it by hand",
    }));
  return { path, results, ...(best ? { best } : {}), manual, tookMs: Date.now() - started };
}
