// How a driver recognises its device among the unpaired senders the pairing page shows
// (src/pairing/senders.ts): a monitor set up to send HL7 to "the box", a cart sending its ECG by DICOM,
// connects before anyone has told the box about it. The watch listens on the ports no device uses and
// hands each connection to the driver whose protocol its first byte opens; the driver reads who the
// sender is and what it says, and refuses its data the way its protocol makes the sender keep it and
// try again later: nothing is stored, so nothing may be acknowledged. Pure, like a session: bytes in,
// what was heard and the bytes to answer out; the watch owns the socket, the bounds and the list.
import type { FrameContext } from "./frame-context.ts";
import type { EventDraft } from "../events/model.ts";

export interface SenderDetection {
  /** What the pairing page calls the protocol (its strings have `protocol.<this>`): "hl7", "dicom". */
  protocol: string;
  /** The protocol's name for the log, when a connection is no one's: "HL7/MLLP", "DICOM". */
  name: string;
  /** Whether a connection's first byte opens this protocol (MLLP's start block, an A-ASSOCIATE-RQ's PDU type). */
  opens(first: number): boolean;
  /** A listener for one unpaired connection to our TCP `port`. */
  listen(port: number): SenderListener;
}

/** What the watch tells a listener besides the bytes: the time, and the words to refuse with. */
export interface SenderContext extends FrameContext {
  /** Why the data is refused, for protocols that carry a text (HL7 MSA-3, ERR-8). */
  reason: string;
}

export interface SenderListener {
  /** The sender's next bytes: what they showed (none until a message is complete). */
  hear(chunk: Uint8Array, context: SenderContext): SenderHeard[];
}

/** One message, association, bid or burst heard from an unpaired sender. */
export interface SenderHeard {
  /** Who it says it is, as the watch keys it (MSH-3 and MSH-4, the calling AE title); none: known by its address. */
  who?: string;
  /** Its identity as the page shows it (HL7 sendingApplication, model; DICOM AE titles). Never patient data. */
  identity?: Record<string, string>;
  /** How many messages (or associations, bids, sentences) this was; default 1. */
  messages?: number;
  /** Events decoded from it, for the page's preview. */
  events?: EventDraft[];
  /** The driver's options to pair it with, when the driver fits it as it is set up. */
  pairWith?: Record<string, unknown>;
  /** What to do when the driver does not fit it as it is set up (a GPS behind a serial server in client mode). */
  note?: string;
  /** The refusal that makes the sender keep its data and come back (HL7 AE, ASTM NAK, DICOM A-ASSOCIATE-RJ). */
  reply?: Uint8Array;
  /** Close the connection after the reply (DICOM: the requestor closes after a rejection). */
  end?: true;
  /** Not this protocol after all: the connection is turned out, this the reason. */
  notIt?: string;
}
