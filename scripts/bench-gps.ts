// How long a GPS fix takes to leave: from the moment the receiver's last sentence of an epoch is
// written on a real serial line (a socat PTY pair) to the moment the gateway has committed that
// epoch's position event (Gateway's "events": the outbox holds it, the forwarder may send it). An
// in-process gateway with the real nmea-gps driver (no throttle) reads the gateway end; this process
// plays the receiver on the other end, one synthetic epoch (RMC, GGA, GSA, GSV, ZDA) every
// `intervalMs`, each written in one piece and drained before its clock starts.
//
// Run alone: `node scripts/bench.ts gps` (a section of `npm run bench`). Needs socat.
import { spawnSync } from "node:child_process";
import { SerialPort } from "serialport";
import { nmeaTimeField, syntheticDrive } from "../drivers/nmea-gps/synthetic.ts";
import type { Envelope } from "../src/events/model.ts";
import { nullModem } from "../test/support/pty.ts";
import { startGateway } from "../test/support/rig.ts";

export const hasSocat = spawnSync("socat", ["-V"]).error === undefined;

export interface GpsLatency {
  /**
   * The first epoch's: the driver learns the receiver's cycle-ending sentence from it, so it leaves
   * when the second epoch begins (about intervalMs).
   */
  firstMs?: number;
  /** Milliseconds from the epoch's last byte written to its position committed, for every later epoch, in order. */
  latenciesMs: number[];
  /** Epochs written whose position never came within `waitMs`. */
  missing: number;
}

export async function gpsLatency(
  o: { epochs?: number; intervalMs?: number; waitMs?: number } = {},
): Promise<GpsLatency> {
  const epochs = o.epochs ?? 40;
  const intervalMs = o.intervalMs ?? 250;
  const waitMs = o.waitMs ?? 2000;
  const cleanup: (() => unknown)[] = [];
  try {
    const cable = nullModem();
    await cable.plugIn();
    cleanup.push(() => cable.unplug());
    const { gw } = await startGateway(
      {
        id: "gw-gps-bench",
        devices: `{ id: gps, driver: nmea-gps, options: { port: "${cable.gatewayPath}", throttle: false } }`,
      },
      cleanup,
    );
    /** Commit time of each position, by the receiver's time of day as sent (`time.dev`: "hhmmss.ss ddmmyy"). */
    const committed = new Map<string, number>();
    gw.intake.on("events", (events: Envelope[]) => {
      const now = performance.now();
      for (const e of events) if (e.kind === "position" && e.time.dev) committed.set(e.time.dev.split(" ")[0]!, now);
    });
    const port = new SerialPort({ path: cable.devicePath, baudRate: 9600, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    cleanup.push(() => new Promise<void>((resolve) => port.close(() => resolve())));
    const startMs = Math.ceil(Date.now() / 1000) * 1000;
    const written: { key: string; sentAt: number }[] = [];
    for (const epoch of syntheticDrive({ startMs, epochs, gsv: true, zda: true })) {
      await new Promise<void>((resolve, reject) =>
        port.write(Buffer.from(epoch.text, "latin1"), (err) => (err ? reject(err) : port.drain(() => resolve()))),
      );
      written.push({ key: nmeaTimeField(epoch.atMs), sentAt: performance.now() });
      await new Promise((r) => setTimeout(r, intervalMs));
    }
    const until = performance.now() + waitMs;
    while (performance.now() < until && written.some((w) => !committed.has(w.key)))
      await new Promise((r) => setTimeout(r, 20));
    const latencies = written.map((w) => (committed.has(w.key) ? committed.get(w.key)! - w.sentAt : undefined));
    const latenciesMs = latencies.slice(1).filter((l) => l !== undefined);
    return { firstMs: latencies[0], latenciesMs, missing: latencies.filter((l) => l === undefined).length };
  } finally {
    for (const f of cleanup.splice(0).reverse()) await f();
  }
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}
