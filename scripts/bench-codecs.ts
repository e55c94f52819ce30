// bench codecs: decode throughput of each driver's codec alone, in MB/s of the traffic its device
// sends, against the rate that device really needs. Each codec runs as the daemon's driver session
// runs it (src/devices/device-manager.ts): the driver's framer fed the bytes in the chunks a link hands over, each
// frame to the driver's session (openSession: decoder + mapping to event drafts + the device's
// acknowledgement), with no store and no stamping. Inputs: the shared captures (../shared/fixtures),
// or the project's synthetic PCD-01 generator for HL7 (no monitor's traffic is shared).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { DriverDefinition, FrameContext } from "../src/devices/driver.ts";
import { openSession } from "../src/devices/driver.ts";
import { hl7Pcd01 } from "../drivers/hl7-pcd01/index.ts";
import { pcd01Series } from "../drivers/hl7-pcd01/synthetic.ts";
import { nmeaGps } from "../drivers/nmea-gps/index.ts";
import { datexS5 } from "../drivers/datex-s5/index.ts";
import { astmAnalyzer } from "../drivers/astm-analyzer/index.ts";
import { astmSender, captureText } from "../drivers/astm-analyzer/synthetic.ts";
import { ecgCart } from "../drivers/ecg-cart/index.ts";
import { gpsd } from "../drivers/gpsd/index.ts";
import { medibusVent } from "../drivers/medibus-vent/index.ts";
import { medibusDevice } from "../drivers/medibus-vent/synthetic.ts";
import { mllpEncode } from "../protocols/mllp/index.ts";

const FIXTURES = join(import.meta.dirname, "../../shared/fixtures");

/** Bytes per character on an asynchronous serial line: start bit + data + parity + stop bits. */
const serialBytesPerS = (baud: number, bitsPerChar: number) => baud / bitsPerChar;

/** A serial read as the gateway gets it: a few dozen bytes at these rates (FTDI latency timer, 16550 FIFO). */
const SERIAL_CHUNK = 64;

export interface CodecInput {
  name: string;
  driver: DriverDefinition<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  options: unknown;
  /**
   * The traffic, in the pieces the transport hands over (a serial read, a TCP read, a whole file);
   * for a polled device, interleaved with the session's ticks (`{ tickAt }`, ms) as they came.
   */
  chunks: (Uint8Array | { tickAt: number })[];
  /** What the device really needs, bytes/s. */
  needBytesPerS: number;
  /** How that need was reckoned, and what the input is. */
  need: string;
  what: string;
}

export type CodecPlan = CodecInput | { name: string; skipped: string };

function split(bytes: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size));
  return out;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function options(driver: DriverDefinition<any>, raw: unknown): unknown {
  return driver.options.parse(raw);
}

function hl7(): CodecInput {
  // One monitor, one PCD-01 observation message a second (the simulator's rate), each MLLP-framed as sent.
  const messages = [...pcd01Series(600, new Date("2026-11-23T08:00:00Z"), 1000, "BENCH")].map((m) =>
    mllpEncode(Buffer.from(m, "latin1")),
  );
  const bytes = messages.reduce((n, m) => n + m.length, 0);
  return {
    name: "MLLP + HL7 PCD-01",
    driver: hl7Pcd01,
    options: options(hl7Pcd01, {}),
    chunks: messages, // a TCP read per message
    needBytesPerS: bytes / messages.length,
    need: `one PCD-01 message/s (${(bytes / messages.length).toFixed(0)} B each)`,
    what: `${messages.length} synthetic messages (drivers/hl7-pcd01/synthetic.ts)`,
  };
}

function nmea(): CodecPlan {
  const dir = join(FIXTURES, "nmea/gpsd");
  if (!existsSync(dir)) return { name: "NMEA 0183", skipped: "../shared absent" };
  const logs = readdirSync(dir)
    .filter((f) => f.endsWith(".log"))
    .sort();
  const bytes = Buffer.concat(logs.map((f) => readFileSync(join(dir, f))));
  return {
    name: "NMEA 0183",
    driver: nmeaGps,
    options: options(nmeaGps, { transport: "tcp", host: "-", tcpPort: 1 }),
    chunks: split(bytes, SERIAL_CHUNK),
    needBytesPerS: serialBytesPerS(9600, 10),
    need: "9600 baud 8N1 line full",
    what: `${logs.length} gpsd logs concatenated, ${bytes.length} B, ${SERIAL_CHUNK} B reads`,
  };
}

/** gpsd's JSON: the reports gpsd itself wrote for the same logs (the .chk files' JSON lines), one TCP read per report. */
function gpsdJson(): CodecPlan {
  const dir = join(FIXTURES, "nmea/gpsd");
  if (!existsSync(dir)) return { name: "gpsd JSON", skipped: "../shared absent" };
  const lines = readdirSync(dir)
    .filter((f) => f.endsWith(".chk"))
    .sort()
    .flatMap((f) =>
      readFileSync(join(dir, f), "utf8")
        .split("\n")
        .filter((l) => l.startsWith("{")),
    );
  const chunks = lines.map((l) => Buffer.from(l + "\r\n"));
  const bytes = chunks.reduce((n, c) => n + c.length, 0);
  const epochs = lines.filter((l) => l.includes('"class":"TPV"')).length;
  return {
    name: "gpsd JSON",
    driver: gpsd,
    options: options(gpsd, {}),
    chunks,
    needBytesPerS: bytes / epochs,
    need: `one epoch/s (${(bytes / epochs).toFixed(0)} B of reports per TPV)`,
    what: `the gpsd logs' .chk reports: ${lines.length} JSON lines, ${epochs} TPV, ${bytes} B`,
  };
}

function datex(): CodecPlan {
  const file = join(FIXTURES, "datex-s5/pycollect_db02.raw");
  if (!existsSync(file)) return { name: "Datex S/5 DRI", skipped: "../shared absent" };
  const bytes = readFileSync(file);
  return {
    name: "Datex S/5 DRI",
    driver: datexS5,
    options: options(datexS5, { transport: "tcp", host: "-", tcpPort: 1 }),
    chunks: split(bytes, SERIAL_CHUNK),
    needBytesPerS: serialBytesPerS(19200, 11),
    need: "19200 baud 8E1 line full",
    what: `pycollect_db02.raw, ${bytes.length} B, ${SERIAL_CHUNK} B reads`,
  };
}

function astm(): CodecPlan {
  const dir = join(FIXTURES, "astm");
  if (!existsSync(dir)) return { name: "ASTM E1381/E1394", skipped: "../shared absent" };
  // The captures that are ASTM (mini VIDAS and Spotchem EL write their own formats: refused, not timed).
  const texts = readdirSync(dir)
    .filter((f) => f.endsWith(".txt") && f !== "EXPECTED.txt")
    .sort()
    .map((f) => ({ f, text: captureText(new Uint8Array(readFileSync(join(dir, f)))) }))
    .filter((c) => /^[0-7]?H./.test(c.text));
  // Framed as the analyser sends them (E1381: ENQ, frames after each ACK, EOT), each send one read.
  const chunks: Uint8Array[] = [];
  for (const { text } of texts) {
    const sender = astmSender(text);
    chunks.push(Uint8Array.of(0x05), ...sender.frames, Uint8Array.of(0x04));
  }
  const bytes = chunks.reduce((n, c) => n + c.length, 0);
  return {
    name: "ASTM E1381/E1394",
    driver: astmAnalyzer,
    options: options(astmAnalyzer, { transport: "tcp", host: "-", tcpPort: 1 }),
    chunks,
    needBytesPerS: serialBytesPerS(9600, 10),
    need: "9600 baud 8N1 line full",
    what: `${texts.map((t) => t.f.replace(/\.txt$/, "")).join(", ")}: ${texts.length} transfers, ${bytes} B framed as sent`,
  };
}

function ecg(name: string, file: string): CodecPlan {
  const path = join(FIXTURES, file);
  if (!existsSync(path)) return { name, skipped: "../shared absent" };
  const bytes = new Uint8Array(readFileSync(path));
  return {
    name,
    driver: ecgCart,
    options: options(ecgCart, { dir: "-" }),
    chunks: [bytes], // a watched folder hands over the whole file
    needBytesPerS: bytes.length,
    need: "this file decoded within 1 s",
    what: `${file.split("/").pop()}, ${bytes.length} B`,
  };
}

/**
 * MEDIBUS: no capture of a Dräger device exists, so a conversation is recorded once between the
 * driver's session and the project's synthetic ventilator (drivers/medibus-vent/synthetic.ts) on
 * the session's own schedule (ICC, then polls and keep-alives on its 200 ms ticks) over 10
 * simulated minutes; the pass replays the ventilator's answers with the ticks at their times, so the
 * session polls and decodes as it did, and the synthetic device is not timed.
 */
function medibus(): CodecInput {
  const opts = medibusVent.options.parse({ transport: "tcp", host: "-", tcpPort: 1 });
  const session = openSession(medibusVent, opts);
  const framer = medibusVent.framer!(opts);
  const device = medibusDevice();
  const chunks: (Uint8Array | { tickAt: number })[] = [];
  const tickMs = session.tickMs ?? 200;
  const simulatedMs = 600_000;
  let now = 0;
  let out = session.open?.({ nowMs: now }) ?? [];
  let bytes = 0;
  while (now < simulatedMs) {
    for (const command of out) {
      const { reply } = device.receive(command, now);
      if (!reply) continue;
      chunks.push(reply);
      bytes += reply.length;
      for (const r of framer.push(reply)) if ("frame" in r) session.handle(r.frame, { nowMs: now });
    }
    now += tickMs;
    chunks.push({ tickAt: now });
    out = session.tick?.({ nowMs: now }) ?? [];
  }
  const bitsPerChar = 1 + opts.dataBits + (opts.parity === "none" ? 0 : 1) + opts.stopBits;
  return {
    name: "MEDIBUS (ventilator)",
    driver: medibusVent,
    options: opts,
    chunks,
    needBytesPerS: serialBytesPerS(opts.baudRate, bitsPerChar),
    need: `${opts.baudRate} baud 8${opts.parity[0]!.toUpperCase()}${opts.stopBits} line full`,
    what: `synthetic ventilator's answers over ${simulatedMs / 60_000} simulated minutes at the driver's polls: ${bytes} B (${(bytes / (simulatedMs / 1000)).toFixed(0)} B/s polled), a reply per read`,
  };
}

export function codecPlans(): CodecPlan[] {
  return [
    hl7(),
    nmea(),
    gpsdJson(),
    datex(),
    astm(),
    medibus(),
    ecg("ECG DICOM waveform", "dicom-ecg/pydicom_waveform_ecg.dcm"),
    ecg("ECG HL7 aECG", "aecg/FDA_HL7_Example_aECG.xml"),
    ecg("ECG Philips XML", "philips-sierraecg/2020-5-18_15-48-11.xml"),
    ecg("ECG GE MUSE XML", "real-world/ecg/braveheart_muse_example1.xml"),
    ecg("ECG SCP-ECG", "real-world/ecg/contec_demo.scp"),
  ];
}

/** One pass over the input through a fresh framer and session, as one connection; events and errors seen. */
export function codecPass(c: CodecInput): { bytes: number; events: number; errors: number } {
  const framer = c.driver.framer?.(c.options);
  const session = openSession(c.driver, c.options);
  const polled = c.chunks.some((x) => !(x instanceof Uint8Array));
  // a polled device's session runs on the recorded times; the others on the wall clock
  let context: FrameContext = { nowMs: polled ? 0 : Date.now() };
  session.open?.(context);
  let bytes = 0;
  let events = 0;
  let errors = 0;
  for (const chunk of c.chunks) {
    if (!(chunk instanceof Uint8Array)) {
      context = { nowMs: chunk.tickAt };
      session.tick?.(context);
      continue;
    }
    bytes += chunk.length;
    for (const r of framer ? framer.push(chunk) : [{ frame: chunk }]) {
      if ("error" in r) {
        errors++;
        continue;
      }
      const ex = session.handle(r.frame, context);
      if (!ex.ok) {
        errors++;
        continue;
      }
      events += ex.events.length;
      // the acknowledgement the core writes once committed (for ASTM, reading it confirms the held final ACK)
      if (ex.accept !== undefined && ex.accept.length === 0) errors++;
    }
  }
  return { bytes, events, errors };
}

/** MB/s over passes until at least `minS` seconds have gone. */
export function codecThroughput(c: CodecInput, minS = 0.5): number {
  const t0 = performance.now();
  let bytes = 0;
  let elapsed: number;
  do {
    bytes += codecPass(c).bytes;
    elapsed = (performance.now() - t0) / 1000;
  } while (elapsed < minS);
  return bytes / elapsed / 1e6;
}
