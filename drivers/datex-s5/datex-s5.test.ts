import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.ts";
import type { FrameContext } from "../../src/devices/driver.ts";
import type { EventDraft, Observation } from "../../src/events/model.ts";
import {
  DRI_MT,
  DRI_PH,
  DRI_WF,
  WF_REQ,
  datexFramer,
  encodeDatexFrame,
  encodeDatexPhdbRequest,
  encodeDatexWaveRequest,
  parseDatexRecord,
} from "../../protocols/datex-s5/index.ts";
import { readBytes, sharedDir } from "../../test/fixtures/serial/load.ts";
import { datexS5, datexS5Options, datexS5Session } from "./index.ts";
import type { DatexS5Options } from "./index.ts";
import { datexCaptureRecords, datexRequest, syntheticPhdbRecord, syntheticWaveRecord } from "./synthetic.ts";

const S5 = sharedDir("datex-s5", "datex-s5 driver");
const NOW = Date.UTC(2026, 10, 23, 8, 0, 0);
const at = (ms: number): FrameContext => ({ nowMs: ms });
const opts = (o: object = {}): DatexS5Options => datexS5Options.parse({ port: "/dev/ttyUSB0", ...o });

/** Bytes through the driver's framer and one session, as the device manager feeds them. */
function run(bytes: Uint8Array, options: DatexS5Options, chunk = 1 << 20) {
  const framer = datexS5.framer!(options);
  const session = datexS5.session!(options);
  session.open?.(at(NOW));
  const events: EventDraft[] = [];
  const errors: string[] = [];
  for (let i = 0; i < bytes.length; i += chunk) {
    for (const r of framer.push(bytes.subarray(i, i + chunk))) {
      if (!("frame" in r)) {
        errors.push(r.error.code);
        continue;
      }
      const ex = session.handle(r.frame, at(NOW));
      if (!ex.ok) errors.push(ex.error.code);
      else {
        expect(ex.accept).toBeUndefined(); // the S/5 acknowledges nothing
        events.push(...ex.events);
      }
    }
  }
  return { events, errors };
}

const obs = (e: EventDraft) => (e.body as { observations: Observation[] }).observations;
const byCode = (e: EventDraft) => Object.fromEntries(obs(e).map((o) => [o.code, o]));

describe("datex-s5 options", () => {
  it("defaults to the S/5's serial settings: 19200 8E1 with RTS/CTS, 10 s displayed values, no waveforms", () => {
    const o = opts();
    expect(o).toMatchObject({
      baudRate: 19200,
      dataBits: 8,
      parity: "even",
      stopBits: 1,
      rtscts: true,
      intervalS: 10,
      waveforms: [],
    });
    expect(datexS5.transport(o)).toEqual({
      type: "serial",
      path: "/dev/ttyUSB0",
      baudRate: 19200,
      dataBits: 8,
      parity: "even",
      stopBits: 1,
      rtscts: true,
      xonxoff: false,
    });
    expect(datexS5.silentAfterMs!(o)).toBe(30_000);
    expect(datexS5.silentAfterMs!(opts({ silentAfterS: 2 }))).toBe(2000);
    expect(datexS5.transport(opts({ transport: "tcp", host: "10.0.0.5", tcpPort: 4001, port: undefined }))).toEqual({
      type: "tcp-connect",
      host: "10.0.0.5",
      port: 4001,
    });
  });

  it("refuses what the monitor cannot do, naming the field", () => {
    const bad = (o: object) =>
      datexS5Options.safeParse({ port: "/dev/ttyUSB0", ...o }).error?.issues.map((i) => i.path.join("."));
    expect(bad({ waveforms: ["ECG1", "ECG2", "PLETH"] })).toEqual(["waveforms"]); // 700 samples/s
    expect(bad({ waveforms: ["EEG1"] })).toEqual(["waveforms.0"]); // no agreed scale
    expect(bad({ intervalS: 0 })).toEqual(["intervalS"]);
    expect(bad({ bogus: 1 })).toEqual([""]);
    expect(datexS5Options.safeParse({ transport: "tcp" }).error?.issues.map((i) => i.path.join("."))).toEqual([
      "host",
      "tcpPort",
    ]);
  });
});

describe("datex-s5 session: requests", () => {
  it("open() asks for displayed values every intervalS, and the configured waveforms", () => {
    const session = datexS5Session(opts({ intervalS: 5, waveforms: ["PLETH", "CO2"] }));
    const sent = session.open!(at(NOW));
    expect(sent).toHaveLength(2);
    const [phdb, wave] = sent.map((b) => {
      const f = datexFramer().push(b);
      expect(f).toHaveLength(1);
      return "frame" in f[0]! ? f[0].frame : new Uint8Array();
    });
    expect(parseDatexRecord(phdb!)).toMatchObject({
      ok: true,
      record: { mainType: DRI_MT.PHDB, subrecords: [{ offset: 0, type: DRI_PH.XMIT_REQ }] },
    });
    expect(datexRequest(phdb!)).toEqual({ kind: "phdb", recordType: DRI_PH.DISPL, intervalS: 5, classMask: 0 });
    expect(datexRequest(wave!)).toEqual({
      kind: "wave",
      command: WF_REQ.CONT_START,
      types: [DRI_WF.PLETH, DRI_WF.CO2],
    });
    expect(sent[0]).toEqual(encodeDatexPhdbRequest({ intervalS: 5 }));
    expect(datexS5Session(opts()).open!(at(NOW))).toEqual([encodeDatexPhdbRequest({ intervalS: 10 })]);
  });

  it("tick() asks again once nothing has come for two intervals, and not while records come", () => {
    const session = datexS5Session(opts({ intervalS: 5 }));
    session.open!(at(NOW));
    expect(session.tickMs).toBe(1000);
    expect(session.tick!(at(NOW + 9_000))).toEqual([]);
    // a record at +9 s: the clock starts again from it
    expect(session.handle(syntheticPhdbRecord(1_800_000_000), at(NOW + 9_000)).ok).toBe(true);
    expect(session.tick!(at(NOW + 18_000))).toEqual([]);
    expect(session.tick!(at(NOW + 19_000))).toEqual([encodeDatexPhdbRequest({ intervalS: 5 })]);
    // and again two intervals later if the monitor is still quiet, not every tick
    expect(session.tick!(at(NOW + 20_000))).toEqual([]);
    expect(session.tick!(at(NOW + 29_000))).toEqual([encodeDatexPhdbRequest({ intervalS: 5 })]);
  });

  it("waveforms still coming do not hold off asking again for the displayed values", () => {
    const o = opts({ intervalS: 5, waveforms: ["PLETH"] });
    const session = datexS5Session(o);
    const asked = session.open!(at(NOW));
    const wave = syntheticWaveRecord(1_800_000_000, [DRI_WF.PLETH!], () => 100);
    for (let s = 1; s <= 9; s++) {
      expect(session.handle(wave, at(NOW + s * 1000)).ok).toBe(true);
      expect(session.tick!(at(NOW + s * 1000))).toEqual([]);
    }
    expect(session.tick!(at(NOW + 10_000))).toEqual(asked);
  });
});

describe("datex-s5 session: records", () => {
  it("a synthetic record: vitals with MDC codes, EtCO2 as mm[Hg] from the ambient pressure, the monitor's time", () => {
    const session = datexS5Session(opts());
    const ex = session.handle(syntheticPhdbRecord(1_800_000_000), at(NOW));
    if (!ex.ok) throw new Error(ex.error.message);
    expect(ex.events).toHaveLength(1);
    const [e] = ex.events;
    expect(e).toMatchObject({ kind: "vitals", deviceTime: "2027-01-15T08:00:00.000Z", deviceTimeRaw: "1800000000" });
    expect(byCode(e!)).toMatchObject({
      MDC_ECG_HEART_RATE: { value: 72, unit: "/min", mdc: 147842 },
      MDC_PRESS_BLD_NONINV_SYS: { value: 120, unit: "mm[Hg]", mdc: 150021 },
      MDC_PRESS_BLD_NONINV_DIA: { value: 80, mdc: 150022 },
      MDC_PRESS_BLD_NONINV_MEAN: { value: 93, mdc: 150023 },
      MDC_PULS_OXIM_SAT_O2: { value: 98, unit: "%", mdc: 150456 },
      MDC_PULS_OXIM_PULS_RATE: { value: 72, mdc: 149530 },
      MDC_AWAY_CO2_ET: { value: 38, unit: "mm[Hg]", mdc: 151728 },
      MDC_AWAY_CO2_INSP_MIN: { value: 1.5, unit: "mm[Hg]", mdc: 151738 },
      MDC_AWAY_RESP_RATE: { value: 14, mdc: 151570 },
      MDC_TTHOR_RESP_RATE: { value: 14, mdc: 151578 },
      MDC_TEMP: { value: 37, unit: "Cel", mdc: 150344, sub: "T1" },
    });
    // nothing invalid or absent is reported
    expect(obs(e!).every((o) => typeof o.value === "number")).toBe(true);
    expect(byCode(e!).MDC_PRESS_BLD_ART_SYS).toBeUndefined();
  });

  it("EtCO2 stays in % when the record has no ambient pressure; an arterial line on P1 is MDC_PRESS_BLD_ART_*", () => {
    const session = datexS5Session(opts());
    const rec = syntheticPhdbRecord(1_800_000_000, { "co2.et": 4.5, "p1.sys": 121, "p1.dia": 71, "p1.mean": 88 });
    new DataView(rec.buffer).setUint16(40 + 4 + 16 + 4, 1, true); // P1 label: ART
    const ex = session.handle(rec, at(NOW));
    if (!ex.ok) throw new Error(ex.error.message);
    expect(byCode(ex.events[0]!)).toEqual({
      MDC_AWAY_CO2_ET: { code: "MDC_AWAY_CO2_ET", value: 4.5, unit: "%", mdc: 151728 },
      MDC_PRESS_BLD_ART_SYS: { code: "MDC_PRESS_BLD_ART_SYS", value: 121, unit: "mm[Hg]", mdc: 150033, sub: "P1:ART" },
      MDC_PRESS_BLD_ART_DIA: { code: "MDC_PRESS_BLD_ART_DIA", value: 71, unit: "mm[Hg]", mdc: 150034, sub: "P1:ART" },
      MDC_PRESS_BLD_ART_MEAN: { code: "MDC_PRESS_BLD_ART_MEAN", value: 88, unit: "mm[Hg]", mdc: 150035, sub: "P1:ART" },
    });
  });

  it("waveform records: one event per configured channel, samples as little-endian int16 in base64", () => {
    const session = datexS5Session(opts({ waveforms: ["PLETH"] }));
    const rec = syntheticWaveRecord(1_800_000_000, [DRI_WF.PLETH!, DRI_WF.CO2!], (t) =>
      t === DRI_WF.PLETH ? 100 : 25,
    );
    const ex = session.handle(rec, at(NOW));
    if (!ex.ok) throw new Error(ex.error.message);
    expect(ex.events).toHaveLength(1); // CO2 was not asked for
    const body = ex.events[0]!.body as {
      channel: string;
      fs: number;
      unit: string;
      scale: number;
      start: string;
      samples: string;
    };
    expect(body).toMatchObject({
      channel: "PLETH",
      fs: 100,
      unit: "%",
      scale: 0.01,
      start: "2027-01-15T08:00:00.000Z",
    });
    const samples = new Int16Array(new Uint8Array(Buffer.from(body.samples, "base64")).buffer);
    expect(samples).toHaveLength(100);
    expect(Math.max(...samples)).toBeGreaterThan(250);
  });

  it("a bad record is refused with the codec's reason; requests echoed back and alarms give no events", () => {
    const session = datexS5Session(opts());
    expect(session.handle(new Uint8Array(10), at(NOW))).toMatchObject({
      ok: false,
      error: { code: "S5_SHORT_RECORD" },
    });
    const echo = datexFramer().push(encodeDatexWaveRequest([DRI_WF.PLETH!]))[0]!;
    expect("frame" in echo && session.handle(echo.frame, at(NOW))).toEqual({ ok: true, events: [] });
    const bytes = encodeDatexFrame(new Uint8Array(0));
    expect(run(bytes, opts()).errors).toEqual(["S5_SHORT_FRAME"]);
  });
});

describe("datex-s5 driver on bad input", () => {
  it("random bytes, torn and corrupted records never throw: each frame is events or a coded error", () => {
    const good = [
      encodeDatexFrame(syntheticPhdbRecord(1_800_000_000)),
      encodeDatexFrame(syntheticWaveRecord(1_800_000_000, [DRI_WF.PLETH!], () => 100)),
    ];
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.uint8Array({ maxLength: 400 }),
            fc.constantFrom(...good),
            fc.tuple(fc.constantFrom(...good), fc.nat(), fc.integer({ min: 0, max: 255 })).map(([g, i, b]) => {
              const c = g.slice();
              c[i % c.length] = b;
              return c;
            }),
          ),
          { maxLength: 12 },
        ),
        (chunks) => {
          const r = run(Uint8Array.from(chunks.flatMap((c) => [...c])), opts({ waveforms: ["PLETH"] }), 13);
          for (const e of r.errors) expect(e).toMatch(/^S5_[A-Z_]+$/);
          for (const e of r.events) expect(["vitals", "waveform"]).toContain(e.kind);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe.skipIf(!S5)("datex-s5 driver on the shared captures (../shared/fixtures/datex-s5)", () => {
  it("pycollect_db02.raw: 107 vitals events with MDC codes, the first HR 80, NIBP 93/48 (69), SpO2 96.65, in any chunking", () => {
    const bytes = readBytes(S5!, "pycollect_db02.raw");
    const whole = run(bytes, opts({ waveforms: ["PLETH", "ENT_100"] }));
    // the capture ends in the middle of a frame: the framer holds it, nothing is refused
    expect(whole.errors).toEqual([]);
    const vitals = whole.events.filter((e) => e.kind === "vitals");
    const waves = whole.events.filter((e) => e.kind === "waveform");
    expect(vitals).toHaveLength(107);
    expect(waves).toHaveLength(2 * 106);
    const first = byCode(vitals[0]!);
    expect(first).toMatchObject({
      MDC_ECG_HEART_RATE: { value: 80, unit: "/min", mdc: 147842 },
      MDC_PRESS_BLD_NONINV_SYS: { value: 93, unit: "mm[Hg]", mdc: 150021 },
      MDC_PRESS_BLD_NONINV_DIA: { value: 48, mdc: 150022 },
      MDC_PRESS_BLD_NONINV_MEAN: { value: 69, mdc: 150023 },
      MDC_PULS_OXIM_SAT_O2: { value: 96.65, unit: "%", mdc: 150456 },
      MDC_PULS_OXIM_PULS_RATE: { value: 83, mdc: 149530 },
      // 4.87 % of 759.8 mmHg
      MDC_AWAY_CO2_ET: { value: 37, unit: "mm[Hg]", mdc: 151728 },
      MDC_AWAY_RESP_RATE: { value: 15, mdc: 151570 },
      MDC_CONC_AWAY_O2_INSP: { value: 80, unit: "%", mdc: 152196 },
    });
    // P1 (ART) and P2 (CVP) exist but measure nothing; no temperature probe: none of them reported
    expect(obs(vitals[0]!).some((o) => o.code.startsWith("MDC_PRESS_BLD_ART") || o.code.startsWith("MDC_TEMP"))).toBe(
      false,
    );
    expect(vitals[0]).toMatchObject({ deviceTime: "2018-07-26T17:06:05.000Z", deviceTimeRaw: "1532624765" });
    for (const v of vitals) {
      const c = byCode(v);
      expect(c.MDC_ECG_HEART_RATE!.value).toBeGreaterThanOrEqual(30);
      expect(c.MDC_ECG_HEART_RATE!.value).toBeLessThanOrEqual(220);
      expect(c.MDC_PULS_OXIM_SAT_O2!.value).toBeGreaterThanOrEqual(70);
      expect(obs(v).every((o) => o.mdc !== undefined && typeof o.value === "number" && Number.isFinite(o.value))).toBe(
        true,
      );
    }
    expect(waves.map((w) => (w.body as { channel: string }).channel).slice(0, 2)).toEqual(["PLETH", "ENT_100"]);
    expect(waves[0]!.body).toMatchObject({ fs: 100, unit: "%", scale: 0.01 });
    expect(Buffer.from((waves[0]!.body as { samples: string }).samples, "base64")).toHaveLength(200);
    for (const chunk of [1, 7, 1000])
      expect(run(bytes, opts({ waveforms: ["PLETH", "ENT_100"] }), chunk)).toEqual(whole);
  });

  it("pycollect_raw.raw: its records are the same as the start of db02; the simulator's replay gives the same records", () => {
    const raw = run(readBytes(S5!, "pycollect_raw.raw"), opts());
    expect(raw.errors).toEqual([]);
    expect(raw.events.filter((e) => e.kind === "vitals")).toHaveLength(11);
    const records = datexCaptureRecords(readBytes(S5!, "pycollect_db02.raw"));
    expect(records).toHaveLength(213);
    const replayed = run(
      Uint8Array.from(records.flatMap((r) => [...r.frame])),
      opts({ waveforms: ["PLETH", "ENT_100"] }),
    );
    expect(replayed).toEqual(run(readBytes(S5!, "pycollect_db02.raw"), opts({ waveforms: ["PLETH", "ENT_100"] })));
  });
});

describe("vitalgate simulate datex-s5", () => {
  it("wants a serial port or a TCP port, not both and not neither", async () => {
    for (const [args, said] of [
      [[], "give --port PATH"],
      [["--port", "/dev/null", "--tcp-port", "1"], "give --port PATH"],
      [["--tcp-port", "x"], "--tcp-port must be 0-65535"],
    ] as const) {
      const err: string[] = [];
      expect(
        await main(["simulate", "datex-s5", ...args], { out: () => undefined, err: (s) => void err.push(s) }),
      ).toBe(2);
      expect(err.join("")).toContain(`simulate datex-s5: ${said}`);
    }
  });
});
