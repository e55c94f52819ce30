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

export const ecgCart = defineDriver<EcgCartOptions>({
  id: "ecg-cart",
  kind: "ecg-cart",
  title: {
    en: "12-lead ECG cart (DICOM, HL7 aECG, Philips XML, GE MUSE XML, SCP-ECG files)",
    zh: "十二导联心电图机（DICOM、HL7 aECG、飞利浦 XML、GE MUSE XML、SCP-ECG 文件）",
  },
  options: ecgCartOptions,
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
  handle: (bytes, options, context) => handleEcgFile(bytes, options, context),
});
