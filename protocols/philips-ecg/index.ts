// Philips resting ECG XML: SierraECG 1.03 (HeartStart MRx, older PageWriters; UTF-8) and
// PhilipsECG 1.04 / 1.04.01 (PageWriter TC, IntelliSpace ECG; UTF-16LE with a byte-order mark).
//
// Element names are those of the exports themselves (../shared/fixtures/philips-sierraecg, and the
// schemas SierraECGSchema_1_03.xsd / SierraECGSchema_1_04_01.xsd published with sierra-ecg-tools):
//   restingecgdata/documentinfo/{documenttype, documentversion}
//   dataacquisition@date,@time; dataacquisition/machine (model; @machineid, @detaildescription)
//   dataacquisition/signalcharacteristics/{samplingrate, signalresolution (1.03) | resolution (1.04) in µV,
//     acquisitiontype, numberchannelsallocated}
//   waveforms/parsedwaveforms (base64; 1.03: @compressmethod="XLI" @durationperchannel ms;
//     1.04: @compression="XLI" @leadlabels @numberofleads @durationperchannel @samplespersecond @resolution)
//   waveforms/repbeats@samplespersec,@resolution / repbeat@leadname (1.03: base64 text;
//     1.04: waveform child), uncompressed little-endian int16
//   patient/generalpatientdata/{patientid, name/{lastname, firstname}, sex, age/dateofbirth}
//   interpretations/interpretation: measurements (heartrate, meanprint, meanqrsdur, meanqtint,
//     meanqtc, pfrontaxis, qrsfrontaxis, tfrontaxis; 1.04 also rrint, print, qrsdur, qtint, qtcb) and
//     statements (statement/{leftstatement, rightstatement}; else 1.04's coded
//     unparsedstatement/{lhsstatement, rhsstatement}), severity.
//
// XLI stores III, aVR, aVL and aVF as the difference from what I and II predict; the device's leads
// are rebuilt as (integer halves rounded down, as the device does):
//   III = II − I − III′, aVR = −aVR′ − ⌊(I+II)/2⌋, aVL = ⌊(I − III)/2⌋ − aVL′, aVF = ⌊(II + III)/2⌋ − aVF′.
// These are the leads as the cart stored them, not leads vitalgate derived: no ECG_DERIVED warning.
import {
  compact,
  fail,
  finishEcg,
  limitsOf,
  normalizeLeadName,
  packSamples,
  STANDARD_LEADS,
  toNumber,
} from "../ecg/index.ts";
import type { EcgDecodeLimits, EcgDecodeResult, EcgLead, EcgMeasurements, EcgWarning } from "../ecg/index.ts";
import { attr, child, children, findAll, path, readXml, text } from "../ecg/xml.ts";
import type { XmlNode } from "../ecg/xml.ts";
import { xliDecode } from "./xli.ts";

export { xliDecode, xliLzw, xliUndelta, xliUnpack } from "./xli.ts";

/** Document types and versions this decoder has been checked against. */
export const PHILIPS_SUPPORTED: Readonly<Record<string, readonly string[]>> = {
  SierraECG: ["1.03", "1.04", "1.04.01"],
  PhilipsECG: ["1.03", "1.04", "1.04.01"],
};

/** Most XLI chunks read: the format holds up to 16 channels (12 leads + 4 unused). */
const MAX_CHUNKS = 16;

/**
 * Decodes a Philips SierraECG / PhilipsECG XML file into the normalized 12-lead ECG. Never throws:
 * an unreadable or unsupported file is an error result with a code (PHILIPS_*) and a message that
 * names what is wrong (never patient data).
 */
export function decodePhilipsEcg(bytes: Uint8Array, limits?: EcgDecodeLimits): EcgDecodeResult {
  try {
    return decode(bytes, limitsOf(limits));
  } catch (e) {
    // A bug of ours, not the file's: still an error result, never a throw.
    return fail(
      "PHILIPS_INTERNAL",
      `decoder failure: ${e instanceof Error ? e.message.slice(0, 160) : String(e).slice(0, 160)}`,
    );
  }
}

function decode(bytes: Uint8Array, limits: Required<EcgDecodeLimits>): EcgDecodeResult {
  const xml = readXml(bytes, { maxBytes: limits.maxBytes, prefix: "PHILIPS" });
  if ("error" in xml) return { ok: false, error: xml.error };
  if (xml.root !== "restingecgdata") {
    return fail(
      "PHILIPS_NOT_PHILIPS",
      `not a Philips resting ECG: the document element is <${xml.root.slice(0, 40)}>, not <restingecgdata>`,
    );
  }
  const doc = xml.node;
  const docType = text(path(doc, "documentinfo", "documenttype"))?.trim() ?? "(none)";
  const docVersion = text(path(doc, "documentinfo", "documentversion"))?.trim() ?? "(none)";
  if (!PHILIPS_SUPPORTED[docType]?.includes(docVersion)) {
    return fail(
      "PHILIPS_UNSUPPORTED",
      `Files of type ${docType.slice(0, 40)} ${docVersion.slice(0, 20)} are unsupported (vitalgate reads SierraECG 1.03 and PhilipsECG 1.04, 1.04.01)`,
      "documentinfo",
    );
  }

  const signal = path(doc, "dataacquisition", "signalcharacteristics");
  const waveforms = child(doc, "waveforms");
  const parsed = child(waveforms, "parsedwaveforms");
  if (!parsed) return fail("PHILIPS_NO_WAVEFORMS", "the file has no <parsedwaveforms>", "waveforms");

  const fs = toNumber(attr(parsed, "samplespersecond")) ?? toNumber(text(child(signal, "samplingrate")));
  if (fs === undefined || !(fs > 0) || fs > 100_000)
    return fail("PHILIPS_NO_RATE", "no usable sampling rate (signalcharacteristics/samplingrate)", "samplingrate");
  const uvPerUnit =
    toNumber(attr(parsed, "resolution")) ??
    toNumber(text(child(signal, "signalresolution"))) ??
    toNumber(text(child(signal, "resolution")));
  const warnings: EcgWarning[] = [];
  const scale = uvPerUnit ?? 5;
  if (uvPerUnit === undefined)
    warnings.push({
      code: "PHILIPS_NO_RESOLUTION",
      message: "no signal resolution in the file: assumed 5 µV per unit, the Philips default",
    });

  const durationMs = toNumber(attr(parsed, "durationperchannel"));
  const expected = durationMs !== undefined && durationMs > 0 ? Math.round((durationMs * fs) / 1000) : undefined;
  if (expected !== undefined && expected > limits.maxSamplesPerLead) {
    return fail(
      "PHILIPS_TOO_LONG",
      `durationperchannel ${durationMs} ms at ${fs} Hz is more than ${limits.maxSamplesPerLead} samples per lead`,
      "parsedwaveforms",
    );
  }

  const labels = leadLabels(parsed, signal);
  if (labels.length > limits.maxLeads)
    return fail("PHILIPS_TOO_MANY_LEADS", `${labels.length} leads declared, more than ${limits.maxLeads}`);

  const encoding = attr(parsed, "dataencoding") ?? "Base64";
  if (encoding.toLowerCase() !== "base64")
    return fail(
      "PHILIPS_ENCODING",
      `waveform data encoding "${encoding.slice(0, 40)}" is not supported (Base64 only)`,
      "parsedwaveforms",
    );
  const compression =
    attr(parsed, "compressmethod") ??
    attr(parsed, "compression") ??
    (attr(parsed, "compressflag") === "False" ? "Uncompressed" : "Uncompressed");
  const blob = base64(text(parsed) ?? "");
  if (blob.length === 0) return fail("PHILIPS_NO_WAVEFORMS", "<parsedwaveforms> is empty", "parsedwaveforms");

  const perLead = expected ?? limits.maxSamplesPerLead;
  let raw: Int32Array[];
  if (compression.toUpperCase() === "XLI") {
    const xli = xliDecode(blob, {
      maxChunks: MAX_CHUNKS,
      maxOutputBytes: 2 * Math.min(limits.maxSamplesPerLead, perLead + 4096) + 2,
    });
    if ("error" in xli) return { ok: false, error: xli.error };
    raw = xli.leads;
  } else if (compression === "Uncompressed" || compression === "None") {
    if (expected === undefined)
      return fail(
        "PHILIPS_NO_DURATION",
        "uncompressed waveforms without durationperchannel cannot be split into leads",
        "parsedwaveforms",
      );
    raw = splitUncompressed(blob, labels.length, expected);
  } else {
    return fail(
      "PHILIPS_COMPRESSION",
      `waveform compression "${compression.slice(0, 40)}" is not supported (XLI or uncompressed)`,
      "parsedwaveforms",
    );
  }
  if (raw.length < labels.length) {
    return fail(
      "PHILIPS_TRUNCATED",
      `${labels.length} leads declared but the waveform data holds ${raw.length}`,
      "parsedwaveforms",
    );
  }
  raw = raw
    .slice(0, labels.length)
    .map((r) => (expected !== undefined && r.length > expected ? r.subarray(0, expected) : r));
  const short = raw.map((r, i) => ({ r, i })).filter(({ r }) => expected !== undefined && r.length < expected);
  if (short.length > 0) {
    warnings.push({
      code: "PHILIPS_SHORT_LEAD",
      message: `leads shorter than durationperchannel (${expected} samples): ${short.map(({ r, i }) => `${labels[i]} ${r.length}`).join(", ")}`,
    });
  }

  if (compression.toUpperCase() === "XLI") rebuildLimbLeads(labels, raw);
  const leads: EcgLead[] = labels.map((name, i) => ({ name, samples: packSamples(raw[i]!), uvPerUnit: scale }));

  const ecg = finishEcg({
    format: "philips-xml",
    formatVersion: `${docType} ${docVersion}`,
    ...acquisitionTime(doc),
    fs,
    leads,
    measurements: measurements(doc),
    statements: statements(doc),
    patient: patient(doc),
    device: device(doc),
    representativeBeats: repbeats(waveforms, limits, warnings),
    warnings,
  });
  return { ok: true, ecg };
}

/** Lead names: 1.04's @leadlabels, else the standard order for a 12-lead acquisition. */
function leadLabels(parsed: XmlNode, signal: XmlNode | undefined): string[] {
  const declared = attr(parsed, "leadlabels")?.trim();
  if (declared) {
    const n = toNumber(attr(parsed, "numberofleads"));
    const list = declared.split(/\s+/).map((l) => normalizeLeadName(l) ?? l);
    return n !== undefined && n > 0 && n < list.length ? list.slice(0, n) : list;
  }
  const count =
    toNumber(text(child(signal, "numberchannelsallocated"))) ??
    toNumber(text(child(signal, "numberchannelsvalid"))) ??
    12;
  const n = Math.max(0, Math.min(MAX_CHUNKS, Math.floor(count)));
  return Array.from({ length: n }, (_, i) => STANDARD_LEADS[i] ?? `Channel ${i + 1}`);
}

function rebuildLimbLeads(labels: string[], raw: Int32Array[]): void {
  const at = (name: string) => labels.indexOf(name);
  const [i1, i2, i3, iR, iL, iF] = ["I", "II", "III", "aVR", "aVL", "aVF"].map(at);
  if (i1! < 0 || i2! < 0) return;
  const I = raw[i1!]!;
  const II = raw[i2!]!;
  const n = Math.min(I.length, II.length);
  const III = i3! >= 0 ? raw[i3!]! : undefined;
  if (III) for (let k = 0; k < Math.min(n, III.length); k++) III[k] = II[k]! - I[k]! - III[k]!;
  if (iR! >= 0) {
    const r = raw[iR!]!;
    for (let k = 0; k < Math.min(n, r.length); k++) r[k] = -r[k]! - Math.floor((I[k]! + II[k]!) / 2);
  }
  if (III) {
    if (iL! >= 0) {
      const l = raw[iL!]!;
      for (let k = 0; k < Math.min(n, l.length, III.length); k++) l[k] = Math.floor((I[k]! - III[k]!) / 2) - l[k]!;
    }
    if (iF! >= 0) {
      const f = raw[iF!]!;
      for (let k = 0; k < Math.min(n, f.length, III.length); k++) f[k] = Math.floor((II[k]! + III[k]!) / 2) - f[k]!;
    }
  }
}

function splitUncompressed(blob: Uint8Array, leads: number, perLead: number): Int32Array[] {
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const out: Int32Array[] = [];
  for (let l = 0; l < leads; l++) {
    const start = l * perLead * 2;
    const n = Math.max(0, Math.min(perLead, Math.floor((blob.length - start) / 2)));
    if (n === 0) break;
    const a = new Int32Array(n);
    for (let i = 0; i < n; i++) a[i] = view.getInt16(start + 2 * i, true);
    out.push(a);
  }
  return out;
}

function base64(s: string): Uint8Array {
  const clean = s.replace(/[^A-Za-z0-9+/=]/g, "");
  return new Uint8Array(Buffer.from(clean, "base64"));
}

function acquisitionTime(doc: XmlNode): { acquiredAtRaw?: string } {
  const acq = child(doc, "dataacquisition");
  const date = attr(acq, "date")?.trim();
  const time = attr(acq, "time")?.trim();
  // Local time of the cart, no UTC offset: the core corrects it against the device's clock skew.
  return date ? { acquiredAtRaw: time ? `${date}T${time}` : date } : {};
}

const MEASUREMENT_ELEMENTS: [keyof EcgMeasurements, string[]][] = [
  ["heartRate", ["heartrate", "meanventrate"]],
  ["rrMs", ["rrint", "meanrrint"]],
  ["prMs", ["meanprint", "print"]],
  ["qrsMs", ["meanqrsdur", "qrsdur"]],
  ["qtMs", ["meanqtint", "qtint"]],
  ["qtcMs", ["meanqtc", "qtcb"]],
  ["pAxisDeg", ["pfrontaxis"]],
  ["qrsAxisDeg", ["qrsfrontaxis"]],
  ["tAxisDeg", ["tfrontaxis"]],
];

/**
 * The interpretation's measurements (what the cart printed), else the global ones. Per-lead values
 * (under leadmeasurements) are never taken for these global figures.
 */
function measurements(doc: XmlNode): EcgMeasurements {
  const interp = path(doc, "interpretations", "interpretation");
  const scopes = [
    child(interp, "interpretationmeasurements"),
    child(interp, "globalmeasurements"),
    path(doc, "measurements", "globalmeasurements"),
    path(doc, "internalmeasurements", "crossleadmeasurements"),
  ].filter((s): s is XmlNode => s !== undefined);
  const m: EcgMeasurements = {};
  for (const [key, names] of MEASUREMENT_ELEMENTS) {
    search: for (const scope of scopes) {
      for (const name of names) {
        const v = toNumber(text(child(scope, name)));
        if (v !== undefined) {
          m[key] = v;
          break search;
        }
      }
    }
  }
  return m;
}

function statements(doc: XmlNode): string[] {
  const interp = path(doc, "interpretations", "interpretation");
  if (!interp) return [];
  const out: string[] = [];
  const severity = text(child(interp, "severity"))?.trim();
  for (const s of children(interp, "statement")) {
    const line = [text(child(s, "leftstatement")), text(child(s, "rightstatement"))]
      .map((t) => t?.replace(/\s+/g, " ").trim())
      .filter(Boolean)
      .join(" — ");
    if (line) out.push(line);
  }
  // 1.04 also keeps the analysis program's coded statements (unparsedstatement, with placeholders
  // such as "V-rate ***-***"); the printed <statement> list wins when present.
  if (out.length === 0)
    for (const s of findAll(interp, "unparsedstatement", 8, 200)) {
      const line = [text(child(s, "lhsstatement")), text(child(s, "rhsstatement"))]
        .map((t) => t?.replace(/\s+/g, " ").trim())
        .filter(Boolean)
        .join(" — ");
      if (line) out.push(line);
    }
  if (severity) out.push(severity);
  return out;
}

function patient(doc: XmlNode) {
  const g = path(doc, "patient", "generalpatientdata");
  if (!g) return undefined;
  const name = [text(path(g, "name", "lastname")), text(path(g, "name", "firstname"))]
    .map((s) => s?.trim())
    .filter(Boolean)
    .join(", ");
  return compact({
    id: text(child(g, "patientid"))?.trim(),
    name: name || undefined,
    sex: text(child(g, "sex"))?.trim(),
    birthDate: text(path(g, "age", "dateofbirth"))?.trim(),
  });
}

function device(doc: XmlNode) {
  const machine = path(doc, "dataacquisition", "machine");
  if (!machine) return { make: "Philips" };
  // 1.04: detaildescription "Philips Medical Products:860315:A.07.04.03" = maker:product number:software.
  const detail = attr(machine, "detaildescription")
    ?.split(":")
    .map((s) => s.trim());
  return compact({
    make: detail?.[0] || "Philips",
    model: text(machine)?.trim(),
    serial: attr(machine, "machineid")?.trim(),
    software: detail?.[2],
  });
}

function repbeats(
  waveforms: XmlNode | undefined,
  limits: Required<EcgDecodeLimits>,
  warnings: EcgWarning[],
): { fs: number; leads: EcgLead[] } | undefined {
  const rb = child(waveforms, "repbeats");
  if (!rb) return undefined;
  const fs = toNumber(attr(rb, "samplespersec"));
  const resolution = toNumber(attr(rb, "resolution")) ?? 1;
  if (fs === undefined || !(fs > 0)) return undefined;
  const leads: EcgLead[] = [];
  for (const beat of children(rb, "repbeat").slice(0, limits.maxLeads)) {
    const name = attr(beat, "leadname") ?? `Channel ${leads.length + 1}`;
    const wave = child(beat, "waveform");
    const blob = base64(text(wave ?? beat) ?? "");
    const n = Math.min(Math.floor(blob.length / 2), limits.maxSamplesPerLead);
    if (n === 0) continue;
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    const samples = new Int16Array(n);
    for (let i = 0; i < n; i++) samples[i] = view.getInt16(2 * i, true);
    leads.push({ name: normalizeLeadName(name) ?? name, samples, uvPerUnit: resolution });
  }
  if (leads.length === 0) {
    warnings.push({ code: "PHILIPS_REPBEATS", message: "representative beats present but empty" });
    return undefined;
  }
  return { fs, leads };
}
