import { describe, expect, it } from "vitest";
import { decodePhilipsEcg, xliDecode, xliLzw, xliUndelta, xliUnpack } from "./index.ts";
import type { Ecg12 } from "../ecg/index.ts";
import { sharedFixtures } from "../../test/fixtures/ecg/files.ts";
import { prng } from "../../test/support/prng.ts";

const shared = sharedFixtures("philips-sierraecg", "the real Philips XML exports");
const haveShared = shared.present;
const enc = new TextEncoder();

function decoded(bytes: Uint8Array): Ecg12 {
  const r = decodePhilipsEcg(bytes);
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.ecg;
}

const NAMES = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"];

/** LZW-encodes bytes the way XLI expects (10-bit codes, MSB first, 1023 at the end, padding). */
function lzwEncode(input: Uint8Array): Uint8Array {
  const dict = new Map<string, number>();
  for (let i = 0; i < 256; i++) dict.set(String.fromCharCode(i), i);
  let next = 256;
  const codes: number[] = [];
  let w = "";
  for (const b of input) {
    const c = String.fromCharCode(b);
    if (dict.has(w + c)) w += c;
    else {
      codes.push(dict.get(w)!);
      if (next <= 1022) dict.set(w + c, next++);
      w = c;
    }
  }
  if (w) codes.push(dict.get(w)!);
  codes.push(1023);
  const bits: number[] = [];
  for (const code of codes) for (let k = 9; k >= 0; k--) bits.push((code >> k) & 1);
  for (let k = 0; k < 32; k++) bits.push(0); // the reader needs > 24 bits left to take a code
  const out = new Uint8Array(Math.ceil(bits.length / 8));
  bits.forEach((bit, i) => (out[i >> 3]! |= bit << (7 - (i & 7))));
  return out;
}

describe("XLI", () => {
  it("LZW round-trips, including the code defined by its own use (KwKwK)", () => {
    const input = enc.encode("ABABABABABABABAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBBBBBBB");
    const r = xliLzw(lzwEncode(input), 1 << 20);
    expect("bytes" in r && Array.from(r.bytes)).toEqual(Array.from(input));
  });

  it("keeps the dictionary once it is full (codes up to 1022)", () => {
    const rand = prng(11);
    const input = Uint8Array.from({ length: 20_000 }, () => Math.floor(rand() * 6));
    const r = xliLzw(lzwEncode(input), 1 << 20);
    expect("bytes" in r && Array.from(r.bytes)).toEqual(Array.from(input));
  });

  it("refuses a code beyond the dictionary, and output beyond the cap", () => {
    // Code 600 as the first code: nothing defines it yet.
    const bad = new Uint8Array(8);
    bad[0] = 600 >> 2;
    bad[1] = (600 & 3) << 6;
    const r = xliLzw(bad, 1000);
    expect("error" in r && r.error).toMatch(/not in the dictionary/);
    const big = xliLzw(lzwEncode(new Uint8Array(5000)), 100);
    expect("error" in big && big.error).toMatch(/more than 100 bytes/);
  });

  it("unpacks high and low halves into signed words, and undoes the second differences", () => {
    expect(Array.from(xliUnpack(Uint8Array.of(0x00, 0xff, 0x01, 0x10, 0xfe, 0x02)))).toEqual([0x0010, -2, 0x0102]);
    // Samples 10, 12, then each next = 2y − x − p: p starts at the header's value, then code − 64.
    expect(Array.from(xliUndelta(Int16Array.of(10, 12, 64 + 3, 64 - 1), 1))).toEqual([10, 12, 13, 11]);
  });

  it("reads chunk headers and refuses a size past the end", () => {
    const words = Int16Array.of(5, 7, 64, 64);
    const bytes = new Uint8Array(8);
    words.forEach((w, i) => {
      bytes[i] = (w >> 8) & 0xff;
      bytes[4 + i] = w & 0xff;
    });
    const lzw = lzwEncode(bytes);
    const chunk = new Uint8Array(8 + lzw.length);
    new DataView(chunk.buffer).setInt32(0, lzw.length, true);
    new DataView(chunk.buffer).setInt16(4, 1, true);
    new DataView(chunk.buffer).setInt16(6, 0, true);
    chunk.set(lzw, 8);
    const r = xliDecode(chunk, { maxChunks: 16, maxOutputBytes: 1000 });
    expect("leads" in r && Array.from(r.leads[0]!)).toEqual([5, 7, 9, 11]);
    new DataView(chunk.buffer).setInt32(0, 1_000_000, true);
    const bad = xliDecode(chunk, { maxChunks: 16, maxOutputBytes: 1000 });
    expect("error" in bad && bad.error.code).toBe("PHILIPS_XLI");
  });
});

describe("decodePhilipsEcg: refusals", () => {
  it("names the document type and version it does not read", () => {
    const doc = (type: string, version: string) =>
      enc.encode(
        `<?xml version="1.0"?><restingecgdata><documentinfo><documenttype>${type}</documenttype><documentversion>${version}</documentversion></documentinfo></restingecgdata>`,
      );
    for (const [t, v] of [
      ["SierraECG", "1.05"],
      ["MortaraECG", "1.03"],
      ["PhilipsECG", "2.00"],
    ]) {
      const r = decodePhilipsEcg(doc(t!, v!));
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error.code).toBe("PHILIPS_UNSUPPORTED");
        expect(r.error.message).toContain(`Files of type ${t} ${v} are unsupported`);
      }
    }
  });

  it("refuses other XML, DTDs and empty input with a code", () => {
    const cases: [string, string][] = [
      ["<AnnotatedECG xmlns='urn:hl7-org:v3'/>", "PHILIPS_NOT_PHILIPS"],
      ["<!DOCTYPE r [<!ENTITY a 'aaaa'>]><restingecgdata>&a;</restingecgdata>", "PHILIPS_DTD"],
      ["", "PHILIPS_EMPTY"],
      ["<restingecgdata><documentinfo>", "PHILIPS_XML"],
      [
        "<restingecgdata><documentinfo><documenttype>SierraECG</documenttype><documentversion>1.03</documentversion></documentinfo></restingecgdata>",
        "PHILIPS_NO_WAVEFORMS",
      ],
    ];
    for (const [xml, code] of cases) {
      const r = decodePhilipsEcg(enc.encode(xml));
      expect(r.ok, xml).toBe(false);
      if (!r.ok) expect(r.error.code, xml).toBe(code);
    }
  });
});

describe.skipIf(!haveShared)("real Philips exports (../shared/fixtures/philips-sierraecg, EXPECTED.txt)", () => {
  const file = (name: string) => shared.read(name);

  it("129DYPRG.XML: SierraECG 1.03, 12 leads × 5500, values at index 2750", () => {
    const ecg = decoded(file("129DYPRG.XML"));
    expect(ecg.formatVersion).toBe("SierraECG 1.03");
    expect(ecg.leads.map((l) => l.name)).toEqual(NAMES);
    expect(ecg.leads.map((l) => l.samples.length)).toEqual(Array(12).fill(5500));
    expect(ecg.leads.map((l) => l.samples[2750])).toEqual([-9, -17, -7, 13, -1, -12, 0, -1, -3, -4, -7, -6]);
    expect(ecg).toMatchObject({ fs: 500, durationS: 11, acquiredAtRaw: "2011-12-01T07:27:34", warnings: [] });
    expect(ecg.leads.every((l) => l.uvPerUnit === 5 && !l.derived)).toBe(true);
    expect(ecg.acquiredAt).toBeUndefined(); // no UTC offset in the file
    expect(ecg.device).toEqual({ make: "Philips", model: "HeartstartMRx", serial: "0001" });
    expect(ecg.measurements).toMatchObject({
      heartRate: 41,
      prMs: 151,
      qrsMs: 135,
      qtMs: 476,
      qtcMs: 393,
      qrsAxisDeg: -21,
    });
    expect(ecg.statements).toContain("Inferior infarct, acute (LCx) — ST>0.10mV, II III aVF, STd V1-V3");
    expect(ecg.statements).toContain(">>> Acute MI <<<");
  });

  it("2020-5-18_15-48-11.xml: PhilipsECG 1.04.01 in UTF-16LE, values at index 2750, representative beats", () => {
    const bytes = file("2020-5-18_15-48-11.xml");
    expect([bytes[0], bytes[1]]).toEqual([0xff, 0xfe]);
    const ecg = decoded(bytes);
    expect(ecg.formatVersion).toBe("PhilipsECG 1.04.01");
    expect(ecg.leads.map((l) => l.name)).toEqual(NAMES);
    expect(ecg.leads.map((l) => l.samples.length)).toEqual(Array(12).fill(5500));
    expect(ecg.leads.map((l) => l.samples[2750])).toEqual([-12, 78, 90, -33, -51, 84, 14, 3, -24, -20, -13, -21]);
    expect(ecg.device).toEqual({
      make: "Philips Medical Products",
      model: "PageWriter TC",
      serial: "US71621374",
      software: "A.07.04.03",
    });
    expect(ecg.measurements).toEqual({
      heartRate: 64,
      rrMs: 938,
      prMs: 164,
      qrsMs: 102,
      qtMs: 399,
      qtcMs: 412,
      pAxisDeg: 27,
      qrsAxisDeg: 22,
      tAxisDeg: 80,
    });
    expect(ecg.statements).toEqual([
      "Sinus rhythm — normal P axis, V-rate 50-99",
      "Abnormal R-wave progression, early transition — QRS area>0 in V2",
      "- OTHERWISE NORMAL ECG -",
    ]);
    expect(ecg.representativeBeats?.fs).toBe(1000);
    expect(ecg.representativeBeats?.leads.map((l) => l.samples.length)).toEqual(Array(12).fill(1200));
    expect(ecg.warnings).toEqual([]);
  });

  it("repbeats_example.xml: SierraECG 1.03 with representative beats as base64 text", () => {
    const ecg = decoded(file("repbeats_example.xml"));
    expect(ecg.leads.map((l) => l.samples[2750])).toEqual([-9, -17, -7, 13, -1, -12, 0, -1, -3, -4, -7, -6]);
    expect(ecg.representativeBeats?.leads.map((l) => l.name)).toEqual(NAMES);
    expect(ecg.representativeBeats?.leads[0]!.samples.length).toBe(1200);
  });

  it("invalid-doc-type.xml: refused, naming the type", () => {
    const r = decodePhilipsEcg(file("invalid-doc-type.xml"));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe("PHILIPS_UNSUPPORTED");
      expect(r.error.message).toMatch(/^Files of type MortaraECG 1\.03 are unsupported/);
    }
  });

  it("keeps the patient out of error messages", () => {
    const text = new TextDecoder()
      .decode(file("129DYPRG.XML"))
      .replace("<documentversion>1.03", "<documentversion>9.99");
    const r = decodePhilipsEcg(enc.encode(text));
    expect(!r.ok && r.error.message).not.toContain("1112010721168bdc");
  });
});

describe("decodePhilipsEcg: fuzz (seeded)", () => {
  const base = haveShared
    ? shared.read("129DYPRG.XML")
    : enc.encode(
        `<restingecgdata><documentinfo><documenttype>SierraECG</documenttype><documentversion>1.03</documentversion></documentinfo><dataacquisition><signalcharacteristics><samplingrate>500</samplingrate><signalresolution>5</signalresolution></signalcharacteristics></dataacquisition><waveforms><parsedwaveforms compressmethod="XLI" durationperchannel="11000">AAAA</parsedwaveforms></waveforms></restingecgdata>`,
      );
  const b64Start = new TextDecoder().decode(base).indexOf("nbitspersample");

  function check(bytes: Uint8Array, label: string): void {
    const t0 = performance.now();
    const r = decodePhilipsEcg(bytes);
    expect(performance.now() - t0, label).toBeLessThan(2000);
    if (!r.ok) {
      expect(r.error.code, label).toMatch(/^PHILIPS_/);
      expect(r.error.message.length, label).toBeGreaterThan(5);
      expect(r.error.code, label).not.toBe("PHILIPS_INTERNAL");
    }
  }

  it("truncations, bit flips in the XML and in the base64, never throw or hang", () => {
    const rand = prng(3);
    for (let i = 0; i < 60; i++) {
      const b = Uint8Array.from(base);
      const flips = 1 + Math.floor(rand() * 6);
      for (let k = 0; k < flips; k++) {
        // Half the flips land in the waveform data, where XLI has to cope.
        const at =
          rand() < 0.5 && b64Start > 0
            ? b64Start + Math.floor(rand() * (b.length - b64Start))
            : Math.floor(rand() * b.length);
        b[at] = Math.floor(rand() * 256);
      }
      check(b.subarray(0, rand() < 0.3 ? Math.floor(rand() * b.length) : b.length), `seed 3 round ${i}`);
    }
  });

  it("huge declared sizes: durationperchannel, chunk sizes, lead counts", () => {
    const text = new TextDecoder().decode(base);
    for (const [from, to] of [
      [/durationperchannel="\d+"/, 'durationperchannel="999999999999"'],
      [/<numberchannelsallocated>\d+/, "<numberchannelsallocated>99999"],
      [/<samplingrate>\d+/, "<samplingrate>1e300"],
    ] as const) {
      check(enc.encode(text.replace(from, to)), String(from));
    }
    const rand = prng(4);
    for (let i = 0; i < 20; i++) {
      const chunk = new Uint8Array(64).map(() => Math.floor(rand() * 256));
      new DataView(chunk.buffer).setInt32(0, [0x7fffffff, -1, 56, 40][i % 4]!, true);
      const doc = `<restingecgdata><documentinfo><documenttype>SierraECG</documenttype><documentversion>1.03</documentversion></documentinfo><dataacquisition><signalcharacteristics><samplingrate>500</samplingrate><signalresolution>5</signalresolution><numberchannelsallocated>12</numberchannelsallocated></signalcharacteristics></dataacquisition><waveforms><parsedwaveforms compressmethod="XLI" durationperchannel="11000">${Buffer.from(chunk).toString("base64")}</parsedwaveforms></waveforms></restingecgdata>`;
      check(enc.encode(doc), `chunk ${i}`);
    }
  });

  it("entity bombs and deep nesting are refused quickly", () => {
    const bomb = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"><!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><restingecgdata>&lol3;</restingecgdata>`;
    const r = decodePhilipsEcg(enc.encode(bomb));
    expect(!r.ok && r.error.code).toBe("PHILIPS_DTD");
    const deep = "<restingecgdata>" + "<a>".repeat(50_000) + "</a>".repeat(50_000) + "</restingecgdata>";
    check(enc.encode(deep), "deep nesting");
    const r2 = decodePhilipsEcg(new Uint8Array(100), { maxBytes: 50 });
    expect(!r2.ok && r2.error.code).toBe("PHILIPS_TOO_LARGE");
  });
});
