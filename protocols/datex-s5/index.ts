// GE Datex-Ohmeda S/5 Computer Interface (DRI, "Datex Record Interface") over RS-232.
//
// Pure: bytes in, records and values out; records to bytes for the requests. No I/O, no clocks.
//
// Sources (facts only; no code taken). GE's own "S/5 Computer Interface Specification" (document
// 8005313) is not public; the facts below come from public projects that implemented it, cross-checked
// against the capture ../shared/fixtures/datex-s5/pycollect_db02.raw:
//  [pycollect] UN-GCPDS/python-pycollect @ c6cfdc1d: pycollect/dataconstants.py (frame characters,
//     invalid-value sentinels, main types, waveform types, class masks), pycollect/decode.py (byte
//     stuffing, checksum = sum of the record bytes mod 256, sent after them), pycollect/measures.py
//     (scaling and units of the basic physiological values).
//  [monitor_serial] wei2374/monitor_serial @ 0c9f60b8: datex.h (little-endian C structs: the 40-byte
//     record header, the 278-byte physiological subrecord, the basic class group layout, the
//     physiological and waveform request bodies).
import type { CodecError, FrameResult, Framer } from "../codec.ts";

/** Asynchronous framing [pycollect dataconstants]: each record between two flags; flag and escape bytes inside are escaped. */
export const DATEX_FLAG = 0x7e;
export const DATEX_ESCAPE = 0x7d;
/** An escaped byte is sent as ESCAPE, byte XOR 0x20 (0x7E → 7D 5E, 0x7D → 7D 5D) [pycollect decode]. */
const ESCAPE_XOR = 0x20;

/** Record main types (datex_hdr.r_maintype) [pycollect dataconstants, monitor_serial datex.h]. */
export const DRI_MT = { PHDB: 0, WAVE: 1, ALARM: 4, NETWORK: 5, FO: 8 } as const;
/** End of the subrecord list in sr_desc[] [monitor_serial datex.h]. */
export const DRI_EOL_SUBR_LIST = 0xff;
/** Physiological subrecord types (sr_type of a PHDB record) [pycollect dataconstants]. */
export const DRI_PH = { XMIT_REQ: 0, DISPL: 1, TREND_10S: 2, TREND_60S: 3, AUX_INFO: 4 } as const;
/** Physiological data classes; request masks (dri_phdb_req.phdb_class_bf) [pycollect dataconstants]. */
export const DRI_PHDBCL = { BASIC: 0, EXT1: 1, EXT2: 2, EXT3: 3 } as const;
export const DRI_PHDBCL_MASK = { DENY_BASIC: 0x0001, EXT1: 0x0002, EXT2: 0x0004, EXT3: 0x0008 } as const;
/** Waveform subrecord types [pycollect dataconstants DRI_WAVEFORM]. */
export const DRI_WF: Readonly<Record<string, number>> = {
  CMD: 0,
  ECG1: 1,
  ECG2: 2,
  ECG3: 3,
  INVP1: 4,
  INVP2: 5,
  INVP3: 6,
  INVP4: 7,
  PLETH: 8,
  CO2: 9,
  O2: 10,
  N2O: 11,
  AA: 12,
  AWP: 13,
  FLOW: 14,
  RESP: 15,
  INVP5: 16,
  INVP6: 17,
  EEG1: 18,
  EEG2: 19,
  EEG3: 20,
  EEG4: 21,
  VOL: 23,
  TONO_PRESS: 24,
  SPI_LOOP_STATUS: 29,
  ENT_100: 32,
  EEG_BIS: 35,
};
/** Waveform request commands (dri_wave_req.req_type) [pycollect dataconstants]. */
export const WF_REQ = { CONT_START: 0, CONT_STOP: 1, TIMED_START: 2 } as const;

/**
 * Values at or below -32001 are not measurements [pycollect dataconstants, measures docstring: "the
 * smallest valid value is always -32000"].
 */
export const DATA_INVALID_LIMIT = -32001;
export const DATEX_SPECIAL: Readonly<Record<number, DatexSpecial>> = {
  [-32767]: "invalid",
  [-32766]: "not-updated",
  [-32765]: "discontinuity",
  [-32764]: "under-range",
  [-32763]: "over-range",
  [-32762]: "not-calibrated",
};
export type DatexSpecial =
  "invalid" | "not-updated" | "discontinuity" | "under-range" | "over-range" | "not-calibrated" | "not-available";

/** Record header: 40 bytes, little-endian [monitor_serial datex.h struct datex_hdr]. */
export const DATEX_HEADER_BYTES = 40;
/** One physiological subrecord: time (4) + 270 bytes of class data + marker, reserved, cl_drilvl_subt (4) [monitor_serial struct dri_phdb]. */
export const DATEX_PHDB_SUBRECORD_BYTES = 278;
/** The largest record: header + 1450 data bytes [monitor_serial struct datex_record]. */
export const DATEX_MAX_RECORD_BYTES = DATEX_HEADER_BYTES + 1450;

function err(code: string, message: string, where?: number | string): { ok: false; error: CodecError } {
  return { ok: false, error: where === undefined ? { code, message } : { code, message, where } };
}

// ---------------------------------------------------------------------------------------------
// Framing

export interface DatexFramerOptions {
  /** Largest unstuffed frame held (record + checksum). Default 1491 (DATEX_MAX_RECORD_BYTES + 1). */
  maxFrameBytes?: number;
}

/**
 * Frames: FLAG, stuffed (record, checksum), FLAG. The frame result is the record with its checksum
 * checked and removed. A flag right after a flag starts a frame (so the framer resynchronises after
 * joining a stream mid-frame); bytes between an end flag and the next start flag are skipped.
 * Errors: S5_BAD_CHECKSUM, S5_BAD_ESCAPE, S5_OVERSIZE, S5_SHORT_FRAME, and S5_TRUNCATED at end().
 */
export function datexFramer(
  options: DatexFramerOptions = {},
): Framer & { end(): FrameResult[]; readonly skipped: number } {
  const max = options.maxFrameBytes ?? DATEX_MAX_RECORD_BYTES + 1;
  const buf = new Uint8Array(max);
  let held = 0;
  let inFrame = false;
  let escaped = false;
  let oversize = false;
  let start = 0;
  let offset = 0;
  let skipped = 0;

  function close(out: FrameResult[]): void {
    const n = held;
    held = 0;
    inFrame = false;
    if (oversize) {
      oversize = false;
      escaped = false;
      return;
    }
    if (escaped) {
      escaped = false;
      out.push({
        error: { code: "S5_BAD_ESCAPE", message: `frame at byte ${start} ends with an escape byte`, where: start },
      });
      return;
    }
    if (n < 2) {
      out.push({
        error: { code: "S5_SHORT_FRAME", message: `frame at byte ${start} has ${n} byte(s): no record`, where: start },
      });
      return;
    }
    let sum = 0;
    for (let i = 0; i < n - 1; i++) sum = (sum + buf[i]!) & 0xff;
    if (sum !== buf[n - 1]) {
      out.push({
        error: {
          code: "S5_BAD_CHECKSUM",
          message: `frame at byte ${start}: checksum 0x${buf[n - 1]!.toString(16)} does not match its ${n - 1} bytes (sum mod 256 = 0x${sum.toString(16)})`,
          where: start,
        },
      });
      return;
    }
    out.push({ frame: buf.slice(0, n - 1) });
  }

  return {
    get pending() {
      return held;
    },
    get skipped() {
      return skipped;
    },
    push(chunk: Uint8Array): FrameResult[] {
      const out: FrameResult[] = [];
      for (let i = 0; i < chunk.length; i++, offset++) {
        let b = chunk[i]!;
        if (b === DATEX_FLAG) {
          if (inFrame && (held > 0 || oversize || escaped)) close(out);
          else {
            inFrame = true;
            start = offset;
          }
          continue;
        }
        if (!inFrame) {
          skipped++;
          continue;
        }
        if (b === DATEX_ESCAPE) {
          if (escaped) {
            out.push({
              error: { code: "S5_BAD_ESCAPE", message: `two escape bytes in a row at byte ${offset}`, where: offset },
            });
          }
          escaped = true;
          continue;
        }
        if (escaped) {
          b ^= ESCAPE_XOR;
          escaped = false;
        }
        if (oversize) continue;
        if (held >= max) {
          out.push({
            error: {
              code: "S5_OVERSIZE",
              message: `frame at byte ${start} is longer than ${max} bytes; skipped to its end flag`,
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
    end(): FrameResult[] {
      if (!inFrame || (held === 0 && !oversize)) return [];
      const n = held;
      held = 0;
      inFrame = false;
      oversize = false;
      return [
        {
          error: {
            code: "S5_TRUNCATED",
            message: `frame at byte ${start} has no end flag (${n} bytes held)`,
            where: start,
          },
        },
      ];
    },
  };
}

/** Wraps a record: appends the checksum (sum mod 256), escapes flag and escape bytes, adds the flags. */
export function encodeDatexFrame(record: Uint8Array): Uint8Array {
  let sum = 0;
  for (const b of record) sum = (sum + b) & 0xff;
  const out: number[] = [DATEX_FLAG];
  for (const b of [...record, sum]) {
    if (b === DATEX_FLAG || b === DATEX_ESCAPE) out.push(DATEX_ESCAPE, b ^ ESCAPE_XOR);
    else out.push(b);
  }
  out.push(DATEX_FLAG);
  return Uint8Array.from(out);
}

// ---------------------------------------------------------------------------------------------
// Record header

export interface DatexSubrecordDesc {
  /** Offset of the subrecord in the data area (after the 40-byte header). */
  offset: number;
  type: number;
}

export interface DatexRecord {
  /** r_len: record length in bytes, header included. */
  length: number;
  /** r_nbr: record number (0..255, wraps). */
  number: number;
  driLevel: number;
  plugId: number;
  /** r_time: seconds since 1970-01-01 (the monitor's clock, local time as set on the monitor). */
  time: number;
  mainType: number;
  subrecords: DatexSubrecordDesc[];
  /** Data area: the bytes after the header. */
  data: Uint8Array;
}

export type DatexRecordResult = { ok: true; record: DatexRecord } | { ok: false; error: CodecError };

/**
 * Record header layout [monitor_serial struct datex_hdr], little-endian:
 *   0 r_len i16 | 2 r_nbr u8 | 3 dri_level u8 | 4 plug_id u16 | 6 r_time u32 | 10 n_subnet u8 |
 *   11 reserved u8 | 12 reserved u16 | 14 r_maintype i16 | 16 sr_desc[8] of { sr_offset i16, sr_type u8 }
 */
export function parseDatexRecord(bytes: Uint8Array): DatexRecordResult {
  if (bytes.length < DATEX_HEADER_BYTES)
    return err("S5_SHORT_RECORD", `record of ${bytes.length} bytes is shorter than its 40-byte header`);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = v.getInt16(0, true);
  if (length !== bytes.length)
    return err("S5_LENGTH", `record header says ${length} bytes, the frame holds ${bytes.length}`, "r_len");
  const subrecords: DatexSubrecordDesc[] = [];
  for (let k = 0; k < 8; k++) {
    const type = v.getUint8(16 + 3 * k + 2);
    if (type === DRI_EOL_SUBR_LIST) break;
    const offset = v.getInt16(16 + 3 * k, true);
    if (offset < 0 || offset > length - DATEX_HEADER_BYTES)
      return err("S5_BAD_SUBRECORD", `subrecord ${k} offset ${offset} lies outside the record`, `sr_desc[${k}]`);
    subrecords.push({ offset, type });
  }
  return {
    ok: true,
    record: {
      length,
      number: v.getUint8(2),
      driLevel: v.getUint8(3),
      plugId: v.getUint16(4, true),
      time: v.getUint32(6, true),
      mainType: v.getInt16(14, true),
      subrecords,
      data: bytes.subarray(DATEX_HEADER_BYTES),
    },
  };
}

function header(length: number, mainType: number, subrecords: DatexSubrecordDesc[]): Uint8Array {
  const out = new Uint8Array(length);
  const v = new DataView(out.buffer);
  v.setInt16(0, length, true);
  v.setInt16(14, mainType, true);
  for (let k = 0; k < 8; k++) {
    const s = subrecords[k];
    v.setInt16(16 + 3 * k, s?.offset ?? 0, true);
    v.setUint8(16 + 3 * k + 2, s ? s.type : k === subrecords.length ? DRI_EOL_SUBR_LIST : 0);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Requests (computer → monitor)

export interface DatexPhdbRequest {
  /** DRI_PH.DISPL (displayed values), TREND_10S or TREND_60S. Default DISPL. */
  recordType?: number;
  /** Transmission interval, seconds (the monitor sends every interval; 0 = once). Default 10. */
  intervalS?: number;
  /** Classes to send besides basic: DRI_PHDBCL_MASK bits. Default 0 (basic only). */
  classMask?: number;
}

/**
 * The request for periodic physiological data: a PHDB record whose one subrecord (type XMIT_REQ) is a
 * dri_phdb_req [monitor_serial]: phdb_rcrd_type u8, tx_ival i16 (s), phdb_class_bf u32, reserved i16.
 */
export function encodeDatexPhdbRequest(req: DatexPhdbRequest = {}): Uint8Array {
  const rec = header(DATEX_HEADER_BYTES + 9, DRI_MT.PHDB, [{ offset: 0, type: DRI_PH.XMIT_REQ }]);
  const v = new DataView(rec.buffer);
  v.setUint8(40, req.recordType ?? DRI_PH.DISPL);
  v.setInt16(41, req.intervalS ?? 10, true);
  v.setUint32(43, req.classMask ?? 0, true);
  return encodeDatexFrame(rec);
}

/**
 * Start (or stop) waveforms: a WAVE record whose subrecord (type CMD) is a dri_wave_req
 * [monitor_serial]: req_type i16, reserved i16, type[8] u8 (waveform types, ended by 0xFF),
 * reserved i16[10]. At most 8 waveforms (the monitor limits the total sample rate further).
 */
export function encodeDatexWaveRequest(types: readonly number[], command: number = WF_REQ.CONT_START): Uint8Array {
  const rec = header(DATEX_HEADER_BYTES + 32, DRI_MT.WAVE, [{ offset: 0, type: DRI_WF.CMD! }]);
  const v = new DataView(rec.buffer);
  v.setInt16(40, command, true);
  const list = types.slice(0, 8);
  for (let k = 0; k < 8; k++)
    v.setUint8(44 + k, k < list.length ? list[k]! : k === list.length ? DRI_EOL_SUBR_LIST : 0);
  return encodeDatexFrame(rec);
}

// ---------------------------------------------------------------------------------------------
// Physiological data (PHDB)

export type DatexValue = number | DatexSpecial;

/**
 * Basic class values: [monitor_serial struct basic_phdb] gives the layout (byte offsets below are
 * from the start of the 270-byte class data, after the subrecord's 4-byte time; each group starts
 * with a 6-byte header: status u32, label u16), [pycollect measures.py] the scale and unit.
 * Units are UCUM. scale: value = raw × scale.
 */
export const DATEX_BASIC_VALUES: readonly {
  key: string;
  group: string;
  offset: number;
  scale: number;
  unit: string;
}[] = [
  { key: "ecg.hr", group: "ecg", offset: 6, scale: 1, unit: "/min" },
  { key: "ecg.st1", group: "ecg", offset: 8, scale: 0.01, unit: "mm" },
  { key: "ecg.st2", group: "ecg", offset: 10, scale: 0.01, unit: "mm" },
  { key: "ecg.st3", group: "ecg", offset: 12, scale: 0.01, unit: "mm" },
  { key: "ecg.impRr", group: "ecg", offset: 14, scale: 1, unit: "/min" },
  ...[16, 30, 44, 58].flatMap((g, i) => invp(`p${i + 1}`, g)),
  { key: "nibp.sys", group: "nibp", offset: 78, scale: 0.01, unit: "mm[Hg]" },
  { key: "nibp.dia", group: "nibp", offset: 80, scale: 0.01, unit: "mm[Hg]" },
  { key: "nibp.mean", group: "nibp", offset: 82, scale: 0.01, unit: "mm[Hg]" },
  { key: "nibp.hr", group: "nibp", offset: 84, scale: 1, unit: "/min" },
  ...[86, 94, 102, 110].map((g, i) => ({
    key: `t${i + 1}.temp`,
    group: `t${i + 1}`,
    offset: g + 6,
    scale: 0.01,
    unit: "Cel",
  })),
  { key: "spo2.spo2", group: "spo2", offset: 124, scale: 0.01, unit: "%" },
  { key: "spo2.pr", group: "spo2", offset: 126, scale: 1, unit: "/min" },
  { key: "spo2.so2", group: "spo2", offset: 130, scale: 0.01, unit: "%" },
  { key: "co2.et", group: "co2", offset: 138, scale: 0.01, unit: "%" },
  { key: "co2.fi", group: "co2", offset: 140, scale: 0.01, unit: "%" },
  { key: "co2.rr", group: "co2", offset: 142, scale: 1, unit: "/min" },
  { key: "co2.ambPress", group: "co2", offset: 144, scale: 0.1, unit: "mm[Hg]" },
  { key: "o2.et", group: "o2", offset: 152, scale: 0.01, unit: "%" },
  { key: "o2.fi", group: "o2", offset: 154, scale: 0.01, unit: "%" },
  { key: "n2o.et", group: "n2o", offset: 162, scale: 0.01, unit: "%" },
  { key: "n2o.fi", group: "n2o", offset: 164, scale: 0.01, unit: "%" },
  { key: "aa.et", group: "aa", offset: 172, scale: 0.01, unit: "%" },
  { key: "aa.fi", group: "aa", offset: 174, scale: 0.01, unit: "%" },
  { key: "aa.macSum", group: "aa", offset: 176, scale: 0.01, unit: "1" },
  { key: "flowVol.rr", group: "flowVol", offset: 184, scale: 1, unit: "/min" },
  { key: "flowVol.ppeak", group: "flowVol", offset: 186, scale: 0.01, unit: "cm[H2O]" },
  { key: "flowVol.peep", group: "flowVol", offset: 188, scale: 0.01, unit: "cm[H2O]" },
  { key: "flowVol.pplat", group: "flowVol", offset: 190, scale: 0.01, unit: "cm[H2O]" },
  { key: "flowVol.tvInsp", group: "flowVol", offset: 192, scale: 0.1, unit: "mL" },
  { key: "flowVol.tvExp", group: "flowVol", offset: 194, scale: 0.1, unit: "mL" },
  { key: "flowVol.compliance", group: "flowVol", offset: 196, scale: 0.01, unit: "mL/cm[H2O]" },
  { key: "flowVol.mvExp", group: "flowVol", offset: 198, scale: 0.01, unit: "L/min" },
  { key: "coWedge.co", group: "coWedge", offset: 206, scale: 1, unit: "mL/min" },
  { key: "coWedge.pcwp", group: "coWedge", offset: 212, scale: 0.01, unit: "mm[Hg]" },
  { key: "ecgExtra.hrEcg", group: "ecg", offset: 226, scale: 1, unit: "/min" },
  { key: "ecgExtra.hrMax", group: "ecg", offset: 228, scale: 1, unit: "/min" },
  { key: "ecgExtra.hrMin", group: "ecg", offset: 230, scale: 1, unit: "/min" },
  { key: "svo2.svo2", group: "svo2", offset: 238, scale: 0.01, unit: "%" },
  ...[240, 254].flatMap((g, i) => invp(`p${i + 5}`, g)),
];

function invp(name: string, g: number) {
  return [
    { key: `${name}.sys`, group: name, offset: g + 6, scale: 0.01, unit: "mm[Hg]" },
    { key: `${name}.dia`, group: name, offset: g + 8, scale: 0.01, unit: "mm[Hg]" },
    { key: `${name}.mean`, group: name, offset: g + 10, scale: 0.01, unit: "mm[Hg]" },
    { key: `${name}.hr`, group: name, offset: g + 12, scale: 1, unit: "/min" },
  ];
}

/** Group header offsets in the basic class [monitor_serial struct basic_phdb]; ecgExtra has no header of its own. */
export const DATEX_BASIC_GROUPS: Readonly<Record<string, number>> = {
  ecg: 0,
  p1: 16,
  p2: 30,
  p3: 44,
  p4: 58,
  nibp: 72,
  t1: 86,
  t2: 94,
  t3: 102,
  t4: 110,
  spo2: 118,
  co2: 132,
  o2: 146,
  n2o: 156,
  aa: 166,
  flowVol: 178,
  coWedge: 200,
  nmt: 214,
  svo2: 232,
  p5: 240,
  p6: 254,
};

export interface DatexGroupStatus {
  /** status bit 0: the measurement module exists; bit 1: it is active [pycollect measures "MOD", "ACT"]. */
  exists: boolean;
  active: boolean;
  status: number;
  label: number;
}

export interface DatexPhdbSubrecord {
  /** Subrecord time, seconds since 1970 (the monitor's clock). */
  time: number;
  /** cl_drilvl_subt bits 8-11: class (0 basic, 1 ext1, 2 ext2, 3 ext3). */
  class: number;
  /** cl_drilvl_subt bits 0-3: subrecord type (DRI_PH.DISPL ...). */
  subtype: number;
  /** cl_drilvl_subt bits 4-7: DRI level. */
  driLevel: number;
  /** Basic class only: values by key (DATEX_BASIC_VALUES), scaled; sentinels as names. A value of a group whose module does not exist is "not-available". */
  values?: Record<string, DatexValue>;
  groups?: Record<string, DatexGroupStatus>;
}

export type DatexPhdbResult = { ok: true; subrecords: DatexPhdbSubrecord[] } | { ok: false; error: CodecError };

/** Decodes the physiological subrecords of a PHDB record. Never throws. */
export function decodeDatexPhdb(record: DatexRecord): DatexPhdbResult {
  if (record.mainType !== DRI_MT.PHDB)
    return err("S5_NOT_PHDB", `record main type ${record.mainType} is not physiological data (0)`);
  const out: DatexPhdbSubrecord[] = [];
  for (const [k, s] of record.subrecords.entries()) {
    if (s.offset + DATEX_PHDB_SUBRECORD_BYTES > record.data.length) {
      return err(
        "S5_BAD_SUBRECORD",
        `physiological subrecord ${k} at ${s.offset} runs past the record's ${record.data.length} data bytes`,
        `sr_desc[${k}]`,
      );
    }
    const sub = record.data.subarray(s.offset, s.offset + DATEX_PHDB_SUBRECORD_BYTES);
    const v = new DataView(sub.buffer, sub.byteOffset, sub.byteLength);
    const cl = v.getUint16(276, true);
    const item: DatexPhdbSubrecord = {
      time: v.getUint32(0, true),
      class: (cl >> 8) & 0x0f,
      subtype: cl & 0x0f,
      driLevel: (cl >> 4) & 0x0f,
    };
    if (item.class === DRI_PHDBCL.BASIC) {
      const groups: Record<string, DatexGroupStatus> = {};
      for (const [name, g] of Object.entries(DATEX_BASIC_GROUPS)) {
        const status = v.getUint32(4 + g, true);
        groups[name] = {
          exists: (status & 1) === 1,
          active: (status & 2) === 2,
          status,
          label: v.getUint16(4 + g + 4, true),
        };
      }
      const values: Record<string, DatexValue> = {};
      for (const d of DATEX_BASIC_VALUES) {
        const raw = v.getInt16(4 + d.offset, true);
        if (groups[d.group] && !groups[d.group]!.exists) values[d.key] = "not-available";
        else if (raw <= DATA_INVALID_LIMIT) values[d.key] = DATEX_SPECIAL[raw] ?? "invalid";
        else values[d.key] = Math.round(raw * d.scale * 1000) / 1000;
      }
      item.values = values;
      item.groups = groups;
    }
    out.push(item);
  }
  return { ok: true, subrecords: out };
}

// ---------------------------------------------------------------------------------------------
// Waveforms

export interface DatexWaveSubrecord {
  type: number;
  /** Name from DRI_WF, when known. */
  name?: string;
  status: number;
  label: number;
  /** Samples as sent (int16, device units; values ≤ -32001 are sentinels). */
  samples: Int16Array;
}

export type DatexWaveResult = { ok: true; subrecords: DatexWaveSubrecord[] } | { ok: false; error: CodecError };

const WF_NAMES = new Map(Object.entries(DRI_WF).map(([k, v]) => [v, k]));

/**
 * Waveform subrecords: each starts with wf_hdr {act_len i16 (samples that follow), status u16,
 * label u16} [monitor_serial struct wf_hdr], then act_len int16 samples.
 */
export function decodeDatexWave(record: DatexRecord): DatexWaveResult {
  if (record.mainType !== DRI_MT.WAVE)
    return err("S5_NOT_WAVE", `record main type ${record.mainType} is not waveform data (1)`);
  const v = new DataView(record.data.buffer, record.data.byteOffset, record.data.byteLength);
  const out: DatexWaveSubrecord[] = [];
  for (const [k, s] of record.subrecords.entries()) {
    if (s.offset + 6 > record.data.length)
      return err("S5_BAD_SUBRECORD", `waveform subrecord ${k} header lies outside the record`, `sr_desc[${k}]`);
    const n = v.getInt16(s.offset, true);
    if (n < 0 || s.offset + 6 + 2 * n > record.data.length) {
      return err(
        "S5_BAD_SUBRECORD",
        `waveform subrecord ${k} says ${n} samples, more than the record holds`,
        `sr_desc[${k}]`,
      );
    }
    const samples = new Int16Array(n);
    for (let i = 0; i < n; i++) samples[i] = v.getInt16(s.offset + 6 + 2 * i, true);
    const name = WF_NAMES.get(s.type);
    const w: DatexWaveSubrecord = {
      type: s.type,
      status: v.getUint16(s.offset + 2, true),
      label: v.getUint16(s.offset + 4, true),
      samples,
    };
    if (name !== undefined) w.name = name;
    out.push(w);
  }
  return { ok: true, subrecords: out };
}
