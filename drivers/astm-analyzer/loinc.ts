// LOINC codes and UCUM units for the results point-of-care analysers send over ASTM, as data.
//
// An analyser names each result by its own local test id (the code component of R.3, E1394 §10.1.3:
// "^^^pH", "^^^Na+", "^^^^WBC^1"). The table below turns the local ids of the blood-gas panel and of
// the analysers in the shared captures into LOINC terms. A LOINC term names the specimen system
// (BldA arterial blood, Bld whole blood unspecified, SerPl serum or plasma) and the property (moles
// or mass per volume): a code is given only when both fit the result —
//  - the system comes from the order's specimen descriptor (O.16) when the message names one
//    ("Arterial", "Serum", "Plasma", "Whole blood"); otherwise each analyte's `assume` below, the
//    specimen its kind of analyser measures (a blood-gas analyser: arterial blood; HbA1c: whole blood);
//  - a whole-blood term (Bld) stands for an arterial, venous or capillary sample when no term for
//    that very system is listed (Bld is "blood, unspecified" in LOINC);
//  - the unit the analyser sends (converted to UCUM) must be one the term's property allows:
//    glucose in mmol/L gets no mass-per-volume code.
// Where no term fits, the result keeps the analyser's own code (`localCode`) and no `code`; a
// device's `codeMap` option adds or overrides mappings.
//
// Every code below was checked against public listings of LOINC (search of public pages, Nov 2026):
//   [L]  loinc.org pages: LOINC group LG11363-5 (sodium: 2947-0 Bld, 2951-2 SerPl, 32717-1 BldA);
//        LG7967-5 (glucose: 2339-0 Bld mass/vol, 2345-7 SerPl mass/vol); term 41650-3 (Chloride
//        [Moles/volume] in Arterial blood, member of the arterial gas and electrolytes panels).
//   [F]  HL7 FHIR US MCC eCare Plan IG example Observations (hl7.org/fhir/us/mcc): ph-lab-observation
//        code 2744-1 "pH of Arterial blood"; pCO2-arterial-observation "Carbon dioxide [Partial
//        pressure] in Arterial blood" (2019-8, the ABG panel 24336-0 member).
//   [H]  healthassure.in LOINC code pages (transcribing LOINC fields): 2703-7 Oxygen [Partial
//        pressure] in Arterial blood; 1925-7 Base excess in Arterial blood by calculation; 2708-6
//        Oxygen saturation in Arterial blood; 1959-6 Bicarbonate [Moles/volume] in Blood; 47596-2
//        Calcium.ionized [Moles/volume] in Blood by ISE (how blood-gas analysers measure it).
//   [C]  Laboratory test catalogues that publish their LOINC codes: Mayo Clinic Laboratories
//        (HBA1C → 4548-4; LACS1 Lactate, P → 2524-7; HGB → 718-7), ARUP (0020002 Potassium, Serum or
//        Plasma → 2823-3; 0020024 Glucose, Serum or Plasma → 2345-7; 0020003 Chloride, Serum or
//        Plasma → 2075-0, as Michigan Medicine's catalogue too), Barnes-Jewish (sodium on a
//        Radiometer ABL800, whole blood → 2947-0).
// Not verified, so left out (the result keeps its local code): bicarbonate in arterial blood
// (1960-4?), ionized calcium in serum/plasma (1994-3?), potassium in whole blood (6298-4?), lactate in
// whole blood (32693-4?), glucose in moles/volume (15074-8 / 14749-6?), hemoglobin in arterial blood
// (30350-3?), HbA1c by HPLC (17856-6?), CRP, and the Sysmex blood count (WBC, RBC, HCT, PLT, indices).
// UCUM units per the UCUM specification (unitsofmeasure.org): "mm[Hg]", "[pH]", "mmol/L", "g/dL", "%".

export type LoincSystem = "BldA" | "Bld" | "SerPl";

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

/** Analytes by id, each with its verified LOINC terms (possibly none). */
export const ANALYTES: Readonly<Record<string, Analyte>> = {
  ph: { name: "pH", assume: "BldA", terms: [{ code: "2744-1", name: "pH of Arterial blood", system: "BldA", units: ["[pH]", ""], sources: "F" }] },
  pco2: { name: "pCO2", assume: "BldA", terms: [{ code: "2019-8", name: "Carbon dioxide [Partial pressure] in Arterial blood", system: "BldA", units: ["mm[Hg]"], sources: "F" }] },
  po2: { name: "pO2", assume: "BldA", terms: [{ code: "2703-7", name: "Oxygen [Partial pressure] in Arterial blood", system: "BldA", units: ["mm[Hg]"], sources: "H" }] },
  be: { name: "Base excess", assume: "BldA", terms: [{ code: "1925-7", name: "Base excess in Arterial blood by calculation", system: "BldA", units: MOLAR, sources: "H" }] },
  so2: { name: "sO2", assume: "BldA", terms: [{ code: "2708-6", name: "Oxygen saturation in Arterial blood", system: "BldA", units: ["%"], sources: "H" }] },
  hco3: { name: "HCO3", assume: "BldA", terms: [{ code: "1959-6", name: "Bicarbonate [Moles/volume] in Blood", system: "Bld", units: MOLAR, sources: "H" }] },
  thb: { name: "Hemoglobin", assume: "Bld", terms: [{ code: "718-7", name: "Hemoglobin [Mass/volume] in Blood", system: "Bld", units: ["g/dL"], sources: "C" }] },
  lactate: {
    name: "Lactate",
    assume: "Bld",
    terms: [{ code: "2524-7", name: "Lactate [Moles/volume] in Serum or Plasma", system: "SerPl", units: MOLAR, sources: "C" }],
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
  k: { name: "Potassium", assume: "Bld", terms: [{ code: "2823-3", name: "Potassium [Moles/volume] in Serum or Plasma", system: "SerPl", units: MOLAR, sources: "C" }] },
  cl: {
    name: "Chloride",
    assume: "Bld",
    terms: [
      { code: "41650-3", name: "Chloride [Moles/volume] in Arterial blood", system: "BldA", units: MOLAR, sources: "L" },
      { code: "2075-0", name: "Chloride [Moles/volume] in Serum or Plasma", system: "SerPl", units: MOLAR, sources: "C" },
    ],
  },
  ica: { name: "Calcium, ionized", assume: "Bld", terms: [{ code: "47596-2", name: "Calcium.ionized [Moles/volume] in Blood by ISE", system: "Bld", units: MOLAR, sources: "H" }] },
  glucose: {
    name: "Glucose",
    assume: "Bld",
    terms: [
      { code: "2339-0", name: "Glucose [Mass/volume] in Blood", system: "Bld", units: ["mg/dL"], sources: "L" },
      { code: "2345-7", name: "Glucose [Mass/volume] in Serum or Plasma", system: "SerPl", units: ["mg/dL"], sources: "L C" },
    ],
  },
  hba1c: { name: "Hemoglobin A1c", assume: "Bld", terms: [{ code: "4548-4", name: "Hemoglobin A1c/Hemoglobin.total in Blood", system: "Bld", units: ["%"], sources: "C" }] },
};

/**
 * Local test ids as analysers send them (lower case, spaces dropped) → analyte. Blood-gas names as
 * Radiometer, Siemens and Roche print them on their reports and as the synthetic simulator sends
 * them; HbA1c as the Afinion 2 and DCA Vantage captures send it; HGB as the Sysmex XN capture does.
 */
export const LOCAL_IDS: Readonly<Record<string, string>> = {
  ph: "ph", "ph(t)": "ph",
  pco2: "pco2", "pco2(t)": "pco2",
  po2: "po2", "po2(t)": "po2",
  "be(b)": "be", be: "be", "be(ecf)": "be", beb: "be",
  so2: "so2", "so2(c)": "so2",
  "hco3-": "hco3", hco3: "hco3", "hco3-(p)": "hco3",
  thb: "thb", cthb: "thb", hb: "thb", hgb: "thb",
  lac: "lactate", lactate: "lactate", "clac-": "lactate",
  "na+": "na", na: "na", "cna+": "na",
  "k+": "k", k: "k", "ck+": "k",
  "cl-": "cl", cl: "cl", "ccl-": "cl",
  ica: "ica", "ca++": "ica", "ca2+": "ica", "cca2+": "ica",
  glu: "glucose", glucose: "glucose", cglu: "glucose",
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

/** The specimen system an order's descriptor (O.16 type) names, if it is one we know. */
export function specimenSystem(descriptor: string | undefined): LoincSystem | "other" | undefined {
  if (descriptor === undefined || descriptor.trim() === "") return undefined;
  const d = descriptor.toLowerCase();
  if (/arter/.test(d)) return "BldA";
  if (/serum|plasma|\bser\b|\bpl\b/.test(d)) return "SerPl";
  if (/ven|capil|mixed/.test(d)) return "other"; // venous, capillary: only a plain Bld term can serve
  if (/blood|\bbld\b|\bwb\b/.test(d)) return "Bld";
  return undefined;
}

/** The LOINC term for a result, or undefined when none verified fits its specimen and unit. */
export function loincFor(localId: string, ucum: string | undefined, specimen: LoincSystem | "other" | undefined): { analyte: Analyte; term?: LoincTerm } | undefined {
  const id = LOCAL_IDS[localId.trim().toLowerCase().replace(/\s+/g, "")];
  if (id === undefined) return undefined;
  const analyte = ANALYTES[id]!;
  const system = specimen ?? analyte.assume;
  const fits = (t: LoincTerm) => t.units.includes(ucum ?? "");
  let term = system === "other" ? undefined : analyte.terms.find((t) => t.system === system && fits(t));
  // an arterial, venous or capillary sample: a whole-blood (unspecified) term serves when no closer one is listed
  if (!term && system !== "SerPl") term = analyte.terms.find((t) => t.system === "Bld" && fits(t));
  return { analyte, term };
}
