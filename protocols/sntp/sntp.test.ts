import { describe, expect, it } from "vitest";
import {
  NTP_PACKET_BYTES,
  bestOfBurst,
  decodeNtpHeader,
  encodeNtpHeader,
  encodeSntpRequest,
  ntpToUnixMs,
  sntpMeasure,
  truechimers,
  unixMsToNtp,
  type NtpHeader,
} from "./index.ts";

const NONCE = 0x0123456789abcdefn;

/** A server's reply to the request with NONCE, received at `t2` and sent at `t3` (Unix ms). */
function reply(t2: number, t3: number, over: Partial<NtpHeader> = {}): Uint8Array {
  return encodeNtpHeader({
    leap: 0,
    version: 4,
    mode: 4,
    stratum: 2,
    poll: 6,
    precision: -20,
    rootDelayMs: 10,
    rootDispersionMs: 5,
    refId: Uint8Array.of(10, 0, 0, 1),
    reference: unixMsToNtp(t2 - 60_000),
    origin: NONCE,
    receive: unixMsToNtp(t2),
    transmit: unixMsToNtp(t3),
    ...over,
  });
}

describe("NTP timestamps", () => {
  it("converts Unix ms to NTP and back to well under a microsecond, on both sides of the 2036 era change", () => {
    for (const ms of [
      Date.UTC(1999, 11, 31, 23, 59, 59, 999),
      Date.UTC(2026, 10, 23, 15, 36, 34, 123.456),
      Date.UTC(2036, 1, 7, 6, 28, 15),
      Date.UTC(2036, 1, 7, 6, 28, 17),
      Date.UTC(2090, 0, 1),
    ]) {
      expect(Math.abs(ntpToUnixMs(unixMsToNtp(ms)) - ms)).toBeLessThan(0.001);
    }
  });

  it("reads the era from the top bit as RFC 4330 §3 says", () => {
    // 2036-02-07T06:28:16Z is NTP second 2^32, which the wire carries as 0: era 1.
    expect(ntpToUnixMs(0n)).toBe(Date.UTC(2036, 1, 7, 6, 28, 16));
    // 1900 + 2^31 s (1968-01-20T03:14:08Z) is the first second read as era 0.
    expect(ntpToUnixMs(0x80000000n << 32n)).toBe(Date.UTC(1968, 0, 20, 3, 14, 8));
    expect(ntpToUnixMs(BigInt(2_208_988_800) << 32n)).toBe(0);
  });
});

describe("SNTP request and reply", () => {
  it("sends version 4, mode 3, the nonce as transmit timestamp and nothing else", () => {
    const b = encodeSntpRequest(NONCE);
    expect(b.length).toBe(NTP_PACKET_BYTES);
    expect(b[0]).toBe(0x23); // LI 0, VN 4, mode 3
    expect([...b.subarray(1, 40)].every((x) => x === 0)).toBe(true);
    const h = decodeNtpHeader(b);
    expect(h.ok && h.header.transmit).toBe(NONCE);
  });

  it("round-trips every header field", () => {
    const h: NtpHeader = {
      leap: 1,
      version: 4,
      mode: 4,
      stratum: 1,
      poll: 10,
      precision: -23,
      rootDelayMs: 500,
      rootDispersionMs: 12_250, // exact in 16.16 seconds
      refId: new TextEncoder().encode("GPS "),
      reference: 1n,
      origin: 2n,
      receive: 3n,
      transmit: 0xffffffffffffffffn,
    };
    const back = decodeNtpHeader(encodeNtpHeader(h));
    expect(back.ok).toBe(true);
    if (!back.ok) return;
    expect(back.header).toEqual(h);
  });

  it("computes offset and delay from the four timestamps (RFC 5905 §8)", () => {
    // Client clock 250 ms behind the server; 40 ms out, 60 ms back, 5 ms in the server.
    const t1 = 1_000_000;
    const t2 = t1 + 250 + 40;
    const t3 = t2 + 5;
    const t4 = t3 - 250 + 60;
    const r = sntpMeasure(reply(t2, t3), NONCE, t1, t4);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.measurement.delayMs).toBeCloseTo(100, 3);
    // The asymmetry (40 vs 60) shows as 10 ms of error, inside the bound of half the round trip.
    expect(r.measurement.offsetMs).toBeCloseTo(240, 3);
    expect(Math.abs(r.measurement.offsetMs - 250)).toBeLessThanOrEqual(r.measurement.uncMs);
    // half delay + half root delay + root dispersion + precision
    expect(r.measurement.uncMs).toBeCloseTo(50 + 5 + 5 + 2 ** -20 * 1000, 2);
    expect(r.measurement).toMatchObject({ stratum: 2, refId: "10.0.0.1" });
  });

  it("names a stratum-1 server's reference clock", () => {
    const r = sntpMeasure(reply(10, 11, { stratum: 1, refId: new TextEncoder().encode("GPS ") }), NONCE, 10, 11);
    expect(r.ok && r.measurement.refId).toBe("GPS");
  });

  it.each([
    ["NTP_BOGUS_ORIGIN", { origin: 42n }],
    ["NTP_NOT_SERVER", { mode: 3 }],
    ["NTP_UNSYNCHRONIZED", { leap: 3 }],
    ["NTP_UNSYNCHRONIZED", { stratum: 16 }],
    ["NTP_ZERO_TRANSMIT", { transmit: 0n }],
    ["NTP_VERSION", { version: 0 }],
  ] as const)("rejects %s", (code, over) => {
    const r = sntpMeasure(reply(10, 11, over), NONCE, 10, 11);
    expect(r.ok ? "accepted" : r.error.code).toBe(code);
  });

  it("reads a kiss-o'-death code (RFC 5905 §7.4)", () => {
    const r = sntpMeasure(reply(10, 11, { stratum: 0, refId: new TextEncoder().encode("RATE") }), NONCE, 10, 11);
    expect(r.ok ? undefined : r.error).toMatchObject({ code: "NTP_KISS", kiss: "RATE" });
  });

  it("refuses a short packet with its length", () => {
    const r = sntpMeasure(new Uint8Array(47), NONCE, 0, 0);
    expect(r.ok ? undefined : r.error).toMatchObject({ code: "NTP_SHORT", where: 47 });
  });
});

describe("choosing among measurements", () => {
  it("takes the sample with the least round trip from a burst", () => {
    expect(
      bestOfBurst([
        { delayMs: 30, offsetMs: 1 },
        { delayMs: 8, offsetMs: 2 },
        { delayMs: 12, offsetMs: 3 },
      ])?.offsetMs,
    ).toBe(2);
    expect(bestOfBurst([])).toBeUndefined();
  });

  it("drops a falseticker that disagrees with the majority, and keeps all of one or two", () => {
    const a = { offsetMs: 100, uncMs: 20 };
    const b = { offsetMs: 110, uncMs: 20 };
    const c = { offsetMs: 95, uncMs: 10 };
    const liar = { offsetMs: 3_600_000, uncMs: 5 };
    expect(truechimers([a, b, c, liar])).toEqual([a, b, c]);
    expect(truechimers([a, liar])).toEqual([a, liar]);
  });
});
