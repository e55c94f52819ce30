// An `ev/{kind}` message's payload as docs/protocol.md states it ("Batches and compression"): one
// event envelope, JSON, or on `ev/batch` a JSON array of them; gzip-compressed when it begins with
// gzip's magic bytes 1f 8b. (Each form the contract gains is read here, and only here.)
import { gunzipSync } from "node:zlib";

export type DecodedPayload = { ok: true; events: unknown[] } | { ok: false; error: string };

/** The most a compressed payload may inflate to: far above a 256 KiB message's worth of batched events. */
const MAX_INFLATED_BYTES = 64 * 1024 * 1024;

export function decodeEventPayload(payload: Buffer, kind: string): DecodedPayload {
  let text = payload;
  if (payload[0] === 0x1f && payload[1] === 0x8b) {
    try {
      text = gunzipSync(payload, { maxOutputLength: MAX_INFLATED_BYTES });
    } catch (err) {
      return { ok: false, error: `payload is not valid gzip (${(err as Error).message})` };
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text.toString("utf8"));
  } catch {
    return { ok: false, error: "payload is not JSON" };
  }
  if (kind === "batch") {
    if (!Array.isArray(value)) return { ok: false, error: "a batch is not a JSON array" };
    return { ok: true, events: value };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value))
    return { ok: false, error: "payload is not one event (a JSON object)" };
  return { ok: true, events: [value] };
}
