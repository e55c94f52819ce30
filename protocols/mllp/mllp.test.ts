import { describe, expect, it } from "vitest";
import type { FrameResult } from "../codec.ts";
import { MLLP_END, MLLP_START, mllpEncode, mllpFramer } from "./index.ts";
import { prng } from "../../test/support/prng.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function msg(id: string): Uint8Array {
  return enc.encode(
    `MSH|^~\\&|MON|WARD|GW|CTR|20261123152901+0800||ORU^R01^ORU_R01|${id}|P|2.6\rOBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.1.1.150456|98|262688^MDC_DIM_PERCENT^MDC|||||F\r`,
  );
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Results as comparable plain data. */
function show(results: FrameResult[]): unknown[] {
  return results.map((r) => ("frame" in r ? { frame: dec.decode(r.frame) } : { error: r.error }));
}

function feed(
  stream: Uint8Array,
  cuts: number[],
  max = 4096,
): { results: unknown[]; maxPending: number; pending: number } {
  const f = mllpFramer({ maxFrameBytes: max });
  const results: FrameResult[] = [];
  let maxPending = 0;
  let from = 0;
  for (const cut of [...cuts, stream.length]) {
    results.push(...f.push(stream.subarray(from, cut)));
    maxPending = Math.max(maxPending, f.pending);
    from = cut;
  }
  return { results: show(results), maxPending, pending: f.pending };
}

describe("mllpEncode", () => {
  it("wraps a message in SB ... EB CR", () => {
    const out = mllpEncode(enc.encode("MSH|x"));
    expect([...out]).toEqual([0x0b, ...enc.encode("MSH|x"), 0x1c, 0x0d]);
  });
});

describe("mllpFramer", () => {
  const capture = concat(mllpEncode(msg("1")), mllpEncode(msg("2")), enc.encode("\r\n"), mllpEncode(msg("3")));
  const whole = feed(capture, []);

  it("frames a capture of three messages", () => {
    expect(whole.results).toEqual([1, 2, 3].map((n) => ({ frame: dec.decode(msg(String(n))) })));
    expect(whole.pending).toBe(0);
  });

  it("gives identical frames when the capture is split at every byte boundary", () => {
    for (let cut = 1; cut < capture.length; cut++) {
      expect(feed(capture, [cut]).results).toEqual(whole.results);
    }
  });

  it("gives identical frames when fed one byte at a time", () => {
    const cuts = Array.from({ length: capture.length - 1 }, (_, i) => i + 1);
    expect(feed(capture, cuts).results).toEqual(whole.results);
  });

  it("accepts an end block without the trailing CR", () => {
    const s = concat(Uint8Array.of(MLLP_START), msg("1"), Uint8Array.of(MLLP_END), mllpEncode(msg("2")));
    expect(feed(s, []).results).toEqual([{ frame: dec.decode(msg("1")) }, { frame: dec.decode(msg("2")) }]);
  });

  it("reports a run of garbage once, with its offset, and keeps the frames around it", () => {
    const s = concat(mllpEncode(msg("1")), enc.encode("garbage\r\nmore"), mllpEncode(msg("2")), enc.encode("x"));
    const first = mllpEncode(msg("1")).length;
    const { results } = feed(s, []);
    expect(results).toEqual([
      { frame: dec.decode(msg("1")) },
      { error: expect.objectContaining({ code: "MLLP_GARBAGE", where: first }) },
      { frame: dec.decode(msg("2")) },
      { error: expect.objectContaining({ code: "MLLP_GARBAGE", where: s.length - 1 }) },
    ]);
    for (let cut = 1; cut < s.length; cut++) expect(feed(s, [cut]).results).toEqual(results);
  });

  it("skips an oversized frame without holding it, then carries on", () => {
    const big = new Uint8Array(10_000).fill(0x41);
    const s = concat(mllpEncode(msg("1")), mllpEncode(big), mllpEncode(msg("2")));
    const oneByOne = Array.from({ length: s.length - 1 }, (_, i) => i + 1);
    for (const cuts of [[], oneByOne, [50, 5000, 9000]]) {
      const r = feed(s, cuts, 1024);
      expect(r.results).toEqual([
        { frame: dec.decode(msg("1")) },
        { error: expect.objectContaining({ code: "MLLP_OVERSIZE", where: mllpEncode(msg("1")).length }) },
        { frame: dec.decode(msg("2")) },
      ]);
      expect(r.maxPending).toBeLessThanOrEqual(1024);
    }
  });

  it("reports a frame abandoned by a new start block and starts the new one", () => {
    const s = concat(Uint8Array.of(MLLP_START), enc.encode("MSH|^~\\&|half"), mllpEncode(msg("2")));
    expect(feed(s, []).results).toEqual([
      { error: expect.objectContaining({ code: "MLLP_TRUNCATED", where: 0 }) },
      { frame: dec.decode(msg("2")) },
    ]);
  });

  it("holds an unfinished frame as pending", () => {
    const f = mllpFramer({ maxFrameBytes: 100 });
    expect(f.push(Uint8Array.of(MLLP_START, 0x41, 0x42))).toEqual([]);
    expect(f.pending).toBe(2);
    expect(show(f.push(Uint8Array.of(0x43, MLLP_END, 0x0d)))).toEqual([{ frame: "ABC" }]);
    expect(f.pending).toBe(0);
  });

  it("rejects a nonsensical maxFrameBytes", () => {
    expect(() => mllpFramer({ maxFrameBytes: 0 })).toThrow(RangeError);
  });

  it("survives random garbage and random splits, recovering the valid frames (fuzz, seeded)", () => {
    const rand = prng(0x5eed);
    const max = 512;
    for (let iter = 0; iter < 300; iter++) {
      // valid frames (ids never contain SB/EB) separated by garbage that may contain SB/EB too
      const pieces: Uint8Array[] = [];
      const expected: string[] = [];
      const n = 1 + Math.floor(rand() * 4);
      for (let k = 0; k < n; k++) {
        const garbage = new Uint8Array(Math.floor(rand() * 40)).map(() => Math.floor(rand() * 256));
        // garbage ending in SB would swallow the next frame's start as a restart: that is the
        // defined behaviour, but then the frame is only recoverable if the garbage holds no SB.
        const clean = garbage.map((b) => (b === MLLP_START ? 0x20 : b));
        pieces.push(clean);
        if (rand() < 0.2) pieces.push(mllpEncode(new Uint8Array(max + 10).fill(0x42))); // oversized
        const body = msg(`${iter}-${k}`);
        pieces.push(mllpEncode(body));
        expected.push(dec.decode(body));
      }
      const stream = concat(...pieces);
      const cuts: number[] = [];
      for (let at = 0; at < stream.length; at += 1 + Math.floor(rand() * 64)) if (at > 0) cuts.push(at);
      const f = mllpFramer({ maxFrameBytes: max });
      const frames: string[] = [];
      let from = 0;
      for (const cut of [...cuts, stream.length]) {
        for (const r of f.push(stream.subarray(from, cut))) {
          if ("frame" in r) frames.push(dec.decode(r.frame));
          else expect(r.error.code).toMatch(/^MLLP_(GARBAGE|OVERSIZE|TRUNCATED)$/);
        }
        expect(f.pending).toBeLessThanOrEqual(max);
        from = cut;
      }
      // Every valid frame is recovered; a stray EB in garbage may only add (never hide) frames.
      for (const e of expected) expect(frames).toContain(e);
    }
  });
});
