// One NMEA 0183 sentence: address, fields, checksum.
//
// Source: NMEA 0183 v4.11 §5.3 (IEC 61162-1 §7.2): "$" or "!", an address field (a two-character
// talker identifier and a three-character sentence formatter, or "P" + manufacturer's mnemonic code
// for proprietary sentences, §5.3.3), data fields separated by ",", then optionally "*hh": the
// checksum, the 8-bit XOR of every character between (not including) the start character and "*",
// written as two hexadecimal characters (§5.3.1; receivers send both cases, so both are accepted).
// The checksum is optional for most sentences in NMEA 0183 (mandatory since v2.3 for some): a
// sentence without one is accepted and flagged `checksum: "absent"`; a wrong one is an error.
import type { CodecError } from "../codec.ts";

export interface NmeaSentence {
  /** "$" parametric or "!" encapsulation (AIS). */
  start: "$" | "!";
  /** The address field as sent, e.g. "GPGGA", "PGRME", "GNGGAH". */
  address: string;
  /** Two-character talker (e.g. "GP", "GN", "BD"); "P" for proprietary sentences. */
  talker: string;
  /** Sentence formatter (e.g. "GGA"); for proprietary sentences the rest of the address. */
  type: string;
  proprietary: boolean;
  /** Data fields after the address, as sent (empty string = null field). */
  fields: string[];
  checksum: "ok" | "absent";
}

export type NmeaSentenceResult = { ok: true; sentence: NmeaSentence } | { ok: false; error: CodecError };

const ADDRESS = /^[A-Z0-9]{2,}$/;

function fail(code: string, message: string, where?: string | number): { ok: false; error: CodecError } {
  return { ok: false, error: where === undefined ? { code, message } : { code, message, where } };
}

/** The NMEA checksum (§5.3.1) of a sentence body: XOR of its characters. */
export function nmeaChecksum(body: string): number {
  let x = 0;
  for (let i = 0; i < body.length; i++) x ^= body.charCodeAt(i) & 0xff;
  return x;
}

function hexValue(s: string): number | undefined {
  return /^[0-9A-Fa-f]{2}$/.test(s) ? parseInt(s, 16) : undefined;
}

/** Parses one sentence (a frame from nmeaFramer, or a line without its terminator). Never throws. */
export function parseNmeaSentence(line: Uint8Array | string): NmeaSentenceResult {
  let text: string;
  if (typeof line === "string") text = line;
  else {
    text = "";
    for (const b of line) text += String.fromCharCode(b);
  }
  text = text.replace(/[\r\n]+$/, "");
  const c0 = text[0];
  if (c0 !== "$" && c0 !== "!") return fail("NMEA_MALFORMED", "an NMEA sentence starts with '$' or '!'");
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e)
      return fail("NMEA_MALFORMED", `non-printable character 0x${c.toString(16)} in sentence`, i);
  }
  const star = text.lastIndexOf("*");
  let body: string;
  let checksum: "ok" | "absent";
  if (star < 0) {
    body = text.slice(1);
    checksum = "absent";
  } else {
    body = text.slice(1, star);
    const sent = text.slice(star + 1);
    const want = nmeaChecksum(body);
    const wantHex = want.toString(16).toUpperCase().padStart(2, "0");
    const got = hexValue(sent);
    const name = body.split(",", 1)[0] ?? "";
    if (got === undefined) {
      return fail(
        "NMEA_BAD_CHECKSUM",
        `sentence ${name}: checksum field "${sent}" is not two hex digits (should be ${wantHex})`,
        star + 1,
      );
    }
    if (got !== want) {
      return fail(
        "NMEA_BAD_CHECKSUM",
        `sentence ${name}: checksum ${sent} does not match the sentence (should be ${wantHex})`,
        star + 1,
      );
    }
    checksum = "ok";
  }
  const parts = body.split(",");
  const address = parts[0] ?? "";
  if (!ADDRESS.test(address)) {
    return fail("NMEA_MALFORMED", `address field "${address.slice(0, 16)}" is not an NMEA address`, 1);
  }
  const proprietary = address[0] === "P";
  return {
    ok: true,
    sentence: {
      start: c0,
      address,
      talker: proprietary ? "P" : address.slice(0, 2),
      type: proprietary ? address.slice(1) : address.slice(2),
      proprietary,
      fields: parts.slice(1),
      checksum,
    },
  };
}

/** Encodes a sentence with its checksum and CRLF (for simulators and tests). */
export function formatNmeaSentence(address: string, fields: readonly string[], start: "$" | "!" = "$"): string {
  const body = [address, ...fields].join(",");
  return `${start}${body}*${nmeaChecksum(body).toString(16).toUpperCase().padStart(2, "0")}\r\n`;
}
