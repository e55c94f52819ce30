// Helpers for driving the time service by hand: a monotonic clock and a wall clock that tests move,
// a log that tests read, and NTP servers that answer from a known truth over a simulated path.
import { Writable } from "node:stream";
import { encodeNtpHeader, sntpMeasure, unixMsToNtp } from "../../protocols/sntp/index.ts";
import { createLogger } from "../../src/log.ts";
import type { NtpQuery, NtpResult } from "../../src/time/ntp.ts";

/** True UTC at monotonic 0 in these tests: 2026-11-23T08:00:00Z. */
export const T0 = Date.UTC(2026, 10, 23, 8, 0, 0);

/**
 * Hand-moved clocks: `mono` is the monotonic clock, `truth(m)` the true UTC at monotonic m,
 * `wallError` how far the box's system clock is off (set it to step the clock).
 */
export function manualClocks(start = 10_000) {
  const c = {
    mono: start,
    wallError: 0,
    /** An absolute wall time, for a clock stepped to 1970 say; overrides wallError. */
    wallAbsolute: undefined as number | undefined,
    truth: (m: number) => T0 + m,
    monoMs: () => c.mono,
    wallMs: () =>
      c.wallAbsolute !== undefined ? c.wallAbsolute + (c.mono - c.wallAbsoluteAt) : T0 + c.mono + c.wallError,
    wallAbsoluteAt: 0,
    /** Sets the wall clock to `ms` now (date -s). */
    setWall(ms: number) {
      c.wallAbsolute = ms;
      c.wallAbsoluteAt = c.mono;
    },
    advance(ms: number) {
      c.mono += ms;
    },
  };
  return c;
}

/** A pino logger whose lines the test can read back, parsed. */
export function capturedLog(level = "debug") {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  const log = createLogger({ level, pretty: false }, sink);
  return { log, lines, codes: () => lines.map((l) => l.code).filter(Boolean) as string[] };
}

/**
 * An NTP server reached over a simulated path: it answers from `truth + errorMs`, each exchange
 * taking the next [out, back] delays (ms) from `paths` (cycled), and moves the monotonic clock by
 * the round trip. The reply is a real packet, measured by the real codec.
 */
export function simulatedNtp(
  clocks: ReturnType<typeof manualClocks>,
  servers: Record<
    string,
    { errorMs?: number; paths?: [number, number][]; rootDelayMs?: number; rootDispersionMs?: number }
  >,
): NtpQuery & { asked: string[] } {
  const turn = new Map<string, number>();
  const asked: string[] = [];
  const query = async (server: { host: string; port: number }): Promise<NtpResult> => {
    const s = servers[server.host];
    if (!s) throw Object.assign(new Error(`no answer from ${server.host}`), { code: "VG_NTP_TIMEOUT" });
    asked.push(server.host);
    const i = turn.get(server.host) ?? 0;
    turn.set(server.host, i + 1);
    const paths = s.paths ?? [[5, 5]];
    const [out, back] = paths[i % paths.length]!;
    const nonce = BigInt(i + 1) * 0x9e3779b97f4a7c15n;
    const t1 = clocks.mono;
    const t2 = clocks.truth(t1 + out) + (s.errorMs ?? 0);
    const t3 = t2 + 0.2;
    const t4 = t1 + out + 0.2 + back;
    clocks.mono = t4;
    const reply = encodeNtpHeader({
      leap: 0,
      version: 4,
      mode: 4,
      stratum: 2,
      poll: 6,
      precision: -20,
      rootDelayMs: s.rootDelayMs ?? 2,
      rootDispersionMs: s.rootDispersionMs ?? 1,
      refId: Uint8Array.of(10, 0, 0, 1),
      reference: unixMsToNtp(t2 - 30_000),
      origin: nonce,
      receive: unixMsToNtp(t2),
      transmit: unixMsToNtp(t3),
    });
    const r = sntpMeasure(reply, nonce, t1, t4);
    if (!r.ok) throw new Error(r.error.message);
    return { ...r.measurement, at: t4 };
  };
  return Object.assign(query, { asked });
}

/** Lets promise callbacks and immediates run (a source's first poll on start). */
export const settle = () => new Promise((r) => setImmediate(r));
