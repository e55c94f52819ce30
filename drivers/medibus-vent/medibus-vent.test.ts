import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.ts";
import type { FrameContext } from "../../src/devices/driver.ts";
import type { AlarmBody, EventDraft, Observation } from "../../src/events/model.ts";
import {
  MEDIBUS_CMD as C,
  encodeMedibusCommand,
  encodeMedibusResponse,
  parseMedibusMessage,
} from "../../protocols/medibus/index.ts";
import { ownFixture } from "../../test/fixtures/serial/load.ts";
import { metricByRefid } from "../../protocols/mdc/index.ts";
import { MEDIBUS_MEASURED_CP1, MEDIBUS_MEASURED_CP2, MEDIBUS_SETTINGS, VENT_MDC } from "./codes.ts";
import { KEEPALIVE_MS, REPLY_TIMEOUT_MS, medibusVent, medibusVentOptions, medibusVentSession } from "./index.ts";
import type { MedibusVentOptions } from "./index.ts";
import { SYNTHETIC_MODEL, medibusDevice, syntheticAlarms } from "./synthetic.ts";

const T0 = Date.UTC(2026, 10, 23, 8, 0, 0);
const at = (ms: number): FrameContext => ({ nowMs: ms });
const opts = (o: object = {}): MedibusVentOptions => medibusVentOptions.parse({ port: "/dev/ttyUSB0", ...o });
const obs = (e: EventDraft) => (e.body as { observations: Observation[] }).observations;
const byCode = (e: EventDraft) => Object.fromEntries(obs(e).map((o) => [o.code, o]));
/** The command code of each message sent ("Q", "0", "$" ...), as one string. */
const codes = (msgs: Uint8Array[]) => msgs.map((m) => String.fromCharCode(m[1]!)).join("");

describe("medibus-vent options", () => {
  it("defaults to MEDIBUS on an Evita: 19200 8E1 without handshake, measured data every 5 s, settings 60 s, alarms 5 s", () => {
    const o = opts();
    expect(o).toMatchObject({
      baudRate: 19200,
      dataBits: 8,
      parity: "even",
      stopBits: 1,
      pollS: 5,
      settingsEveryS: 60,
      alarmsEveryS: 5,
    });
    expect(medibusVent.transport(o)).toEqual({
      type: "serial",
      path: "/dev/ttyUSB0",
      baudRate: 19200,
      dataBits: 8,
      parity: "even",
      stopBits: 1,
      rtscts: false,
      xonxoff: false,
    });
    expect(medibusVent.kind).toBe("ventilator");
    expect(medibusVent.silentAfterMs!(o)).toBe(10_000);
    expect(medibusVent.silentAfterMs!(opts({ silentAfterS: 2 }))).toBe(2000);
    expect(medibusVent.transport(opts({ transport: "tcp", host: "10.0.0.5", tcpPort: 4001, port: undefined }))).toEqual(
      { type: "tcp-connect", host: "10.0.0.5", port: 4001 },
    );
    expect(medibusVent.transport(opts({ match: { vendorId: "0403" } }))).toMatchObject({ match: { vendorId: "0403" } });
  });

  it("refuses what it cannot use, naming the field", () => {
    const bad = (o: object) =>
      medibusVentOptions.safeParse({ port: "/dev/ttyUSB0", ...o }).error?.issues.map((i) => i.path.join("."));
    expect(bad({ baudRate: 115200 })).toEqual(["baudRate"]);
    expect(bad({ pollS: 0 })).toEqual(["pollS"]);
    expect(bad({ bogus: 1 })).toEqual([""]);
    expect(medibusVentOptions.safeParse({ transport: "tcp" }).error?.issues.map((i) => i.path.join("."))).toEqual([
      "host",
      "tcpPort",
    ]);
    expect(medibusVentOptions.safeParse({}).error?.issues.map((i) => i.path.join("."))).toEqual(["port"]);
  });
});

describe("medibus-vent codes", () => {
  it("maps every MDC term it names to a numeric code: the verified table, or the ventilation terms checked in codes.ts", () => {
    for (const t of [...Object.values(MEDIBUS_MEASURED_CP1), ...Object.values(MEDIBUS_SETTINGS)]) {
      if (!t.refid) continue;
      const mdc = VENT_MDC[t.refid]?.mdc ?? metricByRefid(t.refid)?.mdc;
      expect(mdc, t.refid).toBeTypeOf("number");
      expect(t.sources.split(" ").length, `${t.name}: two sources`).toBeGreaterThanOrEqual(2);
    }
    // numeric code = partition 2 × 65536 + term code ([S] x73_nomenclature_medical_scada.h)
    expect(VENT_MDC.MDC_VOL_AWAY_TIDAL!.mdc).toBe(2 * 65536 + 20796);
    expect(VENT_MDC.MDC_VENT_PRESS_AWAY_END_EXP_POS!.mdc).toBe(2 * 65536 + 20904);
  });

  it("takes code page 2's codes from two listings each, and names no MDC term for them (the listings disagree)", () => {
    for (const t of Object.values(MEDIBUS_MEASURED_CP2)) {
      expect(t.sources.split(" ").length, t.name).toBeGreaterThanOrEqual(2);
      expect(t.refid, t.name).toBeUndefined();
    }
  });
});

/** A session that has been through ICC (answered), at time T0. */
function initialised(o: MedibusVentOptions = opts()) {
  const s = medibusVentSession(o);
  expect(codes(s.open!(at(T0)))).toBe("Q"); // ICC first
  expect(s.tick!(at(T0 + 200))).toEqual([]); // one command outstanding: nothing else until ICC is answered
  expect(s.handle(encodeMedibusResponse(C.ICC), at(T0 + 300))).toEqual({ ok: true, events: [] });
  return s;
}

describe("medibus-vent session: the link and the poll schedule", () => {
  it("polls device id, alarms, measured data and settings after ICC, one command at a time, then on schedule", () => {
    const s = initialised();
    const sent: string[] = [];
    const sentAt: number[] = [];
    const device = medibusDevice({ alarmCycleMs: 1e12 });
    device.receive(encodeMedibusCommand(C.ICC), T0);
    const events: EventDraft[] = [];
    // drive 70 s of ticks, the synthetic device answering each command 50 ms later
    for (let t = T0 + 400; t < T0 + 70_400; t += 200) {
      for (const cmd of s.tick!(at(t))) {
        sent.push(String.fromCharCode(cmd[1]!));
        sentAt.push(t);
        const reply = device.receive(cmd, t).reply;
        if (reply) {
          const ex = s.handle(reply, at(t + 50));
          expect(ex.ok).toBe(true);
          if (ex.ok) events.push(...ex.events);
        }
      }
    }
    // first: device id (R), alarms (' = 27H), measured ($), settings (')') in that order
    expect(sent.slice(0, 4).join("")).toBe("R'$)");
    const count = (c: string) => sent.filter((x) => x === c).length;
    expect(count("R")).toBe(1);
    expect(count("$")).toBe(14); // every 5 s over 70 s
    expect(count("'")).toBe(14);
    expect(count(")")).toBe(2); // at 0 and 60 s
    // between polls the link is kept alive: a NOP whenever 2 s passed without a command
    expect(count("0")).toBeGreaterThan(20);
    for (let i = 1; i < sentAt.length; i++) expect(sentAt[i]! - sentAt[i - 1]!).toBeLessThanOrEqual(KEEPALIVE_MS);
    const vitals = events.filter((e) => e.kind === "vitals");
    expect(vitals.every((e) => e.model === SYNTHETIC_MODEL)).toBe(true);
    expect(events.filter((e) => e.kind === "alarm")).toEqual([]); // the synthetic alarm is off all this time (1e12 ms cycle, second half)
    const measured = byCode(vitals.find((e) => obs(e)[0]!.status === undefined)!);
    expect(measured).toMatchObject({
      MDC_RESP_RATE: { mdc: 151562, value: 14, unit: "/min" },
      MDC_VOL_AWAY_TIDAL: { mdc: 151868, value: 480, unit: "mL" },
      MDC_VOL_MINUTE_AWAY: { mdc: 151880, value: 6.7, unit: "L/min" },
      MDC_VENT_PRESS_AWAY_END_EXP_POS: { mdc: 151976, value: 5, unit: "cm[H2O]" },
      MDC_PRESS_AWAY_INSP_MAX: { mdc: 151817, value: 22, unit: "cm[H2O]" },
      MDC_PRESS_AWAY_INSP_MEAN: { mdc: 151819, value: 10 },
      MDC_PRESS_RESP_PLAT: { mdc: 151784, value: 18 },
      MDC_CONC_AWAY_O2_INSP: { mdc: 152196, value: 40, unit: "%" },
      MDC_AWAY_CO2_ET: { mdc: 151728, value: 38, unit: "mm[Hg]" },
      MDC_COMPL_LUNG_DYN: { mdc: 151692, value: 28.2, unit: "mL/cm[H2O]" },
      MDC_RES_AWAY: { mdc: 151840, value: 9.5, unit: "cm[H2O].s/L" },
    });
    expect(measured.MDC_CONC_AWAY_CO2_ET).toBeUndefined(); // sent blank: not measured
    const settings = vitals.filter((e) => obs(e).every((o) => o.status === "setting"));
    expect(settings).toHaveLength(2);
    expect(byCode(settings[0]!)).toMatchObject({
      MDC_CONC_AWAY_O2_INSP: { value: 40, unit: "%", status: "setting" },
      MDC_VOL_AWAY_TIDAL: { value: 480, unit: "mL", status: "setting" }, // sent as 0.480 L
      MDC_VENT_RESP_RATE: { mdc: 151586, value: 14, unit: "/min" },
      MDC_VENT_PRESS_AWAY_END_EXP_POS: { value: 5, unit: "cm[H2O]" },
      "MEDIBUS:SET:05": { value: 1.7, unit: "s" }, // inspiratory time: no agreed MDC term
    });
    expect(byCode(settings[0]!)["MEDIBUS:SET:05"]!.mdc).toBeUndefined();
  });

  it("sends NOP when nothing else is due for 2 s, and nothing while a command is outstanding", () => {
    const s = initialised(opts({ pollS: 60, alarmsEveryS: 60, settingsEveryS: 3600 }));
    let t = T0 + 400;
    for (const expected of ["R", "'", "$", ")"]) {
      const out = s.tick!(at(t));
      expect(codes(out)).toBe(expected);
      expect(s.tick!(at(t + 100))).toEqual([]); // outstanding
      s.handle(encodeMedibusResponse(out[0]![1]!, expected === "R" ? "0161'Evita 4'04.03:06.00" : ""), at(t + 150));
      t += 200;
    }
    const quietFrom = t - 200;
    expect(s.tick!(at(quietFrom + KEEPALIVE_MS - 1))).toEqual([]);
    const nop = s.tick!(at(quietFrom + KEEPALIVE_MS));
    expect(codes(nop)).toBe("0");
    expect(Array.from(nop[0]!)).toEqual([0x1b, 0x30, 0x34, 0x42, 0x0d]); // ESC '0' "4B" CR: 1B + 30 = 4B
    expect(s.handle(encodeMedibusResponse(C.NOP), at(quietFrom + KEEPALIVE_MS + 30))).toEqual({ ok: true, events: [] });
    expect(codes(s.tick!(at(quietFrom + 2 * KEEPALIVE_MS)))).toBe("0");
  });

  it("starts again with ICC when a command goes unanswered, and keeps sending ICC until the device answers", () => {
    const s = initialised();
    const first = s.tick!(at(T0 + 400));
    expect(codes(first)).toBe("R");
    expect(s.tick!(at(T0 + 400 + REPLY_TIMEOUT_MS - 1))).toEqual([]);
    expect(codes(s.tick!(at(T0 + 400 + REPLY_TIMEOUT_MS)))).toBe("Q"); // silence: re-ICC
    expect(s.tick!(at(T0 + 400 + REPLY_TIMEOUT_MS + 1000))).toEqual([]);
    expect(codes(s.tick!(at(T0 + 400 + 2 * REPLY_TIMEOUT_MS)))).toBe("Q"); // still nothing: ICC again
    // the device is back
    s.handle(encodeMedibusResponse(C.ICC), at(T0 + 10_000));
    expect(codes(s.tick!(at(T0 + 10_100)))).toBe("R"); // the poll starts over with the device id
  });

  it("a device that answers nothing before ICC: nothing is polled until it answers the ICC", () => {
    const s = medibusVentSession(opts());
    const device = medibusDevice();
    const cmds = s.open!(at(T0));
    // the device was never initialised and misses this ICC (a line that came up late)
    expect(codes(cmds)).toBe("Q");
    let t = T0;
    const seen: string[] = [];
    for (; t < T0 + 8000; t += 200) {
      for (const c of s.tick!(at(t))) {
        seen.push(codes([c]));
        const r = device.receive(c, t).reply;
        if (r) s.handle(r, at(t + 20));
      }
    }
    expect(seen[0]).toBe("Q");
    expect(device.initialised).toBe(true);
    expect(seen).toContain("$");
  });

  it("asks for code page 2 (measured data 2BH, alarms 2EH) only with codePage2, and keeps each page's alarms apart", () => {
    const run = (o: MedibusVentOptions) => {
      const s = initialised(o);
      const device = medibusDevice({ alarmCycleMs: 1e12 });
      device.receive(encodeMedibusCommand(C.ICC), T0);
      const sent: string[] = [];
      const events: EventDraft[] = [];
      for (let t = T0 + 400; t < T0 + 12_400; t += 200) {
        for (const cmd of s.tick!(at(t))) {
          sent.push(String.fromCharCode(cmd[1]!));
          const reply = device.receive(cmd, t).reply;
          const ex = reply ? s.handle(reply, at(t + 50)) : undefined;
          if (ex?.ok) events.push(...ex.events);
        }
      }
      return { s, sent, events };
    };
    const page1 = run(opts());
    expect(page1.sent.filter((c) => c === "+" || c === ".")).toEqual([]);
    const both = run(opts({ codePage2: true }));
    // after the page 1 polls: page 2's alarms (. = 2EH) and measured data (+ = 2BH), on the same schedules
    expect(both.sent.slice(0, 6).join("")).toBe("R'$).+");
    expect(both.sent.filter((c) => c === "+")).toHaveLength(both.sent.filter((c) => c === "$").length);
    expect(both.sent.filter((c) => c === ".")).toHaveLength(both.sent.filter((c) => c === "'").length);
    const cp2 = both.events.filter((e) => e.kind === "vitals" && obs(e).some((o) => o.code.startsWith("MEDIBUS:CP2:")));
    expect(cp2.length).toBeGreaterThan(0);
    expect(obs(cp2[0]!)).toEqual([
      { code: "MEDIBUS:CP2:21", value: 472, unit: "mL" },
      { code: "MEDIBUS:CP2:22", value: 485, unit: "mL" },
      { code: "MEDIBUS:CP2:23", value: 18, unit: "cm[H2O]" },
    ]); // VTspon sent blank: left out

    // the same alarm code on both pages is two alarms: each page's list is judged against its own
    const s = both.s;
    const alarmsOf = (cmd: number, data: string) => {
      const ex = s.handle(encodeMedibusResponse(cmd, data), at(T0 + 20_000));
      return ex.ok
        ? ex.events.map((e) => e.body as AlarmBody).map((b) => `${b.code} ${b.state} ${b.priority}`)
        : [ex.error.code];
    };
    const item = (priority: number, code: string, phrase: string) =>
      String.fromCharCode(0x30 + priority) + code + phrase.padEnd(12, " ");
    expect(alarmsOf(C.CURRENT_ALARMS_CP1, item(26, "A3", "MV low"))).toEqual(["MEDIBUS:CP1:A3 active 26"]);
    expect(alarmsOf(C.CURRENT_ALARMS_CP2, item(12, "A3", "O2 cyl low"))).toEqual(["MEDIBUS:CP2:A3 active 12"]);
    expect(alarmsOf(C.CURRENT_ALARMS_CP1, item(26, "A3", "MV low"))).toEqual([]); // page 2's list does not end page 1's alarm
    expect(alarmsOf(C.CURRENT_ALARMS_CP2, "")).toEqual(["MEDIBUS:CP2:A3 inactive 12"]);
    expect(alarmsOf(C.CURRENT_ALARMS_CP1, "")).toEqual(["MEDIBUS:CP1:A3 inactive 26"]);
  });

  it("refuses an alarm list whose priority character is not 1..31 + 30H, and keeps the alarms it knew", () => {
    const s = initialised();
    const paw = syntheticAlarms(0, 1000);
    const first = s.handle(encodeMedibusResponse(C.CURRENT_ALARMS_CP1, paw), at(T0 + 500));
    expect(first.ok && first.events.map((e) => (e.body as AlarmBody).priority)).toEqual(["25"]);
    for (const bad of ["0", "P", "\x05"]) {
      const ex = s.handle(encodeMedibusResponse(C.CURRENT_ALARMS_CP1, bad + paw.slice(1)), at(T0 + 600));
      expect(!ex.ok && ex.error.code).toBe("MEDIBUS_BAD_ALARM_PRIORITY");
    }
    // a refused list is no news: the alarm is neither ended nor raised again
    expect(s.handle(encodeMedibusResponse(C.CURRENT_ALARMS_CP1, paw), at(T0 + 700))).toEqual({ ok: true, events: [] });
  });

  it("answers the device's own commands by echoing the code", () => {
    const s = initialised();
    for (const code of [C.ICC, C.NOP, C.DEVICE_ID, 0x6c]) {
      const ex = s.handle(encodeMedibusCommand(code), at(T0 + 500));
      expect(ex.ok && ex.accept).toEqual(encodeMedibusResponse(code));
      expect(ex.ok && ex.events).toEqual([]);
    }
  });

  it("turns the alarm list into active events when alarms appear and inactive events when they go", () => {
    const s = initialised();
    const alarms = (data: string, t: number) => {
      const ex = s.handle(encodeMedibusResponse(C.CURRENT_ALARMS_CP1, data), at(t));
      expect(ex.ok).toBe(true);
      return ex.ok ? ex.events.map((e) => ({ kind: e.kind, ...(e.body as AlarmBody) })) : [];
    };
    const paw = syntheticAlarms(0, 1000);
    const mv = "?" + "19" + "MV low".padEnd(12, " ");
    expect(alarms(paw, T0 + 1000)).toEqual([
      { kind: "alarm", code: "MEDIBUS:CP1:10", priority: "25", state: "active", text: "Paw high" },
    ]);
    expect(alarms(paw + mv, T0 + 2000)).toEqual([
      { kind: "alarm", code: "MEDIBUS:CP1:19", priority: "15", state: "active", text: "MV low" },
    ]);
    expect(alarms(paw + mv, T0 + 3000)).toEqual([]); // no change, no event
    expect(alarms(mv, T0 + 4000)).toEqual([
      { kind: "alarm", code: "MEDIBUS:CP1:10", priority: "25", state: "inactive", text: "Paw high" },
    ]);
    expect(alarms("", T0 + 5000)).toEqual([
      { kind: "alarm", code: "MEDIBUS:CP1:19", priority: "15", state: "inactive", text: "MV low" },
    ]);
  });

  it("rejects corrupt answers with a clear error and is free to send the next command", () => {
    const s = initialised();
    const cmd = s.tick!(at(T0 + 400));
    const bad = encodeMedibusResponse(cmd[0]![1]!, "0161'X'1");
    bad[bad.length - 2] = bad[bad.length - 2]! ^ 1; // a checksum digit
    const ex = s.handle(bad, at(T0 + 450));
    expect(ex.ok).toBe(false);
    expect(!ex.ok && ex.error.code).toBe("MEDIBUS_BAD_CHECKSUM");
    expect(codes(s.tick!(at(T0 + 600)))).not.toBe(""); // not waiting out the reply timeout
    const odd = s.handle(encodeMedibusResponse(C.MEASURED_DATA_CP1, "88 48"), at(T0 + 700));
    expect(!odd.ok && odd.error.code).toBe("MEDIBUS_BAD_LENGTH");
  });

  it("never throws on random bytes through its framer and session", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }), (chunks) => {
        const o = opts();
        const framer = medibusVent.framer!(o);
        const s = medibusVent.session!(o);
        s.open!(at(T0));
        let t = T0;
        for (const c of chunks) {
          for (const r of framer.push(c)) if ("frame" in r) s.handle(r.frame, at(t));
          s.tick!(at((t += 300)));
        }
        expect(framer.pending).toBeLessThanOrEqual(4096);
      }),
    );
  });
});

describe("medibus-vent: the synthetic fixture through the driver", () => {
  it("reads test/fixtures/serial/medibus-synthetic.bin: the ventilator's answers become vitals, settings and alarms; its commands are echoed", () => {
    const o = opts();
    const framer = medibusVent.framer!(o);
    const s = medibusVent.session!(o);
    s.open!(at(T0));
    const events: EventDraft[] = [];
    const echoes: string[] = [];
    const errors: string[] = [];
    // the fixture holds both sides; the DC1/DC3 bytes of software handshaking are taken out first
    const bytes = ownFixture("medibus-synthetic.bin");
    const withXon = Uint8Array.from([0x11, ...bytes.subarray(0, 10), 0x13, ...bytes.subarray(10)]);
    for (const r of framer.push(withXon)) {
      if ("error" in r) {
        errors.push(r.error.code);
        continue;
      }
      const ex = s.handle(r.frame, at(T0 + 100));
      if (!ex.ok) errors.push(ex.error.code);
      else {
        events.push(...ex.events);
        if (ex.accept) echoes.push(String.fromCharCode(parseMedibusMessage(ex.accept).ok ? ex.accept[1]! : 0));
      }
    }
    expect(errors).toEqual([]);
    expect(echoes).toEqual(["Q", "R", "$", "%", "&", "'", ")", "*", "0"]); // every command in the capture was the "device's"
    const [vitals, alarm1, alarm2, settings] = events;
    expect(events.map((e) => e.kind)).toEqual(["vitals", "alarm", "alarm", "vitals"]);
    expect(vitals!.model).toBe("SimVent");
    // the fixture's codes are illustrative: D6 is the respiratory rate, 06 compliance, 0B resistance;
    // 05 and 8B have no agreed term and keep their MEDIBUS code
    expect(byCode(vitals!)).toMatchObject({
      MDC_RESP_RATE: { value: 14, unit: "/min" },
      MDC_COMPL_LUNG_DYN: { value: 5 },
      MDC_RES_AWAY: { value: 7.3 },
      "MEDIBUS:05": { value: 16, unit: "cm[H2O]" },
      "MEDIBUS:8B": { value: 480, unit: "" },
    });
    expect(alarm1!.body).toMatchObject({ code: "MEDIBUS:CP1:12", priority: "31", state: "active", text: "Paw high" });
    expect(alarm2!.body).toMatchObject({ code: "MEDIBUS:CP1:3A", priority: "10", state: "active", text: "MV low" });
    expect(byCode(settings!)).toMatchObject({
      MDC_CONC_AWAY_O2_INSP: { value: 100, status: "setting" },
      "MEDIBUS:SET:07": { value: 14, status: "setting" },
    }); // 07 is the I part of I:E [O][V]
  });
});

describe("vitalgate simulate medibus-vent", () => {
  it("checks its arguments", async () => {
    const err: string[] = [];
    const io = { out: () => undefined, err: (s: string) => void err.push(s) };
    expect(await main(["simulate", "medibus-vent"], io)).toBe(2);
    expect(await main(["simulate", "medibus-vent", "--tcp-port", "70000"], io)).toBe(2);
    expect(err.join("")).toContain("give --port PATH");
  });
});
