import { describe, expect, it } from "vitest";
import {
  buildAck,
  buildAckText,
  charsetEncoding,
  decodeText,
  encodeText,
  errorLocation,
  escapeHl7,
  hl7CaptureFramer,
  parseHl7,
  parseHl7Time,
  readHl7Header,
  segmentsNamed,
  unescapeHl7,
} from "./index.ts";
import type { Hl7Message } from "./index.ts";
import type { FrameResult } from "../codec.ts";
import { prng } from "../../test/support/prng.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function parsed(text: string | Uint8Array, defaultCharset?: string): Hl7Message {
  const r = parseHl7(typeof text === "string" ? enc.encode(text) : text, { defaultCharset });
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.message;
}

const ORU =
  "MSH|^~\\&|MON^0012A3FFFE000001^EUI-64|ICU|GW|CTR|20261123152901+0800||ORU^R01^ORU_R01|CTRL42|P|2.6\rPID|||SIM1||SYNTHETIC^PATIENT\rOBR|1|||x|||20261123152900+0800\rOBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.2.1.150456|98|262688^MDC_DIM_PERCENT^MDC|||||R\rOBX|2|ST|X^Y||a~b~c\r";

describe("parseHl7", () => {
  it("reads segments, fields, components and repetitions", () => {
    const m = parsed(ORU);
    expect(m.segments.map((s) => s.name)).toEqual(["MSH", "PID", "OBR", "OBX", "OBX"]);
    expect(m.header).toMatchObject({
      messageCode: "ORU",
      triggerEvent: "R01",
      messageStructure: "ORU_R01",
      controlId: "CTRL42",
      version: "2.6",
      processingId: "P",
      encoding: "utf-8",
    });
    const msh = m.segments[0]!;
    expect(msh.field(1)).toBe("|");
    expect(msh.field(2)).toBe("^~\\&");
    expect(msh.value(9, 2)).toBe("R01");
    const [obx1, obx2] = segmentsNamed(m, "OBX");
    expect(obx1!.value(3, 2)).toBe("MDC_PULS_OXIM_SAT_O2");
    expect(obx1!.components(6)).toEqual(["262688", "MDC_DIM_PERCENT", "MDC"]);
    expect(obx2!.repetitions(5)).toEqual(["a", "b", "c"]);
    expect(obx2!.value(5, 1, 1, 3)).toBe("c");
    expect(obx2!.where(5, 1)).toBe("OBX[2]-5.1");
    expect(msh.where(9)).toBe("MSH-9");
  });

  it("takes its delimiters from MSH-1 and MSH-2", () => {
    const m = parsed("MSH#$*!@#A#B#C#D#20260101##ORU$R01#7#P#2.6\rNTE#1##x!F!y!S!z!T!w!R!v!E!u$second*rep\r");
    expect(m.header.delimiters).toEqual({
      field: "#",
      component: "$",
      repetition: "*",
      escape: "!",
      subcomponent: "@",
    });
    const nte = m.segments[1]!;
    expect(nte.value(3)).toBe("x#y$z@w*v!u");
    expect(nte.value(3, 2)).toBe("second");
    expect(nte.value(3, 1, 1, 2)).toBe("rep");
  });

  it("resolves escape sequences and leaves unknown ones alone", () => {
    const d = { field: "|", component: "^", repetition: "~", escape: "\\", subcomponent: "&" };
    expect(unescapeHl7("a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f", d)).toBe("a|b^c&d~e\\f");
    expect(unescapeHl7("x\\.br\\y\\H\\bold\\N\\", d)).toBe("x\nybold");
    expect(unescapeHl7("\\X41C3A9\\", d)).toBe("Aé");
    expect(unescapeHl7("\\Q\\ and \\F", d)).toBe("\\Q\\ and \\F");
    expect(unescapeHl7(escapeHl7("a|b^c&d~e\\f\r", d), d)).toBe("a|b^c&d~e\\f\r");
  });

  it("accepts CR, CRLF and LF segment terminators, and blank lines", () => {
    for (const eol of ["\r", "\r\n", "\n"]) {
      const m = parsed(ORU.replaceAll("\r", eol) + eol + eol);
      expect(m.segments.map((s) => s.name)).toEqual(["MSH", "PID", "OBR", "OBX", "OBX"]);
      expect(segmentsNamed(m, "OBX")[0]!.value(5)).toBe("98");
    }
  });

  it("keeps a lone LF inside a field when segments end with CR", () => {
    const m = parsed("MSH|^~\\&|A||||20260101||ORU^R01|1|P|2.6\rNTE|1||line one\nline two\r");
    expect(m.segments[1]!.value(3)).toBe("line one\nline two");
  });

  it("keeps Z-segments", () => {
    const m = parsed(ORU + "ZDV|1|fw 1.0\\S\\7\r");
    expect(segmentsNamed(m, "ZDV")[0]!.value(2)).toBe("fw 1.0^7");
  });

  it("decodes the character set named in MSH-18, and GB18030 before splitting", () => {
    // 億 is 83 7C and 區 85 5E in GB18030: bytes equal to "|" and "^".
    const text =
      "MSH|^~\\&|MON|急救车億號|GW|區域中心|20261123152901+0800||ORU^R01|1|P|2.6|||||CHN|GB 18030-2000\rNTE|1||监护仪 億 區\r";
    const bytes = gb18030(text);
    const m = parsed(bytes);
    expect(m.header.encoding).toBe("gb18030");
    expect(m.segments[0]!.value(4)).toBe("急救车億號");
    expect(m.segments[0]!.value(6)).toBe("區域中心");
    expect(m.segments[1]!.value(3)).toBe("监护仪 億 區");
  });

  it("uses the configured default when MSH-18 is empty", () => {
    const bytes = gb18030("MSH|^~\\&|MON||||20261123152901||ORU^R01|1|P|2.6\rNTE|1||心率\r");
    expect(parsed(bytes, "gb18030").segments[1]!.value(3)).toBe("心率");
    expect(parsed(bytes, "utf-8").segments[1]!.value(3)).not.toBe("心率");
  });

  it("fails, naming where, on what it cannot read", () => {
    const cases: [string, string, string | undefined][] = [
      ["", "HL7_EMPTY", undefined],
      ["  \r\n", "HL7_EMPTY", undefined],
      ["PID|1\r", "HL7_NO_MSH", "MSH"],
      ["MSH", "HL7_BAD_DELIMITERS", "MSH-1"],
      ["MSHA^~\\&|x", "HL7_BAD_DELIMITERS", "MSH-1"],
      ["MSH|^^\\&|x", "HL7_BAD_DELIMITERS", "MSH-2"],
      ["MSH||x", "HL7_BAD_DELIMITERS", "MSH-2"],
      ["MSH|^~\\&|A||||20260101||ORU^R01|1|P|2.6|||||X|KLINGON\r", "HL7_CHARSET", "MSH-18"],
      ["MSH|^~\\&|A||||20260101||ORU^R01|1|P|2.6\rOBX|1\rnot a segment\r", "HL7_BAD_SEGMENT", "segment 3"],
      ["MSH|^~\\&|A||||20260101||ORU^R01|1|P|2.6\rMSH|^~\\&|B\r", "HL7_MULTIPLE_MSH", "MSH[2]"],
    ];
    for (const [text, code, where] of cases) {
      const r = parseHl7(enc.encode(text));
      expect(r.ok, text).toBe(false);
      if (!r.ok) {
        expect(r.error.code, text).toBe(code);
        expect(r.error.where, text).toBe(where);
        expect(r.error.message.length).toBeGreaterThan(5);
      }
    }
  });

  it("reads what it can of a broken MSH for the ACK", () => {
    const h = readHl7Header(enc.encode("MSH|^~\\&|MON|ICU|GW|CTR|2026||ORU^R01|CTRL9|P|2.5|||||X|KLINGON\r"));
    expect(h).toMatchObject({ sendingApplication: "MON", controlId: "CTRL9", version: "2.5" });
    expect(readHl7Header(enc.encode("garbage")).controlId).toBe("");
  });

  it("never throws, whatever the bytes (fuzz, seeded)", () => {
    const rand = prng(7);
    const base = enc.encode(ORU);
    for (let i = 0; i < 2000; i++) {
      const b = Uint8Array.from(base);
      const n = 1 + Math.floor(rand() * 8);
      for (let k = 0; k < n; k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
      const cut = b.subarray(0, Math.floor(rand() * b.length) + 1);
      const r = parseHl7(cut);
      if (!r.ok) expect(r.error.code).toMatch(/^HL7_/);
    }
  });
});

describe("parseHl7Time", () => {
  it("converts stamps with an offset to UTC", () => {
    expect(parseHl7Time("20261123152901+0800")).toEqual({
      raw: "20261123152901+0800",
      iso: "2026-11-23T07:29:01.000Z",
      hasOffset: true,
    });
    expect(parseHl7Time("20261123152901.25-0530")?.iso).toBe("2026-11-23T20:59:01.250Z");
    expect(parseHl7Time("202611231529+0000")?.iso).toBe("2026-11-23T15:29:00.000Z");
    expect(parseHl7Time("20260124124738000+0800")?.iso).toBe("2026-01-24T04:47:38.000Z");
  });

  it("keeps stamps without an offset raw, unless an offset is assumed", () => {
    expect(parseHl7Time("20171221145413")).toEqual({ raw: "20171221145413", hasOffset: false });
    expect(parseHl7Time("20171221145413", 480)?.iso).toBe("2017-12-21T06:54:13.000Z");
  });

  it("gives no instant for bad or coarse stamps", () => {
    expect(parseHl7Time("")).toBeUndefined();
    expect(parseHl7Time("20260231120000+0000")?.iso).toBeUndefined();
    expect(parseHl7Time("20261301120000+0000")?.iso).toBeUndefined();
    expect(parseHl7Time("20261123+0800")?.iso).toBeUndefined();
    expect(parseHl7Time("yesterday")).toEqual({ raw: "yesterday", hasOffset: false });
  });
});

describe("buildAck", () => {
  const m = parsed(ORU.replace("|2.6\r", "|2.6|||AL|NE||UNICODE UTF-8\r"));

  it("AA: sender and receiver swapped, the sender's delimiters, MSA-2 the control id", () => {
    const text = dec.decode(buildAck({ message: m, code: "AA", time: "20261123152902+0800" }));
    const [msh, msa, more] = text.split("\r");
    expect(msh).toBe(
      "MSH|^~\\&|GW|CTR|MON^0012A3FFFE000001^EUI-64|ICU|20261123152902+0800||ACK^R01^ACK|ACKCTRL42|P|2.6||||||UNICODE UTF-8",
    );
    expect(msa).toBe("MSA|AA|CTRL42");
    expect(more).toBe("");
  });

  it("AE and AR carry MSA-3 and an ERR segment with location, table 0357 code and severity", () => {
    const text = dec.decode(
      buildAck({ message: m, code: "AR", error: { code: 102, text: "not a number", where: "OBX[3]-5" } }),
    );
    const [, msa, err] = text.split("\r");
    expect(msa).toBe("MSA|AR|CTRL42|not a number");
    expect(err).toBe("ERR||OBX^3^5|102^Data type error^HL70357|E||||not a number");
  });

  it("uses the sender's own delimiters and escapes our text with them", () => {
    const custom = parsed("MSH#$*!@#A#B#C#D#20260101##ORU$R40#7#P#2.6\r");
    const text = dec.decode(
      buildAck({ message: custom, code: "AE", error: { code: 207, text: "disk # full $ now", where: "MSH-9.2" } }),
    );
    expect(text.split("\r")).toEqual([
      "MSH#$*!@#C#D#A#B###ACK$R40$ACK#ACK7#P#2.6",
      "MSA#AE#7#disk !F! full !S! now",
      "ERR##MSH$1$9$1$2#207$Application internal error$HL70357#E####disk !F! full !S! now",
      "",
    ]);
  });

  it("is buildable with no readable MSH at all: defaults, MSA-2 empty", () => {
    const text = dec.decode(buildAck({ code: "AR", error: { code: 100, text: "no MSH" }, application: "VITALGATE" }));
    expect(text.split("\r").slice(0, 3)).toEqual([
      "MSH|^~\\&|VITALGATE||||||ACK|ACK|P|2.6",
      "MSA|AR||no MSH",
      "ERR|||100^Segment sequence error^HL70357|E||||no MSH",
    ]);
  });

  it("answers in the sender's version and character set", () => {
    const bytes = gb18030(
      "MSH|^~\\&|MON|急救车億號|GW|區域中心|20261123152901+0800||ORU^R01|1|P|2.3|||||CHN|GB 18030-2000\r",
    );
    const { text, encoding } = buildAckText({ message: parsed(bytes), code: "AA" });
    expect(encoding).toBe("gb18030");
    expect(text.split("\r")[0]).toBe("MSH|^~\\&|GW|區域中心|MON|急救车億號|||ACK^R01|ACK1|P|2.3||||||GB 18030-2000");
    const ack = buildAck({ message: parsed(bytes), code: "AA" });
    expect(decodeText(ack, "gb18030")).toBe(text);
  });

  it("turns locations into HL7 ERL", () => {
    expect(errorLocation("MSH-9")).toBe("MSH^1^9");
    expect(errorLocation("OBX[3]-5")).toBe("OBX^3^5");
    expect(errorLocation("OBX[3]-5.2")).toBe("OBX^3^5^1^2");
    expect(errorLocation("OBX[2]")).toBe("OBX^2");
    expect(errorLocation("segment 4")).toBe("");
  });
});

describe("character sets", () => {
  it("maps HL7 table 0211 names", () => {
    expect(charsetEncoding("UNICODE UTF-8")).toBe("utf-8");
    expect(charsetEncoding("ASCII")).toBe("utf-8");
    expect(charsetEncoding("GB 18030-2000")).toBe("gb18030");
    expect(charsetEncoding("GBK")).toBe("gbk");
    expect(charsetEncoding("8859/1")).toBe("iso-8859-1");
    expect(charsetEncoding("nonsense")).toBeUndefined();
  });

  it("encodes GB18030 as the exact inverse of decoding", () => {
    const s = "急救车 億 區 心率 ℃";
    expect(decodeText(encodeText(s, "gb18030"), "gb18030")).toBe(s);
  });
});

describe("hl7CaptureFramer", () => {
  const log = enc.encode(
    "14:54:13,548 DEBUG [main] starting\r\nparsing message: MSH|^~\\&|noise\r\nMSH|^~\\&|A||||20260101||ORU^R01|1|P|2.6\r\nOBX|1|NM|X||1\r\n\r\nOBX|2|NM|Y||2\r\n14:54:13,723 DEBUG [main] next\nMSH|^~\\&|B||||20260101||ORU^R01|2|P|2.6\nPID|1\n\x0bMSH|^~\\&|C||||20260101||ORU^R01|3|P|2.6\rOBX|1|NM|Z||3\r\x1c\rMSH|^~\\&|D||||20260101||ORU^R01|4|P|2.6\r",
  );
  const expected = [
    "MSH|^~\\&|A||||20260101||ORU^R01|1|P|2.6\rOBX|1|NM|X||1\rOBX|2|NM|Y||2\r",
    "MSH|^~\\&|B||||20260101||ORU^R01|2|P|2.6\rPID|1\r",
    "MSH|^~\\&|C||||20260101||ORU^R01|3|P|2.6\rOBX|1|NM|Z||3\r",
    "MSH|^~\\&|D||||20260101||ORU^R01|4|P|2.6\r",
  ];
  const run = (cuts: number[]) => {
    const f = hl7CaptureFramer({ maxFrameBytes: 4096 });
    const out: FrameResult[] = [];
    let from = 0;
    for (const c of [...cuts, log.length]) {
      out.push(...f.push(log.subarray(from, c)));
      from = c;
    }
    out.push(...f.end());
    return out.map((r) => ("frame" in r ? dec.decode(r.frame) : r.error.code));
  };

  it("finds bare and MLLP-wrapped messages between log lines", () => {
    expect(run([])).toEqual(expected);
  });

  it("finds the same messages however the file is split", () => {
    for (let cut = 1; cut < log.length; cut++) expect(run([cut])).toEqual(expected);
  });
});

/** GB18030 bytes for a string (test helper, through the same encoder the ACK uses). */
function gb18030(s: string): Uint8Array {
  return encodeText(s, "gb18030");
}
