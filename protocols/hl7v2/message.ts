// HL7 v2 message syntax: segments, fields, repetitions, components, escapes, character sets.
// Our own small parser rather than node-hl7-client's: see docs/decisions/0002-hl7-parsing.md.
//
// Positions follow HL7 numbering: field n of a segment is `field(n)`, and for MSH field 1 is the
// field separator itself and field 2 the encoding characters, so `MSH-9` is `msh.field(9)`.
// Locations in errors read like "MSH-9", "OBX[3]-5" (the third OBX of the message, field 5),
// "OBX[3]-5.2" (component 2).
import type { CodecError } from "../codec.ts";
import { charsetEncoding, decodeText, isSupportedCharset } from "./charset.ts";

export interface Hl7Delimiters {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
  /** HL7 2.7+ truncation character (5th encoding character), when sent. */
  truncation?: string;
}

export const DEFAULT_DELIMITERS: Readonly<Hl7Delimiters> = Object.freeze({
  field: "|",
  component: "^",
  repetition: "~",
  escape: "\\",
  subcomponent: "&",
});

/** The MSH fields an acknowledgement needs, raw (still escaped with the sender's delimiters). */
export interface Hl7Header {
  delimiters: Hl7Delimiters;
  /** MSH-3..MSH-6 */
  sendingApplication: string;
  sendingFacility: string;
  receivingApplication: string;
  receivingFacility: string;
  /** MSH-7 */
  time: string;
  /** MSH-9.1, MSH-9.2, MSH-9.3 */
  messageCode: string;
  triggerEvent: string;
  messageStructure: string;
  /** MSH-10 */
  controlId: string;
  /** MSH-11.1 */
  processingId: string;
  /** MSH-12.1 */
  version: string;
  /** MSH-18 as sent (first repetition), "" when absent. */
  charset: string;
  /** The WHATWG encoding the message was read with. */
  encoding: string;
}

export function emptyHeader(encoding = "utf-8"): Hl7Header {
  return {
    delimiters: { ...DEFAULT_DELIMITERS },
    sendingApplication: "",
    sendingFacility: "",
    receivingApplication: "",
    receivingFacility: "",
    time: "",
    messageCode: "",
    triggerEvent: "",
    messageStructure: "",
    controlId: "",
    processingId: "",
    version: "",
    charset: "",
    encoding,
  };
}

export class Hl7Segment {
  readonly name: string;
  /** Raw fields, index = HL7 field number; fields[0] is the segment name. */
  readonly fields: readonly string[];
  /** 1-based occurrence among the message's segments of the same name. */
  readonly occurrence: number;
  /** 0-based position in the message. */
  readonly index: number;
  readonly delimiters: Hl7Delimiters;
  readonly encoding: string;

  constructor(
    name: string,
    fields: readonly string[],
    occurrence: number,
    index: number,
    delimiters: Hl7Delimiters,
    encoding: string,
  ) {
    this.name = name;
    this.fields = fields;
    this.occurrence = occurrence;
    this.index = index;
    this.delimiters = delimiters;
    this.encoding = encoding;
  }

  /** Field n, raw (escaped), "" when absent. */
  field(n: number): string {
    return this.fields[n] ?? "";
  }

  /** The repetitions of field n, raw. */
  repetitions(n: number): string[] {
    const f = this.field(n);
    if (f === "") return [];
    if (this.name === "MSH" && n <= 2) return [f];
    return f.split(this.delimiters.repetition);
  }

  /** Component c (1-based) of repetition rep (1-based) of field n, raw. */
  component(n: number, c: number, rep = 1): string {
    const r = this.repetitions(n)[rep - 1] ?? "";
    if (this.name === "MSH" && n <= 2) return c === 1 ? r : "";
    return r.split(this.delimiters.component)[c - 1] ?? "";
  }

  /** Text of field n (component c, subcomponent s, repetition rep), unescaped. */
  value(n: number, c = 1, s = 1, rep = 1): string {
    if (this.name === "MSH" && n <= 2) return c === 1 && s === 1 && rep === 1 ? this.field(n) : "";
    const comp = this.component(n, c, rep);
    const sub = comp.split(this.delimiters.subcomponent)[s - 1] ?? "";
    return unescapeHl7(sub, this.delimiters, this.encoding);
  }

  /** All components of repetition rep of field n, unescaped (subcomponents kept joined). */
  components(n: number, rep = 1): string[] {
    const r = this.repetitions(n)[rep - 1] ?? "";
    if (r === "") return [];
    return r.split(this.delimiters.component).map((c) => unescapeHl7(c, this.delimiters, this.encoding));
  }

  /** A location for errors: "OBX[3]-5", "MSH-9", "OBX[3]-5.2". */
  where(n?: number, c?: number): string {
    const seg = this.name === "MSH" && this.occurrence === 1 ? "MSH" : `${this.name}[${this.occurrence}]`;
    if (n === undefined) return seg;
    return c === undefined ? `${seg}-${n}` : `${seg}-${n}.${c}`;
  }
}

export interface Hl7Message {
  header: Hl7Header;
  segments: readonly Hl7Segment[];
  /** The decoded text. */
  text: string;
}

export type Hl7ParseResult = { ok: true; message: Hl7Message } | { ok: false; error: CodecError; header: Hl7Header };

export interface Hl7ParseOptions {
  /** Character set when MSH-18 is empty (HL7 table 0211 name or WHATWG label). Default UTF-8. */
  defaultCharset?: string;
}

/** Segments named `name`, in message order. */
export function segmentsNamed(message: Hl7Message, name: string): Hl7Segment[] {
  return message.segments.filter((s) => s.name === name);
}

const SEGMENT_NAME = /^[A-Z][A-Z0-9]{2}$/;

function isDelimiterChar(ch: string | undefined): ch is string {
  return ch !== undefined && ch.length === 1 && !/[A-Za-z0-9\s]/.test(ch);
}

function fail(code: string, message: string, where: string | undefined, header: Hl7Header): Hl7ParseResult {
  const error: CodecError = where === undefined ? { code, message } : { code, message, where };
  return { ok: false, error, header };
}

/** Where the message starts: after a BOM and leading whitespace. */
function startOf(bytes: Uint8Array): number {
  let i = 0;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) i = 3;
  while (
    i < bytes.length &&
    (bytes[i] === 0x20 || bytes[i] === 0x09 || bytes[i] === 0x0d || bytes[i] === 0x0a || bytes[i] === 0x00)
  )
    i++;
  return i;
}

interface MshSyntax {
  delimiters: Hl7Delimiters;
  fields: string[];
}

/** Splits an MSH line into HL7-numbered fields, or says which of MSH-1/MSH-2 is unusable. */
function parseMshLine(line: string): MshSyntax | { bad: "MSH-1" | "MSH-2" } {
  const field = line[3];
  if (!isDelimiterChar(field)) return { bad: "MSH-1" };
  const parts = line.split(field);
  const enc = parts[1] ?? "";
  if (enc.length < 2 || enc.length > 5) return { bad: "MSH-2" };
  const delimiters: Hl7Delimiters = {
    field,
    component: enc[0]!,
    repetition: enc[1]!,
    escape: enc[2] ?? DEFAULT_DELIMITERS.escape,
    subcomponent: enc[3] ?? DEFAULT_DELIMITERS.subcomponent,
  };
  if (enc[4] !== undefined) delimiters.truncation = enc[4];
  const all = [field, ...enc];
  if (!all.every(isDelimiterChar) || new Set(all).size !== all.length) return { bad: "MSH-2" };
  if (enc.length < 4 && all.includes(delimiters.subcomponent)) return { bad: "MSH-2" };
  if (enc.length < 3 && all.includes(delimiters.escape)) return { bad: "MSH-2" };
  const fields = ["MSH", field, enc, ...parts.slice(2)];
  return { delimiters, fields };
}

function headerFrom(msh: MshSyntax, encoding: string): Hl7Header {
  const d = msh.delimiters;
  const f = (n: number) => msh.fields[n] ?? "";
  const comp = (n: number, c: number) => (f(n).split(d.repetition)[0] ?? "").split(d.component)[c - 1] ?? "";
  const text = (s: string) => unescapeHl7(s, d, encoding);
  return {
    delimiters: d,
    sendingApplication: f(3),
    sendingFacility: f(4),
    receivingApplication: f(5),
    receivingFacility: f(6),
    time: text(comp(7, 1)),
    messageCode: text(comp(9, 1)),
    triggerEvent: text(comp(9, 2)),
    messageStructure: text(comp(9, 3)),
    controlId: text(f(10)),
    processingId: text(comp(11, 1)),
    version: text(comp(12, 1)),
    charset: text(f(18).split(d.repetition)[0] ?? "").trim(),
    encoding,
  };
}

/** The first line of the text (up to CR or LF). */
function firstLine(text: string): string {
  const m = /[\r\n]/.exec(text);
  return m ? text.slice(0, m.index) : text;
}

/**
 * Reads as much of the MSH as can be read, never failing: for acknowledging messages whose MSH is
 * partly broken. Unreadable parts keep their defaults.
 */
export function readHl7Header(input: Uint8Array | string, options: Hl7ParseOptions = {}): Hl7Header {
  const r = parseHl7(input, options);
  return r.ok ? r.message.header : r.header;
}

/**
 * Parses one HL7 v2 message. Never throws. Checks syntax only (delimiters, segment names, one MSH,
 * a supported character set); what the message must contain is the reader's business.
 */
export function parseHl7(input: Uint8Array | string, options: Hl7ParseOptions = {}): Hl7ParseResult {
  const fallback = options.defaultCharset ?? "utf-8";
  const defaultEncoding = charsetEncoding(fallback) ?? "utf-8";
  let header = emptyHeader(defaultEncoding);
  try {
    return parseUnsafe(input, defaultEncoding, (h) => (header = h));
  } catch {
    // Nothing above is meant to throw; this is the last line of defence for a receiver.
    return fail("HL7_INTERNAL", "the HL7 parser failed on this message", undefined, header);
  }
}

function parseUnsafe(
  input: Uint8Array | string,
  defaultEncoding: string,
  setHeader: (h: Hl7Header) => void,
): Hl7ParseResult {
  let header = emptyHeader(defaultEncoding);
  let encoding = defaultEncoding;
  let text: string;

  if (typeof input === "string") {
    text = input.replace(/^[\uFEFF\s\0]+/, "");
  } else {
    const bytes = input.subarray(startOf(input));
    if (bytes.length === 0) return fail("HL7_EMPTY", "the message is empty", undefined, header);
    // The delimiters and MSH-18 are ASCII: read the MSH line as Latin-1 to learn the character
    // set, then decode everything with it, then check MSH-18 again on the properly decoded text
    // (a GB18030 sender's MSH-4 may hold bytes that look like delimiters to Latin-1).
    encoding = sniffCharset(bytes, defaultEncoding);
    text = decodeText(bytes, encoding).replace(/^\uFEFF/, "");
    for (let again = 0; again < 2; again++) {
      const msh = parseMshLine(firstLine(text));
      if (!("fields" in msh)) break;
      const e = charsetFor(msh, defaultEncoding);
      if (e === undefined || e === encoding) break;
      encoding = e;
      text = decodeText(bytes, encoding).replace(/^\uFEFF/, "");
    }
  }
  header = emptyHeader(encoding);
  setHeader(header);

  if (text.trim() === "") return fail("HL7_EMPTY", "the message is empty", undefined, header);
  if (!text.startsWith("MSH"))
    return fail("HL7_NO_MSH", "the message does not start with an MSH segment", "MSH", header);

  // CR is the HL7 segment terminator; CRLF and bare LF are accepted. When the message has CRs, a
  // lone LF is data (some devices put line breaks inside text fields), not a segment break.
  const lines = text.includes("\r") ? text.split(/\r\n?/) : text.split("\n");
  const msh = parseMshLine(lines[0]!);
  if (!("fields" in msh)) {
    const what = msh.bad === "MSH-1" ? "field separator" : "encoding characters";
    return fail("HL7_BAD_DELIMITERS", `unusable ${what} in ${msh.bad}`, msh.bad, header);
  }
  header = headerFrom(msh, encoding);
  setHeader(header);
  if (header.charset !== "" && !isSupportedCharset(header.charset)) {
    // The value is not quoted: in a mangled message MSH-18 can hold anything, patient data included.
    return fail("HL7_CHARSET", "unsupported character set in MSH-18", "MSH-18", header);
  }

  const d = msh.delimiters;
  const segments: Hl7Segment[] = [new Hl7Segment("MSH", msh.fields, 1, 0, d, encoding)];
  const seen = new Map<string, number>([["MSH", 1]]);
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === "") continue;
    const name = line.slice(0, 3);
    const n = segments.length + 1;
    if (!SEGMENT_NAME.test(name) || (line.length > 3 && line[3] !== d.field)) {
      return fail(
        "HL7_BAD_SEGMENT",
        `segment ${n} does not start with a segment name and field separator`,
        `segment ${n}`,
        header,
      );
    }
    if (name === "MSH") {
      return fail(
        "HL7_MULTIPLE_MSH",
        "a second MSH: one message per frame expected (batches are not supported)",
        "MSH[2]",
        header,
      );
    }
    const occurrence = (seen.get(name) ?? 0) + 1;
    seen.set(name, occurrence);
    segments.push(new Hl7Segment(name, line.split(d.field), occurrence, segments.length, d, encoding));
  }
  return { ok: true, message: { header, segments, text } };
}

/**
 * MSH-18 read from raw bytes as Latin-1. In GB18030, GBK and Big5 a trail byte can equal the field
 * separator ("億" is 83 7C), so each separator right after a byte >= 0x81 may be a false one; MSH-18
 * is then looked for that many fields further on too. The caller checks the result on the decoded
 * text.
 */
function sniffCharset(bytes: Uint8Array, defaultEncoding: string): string {
  const line = firstLine(decodeText(bytes.subarray(0, Math.min(bytes.length, 4096)), "latin1"));
  const msh = parseMshLine(line);
  if (!("fields" in msh)) return defaultEncoding;
  let suspicious = 0;
  for (let i = 5; i < line.length; i++)
    if (line[i] === msh.delimiters.field && line.charCodeAt(i - 1) >= 0x81) suspicious++;
  for (let shift = 0; shift <= suspicious; shift++) {
    const label = (msh.fields[18 + shift] ?? "").split(msh.delimiters.repetition)[0]!.trim();
    if (label !== "" && isSupportedCharset(label)) return charsetEncoding(label)!;
  }
  return defaultEncoding;
}

function charsetFor(msh: MshSyntax, defaultEncoding: string): string | undefined {
  const label = (msh.fields[18] ?? "").split(msh.delimiters.repetition)[0]!.trim();
  if (label === "") return defaultEncoding;
  return isSupportedCharset(label) ? charsetEncoding(label) : undefined;
}

const FORMATTING = /^\.(br|sp|in|ti|sk|ce|fi|nf)/;

/**
 * Resolves HL7 escape sequences: \F\ \S\ \T\ \R\ \E\ (\P\ for the 2.7 truncation character),
 * \Xhh..\ (bytes in the message's character set), \.br\ and \.sp\ (line breaks); \H\ \N\,
 * other formatting commands and character-set switches (\C..\ \M..\ \Z..\) are dropped. An
 * unknown or unterminated escape is kept as it is.
 */
export function unescapeHl7(text: string, d: Hl7Delimiters, encoding = "utf-8"): string {
  const e = d.escape;
  if (!text.includes(e)) return text;
  let out = "";
  let i = 0;
  while (i < text.length) {
    const start = text.indexOf(e, i);
    if (start < 0) {
      out += text.slice(i);
      break;
    }
    out += text.slice(i, start);
    const end = text.indexOf(e, start + 1);
    if (end < 0) {
      out += text.slice(start);
      break;
    }
    const seq = text.slice(start + 1, end);
    const replaced = escapeValue(seq, d, encoding);
    if (replaced === undefined) {
      // not an escape: keep the escape character and continue after it
      out += e;
      i = start + 1;
      continue;
    }
    out += replaced;
    i = end + 1;
  }
  return out;
}

function escapeValue(seq: string, d: Hl7Delimiters, encoding: string): string | undefined {
  switch (seq) {
    case "F":
      return d.field;
    case "S":
      return d.component;
    case "T":
      return d.subcomponent;
    case "R":
      return d.repetition;
    case "E":
      return d.escape;
    case "P":
      return d.truncation;
    case "H":
    case "N":
      return "";
  }
  if (/^X([0-9A-Fa-f]{2})+$/.test(seq)) {
    const hex = seq.slice(1);
    const bytes = new Uint8Array(hex.length / 2);
    for (let k = 0; k < bytes.length; k++) bytes[k] = parseInt(hex.slice(2 * k, 2 * k + 2), 16);
    return decodeText(bytes, encoding);
  }
  const fmt = FORMATTING.exec(seq);
  if (fmt) return fmt[1] === "br" || fmt[1] === "sp" ? "\n" : "";
  if (/^[CMZ][0-9A-Za-z]*$/.test(seq)) return "";
  return undefined;
}

/** Escapes text for a field value: the delimiters and line breaks. */
export function escapeHl7(text: string, d: Hl7Delimiters): string {
  const e = d.escape;
  let out = "";
  for (const ch of text) {
    if (ch === e) out += `${e}E${e}`;
    else if (ch === d.field) out += `${e}F${e}`;
    else if (ch === d.component) out += `${e}S${e}`;
    else if (ch === d.subcomponent) out += `${e}T${e}`;
    else if (ch === d.repetition) out += `${e}R${e}`;
    else if (d.truncation !== undefined && ch === d.truncation) out += `${e}P${e}`;
    else if (ch === "\r") out += `${e}X0D${e}`;
    else if (ch === "\n") out += `${e}X0A${e}`;
    else out += ch;
  }
  return out;
}
