// HL7 annotated ECG (aECG, HL7 v3 "AnnotatedECG", namespace urn:hl7-org:v3; the FDA's format for
// ECGs in clinical trials, ANSI/HL7 V3 ECG R1-2004) to the normalized 12-lead ECG.
//
//   AnnotatedECG/effectiveTime           center | low | high | low+high (document time)
//   AnnotatedECG/component/series        code RHYTHM (the leads) or REPRESENTATIVE_BEAT;
//     series/derivation/derivedSeries    representative beats derived from the rhythm series
//     series/effectiveTime/low           start of the recording
//     series/author/seriesAuthor         manufacturedSeriesDevice (id, manufacturerModelName,
//                                        softwareName), manufacturerOrganization/name
//     series/component/sequenceSet/component/sequence
//        code TIME_ABSOLUTE | TIME_RELATIVE with value GLIST_TS / GLIST_PQ: head and increment (the
//        sampling interval, so fs = 1 / increment);
//        code MDC_ECG_LEAD_* with value SLIST_PQ: origin, scale and digits, value = origin + scale × digit
//   subjectOf/annotationSet/component/annotation   code MDC_ECG_* with PQ values (measurements) or
//                                                  text (interpretation statements)
//   componentOf/timepointEvent/componentOf/subjectAssignment/subject/trialSubject  the subject (patient)
//
// The XML is read with DTDs refused and sizes capped (protocols/ecg/xml.ts).
import { compact, fail, finishEcg, limitsOf, normalizeLeadName, packSamples, toNumber } from "../ecg/index.ts";
import type { EcgDecodeLimits, EcgDecodeResult, EcgLead, EcgMeasurements, EcgWarning } from "../ecg/index.ts";
import { attr, child, children, findAll, path, readXml, text } from "../ecg/xml.ts";
import type { XmlNode } from "../ecg/xml.ts";

export const AECG_NAMESPACE = "urn:hl7-org:v3";

/**
 * Decodes an HL7 aECG document. Never throws: a document that is not an aECG, is not well-formed,
 * declares a DTD or carries no rhythm waveforms is an error result with a code (AECG_*).
 */
export function decodeHl7Aecg(bytes: Uint8Array, limits?: EcgDecodeLimits): EcgDecodeResult {
  try {
    return decode(bytes, limitsOf(limits));
  } catch (e) {
    return fail(
      "AECG_INTERNAL",
      `decoder failure: ${e instanceof Error ? e.message.slice(0, 160) : String(e).slice(0, 160)}`,
    );
  }
}

const UNIT_UV: Readonly<Record<string, number>> = { uV: 1, µV: 1, mV: 1000, V: 1_000_000, nV: 0.001 };
const UNIT_S: Readonly<Record<string, number>> = { s: 1, ms: 0.001, us: 0.000001 };

interface SeriesLeads {
  fs: number;
  leads: EcgLead[];
  start?: string;
}

function decode(bytes: Uint8Array, limits: Required<EcgDecodeLimits>): EcgDecodeResult {
  const xml = readXml(bytes, { maxBytes: limits.maxBytes, prefix: "AECG" });
  if ("error" in xml) return { ok: false, error: xml.error };
  if (xml.root !== "AnnotatedECG") {
    return fail(
      "AECG_NOT_AECG",
      `not an HL7 aECG: the document element is <${xml.root.slice(0, 40)}>, not <AnnotatedECG> (${AECG_NAMESPACE})`,
    );
  }
  const doc = xml.node;
  const warnings: EcgWarning[] = [];
  const ns = xml.namespace;
  if (ns !== AECG_NAMESPACE)
    warnings.push({
      code: "AECG_NAMESPACE",
      message: `the AnnotatedECG element is in namespace "${(ns ?? "none").slice(0, 60)}", not ${AECG_NAMESPACE}`,
    });

  const series = children(doc, "component").flatMap((c) => children(c, "series"));
  const seriesCode = (s: XmlNode) => attr(child(s, "code"), "code") ?? "";
  const rhythmSeries =
    series.find((s) => seriesCode(s) === "RHYTHM") ?? series.find((s) => seriesCode(s) !== "REPRESENTATIVE_BEAT");
  if (!rhythmSeries)
    return fail(
      "AECG_NO_WAVEFORMS",
      "the aECG has no RHYTHM series (AnnotatedECG/component/series): no waveforms to read",
    );
  if (seriesCode(rhythmSeries) !== "RHYTHM")
    warnings.push({
      code: "AECG_SERIES_CODE",
      message: `leads taken from a series coded "${seriesCode(rhythmSeries).slice(0, 40) || "(none)"}", not RHYTHM`,
    });

  const rhythm = readSeries(rhythmSeries, limits, warnings, "rhythm");
  if ("error" in rhythm) return { ok: false, error: rhythm.error };

  const beatSeries =
    series.find((s) => seriesCode(s) === "REPRESENTATIVE_BEAT") ??
    children(rhythmSeries, "derivation")
      .flatMap((d) => children(d, "derivedSeries"))
      .find((s) => seriesCode(s) === "REPRESENTATIVE_BEAT");
  let representativeBeats: { fs: number; leads: EcgLead[] } | undefined;
  if (beatSeries) {
    const beats = readSeries(beatSeries, limits, [], "representative beat");
    if ("error" in beats)
      warnings.push({
        code: "AECG_BEATS_UNREADABLE",
        message: `representative beats not used: ${beats.error.message}`,
      });
    else representativeBeats = { fs: beats.fs, leads: beats.leads };
  }

  const raw = rhythm.start ?? firstTime(child(rhythmSeries, "effectiveTime")) ?? firstTime(child(doc, "effectiveTime"));
  const iso = raw === undefined ? undefined : hl7TimeToIso(raw);
  const ecg = finishEcg({
    format: "hl7-aecg",
    formatVersion: "HL7 v3 AnnotatedECG",
    ...(raw === undefined ? {} : iso ? { acquiredAt: iso, acquiredAtRaw: raw } : { acquiredAtRaw: raw }),
    fs: rhythm.fs,
    leads: rhythm.leads,
    ...annotations(doc),
    patient: patient(doc),
    device: device(rhythmSeries),
    representativeBeats,
    warnings,
  });
  return { ok: true, ecg };
}

function readSeries(
  series: XmlNode,
  limits: Required<EcgDecodeLimits>,
  warnings: EcgWarning[],
  what: string,
): SeriesLeads | { error: { code: string; message: string; where?: string } } {
  const sets = children(series, "component").flatMap((c) => children(c, "sequenceSet"));
  if (sets.length === 0)
    return { error: { code: "AECG_NO_WAVEFORMS", message: `the ${what} series has no sequenceSet` } };
  if (sets.length > 1)
    warnings.push({
      code: "AECG_SEQUENCE_SETS",
      message: `the ${what} series has ${sets.length} sequence sets: only the first is read`,
    });
  const sequences = children(sets[0]!, "component").flatMap((c) => children(c, "sequence"));
  let fs: number | undefined;
  let start: string | undefined;
  const leads: EcgLead[] = [];
  for (const seq of sequences) {
    const code = attr(child(seq, "code"), "code") ?? "";
    const value = child(seq, "value");
    const type = attr(value, "type") ?? "";
    if (code === "TIME_ABSOLUTE" || code === "TIME_RELATIVE") {
      const inc = child(value, "increment");
      const v = toNumber(attr(inc, "value"));
      const unit = attr(inc, "unit") ?? "s";
      const k = UNIT_S[unit];
      if (v === undefined || !(v > 0) || k === undefined) {
        return {
          error: {
            code: "AECG_NO_RATE",
            message: `the ${what} time sequence has no usable increment (value ${attr(inc, "value")?.slice(0, 20) ?? "missing"}, unit ${unit.slice(0, 10)})`,
            where: code,
          },
        };
      }
      fs = Math.round((1 / (v * k)) * 1e6) / 1e6;
      if (code === "TIME_ABSOLUTE" && type === "GLIST_TS") start = attr(child(value, "head"), "value");
      continue;
    }
    if (type !== "SLIST_PQ" && type !== "SLIST_INT") {
      warnings.push({
        code: "AECG_SEQUENCE_TYPE",
        message: `sequence ${code.slice(0, 40)} of type ${type.slice(0, 20) || "(none)"} skipped`,
      });
      continue;
    }
    if (leads.length >= limits.maxLeads)
      return {
        error: { code: "AECG_TOO_MANY_LEADS", message: `more than ${limits.maxLeads} sequences in the ${what} series` },
      };
    const lead = readLead(code, value!, type, limits);
    if ("error" in lead) return lead;
    leads.push(lead);
  }
  if (fs === undefined)
    return {
      error: {
        code: "AECG_NO_RATE",
        message: `the ${what} series has no TIME_ABSOLUTE/TIME_RELATIVE sequence with an increment: sampling rate unknown`,
      },
    };
  if (leads.length === 0)
    return { error: { code: "AECG_NO_WAVEFORMS", message: `the ${what} series has no lead sequences` } };
  return { fs, leads, start };
}

function readLead(
  code: string,
  value: XmlNode,
  type: string,
  limits: Required<EcgDecodeLimits>,
): EcgLead | { error: { code: string; message: string; where: string } } {
  const name = normalizeLeadName(code) ?? code.replace(/^MDC_ECG_LEAD_/, "");
  const digitsText = text(child(value, "digits")) ?? "";
  // A cheap upper bound before splitting: every digit needs at least two characters with its space.
  if (digitsText.length > limits.maxSamplesPerLead * 8) {
    return {
      error: {
        code: "AECG_TOO_LONG",
        message: `lead ${name.slice(0, 20)} has more than ${limits.maxSamplesPerLead} samples`,
        where: code,
      },
    };
  }
  const tokens = digitsText.split(/\s+/).filter((t) => t !== "");
  if (tokens.length > limits.maxSamplesPerLead)
    return {
      error: {
        code: "AECG_TOO_LONG",
        message: `lead ${name.slice(0, 20)} has ${tokens.length} samples, more than ${limits.maxSamplesPerLead}`,
        where: code,
      },
    };
  const digits = new Array<number>(tokens.length);
  for (let i = 0; i < tokens.length; i++) {
    const v = Number(tokens[i]);
    if (!Number.isFinite(v))
      return {
        error: {
          code: "AECG_BAD_DIGITS",
          message: `lead ${name.slice(0, 20)}: digit ${i + 1} "${tokens[i]!.slice(0, 12)}" is not a number`,
          where: code,
        },
      };
    digits[i] = v;
  }
  let uvPerUnit = 1;
  let origin = 0;
  if (type === "SLIST_PQ") {
    const scale = child(value, "scale");
    const originNode = child(value, "origin");
    const s = toNumber(attr(scale, "value"));
    const k = UNIT_UV[attr(scale, "unit") ?? "uV"];
    if (s === undefined || k === undefined || s === 0) {
      return {
        error: {
          code: "AECG_BAD_SCALE",
          message: `lead ${name.slice(0, 20)}: scale ${attr(scale, "value")?.slice(0, 20) ?? "missing"} ${attr(scale, "unit")?.slice(0, 10) ?? ""} is not a usable voltage`,
          where: code,
        },
      };
    }
    uvPerUnit = s * k;
    const o = toNumber(attr(originNode, "value")) ?? 0;
    const ko = UNIT_UV[attr(originNode, "unit") ?? "uV"] ?? 1;
    origin = o * ko;
  }
  // The model has no offset: an origin other than zero is folded into the samples (µV = (d + origin/scale) × scale).
  const shift = origin / uvPerUnit;
  const samples = shift === 0 ? packSamples(digits) : packSamples(digits.map((d) => d + shift));
  return { name, samples, uvPerUnit };
}

/** The first time stated: low, else center, else high, else a bare value. */
function firstTime(node: XmlNode | undefined): string | undefined {
  if (!node) return undefined;
  return (
    attr(child(node, "low"), "value") ??
    attr(child(node, "center"), "value") ??
    attr(child(node, "high"), "value") ??
    attr(node, "value")
  );
}

/** HL7 TS "YYYYMMDDHHMMSS.UUUU[+|-ZZZZ]" to ISO 8601 UTC when the offset is given; else undefined. */
export function hl7TimeToIso(ts: string): string | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(?:\.(\d{1,6}))?([+-]\d{4})$/.exec(ts.trim());
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? "0"].map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const probe = new Date(Date.UTC(y, mo - 1, d));
  if (probe.getUTCMonth() !== mo - 1 || probe.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) return undefined;
  const ms = m[7] ? Math.round(Number(`0.${m[7]}`) * 1000) : 0;
  const off = m[8]!;
  const offMin = (off.startsWith("-") ? -1 : 1) * (Number(off.slice(1, 3)) * 60 + Number(off.slice(3, 5)));
  return new Date(Date.UTC(y, mo - 1, d, h, mi, s, ms) - offMin * 60_000).toISOString();
}

/** MDC codes of the global measurements (ISO/IEEE 11073-10102 annotated ECG nomenclature). */
const MEASUREMENT_CODES: Readonly<Record<string, keyof EcgMeasurements>> = {
  MDC_ECG_HEART_RATE: "heartRate",
  MDC_ECG_TIME_PD_RR: "rrMs",
  MDC_ECG_TIME_PD_PR: "prMs",
  MDC_ECG_TIME_PD_QRS: "qrsMs",
  MDC_ECG_TIME_PD_QT: "qtMs",
  MDC_ECG_TIME_PD_QTc: "qtcMs",
  MDC_ECG_ANGLE_P_FRONT: "pAxisDeg",
  MDC_ECG_ANGLE_QRS_FRONT: "qrsAxisDeg",
  MDC_ECG_ANGLE_T_FRONT: "tAxisDeg",
};

/**
 * Codes carts use beside the nomenclature's for a corrected QT (docs/decisions/0011-ecg-file-formats.md):
 * the correction named in the code (B Bazett, F Fridericia). A Bazett QTc stands for the QTc only when
 * the file has no MDC_ECG_TIME_PD_QTc.
 */
const QTC_VARIANTS: Readonly<Record<string, { key: keyof EcgMeasurements; fallback: boolean }>> = {
  MDC_ECG_TIME_PD_QTcB: { key: "qtcMs", fallback: true },
  MDC_ECG_TIME_PD_QTcF: { key: "qtcFridericiaMs", fallback: false },
};

/** A PQ value in ms: "s" and "ms" units, a bare number taken as the code's own unit. */
function pqValue(value: XmlNode | undefined, timed: boolean): number | undefined {
  const v = toNumber(attr(value, "value"));
  if (v === undefined) return undefined;
  return timed && attr(value, "unit") === "s" ? v * 1000 : v;
}

function annotations(doc: XmlNode): { measurements: EcgMeasurements; statements: string[] } {
  const measurements: EcgMeasurements = {};
  const fallbacks: EcgMeasurements = {};
  const statements: string[] = [];
  for (const a of findAll(doc, "annotation", 40, 20_000)) {
    const code = attr(child(a, "code"), "code") ?? "";
    const value = child(a, "value");
    const key = MEASUREMENT_CODES[code];
    const variant = QTC_VARIANTS[code];
    if (key !== undefined || variant !== undefined) {
      const timed = (key ?? variant!.key).endsWith("Ms");
      // A vendor may leave the coded annotation without a value and nest its own beneath it (Mindray
      // puts MINDRAY_ECG_TIME_PD_QTcH under MDC_ECG_TIME_PD_QTc): the first nested value is taken.
      const v =
        pqValue(value, timed) ??
        children(a, "component")
          .flatMap((c) => children(c, "annotation"))
          .map((n) => pqValue(child(n, "value"), timed))
          .find((x) => x !== undefined);
      if (v === undefined) continue;
      if (key !== undefined && measurements[key] === undefined) measurements[key] = v;
      else if (variant) {
        const target = variant.fallback ? fallbacks : measurements;
        if (target[variant.key] === undefined) target[variant.key] = v;
      }
      continue;
    }
    if (/INTERPRETATION/.test(code) || attr(value, "type") === "ST") {
      const t = text(value)?.replace(/\s+/g, " ").trim();
      if (t) statements.push(t);
    }
  }
  return { measurements: { ...fallbacks, ...measurements }, statements };
}

function patient(doc: XmlNode) {
  const subject = path(
    doc,
    "componentOf",
    "timepointEvent",
    "componentOf",
    "subjectAssignment",
    "subject",
    "trialSubject",
  );
  if (!subject) return undefined;
  const person = child(subject, "subjectDemographicPerson");
  const idNode = child(subject, "id");
  return compact({
    id: attr(idNode, "extension") ?? attr(idNode, "root"),
    name: text(child(person, "name"))?.trim(),
    sex: attr(child(person, "administrativeGenderCode"), "code"),
    birthDate: attr(child(person, "birthTime"), "value"),
  });
}

function device(series: XmlNode) {
  const author = path(series, "author", "seriesAuthor");
  if (!author) return undefined;
  const dev = child(author, "manufacturedSeriesDevice");
  return compact({
    make: text(path(author, "manufacturerOrganization", "name"))?.trim(),
    model: text(child(dev, "manufacturerModelName"))?.trim(),
    serial: attr(child(dev, "id"), "extension"),
    software: text(child(dev, "softwareName"))?.trim(),
  });
}
