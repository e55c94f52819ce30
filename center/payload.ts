// An `ev/{kind}` message's payload as docs/protocol.md states it: one event envelope, JSON.
// (Each form the contract gains is read here, and only here.)

export type DecodedPayload = { ok: true; events: unknown[] } | { ok: false; error: string };

export function decodeEventPayload(payload: Buffer): DecodedPayload {
  let value: unknown;
  try {
    value = JSON.parse(payload.toString("utf8"));
  } catch {
    return { ok: false, error: "payload is not JSON" };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value))
    return { ok: false, error: "payload is not one event (a JSON object)" };
  return { ok: true, events: [value] };
}
