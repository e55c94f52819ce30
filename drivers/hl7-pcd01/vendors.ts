// How monitors say "no value", "demo" and "technical alarm" in HL7 v2, per vendor, as data, with
// where each fact was found (docs/decisions/0009-hl7-monitor-quirks.md tells the whole story).
//
// The vendor of a message is decided from its header and its coding systems, in this order:
//   1. MSH-3 (sending application, all components) and MSH-4 (sending facility), e.g.
//      "MINDRAY_VS900^00A0370098007A80^EUI-64" / "MINDRAY", "VSP^080019FFFE134535^EUI-64" / "GE Healthcare",
//      "^EfficiaCM";
//   2. the coding systems of OBX-3 (OBX-3.3: "99MNDRY", "MDIL", "MDIL-ALERT", "99COMEN");
//   3. the namespace of OBX-18 (equipment instance identifier: "...^B40_GE").
// A message that matches no vendor gets only the rules every vendor shares (below, VENDOR_NEUTRAL).

export interface VendorQuirks {
  id: "mindray" | "philips" | "ge" | "comen";
  /** Matched against MSH-3 and MSH-4 (whole fields, components joined by "^"). */
  header: RegExp;
  /** OBX-3.3 coding systems only this vendor uses. */
  codingSystems: readonly string[];
  /** Matched against OBX-18.2 (the namespace of the equipment instance identifier). */
  equipment?: RegExp;
  /** OBX-5 numbers this vendor sends in a numeric row to say "no value" (never a measurement). */
  noValue: readonly number[];
  /** Where each fact was found. */
  sources: readonly string[];
}

export const VENDORS: readonly VendorQuirks[] = [
  {
    id: "mindray",
    header: /^MINDRAY|\^MINDRAY\b/i,
    codingSystems: ["99MNDRY"],
    noValue: [-100],
    sources: [
      '-100 = no value: a Mindray T1 monitor HL7 listener (github hankersyan/mindray_t1 @ 04915a7a, Models.java) drops every 99MNDRY numeric that starts with "-100" before publishing',
      'OBX-8 DEMO in demo mode: a Mindray VS-900 ORU^R01 in a public HL7 library\'s test (every OBX-8 "DEMO", found via the code index) and VS8 wire notes ("OBX-8 = DEMO means the monitor is in demo mode and the values are simulated")',
      "MSH-3 MINDRAY_<model>^<EUI-64>^EUI-64 and MSH-4 MINDRAY: ../shared/fixtures/real-world/hl7 (VS-900, eGateway)",
      "waveform rows: each NA channel is followed by MDC_ATTR_SAMP_RATE, MDC_ATTR_NU_MSMT_RES and MDC_EVT_INOP rows under the channel's OBX-4 (<channel>.1, .2, .3), the last giving the sample value that means invalid (e.g. 32767): icu-heart/icu-heart-mindray-waveform-adapter @ 577d50bd docs/content/parser.md; the eGateway HL7Util reads them as waveform attributes",
      "alarms in ORU^R01: an OBR group with MDC_EVT_ALARM rows, OBX-8 carrying type SP/ST/SA (physiological, technical, advisory) and priority: Mindray eGateway HL7Util.parseAlarms (found via the code index)",
    ],
  },
  {
    id: "philips",
    header: /EfficiaCM|IntelliVue|PIIC/i,
    codingSystems: ["MDIL", "MDIL-ALERT"],
    noValue: [],
    sources: [
      'no value: OBX-5 empty and OBX-11 X when the monitor shows "?" or nothing: Philips Efficia CM Series Data Export Guide, OBX segment (p. 3-18)',
      "alarms as OBX rows: OBX||TX|2^Yellow Alarm^MDIL-ALERT||<alarm text>, Yellow = a medium-level physiological alarm: Efficia CM Series Data Export Guide, Alarms (p. 2-16); MSH-3 ^EfficiaCM (p. 2-8); MSH-11 P, T or D (p. 2-8)",
      "technical alarms (INOPs) as OBX||TX|5^HardInop^MDIL-ALERT||<inop text> in an ORU^R01 from an IntelliVue Information Center, with PV1-3 bed pDemo6 and MSH-11 T: a PIIC listener's test message (bitsea alarmRedux TestListener, found via the code index)",
      "INOP = technical alarm (the system cannot measure or alarm reliably), levels severe/hard/soft: Philips IntelliVue MX40 User's Manual, Technical Alarms (INOPs)",
    ],
  },
  {
    id: "ge",
    header: /GE Healthcare/i,
    codingSystems: [],
    equipment: /_GE$/i,
    noValue: [],
    sources: [
      "MSH-3 VSP^<EUI-64>^EUI-64, MSH-4 GE Healthcare, OBX-18 <EUI-64>^B40_GE, containment rows with OBX-11 X and no value: GE B40/B20 Patient Monitor HL7 Reference Manual 2062665-001 G, sample messages (pp. 19-24). No no-value sentinel documented there.",
    ],
  },
  {
    id: "comen",
    header: /COMEN/i,
    codingSystems: ["99COMEN"],
    noValue: [],
    sources: [
      "empty OBX-5 for unmeasured rows (height, weight) and 149522 sent with MDC_PULS_RATE (whose code is 149514): ../shared/fixtures/real-world/hl7/comen_nc_monitor.hl7. No sentinel number found.",
    ],
  },
];

/**
 * Rules that hold whatever the vendor, from the HL7 standard itself:
 * - OBX-11 (HL7 table 0085) X = "results cannot be obtained for this observation": the row carries no measurement.
 * - MSH-11 (HL7 table 0103) T training, D debugging: not production data, so not a patient's.
 * - OBX-5 text that only says "nothing here" in a numeric row: "", "-", "--", "---", "NA", "N/A", "?", "***".
 */
export const NO_VALUE_TEXT = /^(-+|N\/?A|\?+|\*+)$/i;
export const NOT_MEASURED_STATUS = "X";
export const NOT_PRODUCTION = new Set(["T", "D"]);
/** OBX-8 flag of demo data (Mindray; not in HL7 table 0078). */
export const DEMO_FLAG = "DEMO";
/** PV1-3 bed of an IntelliVue Information Center demo bed ("pDemo6"). */
export const DEMO_BED = /^p?demo\d*$/i;

export interface MessageVendorHints {
  /** MSH-3 and MSH-4, raw. */
  header: string[];
  /** OBX-3.3 of every OBX. */
  codingSystems: ReadonlySet<string>;
  /** OBX-18.2 of every OBX. */
  equipment: readonly string[];
}

/** The vendor a message comes from, or undefined when none matches. */
export function vendorOf(hints: MessageVendorHints): VendorQuirks | undefined {
  return (
    VENDORS.find((v) => hints.header.some((h) => v.header.test(h))) ??
    VENDORS.find((v) => v.codingSystems.some((s) => hints.codingSystems.has(s))) ??
    VENDORS.find((v) => v.equipment !== undefined && hints.equipment.some((e) => v.equipment!.test(e)))
  );
}
