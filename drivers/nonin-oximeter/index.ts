// Pulse oximeters with Nonin's real-time serial output (7500FO, 8500, BT4000/Avant 4000 and others
// that print "SPO2=098 HR=072" once a second): a finger-clip or bedside oximeter on a clinic's desk or
// in an ambulance, on an RS-232 port (usually through a USB adapter) or a serial server. Each reading
// becomes a vitals event with SpO2 (MDC_PULS_OXIM_SAT_O2, %) and pulse rate (MDC_PULS_OXIM_PULS_RATE,
// /min); the line format and its sources are in protocols/nonin. The oximeter only talks: nothing is
// answered, and a line carries no time of its own, so an event's time is its arrival.
//
// Said once per device (notices): "---" (no reading: no finger, sensor off, searching; no event),
// the fast-responding values (" F", a BT4000 with DIP switch 8 up: not the averaged ones monitors
// show), and the operator's event marker ("*", ON/STANDBY pressed). The power-up header is passed over.
//
// 9600 baud, 8 data bits, no parity: the 7500FO sends 2 stop bits, the others 1; a port set to 1
// reads both (the second stop bit is idle line).
import { z } from "zod";
import { defineDriver, type DriverNotice, type Exchange } from "../../src/devices/driver.ts";
import type { Observation } from "../../src/events/model.ts";
import { lineFramer } from "../../protocols/lines/index.ts";
import { metricByRefid } from "../../protocols/mdc/index.ts";
import { parseNoninLine } from "../../protocols/nonin/index.ts";
import {
  SERIAL_LINE_LABELS,
  checkSerialLine,
  serialLine,
  serialLineOptions,
  serialLineTransport,
} from "../serial-line.ts";

export const noninOximeterOptions = z
  .strictObject({
    ...serialLine({
      device: "the oximeter",
      source: "Nonin",
      baudRates: [9600],
      baudRate: 9600,
      baudNote: "Nonin's real-time output is always 9600 baud.",
      dataBits: 8,
      parity: "none",
      stopBits: 1,
    }),
    silentAfterS: z
      .number()
      .min(2)
      .max(3600)
      .default(5)
      .describe("An oximeter that sends nothing for this long is faulted (state silent): it prints a line a second."),
  })
  .superRefine(checkSerialLine);
export type NoninOximeterOptions = z.infer<typeof noninOximeterOptions>;

/** SpO2 and pulse rate under their MDC terms (protocols/mdc). */
function observation(refid: "MDC_PULS_OXIM_SAT_O2" | "MDC_PULS_OXIM_PULS_RATE", value: number): Observation {
  const term = metricByRefid(refid)!;
  return { code: refid, mdc: term.mdc, value, unit: term.unit! };
}

const NOTICES = {
  noData: { code: "NONIN_NO_DATA", message: "the oximeter sends no reading (---): no finger, or the sensor is off" },
  fast: {
    code: "NONIN_FAST",
    message: "the oximeter sends its fast-responding values (F; BT4000: DIP switch 8 up), not the averaged ones",
  },
  marker: { code: "NONIN_EVENT_MARKER", message: "the oximeter's event marker (*): ON/STANDBY was pressed" },
} satisfies Record<string, DriverNotice>;

/** One line of the oximeter. Pure. */
export function handleNoninLine(frame: Uint8Array): Exchange {
  const parsed = parseNoninLine(frame);
  if (!parsed.ok) return { ok: false, error: parsed.error };
  const line = parsed.line;
  if (line.kind === "header") return { ok: true, events: [] };
  const notices: DriverNotice[] = [];
  if (line.fast) notices.push(NOTICES.fast);
  if (line.marker) notices.push(NOTICES.marker);
  const observations: Observation[] = [];
  if (line.spo2 !== undefined) observations.push(observation("MDC_PULS_OXIM_SAT_O2", line.spo2));
  if (line.pulseRate !== undefined) observations.push(observation("MDC_PULS_OXIM_PULS_RATE", line.pulseRate));
  if (observations.length === 0) notices.push(NOTICES.noData);
  return {
    ok: true,
    events: observations.length > 0 ? [{ kind: "vitals", body: { observations } }] : [],
    ...(notices.length > 0 ? { notices } : {}),
  };
}

export const noninOximeter = defineDriver<NoninOximeterOptions>({
  id: "nonin-oximeter",
  kind: "monitor",
  sends: ["vitals"],
  title: {
    en: "Pulse oximeter, Nonin real-time serial output (SPO2= HR=)",
    zh: "脉搏血氧仪，Nonin 实时串口输出（SPO2= HR=）",
  },
  options: noninOximeterOptions,
  labels: {
    ...SERIAL_LINE_LABELS,
    silentAfterS: {
      zh: "无数据判定（秒）",
      en: "Silent after (s)",
      helpZh: "血氧仪这么久没有发来任何数据，就判为故障（无数据）；它每秒发一行。",
    },
  },
  setupHint: () => ({
    zh: "实时串口输出无需设置，开机即每秒一行。BT4000：8 号拨码开关拨下为平均值（拨上为快速值，行尾带 F）。",
    en: "The real-time serial output needs no setting: a line a second from power-on. BT4000: DIP switch 8 down for the averaged values (up sends the fast ones, lines ending F).",
  }),
  transport: serialLineTransport,
  serialOptions: serialLineOptions,
  // It talks unprompted once a second: a probe hears readings within a few seconds at its only speed.
  probe: { bauds: [9600], matchFrames: 2, evidence: "answers" },
  framer: () => lineFramer({ maxLineBytes: 256, tooLong: "NONIN_LINE_TOO_LONG", from: "the oximeter" }),
  silentAfterMs: (o) => o.silentAfterS * 1000,
  handle: handleNoninLine,
  simulator: () => import("./simulator.ts").then((m) => m.simulator),
});
