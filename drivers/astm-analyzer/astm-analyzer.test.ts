import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ACK,
  ENQ,
  EOT,
  NAK,
  SOH,
  astmFrameSplitter,
  encodeAstmFrame,
  encodeAstmMessage,
  parseAstmFrame,
} from "../../protocols/astm/index.ts";
import type { DriverSession, Exchange } from "../../src/devices/driver.ts";
import type { EventDraft } from "../../src/events/model.ts";
import { ownFixture, readBytes, sharedDir } from "../../test/fixtures/serial/load.ts";
import {
  astmAnalyzer,
  astmAnalyzerOptions,
  astmAnalyzerSession,
  astmCaptureFramer,
  labEvents,
  type LabBody,
} from "./index.ts";
import { loincFor, toUcum } from "./loinc.ts";
import { astmSender, captureText, syntheticBloodGasMessage } from "./synthetic.ts";

const ASTM = sharedDir("astm", "ASTM analyser driver");
const REAL = sharedDir("real-world/astm", "ASTM analyser driver (real-world records)");
const opts = astmAnalyzerOptions.parse({ port: "/dev/ttyUSB0" });
const T0 = Date.UTC(2026, 10, 23, 8, 0, 0);

/** Plays the core: hands chunks to the session, commits (or refuses) events, returns the bytes written back. */
function core(session: DriverSession, store: { refuse?: boolean } = {}) {
  const committed: EventDraft[] = [];
  const errors: string[] = [];
  let now = T0;
  const feed = (chunk: Uint8Array): number[] => {
    const ex: Exchange = session.handle(chunk, { nowMs: (now += 5) });
    if (!ex.ok) {
      errors.push(ex.error.code);
      return ex.reply ? [...ex.reply] : [];
    }
    if (ex.events.length > 0 && store.refuse) return [...(ex.refuse?.("store full") ?? [])];
    committed.push(...ex.events);
    return ex.accept ? [...ex.accept] : [];
  };
  return {
    committed,
    errors,
    feed,
    advance: (ms: number) => (now += ms),
    get now() {
      return now;
    },
  };
}

/** Splits bytes at random boundaries (seeded). */
function pieces(bytes: Uint8Array, seed: number): Uint8Array[] {
  let s = seed;
  const rand = () => (s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    const n = 1 + Math.floor(rand() * 40);
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** An analyser replaying recorded frames: ENQ, each frame (in random pieces) after the ACK of the previous, EOT. */
function replay(c: ReturnType<typeof core>, frames: Uint8Array[], seed: number): number[] {
  const replies: number[] = [];
  replies.push(...c.feed(Uint8Array.of(ENQ)));
  for (const f of frames) for (const p of pieces(f, seed++)) replies.push(...c.feed(p));
  replies.push(...c.feed(Uint8Array.of(EOT)));
  return replies;
}

function recordedFrames(bytes: Uint8Array): Uint8Array[] {
  const s = astmFrameSplitter();
  return [...s.push(bytes), ...s.end()].flatMap((r) => ("frame" in r ? [r.frame] : []));
}

const bodies = (events: EventDraft[]) => events.map((e) => e.body as LabBody);

describe.skipIf(!ASTM)(
  "astm-analyzer: the shared captures (../shared/fixtures/astm) through a session, values of astm/EXPECTED.txt",
  () => {
    const run = (name: string, seed: number) => {
      const c = core(astmAnalyzerSession(opts));
      const frames = recordedFrames(readBytes(ASTM!, name));
      const replies = replay(c, frames, seed);
      expect(c.errors).toEqual([]);
      // ENQ and every frame acknowledged, nothing refused
      expect(replies).toEqual(Array(frames.length + 1).fill(ACK));
      return c.committed;
    };

    it("abbott_afinion2: one lab event, HbA1c 5.9 % as LOINC 4548-4, final", () => {
      for (const seed of [1, 7, 42]) {
        const events = run("abbott_afinion2.txt", seed);
        expect(events).toHaveLength(1);
        expect(events[0]).toMatchObject({
          kind: "lab",
          model: "Afinion 2 Analyzer",
          serial: "AF20052397",
          deviceTimeRaw: "20241206140615",
        });
        expect(bodies(events)[0]).toEqual({
          analyzer: "Afinion 2 Analyzer",
          results: [{ code: "4548-4", localCode: "HbA1c", name: "Hemoglobin A1c", value: 5.9, unit: "%", status: "F" }],
        });
      }
    });

    it("dca_vantage: Alb 63.7 mg/L, Crt 230.8 mg/dL, Ratio 27.6 mg/g, all final, local codes kept", () => {
      const [e, ...more] = run("dca_vantage.txt", 3);
      expect(more).toEqual([]);
      expect(e).toMatchObject({ model: "DCA VANTAGE", serial: "S067337" });
      const b = e!.body as LabBody;
      expect(b.analyzer).toBe("DCA VANTAGE 04.04.00.00");
      expect(b.results.map((r) => [r.localCode, r.value, r.unit, r.status, r.code])).toEqual([
        ["Alb", 63.7, "mg/L", "F", undefined],
        ["Crt", 230.8, "mg/dL", "F", undefined],
        ["Ratio", 27.6, "mg/g", "F", undefined],
      ]);
    });

    it("sysmex_xn550: 41 results in one order; HGB 8.0 g/dL as 718-7; no patient data in the event", () => {
      const events = run("sysmex_xn550.txt", 11);
      expect(events).toHaveLength(1);
      const b = bodies(events)[0]!;
      expect(b.results).toHaveLength(41);
      expect(b.results[0]).toMatchObject({ localCode: "WBC", value: 8.13, unit: "10*3/uL", flag: "N", status: "F" });
      expect(b.results.find((r) => r.localCode === "HGB")).toMatchObject({ code: "718-7", value: 8, unit: "g/dL" });
      const json = JSON.stringify(events);
      for (const secret of ["Jim", "Brown", "19870626", "37182", "WEST"]) expect(json).not.toContain(secret);
    });

    it("cobas_c111: seven ETB/ETX frames, one result 40.13 g/L", () => {
      const events = run("cobas_c111.txt", 5);
      expect(events).toHaveLength(1);
      expect(bodies(events)[0]!.results).toEqual([
        { localCode: "413", name: "413", value: 40.13, unit: "g/L", flag: "N", status: "F" },
      ]);
    });

    it("decode's capture framer frames each capture as one transfer (ENQ, frames, EOT): one event each", () => {
      for (const [name, results] of [
        ["abbott_afinion2.txt", 1],
        ["dca_vantage.txt", 3],
        ["cobas_c111.txt", 1],
        ["sysmex_xn550.txt", 41],
      ] as const) {
        const session = astmAnalyzerSession(opts);
        const framer = astmCaptureFramer();
        const events: EventDraft[] = [];
        for (const r of [...framer.push(readBytes(ASTM!, name)), ...framer.end!()]) {
          expect("error" in r).toBe(false);
          if (!("frame" in r)) continue;
          const x = session.handle(r.frame, { nowMs: T0, replay: true });
          expect(x.ok).toBe(true);
          if (x.ok) events.push(...x.events);
        }
        expect(events).toHaveLength(1);
        expect((events[0]!.body as LabBody).results).toHaveLength(results);
      }
    });

    it("mini_vidas and spotchem_el are refused as not ASTM, with the codec's reason", () => {
      for (const name of ["mini_vidas.txt", "spotchem_el.txt"]) {
        const s = astmAnalyzerSession(opts);
        const x = s.handle(readBytes(ASTM!, name), { nowMs: T0 });
        expect(x.ok).toBe(false);
        if (!x.ok) {
          expect(x.error.code).toBe("ASTM_NOT_ASTM");
          expect(x.error.message).toMatch(/does not speak the ASTM E1381 link layer/);
        }
        // and inside a transfer (after an ENQ), the frame-level reason
        const c = core(astmAnalyzerSession(opts));
        c.feed(Uint8Array.of(ENQ));
        c.feed(readBytes(ASTM!, name));
        expect(c.errors[0]).toBe("ASTM_NOT_ASTM");
        expect(c.committed).toEqual([]);
      }
    });
  },
);

/** The lab events of a capture replayed through a session as the analyser sent it (ENQ, frames, EOT). */
function replayed(bytes: Uint8Array): EventDraft[] {
  const c = core(astmAnalyzerSession(opts));
  const frames = recordedFrames(bytes);
  expect(replay(c, frames, 9)).toEqual(Array(frames.length + 1).fill(ACK));
  expect(c.errors).toEqual([]);
  return c.committed;
}

/** The one lab event of a real-world capture, its body, and its results by local code. */
function oneLab(name: string) {
  const [e, ...more] = replayed(readBytes(REAL!, name));
  expect(more).toEqual([]);
  const b = e!.body as LabBody;
  return { e: e!, b, by: Object.fromEntries(b.results.map((x) => [x.localCode, x])) };
}

describe.skipIf(!REAL)("astm-analyzer: real blood-gas records (../shared/fixtures/real-world/astm)", () => {
  it("Radiometer ABL9: temperature-corrected pH(T), pCO2(T), pO2(T) get their own LOINC codes, not the measured ones", () => {
    const { b, by } = oneLab("abl9_records_framed.txt");
    expect(b.specimen).toBe("Arterial");
    expect(by.pH).toMatchObject({ code: "2744-1", value: 7.53, unit: "[pH]" });
    expect(by["pH(T)"]).toMatchObject({ code: "33254-4", name: "pH(T)", value: 7.53 });
    expect(by.pCO2).toMatchObject({ code: "2019-8", value: 30.1 });
    expect(by["pCO2(T)"]).toMatchObject({ code: "32771-8", value: 30.1 });
    expect(by.pO2).toMatchObject({ code: "2703-7", value: 149 });
    expect(by["pO2(T)"]).toMatchObject({ code: "19255-9", value: 149 });
  });

  it('Radiometer ABL9: "....." results are absent, listed as unavailable with the comment that explains them', () => {
    const { b } = oneLab("abl9_records_framed.txt");
    expect(b.results.some((x) => typeof x.value === "string")).toBe(false);
    expect(b.results).toHaveLength(40 - 8);
    expect(b.unavailable?.map((u) => u.localCode)).toEqual([
      "pO2(A)",
      "pO2(A),T",
      "AaDpO2",
      "AaDpO2,T",
      "a/ApO2",
      "a/ApO2,T",
      "RI",
      "RI,T",
    ]);
    for (const u of b.unavailable!)
      expect(u).toMatchObject({ marker: ".....", comments: ["1009: Unable to calculate - missing Baro"] });
    // a comment belongs to the result it follows: none on the others
    expect(b.results.every((x) => x.comments === undefined)).toBe(true);
  });

  it("Radiometer ABL9: the result time is the record's own (R.12, 08:29), not the header's time of sending (19:39)", () => {
    expect(oneLab("abl9_records_framed.txt").e.deviceTimeRaw).toBe("20260627082914");
  });

  it('Siemens epoc: the sample type comes from its "Sample type" result (Unspecified): blood-gas codes for blood, unspecified, never arterial', () => {
    const { b, by } = oneLab("epoc_records_framed.txt");
    expect(b.specimen).toBe("Unspecified");
    // R.3 is ^^^pH^^^^323.1: the name in component 4, an instrument number after it
    expect(by.pH).toMatchObject({ code: "11558-4", value: 7.467 });
    expect(by.pCO2).toMatchObject({ code: "11557-6", value: 33.8 });
    expect(by.pO2).toMatchObject({ code: "11556-8", value: 39 });
    expect(by.O2SAT).toMatchObject({ code: "20564-1", name: "sO2", value: 77.6 });
    expect(by["BE(b)"]).toMatchObject({ code: "11555-0" });
    expect(JSON.stringify(b)).not.toContain("2744-1");
  });

  it("Siemens epoc: result comments travel with their result; patient and order comments are not copied; the time is the specimen's (O.8), not the malformed H.14", () => {
    const { e, by } = oneLab("epoc_records_framed.txt");
    expect(by.Hct?.comments).toEqual(["COMENTARIO DEL RESULTADO 1.1", "COMENTARIO DEL RESULTADO 1.2"]);
    expect(by["Na+"]?.comments).toEqual(["COMENTARIO DEL RESULTADO 2.1", "COMENTARIO DEL RESULTADO 2.2"]);
    expect(by["K+"]?.comments).toBeUndefined();
    const json = JSON.stringify(e);
    expect(json).not.toContain("PACIENTE");
    expect(json).not.toContain("ORDEN");
    expect(json).not.toContain("A1E18155MHE"); // the patient / specimen id
    expect(e.deviceTimeRaw).toBe("20160405082748");
  });
});

/** One E1394 message (records joined by CR) with the given O.16 specimen and R records. */
function message(specimen: string, results: string[]): string {
  return (
    [
      "H|\\^&|||VG-TEST^1^T1|||||||P|LIS2-A2|20261123101500",
      `O|1|S1||^^^BG|R||||||||||${specimen}`,
      ...results,
      "L|1|N",
    ].join("\r") + "\r"
  );
}

const bodyOf = (text: string): LabBody => {
  const r = labEvents(text, opts);
  if (!r.ok) throw new Error(r.error.message);
  return r.events[0]!.body as LabBody;
};

describe("astm-analyzer: what the message says, read as it says it (spec-derived records, E1394 §9-§11)", () => {
  const gas = [
    "R|1|^^^pH|7.31||N||F",
    "R|2|^^^pCO2|48|mmHg|N||F",
    "R|3|^^^pO2|41|mmHg|N||F",
    "R|4|^^^pH(T)|7.33||N||F",
  ];
  const codes = (specimen: string) => bodyOf(message(specimen, gas)).results.map((x) => x.code);

  it("the specimen decides the code: arterial, venous, capillary, mixed venous, unspecified; never assumed arterial", () => {
    expect(codes("Arterial")).toEqual(["2744-1", "2019-8", "2703-7", "33254-4"]);
    expect(codes("Venous")).toEqual(["2746-6", "2021-4", "2705-2", undefined]);
    expect(codes("Capillary^")).toEqual(["2745-8", "2020-6", "2704-5", undefined]);
    expect(codes("Mixed venous")).toEqual(["19213-8", "11557-6", "11556-8", undefined]);
    expect(codes("")).toEqual(["11558-4", "11557-6", "11556-8", undefined]);
    expect(codes("Urine")).toEqual([undefined, undefined, undefined, undefined]);
  });

  it("a specimen named in the result's own test id (R.3) counts for that result", () => {
    const b = bodyOf(message("", ["R|1|^^^pH^Venous|7.31||N||F", "R|2|^^^pH^Arterial|7.40||N||F"]));
    expect(b.results.map((x) => x.code)).toEqual(["2746-6", "2744-1"]);
  });

  it("test names in later components of R.3 are mapped by name (^^^pH, ^^^^pH, ^^^12^pH)", () => {
    const b = bodyOf(
      message("Arterial", [
        "R|1|^^^pH|7.31||N||F",
        "R|2|^^^^pH|7.32||N||F",
        "R|3|^^^12^pH^M|7.33||N||F",
        "R|4|^^^^^pCO2|40|mmHg|N||F",
      ]),
    );
    expect(b.results.map((x) => [x.localCode, x.code, x.name])).toEqual([
      ["pH", "2744-1", "pH"],
      ["pH", "2744-1", "pH"],
      ["12", "2744-1", "pH"],
      ["pCO2", "2019-8", "pCO2"],
    ]);
  });

  it("no-value markers are absent; < > ? make a number with a quality; R.7 < > flag the number too", () => {
    const b = bodyOf(
      message("Arterial", [
        "R|1|^^^pH|***||N||F",
        "R|2|^^^pO2|.....|mmHg|||F",
        "R|3|^^^pCO2|----|mmHg|||F",
        "R|4|^^^Glu||mmol/L|||F",
        "R|5|^^^Lac|<0.30|mmol/L|||F",
        "R|6|^^^K+|>9.0|mmol/L|||F",
        "R|7|^^^Na+|139?|mmol/L|||F",
        "R|8|^^^Cl-|140|mmol/L||>||F",
        "C|1|I|sample clotted|I",
      ]),
    );
    expect(b.unavailable?.map((u) => [u.localCode, u.marker])).toEqual([
      ["pH", "***"],
      ["pO2", "....."],
      ["pCO2", "----"],
      ["Glu", "(empty)"],
    ]);
    expect(b.results.map((x) => [x.localCode, x.value, x.quality])).toEqual([
      ["Lac", 0.3, "below-limit"],
      ["K+", 9, "above-limit"],
      ["Na+", 139, "questionable"],
      ["Cl-", 140, "above-limit"],
    ]);
    expect(b.results.find((x) => x.localCode === "Cl-")?.comments).toEqual(["sample clotted"]);
  });

  it("the result time: O.8 collection, else R.12 start, else R.13 completion, and only then H.14", () => {
    const at = (order: string, r: string) =>
      labEvents(["H|\\^&|||VG-TEST|||||||P|1|20261123235900", order, r, "L|1|N"].join("\r"), opts);
    const raw = (x: ReturnType<typeof labEvents>) => (x.ok ? x.events[0]!.deviceTimeRaw : undefined);
    expect(raw(at("O|1|S1||^^^BG|R||20261123100000", "R|1|^^^pH|7.3||||F||||20261123100500|20261123100600"))).toBe(
      "20261123100000",
    );
    expect(raw(at("O|1|S1||^^^BG|R", "R|1|^^^pH|7.3||||F||||20261123100500|20261123100600"))).toBe("20261123100500");
    expect(raw(at("O|1|S1||^^^BG|R", "R|1|^^^pH|7.3||||F|||||20261123100600"))).toBe("20261123100600");
    expect(raw(at("O|1|S1||^^^BG|R", "R|1|^^^pH|7.3||||F"))).toBe("20261123235900");
  });
});

describe("astm-analyzer: links as analysers run them", () => {
  /** An ABL9-style message: SOH, the records (CR-separated), EOT; no ENQ, no frames. */
  const envelope = (text: string) => Uint8Array.from([SOH, ...Buffer.from(text, "latin1"), EOT]);
  /** The records of a framed capture, as the analyser would send them without E1381 framing. */
  const recordsOf = (bytes: Uint8Array) =>
    recordedFrames(bytes)
      .map((f) => {
        const p = parseAstmFrame(f);
        return p.ok ? Buffer.from(p.frame.text).toString("latin1") : "";
      })
      .join("");

  it("an SOH ... EOT message (Radiometer ABL9 over TCP): its lab event, and its one ACK only with the commit; a refusing store gets NAK", () => {
    const texts = [
      syntheticBloodGasMessage(T0),
      ...(REAL ? [recordsOf(readBytes(REAL, "abl9_records_framed.txt"))] : []),
    ];
    for (const text of texts) {
      const c = core(astmAnalyzerSession(opts));
      const replies = pieces(envelope(text), 3).flatMap((p) => c.feed(p));
      expect(replies).toEqual([ACK]);
      expect(c.errors).toEqual([]);
      expect(c.committed).toHaveLength(1);
      expect((c.committed[0]!.body as LabBody).results.find((x) => x.localCode === "pH")).toMatchObject({
        value: expect.any(Number),
      });
      // twice in a row, on the same connection
      expect(c.feed(envelope(text))).toEqual([ACK]);
      expect(c.committed).toHaveLength(2);
      const refusing = core(astmAnalyzerSession(opts), { refuse: true });
      expect(refusing.feed(envelope(text))).toEqual([NAK]);
      expect(refusing.committed).toEqual([]);
    }
  });

  it("frame numbers that skip, or restart at 1 for the next message of a transfer: every frame ACKed, every message stored, decode splits at the header", () => {
    const one = encodeAstmMessage(Buffer.from(syntheticBloodGasMessage(T0, 1), "latin1"), 1, 200);
    const two = encodeAstmMessage(Buffer.from(syntheticBloodGasMessage(T0 + 60_000, 2), "latin1"), 1, 200);
    // renumber frame 3 of the first message as 5 (a skip); its checksum is recomputed, as the analyser's would be
    const skipped = one.map((f, i) => {
      const p = parseAstmFrame(f);
      return i === 2 && p.ok ? encodeAstmFrame(5, p.frame.text, p.frame.final) : f;
    });
    const c = core(astmAnalyzerSession(opts));
    const replies = replay(c, [...skipped, ...two], 21);
    expect(replies).toEqual(Array(skipped.length + two.length + 1).fill(ACK));
    expect(c.errors).toEqual([]);
    expect(c.committed).toHaveLength(2);
    // decode: one capture of both, cut into transfers at the second header, not at the skip
    const framer = astmCaptureFramer();
    const session = astmAnalyzerSession(opts);
    const events: EventDraft[] = [];
    const bytes = Buffer.concat([...skipped, ...two]);
    for (const r of [...framer.push(bytes), ...framer.end!()]) {
      if (!("frame" in r)) throw new Error(r.error.message);
      const x = session.handle(r.frame, { nowMs: T0, replay: true });
      expect(x.ok).toBe(true);
      if (x.ok) events.push(...x.events);
    }
    expect(events).toHaveLength(2);
  });
});

describe("astm-analyzer: result values, fuzzed (fast-check, seeded)", () => {
  const field = fc.string({ maxLength: 12 }).map((t) => t.replace(/[|\\^&\r\n]/g, ""));
  it("any R.3/R.4/R.5/R.7 and comments: no throw; every result has a number or text that is no marker; markers only in unavailable", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ name: field, value: field, unit: field, flag: field, comment: fc.option(field) }), {
          maxLength: 8,
        }),
        field,
        (rows, specimen) => {
          const text = message(
            specimen,
            rows.flatMap((r, i) => [
              `R|${i + 1}|^^^${r.name}|${r.value}|${r.unit}||${r.flag}||F`,
              ...(r.comment === null ? [] : [`C|1|I|${r.comment}|I`]),
            ]),
          );
          const out = labEvents(text, opts);
          expect(out.ok).toBe(true);
          for (const e of out.ok ? out.events : []) {
            const b = e.body as LabBody;
            for (const x of b.results) {
              if (typeof x.value === "number") expect(Number.isFinite(x.value)).toBe(true);
              else
                expect(x.value === "" ? x.flag !== undefined : !/^(\.{2,}|\*{2,}|-{2,})$/.test(x.value.trim())).toBe(
                  true,
                );
            }
          }
        },
      ),
      { seed: 12, numRuns: 400 },
    );
  });

  it("a qualified number keeps its number: <x, >x, x? for any x", () => {
    fc.assert(
      fc.property(
        fc.double({ min: -1e6, max: 1e6, noNaN: true }).map((x) => Number(x.toFixed(3)) + 0),
        fc.constantFrom("<", ">", "?"),
        (x, mark) => {
          const sent = mark === "?" ? `${x}?` : `${mark}${x}`;
          const b = bodyOf(message("Arterial", [`R|1|^^^Lac|${sent}|mmol/L|||F`]));
          expect(b.results[0]).toMatchObject({
            value: x,
            quality: mark === "<" ? "below-limit" : mark === ">" ? "above-limit" : "questionable",
          });
        },
      ),
      { seed: 5, numRuns: 200 },
    );
  });
});

describe("astm-analyzer: blood gas (synthetic, E1381/E1394)", () => {
  const text = syntheticBloodGasMessage(T0);

  it("maps the blood-gas panel to LOINC and UCUM where a verified term fits the arterial sample", () => {
    const r = labEvents(text, opts);
    if (!r.ok) throw new Error(r.error.message);
    expect(r.events).toHaveLength(1);
    const b = r.events[0]!.body as LabBody;
    expect(b.specimen).toBe("Arterial");
    const byLocal = Object.fromEntries(b.results.map((x) => [x.localCode, x]));
    expect(byLocal.pH).toMatchObject({ code: "2744-1", value: 7.38, unit: "[pH]" });
    expect(byLocal.pCO2).toMatchObject({ code: "2019-8", value: 42, unit: "mm[Hg]" });
    expect(byLocal.pO2).toMatchObject({ code: "2703-7", value: 88, unit: "mm[Hg]" });
    expect(byLocal["BE(B)"]).toMatchObject({ code: "1925-7", value: 0.1 });
    expect(byLocal.sO2).toMatchObject({ code: "2708-6", value: 96.5, unit: "%" });
    expect(byLocal.tHb).toMatchObject({ code: "718-7", value: 14.1, unit: "g/dL" });
    expect(byLocal["Na+"]).toMatchObject({ code: "32717-1", value: 139 });
    // not verified, or the property does not fit (glucose in mmol/L vs mass/volume terms): local code only
    expect(byLocal["HCO3-"]).toMatchObject({ code: "1959-6", value: 24.4 }); // whole blood, unspecified: no arterial term verified
    expect(byLocal["Cl-"]).toMatchObject({ code: "41650-3", value: 104 });
    expect(byLocal.iCa).toMatchObject({ code: "47596-2", value: 1.18 });
    for (const id of ["Glu", "K+", "Lac"]) expect(byLocal[id]!.code).toBeUndefined();
    expect(byLocal.Glu).toMatchObject({ value: 5.6, unit: "mmol/L", name: "Glucose" });
  });

  it("picks the LOINC system by the specimen the order names", () => {
    expect(loincFor("Na+", "mmol/L", "SerPl")?.term?.code).toBe("2951-2");
    expect(loincFor("Na+", "mmol/L", undefined)?.term?.code).toBe("2947-0");
    expect(loincFor("K+", "mmol/L", "SerPl")?.term?.code).toBe("2823-3");
    expect(loincFor("Glu", "mg/dL", "SerPl")?.term?.code).toBe("2345-7");
    expect(loincFor("Glu", "mg/dL", "BldA")?.term?.code).toBe("2339-0");
    expect(loincFor("pH", "[pH]", "other")?.term).toBeUndefined(); // a specimen that is not blood (urine, a control)
    expect(toUcum("mmHg")).toBe("mm[Hg]");
  });

  it("a device's codeMap adds and overrides codes", () => {
    const o = astmAnalyzerOptions.parse({
      port: "x",
      codeMap: { "HCO3-": { code: "1960-4", name: "Bicarbonate" }, pH: { code: "11558-4" } },
    });
    expect(labEvents(text, opts).ok).toBe(true);
    const r = labEvents(text, o);
    const b = (r.ok ? r.events[0]!.body : undefined) as LabBody;
    expect(b.results.find((x) => x.localCode === "HCO3-")).toMatchObject({ code: "1960-4", name: "Bicarbonate" });
    expect(b.results.find((x) => x.localCode === "pH")).toMatchObject({ code: "11558-4" });
  });

  it("the simulator's sender and the session: ACK per frame, the final ACK only with the commit, then EOT", () => {
    const session = astmAnalyzerSession(opts);
    const c = core(session);
    const sender = astmSender(text, 60);
    expect(sender.frames.length).toBeGreaterThan(8); // frame numbers wrap modulo 8
    let step = sender.start();
    const seen: number[] = [];
    while (step.then === "await-reply") {
      const reply = c.feed(step.send);
      seen.push(...reply);
      step = sender.reply(reply[0]);
    }
    expect(step.then).toBe("done");
    if (step.then === "done") c.feed(step.send);
    expect(seen).toEqual(Array(sender.frames.length + 1).fill(ACK));
    expect(c.committed).toHaveLength(1);
    expect(c.errors).toEqual([]);
  });

  it("a refused commit is NAKed; the analyser sends the final frame again and it is stored then", () => {
    const session = astmAnalyzerSession(opts);
    const refusing = core(session, { refuse: true });
    const sender = astmSender(text, 100);
    let step = sender.start();
    const replies: number[] = [];
    let refusals = 0;
    let c = refusing;
    while (step.then === "await-reply") {
      const reply = c.feed(step.send);
      replies.push(...reply);
      if (reply[0] === NAK && ++refusals === 2) {
        // the store has room again
        const ok = core(session);
        c = ok;
      }
      step = sender.reply(reply[0]);
    }
    expect(step.then).toBe("done");
    expect(replies.filter((b) => b === NAK)).toHaveLength(2);
    expect(refusing.committed).toEqual([]);
    expect(c.committed).toHaveLength(1);
    expect((c.committed[0]!.body as LabBody).results).toHaveLength(13);
  });

  it("bad checksums are NAKed with the reason; timeouts return the line to neutral (E1381 §6.5.2)", () => {
    const session = astmAnalyzerSession(opts);
    const c = core(session);
    expect(c.feed(Uint8Array.of(ENQ))).toEqual([ACK]);
    const bad = encodeAstmFrame(1, new TextEncoder().encode("H|\\^&\r"), false);
    bad[bad.length - 3] = 0x30; // spoil the checksum
    expect(c.feed(bad)).toEqual([NAK]);
    expect(c.errors).toHaveLength(1);
    // nothing for 29 s: nothing happens; at 30 s the transfer is abandoned
    expect(session.tick!({ nowMs: c.now + 29_000 })).toEqual([]);
    expect(session.tick!({ nowMs: c.now + 30_001 })).toEqual([]);
    c.advance(31_000);
    // a new transfer works from the start
    const sender = astmSender(text);
    let step = sender.start();
    while (step.then === "await-reply") step = sender.reply(c.feed(step.send)[0]);
    expect(step.then).toBe("done");
    expect(c.committed).toHaveLength(1);
  });

  it("records sent one per ETX frame, acknowledged one by one, are one message at L; without L they are kept at EOT", () => {
    const records = text
      .split("\r")
      .filter((r) => r)
      .map((r) => r + "\r");
    for (const withL of [true, false]) {
      const c = core(astmAnalyzerSession(opts));
      expect(c.feed(Uint8Array.of(ENQ))).toEqual([ACK]);
      const sent = withL ? records : records.slice(0, -1);
      sent.forEach((r, i) =>
        expect(c.feed(encodeAstmFrame((i + 1) % 8, new TextEncoder().encode(r), true))).toEqual([ACK]),
      );
      c.feed(Uint8Array.of(EOT));
      expect(c.committed).toHaveLength(1);
      expect((c.committed[0]!.body as LabBody).results).toHaveLength(13);
    }
  });

  it("a NAK storm stays bounded: after 6 rejected frames the transfer is abandoned until EOT, then all is well", () => {
    const c = core(astmAnalyzerSession(opts));
    expect(c.feed(Uint8Array.of(ENQ))).toEqual([ACK]);
    const bad = encodeAstmFrame(1, new TextEncoder().encode("H|\\^&\r"), true);
    bad[bad.length - 3] = 0x30;
    const replies = Array.from({ length: 10 }, () => c.feed(bad));
    expect(replies.flat()).toEqual([NAK, NAK, NAK, NAK, NAK]); // the 6th attempt and later: silence (E1381 §6.5.1.2)
    expect(c.errors).toContain("ASTM_RETRIES_EXHAUSTED");
    c.feed(Uint8Array.of(EOT));
    const sender = astmSender(text);
    let step = sender.start();
    while (step.then === "await-reply") step = sender.reply(c.feed(step.send)[0]);
    expect(step.then).toBe("done");
    expect(c.committed).toHaveLength(1);
  });

  it("an analyser that does not wait for the final ACK: what follows it is read after the commit", () => {
    const c = core(astmAnalyzerSession(opts));
    const blast = (n: number) => {
      const frames = astmSender(syntheticBloodGasMessage(T0, n), 100).frames;
      return Uint8Array.from([ENQ, ...frames.flatMap((f) => [...f]), EOT]);
    };
    const r1 = c.feed(blast(1));
    expect(c.committed).toHaveLength(1);
    expect(r1.at(-1)).toBe(ACK);
    c.feed(blast(2));
    expect(c.committed).toHaveLength(2);
  });

  it("random bytes, NAK storms, refusals, timeouts and torn frames never throw", () => {
    const frames = astmSender(text, 60).frames;
    const control = fc.constantFrom(ENQ, EOT, ACK, NAK, 0x02, 0x03, 0x17, 0x0d, 0x0a);
    const chunk = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      control.map((b) => Uint8Array.of(b)),
      fc.constantFrom(...frames),
    );
    fc.assert(
      fc.property(fc.array(chunk, { maxLength: 80 }), fc.boolean(), (chunks, refuse) => {
        const session = astmAnalyzerSession(opts);
        const c = core(session, { refuse });
        for (const ch of chunks) {
          c.feed(ch);
          session.tick!({ nowMs: c.advance(7_000) });
        }
        return true;
      }),
      { numRuns: 300 },
    );
  });

  it("declares a serial or tcp transport like nmea-gps, no framer, a 1 s tick", () => {
    expect(astmAnalyzer.transport(opts)).toMatchObject({
      type: "serial",
      path: "/dev/ttyUSB0",
      baudRate: 9600,
      dataBits: 8,
      parity: "none",
      stopBits: 1,
    });
    expect(
      astmAnalyzer.transport(astmAnalyzerOptions.parse({ transport: "tcp", host: "10.0.0.5", tcpPort: 4001 })),
    ).toEqual({ type: "tcp-connect", host: "10.0.0.5", port: 4001 });
    expect(astmAnalyzerOptions.safeParse({ transport: "tcp" }).success).toBe(false);
    expect(astmAnalyzer.framer).toBeUndefined();
    expect(astmAnalyzerSession(opts).tickMs).toBe(1000);
  });

  it("the synthetic fixture (test/fixtures/serial) decodes to 13 results", () => {
    const r = labEvents(ownFixture("astm-bloodgas-synthetic.txt"), opts);
    expect(r.ok && (r.events[0]!.body as LabBody).results.length).toBe(13);
    expect(JSON.stringify(r)).not.toMatch(/Zhang|PID-0007|19610405/);
  });

  it("captureText joins a capture's frame texts", () => {
    const t = captureText(encodeAstmFrame(1, new TextEncoder().encode(text), true));
    expect(t).toBe(text);
  });
});
