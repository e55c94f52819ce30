// What the forwarder puts on the wire beyond the envelope, and how a center reads it back
// (docs/protocol.md "Batches and compression", decision 0016): what waits (priorities 2 and 3) in
// batches, one JSON array of envelopes per message; every event message gzip-compressed where that
// makes it smaller; no message above a configured size.
import { gunzipSync, gzipSync } from "node:zlib";
import type { Envelope } from "../events/model.ts";

export interface WireOptions {
  /**
   * Batches and gzip. false: one event per message, plain JSON, as vitalgate 0.1.0 sent (for a center
   * that has not learnt batches); original files are then not compressed either.
   */
  compact: boolean;
  /** How long an event of priority 2 or 3 may wait for others to travel with it, when the queue holds no more (ms). */
  batchWaitMs: number;
  /** No MQTT PUBLISH packet the gateway sends is larger (payload, topic, properties, headers). */
  maxMessageBytes: number;
  /** Batch bytes (as sent) awaiting the broker's PUBACK at once: what a new ECG may find ahead of it on the link. */
  inflightBytes: number;
}

export const DEFAULT_WIRE: WireOptions = {
  compact: false,
  batchWaitMs: 0,
  maxMessageBytes: 256 * 1024,
  inflightBytes: 16 * 1024,
};

/** Events of this priority and after (vitals, lab, position, device; waveforms) travel in batches. */
export const BATCHED_FROM_PRIORITY = 2;

/** The topic level below `ev/` that carries batches (no event kind is called so). */
export const BATCH_TOPIC = "batch";

/** Most events in one batch, whatever their size. */
export const MAX_BATCH_EVENTS = 5000;

/**
 * Bytes of a PUBLISH packet beyond its payload, at most: fixed header 5, topic length 2 and a topic
 * under 160 (`vitalgate/v1/` + a 63-character gateway id + `/blob/` + an event id + part numbers),
 * packet id 2, MQTT 5 properties under 80 (content type and one user property).
 */
export const PUBLISH_OVERHEAD = 256;

/** The MQTT 5 user property that says a payload is gzip-compressed (its HTTP name and value). */
export const CONTENT_ENCODING = { name: "content-encoding", value: "gzip" } as const;

/** gzip (RFC 1952) begins with these two bytes; JSON text never does. */
export function isGzip(payload: Uint8Array): boolean {
  return payload.length >= 2 && payload[0] === 0x1f && payload[1] === 0x8b;
}

/** An event's JSON as it travels: gzip-compressed when that is smaller. */
export function eventPayload(json: string | Buffer, compact: boolean): { payload: string | Buffer; gzip: boolean } {
  if (!compact) return { payload: json, gzip: false };
  const zipped = gzipSync(json);
  return zipped.length < Buffer.byteLength(json) ? { payload: zipped, gzip: true } : { payload: json, gzip: false };
}

/**
 * Events' JSON as one batch: a JSON array of the envelopes as stored, gzip-compressed; `jsonBytes`
 * is the array's size before compression (what the batcher sizes the next batch by).
 */
export function batchPayload(jsons: readonly (string | Buffer)[]): { payload: Buffer; jsonBytes: number } {
  const array = Buffer.from(`[${jsons.map(String).join(",")}]`);
  return { payload: gzipSync(array), jsonBytes: array.length };
}

/**
 * A center's reading of an event message, as docs/protocol.md tells it: gunzip a payload that begins
 * with gzip's magic bytes, parse the JSON, and take the array of a batch (`…/ev/batch`) or the one
 * event of any other `…/ev/{kind}`.
 */
export function readEventMessage(topic: string, payload: Buffer): Envelope[] {
  const json = JSON.parse((isGzip(payload) ? gunzipSync(payload) : payload).toString("utf8")) as unknown;
  return topic.endsWith(`/ev/${BATCH_TOPIC}`) ? (json as Envelope[]) : [json as Envelope];
}

/**
 * An original file's chunks gzip-compressed, when that makes the whole file at least a tenth smaller
 * (a DICOM waveform file, XML), else undefined (it travels as it is, cut by the outbox). Each chunk,
 * `chunkBytes` of the file, is compressed on its own: the chunks are gzip members, so joined in
 * order they are one gzip stream of the file, and each can also be inflated alone.
 */
export function gzipChunks(bytes: Uint8Array, chunkBytes: number): Buffer[] | undefined {
  const parts = Math.max(1, Math.ceil(bytes.length / chunkBytes));
  const chunks = Array.from({ length: parts }, (_, i) =>
    gzipSync(bytes.subarray(i * chunkBytes, (i + 1) * chunkBytes)),
  );
  return chunks.reduce((n, c) => n + c.length, 0) <= bytes.length * 0.9 ? chunks : undefined;
}

/**
 * The largest chunk of an original file that fits a message: 64 KiB, or less under a smaller
 * message limit; room is left for gzip's own bytes on data it cannot compress (under 0.1 % and 18).
 */
export function chunkBytesFor(maxMessageBytes: number): number {
  return Math.min(64 * 1024, Math.floor((maxMessageBytes - PUBLISH_OVERHEAD - 64) * 0.99));
}

/**
 * An event fitted to the message limit at intake, before it is stored. An ecg12 whose JSON is above
 * it (a long rhythm strip) travels without its leads, which its original file holds, and says so
 * in a warning (`ECG_LEADS_IN_FILE`); the file goes in chunks under the limit as always.
 */
export function fitToMessage(event: Envelope, maxMessageBytes: number): Envelope {
  const room = maxMessageBytes - PUBLISH_OVERHEAD;
  const bytes = Buffer.byteLength(JSON.stringify(event));
  if (bytes <= room || event.kind !== "ecg12") return event;
  const body = { ...(event.body as Record<string, unknown>) };
  delete body.leads;
  const warnings = (body.warnings as { code: string; message: string }[] | undefined) ?? [];
  body.warnings = [
    ...warnings,
    {
      code: "ECG_LEADS_IN_FILE",
      message: `the leads (an event of ${bytes} bytes) are above the uplink's message limit of ${maxMessageBytes} bytes: they travel only in the original file`,
    },
  ];
  return { ...event, body };
}
