// What the data codes of a Dräger MEDIBUS response mean, as data: which measurement or setting, its
// unit and scale, and the IEEE 11073-10101 (MDC) term it becomes.
//
// The data codes (two ASCII hex characters before each value) are those of Dräger's "RS 232 MEDIBUS
// Protocol Definition" (order no. 90 28 258) and its device supplements. Dräger's document is not in
// the stored sources as text, so each code below was taken only where two public implementations of
// it agree (facts only; no code copied):
//   [O] OpenICE, mdpnp/mdpnp @ 221495446b, devices/draeger/src/main/resources/org/mdpnp/devices/
//       draeger/medibus/types/measured-data-cp1.map and setting.map (code, name, unit);
//   [V] xeonfusion/VSCaptureDrgVent @ 1176ac57, Class2.cs (enums MeasurementCP1, DeviceSettings: code,
//       name, unit). [O] and [V] list the same names, so they may share a source; hence
//   [F] Farlandx/iOS_Project-Ventilator @ daa675ca, 呼吸照護/DRAGER.m (parseMeadused, parseSet: an
//       independent reading of an Evita's responses, with each value's format, e.g. "_XXX", "X.XXX").
// Pressures: MEDIBUS sends mbar; Dräger's own supplement "MEDIBUS for Fabius GS/GS premium/Tiro/plus/
// OS/MRI" (2020, footnote to its measured-data table) says "1 mbar = 1 cmH2O", so the values are sent
// on unchanged in cm[H2O] (the unit ventilation is read in), as Dräger's displays do.
//
// MDC terms: from drivers/hl7-pcd01/mdc.ts where it has them (verified there); the new ones below
// were checked the same way (numeric code = 2 × 65536 + term code), against
//   [S] ISO/IEEE 11073-10101 term codes in wlbaker/mdrepo @ 766a390a, intfcode/intellivue/Shared/
//       Nomenclature/x73_nomenclature_medical_scada.h;
//   [P] Philips IntelliVue NOM_* constants in the same repository, PhilipsIntellivueMP70/src/intellivue.h;
//   [F] the MII ICU module value set mii-vs-icu-code-observation-beatmung-iso11073.json @ f94ca2c5
//       (medizininformatik-initiative/kerndatensatzmodul-intensivmedizin).
// Codes the implementations name but with no agreed unit or MDC term are sent as "MEDIBUS:<code>"
// (measured data) or "MEDIBUS:SET:<code>" (settings), with no `mdc`.

/** An MDC term new to the project, with the sources that agree on its numeric code. */
export const VENT_MDC: Readonly<Record<string, { mdc: number; sources: string }>> = {
  MDC_VOL_AWAY_TIDAL: { mdc: 151868, sources: "S P" }, // 20796
  MDC_VOL_MINUTE_AWAY: { mdc: 151880, sources: "S P" }, // 20808
  MDC_PRESS_AWAY_INSP_MAX: { mdc: 151817, sources: "S P" }, // 20745, peak inspiratory pressure
  MDC_PRESS_AWAY_INSP_MEAN: { mdc: 151819, sources: "S P" }, // 20747
  MDC_PRESS_RESP_PLAT: { mdc: 151784, sources: "S P" }, // 20712, plateau pressure
  MDC_VENT_PRESS_AWAY_END_EXP_POS: { mdc: 151976, sources: "S P F" }, // 20904, PEEP ("Applied PEEP" [F])
  MDC_COMPL_LUNG_DYN: { mdc: 151692, sources: "S P F" }, // 20620, dynamic compliance
  MDC_RES_AWAY: { mdc: 151840, sources: "S P" }, // 20768, airway resistance
};

export interface MedibusTerm {
  /** What the implementations call it. */
  name: string;
  /** MDC reference id, when the mapping is settled; else the observation's code is MEDIBUS:<code>. */
  refid?: string;
  /** UCUM unit of the value after `scale`. */
  unit: string;
  /** value sent × scale = value in `unit` (default 1). */
  scale?: number;
  /** Which implementations agree on the code (see above). */
  sources: string;
}

const CMH2O = "cm[H2O]";

/** Measured data, code page 1 (response to 24H). Keys: the data code as sent (upper-case hex). */
export const MEDIBUS_MEASURED_CP1: Readonly<Record<string, MedibusTerm>> = {
  "05": { name: "breathing pressure", unit: CMH2O, sources: "O V" },
  "06": { name: "compliance", refid: "MDC_COMPL_LUNG_DYN", unit: "mL/cm[H2O]", sources: "O V F" }, // [O] mL/mbar, [F] XX.X
  "0B": { name: "resistance", refid: "MDC_RES_AWAY", unit: "cm[H2O].s/L", sources: "O V F" }, // mbar/(L/s), [F] XX.X
  "73": { name: "mean airway pressure", refid: "MDC_PRESS_AWAY_INSP_MEAN", unit: CMH2O, sources: "O V F" },
  "74": { name: "plateau pressure", refid: "MDC_PRESS_RESP_PLAT", unit: CMH2O, sources: "O V F" },
  "78": { name: "PEEP", refid: "MDC_VENT_PRESS_AWAY_END_EXP_POS", unit: CMH2O, sources: "O V F" }, // [F] reads the code, unnamed
  "7D": { name: "peak airway pressure", refid: "MDC_PRESS_AWAY_INSP_MAX", unit: CMH2O, sources: "O V F" },
  "88": { name: "tidal volume", refid: "MDC_VOL_AWAY_TIDAL", unit: "mL", sources: "O V F" }, // [F] _XXX
  B9: { name: "minute volume", refid: "MDC_VOL_MINUTE_AWAY", unit: "L/min", sources: "O V F" }, // [F] XX.X, "MVTotal"
  D6: { name: "respiratory rate", refid: "MDC_RESP_RATE", unit: "/min", sources: "O V F" }, // [F] "VentilationRateTotal"
  F0: { name: "inspiratory O2", refid: "MDC_CONC_AWAY_O2_INSP", unit: "%", sources: "O V F" }, // [F] "FiO2Measured"
  DB: { name: "end-tidal CO2 (%)", refid: "MDC_CONC_AWAY_CO2_ET", unit: "%", sources: "O V" },
  E3: { name: "end-tidal CO2 (kPa)", refid: "MDC_AWAY_CO2_ET", unit: "kPa", sources: "O V" },
  E6: { name: "end-tidal CO2 (mmHg)", refid: "MDC_AWAY_CO2_ET", unit: "mm[Hg]", sources: "O V" },
  EB: { name: "SpO2", refid: "MDC_PULS_OXIM_SAT_O2", unit: "%", sources: "O V" },
  E1: { name: "pulse rate (oximeter)", refid: "MDC_PULS_OXIM_PULS_RATE", unit: "/min", sources: "O V" },
  B2: { name: "leakage", unit: "mL/min", sources: "O V" },
  B5: { name: "spontaneous respiratory rate", unit: "/min", sources: "O V" },
  BD: { name: "apnea duration", unit: "s", sources: "O V" },
};

/**
 * Measured data, code page 2 (response to 2BH; polled only with `codePage2`), from
 *   [O] OpenICE measured-data-cp2.map @ 221495446b and [V] VSCaptureDrgVent Class2.cs @ 1176ac57
 *       (enum MeasurementCP2), which agree on all eight codes below (and may share a source), and
 *   [X] VSCaptureDrgVent Class2.cs @ f09a608 enum MedibusXMeasurementCP2: the MEDIBUS.X data codes of
 *       code page 2, a separate and longer listing with units, agreeing on 00, 06, 07, 21, 22 and 23.
 * No MDC term: the listings disagree on expired/inspired tidal volume (MDC_VOL_AWAY_TIDAL_EXP is
 * 65314 in [S] but 2::21128 = 152664 in other public tables), so they stay MEDIBUS:CP2:<code>.
 */
export const MEDIBUS_MEASURED_CP2: Readonly<Record<string, MedibusTerm>> = {
  "00": { name: "spontaneous tidal volume", unit: "mL", sources: "O V X" },
  "06": { name: "elastance", unit: "cm[H2O]/L", sources: "O V X" }, // mbar/L
  "07": { name: "time constant", unit: "s", sources: "O V X" },
  "21": { name: "expiratory tidal volume", unit: "mL", sources: "O V X" },
  "22": { name: "inspiratory tidal volume", unit: "mL", sources: "O V X" },
  "23": { name: "end-inspiratory pressure", unit: CMH2O, sources: "O V X" }, // mbar
  "7B": { name: "pressure variability", unit: "%", sources: "O V" },
  "7D": { name: "Tlow max", unit: "s", sources: "O V" },
};

/**
 * Device settings (response to 29H), sent as vitals observations with status "setting" (what the
 * ventilator is set to, beside what it measures), under the MDC term of the quantity they set.
 */
export const MEDIBUS_SETTINGS: Readonly<Record<string, MedibusTerm>> = {
  "01": { name: "O2 concentration", refid: "MDC_CONC_AWAY_O2_INSP", unit: "%", sources: "O V F" }, // [F] "FiO2Set"
  "02": { name: "max. inspiratory flow", unit: "L/min", sources: "O V F" },
  "04": { name: "tidal volume", refid: "MDC_VOL_AWAY_TIDAL", unit: "mL", scale: 1000, sources: "O V F" }, // sent in L: [O][V] L, [F] X.XXX × 1000
  "05": { name: "inspiratory time", unit: "s", sources: "O V F" },
  "09": { name: "rate (IMV)", refid: "MDC_VENT_RESP_RATE", unit: "/min", sources: "O V F" }, // [F] "VentilationRateSet"
  "0A": { name: "rate (IPPV)", unit: "/min", sources: "O V" },
  "0B": { name: "PEEP", refid: "MDC_VENT_PRESS_AWAY_END_EXP_POS", unit: CMH2O, sources: "O V F" },
  "0D": { name: "BIPAP low pressure", unit: CMH2O, sources: "O V F" },
  "0E": { name: "BIPAP high pressure", unit: CMH2O, sources: "O V F" },
  "12": { name: "pressure support", unit: CMH2O, sources: "O V F" },
  "13": { name: "max. inspiratory airway pressure", unit: CMH2O, sources: "O V F" },
};
