// ASTM E1381 (link layer) and E1394 / LIS2-A2 (records) for point-of-care and laboratory analysers.
// Pure: bytes in, actions and records out.
export {
  STX,
  ETX,
  EOT,
  ENQ,
  ACK,
  NAK,
  ETB,
  CR,
  LF,
  ASTM_MAX_FRAME,
  ASTM_DEFAULT_MAX_FRAME_BYTES,
  astmChecksum,
  encodeAstmFrame,
  encodeAstmMessage,
  parseAstmFrame,
  astmFrameSplitter,
} from "./frame.ts";
export type { AstmFrame, AstmFrameResult, AstmFrameSplitterOptions } from "./frame.ts";
export {
  astmReceiver,
  SOH,
  ASTM_RECEIVER_TIMEOUT_MS,
  ASTM_SENDER_REPLY_TIMEOUT_MS,
  ASTM_MAX_ATTEMPTS,
} from "./link.ts";
export type { AstmAction, AstmLinkState, AstmReceiver, AstmReceiverOptions } from "./link.ts";
export {
  parseAstmMessage,
  astmField,
  astmRepeats,
  astmHeader,
  astmPatient,
  astmOrder,
  astmResult,
  astmComment,
  astmTerminator,
  astmQuery,
  astmManufacturer,
  ASTM_RECORD_TYPES,
} from "./records.ts";
export type {
  AstmDelimiters,
  AstmField,
  AstmRecord,
  AstmMessage,
  AstmMessageResult,
  AstmHeader,
  AstmPatient,
  AstmOrder,
  AstmResult,
  AstmComment,
  AstmTerminator,
  AstmQuery,
  AstmManufacturer,
} from "./records.ts";
