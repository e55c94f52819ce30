import { describe, expect, it } from "vitest";
import { uuidv7 } from "../src/ids.ts";

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
});
