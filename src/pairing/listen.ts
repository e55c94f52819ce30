// Listen-only decoding, for the pairing page's probe and preview: bytes from a device go through the
// driver's framer and session exactly as a running device's would, but nothing is stored and nothing
// is ever answered. The replies a driver prepares (ACKs, polls) are dropped: a device must not be
// told data was accepted that we do not keep.
import type { CodecError } from "../../protocols/codec.ts";
import { wholeChunks } from "../devices/device-manager.ts";
import { openSession, type DriverDefinition } from "../devices/driver.ts";
import type { EventDraft } from "../events/model.ts";

/** A decoded event as the page shows it: an original file is named by its size, not carried. */
export type DraftPreview = Omit<EventDraft, "original"> & { original?: { contentType: string; bytes: number } };

/** The largest preview kept of one event, as JSON characters; a larger body is replaced by a note. */
const MAX_PREVIEW_CHARS = 8192;

export function previewOf(draft: EventDraft): DraftPreview {
  const { original, ...rest } = draft;
  const preview: DraftPreview = original
    ? { ...rest, original: { contentType: original.contentType, bytes: original.bytes.length } }
    : rest;
  if (JSON.stringify(preview).length <= MAX_PREVIEW_CHARS) return preview;
  return {
    ...preview,
    body: { truncated: true, note: `larger than ${MAX_PREVIEW_CHARS} characters: not shown in the preview` },
  };
}

export interface ListenTally {
  /** Bytes heard. */
  bytes: number;
  /** Frames handed to the driver (for drivers without a framer: chunks read). */
  frames: number;
  /** Of those, read without error. */
  ok: number;
  /** Of those, frames the driver would acknowledge or decoded events from: recognised, not merely passed over. */
  answered: number;
  /** Framing and decoding errors. */
  errors: number;
  /** Events decoded. */
  events: number;
  /** The last few decoded events. */
  sample: DraftPreview[];
  /** The first few errors (codes and messages; codecs keep patient data out of them). */
  errorSample: CodecError[];
}

export interface Listener {
  push(chunk: Uint8Array): void;
  readonly tally: ListenTally;
}

/** Decodes what a device says with `driver` (options already parsed), keeping `keep` events as a sample. */
export function listenOnly<O>(driver: DriverDefinition<O>, options: O, nowMs: () => number, keep = 3): Listener {
  const framer = driver.framer?.(options) ?? wholeChunks();
  const session = openSession(driver, options);
  const tally: ListenTally = {
    bytes: 0,
    frames: 0,
    ok: 0,
    answered: 0,
    errors: 0,
    events: 0,
    sample: [],
    errorSample: [],
  };
  const error = (e: CodecError) => {
    tally.errors++;
    if (tally.errorSample.length < keep)
      tally.errorSample.push({
        code: e.code,
        message: e.message,
        ...(e.where === undefined ? {} : { where: e.where }),
      });
  };
  return {
    tally,
    push(chunk) {
      tally.bytes += chunk.length;
      for (const r of framer.push(chunk)) {
        if ("error" in r) {
          error(r.error);
          continue;
        }
        tally.frames++;
        let exchange;
        try {
          exchange = session.handle(r.frame, { nowMs: nowMs() });
        } catch (err) {
          error({
            code: "VG_DRIVER_BUG",
            message: `driver ${driver.id} threw ${(err as Error)?.name ?? typeof err} on a frame`,
          });
          continue;
        }
        if (!exchange.ok) {
          error(exchange.error);
          continue;
        }
        tally.ok++;
        // reading `accept` may settle a driver's held acknowledgement (ASTM): harmless, it is never sent
        if (exchange.events.length > 0 || exchange.accept !== undefined) tally.answered++;
        tally.events += exchange.events.length;
        for (const draft of exchange.events) tally.sample.push(previewOf(draft));
        if (tally.sample.length > keep) tally.sample.splice(0, tally.sample.length - keep);
      }
    },
  };
}
