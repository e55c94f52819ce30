// exportAecg: what any aECG reader needs (namespace, RHYTHM series, GLIST_TS, SLIST_PQ, MDC codes),
// and the round trip: export, then decodeHl7Aecg, gives the same leads (names, samples, µV per
// unit, sampling rate) for real files of each format and for our own fixtures.
import { describe, expect, it } from "vitest";
import { XMLValidator } from "fast-xml-parser";
import { exportAecg, hl7Time, mdcLeadCode } from "./export.ts";
import { decodeHl7Aecg } from "./index.ts";
import { STANDARD_LEADS } from "../ecg/index.ts";
import type { Ecg12, EcgDecodeResult } from "../ecg/index.ts";
import { decodeDicomEcg } from "../dicom-ecg/index.ts";
import { decodePhilipsEcg } from "../philips-ecg/index.ts";
import { ownFixture, sharedFixtures } from "../../test/fixtures/ecg/files.ts";

const ID = "6f1c2a7e-3b4d-4e5f-8a9b-0c1d2e3f4a5b";
const enc = new TextEncoder();

function ok(r: EcgDecodeResult): Ecg12 {
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.ecg;
}

/** Exports, checks the XML is well-formed, and decodes it again. */
function roundTrip(ecg: Ecg12): { xml: string; back: Ecg12 } {
  const xml = exportAecg(ecg, { id: ID });
  expect(XMLValidator.validate(xml)).toBe(true);
  return { xml, back: ok(decodeHl7Aecg(enc.encode(xml))) };
}

/**
 * The same leads: names, fs, and sample values and µV per unit exactly for recorded leads. Leads
 * derived with half units are written at double the digits and half the scale (aECG digits are
 * integers), so for those the microvolts are compared, and they are exact too.
 */
function expectSameLeads(a: Ecg12, b: Ecg12): void {
  expect(b.fs).toBe(a.fs);
  expect(b.leads.map((l) => l.name)).toEqual(a.leads.map((l) => l.name));
  a.leads.forEach((la, i) => {
    const lb = b.leads[i]!;
    expect(lb.samples.length, la.name).toBe(la.samples.length);
    const halves = Array.from(la.samples).some((v) => !Number.isInteger(v));
    if (!halves) {
      expect(lb.uvPerUnit, la.name).toBe(la.uvPerUnit);
      expect(Array.from(lb.samples), la.name).toEqual(Array.from(la.samples));
    } else {
      expect(lb.uvPerUnit, la.name).toBe(la.uvPerUnit / 2);
      const uv = (v: number, k: number) => v * k + 0; // −0 (aVR of a zero I and II) is 0
      expect(
        Array.from(lb.samples, (v) => uv(v, lb.uvPerUnit)),
        la.name,
      ).toEqual(Array.from(la.samples, (v) => uv(v, la.uvPerUnit)));
    }
  });
}

describe("exportAecg: the document", () => {
  const ecg = ok(decodeDicomEcg(ownFixture("general-ecg-8lead-explicit.dcm")));
  const xml = exportAecg(ecg, { id: ID });

  it("an AnnotatedECG in urn:hl7-org:v3 with the id, time, a RHYTHM series, GLIST_TS and one SLIST_PQ per lead", () => {
    expect(xml.startsWith(`<?xml version="1.0" encoding="UTF-8"?>`)).toBe(true);
    expect(xml).toMatch(
      /<AnnotatedECG xmlns="urn:hl7-org:v3" xmlns:xsi="http:\/\/www.w3.org\/2001\/XMLSchema-instance">/,
    );
    expect(xml).toContain(`<id root="${ID}"/>`);
    expect(xml).toContain(`<center value="${ecg.acquiredAtRaw}"/>`);
    expect(xml).toContain(`<code code="RHYTHM" codeSystem="2.16.840.1.113883.5.4"`);
    expect(xml).toMatch(/<value xsi:type="GLIST_TS">\s*<head value="[^"]+"\/>\s*<increment value="0.002" unit="s"\/>/);
    expect(xml.match(/xsi:type="SLIST_PQ"/g)).toHaveLength(12);
    expect(xml.match(/<origin value="0" unit="uV"\/>/g)).toHaveLength(12);
    for (const n of STANDARD_LEADS)
      expect(xml).toContain(
        `<code code="${mdcLeadCode(n)}" codeSystem="2.16.840.1.113883.6.24" codeSystemName="MDC"/>`,
      );
    expect(xml).toContain("was derived by vitalgate from leads I and II");
  });

  it("lead codes as the FDA example spells them", () => {
    expect(STANDARD_LEADS.map(mdcLeadCode)).toEqual([
      "MDC_ECG_LEAD_I",
      "MDC_ECG_LEAD_II",
      "MDC_ECG_LEAD_III",
      "MDC_ECG_LEAD_AVR",
      "MDC_ECG_LEAD_AVL",
      "MDC_ECG_LEAD_AVF",
      "MDC_ECG_LEAD_V1",
      "MDC_ECG_LEAD_V2",
      "MDC_ECG_LEAD_V3",
      "MDC_ECG_LEAD_V4",
      "MDC_ECG_LEAD_V5",
      "MDC_ECG_LEAD_V6",
    ]);
  });

  it("measurements, statements (escaped, any language), device and patient come back", () => {
    const e: Ecg12 = {
      ...ecg,
      measurements: {
        heartRate: 72,
        rrMs: 833,
        prMs: 160,
        qrsMs: 92,
        qtMs: 380,
        qtcMs: 416,
        pAxisDeg: 50,
        qrsAxisDeg: -30,
        tAxisDeg: 40,
      },
      statements: ["窦性心律 <正常> & 'ok'", 'RITMO SINUSALE "ECG NORMALE"'],
      device: { make: "Acme & Co", model: "C<1>", serial: "SN-1", software: "2.0" },
      patient: { id: "P-1", name: "ZHANG^SAN", sex: "M", birthDate: "19700101" },
    };
    const { back } = roundTrip(e);
    expect(back.measurements).toEqual(e.measurements);
    expect(back.statements).toEqual(e.statements);
    expect(back.device).toEqual(e.device);
    expect(back.patient).toEqual(e.patient);
    expect(back.acquiredAt).toBe(e.acquiredAt);
    expect(exportAecg(e, { id: ID, omitPatient: true })).not.toContain("ZHANG");
  });

  it("refuses an id that is not a UUID, or no sampling rate", () => {
    expect(() => exportAecg(ecg, { id: "not-a-uuid" })).toThrow(/UUID/);
    expect(() => exportAecg({ ...ecg, fs: 0 }, { id: ID })).toThrow(/sampling rate/);
  });

  it("acquisition time as HL7 TS: the device's own when readable, else UTC", () => {
    expect(hl7Time({ acquiredAtRaw: "20130125105919" })).toBe("20130125105919");
    expect(hl7Time({ acquiredAtRaw: "2011-12-01T07:27:34" })).toBe("20111201072734");
    expect(hl7Time({ acquiredAtRaw: "2011-12-01T07:27:34.250+08:00" })).toBe("20111201072734.250+0800");
    expect(hl7Time({ acquiredAtRaw: "yesterday", acquiredAt: "2026-11-23T07:30:00.000Z" })).toBe(
      "20261123073000.000+0000",
    );
    expect(hl7Time({})).toBeUndefined();
  });
});

describe("exportAecg → decodeHl7Aecg: the same leads", () => {
  it("our DICOM fixtures (8 stored leads + 4 derived; 12 leads at 2.45 µV per unit)", () => {
    for (const name of ["general-ecg-8lead-explicit.dcm", "twelve-lead-implicit-vr.dcm"]) {
      const ecg = ok(decodeDicomEcg(ownFixture(name)));
      const { back } = roundTrip(ecg);
      expectSameLeads(ecg, back);
      expect(back.acquiredAtRaw).toBe(ecg.acquiredAtRaw);
    }
  });

  it("our aECG fixture (limb leads derived), through export and back", () => {
    const ecg = ok(decodeHl7Aecg(ownFixture("aecg-limb-leads-I-II-only.xml")));
    const { back } = roundTrip(ecg);
    expectSameLeads(ecg, back);
    expect(back.statements).toEqual(ecg.statements);
    expect(back.measurements).toEqual(ecg.measurements);
    expect(back.acquiredAt).toBe(ecg.acquiredAt);
  });

  const dicom = sharedFixtures("dicom-ecg", "the aECG export of the real DICOM ECG");
  it.skipIf(!dicom.present)("the Mortara DICOM (12 × 10000 at 1000 Hz, 1.25 µV)", () => {
    const ecg = ok(decodeDicomEcg(dicom.read("pydicom_waveform_ecg.dcm")));
    const { back } = roundTrip(ecg);
    expectSameLeads(ecg, back);
    expect(back.measurements).toEqual(ecg.measurements);
    expect(back.statements).toEqual(["RITMO SINUSALE", "ECG NORMALE"]);
    expect(back.device).toMatchObject({ make: "Mortara Instrument, Inc.", model: "el250" });
    // The median beats (12 × 1200 at 1000 Hz) travel as a REPRESENTATIVE_BEAT derived series.
    expectSameLeads({ ...ecg, ...ecg.representativeBeats! }, { ...back, ...back.representativeBeats! });
  });

  const philips = sharedFixtures("philips-sierraecg", "the aECG export of the real Philips files");
  it.skipIf(!philips.present)("the Philips 1.04 and 1.03 exports (12 × 5500 at 500 Hz, 5 µV)", () => {
    for (const name of ["2020-5-18_15-48-11.xml", "129DYPRG.XML"]) {
      const ecg = ok(decodePhilipsEcg(philips.read(name)));
      const { back } = roundTrip(ecg);
      expectSameLeads(ecg, back);
      expect(back.measurements).toEqual(ecg.measurements);
      expect(back.statements).toEqual(ecg.statements);
      expect(back.device).toEqual(ecg.device);
      expect(back.leads.map((l) => l.samples[2750])).toEqual(ecg.leads.map((l) => l.samples[2750]));
      expectSameLeads({ ...ecg, ...ecg.representativeBeats! }, { ...back, ...back.representativeBeats! });
    }
  });

  const fda = sharedFixtures("aecg", "the aECG export of the FDA example");
  it.skipIf(!fda.present)("the FDA example aECG, decoded, exported and decoded again", () => {
    const ecg = ok(decodeHl7Aecg(fda.read("FDA_HL7_Example_aECG.xml")));
    const { back } = roundTrip(ecg);
    expectSameLeads(ecg, back);
  });
});
