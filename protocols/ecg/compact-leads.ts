// The leads of an ecg12 event as they travel (docs/protocol.md "ecg12", "Lead encoding"): each lead's
// int16 samples, optionally as the residual of a limb lead predicted from I and II, as first
// differences (modulo 2^16), int16 little-endian, compressed with zlib (RFC 1950), in base64
// (RFC 4648). Lossless: decodeLead gives back the very samples encodeLeads was given.
//
// Pure: no I/O, no clocks, no logging (zlib is computation).
import { deflateSync, inflateSync } from "node:zlib";

/** The one encoding a lead travels in; the name a center checks. */
export const LEAD_ENCODING = "zlib-delta-int16";

/**
 * Limb leads that Einthoven's and Goldberger's laws predict from I and II, written without
 * fractions (the augmented leads doubled), so the residual and its inverse are exact integers:
 * residual r = k·lead − f(I, II), lead = (r + f(I, II)) / k.
 */
const PREDICTORS = {
  III: { k: 1, f: (i: number, ii: number) => ii - i },
  aVR: { k: 2, f: (i: number, ii: number) => -(i + ii) },
  aVL: { k: 2, f: (i: number, ii: number) => 2 * i - ii },
  aVF: { k: 2, f: (i: number, ii: number) => 2 * ii - i },
} as const;
export type PredictedLead = keyof typeof PREDICTORS;
const PREDICTOR_NAMES: Record<PredictedLead, string> = {
  III: "III=II-I",
  aVR: "2aVR=-(I+II)",
  aVL: "2aVL=2I-II",
  aVF: "2aVF=2II-I",
};

/** A lead ready to encode: int16 samples and the microvolts one unit stands for. */
export interface IntLead {
  name: string;
  samples: Int16Array;
  uvPerUnit: number;
  derived?: boolean;
}

/** A lead on the wire. */
export interface CompactLead {
  name: string;
  uvPerUnit: number;
  derived?: true;
  /** Number of samples. */
  n: number;
  encoding: typeof LEAD_ENCODING;
  /** Present when the lead travels as its residual against the prediction from I and II. */
  predictor?: string;
  /** base64 of zlib of the first differences, int16 little-endian. */
  data: string;
}

const INT16 = { min: -32768, max: 32767 };

/** First differences modulo 2^16 (the first value as it is), as int16 little-endian bytes. */
function differences(values: ArrayLike<number>): Buffer {
  const out = Buffer.alloc(values.length * 2);
  let previous = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    out.writeInt16LE(((v - previous) << 16) >> 16, i * 2);
    previous = v;
  }
  return out;
}

/** The residuals of a limb lead against its prediction, or undefined when one falls outside int16. */
function residuals(lead: IntLead, one: Int16Array, two: Int16Array): Int16Array | undefined {
  const { k, f } = PREDICTORS[lead.name as PredictedLead];
  const out = new Int16Array(lead.samples.length);
  for (let i = 0; i < out.length; i++) {
    const r = k * lead.samples[i]! - f(one[i]!, two[i]!);
    if (r < INT16.min || r > INT16.max) return undefined;
    out[i] = r;
  }
  return out;
}

function pack(values: ArrayLike<number>): string {
  return deflateSync(differences(values)).toString("base64");
}

/**
 * Encodes the leads of one ECG. III, aVR, aVL and aVF travel as residuals against I and II when
 * all three share the lead's µV per unit and length and the residual is the smaller (a cart that
 * computes them, as most do, leaves residuals of 0 or ±1); any other lead as its own samples.
 */
export function encodeLeads(leads: IntLead[]): CompactLead[] {
  const one = leads.find((l) => l.name === "I");
  const two = leads.find((l) => l.name === "II");
  return leads.map((lead) => {
    let data = pack(lead.samples);
    let predictor: string | undefined;
    if (
      lead.name in PREDICTORS &&
      one &&
      two &&
      one.uvPerUnit === lead.uvPerUnit &&
      two.uvPerUnit === lead.uvPerUnit &&
      one.samples.length === lead.samples.length &&
      two.samples.length === lead.samples.length
    ) {
      const r = residuals(lead, one.samples, two.samples);
      const packed = r && pack(r);
      if (packed !== undefined && packed.length < data.length) {
        data = packed;
        predictor = PREDICTOR_NAMES[lead.name as PredictedLead];
      }
    }
    return {
      name: lead.name,
      uvPerUnit: lead.uvPerUnit,
      ...(lead.derived ? { derived: true as const } : {}),
      n: lead.samples.length,
      encoding: LEAD_ENCODING,
      ...(predictor ? { predictor } : {}),
      data,
    };
  });
}

/** What is wrong with a lead that cannot be decoded: a clear error, naming the lead. */
export class LeadDecodeError extends Error {}

/** The int16 values a lead's `data` holds (its samples, or its residuals when it has a predictor). */
function unpack(lead: CompactLead): Int16Array {
  let bytes: Buffer;
  try {
    bytes = inflateSync(Buffer.from(lead.data, "base64"), { maxOutputLength: lead.n * 2 + 1 });
  } catch (err) {
    throw new LeadDecodeError(`lead ${lead.name}: data is not zlib (${(err as Error).message})`);
  }
  if (bytes.length !== lead.n * 2)
    throw new LeadDecodeError(`lead ${lead.name}: ${bytes.length} bytes where n = ${lead.n} needs ${lead.n * 2}`);
  const out = new Int16Array(lead.n);
  let v = 0;
  for (let i = 0; i < lead.n; i++) {
    v = ((v + bytes.readInt16LE(i * 2)) << 16) >> 16;
    out[i] = v;
  }
  return out;
}

/** Decodes every lead of an ECG (the predicted ones from I and II), by name. */
export function decodeLeads(leads: CompactLead[]): Map<string, Int16Array> {
  const out = new Map<string, Int16Array>();
  for (const lead of leads) {
    if (lead.encoding !== LEAD_ENCODING)
      throw new LeadDecodeError(`lead ${lead.name}: unknown encoding ${JSON.stringify(lead.encoding)}`);
    if (!lead.predictor) out.set(lead.name, unpack(lead));
  }
  for (const lead of leads) {
    if (!lead.predictor) continue;
    const name = (Object.keys(PREDICTOR_NAMES) as PredictedLead[]).find((k) => PREDICTOR_NAMES[k] === lead.predictor);
    const one = out.get("I");
    const two = out.get("II");
    if (!name || name !== lead.name)
      throw new LeadDecodeError(`lead ${lead.name}: unknown predictor ${lead.predictor}`);
    if (!one || !two || one.length !== lead.n || two.length !== lead.n)
      throw new LeadDecodeError(`lead ${lead.name}: predicted from I and II, which are missing or of another length`);
    const r = unpack(lead);
    const { k, f } = PREDICTORS[name];
    const samples = new Int16Array(lead.n);
    for (let i = 0; i < lead.n; i++) samples[i] = (r[i]! + f(one[i]!, two[i]!)) / k;
    out.set(lead.name, samples);
  }
  return out;
}
