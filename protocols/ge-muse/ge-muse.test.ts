import { crc32 as zlibCrc32 } from "node:zlib";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { crc32, decodeGeMuse } from "./index.ts";
import type { Ecg12 } from "../ecg/index.ts";
import { renderEcgSvg } from "../ecg/svg.ts";
import { decodeHl7Aecg } from "../hl7-aecg/index.ts";
import { exportAecg } from "../hl7-aecg/export.ts";
import { sharedFixtures } from "../../test/fixtures/ecg/files.ts";

const realWorld = sharedFixtures("real-world/ecg", "the real GE MUSE XML exports");
const haveMuse = realWorld.present && realWorld.list().includes("braveheart_muse_example1.xml");
const enc = new TextEncoder();

function decoded(bytes: Uint8Array): Ecg12 {
  const r = decodeGeMuse(bytes);
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.ecg;
}

/** A separate, minimal reading of a MUSE file: per waveform type and lead, the base64 as int16 LE. */
function readByHand(xml: string): Map<string, Int16Array> {
  const out = new Map<string, Int16Array>();
  for (const w of xml.matchAll(/<Waveform>([\s\S]*?)<\/Waveform>/g)) {
    const type = /<WaveformType>(\w+)<\/WaveformType>/.exec(w[1]!)![1]!;
    for (const d of w[1]!.matchAll(/<LeadData>([\s\S]*?)<\/LeadData>/g)) {
      const id = /<LeadID>([^<]+)<\/LeadID>/.exec(d[1]!)![1]!;
      const bytes = Buffer.from(/<WaveFormData>([^<]*)<\/WaveFormData>/.exec(d[1]!)![1]!.replace(/\s/g, ""), "base64");
      expect(zlibCrc32(bytes), `${type} ${id} CRC`).toBe(Number(/<LeadDataCRC32>(\d+)</.exec(d[1]!)![1]));
      out.set(
        `${type} ${id}`,
        Int16Array.from({ length: bytes.length / 2 }, (_, i) => bytes.readInt16LE(2 * i)),
      );
    }
  }
  return out;
}

// ---- a MUSE export written by this test, in the shape of the real ones (element names as exported) ----

const LEADS12 = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"];

function leadData(id: string, samples: number[], opts: { crc?: number; bytes?: number } = {}): string {
  const b = Buffer.alloc(samples.length * 2);
  samples.forEach((v, i) => b.writeInt16LE(v, 2 * i));
  return `<LeadData><LeadByteCountTotal>${opts.bytes ?? b.length}</LeadByteCountTotal><LeadTimeOffset>0</LeadTimeOffset><LeadSampleCountTotal>${samples.length}</LeadSampleCountTotal><LeadAmplitudeUnitsPerBit>4.88</LeadAmplitudeUnitsPerBit><LeadAmplitudeUnits>MICROVOLTS</LeadAmplitudeUnits><LeadHighLimit>32767</LeadHighLimit><LeadLowLimit>-32768</LeadLowLimit><LeadID>${id}</LeadID><LeadOffsetFirstSample>0</LeadOffsetFirstSample><FirstSampleBaseline>0</FirstSampleBaseline><LeadSampleSize>2</LeadSampleSize><LeadOff>FALSE</LeadOff><BaselineSway>FALSE</BaselineSway><LeadDataCRC32>${opts.crc ?? zlibCrc32(b)}</LeadDataCRC32><WaveFormData>\n${b.toString("base64").replace(/(.{68})/g, "$1\n")}\n</WaveFormData></LeadData>`;
}

function waveform(type: string, leads: string[], n: number, fs = 500): string {
  return `<Waveform><WaveformType>${type}</WaveformType><WaveformStartTime>0</WaveformStartTime><NumberofLeads>${leads.length}</NumberofLeads><SampleType>CONTINUOUS_SAMPLES</SampleType><SampleBase>${fs}</SampleBase><SampleExponent>0</SampleExponent>${leads
    .map((id, l) =>
      leadData(
        id,
        Array.from({ length: n }, (_, i) => Math.round(300 * Math.sin((i + 7 * l) / 30))),
      ),
    )
    .join("")}</Waveform>`;
}

function museXml(body: string): string {
  return `<?xml version="1.0" encoding="ISO-8859-1"?>\n<!DOCTYPE RestingECG SYSTEM "restecg.dtd">\n<RestingECG><MuseInfo><MuseVersion>8.0.2.10132</MuseVersion></MuseInfo>${body}</RestingECG>`;
}

const DEMOGRAPHICS = `<PatientDemographics><PatientID>MRN-77</PatientID><PatientAge>66</PatientAge><DateofBirth>03-09-1960</DateofBirth><Gender>FEMALE</Gender><PatientLastName>Müller</PatientLastName><PatientFirstName>Anna</PatientFirstName></PatientDemographics><TestDemographics><DataType>RESTING</DataType><Site>1</Site><AcquisitionDevice>MAC55</AcquisitionDevice><Status>CONFIRMED</Status><CartNumber>7</CartNumber><AcquisitionTime>10:30:05</AcquisitionTime><AcquisitionDate>12-07-2026</AcquisitionDate><AcquisitionSoftwareVersion>010A</AcquisitionSoftwareVersion></TestDemographics>`;
const DIAGNOSIS = `<Diagnosis><Modality>RESTING</Modality><DiagnosisStatement><StmtFlag>ENDSLINE</StmtFlag><StmtText>Normal sinus rhythm</StmtText></DiagnosisStatement><DiagnosisStatement><StmtText>Left axis deviation</StmtText></DiagnosisStatement><DiagnosisStatement><StmtFlag>ENDSLINE</StmtFlag><StmtText>, possible anterior infarct</StmtText></DiagnosisStatement><DiagnosisStatement><StmtFlag>ENDSLINE</StmtFlag><StmtText>Abnormal ECG</StmtText></DiagnosisStatement></Diagnosis>`;

describe.skipIf(!haveMuse)("real GE MUSE exports (../shared/fixtures/real-world/ecg, BRAVEHEART's examples)", () => {
  for (const name of ["braveheart_muse_example1.xml", "braveheart_muse_example2.xml"]) {
    it(`${name}: every stored sample as a separate reading gives it, limb leads derived from I and II`, () => {
      const bytes = realWorld.read(name);
      const ecg = decoded(bytes);
      const byHand = readByHand(new TextDecoder("latin1").decode(bytes));
      expect(ecg).toMatchObject({ format: "ge-muse", formatVersion: "MUSE 9.0.7.17363", fs: 500, durationS: 10 });
      expect(ecg.leads.map((l) => l.name)).toEqual(LEADS12);
      for (const l of ecg.leads.filter((x) => !x.derived)) {
        expect(Array.from(l.samples), l.name).toEqual(Array.from(byHand.get(`Rhythm ${l.name}`)!));
        expect(l.uvPerUnit).toBe(4.88);
      }
      expect(ecg.leads.filter((l) => l.derived).map((l) => l.name)).toEqual(["III", "aVR", "aVL", "aVF"]);
      const I = byHand.get("Rhythm I")!;
      const II = byHand.get("Rhythm II")!;
      const by = Object.fromEntries(ecg.leads.map((l) => [l.name, l.samples]));
      for (let i = 0; i < I.length; i += 97) {
        expect(by.III![i]).toBe(II[i]! - I[i]!);
        expect(by.aVR![i]).toBe(-(I[i]! + II[i]!) / 2);
        expect(by.aVL![i]).toBe(I[i]! - II[i]! / 2);
        expect(by.aVF![i]).toBe(II[i]! - I[i]! / 2);
      }
      expect(ecg.representativeBeats?.fs).toBe(500);
      expect(ecg.representativeBeats?.leads.map((l) => l.samples.length)).toEqual(Array(8).fill(600));
      expect(Array.from(ecg.representativeBeats!.leads[1]!.samples)).toEqual(Array.from(byHand.get("Median II")!));
      expect(ecg.warnings.map((w) => w.code)).toEqual(["ECG_DERIVED"]);
      expect(ecg.device?.make).toBe("GE");
    });
  }

  it("example1: the cart's measurements, QTc Fridericia beside Bazett", () => {
    const ecg = decoded(realWorld.read("braveheart_muse_example1.xml"));
    expect(ecg.measurements).toEqual({
      heartRate: 48,
      rrMs: 1242,
      prMs: 138,
      qrsMs: 96,
      qtMs: 452,
      qtcMs: 403,
      qtcFridericiaMs: 419,
      pAxisDeg: 51,
      qrsAxisDeg: 20,
      tAxisDeg: 40,
    });
  });

  it("draws on paper and exports to aECG, which reads back to the same leads in µV", () => {
    const ecg = decoded(realWorld.read("braveheart_muse_example2.xml"));
    const svg = renderEcgSvg(ecg);
    expect(svg).toContain("QTcF 431 ms");
    expect(svg).toContain('data-lead="aVF"');
    const back = decodeHl7Aecg(enc.encode(exportAecg(ecg, { id: "0193a4c2-7b1e-7000-8000-000000000002" })));
    expect(back.ok).toBe(true);
    if (back.ok)
      for (const l of ecg.leads) {
        const b = back.ecg.leads.find((x) => x.name === l.name)!;
        expect(
          Array.from(b.samples).map((v) => v * b.uvPerUnit + 0),
          l.name,
        ).toEqual(Array.from(l.samples).map((v) => v * l.uvPerUnit + 0));
      }
  });

  it("a damaged copy is refused, naming the waveform and lead", () => {
    const text = new TextDecoder("latin1").decode(realWorld.read("braveheart_muse_example1.xml"));
    // One base64 character of the rhythm's V3 changed (still valid base64): the CRC-32 catches it.
    const at = text.indexOf("<WaveFormData>", text.indexOf("<LeadID>V3</LeadID>", text.indexOf("Rhythm"))) + 20;
    const damagedText = text.slice(0, at) + (text[at] === "A" ? "B" : "A") + text.slice(at + 1);
    const r = decodeGeMuse(Buffer.from(damagedText, "latin1"));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe("MUSE_CRC");
      expect(r.error.where).toBe("Waveform[Rhythm]/LeadData[5] (V3)");
      expect(r.error.message).toMatch(/^Rhythm lead V3: the waveform data fail their CRC-32 check/);
    }
  });
});

describe("GE MUSE XML written by this test (element names as in real exports)", () => {
  it("12 stored leads, demographics, acquisition time, statement lines joined up to ENDSLINE", () => {
    // ISO-8859-1, as the declaration says and MUSE writes.
    const ecg = decoded(
      Buffer.from(
        museXml(
          DEMOGRAPHICS +
            "<RestingECGMeasurements><VentricularRate>71</VentricularRate><QTCorrected>430</QTCorrected></RestingECGMeasurements>" +
            DIAGNOSIS +
            waveform("Median", LEADS12, 600) +
            waveform("Rhythm", LEADS12, 5000),
        ),
        "latin1",
      ),
    );
    expect(ecg.leads.map((l) => l.name)).toEqual(LEADS12);
    expect(ecg.leads.some((l) => l.derived)).toBe(false);
    expect(ecg.warnings).toEqual([]);
    expect(ecg).toMatchObject({
      formatVersion: "MUSE 8.0.2.10132",
      acquiredAtRaw: "2026-12-07T10:30:05",
      measurements: { heartRate: 71, qtcMs: 430 },
    });
    expect(ecg.acquiredAt).toBeUndefined();
    expect(ecg.patient).toEqual({ id: "MRN-77", name: "Müller, Anna", sex: "FEMALE", birthDate: "1960-03-09" });
    expect(ecg.device).toEqual({ make: "GE", model: "MAC55", serial: "7", software: "010A" });
    expect(ecg.statements).toEqual([
      "Normal sinus rhythm",
      "Left axis deviation , possible anterior infarct",
      "Abnormal ECG",
    ]);
  });

  it("offsets other than 0 (never seen in an export) are flagged, not silently applied or dropped", () => {
    const xml = museXml(waveform("Rhythm", ["I", "II"], 1000)).replace(
      "<FirstSampleBaseline>0</FirstSampleBaseline>",
      "<FirstSampleBaseline>-12</FirstSampleBaseline>",
    );
    const ecg = decoded(enc.encode(xml));
    expect(ecg.warnings.find((w) => w.code === "MUSE_OFFSETS")?.message).toBe(
      "Rhythm leads with offsets other than 0, not applied (drawn as stored): I FirstSampleBaseline -12",
    );
  });

  it("CRC-32 is zlib's", () => {
    const b = enc.encode("123456789");
    expect(crc32(b)).toBe(0xcbf43926);
    expect(crc32(b)).toBe(zlibCrc32(b));
  });

  it("refuses what is wrong, naming it", () => {
    const cases: [string, string, RegExp][] = [
      [museXml(waveform("Median", ["I"], 10)), "MUSE_NO_RHYTHM", /no <Waveform> of type Rhythm \(1 waveform: median\)/],
      [
        museXml(
          `<Waveform><WaveformType>Rhythm</WaveformType><SampleBase>500</SampleBase>${leadData("II", [1, 2, 3], { crc: 1 })}</Waveform>`,
        ),
        "MUSE_CRC",
        /^Rhythm lead II: .*CRC-32/,
      ],
      [
        museXml(
          `<Waveform><WaveformType>Rhythm</WaveformType><SampleBase>500</SampleBase>${leadData("II", [1, 2, 3], { bytes: 8 })}</Waveform>`,
        ),
        "MUSE_BYTE_COUNT",
        /LeadByteCountTotal says 8 bytes, <WaveFormData> holds 6/,
      ],
      [
        museXml(
          `<Waveform><WaveformType>Rhythm</WaveformType><SampleBase>500</SampleBase>${leadData("II", [1, 2, 3]).replace(/<WaveFormData>[^<]*/, "<WaveFormData>AQ*C")}</Waveform>`,
        ),
        "MUSE_BASE64",
        /not valid base64/,
      ],
      [
        museXml(`<Waveform><WaveformType>Rhythm</WaveformType>${leadData("II", [1])}</Waveform>`),
        "MUSE_NO_RATE",
        /SampleBase/,
      ],
      [museXml(waveform("Rhythm", ["I"], 10)).replace('SYSTEM "restecg.dtd"', '[<!ENTITY x "y">]'), "MUSE_DTD", /DTD/],
      ["<restingecgdata/>", "MUSE_NOT_MUSE", /<restingecgdata>/],
      [museXml(waveform("Rhythm", ["I"], 10)).slice(0, -20), "MUSE_XML", /well-formed/],
    ];
    for (const [xml, code, message] of cases) {
      const r = decodeGeMuse(enc.encode(xml));
      expect(r.ok, code).toBe(false);
      if (!r.ok) {
        expect(r.error.code, xml.slice(0, 80)).toBe(code);
        expect(r.error.message).toMatch(message);
      }
    }
  });
});

describe("decodeGeMuse: fuzz (fast-check, seeded)", () => {
  const base = enc.encode(
    museXml(
      DEMOGRAPHICS + DIAGNOSIS + waveform("Median", ["I", "II"], 60) + waveform("Rhythm", ["I", "II", "V1"], 400),
    ),
  );

  function check(bytes: Uint8Array): void {
    const t0 = performance.now();
    const r = decodeGeMuse(bytes);
    expect(performance.now() - t0).toBeLessThan(2000);
    if (!r.ok) {
      expect(r.error.code).toMatch(/^MUSE_/);
      expect(r.error.code).not.toBe("MUSE_INTERNAL");
      expect(r.error.message).not.toContain("Müller");
    }
  }

  it("random bytes and mutated exports give a coded error, never a throw or a hang", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => check(b)),
      { seed: 21, numRuns: 200 },
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.option(fc.nat(base.length)),
        (edits, cut) => {
          const b = Uint8Array.from(base);
          for (const [at, v] of edits) b[at] = v;
          check(cut === null ? b : b.subarray(0, cut));
        },
      ),
      { seed: 22, numRuns: 300 },
    );
  });
});
