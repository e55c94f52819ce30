import { describe, expect, it } from "vitest";
import { decodeDicomEcg, dicomDateTimeToIso } from "./index.ts";
import type { Ecg12 } from "../ecg/index.ts";
import { allFixtures, SPECS, storedSamples, uvPerUnitOf } from "../../test/fixtures/ecg/make-fixtures.ts";
import { ownFixture as own, sharedFixtures } from "../../test/fixtures/ecg/files.ts";
import { prng } from "../../test/support/prng.ts";

const shared = sharedFixtures("dicom-ecg", "the real DICOM ECG");
const haveShared = shared.present;

function decoded(bytes: Uint8Array): Ecg12 {
  const r = decodeDicomEcg(bytes);
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.ecg;
}
const NAMES = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"];

describe("our synthetic DICOM fixtures (test/fixtures/ecg)", () => {
  it("are exactly what make-fixtures.ts writes", () => {
    for (const [name, bytes] of Object.entries(allFixtures())) {
      if (name.endsWith(".dcm")) expect(Buffer.compare(Buffer.from(own(name)), Buffer.from(bytes)), name).toBe(0);
    }
  });

  it("General ECG SOP class, explicit VR, 8 stored leads: limb leads derived, mV sensitivity, baseline, UTF-8 text", () => {
    const spec = SPECS["general-ecg-8lead-explicit.dcm"];
    const ecg = decoded(own("general-ecg-8lead-explicit.dcm"));
    expect(ecg.formatVersion).toBe("1.2.840.10008.5.1.4.1.1.9.1.2");
    expect(ecg.leads.map((l) => l.name)).toEqual(NAMES);
    expect(ecg.leads.filter((l) => l.derived).map((l) => l.name)).toEqual(["III", "aVR", "aVL", "aVF"]);
    expect(ecg.warnings.map((w) => w.code)).toEqual(["ECG_DERIVED"]);
    expect(ecg).toMatchObject({
      fs: 500,
      durationS: 10,
      acquiredAt: "2026-11-23T07:30:00.000Z",
      acquiredAtRaw: "20261123153000.000+0800",
    });
    const byName = Object.fromEntries(ecg.leads.map((l) => [l.name, l]));
    expect(byName.I!.uvPerUnit).toBeCloseTo(2.5, 12);
    for (const name of ["I", "II", "V1", "V5"] as const)
      expect(Array.from(byName[name]!.samples)).toEqual(Array.from(storedSamples(spec, name)));
    // V6 carries Channel Baseline 10: the decoded samples are stored + baseline.
    expect(Array.from(byName.V6!.samples.slice(0, 50))).toEqual(
      Array.from(storedSamples(spec, "V6").slice(0, 50), (v) => v + 10),
    );
    const i = byName.I!.samples;
    const ii = byName.II!.samples;
    expect(byName.III!.samples[150]).toBe(ii[150]! - i[150]!);
    expect(byName.aVR!.samples[150]).toBe(-(i[150]! + ii[150]!) / 2);
    expect(ecg.statements).toEqual(["SYNTHETIC SINUS RHYTHM", "合成数据 窦性心律"]);
    expect(ecg.measurements).toEqual({ qrsMs: 92, heartRate: 75, qtMs: 380 });
    expect(ecg.device).toEqual({ make: "vitalgate synthetic", model: "make-fixtures", serial: "SN-0001" });
    expect(ecg.patient).toEqual({ id: "SIM0001", name: "SYNTHETIC^PATIENT" });
  });

  it("implicit VR little endian: sequences found through the dictionary, correction factor applied", () => {
    const spec = SPECS["twelve-lead-implicit-vr.dcm"];
    const ecg = decoded(own("twelve-lead-implicit-vr.dcm"));
    expect(ecg.leads.map((l) => l.name)).toEqual(NAMES);
    expect(ecg.leads.every((l) => l.samples.length === 2500 && !l.derived)).toBe(true);
    expect(ecg.leads[0]!.uvPerUnit).toBeCloseTo(uvPerUnitOf(spec), 12); // 2.5 µV × 0.98
    expect(Array.from(ecg.leads[4]!.samples)).toEqual(Array.from(storedSamples(spec, "aVL")));
    expect(ecg.acquiredAt).toBeUndefined();
    expect(ecg.acquiredAtRaw).toBe("20261123153000");
    expect(ecg.warnings).toEqual([]);
  });

  it("refuses a truncated file, big endian and a non-ECG SOP class, naming what", () => {
    const cases: [string, string, RegExp][] = [
      ["truncated.dcm", "DICOM_TRUNCATED", /ends early/],
      ["big-endian.dcm", "DICOM_TRANSFER_SYNTAX", /1\.2\.840\.10008\.1\.2\.2 \(Explicit VR Big Endian/],
      [
        "wrong-sop-class.dcm",
        "DICOM_SOP_CLASS",
        /SOP class 1\.2\.840\.10008\.5\.1\.4\.1\.1\.2 \(CT Image Storage\) is not an ECG waveform/,
      ],
    ];
    for (const [name, code, message] of cases) {
      const r = decodeDicomEcg(own(name));
      expect(r.ok, name).toBe(false);
      if (!r.ok) {
        expect(r.error.code, name).toBe(code);
        expect(r.error.message, name).toMatch(message);
        expect(r.error.message).not.toMatch(/SIM0001|SYNTHETIC\^PATIENT/);
      }
    }
  });

  it("reads a bare data set (C-STORE) when told its transfer syntax, refuses one it is not told", () => {
    const file = own("general-ecg-8lead-explicit.dcm");
    // The data set starts after preamble, DICM and the meta group (its length is in (0002,0000)).
    const metaLength = new DataView(file.buffer, file.byteOffset).getUint32(132 + 8, true);
    const bare = file.subarray(132 + 12 + metaLength);
    const r = decodeDicomEcg(bare, { transferSyntax: "1.2.840.10008.1.2.1" });
    expect(r.ok && r.ecg.leads.length).toBe(12);
    expect(decodeDicomEcg(bare)).toMatchObject({ ok: false, error: { code: "DICOM_NOT_PART10" } });
    expect(decodeDicomEcg(bare, { transferSyntax: "1.2.840.10008.1.2.4.70" })).toMatchObject({
      ok: false,
      error: { code: "DICOM_TRANSFER_SYNTAX" },
    });
  });

  it("caps declared sample counts and channels", () => {
    const file = own("twelve-lead-implicit-vr.dcm");
    expect(decodeDicomEcg(file, { maxSamplesPerLead: 1000 })).toMatchObject({
      ok: false,
      error: { code: "DICOM_TOO_LONG" },
    });
    expect(decodeDicomEcg(file, { maxLeads: 8 })).toMatchObject({
      ok: false,
      error: { code: "DICOM_TOO_MANY_CHANNELS" },
    });
    expect(decodeDicomEcg(file, { maxBytes: 1000 })).toMatchObject({ ok: false, error: { code: "DICOM_TOO_LARGE" } });
  });
});

describe("dicomDateTimeToIso", () => {
  it("gives an instant only with a UTC offset", () => {
    expect(dicomDateTimeToIso("20261123153000.123456+0800")).toBe("2026-11-23T07:30:00.123Z");
    expect(dicomDateTimeToIso("202611231530-0130")).toBe("2026-11-23T17:00:00.000Z");
    expect(dicomDateTimeToIso("20261123153000", "+0800")).toBe("2026-11-23T07:30:00.000Z");
    expect(dicomDateTimeToIso("20261123153000")).toBeUndefined();
    expect(dicomDateTimeToIso("20260231120000+0000")).toBeUndefined();
    expect(dicomDateTimeToIso("garbage")).toBeUndefined();
  });
});

describe.skipIf(!haveShared)("real DICOM ECG (../shared/fixtures/dicom-ecg: Mortara ELI 250 via pydicom)", () => {
  const ecg = () => decoded(shared.read("pydicom_waveform_ecg.dcm"));

  it("RHYTHM group: 12 leads × 10000 samples at 1000 Hz, 1.25 µV per unit, first samples raw and in µV", () => {
    const e = ecg();
    expect(e.formatVersion).toBe("1.2.840.10008.5.1.4.1.1.9.1.1");
    expect(e.leads.map((l) => l.name)).toEqual(NAMES);
    expect(e.leads.map((l) => l.samples.length)).toEqual(Array(12).fill(10000));
    expect(e).toMatchObject({ fs: 1000, durationS: 10, warnings: [] });
    expect(e.leads.every((l) => l.uvPerUnit === 1.25 && !l.derived)).toBe(true);
    const [i, ii] = e.leads;
    expect(Array.from(i!.samples.slice(0, 5))).toEqual([80, 65, 50, 35, 37]);
    expect(Array.from(ii!.samples.slice(0, 5))).toEqual([90, 85, 80, 75, 77]);
    expect(Array.from(i!.samples.slice(0, 5), (v) => v * i!.uvPerUnit)).toEqual([100, 81.25, 62.5, 43.75, 46.25]);
  });

  it("MEDIAN BEAT group as representative beats: 12 × 1200", () => {
    const beats = ecg().representativeBeats!;
    expect(beats.fs).toBe(1000);
    expect(beats.leads.map((l) => l.samples.length)).toEqual(Array(12).fill(1200));
    expect(Array.from(beats.leads[0]!.samples.slice(0, 5))).toEqual([10, 10, 30, 35, 25]);
    expect(Array.from(beats.leads[1]!.samples.slice(0, 5))).toEqual([80, 80, 80, 85, 80]);
  });

  it("annotations: statements and the cart's measurements; equipment; time kept raw", () => {
    const e = ecg();
    expect(e.statements).toEqual(["RITMO SINUSALE", "ECG NORMALE"]);
    expect(e.measurements).toEqual({
      rrMs: 982,
      prMs: 161,
      qrsMs: 75,
      qtMs: 368,
      qtcMs: 370,
      pAxisDeg: 74,
      qrsAxisDeg: 52,
      tAxisDeg: 57,
    });
    expect(e.device).toMatchObject({ make: "Mortara Instrument, Inc.", model: "el250" });
    expect(e.acquiredAtRaw).toBe("20130125105919");
    expect(e.acquiredAt).toBeUndefined();
  });
});

describe("decodeDicomEcg: fuzz (seeded)", () => {
  const bases: [string, Uint8Array][] = [
    ["explicit", own("general-ecg-8lead-explicit.dcm")],
    ["implicit", own("twelve-lead-implicit-vr.dcm")],
    ...(haveShared ? [["mortara", shared.read("pydicom_waveform_ecg.dcm")] as [string, Uint8Array]] : []),
  ];

  function check(bytes: Uint8Array, label: string): void {
    const t0 = performance.now();
    const r = decodeDicomEcg(bytes);
    expect(performance.now() - t0, label).toBeLessThan(2000);
    if (!r.ok) {
      expect(r.error.code, label).toMatch(/^DICOM_/);
      expect(r.error.code, label).not.toBe("DICOM_INTERNAL");
      expect(r.error.message.length, label).toBeGreaterThan(5);
    } else {
      for (const l of r.ecg.leads) expect(l.samples.length, label).toBeLessThanOrEqual(2_000_000);
    }
  }

  it("truncated at random points and bit-flipped, in the header and anywhere", () => {
    const rand = prng(21);
    for (const [name, base] of bases) {
      for (let i = 0; i < 40; i++) {
        const b = Uint8Array.from(base);
        const flips = 1 + Math.floor(rand() * 8);
        // Most flips in the first 2 KB, where the structure is; the rest anywhere.
        for (let k = 0; k < flips; k++) {
          const at = rand() < 0.8 ? Math.floor(rand() * Math.min(2048, b.length)) : Math.floor(rand() * b.length);
          b[at] = b[at]! ^ (1 << Math.floor(rand() * 8));
        }
        check(b, `${name} flip ${i}`);
        check(base.subarray(0, Math.floor(rand() * base.length)), `${name} cut ${i}`);
      }
    }
  });

  it("huge declared lengths: every length field set to 0xFFFFFFF0 or 0x7FFF in turn", () => {
    const base = own("twelve-lead-implicit-vr.dcm");
    const view = new DataView(base.buffer, base.byteOffset, base.byteLength);
    // Implicit VR: every element is tag (4) + length (4); walk the top level and the waveform sequence.
    let count = 0;
    for (let at = 132; at + 8 <= base.length && count < 400; at += 2) {
      const group = view.getUint16(at, true);
      if (group !== 0x0008 && group !== 0x003a && group !== 0x5400 && group !== 0x0040) continue;
      for (const huge of [0xfffffff0, 0x7fff, 0xffffffff]) {
        const b = Uint8Array.from(base);
        new DataView(b.buffer).setUint32(at + 4, huge, true);
        check(b, `length ${huge} at ${at}`);
      }
      count++;
    }
    expect(count).toBeGreaterThan(20);
  });

  it("declared channel and sample counts far beyond the data", () => {
    const base = own("general-ecg-8lead-explicit.dcm");
    const text = Buffer.from(base).toString("latin1");
    // (003A,0010) UL: Number of Waveform Samples, explicit VR: tag, "UL", length 4, value.
    const at = text.indexOf("\x3a\x00\x10\x00UL");
    expect(at).toBeGreaterThan(0);
    for (const n of [0, 1, 4_999, 5_001, 1_000_000, 0xffffffff]) {
      const b = Uint8Array.from(base);
      new DataView(b.buffer).setUint32(at + 8, n, true);
      const r = decodeDicomEcg(b);
      if (n <= 5000 && n > 0) expect(r.ok, String(n)).toBe(true);
      else expect(!r.ok && r.error.code, String(n)).toMatch(/DICOM_(TRUNCATED|TOO_LONG|NO_SAMPLES)/);
    }
  });
});
