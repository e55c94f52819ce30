import { describe, expect, it } from "vitest";
import { uuidv7 } from "../src/events/ids.ts";

describe("uuidv7", () => {
  it("has the RFC 9562 layout: time prefix, version 7, variant 10", () => {
    const ms = Date.UTC(2026, 10, 23, 15, 36, 34, 123);
    const id = uuidv7(ms);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(ms);
  });

  it("sorts by time and does not repeat", () => {
    const ids = Array.from({ length: 10_000 }, (_, i) => uuidv7(1_700_000_000_000 + Math.floor(i / 10)));
    expect(new Set(ids).size).toBe(ids.length);
    const prefixes = ids.map((id) => id.slice(0, 13));
    expect([...prefixes].sort()).toEqual(prefixes);
  });

  it("varies all 74 random bits, within one millisecond and across refills of its random pool", () => {
    // 5,000 ids span three refills of the pool; the 48 time bits, the version and the variant stay.
    const ms = Date.UTC(2026, 10, 23, 15, 36, 34, 123);
    const ids = Array.from({ length: 5_000 }, () => uuidv7(ms));
    expect(new Set(ids).size).toBe(ids.length);
    const bits = (id: string) =>
      [...id.replaceAll("-", "")].map((h) => parseInt(h, 16).toString(2).padStart(4, "0")).join("");
    const ones = new Array<number>(128).fill(0);
    for (const id of ids) {
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      [...bits(id)].forEach((b, i) => (ones[i]! += Number(b)));
    }
    const fixed = ones.flatMap((n, i) => (n === 0 || n === ids.length ? [i] : []));
    // RFC 9562 §5.7: bits 0-47 unix_ts_ms, 48-51 ver, 64-65 var; the rest random.
    const expected = [...Array.from({ length: 52 }, (_, i) => i), 64, 65];
    expect(fixed).toEqual(expected);
    const shares = ones.filter((_, i) => !expected.includes(i)).map((n) => n / ids.length);
    expect(Math.min(...shares)).toBeGreaterThan(0.45);
    expect(Math.max(...shares)).toBeLessThan(0.55);
  });
});
