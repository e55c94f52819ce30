// Dräger MEDIBUS (RS-232, "slow" ASCII protocol) for ventilators and anaesthesia machines.
//
// Pure: bytes in, messages out; commands to bytes. No I/O, no clocks: the caller keeps the link busy
// (a NOP when nothing else is due) and times replies out. How long a device waits before it drops a
// quiet link is the definition's "Time-Out" section; no stored copy of Dräger's text gives the figure,
// so the timings live in the driver with the public implementations' values (drivers/medibus-vent).
//
// Sources (facts only, no code copied): Dräger "MEDIBUS Protocol Definition" (rev. 6.0, 2007; public
// copies referenced by edmundsj/VentilatorController README and W. Kaisers' Medibus notes) as
// implemented and cross-checked in xeonfusion/VSCaptureDrgVent (Class1.cs, Class2.cs) and
// Farlandx/iOS_Project-Ventilator (DragerLibrary_Commands.h):
//  - a command is ESC (0x1B), a command code, optional argument characters, a checksum and CR; a
//    response is SOH (0x01), the echoed command code, response data, a checksum and CR;
//  - the checksum is the sum of every byte from ESC/SOH to the last data byte, modulo 256, sent as two
//    upper-case ASCII hex digits;
//  - both sides may command: a device's ICC or NOP must be answered with SOH + the echoed code;
//  - bytes with bit 7 set belong to MEDIBUS.X real-time data streams, interleaved with the slow
//    protocol; they are not decoded here and are skipped.
// No public capture of a Dräger device exists (../shared/fixtures/README.md): the tests use synthetic
// messages made from the layouts below and say so.
import type { CodecError, FrameResult, Framer } from "../codec.ts";

export const MEDIBUS_ESC = 0x1b;
export const MEDIBUS_SOH = 0x01;
export const MEDIBUS_CR = 0x0d;
/** Text messages end each text with ETX [MEDIBUS text message response]. */
export const MEDIBUS_ETX = 0x03;

/** Command codes [MEDIBUS Protocol Definition, command table; VSCaptureDrgVent Class2.cs; DragerLibrary_Commands.h]. */
export const MEDIBUS_CMD = {
  NOP: 0x30,
  ICC: 0x51,
  STOP: 0x55,
  CURRENT_ALARMS_CP3: 0x23,
  MEASURED_DATA_CP1: 0x24,
  LOW_ALARM_LIMITS_CP1: 0x25,
  HIGH_ALARM_LIMITS_CP1: 0x26,
  CURRENT_ALARMS_CP1: 0x27,
  DATE_TIME: 0x28,
  DEVICE_SETTINGS: 0x29,
  TEXT_MESSAGES: 0x2a,
  MEASURED_DATA_CP2: 0x2b,
  LOW_ALARM_LIMITS_CP2: 0x2c,
  HIGH_ALARM_LIMITS_CP2: 0x2d,
  CURRENT_ALARMS_CP2: 0x2e,
  DEVICE_ID: 0x52,
  REALTIME_CONFIG: 0x53,
  TIME_CHANGED: 0x49,
  CONFIGURE_DATA_RESPONSE: 0x4a,
} as const;

/** Field widths of the response data [MEDIBUS Protocol Definition, data response formats]. */
export const MEDIBUS_LAYOUT = {
  /** measured data and alarm limits: code (2 hex chars) + value (4 chars) */
  measured: { code: 2, value: 4 },
  /** device settings: code (2) + value (5) */
  setting: { code: 2, value: 5 },
  /** alarms: priority (1) + code (2) + phrase (12) */
  alarm: { priority: 1, code: 2, phrase: 12 },
} as const;

export const MEDIBUS_MAX_MESSAGE = 4096;

function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, "0");
}

function checksum(bytes: Uint8Array | number[], from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i++) s = (s + bytes[i]!) & 0xff;
  return s;
}

function frame(lead: number, code: number, data: string): Uint8Array {
  const body = [lead, code, ...[...data].map((c) => c.charCodeAt(0) & 0xff)];
  const cs = hex2(checksum(body, 0, body.length));
  return Uint8Array.from([...body, cs.charCodeAt(0), cs.charCodeAt(1), MEDIBUS_CR]);
}

/** A command: ESC code [args] checksum CR. */
export function encodeMedibusCommand(code: number, args = ""): Uint8Array {
  return frame(MEDIBUS_ESC, code, args);
}

/** A response: SOH code [data] checksum CR (the answer to a device's command, or a simulator's reply). */
export function encodeMedibusResponse(code: number, data = ""): Uint8Array {
  return frame(MEDIBUS_SOH, code, data);
}

export interface MedibusMessage {
  kind: "command" | "response";
  code: number;
  /** Argument or response characters between the code and the checksum (Latin-1). */
  data: string;
}

export type MedibusResult = { ok: true; message: MedibusMessage } | { ok: false; error: CodecError };

/** Checks one message (ESC/SOH ... CR). Never throws. */
export function parseMedibusMessage(bytes: Uint8Array): MedibusResult {
  const lead = bytes[0];
  if (lead !== MEDIBUS_ESC && lead !== MEDIBUS_SOH)
    return { ok: false, error: { code: "MEDIBUS_MALFORMED", message: "a MEDIBUS message starts with ESC or SOH" } };
  let end = bytes.length;
  if (bytes[end - 1] === MEDIBUS_CR) end--;
  if (end < 4)
    return {
      ok: false,
      error: { code: "MEDIBUS_MALFORMED", message: `message of ${end} bytes is too short for code and checksum` },
    };
  const given = String.fromCharCode(bytes[end - 2]!, bytes[end - 1]!);
  const want = checksum(bytes, 0, end - 2);
  if (!/^[0-9A-Fa-f]{2}$/.test(given) || parseInt(given, 16) !== want) {
    return {
      ok: false,
      error: {
        code: "MEDIBUS_BAD_CHECKSUM",
        message: `checksum "${given.replace(/[^\x20-\x7e]/g, "?")}" does not match the message (should be ${hex2(want)})`,
      },
    };
  }
  let data = "";
  for (let i = 2; i < end - 2; i++) data += String.fromCharCode(bytes[i]!);
  return { ok: true, message: { kind: lead === MEDIBUS_ESC ? "command" : "response", code: bytes[1]!, data } };
}

/**
 * Cuts messages out of the byte stream: from ESC or SOH up to CR. Real-time bytes (bit 7 set) are
 * skipped wherever they come; other bytes outside a message are reported once per run
 * (MEDIBUS_GARBAGE); a message longer than maxMessageBytes is reported (MEDIBUS_OVERSIZE) and skipped
 * to its CR without being held; an ESC/SOH inside a message cuts it (MEDIBUS_TRUNCATED).
 */
export function medibusFramer(options: { maxMessageBytes?: number } = {}): Framer {
  const max = options.maxMessageBytes ?? MEDIBUS_MAX_MESSAGE;
  const buf = new Uint8Array(max);
  let held = 0;
  let inMsg = false;
  let oversize = false;
  let garbage = false;
  let offset = 0;
  let start = 0;
  return {
    get pending() {
      return held;
    },
    push(chunk: Uint8Array): FrameResult[] {
      const out: FrameResult[] = [];
      for (let i = 0; i < chunk.length; i++, offset++) {
        const b = chunk[i]!;
        if (b >= 0x80) continue; // MEDIBUS.X real-time data
        if (b === MEDIBUS_ESC || b === MEDIBUS_SOH) {
          if (inMsg && !oversize)
            out.push({
              error: {
                code: "MEDIBUS_TRUNCATED",
                message: `message at byte ${start} was cut off by a new one at byte ${offset}`,
                where: start,
              },
            });
          inMsg = true;
          oversize = false;
          garbage = false;
          buf[0] = b;
          held = 1;
          start = offset;
          continue;
        }
        if (!inMsg) {
          if (b !== MEDIBUS_CR && b !== 0x0a && !garbage) {
            garbage = true;
            out.push({
              error: {
                code: "MEDIBUS_GARBAGE",
                message: `bytes outside a MEDIBUS message from byte ${offset}; skipped`,
                where: offset,
              },
            });
          }
          continue;
        }
        if (b === MEDIBUS_CR) {
          inMsg = false;
          if (oversize) {
            oversize = false;
            continue;
          }
          buf[held++] = b;
          out.push({ frame: buf.slice(0, held) });
          held = 0;
          continue;
        }
        if (oversize) continue;
        if (held >= max - 1) {
          out.push({
            error: {
              code: "MEDIBUS_OVERSIZE",
              message: `message at byte ${start} is longer than ${max} bytes; skipped to its CR`,
              where: start,
            },
          });
          oversize = true;
          held = 0;
          continue;
        }
        buf[held++] = b;
      }
      return out;
    },
  };
}

export interface MedibusValue {
  /** Data code (two hex characters) as sent, e.g. "05". */
  code: string;
  /** The value characters, trimmed. */
  raw: string;
  /** Numeric value when the characters are a number. */
  value?: number;
}

export interface MedibusAlarm {
  /** Priority 1 (lowest) to 31 (highest). */
  priority: number;
  code: string;
  phrase: string;
}

export type MedibusListResult<T> = { ok: true; items: T[] } | { ok: false; error: CodecError };

function splitFixed(data: string, width: number, what: string): MedibusListResult<string> {
  if (data.length % width !== 0) {
    return {
      ok: false,
      error: {
        code: "MEDIBUS_BAD_LENGTH",
        message: `${what} response of ${data.length} characters is not a whole number of ${width}-character items`,
      },
    };
  }
  const items: string[] = [];
  for (let i = 0; i < data.length; i += width) items.push(data.slice(i, i + width));
  return { ok: true, items };
}

function values(data: string, codeW: number, valueW: number, what: string): MedibusListResult<MedibusValue> {
  const parts = splitFixed(data, codeW + valueW, what);
  if (!parts.ok) return parts;
  return {
    ok: true,
    items: parts.items.map((p) => {
      const code = p.slice(0, codeW);
      const raw = p.slice(codeW).trim();
      const v: MedibusValue = { code, raw };
      if (/^[-+]?(\d+\.?\d*|\.\d+)$/.test(raw)) v.value = Number(raw);
      return v;
    }),
  };
}

/** Measured data (CP1/CP2) and low/high alarm limits: code (2) + value (4) each. */
export function decodeMedibusMeasured(data: string): MedibusListResult<MedibusValue> {
  return values(data, MEDIBUS_LAYOUT.measured.code, MEDIBUS_LAYOUT.measured.value, "measured data");
}

/** Device settings: code (2) + value (5) each. */
export function decodeMedibusSettings(data: string): MedibusListResult<MedibusValue> {
  return values(data, MEDIBUS_LAYOUT.setting.code, MEDIBUS_LAYOUT.setting.value, "device settings");
}

/**
 * The alarm priority's character: the number 1 (lowest) to 31 (highest) plus 30H, '1'..'O'.
 * Range: Dräger's definition, "Alarm Status Response" (rev. 6.00 p. 15, as quoted in W. Kaisers'
 * Medibus notes: "Number in the range 1-31 (highest = 31)"), and the per-alarm priorities 1..31 of
 * Dräger's Evita command list as transcribed in edmundsj/VentilatorController src/draeger_evita.py.
 * Offset 30H: OpenICE mdpnp/mdpnp Medibus.receiveAlarmCodes (priority = character − '0'). It cannot
 * be the bare number: 01H (SOH), 0DH (CR), 11H/13H (DC1/DC3) and 1BH (ESC) would end, cut or be
 * taken out of the message as framing and handshaking, so a priority of 1, 13, 17, 19 or 27 could
 * never arrive. Anything else is refused rather than guessed at.
 */
export const MEDIBUS_ALARM_PRIORITY_OFFSET = 0x30;
export const MEDIBUS_ALARM_PRIORITY_MAX = 31;

/** Current alarms: priority (1) + code (2) + phrase (12) each. */
export function decodeMedibusAlarms(data: string): MedibusListResult<MedibusAlarm> {
  const l = MEDIBUS_LAYOUT.alarm;
  const parts = splitFixed(data, l.priority + l.code + l.phrase, "alarms");
  if (!parts.ok) return parts;
  const items: MedibusAlarm[] = [];
  for (const [i, p] of parts.items.entries()) {
    const priority = p.charCodeAt(0) - MEDIBUS_ALARM_PRIORITY_OFFSET;
    if (!(priority >= 1 && priority <= MEDIBUS_ALARM_PRIORITY_MAX)) {
      const shown = `${p.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}H`;
      return {
        ok: false,
        error: {
          code: "MEDIBUS_BAD_ALARM_PRIORITY",
          message: `alarm ${i + 1} of the list has priority character ${shown}, not '1'..'O' (1..31 + 30H)`,
        },
      };
    }
    items.push({ priority, code: p.slice(1, 3), phrase: p.slice(3).trim() });
  }
  return { ok: true, items };
}

export interface MedibusDeviceId {
  /** Device id number (4 characters). */
  id: string;
  /** Device name, between single quotes. */
  name: string;
  /** Software revision and, after ':', the MEDIBUS version. */
  revision: string;
  medibusVersion?: string;
}

/** Device identification: id (4) + 'name' + revision [+ ':' MEDIBUS version]. */
export function decodeMedibusDeviceId(
  data: string,
): { ok: true; device: MedibusDeviceId } | { ok: false; error: CodecError } {
  const m = /^(.{4})'([^']*)'([^:]*)(?::(.*))?$/s.exec(data);
  if (!m)
    return {
      ok: false,
      error: { code: "MEDIBUS_BAD_DEVICE_ID", message: "device identification is not id(4) 'name' revision" },
    };
  const device: MedibusDeviceId = { id: m[1]!.trim(), name: m[2]!, revision: m[3]!.trim() };
  if (m[4] !== undefined) device.medibusVersion = m[4].trim();
  return { ok: true, device };
}

/** Text messages: code (2) + length (one character, '0' + n) + n characters + ETX, repeated. */
export function decodeMedibusTexts(data: string): MedibusListResult<{ code: string; text: string }> {
  const items: { code: string; text: string }[] = [];
  let i = 0;
  while (i < data.length) {
    const code = data.slice(i, i + 2);
    const n = data.charCodeAt(i + 2) - 0x30;
    const text = data.slice(i + 3, i + 3 + n);
    if (n < 0 || Number.isNaN(n) || text.length !== n || data.charCodeAt(i + 3 + n) !== MEDIBUS_ETX) {
      return {
        ok: false,
        error: {
          code: "MEDIBUS_BAD_TEXT",
          message: `text message at character ${i} does not match code, length, text, ETX`,
        },
      };
    }
    items.push({ code, text });
    i += 4 + n;
  }
  return { ok: true, items };
}
