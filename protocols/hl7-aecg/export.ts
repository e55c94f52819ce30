// The normalized 12-lead ECG as an HL7 annotated ECG (aECG, HL7 v3 "AnnotatedECG", namespace
// urn:hl7-org:v3), so a center system that reads aECG can read what came from any cart. Written
// with fast-xml-parser's XMLBuilder; decodeHl7Aecg (./index.ts) reads it back to the same leads.
//
//   AnnotatedECG
//     id root = the UUID given; code 93000 (CPT-4), as the FDA example has it
//     effectiveTime/center                      acquisition time (HL7 TS), when known
//     componentOf/…/trialSubject                the patient, unless omitPatient
//     component/series  code RHYTHM (ActCode)
//       effectiveTime/low
//       author/seriesAuthor                     manufacturedSeriesDevice (id = serial, model,
//                                               software), manufacturerOrganization/name (make)
//       component/sequenceSet
//         sequence TIME_ABSOLUTE  GLIST_TS      head = acquisition time, increment = 1/fs s
//         sequence MDC_ECG_LEAD_* SLIST_PQ      origin 0 uV, scale = µV per unit, digits = samples
//       subjectOf/annotationSet                 the cart's measurements (PQ) and statements (ST)
//       derivation/derivedSeries                code REPRESENTATIVE_BEAT: the cart's median beats,
//                                               TIME_RELATIVE GLIST_PQ and SLIST_PQ as above
//
// Codes, checked against the FDA's example aECG (FDA_HL7_Example_aECG.xml, HL7 December 2003 ballot,
// updated 2005, in ../shared/fixtures/aecg) and the HL7 aECG implementation guide's vocabulary:
// lead codes MDC_ECG_LEAD_I, _II, _III, _AVR, _AVL, _AVF, _V1 … _V6 (the example's spelling: upper
// case AVR/AVL/AVF, where ISO/IEEE 11073-10101 writes aVR); sequence and series codes TIME_ABSOLUTE
// and RHYTHM from ActCode (2.16.840.1.113883.5.4); measurement codes MDC_ECG_TIME_PD_PR, _QRS, _QT,
// _QTc and MDC_ECG_ANGLE_P_FRONT, _QRS_FRONT, _T_FRONT as in the example's annotations;
// MDC_ECG_HEART_RATE and MDC_ECG_TIME_PD_RR from the MDC nomenclature (the example has neither) and
// as decodeHl7Aecg reads them; statements as MDC_ECG_INTERPRETATION_STATEMENT (ST) under an
// MDC_ECG_INTERPRETATION annotation. MDC is code system 2.16.840.1.113883.6.24.
//
// Pure: a string out, no I/O.
import { XMLBuilder } from "fast-xml-parser";
import { normalizeLeadName } from "../ecg/index.ts";
import type { Ecg12, EcgLead, EcgMeasurements } from "../ecg/index.ts";
import { AECG_NAMESPACE } from "./index.ts";

export interface AecgExportOptions {
  /** The document's id (AnnotatedECG/id/@root): a UUID. */
  id: string;
  /** Leave the patient out of the document. Default false: the center needs it to match the ECG to a case. */
  omitPatient?: boolean;
}

const MDC = { "@_codeSystem": "2.16.840.1.113883.6.24", "@_codeSystemName": "MDC" } as const;
const ACT_CODE = { "@_codeSystem": "2.16.840.1.113883.5.4", "@_codeSystemName": "ActCode" } as const;
const XSI = "http://www.w3.org/2001/XMLSchema-instance";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The aECG code of a lead: MDC_ECG_LEAD_I … _V6, aVR as MDC_ECG_LEAD_AVR; other channels MDC_ECG_LEAD_<name>. */
export function mdcLeadCode(name: string): string {
  const std = normalizeLeadName(name);
  if (std) return `MDC_ECG_LEAD_${std.toUpperCase()}`;
  return `MDC_ECG_LEAD_${name.replace(/[^A-Za-z0-9]+/g, "_")}`;
}

/** The measurements aECG has a code for, with the unit each is written in. */
const MEASUREMENTS: readonly [keyof EcgMeasurements, string, string][] = [
  ["heartRate", "MDC_ECG_HEART_RATE", "/min"],
  ["rrMs", "MDC_ECG_TIME_PD_RR", "ms"],
  ["prMs", "MDC_ECG_TIME_PD_PR", "ms"],
  ["qrsMs", "MDC_ECG_TIME_PD_QRS", "ms"],
  ["qtMs", "MDC_ECG_TIME_PD_QT", "ms"],
  ["qtcMs", "MDC_ECG_TIME_PD_QTc", "ms"],
  ["pAxisDeg", "MDC_ECG_ANGLE_P_FRONT", "deg"],
  ["qrsAxisDeg", "MDC_ECG_ANGLE_QRS_FRONT", "deg"],
  ["tAxisDeg", "MDC_ECG_ANGLE_T_FRONT", "deg"],
];

/**
 * Writes the ECG as HL7 aECG XML (UTF-8 text). Throws a TypeError when `id` is not a UUID or the
 * sampling rate is not a positive number: both are the caller's mistakes, not the file's.
 */
export function exportAecg(ecg: Ecg12, options: AecgExportOptions): string {
  if (!UUID.test(options.id)) throw new TypeError(`exportAecg: id must be a UUID, not "${options.id.slice(0, 40)}"`);
  if (!(ecg.fs > 0) || !Number.isFinite(ecg.fs))
    throw new TypeError(`exportAecg: sampling rate ${ecg.fs} is not a positive number`);
  const ts = hl7Time(ecg);

  const sequences: unknown[] = [
    {
      sequence: {
        code: { "@_code": "TIME_ABSOLUTE", ...ACT_CODE },
        value: {
          "@_xsi:type": "GLIST_TS",
          head: ts ? { "@_value": ts } : { "@_nullFlavor": "NI" },
          increment: { "@_value": String(1 / ecg.fs), "@_unit": "s" },
        },
      },
    },
  ];
  for (const lead of ecg.leads) sequences.push({ sequence: leadSequence(lead) });

  const series: Record<string, unknown> = {
    code: { "@_code": "RHYTHM", ...ACT_CODE, "@_displayName": "Rhythm Waveforms" },
    ...(ts ? { effectiveTime: { low: { "@_value": ts, "@_inclusive": "true" } } } : {}),
    ...seriesAuthor(ecg),
    component: { sequenceSet: { component: sequences } },
  };
  const annotations = annotationComponents(ecg);
  if (annotations.length > 0) series.subjectOf = { annotationSet: { component: annotations } };
  const beats = ecg.representativeBeats;
  if (beats && beats.leads.length > 0 && beats.fs > 0 && Number.isFinite(beats.fs)) {
    // The cart's median beats, as the FDA example carries them: a series derived from the rhythm.
    series.derivation = {
      derivedSeries: {
        code: { "@_code": "REPRESENTATIVE_BEAT", ...ACT_CODE, "@_displayName": "Representative Beat Waveforms" },
        component: {
          sequenceSet: {
            component: [
              {
                sequence: {
                  code: { "@_code": "TIME_RELATIVE", ...ACT_CODE },
                  value: {
                    "@_xsi:type": "GLIST_PQ",
                    head: { "@_value": "0", "@_unit": "s" },
                    increment: { "@_value": String(1 / beats.fs), "@_unit": "s" },
                  },
                },
              },
              ...beats.leads.map((lead) => ({ sequence: leadSequence(lead) })),
            ],
          },
        },
      },
    };
  }

  const doc = {
    "?xml": { "@_version": "1.0", "@_encoding": "UTF-8" },
    AnnotatedECG: {
      "@_xmlns": AECG_NAMESPACE,
      "@_xmlns:xsi": XSI,
      "#comment": " Written by vitalgate from a normalized 12-lead ECG (the cart's file travels beside it unchanged). ",
      id: { "@_root": options.id.toLowerCase() },
      code: { "@_code": "93000", "@_codeSystem": "2.16.840.1.113883.6.12", "@_codeSystemName": "CPT-4" },
      ...(ts ? { effectiveTime: { center: { "@_value": ts } } } : {}),
      ...(options.omitPatient ? {} : subject(ecg)),
      component: { series },
    },
  };
  const builder = new XMLBuilder({
    ignoreAttributes: false,
    attributeNamePrefix: "@_",
    textNodeName: "#text",
    commentPropName: "#comment",
    format: true,
    indentBy: "  ",
    suppressEmptyNode: true,
    suppressBooleanAttributes: false,
    processEntities: true,
  });
  return builder.build(doc) as string;
}

/**
 * One lead as SLIST_PQ. Digits must be integers: a lead with half units (derived aVR, aVL, aVF)
 * is written at twice the digits and half the scale; anything finer is rounded to a tenth of a unit.
 */
function leadSequence(lead: EcgLead): Record<string, unknown> {
  const factor = integerFactor(lead.samples);
  const digits = new Array<string>(lead.samples.length);
  for (let i = 0; i < lead.samples.length; i++) {
    const v = Math.round(lead.samples[i]! * factor);
    digits[i] = Number.isFinite(v) ? String(v) : "0";
  }
  return {
    ...(lead.derived
      ? { "#comment": ` ${lead.name} was derived by vitalgate from leads I and II: the cart did not record it ` }
      : {}),
    code: { "@_code": mdcLeadCode(lead.name), ...MDC },
    value: {
      "@_xsi:type": "SLIST_PQ",
      origin: { "@_value": "0", "@_unit": "uV" },
      scale: { "@_value": String(lead.uvPerUnit / factor), "@_unit": "uV" },
      digits: digits.join(" "),
    },
  };
}

function integerFactor(samples: ArrayLike<number>): number {
  for (const f of [1, 2]) {
    let ok = true;
    for (let i = 0; i < samples.length && ok; i++) {
      const v = samples[i]! * f;
      if (Number.isFinite(v) && !Number.isInteger(v)) ok = false;
    }
    if (ok) return f;
  }
  return 10;
}

function seriesAuthor(ecg: Ecg12): Record<string, unknown> {
  const d = ecg.device;
  if (!d) return {};
  return {
    author: {
      seriesAuthor: {
        manufacturedSeriesDevice: {
          id: d.serial ? { "@_extension": d.serial } : { "@_nullFlavor": "NI" },
          ...(d.model ? { manufacturerModelName: d.model } : {}),
          ...(d.software ? { softwareName: d.software } : {}),
        },
        ...(d.make ? { manufacturerOrganization: { name: d.make } } : {}),
      },
    },
  };
}

function annotationComponents(ecg: Ecg12): unknown[] {
  const out: unknown[] = [];
  const m = ecg.measurements ?? {};
  for (const [key, code, unit] of MEASUREMENTS) {
    const v = m[key];
    if (v === undefined || !Number.isFinite(v)) continue;
    out.push({
      annotation: {
        code: { "@_code": code, ...MDC },
        value: { "@_xsi:type": "PQ", "@_value": String(v), "@_unit": unit },
      },
    });
  }
  const statements = ecg.statements ?? [];
  if (statements.length > 0) {
    out.push({
      annotation: {
        code: { "@_code": "MDC_ECG_INTERPRETATION", ...MDC },
        component: statements.map((s) => ({
          annotation: {
            code: { "@_code": "MDC_ECG_INTERPRETATION_STATEMENT", ...MDC },
            value: { "@_xsi:type": "ST", "#text": xmlSafe(s) },
          },
        })),
      },
    });
  }
  return out;
}

function subject(ecg: Ecg12): Record<string, unknown> {
  const p = ecg.patient;
  if (!p) return {};
  const person = {
    ...(p.name ? { name: xmlSafe(p.name) } : {}),
    ...(p.sex ? { administrativeGenderCode: { "@_code": p.sex, "@_codeSystem": "2.16.840.1.113883.5.1" } } : {}),
    ...(p.birthDate ? { birthTime: { "@_value": p.birthDate } } : {}),
  };
  return {
    componentOf: {
      timepointEvent: {
        componentOf: {
          subjectAssignment: {
            subject: {
              trialSubject: {
                ...(p.id ? { id: { "@_extension": xmlSafe(p.id) } } : {}),
                ...(Object.keys(person).length > 0 ? { subjectDemographicPerson: person } : {}),
              },
            },
          },
        },
      },
    },
  };
}

/** Drops the characters XML 1.0 cannot carry at all (control characters); the builder escapes the rest. */
function xmlSafe(s: string): string {
  return s.replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, "");
}

/**
 * The acquisition time as HL7 TS (YYYYMMDDHHMMSS[.fff][+ZZZZ]): the device's own time when the
 * file gave it in a form we can read (DICOM DT and HL7 TS as they are; ISO 8601 rewritten), else
 * the UTC time with +0000, else undefined.
 */
export function hl7Time(ecg: Pick<Ecg12, "acquiredAt" | "acquiredAtRaw">): string | undefined {
  const raw = ecg.acquiredAtRaw?.trim();
  if (raw && /^\d{8,14}(\.\d{1,6})?([+-]\d{4})?$/.test(raw)) return raw;
  const iso = raw
    ? /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(raw)
    : null;
  if (iso) {
    const zone = iso[8] === undefined ? "" : iso[8] === "Z" ? "+0000" : iso[8].replace(":", "");
    return `${iso[1]}${iso[2]}${iso[3]}${iso[4]}${iso[5]}${iso[6] ?? ""}${iso[6] ? (iso[7] ?? "") : ""}${zone}`;
  }
  const utc = ecg.acquiredAt ? /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?Z$/.exec(ecg.acquiredAt) : null;
  if (utc) return `${utc[1]}${utc[2]}${utc[3]}${utc[4]}${utc[5]}${utc[6]}${utc[7] ?? ""}+0000`;
  return undefined;
}
