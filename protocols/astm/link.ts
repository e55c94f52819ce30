// ASTM E1381 (CLSI LIS1-A) low-level protocol, receiver side, as a pure state machine.
//
// Bytes in, actions out; the caller writes the replies, arms the timer the machine asks for
// (`timeoutMs`) and calls timeout() when it fires. No clocks, no I/O: every path is testable.
//
// Source: ASTM E1381-02 / CLSI LIS1-A §6:
//  - §6.2 establishment: the sender sends ENQ; the receiver answers ACK (ready). Contention (§6.2.7):
//    both sides sent ENQ; the instrument wins, the computer system (us) yields and answers the
//    instrument's next ENQ.
//  - §6.3 transfer: each frame is answered ACK (accepted) or NAK (bad checksum, malformed); a frame
//    repeated with the number and text of the last accepted one (its ACK was lost) is ACKed again and
//    ignored (§6.3.4). Frame numbers run 1..7, 0, 1... (modulo 8), but real analysers restart them
//    at 1 for each message of a transfer or skip one, and the receivers they are sold with accept
//    that: a frame's checksum guards it, and a sender only moves on after our ACK, so a number out of
//    sequence loses nothing. It is accepted (and the repeat rule keeps a lost ACK from doubling it).
//  - Radiometer ABL9-style analysers over TCP send no E1381 link at all: each message is its records
//    (CR-separated) between SOH and EOT, no ENQ, no frames, no checksums, and the host answers one
//    ACK per message (as measured by a project that ran one: one SOH, one EOT and one ACK per message
//    over a month of traffic). In neutral, SOH starts such an envelope; its EOT completes the message.
//  - §6.4 termination: EOT ends the transfer; the line is neutral again.
//  - §6.5.1.2: the sender gives up a frame after 6 unsuccessful attempts; we stop NAKing after the
//    6th (ASTM_RETRIES_EXHAUSTED) and wait for EOT, so a NAK storm stays bounded.
//  - §6.5.2: timers: a receiver waiting for a frame or EOT gives up after 30 s, discards the
//    incomplete message and returns to neutral; a sender waits 15 s for a reply.
// Acknowledging after the commit (DESIGN.md §5): with holdFinalAck the ACK for a frame that completes
// a message (ETX) is withheld until the caller has stored it and calls confirm(true), or confirm(false)
// to NAK it (the sender will retransmit it, up to its retry limit).
import type { CodecError } from "../codec.ts";
import { ACK, CR, ENQ, EOT, ETB, ETX, LF, NAK, STX, ASTM_DEFAULT_MAX_FRAME_BYTES, parseAstmFrame } from "./frame.ts";

/** E1381 §6.5.2.2: the receiver's timer while waiting for a frame or EOT. */
export const ASTM_RECEIVER_TIMEOUT_MS = 30_000;
/** E1381 §6.5.2.1: the sender's timer while waiting for a reply (our deadline to confirm). */
export const ASTM_SENDER_REPLY_TIMEOUT_MS = 15_000;
/** E1381 §6.5.1.2: attempts per frame before the sender aborts. */
export const ASTM_MAX_ATTEMPTS = 6;

export type AstmAction =
  /** Write this control byte (ACK, NAK) to the line. */
  | { type: "send"; byte: number }
  /** A transfer began (ENQ answered). */
  | { type: "start" }
  /** A frame was accepted (not a repeat). */
  | { type: "frame"; number: number; text: Uint8Array; final: boolean }
  /** The frames since the last ETX form a message (their texts joined). With holdFinalAck, its ACK waits for confirm(). */
  | { type: "message"; text: Uint8Array; awaitingConfirm: boolean }
  /** EOT: the transfer ended. */
  | { type: "end" }
  /** Contention: we had sent ENQ and the instrument did too; we yield (§6.2.7). */
  | { type: "contention" }
  | { type: "error"; error: CodecError };

export type AstmLinkState = "neutral" | "enq-sent" | "receiving" | "envelope" | "confirming" | "aborted";

export interface AstmReceiverOptions {
  /** Withhold the ACK of a message's last frame until confirm(). Default false. */
  holdFinalAck?: boolean;
  maxFrameBytes?: number;
  /** Largest message (joined frame texts) held; beyond it the message is discarded with ASTM_OVERSIZE. Default 1 MiB. */
  maxMessageBytes?: number;
}

export interface AstmReceiver {
  push(chunk: Uint8Array): AstmAction[];
  /** The timer the machine asked for (timeoutMs) expired. */
  timeout(): AstmAction[];
  /** After a "message" with awaitingConfirm: true = stored, ACK it; false = NAK it. */
  confirm(stored: boolean): AstmAction[];
  /** Tell the machine we sent ENQ to start our own transfer (for contention, §6.2.7). */
  enqSent(): void;
  readonly state: AstmLinkState;
  /** Timer the caller should (re)arm now, ms; undefined = none. Re-read after every call. */
  readonly timeoutMs: number | undefined;
  /** Bytes held (the frame being received plus the message assembled so far). */
  readonly pending: number;
}

/** Start of heading: opens an ABL9-style SOH ... EOT message (no E1381 framing). */
export const SOH = 0x01;

const send = (byte: number): AstmAction => ({ type: "send", byte });

function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && a.length === b.length && a.every((x, i) => x === b[i]);
}
const err = (code: string, message: string, where?: number): AstmAction => ({
  type: "error",
  error: where === undefined ? { code, message } : { code, message, where },
});

export function astmReceiver(options: AstmReceiverOptions = {}): AstmReceiver {
  const maxFrame = options.maxFrameBytes ?? ASTM_DEFAULT_MAX_FRAME_BYTES;
  const maxMessage = options.maxMessageBytes ?? 1024 * 1024;
  const hold = options.holdFinalAck ?? false;

  let state: AstmLinkState = "neutral";
  let frame: number[] = []; // bytes of the frame being received, from STX
  let inFrame = false;
  let frameOversize = false;
  let afterEnd = -1; // bytes after ETX/ETB (C1 C2 CR)
  let lastAccepted = 0; // frame number of the last accepted frame; the first expected is 1
  let lastText: Uint8Array | undefined; // its text: a repeat has both
  let anyAccepted = false;
  /** The message of an SOH ... EOT envelope being received, and whether it outgrew maxMessage. */
  let envelope: number[] = [];
  let envelopeOversize = false;
  /** The message being confirmed came in an envelope: after the reply the line is neutral. */
  let confirmingEnvelope = false;
  let attempts = 0; // consecutive rejected frames
  let message: Uint8Array[] = [];
  let messageBytes = 0;
  let messageOversize = false;
  let garbage = false; // reported non-ASTM bytes in neutral, until the next ENQ
  let offset = 0;

  function resetTransfer(): void {
    frame = [];
    inFrame = false;
    frameOversize = false;
    afterEnd = -1;
    lastAccepted = 0;
    lastText = undefined;
    anyAccepted = false;
    attempts = 0;
    envelope = [];
    envelopeOversize = false;
    confirmingEnvelope = false;
    message = [];
    messageBytes = 0;
    messageOversize = false;
  }

  function discardIncomplete(out: AstmAction[], why: string): void {
    if (messageBytes > 0 || message.length > 0)
      out.push(
        err("ASTM_INCOMPLETE_MESSAGE", `a message of ${messageBytes} bytes was not finished (${why}); discarded`),
      );
    message = [];
    messageBytes = 0;
    messageOversize = false;
  }

  function reject(out: AstmAction[], e: CodecError): void {
    attempts++;
    out.push({ type: "error", error: e });
    if (attempts >= ASTM_MAX_ATTEMPTS) {
      out.push(
        err(
          "ASTM_RETRIES_EXHAUSTED",
          `${attempts} frames in a row were rejected (E1381 §6.5.1.2 allows ${ASTM_MAX_ATTEMPTS} attempts); the transfer is abandoned until EOT`,
        ),
      );
      discardIncomplete(out, "retries exhausted");
      state = "aborted";
      return;
    }
    out.push(send(NAK));
  }

  function frameDone(out: AstmAction[]): void {
    const bytes = Uint8Array.from(frame);
    frame = [];
    inFrame = false;
    afterEnd = -1;
    if (frameOversize) {
      frameOversize = false;
      reject(out, { code: "ASTM_OVERSIZE", message: `frame longer than ${maxFrame} bytes; NAKed` });
      return;
    }
    const r = parseAstmFrame(bytes);
    if (!r.ok) {
      reject(out, r.error);
      return;
    }
    const f = r.frame;
    if (anyAccepted && f.number === lastAccepted && sameBytes(lastText, f.text)) {
      // §6.3.4: the sender did not get our ACK and sent the frame again
      out.push(send(ACK));
      return;
    }
    // any other number, in sequence or not (a restart at 1, a skip): a new frame (see the header)
    attempts = 0;
    lastAccepted = f.number;
    lastText = f.text;
    anyAccepted = true;
    if (!messageOversize) {
      if (messageBytes + f.text.length > maxMessage) {
        messageOversize = true;
        out.push(err("ASTM_OVERSIZE", `message longer than ${maxMessage} bytes; discarded`));
        message = [];
        messageBytes = 0;
      } else {
        message.push(f.text);
        messageBytes += f.text.length;
      }
    }
    out.push({ type: "frame", number: f.number, text: f.text, final: f.final });
    if (!f.final) {
      out.push(send(ACK));
      return;
    }
    if (messageOversize) {
      messageOversize = false;
      out.push(send(ACK));
      return;
    }
    const text = new Uint8Array(messageBytes);
    let at = 0;
    for (const p of message) {
      text.set(p, at);
      at += p.length;
    }
    out.push({ type: "message", text, awaitingConfirm: hold });
    if (hold) {
      // keep the parts until confirm(): a NAK makes the sender retransmit the last frame only
      state = "confirming";
      return;
    }
    message = [];
    messageBytes = 0;
    out.push(send(ACK));
  }

  function receive(b: number, out: AstmAction[]): void {
    if (inFrame) {
      if (b === STX || b === EOT || b === ENQ) {
        // the frame was cut off: reject it, then act on the byte that cut it
        frame = [];
        inFrame = false;
        afterEnd = -1;
        frameOversize = false;
        if (b === STX) {
          reject(out, { code: "ASTM_TRUNCATED", message: "a frame was cut off by a new STX" });
          if (state !== "receiving") return;
          inFrame = true;
          frame = [b];
          return;
        }
        out.push(err("ASTM_TRUNCATED", `a frame was cut off by ${b === EOT ? "EOT" : "ENQ"}`, offset));
        receive(b, out);
        return;
      }
      if (
        afterEnd >= 0 &&
        afterEnd < 2 &&
        !((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66))
      ) {
        frame = [];
        inFrame = false;
        afterEnd = -1;
        reject(out, {
          code: "ASTM_NOT_ASTM",
          message: `ETX/ETB followed by byte 0x${b.toString(16).padStart(2, "0")}, not a two-digit hex checksum: the sender does not speak ASTM E1381`,
          where: offset,
        });
        return;
      }
      if (afterEnd < 0 && frame.length >= 2 && b !== ETX && b !== ETB && b < 0x20 && b !== CR && b !== 0x09) {
        // E1381 §6.3.1.2 forbids control characters in frame text: drop the frame now rather than
        // wait for an ETX that a non-ASTM sender will never send
        frame = [];
        inFrame = false;
        reject(out, {
          code: "ASTM_NOT_ASTM",
          message: `frame text holds control byte 0x${b.toString(16).padStart(2, "0")}, which E1381 §6.3.1.2 forbids: the sender does not speak ASTM E1381`,
          where: offset,
        });
        return;
      }
      if (frame.length === 1 && (b < 0x30 || b > 0x37)) {
        frame = [];
        inFrame = false;
        reject(out, {
          code: "ASTM_NOT_ASTM",
          message: `STX followed by byte 0x${b.toString(16).padStart(2, "0")}, not a frame number 0-7: the sender does not speak ASTM E1381`,
          where: offset,
        });
        return;
      }
      if (frame.length >= maxFrame) frameOversize = true;
      else frame.push(b);
      if (afterEnd < 0) {
        if (b === ETX || b === ETB) afterEnd = 0;
        return;
      }
      afterEnd++;
      // C1 C2 then CR (or LF alone: some analysers and captures end frames with LF)
      if (afterEnd === 3) frameDone(out);
      return;
    }
    if (b === STX) {
      inFrame = true;
      frame = [b];
      return;
    }
    if (b === EOT) {
      discardIncomplete(out, "EOT came first");
      out.push({ type: "end" });
      state = "neutral";
      resetTransfer();
      return;
    }
    if (b === ENQ) {
      // the sender restarted (it saw no reply to its EOT, or it timed out): a new transfer
      discardIncomplete(out, "a new ENQ came");
      resetTransfer();
      out.push(send(ACK), { type: "start" });
      return;
    }
    // LF after a frame's CR, or noise between frames: ignored (§6.3.1: the receiver looks for STX)
  }

  /** ENQ (answered ACK: an E1381 transfer) or SOH (no answer until its EOT: an envelope) starts afresh. */
  function begin(b: number, out: AstmAction[]): void {
    resetTransfer();
    if (b === ENQ) {
      state = "receiving";
      out.push(send(ACK), { type: "start" });
    } else {
      state = "envelope";
      out.push({ type: "start" });
    }
  }

  /** A byte of an SOH ... EOT message: text until EOT; SOH or ENQ start afresh, the message unfinished. */
  function inEnvelope(b: number, out: AstmAction[]): void {
    if (b === EOT) {
      const text = Uint8Array.from(envelope);
      const oversize = envelopeOversize;
      envelope = [];
      envelopeOversize = false;
      if (oversize || text.length === 0) {
        state = "neutral";
        out.push({ type: "end" });
        return;
      }
      out.push({ type: "message", text, awaitingConfirm: hold });
      if (hold) {
        state = "confirming";
        confirmingEnvelope = true;
        return;
      }
      state = "neutral";
      out.push(send(ACK), { type: "end" });
      return;
    }
    if (b === SOH || b === ENQ) {
      if (envelope.length > 0)
        out.push(
          err(
            "ASTM_INCOMPLETE_MESSAGE",
            `an SOH message of ${envelope.length} bytes was not finished (a new ${b === SOH ? "SOH" : "ENQ"} came before its EOT); discarded`,
          ),
        );
      begin(b, out);
      return;
    }
    if (envelopeOversize) return;
    if (envelope.length >= maxMessage) {
      envelopeOversize = true;
      envelope = [];
      out.push(err("ASTM_OVERSIZE", `SOH message longer than ${maxMessage} bytes; discarded`));
      return;
    }
    envelope.push(b);
  }

  return {
    get state() {
      return state;
    },
    get timeoutMs() {
      return state === "receiving" || state === "envelope" || state === "aborted"
        ? ASTM_RECEIVER_TIMEOUT_MS
        : state === "confirming"
          ? ASTM_SENDER_REPLY_TIMEOUT_MS
          : undefined;
    },
    get pending() {
      return frame.length + messageBytes + envelope.length;
    },
    enqSent(): void {
      if (state === "neutral") state = "enq-sent";
    },
    push(chunk: Uint8Array): AstmAction[] {
      const out: AstmAction[] = [];
      for (let i = 0; i < chunk.length; i++, offset++) {
        const b = chunk[i]!;
        switch (state) {
          case "neutral":
            if (b === ENQ || b === SOH) {
              garbage = false;
              begin(b, out);
            } else if (b !== EOT && b !== CR && b !== LF && b !== ACK && b !== NAK && !garbage) {
              // §6.2: in neutral only ENQ means anything. A device that sends data without ENQ does
              // not speak E1381 (or is mid-transfer after we lost the line): say so once.
              garbage = true;
              out.push(
                err(
                  "ASTM_NOT_ASTM",
                  `data without ENQ at byte ${offset} (${b === STX ? "an STX frame" : `byte 0x${b.toString(16).padStart(2, "0")}`}): the sender does not speak the ASTM E1381 link layer, or the transfer's start was lost; ignored until ENQ`,
                  offset,
                ),
              );
            }
            break;
          case "enq-sent":
            if (b === ENQ) {
              out.push({ type: "contention" });
              state = "neutral"; // the instrument repeats its ENQ (§6.2.7.1) and we answer that one
            } else if (b === ACK || b === NAK) {
              state = "neutral"; // the reply to our ENQ belongs to the sender side, not to this machine
            }
            break;
          case "receiving":
            receive(b, out);
            break;
          case "envelope":
            inEnvelope(b, out);
            break;
          case "confirming":
            // the sender waits for our reply; anything it sends now is out of turn, except EOT/ENQ
            // (or, after an SOH message, a new SOH)
            if (b === EOT || b === ENQ || (confirmingEnvelope && b === SOH)) {
              out.push(
                err(
                  "ASTM_UNCONFIRMED",
                  "the sender gave up waiting for the acknowledgement of a message; it will send it again",
                ),
              );
              if (confirmingEnvelope) {
                confirmingEnvelope = false;
                state = "neutral";
                if (b !== EOT) begin(b, out);
              } else {
                state = "receiving";
                receive(b, out);
              }
            }
            break;
          case "aborted":
            if (b === EOT) {
              out.push({ type: "end" });
              state = "neutral";
              resetTransfer();
            } else if (b === ENQ) {
              state = "receiving";
              resetTransfer();
              out.push(send(ACK), { type: "start" });
            }
            break;
        }
      }
      return out;
    },
    timeout(): AstmAction[] {
      const out: AstmAction[] = [];
      if (state === "envelope" && envelope.length > 0)
        out.push(
          err(
            "ASTM_INCOMPLETE_MESSAGE",
            `an SOH message of ${envelope.length} bytes had no EOT within 30 s; discarded`,
          ),
        );
      if (state === "receiving" || state === "envelope" || state === "aborted" || state === "confirming") {
        if (state === "confirming")
          out.push(err("ASTM_TIMEOUT", "no confirmation before the sender's 15 s limit; the sender will retransmit"));
        else out.push(err("ASTM_TIMEOUT", "no frame or EOT within 30 s (E1381 §6.5.2.2); the line is neutral again"));
        discardIncomplete(out, "timeout");
        state = "neutral";
        resetTransfer();
      } else if (state === "enq-sent") state = "neutral";
      return out;
    },
    confirm(stored: boolean): AstmAction[] {
      if (state !== "confirming") return [];
      if (confirmingEnvelope) {
        // one reply per SOH message, then the line is neutral; a NAK tells the analyser it was not kept
        confirmingEnvelope = false;
        state = "neutral";
        return [send(stored ? ACK : NAK), { type: "end" }];
      }
      state = "receiving";
      if (stored) {
        message = [];
        messageBytes = 0;
        return [send(ACK)];
      }
      // NAK makes the sender retransmit this last frame: forget it, so that it is accepted again
      const last = message.pop();
      messageBytes -= last?.length ?? 0;
      lastAccepted = (lastAccepted + 7) % 8;
      lastText = undefined;
      return [send(NAK)];
    },
  };
}
