// Blood-gas and other point-of-care analysers speaking ASTM E1381 (link layer) and E1394 / CLSI
// LIS2-A2 (records), on a serial port or through a serial server / over TCP.
//
// Bytes pass through as they come (no framer: ENQ, ACK and EOT are single bytes) into the pure E1381
// receiver of protocols/astm, one per connection. Its actions become Exchanges:
//  - ENQ, intermediate frames (ETB), and ETX frames that do not end an E1394 message: answered at
//    once, `{ ok: true, events: [], accept: ACK }` (NAK for a bad checksum or a malformed frame, as an
//    `ok: false` whose reply is the NAK, so the device's state shows why);
//  - the frame that completes a message (its text holds the terminator record L): its ACK is held
//    (astmReceiver holdFinalAck), the records become `lab` events, and the Exchange carries them with
//    `accept` = that ACK, which the core writes only once the events are committed, and `refuse` = a
//    NAK (the analyser sends the frame again later, up to its 6 attempts, E1381 §6.5.1.2). The
//    receiver is told which (confirm(true/false)) at that very moment: `accept` is read by the core
//    only when it writes the acknowledgement after the commit, so it is a getter that confirms;
//    `refuse` is called only when the store refused.
//  - records that arrive without a terminator before EOT (or a new ENQ) were acknowledged frame by
//    frame already: they are committed then, so nothing acknowledged is dropped.
// Timers (E1381 §6.5.2): tick() every second compares `context.nowMs` with the deadline the
// receiver asked for: 30 s for the next frame or EOT while receiving (§6.5.2.2; the transfer is then
// abandoned and the line neutral), 15 s while a final ACK is held (§6.5.2.1: the analyser's own wait
// for a reply; it will have given up and will retransmit).
//
// One `lab` event per order record (O): an order is one specimen (named by its descriptor O.16, a
// word in a result's R.3, or the analyser's sample-type result: it decides the LOINC system), and
// analysers that send several samples in one transfer repeat O. Results before any O form one event
// of their own. The event body is DESIGN.md §3's
// `{ analyzer, specimen?, results: [{ code, localCode, name, value, quality?, unit, flag?, refRange?, status, comments? }], unavailable? }`:
// `code` is the LOINC code when one verified fits (loinc.ts), else absent; `localCode` always the
// analyser's test id; no-value markers and qualified numbers as values.ts reads them; comment
// records travel with the result they follow. Patient records (P: names, birth dates, ids) are read past and never copied
// into events, logs or errors; DESIGN §3 gives lab events no patient.
//
// Radiometer ABL9-style analysers over TCP send each message as its records between SOH and EOT, with
// no E1381 link (protocols/astm/link.ts): the receiver reads those too, and the message's one ACK is
// held the same way until its events are committed (NAK when the store refuses them).
//
// Non-ASTM output (a mini VIDAS's or a Spotchem EL's own formats) is refused by the receiver with
// its reason (ASTM_NOT_ASTM: data without ENQ, STX not followed by a frame number, ...), once per
// transfer attempt, as an `ok: false` Exchange.
import { z } from "zod";
import { defineDriver } from "../../src/devices/driver.ts";
import type { DriverSession, Exchange, FrameContext } from "../../src/devices/driver.ts";
import type { SenderDetection } from "../../src/devices/sender.ts";
import type { EventDraft } from "../../src/events/model.ts";
import type { CodecError, FrameResult, Framer } from "../../protocols/codec.ts";
import {
  CR,
  ENQ,
  EOT,
  LF,
  NAK,
  astmComment,
  astmFrameSplitter,
  astmHeader,
  astmOrder,
  astmReceiver,
  astmResult,
  parseAstmMessage,
} from "../../protocols/astm/index.ts";
import type { AstmAction, AstmComment, AstmResult } from "../../protocols/astm/index.ts";
import { loincFor, specimenSystem, toUcum } from "./loinc.ts";
import { readResultValue, type ResultQuality } from "./values.ts";
import {
  SERIAL_LINE_LABELS,
  checkSerialLine,
  serialLine,
  serialLineOptions,
  serialLineTransport,
} from "../serial-line.ts";

const BAUD_RATES = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] as const;

export const astmAnalyzerOptions = z
  .strictObject({
    ...serialLine({
      device: "the analyser",
      source: "E1381 §5",
      baudRates: BAUD_RATES,
      baudRate: 9600,
      baudNote: "As set in the analyser's LIS / host settings (E1381 leaves it to the device; 9600 is the usual).",
      dataBits: 8,
      parity: "none",
      stopBits: 1,
      tcpAlso: "An analyser that speaks ASTM over TCP itself is reached the same way.",
    }),
    codeMap: z
      .record(
        z.string().min(1),
        z.strictObject({
          code: z
            .string()
            .regex(/^\d{1,7}-\d$/)
            .describe("LOINC code, e.g. 1960-4."),
          name: z.string().min(1).optional().describe("Display name for the result; default the analyser's test id."),
          unit: z.string().min(1).optional().describe("UCUM unit; overrides the unit the analyser sends."),
        }),
      )
      .optional()
      .describe(
        'The analyser\'s local test ids (the code in R.3, e.g. "HCO3-") → LOINC, added to and overriding the built-in table (drivers/astm-analyzer/loinc.ts) for this device.',
      ),
  })
  .superRefine(checkSerialLine);

export type AstmAnalyzerOptions = z.infer<typeof astmAnalyzerOptions>;

export interface LabResult {
  code?: string;
  localCode: string;
  name: string;
  value: number | string;
  /** How the number is qualified: off the reportable range (the true value is beyond it) or doubted. */
  quality?: ResultQuality;
  unit?: string;
  flag?: string;
  refRange?: string;
  status?: string;
  /** The comment records (C) that follow this result: what the analyser says about it. */
  comments?: string[];
}

export interface LabBody {
  analyzer: string;
  specimen?: string;
  results: LabResult[];
  /** Results the analyser sent without a value ("....." "***" ...), with the marker and its comments. */
  unavailable?: { localCode: string; name: string; marker: string; comments?: string[] }[];
}

const latin1 = (b: Uint8Array): string => {
  let s = "";
  for (let i = 0; i < b.length; i += 4096) s += String.fromCharCode(...b.subarray(i, i + 4096));
  return s;
};

/** A result record's test name as analysers name their sample type (the epoc sends "Sample type" as a result). */
const SAMPLE_TYPE = /^(sample|specimen) ?type$/i;

/** A comment record's text: its components, the code dropped when the text repeats it ("1009^1009: Unable..."). */
function commentText(c: AstmComment): string {
  const parts = c.text.map((t) => t.trim()).filter((t) => t !== "");
  if (parts.length > 1 && parts.slice(1).some((p) => p.startsWith(parts[0]!))) parts.shift();
  return parts.join(" ");
}

interface Group {
  specimen?: string;
  /** O.8 specimen collection time. */
  collectedAt?: string;
  results: { record: AstmResult; comments: string[] }[];
}

/**
 * The `lab` events of one E1394 message's text: one per order record. Returns the parse error when
 * the text is not E1394. Pure; used by the session and by tests.
 */
export function labEvents(
  text: Uint8Array | string,
  options: Pick<AstmAnalyzerOptions, "codeMap"> = {},
): { ok: true; events: EventDraft[]; messageId?: string } | { ok: false; error: CodecError } {
  const parsed = parseAstmMessage(text);
  if (!parsed.ok) return parsed;
  const records = parsed.message.records;
  const header = astmHeader(records[0]!);
  const analyzer =
    header.sender
      .slice(0, 2)
      .map((c) => c.trim())
      .filter((c) => c !== "")
      .join(" ") || "ASTM analyser";
  const model = header.sender[0]?.trim() || undefined;
  const serial = header.sender[2]?.trim() || undefined;
  const groups: Group[] = [];
  let current: Group | undefined;
  /** The record a comment (C) follows: comments travel with the result they explain, not others. */
  let last: Group["results"][number] | undefined;
  for (const r of records) {
    if (r.type === "O") {
      const o = astmOrder(r);
      groups.push(
        (current = { specimen: o.specimen[0]?.trim() || undefined, collectedAt: o.collectedAt, results: [] }),
      );
      last = undefined;
    } else if (r.type === "R") {
      if (!current) groups.push((current = { results: [] }));
      current.results.push((last = { record: astmResult(r), comments: [] }));
    } else if (r.type === "C") {
      // a comment after P or O (patient or order comments) is not copied: it may name the patient
      const t = commentText(astmComment(r));
      if (last && t !== "") last.comments.push(t);
    } else {
      last = undefined;
    }
  }
  const events: EventDraft[] = [];
  for (const g of groups) {
    const body = labBody(analyzer, g, options);
    if (body.results.length === 0 && !body.unavailable) continue;
    const draft: EventDraft = { kind: "lab", body };
    // When it was measured: the specimen's collection (O.8), else the results' own start (R.12) or
    // completion (R.13), and only then the header's time of sending (H.14), which may be hours later
    // (an analyser sending a stored result). E1394 times carry no zone (the analyser's local clock).
    const raw =
      g.collectedAt ??
      g.results.map((x) => x.record.startedAt ?? x.record.completedAt).find((t) => t !== undefined) ??
      header.timestamp;
    if (raw) draft.deviceTimeRaw = raw;
    if (model) draft.model = model;
    if (serial) draft.serial = serial;
    events.push(draft);
  }
  // The message's identity, H.3, when the analyser fills it in (many leave it empty).
  return { ok: true, events, messageId: header.controlId };
}

/** One order's results, mapped: the specimen from the message (never assumed), a test by any of its names. */
function labBody(analyzer: string, g: Group, options: Pick<AstmAnalyzerOptions, "codeMap">): LabBody {
  const sampleType = g.results.find((x) => SAMPLE_TYPE.test(x.record.test ?? ""))?.record.value?.trim();
  // O.16 when it names a specimen; the epoc sends "1" there and its sample type as a result
  const specimen = [g.specimen, sampleType].find((x) => specimenSystem(x) !== undefined) ?? sampleType ?? g.specimen;
  const results: LabResult[] = [];
  const unavailable: NonNullable<LabBody["unavailable"]> = [];
  for (const { record: res, comments } of g.results) {
    // R.3 from component 4 on: the local code, and on some analysers a name or the sample's type in a later component
    const names = res.testId
      .slice(3)
      .map((c) => c.trim())
      .filter((c) => c !== "");
    const localCode = names[0];
    if (localCode === undefined) continue;
    const system =
      names.map((n) => specimenSystem(n)).find((x) => x !== undefined && x !== "other") ?? specimenSystem(specimen);
    const sentUnit = toUcum(res.units);
    const mappedName = names.find((n) => options.codeMap?.[n] !== undefined);
    const mapped = mappedName === undefined ? undefined : options.codeMap![mappedName];
    const builtIn = mapped ? undefined : names.map((n) => loincFor(n, sentUnit, system)).find((x) => x !== undefined);
    const name = mapped?.name ?? builtIn?.analyte.name ?? localCode;
    const read = readResultValue(res.value, res.abnormalFlag);
    if (read.absent) {
      unavailable.push({ localCode, name, marker: read.marker, ...(comments.length > 0 ? { comments } : {}) });
      continue;
    }
    const unit = mapped?.unit ?? sentUnit ?? (builtIn?.term?.units.includes("[pH]") ? "[pH]" : undefined);
    const result: LabResult = {
      ...(mapped ? { code: mapped.code } : builtIn?.term ? { code: builtIn.term.code } : {}),
      localCode,
      name,
      value: read.value,
    };
    if (read.quality) result.quality = read.quality;
    if (unit !== undefined) result.unit = unit;
    if (res.abnormalFlag !== undefined) result.flag = res.abnormalFlag;
    if (res.referenceRange !== undefined) result.refRange = res.referenceRange;
    if (res.status !== undefined) result.status = res.status;
    if (comments.length > 0) result.comments = comments;
    results.push(result);
  }
  return { analyzer, ...(specimen ? { specimen } : {}), results, ...(unavailable.length > 0 ? { unavailable } : {}) };
}

const bytesOf = (actions: AstmAction[]): number[] => actions.flatMap((a) => (a.type === "send" ? [a.byte] : []));

/** Most telling error first: the sender is not ASTM at all, a transfer given up, else the first reported. */
function pickError(errors: CodecError[]): CodecError {
  return (
    errors.find((e) => e.code === "ASTM_NOT_ASTM") ??
    errors.find((e) => e.code === "ASTM_RETRIES_EXHAUSTED") ??
    errors[0]!
  );
}

/** The terminator record L at the start of a line: the message is complete. */
function endsMessage(text: string): boolean {
  return /(^|[\r\n])[0-7]?L[^A-Za-z0-9]/.test(text);
}

/** Records acknowledged before a terminator, held at most this long (bytes); beyond, dropped with an error. */
const MAX_HELD_TEXT = 1024 * 1024;
/** Bytes that followed a held final frame in the same chunk (an analyser that did not wait for our ACK). */
const MAX_LEFTOVER = 64 * 1024;

export function astmAnalyzerSession(options: AstmAnalyzerOptions): DriverSession {
  const rx = astmReceiver({ holdFinalAck: true });
  /** Texts of ETX messages of the transfer that are not yet a complete E1394 message. */
  let parts: string[] = [];
  let partsBytes = 0;
  let leftover: Uint8Array | undefined;
  let deadline: number | undefined;
  let lastNow = 0;
  /** A held final ACK, not yet resolved by the core. */
  let held: { resolve(stored: boolean): number[] } | undefined;

  const arm = (now: number) => {
    const t = rx.timeoutMs;
    deadline = t === undefined ? undefined : now + t;
  };

  /** Records acknowledged without a terminator (EOT, a new ENQ, a timeout came first): commit them anyway. */
  function flush(events: EventDraft[], errors: CodecError[]): void {
    if (parts.length === 0) return;
    const r = labEvents(parts.join(""), options);
    parts = [];
    partsBytes = 0;
    if (r.ok) events.push(...r.events);
    else errors.push(r.error);
  }

  return {
    tickMs: 1000,
    handle(frame: Uint8Array, context: FrameContext): Exchange {
      lastNow = context.nowMs;
      // the core resolves a held ACK before it hands over the next chunk; if it did not, it was accepted
      held?.resolve(true);
      let bytes = frame;
      if (leftover) {
        bytes = new Uint8Array(leftover.length + frame.length);
        bytes.set(leftover);
        bytes.set(frame, leftover.length);
        leftover = undefined;
      }
      const sends: number[] = [];
      const errors: CodecError[] = [];
      const events: EventDraft[] = [];
      let hold: { events: EventDraft[]; messageId?: string; before: string[]; beforeBytes: number } | undefined;
      let at = 0;
      // Push up to each CR/LF (a frame ends there), so that bytes after a held final frame stay unread.
      while (at < bytes.length && !hold) {
        let end = at;
        while (end < bytes.length - 1 && bytes[end] !== CR && bytes[end] !== LF) end++;
        const actions = rx.push(bytes.subarray(at, end + 1));
        at = end + 1;
        for (const a of actions) {
          if (a.type === "send") sends.push(a.byte);
          else if (a.type === "error") errors.push(a.error);
          else if (a.type === "start" || a.type === "end") flush(events, errors);
          else if (a.type === "message") {
            const text = latin1(a.text);
            const before = parts;
            const beforeBytes = partsBytes;
            if (partsBytes + text.length > MAX_HELD_TEXT) {
              errors.push({
                code: "ASTM_OVERSIZE",
                message: `records without a terminator exceed ${MAX_HELD_TEXT} bytes; discarded`,
              });
              parts = [];
              partsBytes = 0;
            }
            parts = [...parts, text];
            partsBytes += text.length;
            if (!endsMessage(text)) {
              sends.push(...bytesOf(rx.confirm(true)));
              continue;
            }
            const r = labEvents(parts.join(""), options);
            parts = [];
            partsBytes = 0;
            if (!r.ok || r.events.length === 0) {
              // nothing to store: acknowledged at once (a NAK would only make it come again, unchanged)
              if (!r.ok) errors.push(r.error);
              sends.push(...bytesOf(rx.confirm(true)));
              continue;
            }
            hold = { events: r.events, messageId: r.messageId, before, beforeBytes };
          }
        }
      }
      if (hold) {
        if (at < bytes.length) leftover = bytes.slice(at, at + MAX_LEFTOVER);
        const h = hold;
        const prior = sends;
        let answered: Uint8Array | undefined;
        const answer = (stored: boolean): Uint8Array => {
          if (answered) return answered;
          held = undefined;
          const b = bytesOf(rx.confirm(stored));
          if (!stored) {
            // the analyser sends the final frame again: the records before it are still ours to join
            parts = h.before;
            partsBytes = h.beforeBytes;
          }
          arm(lastNow);
          answered = Uint8Array.from([...prior, ...b]);
          return answered;
        };
        held = { resolve: (stored) => [...answer(stored)] };
        arm(context.nowMs);
        return {
          ok: true,
          events: [...events, ...h.events],
          messageId: h.messageId,
          // read by the core once the events are committed, to write it: the moment to confirm
          get accept(): Uint8Array {
            return answer(true);
          },
          refuse: () => answer(false),
        };
      }
      arm(context.nowMs);
      const reply = sends.length > 0 ? Uint8Array.from(sends) : undefined;
      if (errors.length > 0 && events.length === 0)
        return reply ? { ok: false, error: pickError(errors), reply } : { ok: false, error: pickError(errors) };
      return reply ? { ok: true, events, accept: reply } : { ok: true, events };
    },
    tick(context: FrameContext): Uint8Array[] {
      lastNow = context.nowMs;
      if (held && rx.state !== "confirming") held = undefined;
      if (deadline === undefined || context.nowMs < deadline) return [];
      // E1381 §6.5.2: the receiver's timer ran out; an unconfirmed final frame is the analyser's to send again
      if (held) held.resolve(false);
      const out = bytesOf(rx.timeout());
      leftover = undefined;
      arm(context.nowMs);
      return out.length > 0 ? [Uint8Array.from(out)] : [];
    },
  };
}

/**
 * How `vitalgate decode` reads a capture: captures keep the frames (STX..ETX C1 C2 CR) but not the
 * link's ENQ and EOT, so each transfer is framed as the analyser sent it: ENQ, its frames, EOT. A
 * frame that opens with a header record after a message's last frame (ETX) starts the next transfer;
 * frame numbers do not tell (analysers restart and skip them, the receiver accepts that).
 */
export function astmCaptureFramer(): Framer {
  const splitter = astmFrameSplitter();
  /** Whether the last frame ended a message (ETX); undefined before the first frame. */
  let lastFinal: boolean | undefined;
  const wrap = (results: FrameResult[]): FrameResult[] =>
    results.flatMap((r) => {
      if (!("frame" in r)) return [r];
      const f = r.frame;
      const header = f[2] === 0x48 && f[3] !== undefined && !/[A-Za-z0-9]/.test(String.fromCharCode(f[3])); // "H|"
      const out: FrameResult[] = [];
      if (lastFinal === undefined) out.push({ frame: Uint8Array.of(ENQ) });
      else if (lastFinal && header) out.push({ frame: Uint8Array.of(EOT) }, { frame: Uint8Array.of(ENQ) });
      const end = f.findIndex((b, i) => i > 1 && (b === 0x03 || b === 0x17));
      lastFinal = f[end] === 0x03;
      out.push(r);
      return out;
    });
  return {
    push: (chunk) => wrap(splitter.push(chunk)),
    get pending() {
      return splitter.pending;
    },
    end: () => {
      const out = [...wrap(splitter.end()), ...(lastFinal === undefined ? [] : [{ frame: Uint8Array.of(EOT) }])];
      lastFinal = undefined;
      return out;
    },
  };
}

/**
 * An analyser (or its serial server in TCP client mode) that connects to us, seen by the pairing page:
 * each bid to send (ENQ, E1381 §6.2) is answered NAK, the receiver not ready (§6.2.5), after which it
 * waits at least 10 s and bids again, keeping its results. This driver connects to analysers, so it
 * cannot take it as it is set up: the note says what to change.
 */
const unpairedAnalyser: SenderDetection = {
  protocol: "astm",
  name: "ASTM E1381",
  opens: (first) => first === ENQ,
  listen: () => ({
    hear(chunk) {
      const bids = chunk.filter((b) => b === ENQ).length;
      return [
        {
          messages: bids,
          note: "an ASTM analyser that connects to us: set it (or its serial server) to listen as a TCP server, then pair it with astm-analyzer, transport tcp, its address and port",
          ...(bids > 0 ? { reply: new Uint8Array(bids).fill(NAK) } : {}),
        },
      ];
    },
  }),
};

export const astmAnalyzer = defineDriver<AstmAnalyzerOptions>({
  id: "astm-analyzer",
  kind: "analyzer",
  sends: ["lab"],
  title: {
    en: "Blood-gas / point-of-care analyser, ASTM E1381/E1394 (serial or TCP)",
    zh: "血气/床旁检验分析仪（ASTM E1381/E1394，串口或 TCP）",
  },
  options: astmAnalyzerOptions,
  labels: {
    ...SERIAL_LINE_LABELS,
    codeMap: {
      zh: "项目代码对照",
      en: "Test code map",
      helpZh: "分析仪本地的项目代码（R.3 中的代码，例如 HCO3-）对应的 LOINC，补充并覆盖内置表。",
    },
  },
  transport: serialLineTransport,
  serialOptions: serialLineOptions,
  // An analyser with results to send opens with ENQ unasked (E1381 §6.2) and, with no reply, tries
  // again after its timeout: a probe hears the ENQ (or a whole transfer) without answering it. The
  // receiver passes over stray bytes between transfers, so only what it would acknowledge counts; an
  // ENQ read at a wrong speed would come with garbage: one acknowledged bid, more than errors, is a
  // match. Speeds as set in the analyser's host settings, 9600 the usual.
  probe: { bauds: [9600, 19200, 4800, 2400, 1200, 38400], matchFrames: 1, evidence: "answers" },
  session: astmAnalyzerSession,
  captureFramer: () => astmCaptureFramer(),
  sender: unpairedAnalyser,
  simulator: () => import("./simulator.ts").then((m) => m.simulator),
});
