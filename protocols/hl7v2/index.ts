// HL7 v2: message syntax, character sets, time stamps, acknowledgements, capture files. Pure.
export {
  DEFAULT_DELIMITERS,
  Hl7Segment,
  emptyHeader,
  escapeHl7,
  parseHl7,
  readHl7Header,
  segmentsNamed,
  unescapeHl7,
} from "./message.ts";
export type { Hl7Delimiters, Hl7Header, Hl7Message, Hl7ParseOptions, Hl7ParseResult } from "./message.ts";
export { HL7_ERROR, buildAck, buildAckText, errorLocation } from "./ack.ts";
export type { AckCode, AckError, AckOptions } from "./ack.ts";
export { charsetEncoding, decodeText, encodeText, isSupportedCharset } from "./charset.ts";
export { formatHl7Time, parseHl7Time, parseUtcOffset, type AssumedOffset } from "./time.ts";
export type { Hl7Time } from "./time.ts";
export { hl7CaptureFramer } from "./capture.ts";
export type { Hl7CaptureFramer } from "./capture.ts";
