// HL7 v2 over MLLP from patient monitors and central stations: IHE PCD-01 observation reports
// (ORU^R01) become vitals, IHE PCD-04 alarm reports (ORU^R40) become alarms, and every message
// gets its original-mode acknowledgement (HL7 v2.5 2.9.2): AA once the events are committed,
// AE when the store cannot take them, AR when the message itself is unacceptable.
import { z } from "zod";
import { defineDriver } from "../../src/devices/driver.ts";
import type { Exchange, FrameContext } from "../../src/devices/driver.ts";
import type { SenderDetection, SenderHeard } from "../../src/devices/sender.ts";
import type { CodecError } from "../../protocols/codec.ts";
import { MLLP_START, mllpEncode, mllpFramer } from "../../protocols/mllp/index.ts";
import {
  HL7_ERROR,
  buildAck,
  formatHl7Time,
  hl7CaptureFramer,
  isSupportedCharset,
  parseHl7,
} from "../../protocols/hl7v2/index.ts";
import { offsetForLocal, zoneOffsetMinutes } from "../../src/time/zone.ts";
import type { AckError, Hl7Header, Hl7Message } from "../../protocols/hl7v2/index.ts";
import { eventsFromOru } from "./oru.ts";
import type { MappingOptions } from "./oru.ts";

const MiB = 1024 * 1024;

export const hl7Pcd01Options = z
  .strictObject({
    mode: z
      .enum(["listen", "connect"])
      .default("listen")
      .describe(
        "listen: monitors connect to us (the usual setup); connect: we connect to a device or a serial-to-Ethernet server.",
      ),
    host: z
      .string()
      .min(1)
      .optional()
      .describe("Address to listen on (default 0.0.0.0, all interfaces) or to connect to (required for connect)."),
    port: z.number().int().min(1).max(65535).default(2575).describe("TCP port; 2575 is the registered HL7 port."),
    maxFrameBytes: z
      .number()
      .int()
      .min(1024)
      .max(64 * MiB)
      .default(MiB)
      .describe("Largest HL7 message accepted; larger ones are answered AR and skipped."),
    charset: z
      .string()
      .default("utf-8")
      .refine(isSupportedCharset, { message: "unsupported character set (try utf-8, gb18030, 8859/1)" })
      .describe(
        "Character set of messages without MSH-18: an HL7 table 0211 name (UNICODE UTF-8, GB 18030-2000, 8859/1) or a WHATWG label (utf-8, gb18030, gbk).",
      ),
    timezone: z
      .string()
      .refine((s) => zoneOffsetMinutes(s, 0) !== undefined, {
        message: 'a time zone like "Asia/Shanghai" or a UTC offset like "+08:00"',
      })
      .optional()
      .describe(
        'Time zone of this device\'s clock for times it sends without a UTC offset (an IANA name like "Asia/Shanghai", or "+08:00"). Default: the box\'s time.zone.',
      ),
    codeMap: z
      .record(
        z.string().min(1),
        z.object({
          code: z.string().min(1).describe("IEEE 11073-10101 reference id, e.g. MDC_ECG_HEART_RATE."),
          mdc: z
            .number()
            .int()
            .positive()
            .optional()
            .describe("Numeric MDC code; looked up from the reference id when left out."),
          unit: z.string().optional().describe("UCUM unit; overrides the unit the device sends."),
        }),
      )
      .default({})
      .describe(
        'Vendor-local OBX-3 codes ("101", "101^HR^99MNDRY", or "unidentified:<OBX-1>" for devices that send no OBX-3) to MDC codes and UCUM units.',
      ),
    noValue: z
      .array(z.string().trim().min(1))
      .default([])
      .describe(
        'OBX-5 values this device sends to say "no value" (e.g. "-999", from its interface manual), read as absent like the vendor markers the driver knows.',
      ),
  })
  .superRefine((o, ctx) => {
    if (o.mode === "connect" && o.host === undefined) {
      ctx.addIssue({ code: "custom", path: ["host"], message: "host is required when mode is connect" });
    }
  });

export type Hl7Pcd01Options = z.infer<typeof hl7Pcd01Options>;

/** How each parse failure is reported to the sender (HL7 table 0357). */
const PARSE_ERROR_CODES: Record<string, number> = {
  HL7_NO_MSH: HL7_ERROR.SEGMENT_SEQUENCE,
  HL7_BAD_SEGMENT: HL7_ERROR.SEGMENT_SEQUENCE,
  HL7_MULTIPLE_MSH: HL7_ERROR.SEGMENT_SEQUENCE,
  HL7_BAD_DELIMITERS: HL7_ERROR.DATA_TYPE,
  HL7_CHARSET: HL7_ERROR.TABLE_VALUE_NOT_FOUND,
};

function mapping(options: Hl7Pcd01Options, context: FrameContext | undefined): MappingOptions {
  const zone = options.timezone ?? context?.timeZone;
  return {
    codeMap: options.codeMap,
    noValue: options.noValue,
    assumeOffsetMinutes: zone === undefined ? undefined : (local) => offsetForLocal(zone, local),
  };
}

function ack(
  message: Hl7Message | Hl7Header | undefined,
  code: "AA" | "AE" | "AR",
  context: FrameContext | undefined,
  error?: AckError,
): Uint8Array {
  const time = context === undefined ? undefined : formatHl7Time(new Date(context.nowMs));
  return mllpEncode(buildAck({ message, code, error, time, application: "VITALGATE" }));
}

function reject(
  message: Hl7Message | Hl7Header,
  error: CodecError,
  hl7Code: number,
  context: FrameContext | undefined,
): Exchange {
  const where = typeof error.where === "string" ? error.where : undefined;
  return { ok: false, error, reply: ack(message, "AR", context, { code: hl7Code, text: error.message, where }) };
}

/** Decodes one HL7 message (the bytes of one MLLP frame). Pure. */
export function handleHl7(frame: Uint8Array, options: Hl7Pcd01Options, context?: FrameContext): Exchange {
  const parsed = parseHl7(frame, { defaultCharset: options.charset });
  if (!parsed.ok) {
    // An empty frame is not a message: nothing to acknowledge.
    if (parsed.error.code === "HL7_EMPTY") return { ok: false, error: parsed.error };
    return reject(
      parsed.header,
      parsed.error,
      PARSE_ERROR_CODES[parsed.error.code] ?? HL7_ERROR.APPLICATION_INTERNAL,
      context,
    );
  }
  const message = parsed.message;
  const h = message.header;
  const type = h.triggerEvent === "" ? h.messageCode : `${h.messageCode}^${h.triggerEvent}`;
  if (h.messageCode === "ACK") {
    // Acknowledging an acknowledgement would start a loop.
    return {
      ok: false,
      error: {
        code: "HL7_UNEXPECTED_ACK",
        message: "received an ACK, but this gateway sends no messages to acknowledge",
        where: "MSH-9",
      },
    };
  }
  if (h.messageCode === "") {
    return reject(
      message,
      { code: "HL7_NO_MESSAGE_TYPE", message: "message type missing in MSH-9", where: "MSH-9" },
      HL7_ERROR.REQUIRED_FIELD_MISSING,
      context,
    );
  }
  if (h.messageCode !== "ORU") {
    // HL7 original mode: a message type the receiver does not take is answered AR (error 200),
    // never left unanswered. A sender that also sends ADT learns to stop sending it here.
    return reject(
      message,
      {
        code: "HL7_UNSUPPORTED_TYPE",
        message: `unsupported message type ${clip(type)}: this interface takes ORU^R01 and ORU^R40`,
        where: "MSH-9",
      },
      HL7_ERROR.UNSUPPORTED_MESSAGE_TYPE,
      context,
    );
  }
  if (h.triggerEvent !== "R01" && h.triggerEvent !== "R40" && h.triggerEvent !== "") {
    return reject(
      message,
      {
        code: "HL7_UNSUPPORTED_EVENT",
        message: `unsupported trigger event ${clip(type)}: this interface takes ORU^R01 and ORU^R40`,
        where: "MSH-9.2",
      },
      HL7_ERROR.UNSUPPORTED_EVENT,
      context,
    );
  }
  if (!message.segments.some((s) => s.name === "OBX")) {
    // IHE PCD TF-2 (PCD-01, PCD-04 static definitions) requires the OBSERVATION group: an ORU
    // without any OBX has a required segment missing. HL7 v2.6 2.9.2 answers a message whose content
    // is in error AE, with HL7 table 0357 code 100 (segment sequence error: required segments missing).
    const error = {
      code: "HL7_NO_OBSERVATIONS",
      message: "the ORU message has no OBX segment: nothing was observed, nothing stored",
      where: "OBX",
    };
    return {
      ok: false,
      error,
      reply: ack(message, "AE", context, { code: HL7_ERROR.SEGMENT_SEQUENCE, text: error.message, where: error.where }),
    };
  }
  const { events, notices } = eventsFromOru(
    message,
    h.triggerEvent === "R40" ? "R40" : "R01",
    mapping(options, context),
  );
  return {
    ok: true,
    events,
    messageId: h.controlId || undefined,
    notices,
    accept: ack(message, "AA", context),
    refuse: (reason: string) => ack(message, "AE", context, { code: HL7_ERROR.APPLICATION_INTERNAL, text: reason }),
  };
}

/**
 * MSH-9 quoted in an error only when it looks like a message type (ADT^A01): in a mangled message
 * it could hold anything, patient data included.
 */
function clip(type: string): string {
  return /^[A-Z][A-Z0-9]{2}(\^[A-Z0-9]{3})?$/.test(type) ? type : "(not shown)";
}

/**
 * A monitor sending to a port no device listens on, seen by the pairing page by its MLLP start block:
 * MSH-3 and MSH-4 say who it is, its observations are decoded for the preview, and each message is
 * answered AE with the watch's reason (HL7 v2.5 2.9.2: application error, the message was not
 * processed; the sender keeps it and sends it again), never AA. Paired as it is: listening on that port.
 */
const unpairedMonitor: SenderDetection = {
  protocol: "hl7",
  name: "HL7/MLLP",
  opens: (first) => first === MLLP_START,
  listen(port) {
    const options = hl7Pcd01Options.parse({ port });
    const framer = mllpFramer({ maxFrameBytes: options.maxFrameBytes });
    return {
      hear(chunk, context) {
        const heard: SenderHeard[] = [];
        for (const r of framer.push(chunk)) {
          if (!("frame" in r)) continue; // bytes between frames; the watch's byte cap bounds a sender that only sends those
          const parsed = parseHl7(r.frame, { defaultCharset: options.charset });
          if (!parsed.ok && parsed.error.code === "HL7_EMPTY") continue;
          const header = parsed.ok ? parsed.message.header : parsed.header;
          if (header.messageCode === "ACK") continue; // acknowledging an acknowledgement would start a loop
          const app = header.sendingApplication.trim();
          const facility = header.sendingFacility.trim();
          const exchange = handleHl7(r.frame, options, context);
          const events = exchange.ok ? exchange.events : [];
          const model = events.find((e) => e.model)?.model;
          heard.push({
            who: app ? `${app}|${facility}` : undefined,
            identity: {
              ...(app ? { sendingApplication: app } : {}),
              ...(facility ? { sendingFacility: facility } : {}),
              ...(model ? { model } : {}),
            },
            events,
            pairWith: { port },
            reply: ack(header, "AE", context, { code: HL7_ERROR.APPLICATION_INTERNAL, text: context.reason }),
          });
        }
        return heard;
      },
    };
  },
};

export const hl7Pcd01 = defineDriver<Hl7Pcd01Options>({
  id: "hl7-pcd01",
  kind: "monitor",
  sends: ["vitals", "alarm"],
  title: { en: "Patient monitor, HL7 v2 / IHE PCD-01 over MLLP", zh: "监护仪 HL7 v2（IHE PCD-01，MLLP）" },
  options: hl7Pcd01Options,
  labels: {
    mode: {
      zh: "连接方式",
      en: "Connection",
      helpZh: "listen：监护仪（或中央站）连到本机，最常见；connect：本机去连接设备或串口服务器。",
    },
    host: {
      zh: "地址",
      en: "Address",
      helpZh: "listen 时本机监听的地址（默认 0.0.0.0，所有网卡）；connect 时要连接的设备地址（必填）。",
    },
    port: { zh: "TCP 端口", en: "TCP port", helpZh: "HL7 的 TCP 端口；2575 是 HL7 的注册端口。" },
    maxFrameBytes: {
      zh: "最大消息（字节）",
      en: "Largest message (bytes)",
      helpZh: "超过这个大小的 HL7 消息回复 AR 并跳过。",
    },
    charset: {
      zh: "字符集",
      en: "Character set",
      helpZh: "消息没有 MSH-18 时所用的字符集：HL7 表 0211 的名称（UNICODE UTF-8、GB 18030-2000、8859/1）。",
    },
    timezone: {
      zh: "设备时区",
      en: "Device time zone",
      helpZh: "设备发来不带 UTC 偏移的时间时，其时钟所在的时区，例如 Asia/Shanghai 或 +08:00。",
    },
    codeMap: {
      zh: "厂商代码对照",
      en: "Vendor code map",
      helpZh: "厂商自定义的 OBX-3 代码对应的 MDC 术语（见设备的接口手册）。",
    },
    noValue: {
      zh: "“无值”标记",
      en: "No-value markers",
      helpZh: "设备用来表示“没有数值”的 OBX-5 值（例如 -999，见其接口手册），按缺值处理。",
    },
  },
  transport(options) {
    return options.mode === "connect"
      ? { type: "tcp-connect", host: options.host!, port: options.port }
      : { type: "tcp-listen", host: options.host ?? "0.0.0.0", port: options.port };
  },
  framer(options) {
    return mllpFramer({ maxFrameBytes: options.maxFrameBytes });
  },
  handle: handleHl7,
  /**
   * An oversized frame is answered AR (error 207) with an empty MSA-2: we could not keep the
   * message to read its control id, but a sender waiting for its ACK learns the message was
   * rejected rather than timing out and sending the same oversized message again. Garbage and
   * abandoned frames get no reply: there is no message to answer.
   */
  rejectFrame(error, options, context) {
    if (error.code !== "MLLP_OVERSIZE") return undefined;
    return ack(undefined, "AR", context, {
      code: HL7_ERROR.APPLICATION_INTERNAL,
      text: `message larger than ${options.maxFrameBytes} bytes`,
    });
  },
  captureFramer(options) {
    return hl7CaptureFramer({ maxFrameBytes: options.maxFrameBytes });
  },
  sender: unpairedMonitor,
  simulator: () => import("./simulator.ts").then((m) => m.simulator),
});
