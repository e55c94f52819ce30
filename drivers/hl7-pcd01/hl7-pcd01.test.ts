import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { Exchange } from "../../src/driver.ts";
import type { EventDraft } from "../../src/events.ts";
import type { FrameResult, Framer } from "../../protocols/codec.ts";
import { mllpEncode } from "../../protocols/mllp/index.ts";
import { pcd01Message, pcd01Series, pcd04Alarm } from "./synthetic.ts";
import { hl7Pcd01, hl7Pcd01Options } from "./index.ts";
import type { Hl7Pcd01Options } from "./index.ts";
import { MDC_METRICS, MDC_UNITS, mdcCode } from "./mdc.ts";
import { prng } from "../../test/support/prng.ts";

const root = fileURLToPath(new URL("../../", import.meta.url));
const fixture = (name: string) => readFileSync(`${root}test/fixtures/hl7/${name}`);
const shared = `${root}../shared/fixtures/hl7v2/`;
const haveShared = existsSync(shared);
if (!haveShared) console.warn(`skipping the real HL7 captures: ${shared} is absent (the shared fixtures sit beside the project)`);
const enc = new TextEncoder();
const latin1 = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b).toString("latin1"));

const defaults = hl7Pcd01Options.parse({});
/** The moment the core says a frame is handled: 2026-11-23 08:00:00 UTC. */
const CTX = { nowMs: Date.UTC(2026, 10, 23, 8, 0, 0) };
const handle = (frame: Uint8Array, options: Hl7Pcd01Options): Exchange => hl7Pcd01.handle!(frame, options, CTX);
const opts = (o: object = {}): Hl7Pcd01Options => hl7Pcd01Options.parse(o);

function events(x: Exchange): EventDraft[] {
  if (!x.ok) throw new Error(`${x.error.code}: ${x.error.message}`);
  return x.events;
}

/** The ACK inside an MLLP envelope, as segments. */
function ackSegments(bytes: Uint8Array | undefined): string[] {
  expect(bytes).toBeDefined();
  const b = bytes!;
  expect([b[0], b[b.length - 2], b[b.length - 1]]).toEqual([0x0b, 0x1c, 0x0d]);
  return new TextDecoder().decode(b.subarray(1, b.length - 2)).split("\r").filter((s) => s !== "");
}

describe("options", () => {
  it("has defaults", () => {
    expect(defaults).toEqual({ mode: "listen", port: 2575, maxFrameBytes: 1048576, charset: "utf-8", codeMap: {} });
    expect(hl7Pcd01.transport(defaults)).toEqual({ type: "tcp-listen", host: "0.0.0.0", port: 2575 });
  });

  it("needs a host to connect to, a known charset and a sane time zone", () => {
    expect(hl7Pcd01Options.safeParse({ mode: "connect" }).success).toBe(false);
    expect(hl7Pcd01.transport(opts({ mode: "connect", host: "10.0.0.5", port: 6001 }))).toEqual({ type: "tcp-connect", host: "10.0.0.5", port: 6001 });
    expect(hl7Pcd01Options.safeParse({ charset: "klingon" }).success).toBe(false);
    expect(hl7Pcd01Options.safeParse({ charset: "GB 18030-2000" }).success).toBe(true);
    expect(hl7Pcd01Options.safeParse({ timezone: "+08:00" }).success).toBe(true);
    expect(hl7Pcd01Options.safeParse({ timezone: "Beijing" }).success).toBe(false);
  });
});

describe("MDC table", () => {
  it("has one code per reference id, and partition arithmetic right", () => {
    expect(mdcCode(2, 19384)).toBe(150456);
    expect(mdcCode(4, 544)).toBe(262688);
    const refids = MDC_METRICS.map((m) => m.refid);
    expect(new Set(refids).size).toBe(refids.length);
    for (const m of MDC_METRICS) expect(m.sources.split(" ").length, m.refid).toBeGreaterThanOrEqual(2);
    for (const u of MDC_UNITS) expect(u.sources.split(" ").length, u.refid).toBeGreaterThanOrEqual(2);
    const unit = (r: string) => MDC_UNITS.find((u) => u.refid === r);
    expect([unit("MDC_DIM_BEAT_PER_MIN"), unit("MDC_DIM_PERCENT"), unit("MDC_DIM_MMHG"), unit("MDC_DIM_DEGC"), unit("MDC_DIM_RESP_PER_MIN")].map((u) => [mdcCode(4, u!.term), u!.ucum])).toEqual([
      [264864, "/min"],
      [262688, "%"],
      [266016, "mm[Hg]"],
      [268192, "Cel"],
      [264928, "/min"],
    ]);
  });
});

describe("synthetic fixtures (test/fixtures/hl7)", () => {
  it("pcd01-basic: one vitals event per OBR, containment and waveform rows skipped", () => {
    const ev = events(handle(fixture("pcd01-basic.hl7"), defaults));
    expect(ev).toEqual([
      {
        kind: "vitals",
        deviceTime: "2026-11-23T07:29:00.000Z",
        deviceTimeRaw: "20261123152900+0800",
        model: "SIM_MONITOR",
        serial: "0012A3FFFE000001",
        body: {
          observations: [
            { code: "MDC_ECG_HEART_RATE", mdc: 147842, value: 72, unit: "/min", status: "R", sub: "1.1.1.147842" },
            { code: "MDC_TTHOR_RESP_RATE", mdc: 151578, value: 16, unit: "/min", status: "R", sub: "1.1.2.151578" },
            { code: "MDC_PULS_OXIM_SAT_O2", mdc: 150456, value: 97, unit: "%", status: "R", sub: "1.2.1.150456" },
            { code: "MDC_PULS_OXIM_PULS_RATE", mdc: 149530, value: 71, unit: "/min", status: "R", at: "2026-11-23T07:28:58.000Z", sub: "1.2.1.149530" },
            { code: "MDC_TEMP_BODY", mdc: 150364, value: 36.8, unit: "Cel", status: "R", sub: "1.4.1.150364" },
          ],
        },
      },
      {
        kind: "vitals",
        deviceTime: "2026-11-23T07:25:00.000Z",
        deviceTimeRaw: "20261123152500+0800",
        model: "SIM_MONITOR",
        serial: "0012A3FFFE000001",
        body: {
          observations: [
            { code: "MDC_PRESS_BLD_NONINV_SYS", mdc: 150021, value: 118, unit: "mm[Hg]", status: "F", sub: "1.3.1.150021" },
            { code: "MDC_PRESS_BLD_NONINV_DIA", mdc: 150022, value: 76, unit: "mm[Hg]", status: "F", sub: "1.3.1.150022" },
            { code: "MDC_PRESS_BLD_NONINV_MEAN", mdc: 150023, value: 90, unit: "mm[Hg]", status: "F", sub: "1.3.1.150023" },
          ],
        },
      },
    ]);
  });

  it("pcd01-custom-delimiters: # $ * ! @", () => {
    const x = handle(fixture("pcd01-custom-delimiters.hl7"), defaults);
    expect(events(x)[0]!.body).toEqual({
      observations: [
        { code: "MDC_PULS_OXIM_SAT_O2", mdc: 150456, value: 95, unit: "%", status: "R", sub: "1.2.1.150456" },
        { code: "MDC_PRESS_BLD_ART_ABP_SYS", mdc: 150037, value: 121, unit: "mm[Hg]", status: "R", sub: "1.5.1.150037" },
        { code: "MDC_PRESS_BLD_ART_ABP_DIA", mdc: 150038, value: 79, unit: "mm[Hg]", status: "R", sub: "1.5.1.150038" },
        { code: "MDC_PRESS_BLD_ART_ABP_MEAN", mdc: 150039, value: 93, unit: "mm[Hg]", status: "R", sub: "1.5.1.150039" },
      ],
    });
    expect(ackSegments(x.ok ? x.accept : undefined)).toEqual(["MSH#$*!@#VITALGATE##SIM_MONITOR$0012A3FFFE000002$EUI-64##20261123080000+0000##ACK$R01$ACK#ACKMSG0002#P#2.6", "MSA#AA#MSG0002"]);
  });

  it("pcd01-crlf-escapes-zsegment: CRLF, escapes, decimal comma, kPa, local time kept raw", () => {
    const [ev] = events(handle(fixture("pcd01-crlf-escapes-zsegment.hl7"), defaults));
    expect(ev).toEqual({
      kind: "vitals",
      deviceTimeRaw: "20261123153100",
      model: "SIM_MONITOR",
      body: {
        observations: [
          { code: "MDC_CONC_AWAY_CO2_ET", mdc: 151708, value: 4.8, unit: "kPa", status: "R", sub: "1.6.1.151708" },
          { code: "MDC_CONC_AWAY_O2_INSP", mdc: 152196, value: 40, unit: "%", status: "R", sub: "1.6.1.152196" },
          { code: "MDCX_NOTE", value: "a|b^c&d~e\\f\ng", unit: "", status: "F", sub: "1.0.0.1" },
          { code: "MDC_RESP_RATE", mdc: 151562, value: 18, unit: "/min", status: "R", sub: "1.6.1.151562" },
        ],
      },
    });
    // With the device's time zone configured, local times become UTC.
    const [tz] = events(handle(fixture("pcd01-crlf-escapes-zsegment.hl7"), opts({ timezone: "+08:00" })));
    expect(tz!.deviceTime).toBe("2026-11-23T07:31:00.000Z");
  });

  it("pcd01-vendor-local-lf: local codes through the codeMap, unit spellings to UCUM", () => {
    const codeMap = {
      "101": { code: "MDC_ECG_HEART_RATE" },
      "160^SpO2^99SIMV": { code: "MDC_PULS_OXIM_SAT_O2" },
      "170^NIBP Sys": { code: "MDC_PRESS_BLD_NONINV_SYS" },
      "171": { code: "MDC_PRESS_BLD_NONINV_DIA", mdc: 150022 },
      "200": { code: "MDC_TEMP", unit: "Cel" },
    };
    const [ev] = events(handle(fixture("pcd01-vendor-local-lf.hl7"), opts({ codeMap })));
    expect(ev).toEqual({
      kind: "vitals",
      deviceTime: "2026-11-23T07:32:00.000Z",
      deviceTimeRaw: "20261123153200+0800",
      serial: "SN1234",
      model: "SIMVENDOR-M5",
      body: {
        observations: [
          { code: "MDC_ECG_HEART_RATE", mdc: 147842, value: 80, unit: "/min", status: "F" },
          { code: "MDC_PULS_OXIM_SAT_O2", mdc: 150456, value: 96, unit: "%", status: "F" },
          { code: "MDC_PRESS_BLD_NONINV_SYS", mdc: 150021, value: 132, unit: "mm[Hg]", status: "F" },
          { code: "MDC_PRESS_BLD_NONINV_DIA", mdc: 150022, value: 84, unit: "mm[Hg]", status: "F" },
          { code: "MDC_TEMP", mdc: 150344, value: 37.2, unit: "Cel", status: "F" },
          { code: "999", value: 5, unit: "xyz", status: "F" },
        ],
      },
    });
  });

  it("pcd01-gb18030: MSH-18 GB 18030-2000, ACK in GB18030 with the Chinese names swapped", () => {
    const x = handle(fixture("pcd01-gb18030.hl7"), defaults);
    expect(events(x)[0]!.body).toEqual({
      observations: [
        { code: "MDC_ECG_HEART_RATE", mdc: 147842, value: 88, unit: "/min", status: "R", sub: "1.1.1.147842" },
        { code: "MDC_PULS_OXIM_SAT_O2", mdc: 150456, value: 99, unit: "%", status: "R", sub: "1.2.1.150456" },
      ],
    });
    const ack = x.ok ? x.accept! : new Uint8Array();
    const text = new TextDecoder("gb18030").decode(ack.subarray(1, ack.length - 2));
    expect(text.split("\r")[0]).toBe("MSH|^~\\&|VITALGATE|區域中心|SIM_MONITOR^0012A3FFFE000005^EUI-64|急救车億號|20261123080000+0000||ACK^R01^ACK|ACKMSG0005|P|2.6||||||GB 18030-2000");
  });

  it("pcd04-alarm: one alarm event", () => {
    const ev = events(handle(fixture("pcd04-alarm.hl7"), defaults));
    expect(ev).toEqual([
      {
        kind: "alarm",
        deviceTime: "2026-11-23T07:33:58.000Z",
        deviceTimeRaw: "20261123153358+0800",
        model: "SIM_MONITOR",
        body: { code: "MDC_EVT_LO", priority: "high", state: "active", phase: "start", text: "SpO2 low", source: "MDC_PULS_OXIM_SAT_O2" },
      },
    ]);
  });

  it("adt-a01: AR, error 200 at MSH-9, no events", () => {
    const x = handle(fixture("adt-a01.hl7"), defaults);
    expect(x.ok).toBe(false);
    if (x.ok) return;
    expect(x.error).toMatchObject({ code: "HL7_UNSUPPORTED_TYPE", where: "MSH-9" });
    expect(ackSegments(x.reply)).toEqual([
      "MSH|^~\\&|VITALGATE||SIM_HIS||20261123080000+0000||ACK^A01^ACK|ACKMSG0007|P|2.5",
      "MSA|AR|MSG0007|unsupported message type ADT\\S\\A01: this interface takes ORU\\S\\R01 and ORU\\S\\R40",
      "ERR||MSH^1^9|200^Unsupported message type^HL70357|E||||unsupported message type ADT\\S\\A01: this interface takes ORU\\S\\R01 and ORU\\S\\R40",
    ]);
  });

  it("the capture framer finds each fixture's message, MLLP-wrapped or not", () => {
    for (const name of ["pcd01-basic.hl7", "pcd01-crlf-escapes-zsegment.hl7", "pcd01-vendor-local-lf.hl7", "pcd01-gb18030.hl7"]) {
      for (const bytes of [fixture(name), mllpEncode(fixture(name))]) {
        const f = hl7Pcd01.captureFramer!(defaults) as Framer & { end(): FrameResult[] };
        const frames = [...f.push(bytes), ...f.end()];
        expect(frames).toHaveLength(1);
        const frame = frames[0]!;
        expect("frame" in frame && handle(frame.frame, defaults).ok, name).toBe(true);
      }
    }
  });
});

describe("acknowledgements", () => {
  const msg = enc.encode(pcd01Message({ controlId: "C77", time: "20261123152901+0800", values: { hr: 70 } }));

  it("AA once accepted; AE with the reason when the store refuses", () => {
    const x = handle(msg, defaults);
    expect(x.ok).toBe(true);
    if (!x.ok) return;
    expect(ackSegments(x.accept)[1]).toBe("MSA|AA|C77");
    expect(ackSegments(x.refuse!("store full: disk quota reached"))).toEqual([
      "MSH|^~\\&|VITALGATE||SIM_MONITOR^0012A3FFFE000001^EUI-64||20261123080000+0000||ACK^R01^ACK|ACKC77|P|2.6",
      "MSA|AE|C77|store full: disk quota reached",
      "ERR|||207^Application internal error^HL70357|E||||store full: disk quota reached",
    ]);
  });

  it("AR with ERR naming the field: MSH-9 missing, MSH-18 unknown", () => {
    const noType = handle(enc.encode("MSH|^~\\&|MON||||20261123152901|||C1|P|2.6\r"), defaults);
    expect(noType.ok ? undefined : noType.error).toMatchObject({ code: "HL7_NO_MESSAGE_TYPE", where: "MSH-9" });
    expect(ackSegments(noType.ok ? undefined : noType.reply).slice(1)).toEqual(["MSA|AR|C1|message type missing in MSH-9", "ERR||MSH^1^9|101^Required field missing^HL70357|E||||message type missing in MSH-9"]);

    const badCharset = handle(enc.encode("MSH|^~\\&|MON||||20261123152901||ORU^R01|C2|P|2.6|||||CHN|EBCDIC\r"), defaults);
    expect(badCharset.ok ? undefined : badCharset.error).toMatchObject({ code: "HL7_CHARSET", where: "MSH-18" });
    // The value itself is not echoed: a mangled MSH can hold anything, patient data included.
    expect(ackSegments(badCharset.ok ? undefined : badCharset.reply)[2]).toBe("ERR||MSH^1^18|103^Table value not found^HL70357|E||||unsupported character set in MSH-18");
  });

  it("AR with defaults and an empty MSA-2 for a message without MSH", () => {
    const x = handle(enc.encode("PID|||SIM1||SYNTHETIC^PATIENT\r"), defaults);
    expect(x.ok).toBe(false);
    expect(ackSegments(x.ok ? undefined : x.reply).slice(0, 2)).toEqual(["MSH|^~\\&|VITALGATE||||20261123080000+0000||ACK|ACK|P|2.6", "MSA|AR||the message does not start with an MSH segment"]);
  });

  it("AR 201 for another ORU trigger", () => {
    const x = handle(enc.encode("MSH|^~\\&|MON||||20261123152901||ORU^R30|C3|P|2.6\r"), defaults);
    expect(x.ok ? undefined : x.error).toMatchObject({ code: "HL7_UNSUPPORTED_EVENT", where: "MSH-9.2" });
    expect(ackSegments(x.ok ? undefined : x.reply)[2]).toMatch(/^ERR\|\|MSH\^1\^9\^1\^2\|201\^/);
  });

  it("reads an OBX without value type as a number when it is one", () => {
    const x = handle(enc.encode("MSH|^~\\&|MON||||20261123152901+0800||ORU^R01|C4|P|2.6\rOBX|1||150456^MDC_PULS_OXIM_SAT_O2^MDC||97,5|%\rOBX|2||X^note||text\r"), defaults);
    expect((events(x)[0]!.body as { observations: unknown[] }).observations).toEqual([
      { code: "MDC_PULS_OXIM_SAT_O2", mdc: 150456, value: 97.5, unit: "%" },
      { code: "X", value: "text", unit: "" },
    ]);
  });

  it("never acknowledges an ACK, nor an empty frame", () => {
    const ack = handle(enc.encode("MSH|^~\\&|X||||20261123152901||ACK^R01^ACK|A1|P|2.6\rMSA|AA|C1\r"), defaults);
    expect(ack).toMatchObject({ ok: false, error: { code: "HL7_UNEXPECTED_ACK" } });
    expect(ack.ok ? undefined : ack.reply).toBeUndefined();
    const empty = handle(new Uint8Array(), defaults);
    expect(empty.ok ? undefined : empty.reply).toBeUndefined();
  });

  it("rejectFrame: AR without control id for an oversized frame, nothing for garbage", () => {
    const ar = hl7Pcd01.rejectFrame!({ code: "MLLP_OVERSIZE", message: "too big", where: 0 }, defaults, CTX);
    expect(ackSegments(ar).slice(1)).toEqual(["MSA|AR||message larger than 1048576 bytes", "ERR|||207^Application internal error^HL70357|E||||message larger than 1048576 bytes"]);
    expect(hl7Pcd01.rejectFrame!({ code: "MLLP_GARBAGE", message: "x", where: 0 }, defaults, CTX)).toBeUndefined();
  });
});

describe("generated traffic (synthetic.ts)", () => {
  it("maps a thousand generated messages through the MLLP framer", () => {
    const framer = hl7Pcd01.framer!(defaults);
    let n = 0;
    let vitals = 0;
    for (const m of pcd01Series(1000, new Date("2026-11-23T07:00:00Z"))) {
      for (const r of framer.push(mllpEncode(enc.encode(m)))) {
        if (!("frame" in r)) throw new Error(r.error.message);
        const x = handle(r.frame, defaults);
        vitals += events(x).length;
        n++;
      }
    }
    expect(n).toBe(1000);
    expect(vitals).toBe(1000 + 17); // NIBP every 60th message in its own OBR
  });

  it("generates alarms the driver reads back", () => {
    const m = pcd04Alarm({ controlId: "AL1", time: new Date("2026-11-23T07:00:00Z"), event: "196670^MDC_EVT_LO^MDC", text: "SpO2 low", priority: "PM", phase: "end", state: "inactive", source: { id: "150456^MDC_PULS_OXIM_SAT_O2^MDC", value: 88, unit: "262688^MDC_DIM_PERCENT^MDC" } });
    expect(events(handle(enc.encode(m), defaults))[0]!.body).toEqual({ code: "MDC_EVT_LO", priority: "medium", state: "inactive", phase: "end", text: "SpO2 low", source: "MDC_PULS_OXIM_SAT_O2" });
  });
});

describe.skipIf(!haveShared)("real captures (../shared/fixtures/hl7v2)", () => {
  /**
   * The message HAPI printed after "parsing message: " in its debug log (it printed the raw MLLP
   * frame, start block included), segments joined by CR.
   */
  function aesculon(): Uint8Array {
    const log = readFileSync(`${shared}mdrepo_aesculon_hl7_test.txt`, "latin1");
    const lines = log.split(/\r?\n/);
    const start = lines.findIndex((l) => l.startsWith("parsing message: \x0bMSH"));
    const seg: string[] = [lines[start]!.slice("parsing message: \x0b".length)];
    for (let i = start + 1; i < lines.length && /^[A-Z][A-Z0-9]{2}\|/.test(lines[i]!); i++) seg.push(lines[i]!);
    return Buffer.from(seg.join("\r") + "\r", "latin1");
  }

  it("Osypka Aesculon (HL7 2.3, empty OBX-3): kept by position as unidentified:<OBX-1>, decimal commas read", () => {
    const x = handle(aesculon(), defaults);
    const [ev, ...rest] = events(x);
    expect(rest).toEqual([]);
    expect(ev).toMatchObject({ kind: "vitals", deviceTimeRaw: "20171221145413", model: "iControl" });
    expect(ev!.deviceTime).toBeUndefined(); // local time, no offset, no time zone configured
    const obs = (ev!.body as { observations: { code: string; value: unknown; unit: string; status?: string }[] }).observations;
    expect(obs).toHaveLength(39);
    expect(obs[0]).toEqual({ code: "unidentified:1", value: 100, unit: "%", status: "R" });
    expect(obs[1]).toEqual({ code: "unidentified:2", value: 100, unit: "/min", status: "R" });
    expect(obs[2]).toEqual({ code: "unidentified:3", value: 8.8, unit: "L/min", status: "R" });
    expect(obs[16]).toEqual({ code: "unidentified:17", value: 747, unit: "dyn?s/cm?", status: "R" }); // mojibake kept as sent
    expect(obs[17]).toEqual({ code: "unidentified:18", value: 1.926, unit: "BSA", status: "R" }); // decimal comma
    expect(obs[18]).toEqual({ code: "unidentified:19", value: 76.132, unit: "WT", status: "R" });
    expect(obs[8]).toEqual({ code: "unidentified:9", value: 39, unit: "", status: "R" });
    expect(ackSegments(x.ok ? x.accept : undefined)).toEqual(["MSH|^~\\&|VITALGATE||iControl||20261123080000+0000||ACK^R01|ACK20171221145413785|P|2.3", "MSA|AA|20171221145413785"]);
    // A codeMap can name positions for such a device, and a time zone makes its times UTC.
    const mapped = events(handle(aesculon(), opts({ timezone: "+01:00", codeMap: { "unidentified:2": { code: "MDC_ECG_HEART_RATE" } } })));
    expect((mapped[0]!.body as { observations: unknown[] }).observations[1]).toEqual({ code: "MDC_ECG_HEART_RATE", mdc: 147842, value: 100, unit: "/min", status: "R" });
    expect(mapped[0]!.deviceTime).toBe("2017-12-21T13:54:13.000Z");
  });

  it("Osypka Aesculon, the whole HAPI log through the capture framer: the MLLP start blocks HAPI logged mark the messages", () => {
    const f = hl7Pcd01.captureFramer!(defaults) as Framer & { end(): FrameResult[] };
    const out = [...f.push(readFileSync(`${shared}mdrepo_aesculon_hl7_test.txt`)), ...f.end()];
    const frames = out.map((r) => ("frame" in r ? Buffer.from(r.frame).toString("latin1") : r.error.code));
    // "Received: <VT>MSH..." logs one segment per line: only its MSH is a message there (no OBX,
    // no events). "parsing message: <VT>MSH..." is followed by the other segments: the message.
    expect(frames).toHaveLength(2);
    expect(frames[0]).toBe("MSH|^~\\&|iControl||||20171221145413||ORU^R01|20171221145413785|P|2.3\r");
    expect(frames[1]).toBe(Buffer.from(aesculon()).toString("latin1"));
    expect(events(handle(Buffer.from(frames[0]!, "latin1"), defaults))).toEqual([]);
  });

  it("PixCell HemoScreen (HL7 2.4 haematology ORU): 20 results as vitals with local codes, flags and NTE dropped", () => {
    const x = handle(readFileSync(`${shared}senaite_hemoscreen_with_flags.hl7`), defaults);
    const [ev, ...rest] = events(x);
    expect(rest).toEqual([]);
    expect(ev).toMatchObject({ kind: "vitals", deviceTimeRaw: "20231210111800", model: "HemoScreen" });
    const obs = (ev!.body as { observations: unknown[] }).observations;
    expect(obs).toHaveLength(20);
    expect(obs.slice(0, 3)).toEqual([
      { code: "WBC", value: 11.7, unit: "10*3/uL", status: "F" },
      { code: "RBC", value: 4.04, unit: "10*6/uL", status: "F" },
      { code: "HGB", value: "LL", unit: "g/dL", status: "F" },
    ]);
    expect(obs[9]).toEqual({ code: "MPV", value: "---", unit: "fL", status: "F" });
    expect(ackSegments(x.ok ? x.accept : undefined)[1]).toBe("MSA|AA|0");
  });
});

describe("handle() under mutation (fuzz, seeded)", () => {
  const seeds: Uint8Array[] = [
    fixture("pcd01-basic.hl7"),
    fixture("pcd01-custom-delimiters.hl7"),
    fixture("pcd01-gb18030.hl7"),
    fixture("pcd04-alarm.hl7"),
    fixture("pcd01-vendor-local-lf.hl7"),
  ];
  const specials = [0x7c, 0x5e, 0x7e, 0x5c, 0x26, 0x0d, 0x0a, 0x23, 0x00, 0xff, 0x83];

  it("never throws; always events or an error with code and message; never echoes patient data", () => {
    const rand = prng(0xfeed);
    for (let i = 0; i < 3000; i++) {
      const src = seeds[i % seeds.length]!;
      const b = Array.from(src);
      const edits = 1 + Math.floor(rand() * 6);
      for (let k = 0; k < edits; k++) {
        const at = Math.floor(rand() * b.length);
        const op = rand();
        if (op < 0.4) b[at] = rand() < 0.6 ? specials[Math.floor(rand() * specials.length)]! : Math.floor(rand() * 256);
        else if (op < 0.6) b.splice(at, 1 + Math.floor(rand() * 10));
        else if (op < 0.8) b.splice(at, 0, specials[Math.floor(rand() * specials.length)]!);
        else b.length = Math.max(0, at);
      }
      const x = handle(Uint8Array.from(b), opts({ codeMap: { "101": { code: "MDC_ECG_HEART_RATE" } } }));
      if (x.ok) {
        for (const e of x.events) expect(["vitals", "alarm"]).toContain(e.kind);
      } else {
        expect(x.error.code).toMatch(/^HL7_[A-Z_]+$/);
        expect(x.error.message.length).toBeGreaterThan(0);
        expect(x.error.message).not.toMatch(/SYNTHETIC|PATIENT|SIM000/);
        // The ACK's MSH echoes the sender's own MSH-3..6 back to it; what we write (MSA, ERR) must
        // not carry message content.
        if (x.reply) expect(latin1(x.reply)!.split("\r").slice(1).join("\r")).not.toMatch(/SYNTHETIC|PATIENT|SIM000/);
      }
    }
  });
});

