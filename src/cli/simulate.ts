// `vitalgate simulate`: a device talking its real protocol to a gateway, for the demo, for
// technicians checking a box, and for tests. Each simulator is the synthetic message source of a
// driver plus the sending rules of its protocol.
import { connect, type Socket } from "node:net";
import { mllpEncode, mllpFramer } from "../../protocols/mllp/index.ts";
import { pcd01Series } from "../../drivers/hl7-pcd01/synthetic.ts";
import { nmeaLogEpochs } from "../../drivers/nmea-gps/replay.ts";
import { syntheticDrive } from "../../drivers/nmea-gps/synthetic.ts";
export { astmSimulation, simulateAstmAnalyzer } from "./simulate-astm.ts";
export { simulateMedibusVentilator } from "./simulate-medibus.ts";
import { DATEX_WAVES } from "../../drivers/datex-s5/index.ts";
import {
  datexCaptureRecords,
  datexRequest,
  syntheticPhdbRecord,
  syntheticWaveRecord,
} from "../../drivers/datex-s5/synthetic.ts";
import { DRI_MT, DRI_WF, datexFramer, encodeDatexFrame } from "../../protocols/datex-s5/index.ts";
import { delay, openLine, untilAborted, type SimulatedLineOptions } from "./simulate-line.ts";

export interface SimulateOptions {
  host: string;
  port: number;
  /** Messages to send; Infinity for until stopped. */
  count: number;
  intervalMs: number;
  /** Called with each message's outcome: the acknowledgement code, or an error. */
  onResult?: (index: number, result: string) => void;
  signal?: AbortSignal;
}

/**
 * An IHE PCD-01 patient monitor: sends synthetic ORU^R01 observation reports over MLLP, one at a
 * time, each after the previous one's acknowledgement (HL7 original mode), resending on no answer.
 * Returns how many were acknowledged AA.
 */
export async function simulateHl7Monitor(o: SimulateOptions): Promise<number> {
  const link = mllpLink(o.host, o.port);
  const messages = pcd01Series(o.count, new Date(), o.intervalMs, `SIM${Date.now().toString(36)}-`);
  let accepted = 0;
  let index = 0;
  try {
    for (const message of messages) {
      if (o.signal?.aborted) break;
      for (;;) {
        const result = await link.send(Buffer.from(message, "utf8")).catch((err: Error) => `error: ${err.message}`);
        o.onResult?.(index, result);
        if (result === "AA") accepted++;
        if (!result.startsWith("error") || o.signal?.aborted) break;
        await delay(Math.max(o.intervalMs, 1000), o.signal); // the gateway is not there: try again
      }
      index++;
      if (index < o.count) await delay(o.intervalMs, o.signal);
    }
  } finally {
    link.close();
  }
  return accepted;
}

/** One MLLP connection, opened on first use and again after it breaks. */
function mllpLink(host: string, port: number) {
  let socket: Socket | null = null;
  const close = () => {
    socket?.destroy();
    socket = null;
  };
  const open = async (): Promise<Socket> => {
    if (socket && !socket.destroyed) return socket;
    const s = connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      s.once("connect", resolve);
      s.once("error", reject);
    });
    s.on("error", () => undefined); // reported through "close"
    socket = s;
    return s;
  };
  /** Sends one message and waits for its ACK; resolves to MSA-1 (AA, AE, AR). */
  const send = async (message: Uint8Array): Promise<string> => {
    const s = await open();
    const framer = mllpFramer({ maxFrameBytes: 1 << 20 });
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error("no acknowledgement within 10 s")), 10_000);
      const onData = (chunk: Buffer) => {
        for (const r of framer.push(chunk)) {
          if (!("frame" in r)) continue;
          const msa = Buffer.from(r.frame)
            .toString("latin1")
            .split("\r")
            .find((seg) => seg.startsWith("MSA"));
          done(undefined, msa?.split(msa[3] ?? "|")[1] ?? "?");
        }
      };
      const onClose = () => done(new Error("connection closed"));
      const done = (err?: Error, code?: string) => {
        clearTimeout(timer);
        s.off("data", onData);
        s.off("close", onClose);
        if (err) {
          close();
          reject(err);
        } else resolve(code!);
      };
      s.on("data", onData);
      s.once("close", onClose);
      s.write(mllpEncode(message));
    });
  };
  return { send, close };
}

/**
 * What a GPS simulator sends: a recorded log at its recorded rate, or else a synthetic drive (15 m/s
 * due east, RMC+GGA+GSA at 1 Hz) starting at the next whole second after `nowMs`.
 */
export function nmeaSimulation(o: { logText?: string; count: number; nowMs: number }): {
  epochs: Iterable<{ offsetMs: number; text: string }>;
  startMs?: number;
  what: string;
} {
  if (o.logText !== undefined) {
    const all = nmeaLogEpochs(o.logText);
    const epochs = Number.isFinite(o.count) ? all.slice(0, o.count) : all;
    return { epochs, what: `a recorded log, ${epochs.length} epoch(s) at the recorded rate` };
  }
  const startMs = Math.ceil(o.nowMs / 1000) * 1000;
  return {
    epochs: syntheticDrive({ startMs, epochs: o.count }),
    startMs,
    what: "a synthetic drive (15 m/s due east, RMC+GGA+GSA at 1 Hz; not a real trip)",
  };
}

/** On TCP (`tcpPort`) the receiver sends to every client, as a serial-to-Ethernet server does. */
export interface NmeaSimulateOptions extends SimulatedLineOptions {
  baudRate?: number;
  /** The bursts to send, `offsetMs` after the first (as drivers/nmea-gps/synthetic.ts and replay.ts make them). */
  epochs: Iterable<{ offsetMs: number; text: string }>;
  /** Wall-clock time to send the first burst at (a synthetic drive's start); default now. */
  startMs?: number;
  /** Called after each burst with the number of links it went out on (0 while unplugged). */
  onEpoch?: (index: number, links: number) => void;
  /** Whatever reaches the receiver (it ignores it; a test checks that nothing does). */
  onData?: (chunk: Buffer) => void;
}

/**
 * A GPS receiver: sends NMEA bursts at their real rate, never reading anything (NMEA is one-way). On
 * a serial port that goes away (an unplugged adapter, a PTY that vanishes) it keeps its pace, as a
 * receiver does, and reopens the port when it is back. Returns the number of bursts sent.
 */
export async function simulateNmeaGps(o: NmeaSimulateOptions): Promise<number> {
  // a GPS receiver ignores what it is sent
  const sink = await openLine({
    path: o.path,
    baudRate: o.baudRate ?? 9600,
    tcpPort: o.tcpPort,
    host: o.host,
    clients: "all",
    onListening: o.onListening,
    onData: o.onData,
  });
  const start = o.startMs ?? Date.now();
  let index = 0;
  let sent = 0;
  try {
    for (const epoch of o.epochs) {
      if (o.signal?.aborted) break;
      await delay(start + epoch.offsetMs - Date.now(), o.signal);
      if (o.signal?.aborted) break;
      const links = sink.write(Buffer.from(epoch.text, "latin1"));
      if (links > 0) sent++;
      o.onEpoch?.(index++, links);
    }
  } finally {
    await sink.close();
  }
  return sent;
}

/** The S/5's Computer Interface runs at 19200 8E1 with RTS/CTS: no baud rate to choose. */
export interface DatexSimulateOptions extends SimulatedLineOptions {
  /** A capture to replay (../shared/fixtures/datex-s5/*.raw); without one, synthetic records. */
  capture?: Uint8Array;
  /** Each record sent: its main type (0 physiological, 1 waveform) and on how many links it went out. */
  onRecord?: (mainType: number, links: number) => void;
  /** Each request understood: "phdb 10 s", "wave 8,9", "wave stop". */
  onRequest?: (what: string) => void;
}

/**
 * A GE S/5 monitor on its Computer Interface: silent until asked, then sends displayed values every
 * requested interval and, when waveforms are requested, one waveform record a second. Replays a
 * capture's records as recorded (cycling), or sends synthetic ones. Like a monitor it does not notice
 * an unplugged cable: it keeps its schedule until asked to stop (interval 0, a waveform stop) or
 * stopped. Returns the number of records sent.
 */
export async function simulateDatexMonitor(o: DatexSimulateOptions): Promise<number> {
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
    const links = sink.write(Buffer.from(frame));
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
  const onData = (chunk: Buffer) => {
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
  };
  // the S/5's 19200 8E1, RTS/CTS
  const sink = await openLine({
    path: o.path,
    baudRate: 19200,
    serial: { parity: "even", rtscts: true },
    tcpPort: o.tcpPort,
    host: o.host,
    clients: "all",
    onListening: o.onListening,
    onData,
  });
  try {
    await untilAborted(o.signal);
  } finally {
    clearInterval(phdbTimer);
    clearInterval(waveTimer);
    await sink.close();
  }
  return sent;
}
