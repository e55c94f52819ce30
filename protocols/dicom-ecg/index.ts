// DICOM ECG waveforms (12-lead, General and Ambulatory ECG Waveform Storage) to the normalized
// 12-lead ECG. Parsing of the data set is dicom-parser's; this file knows the Waveform Module
// (PS3.3 C.10.9) and the Waveform Annotation Module (C.10.10):
//  - transfer syntax: Explicit and Implicit VR Little Endian; anything else is refused by UID;
//  - multiplex groups: the RHYTHM group gives the leads, a MEDIAN BEAT / REPRESENTATIVE BEAT group
//    the representative beats;
//  - samples: Waveform Bits Allocated 8 or 16, Sample Interpretation SS, US, SB or UB;
//  - scale (C.10.9.1.4): µV = (sample + Channel Baseline) × Channel Sensitivity × Correction Factor,
//    Sensitivity in the units of the Channel Sensitivity Units Sequence (UCUM uV, mV, V);
//  - annotations: free text becomes statements; coded numeric ones the cart's measurements.
// Every length the file declares is checked against the bytes actually there before it is used.
import dicomParser from "dicom-parser";
import type { DataSet, Element } from "dicom-parser";
import { compact, fail, finishEcg, limitsOf, normalizeLeadName, packSamples, toNumber } from "../ecg/index.ts";
import type { EcgDecodeLimits, EcgDecodeResult, EcgLead, EcgMeasurements, EcgWarning } from "../ecg/index.ts";
import {
  ECG_SOP_CLASSES,
  OTHER_SOP_CLASSES,
  TRANSFER_SYNTAX,
  TRANSFER_SYNTAX_NAMES,
  implicitVr,
} from "./dictionary.ts";

export { DICOM_ECG_DICTIONARY, ECG_SOP_CLASSES, TRANSFER_SYNTAX } from "./dictionary.ts";

export interface DicomEcgOptions extends EcgDecodeLimits {
  /**
   * For a bare data set without the Part 10 preamble and file meta (as a C-STORE receiver has it):
   * the transfer syntax it was sent in.
   */
  transferSyntax?: string;
}

/**
 * Decodes a DICOM ECG waveform object. Never throws: an unreadable, truncated or unsupported file
 * is an error result with a code (DICOM_*) and a message naming what is wrong (never patient data).
 */
export function decodeDicomEcg(bytes: Uint8Array, options: DicomEcgOptions = {}): EcgDecodeResult {
  try {
    return decode(bytes, options, limitsOf(options));
  } catch (e) {
    return fail("DICOM_INTERNAL", `decoder failure: ${describe(e)}`);
  }
}

const UNIT_UV: Readonly<Record<string, number>> = { uV: 1, µV: 1, mV: 1000, V: 1_000_000, nV: 0.001 };

function decode(bytes: Uint8Array, options: DicomEcgOptions, limits: Required<EcgDecodeLimits>): EcgDecodeResult {
  if (bytes.length > limits.maxBytes)
    return fail("DICOM_TOO_LARGE", `the file has ${bytes.length} bytes, more than the ${limits.maxBytes} accepted`);
  const part10 =
    bytes.length >= 132 && bytes[128] === 0x44 && bytes[129] === 0x49 && bytes[130] === 0x43 && bytes[131] === 0x4d;
  let transferSyntax = options.transferSyntax;
  let metaSopClass: string | undefined;
  if (part10) {
    const meta = readFileMeta(bytes);
    if ("error" in meta) return fail(meta.code, meta.error, meta.where);
    transferSyntax = meta.transferSyntax;
    metaSopClass = meta.sopClass;
  } else if (transferSyntax === undefined) {
    return fail(
      "DICOM_NOT_PART10",
      bytes.length < 132
        ? `${bytes.length} bytes: too short for a DICOM file`
        : 'not a DICOM file: no "DICM" at byte 128',
    );
  }
  if (transferSyntax === undefined)
    return fail("DICOM_NO_TRANSFER_SYNTAX", "the file meta has no Transfer Syntax UID (0002,0010)", "(0002,0010)");
  if (transferSyntax !== TRANSFER_SYNTAX.implicitLittle && transferSyntax !== TRANSFER_SYNTAX.explicitLittle) {
    const name = TRANSFER_SYNTAX_NAMES[transferSyntax];
    return fail(
      "DICOM_TRANSFER_SYNTAX",
      `transfer syntax ${transferSyntax.slice(0, 64)}${name ? ` (${name})` : ""} is not supported: ECG waveforms are read in Explicit or Implicit VR Little Endian (${TRANSFER_SYNTAX.explicitLittle}, ${TRANSFER_SYNTAX.implicitLittle})`,
      "(0002,0010)",
    );
  }

  let ds: DataSet;
  try {
    ds = dicomParser.parseDicom(
      bytes,
      part10 ? { vrCallback: implicitVr } : { TransferSyntaxUID: transferSyntax, vrCallback: implicitVr },
    );
  } catch (e) {
    const message = describe(e);
    const truncated = /past end|end of buffer|eof|truncat|beyond|maxP ?osition|buffer overread/i.test(message);
    return fail(
      truncated ? "DICOM_TRUNCATED" : "DICOM_MALFORMED",
      `${truncated ? "the file ends early" : "the data set cannot be parsed"}: ${message}`,
    );
  }
  const r = new Reader(bytes, ds);

  const sopClass = r.str(ds, "x00080016") ?? metaSopClass;
  if (sopClass === undefined)
    return fail(
      "DICOM_NO_SOP_CLASS",
      "no SOP Class UID (0008,0016): cannot tell what kind of object this is",
      "(0008,0016)",
    );
  if (!ECG_SOP_CLASSES[sopClass]) {
    const name = OTHER_SOP_CLASSES[sopClass];
    return fail(
      "DICOM_SOP_CLASS",
      `SOP class ${sopClass.slice(0, 64)}${name ? ` (${name})` : ""} is not an ECG waveform: accepted are ${Object.entries(
        ECG_SOP_CLASSES,
      )
        .map(([uid, n]) => `${n} ${uid}`)
        .join(", ")}`,
      "(0008,0016)",
    );
  }

  const groups = r.items(ds, "x54000100");
  if (groups.length === 0)
    return fail("DICOM_NO_WAVEFORM", "no Waveform Sequence (5400,0100): the object carries no waveform", "(5400,0100)");
  const labels = groups.map((g) => (r.str(g, "x003a0020") ?? "").toUpperCase());
  const isBeat = (l: string) => /MEDIAN|REPRESENTATIVE|BEAT/.test(l);
  let rhythmIndex = labels.findIndex((l) => l === "RHYTHM");
  if (rhythmIndex < 0) rhythmIndex = labels.findIndex((l) => !isBeat(l));
  if (rhythmIndex < 0) rhythmIndex = 0;
  const beatIndex = labels.findIndex((l, i) => i !== rhythmIndex && isBeat(l));

  const warnings: EcgWarning[] = [];
  if (labels[rhythmIndex] !== "RHYTHM")
    warnings.push({
      code: "DICOM_NO_RHYTHM_GROUP",
      message: `no multiplex group labelled RHYTHM: leads taken from group ${rhythmIndex + 1} (${labels[rhythmIndex] || "unlabelled"})`,
    });
  const rhythm = readGroup(r, groups[rhythmIndex]!, rhythmIndex, limits, warnings);
  if ("error" in rhythm) return { ok: false, error: rhythm.error };
  let representativeBeats: { fs: number; leads: EcgLead[] } | undefined;
  if (beatIndex >= 0) {
    const beats = readGroup(r, groups[beatIndex]!, beatIndex, limits, []);
    if ("error" in beats)
      warnings.push({
        code: "DICOM_BEATS_UNREADABLE",
        message: `the ${labels[beatIndex]} group is not used: ${beats.error.message}`,
      });
    else representativeBeats = { fs: beats.fs, leads: beats.leads };
  }

  const annotations = readAnnotations(r, ds);
  const ecg = finishEcg({
    format: "dicom-ecg",
    formatVersion: sopClass,
    instanceUid: r.str(ds, "x00080018"),
    ...acquisitionTime(r, ds),
    fs: rhythm.fs,
    leads: rhythm.leads,
    measurements: annotations.measurements,
    statements: annotations.statements,
    patient: compact({
      id: r.str(ds, "x00100020"),
      name: r.str(ds, "x00100010")?.replace(/\^+$/, ""),
      sex: r.str(ds, "x00100040"),
      birthDate: r.str(ds, "x00100030"),
    }),
    device: compact({
      make: r.str(ds, "x00080070"),
      model: r.str(ds, "x00081090"),
      serial: r.str(ds, "x00181000"),
      software: r.str(ds, "x00181020"),
    }),
    representativeBeats,
    warnings,
  });
  return { ok: true, ecg };
}

// ---- file meta ----------------------------------------------------------------------------------

const LONG_VRS = new Set(["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"]);

/** Reads group 0002 (always Explicit VR Little Endian, PS3.10 §7.1) with our own bounds checks. */
function readFileMeta(
  bytes: Uint8Array,
): { transferSyntax?: string; sopClass?: string } | { error: string; code: string; where?: string } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = new TextDecoder("latin1");
  let at = 132;
  let transferSyntax: string | undefined;
  let sopClass: string | undefined;
  while (at + 8 <= bytes.length) {
    const group = view.getUint16(at, true);
    if (group !== 0x0002) break;
    const element = view.getUint16(at + 2, true);
    const vr = latin1.decode(bytes.subarray(at + 4, at + 6));
    let length: number;
    let header: number;
    if (LONG_VRS.has(vr)) {
      if (at + 12 > bytes.length) break;
      length = view.getUint32(at + 8, true);
      header = 12;
    } else {
      length = view.getUint16(at + 6, true);
      header = 8;
    }
    const tag = `(0002,${element.toString(16).padStart(4, "0").toUpperCase()})`;
    if (length === 0xffffffff || at + header + length > bytes.length) {
      return {
        code: "DICOM_TRUNCATED",
        error: `the file meta element ${tag} declares ${length} bytes but only ${Math.max(0, bytes.length - at - header)} remain`,
        where: tag,
      };
    }
    const value = () => latin1.decode(bytes.subarray(at + header, at + header + length)).replace(/[\0 ]+$/, "");
    if (element === 0x0010) transferSyntax = value();
    if (element === 0x0002) sopClass = value();
    at += header + length;
  }
  if (at + 8 > bytes.length && transferSyntax === undefined)
    return { code: "DICOM_TRUNCATED", error: "the file ends inside the file meta information" };
  return { transferSyntax, sopClass };
}

// ---- element access with bounds checks ----------------------------------------------------------

const CHARSETS: Readonly<Record<string, string>> = {
  "ISO_IR 192": "utf-8",
  GB18030: "gb18030",
  GBK: "gbk",
  "ISO_IR 100": "latin1",
  "ISO_IR 6": "latin1",
  "": "latin1",
};

class Reader {
  private readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly decodeText: (b: Uint8Array) => string;

  constructor(bytes: Uint8Array, root: DataSet) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const el = root.elements.x00080005;
    const cs = el
      ? (new TextDecoder("latin1")
          .decode(this.raw(el) ?? new Uint8Array())
          .split("\\")
          .map((s) => s.trim())
          .filter(Boolean)
          .pop() ?? "")
      : "";
    let decoder = new TextDecoder("latin1");
    try {
      decoder = new TextDecoder(CHARSETS[cs] ?? "latin1");
    } catch {
      // A character set this Node build lacks: Latin-1 keeps ASCII readable.
    }
    this.decodeText = (b) => decoder.decode(b);
  }

  /** The element's value bytes, or undefined when it runs past the end of the file. */
  raw(el: Element): Uint8Array | undefined {
    if (el.dataOffset < 0 || el.length < 0 || el.dataOffset + el.length > this.bytes.length) return undefined;
    return this.bytes.subarray(el.dataOffset, el.dataOffset + el.length);
  }

  inBounds(el: Element): boolean {
    return this.raw(el) !== undefined;
  }

  /** A string value (first of a multi-valued one), trimmed, in the data set's character set. */
  str(ds: DataSet, tag: string): string | undefined {
    const el = ds.elements[tag];
    if (!el || el.length === 0 || el.length > 65_536) return undefined;
    const b = this.raw(el);
    if (!b) return undefined;
    const s = this.decodeText(b)
      .split("\\")[0]!
      .replace(/[\0\s]+$/, "")
      .trim();
    return s === "" ? undefined : s;
  }

  /** DS or IS: a decimal number. */
  num(ds: DataSet, tag: string): number | undefined {
    return toNumber(this.str(ds, tag));
  }

  u16(ds: DataSet, tag: string, index = 0): number | undefined {
    const el = ds.elements[tag];
    if (!el || el.length < 2 * (index + 1) || !this.inBounds(el)) return undefined;
    return this.view.getUint16(el.dataOffset + 2 * index, true);
  }

  u32(ds: DataSet, tag: string, index = 0): number | undefined {
    const el = ds.elements[tag];
    if (!el || el.length < 4 * (index + 1) || !this.inBounds(el)) return undefined;
    return this.view.getUint32(el.dataOffset + 4 * index, true);
  }

  items(ds: DataSet, tag: string): DataSet[] {
    const el = ds.elements[tag];
    return (el?.items ?? []).map((i) => i.dataSet).filter((d): d is DataSet => d !== undefined);
  }

  /** Code Value and Code Meaning of the first item of a code sequence. */
  code(ds: DataSet, tag: string): { value?: string; meaning?: string } {
    const item = this.items(ds, tag)[0];
    return item ? { value: this.str(item, "x00080100"), meaning: this.str(item, "x00080104") } : {};
  }

  sample(offset: number, bits: number, signed: boolean): number {
    if (bits === 8) return signed ? this.view.getInt8(offset) : this.view.getUint8(offset);
    return signed ? this.view.getInt16(offset, true) : this.view.getUint16(offset, true);
  }
}

// ---- multiplex groups ---------------------------------------------------------------------------

function readGroup(
  r: Reader,
  g: DataSet,
  index: number,
  limits: Required<EcgDecodeLimits>,
  warnings: EcgWarning[],
): { fs: number; leads: EcgLead[] } | { error: { code: string; message: string; where: string } } {
  const where = `(5400,0100)[${index + 1}]`;
  const bad = (code: string, message: string) => ({
    error: { code, message: `multiplex group ${index + 1}: ${message}`, where },
  });
  const channels = r.u16(g, "x003a0005");
  const samples = r.u32(g, "x003a0010");
  const fs = r.num(g, "x003a001a");
  const bits = r.u16(g, "x54001004");
  const interpretation = r.str(g, "x54001006");
  if (channels === undefined || channels < 1)
    return bad("DICOM_NO_CHANNELS", "no Number of Waveform Channels (003A,0005)");
  if (channels > limits.maxLeads)
    return bad("DICOM_TOO_MANY_CHANNELS", `${channels} channels, more than the ${limits.maxLeads} accepted`);
  if (samples === undefined || samples < 1) return bad("DICOM_NO_SAMPLES", "no Number of Waveform Samples (003A,0010)");
  if (samples > limits.maxSamplesPerLead)
    return bad("DICOM_TOO_LONG", `${samples} samples per channel, more than the ${limits.maxSamplesPerLead} accepted`);
  if (fs === undefined || !(fs > 0) || fs > 1_000_000)
    return bad("DICOM_NO_RATE", `no usable Sampling Frequency (003A,001A)${fs === undefined ? "" : `: ${fs}`}`);
  if (bits !== 8 && bits !== 16)
    return bad("DICOM_BITS", `Waveform Bits Allocated (5400,1004) ${bits ?? "missing"}: only 8 and 16 are read`);
  const signed = interpretation === "SS" || interpretation === "SB";
  if (!(bits === 16 ? ["SS", "US"] : ["SB", "UB"]).includes(interpretation ?? "")) {
    return bad(
      "DICOM_SAMPLE_INTERPRETATION",
      `Waveform Sample Interpretation (5400,1006) "${(interpretation ?? "missing").slice(0, 8)}" with ${bits} bits is not read (SS/US for 16, SB/UB for 8; no µ-law or A-law)`,
    );
  }
  const data = g.elements.x54001010;
  if (!data) return bad("DICOM_NO_WAVEFORM_DATA", "no Waveform Data (5400,1010)");
  const bytesPer = bits / 8;
  const need = channels * samples * bytesPer;
  if (!r.inBounds(data))
    return bad("DICOM_TRUNCATED", `Waveform Data (5400,1010) declares ${data.length} bytes, past the end of the file`);
  if (data.length < need)
    return bad(
      "DICOM_TRUNCATED",
      `Waveform Data (5400,1010) holds ${data.length} bytes; ${channels} channels × ${samples} samples × ${bytesPer} bytes need ${need}`,
    );

  const defs = r.items(g, "x003a0200");
  if (defs.length !== channels)
    warnings.push({
      code: "DICOM_CHANNEL_DEFINITIONS",
      message: `multiplex group ${index + 1}: ${defs.length} channel definitions for ${channels} channels`,
    });
  const leads: EcgLead[] = [];
  for (let c = 0; c < channels; c++) {
    const def = defs[c];
    const source = def ? r.code(def, "x003a0208") : {};
    const label = def ? r.str(def, "x003a0203") : undefined;
    const name =
      normalizeLeadName(source.meaning ?? "") ??
      normalizeLeadName(source.value ?? "") ??
      normalizeLeadName(label ?? "") ??
      source.meaning ??
      label ??
      `Channel ${c + 1}`;
    const sensitivity = def ? r.num(def, "x003a0210") : undefined;
    const unit = def ? r.code(def, "x003a0211").value : undefined;
    const correction = (def ? r.num(def, "x003a0212") : undefined) ?? 1;
    const baseline = (def ? r.num(def, "x003a0213") : undefined) ?? 0;
    let uvPerUnit = 1;
    if (sensitivity === undefined) {
      warnings.push({
        code: "DICOM_NO_SENSITIVITY",
        message: `${name}: no Channel Sensitivity (003A,0210): samples taken as µV`,
      });
    } else {
      let factor = unit === undefined ? undefined : UNIT_UV[unit];
      if (factor === undefined) {
        warnings.push({
          code: "DICOM_UNITS",
          message: `${name}: sensitivity units "${(unit ?? "missing").slice(0, 16)}" unknown: taken as µV`,
        });
        factor = 1;
      }
      uvPerUnit = sensitivity * factor * correction;
    }
    const values = new Array<number>(samples);
    const stride = channels * bytesPer;
    let at = data.dataOffset + c * bytesPer;
    for (let s = 0; s < samples; s++, at += stride) values[s] = r.sample(at, bits, signed) + baseline;
    leads.push({ name, samples: packSamples(values), uvPerUnit });
  }
  return { fs, leads };
}

// ---- annotations and times ----------------------------------------------------------------------

/** Concept names of the cart's global measurements, as SCP-ECG / DICOM CID 3687-ish code meanings. */
const MEASUREMENT_NAMES: [RegExp, keyof EcgMeasurements][] = [
  [/^(ventricular )?heart rate$|^ventricular rate$/i, "heartRate"],
  [/^RR interval$/i, "rrMs"],
  [/^PR interval$/i, "prMs"],
  [/^QRS duration$/i, "qrsMs"],
  [/^QT interval$/i, "qtMs"],
  [/^QTc interval$/i, "qtcMs"],
  [/^P axis$/i, "pAxisDeg"],
  [/^QRS axis$/i, "qrsAxisDeg"],
  [/^T axis$/i, "tAxisDeg"],
];

function readAnnotations(r: Reader, ds: DataSet): { statements: string[]; measurements: EcgMeasurements } {
  const statements: string[] = [];
  const measurements: EcgMeasurements = {};
  for (const a of r.items(ds, "x0040b020").slice(0, 10_000)) {
    const textValue = r.str(a, "x00700006");
    if (textValue !== undefined) {
      statements.push(textValue);
      continue;
    }
    const value = r.num(a, "x0040a30a");
    const concept = r.code(a, "x0040a043").meaning;
    if (value === undefined || concept === undefined) continue;
    const key = MEASUREMENT_NAMES.find(([re]) => re.test(concept))?.[1];
    if (key === undefined || measurements[key] !== undefined) continue;
    const unit = r.code(a, "x004008ea").value;
    measurements[key] = unit === "s" ? value * 1000 : value;
  }
  return { statements, measurements };
}

/**
 * Acquisition DateTime (0008,002A), else Acquisition Date + Time, else Content Date + Time; an ISO
 * instant only when the file states its UTC offset (in the DT or Timezone Offset From UTC).
 */
function acquisitionTime(r: Reader, ds: DataSet): { acquiredAt?: string; acquiredAtRaw?: string } {
  const dt =
    r.str(ds, "x0008002a") ??
    joinDateTime(r.str(ds, "x00080022"), r.str(ds, "x00080032")) ??
    joinDateTime(r.str(ds, "x00080023"), r.str(ds, "x00080033"));
  if (dt === undefined) return {};
  const iso = dicomDateTimeToIso(dt, r.str(ds, "x00080201"));
  return iso ? { acquiredAt: iso, acquiredAtRaw: dt } : { acquiredAtRaw: dt };
}

function joinDateTime(date: string | undefined, time: string | undefined): string | undefined {
  return date === undefined ? undefined : `${date}${time ?? ""}`;
}

/** DT "YYYYMMDDHHMMSS.FFFFFF&ZZXX" to ISO 8601 UTC, when an offset is known; else undefined. */
export function dicomDateTimeToIso(dt: string, timezoneOffset?: string): string | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(?:\.(\d{1,6}))?([+-]\d{4})?$/.exec(dt.trim());
  if (!m) return undefined;
  const offset = m[8] ?? (timezoneOffset && /^[+-]\d{4}$/.test(timezoneOffset) ? timezoneOffset : undefined);
  if (offset === undefined) return undefined;
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? "0"].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const ms = m[7] ? Math.round(Number(`0.${m[7]}`) * 1000) : 0;
  const sign = offset.startsWith("-") ? -1 : 1;
  const offMin = sign * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(3, 5)));
  const t = Date.UTC(y, mo - 1, d, h, mi, s, ms);
  const check = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  if (check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) return undefined;
  return new Date(t - offMin * 60_000).toISOString();
}

function describe(e: unknown): string {
  // dicom-parser throws strings, Errors, and { exception, dataSet } when parsing stops midway.
  const inner = typeof e === "object" && e !== null && "exception" in e ? (e as { exception: unknown }).exception : e;
  const s = inner instanceof Error ? inner.message : typeof inner === "string" ? inner : String(inner);
  return s.replace(/\s+/g, " ").slice(0, 160);
}
