import { existsSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { Exchange } from "../../src/devices/driver.ts";
import type { DriverNotice } from "../../src/devices/driver.ts";
import type { EventDraft, VitalsBody } from "../../src/events/model.ts";
import type { FrameResult, Framer } from "../../protocols/codec.ts";
import { mllpEncode } from "../../protocols/mllp/index.ts";
import { pcd01Message, pcd01Series, pcd04Alarm } from "./synthetic.ts";
import { hl7Pcd01, hl7Pcd01Options } from "./index.ts";
import type { Hl7Pcd01Options } from "./index.ts";
import { MDC_METRICS, MDC_UNITS, mdcCode } from "../../protocols/mdc/index.ts";
import { prng } from "../../test/support/prng.ts";
import { main } from "../../src/cli/main.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
const fixture = (name: string) => readFileSync(`${root}test/fixtures/hl7/${name}`);
const shared = `${root}../shared/fixtures/hl7v2/`;
const haveShared = existsSync(shared);
if (!haveShared)
  console.warn(`skipping the real HL7 captures: ${shared} is absent (the shared fixtures sit beside the project)`);
const realWorldDir = `${root}../shared/fixtures/real-world/hl7/`;
const haveRealWorld = existsSync(realWorldDir);
if (!haveRealWorld) console.warn(`skipping the real Mindray, Comen and Philips captures: ${realWorldDir} is absent`);
const realWorld = (name: string) => readFileSync(`${realWorldDir}${name}`);
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
  return new TextDecoder()
    .decode(b.subarray(1, b.length - 2))
    .split("\r")
    .filter((s) => s !== "");
}

describe("options", () => {
  it("has defaults", () => {
    expect(defaults).toEqual({
      mode: "listen",
      port: 2575,
      maxFrameBytes: 1048576,
      charset: "utf-8",
      codeMap: {},
      noValue: [],
    });
    expect(hl7Pcd01.transport(defaults)).toEqual({ type: "tcp-listen", host: "0.0.0.0", port: 2575 });
  });

  it("needs a host to connect to, a known charset and a sane time zone", () => {
    expect(hl7Pcd01Options.safeParse({ mode: "connect" }).success).toBe(false);
    expect(hl7Pcd01.transport(opts({ mode: "connect", host: "10.0.0.5", port: 6001 }))).toEqual({
      type: "tcp-connect",
      host: "10.0.0.5",
      port: 6001,
    });
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
    expect(
      [
        unit("MDC_DIM_BEAT_PER_MIN"),
        unit("MDC_DIM_PERCENT"),
        unit("MDC_DIM_MMHG"),
        unit("MDC_DIM_DEGC"),
        unit("MDC_DIM_RESP_PER_MIN"),
      ].map((u) => [mdcCode(4, u!.term), u!.ucum]),
    ).toEqual([
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
            {
              code: "MDC_PULS_OXIM_PULS_RATE",
              mdc: 149530,
              value: 71,
              unit: "/min",
              status: "R",
              at: "2026-11-23T07:28:58.000Z",
              sub: "1.2.1.149530",
            },
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
            {
              code: "MDC_PRESS_BLD_NONINV_SYS",
              mdc: 150021,
              value: 118,
              unit: "mm[Hg]",
              status: "F",
              sub: "1.3.1.150021",
            },
            {
              code: "MDC_PRESS_BLD_NONINV_DIA",
              mdc: 150022,
              value: 76,
              unit: "mm[Hg]",
              status: "F",
              sub: "1.3.1.150022",
            },
            {
              code: "MDC_PRESS_BLD_NONINV_MEAN",
              mdc: 150023,
              value: 90,
              unit: "mm[Hg]",
              status: "F",
              sub: "1.3.1.150023",
            },
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
        {
          code: "MDC_PRESS_BLD_ART_ABP_SYS",
          mdc: 150037,
          value: 121,
          unit: "mm[Hg]",
          status: "R",
          sub: "1.5.1.150037",
        },
        { code: "MDC_PRESS_BLD_ART_ABP_DIA", mdc: 150038, value: 79, unit: "mm[Hg]", status: "R", sub: "1.5.1.150038" },
        {
          code: "MDC_PRESS_BLD_ART_ABP_MEAN",
          mdc: 150039,
          value: 93,
          unit: "mm[Hg]",
          status: "R",
          sub: "1.5.1.150039",
        },
      ],
    });
    expect(ackSegments(x.ok ? x.accept : undefined)).toEqual([
      "MSH#$*!@#VITALGATE##SIM_MONITOR$0012A3FFFE000002$EUI-64##20261123080000+0000##ACK$R01$ACK#ACKMSG0002#P#2.6",
      "MSA#AA#MSG0002",
    ]);
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
    expect(text.split("\r")[0]).toBe(
      "MSH|^~\\&|VITALGATE|區域中心|SIM_MONITOR^0012A3FFFE000005^EUI-64|急救车億號|20261123080000+0000||ACK^R01^ACK|ACKMSG0005|P|2.6||||||GB 18030-2000",
    );
  });

  it("pcd04-alarm: one alarm event", () => {
    const ev = events(handle(fixture("pcd04-alarm.hl7"), defaults));
    expect(ev).toEqual([
      {
        kind: "alarm",
        deviceTime: "2026-11-23T07:33:58.000Z",
        deviceTimeRaw: "20261123153358+0800",
        model: "SIM_MONITOR",
        body: {
          code: "MDC_EVT_LO",
          priority: "high",
          type: "physiological",
          state: "active",
          phase: "start",
          text: "SpO2 low",
          source: "MDC_PULS_OXIM_SAT_O2",
        },
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
    for (const name of [
      "pcd01-basic.hl7",
      "pcd01-crlf-escapes-zsegment.hl7",
      "pcd01-vendor-local-lf.hl7",
      "pcd01-gb18030.hl7",
    ]) {
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
    expect(ackSegments(noType.ok ? undefined : noType.reply).slice(1)).toEqual([
      "MSA|AR|C1|message type missing in MSH-9",
      "ERR||MSH^1^9|101^Required field missing^HL70357|E||||message type missing in MSH-9",
    ]);

    const badCharset = handle(
      enc.encode("MSH|^~\\&|MON||||20261123152901||ORU^R01|C2|P|2.6|||||CHN|EBCDIC\r"),
      defaults,
    );
    expect(badCharset.ok ? undefined : badCharset.error).toMatchObject({ code: "HL7_CHARSET", where: "MSH-18" });
    // The value itself is not echoed: a mangled MSH can hold anything, patient data included.
    expect(ackSegments(badCharset.ok ? undefined : badCharset.reply)[2]).toBe(
      "ERR||MSH^1^18|103^Table value not found^HL70357|E||||unsupported character set in MSH-18",
    );
  });

  it("AR with defaults and an empty MSA-2 for a message without MSH", () => {
    const x = handle(enc.encode("PID|||SIM1||SYNTHETIC^PATIENT\r"), defaults);
    expect(x.ok).toBe(false);
    expect(ackSegments(x.ok ? undefined : x.reply).slice(0, 2)).toEqual([
      "MSH|^~\\&|VITALGATE||||20261123080000+0000||ACK|ACK|P|2.6",
      "MSA|AR||the message does not start with an MSH segment",
    ]);
  });

  it("AR 201 for another ORU trigger", () => {
    const x = handle(enc.encode("MSH|^~\\&|MON||||20261123152901||ORU^R30|C3|P|2.6\r"), defaults);
    expect(x.ok ? undefined : x.error).toMatchObject({ code: "HL7_UNSUPPORTED_EVENT", where: "MSH-9.2" });
    expect(ackSegments(x.ok ? undefined : x.reply)[2]).toMatch(/^ERR\|\|MSH\^1\^9\^1\^2\|201\^/);
  });

  it("reads an OBX without value type as a number when it is one", () => {
    const x = handle(
      enc.encode(
        "MSH|^~\\&|MON||||20261123152901+0800||ORU^R01|C4|P|2.6\rOBX|1||150456^MDC_PULS_OXIM_SAT_O2^MDC||97,5|%\rOBX|2||X^note||text\r",
      ),
      defaults,
    );
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
    expect(ackSegments(ar).slice(1)).toEqual([
      "MSA|AR||message larger than 1048576 bytes",
      "ERR|||207^Application internal error^HL70357|E||||message larger than 1048576 bytes",
    ]);
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
    const m = pcd04Alarm({
      controlId: "AL1",
      time: new Date("2026-11-23T07:00:00Z"),
      event: "196670^MDC_EVT_LO^MDC",
      text: "SpO2 low",
      priority: "PM",
      phase: "end",
      state: "inactive",
      source: { id: "150456^MDC_PULS_OXIM_SAT_O2^MDC", value: 88, unit: "262688^MDC_DIM_PERCENT^MDC" },
    });
    expect(events(handle(enc.encode(m), defaults))[0]!.body).toEqual({
      code: "MDC_EVT_LO",
      priority: "medium",
      type: "physiological",
      state: "inactive",
      phase: "end",
      text: "SpO2 low",
      source: "MDC_PULS_OXIM_SAT_O2",
    });
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
    const obs = (ev!.body as { observations: { code: string; value: unknown; unit: string; status?: string }[] })
      .observations;
    expect(obs).toHaveLength(39);
    expect(obs[0]).toEqual({ code: "unidentified:1", value: 100, unit: "%", status: "R" });
    expect(obs[1]).toEqual({ code: "unidentified:2", value: 100, unit: "/min", status: "R" });
    expect(obs[2]).toEqual({ code: "unidentified:3", value: 8.8, unit: "L/min", status: "R" });
    expect(obs[16]).toEqual({ code: "unidentified:17", value: 747, unit: "dyn?s/cm?", status: "R" }); // mojibake kept as sent
    expect(obs[17]).toEqual({ code: "unidentified:18", value: 1.926, unit: "BSA", status: "R" }); // decimal comma
    expect(obs[18]).toEqual({ code: "unidentified:19", value: 76.132, unit: "WT", status: "R" });
    expect(obs[8]).toEqual({ code: "unidentified:9", value: 39, unit: "", status: "R" });
    expect(ackSegments(x.ok ? x.accept : undefined)).toEqual([
      "MSH|^~\\&|VITALGATE||iControl||20261123080000+0000||ACK^R01|ACK20171221145413785|P|2.3",
      "MSA|AA|20171221145413785",
    ]);
    // A codeMap can name positions for such a device, and a time zone makes its times UTC.
    const mapped = events(
      handle(aesculon(), opts({ timezone: "+01:00", codeMap: { "unidentified:2": { code: "MDC_ECG_HEART_RATE" } } })),
    );
    expect((mapped[0]!.body as { observations: unknown[] }).observations[1]).toEqual({
      code: "MDC_ECG_HEART_RATE",
      mdc: 147842,
      value: 100,
      unit: "/min",
      status: "R",
    });
    expect(mapped[0]!.deviceTime).toBe("2017-12-21T13:54:13.000Z");
  });

  it("Osypka Aesculon, the whole HAPI log through the capture framer: the MLLP start blocks HAPI logged mark the messages", () => {
    const f = hl7Pcd01.captureFramer!(defaults) as Framer & { end(): FrameResult[] };
    const out = [...f.push(readFileSync(`${shared}mdrepo_aesculon_hl7_test.txt`)), ...f.end()];
    const frames = out.map((r) => ("frame" in r ? Buffer.from(r.frame).toString("latin1") : r.error.code));
    // "Received: <VT>MSH..." logs one segment per line: only its MSH is a message there (no OBX:
    // answered AE, see "an ORU without OBX"). "parsing message: <VT>MSH..." is followed by the other
    // segments: the message.
    expect(frames).toHaveLength(2);
    expect(frames[0]).toBe("MSH|^~\\&|iControl||||20171221145413||ORU^R01|20171221145413785|P|2.3\r");
    expect(frames[1]).toBe(Buffer.from(aesculon()).toString("latin1"));
    expect(handle(Buffer.from(frames[0]!, "latin1"), defaults)).toMatchObject({
      ok: false,
      error: { code: "HL7_NO_OBSERVATIONS" },
    });
  });

  it('PixCell HemoScreen (HL7 2.4 haematology ORU): 19 results as vitals with local codes, flags and NTE dropped, the "---" MPV absent', () => {
    const x = handle(readFileSync(`${shared}senaite_hemoscreen_with_flags.hl7`), defaults);
    const [ev, ...rest] = events(x);
    expect(rest).toEqual([]);
    expect(ev).toMatchObject({ kind: "vitals", deviceTimeRaw: "20231210111800", model: "HemoScreen" });
    const obs = (ev!.body as { observations: unknown[] }).observations;
    expect(obs).toHaveLength(19);
    expect(obs.slice(0, 3)).toEqual([
      { code: "WBC", value: 11.7, unit: "10*3/uL", status: "F" },
      { code: "RBC", value: 4.04, unit: "10*6/uL", status: "F" },
      { code: "HGB", value: "LL", unit: "g/dL", status: "F" },
    ]);
    // "---" where MPV's number belongs says there is none: absent, counted, never a value.
    expect(obs.map((o) => (o as { code: string }).code)).not.toContain("MPV");
    expect(x.ok && x.notices).toEqual([{ code: "HL7_NO_VALUE", message: '"---" in MPV read as no value' }]);
    expect(ackSegments(x.ok ? x.accept : undefined)[1]).toBe("MSA|AA|0");
  });
});

/** Events and notices of an accepted message. */
function decoded(x: Exchange): { events: EventDraft[]; notices: DriverNotice[] } {
  if (!x.ok) throw new Error(`${x.error.code}: ${x.error.message}`);
  return { events: x.events, notices: x.notices ?? [] };
}
const observations = (e: EventDraft | undefined) => (e?.body as VitalsBody).observations;
const codes = (e: EventDraft | undefined) => observations(e).map((o) => o.code);

describe("what real monitors send: no value, demo, technical alarms, waveform settings, codes (issue 12)", () => {
  it("Mindray demo mode (OBX-8 DEMO): every observation and the event marked demo, said once as HL7_DEMO", () => {
    const { events: ev, notices } = decoded(handle(fixture("mindray-demo.hl7"), defaults));
    expect(ev.map((e) => e.kind)).toEqual(["vitals"]);
    expect((ev[0]!.body as VitalsBody).demo).toBe(true);
    expect(observations(ev[0]).map((o) => [o.code, o.value, o.demo])).toEqual([
      ["MDC_PULS_OXIM_SAT_O2", 98, true],
      ["MDC_PULS_OXIM_PULS_RATE", 80, true],
      ["MDC_PRESS_CUFF_SYS", 120, true],
      ["MDC_PRESS_CUFF_DIA", 80, true],
    ]);
    expect(notices).toEqual([{ code: "HL7_DEMO", message: "demo data (OBX-8 DEMO): its events are marked demo" }]);
    // The same monitor out of demo mode: nothing marked, nothing said.
    const live = decoded(
      handle(enc.encode(fixture("mindray-demo.hl7").toString("latin1").replaceAll("||DEMO|||", "|||||")), defaults),
    );
    expect(live.notices).toEqual([]);
    expect((live.events[0]!.body as VitalsBody).demo).toBeUndefined();
    expect(observations(live.events[0]).some((o) => o.demo)).toBe(false);
  });

  it("a training or debugging message (MSH-11 T, D) and a demo bed (PV1-3 pDemo6) are demo data too, alarms included", () => {
    const piic = fixture("philips-piic-inop.hl7").toString("latin1");
    for (const [text, why] of [
      [piic.replace("|P|2.5|", "|T|2.5|"), "MSH-11 T (training, not production)"],
      [piic.replace("|P|2.5|", "|D|2.5|"), "MSH-11 D (debugging, not production)"],
      [piic.replace("ICU^^Bed3&0&0", "ICU/PCU^^pDemo6&0&0"), "PV1-3 a demo bed"],
    ] as const) {
      const { events: ev, notices } = decoded(handle(enc.encode(text), defaults));
      expect(ev.map((e) => [e.kind, (e.body as { demo?: boolean }).demo])).toEqual([
        ["vitals", true],
        ["alarm", true],
        ["alarm", true],
      ]);
      expect(observations(ev[0]).every((o) => o.demo)).toBe(true);
      expect(notices.filter((n) => n.code === "HL7_DEMO")).toEqual([
        { code: "HL7_DEMO", message: `demo data (${why}): its events are marked demo` },
      ]);
    }
    expect(decoded(handle(enc.encode(piic), defaults)).notices.some((n) => n.code === "HL7_DEMO")).toBe(false);
  });

  it('Mindray\'s -100 (and "---") are absence, never a measurement; the vendor known by 99MNDRY alone', () => {
    const { events: ev, notices } = decoded(handle(fixture("mindray-pds-novalue.hl7"), defaults));
    expect(observations(ev[0])).toEqual([
      { code: "101", value: 72, unit: "/min", status: "F" },
      { code: "151", value: 18, unit: "/min", status: "F" },
    ]);
    expect(notices).toEqual([
      { code: "HL7_NO_VALUE", message: '-100 (mindray\'s "no value") in 160 read as no value' },
      { code: "HL7_NO_VALUE", message: '-100 (mindray\'s "no value") in 200 read as no value' },
      { code: "HL7_NO_VALUE", message: '-100 (mindray\'s "no value") in 170 read as no value' },
      { code: "HL7_NO_VALUE", message: '"---" in 220 read as no value' },
    ]);
    // Through a codeMap the same rows keep their absence under their MDC names.
    const mapped = decoded(
      handle(fixture("mindray-pds-novalue.hl7"), opts({ codeMap: { "160": { code: "MDC_PULS_OXIM_SAT_O2" } } })),
    );
    expect(mapped.notices[0]!.message).toBe('-100 (mindray\'s "no value") in MDC_PULS_OXIM_SAT_O2 read as no value');
    // -100 from a monitor that is not a Mindray is a number like any other...
    const other = fixture("mindray-pds-novalue.hl7").toString("latin1").replaceAll("99MNDRY", "99OTHER");
    expect(codes(decoded(handle(enc.encode(other), defaults)).events[0])).toEqual(["101", "151", "160", "200", "170"]);
    // ...unless the device's interface manual says otherwise: noValue.
    const configured = decoded(
      handle(enc.encode(other.replace("|72|", "|-999|")), opts({ noValue: ["-999", "-100"] })),
    );
    expect(codes(configured.events[0])).toEqual(["151"]);
    expect(configured.notices.map((n) => n.message)).toContain("-999 (configured noValue) in 101 read as no value");
    expect(hl7Pcd01Options.safeParse({ noValue: [""] }).success).toBe(false);
  });

  it("waveform settings rows (sample rate, resolution, the INOP marker 32767) are not vitals", () => {
    const { events: ev, notices } = decoded(handle(fixture("mindray-waveform.hl7"), defaults));
    expect(ev).toHaveLength(1);
    expect(observations(ev[0])).toEqual([
      { code: "MDC_ECG_HEART_RATE", mdc: 147842, value: 75, unit: "/min", status: "R", sub: "1.7.4.147842" },
    ]);
    // 262196^MDC_EVT_INOP is in the wrong partition, but the row is not an observation: nothing to flag.
    expect(notices).toEqual([]);
  });

  it("technical alarms: a Mindray alarm group in an ORU^R01 (ST) and Philips MDIL-ALERT rows become alarm events, not observations", () => {
    const mindray = decoded(handle(fixture("mindray-alarm-r01.hl7"), defaults)).events;
    expect(mindray.map((e) => [e.kind, e.body])).toEqual([
      [
        "alarm",
        {
          code: "MDC_EVT_LEAD_OFF",
          priority: "medium",
          type: "technical",
          state: "active",
          phase: "start",
          text: "ECG Lead Off",
          source: "1.7.1.131329.1",
        },
      ],
      [
        "vitals",
        {
          observations: [
            { code: "MDC_PULS_OXIM_SAT_O2", mdc: 150456, value: 96, unit: "%", status: "R", sub: "1.3.1.150456" },
          ],
        },
      ],
    ]);
    const { events: ev, notices } = decoded(handle(fixture("philips-piic-inop.hl7"), defaults));
    expect(ev.map((e) => [e.kind, e.body])).toEqual([
      [
        "vitals",
        {
          observations: [
            { code: "0402-f8f5", value: "MONITORING", unit: "", status: "F", sub: "0" },
            { code: "0002-4182", value: 48, unit: "/min", status: "F", sub: "0" },
            { code: "0002-500a", value: 16, unit: "/min", status: "F", sub: "0" },
          ],
        },
      ],
      ["alarm", { code: "HardInop", priority: "", type: "technical", state: "active", text: "SpO2 No Pulse" }],
      [
        "alarm",
        {
          code: "Yellow Alarm",
          priority: "medium",
          type: "physiological",
          state: "active",
          text: "HR Low, HR=48 /min",
        },
      ],
    ]);
    // The NBP carried a number but OBX-11 X: results cannot be obtained. Absent, and said.
    expect(notices).toEqual([
      { code: "HL7_NO_VALUE", message: "OBX-11 X (result cannot be obtained) in 0002-4a05 read as no value" },
    ]);
  });

  it("vitalgate decode says on stderr what the gateway would count: demo data, no value", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(
      [
        "decode",
        "--driver",
        "hl7-pcd01",
        fileURLToPath(new URL("../../test/fixtures/hl7/mindray-demo.hl7", import.meta.url)),
      ],
      { out: (s) => out.push(s), err: (s) => err.push(s) },
    );
    expect(code).toBe(0);
    expect(out.map((l) => (JSON.parse(l) as { body: VitalsBody }).body.demo)).toEqual([true]);
    expect(err.map((l) => JSON.parse(l))).toEqual([
      { notice: "HL7_DEMO", message: "demo data (OBX-8 DEMO): its events are marked demo" },
    ]);
  });

  it("a numeric code that disagrees with its MDC reference id is flagged (mdcSent), kept under the reference id", () => {
    const msg = (obx3: string) =>
      enc.encode(
        `MSH|^~\\&|MON||||20261123152901+0800||ORU^R01|C9|P|2.6\rOBR|1|||||20261123152901+0800\rOBX|1|NM|${obx3}|1.1.1|77|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||R\r`,
      );
    const { events: ev, notices } = decoded(handle(msg("149522^MDC_PULS_RATE^MDC"), defaults));
    expect(observations(ev[0])).toEqual([
      { code: "MDC_PULS_RATE", mdc: 149514, mdcSent: 149522, value: 77, unit: "/min", status: "R", sub: "1.1.1" },
    ]);
    expect(notices).toEqual([
      {
        code: "HL7_CODE_MISMATCH",
        message:
          "OBX-3 numeric code 149522 disagrees with MDC_PULS_RATE (149514): kept by the reference id, flagged mdcSent",
      },
    ]);
    // A reference id outside our table is checked by its partition (MDC_EVT_ is partition 3)...
    const evt = decoded(handle(msg("262196^MDC_ATTR_X_UNKNOWN^MDC"), defaults));
    expect(observations(evt.events[0])[0]).toMatchObject({ code: "MDC_ATTR_X_UNKNOWN", mdcSent: 262196 });
    expect(observations(evt.events[0])[0]!.mdc).toBeUndefined();
    // ...and agreeing codes, unknown measurement ids and 0 ("unspecified") pass as before.
    for (const ok of [
      "147842^MDC_ECG_HEART_RATE^MDC",
      "148066^MDC_ECG_V_P_C_RATE^MDC",
      "0^MDCX_PRIVATE^MDC",
      "65537^MDC_ATTR_X_UNKNOWN^MDC",
    ]) {
      const r = decoded(handle(msg(ok), defaults));
      expect(r.notices, ok).toEqual([]);
      expect(observations(r.events[0])[0]!.mdcSent, ok).toBeUndefined();
    }
  });

  it("an ORU without any OBX is answered AE, error 100 (required segment missing), and stored nowhere", () => {
    for (const trigger of ["R01", "R40"]) {
      const x = handle(
        enc.encode(
          `MSH|^~\\&|MON||||20261123152901+0800||ORU^${trigger}|E1|P|2.6\rPID|||SIM1||SYNTHETIC^PATIENT\rOBR|1|||||20261123152901+0800\r`,
        ),
        defaults,
      );
      expect(x).toMatchObject({ ok: false, error: { code: "HL7_NO_OBSERVATIONS", where: "OBX" } });
      expect(ackSegments(x.ok ? undefined : x.reply).slice(1)).toEqual([
        "MSA|AE|E1|the ORU message has no OBX segment: nothing was observed, nothing stored",
        "ERR||OBX^1|100^Segment sequence error^HL70357|E||||the ORU message has no OBX segment: nothing was observed, nothing stored",
      ]);
    }
    // OBX rows that hold nothing (containment only) are an empty report, not a broken one: AA.
    const empty = handle(
      enc.encode(
        "MSH|^~\\&|MON||||20261123152901+0800||ORU^R01|E2|P|2.6\rOBR|1|||||20261123152901+0800\rOBX|1||69798^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1.0.0.0|||||||X\r",
      ),
      defaults,
    );
    expect(decoded(empty).events).toEqual([]);
    expect(ackSegments(empty.ok ? empty.accept : undefined)[1]).toBe("MSA|AA|E2");
  });
});

describe.skipIf(!haveRealWorld)(
  "real captures of Mindray, Comen and Philips monitors (../shared/fixtures/real-world/hl7)",
  () => {
    it("Comen: 149522 sent with MDC_PULS_RATE (149514) flagged; empty height and weight absent without a word", () => {
      const { events: ev, notices } = decoded(handle(realWorld("comen_nc_monitor.hl7"), defaults));
      const obs = observations(ev[0]);
      expect(obs.find((o) => o.code === "MDC_PULS_RATE")).toEqual({
        code: "MDC_PULS_RATE",
        mdc: 149514,
        mdcSent: 149522,
        value: 59,
        unit: "/min",
        status: "F",
        sub: "1.0.0.149522",
      });
      expect(codes(ev[0])).not.toContain("MDC_LEN_BODY_ACTUAL");
      expect(codes(ev[0])).not.toContain("MDC_MASS_BODY_ACTUAL");
      expect(notices).toEqual([
        {
          code: "HL7_CODE_MISMATCH",
          message:
            "OBX-3 numeric code 149522 disagrees with MDC_PULS_RATE (149514): kept by the reference id, flagged mdcSent",
        },
      ]);
    });

    it("Mindray VS-900, eGateway and a Philips Information Center sample: production data, nothing flagged, nothing dropped", () => {
      for (const [name, n] of [
        ["mindray_vs900_blog.hl7", 7],
        ["mindray_egateway_bigdipper.hl7", 13],
        ["philips_center_doc.hl7", 6],
      ] as const) {
        const { events: ev, notices } = decoded(handle(realWorld(name), defaults));
        expect(notices, name).toEqual([]);
        expect(ev.flatMap((e) => observations(e)).length, name).toBe(n);
        expect(
          ev.some((e) => (e.body as VitalsBody).demo),
          name,
        ).toBe(false);
      }
    });
  },
);

describe("eventsFromOru (property, fast-check)", () => {
  const params = { seed: 0x48_4c_37, numRuns: 300 };
  const value = fc.oneof(
    fc.constantFrom("-100", "-100.0", "---", "NA", "N/A", "?", "***", "", "32767", "-999"),
    fc.double({ min: -1000, max: 1000, noNaN: true }).map(String),
    fc.string({ maxLength: 6 }),
  );
  const row = fc.record({
    obx3: fc.constantFrom(
      "147842^MDC_ECG_HEART_RATE^MDC",
      "149522^MDC_PULS_RATE^MDC",
      "160^SpO2^99MNDRY",
      "0002-4182^HR^MDIL",
      "5^HardInop^MDIL-ALERT",
      "0^MDC_ATTR_SAMP_RATE^MDC",
      "196660^MDC_EVT_INOP^MDC",
      "262196^MDC_EVT_INOP^MDC",
      "196616^MDC_EVT_ALARM^MDC",
      "131330^MDC_ECG_ELEC_POTL_II^MDC",
    ),
    type: fc.constantFrom("NM", "ST", "NA", "TX", ""),
    value,
    flag: fc.constantFrom("", "DEMO", "PH~SP", "PM~ST", "H"),
    status: fc.constantFrom("R", "F", "X", ""),
    sub: fc.constantFrom("", "1.1.1", "1.7.6.131330", "1.7.6.131330.1", "1.7.6.131330.3"),
  });
  const header = fc.record({
    msh3: fc.constantFrom("MINDRAY_VS900^00A0370098007A80^EUI-64", "", "VSP^080019FFFE134535^EUI-64", "NC_Monitor"),
    processing: fc.constantFrom("P", "T", "D", ""),
    bed: fc.constantFrom("7", "pDemo6", ""),
    channel: fc.boolean(),
  });
  const message = fc
    .tuple(
      header,
      fc.array(fc.array(row, { maxLength: 8 }), { minLength: 1, maxLength: 3 }),
      fc.constantFrom("R01", "R40"),
    )
    .map(([h, groups, trigger]) => {
      const segs = [
        `MSH|^~\\&|${h.msh3}||||20261123152901+0800||ORU^${trigger}|P1|${h.processing}|2.6`,
        `PV1||I|ICU^^${h.bed}`,
      ];
      for (const g of groups) {
        segs.push("OBR|1|||||20261123152901+0800");
        // With a waveform channel in every group, the rows under its OBX-4 are its settings.
        if (h.channel) segs.push("OBX|1|NA|131330^MDC_ECG_ELEC_POTL_II^MDC|1.7.6.131330|2048^2050^2061");
        for (const r of g)
          segs.push(
            `OBX|1|${r.type}|${r.obx3}|${r.sub}|${r.value.replace(/[|^~\\&\r\n]/g, "")}|262688^MDC_DIM_PERCENT^MDC||${r.flag}|||${r.status}`,
          );
      }
      return {
        text: `${segs.join("\r")}\r`,
        demo: h.processing === "T" || h.processing === "D" || h.bed === "pDemo6",
        channel: h.channel,
      };
    });

  it("no sentinel ever becomes a number, no waveform setting or event row a vital, demo data is always marked, and every notice is counted by a known code", () => {
    fc.assert(
      fc.property(message, ({ text, demo, channel }) => {
        const x = handle(enc.encode(text), defaults);
        if (!x.ok) {
          expect(x.error.code).toBe("HL7_NO_OBSERVATIONS");
          return;
        }
        for (const e of x.events) {
          expect(["vitals", "alarm"]).toContain(e.kind);
          if (demo) expect((e.body as { demo?: boolean }).demo).toBe(true);
          if (e.kind !== "vitals") continue;
          for (const o of observations(e)) {
            if (demo) expect(o.demo).toBe(true);
            expect(o.code).not.toMatch(/^MDC_(ATTR_SAMP_RATE|EVT_)|^HardInop$|^5$/);
            if (channel) expect(o.sub ?? "").not.toMatch(/^1\.7\.6\.131330\./);
            if (o.code === "160" && typeof o.value === "number") expect(o.value).not.toBe(-100);
            if (typeof o.value === "string") expect(o.value.trim()).not.toMatch(/^(-+|N\/?A|\?+|\*+|)$/i);
            expect(o.status).not.toBe("X");
            if (o.mdcSent !== undefined) expect(o.mdcSent).not.toBe(o.mdc);
          }
        }
        for (const n of x.notices ?? []) {
          expect(["HL7_DEMO", "HL7_NO_VALUE", "HL7_CODE_MISMATCH"]).toContain(n.code);
          expect(n.message).not.toMatch(/SYNTHETIC|PATIENT/);
        }
      }),
      params,
    );
  });
});

describe("handle() under mutation (fuzz, seeded)", () => {
  const seeds: Uint8Array[] = [
    fixture("pcd01-basic.hl7"),
    fixture("pcd01-custom-delimiters.hl7"),
    fixture("pcd01-gb18030.hl7"),
    fixture("pcd04-alarm.hl7"),
    fixture("pcd01-vendor-local-lf.hl7"),
    fixture("mindray-waveform.hl7"),
    fixture("mindray-alarm-r01.hl7"),
    fixture("philips-piic-inop.hl7"),
    fixture("mindray-pds-novalue.hl7"),
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
        for (const n of x.notices ?? []) expect(n.message).not.toMatch(/SYNTHETIC|PATIENT|SIM000/);
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
