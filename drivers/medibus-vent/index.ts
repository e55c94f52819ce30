// Dräger ventilators (Evita, Savina, Oxylog, Babylog, and the anaesthesia machines that speak the
// same) over MEDIBUS on RS-232, directly or through a serial-to-Ethernet server. The codec is
// protocols/medibus (framing, checksum, response layouts); this file says what the gateway asks and
// what the answers become. Data codes, units and MDC terms: ./codes.ts, with their sources.
//
// The link (Dräger "RS 232 MEDIBUS Protocol Definition", rev. 6.00, as implemented by OpenICE
// mdpnp/mdpnp Medibus.java and xeonfusion/VSCaptureDrgVent Class1.cs; facts only):
//  - On connecting the gateway sends ICC (initialize communication, 51H); the device answers nothing
//    else until it has answered an ICC. Until then (and after a lost link) ICC is sent again every
//    reply timeout.
//  - One command outstanding at a time: the next goes out only when the last was answered or timed
//    out (VSCaptureDrgVent guards every send with its "command running / reading response" flags;
//    OpenICE's sendCommand is synchronous on the answer). A command unanswered for REPLY_TIMEOUT_MS
//    means the device lost the link (it was switched off, unplugged, or timed the link out): the
//    gateway starts again with ICC.
//  - Keep-alive: a MEDIBUS device ends communication that stays silent too long (the "Time-Out"
//    section of the definition). Dräger's figure is NOT settled here: no stored copy of the
//    definition's text reaches that section, and no public implementation quotes it. What the
//    implementations do, and the gateway with them: OpenICE (AbstractDraegerVent @ 1ae7f72a) counts
//    3 s without a byte from the device as a lost link (getMaximumQuietTime 3000 ms, then ICC again)
//    and sends NOP once 1.5 s passed quietly; VSCaptureDrgVent (Program.cs @ f09a608) sends NOP every
//    2 s (KeepConnectionAlive(2)). So: a reply timeout of 3 s, and never 2 s without a command (NOP,
//    30H, when nothing else is due); both within what both implementations keep to.
//  - Either side may command: a device's own commands (ICC, NOP, requests) are answered with SOH and
//    the echoed code (the definition's "responding to control commands and unknown commands"), with
//    no data: the gateway has none to give.
//  - The poll schedule: device identification (52H) once after each ICC; current alarms, code page 1
//    (27H) every alarmsEveryS; current measured data, code page 1 (24H) every pollS; device settings
//    (29H) every settingsEveryS; all judged by the gateway's time (context.nowMs).
//  - Code pages: code page 1 is the one every implementation asks for. Code page 2 (measured data
//    2BH, alarms 2EH) is on newer devices only (OpenICE and VSCaptureDrgVent list its data codes; W. Kaisers'
//    Primus notes its alarms); which device has which page is in its MEDIBUS supplement, not in the
//    definition, and how a device without it answers is not settled either (the definition's
//    "responding to unknown commands" says echo; OpenICE leaves page 2 out of its polls). So page 2 is
//    asked for only with `codePage2: true`. Code page 3 (alarms, 23H) has no public data-code list:
//    not asked for. A page's codes mean different things on another page (Kaisers: alarm codes A3,
//    67, 32, 35, 37, 6A, A0, AC, AD, C8, C9, CA are defined on both), so every code carries its page.
//
// Serial settings: 19200 baud, 8 data bits, EVEN parity, 1 stop bit, no handshake: OpenICE's Evita 4
// and Evita XL drivers (DemoEvita4/DemoEvitaXL: 19200, Eight, Even, One) and VSCaptureDrgVent
// (19200, Parity.Even, 8, StopBits.One). The speed is set on the device (OpenICE also has a V500 at
// 38400; older devices ship at 9600): `baudRate` must match what the device's MEDIBUS port is set to.
//
// What the answers become:
//  - measured data → one `vitals` event per code page, observations by ./codes.ts; values that are blank (the
//    device sends spaces for a parameter it does not measure now) are left out;
//  - settings → one `vitals` event whose observations have status "setting";
//  - alarms → one `alarm` event per alarm that appears (state "active"), and one (state "inactive")
//    per alarm that is no longer in the list; code "MEDIBUS:CP<page>:<code>", text the device's
//    12-character alarm phrase. Priority: 1 (lowest) to 31 (highest), sent as one character, the
//    number + 30H (protocols/medibus, MEDIBUS_ALARM_PRIORITY_OFFSET, with its sources). The device's
//    own number is the event's priority (docs/protocol.md: "the device's own value" when it is not
//    high/medium/low). It is not turned into high/medium/low: for the Evita family two sources agree
//    on the classes (OpenICE AbstractDraegerVent: 1-6 advisory without tone, 7-10 advisory with
//    tone, 11-24 caution, 25-31 warning; edmundsj/VentilatorController's transcription of Dräger's
//    Evita command list names its alarms of 25-31 "Alarm", 23 "Caution", 7-10 "Advisory"), but no
//    source gives them for the other devices (anaesthesia machines, Babylog, Oxylog); docs/devices.md
//    gives the Evita classes for the center to read the number by.
//  - device identification → `model` (the device name) on every event after it.
// A new connection starts with no alarms known: alarms still present are sent as active again.
import { z } from "zod";
import { defineDriver } from "../../src/devices/driver.ts";
import type { Framer } from "../../protocols/codec.ts";
import type { DriverSession, Exchange, FrameContext } from "../../src/devices/driver.ts";
import type { AlarmBody, EventDraft, Observation } from "../../src/events/model.ts";
import {
  MEDIBUS_CMD,
  decodeMedibusAlarms,
  decodeMedibusDeviceId,
  decodeMedibusMeasured,
  decodeMedibusSettings,
  encodeMedibusCommand,
  encodeMedibusResponse,
  medibusFramer,
  parseMedibusMessage,
} from "../../protocols/medibus/index.ts";
import type { MedibusAlarm, MedibusValue } from "../../protocols/medibus/index.ts";
import { metricByRefid } from "../../protocols/mdc/index.ts";
import { MEDIBUS_MEASURED_CP1, MEDIBUS_MEASURED_CP2, MEDIBUS_SETTINGS, VENT_MDC } from "./codes.ts";
import type { MedibusTerm } from "./codes.ts";
import {
  SERIAL_LINE_LABELS,
  checkSerialLine,
  serialLine,
  serialLineOptions,
  serialLineTransport,
} from "../serial-line.ts";

/** A command unanswered this long: the link is lost, start again with ICC. */
export const REPLY_TIMEOUT_MS = 3000;
/** The longest the gateway stays quiet on an initialised link (a NOP when nothing else is due). */
export const KEEPALIVE_MS = 2000;
const TICK_MS = 200;

const BAUD_RATES = [1200, 2400, 4800, 9600, 19200, 38400] as const;

export const medibusVentOptions = z
  .strictObject({
    ...serialLine({
      device: "the ventilator",
      source: "MEDIBUS",
      baudRates: BAUD_RATES,
      baudRate: 19200,
      baudNote: "What the ventilator's MEDIBUS port is set to (Evita 4/XL: 19200; some devices 9600 or 38400).",
      dataBits: 8,
      parity: "even",
      stopBits: 1,
    }),
    pollS: z
      .int()
      .min(1)
      .max(3600)
      .default(5)
      .describe("Measured data is asked for every this many seconds; each answer becomes one vitals event."),
    settingsEveryS: z
      .int()
      .min(1)
      .max(86_400)
      .default(60)
      .describe(
        "The ventilator's settings are asked for every this many seconds; each answer becomes one vitals event of settings.",
      ),
    alarmsEveryS: z
      .int()
      .min(1)
      .max(3600)
      .default(5)
      .describe(
        "Current alarms are asked for every this many seconds; an alarm that appears or goes becomes an alarm event.",
      ),
    codePage2: z
      .boolean()
      .default(false)
      .describe(
        "Also ask for code page 2 (measured data 2BH and alarms 2EH, on the same schedules as page 1): only for a device whose MEDIBUS supplement lists them (newer Evita, Primus, ...); a device without them may leave the request unanswered, which the gateway takes for a lost link.",
      ),
    silentAfterS: z
      .number()
      .min(1)
      .max(86_400)
      .optional()
      .describe(
        "A ventilator that sends nothing for this long is faulted (state silent). Default 10 s: the gateway speaks to it at least every 2 s and it answers each command.",
      ),
  })
  .superRefine(checkSerialLine);

export type MedibusVentOptions = z.infer<typeof medibusVentOptions>;

// ---------------------------------------------------------------------------------------------
// Values → observations

function term(refid: string): { mdc?: number } {
  const known = VENT_MDC[refid];
  if (known) return { mdc: known.mdc };
  const m = metricByRefid(refid);
  return m?.mdc !== undefined ? { mdc: m.mdc } : {};
}

const round = (v: number) => Math.round(v * 1e6) / 1e6;

/** Values as observations: mapped codes under their MDC term, others as MEDIBUS:<prefix><code>. */
export function medibusObservations(
  values: MedibusValue[],
  table: Readonly<Record<string, MedibusTerm>>,
  prefix: string,
  status?: string,
): Observation[] {
  const out: Observation[] = [];
  for (const v of values) {
    if (v.value === undefined) continue; // blank: not measured now
    const code = v.code.toUpperCase();
    const t = table[code];
    const o: Observation = t?.refid
      ? { code: t.refid, ...term(t.refid), value: round(v.value * (t.scale ?? 1)), unit: t.unit }
      : { code: `MEDIBUS:${prefix}${code}`, value: round(v.value * (t?.scale ?? 1)), unit: t?.unit ?? "" };
    if (status !== undefined) o.status = status;
    out.push(o);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Session

type Poll = "deviceId" | "alarms" | "measured" | "settings" | "alarms2" | "measured2";
const POLLS: readonly Poll[] = ["deviceId", "alarms", "measured", "settings", "alarms2", "measured2"];
const POLL_CMD: Record<Poll, number> = {
  deviceId: MEDIBUS_CMD.DEVICE_ID,
  alarms: MEDIBUS_CMD.CURRENT_ALARMS_CP1,
  measured: MEDIBUS_CMD.MEASURED_DATA_CP1,
  settings: MEDIBUS_CMD.DEVICE_SETTINGS,
  alarms2: MEDIBUS_CMD.CURRENT_ALARMS_CP2,
  measured2: MEDIBUS_CMD.MEASURED_DATA_CP2,
};

/** One ventilator connection: the link's state, the one command outstanding, the poll schedule, the alarms known. */
export function medibusVentSession(options: MedibusVentOptions): DriverSession {
  let initialised = false;
  let outstanding: { code: number; sentMs: number } | undefined;
  let lastSentMs = 0;
  const due: Record<Poll, number> = {
    deviceId: Infinity,
    alarms: Infinity,
    measured: Infinity,
    settings: Infinity,
    alarms2: Infinity,
    measured2: Infinity,
  };
  const every: Record<Poll, number> = {
    deviceId: Infinity,
    alarms: options.alarmsEveryS * 1000,
    measured: options.pollS * 1000,
    settings: options.settingsEveryS * 1000,
    alarms2: options.alarmsEveryS * 1000,
    measured2: options.pollS * 1000,
  };
  const polls = POLLS.filter((p) => options.codePage2 || (p !== "alarms2" && p !== "measured2"));
  let model: string | undefined;
  /** Alarms active at the last answer of each code page, by code. */
  const active = new Map<1 | 2, Map<string, { priority: string; text: string }>>([
    [1, new Map()],
    [2, new Map()],
  ]);

  const send = (code: number, nowMs: number): Uint8Array[] => {
    outstanding = { code, sentMs: nowMs };
    lastSentMs = nowMs;
    return [encodeMedibusCommand(code)];
  };
  const who = () => (model !== undefined ? { model } : {});

  /** One code page's alarm list against the last one of the same page: the alarms that came and went. */
  function alarmEvents(page: 1 | 2, alarms: MedibusAlarm[]): EventDraft[] {
    const before = active.get(page)!;
    const now = new Map<string, { priority: string; text: string }>();
    for (const a of alarms)
      now.set(`MEDIBUS:CP${page}:${a.code.toUpperCase()}`, { priority: String(a.priority), text: a.phrase });
    const events: EventDraft[] = [];
    for (const [code, a] of now) {
      if (!before.has(code))
        events.push({
          kind: "alarm",
          body: { code, priority: a.priority, state: "active", text: a.text } satisfies AlarmBody,
          ...who(),
        });
    }
    for (const [code, a] of before) {
      if (!now.has(code))
        events.push({
          kind: "alarm",
          body: { code, priority: a.priority, state: "inactive", text: a.text } satisfies AlarmBody,
          ...who(),
        });
    }
    active.set(page, now);
    return events;
  }

  function alarmsAnswer(page: 1 | 2, data: string): Exchange {
    const a = decodeMedibusAlarms(data);
    if (!a.ok) return { ok: false, error: a.error };
    return { ok: true, events: alarmEvents(page, a.items) };
  }

  function measuredAnswer(data: string, table: Readonly<Record<string, MedibusTerm>>, prefix: string): Exchange {
    const v = decodeMedibusMeasured(data);
    if (!v.ok) return { ok: false, error: v.error };
    const observations = medibusObservations(v.items, table, prefix);
    return { ok: true, events: observations.length > 0 ? [{ kind: "vitals", body: { observations }, ...who() }] : [] };
  }

  return {
    tickMs: TICK_MS,
    open(context: FrameContext): Uint8Array[] {
      initialised = false;
      return send(MEDIBUS_CMD.ICC, context.nowMs);
    },
    tick(context: FrameContext): Uint8Array[] {
      const now = context.nowMs;
      if (outstanding) {
        if (now - outstanding.sentMs < REPLY_TIMEOUT_MS) return [];
        // Unanswered: the device lost the link (or never had it). Start again with ICC.
        initialised = false;
        return send(MEDIBUS_CMD.ICC, now);
      }
      if (!initialised) return send(MEDIBUS_CMD.ICC, now);
      for (const p of polls) {
        if (now >= due[p]) {
          // the next one a period on; a schedule that fell behind (a slow link) is not caught up in a burst
          due[p] += every[p];
          if (due[p] <= now) due[p] = now + every[p];
          return send(POLL_CMD[p], now);
        }
      }
      if (now - lastSentMs >= KEEPALIVE_MS) return send(MEDIBUS_CMD.NOP, now);
      return [];
    },
    handle(frame: Uint8Array, context: FrameContext): Exchange {
      const parsed = parseMedibusMessage(frame);
      if (!parsed.ok) {
        // A corrupt answer still ends the wait: the next command goes out on the next tick.
        outstanding = undefined;
        return { ok: false, error: parsed.error };
      }
      const m = parsed.message;
      if (m.kind === "command") {
        // The device commands us (its own ICC, NOP, or a request): echo the code, no data.
        return { ok: true, events: [], accept: encodeMedibusResponse(m.code) };
      }
      if (outstanding?.code === m.code) outstanding = undefined;
      const now = context.nowMs;
      switch (m.code) {
        case MEDIBUS_CMD.ICC:
          if (!initialised) {
            initialised = true;
            for (const p of polls) due[p] = now;
          }
          return { ok: true, events: [] };
        case MEDIBUS_CMD.DEVICE_ID: {
          const d = decodeMedibusDeviceId(m.data);
          if (!d.ok) return { ok: false, error: d.error };
          if (d.device.name.trim() !== "") model = d.device.name.trim();
          return { ok: true, events: [] };
        }
        case MEDIBUS_CMD.MEASURED_DATA_CP1:
          return measuredAnswer(m.data, MEDIBUS_MEASURED_CP1, "");
        case MEDIBUS_CMD.MEASURED_DATA_CP2:
          return measuredAnswer(m.data, MEDIBUS_MEASURED_CP2, "CP2:");
        case MEDIBUS_CMD.DEVICE_SETTINGS: {
          const v = decodeMedibusSettings(m.data);
          if (!v.ok) return { ok: false, error: v.error };
          const observations = medibusObservations(v.items, MEDIBUS_SETTINGS, "SET:", "setting");
          return {
            ok: true,
            events: observations.length > 0 ? [{ kind: "vitals", body: { observations }, ...who() }] : [],
          };
        }
        case MEDIBUS_CMD.CURRENT_ALARMS_CP1:
          return alarmsAnswer(1, m.data);
        case MEDIBUS_CMD.CURRENT_ALARMS_CP2:
          return alarmsAnswer(2, m.data);
        default:
          // NOP, and answers to what this driver does not ask (limits, texts, code page 3): read, let go.
          return { ok: true, events: [] };
      }
    },
  };
}

/**
 * MEDIBUS devices may suspend and resume a sender with DC3/DC1 (the definition's "software
 * handshaking"); our commands are a few bytes, so they are not held back, but the two bytes are taken
 * out of the stream (as OpenICE does) rather than counted as garbage or cut into a message.
 */
function withoutXonXoff(inner: Framer): Framer {
  return {
    get pending() {
      return inner.pending;
    },
    push(chunk: Uint8Array) {
      return inner.push(
        chunk.includes(0x11) || chunk.includes(0x13) ? chunk.filter((b) => b !== 0x11 && b !== 0x13) : chunk,
      );
    },
  };
}

export const medibusVent = defineDriver<MedibusVentOptions>({
  id: "medibus-vent",
  kind: "ventilator",
  sends: ["vitals", "alarm"],
  title: {
    en: "Dräger ventilator, MEDIBUS (serial or serial server)",
    zh: "德尔格呼吸机，MEDIBUS（串口或串口服务器）",
  },
  options: medibusVentOptions,
  labels: {
    ...SERIAL_LINE_LABELS,
    pollS: {
      zh: "测量值查询（秒）",
      en: "Ask measurements every (s)",
      helpZh: "每隔这么久询问一次测量值，每次回答成为一条生命体征事件。",
    },
    settingsEveryS: { zh: "设置查询（秒）", en: "Ask settings every (s)", helpZh: "每隔这么久询问一次呼吸机的设置。" },
    alarmsEveryS: {
      zh: "报警查询（秒）",
      en: "Ask alarms every (s)",
      helpZh: "每隔这么久询问一次当前报警；报警出现或消失成为报警事件。",
    },
    codePage2: {
      zh: "代码页 2",
      en: "Code page 2",
      helpZh: "也询问代码页 2（测量值 2BH、报警 2EH）：仅用于支持它的设备。",
    },
    silentAfterS: {
      zh: "无数据判定（秒）",
      en: "Silent after (s)",
      helpZh: "呼吸机这么久没有发来任何数据，就判为故障（无数据）。",
    },
  },
  transport: serialLineTransport,
  serialOptions: serialLineOptions,
  framer: () => withoutXonXoff(medibusFramer()),
  silentAfterMs: (o) => (o.silentAfterS ?? 10) * 1000,
  session: medibusVentSession,
  simulator: () => import("./simulator.ts").then((m) => m.simulator),
});
