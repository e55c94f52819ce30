// UUIDv7 (RFC 9562 §5.7): 48-bit Unix milliseconds, version 7, then 74 random bits. Time-ordered, so
// the center's dedup index stays compact; unique without coordination, so it is the idempotency key
// end to end. The random bits come from crypto.randomUUID(), whose batched CSPRNG is several times
// faster than a fill per id; its version nibble is replaced and its variant bits are already 10.
import { randomUUID } from "node:crypto";

export function uuidv7(unixMs: number): string {
  const ts = Math.max(0, Math.floor(unixMs)).toString(16).padStart(12, "0").slice(-12);
  const r = randomUUID(); // xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx
  return `${ts.slice(0, 8)}-${ts.slice(8)}-7${r.slice(15)}`;
}
