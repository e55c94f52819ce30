// SNTP (RFC 4330) / NTPv4 (RFC 5905) packets: the 48-byte header a client sends and the server's
// reply, and the arithmetic that turns the four timestamps of one exchange into an offset, a round
// trip and an error bound. Pure: bytes in, values out; the socket and the clock live in src/time/.
//
// Times here are Unix milliseconds as doubles (a double holds 2^-32 s fractions well below a
// microsecond for any date this century); the wire carries NTP timestamps, seconds since 1900 in
// 32.32 fixed point (RFC 5905 §6).
import type { CodecError } from "../codec.ts";

/** Size of the NTP header without extension fields or MAC (RFC 5905 §7.3, figure 8). */
export const NTP_PACKET_BYTES = 48;
/** The registered NTP port (RFC 5905 §7.2). */
export const NTP_PORT = 123;
/** Seconds from 1900-01-01 (NTP era 0 prime epoch) to 1970-01-01 (RFC 5905 §6, figure 4). */
export const NTP_UNIX_EPOCH_DELTA_S = 2_208_988_800;
/** Seconds in one NTP era: the 32-bit seconds field wraps every 2^32 s (RFC 5905 §6). */
const ERA_S = 2 ** 32;
const FRACTION = 2 ** 32;

/** Association modes (RFC 5905 §7.3, figure 10). */
export const NTP_MODE = { client: 3, server: 4, broadcast: 5 } as const;
/** Leap indicator 3: the server's clock is not synchronized (RFC 5905 §7.3, figure 9). */
export const LEAP_ALARM = 3;
/** Stratum 16: unsynchronized (RFC 5905 §7.3, figure 11). Stratum 0: a kiss-o'-death packet (§7.4). */
export const STRATUM_UNSYNCHRONIZED = 16;

export interface NtpHeader {
  leap: number;
  version: number;
  mode: number;
  stratum: number;
  /** log2 of the poll interval, seconds. */
  poll: number;
  /** log2 of the server clock's precision, seconds (e.g. -20 ≈ 1 µs). */
  precision: number;
  /** Round trip to the primary reference, ms (RFC 5905 §7.3, NTP short format). */
  rootDelayMs: number;
  /** Dispersion to the primary reference, ms. */
  rootDispersionMs: number;
  /** Reference id as 4 raw bytes: an IPv4 address, a reference clock code ("GPS "), or a kiss code when stratum is 0. */
  refId: Uint8Array;
  /** The four timestamps as raw 64-bit NTP values (seconds << 32 | fraction), for exact comparison. */
  reference: bigint;
  origin: bigint;
  receive: bigint;
  transmit: bigint;
}

/**
 * A client request (RFC 4330 §5): version 4, mode 3, everything zero except the transmit timestamp.
 * The client puts a nonce there rather than its clock reading: the server copies it into the
 * reply's origin field, which proves the reply answers this request (RFC 5905 §8's bogus-packet
 * check), and the client's clock, which may be wrong, is not disclosed. The client keeps its own
 * send time apart.
 */
export function encodeSntpRequest(nonce: bigint): Uint8Array {
  const b = new Uint8Array(NTP_PACKET_BYTES);
  b[0] = (0 << 6) | (4 << 3) | NTP_MODE.client;
  new DataView(b.buffer).setBigUint64(40, BigInt.asUintN(64, nonce));
  return b;
}

/** A server's reply header (also used by the test server to build one). */
export function encodeNtpHeader(h: NtpHeader): Uint8Array {
  const b = new Uint8Array(NTP_PACKET_BYTES);
  const v = new DataView(b.buffer);
  b[0] = ((h.leap & 3) << 6) | ((h.version & 7) << 3) | (h.mode & 7);
  b[1] = h.stratum;
  v.setInt8(2, h.poll);
  v.setInt8(3, h.precision);
  v.setUint32(4, toShort(h.rootDelayMs));
  v.setUint32(8, toShort(h.rootDispersionMs));
  b.set(h.refId.subarray(0, 4), 12);
  v.setBigUint64(16, h.reference);
  v.setBigUint64(24, h.origin);
  v.setBigUint64(32, h.receive);
  v.setBigUint64(40, h.transmit);
  return b;
}

export function decodeNtpHeader(bytes: Uint8Array): { ok: true; header: NtpHeader } | { ok: false; error: CodecError } {
  if (bytes.length < NTP_PACKET_BYTES) {
    return {
      ok: false,
      error: {
        code: "NTP_SHORT",
        message: `NTP packet of ${bytes.length} bytes; the header alone is ${NTP_PACKET_BYTES}`,
        where: bytes.length,
      },
    };
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const b0 = bytes[0]!;
  return {
    ok: true,
    header: {
      leap: b0 >> 6,
      version: (b0 >> 3) & 7,
      mode: b0 & 7,
      stratum: bytes[1]!,
      poll: v.getInt8(2),
      precision: v.getInt8(3),
      rootDelayMs: fromShort(v.getUint32(4)),
      rootDispersionMs: fromShort(v.getUint32(8)),
      refId: bytes.slice(12, 16),
      reference: v.getBigUint64(16),
      origin: v.getBigUint64(24),
      receive: v.getBigUint64(32),
      transmit: v.getBigUint64(40),
    },
  };
}

/** NTP short format (16.16 seconds) to ms, and back (RFC 5905 §6, figure 3). */
function fromShort(x: number): number {
  return (x / 65536) * 1000;
}
function toShort(ms: number): number {
  return Math.max(0, Math.min(0xffffffff, Math.round((ms / 1000) * 65536)));
}

/**
 * A 64-bit NTP timestamp to Unix ms. The 32-bit seconds field is ambiguous across eras; RFC 4330
 * §3 resolves it for dates 1968–2104: with the top bit set the time is in era 0 (from 1900), with
 * it clear in era 1 (from 2036-02-07T06:28:16Z).
 */
export function ntpToUnixMs(ts: bigint): number {
  const seconds = Number(ts >> 32n);
  const fraction = Number(ts & 0xffffffffn);
  const era = seconds >= 0x80000000 ? 0 : 1;
  return (era * ERA_S + seconds - NTP_UNIX_EPOCH_DELTA_S + fraction / FRACTION) * 1000;
}

/** Unix ms to a 64-bit NTP timestamp (modulo the era, as the wire carries it). */
export function unixMsToNtp(ms: number): bigint {
  const total = ms / 1000 + NTP_UNIX_EPOCH_DELTA_S;
  let seconds = Math.floor(total);
  let fraction = Math.round((total - seconds) * FRACTION);
  if (fraction === FRACTION) {
    seconds += 1;
    fraction = 0;
  }
  return (BigInt(seconds % ERA_S) << 32n) | BigInt(fraction);
}

/** Why a reply cannot be used. Codes are stable; the texts are for the log. */
export type SntpRejection = CodecError & {
  code:
    | "NTP_SHORT"
    | "NTP_NOT_SERVER"
    | "NTP_BOGUS_ORIGIN"
    | "NTP_KISS"
    | "NTP_UNSYNCHRONIZED"
    | "NTP_ZERO_TRANSMIT"
    | "NTP_VERSION";
  kiss?: string;
};

export interface SntpMeasurement {
  /** Server time minus client time, ms: add it to the client's clock (RFC 5905 §8, θ). */
  offsetMs: number;
  /** Round trip less the server's processing time, ms (RFC 5905 §8, δ). */
  delayMs: number;
  /**
   * Bound on the error of `offsetMs`, ms: half the round trip (the path could be wholly
   * asymmetric) plus the server's own root distance (half its root delay plus its root
   * dispersion, RFC 5905 §7.3) and its precision.
   */
  uncMs: number;
  stratum: number;
  /** Reference id: 4 ASCII characters at stratum 1 ("GPS "), a dotted IPv4 address above. */
  refId: string;
  rootDelayMs: number;
  rootDispersionMs: number;
}

/**
 * Checks a reply against the request it should answer (RFC 4330 §5 and RFC 5905 §8) and computes the
 * measurement. `t1` and `t4` are the client's send and receive times on its own timescale (any
 * timescale: the offset is then relative to it), in ms.
 */
export function sntpMeasure(
  reply: Uint8Array,
  nonce: bigint,
  t1: number,
  t4: number,
): { ok: true; measurement: SntpMeasurement } | { ok: false; error: SntpRejection } {
  const decoded = decodeNtpHeader(reply);
  if (!decoded.ok) return { ok: false, error: decoded.error as SntpRejection };
  const h = decoded.header;
  if (h.version < 1 || h.version > 4)
    return reject("NTP_VERSION", `NTP version ${h.version} is not one this client speaks (1-4)`);
  if (h.mode !== NTP_MODE.server && h.mode !== NTP_MODE.broadcast)
    return reject("NTP_NOT_SERVER", `reply in mode ${h.mode}, not from a server (mode 4)`);
  if (h.origin !== BigInt.asUintN(64, nonce))
    return reject("NTP_BOGUS_ORIGIN", "reply does not echo this request's transmit timestamp: stale or forged");
  if (h.stratum === 0) {
    // Kiss-o'-death (RFC 5905 §7.4): DENY and RSTR mean stop asking this server, RATE ask less often.
    const kiss = String.fromCharCode(...h.refId).replace(/[^\x20-\x7e]/g, "?");
    return { ok: false, error: { code: "NTP_KISS", message: `server sent kiss-o'-death ${kiss}`, kiss } };
  }
  if (h.leap === LEAP_ALARM || h.stratum >= STRATUM_UNSYNCHRONIZED)
    return reject("NTP_UNSYNCHRONIZED", "the server says its own clock is not synchronized");
  if (h.transmit === 0n) return reject("NTP_ZERO_TRANSMIT", "reply with a zero transmit timestamp");
  const t2 = ntpToUnixMs(h.receive);
  const t3 = ntpToUnixMs(h.transmit);
  // RFC 5905 §8: θ = ((T2 − T1) + (T3 − T4)) / 2, δ = (T4 − T1) − (T3 − T2).
  const offsetMs = (t2 - t1 + (t3 - t4)) / 2;
  const delayMs = Math.max(0, t4 - t1 - (t3 - t2));
  const precisionMs = 2 ** h.precision * 1000;
  const uncMs = delayMs / 2 + h.rootDelayMs / 2 + h.rootDispersionMs + precisionMs;
  const refId =
    h.stratum === 1
      ? String.fromCharCode(...h.refId)
          .replace(/[^\x20-\x7e]/g, "")
          .trim()
      : [...h.refId].join(".");
  return {
    ok: true,
    measurement: {
      offsetMs,
      delayMs,
      uncMs,
      stratum: h.stratum,
      refId,
      rootDelayMs: h.rootDelayMs,
      rootDispersionMs: h.rootDispersionMs,
    },
  };
}

function reject(code: SntpRejection["code"], message: string): { ok: false; error: SntpRejection } {
  return { ok: false, error: { code, message } };
}

/**
 * Of several measurements from one server, the one with the least round trip: its offset has the
 * least room for path asymmetry (the idea of RFC 5905 §10's clock filter, which picks the sample of
 * least delay from the last eight).
 */
export function bestOfBurst<M extends { delayMs: number }>(samples: readonly M[]): M | undefined {
  let best: M | undefined;
  for (const s of samples) if (best === undefined || s.delayMs < best.delayMs) best = s;
  return best;
}

/**
 * Drops falsetickers among servers: each measurement is the interval offset ± unc; those whose
 * interval overlaps the intervals of a majority of the others are kept (the principle of RFC 5905
 * §11.2.1's selection algorithm, in its simplest form). With one or two servers nothing is dropped:
 * there is no majority to judge by.
 */
export function truechimers<M extends { offsetMs: number; uncMs: number }>(ms: readonly M[]): M[] {
  if (ms.length < 3) return [...ms];
  const overlaps = ms.map(
    (a) => ms.filter((b) => b !== a && Math.abs(a.offsetMs - b.offsetMs) <= a.uncMs + b.uncMs).length,
  );
  const need = Math.floor(ms.length / 2); // of the n−1 others, at least half agree
  const kept = ms.filter((_, i) => overlaps[i]! >= need);
  return kept.length > 0 ? kept : [...ms];
}
