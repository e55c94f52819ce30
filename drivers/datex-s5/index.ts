// GE Datex-Ohmeda S/5 patient monitors (and the AS/3, CS/3 and CARESCAPE B-series that kept its
// Computer Interface) over RS-232, directly or through a serial-to-Ethernet server. The protocol is
// in protocols/datex-s5 (framing, records, requests); this file says what the gateway asks for and
// what the answers become.
//
// The monitor speaks only when asked: on connecting the gateway sends the request for periodic
// physiological data ("displayed values" every `intervalS`) and, when `waveforms` are configured, the
// waveform request. The monitor forgets both when it restarts, and says nothing of it, so when no
// physiological record has come for two intervals (waveforms flowing or not) both requests are sent
// again, and again every two intervals while it stays quiet (tick, judged by the gateway's time).
//
// Serial settings: 19200 baud, 8 data bits, EVEN parity, 1 stop bit, RTS/CTS hardware flow control.
// GE's specification (document 8005313) is not public; two public implementations agree on these:
// UN-GCPDS/python-pycollect @ c6cfdc1d pycollect/device.py (GEDevice.connect: 19200, PARITY_EVEN,
// STOPBITS_ONE, EIGHTBITS, rtscts=True) and xeonfusion VSCapture (VSCaptureWave DSerialPort.cs:
// 19200, Parity.Even, 8, StopBits.One, Handshake.RequestToSend). Not 8N1: the parity is even.
//
// Interval: pycollect's request_transfer docstring says displayed values need an interval of 5 s or
// more, but the capture it published (../shared/fixtures/datex-s5, requested with its default
// interval of 1 s) holds a displayed-values record every second; so 1 s is allowed, 10 s is the
// default (one vitals event every 10 s is plenty over a 4G link).
//
// What becomes of a physiological record (DRI_MT.PHDB, the basic class of its displayed values):
// one `vitals` event, the MDC terms below, codes from drivers/hl7-pcd01/mdc.ts (verified there).
// Values the monitor marks invalid, not updated, over/under range, or whose module is absent
// ("not-available"), are left out: a vitals event holds measurements only, and an absent parameter
// is the usual state of a monitor (no invasive line, no temperature probe). The event's deviceTime
// is the record's r_time (seconds since 1970 on the monitor's clock, which is set to local time:
// the time service sees that as the monitor's clock skew and corrects `t`); deviceTimeRaw is r_time
// as the decimal number sent.
//
// CO2: the S/5 reports EtCO2 and FiCO2 as % of the gas and the ambient pressure it measured
// (co2.ambPress, mmHg). They are sent as partial pressures in mm[Hg] (% / 100 × ambient pressure,
// as VSCapture also computes its ET_CO2), the unit MDC_AWAY_CO2_ET is usually read in; when the
// record has no valid ambient pressure they stay in "%". FiCO2 is MDC_AWAY_CO2_INSP_MIN (the
// inspired CO2 a capnometer reports is the minimum over inspiration).
//
// Waveform records become one `waveform` event per configured channel (DESIGN.md §3: channel, fs,
// unit, scale, start, samples as little-endian int16 in base64; sentinel samples ≤ -32001 are kept
// as sent). `start` is the record's r_time on the monitor's clock. Channels of types not configured
// are dropped.
import { z } from "zod";
import { defineDriver } from "../../src/devices/driver.ts";
import type { DriverSession, Exchange, FrameContext } from "../../src/devices/driver.ts";
import type { EventDraft, Observation } from "../../src/events/model.ts";
import type { WaveformBody } from "../../src/events/schemas.ts";
import {
  DRI_MT,
  DRI_PH,
  DRI_PHDBCL,
  DRI_WF,
  datexFramer,
  decodeDatexPhdb,
  decodeDatexWave,
  encodeDatexPhdbRequest,
  encodeDatexWaveRequest,
  parseDatexRecord,
} from "../../protocols/datex-s5/index.ts";
import type { DatexGroupStatus, DatexPhdbSubrecord, DatexValue } from "../../protocols/datex-s5/index.ts";
import { metricByRefid } from "../../protocols/mdc/index.ts";
import {
  SERIAL_LINE_LABELS,
  checkSerialLine,
  serialLine,
  serialLineOptions,
  serialLineTransport,
} from "../serial-line.ts";
import { DATEX_WAVES } from "./waves.ts";

const WAVE_NAMES = Object.keys(DATEX_WAVES) as [string, ...string[]];
/** Both sources: the monitor sends at most 600 samples/s of waveforms in all, 8 channels at most. */
const MAX_WAVE_SAMPLES_PER_S = 600;

const BAUD_RATES = [9600, 19200, 38400, 57600, 115200] as const;

export const datexS5Options = z
  .strictObject({
    ...serialLine({
      device: "the monitor",
      source: "S/5",
      baudRates: BAUD_RATES,
      baudRate: 19200,
      baudNote: "The S/5 Computer Interface runs at 19200.",
      dataBits: 8,
      parity: "even",
      stopBits: 1,
      rtscts: true,
    }),
    intervalS: z
      .int()
      .min(1)
      .max(3600)
      .default(10)
      .describe("The monitor sends its displayed values every this many seconds; each becomes one vitals event."),
    waveforms: z
      .array(z.enum(WAVE_NAMES))
      .max(8)
      .default([])
      .describe(
        `Waveforms to request, each becoming waveform events (about one a second): ${WAVE_NAMES.join(", ")}. At most 8 and ${MAX_WAVE_SAMPLES_PER_S} samples/s in all (ECG 300, INVP/PLETH/ENT_100 100, gases 25). Default none: waveforms cost far more uplink than vitals.`,
      ),
    silentAfterS: z
      .number()
      .min(1)
      .max(86_400)
      .optional()
      .describe(
        "A monitor that sends nothing for this long is faulted (state silent). Default 3 × intervalS, or 5 s when waveforms are requested.",
      ),
  })
  .superRefine((o, ctx) => {
    checkSerialLine(o, ctx);
    if (new Set(o.waveforms).size !== o.waveforms.length)
      ctx.addIssue({ code: "custom", path: ["waveforms"], message: "a waveform is listed twice" });
    const rate = o.waveforms.reduce((sum, w) => sum + DATEX_WAVES[w]!.fs, 0);
    if (rate > MAX_WAVE_SAMPLES_PER_S)
      ctx.addIssue({
        code: "custom",
        path: ["waveforms"],
        message: `these waveforms need ${rate} samples/s; the S/5 sends at most ${MAX_WAVE_SAMPLES_PER_S}`,
      });
  });

export type DatexS5Options = z.infer<typeof datexS5Options>;

const silentAfterS = (o: DatexS5Options): number =>
  o.silentAfterS ?? (o.waveforms.length > 0 ? Math.min(5, 3 * o.intervalS) : 3 * o.intervalS);

/** The requests sent on connecting, and again after silence. */
export function datexRequests(o: DatexS5Options): Uint8Array[] {
  const out = [encodeDatexPhdbRequest({ recordType: DRI_PH.DISPL, intervalS: o.intervalS })];
  if (o.waveforms.length > 0) out.push(encodeDatexWaveRequest(o.waveforms.map((w) => DRI_WF[w]!)));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Physiological values → observations

/** Invasive pressure labels [pycollect measures.py 'INV-BP LBL'; VSCapture GetInvasivePressureLabel]. */
const INVP_LABELS: Readonly<Record<number, string>> = {
  1: "ART",
  2: "CVP",
  3: "PA",
  4: "RAP",
  5: "RVP",
  6: "LAP",
  7: "ICP",
  8: "ABP",
};
/** The MDC terms of an invasive channel by its label; other labels get the generic blood pressure terms. */
const INVP_TERMS: Readonly<Record<string, { sys?: string; dia?: string; mean: string }>> = {
  ART: { sys: "MDC_PRESS_BLD_ART_SYS", dia: "MDC_PRESS_BLD_ART_DIA", mean: "MDC_PRESS_BLD_ART_MEAN" },
  ABP: { sys: "MDC_PRESS_BLD_ART_ABP_SYS", dia: "MDC_PRESS_BLD_ART_ABP_DIA", mean: "MDC_PRESS_BLD_ART_ABP_MEAN" },
  PA: { sys: "MDC_PRESS_BLD_ART_PULM_SYS", dia: "MDC_PRESS_BLD_ART_PULM_DIA", mean: "MDC_PRESS_BLD_ART_PULM_MEAN" },
  CVP: { mean: "MDC_PRESS_BLD_VEN_CENT_MEAN" },
};
const INVP_GENERIC = { sys: "MDC_PRESS_BLD_SYS", dia: "MDC_PRESS_BLD_DIA", mean: "MDC_PRESS_BLD_MEAN" };

/** Temperature site labels [pycollect measures.py 'TEMP LBL'] with a verified MDC term; others are MDC_TEMP. */
const TEMP_TERMS: Readonly<Record<number, string>> = {
  1: "MDC_TEMP_ESOPH",
  3: "MDC_TEMP_TYMP",
  4: "MDC_TEMP_RECT",
  7: "MDC_TEMP_SKIN",
  15: "MDC_TEMP_CORE",
};

/** A reference id with its numeric code from the verified table (none when the table has none). */
function observation(refid: string, value: number, unit: string, sub?: string): Observation {
  const m = metricByRefid(refid);
  const o: Observation = { code: refid, value, unit };
  if (m?.mdc !== undefined) o.mdc = m.mdc;
  if (sub !== undefined) o.sub = sub;
  return o;
}

const num = (v: DatexValue | undefined): number | undefined => (typeof v === "number" ? v : undefined);
const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;

/** The basic class of a displayed-values subrecord as observations; absent and invalid values left out. */
export function datexObservations(basic: DatexPhdbSubrecord): Observation[] {
  const v = basic.values ?? {};
  const g: Record<string, DatexGroupStatus> = basic.groups ?? {};
  const out: Observation[] = [];
  const add = (key: string, refid: string, unit: string, sub?: string) => {
    const value = num(v[key]);
    if (value !== undefined) out.push(observation(refid, value, unit, sub));
  };
  // The ECG group's own HR is the monitor's selected heart-rate source (pycollect: "not necessarily
  // from the ECG"); the HR computed from the ECG is the one that is MDC_ECG_HEART_RATE.
  add("ecgExtra.hrEcg", "MDC_ECG_HEART_RATE", "/min");
  add("ecg.impRr", "MDC_TTHOR_RESP_RATE", "/min");
  add("nibp.sys", "MDC_PRESS_BLD_NONINV_SYS", "mm[Hg]");
  add("nibp.dia", "MDC_PRESS_BLD_NONINV_DIA", "mm[Hg]");
  add("nibp.mean", "MDC_PRESS_BLD_NONINV_MEAN", "mm[Hg]");
  add("nibp.hr", "MDC_PULS_RATE_NON_INV", "/min");
  for (const p of ["p1", "p2", "p3", "p4", "p5", "p6"]) {
    const label = INVP_LABELS[g[p]?.label ?? 0];
    const terms = (label && INVP_TERMS[label]) || INVP_GENERIC;
    const sub = `${p.toUpperCase()}${label ? `:${label}` : ""}`;
    if (terms.sys) add(`${p}.sys`, terms.sys, "mm[Hg]", sub);
    if (terms.dia) add(`${p}.dia`, terms.dia, "mm[Hg]", sub);
    add(`${p}.mean`, terms.mean, "mm[Hg]", sub);
  }
  for (const t of ["t1", "t2", "t3", "t4"])
    add(`${t}.temp`, TEMP_TERMS[g[t]?.label ?? 0] ?? "MDC_TEMP", "Cel", t.toUpperCase());
  add("spo2.spo2", "MDC_PULS_OXIM_SAT_O2", "%");
  add("spo2.pr", "MDC_PULS_OXIM_PULS_RATE", "/min");
  const amb = num(v["co2.ambPress"]);
  for (const [key, refid] of [
    ["co2.et", "MDC_AWAY_CO2_ET"],
    ["co2.fi", "MDC_AWAY_CO2_INSP_MIN"],
  ] as const) {
    const pct = num(v[key]);
    if (pct === undefined) continue;
    if (amb !== undefined && amb > 0) out.push(observation(refid, round((pct / 100) * amb, 1), "mm[Hg]"));
    else out.push(observation(refid, pct, "%"));
  }
  // CO2 label bits 0-2: the respiration rate's source, 1 = CO2, 2 = ECG impedance [pycollect 'CO2 LBL'].
  add("co2.rr", ((g.co2?.label ?? 0) & 0x7) === 1 ? "MDC_AWAY_RESP_RATE" : "MDC_RESP_RATE", "/min");
  add("o2.fi", "MDC_CONC_AWAY_O2_INSP", "%");
  return out;
}

// ---------------------------------------------------------------------------------------------
// Session

function isoSeconds(s: number): string {
  return new Date(s * 1000).toISOString();
}

function base64Int16(samples: Int16Array): string {
  const bytes = Buffer.alloc(samples.length * 2);
  for (let i = 0; i < samples.length; i++) bytes.writeInt16LE(samples[i]!, 2 * i);
  return bytes.toString("base64");
}

/** One monitor connection: what was asked, when the monitor last spoke. */
export function datexS5Session(options: DatexS5Options): DriverSession {
  const wanted = new Set(options.waveforms);
  const requeryMs = 2 * options.intervalS * 1000;
  /** The last physiological record heard, or the last time the requests went out, whichever is later (gateway ms). */
  let lastMs: number | undefined;

  return {
    tickMs: 1000,
    open(context: FrameContext): Uint8Array[] {
      lastMs = context.nowMs;
      return datexRequests(options);
    },
    tick(context: FrameContext): Uint8Array[] {
      if (lastMs !== undefined && context.nowMs - lastMs < requeryMs) return [];
      lastMs = context.nowMs;
      return datexRequests(options);
    },
    handle(frame: Uint8Array, context: FrameContext): Exchange {
      const parsed = parseDatexRecord(frame);
      if (!parsed.ok) return { ok: false, error: parsed.error };
      const record = parsed.record;
      const deviceTime = isoSeconds(record.time);
      const deviceTimeRaw = String(record.time);
      const events: EventDraft[] = [];
      if (record.mainType === DRI_MT.PHDB) {
        const phdb = decodeDatexPhdb(record);
        if (!phdb.ok) return { ok: false, error: phdb.error };
        lastMs = context.nowMs;
        for (const s of phdb.subrecords) {
          if (s.class !== DRI_PHDBCL.BASIC || s.subtype !== DRI_PH.DISPL) continue;
          const observations = datexObservations(s);
          if (observations.length > 0)
            events.push({ kind: "vitals", body: { observations }, deviceTime, deviceTimeRaw });
        }
      } else if (record.mainType === DRI_MT.WAVE) {
        const wave = decodeDatexWave(record);
        if (!wave.ok) return { ok: false, error: wave.error };
        for (const w of wave.subrecords) {
          if (w.name === undefined || !wanted.has(w.name) || w.samples.length === 0) continue;
          const info = DATEX_WAVES[w.name]!;
          events.push({
            kind: "waveform",
            body: {
              channel: w.name,
              fs: info.fs,
              unit: info.unit,
              scale: info.scale,
              start: deviceTime,
              samples: base64Int16(w.samples),
            } satisfies WaveformBody,
            deviceTime,
            deviceTimeRaw,
          });
        }
      }
      // Alarm and other record types: nothing is asked for them; they are read and let go.
      return { ok: true, events };
    },
  };
}

export const datexS5 = defineDriver<DatexS5Options>({
  id: "datex-s5",
  kind: "monitor",
  sends: ["vitals", "waveform"],
  title: {
    en: "GE Datex-Ohmeda S/5 monitor, Computer Interface (serial or serial server)",
    zh: "GE Datex-Ohmeda S/5 监护仪（计算机接口，串口或串口服务器）",
  },
  options: datexS5Options,
  labels: {
    ...SERIAL_LINE_LABELS,
    intervalS: {
      zh: "数值间隔（秒）",
      en: "Values every (s)",
      helpZh: "监护仪每隔这么久发送一次显示的数值，每次成为一条生命体征事件。",
    },
    waveforms: {
      zh: "波形",
      en: "Waveforms",
      helpZh: "要请求的波形（ECG1、ECG2、ECG3、INVP1、INVP2、PLETH 等），每秒约一条波形事件。",
    },
    silentAfterS: {
      zh: "无数据判定（秒）",
      en: "Silent after (s)",
      helpZh: "监护仪这么久没有发来任何数据，就判为故障（无数据）。",
    },
  },
  transport: serialLineTransport,
  serialOptions: serialLineOptions,
  framer: () => datexFramer(),
  silentAfterMs: (o) => silentAfterS(o) * 1000,
  session: datexS5Session,
  simulator: () => import("./simulator.ts").then((m) => m.simulator),
});
