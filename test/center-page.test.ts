// The county center's page without a browser: its words (center/web/center-strings.js) in both
// languages with the same placeholders, every key its code asks for present; and the county picture's
// rule (center/county.ts): who heads for a place, and when three make an alert.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { convergenceAlerts, etaMin, type Vehicle } from "../center/county.ts";
import { STRINGS } from "./support/browser.ts";
import { ROOT } from "./support/processes.ts";

const CENTER = (
  (await import(pathToFileURL(join(ROOT, "center/web/center-strings.js")).href)) as {
    CENTER_STRINGS: Record<"zh-CN" | "en", Record<string, string>>;
  }
).CENTER_STRINGS;
const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
const CJK = /[\u3400-\u9fff]/;

describe("the center page's words", () => {
  it("hold the same keys in Chinese and English, with the same placeholders, English without Chinese", () => {
    expect(Object.keys(CENTER.en).sort()).toEqual(Object.keys(CENTER["zh-CN"]).sort());
    for (const [key, text] of Object.entries(CENTER["zh-CN"])) {
      expect(placeholders(CENTER.en[key]!), key).toEqual(placeholders(text));
      expect(CJK.test(CENTER.en[key]!), key).toBe(false);
    }
  });

  it("has every key the center's page code asks for, its own or the gateway's", () => {
    const dir = join(ROOT, "center/web");
    const files = readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) => /\.(js|html)$/.test(f));
    const asked = new Set<string>();
    for (const f of files) {
      const text = readFileSync(join(dir, f), "utf8");
      for (const m of text.matchAll(/\bt\("([\w.]+)"/g)) asked.add(m[1]!);
      for (const m of text.matchAll(/data-i18n="([\w.]+)"/g)) asked.add(m[1]!);
      for (const m of text.matchAll(/"((?:nav|worklist|county|times|node|reading|users)\.\w+)"/g)) asked.add(m[1]!);
    }
    expect(asked.size).toBeGreaterThan(40);
    const known = { ...STRINGS["zh-CN"], ...CENTER["zh-CN"] };
    expect([...asked].filter((k) => !(k in known))).toEqual([]);
  });
});

describe("the county picture's alert", () => {
  const hospital = { name: "县人民医院", lat: 30.0, lon: 120.0 };
  const rule = { radiusM: 1000, withinMin: 30, minVehicles: 3, positionMaxAgeMin: 10 };
  const now = Date.UTC(2026, 11, 7, 8, 0, 0);
  /** A vehicle `km` south of the hospital, on `courseDeg` at 15 m/s (54 km/h). */
  const south = (gw: string, km: number, courseDeg: number, ageMin = 0): Vehicle => ({
    gw,
    lat: 30.0 - km / 111.2,
    lon: 120.0,
    speedMps: 15,
    courseDeg,
    atMs: now - ageMin * 60_000,
  });

  it("a vehicle heads for a place ahead on its course, within the radius, arriving within the time", () => {
    expect(etaMin(south("a", 9, 0), hospital, rule)).toBeCloseTo(10, 0);
    // Off course by 10°: 9 km away the course passes 1.56 km from it, beyond 1000 m.
    expect(etaMin(south("a", 9, 10), hospital, rule)).toBeUndefined();
    expect(etaMin(south("a", 9, 180), hospital, rule)).toBeUndefined(); // driving away
    expect(etaMin(south("a", 30, 0), hospital, rule)).toBeUndefined(); // 33 min away
    expect(etaMin({ ...south("a", 9, 0), speedMps: 0.5 }, hospital, rule)).toBeUndefined(); // standing
    expect(etaMin(south("a", 0.5, 0), hospital, rule)).toBeUndefined(); // there already
  });

  it("alerts when three or more head for one place, soonest first; not for two, nor on stale positions", () => {
    const three = [south("a", 9, 0), south("b", 3, 2), south("c", 15, 359), south("d", 5, 180)];
    expect(convergenceAlerts(three, [hospital], rule, now)).toEqual([
      {
        place: hospital,
        vehicles: [
          { gw: "b", etaMin: expect.any(Number) },
          { gw: "a", etaMin: expect.any(Number) },
          { gw: "c", etaMin: expect.any(Number) },
        ],
      },
    ]);
    expect(convergenceAlerts(three.slice(0, 2), [hospital], rule, now)).toEqual([]);
    const stale = [south("a", 9, 0), south("b", 3, 2), south("c", 15, 359, 11)];
    expect(convergenceAlerts(stale, [hospital], rule, now)).toEqual([]);
  });
});
