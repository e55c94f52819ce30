// HL7 v2 original-mode acknowledgements (HL7 v2.5 chapter 2, 2.9.2 and the ACK message; MSA and
// ERR segments). An ACK is built with the sender's own delimiters and character set, sender and
// receiver swapped, MSA-2 = the control id being acknowledged.
import { charsetEncoding, encodeText, isSupportedCharset } from "./charset.ts";
import { DEFAULT_DELIMITERS, emptyHeader, escapeHl7 } from "./message.ts";
import type { Hl7Header, Hl7Message } from "./message.ts";

export type AckCode = "AA" | "AE" | "AR";

/** HL7 table 0357, message error condition codes (the ones a receiver like us sends). */
export const HL7_ERROR = {
  SEGMENT_SEQUENCE: 100,
  REQUIRED_FIELD_MISSING: 101,
  DATA_TYPE: 102,
  TABLE_VALUE_NOT_FOUND: 103,
  UNSUPPORTED_MESSAGE_TYPE: 200,
  UNSUPPORTED_EVENT: 201,
  UNSUPPORTED_PROCESSING_ID: 202,
  UNSUPPORTED_VERSION: 203,
  APPLICATION_INTERNAL: 207,
} as const;

const ERROR_TEXT: Record<number, string> = {
  100: "Segment sequence error",
  101: "Required field missing",
  102: "Data type error",
  103: "Table value not found",
  200: "Unsupported message type",
  201: "Unsupported event code",
  202: "Unsupported processing id",
  203: "Unsupported version id",
  207: "Application internal error",
};

export interface AckError {
  /** HL7 table 0357 code. */
  code: number;
  /** Said to the sender (MSA-3, ERR-8). Never patient data. */
  text: string;
  /** Location like "MSH-9", "OBX[3]-5", "OBX[3]-5.1" (becomes ERR-2). */
  where?: string;
}

export interface AckOptions {
  /** The message acknowledged, or what could be read of its MSH; defaults when absent. */
  message?: Hl7Message | Hl7Header;
  code: AckCode;
  error?: AckError;
  /** MSH-7 of the ACK. Left empty when not given (building an ACK is pure: no clock here). */
  time?: string;
  /** MSH-10 of the ACK; by default derived from the acknowledged control id. */
  controlId?: string;
  /** MSH-3/MSH-4 when the original has no receiving application/facility to swap in. */
  application?: string;
  facility?: string;
}

/** HL7 ERL (ERR-2) from a location like "OBX[3]-5.1": OBX^3^5^1^1. */
export function errorLocation(where: string | undefined, component = "^"): string {
  if (!where) return "";
  const m = /^([A-Z][A-Z0-9]{2})(?:\[(\d+)\])?(?:-(\d+)(?:\.(\d+))?)?$/.exec(where);
  if (!m) return "";
  const [, seg, occ, field, comp] = m;
  const parts = [seg!, occ ?? "1"];
  if (field !== undefined) parts.push(field);
  if (comp !== undefined) parts.push("1", comp);
  return parts.join(component);
}

/** The ACK as text (segments ended by CR), before character encoding and MLLP framing. */
export function buildAckText(options: AckOptions): { text: string; encoding: string } {
  const h: Hl7Header =
    options.message === undefined
      ? emptyHeader()
      : "segments" in options.message
        ? options.message.header
        : options.message;
  const d = h.delimiters ?? DEFAULT_DELIMITERS;
  const f = d.field;
  const c = d.component;
  const esc = (s: string) => escapeHl7(s, d);
  const encChars = `${d.component}${d.repetition}${d.escape}${d.subcomponent}${d.truncation ?? ""}`;
  const version = /^2\.\d/.test(h.version) ? h.version : "2.6";
  // MSH-9.3 (message structure) exists from v2.3.1 on; ACK's structure is ACK.
  const hasStructure = !/^2\.(1|2|3)$/.test(version);
  const trigger = h.triggerEvent !== "" ? esc(h.triggerEvent) : "";
  const type = trigger === "" ? "ACK" : hasStructure ? `ACK${c}${trigger}${c}ACK` : `ACK${c}${trigger}`;
  const ackId = options.controlId ?? (h.controlId !== "" ? `ACK${h.controlId}`.slice(0, 20) : "ACK");
  const msh = [
    "MSH",
    encChars,
    h.receivingApplication || esc(options.application ?? ""),
    h.receivingFacility || esc(options.facility ?? ""),
    h.sendingApplication,
    h.sendingFacility,
    esc(options.time ?? ""),
    "",
    type,
    esc(ackId),
    esc(h.processingId || "P"),
    esc(version),
  ];
  // Answer in the sender's character set when we could read it; an unusable MSH-18 is not echoed.
  const charsetOk = h.charset !== "" && isSupportedCharset(h.charset);
  if (charsetOk) {
    while (msh.length < 17) msh.push(""); // msh[i] is MSH-(i+1)
    msh.push(esc(h.charset));
  }
  const error = options.code === "AA" ? undefined : options.error;
  const segments = [
    // MSH-1 is the separator itself: join so that "MSH" + f + encChars comes out right.
    msh.join(f),
    ["MSA", options.code, esc(h.controlId), esc(error?.text ?? "")]
      .join(f)
      .replace(new RegExp(`${escapeRegExp(f)}+$`), ""),
  ];
  if (error) {
    const code = error.code;
    const erl = errorLocation(error.where, c);
    const cwe = [String(code), esc(ERROR_TEXT[code] ?? "Error"), "HL70357"].join(c);
    // ERR-1 (v2.4 and before) is left empty; ERR-2 location, ERR-3 code, ERR-4 severity, ERR-8 text.
    segments.push(["ERR", "", erl, cwe, "E", "", "", "", esc(error.text)].join(f));
  }
  return {
    text: segments.join("\r") + "\r",
    encoding: (charsetOk ? charsetEncoding(h.charset) : undefined) ?? h.encoding ?? "utf-8",
  };
}

/** Builds an ACK message, encoded in the sender's character set (not MLLP-framed). */
export function buildAck(options: AckOptions): Uint8Array {
  const { text, encoding } = buildAckText(options);
  return encodeText(text, encoding);
}

function escapeRegExp(s: string): string {
  return s.replace(/[-/\\^$*+?.()|[\]{}]/g, "\\$&");
}
