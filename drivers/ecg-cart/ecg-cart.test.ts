import { describe, expect, it } from "vitest";
import { ownFixture, sharedFixtures } from "../../test/fixtures/ecg/files.ts";
import { decodeDicomEcg } from "../../protocols/dicom-ecg/index.ts";
import { decodeEcgFile, sniffEcgFormat } from "../../protocols/ecg/files.ts";
import { decodeLeads, LEAD_ENCODING, type CompactLead } from "../../protocols/ecg/compact-leads.ts";
import { ecg12FromBody, intLead } from "../../src/events/ecg12.ts";
import { ecgCartOptions, handleEcgFile } from "./index.ts";

const options = ecgCartOptions.parse({ dir: "/unused" });
const shared = {
  dicom: sharedFixtures("dicom-ecg", "the real DICOM ECG"),
  philips: sharedFixtures("philips-sierraecg", "the real Philips ECGs"),
  aecg: sharedFixtures("aecg", "the real aECG"),
  realWorld: sharedFixtures("real-world/ecg", "the real GE MUSE and SCP-ECG files"),
};

type WireLead = CompactLead;
/** Each lead's microvolts, decoded from the wire as docs/protocol.md says a center does. */
const microvoltsOf = (leads: WireLead[]) => {
  const samples = decodeLeads(leads);
  return leads.map((l) => Array.from(samples.get(l.name)!, (v) => v * l.uvPerUnit + 0));
};

/** The leads the file's own decoder gives, as the driver hands them to the wire. */
function decodeEcgAgain(bytes: Uint8Array) {
  const format = sniffEcgFormat(bytes)!;
  const r = decodeEcgFile(format, bytes);
  if (!r.ok) throw new Error(r.error.message);
  return r.ecg.leads;
}

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
    const uv = microvoltsOf(body.leads);
    for (const i of body.leads.keys()) {
      const want = Array.from(decoded.ecg.leads[i]!.samples, (v) => v * decoded.ecg.leads[i]!.uvPerUnit + 0); // +0: no -0
      expect(uv[i]).toEqual(want);
    }
    expect(body.leads.filter((l) => l.derived).map((l) => l.name)).toEqual(["III", "aVR", "aVL", "aVF"]);
    expect(body.warnings?.map((w) => w.code)).toContain("ECG_DERIVED");
    expect(draft.deviceTime).toBe("2026-11-23T07:30:00.000Z");
    expect(draft.original).toEqual({ contentType: "application/dicom", bytes });
  });

  it.skipIf(!shared.dicom.present || !shared.philips.present || !shared.aecg.present || !shared.realWorld.present)(
    "sends the leads compact (zlib of int16 differences, limb leads as residuals of I and II), decoding bit-exact to the cart's samples",
    () => {
      const files = [
        shared.dicom.read("pydicom_waveform_ecg.dcm"),
        shared.philips.read("2020-5-18_15-48-11.xml"),
        shared.aecg.read("FDA_HL7_Example_aECG.xml"),
        shared.realWorld.read("braveheart_muse_example1.xml"),
        shared.realWorld.read("contec_demo.scp"),
        ownFixture("general-ecg-8lead-explicit.dcm"),
      ];
      for (const bytes of files) {
        const x = handleEcgFile(bytes, options);
        if (!x.ok) throw new Error(x.error.message);
        const format = (x.events[0]!.body as { format: string }).format;
        const decoded = decodeEcgAgain(bytes);
        const leads = (x.events[0]!.body as { leads: WireLead[] }).leads;
        expect(leads.every((l) => l.encoding === LEAD_ENCODING)).toBe(true);
        const got = decodeLeads(leads);
        for (const lead of decoded.map(intLead)) {
          // Bit-exact: the very int16 samples (and µV per unit) the decoder gave the gateway.
          expect(
            Buffer.from(got.get(lead.name)!.buffer).equals(Buffer.from(lead.samples.buffer)),
            `${format} ${lead.name}`,
          ).toBe(true);
          expect(leads.find((l) => l.name === lead.name)!.uvPerUnit).toBe(lead.uvPerUnit);
        }
        // The page draws from the same body.
        expect(ecg12FromBody(x.events[0]!.body as Record<string, unknown>).leads.map((l) => l.samples.length)).toEqual(
          decoded.map((l) => l.samples.length),
        );
        // Compact: the leads' JSON is at most about half of the base64 samples earlier versions sent.
        const base64Bytes = (decoded.reduce((n, l) => n + l.samples.length * 2, 0) * 4) / 3;
        expect(JSON.stringify(leads).length).toBeLessThan(base64Bytes * 0.55);
      }
    },
  );

  it("refuses a lead whose data does not decode, naming the lead", () => {
    const x = ecgEvent(ownFixture("general-ecg-8lead-explicit.dcm"));
    const leads = structuredClone((x.body as { leads: WireLead[] }).leads);
    leads[1]!.data = Buffer.from("not zlib").toString("base64");
    expect(() => decodeLeads(leads)).toThrow(/lead II: data is not zlib/);
    leads[1]!.data = (x.body as { leads: WireLead[] }).leads[1]!.data;
    leads[0]!.n += 1;
    expect(() => decodeLeads(leads)).toThrow(/lead I: .* bytes where n = /);
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
      expect(microvoltsOf((mortara.body as { leads: WireLead[] }).leads)[0]!.slice(0, 5)).toEqual([
        100, 81.25, 62.5, 43.75, 46.25,
      ]);
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
