// GE MUSE resting ECG XML ("RestingECG", the export of GE's MUSE cardiology system and of MAC carts
// sending to it) to the normalized 12-lead ECG.
//
// Element names are those of the exports themselves (../shared/fixtures/real-world/ecg, MuseVersion 9,
// ISO-8859-1, `<!DOCTYPE RestingECG SYSTEM "restecg.dtd">`), with the demographics and diagnosis
// elements as GE's MUSE XML exports name them (docs/decisions/0011-ecg-file-formats.md):
//   MuseInfo/MuseVersion
//   PatientDemographics/{PatientID, PatientLastName, PatientFirstName, Gender, DateofBirth (MM-DD-YYYY)}
//   TestDemographics/{AcquisitionDevice, AcquisitionSoftwareVersion, CartNumber, AcquisitionDate
//     (MM-DD-YYYY), AcquisitionTime (HH:MM:SS), device local time}
//   RestingECGMeasurements/{VentricularRate, PRInterval, QRSDuration, QTInterval, QTCorrected, PAxis,
//     RAxis, TAxis, QTcFrederica} (ms, degrees); QRSTimesTypes/GlobalRR, PharmaData/PharmaRRinterval (ms)
//   Diagnosis (else OriginalDiagnosis)/DiagnosisStatement/{StmtFlag, StmtText}: a statement line ends at
//     a StmtFlag ENDSLINE
//   Waveform/{WaveformType Rhythm | Median, SampleBase, SampleExponent: fs = SampleBase × 10^SampleExponent}
//   Waveform/LeadData/{LeadID, LeadSampleCountTotal, LeadByteCountTotal, LeadSampleSize (2),
//     LeadAmplitudeUnitsPerBit, LeadAmplitudeUnits (MICROVOLTS), LeadDataCRC32, WaveFormData}
// WaveFormData is base64 of little-endian int16 samples; LeadDataCRC32 is the CRC-32 (ISO-HDLC, as
// zlib) of those bytes, checked here. Carts store 8 leads (I, II, V1–V6): III, aVR, aVL and aVF are
// then derived from I and II by protocols/ecg (flagged ECG_DERIVED).
import { compact, fail, finishEcg, limitsOf, normalizeLeadName, toNumber } from "../ecg/index.ts";
import type { EcgDecodeLimits, EcgDecodeResult, EcgLead, EcgMeasurements, EcgWarning } from "../ecg/index.ts";
import { child, children, path, readXml, text } from "../ecg/xml.ts";
import type { XmlNode } from "../ecg/xml.ts";

/**
 * Decodes a GE MUSE RestingECG XML file. Never throws: a file that is not a MUSE export, or whose
 * waveforms are damaged (bad base64, wrong byte count, CRC-32 mismatch), is an error result with a
 * code (MUSE_*) and a message naming the waveform and lead (never patient data).
 */
export function decodeGeMuse(bytes: Uint8Array, limits?: EcgDecodeLimits): EcgDecodeResult {
  try {
    return decode(bytes, limitsOf(limits));
  } catch (e) {
    return fail(
      "MUSE_INTERNAL",
      `decoder failure: ${e instanceof Error ? e.message.slice(0, 160) : String(e).slice(0, 160)}`,
    );
  }
}

/** µV per LeadAmplitudeUnits. */
const AMPLITUDE_UNITS: Readonly<Record<string, number>> = { MICROVOLTS: 1, MILLIVOLTS: 1000, NANOVOLTS: 0.001 };

function decode(bytes: Uint8Array, limits: Required<EcgDecodeLimits>): EcgDecodeResult {
  const xml = readXml(bytes, { maxBytes: limits.maxBytes, prefix: "MUSE", allowExternalDtd: true });
  if ("error" in xml) return { ok: false, error: xml.error };
  if (xml.root !== "RestingECG") {
    return fail(
      "MUSE_NOT_MUSE",
      `not a GE MUSE resting ECG: the document element is <${xml.root.slice(0, 40)}>, not <RestingECG>`,
    );
  }
  const doc = xml.node;
  const waveforms = children(doc, "Waveform");
  const typeOf = (w: XmlNode) => text(child(w, "WaveformType"))?.trim().toLowerCase();
  const rhythm = waveforms.find((w) => typeOf(w) === "rhythm");
  if (!rhythm)
    return fail(
      "MUSE_NO_RHYTHM",
      `the file has no <Waveform> of type Rhythm (${waveforms.length} waveform${waveforms.length === 1 ? "" : "s"}: ${waveforms.map((w) => typeOf(w) ?? "untyped").join(", ") || "none"})`,
      "Waveform",
    );

  const warnings: EcgWarning[] = [];
  const leads = readWaveform(rhythm, "Rhythm", limits, warnings);
  if ("error" in leads) return { ok: false, error: leads.error };

  let representativeBeats: { fs: number; leads: EcgLead[] } | undefined;
  const median = waveforms.find((w) => typeOf(w) === "median");
  if (median) {
    const beats = readWaveform(median, "Median", limits, warnings);
    if ("error" in beats)
      warnings.push({ code: "MUSE_MEDIAN_UNREADABLE", message: `median beats not used: ${beats.error.message}` });
    else representativeBeats = { fs: beats.fs, leads: beats.leads };
  }

  const version = text(path(doc, "MuseInfo", "MuseVersion"))?.trim();
  const ecg = finishEcg({
    format: "ge-muse",
    formatVersion: version ? `MUSE ${version.slice(0, 40)}` : "MUSE",
    ...acquisitionTime(doc),
    fs: leads.fs,
    leads: leads.leads,
    measurements: measurements(doc),
    statements: statements(doc),
    patient: patient(doc),
    device: device(doc),
    representativeBeats,
    warnings,
  });
  return { ok: true, ecg };
}

type WaveformResult = { fs: number; leads: EcgLead[] } | { error: { code: string; message: string; where: string } };

/** Per-lead offsets every export seen has at 0; their meaning otherwise is not documented to us. */
const OFFSETS = ["LeadTimeOffset", "LeadOffsetFirstSample", "FirstSampleBaseline"] as const;

function readWaveform(
  w: XmlNode,
  kind: string,
  limits: Required<EcgDecodeLimits>,
  warnings: EcgWarning[],
): WaveformResult {
  const base = toNumber(text(child(w, "SampleBase")));
  const exponent = toNumber(text(child(w, "SampleExponent"))) ?? 0;
  const fs = base === undefined ? undefined : base * 10 ** exponent;
  if (fs === undefined || !(fs > 0) || !Number.isFinite(fs) || fs > 100_000) {
    return {
      error: {
        code: "MUSE_NO_RATE",
        message: `the ${kind} waveform has no usable SampleBase/SampleExponent (${text(child(w, "SampleBase"))?.slice(0, 20) ?? "missing"})`,
        where: `Waveform[${kind}]/SampleBase`,
      },
    };
  }
  const data = children(w, "LeadData");
  if (data.length === 0)
    return {
      error: { code: "MUSE_NO_LEADS", message: `the ${kind} waveform has no <LeadData>`, where: `Waveform[${kind}]` },
    };
  if (data.length > limits.maxLeads)
    return {
      error: {
        code: "MUSE_TOO_MANY_LEADS",
        message: `the ${kind} waveform has ${data.length} leads, more than ${limits.maxLeads}`,
        where: `Waveform[${kind}]`,
      },
    };
  const leads: EcgLead[] = [];
  for (let i = 0; i < data.length; i++) {
    const lead = readLead(data[i]!, i, kind, limits);
    if ("error" in lead) return lead;
    leads.push(lead);
  }
  const offsets = data.flatMap((d, i) =>
    OFFSETS.map((name) => ({ lead: leads[i]!.name, name, v: toNumber(text(child(d, name))) ?? 0 })).filter(
      (o) => o.v !== 0,
    ),
  );
  if (offsets.length > 0) {
    warnings.push({
      code: "MUSE_OFFSETS",
      message: `${kind} leads with offsets other than 0, not applied (drawn as stored): ${offsets
        .slice(0, 6)
        .map((o) => `${o.lead} ${o.name} ${o.v}`)
        .join(", ")}${offsets.length > 6 ? ", …" : ""}`,
    });
  }
  return { fs, leads };
}

function readLead(
  d: XmlNode,
  index: number,
  kind: string,
  limits: Required<EcgDecodeLimits>,
): EcgLead | { error: { code: string; message: string; where: string } } {
  const id = text(child(d, "LeadID"))?.trim() ?? "";
  const where = `Waveform[${kind}]/LeadData[${index + 1}]${id ? ` (${id.slice(0, 12)})` : ""}`;
  const bad = (code: string, message: string) => ({
    error: { code, message: `${kind} lead ${id.slice(0, 12) || index + 1}: ${message}`, where },
  });
  if (!id) return bad("MUSE_NO_LEAD_ID", "no <LeadID>");
  const sampleSize = toNumber(text(child(d, "LeadSampleSize"))) ?? 2;
  if (sampleSize !== 2)
    return bad("MUSE_SAMPLE_SIZE", `LeadSampleSize ${sampleSize} is not supported (2-byte samples only)`);
  const unitName = text(child(d, "LeadAmplitudeUnits"))?.trim().toUpperCase() ?? "MICROVOLTS";
  const unit = AMPLITUDE_UNITS[unitName];
  if (unit === undefined)
    return bad("MUSE_UNITS", `LeadAmplitudeUnits "${unitName.slice(0, 20)}" is not a voltage this decoder knows`);
  const perBit = toNumber(text(child(d, "LeadAmplitudeUnitsPerBit")));
  if (perBit === undefined || !(perBit > 0))
    return bad(
      "MUSE_SCALE",
      `LeadAmplitudeUnitsPerBit "${text(child(d, "LeadAmplitudeUnitsPerBit"))?.slice(0, 20) ?? "missing"}" is not a positive number`,
    );

  const b64 = (text(child(d, "WaveFormData")) ?? "").replace(/\s+/g, "");
  if (b64 === "") return bad("MUSE_NO_DATA", "<WaveFormData> is empty");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0)
    return bad("MUSE_BASE64", "<WaveFormData> is not valid base64");
  if ((b64.length / 4) * 3 > limits.maxSamplesPerLead * 2 + 3)
    return bad("MUSE_TOO_LONG", `more than ${limits.maxSamplesPerLead} samples`);
  const blob = new Uint8Array(Buffer.from(b64, "base64"));

  const byteCount = toNumber(text(child(d, "LeadByteCountTotal")));
  if (byteCount !== undefined && byteCount !== blob.length)
    return bad("MUSE_BYTE_COUNT", `LeadByteCountTotal says ${byteCount} bytes, <WaveFormData> holds ${blob.length}`);
  if (blob.length % 2 !== 0)
    return bad("MUSE_BYTE_COUNT", `<WaveFormData> holds ${blob.length} bytes, not a whole number of 2-byte samples`);
  const count = toNumber(text(child(d, "LeadSampleCountTotal")));
  if (count !== undefined && count !== blob.length / 2)
    return bad(
      "MUSE_SAMPLE_COUNT",
      `LeadSampleCountTotal says ${count} samples, <WaveFormData> holds ${blob.length / 2}`,
    );
  const crc = toNumber(text(child(d, "LeadDataCRC32")));
  if (crc !== undefined && crc32(blob) !== crc)
    return bad(
      "MUSE_CRC",
      `the waveform data fail their CRC-32 check (LeadDataCRC32 ${crc}, computed ${crc32(blob)}): the file is damaged`,
    );

  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const samples = new Int16Array(blob.length / 2);
  for (let i = 0; i < samples.length; i++) samples[i] = view.getInt16(2 * i, true);
  return { name: normalizeLeadName(id) ?? id, samples, uvPerUnit: perBit * unit };
}

/** CRC-32 as zlib and ISO-HDLC define it (reflected polynomial 0xEDB88320, initial and final XOR 0xFFFFFFFF). */
const CRC32_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC32_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** MM-DD-YYYY (as MUSE writes dates) to YYYY-MM-DD; anything else as it is. */
function museDate(s: string | undefined): string | undefined {
  if (!s) return undefined;
  const m = /^(\d{2})-(\d{2})-(\d{4})$/.exec(s.trim());
  return m ? `${m[3]}-${m[1]}-${m[2]}` : s.trim();
}

function acquisitionTime(doc: XmlNode): { acquiredAtRaw?: string } {
  const t = child(doc, "TestDemographics");
  const date = museDate(text(child(t, "AcquisitionDate")));
  const time = text(child(t, "AcquisitionTime"))?.trim();
  // The cart's local time without a UTC offset: the core corrects it against the device clock.
  return date ? { acquiredAtRaw: time ? `${date}T${time}` : date } : {};
}

const MEASUREMENT_ELEMENTS: readonly [keyof EcgMeasurements, string][] = [
  ["heartRate", "VentricularRate"],
  ["prMs", "PRInterval"],
  ["qrsMs", "QRSDuration"],
  ["qtMs", "QTInterval"],
  ["qtcMs", "QTCorrected"],
  ["qtcFridericiaMs", "QTcFrederica"],
  ["pAxisDeg", "PAxis"],
  ["qrsAxisDeg", "RAxis"],
  ["tAxisDeg", "TAxis"],
];

/** The confirmed measurements (RestingECGMeasurements), else those the cart made (Original…). */
function measurements(doc: XmlNode): EcgMeasurements {
  const scopes = [child(doc, "RestingECGMeasurements"), child(doc, "OriginalRestingECGMeasurements")].filter(
    (s): s is XmlNode => s !== undefined,
  );
  const m: EcgMeasurements = {};
  for (const [key, name] of MEASUREMENT_ELEMENTS) {
    for (const scope of scopes) {
      const v = toNumber(text(child(scope, name)));
      if (v !== undefined) {
        m[key] = v;
        break;
      }
    }
  }
  const rr =
    toNumber(text(path(doc, "PharmaData", "PharmaRRinterval"))) ??
    toNumber(text(path(doc, "QRSTimesTypes", "GlobalRR")));
  if (rr !== undefined && rr > 0) m.rrMs = rr;
  return m;
}

/** Statement lines: texts joined until a StmtFlag ENDSLINE; the confirmed Diagnosis, else the cart's. */
function statements(doc: XmlNode): string[] {
  for (const name of ["Diagnosis", "OriginalDiagnosis"]) {
    const out: string[] = [];
    let line: string[] = [];
    const flush = () => {
      const s = line.join(" ").replace(/\s+/g, " ").trim();
      if (s) out.push(s);
      line = [];
    };
    for (const st of children(child(doc, name), "DiagnosisStatement").slice(0, 500)) {
      const t = text(child(st, "StmtText"));
      if (t) line.push(t);
      if (children(st, "StmtFlag").some((f) => text(f)?.trim().toUpperCase() === "ENDSLINE")) flush();
    }
    flush();
    if (out.length > 0) return out;
  }
  return [];
}

function patient(doc: XmlNode) {
  const p = child(doc, "PatientDemographics");
  if (!p) return undefined;
  const name = [text(child(p, "PatientLastName")), text(child(p, "PatientFirstName"))]
    .map((s) => s?.trim())
    .filter(Boolean)
    .join(", ");
  return compact({
    id: text(child(p, "PatientID"))?.trim(),
    name: name || undefined,
    sex: text(child(p, "Gender"))?.trim(),
    birthDate: museDate(text(child(p, "DateofBirth"))),
  });
}

function device(doc: XmlNode) {
  const t = child(doc, "TestDemographics");
  return compact({
    make: "GE",
    model: text(child(t, "AcquisitionDevice"))?.trim(),
    serial: text(path(doc, "PharmaData", "PharmaCartID"))?.trim() ?? text(child(t, "CartNumber"))?.trim(),
    software: text(child(t, "AcquisitionSoftwareVersion"))?.trim(),
  });
}
