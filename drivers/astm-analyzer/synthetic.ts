// The analyser side of ASTM, for the simulator and the tests: what a blood-gas analyser sends, and
// the E1381 sender's rules, pure (no I/O, no clock).
//
// SYNTHETIC: no public capture of a blood-gas analyser exists (../shared/fixtures/README.md). The
// message below was written by the vitalgate project from ASTM E1394-97 / CLSI LIS2-A2 §7-§13 (H,
// O, R, L field layouts) with invented values and no patient record; the sender follows ASTM E1381-02
// §6 (ENQ, frames numbered modulo 8 with checksums, at most 240 characters of text per frame, ETB
// for intermediate frames, a reply awaited after each frame, up to 6 attempts per frame, EOT).
import {
  ACK,
  ENQ,
  EOT,
  NAK,
  encodeAstmMessage,
  astmFrameSplitter,
  parseAstmFrame,
} from "../../protocols/astm/index.ts";

/** One blood-gas result as the simulator sends it: local id, value, unit as the analyser writes it. */
export const SYNTHETIC_BLOOD_GAS: readonly (readonly [string, string, string])[] = [
  ["pH", "7.38", ""],
  ["pCO2", "42", "mmHg"],
  ["pO2", "88", "mmHg"],
  ["HCO3-", "24.4", "mmol/L"],
  ["BE(B)", "0.1", "mmol/L"],
  ["sO2", "96.5", "%"],
  ["tHb", "14.1", "g/dL"],
  ["Lac", "1.2", "mmol/L"],
  ["Na+", "139", "mmol/L"],
  ["K+", "4.1", "mmol/L"],
  ["Cl-", "104", "mmol/L"],
  ["iCa", "1.18", "mmol/L"],
  ["Glu", "5.6", "mmol/L"],
];

/** E1394 date-time YYYYMMDDHHMMSS of a UTC instant (the simulator's clock plays the analyser's). */
function astmTime(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:T]/g, "").slice(0, 14);
}

/**
 * A synthetic blood-gas result message (records, CR-terminated): H with the delimiters |\^& and the
 * sender "VG-SIM BG^1.0^SIM0001", O for an arterial sample, 13 R records, L. No P record: the
 * simulator has no patient.
 */
export function syntheticBloodGasMessage(atMs: number, sample = 1): string {
  const t = astmTime(atMs);
  const records = [
    `H|\\^&|||VG-SIM BG^1.0^SIM0001|||||||P|LIS2-A2|${t}`,
    `O|1|S${String(sample).padStart(4, "0")}||^^^BG|R||${t}||||N||||Arterial^A||||||||||F`,
    ...SYNTHETIC_BLOOD_GAS.map(([id, value, unit], i) => `R|${i + 1}|^^^${id}|${value}|${unit}||N||F||||${t}`),
    "L|1|N",
  ];
  return records.map((r) => r + "\r").join("");
}

/** The record text of a capture (frames as recorded, STX..ETX C1 C2 CR [LF]), joined: what a simulator replays. */
export function captureText(bytes: Uint8Array): string {
  const splitter = astmFrameSplitter();
  let text = "";
  for (const r of [...splitter.push(bytes), ...splitter.end()]) {
    if (!("frame" in r)) continue;
    const f = parseAstmFrame(r.frame);
    if (f.ok) text += String.fromCharCode(...f.frame.text);
  }
  return text;
}

/** What an E1381 sender does next, given the reply it got. */
export type SenderStep =
  { send: Uint8Array; then: "await-reply" } | { send: Uint8Array; then: "done" } | { then: "give-up"; why: string };

/**
 * The E1381 sender of one message: ENQ, each frame after the previous ACK (retransmitted on NAK, up
 * to 6 attempts, §6.5.1.2), then EOT. Pure: feed it each reply byte (or `undefined` for a timeout).
 */
export function astmSender(text: string, maxText = 240) {
  const frames = encodeAstmMessage(
    Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff),
    1,
    maxText,
  );
  let index = -1; // -1: ENQ sent
  let attempts = 0;
  return {
    frames,
    /** The first step: ENQ. */
    start(): SenderStep {
      index = -1;
      attempts = 1;
      return { send: Uint8Array.of(ENQ), then: "await-reply" };
    },
    /** The reply to the last thing sent: ACK, NAK, anything else, or undefined (15 s without a reply). */
    reply(byte: number | undefined): SenderStep {
      if (byte === ACK) {
        index++;
        attempts = 1;
        if (index >= frames.length) return { send: Uint8Array.of(EOT), then: "done" };
        return { send: frames[index]!, then: "await-reply" };
      }
      // NAK, a timeout or noise: try again (§6.5.1.2), or give up with EOT after 6 attempts
      attempts++;
      if (attempts > 6)
        return {
          then: "give-up",
          why: `${byte === NAK ? "NAK" : byte === undefined ? "no reply" : "no ACK"} 6 times for ${index < 0 ? "ENQ" : `frame ${index + 1}`}`,
        };
      return { send: index < 0 ? Uint8Array.of(ENQ) : frames[index]!, then: "await-reply" };
    },
  };
}
