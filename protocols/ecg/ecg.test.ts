import { describe, expect, it } from "vitest";
import { deriveLimbLeads, finishEcg, normalizeLeadName, packSamples, sortLeads, validateEcg } from "./index.ts";
import type { Ecg12, EcgLead, EcgWarning } from "./index.ts";
import { readXml, unescapeXml } from "./xml.ts";

const lead = (name: string, samples: number[], uvPerUnit = 1): EcgLead => ({
  name,
  samples: Int16Array.from(samples),
  uvPerUnit,
});
const enc = new TextEncoder();

describe("normalizeLeadName", () => {
  it("maps the spellings of DICOM, aECG, Philips and SCP-ECG to the standard names", () => {
    const cases: [string, string | undefined][] = [
      ["I", "I"],
      ["Lead I (Einthoven)", "I"],
      ["Lead II", "II"],
      ["lead iii", "III"],
      ["AVR", "aVR"],
      ["Lead aVL (Goldberger)", "aVL"],
      ["MDC_ECG_LEAD_AVF", "aVF"],
      ["MDC_ECG_LEAD_V1", "V1"],
      ["Lead V6", "V6"],
      ["v4", "V4"],
      ["5.6.3-9-1", "I"],
      ["5.6.3-9-61", "III"],
      ["5.6.3-9-62", "aVR"],
      ["5.6.3-9-8", "V6"],
      ["-aVR", undefined],
      ["V7", undefined],
      ["MDC_ECG_LEAD_X", undefined],
      ["Channel 13", undefined],
      ["5.6.3-9-99", undefined],
      ["", undefined],
    ];
    for (const [raw, want] of cases) expect(normalizeLeadName(raw), raw).toBe(want);
  });

  it("orders leads I…V6, then anything else in its order", () => {
    expect(
      sortLeads([lead("V1", []), lead("X", []), lead("II", []), lead("I", []), lead("Y", [])]).map((l) => l.name),
    ).toEqual(["I", "II", "V1", "X", "Y"]);
  });
});

describe("deriveLimbLeads", () => {
  it("computes III, aVR, aVL, aVF by Einthoven and Goldberger, and says so", () => {
    const warnings: EcgWarning[] = [];
    const out = deriveLimbLeads([lead("I", [100, 0, -40], 2.5), lead("II", [300, 50, 40], 2.5)], warnings);
    const by = Object.fromEntries(out.map((l) => [l.name, Array.from(l.samples)]));
    expect(by.III).toEqual([200, 50, 80]);
    expect(by.aVR).toEqual([-200, -25, 0]);
    expect(by.aVL).toEqual([-50, -25, -60]);
    expect(by.aVF).toEqual([250, 50, 60]);
    expect(out.every((l) => l.uvPerUnit === 2.5)).toBe(true);
    expect(out.filter((l) => l.derived).map((l) => l.name)).toEqual(["III", "aVR", "aVL", "aVF"]);
    expect(warnings).toEqual([expect.objectContaining({ code: "ECG_DERIVED" })]);
    expect(warnings[0]!.message).toMatch(/^III, aVR, aVL, aVF derived from I and II/);
  });

  it("keeps halves exact (plain numbers) and works in µV when I and II differ in scale", () => {
    const out = deriveLimbLeads([lead("I", [1], 1), lead("II", [2], 2)], []);
    const aVR = out.find((l) => l.name === "aVR")!;
    expect(aVR.uvPerUnit).toBe(1);
    expect(Array.from(aVR.samples)).toEqual([-2.5]);
    expect(Array.isArray(aVR.samples)).toBe(true);
  });

  it("derives only what is missing, and nothing without I and II", () => {
    const w: EcgWarning[] = [];
    const out = deriveLimbLeads([lead("I", [1]), lead("II", [2]), lead("III", [9]), lead("aVR", [9])], w);
    expect(out.find((l) => l.name === "III")!.samples[0]).toBe(9);
    expect(w[0]!.message).toMatch(/^aVL, aVF derived/);
    const none: EcgWarning[] = [];
    expect(deriveLimbLeads([lead("II", [1]), lead("V1", [1])], none)).toHaveLength(2);
    expect(none).toEqual([]);
  });
});

describe("validateEcg", () => {
  const full = (over: Partial<Ecg12> = {}): Ecg12 => ({
    format: "hl7-aecg",
    fs: 500,
    durationS: 10,
    warnings: [],
    leads: ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"].map((n) =>
      lead(
        n,
        Array.from({ length: 5000 }, (_, i) => (i % 400 < 10 ? 400 : 0)),
        2.5,
      ),
    ),
    ...over,
  });
  const codes = (e: Ecg12) => validateEcg(e).map((w) => w.code);

  it("is quiet on a plausible 12-lead ECG", () => {
    expect(validateEcg(full())).toEqual([]);
  });

  it("names missing and unknown leads, odd rates, unequal lengths, scales, flat lines and short records", () => {
    const e = full();
    expect(codes({ ...e, leads: e.leads.slice(0, 8) })).toEqual(["ECG_LEAD_MISSING"]);
    expect(codes({ ...e, leads: [...e.leads, lead("V7", Array(5000).fill(0), 2.5)] })).toEqual(["ECG_LEAD_UNKNOWN"]);
    expect(codes({ ...e, fs: 50 })).toEqual(["ECG_FS_RANGE"]);
    expect(
      codes({ ...e, leads: e.leads.map((l, i) => (i === 3 ? { ...l, samples: l.samples.slice(0, 4000) } : l)) }),
    ).toEqual(["ECG_SAMPLE_COUNT"]);
    expect(codes({ ...e, leads: e.leads.map((l) => ({ ...l, uvPerUnit: 1000 })) })).toEqual(["ECG_SCALE"]);
    expect(codes({ ...e, leads: e.leads.map((l) => ({ ...l, uvPerUnit: 100 })) })).toEqual(["ECG_SCALE"]); // 40 mV peaks
    expect(codes({ ...e, leads: e.leads.map((l) => ({ ...l, samples: new Int16Array(5000) })) })).toEqual(["ECG_FLAT"]);
    expect(codes({ ...e, durationS: 1 })).toEqual(["ECG_SHORT"]);
  });

  it("finishEcg derives, orders, measures duration, drops empty parts and keeps decoder warnings first", () => {
    const ecg = finishEcg({
      format: "dicom-ecg",
      fs: 500,
      leads: [
        lead("V1", Array(1000).fill(100), 5),
        lead("II", Array(1000).fill(100), 5),
        lead("I", Array(1000).fill(0), 5),
      ],
      statements: [],
      measurements: {},
      patient: {},
      warnings: [{ code: "X", message: "decoder says" }],
    });
    expect(ecg.leads.map((l) => l.name)).toEqual(["I", "II", "III", "aVR", "aVL", "aVF", "V1"]);
    expect(ecg.durationS).toBe(2);
    expect(ecg.warnings.map((w) => w.code)).toEqual(["X", "ECG_DERIVED", "ECG_LEAD_MISSING", "ECG_FLAT"]);
    expect("statements" in ecg || "measurements" in ecg || "patient" in ecg).toBe(false);
  });

  it("packSamples keeps Int16Array only for integers in range", () => {
    expect(packSamples([1, -2, 32767])).toBeInstanceOf(Int16Array);
    expect(Array.isArray(packSamples([1.5]))).toBe(true);
    expect(Array.isArray(packSamples([40000]))).toBe(true);
  });
});

describe("readXml (hardened)", () => {
  it("refuses DTDs, so entity bombs and external entities never expand", () => {
    for (const xml of [
      `<!DOCTYPE a [<!ENTITY x "xxxxxxxx"><!ENTITY y "&x;&x;&x;&x;">]><a>&y;</a>`,
      `<?xml version="1.0"?><!DOCTYPE a SYSTEM "file:///etc/passwd"><a/>`,
      `<a><!ENTITY x "1"></a>`,
    ]) {
      const r = readXml(enc.encode(xml), { maxBytes: 1000, prefix: "T" });
      expect("error" in r && r.error.code, xml).toBe("T_DTD");
    }
  });

  it("caps size and nesting, refuses malformed and truncated XML", () => {
    expect(readXml(enc.encode("<a/>"), { maxBytes: 2, prefix: "T" })).toMatchObject({ error: { code: "T_TOO_LARGE" } });
    expect(readXml(enc.encode("<a><b></a>"), { maxBytes: 100, prefix: "T" })).toMatchObject({
      error: { code: "T_XML" },
    });
    expect(readXml(enc.encode("<a><b>text"), { maxBytes: 100, prefix: "T" })).toMatchObject({
      error: { code: "T_XML" },
    });
    const deep = "<a>".repeat(500) + "</a>".repeat(500);
    expect(readXml(enc.encode(deep), { maxBytes: 1e6, prefix: "T", maxDepth: 100 })).toMatchObject({
      error: { code: "T_XML" },
    });
  });

  it("decodes UTF-16 with a BOM, and the encoding the declaration names", () => {
    const utf16 = Buffer.concat([
      Buffer.from([0xff, 0xfe]),
      Buffer.from(`<?xml version="1.0" encoding="utf-16"?><a x="1">心电</a>`, "utf16le"),
    ]);
    const r = readXml(new Uint8Array(utf16), { maxBytes: 1000, prefix: "T" });
    expect("node" in r && r.node).toEqual({ "@_x": "1", "#text": "心电" });
    const gbk = new Uint8Array([
      ...enc.encode(`<?xml version="1.0" encoding="GB2312"?><a>`),
      0xd0,
      0xc4,
      0xb5,
      0xe7,
      ...enc.encode("</a>"),
    ]);
    const g = readXml(gbk, { maxBytes: 1000, prefix: "T" });
    expect("node" in g && g.node["#text"]).toBe("心电");
  });

  it("resolves only predefined entities and character references, once", () => {
    expect(unescapeXml("a &lt; b &amp;amp; &#x4e2d;&#25991; &unknown; &#xD800;")).toBe(
      "a < b &amp; 中文 &unknown; &#xD800;",
    );
  });
});
