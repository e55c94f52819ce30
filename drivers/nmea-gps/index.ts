// GPS receivers speaking NMEA 0183 (GGA, RMC, GNS, GLL, VTG, GSA, ZDA; GPS, GLONASS, Galileo, BeiDou
// talkers) on a serial port (a USB puck, the vehicle's receiver through an RS-232 adapter) or through a
// serial-to-Ethernet server. The receiver talks once per epoch (usually 1 Hz) and never listens: there
// is nothing to answer.
//
// Each connection has a session (the meaning of a fix spans a burst of sentences): sentences are
// assembled into one fix per epoch by the codec's position assembler (protocols/nmea/position.ts);
// a fix is emitted as a `position` event (DESIGN.md §3) as soon as its epoch is complete: with the
// cycle-ending sentence the assembler has learnt (gpsd's way), else when the next epoch begins.
// Positions are throttled (drivers/lib/position.ts, shared with the gpsd driver), since a vehicle reporting
// every second fills a 4G link and the outbox with little news:
//  - a fix is emitted when `minIntervalS` has passed since the last emitted one (by the fix's own
//    UTC) or the vehicle has moved `minDistanceM` from it (great-circle distance);
//  - gaining or losing the fix (none ↔ 2D/3D) is always emitted, at once. A lost fix is a `position`
//    event with `fix: "none"` and no coordinates (a tunnel: the center learns the GPS went blind, and
//    no stale position is passed off as current); it is said once, not every epoch;
//  - nothing is throttled when `throttle` is false or when the frames are a replay
//    (`vitalgate decode`, FrameContext.replay): then every fix becomes an event.
// 2D ↔ 3D changes go through the throttle: they flap in town and change nothing a dispatcher uses.
//
// Which sentence ends a burst differs between receivers: the assembler learns it from the first
// complete epoch, after which a position leaves with the last sentence of its burst; `deviceTime` is the
// measurement's UTC, `deviceTimeRaw` the time and date fields as sent ("hhmmss.ss ddmmyy"). The core
// takes a GPS's clock as the reference, not a device clock to correct, so `t` is the measurement time.
//
// `vitalgate decode --driver nmea-gps --options '{"port":"-"}' capture.nmea` prints every fix (the
// port is required by the options but not used by decode).
//
// Time: RMC with status A (and a mode other than N/S) hands its UTC to the time service (utcFix). So
// does ZDA, but only while the receiver has a valid fix: before its first fix a receiver may send
// ZDA from its own battery-backed clock, and GPS time outranks NTP in the gateway's time service.
// A u-blox receiver's PUBX,04 ("time of day and clock information", u-blox 6 Receiver Description)
// says whether its leap-second count is the firmware's default (LEAP_SEC marked "D") or read from the
// satellites: once read, its fixes are handed over as such (leapSecondsKnown), and the time service
// does not hold them at ±18 s (docs/time.md, "GPS leap seconds").
import { z } from "zod";
import { defineDriver } from "../../src/devices/driver.ts";
import type { DriverSession, Exchange, FrameContext } from "../../src/devices/driver.ts";
import type { SenderDetection } from "../../src/devices/sender.ts";
import type { EventDraft } from "../../src/events/model.ts";
import {
  decodeNmeaSentence,
  nmeaFramer,
  nmeaPositionAssembler,
  parseNmeaSentence,
} from "../../protocols/nmea/index.ts";
import type { PositionFix } from "../../protocols/nmea/index.ts";
import { THROTTLE_LABELS, positionBody, positionThrottle, throttleOptionShape } from "../lib/position.ts";

import {
  SERIAL_LINE_LABELS,
  checkSerialLine,
  serialLine,
  serialLineOptions,
  serialLineTransport,
} from "../serial-line.ts";

const BAUD_RATES = [4800, 9600, 19200, 38400, 57600, 115200] as const;

export const nmeaGpsOptions = z
  .strictObject({
    ...serialLine({
      device: "the receiver",
      source: "NMEA 0183",
      baudRates: BAUD_RATES,
      baudRate: 9600,
      baudNote: "NMEA 0183 specifies 4800; most current receivers send at 9600, some at higher rates.",
      dataBits: 8,
      parity: "none",
      stopBits: 1,
    }),
    ...throttleOptionShape,
    silentAfterS: z
      .number()
      .min(0.5)
      .max(3600)
      .default(5)
      .describe(
        "A receiver that sends nothing for this long is faulted (state silent): unplugged antenna cable aside, a GPS talks every second.",
      ),
  })
  .superRefine(checkSerialLine);

export type NmeaGpsOptions = z.infer<typeof nmeaGpsOptions>;

/** The time and date fields of an epoch as the receiver sent them, for `time.dev`. */
interface RawTime {
  time?: string;
  date?: string;
}

/** One receiver's connection: its epoch in progress, the last position sent, whether its time is good. */
export function nmeaGpsSession(options: NmeaGpsOptions): DriverSession {
  const assembler = nmeaPositionAssembler();
  let raw: RawTime = {};
  let lastRawDate: string | undefined;
  const throttle = positionThrottle(options);
  /** The receiver has a valid fix now (its last RMC said A, or its last epoch had a fix): its ZDA is believed. */
  let receiverFixed = false;
  /** The receiver said (PUBX,04) that its leap-second count is from the satellites. */
  let leapSecondsKnown = false;

  function position(fix: PositionFix, rawTime: RawTime, context: FrameContext): EventDraft | undefined {
    const onGpsTime = fix.time !== undefined;
    const atMs = onGpsTime ? Date.parse(fix.time!) : context.nowMs;
    if (!throttle.admit({ mode: fix.mode, atMs, onGpsTime, lat: fix.lat, lon: fix.lon }, context.replay === true))
      return undefined;
    const draft: EventDraft = { kind: "position", body: positionBody(fix) };
    if (fix.time !== undefined) draft.deviceTime = fix.time;
    if (rawTime.time !== undefined)
      draft.deviceTimeRaw = rawTime.date === undefined ? rawTime.time : `${rawTime.time} ${rawTime.date}`;
    return draft;
  }

  return {
    handle(frame: Uint8Array, context: FrameContext): Exchange {
      const parsed = parseNmeaSentence(frame);
      if (!parsed.ok) return { ok: false, error: parsed.error };
      const decoded = decodeNmeaSentence(parsed.sentence);
      if (!decoded.ok) return { ok: false, error: decoded.error };
      const m = decoded.message;
      const events: EventDraft[] = [];
      const fields = parsed.sentence.fields;
      // the raw time and date of the epoch a sentence belongs to, as sent
      const collect = () => {
        if ("time" in m && m.time) raw.time = m.time.raw;
        if (m.type === "RMC" && fields[8]) raw.date = lastRawDate = fields[8];
        if (m.type === "ZDA" && fields[1] && fields[2] && fields[3])
          raw.date = lastRawDate = `${fields[1]}${fields[2]}${fields[3]}`;
      };
      let collected = false;
      for (const fix of assembler.push(m)) {
        // a cycle-ending sentence is the closed epoch's own; a next epoch's first sentence is not
        if (fix.closedBy === "cycle-end" && !collected) {
          collect();
          collected = true;
        }
        const closed: RawTime = { time: raw.time, date: raw.date ?? lastRawDate };
        receiverFixed = fix.mode !== "none";
        const draft = position(fix, closed, context);
        if (draft) events.push(draft);
        raw = {};
      }
      if (!collected) collect();

      if (
        m.type === "other" &&
        parsed.sentence.talker === "P" &&
        parsed.sentence.type === "UBX" &&
        fields[0] === "04"
      ) {
        const leap = /^(\d+)(D?)$/.exec(fields[5] ?? "");
        if (leap) leapSecondsKnown = leap[2] === "";
      }
      let utcFix: number | undefined;
      if (m.type === "RMC") {
        receiverFixed = m.status === "A" && m.mode !== "N" && m.mode !== "S";
        if (receiverFixed && m.utc !== undefined) utcFix = Date.parse(m.utc);
      } else if (m.type === "ZDA" && receiverFixed && m.utc !== undefined) {
        utcFix = Date.parse(m.utc);
      }
      if (utcFix === undefined) return { ok: true, events };
      return leapSecondsKnown ? { ok: true, events, utcFix, leapSecondsKnown } : { ok: true, events, utcFix };
    },
  };
}

/**
 * A GPS behind a serial server in TCP client mode, connecting to us, seen by the pairing page by its
 * first sentence ("$", or "!" for encapsulated ones): its fixes are decoded for the preview; NMEA is
 * one-way, nothing to answer. This driver connects to serial servers: the note says what to change.
 */
const unpairedReceiver: SenderDetection = {
  protocol: "nmea",
  name: "NMEA 0183",
  opens: (first) => first === 0x24 || first === 0x21,
  listen() {
    const framer = nmeaFramer();
    const session = nmeaGpsSession(nmeaGpsOptions.parse({ port: "-" }));
    return {
      hear(chunk, context) {
        let sentences = 0;
        const events: EventDraft[] = [];
        for (const r of framer.push(chunk)) {
          if (!("frame" in r)) continue;
          const exchange = session.handle(r.frame, context);
          if (!exchange.ok) continue;
          sentences++;
          events.push(...exchange.events);
        }
        return [
          {
            messages: sentences,
            events,
            note: "a GPS through a serial server in TCP client mode: set the serial server to TCP server mode, then pair it with nmea-gps, transport tcp, its address and port",
          },
        ];
      },
    };
  },
};

export const nmeaGps = defineDriver<NmeaGpsOptions>({
  id: "nmea-gps",
  kind: "gps",
  sends: ["position"],
  title: { en: "GPS receiver, NMEA 0183 (serial or serial server)", zh: "GPS 接收机（NMEA 0183，串口或串口服务器）" },
  options: nmeaGpsOptions,
  labels: {
    ...SERIAL_LINE_LABELS,
    ...THROTTLE_LABELS,
    silentAfterS: {
      zh: "无数据判定（秒）",
      en: "Silent after (s)",
      helpZh: "接收机这么久没有发来任何数据，就判为故障（无数据）。",
    },
  },
  transport: serialLineTransport,
  serialOptions: serialLineOptions,
  // A receiver talks every second unasked. Most current receivers send at 9600, NMEA 0183's own
  // 4800 next, then the faster rates some are set to. Three checksummed sentences (one epoch's
  // RMC, GGA, GSA) read at a wrong speed are all but impossible: a clear match.
  probe: { bauds: [9600, 4800, 38400, 19200, 57600, 115200], matchFrames: 3, evidence: "frames" },
  framer: () => nmeaFramer(),
  silentAfterMs: (o) => o.silentAfterS * 1000,
  session: nmeaGpsSession,
  sender: unpairedReceiver,
  simulator: () => import("./simulator.ts").then((m) => m.simulator),
});
