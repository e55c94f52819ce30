// The normalized resting 12-lead ECG that every ECG decoder (DICOM waveform, HL7 aECG, Philips XML)
// produces: the `ecg12` event body of DESIGN.md §3 without `original`, which the core fills in from
// the file's bytes.
//
// Pure: no I/O, no clocks, no logging. Patient data is carried (the center needs it to match the
// ECG to a case) but never put into an error or warning text.
import type { CodecError } from "../codec.ts";

/** The twelve standard leads, in the order they are printed and sent. */
export const STANDARD_LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"] as const;
export type StandardLead = (typeof STANDARD_LEADS)[number];

export type EcgFormat = "dicom-ecg" | "hl7-aecg" | "philips-xml" | "ge-muse" | "scp-ecg";

export interface EcgLead {
  /** I, II, III, aVR, aVL, aVF, V1–V6; any other channel keeps the name the file gave it. */
  name: string;
  /** Samples in the device's units: microvolts = sample × uvPerUnit. */
  samples: Int16Array | number[];
  uvPerUnit: number;
  /** Computed by vitalgate from I and II because the file did not carry this lead. */
  derived?: boolean;
}

/** The cart's own measurements, when it made them. Intervals in ms, axes in degrees. */
export interface EcgMeasurements {
  heartRate?: number;
  rrMs?: number;
  prMs?: number;
  qrsMs?: number;
  qtMs?: number;
  qtcMs?: number;
  /** QT corrected by Fridericia's formula, when the cart gives it beside its own QTc (GE's QTcFrederica). */
  qtcFridericiaMs?: number;
  pAxisDeg?: number;
  qrsAxisDeg?: number;
  tAxisDeg?: number;
}

/** Patient identity as the cart recorded it. Kept for matching at the center; never logged. */
export interface EcgPatient {
  id?: string;
  name?: string;
  sex?: string;
  birthDate?: string;
}

export interface EcgDevice {
  make?: string;
  model?: string;
  serial?: string;
  software?: string;
}

export interface EcgWarning {
  /** Stable code: ECG_DERIVED, ECG_LEAD_MISSING, ECG_LEAD_UNKNOWN, ECG_FS_RANGE, ECG_SAMPLE_COUNT, ECG_SCALE, ECG_FLAT, ECG_SHORT, or a decoder's own. */
  code: string;
  message: string;
}

export interface Ecg12 {
  format: EcgFormat;
  /** The format's own version or kind, e.g. "PhilipsECG 1.04.01", "1.2.840.10008.5.1.4.1.1.9.1.1". */
  formatVersion?: string;
  /** The recording's own identity, when its format has one: a DICOM object's SOP Instance UID (0008,0018). */
  instanceUid?: string;
  /** Acquisition time as UTC ISO 8601, only when the file states its UTC offset. */
  acquiredAt?: string;
  /** Acquisition time exactly as the file has it (device clock; DESIGN.md §4 corrects it). */
  acquiredAtRaw?: string;
  /** Sampling rate, Hz. */
  fs: number;
  leads: EcgLead[];
  /** Duration of the longest lead, seconds. */
  durationS: number;
  measurements?: EcgMeasurements;
  /** The cart's interpretation statements, in order. */
  statements?: string[];
  patient?: EcgPatient;
  device?: EcgDevice;
  /** Median or representative beats, when the file has them. */
  representativeBeats?: { fs: number; leads: EcgLead[] };
  /** What is wrong or unusual: the ECG is still kept and sent. */
  warnings: EcgWarning[];
}

export type EcgDecodeResult = { ok: true; ecg: Ecg12 } | { ok: false; error: CodecError };

/** Limits every decoder keeps, so a hostile or broken file cannot exhaust memory or time. */
export interface EcgDecodeLimits {
  /** Largest input accepted, bytes. Default 64 MiB. */
  maxBytes?: number;
  /** Most samples per lead. Default 2,000,000 (over half an hour at 1 kHz). */
  maxSamplesPerLead?: number;
  /** Most leads (channels) in one group. Default 64. */
  maxLeads?: number;
}

export const DEFAULT_LIMITS: Required<EcgDecodeLimits> = {
  maxBytes: 64 * 1024 * 1024,
  maxSamplesPerLead: 2_000_000,
  maxLeads: 64,
};

export function limitsOf(limits: EcgDecodeLimits | undefined): Required<EcgDecodeLimits> {
  return { ...DEFAULT_LIMITS, ...limits };
}

export function fail(code: string, message: string, where?: string | number): EcgDecodeResult {
  return where === undefined ? { ok: false, error: { code, message } } : { ok: false, error: { code, message, where } };
}

// ---- lead names ---------------------------------------------------------------------------------

const BY_KEY: ReadonlyMap<string, StandardLead> = new Map(STANDARD_LEADS.map((l) => [l.toLowerCase(), l]));

/**
 * SCP-ECG lead codes (EN 1064 / ISO 11073-91064 Table 14, also DICOM CID 3001 code values "5.6.3-9-n"):
 * 1 I, 2 II, 3–8 V1–V6, 61 III, 62 aVR, 63 aVL, 64 aVF.
 */
const SCP_LEAD_CODES: ReadonlyMap<number, StandardLead> = new Map([
  [1, "I"],
  [2, "II"],
  [3, "V1"],
  [4, "V2"],
  [5, "V3"],
  [6, "V4"],
  [7, "V5"],
  [8, "V6"],
  [61, "III"],
  [62, "aVR"],
  [63, "aVL"],
  [64, "aVF"],
]);

/**
 * The standard name for a lead as the formats spell it: "I", "Lead I (Einthoven)", "lead avr",
 * "MDC_ECG_LEAD_AVR", "V1", "Lead V1", SCP-ECG code values "5.6.3-9-62". Undefined for anything
 * else (Cabrera "-aVR", V7, X/Y/Z, "Channel 13"): those keep their own name.
 */
export function normalizeLeadName(raw: string): StandardLead | undefined {
  let s = raw.trim();
  const scp = /^5\.6\.3-9-(\d+)$/.exec(s);
  if (scp) return SCP_LEAD_CODES.get(Number(scp[1]));
  s = s.replace(/\(.*\)/g, "").trim(); // "Lead I (Einthoven)", "Lead aVR (Goldberger)"
  s = s
    .replace(/^MDC_ECG_LEAD_/i, "")
    .replace(/^lead\s*/i, "")
    .trim();
  return BY_KEY.get(s.toLowerCase());
}

/** Leads in standard order, anything else after them in the order given. */
export function sortLeads(leads: EcgLead[]): EcgLead[] {
  const rank = (name: string) => {
    const i = (STANDARD_LEADS as readonly string[]).indexOf(name);
    return i < 0 ? STANDARD_LEADS.length : i;
  };
  return leads
    .map((l, i) => ({ l, i }))
    .sort((a, b) => rank(a.l.name) - rank(b.l.name) || a.i - b.i)
    .map((x) => x.l);
}

/** Int16Array when every value is an integer in range, else a plain array (fractions, wide values). */
export function packSamples(values: ArrayLike<number>): Int16Array | number[] {
  let fits = true;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isInteger(v) || v < -32768 || v > 32767) {
      fits = false;
      break;
    }
  }
  return fits ? Int16Array.from(values) : Array.from(values);
}

/**
 * Derives III, aVR, aVL and aVF from I and II where the file lacks them (Einthoven's law and
 * Goldberger's augmented leads): III = II − I, aVR = −(I + II)/2, aVL = I − II/2, aVF = II − I/2.
 * Works in the leads' units when I and II share a scale, in microvolts otherwise. Flags what it did
 * with an ECG_DERIVED warning. Returns the leads unchanged when I or II is missing.
 */
export function deriveLimbLeads(leads: EcgLead[], warnings: EcgWarning[]): EcgLead[] {
  const lead1 = leads.find((l) => l.name === "I");
  const lead2 = leads.find((l) => l.name === "II");
  if (!lead1 || !lead2) return leads;
  const missing = (["III", "aVR", "aVL", "aVF"] as const).filter((n) => !leads.some((l) => l.name === n));
  if (missing.length === 0) return leads;
  const n = Math.min(lead1.samples.length, lead2.samples.length);
  const same = lead1.uvPerUnit === lead2.uvPerUnit;
  const k1 = same ? 1 : lead1.uvPerUnit;
  const k2 = same ? 1 : lead2.uvPerUnit;
  const uvPerUnit = same ? lead1.uvPerUnit : 1;
  const formula: Record<(typeof missing)[number], (a: number, b: number) => number> = {
    III: (a, b) => b - a,
    aVR: (a, b) => -(a + b) / 2,
    aVL: (a, b) => a - b / 2,
    aVF: (a, b) => b - a / 2,
  };
  const out = [...leads];
  for (const name of missing) {
    const f = formula[name];
    const values = new Array<number>(n);
    for (let i = 0; i < n; i++) values[i] = f(lead1.samples[i]! * k1, lead2.samples[i]! * k2);
    out.push({ name, samples: packSamples(values), uvPerUnit, derived: true });
  }
  warnings.push({
    code: "ECG_DERIVED",
    message: `${missing.join(", ")} derived from I and II (III = II − I, aVR = −(I+II)/2, aVL = I − II/2, aVF = II − I/2): the file did not carry ${missing.length === 1 ? "it" : "them"}`,
  });
  return sortLeads(out);
}

// ---- validation ---------------------------------------------------------------------------------

/** Sampling rates a diagnostic ECG plausibly has (AHA recommends ≥ 500 Hz; some carts store 250). */
export const FS_RANGE = { min: 100, max: 20_000 } as const;
/** Microvolts per unit a cart plausibly uses (typical 0.5–10 µV). */
export const SCALE_RANGE = { min: 0.01, max: 100 } as const;
/** Largest plausible ECG amplitude at the skin, µV (QRS rarely exceeds 5 mV). */
export const MAX_PLAUSIBLE_UV = 20_000;
/** Below this peak-to-peak on every lead, the ECG is flat: leads off or a wrong scale. */
export const FLAT_UV = 20;

/**
 * Checks an ECG and says what is wrong in warnings, never refusing it: lead set, sampling rate,
 * equal sample counts, plausible scale and amplitude, a usable duration.
 */
export function validateEcg(ecg: Ecg12): EcgWarning[] {
  const w: EcgWarning[] = [];
  const names = ecg.leads.map((l) => l.name);
  const missing = STANDARD_LEADS.filter((n) => !names.includes(n));
  if (missing.length > 0)
    w.push({ code: "ECG_LEAD_MISSING", message: `not a full 12-lead ECG: ${missing.join(", ")} missing` });
  const unknown = names.filter((n) => !(STANDARD_LEADS as readonly string[]).includes(n));
  if (unknown.length > 0)
    w.push({
      code: "ECG_LEAD_UNKNOWN",
      message: `channels that are not standard leads: ${unknown.slice(0, 8).join(", ")}${unknown.length > 8 ? ", …" : ""}`,
    });
  const dupes = names.filter((n, i) => names.indexOf(n) !== i);
  if (dupes.length > 0)
    w.push({ code: "ECG_LEAD_DUPLICATE", message: `leads given more than once: ${[...new Set(dupes)].join(", ")}` });

  if (!Number.isFinite(ecg.fs) || ecg.fs < FS_RANGE.min || ecg.fs > FS_RANGE.max) {
    w.push({
      code: "ECG_FS_RANGE",
      message: `sampling rate ${ecg.fs} Hz is outside ${FS_RANGE.min}–${FS_RANGE.max} Hz`,
    });
  }

  const counts = new Set(ecg.leads.map((l) => l.samples.length));
  if (counts.size > 1) {
    w.push({
      code: "ECG_SAMPLE_COUNT",
      message: `leads differ in length: ${ecg.leads.map((l) => `${l.name} ${l.samples.length}`).join(", ")}`,
    });
  }

  const badScale = ecg.leads.filter(
    (l) => !Number.isFinite(l.uvPerUnit) || l.uvPerUnit < SCALE_RANGE.min || l.uvPerUnit > SCALE_RANGE.max,
  );
  if (badScale.length > 0) {
    w.push({
      code: "ECG_SCALE",
      message: `implausible scale (µV per unit outside ${SCALE_RANGE.min}–${SCALE_RANGE.max}): ${badScale.map((l) => `${l.name} ${l.uvPerUnit}`).join(", ")}`,
    });
  } else if (ecg.leads.length > 0) {
    let maxAbs = 0;
    let anyLive = false;
    for (const l of ecg.leads) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = 0; i < l.samples.length; i++) {
        const v = l.samples[i]! * l.uvPerUnit;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      if (l.samples.length > 0) {
        maxAbs = Math.max(maxAbs, Math.abs(lo), Math.abs(hi));
        if (hi - lo >= FLAT_UV) anyLive = true;
      }
    }
    if (maxAbs > MAX_PLAUSIBLE_UV)
      w.push({
        code: "ECG_SCALE",
        message: `amplitude up to ${Math.round(maxAbs)} µV is implausible for an ECG (over ${MAX_PLAUSIBLE_UV} µV): wrong units or scale?`,
      });
    else if (!anyLive)
      w.push({
        code: "ECG_FLAT",
        message: `every lead is flat (under ${FLAT_UV} µV peak to peak): leads off, or a wrong scale`,
      });
  }

  if (ecg.durationS < 2)
    w.push({ code: "ECG_SHORT", message: `only ${ecg.durationS.toFixed(3)} s of signal (a resting ECG has 10 s)` });
  return w;
}

/**
 * The last step every decoder takes: derive missing limb leads, order the leads, compute the
 * duration, and append the validation warnings to the decoder's own.
 */
export function finishEcg(draft: Omit<Ecg12, "durationS" | "warnings"> & { warnings?: EcgWarning[] }): Ecg12 {
  const warnings = [...(draft.warnings ?? [])];
  const leads = sortLeads(deriveLimbLeads(draft.leads, warnings));
  const longest = leads.reduce((m, l) => Math.max(m, l.samples.length), 0);
  const durationS = draft.fs > 0 ? longest / draft.fs : 0;
  const ecg: Ecg12 = { ...draft, leads, durationS, warnings };
  for (const key of [
    "measurements",
    "statements",
    "patient",
    "device",
    "representativeBeats",
    "acquiredAt",
    "acquiredAtRaw",
    "formatVersion",
    "instanceUid",
  ] as const) {
    if (ecg[key] === undefined) delete ecg[key];
  }
  if (ecg.measurements && Object.keys(ecg.measurements).length === 0) delete ecg.measurements;
  if (ecg.statements && ecg.statements.length === 0) delete ecg.statements;
  if (ecg.patient && Object.keys(ecg.patient).length === 0) delete ecg.patient;
  if (ecg.device && Object.keys(ecg.device).length === 0) delete ecg.device;
  warnings.push(...validateEcg(ecg));
  return ecg;
}

/** Drops undefined and empty-string fields, so optional parts stay absent rather than blank. */
export function compact<T extends object>(o: T): T {
  const out = {} as T;
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== "") (out as Record<string, unknown>)[k] = v;
  return out;
}

/** A finite number from a decimal string, or undefined ("Failed", "", "12,5" → undefined). */
export function toNumber(s: unknown): number | undefined {
  if (typeof s === "number") return Number.isFinite(s) ? s : undefined;
  if (typeof s !== "string") return undefined;
  const t = s.trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : undefined;
}
