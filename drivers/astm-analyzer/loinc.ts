// LOINC codes and UCUM units for the results point-of-care analysers send over ASTM, as data.
//
// An analyser names each result by its own local test id (the code component of R.3, E1394 §10.1.3:
// "^^^pH", "^^^Na+", "^^^^WBC^1"). The table below turns the local ids of the blood-gas panel and of
// the analysers in the shared captures into LOINC terms. A LOINC term names the specimen system
// (BldA arterial, BldV venous, BldC capillary, BldMV mixed venous, Bld blood unspecified, SerPl
// serum or plasma) and the property (moles or mass per volume): a code is given only when both fit
// the result —
//  - the system comes from the message: the order's specimen descriptor (O.16), a specimen word in
//    the result's own test id (R.3), or the analyser's sample-type result ("Sample type" on the epoc);
//    it is never assumed arterial. A blood-gas result whose sample type the message does not give is
//    blood, unspecified (Bld): LOINC's advice when the specimen travels in a field of its own
//    (forum.loinc.org "What LOINC codes for phlebotomy sites": map the analytes to the BLD terms);
//  - a whole-blood term (Bld) stands for an arterial, venous or capillary sample when no term for
//    that very system is listed (Bld is "blood, unspecified" in LOINC);
//  - a quantity the analyser corrected to the patient's temperature (pH(T), pCO2(T), pO2(T)) is a
//    LOINC component of its own ("...^^adjusted to patient's actual temperature"), never the code of
//    the value measured at 37 °C; where no such term is listed for the specimen, no code;
//  - the unit the analyser sends (converted to UCUM) must be one the term's property allows:
//    glucose in mmol/L gets no mass-per-volume code.
// Where no term fits, the result keeps the analyser's own code (`localCode`) and no `code`; a
// device's `codeMap` option adds or overrides mappings.
//
// Every code below was checked against public listings of LOINC (search of public pages, Nov-Dec 2026):
//   [L]  loinc.org pages: LOINC group LG11363-5 (sodium: 2947-0 Bld, 2951-2 SerPl, 32717-1 BldA);
//        LG7967-5 (glucose: 2339-0 Bld mass/vol, 2345-7 SerPl mass/vol); term 41650-3 (Chloride
//        [Moles/volume] in Arterial blood, member of the arterial gas and electrolytes panels).
//   [F]  HL7 FHIR US MCC eCare Plan IG example Observations (hl7.org/fhir/us/mcc): ph-lab-observation
//        code 2744-1 "pH of Arterial blood"; pCO2-arterial-observation "Carbon dioxide [Partial
//        pressure] in Arterial blood" (2019-8, the ABG panel 24336-0 member).
//   [H]  healthassure.in LOINC code pages (transcribing LOINC 2.82 fields): 2703-7 Oxygen [Partial
//        pressure] in Arterial blood; 1925-7 Base excess in Arterial blood by calculation; 2708-6
//        Oxygen saturation in Arterial blood; 1959-6 Bicarbonate [Moles/volume] in Blood; 47596-2
//        Calcium.ionized [Moles/volume] in Blood by ISE (how blood-gas analysers measure it); 2745-8
//        pH of Capillary blood; 34705-4 Carbon dioxide [Partial pressure] adjusted to patient's
//        actual temperature in Blood.
//   [V]  LOINC long common names as published in value sets and terminology bindings: the eCQM value
//        sets (VSAC, "eCQM Update 2025-05-08": 33254-4 pH of Arterial blood adjusted to patient's
//        actual temperature; 32771-8 Carbon dioxide [Partial pressure] adjusted to patient's actual
//        temperature in Arterial blood; 19255-9 Oxygen [Partial pressure] adjusted to patient's
//        actual temperature in Arterial blood); the openEHR blood-gas template of the German NUM
//        (2746-6 pH of Venous blood; 19213-8 pH of Mixed venous blood; 11558-4 pH of Blood; 11557-6,
//        2020-6 Carbon dioxide [Partial pressure] in Blood, in Capillary blood; 11556-8, 2704-5
//        Oxygen [Partial pressure] in Blood, in Capillary blood; 20564-1 Oxygen saturation in
//        Blood); LOINC reference lists of blood-gas terms (2021-4 Carbon dioxide [Partial pressure]
//        in Venous blood; 2705-2 Oxygen [Partial pressure] in Venous blood; 19254-2 Oxygen [Partial
//        pressure] adjusted to patient's actual temperature in Blood; 11555-0 Base excess in Blood
//        by calculation).
//   [C]  Laboratory test catalogues that publish their LOINC codes: Mayo Clinic Laboratories
//        (HBA1C → 4548-4; LACS1 Lactate, P → 2524-7; HGB → 718-7), ARUP (0020002 Potassium, Serum or
//        Plasma → 2823-3; 0020024 Glucose, Serum or Plasma → 2345-7; 0020003 Chloride, Serum or
//        Plasma → 2075-0, as Michigan Medicine's catalogue too), Barnes-Jewish (sodium on a
//        Radiometer ABL800, whole blood → 2947-0).
// Not verified, so left out (the result keeps its local code): pH adjusted to the patient's
// temperature in blood unspecified, venous or capillary blood; pCO2 in mixed venous blood; the
// temperature-adjusted pO2/pCO2 of venous and capillary blood; bicarbonate in arterial blood
// (1960-4?), ionized calcium in serum/plasma (1994-3?), potassium in whole blood (6298-4?), lactate in
// whole blood (32693-4?), glucose in moles/volume (15074-8 / 14749-6?), hemoglobin in arterial blood
// (30350-3?), HbA1c by HPLC (17856-6?), CRP, and the Sysmex blood count (WBC, RBC, HCT, PLT, indices).
// UCUM units per the UCUM specification (unitsofmeasure.org): "mm[Hg]", "[pH]", "mmol/L", "g/dL", "%".

export type LoincSystem = "BldA" | "BldV" | "BldC" | "BldMV" | "Bld" | "SerPl";

export interface LoincTerm {
  code: string;
  /** LOINC long common name, shortened. */
  name: string;
  system: LoincSystem;
  /** UCUM units the term's property allows ("" for pH sent without a unit). */
  units: readonly string[];
  /** Which sources confirmed the code (see above). */
  sources: string;
}

export interface Analyte {
  /** Display name used in events. */
  name: string;
  /** The specimen system assumed when the order does not name one. */
  assume: LoincSystem;
  terms: readonly LoincTerm[];
}

const MOLAR = ["mmol/L"] as const;
const MMHG = ["mm[Hg]"] as const;
/** pH has no unit; analysers send none or "pH". */
const PH = ["[pH]", ""] as const;

/** Analytes by id, each with its verified LOINC terms (possibly none). */
export const ANALYTES: Readonly<Record<string, Analyte>> = {
  ph: {
    name: "pH",
    assume: "Bld",
    terms: [
      { code: "2744-1", name: "pH of Arterial blood", system: "BldA", units: PH, sources: "F H" },
      { code: "2746-6", name: "pH of Venous blood", system: "BldV", units: PH, sources: "V" },
      { code: "2745-8", name: "pH of Capillary blood", system: "BldC", units: PH, sources: "H V" },
      { code: "19213-8", name: "pH of Mixed venous blood", system: "BldMV", units: PH, sources: "V" },
      { code: "11558-4", name: "pH of Blood", system: "Bld", units: PH, sources: "V" },
    ],
  },
  pht: {
    name: "pH(T)",
    assume: "Bld",
    terms: [
      {
        code: "33254-4",
        name: "pH of Arterial blood adjusted to patient's actual temperature",
        system: "BldA",
        units: PH,
        sources: "V",
      },
    ],
  },
  pco2: {
    name: "pCO2",
    assume: "Bld",
    terms: [
      {
        code: "2019-8",
        name: "Carbon dioxide [Partial pressure] in Arterial blood",
        system: "BldA",
        units: MMHG,
        sources: "F",
      },
      {
        code: "2021-4",
        name: "Carbon dioxide [Partial pressure] in Venous blood",
        system: "BldV",
        units: MMHG,
        sources: "V",
      },
      {
        code: "2020-6",
        name: "Carbon dioxide [Partial pressure] in Capillary blood",
        system: "BldC",
        units: MMHG,
        sources: "V",
      },
      { code: "11557-6", name: "Carbon dioxide [Partial pressure] in Blood", system: "Bld", units: MMHG, sources: "V" },
    ],
  },
  pco2t: {
    name: "pCO2(T)",
    assume: "Bld",
    terms: [
      {
        code: "32771-8",
        name: "Carbon dioxide [Partial pressure] adjusted to patient's actual temperature in Arterial blood",
        system: "BldA",
        units: MMHG,
        sources: "V",
      },
      {
        code: "34705-4",
        name: "Carbon dioxide [Partial pressure] adjusted to patient's actual temperature in Blood",
        system: "Bld",
        units: MMHG,
        sources: "H V",
      },
    ],
  },
  po2: {
    name: "pO2",
    assume: "Bld",
    terms: [
      {
        code: "2703-7",
        name: "Oxygen [Partial pressure] in Arterial blood",
        system: "BldA",
        units: MMHG,
        sources: "H",
      },
      { code: "2705-2", name: "Oxygen [Partial pressure] in Venous blood", system: "BldV", units: MMHG, sources: "V" },
      {
        code: "2704-5",
        name: "Oxygen [Partial pressure] in Capillary blood",
        system: "BldC",
        units: MMHG,
        sources: "V",
      },
      { code: "11556-8", name: "Oxygen [Partial pressure] in Blood", system: "Bld", units: MMHG, sources: "V" },
    ],
  },
  po2t: {
    name: "pO2(T)",
    assume: "Bld",
    terms: [
      {
        code: "19255-9",
        name: "Oxygen [Partial pressure] adjusted to patient's actual temperature in Arterial blood",
        system: "BldA",
        units: MMHG,
        sources: "V",
      },
      {
        code: "19254-2",
        name: "Oxygen [Partial pressure] adjusted to patient's actual temperature in Blood",
        system: "Bld",
        units: MMHG,
        sources: "V",
      },
    ],
  },
  be: {
    name: "Base excess",
    assume: "Bld",
    terms: [
      {
        code: "1925-7",
        name: "Base excess in Arterial blood by calculation",
        system: "BldA",
        units: MOLAR,
        sources: "H",
      },
      { code: "11555-0", name: "Base excess in Blood by calculation", system: "Bld", units: MOLAR, sources: "V" },
    ],
  },
  so2: {
    name: "sO2",
    assume: "Bld",
    terms: [
      { code: "2708-6", name: "Oxygen saturation in Arterial blood", system: "BldA", units: ["%"], sources: "H" },
      { code: "20564-1", name: "Oxygen saturation in Blood", system: "Bld", units: ["%"], sources: "V" },
    ],
  },
  hco3: {
    name: "HCO3",
    assume: "Bld",
    terms: [{ code: "1959-6", name: "Bicarbonate [Moles/volume] in Blood", system: "Bld", units: MOLAR, sources: "H" }],
  },
  thb: {
    name: "Hemoglobin",
    assume: "Bld",
    terms: [{ code: "718-7", name: "Hemoglobin [Mass/volume] in Blood", system: "Bld", units: ["g/dL"], sources: "C" }],
  },
  lactate: {
    name: "Lactate",
    assume: "Bld",
    terms: [
      {
        code: "2524-7",
        name: "Lactate [Moles/volume] in Serum or Plasma",
        system: "SerPl",
        units: MOLAR,
        sources: "C",
      },
    ],
  },
  na: {
    name: "Sodium",
    assume: "Bld",
    terms: [
      { code: "2947-0", name: "Sodium [Moles/volume] in Blood", system: "Bld", units: MOLAR, sources: "L C" },
      { code: "32717-1", name: "Sodium [Moles/volume] in Arterial blood", system: "BldA", units: MOLAR, sources: "L" },
      { code: "2951-2", name: "Sodium [Moles/volume] in Serum or Plasma", system: "SerPl", units: MOLAR, sources: "L" },
    ],
  },
  k: {
    name: "Potassium",
    assume: "Bld",
    terms: [
      {
        code: "2823-3",
        name: "Potassium [Moles/volume] in Serum or Plasma",
        system: "SerPl",
        units: MOLAR,
        sources: "C",
      },
    ],
  },
  cl: {
    name: "Chloride",
    assume: "Bld",
    terms: [
      {
        code: "41650-3",
        name: "Chloride [Moles/volume] in Arterial blood",
        system: "BldA",
        units: MOLAR,
        sources: "L",
      },
      {
        code: "2075-0",
        name: "Chloride [Moles/volume] in Serum or Plasma",
        system: "SerPl",
        units: MOLAR,
        sources: "C",
      },
    ],
  },
  ica: {
    name: "Calcium, ionized",
    assume: "Bld",
    terms: [
      {
        code: "47596-2",
        name: "Calcium.ionized [Moles/volume] in Blood by ISE",
        system: "Bld",
        units: MOLAR,
        sources: "H",
      },
    ],
  },
  glucose: {
    name: "Glucose",
    assume: "Bld",
    terms: [
      { code: "2339-0", name: "Glucose [Mass/volume] in Blood", system: "Bld", units: ["mg/dL"], sources: "L" },
      {
        code: "2345-7",
        name: "Glucose [Mass/volume] in Serum or Plasma",
        system: "SerPl",
        units: ["mg/dL"],
        sources: "L C",
      },
    ],
  },
  hba1c: {
    name: "Hemoglobin A1c",
    assume: "Bld",
    terms: [
      { code: "4548-4", name: "Hemoglobin A1c/Hemoglobin.total in Blood", system: "Bld", units: ["%"], sources: "C" },
    ],
  },
};

/**
 * Local test ids as analysers send them (lower case, spaces dropped) → analyte. Blood-gas names as
 * Radiometer, Siemens and Roche print them on their reports and as the synthetic simulator sends
 * them ("(T)": corrected to the patient's temperature, as the Radiometer ABL9 records in
 * ../shared/fixtures/real-world send pH(T), pCO2(T) and pO2(T) beside pH, pCO2, pO2); the epoc's own names
 * (cHgb, O2SAT, Lact, BE(b)) as its published records send them; HbA1c as the Afinion 2 and DCA
 * Vantage captures send it; HGB as the Sysmex XN capture does.
 */
export const LOCAL_IDS: Readonly<Record<string, string>> = {
  ph: "ph",
  "ph(t)": "pht",
  pco2: "pco2",
  "pco2(t)": "pco2t",
  po2: "po2",
  "po2(t)": "po2t",
  "be(b)": "be",
  be: "be",
  "be(ecf)": "be",
  beb: "be",
  so2: "so2",
  "so2(c)": "so2",
  o2sat: "so2",
  "hco3-": "hco3",
  hco3: "hco3",
  "hco3-(p)": "hco3",
  "hco3-act": "hco3",
  thb: "thb",
  cthb: "thb",
  hb: "thb",
  hgb: "thb",
  chgb: "thb",
  lac: "lactate",
  lact: "lactate",
  lactate: "lactate",
  "clac-": "lactate",
  "na+": "na",
  na: "na",
  "cna+": "na",
  "k+": "k",
  k: "k",
  "ck+": "k",
  "cl-": "cl",
  cl: "cl",
  "ccl-": "cl",
  ica: "ica",
  "ca++": "ica",
  "ca2+": "ica",
  "cca2+": "ica",
  glu: "glucose",
  glucose: "glucose",
  cglu: "glucose",
  hba1c: "hba1c",
};

/** Units as analysers write them (ISO 2955-like text) → UCUM. Units not listed are kept as sent. */
const UCUM: Readonly<Record<string, string>> = {
  mmhg: "mm[Hg]",
  "mm hg": "mm[Hg]",
  "mm[hg]": "mm[Hg]",
  kpa: "kPa",
  "mmol/l": "mmol/L",
  "mg/dl": "mg/dL",
  "g/dl": "g/dL",
  "g/l": "g/L",
  "mg/l": "mg/L",
  "%": "%",
  "10*3/ul": "10*3/uL",
  "10*6/ul": "10*6/uL",
  fl: "fL",
  pg: "pg",
  ph: "[pH]",
};

export function toUcum(unit: string | undefined): string | undefined {
  if (unit === undefined) return undefined;
  const u = unit.trim();
  if (u === "") return undefined;
  return UCUM[u.toLowerCase()] ?? u;
}

/**
 * The specimen system a specimen description names (O.16 type, a word in R.3, a sample-type result),
 * if it is one we know: "other" for a specimen that is not blood (no blood-gas code fits it), undefined
 * for none or one that says nothing ("Unspecified").
 */
export function specimenSystem(descriptor: string | undefined): LoincSystem | "other" | undefined {
  if (descriptor === undefined || descriptor.trim() === "") return undefined;
  const d = descriptor.toLowerCase();
  if (/mixed ?ven|\bmv\b/.test(d)) return "BldMV";
  if (/arter/.test(d)) return "BldA";
  if (/ven/.test(d)) return "BldV";
  if (/capil/.test(d)) return "BldC";
  if (/serum|plasma|\bser\b|\bpl\b/.test(d)) return "SerPl";
  if (/blood|\bbld\b|\bwb\b/.test(d)) return "Bld";
  if (/urine|csf|fluid|dialys|pleural|ascit|\bqc\b|control/.test(d)) return "other";
  return undefined;
}

/** The LOINC term for a result, or undefined when none verified fits its specimen and unit. */
export function loincFor(
  localId: string,
  ucum: string | undefined,
  specimen: LoincSystem | "other" | undefined,
): { analyte: Analyte; term?: LoincTerm } | undefined {
  const id = LOCAL_IDS[localId.trim().toLowerCase().replace(/\s+/g, "")];
  if (id === undefined) return undefined;
  const analyte = ANALYTES[id]!;
  const system = specimen ?? analyte.assume;
  const fits = (t: LoincTerm) => t.units.includes(ucum ?? "");
  let term = system === "other" ? undefined : analyte.terms.find((t) => t.system === system && fits(t));
  // an arterial, venous or capillary sample: a whole-blood (unspecified) term serves when no closer one is listed
  if (!term && system !== "SerPl" && system !== "other")
    term = analyte.terms.find((t) => t.system === "Bld" && fits(t));
  return { analyte, term };
}
