import { describe, expect, it } from "vitest";
import { decodeHl7Aecg, hl7TimeToIso } from "./index.ts";
import type { Ecg12 } from "../ecg/index.ts";
import { AECG_SPEC, aecgFixture, leadSamples } from "../../test/fixtures/ecg/make-fixtures.ts";
import { ownFixture, sharedFixtures } from "../../test/fixtures/ecg/files.ts";
import { prng } from "../../test/support/prng.ts";

const shared = sharedFixtures("aecg", "the FDA aECG examples");
const haveShared = shared.present;
const enc = new TextEncoder();

function decoded(bytes: Uint8Array): Ecg12 {
  const r = decodeHl7Aecg(bytes);
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.ecg;
}
const NAMES = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"];

/** A minimal aECG around given sequences. */
function aecg(sequences: string, increment = `<increment value="0.002" unit="s"/>`): Uint8Array {
  return enc.encode(`<AnnotatedECG xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><component><series><code code="RHYTHM"/><component><sequenceSet>
    <component><sequence><code code="TIME_ABSOLUTE"/><value xsi:type="GLIST_TS"><head value="20261123153000"/>${increment}</value></sequence></component>
    ${sequences}</sequenceSet></component></series></component></AnnotatedECG>`);
}
const seq = (
  code: string,
  digits: string,
  scale = `<scale value="5" unit="uV"/>`,
  origin = `<origin value="0" unit="uV"/>`,
) =>
  `<component><sequence><code code="${code}"/><value xsi:type="SLIST_PQ">${origin}${scale}<digits>${digits}</digits></value></sequence></component>`;

describe("our synthetic aECG (test/fixtures/ecg/aecg-limb-leads-I-II-only.xml)", () => {
  const file = ownFixture("aecg-limb-leads-I-II-only.xml");

  it("is what make-fixtures.ts writes", () => {
    expect(new TextDecoder().decode(file)).toBe(aecgFixture());
  });

  it("limb leads I and II only: III, aVR, aVL, aVF derived and flagged; time with offset to UTC", () => {
    const ecg = decoded(file);
    expect(ecg.leads.map((l) => l.name)).toEqual(NAMES);
    expect(ecg.leads.filter((l) => l.derived).map((l) => l.name)).toEqual(["III", "aVR", "aVL", "aVF"]);
    expect(ecg.warnings.map((w) => w.code)).toEqual(["ECG_DERIVED"]);
    expect(ecg).toMatchObject({
      fs: 500,
      durationS: 2.5,
      acquiredAt: "2026-11-23T07:30:00.000Z",
      acquiredAtRaw: "20261123153000.000+0800",
    });
    const by = Object.fromEntries(ecg.leads.map((l) => [l.name, l]));
    expect(Array.from(by.I!.samples)).toEqual(
      Array.from(leadSamples("I", AECG_SPEC.fs, AECG_SPEC.samples, AECG_SPEC.scaleUv)),
    );
    // Derived from the stored (rounded) I and II, so within a unit of the true lead.
    const trueIII = leadSamples("III", AECG_SPEC.fs, AECG_SPEC.samples, AECG_SPEC.scaleUv);
    for (let k = 0; k < AECG_SPEC.samples; k += 50)
      expect(Math.abs(by.III!.samples[k]! - trueIII[k]!)).toBeLessThanOrEqual(1);
    expect(by.aVR!.samples[150]).toBe(-(by.I!.samples[150]! + by.II!.samples[150]!) / 2);
    expect(ecg.statements).toEqual(["SYNTHETIC SINUS RHYTHM & NOTHING ELSE"]);
    expect(ecg.measurements).toEqual({ qrsMs: 92 });
    expect(ecg.device).toEqual({ make: "vitalgate synthetic", model: "make-fixtures", serial: "SN-0002" });
  });
});

describe("decodeHl7Aecg", () => {
  it("scale and origin: µV = origin + scale × digit, mV scales, fs from the increment in ms", () => {
    const ecg = decoded(
      aecg(
        seq("MDC_ECG_LEAD_I", "1 2 3", `<scale value="0.005" unit="mV"/>`, `<origin value="10" unit="uV"/>`),
        `<increment value="1" unit="ms"/>`,
      ),
    );
    const l = ecg.leads[0]!;
    expect(ecg.fs).toBe(1000);
    expect(l.uvPerUnit).toBe(5);
    expect(Array.from(l.samples, (v) => v * l.uvPerUnit)).toEqual([15, 20, 25]);
  });

  it("refuses what is not an aECG or has no waveforms, naming it", () => {
    const cases: [Uint8Array, string][] = [
      [enc.encode("<restingecgdata/>"), "AECG_NOT_AECG"],
      [enc.encode(`<AnnotatedECG xmlns="urn:hl7-org:v3"/>`), "AECG_NO_WAVEFORMS"],
      [aecg("", `<increment value="0" unit="s"/>`), "AECG_NO_RATE"],
      [aecg(seq("MDC_ECG_LEAD_I", "1 2 x")), "AECG_BAD_DIGITS"],
      [aecg(seq("MDC_ECG_LEAD_I", "1 2", `<scale value="5" unit="furlong"/>`)), "AECG_BAD_SCALE"],
      [enc.encode("<AnnotatedECG><component>"), "AECG_XML"],
      [enc.encode(""), "AECG_EMPTY"],
    ];
    for (const [bytes, code] of cases) {
      const r = decodeHl7Aecg(bytes);
      expect(r.ok, code).toBe(false);
      if (!r.ok) expect(r.error.code).toBe(code);
    }
  });

  it("vendor QTc codes: Bazett's QTcB stands in for a missing QTc, QTcF kept beside it, a value nested under a coded annotation is taken", () => {
    const ann = (code: string, value: string, nested = "") =>
      `<component><annotation><code code="${code}" codeSystem="2.16.840.1.113883.6.24"/>${value}${nested}</annotation></component>`;
    const pq = (v: string, unit: string) => `<value xsi:type="PQ" value="${v}" unit="${unit}"/>`;
    const doc = (annotations: string) =>
      enc.encode(
        new TextDecoder()
          .decode(aecg(seq("MDC_ECG_LEAD_II", "1 2 3")))
          .replace("</series>", `<subjectOf><annotationSet>${annotations}</annotationSet></subjectOf></series>`),
      );
    // As Mindray writes it (the shape a public aECG library documents): the coded QTc without a value, the vendor's beneath.
    const mindray = decoded(
      doc(
        ann("MDC_ECG_TIME_PD_QT", pq("0.398", "s")) +
          ann("MDC_ECG_TIME_PD_QTc", "", ann("MINDRAY_ECG_TIME_PD_QTcH", pq("431", "ms"))),
      ),
    );
    expect(mindray.measurements).toEqual({ qtMs: 398, qtcMs: 431 });
    const bazett = decoded(
      doc(ann("MDC_ECG_TIME_PD_QTcB", pq("440", "ms")) + ann("MDC_ECG_TIME_PD_QTcF", pq("0.425", "s"))),
    );
    expect(bazett.measurements).toEqual({ qtcMs: 440, qtcFridericiaMs: 425 });
    const both = decoded(
      doc(ann("MDC_ECG_TIME_PD_QTcB", pq("440", "ms")) + ann("MDC_ECG_TIME_PD_QTc", pq("452", "ms"))),
    );
    expect(both.measurements).toEqual({ qtcMs: 452 });
  });

  it("hl7TimeToIso converts only stamps with an offset", () => {
    expect(hl7TimeToIso("20261123153000.250+0800")).toBe("2026-11-23T07:30:00.250Z");
    expect(hl7TimeToIso("20021122091000")).toBeUndefined();
    expect(hl7TimeToIso("20021322091000+0000")).toBeUndefined();
  });
});

describe.skipIf(!haveShared)("FDA aECG examples (../shared/fixtures/aecg)", () => {
  const file = (name: string) => shared.read(name);

  it("FDA_HL7_Example_aECG.xml: 12 leads × 5000 at 500 Hz, first digits of I, V1, V6", () => {
    const ecg = decoded(file("FDA_HL7_Example_aECG.xml"));
    expect(ecg.leads.map((l) => l.name)).toEqual(NAMES);
    expect(ecg.leads.map((l) => l.samples.length)).toEqual(Array(12).fill(5000));
    expect(ecg).toMatchObject({ fs: 500, durationS: 10, acquiredAtRaw: "20021122091000.000", warnings: [] });
    const by = Object.fromEntries(ecg.leads.map((l) => [l.name, l]));
    expect(Array.from(by.I!.samples.slice(0, 5))).toEqual([-2, -2, -2, -2, -3]);
    expect(Array.from(by.V1!.samples.slice(0, 5))).toEqual([43, 43, 43, 43, 43]);
    expect(Array.from(by.V6!.samples.slice(0, 5))).toEqual([-9, -7, -5, -3, -1]);
    expect(ecg.leads.every((l) => l.uvPerUnit === 2.5 && !l.derived)).toBe(true);
    expect(ecg.representativeBeats?.leads).toHaveLength(12);
    expect(ecg.measurements).toMatchObject({ prMs: 148, qrsMs: 120, qtMs: 420, qtcMs: 443, qrsAxisDeg: -61 });
    expect(ecg.device).toMatchObject({ make: "Mortara Instrument, Inc.", model: "ELI250" });
  });

  it("the minimal variants (effectiveTime center/low/high/interval, no UUID) all decode lead II", () => {
    const names = shared.list().filter((n) => n.startsWith("FDA_minimum_aecg"));
    expect(names).toHaveLength(5);
    for (const name of names) {
      const ecg = decoded(file(name));
      expect(
        ecg.leads.map((l) => l.name),
        name,
      ).toEqual(["II"]);
      expect(Array.from(ecg.leads[0]!.samples), name).toEqual([-2, -2, -2, -2, -3, -4, -3, -5, -5, -4, -6, -9, -9]);
      expect(ecg.acquiredAtRaw, name).toBe("20021122091000");
      expect(ecg.fs, name).toBe(500);
      // Flagged, not refused: not a 12-lead ECG, too short.
      expect(
        ecg.warnings.map((w) => w.code),
        name,
      ).toEqual(expect.arrayContaining(["ECG_LEAD_MISSING", "ECG_SHORT"]));
    }
  });

  it("FDA_empty.xml: refused, no waveforms", () => {
    const r = decodeHl7Aecg(file("FDA_empty.xml"));
    expect(!r.ok && r.error.code).toBe("AECG_NO_WAVEFORMS");
  });
});

describe("decodeHl7Aecg: fuzz (seeded)", () => {
  const base = haveShared ? shared.read("FDA_minimum_aecg.xml") : aecg(seq("MDC_ECG_LEAD_I", "1 2 3 4 5 6 7 8 9"));
  const big = ownFixture("aecg-limb-leads-I-II-only.xml");

  function check(bytes: Uint8Array, label: string): void {
    const t0 = performance.now();
    const r = decodeHl7Aecg(bytes);
    expect(performance.now() - t0, label).toBeLessThan(2000);
    if (!r.ok) {
      expect(r.error.code, label).toMatch(/^AECG_/);
      expect(r.error.code, label).not.toBe("AECG_INTERNAL");
      expect(r.error.message.length, label).toBeGreaterThan(5);
    }
  }

  it("truncations and byte flips never throw or hang", () => {
    const rand = prng(31);
    for (const [name, doc] of [
      ["minimum", base],
      ["synthetic", big],
    ] as const) {
      for (let i = 0; i < 60; i++) {
        const b = Uint8Array.from(doc);
        for (let k = 0; k < 1 + Math.floor(rand() * 6); k++)
          b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
        check(rand() < 0.5 ? b : b.subarray(0, Math.floor(rand() * b.length)), `${name} ${i}`);
      }
    }
  });

  it("entity bombs, external entities and huge digit runs are refused or capped", () => {
    const bomb = `<?xml version="1.0"?><!DOCTYPE AnnotatedECG [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><AnnotatedECG xmlns="urn:hl7-org:v3">&d;&d;&d;&d;</AnnotatedECG>`;
    expect(decodeHl7Aecg(enc.encode(bomb))).toMatchObject({ ok: false, error: { code: "AECG_DTD" } });
    const xxe = `<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><AnnotatedECG>&x;</AnnotatedECG>`;
    expect(decodeHl7Aecg(enc.encode(xxe))).toMatchObject({ ok: false, error: { code: "AECG_DTD" } });
    const many = aecg(seq("MDC_ECG_LEAD_I", "1 ".repeat(300_000)));
    expect(decodeHl7Aecg(many, { maxSamplesPerLead: 100_000 })).toMatchObject({
      ok: false,
      error: { code: "AECG_TOO_LONG" },
    });
    check(many, "300k digits");
    const leads = aecg(Array.from({ length: 100 }, (_, i) => seq(`MDC_ECG_LEAD_X${i}`, "1 2")).join(""));
    expect(decodeHl7Aecg(leads)).toMatchObject({ ok: false, error: { code: "AECG_TOO_MANY_LEADS" } });
    check(
      enc.encode("<AnnotatedECG>" + "<component>".repeat(20_000) + "</component>".repeat(20_000) + "</AnnotatedECG>"),
      "deep",
    );
    expect(decodeHl7Aecg(new Uint8Array(2000), { maxBytes: 1000 })).toMatchObject({
      ok: false,
      error: { code: "AECG_TOO_LARGE" },
    });
  });
});
