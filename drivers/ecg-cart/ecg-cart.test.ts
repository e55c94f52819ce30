import { describe, expect, it } from "vitest";
import { ownFixture, sharedFixtures } from "../../test/fixtures/ecg/files.ts";
import { decodeDicomEcg } from "../../protocols/dicom-ecg/index.ts";
import { sniffEcgFormat } from "../../protocols/ecg/files.ts";
import { ecgCartOptions, handleEcgFile } from "./index.ts";

const options = ecgCartOptions.parse({ dir: "/unused" });
const shared = {
  dicom: sharedFixtures("dicom-ecg", "the real DICOM ECG"),
  philips: sharedFixtures("philips-sierraecg", "the real Philips ECGs"),
  aecg: sharedFixtures("aecg", "the real aECG"),
  realWorld: sharedFixtures("real-world/ecg", "the real GE MUSE and SCP-ECG files"),
};

interface WireLead {
  name: string;
  samples: string;
  uvPerUnit: number;
  derived?: boolean;
}
const microvolts = (lead: WireLead) =>
  Array.from(new Int16Array(new Uint8Array(Buffer.from(lead.samples, "base64")).buffer), (v) => v * lead.uvPerUnit + 0);

function ecgEvent(bytes: Uint8Array) {
  const x = handleEcgFile(bytes, options);
  if (!x.ok) throw new Error(`${x.error.code}: ${x.error.message}`);
  expect(x.events).toHaveLength(1);
  return x.events[0]!;
}

describe("ecg-cart", () => {
  it("tells the formats apart by content", () => {
    expect(sniffEcgFormat(ownFixture("general-ecg-8lead-explicit.dcm"))).toBe("dicom-ecg");
    expect(sniffEcgFormat(ownFixture("aecg-limb-leads-I-II-only.xml"))).toBe("hl7-aecg");
    expect(sniffEcgFormat(new TextEncoder().encode("MSH|^~\\&|"))).toBeUndefined();
  });

  it("makes one ecg12 event with the twelve leads in µV on the wire, the original file, and the cart's identity", () => {
    const bytes = ownFixture("general-ecg-8lead-explicit.dcm");
    const draft = ecgEvent(bytes);
    const decoded = decodeDicomEcg(bytes);
    if (!decoded.ok) throw new Error(decoded.error.message);
    const body = draft.body as { format: string; fs: number; leads: WireLead[]; warnings?: { code: string }[] };
    expect(draft.kind).toBe("ecg12");
    expect(body.format).toBe("dicom-ecg");
    expect(body.leads.map((l) => l.name)).toEqual([
      "I",
      "II",
      "III",
      "aVR",
      "aVL",
      "aVF",
      "V1",
      "V2",
      "V3",
      "V4",
      "V5",
      "V6",
    ]);
    // Every lead, including the derived ones with half units, carries the decoder's microvolts exactly.
    for (const [i, lead] of body.leads.entries()) {
      const want = Array.from(decoded.ecg.leads[i]!.samples, (v) => v * decoded.ecg.leads[i]!.uvPerUnit + 0); // +0: no -0
      expect(microvolts(lead)).toEqual(want);
    }
    expect(body.leads.filter((l) => l.derived).map((l) => l.name)).toEqual(["III", "aVR", "aVL", "aVF"]);
    expect(body.warnings?.map((w) => w.code)).toContain("ECG_DERIVED");
    expect(draft.deviceTime).toBe("2026-11-23T07:30:00.000Z");
    expect(draft.original).toEqual({ contentType: "application/dicom", bytes });
  });

  it("refuses what no decoder reads, saying what and why", () => {
    const unknown = handleEcgFile(new TextEncoder().encode("just some text"), options);
    expect(unknown).toMatchObject({ ok: false, error: { code: "ECG_UNKNOWN_FORMAT" } });
    expect(handleEcgFile(ownFixture("truncated.dcm"), options)).toMatchObject({
      ok: false,
      error: { code: "DICOM_TRUNCATED" },
    });
    expect(handleEcgFile(ownFixture("wrong-sop-class.dcm"), options)).toMatchObject({
      ok: false,
      error: { code: "DICOM_SOP_CLASS" },
    });
  });

  it.skipIf(!shared.dicom.present || !shared.philips.present || !shared.aecg.present)(
    "reads the real carts' files: Mortara DICOM, Philips PageWriter XML, the FDA aECG",
    () => {
      const mortara = ecgEvent(shared.dicom.read("pydicom_waveform_ecg.dcm"));
      const leadI = (mortara.body as { leads: WireLead[] }).leads[0]!;
      expect(microvolts(leadI).slice(0, 5)).toEqual([100, 81.25, 62.5, 43.75, 46.25]);
      expect(mortara.model).toMatch(/Mortara/);
      const philips = ecgEvent(shared.philips.read("2020-5-18_15-48-11.xml"));
      expect((philips.body as { leads: WireLead[] }).leads).toHaveLength(12);
      expect(philips.serial).toBe("US71621374");
      expect(philips.original?.contentType).toBe("application/xml");
      const fda = ecgEvent(shared.aecg.read("FDA_HL7_Example_aECG.xml"));
      expect((fda.body as { fs: number }).fs).toBe(500);
      expect(handleEcgFile(shared.philips.read("invalid-doc-type.xml"), options)).toMatchObject({
        ok: false,
        error: { code: "PHILIPS_UNSUPPORTED" },
      });
    },
  );
});

describe.skipIf(!shared.realWorld.present)(
  "ecg-cart: GE MUSE XML and SCP-ECG files (../shared/fixtures/real-world/ecg)",
  () => {
    it("tells them apart by content, whatever they are named, and makes one ecg12 event each", () => {
      const muse = shared.realWorld.read("braveheart_muse_example1.xml");
      const scp = shared.realWorld.read("contec_demo.scp");
      expect(sniffEcgFormat(muse)).toBe("ge-muse");
      expect(sniffEcgFormat(scp)).toBe("scp-ecg");
      const m = ecgEvent(muse);
      expect(m.body).toMatchObject({ format: "ge-muse", fs: 500, durationS: 10 });
      expect((m.body as { leads: WireLead[] }).leads.map((l) => l.name)).toEqual([
        "I",
        "II",
        "III",
        "aVR",
        "aVL",
        "aVF",
        "V1",
        "V2",
        "V3",
        "V4",
        "V5",
        "V6",
      ]);
      expect(m.original?.contentType).toBe("application/xml");
      expect(m.serial).toBe("SKJ18310123PA");
      const s = ecgEvent(scp);
      expect(s.body).toMatchObject({ format: "scp-ecg", fs: 1000 });
      expect(s.original).toEqual({ contentType: "application/octet-stream", bytes: scp });
      expect(s.deviceTimeRaw).toBe("2004-06-24T16:52:16");
      // A cut SCP-ECG file is still known by its header, and refused by the decoder, not as unknown.
      expect(handleEcgFile(scp.subarray(0, 5000), options)).toMatchObject({
        ok: false,
        error: { code: "SCP_TRUNCATED" },
      });
    });
  },
);
