// The ECG file formats this build reads, told apart by content, each with its decoder: what an ECG
// cart's driver does with a file, and what `vitalgate decode --aecg/--svg` reads again to export one.
// Pure: bytes in, a normalized ECG (./index.ts) out.
import { decodeDicomEcg } from "../dicom-ecg/index.ts";
import { decodeGeMuse } from "../ge-muse/index.ts";
import { decodeHl7Aecg } from "../hl7-aecg/index.ts";
import { decodePhilipsEcg } from "../philips-ecg/index.ts";
import { decodeScpEcg, looksLikeScpEcg } from "../scp-ecg/index.ts";
import type { EcgDecodeResult, EcgFormat } from "./index.ts";

export const ECG_FILE_FORMATS: readonly EcgFormat[] = ["dicom-ecg", "hl7-aecg", "philips-xml", "ge-muse", "scp-ecg"];

/**
 * Which format a file is, from its content (never its name): DICOM's "DICM" at 128, SCP-ECG's record
 * length and section 0 header, else the XML document element.
 */
export function sniffEcgFormat(bytes: Uint8Array): EcgFormat | undefined {
  if (bytes.length > 132 && Buffer.from(bytes.subarray(128, 132)).toString("latin1") === "DICM") return "dicom-ecg";
  if (looksLikeScpEcg(bytes)) return "scp-ecg";
  // XML may be UTF-16 (PhilipsECG 1.04): look at the first kilobyte with the NULs taken out.
  const head = Buffer.from(bytes.subarray(0, 2048)).toString("latin1").replace(/\0/g, "");
  if (/<(\w+:)?AnnotatedECG[\s>]/.test(head)) return "hl7-aecg";
  if (/<restingecgdata[\s>]/.test(head)) return "philips-xml";
  if (/<RestingECG[\s>]/.test(head)) return "ge-muse";
  return undefined;
}

/** The decoder of each format, by name. */
export function decodeEcgFile(format: EcgFormat, bytes: Uint8Array): EcgDecodeResult {
  switch (format) {
    case "dicom-ecg":
      return decodeDicomEcg(bytes);
    case "hl7-aecg":
      return decodeHl7Aecg(bytes);
    case "philips-xml":
      return decodePhilipsEcg(bytes);
    case "ge-muse":
      return decodeGeMuse(bytes);
    case "scp-ecg":
      return decodeScpEcg(bytes);
  }
}
