// Resting 12-lead ECG carts: files in DICOM waveform, HL7 aECG, Philips SierraECG/PhilipsECG XML,
// GE MUSE XML or SCP-ECG (EN 1064),
// dropped into a watched folder (the cart's export share or a USB copy), or DICOM objects a cart
// pushes to us over the network (C-STORE, answered only once committed). Each file becomes one
// ecg12 event (priority 0: it overtakes any backlog) with the decoded leads, and the file itself
// travels after it in chunks, its SHA-256 in the event. An ECG that fails validation is still sent,
// flagged with its warnings: a cardiologist may still read it; only a file no decoder can read is
// refused (moved to rejected/ with the reason).
import { z } from "zod";
import { defineDriver, type Exchange, type FrameContext } from "../../src/devices/driver.ts";
import type { SenderDetection } from "../../src/devices/sender.ts";
import {
  ASSOCIATE_RJ_TRANSIENT,
  ASSOCIATE_RQ_HEAD_BYTES,
  A_ASSOCIATE_RQ,
  associateRqTitles,
} from "../../protocols/dicom-ul/index.ts";
import { placeLocalTime, zoneOffsetMinutes } from "../../src/time/zone.ts";
import type { CodecError } from "../../protocols/codec.ts";
import { decodeEcgFile, sniffEcgFormat } from "../../protocols/ecg/files.ts";
import type { EcgFormat } from "../../protocols/ecg/index.ts";
import { ecg12Body } from "../../src/events/ecg12.ts";

export const ecgCartOptions = z
  .strictObject({
    source: z
      .enum(["folder", "dicom"])
      .default("folder")
      .describe("folder: the cart writes files into `dir`; dicom: the cart sends them to us by DICOM C-STORE."),
    dir: z
      .string()
      .min(1)
      .optional()
      .describe(
        "With source folder: the folder the cart exports to (or a USB copy lands in). done/ and rejected/ are made inside it.",
      ),
    format: z
      .enum(["auto", "dicom-ecg", "hl7-aecg", "philips-xml", "ge-muse", "scp-ecg"])
      .default("auto")
      .describe("File format; auto tells them apart by content."),
    stableMs: z
      .int()
      .min(0)
      .max(600_000)
      .default(2000)
      .describe("With source folder: a file is taken once its size and time have not changed for this long (ms)."),
    scanMs: z
      .int()
      .min(50)
      .max(60_000)
      .default(1000)
      .describe("With source folder: how often the folder is looked at (ms)."),
    maxSettleMs: z
      .int()
      .min(1000)
      .max(86_400_000)
      .default(600_000)
      .describe(
        "With source folder: a file still changing this long after it appeared is no finished export: it is set aside in rejected/ (ms).",
      ),
    host: z.string().min(1).default("0.0.0.0").describe("With source dicom: address to listen on."),
    port: z
      .int()
      .min(1)
      .max(65535)
      .default(11112)
      .describe(
        "With source dicom: port to listen on. 11112 is DICOM's registered unprivileged port; 104 needs root or CAP_NET_BIND_SERVICE, which the service does not have.",
      ),
    aeTitle: z
      .string()
      .regex(/^[\x20-\x5b\x5d-\x7e]{1,16}$/, { message: "1-16 printable ASCII characters, no backslash" })
      .default("VITALGATE")
      .describe("With source dicom: our AE title, which the cart must call."),
    callingAeTitles: z
      .array(z.string().min(1).max(16))
      .optional()
      .describe("With source dicom: the carts' AE titles let in; any when absent."),
    timezone: z
      .string()
      .refine((s) => zoneOffsetMinutes(s, 0) !== undefined, {
        message: 'a time zone like "Asia/Shanghai" or a UTC offset like "+08:00"',
      })
      .optional()
      .describe(
        'Time zone of the cart\'s clock for acquisition times written without a UTC offset (an IANA name like "Asia/Shanghai", or "+08:00"). Default: the box\'s time.zone.',
      ),
  })
  .superRefine((o, ctx) => {
    if (o.source === "folder" && o.dir === undefined)
      ctx.addIssue({ code: "custom", path: ["dir"], message: "the folder to watch is required with source folder" });
  });
export type EcgCartOptions = z.infer<typeof ecgCartOptions>;

/** Largest file taken from the folder: the decoders' own input limit (protocols/ecg DEFAULT_LIMITS). */
const MAX_FILE_BYTES = 64 * 1024 * 1024;

/** Media types of the original files; SCP-ECG has none registered, so it travels as bytes. */
const CONTENT_TYPE: Readonly<Record<EcgFormat, string>> = {
  "dicom-ecg": "application/dicom",
  "hl7-aecg": "application/xml",
  "philips-xml": "application/xml",
  "ge-muse": "application/xml",
  "scp-ecg": "application/octet-stream",
};

export function handleEcgFile(bytes: Uint8Array, options: EcgCartOptions, context?: FrameContext): Exchange {
  const format = options.format === "auto" ? sniffEcgFormat(bytes) : options.format;
  if (!format) {
    const error: CodecError = {
      code: "ECG_UNKNOWN_FORMAT",
      message: "not a DICOM waveform, HL7 aECG, Philips ECG XML, GE MUSE XML or SCP-ECG file",
      where: 0,
    };
    return { ok: false, error };
  }
  const result = decodeEcgFile(format, bytes);
  if (!result.ok) return { ok: false, error: result.error };
  const ecg = result.ecg;
  // A local acquisition time without an offset is read in the cart's zone, else the box's.
  const zone = options.timezone ?? context?.timeZone;
  if (ecg.acquiredAt === undefined && ecg.acquiredAtRaw !== undefined && zone !== undefined)
    ecg.acquiredAt = placeLocalTime(ecg.acquiredAtRaw, zone);
  return {
    ok: true,
    events: [
      {
        kind: "ecg12",
        body: ecg12Body(ecg),
        deviceTime: ecg.acquiredAt,
        deviceTimeRaw: ecg.acquiredAtRaw,
        model: [ecg.device?.make, ecg.device?.model].filter(Boolean).join(" ") || undefined,
        serial: ecg.device?.serial,
        original: { contentType: CONTENT_TYPE[format], bytes },
      },
    ],
    messageId: ecg.instanceUid,
  };
}

/**
 * A cart pushing its ECG by DICOM to a port no device listens on, seen by the pairing page by its
 * A-ASSOCIATE-RQ: the called and calling AE titles are read from its fixed part, and the association
 * is rejected transient (PS3.8 §9.3.4: temporary congestion), so the cart keeps the ECG queued and
 * calls again. Paired as it is: source dicom on that port, with its titles.
 */
const unpairedCart: SenderDetection = {
  protocol: "dicom",
  name: "DICOM",
  opens: (first) => first === A_ASSOCIATE_RQ,
  listen(port) {
    let head = new Uint8Array(0);
    let answered = false;
    return {
      hear(chunk) {
        if (answered) return []; // the rest of the request is not read
        head = Buffer.concat([head, chunk]).subarray(0, ASSOCIATE_RQ_HEAD_BYTES);
        if (head.length < ASSOCIATE_RQ_HEAD_BYTES) return [];
        answered = true;
        const titles = associateRqTitles(head);
        if (!titles) return [{ notIt: "VG_PAIRING_UNKNOWN: a DICOM association request too short to be one" }];
        const { called, calling } = titles;
        return [
          {
            who: calling || undefined,
            identity: { calledAeTitle: called, callingAeTitle: calling },
            pairWith: {
              source: "dicom",
              port,
              ...(called ? { aeTitle: called } : {}),
              ...(calling ? { callingAeTitles: [calling] } : {}),
            },
            // the requestor closes the transport after an A-ASSOCIATE-RJ (PS3.8 §9.1.3); ending ours too
            reply: ASSOCIATE_RJ_TRANSIENT,
            end: true,
          },
        ];
      },
    };
  },
};

export const ecgCart = defineDriver<EcgCartOptions>({
  id: "ecg-cart",
  kind: "ecg-cart",
  sends: ["ecg12"],
  title: {
    en: "12-lead ECG cart (DICOM, HL7 aECG, Philips XML, GE MUSE XML, SCP-ECG files)",
    zh: "十二导联心电图机（DICOM、HL7 aECG、飞利浦 XML、GE MUSE XML、SCP-ECG 文件）",
  },
  options: ecgCartOptions,
  labels: {
    source: {
      zh: "来源",
      en: "Source",
      helpZh: "folder：心电图机把文件写进一个文件夹；dicom：心电图机用 DICOM C-STORE 发给本机。",
    },
    dir: {
      zh: "文件夹",
      en: "Folder",
      helpZh:
        "来源为 folder 时：心电图机导出（或 U 盘拷入）的文件夹，须在管理员允许的目录下；其中会建 done/ 和 rejected/。",
    },
    format: { zh: "文件格式", en: "File format", helpZh: "auto 按内容自动识别。" },
    stableMs: {
      zh: "写完判定（毫秒）",
      en: "Settled after (ms)",
      helpZh: "来源为 folder 时：文件大小和时间这么久不变，才当作写完收取。",
    },
    scanMs: { zh: "扫描间隔（毫秒）", en: "Scan every (ms)", helpZh: "来源为 folder 时：多久查看一次文件夹。" },
    maxSettleMs: {
      zh: "最长写入（毫秒）",
      en: "Longest write (ms)",
      helpZh: "来源为 folder 时：出现后这么久仍在变化的文件不是正常导出，移到 rejected/。",
    },
    host: { zh: "监听地址", en: "Listen address", helpZh: "来源为 dicom 时：本机监听的地址（0.0.0.0 为所有网卡）。" },
    port: {
      zh: "DICOM 端口",
      en: "DICOM port",
      helpZh: "来源为 dicom 时：本机监听的端口；11112 是 DICOM 的注册端口（104 需要 root 权限）。",
    },
    aeTitle: { zh: "本机 AE 名称", en: "Our AE title", helpZh: "来源为 dicom 时：心电图机发送时要呼叫的 AE Title。" },
    callingAeTitles: {
      zh: "允许的心电图机 AE 名称",
      en: "Carts let in (AE titles)",
      helpZh: "来源为 dicom 时：只接收这些 AE Title 的心电图机；不填则都接收。",
    },
    timezone: {
      zh: "设备时区",
      en: "Device time zone",
      helpZh: "心电图写入不带 UTC 偏移的采集时间时，心电图机时钟所在的时区，例如 Asia/Shanghai。",
    },
  },
  transport: (o) =>
    o.source === "dicom"
      ? { type: "dicom-scp", host: o.host, port: o.port, aeTitle: o.aeTitle, callingAeTitles: o.callingAeTitles }
      : {
          type: "folder",
          dir: o.dir!,
          stableMs: o.stableMs,
          scanMs: o.scanMs,
          maxBytes: MAX_FILE_BYTES,
          maxSettleMs: o.maxSettleMs,
        },
  sender: unpairedCart,
  handle: (bytes, options, context) => handleEcgFile(bytes, options, context),
});
