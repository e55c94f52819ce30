// UUIDv7 (RFC 9562 §5.7): 48-bit Unix milliseconds, version 7, then 74 random bits. Time-ordered, so
// the center's dedup index stays compact; unique without coordination, so it is the idempotency key
// end to end.
//
// Every stored event gets one, so it is built the cheap way: the random bits come from a pool filled
// by the CSPRNG once per ~1,600 ids, the time prefix is written once per millisecond, and the hex
// digits go into a reused 36-byte buffer that is decoded to one flat string. Building it from
// slices of crypto.randomUUID() cost five times as much, and left a rope of slices for every
// serialization to flatten.
import { randomFillSync } from "node:crypto";

const RANDOM_BYTES_PER_ID = 10;
const pool = Buffer.alloc(16 * 1024);
let poolAt = pool.length;

const HEX = Buffer.from("0123456789abcdef", "latin1");
/** The id being built: the time prefix and the version digit stay while the millisecond does. */
const text = Buffer.from("00000000-0000-7000-8000-000000000000", "latin1");
let textMs = -1;

export function uuidv7(unixMs: number): string {
  const ms = Math.max(0, Math.floor(unixMs));
  if (ms !== textMs) {
    textMs = ms;
    const ts = ms.toString(16).padStart(12, "0").slice(-12);
    text.write(ts.slice(0, 8), 0, "latin1");
    text.write(ts.slice(8), 9, "latin1");
  }
  if (poolAt + RANDOM_BYTES_PER_ID > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  let at = poolAt;
  poolAt += RANDOM_BYTES_PER_ID;
  // rand_a, 12 bits: the three digits after the version digit.
  let x = pool[at++]!;
  text[15] = HEX[x & 15]!;
  x = pool[at++]!;
  text[16] = HEX[x >> 4]!;
  text[17] = HEX[x & 15]!;
  // The variant (binary 10) and rand_b's first 2 + 4 + 8 bits.
  x = pool[at++]!;
  text[19] = HEX[8 | (x & 3)]!;
  text[20] = HEX[x >> 4]!;
  x = pool[at++]!;
  text[21] = HEX[x >> 4]!;
  text[22] = HEX[x & 15]!;
  // rand_b's last 48 bits.
  for (let i = 24; i < 36; i += 2) {
    x = pool[at++]!;
    text[i] = HEX[x >> 4]!;
    text[i + 1] = HEX[x & 15]!;
  }
  return text.toString("latin1", 0, 36);
}
