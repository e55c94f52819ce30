import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AstmAction, AstmReceiver } from "./index.ts";
import {
  ACK,
  ENQ,
  EOT,
  NAK,
  SOH,
  STX,
  ETX,
  ASTM_MAX_ATTEMPTS,
  ASTM_RECEIVER_TIMEOUT_MS,
  astmComment,
  astmField,
  astmFrameSplitter,
  astmHeader,
  astmOrder,
  astmPatient,
  astmReceiver,
  astmResult,
  astmTerminator,
  encodeAstmFrame,
  encodeAstmMessage,
  parseAstmFrame,
  parseAstmMessage,
} from "./index.ts";
import { ownFixture, readBytes, sharedDir } from "../../test/fixtures/serial/load.ts";

const ASTM = sharedDir("astm", "ASTM");
const enc = new TextEncoder();
const latin1 = (b: Uint8Array): string => String.fromCharCode(...b);

/** Compact view of actions: "ACK", "NAK", "start", "frame1", "message", "end", "E:CODE". */
function show(actions: AstmAction[]): string[] {
  return actions.map((a) => {
    switch (a.type) {
      case "send":
        return a.byte === ACK ? "ACK" : a.byte === NAK ? "NAK" : `send${a.byte}`;
      case "frame":
        return `frame${a.number}`;
      case "error":
        return `E:${a.error.code}`;
      default:
        return a.type;
    }
  });
}

function messagesOf(actions: AstmAction[]): string[] {
  return actions.flatMap((a) => (a.type === "message" ? [latin1(a.text)] : []));
}

/** A capture as a transfer: frames from the splitter, joined texts, parsed records. */
function decodeCapture(bytes: Uint8Array) {
  const s = astmFrameSplitter();
  const results = [...s.push(bytes), ...s.end()];
  const errors = results.flatMap((r) => ("error" in r ? [r.error] : []));
  const texts = results.flatMap((r) => {
    if (!("frame" in r)) return [];
    const f = parseAstmFrame(r.frame);
    return f.ok ? [latin1(f.frame.text)] : [];
  });
  return { errors, frames: texts.length, parsed: parseAstmMessage(texts.join("")) };
}

describe.skipIf(!ASTM)("ASTM captures (../shared/fixtures/astm), values of astm/EXPECTED.txt", () => {
  const capture = (name: string) => decodeCapture(readBytes(ASTM!, name));
  const records = (name: string) => {
    const c = capture(name);
    expect(c.errors).toEqual([]);
    if (!c.parsed.ok) throw new Error(c.parsed.error.message);
    return c.parsed.message.records;
  };

  it("abbott_afinion2: header, patient, order, one HbA1c result", () => {
    const rs = records("abbott_afinion2.txt");
    const h = astmHeader(rs[0]!);
    expect(h.sender[0]).toBe("Afinion 2 Analyzer");
    expect(h.sender[2]).toBe("AF20052397");
    expect(h).toMatchObject({ processingId: "P", version: "1" });
    expect(astmPatient(rs.find((r) => r.type === "P")!).laboratoryId).toBe("3643");
    const o = astmOrder(rs.find((r) => r.type === "O")!);
    expect(o.instrumentSpecimenId[0]).toBe("5");
    expect(o.tests[0]![3]).toBe("HbA1c");
    expect(o.actionCode).toBe("N");
    expect(o.specimen[1]).toBe("O");
    const results = rs.filter((r) => r.type === "R").map(astmResult);
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({
      test: "HbA1c",
      value: "5.9",
      units: "%",
      status: "F",
      operator: "3643",
      completedAt: "20241206140615",
    });
    expect(results[0]!.abnormalFlag).toBeUndefined();
  });

  it("dca_vantage: three results", () => {
    const rs = records("dca_vantage.txt");
    const h = astmHeader(rs[0]!);
    expect(h.sender.slice(0, 3)).toEqual(["DCA VANTAGE", "04.04.00.00", "S067337"]);
    expect(h.processingId).toBe("P");
    const o = astmOrder(rs.find((r) => r.type === "O")!);
    expect(o.instrumentSpecimenId.slice(0, 2)).toEqual(["660", "0090"]);
    expect(o.actionCode).toBeUndefined();
    expect(o.reportType).toBe("F");
    const results = rs.filter((r) => r.type === "R").map(astmResult);
    expect(results.map((r) => r.test)).toEqual(["Alb", "Crt", "Ratio"]);
    expect(results.map((r) => r.value)).toEqual(["63.7", "230.8", "27.6"]);
    expect(results.map((r) => r.units)).toEqual(["mg/L", "mg/dL", "mg/g"]);
    expect(results.map((r) => r.status)).toEqual(["F", "F", "F"]);
  });

  it("sysmex_xn550: one frame of a whole message (longer than E1381's 247), 41 results", () => {
    const rs = records("sysmex_xn550.txt");
    const h = astmHeader(rs[0]!);
    expect(h.sender[0]!.trim()).toBe("XN-550");
    expect(h.sender[1]).toBe("00-24");
    expect(h.sender[2]).toBe("22723");
    expect(h.sender[6]).toBe("BD634545");
    expect(h.version).toBe("E1394-97");
    const p = astmPatient(rs.find((r) => r.type === "P")!);
    // EXPECTED.txt (senaite) calls components 2 and 3 first and last name; E1394 §8.1.6 orders
    // last^first^middle, and Sysmex leaves the first empty. The values are the components as sent.
    expect(p.name.slice(1, 3)).toEqual(["Jim", "Brown"]);
    expect(p).toMatchObject({ birthdate: "19870626", sex: "M" });
    expect(p.physician[1]).toBe("DR.1");
    expect(p.location[3]).toBe("WEST");
    const o = astmOrder(rs.find((r) => r.type === "O")!);
    expect(o.instrumentSpecimenId[0]).toBe("");
    expect(o.instrumentSpecimenId[1]).toBe("");
    expect(o.instrumentSpecimenId[2]!.trim()).toBe("27");
    expect(o.instrumentSpecimenId[3]).toBe("M");
    expect(o.tests.map((t) => t[4])).toContain("WBC");
    expect(o).toMatchObject({ actionCode: "N", reportType: "F" });
    const results = rs.filter((r) => r.type === "R").map(astmResult);
    expect(results).toHaveLength(41);
    expect(results[0]).toMatchObject({ test: "WBC", value: "8.13", units: "10*3/uL", abnormalFlag: "N", status: "F" });
    // &R& in a value is the repeat delimiter, escaped (E1394 §7.1.3)
    expect(results[37]!.value).toBe("PNG\\20240628\\2024_06_27_13_54_27_WDF.PNG");
  });

  it("cobas_c111: seven ETB frames, one per record, joined into one message", () => {
    const c = capture("cobas_c111.txt");
    expect(c.frames).toBe(7);
    expect(c.errors).toEqual([]);
    const rs = c.parsed.ok ? c.parsed.message.records : [];
    expect(rs.map((r) => r.type).join("")).toBe("HPORCML");
    expect(astmResult(rs[3]!)).toMatchObject({
      test: "413",
      value: "40.13",
      units: "g/L",
      abnormalFlag: "N",
      status: "F",
    });
    expect(astmTerminator(rs[6]!).code).toBe("N");
  });

  it("every capture passes the link layer as one transfer: ENQ, frames ACKed, EOT", () => {
    for (const name of ["abbott_afinion2.txt", "dca_vantage.txt", "sysmex_xn550.txt", "cobas_c111.txt"]) {
      const rx = astmReceiver();
      const bytes = readBytes(ASTM!, name);
      const actions = [...rx.push(Uint8Array.of(ENQ)), ...rx.push(bytes), ...rx.push(Uint8Array.of(EOT))];
      expect(show(actions).filter((a) => a.startsWith("E:") || a === "NAK")).toEqual([]);
      const msgs = messagesOf(actions);
      expect(msgs).toHaveLength(1);
      expect(parseAstmMessage(msgs[0]!).ok).toBe(true);
      expect(rx.state).toBe("neutral");
      // split at every byte boundary: same message
      for (let cut = 1; cut < bytes.length; cut += Math.max(1, Math.floor(bytes.length / 97))) {
        const r2 = astmReceiver();
        const a2 = [
          ...r2.push(Uint8Array.of(ENQ)),
          ...r2.push(bytes.subarray(0, cut)),
          ...r2.push(bytes.subarray(cut)),
          ...r2.push(Uint8Array.of(EOT)),
        ];
        expect(messagesOf(a2)).toEqual(msgs);
      }
    }
  });

  it("mini_vidas and spotchem_el are refused as not ASTM, saying why", () => {
    for (const [name, why] of [
      ["mini_vidas.txt", /STX is followed by byte 0x1E, not a frame number/],
      ["spotchem_el.txt", /ETX is followed by byte 0x0A, not a two-digit hex checksum/],
    ] as const) {
      const c = capture(name);
      expect(c.frames).toBe(0);
      expect(c.errors).toHaveLength(1);
      expect(c.errors[0]).toMatchObject({ code: "ASTM_NOT_ASTM" });
      expect(c.errors[0]!.message).toMatch(why);
      // and their text is not E1394 either
      const text = parseAstmMessage(readBytes(ASTM!, name));
      expect(text).toMatchObject({ ok: false, error: { code: "ASTM_NOT_ASTM" } });
      // the link layer refuses them too, within the transfer, without hanging
      const rx = astmReceiver();
      const actions = show([
        ...rx.push(Uint8Array.of(ENQ)),
        ...rx.push(readBytes(ASTM!, name)),
        ...rx.push(Uint8Array.of(EOT)),
      ]);
      expect(actions).toContain("E:ASTM_NOT_ASTM");
      expect(actions.at(-1)).toBe("end");
    }
  });
});

describe("astmReceiver (E1381 link layer)", () => {
  const bloodGas = ownFixture("astm-bloodgas-synthetic.txt");
  /** 12 frames of at most 100 text characters: frame numbers 1..7, 0, 1..4. */
  const frames = encodeAstmMessage(bloodGas, 1, 100);

  function run(rx: AstmReceiver, ...chunks: Uint8Array[]): string[] {
    return chunks.flatMap((c) => show(rx.push(c)));
  }

  it("receives a 12-frame message: frame numbers wrap modulo 8, ETB frames joined, the last (ETX) completes it", () => {
    expect(frames).toHaveLength(12);
    const rx = astmReceiver();
    const acts: AstmAction[] = [...rx.push(Uint8Array.of(ENQ))];
    for (const f of frames) acts.push(...rx.push(f));
    acts.push(...rx.push(Uint8Array.of(EOT)));
    expect(show(acts).filter((a) => a.startsWith("frame"))).toEqual(
      [1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3, 4].map((n) => `frame${n}`),
    );
    expect(messagesOf(acts)).toEqual([latin1(bloodGas)]);
    expect(show(acts).filter((a) => a === "ACK")).toHaveLength(13);
  });

  it("asks for the 30 s receiver timer while receiving, and none when neutral", () => {
    const rx = astmReceiver();
    expect(rx.timeoutMs).toBeUndefined();
    rx.push(Uint8Array.of(ENQ));
    expect(rx.timeoutMs).toBe(ASTM_RECEIVER_TIMEOUT_MS);
    rx.push(frames[0]!);
    expect(show(rx.timeout())).toEqual(["E:ASTM_TIMEOUT", "E:ASTM_INCOMPLETE_MESSAGE"]);
    expect(rx.state).toBe("neutral");
    expect(rx.pending).toBe(0);
  });

  it("NAKs a bad checksum, accepts the retransmission, ACKs and ignores a repeated frame", () => {
    const rx = astmReceiver();
    const bad = frames[0]!.slice();
    bad[5] = bad[5]! ^ 0x01;
    expect(run(rx, Uint8Array.of(ENQ), bad, frames[0]!, frames[0]!, frames[1]!)).toEqual([
      "ACK",
      "start",
      "E:ASTM_BAD_CHECKSUM",
      "NAK",
      "frame1",
      "ACK",
      "ACK",
      "frame2",
      "ACK",
    ]);
  });

  it("accepts frame numbers that restart or skip, as analysers send them; a repeat is the same number with the same text", () => {
    // a skip (1, 3) and a second message restarting at 1 after frame 1 of the first: all accepted, in order
    const rx = astmReceiver();
    const one = encodeAstmFrame(1, enc.encode("H|\\^&\rL|1|N\r"), true);
    const again = encodeAstmFrame(1, enc.encode("H|\\^&|||second\rL|1|N\r"), true);
    expect(run(rx, Uint8Array.of(ENQ), frames[0]!, frames[2]!, one, again, again)).toEqual([
      "ACK",
      "start",
      "frame1",
      "ACK",
      "frame3",
      "ACK",
      "frame1",
      "message",
      "ACK",
      "frame1",
      "message",
      "ACK",
      "ACK",
    ]);
    // the checksum still guards a frame whatever its number
    const bad = encodeAstmFrame(5, enc.encode("R|1|^^^pH|7.40\r"), false);
    bad[bad.length - 3] = bad[bad.length - 3] === 0x30 ? 0x31 : 0x30;
    expect(run(rx, bad)).toEqual(["E:ASTM_BAD_CHECKSUM", "NAK"]);
  });

  it("reads a Radiometer ABL9-style SOH ... EOT message (records, no ENQ, no frames): one ACK per message", () => {
    const text = latin1(bloodGas);
    const rx = astmReceiver();
    const acts = [
      ...rx.push(Uint8Array.of(SOH)),
      ...rx.push(bloodGas.subarray(0, 50)),
      ...rx.push(bloodGas.subarray(50)),
      ...rx.push(Uint8Array.of(EOT)),
    ];
    expect(show(acts)).toEqual(["start", "message", "ACK", "end"]);
    expect(messagesOf(acts)).toEqual([text]);
    expect(rx.state).toBe("neutral");
    // held: the ACK waits for confirm(); a refusal is a NAK; either way the line is neutral after
    const held = astmReceiver({ holdFinalAck: true });
    expect(run(held, Uint8Array.of(SOH), bloodGas, Uint8Array.of(EOT))).toEqual(["start", "message"]);
    expect(held.state).toBe("confirming");
    expect(show(held.confirm(true))).toEqual(["ACK", "end"]);
    expect(run(held, Uint8Array.of(SOH), bloodGas, Uint8Array.of(EOT))).toEqual(["start", "message"]);
    expect(show(held.confirm(false))).toEqual(["NAK", "end"]);
    expect(held.state).toBe("neutral");
  });

  it("an SOH message without its EOT is discarded at the next SOH or ENQ, or after 30 s; one too long is bounded", () => {
    const rx = astmReceiver({ maxMessageBytes: 100 });
    expect(run(rx, Uint8Array.of(SOH), bloodGas.subarray(0, 40), Uint8Array.of(SOH))).toEqual([
      "start",
      "E:ASTM_INCOMPLETE_MESSAGE",
      "start",
    ]);
    expect(rx.timeoutMs).toBe(30_000);
    expect(run(rx, bloodGas.subarray(0, 40))).toEqual([]);
    expect(show(rx.timeout())).toEqual(["E:ASTM_INCOMPLETE_MESSAGE", "E:ASTM_TIMEOUT"]);
    expect(rx.state).toBe("neutral");
    expect(run(rx, Uint8Array.of(SOH), bloodGas, Uint8Array.of(EOT))).toEqual(["start", "E:ASTM_OVERSIZE", "end"]);
    expect(rx.pending).toBe(0);
  });

  it("gives up after 6 rejected attempts (NAK storm) and waits for EOT, holding nothing", () => {
    const rx = astmReceiver();
    const bad = encodeAstmFrame(1, enc.encode("H|\\^&\r"), true);
    bad[bad.length - 4] = 0x5a; // checksum digit 'Z'
    const acts = [...run(rx, Uint8Array.of(ENQ))];
    for (let i = 0; i < 20; i++) acts.push(...run(rx, bad));
    expect(acts.filter((a) => a === "NAK")).toHaveLength(ASTM_MAX_ATTEMPTS - 1);
    expect(acts.filter((a) => a === "E:ASTM_RETRIES_EXHAUSTED")).toHaveLength(1);
    expect(rx.state).toBe("aborted");
    expect(rx.pending).toBe(0);
    expect(run(rx, Uint8Array.of(EOT))).toEqual(["end"]);
  });

  it("discards an unfinished message at EOT", () => {
    const rx = astmReceiver();
    expect(run(rx, Uint8Array.of(ENQ), frames[0]!, Uint8Array.of(EOT))).toEqual([
      "ACK",
      "start",
      "frame1",
      "ACK",
      "E:ASTM_INCOMPLETE_MESSAGE",
      "end",
    ]);
  });

  it("contention: we sent ENQ, so did the instrument; we yield and answer its next ENQ", () => {
    const rx = astmReceiver();
    rx.enqSent();
    expect(run(rx, Uint8Array.of(ENQ))).toEqual(["contention"]);
    expect(rx.state).toBe("neutral");
    expect(run(rx, Uint8Array.of(ENQ))).toEqual(["ACK", "start"]);
  });

  it("holdFinalAck: the message's last ACK waits for the store; a refusal NAKs and the retransmission completes it", () => {
    const rx = astmReceiver({ holdFinalAck: true });
    const two = encodeAstmMessage(bloodGas, 1, 600);
    const a1 = [...rx.push(Uint8Array.of(ENQ)), ...rx.push(two[0]!), ...rx.push(two[1]!)];
    expect(show(a1)).toEqual(["ACK", "start", "frame1", "ACK", "frame2", "message"]);
    expect(rx.state).toBe("confirming");
    expect(show(rx.confirm(false))).toEqual(["NAK"]);
    const a2 = rx.push(two[1]!);
    expect(show(a2)).toEqual(["frame2", "message"]);
    expect(messagesOf(a2)).toEqual([latin1(bloodGas)]);
    expect(show(rx.confirm(true))).toEqual(["ACK"]);
    expect(run(rx, Uint8Array.of(EOT))).toEqual(["end"]);
  });

  it("says once that data without ENQ is not the E1381 link layer", () => {
    const rx = astmReceiver();
    expect(run(rx, enc.encode("24/10/29 13:08 ID# 1DC042FP Na 131"), enc.encode("more"))).toEqual(["E:ASTM_NOT_ASTM"]);
  });
});

describe("parseAstmMessage (E1394 records)", () => {
  it("decodes the synthetic blood-gas message: escapes, repeats, components, all record types", () => {
    const r = parseAstmMessage(ownFixture("astm-bloodgas-synthetic.txt"));
    if (!r.ok) throw new Error(r.error.message);
    const rs = r.message.records;
    expect(rs.map((x) => x.type).join("")).toBe("HPO" + "R".repeat(13) + "CML");
    expect(r.message.warnings).toEqual([]);
    const results = rs.filter((x) => x.type === "R").map(astmResult);
    expect(results.map((x) => x.test)).toEqual([
      "pH",
      "pCO2",
      "pO2",
      "HCO3-",
      "BE(B)",
      "sO2",
      "tHb",
      "Lac",
      "Na+",
      "K+",
      "Cl-",
      "iCa",
      "Glu",
    ]);
    expect(results[1]).toMatchObject({
      value: "52.1",
      units: "mm[Hg]",
      referenceRange: "35 to 45",
      abnormalFlag: "H",
      operator: "OP^1",
    });
    const c = astmComment(rs.find((x) => x.type === "C")!);
    expect(c.text).toEqual(["Sample temperature 37.0^C, FIO2 0.21\\room air"]);
    expect(
      astmField(
        rs.find((x) => x.type === "M")!,
        4,
      ),
    ).toBe("lot|A12");
  });

  it("reads the delimiters from the header, whatever they are", () => {
    const r = parseAstmMessage("H!@#$!!!Dev#1\rR!1!###K+!4.1@4.2!mmol/L\rL!1!N\r");
    if (!r.ok) throw new Error(r.error.message);
    expect(r.message.delimiters).toEqual({ field: "!", repeat: "@", component: "#", escape: "$" });
    expect(astmHeader(r.message.records[0]!).sender).toEqual(["Dev", "1"]);
    expect(astmResult(r.message.records[1]!)).toMatchObject({ test: "K+", value: "4.1\\4.2", units: "mmol/L" });
  });

  it("decodes hex escapes and keeps unknown ones as sent", () => {
    const r = parseAstmMessage("H|\\^&\rC|1|I|a&X41&b&Q&c|G\rL|1\r");
    expect(r.ok && astmComment(r.message.records[1]!).text[0]).toBe("aAb&Q&c");
  });

  it("refuses text that is not E1394, saying what it starts with", () => {
    const r = parseAstmMessage("24/10/29 13:08 ID# 1DC042FP");
    expect(r).toMatchObject({ ok: false, error: { code: "ASTM_NOT_ASTM" } });
    expect(!r.ok && r.error.message).toContain("24/10/29");
    expect(parseAstmMessage("H|||")).toMatchObject({ ok: false, error: { code: "ASTM_NOT_ASTM" } });
  });
});

describe("fuzz (fast-check, seeded)", () => {
  const params = { seed: 0xa57e, numRuns: 300 };
  const control = fc.constantFrom(ENQ, EOT, STX, ETX, ACK, NAK, SOH, 0x17, 0x0d, 0x0a);
  const noisy = fc
    .array(fc.oneof(fc.integer({ min: 0, max: 255 }), control), { maxLength: 600 })
    .map((a) => Uint8Array.from(a));

  it("the receiver never throws, holds a bounded amount, and every error has a code (random bytes and timeouts)", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(noisy, fc.boolean(), fc.boolean()), { maxLength: 12 }), (steps) => {
        const rx = astmReceiver({ maxFrameBytes: 300, maxMessageBytes: 2000, holdFinalAck: true });
        for (const [bytes, fire, ok] of steps) {
          const acts = [...rx.push(bytes), ...(fire ? rx.timeout() : []), ...rx.confirm(ok)];
          for (const a of acts) if (a.type === "error") expect(a.error.code).toMatch(/^ASTM_[A-Z_]+$/);
          expect(rx.pending).toBeLessThanOrEqual(2300);
        }
      }),
      params,
    );
  });

  it("a valid transfer survives any split and any number of bad frames up to the retry limit", () => {
    const text = ownFixture("astm-bloodgas-synthetic.txt");
    const frames = encodeAstmMessage(text, 1, 120);
    fc.assert(
      fc.property(
        fc.array(fc.nat(200), { maxLength: 10 }),
        fc.array(fc.nat(ASTM_MAX_ATTEMPTS - 1), { minLength: frames.length, maxLength: frames.length }),
        (cuts, badCounts) => {
          const parts: Uint8Array[] = [Uint8Array.of(ENQ)];
          frames.forEach((f, i) => {
            for (let k = 0; k < badCounts[i]!; k++) {
              const bad = f.slice();
              const at = 2 + (k % Math.max(1, f.length - 7));
              bad[at] = bad[at]! ^ 0x20; // flip a text bit: the checksum catches it
              parts.push(bad);
            }
            parts.push(f);
          });
          parts.push(Uint8Array.of(EOT));
          const all = Uint8Array.from(parts.flatMap((p) => [...p]));
          const rx = astmReceiver();
          const acts: AstmAction[] = [];
          let from = 0;
          for (const cut of [...cuts.map((c) => (c * 37) % all.length).sort((a, b) => a - b), all.length]) {
            acts.push(...rx.push(all.subarray(from, Math.max(from, cut))));
            from = Math.max(from, cut);
          }
          expect(messagesOf(acts)).toEqual([latin1(text)]);
        },
      ),
      { ...params, numRuns: 100 },
    );
  });

  it("the capture splitter never throws and stays bounded", () => {
    fc.assert(
      fc.property(noisy, (bytes) => {
        const s = astmFrameSplitter({ maxFrameBytes: 256 });
        for (const r of [...s.push(bytes), ...s.end()]) if ("error" in r) expect(r.error.code).toMatch(/^ASTM_/);
        expect(s.pending).toBeLessThanOrEqual(256);
        expect(() => parseAstmMessage(bytes)).not.toThrow();
      }),
      params,
    );
  });
});
