// `vitalgate simulate nonin-oximeter`: a pulse oximeter printing its real-time output once a second on
// a serial port (a PTY) or as a serial server on TCP: a capture's lines replayed in a loop, or
// synthetic readings (SpO2 97-98 %, pulse 70-74 /min; written from the line format of
// protocols/nonin, not recorded, no patient). It never reads anything; an unplugged line goes on
// into the void, as the oximeter does.
import { formatNoninLine } from "../../protocols/nonin/index.ts";
import { defineSimulator, delay, type SimulatorLine } from "../../src/devices/simulator.ts";

export interface OximeterOptions {
  /** The lines to print, one per interval (each with its CR LF). */
  lines: Iterable<string>;
  intervalMs: number;
}

/** Returns the number of lines that went out. */
export async function oximeter(line: SimulatorLine, o: OximeterOptions, signal?: AbortSignal): Promise<number> {
  let sent = 0;
  let first = true;
  for (const text of o.lines) {
    if (!first) await delay(o.intervalMs, signal);
    first = false;
    if (signal?.aborted) break;
    if (line.write(Buffer.from(text, "latin1")) > 0) sent++;
  }
  return sent;
}

/** `count` synthetic readings (Infinity: until stopped), drifting gently. */
function* syntheticReadings(count: number): Generator<string> {
  for (let i = 0; i < count; i++)
    yield formatNoninLine({ spo2: 98 - (i % 5 === 0 ? 1 : 0), pulseRate: 72 + Math.round(2 * Math.sin(i / 5)) });
}

/** A capture's lines in a loop, `count` of them (Infinity: until stopped). */
function* replayed(capture: string[], count: number): Generator<string> {
  for (let i = 0; i < count; i++) yield `${capture[i % capture.length]}\r\n`;
}

export const simulator = defineSimulator<OximeterOptions>({
  plays: "a Nonin pulse oximeter",
  describe:
    "a pulse oximeter's real-time output (SPO2=XXX HR=YYY) on a\nserial port (a PTY) or as a serial server on TCP: a\ncapture's lines, else synthetic readings, one a second",
  link: { type: "line", baudRate: 9600, clients: "all" },
  file: { flag: "file", meta: "CAPTURE" },
  count: true,
  intervalMs: 1000,
  fromFlags(f) {
    const count = f.count ?? Infinity;
    if (f.file === undefined)
      return {
        options: { lines: syntheticReadings(count), intervalMs: f.intervalMs },
        what: `synthetic readings (not a patient), one every ${f.intervalMs} ms`,
      };
    const capture = Buffer.from(f.file)
      .toString("latin1")
      .split(/\r?\n/)
      .filter((l) => l !== "");
    if (capture.length === 0) throw new Error("the capture holds no line");
    return {
      options: { lines: replayed(capture, count), intervalMs: f.intervalMs },
      what: `a capture's ${capture.length} line(s) in a loop, one every ${f.intervalMs} ms`,
    };
  },
  run: oximeter,
  counts: "line(s) sent",
});
