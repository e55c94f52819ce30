// What an S/5 monitor says, for the datex-s5 simulator and tests. Pure: the simulator
// (./simulator.ts) does the sending and the timing.
//
// Two sources of records:
//  - a capture (../shared/fixtures/datex-s5, real S/5 traffic published by pycollect): its records
//    replayed as recorded, each frame's bytes as they were on the wire;
//  - SYNTHETIC records, built by this project from the record layouts of protocols/datex-s5 (header,
//    basic physiological class, waveform subrecords) with made-up, steady vitals (HR 72, NIBP
//    120/80 (93), SpO2 98 %, EtCO2 5.0 % at 760 mmHg, RR 14, T1 37.0 °C) and a sine pleth. No monitor
//    produced them and no patient is in them.
// Either way the monitor only starts once asked (a PHDB request), and stops being asked when the link
// is lost: the simulator answers requests as the monitor would (`datexRequest`).
import {
  DATEX_BASIC_GROUPS,
  DATEX_BASIC_VALUES,
  DATEX_HEADER_BYTES,
  DATEX_PHDB_SUBRECORD_BYTES,
  DRI_EOL_SUBR_LIST,
  DRI_MT,
  DRI_PH,
  DRI_PHDBCL,
  DRI_WF,
  WF_REQ,
  datexFramer,
  encodeDatexFrame,
  parseDatexRecord,
} from "../../protocols/datex-s5/index.ts";

/** A request the monitor understood. */
export type DatexRequest =
  | { kind: "phdb"; recordType: number; intervalS: number; classMask: number }
  | { kind: "wave"; command: number; types: number[] };

/** Reads a request record (computer → monitor); undefined for anything else. */
export function datexRequest(record: Uint8Array): DatexRequest | undefined {
  const r = parseDatexRecord(record);
  if (!r.ok || r.record.subrecords.length !== 1) return undefined;
  const d = r.record.data;
  const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
  if (r.record.mainType === DRI_MT.PHDB && r.record.subrecords[0]!.type === DRI_PH.XMIT_REQ && d.length >= 9) {
    return { kind: "phdb", recordType: v.getUint8(0), intervalS: v.getInt16(1, true), classMask: v.getUint32(3, true) };
  }
  if (r.record.mainType === DRI_MT.WAVE && r.record.subrecords[0]!.type === DRI_WF.CMD && d.length >= 12) {
    const types: number[] = [];
    for (let k = 0; k < 8; k++) {
      const t = v.getUint8(4 + k);
      if (t === DRI_EOL_SUBR_LIST) break;
      types.push(t);
    }
    return { kind: "wave", command: v.getInt16(0, true), types: v.getInt16(0, true) === WF_REQ.CONT_STOP ? [] : types };
  }
  return undefined;
}

/** A record ready to send: its main type and its frame as on the wire. */
export interface DatexWireRecord {
  mainType: number;
  /** Waveform types it holds (WAVE records). */
  types: number[];
  frame: Uint8Array;
}

/** The complete records of a capture, in order, each as its own frame (re-framed from the checked record). */
export function datexCaptureRecords(bytes: Uint8Array): DatexWireRecord[] {
  const out: DatexWireRecord[] = [];
  for (const r of datexFramer().push(bytes)) {
    if (!("frame" in r)) continue;
    const p = parseDatexRecord(r.frame);
    if (!p.ok) continue;
    out.push({
      mainType: p.record.mainType,
      types: p.record.subrecords.map((s) => s.type),
      frame: encodeDatexFrame(r.frame),
    });
  }
  return out;
}

function header(
  length: number,
  mainType: number,
  timeS: number,
  subrecords: { offset: number; type: number }[],
  number = 0,
): Uint8Array {
  const out = new Uint8Array(length);
  const v = new DataView(out.buffer);
  v.setInt16(0, length, true);
  v.setUint8(2, number & 0xff);
  v.setUint32(6, timeS >>> 0, true);
  v.setInt16(14, mainType, true);
  for (let k = 0; k < 8; k++) {
    const s = subrecords[k];
    v.setInt16(16 + 3 * k, s?.offset ?? 0, true);
    v.setUint8(18 + 3 * k, s ? s.type : k === subrecords.length ? DRI_EOL_SUBR_LIST : 0);
  }
  return out;
}

/** SYNTHETIC steady vitals (see the file's header). */
export const SYNTHETIC_VITALS: Readonly<Record<string, number>> = {
  "ecg.hr": 72,
  "ecgExtra.hrEcg": 72,
  "ecg.impRr": 14,
  "nibp.sys": 120,
  "nibp.dia": 80,
  "nibp.mean": 93,
  "t1.temp": 37,
  "spo2.spo2": 98,
  "spo2.pr": 72,
  "co2.et": 5,
  "co2.fi": 0.2,
  "co2.rr": 14,
  "co2.ambPress": 760,
};

/** A SYNTHETIC displayed-values record: the basic class only, groups with a value exist and are active. */
export function syntheticPhdbRecord(
  timeS: number,
  values: Readonly<Record<string, number>> = SYNTHETIC_VITALS,
  number = 0,
): Uint8Array {
  const rec = header(
    DATEX_HEADER_BYTES + DATEX_PHDB_SUBRECORD_BYTES,
    DRI_MT.PHDB,
    timeS,
    [{ offset: 0, type: DRI_PH.DISPL }],
    number,
  );
  const v = new DataView(rec.buffer, DATEX_HEADER_BYTES);
  v.setUint32(0, timeS >>> 0, true);
  const present = new Set<string>();
  for (const d of DATEX_BASIC_VALUES) {
    const value = values[d.key];
    // Everything not given is "invalid" (-32767), as a monitor sends for a parameter without a reading.
    v.setInt16(4 + d.offset, value === undefined ? -32767 : Math.round(value / d.scale), true);
    if (value !== undefined) present.add(d.group);
  }
  for (const [name, g] of Object.entries(DATEX_BASIC_GROUPS)) {
    v.setUint32(4 + g, present.has(name) ? 3 : 0, true); // bit 0 module exists, bit 1 active
    // Labels: T1 on the T1 site (11), the CO2 group's respiration rate from CO2 (1).
    v.setUint16(4 + g + 4, name === "t1" ? 11 : name === "co2" ? 1 : 0, true);
  }
  v.setUint16(276, (DRI_PHDBCL.BASIC << 8) | DRI_PH.DISPL, true);
  return rec;
}

/** A SYNTHETIC waveform record: one second of each type (a 1.2 Hz sine for pleth, flat for others). */
export function syntheticWaveRecord(
  timeS: number,
  types: readonly number[],
  fsOf: (type: number) => number,
  number = 0,
): Uint8Array {
  const subs = types.map((type) => ({ type, n: fsOf(type) }));
  const length = DATEX_HEADER_BYTES + subs.reduce((sum, s) => sum + 6 + 2 * s.n, 0);
  let offset = 0;
  const rec = header(
    length,
    DRI_MT.WAVE,
    timeS,
    subs.map((s) => {
      const at = offset;
      offset += 6 + 2 * s.n;
      return { offset: at, type: s.type };
    }),
    number,
  );
  const v = new DataView(rec.buffer, DATEX_HEADER_BYTES);
  offset = 0;
  for (const s of subs) {
    v.setInt16(offset, s.n, true);
    for (let i = 0; i < s.n; i++) {
      const x =
        s.type === DRI_WF.PLETH
          ? Math.round(300 * Math.sin((2 * Math.PI * 1.2 * (timeS + i / s.n)) % (2 * Math.PI)))
          : 0;
      v.setInt16(offset + 6 + 2 * i, x, true);
    }
    offset += 6 + 2 * s.n;
  }
  return rec;
}
