// `vitalgate simulate nmea-gps`: a GPS receiver on a serial port (a PTY) or as a serial server on TCP,
// sending NMEA bursts at their real rate and never reading anything (NMEA 0183 is one-way): a recorded
// log at its recorded rate (./replay.ts), or else a synthetic drive (./synthetic.ts). On a port that
// goes away (an unplugged adapter) it keeps its pace, as a receiver does, sending into the void.
import { defineSimulator, delay, type SimulatorLine } from "../../src/devices/simulator.ts";
import { nmeaLogEpochs } from "./replay.ts";
import { syntheticDrive } from "./synthetic.ts";

export interface NmeaReceiverOptions {
  /** The bursts to send, `offsetMs` after the first (as ./synthetic.ts and ./replay.ts make them). */
  epochs: Iterable<{ offsetMs: number; text: string }>;
  /** Wall-clock time to send the first burst at (a synthetic drive's start); default now. */
  startMs?: number;
  /** Called after each burst with the number of links it went out on (0 while unplugged). */
  onEpoch?: (index: number, links: number) => void;
  /** Whatever reaches the receiver (it ignores it; a test checks that nothing does). */
  onData?: (chunk: Uint8Array) => void;
}

/** Returns the number of bursts sent. */
export async function nmeaReceiver(line: SimulatorLine, o: NmeaReceiverOptions, signal?: AbortSignal): Promise<number> {
  if (o.onData) line.onData(o.onData);
  const start = o.startMs ?? Date.now();
  let index = 0;
  let sent = 0;
  for (const epoch of o.epochs) {
    if (signal?.aborted) break;
    await delay(start + epoch.offsetMs - Date.now(), signal);
    if (signal?.aborted) break;
    const links = line.write(Buffer.from(epoch.text, "latin1"));
    if (links > 0) sent++;
    o.onEpoch?.(index++, links);
  }
  return sent;
}

/**
 * What the receiver sends: a recorded log at its recorded rate, or else a synthetic drive (15 m/s due
 * east, RMC+GGA+GSA at 1 Hz) starting at the next whole second after `nowMs`.
 */
function nmeaSimulation(o: { log?: Uint8Array; count?: number; nowMs: number }): {
  options: NmeaReceiverOptions;
  what: string;
} {
  const count = o.count ?? Infinity;
  if (o.log !== undefined) {
    const all = nmeaLogEpochs(Buffer.from(o.log).toString("latin1"));
    const epochs = Number.isFinite(count) ? all.slice(0, count) : all;
    return { options: { epochs }, what: `a recorded log, ${epochs.length} epoch(s) at the recorded rate` };
  }
  const startMs = Math.ceil(o.nowMs / 1000) * 1000;
  return {
    options: { epochs: syntheticDrive({ startMs, epochs: count }), startMs },
    what: "a synthetic drive (15 m/s due east, RMC+GGA+GSA at 1 Hz; not a real trip)",
  };
}

export const simulator = defineSimulator<NmeaReceiverOptions>({
  plays: "a GPS receiver",
  describe:
    "a GPS receiver on a serial port (a PTY) or as a serial\nserver on TCP: a recorded NMEA log at its rate, else a\nsynthetic drive at 1 Hz",
  link: { type: "line", baudRate: 9600, clients: "all" },
  file: { flag: "log", meta: "FILE" },
  count: true,
  fromFlags: (f) => nmeaSimulation({ log: f.file, count: f.count, nowMs: f.nowMs }),
  run: nmeaReceiver,
  counts: "epoch(s) sent",
});
