import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { FrameResult } from "../codec.ts";
import {
  DATEX_ESCAPE,
  DATEX_FLAG,
  DRI_MT,
  DRI_PH,
  DRI_PHDBCL_MASK,
  DRI_WF,
  datexFramer,
  decodeDatexPhdb,
  decodeDatexWave,
  encodeDatexFrame,
  encodeDatexPhdbRequest,
  encodeDatexWaveRequest,
  parseDatexRecord,
} from "./index.ts";
import type { DatexPhdbSubrecord } from "./index.ts";
import { readBytes, sharedDir } from "../../test/fixtures/serial/load.ts";

const S5 = sharedDir("datex-s5", "Datex S/5");

function frameAll(bytes: Uint8Array, cuts: number[] = []): FrameResult[] {
  const f = datexFramer();
  const out: FrameResult[] = [];
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    out.push(...f.push(bytes.subarray(from, cut)));
    from = cut;
  }
  out.push(...f.end());
  return out;
}

function inRange(v: unknown, lo: number, hi: number): boolean {
  return typeof v === "number" && v >= lo && v <= hi;
}

describe.skipIf(!S5)("S/5 captures (../shared/fixtures/datex-s5)", () => {
  it("pycollect_db02.raw: 214 frames, 213 complete with consistent checksums, the last cut off by the end of the capture", () => {
    const results = frameAll(readBytes(S5!, "pycollect_db02.raw"));
    expect(results).toHaveLength(214);
    const frames = results.flatMap((r) => ("frame" in r ? [r.frame] : []));
    expect(frames).toHaveLength(213);
    expect(results.at(-1)).toMatchObject({ error: { code: "S5_TRUNCATED" } });
    const records = frames.map((f) => parseDatexRecord(f));
    expect(records.every((r) => r.ok)).toBe(true);
    const main = records.map((r) => (r.ok ? r.record.mainType : -1));
    expect(main.filter((t) => t === DRI_MT.PHDB)).toHaveLength(107);
    expect(main.filter((t) => t === DRI_MT.WAVE)).toHaveLength(106);
  });

  it("gives the same frames split at awkward boundaries and byte by byte", () => {
    const bytes = readBytes(S5!, "pycollect_raw.raw");
    const whole = frameAll(bytes);
    expect(whole.filter((r) => "frame" in r)).toHaveLength(21);
    for (const step of [1, 7, 333, 1152]) {
      const cuts = Array.from({ length: Math.floor((bytes.length - 1) / step) }, (_, i) => (i + 1) * step);
      expect(frameAll(bytes, cuts)).toEqual(whole);
    }
  });

  it("decodes plausible vitals from every physiological record, and 100-sample waveforms", () => {
    const frames = frameAll(readBytes(S5!, "pycollect_db02.raw")).flatMap((r) => ("frame" in r ? [r.frame] : []));
    const basics: DatexPhdbSubrecord[] = [];
    let waves = 0;
    let lastTime = 0;
    for (const f of frames) {
      const r = parseDatexRecord(f);
      if (!r.ok) throw new Error(r.error.message);
      expect(r.record.time).toBeGreaterThanOrEqual(lastTime);
      lastTime = r.record.time;
      if (r.record.mainType === DRI_MT.PHDB) {
        const p = decodeDatexPhdb(r.record);
        if (!p.ok) throw new Error(p.error.message);
        // basic, ext1, ext2, ext3 displayed values, in that order
        expect(p.subrecords.map((s) => [s.class, s.subtype])).toEqual([
          [0, DRI_PH.DISPL],
          [1, DRI_PH.DISPL],
          [2, DRI_PH.DISPL],
          [3, DRI_PH.DISPL],
        ]);
        basics.push(p.subrecords[0]!);
      } else {
        const w = decodeDatexWave(r.record);
        if (!w.ok) throw new Error(w.error.message);
        expect(w.subrecords.map((s) => [s.name, s.samples.length])).toEqual([
          ["PLETH", 100],
          ["ENT_100", 100],
        ]);
        waves++;
      }
    }
    expect(basics).toHaveLength(107);
    expect(waves).toBe(106);
    // 2018-07-26, the capture's date (r_time, the monitor's clock)
    expect(new Date(basics[0]!.time * 1000).toISOString().slice(0, 10)).toBe("2018-07-26");
    for (const b of basics) {
      const v = b.values!;
      expect(inRange(v["ecg.hr"], 30, 220)).toBe(true);
      expect(inRange(v["spo2.spo2"], 70, 100)).toBe(true);
      expect(inRange(v["nibp.sys"], 60, 250)).toBe(true);
      expect(inRange(v["nibp.dia"], 30, 150)).toBe(true);
      expect((v["nibp.sys"] as number) > (v["nibp.dia"] as number)).toBe(true);
      expect(inRange(v["co2.et"], 0, 15)).toBe(true);
      expect(inRange(v["co2.ambPress"], 500, 800)).toBe(true);
      expect(b.groups!["ecg"]).toMatchObject({ exists: true, active: true });
    }
    expect(basics[0]!.values).toMatchObject({
      "ecg.hr": 80,
      "nibp.sys": 93,
      "nibp.dia": 48,
      "nibp.mean": 69,
      "spo2.spo2": 96.65,
      "spo2.pr": 83,
      "co2.et": 4.87,
      "co2.rr": 15,
      "co2.ambPress": 759.8,
      "p1.sys": "invalid",
      "t1.temp": "not-available",
    });
  });
});

describe("datexFramer / encodeDatexFrame", () => {
  const record = Uint8Array.from({ length: 60 }, (_, i) => (i * 37 + 0x7d) & 0xff); // holds 0x7D and 0x7E bytes
  new DataView(record.buffer).setInt16(0, 60, true);

  it("round-trips a record holding flag and escape bytes", () => {
    const framed = encodeDatexFrame(record);
    expect(framed.slice(1, -1).includes(DATEX_FLAG)).toBe(false);
    expect(frameAll(framed)).toEqual([{ frame: record }]);
  });

  it("resynchronises when joined mid-frame, and reports a bad checksum", () => {
    const framed = encodeDatexFrame(record);
    const bad = framed.slice();
    bad[10] = bad[10] === 0x00 ? 0x01 : 0x00;
    const stream = Uint8Array.from([...framed.subarray(20), ...bad, ...framed]);
    const results = frameAll(stream);
    expect(results.map((r) => ("frame" in r ? "frame" : r.error.code))).toEqual(["S5_BAD_CHECKSUM", "frame"]);
  });

  it("skips an oversized frame without holding it", () => {
    const f = datexFramer({ maxFrameBytes: 100 });
    const out = [...f.push(Uint8Array.of(DATEX_FLAG)), ...f.push(new Uint8Array(5000).fill(1))];
    expect(f.pending).toBeLessThanOrEqual(100);
    out.push(...f.push(Uint8Array.of(DATEX_FLAG)), ...f.push(encodeDatexFrame(record)));
    expect(out.map((r) => ("frame" in r ? "frame" : r.error.code))).toEqual(["S5_OVERSIZE", "frame"]);
  });

  it("builds the physiological data request and the waveform request", () => {
    const req = frameAll(encodeDatexPhdbRequest({ intervalS: 5, classMask: DRI_PHDBCL_MASK.EXT1 }));
    const r = "frame" in req[0]! ? parseDatexRecord(req[0].frame) : undefined;
    expect(r?.ok && r.record).toMatchObject({
      length: 49,
      mainType: DRI_MT.PHDB,
      subrecords: [{ offset: 0, type: DRI_PH.XMIT_REQ }],
    });
    if (r?.ok) {
      const v = new DataView(r.record.data.buffer, r.record.data.byteOffset);
      expect([v.getUint8(0), v.getInt16(1, true), v.getUint32(3, true)]).toEqual([DRI_PH.DISPL, 5, 2]);
    }
    const wave = frameAll(encodeDatexWaveRequest([DRI_WF.ECG1!, DRI_WF.PLETH!]));
    const w = "frame" in wave[0]! ? parseDatexRecord(wave[0].frame) : undefined;
    expect(w?.ok && w.record).toMatchObject({
      length: 72,
      mainType: DRI_MT.WAVE,
      subrecords: [{ offset: 0, type: 0 }],
    });
    if (w?.ok) expect([...w.record.data.subarray(4, 8)]).toEqual([1, 8, 0xff, 0]);
  });

  it("refuses a record whose length or subrecords do not fit", () => {
    expect(parseDatexRecord(new Uint8Array(10))).toMatchObject({ ok: false, error: { code: "S5_SHORT_RECORD" } });
    const rec = new Uint8Array(60);
    new DataView(rec.buffer).setInt16(0, 61, true);
    expect(parseDatexRecord(rec)).toMatchObject({ ok: false, error: { code: "S5_LENGTH" } });
    new DataView(rec.buffer).setInt16(0, 60, true);
    rec[18] = 0x01; // sr_desc[0]: type 1 at offset 0; sr_desc[1] type 0 ... no end marker: 8 subrecords at offset 0
    const parsed = parseDatexRecord(rec);
    expect(parsed.ok && decodeDatexPhdb(parsed.record)).toMatchObject({
      ok: false,
      error: { code: "S5_BAD_SUBRECORD" },
    });
  });
});

describe("fuzz (fast-check, seeded)", () => {
  const params = { seed: 0x55, numRuns: 300 };
  const biased = fc
    .array(fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(DATEX_FLAG, DATEX_ESCAPE)), { maxLength: 3000 })
    .map((a) => Uint8Array.from(a));

  it("random bytes, random splits: no throw, bounded pending, coded errors; decoders never throw on what passes", () => {
    fc.assert(
      fc.property(biased, fc.array(fc.nat(3000), { maxLength: 8 }), (bytes, cuts) => {
        const f = datexFramer({ maxFrameBytes: 1500 });
        let from = 0;
        for (const cut of [...cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b), bytes.length]) {
          for (const r of f.push(bytes.subarray(from, Math.max(from, cut)))) {
            if ("error" in r) expect(r.error.code).toMatch(/^S5_/);
            else {
              const rec = parseDatexRecord(r.frame);
              if (rec.ok) {
                decodeDatexPhdb(rec.record);
                decodeDatexWave(rec.record);
              }
            }
          }
          expect(f.pending).toBeLessThanOrEqual(1500);
          from = Math.max(from, cut);
        }
        f.end();
      }),
      params,
    );
  });

  it("every encoded record survives any split, noise before it, and a corrupted neighbour", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 40, maxLength: 400 }),
        fc.uint8Array({ maxLength: 50 }),
        fc.nat(),
        (rec, noise, cut) => {
          const framed = encodeDatexFrame(rec);
          const bytes = Uint8Array.from([...noise, DATEX_FLAG, DATEX_FLAG, ...framed]);
          const at = cut % (bytes.length + 1);
          const frames = frameAll(bytes, [at]).flatMap((r) => ("frame" in r ? [[...r.frame]] : []));
          expect(frames).toContainEqual([...rec]);
        },
      ),
      params,
    );
  });
});
