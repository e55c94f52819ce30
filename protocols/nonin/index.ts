// Nonin pulse oximeters' real-time serial output: one ASCII line a second, "SPO2=XXX HR=YYY", ended
// by CR LF. Pure: a line in, a reading out. From Nonin's operator's manuals:
//  - Model 7500FO, "Serial Patient Data Output": 9600 baud, 8 data bits, 1 start and 2 stop bits,
//    each line ended by CR/LF, sent once a second as `SPO2=XXX HR=YYY`; pressing ON/STANDBY appends
//    "*" to that second's line (an event marker); an ASCII header with the model number, time and
//    date comes first (its layout is not given);
//  - Model 8500/8500M, "Serial Output": the same line; SpO2 and pulse rate are "---" when no data is
//    available; 9 data bits whose 9th is at mark in real-time mode, so it reads as 8N1;
//  - BT4000 (Avant 4000) system, "Real-Time Patient Data Output": 9600 8N1, a header first; with DIP
//    switch 8 up the line ends " F": the fast-responding SpO2 and pulse rate; "*" as the event marker.
// XXX and YYY are three digits. Any line that does not start with "SPO2=" is the header (or a
// device's other text): passed over, not an error.
import type { CodecError } from "../codec.ts";

export type NoninLine =
  | {
      kind: "reading";
      /** SpO2, %; absent when the oximeter has none ("---": no finger, sensor off, searching). */
      spo2?: number;
      /** Pulse rate, /min; absent with "---". */
      pulseRate?: number;
      /** The fast-responding values (" F", BT4000 DIP switch 8 up), not the averaged ones. */
      fast: boolean;
      /** The operator pressed ON/STANDBY this second (the "*" event marker). */
      marker: boolean;
    }
  | { kind: "header" };

const READING = /^SPO2=(\d{3}|---) HR=(\d{3}|---)( F)?(\*)?$/;

/** One line without its CR LF. */
export function parseNoninLine(line: Uint8Array): { ok: true; line: NoninLine } | { ok: false; error: CodecError } {
  const text = Buffer.from(line).toString("latin1").trimEnd();
  if (!text.startsWith("SPO2=")) return { ok: true, line: { kind: "header" } };
  const m = READING.exec(text);
  if (!m)
    return {
      ok: false,
      error: { code: "NONIN_BAD_LINE", message: "a line starting SPO2= that is not SPO2=XXX HR=YYY", where: 0 },
    };
  const spo2 = m[1] === "---" ? undefined : Number(m[1]);
  if (spo2 !== undefined && spo2 > 100)
    return { ok: false, error: { code: "NONIN_OUT_OF_RANGE", message: "SpO2 over 100 %", where: "SPO2" } };
  return {
    ok: true,
    line: {
      kind: "reading",
      ...(spo2 === undefined ? {} : { spo2 }),
      ...(m[2] === "---" ? {} : { pulseRate: Number(m[2]) }),
      fast: m[3] !== undefined,
      marker: m[4] !== undefined,
    },
  };
}

/** A reading as the oximeter sends it (for simulators and tests). */
export function formatNoninLine(r: { spo2?: number; pulseRate?: number; fast?: boolean; marker?: boolean }): string {
  const field = (v: number | undefined) => (v === undefined ? "---" : String(Math.round(v)).padStart(3, "0"));
  return `SPO2=${field(r.spo2)} HR=${field(r.pulseRate)}${r.fast ? " F" : ""}${r.marker ? "*" : ""}\r\n`;
}
