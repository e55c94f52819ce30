// `vitalgate simulate datex-s5`: a GE S/5 monitor on its Computer Interface (19200 8E1, RTS/CTS), on a
// serial port (a PTY) or as a serial server on TCP. Silent until asked, then it sends displayed values
// every requested interval and, when waveforms are requested, one waveform record a second: a
// capture's records as recorded (cycling), or synthetic ones (./synthetic.ts). Like a monitor it does
// not notice an unplugged cable: it keeps its schedule until asked to stop (interval 0, a waveform
// stop) or stopped.
import { DRI_MT, DRI_WF, datexFramer, encodeDatexFrame } from "../../protocols/datex-s5/index.ts";
import { defineSimulator, untilAborted, type SimulatorLine } from "../../src/devices/simulator.ts";
import { DATEX_WAVES } from "./waves.ts";
import { datexCaptureRecords, datexRequest, syntheticPhdbRecord, syntheticWaveRecord } from "./synthetic.ts";

export interface DatexMonitorOptions {
  /** A capture to replay (../shared/fixtures/datex-s5/*.raw); without one, synthetic records. */
  capture?: Uint8Array;
  /** Each record sent: its main type (0 physiological, 1 waveform) and on how many links it went out. */
  onRecord?: (mainType: number, links: number) => void;
  /** Each request understood: "phdb 10 s", "wave 8,9", "wave stop". */
  onRequest?: (what: string) => void;
}

/** Runs until aborted; returns the number of records sent. */
export async function datexMonitor(line: SimulatorLine, o: DatexMonitorOptions, signal?: AbortSignal): Promise<number> {
  const captured = o.capture ? datexCaptureRecords(o.capture) : undefined;
  const phdb = captured?.filter((r) => r.mainType === DRI_MT.PHDB) ?? [];
  const waves = captured?.filter((r) => r.mainType === DRI_MT.WAVE) ?? [];
  let phdbAt = 0;
  let waveAt = 0;
  let number = 0;
  let sent = 0;
  let phdbTimer: NodeJS.Timeout | undefined;
  let waveTimer: NodeJS.Timeout | undefined;
  let waveTypes: number[] = [];
  const fsOf = (type: number) => {
    const name = Object.entries(DRI_WF).find(([, t]) => t === type)?.[0];
    return (name && DATEX_WAVES[name]?.fs) || 100;
  };
  const send = (mainType: number, frame: Uint8Array) => {
    const links = line.write(frame);
    if (links > 0) sent++;
    o.onRecord?.(mainType, links);
  };
  const sendPhdb = () => {
    if (captured) {
      if (phdb.length > 0) send(DRI_MT.PHDB, phdb[phdbAt++ % phdb.length]!.frame);
    } else send(DRI_MT.PHDB, encodeDatexFrame(syntheticPhdbRecord(Math.floor(Date.now() / 1000), undefined, number++)));
  };
  const sendWave = () => {
    if (captured) {
      if (waves.length > 0) send(DRI_MT.WAVE, waves[waveAt++ % waves.length]!.frame);
    } else
      send(
        DRI_MT.WAVE,
        encodeDatexFrame(syntheticWaveRecord(Math.floor(Date.now() / 1000), waveTypes, fsOf, number++)),
      );
  };
  const framer = datexFramer();
  line.onData((chunk) => {
    for (const r of framer.push(chunk)) {
      if (!("frame" in r)) continue;
      const req = datexRequest(r.frame);
      if (req?.kind === "phdb") {
        clearInterval(phdbTimer);
        phdbTimer = undefined;
        o.onRequest?.(`phdb ${req.intervalS} s`);
        if (req.intervalS > 0) {
          sendPhdb();
          phdbTimer = setInterval(sendPhdb, req.intervalS * 1000);
        }
      } else if (req?.kind === "wave") {
        clearInterval(waveTimer);
        waveTimer = undefined;
        waveTypes = req.types;
        o.onRequest?.(req.types.length > 0 ? `wave ${req.types.join(",")}` : "wave stop");
        if (req.types.length > 0) waveTimer = setInterval(sendWave, 1000);
      }
    }
  });
  try {
    await untilAborted(signal);
  } finally {
    clearInterval(phdbTimer);
    clearInterval(waveTimer);
  }
  return sent;
}

export const simulator = defineSimulator<DatexMonitorOptions>({
  plays: "a GE S/5 monitor",
  describe:
    "a GE S/5 monitor on a serial port (a PTY) or as a serial\nserver on TCP: once asked, a capture's records replayed,\nelse synthetic ones, at the requested interval",
  // the S/5's Computer Interface: 19200 8E1, RTS/CTS, no speed to choose
  link: { type: "line", baudRate: 19200, fixedBaud: true, serial: { parity: "even", rtscts: true }, clients: "all" },
  file: { flag: "file", meta: "CAPTURE" },
  fromFlags: (f, say) => ({
    options: { capture: f.file, onRequest: (what) => say.err(`request: ${what}`) },
    what: `${f.file ? "a capture's records, as recorded" : "synthetic records (not a patient)"}, once asked`,
  }),
  run: datexMonitor,
  counts: "record(s) sent",
});
