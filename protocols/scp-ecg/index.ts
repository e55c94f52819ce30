// SCP-ECG (EN 1064:2005+A1:2007, ISO 11073-91064:2009; versions 1.0 to 2.2 as carts write them)
// to the normalized 12-lead ECG. All integers little-endian.
//
//   record     CRC-CCITT (2) over bytes 2…end, record length (4), then sections
//   section    header: CRC-CCITT (2) over the section from its byte 2, section ID (2), length (4, with
//              the header), section version (1), protocol version (1), reserved (6, "SCPECG" in section 0)
//   0 pointers       per section: ID (2), length (4), index (4, 1-based byte position in the record)
//   1 header         tagged fields: tag (1), length (2), value; tag 255 ends. 2 patient ID, 0/1 names,
//                    5 birth date, 8 sex, 14 acquiring device, 25/26 acquisition date/time, 34 time zone
//   2 Huffman tables 19999 = the standard's default table; else tables of code structures (9 bytes:
//                    prefix bits, total bits, table mode switch, base value int16, base code uint32
//                    with the first bit sent in its least significant bit)
//   3 leads          count (1), flags (1: bit 0 reference beat subtracted, bit 2 leads simultaneous),
//                    per lead: first sample (4, 1-based), last sample (4), lead code (1; Table 14)
//   4 QRS locations  reference beat length ms (2), fiducial sample in the beat (2), QRS count (2);
//                    per QRS: type (2), start SB (4), fiducial (4), end QE (4) in rhythm samples
//   5 reference beat amplitude multiplier AVM nV (2), sample interval µs (2), differences (1), 0 (1),
//                    per lead byte count (2), data
//   6 rhythm         AVM nV (2), sample interval µs (2), differences (1: 0 none, 1 first, 2 second),
//                    bimodal compression (1), per lead byte count (2), data (Huffman, else int16)
//   7 measurements   blocks (1), pacemaker spikes (1), mean RR ms (2), mean PP ms (2); per block
//                    P onset, P end, QRS onset, QRS end, T end (2 each, ms), P, QRS, T axes (int16);
//                    29999 = not computed
//   8 statements     confirmed (1), date (4), time (3), count (1); per statement: number (1),
//                    length (2), text
// Decoding: Huffman codes (bits taken most significant first), then differences undone
// (first: x[n] = d[n] + x[n−1]; second: x[n] = d[n] + 2x[n−1] − x[n−2], the first one or two
// values as they are), then with reference beat subtraction the section 5 beat (same difference
// coding) is added back from SB to QE of every QRS of type 0, aligned on the fiducial points.
// Bimodal compression (a decimated rhythm outside the protected QRS zones) is refused: no public
// file uses it and its reconstruction filter is not one this decoder can check.
//
// Every CRC is checked, every length and index against the bytes there, every Huffman stream
// against its byte count: a damaged file is refused, naming the section and lead.
import { compact, fail, finishEcg, limitsOf, normalizeLeadName, packSamples } from "../ecg/index.ts";
import type {
  EcgDecodeLimits,
  EcgDecodeResult,
  EcgLead,
  EcgMeasurements,
  EcgPatient,
  EcgWarning,
} from "../ecg/index.ts";
import type { CodecError } from "../codec.ts";

export interface HuffmanCode {
  /** Bits of the prefix, as sent (first bit first). */
  prefix: string;
  /** Bits of the whole code: more than the prefix when the value itself follows the prefix. */
  totalBits: number;
  /** 1: a code of this table; 0: switch to table number `value` (1-based). */
  mode: number;
  value: number;
}

/**
 * The default Huffman table of SCP-ECG (EN 1064:2005 Annex C, "default Huffman table"; prEN 1064:2002
 * C.2.7.4): 0 as "0"; ±1 … ±8 as n ones followed by 00 (+) or 01 (−); then nine ones and a 0 followed
 * by the value as 8-bit two's complement, ten ones followed by it as 16-bit.
 */
export const SCP_DEFAULT_HUFFMAN: readonly HuffmanCode[] = [
  { prefix: "0", totalBits: 1, mode: 1, value: 0 },
  ...Array.from({ length: 8 }, (_, i) => i + 1).flatMap((v) => [
    { prefix: `${"1".repeat(v)}00`, totalBits: v + 2, mode: 1, value: v },
    { prefix: `${"1".repeat(v)}01`, totalBits: v + 2, mode: 1, value: -v },
  ]),
  { prefix: "1111111110", totalBits: 18, mode: 1, value: 0 },
  { prefix: "1111111111", totalBits: 26, mode: 1, value: 0 },
];

/** Section 2's table count meaning "the default table". */
const DEFAULT_TABLE_MARK = 19999;
/** Section 7's "not computed" (and 29998 "rejected"). */
const NOT_COMPUTED = new Set([29999, 29998, 32767, -32768]);

/**
 * SCP-ECG manufacturer codes (section 1 tag 14, byte 8; EN 1064 Table 8 "manufacturer code").
 */
const MANUFACTURERS: Readonly<Record<number, string>> = {
  1: "Burdick",
  2: "Cambridge",
  3: "Compumed",
  4: "Datamed",
  5: "Fukuda",
  6: "Hewlett-Packard",
  7: "Marquette Electronics",
  8: "Mortara",
  9: "Nihon Kohden",
  10: "Okin",
  11: "Quinton",
  12: "Siemens",
  13: "Spacelabs",
  14: "Telemed",
  15: "Hellige",
  16: "ESA-OTE",
  17: "Schiller",
  18: "Picker-Schwarzer",
  19: "et medical devices",
  20: "Zwönitz",
};

/** CRC-CCITT as SCP-ECG uses it: polynomial 0x1021, initial value 0xFFFF, no reflection. */
export function crcCcitt(bytes: Uint8Array): number {
  let crc = 0xffff;
  for (let i = 0; i < bytes.length; i++) {
    crc ^= bytes[i]! << 8;
    for (let k = 0; k < 8; k++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** Whether bytes look like an SCP-ECG record: its length at byte 2, and section 0's header at 6. */
export function looksLikeScpEcg(bytes: Uint8Array): boolean {
  if (bytes.length < 6 + 16 + 10) return false;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const id0 = v.getUint16(8, true);
  const len0 = v.getUint32(10, true);
  const tag = String.fromCharCode(...bytes.subarray(16, 22));
  return id0 === 0 && len0 >= 16 && len0 <= bytes.length && (v.getUint32(2, true) === bytes.length || tag === "SCPECG");
}

class Damaged extends Error {
  readonly error: CodecError;
  constructor(error: CodecError) {
    super(error.message);
    this.error = error;
  }
}

function damaged(code: string, message: string, where?: string | number): never {
  throw new Damaged(where === undefined ? { code, message } : { code, message, where });
}

/**
 * Decodes an SCP-ECG record. Never throws: a file that is not SCP-ECG, fails a CRC, is cut short,
 * or whose compressed data do not decode is an error result with a code (SCP_*) and a message naming
 * the section and lead (never patient data).
 */
export function decodeScpEcg(bytes: Uint8Array, limits?: EcgDecodeLimits): EcgDecodeResult {
  try {
    return decode(bytes, limitsOf(limits));
  } catch (e) {
    if (e instanceof Damaged) return { ok: false, error: e.error };
    return fail(
      "SCP_INTERNAL",
      `decoder failure: ${e instanceof Error ? e.message.slice(0, 160) : String(e).slice(0, 160)}`,
    );
  }
}

interface Section {
  id: number;
  offset: number;
  length: number;
  version: number;
  protocol: number;
  bytes: Uint8Array;
  view: DataView;
}

function decode(bytes: Uint8Array, limits: Required<EcgDecodeLimits>): EcgDecodeResult {
  if (bytes.length > limits.maxBytes)
    return fail("SCP_TOO_LARGE", `the file has ${bytes.length} bytes, more than the ${limits.maxBytes} accepted`);
  if (bytes.length < 6 + 16)
    return fail(
      "SCP_TOO_SHORT",
      `${bytes.length} bytes: too short for an SCP-ECG record (6-byte record header and section 0)`,
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const recordLength = view.getUint32(2, true);
  if (view.getUint16(8, true) !== 0)
    return fail("SCP_NOT_SCP", "not an SCP-ECG record: section 0 (pointers) does not start at byte 6", 8);
  if (recordLength > bytes.length)
    return fail(
      "SCP_TRUNCATED",
      `the record says it has ${recordLength} bytes, the file has ${bytes.length}: it was cut short`,
      2,
    );
  if (recordLength < 6 + 16) return fail("SCP_LENGTH", `record length ${recordLength} is too small`, 2);
  const warnings: EcgWarning[] = [];
  if (recordLength < bytes.length)
    warnings.push({
      code: "SCP_TRAILING_BYTES",
      message: `${bytes.length - recordLength} bytes after the end of the record ignored`,
    });
  const record = bytes.subarray(0, recordLength);
  const crc = view.getUint16(0, true);
  const computed = crcCcitt(record.subarray(2));
  if (crc !== computed)
    return fail(
      "SCP_CRC",
      `the record fails its CRC-CCITT check (stored ${hex(crc)}, computed ${hex(computed)}): the file is damaged`,
      0,
    );

  const section0 = sectionAt(record, 6, 0, "section 0");
  const sections = new Map<number, Section>([[0, section0]]);
  for (let p = 16; p + 10 <= section0.length; p += 10) {
    const id = section0.view.getUint16(p, true);
    const length = section0.view.getUint32(p + 2, true);
    const index = section0.view.getUint32(p + 6, true);
    if (id === 0 || length === 0) continue;
    if (index < 1 || index - 1 + length > recordLength) {
      damaged(
        "SCP_SECTION_BOUNDS",
        `section ${id}: ${length} bytes at byte ${index} reach past the end of the ${recordLength}-byte record`,
        `section 0 pointer ${(p - 16) / 10}`,
      );
    }
    if (sections.has(id))
      damaged("SCP_SECTION_TWICE", `section ${id} is pointed to twice`, `section 0 pointer ${(p - 16) / 10}`);
    const s = sectionAt(record, index - 1, id, `section ${id}`);
    if (s.length !== length)
      damaged(
        "SCP_SECTION_LENGTH",
        `section ${id}: its header says ${s.length} bytes, section 0 says ${length}`,
        `section ${id}`,
      );
    sections.set(id, s);
  }

  const s3 = sections.get(3);
  if (!s3) return fail("SCP_NO_LEADS", "the record has no section 3 (lead definition)", "section 3");
  const s6 = sections.get(6);
  if (!s6) return fail("SCP_NO_RHYTHM", "the record has no section 6 (rhythm data): nothing to draw", "section 6");
  const leadDefs = readLeads(s3, limits);
  const tables = readHuffman(sections.get(2));

  const rhythm = readSignalSection(s6, leadDefs.leads.length, 6);
  if (rhythm.bimodal)
    return fail(
      "SCP_BIMODAL",
      "the rhythm uses bimodal compression (section 6 byte 3): not supported, no public file to check its reconstruction against",
      "section 6",
    );
  if (!(rhythm.intervalUs > 0)) return fail("SCP_NO_RATE", "section 6 gives a sample interval of 0 µs", "section 6");
  if (!(rhythm.avmNv > 0))
    return fail("SCP_SCALE", "section 6 gives an amplitude value multiplier of 0 nV", "section 6");

  const residuals = leadDefs.leads.map((def, i) => {
    const expected = sampleCount(def);
    if (expected > limits.maxSamplesPerLead)
      damaged(
        "SCP_TOO_LONG",
        `lead ${def.name}: ${expected} samples, more than ${limits.maxSamplesPerLead}`,
        "section 3",
      );
    const data = rhythm.data[i]!;
    const values = tables ? huffmanDecode(data, tables, expected, `section 6 lead ${def.name}`) : rawSamples(data);
    return undifference(values, rhythm.differences);
  });
  if (!tables) {
    // Uncompressed: the byte counts decide.
    const off = leadDefs.leads.filter((d, i) => sampleCount(d) !== residuals[i]!.length);
    if (off.length > 0)
      warnings.push({
        code: "SCP_SAMPLE_RANGE",
        message: `section 3's sample ranges disagree with the data for ${off.map((d) => d.name).join(", ")}: the data's ${residuals[0]!.length} samples kept`,
      });
  }

  let uvPerUnit = rhythm.avmNv / 1000;
  let signals: number[][] = residuals;
  let representativeBeats: { fs: number; leads: EcgLead[] } | undefined;
  const s4 = sections.get(4);
  const s5 = sections.get(5);
  if (s5 && s4) {
    const qrs = readQrs(s4);
    const beat = readSignalSection(s5, leadDefs.leads.length, 5);
    const readBeats = () => {
      if (!(beat.intervalUs > 0) || !(beat.avmNv > 0))
        damaged(
          "SCP_REFERENCE_BEAT",
          `section 5 gives a sample interval of ${beat.intervalUs} µs and an amplitude multiplier of ${beat.avmNv} nV`,
          "section 5",
        );
      const beatSamples = Math.round((qrs.beatMs * 1000) / beat.intervalUs);
      if (beatSamples > limits.maxSamplesPerLead)
        damaged("SCP_TOO_LONG", `reference beat of ${qrs.beatMs} ms is too long`, "section 4");
      return leadDefs.leads.map((def, i) => {
        const values = tables
          ? huffmanDecode(beat.data[i]!, tables, beatSamples, `section 5 lead ${def.name}`)
          : rawSamples(beat.data[i]!);
        return undifference(values, beat.differences);
      });
    };
    let beats: number[][] | undefined;
    if (leadDefs.referenceBeatSubtracted) beats = readBeats();
    else {
      // Only shown beside the rhythm: a beat that cannot be read costs the beat, not the ECG.
      try {
        beats = readBeats();
      } catch (e) {
        if (!(e instanceof Damaged)) throw e;
        warnings.push({ code: "SCP_BEATS_UNREADABLE", message: `representative beats not used: ${e.error.message}` });
      }
    }
    if (beats)
      representativeBeats = {
        fs: 1e6 / beat.intervalUs,
        leads: leadDefs.leads.map((d, i) => ({
          name: d.name,
          samples: packSamples(beats[i]!),
          uvPerUnit: beat.avmNv / 1000,
        })),
      };
    if (leadDefs.referenceBeatSubtracted && beats) {
      if (beat.intervalUs !== rhythm.intervalUs)
        damaged(
          "SCP_REFERENCE_BEAT",
          `the reference beat (${beat.intervalUs} µs) and the rhythm (${rhythm.intervalUs} µs) differ in sample interval without bimodal compression`,
          "section 5",
        );
      // Both in the finer unit: the residual's AVM is a whole multiple of the beat's in the files seen.
      const k = rhythm.avmNv / beat.avmNv;
      uvPerUnit = beat.avmNv / 1000;
      signals = residuals.map((r) => r.map((x) => x * k));
      addReferenceBeats(signals, beats, qrs);
    }
  } else if (leadDefs.referenceBeatSubtracted) {
    return fail(
      "SCP_REFERENCE_BEAT",
      `section 3 says the reference beat was subtracted, but section ${s4 ? 5 : 4} is missing: the rhythm cannot be rebuilt`,
      "section 3",
    );
  }

  const header = readHeader(sections.get(1), warnings);
  const s0 = section0;
  const ecg = finishEcg({
    format: "scp-ecg",
    formatVersion: `SCP-ECG ${versionName(s0.protocol)}`,
    ...header.time,
    fs: Math.round((1e6 / rhythm.intervalUs) * 1e6) / 1e6,
    leads: leadDefs.leads.map((d, i) => ({ name: d.name, samples: packSamples(signals[i]!), uvPerUnit })),
    measurements: readMeasurements(sections.get(7)),
    statements: readStatements(sections.get(8)),
    patient: header.patient,
    device: header.device,
    representativeBeats,
    warnings,
  });
  return { ok: true, ecg };
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(4, "0")}`;
}

/** SCP protocol version byte: 10 → "1.0", 13 → "1.3", 20 → "2.0"; others as they are. */
function versionName(v: number): string {
  return v >= 10 && v <= 39 ? `${Math.floor(v / 10)}.${v % 10}` : `(version byte ${v})`;
}

function sectionAt(record: Uint8Array, offset: number, id: number, what: string): Section {
  if (offset + 16 > record.length)
    damaged("SCP_TRUNCATED", `${what}: its 16-byte header at byte ${offset + 1} is past the end of the record`, what);
  const view = new DataView(record.buffer, record.byteOffset + offset, record.length - offset);
  const crc = view.getUint16(0, true);
  const sid = view.getUint16(2, true);
  const length = view.getUint32(4, true);
  if (sid !== id) damaged("SCP_SECTION_ID", `${what}: the section found there has ID ${sid}`, what);
  if (length < 16 || offset + length > record.length)
    damaged("SCP_SECTION_LENGTH", `${what}: length ${length} does not fit the record`, what);
  const bytes = record.subarray(offset, offset + length);
  const computed = crcCcitt(bytes.subarray(2));
  if (crc !== computed)
    damaged(
      "SCP_SECTION_CRC",
      `${what} fails its CRC-CCITT check (stored ${hex(crc)}, computed ${hex(computed)}): the file is damaged`,
      what,
    );
  return {
    id,
    offset,
    length,
    version: bytes[8]!,
    protocol: bytes[9]!,
    bytes,
    view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
  };
}

interface LeadDef {
  name: string;
  first: number;
  last: number;
}

/**
 * Samples in a lead: section 3 numbers them from 1, first…last inclusive. Contec numbers them from 0
 * with `last` the count (0…10000 for 10000 samples, its demo.scp): taken as that.
 */
function sampleCount(def: LeadDef): number {
  return def.first === 0 ? def.last : def.last - def.first + 1;
}

function readLeads(
  s: Section,
  limits: Required<EcgDecodeLimits>,
): { leads: LeadDef[]; referenceBeatSubtracted: boolean } {
  if (s.length < 18) damaged("SCP_NO_LEADS", "section 3 is too short to hold a lead count", "section 3");
  const count = s.bytes[16]!;
  const flags = s.bytes[17]!;
  if (count === 0) damaged("SCP_NO_LEADS", "section 3 defines no leads", "section 3");
  if (count > limits.maxLeads)
    damaged("SCP_TOO_MANY_LEADS", `section 3 defines ${count} leads, more than ${limits.maxLeads}`, "section 3");
  if (18 + 9 * count > s.length)
    damaged("SCP_TRUNCATED", `section 3 holds ${s.length} bytes, too few for ${count} leads`, "section 3");
  const leads: LeadDef[] = [];
  for (let i = 0; i < count; i++) {
    const p = 18 + 9 * i;
    const first = s.view.getUint32(p, true);
    const last = s.view.getUint32(p + 4, true);
    const code = s.bytes[p + 8]!;
    if (last < first)
      damaged(
        "SCP_SAMPLE_RANGE",
        `lead ${i + 1} (code ${code}) ends at sample ${last} before it starts at ${first}`,
        "section 3",
      );
    leads.push({ name: normalizeLeadName(`5.6.3-9-${code}`) ?? `SCP lead ${code}`, first, last });
  }
  return { leads, referenceBeatSubtracted: (flags & 1) === 1 };
}

// ---- Huffman ------------------------------------------------------------------------------------

/** Tables as lookups: per table, per prefix length, the code's bits (first bit in bit 0) → code. */
type Tables = Map<number, HuffmanCode>[][];

function compileTable(codes: readonly HuffmanCode[], where: string): Map<number, HuffmanCode>[] {
  const byLength: Map<number, HuffmanCode>[] = Array.from({ length: 33 }, () => new Map());
  for (const c of codes) {
    const n = c.prefix.length;
    if (n < 1 || n > 32 || c.totalBits < n || c.totalBits - n > 32)
      damaged("SCP_HUFFMAN_TABLE", `a code of ${n} prefix bits and ${c.totalBits} in all cannot be read`, where);
    let key = 0;
    for (let i = 0; i < n; i++) if (c.prefix[i] === "1") key |= 1 << i;
    byLength[n]!.set(key >>> 0, c);
  }
  return byLength;
}

const DEFAULT_TABLES: Tables = [compileTable(SCP_DEFAULT_HUFFMAN, "default table")];

function readHuffman(s: Section | undefined): Tables | undefined {
  if (!s) return undefined;
  if (s.length < 18) damaged("SCP_HUFFMAN_TABLE", "section 2 is too short to hold a table count", "section 2");
  const count = s.view.getUint16(16, true);
  if (count === DEFAULT_TABLE_MARK) return DEFAULT_TABLES;
  if (count === 0 || count > 256)
    damaged("SCP_HUFFMAN_TABLE", `section 2 declares ${count} Huffman tables`, "section 2");
  const tables: Tables = [];
  let p = 18;
  for (let t = 0; t < count; t++) {
    if (p + 2 > s.length) damaged("SCP_TRUNCATED", `section 2 ends inside table ${t + 1}`, "section 2");
    const n = s.view.getUint16(p, true);
    p += 2;
    if (p + 9 * n > s.length)
      damaged("SCP_TRUNCATED", `section 2 ends inside table ${t + 1} (${n} codes)`, "section 2");
    const codes: HuffmanCode[] = [];
    for (let i = 0; i < n; i++, p += 9) {
      const prefixBits = s.bytes[p]!;
      const base = s.view.getUint32(p + 5, true);
      let prefix = "";
      for (let b = 0; b < prefixBits && b < 32; b++) prefix += (base >>> b) & 1 ? "1" : "0";
      codes.push({ prefix, totalBits: s.bytes[p + 1]!, mode: s.bytes[p + 2]!, value: s.view.getInt16(p + 3, true) });
    }
    tables.push(compileTable(codes, `section 2 table ${t + 1}`));
  }
  return tables;
}

/**
 * Decodes `count` values from a Huffman bit stream. The stream must hold them: running out of bits,
 * or a bit pattern no code starts with, means the data are damaged.
 */
export function huffmanDecode(data: Uint8Array, tables: Tables, count: number, where: string): number[] {
  const out = new Array<number>(count);
  const totalBits = data.length * 8;
  let pos = 0;
  let table = tables[0]!;
  const bit = () => (data[pos >> 3]! >> (7 - (pos++ & 7))) & 1;
  for (let n = 0; n < count;) {
    let key = 0;
    let len = 0;
    let code: HuffmanCode | undefined;
    while (code === undefined) {
      if (pos >= totalBits) damaged("SCP_HUFFMAN", `${where}: the data end after ${n} of ${count} samples`, where);
      if (len >= 32)
        damaged("SCP_HUFFMAN", `${where}: no Huffman code matches at bit ${pos - len} (sample ${n + 1})`, where);
      key = (key | (bit() << len)) >>> 0;
      len++;
      code = table[len]!.get(key);
    }
    if (code.mode === 0) {
      const next = tables[code.value - 1];
      if (!next)
        damaged(
          "SCP_HUFFMAN",
          `${where}: a code switches to Huffman table ${code.value}, which section 2 does not define`,
          where,
        );
      table = next;
      continue;
    }
    const extra = code.totalBits - code.prefix.length;
    if (extra === 0) {
      out[n++] = code.value;
      continue;
    }
    if (pos + extra > totalBits) damaged("SCP_HUFFMAN", `${where}: the data end inside sample ${n + 1}`, where);
    let v = 0;
    for (let i = 0; i < extra; i++) v = v * 2 + bit();
    out[n++] = v >= 2 ** (extra - 1) ? v - 2 ** extra : v; // two's complement, most significant bit first
  }
  return out;
}

function rawSamples(data: Uint8Array): number[] {
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return Array.from({ length: data.length >> 1 }, (_, i) => v.getInt16(2 * i, true));
}

/** Undoes first or second differences (in place). */
export function undifference(d: number[], order: number): number[] {
  if (order === 1) for (let n = 1; n < d.length; n++) d[n] = d[n]! + d[n - 1]!;
  else if (order === 2) for (let n = 2; n < d.length; n++) d[n] = d[n]! + 2 * d[n - 1]! - d[n - 2]!;
  return d;
}

// ---- sections 4, 5, 6 ---------------------------------------------------------------------------

interface SignalSection {
  avmNv: number;
  intervalUs: number;
  differences: number;
  bimodal: boolean;
  data: Uint8Array[];
}

function readSignalSection(s: Section, leads: number, id: 5 | 6): SignalSection {
  const what = `section ${id}`;
  if (22 + 2 * leads > s.length)
    damaged("SCP_TRUNCATED", `${what} holds ${s.length} bytes, too few for the byte counts of ${leads} leads`, what);
  const differences = s.bytes[20]!;
  if (differences > 2) damaged("SCP_DIFFERENCES", `${what}: difference coding ${differences} is not 0, 1 or 2`, what);
  const data: Uint8Array[] = [];
  let p = 22 + 2 * leads;
  for (let i = 0; i < leads; i++) {
    const n = s.view.getUint16(22 + 2 * i, true);
    if (p + n > s.length)
      damaged("SCP_TRUNCATED", `${what}: lead ${i + 1}'s ${n} bytes reach past the section's end`, what);
    data.push(s.bytes.subarray(p, p + n));
    p += n;
  }
  return {
    avmNv: s.view.getUint16(16, true),
    intervalUs: s.view.getUint16(18, true),
    differences,
    bimodal: id === 6 && s.bytes[21] === 1,
    data,
  };
}

interface QrsTable {
  beatMs: number;
  fiducial: number;
  complexes: { type: number; start: number; fiducial: number; end: number }[];
}

function readQrs(s: Section): QrsTable {
  if (s.length < 22) damaged("SCP_TRUNCATED", "section 4 is too short for its header", "section 4");
  const count = s.view.getUint16(20, true);
  if (22 + 14 * count > s.length)
    damaged("SCP_TRUNCATED", `section 4 holds ${s.length} bytes, too few for ${count} QRS complexes`, "section 4");
  const complexes = Array.from({ length: count }, (_, i) => {
    const p = 22 + 14 * i;
    return {
      type: s.view.getUint16(p, true),
      start: s.view.getUint32(p + 2, true),
      fiducial: s.view.getUint32(p + 6, true),
      end: s.view.getUint32(p + 10, true),
    };
  });
  return { beatMs: s.view.getUint16(16, true), fiducial: s.view.getUint16(18, true), complexes };
}

/** Adds the reference beat back over SB…QE of every QRS of type 0, fiducial on fiducial (1-based samples). */
function addReferenceBeats(signals: number[][], beats: number[][], qrs: QrsTable): void {
  for (const c of qrs.complexes) {
    if (c.type !== 0) continue;
    for (let l = 0; l < signals.length; l++) {
      const x = signals[l]!;
      const beat = beats[l]!;
      for (let s = c.start; s <= c.end; s++) {
        const i = s - 1;
        const j = s - c.fiducial + qrs.fiducial - 1;
        if (i >= 0 && i < x.length && j >= 0 && j < beat.length) x[i] = x[i]! + beat[j]!;
      }
    }
  }
}

// ---- sections 1, 7, 8 ---------------------------------------------------------------------------

const SEX: Readonly<Record<number, string>> = { 0: "U", 1: "M", 2: "F", 9: "U" };

function readHeader(s: Section | undefined, warnings: EcgWarning[]) {
  const fields = new Map<number, Uint8Array>();
  if (s) {
    let p = 16;
    while (p + 3 <= s.length) {
      const tag = s.bytes[p]!;
      if (tag === 255) break;
      const n = s.view.getUint16(p + 1, true);
      if (p + 3 + n > s.length) {
        warnings.push({
          code: "SCP_HEADER",
          message: `section 1 field ${tag} runs past the section's end: the header is read up to it`,
        });
        break;
      }
      if (!fields.has(tag)) fields.set(tag, s.bytes.subarray(p + 3, p + 3 + n));
      p += 3 + n;
    }
  }
  const str = (tag: number) => textOf(fields.get(tag));
  const ymd = (b: Uint8Array | undefined) => {
    if (!b || b.length < 4) return undefined;
    const y = b[0]! | (b[1]! << 8);
    return y > 0 && b[2]! >= 1 && b[2]! <= 12 && b[3]! >= 1 && b[3]! <= 31
      ? `${String(y).padStart(4, "0")}-${two(b[2]!)}-${two(b[3]!)}`
      : undefined;
  };
  const name = [str(0), str(1)].filter(Boolean).join(", ");
  const sexCode = fields.get(8)?.[0];
  const patient: EcgPatient = compact({
    id: str(2),
    name: name || undefined,
    sex: sexCode === undefined ? undefined : SEX[sexCode],
    birthDate: ymd(fields.get(5)),
  });

  const date = ymd(fields.get(25));
  const t = fields.get(26);
  const clock =
    t && t.length >= 3 && t[0]! < 24 && t[1]! < 60 && t[2]! < 60
      ? `${two(t[0]!)}:${two(t[1]!)}:${two(t[2]!)}`
      : undefined;
  const raw = date ? (clock ? `${date}T${clock}` : date) : undefined;
  let acquiredAt: string | undefined;
  const tz = fields.get(34);
  if (raw && clock && tz && tz.length >= 2) {
    const offsetMin = ((tz[0]! | (tz[1]! << 8)) << 16) >> 16;
    if (offsetMin !== 0x7fff && Math.abs(offsetMin) <= 14 * 60)
      acquiredAt = new Date(Date.parse(`${raw}Z`) - offsetMin * 60_000).toISOString();
  }

  const d = fields.get(14);
  let device:
    ReturnType<typeof compact<{ make?: string; model?: string; serial?: string; software?: string }>> | undefined;
  if (d && d.length >= 36) {
    const strings = splitStrings(d.subarray(36));
    device = compact({
      make: strings[4] || MANUFACTURERS[d[7]!],
      model: textOf(d.subarray(8, 14)),
      serial: strings[1],
      software: strings[2] || strings[0],
    });
  }
  return {
    patient,
    device,
    time: raw ? (acquiredAt ? { acquiredAt, acquiredAtRaw: raw } : { acquiredAtRaw: raw }) : {},
  };
}

function two(n: number): string {
  return String(n).padStart(2, "0");
}

/** NUL-terminated text: UTF-8 when it is valid UTF-8, else ISO-8859-1 (SCP-ECG's default). */
function textOf(b: Uint8Array | undefined): string | undefined {
  if (!b || b.length === 0) return undefined;
  const end = b.indexOf(0);
  const body = end < 0 ? b : b.subarray(0, end);
  let s: string;
  try {
    s = new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    s = new TextDecoder("latin1").decode(body);
  }
  s = s.replace(/\p{Cc}+/gu, " ").trim();
  return s === "" ? undefined : s;
}

function splitStrings(b: Uint8Array): string[] {
  const out: string[] = [];
  let start = 0;
  for (let i = 0; i <= b.length && out.length < 8; i++) {
    if (i === b.length || b[i] === 0) {
      out.push(textOf(b.subarray(start, i)) ?? "");
      start = i + 1;
    }
  }
  return out;
}

function readMeasurements(s: Section | undefined): EcgMeasurements {
  if (!s || s.length < 22) return {};
  const u = (p: number) => (p + 2 <= s.length ? s.view.getUint16(p, true) : undefined);
  const i16 = (p: number) => (p + 2 <= s.length ? s.view.getInt16(p, true) : undefined);
  const ok = (v: number | undefined) => (v === undefined || NOT_COMPUTED.has(v) ? undefined : v);
  const m: EcgMeasurements = {};
  const rr = ok(u(18));
  if (rr !== undefined && rr > 0) {
    m.rrMs = rr;
    m.heartRate = Math.round(60_000 / rr);
  }
  if (s.bytes[16]! >= 1 && s.length >= 22 + 16) {
    const [pOn, qrsOn, qrsOff, tOff] = [22, 26, 28, 30].map((p) => ok(u(p))); // 24 is P end
    if (pOn !== undefined && qrsOn !== undefined && qrsOn > pOn) m.prMs = qrsOn - pOn;
    if (qrsOn !== undefined && qrsOff !== undefined && qrsOff > qrsOn) m.qrsMs = qrsOff - qrsOn;
    if (qrsOn !== undefined && tOff !== undefined && tOff > qrsOn) m.qtMs = tOff - qrsOn;
    const [pAx, qrsAx, tAx] = [32, 34, 36].map((p) => ok(i16(p)));
    if (pAx !== undefined) m.pAxisDeg = pAx;
    if (qrsAx !== undefined) m.qrsAxisDeg = qrsAx;
    if (tAx !== undefined) m.tAxisDeg = tAx;
  }
  return m;
}

function readStatements(s: Section | undefined): string[] {
  if (!s || s.length < 25) return [];
  const count = s.bytes[24]!;
  const out: string[] = [];
  let p = 25;
  for (let i = 0; i < count && p + 3 <= s.length; i++) {
    const n = s.view.getUint16(p + 1, true);
    const t = textOf(s.bytes.subarray(p + 3, Math.min(s.length, p + 3 + n)));
    if (t) out.push(t);
    p += 3 + n;
  }
  return out;
}
