// A tiny line protocol driver for testing the core without any real protocol:
//   "v <n>\n"  -> one vitals event (heart rate n), acknowledged "OK <n>\n" after commit
//   "bad\n"    -> rejected: "ERR bad\n"
//   "boom\n"   -> the driver throws (a driver bug): no reply
// Over TCP (listening or connecting) or a serial port, as the options say.
import { z } from "zod";
import type { FrameResult, Framer } from "../../protocols/codec.ts";
import { defineDriver } from "../../src/devices/driver.ts";

function lineFramer(): Framer {
  let held = "";
  return {
    push(chunk: Uint8Array): FrameResult[] {
      held += Buffer.from(chunk).toString("utf8");
      const lines = held.split("\n");
      held = lines.pop()!;
      return lines.filter((l) => l.length > 0).map((l) => ({ frame: Buffer.from(l) }));
    },
    get pending() {
      return held.length;
    },
  };
}

export const lineDriver = defineDriver({
  id: "test-line",
  kind: "monitor",
  sends: ["vitals"],
  title: { en: "Test line protocol", zh: "测试行协议" },
  labels: {},
  options: z.object({
    mode: z.enum(["listen", "connect", "serial"]).default("listen"),
    host: z.string().default("127.0.0.1"),
    port: z.int().default(0),
    path: z.string().default(""),
    silentAfterMs: z.int().optional(),
  }),
  transport: (o) =>
    o.mode === "serial"
      ? {
          type: "serial",
          path: o.path,
          baudRate: 9600,
          dataBits: 8,
          parity: "none",
          stopBits: 1,
          rtscts: false,
          xonxoff: false,
        }
      : { type: o.mode === "listen" ? "tcp-listen" : "tcp-connect", host: o.host, port: o.port },
  framer: () => lineFramer(),
  silentAfterMs: (o) => o.silentAfterMs,
  handle(frame) {
    const line = Buffer.from(frame).toString("utf8");
    if (line === "boom") throw new Error("driver bug on purpose");
    const m = /^v (\d+)$/.exec(line);
    if (!m)
      return {
        ok: false,
        error: { code: "LINE_BAD", message: `not a reading: ${line.slice(0, 20)}`, where: 0 },
        reply: Buffer.from("ERR bad\n"),
      };
    return {
      ok: true,
      events: [
        {
          kind: "vitals",
          body: { observations: [{ code: "MDC_ECG_HEART_RATE", mdc: 147842, value: Number(m[1]), unit: "/min" }] },
        },
      ],
      accept: Buffer.from(`OK ${m[1]}\n`),
      refuse: (reason) => Buffer.from(`NAK ${reason}\n`),
    };
  },
});

/**
 * A polled device's driver: says "HELLO" when the connection opens and "POLL <n>" on every tick;
 * the device answers with readings ("v <n>"), acknowledged "OK <n>".
 */
export const pollDriver = defineDriver({
  id: "test-poll",
  kind: "ventilator",
  sends: ["vitals"],
  title: { en: "Test polled device", zh: "测试轮询设备" },
  labels: {},
  options: z.object({ host: z.string().default("127.0.0.1"), port: z.int(), tickMs: z.int().default(50) }),
  transport: (o) => ({ type: "tcp-connect", host: o.host, port: o.port }),
  framer: () => lineFramer(),
  session(o) {
    let polls = 0;
    return {
      tickMs: o.tickMs,
      open: () => [Buffer.from("HELLO\n")],
      tick: () => [Buffer.from(`POLL ${++polls}\n`)],
      handle: (frame, context) => lineDriver.handle!(frame, {} as never, context),
    };
  },
});
