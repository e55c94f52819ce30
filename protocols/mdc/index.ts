// IEEE 11073-10101 (MDC) terms that patient monitors send most, as data.
//
// Numeric code = partition × 65536 + term code. Partition 2 = SCADA (measurements), 4 = DIM (units).
// Every numeric code below was checked against at least two of these, and agreed:
//   [S] ISO/IEEE 11073-10101:2004 Annex B tables as transcribed in wlbaker/mdrepo @ 766a390a,
//       intfcode/intellivue/Shared/Nomenclature/x73_nomenclature_medical_scada.h (term codes) and
//       iso_ieee_11073_part_10101_nomenclature_dimensions.h (unit codes).
//   [P] Philips IntelliVue Data Export Interface Programming Guide (part 451261001426) constants as
//       transcribed in wlbaker/mdrepo @ 766a390a, intfcode/intellivue/PhilipsIntellivueMP70/src/intellivue.h
//       (Philips NOM_* = MDC term codes of the same partitions).
//   [F] HL7 FHIR material using the MDC code system (urn:iso:std:iso:11073:10101, MDC nomenclature
//       2024-12-05 via tx.fhir.org): the MII ICU module value sets (medizininformatik-initiative/
//       kerndatensatzmodul-intensivmedizin @ f94ca2c5, mii-vs-icu-code-*-iso11073.json) and the
//       HL7 PHD / PoCD implementation guide examples (147842, 149530, 150020, 150021, 264864).
//   [E] IHE PCD-01 style messages in public code (numeric^refid^MDC in OBX-3), corroboration only.
// The source letters are kept beside each row. Not verified, so no numeric code: see UNVERIFIED.
// UCUM units per the UCUM specification (unitsofmeasure.org): "/min", "%", "mm[Hg]", "Cel", ...

export interface MdcTerm {
  /** Reference id, e.g. MDC_PULS_OXIM_SAT_O2. */
  refid: string;
  /** Partition 2 term code. */
  term: number;
  /** The UCUM unit the measurement usually comes in (used when a message sends none). */
  unit?: string;
  /** Which sources confirmed the code (see above). */
  sources: string;
}

const SCADA = 2;
const DIM = 4;

export function mdcCode(partition: number, term: number): number {
  return partition * 65536 + term;
}

/** Monitor numerics. */
export const MDC_METRICS: readonly MdcTerm[] = [
  // Heart and pulse rate
  { refid: "MDC_ECG_HEART_RATE", term: 16770, unit: "/min", sources: "S P F" }, // 147842
  { refid: "MDC_ECG_CARD_BEAT_RATE", term: 16770, unit: "/min", sources: "S P" }, // older synonym, same code
  { refid: "MDC_PULS_RATE", term: 18442, unit: "/min", sources: "S P F" }, // 149514
  { refid: "MDC_PULS_OXIM_PULS_RATE", term: 18458, unit: "/min", sources: "S F" }, // 149530, pulse rate from the oximeter
  { refid: "MDC_PLETH_PULS_RATE", term: 18466, unit: "/min", sources: "S P" }, // 149538
  { refid: "MDC_PULS_RATE_NON_INV", term: 18474, unit: "/min", sources: "S E" }, // 149546, from the NIBP cuff
  // Oximetry
  { refid: "MDC_PULS_OXIM_SAT_O2", term: 19384, unit: "%", sources: "S P F" }, // 150456
  { refid: "MDC_PULS_OXIM_PERF_REL", term: 19376, unit: "%", sources: "S P" }, // 150448, perfusion index
  // Blood pressure, non-invasive
  { refid: "MDC_PRESS_BLD_NONINV", term: 18948, unit: "mm[Hg]", sources: "S P F" }, // 150020
  { refid: "MDC_PRESS_BLD_NONINV_SYS", term: 18949, unit: "mm[Hg]", sources: "S P F" }, // 150021
  { refid: "MDC_PRESS_BLD_NONINV_DIA", term: 18950, unit: "mm[Hg]", sources: "S P E" }, // 150022
  { refid: "MDC_PRESS_BLD_NONINV_MEAN", term: 18951, unit: "mm[Hg]", sources: "S P E" }, // 150023
  { refid: "MDC_PRESS_CUFF_SYS", term: 19229, unit: "mm[Hg]", sources: "S E" }, // 150301
  { refid: "MDC_PRESS_CUFF_DIA", term: 19230, unit: "mm[Hg]", sources: "S E" }, // 150302
  { refid: "MDC_PRESS_CUFF_MEAN", term: 19231, unit: "mm[Hg]", sources: "S E" }, // 150303
  // Blood pressure, invasive
  { refid: "MDC_PRESS_BLD_SYS", term: 18945, unit: "mm[Hg]", sources: "S P F" }, // 150017
  { refid: "MDC_PRESS_BLD_DIA", term: 18946, unit: "mm[Hg]", sources: "S P F" }, // 150018
  { refid: "MDC_PRESS_BLD_MEAN", term: 18947, unit: "mm[Hg]", sources: "S P F" }, // 150019
  { refid: "MDC_PRESS_BLD_ART_SYS", term: 18961, unit: "mm[Hg]", sources: "S P" }, // 150033
  { refid: "MDC_PRESS_BLD_ART_DIA", term: 18962, unit: "mm[Hg]", sources: "S P" }, // 150034
  { refid: "MDC_PRESS_BLD_ART_MEAN", term: 18963, unit: "mm[Hg]", sources: "S P" }, // 150035
  { refid: "MDC_PRESS_BLD_ART_ABP_SYS", term: 18965, unit: "mm[Hg]", sources: "S P E" }, // 150037
  { refid: "MDC_PRESS_BLD_ART_ABP_DIA", term: 18966, unit: "mm[Hg]", sources: "S P" }, // 150038
  { refid: "MDC_PRESS_BLD_ART_ABP_MEAN", term: 18967, unit: "mm[Hg]", sources: "S P" }, // 150039
  { refid: "MDC_PRESS_BLD_ART_PULM_SYS", term: 18973, unit: "mm[Hg]", sources: "S P F" }, // 150045
  { refid: "MDC_PRESS_BLD_ART_PULM_DIA", term: 18974, unit: "mm[Hg]", sources: "S P F" }, // 150046
  { refid: "MDC_PRESS_BLD_ART_PULM_MEAN", term: 18975, unit: "mm[Hg]", sources: "S P F" }, // 150047
  { refid: "MDC_PRESS_BLD_VEN_CENT", term: 19012, unit: "mm[Hg]", sources: "S P F" }, // 150084
  { refid: "MDC_PRESS_BLD_VEN_CENT_MEAN", term: 19015, unit: "mm[Hg]", sources: "S P" }, // 150087
  // Respiration
  { refid: "MDC_RESP_RATE", term: 20490, unit: "/min", sources: "S P E" }, // 151562
  { refid: "MDC_AWAY_RESP_RATE", term: 20498, unit: "/min", sources: "S P" }, // 151570, airway (capnography/flow)
  { refid: "MDC_TTHOR_RESP_RATE", term: 20506, unit: "/min", sources: "S E" }, // 151578, impedance (ECG leads)
  { refid: "MDC_VENT_RESP_RATE", term: 20514, unit: "/min", sources: "S F" }, // 151586, ventilator rate
  { refid: "MDC_CO2_RESP_RATE", term: 20522, unit: "/min", sources: "S E" }, // 151594
  // Gases
  { refid: "MDC_AWAY_CO2_ET", term: 20656, unit: "mm[Hg]", sources: "S P" }, // 151728
  { refid: "MDC_CONC_AWAY_CO2_ET", term: 20636, unit: "mm[Hg]", sources: "S F" }, // 151708
  { refid: "MDC_AWAY_CO2_INSP_MIN", term: 20666, unit: "mm[Hg]", sources: "S P" }, // 151738
  { refid: "MDC_CONC_AWAY_O2_INSP", term: 21124, unit: "%", sources: "S P F" }, // 152196, FiO2
  // Temperature
  { refid: "MDC_TEMP", term: 19272, unit: "Cel", sources: "S P E" }, // 150344
  { refid: "MDC_TEMP_BODY", term: 19292, unit: "Cel", sources: "S E" }, // 150364
  { refid: "MDC_TEMP_ART", term: 19280, unit: "Cel", sources: "S P" }, // 150352
  { refid: "MDC_TEMP_CORE", term: 19296, unit: "Cel", sources: "S P F" }, // 150368
  { refid: "MDC_TEMP_ESOPH", term: 19300, unit: "Cel", sources: "S P F" }, // 150372
  { refid: "MDC_TEMP_SKIN", term: 19316, unit: "Cel", sources: "S P" }, // 150388
  { refid: "MDC_TEMP_TYMP", term: 19320, unit: "Cel", sources: "S F" }, // 150392
  { refid: "MDC_TEMP_RECT", term: 57348, unit: "Cel", sources: "S P F" }, // 188420
  { refid: "MDC_TEMP_ORAL", term: 57352, unit: "Cel", sources: "S F" }, // 188424
  { refid: "MDC_TEMP_BLD", term: 57364, unit: "Cel", sources: "S P F" }, // 188436
];

/**
 * Terms we recognise by name but give no numeric code, because the sources disagree or only one
 * has them: MDC_VENT_CONC_AWAY_O2_INSP ([S] 20848, [P] 0x7498 = 29848: conflict) and the axillary
 * temperature (MDC_TEMP_AXIL [S] 61708 vs MDC_TEMP_AXILLA: not settled). Devices that send them
 * with a numeric code keep the numeric code they sent.
 */
export const UNVERIFIED: Readonly<Record<string, { unit?: string }>> = {
  MDC_VENT_CONC_AWAY_O2_INSP: { unit: "%" },
  MDC_TEMP_AXIL: { unit: "Cel" },
  MDC_TEMP_AXILLA: { unit: "Cel" },
};

export interface MdcUnit {
  refid: string;
  term: number;
  ucum: string;
  sources: string;
}

/** MDC dimensions (partition 4) and their UCUM codes. */
export const MDC_UNITS: readonly MdcUnit[] = [
  { refid: "MDC_DIM_DIMLESS", term: 512, ucum: "1", sources: "S P" }, // 262656
  { refid: "MDC_DIM_PERCENT", term: 544, ucum: "%", sources: "S P E" }, // 262688
  { refid: "MDC_DIM_MILLI_L", term: 1618, ucum: "mL", sources: "S P" }, // 263762
  { refid: "MDC_DIM_X_G_PER_DL", term: 2112, ucum: "g/dL", sources: "S P" }, // 264256
  { refid: "MDC_DIM_SEC", term: 2176, ucum: "s", sources: "S P" }, // 264320
  { refid: "MDC_DIM_MILLI_SEC", term: 2194, ucum: "ms", sources: "S P" }, // 264338
  { refid: "MDC_DIM_PER_MIN", term: 2528, ucum: "/min", sources: "S P" }, // 264672
  { refid: "MDC_DIM_BEAT_PER_MIN", term: 2720, ucum: "/min", sources: "S P F" }, // 264864
  { refid: "MDC_DIM_RESP_PER_MIN", term: 2784, ucum: "/min", sources: "S P E" }, // 264928
  { refid: "MDC_DIM_X_L_PER_MIN", term: 3072, ucum: "L/min", sources: "S P" }, // 265216
  { refid: "MDC_DIM_KILO_PASCAL", term: 3843, ucum: "kPa", sources: "S P" }, // 265987
  { refid: "MDC_DIM_MMHG", term: 3872, ucum: "mm[Hg]", sources: "S P E" }, // 266016
  { refid: "MDC_DIM_CM_H2O", term: 3904, ucum: "cm[H2O]", sources: "S P" }, // 266048
  { refid: "MDC_DIM_MILLI_VOLT", term: 4274, ucum: "mV", sources: "S P" }, // 266418
  { refid: "MDC_DIM_FAHR", term: 4416, ucum: "[degF]", sources: "S P" }, // 266560
  { refid: "MDC_DIM_MILLI_MOLE_PER_L", term: 4722, ucum: "mmol/L", sources: "S P" }, // 266866
  { refid: "MDC_DIM_DEGC", term: 6048, ucum: "Cel", sources: "S P E" }, // 268192
];

/** Reference ids some devices use for the same units. */
const UNIT_ALIASES: Record<string, string> = {
  MDC_DIM_KILO_PA: "MDC_DIM_KILO_PASCAL",
  MDC_DIM_MM_HG: "MDC_DIM_MMHG",
  MDC_DIM_MILLI_SECOND: "MDC_DIM_MILLI_SEC",
};

/** Unit spellings seen in OBX-6 that are not UCUM, mapped to UCUM. */
export const UNIT_SPELLINGS: Readonly<Record<string, string>> = {
  bpm: "/min",
  "1/min": "/min",
  "/min": "/min",
  "{beats}/min": "/min",
  "{beat}/min": "/min",
  "{breaths}/min": "/min",
  rpm: "/min",
  brpm: "/min",
  "%": "%",
  mmhg: "mm[Hg]",
  "mm hg": "mm[Hg]",
  "mm[hg]": "mm[Hg]",
  kpa: "kPa",
  cmh2o: "cm[H2O]",
  "cm[h2o]": "cm[H2O]",
  "°c": "Cel",
  "℃": "Cel",
  degc: "Cel",
  cel: "Cel",
  "°f": "[degF]",
  degf: "[degF]",
  "l/min": "L/min",
  "ml/min": "mL/min",
  ml: "mL",
  l: "L",
  "ml/dl": "mL/dL",
  ms: "ms",
  s: "s",
  mv: "mV",
  "g/dl": "g/dL",
  "mmol/l": "mmol/L",
};

const METRIC_BY_REFID = new Map<string, MdcTerm>(MDC_METRICS.map((m) => [m.refid, m]));
const METRIC_BY_CODE = new Map<number, MdcTerm>();
for (const m of MDC_METRICS)
  if (!METRIC_BY_CODE.has(mdcCode(SCADA, m.term))) METRIC_BY_CODE.set(mdcCode(SCADA, m.term), m);
const UNIT_BY_REFID = new Map<string, MdcUnit>(MDC_UNITS.map((u) => [u.refid, u]));
const UNIT_BY_CODE = new Map<number, MdcUnit>(MDC_UNITS.map((u) => [mdcCode(DIM, u.term), u]));

/**
 * The partition a reference id's prefix places it in (IEEE 11073-10101: 1 object infrastructure,
 * holding attributes and device classes; 3 events; 4 dimensions), or undefined for prefixes that span
 * partitions. Agrees with every numeric code in the real captures and manuals named in vendors.ts
 * (68481 MDC_ATTR_EVENT_PHASE, 69854 MDC_DEV_METER_PRESS_BLD_VMD, 196616 MDC_EVT_ALARM, 266016 MDC_DIM_MMHG).
 */
export function partitionOfRefid(refid: string): number | undefined {
  if (refid.startsWith("MDC_ATTR_") || refid.startsWith("MDC_DEV_")) return 1;
  if (refid.startsWith("MDC_EVT_")) return 3;
  if (refid.startsWith("MDC_DIM_")) return DIM;
  return undefined;
}

export function metricByRefid(refid: string): { refid: string; mdc?: number; unit?: string } | undefined {
  const m = METRIC_BY_REFID.get(refid);
  if (m) return { refid: m.refid, mdc: mdcCode(SCADA, m.term), unit: m.unit };
  const u = UNVERIFIED[refid];
  return u ? { refid, ...u } : undefined;
}

export function metricByCode(code: number): { refid: string; mdc: number; unit?: string } | undefined {
  const m = METRIC_BY_CODE.get(code);
  return m ? { refid: m.refid, mdc: code, unit: m.unit } : undefined;
}

/** UCUM for an MDC unit given by reference id and/or numeric code. */
export function ucumForMdcUnit(refid: string, code?: number): string | undefined {
  const byRef = UNIT_BY_REFID.get(UNIT_ALIASES[refid] ?? refid);
  if (byRef) return byRef.ucum;
  return code === undefined ? undefined : UNIT_BY_CODE.get(code)?.ucum;
}

/** UCUM for a unit spelled as devices spell it, or undefined when not recognised. */
export function ucumForSpelling(unit: string): string | undefined {
  return UNIT_SPELLINGS[unit.trim().toLowerCase()];
}
