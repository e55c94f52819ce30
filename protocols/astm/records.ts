// ASTM E1394-97 / CLSI LIS2-A2 records: H, P, O, R, C, M, L, Q (and any other type, kept generic).
//
// Source: ASTM E1394-97 §6 "Message content – general" and CLSI LIS2-A2 (same numbering):
//  - §6.1/§7.1.2: records end with CR; the header's first field (H.2) defines the delimiters, in this
//    order: field, repeat, component, escape (usually |\^&). Every delimiter of the message is read
//    from there, never assumed.
//  - §6.6/§7.1.3 escapes, within a field: &F& field, &S& component, &R& repeat, &E& escape
//    delimiter, &Xhh...& hex bytes; any other &...& sequence is kept as sent.
//  - Field numbers below are the standard's: H.5 is the fifth field of the header, counting the
//    record type as field 1 (§7.1.1, §8-§12 tables).
import type { CodecError } from "../codec.ts";

export interface AstmDelimiters {
  field: string;
  repeat: string;
  component: string;
  escape: string;
}

/** One field: its repeats, each a list of components, unescaped. */
export type AstmField = string[][];

export interface AstmRecord {
  /** Record type letter: H P O R C M L Q (S, ... kept as sent). */
  type: string;
  /** Fields as sent (fields[0] is the type, field n of the standard is fields[n - 1]). */
  fields: AstmField[];
  /** The raw record text, without CR. */
  raw: string;
}

export interface AstmMessage {
  delimiters: AstmDelimiters;
  records: AstmRecord[];
  /** Problems that did not stop the parse (unknown record types, text after L). */
  warnings: CodecError[];
}

export type AstmMessageResult = { ok: true; message: AstmMessage } | { ok: false; error: CodecError };

/** Record types E1394 defines (§7.1.1 table 2 / LIS2-A2 §5). */
export const ASTM_RECORD_TYPES: Readonly<Record<string, string>> = {
  H: "header",
  P: "patient information",
  O: "test order",
  R: "result",
  C: "comment",
  M: "manufacturer information",
  L: "message terminator",
  Q: "request information",
  S: "scientific",
};

function unescape(s: string, d: AstmDelimiters): string {
  if (!s.includes(d.escape)) return s;
  const e = d.escape;
  let out = "";
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c !== e) {
      out += c;
      i++;
      continue;
    }
    const close = s.indexOf(e, i + 1);
    if (close < 0) {
      out += s.slice(i);
      break;
    }
    const seq = s.slice(i + 1, close);
    if (seq === "F") out += d.field;
    else if (seq === "S") out += d.component;
    else if (seq === "R") out += d.repeat;
    else if (seq === "E") out += d.escape;
    else if (/^X([0-9A-Fa-f]{2})+$/.test(seq)) {
      for (let k = 1; k < seq.length; k += 2) out += String.fromCharCode(parseInt(seq.slice(k, k + 2), 16));
    } else out += s.slice(i, close + 1);
    i = close + 1;
  }
  return out;
}

function splitField(text: string, d: AstmDelimiters): AstmField {
  return text.split(d.repeat).map((rep) => rep.split(d.component).map((c) => unescape(c, d)));
}

/** Latin-1 view of bytes: analysers send single-byte text; no byte is lost or replaced. */
function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 4096) s += String.fromCharCode(...bytes.subarray(i, i + 4096));
  return s;
}

/**
 * Parses a message's text (the joined frame texts of one transfer, or of one ETX message): records
 * separated by CR (LF tolerated), starting with the header. Refuses text that is not E1394: no header
 * record with its four delimiters. Never throws.
 */
export function parseAstmMessage(input: Uint8Array | string): AstmMessageResult {
  const text = typeof input === "string" ? input : latin1(input);
  const lines = text.split(/\r\n|\r|\n/).filter((l) => l.length > 0);
  const first = lines[0] ?? "";
  // A header may be preceded by a frame-number digit when a capture kept it (e.g. "1H|\^&").
  const h = /^[0-7]?H/.exec(first) ? first.indexOf("H") : -1;
  const delims = h >= 0 ? first.slice(h + 1, h + 5) : "";
  if (h < 0 || delims.length < 4) {
    const shown = first.slice(0, 24).replace(/[^\x20-\x7e]/g, "·");
    return {
      ok: false,
      error: {
        code: "ASTM_NOT_ASTM",
        message: `not ASTM E1394: the text does not start with a header record "H" and its delimiters (it starts "${shown}")`,
        where: "H",
      },
    };
  }
  const [field, repeat, component, escape] = [...delims] as [string, string, string, string];
  const set = new Set(delims);
  if (set.size !== 4 || /[A-Za-z0-9\r\n ]/.test(delims)) {
    return {
      ok: false,
      error: {
        code: "ASTM_NOT_ASTM",
        message: `not ASTM E1394: the header's delimiter definition "${delims}" is not four distinct punctuation characters`,
        where: "H.2",
      },
    };
  }
  const d: AstmDelimiters = { field, repeat, component, escape };
  const records: AstmRecord[] = [];
  const warnings: CodecError[] = [];
  let ended = false;
  lines.forEach((line, n) => {
    const raw = n === 0 ? line.slice(h) : line;
    const type = raw[0] ?? "";
    if (ended) {
      warnings.push({
        code: "ASTM_AFTER_TERMINATOR",
        message: `record ${n + 1} ("${type}") follows the terminator record L`,
        where: n + 1,
      });
    }
    if (!/^[A-Z]$/.test(type) || (raw.length > 1 && raw[1] !== field)) {
      warnings.push({
        code: "ASTM_BAD_RECORD",
        message: `record ${n + 1} does not start with a record type letter and the field delimiter; skipped`,
        where: n + 1,
      });
      return;
    }
    if (!(type in ASTM_RECORD_TYPES))
      warnings.push({
        code: "ASTM_UNKNOWN_RECORD",
        message: `record type "${type}" is not defined by E1394; kept as sent`,
        where: n + 1,
      });
    let fields: AstmField[];
    if (type === "H") {
      // H.2 holds the delimiters themselves and is not split
      const rest = raw.slice(5);
      fields = [
        [["H"]],
        [[delims.slice(1)]],
        ...(rest.startsWith(field) ? rest.slice(1).split(field) : rest === "" ? [] : [rest]).map((f) =>
          splitField(f, d),
        ),
      ];
    } else {
      fields = raw.split(field).map((f) => splitField(f, d));
    }
    records.push({ type, fields, raw });
    if (type === "L") ended = true;
  });
  if (records[0]?.type !== "H") {
    return {
      ok: false,
      error: { code: "ASTM_NOT_ASTM", message: "not ASTM E1394: the first record is not a header", where: 1 },
    };
  }
  return { ok: true, message: { delimiters: d, records, warnings } };
}

/** Field n (the standard's numbering, type = 1), repeat r, component c (1-based), or "" when absent. */
export function astmField(record: AstmRecord, n: number, c = 1, r = 1): string {
  return record.fields[n - 1]?.[r - 1]?.[c - 1] ?? "";
}

/** All repeats of field n, each as its components. */
export function astmRepeats(record: AstmRecord, n: number): string[][] {
  return record.fields[n - 1] ?? [];
}

const opt = (s: string): string | undefined => (s === "" ? undefined : s);

export interface AstmHeader {
  /** H.3 message control id: the sender's identity of this message (often left empty). */
  controlId?: string;
  /** H.5 sender name or id: components name^version^serial (LIS2-A2 §6.5; vendors vary). */
  sender: string[];
  /** H.12 processing id: P production, T training, D debugging, Q quality control. */
  processingId?: string;
  /** H.13 version of the standard the sender follows. */
  version?: string;
  /** H.14 date and time of message, YYYYMMDDHHMMSS (device clock). */
  timestamp?: string;
}

export function astmHeader(r: AstmRecord): AstmHeader {
  return {
    controlId: opt(astmField(r, 3)),
    sender: astmRepeats(r, 5)[0] ?? [],
    processingId: opt(astmField(r, 12)),
    version: opt(astmField(r, 13)),
    timestamp: opt(astmField(r, 14)),
  };
}

export interface AstmPatient {
  seq?: string;
  /** P.3 practice-assigned patient id. */
  practiceId?: string;
  /** P.4 laboratory-assigned patient id. */
  laboratoryId?: string;
  /** P.5 patient id no. 3. */
  patientId3?: string;
  /** P.6 name components (last^first^middle^suffix^title per E1394 §8.1.6). */
  name: string[];
  /** P.8 birthdate YYYYMMDD. */
  birthdate?: string;
  /** P.9 sex M/F/U. */
  sex?: string;
  /** P.14 attending physician id components. */
  physician: string[];
  /** P.26 location components. */
  location: string[];
}

export function astmPatient(r: AstmRecord): AstmPatient {
  return {
    seq: opt(astmField(r, 2)),
    practiceId: opt(astmField(r, 3)),
    laboratoryId: opt(astmField(r, 4)),
    patientId3: opt(astmField(r, 5)),
    name: astmRepeats(r, 6)[0] ?? [],
    birthdate: opt(astmField(r, 8)),
    sex: opt(astmField(r, 9)),
    physician: astmRepeats(r, 14)[0] ?? [],
    location: astmRepeats(r, 26)[0] ?? [],
  };
}

export interface AstmOrder {
  seq?: string;
  /** O.3 specimen id (the computer system's). */
  specimenId: string[];
  /** O.4 instrument specimen id components. */
  instrumentSpecimenId: string[];
  /** O.5 universal test ids, each ^^^local code components (§6.6.1). */
  tests: string[][];
  /** O.6 priority S/A/R... */
  priority?: string;
  /** O.8 specimen collection date and time. */
  collectedAt?: string;
  /** O.12 action code (C cancel, A add, N new, P pending, L reserved, X in process, Q QC). */
  actionCode?: string;
  /** O.16 specimen descriptor: type^source. */
  specimen: string[];
  /** O.26 report types (O order, C correction, F final, ...). */
  reportType?: string;
}

export function astmOrder(r: AstmRecord): AstmOrder {
  return {
    seq: opt(astmField(r, 2)),
    specimenId: astmRepeats(r, 3)[0] ?? [],
    instrumentSpecimenId: astmRepeats(r, 4)[0] ?? [],
    tests: astmRepeats(r, 5).filter((t) => t.some((c) => c !== "")),
    priority: opt(astmField(r, 6)),
    collectedAt: opt(astmField(r, 8)),
    actionCode: opt(astmField(r, 12)),
    specimen: astmRepeats(r, 16)[0] ?? [],
    reportType: opt(astmField(r, 26)),
  };
}

export interface AstmResult {
  seq?: string;
  /** R.3 universal test id components: ^^^local code^... (§6.6.1); local = first non-empty from component 4. */
  testId: string[];
  test?: string;
  /** R.4 measurement value as sent (may be text, or components for some analysers). */
  value?: string;
  /** R.5 units (analysers send ISO 2955 / UCUM-like text). */
  units?: string;
  /** R.6 reference ranges, e.g. "3.5 to 5.1" or "3.5^5.1". */
  referenceRange?: string;
  /** R.7 abnormal flags (L H LL HH < > N A U D B W). */
  abnormalFlag?: string;
  /** R.9 result status (C correction, P preliminary, F final, X cannot be done, I in process, ...). */
  status?: string;
  /** R.11 operator identification. */
  operator?: string;
  /** R.12 date/time test started. */
  startedAt?: string;
  /** R.13 date/time test completed. */
  completedAt?: string;
  /** R.14 instrument identification. */
  instrument?: string;
}

export function astmResult(r: AstmRecord): AstmResult {
  const testId = astmRepeats(r, 3)[0] ?? [];
  return {
    seq: opt(astmField(r, 2)),
    testId,
    test: testId.slice(3).find((c) => c.trim() !== ""),
    value: opt(r.fields[3]?.map((rep) => rep.join("^")).join("\\") ?? ""),
    units: opt(astmField(r, 5)),
    referenceRange: opt(astmField(r, 6)),
    abnormalFlag: opt(astmField(r, 7)),
    status: opt(astmField(r, 9)),
    operator: opt(astmField(r, 11)),
    startedAt: opt(astmField(r, 12)),
    completedAt: opt(astmField(r, 13)),
    instrument: opt(astmField(r, 14)),
  };
}

export interface AstmComment {
  seq?: string;
  /** C.3 comment source: P practice, L information system, I instrument. */
  source?: string;
  /** C.4 comment text components. */
  text: string[];
  /** C.5 comment type: G generic, T test name, P positive, N negative, I instrument flag. */
  commentType?: string;
}

export function astmComment(r: AstmRecord): AstmComment {
  return {
    seq: opt(astmField(r, 2)),
    source: opt(astmField(r, 3)),
    text: astmRepeats(r, 4)[0] ?? [],
    commentType: opt(astmField(r, 5)),
  };
}

export interface AstmTerminator {
  seq?: string;
  /** L.3 termination code: N normal, T sender aborted, R receiver abort, E unknown error, Q error in last request, I no information, F last request finished. */
  code?: string;
}

export function astmTerminator(r: AstmRecord): AstmTerminator {
  return { seq: opt(astmField(r, 2)), code: opt(astmField(r, 3)) };
}

export interface AstmQuery {
  seq?: string;
  /** Q.3 starting range id components (patient id^specimen id^...). */
  startingRange: string[];
  /** Q.5 universal test ids requested ("ALL" or ^^^codes). */
  tests: string[][];
  /** Q.13 request information status codes (C cancel, P pending, F final, O requesting demographics/orders...). */
  status?: string;
}

export function astmQuery(r: AstmRecord): AstmQuery {
  return {
    seq: opt(astmField(r, 2)),
    startingRange: astmRepeats(r, 3)[0] ?? [],
    tests: astmRepeats(r, 5),
    status: opt(astmField(r, 13)),
  };
}

export interface AstmManufacturer {
  seq?: string;
  /** M.3 onwards: manufacturer-defined, kept as fields. */
  fields: AstmField[];
}

export function astmManufacturer(r: AstmRecord): AstmManufacturer {
  return { seq: opt(astmField(r, 2)), fields: r.fields.slice(2) };
}
