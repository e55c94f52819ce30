// The error catalog (src/error-catalog.ts) against the code and the docs: every VG_ code the
// gateway's code uses is in it, nothing in it is unused, docs/errors.md is what it generates, and
// what the other docs name exists.
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { CODES, errorsPage, isCode } from "../src/error-catalog.ts";
import { StoreRefusedError, VitalgateError } from "../src/errors.ts";
import { main } from "../src/cli/main.ts";
import { STRINGS } from "./support/browser.ts";
import { ROOT } from "./support/processes.ts";

const CATALOG = "src/error-catalog.ts";
/** A whole VG_ code (not the tail of ECG_SVG_LAYOUT); one ending in "_" is a prefix in prose (`VG_DICOM_...`). */
const CODE = /\bVG_[A-Z0-9_]+\b/g;

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && ext.test(e.name))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

/** Code → the files (of src/, drivers/, protocols/, web/; not the catalog) that name it. */
function usedCodes(): Map<string, string[]> {
  const used = new Map<string, string[]>();
  for (const file of ["src", "drivers", "protocols", "web"].flatMap((d) => files(d, /\.(ts|js|html)$/))) {
    if (file === CATALOG) continue;
    for (const [code] of readFileSync(join(ROOT, file), "utf8").matchAll(CODE)) {
      used.set(code, [...new Set([...(used.get(code) ?? []), file])]);
    }
  }
  return used;
}

describe("the error catalog", () => {
  const used = usedCodes();

  it("has every VG_ code used in src/, drivers/, protocols/ and web/", () => {
    const missing = [...used].filter(([code]) => !isCode(code)).map(([code, where]) => `${code} (${where.join(", ")})`);
    expect(missing).toEqual([]);
  });

  it("has no code that nothing uses", () => {
    expect(Object.keys(CODES).filter((code) => !used.has(code))).toEqual([]);
  });

  it("is what docs/errors.md says (regenerate it: node src/cli/main.ts errors > docs/errors.md)", async () => {
    expect(readFileSync(join(ROOT, "docs/errors.md"), "utf8")).toBe(errorsPage());
    let out = "";
    expect(await main(["errors"], { out: (s) => void (out += s), err: () => undefined })).toBe(0);
    expect(out).toBe(errorsPage());
  });

  it("has every code the other docs name (but the center's page: center/ is another application)", () => {
    // Environment variables the code and the tests read (VG_REGENERATE, VG_SHARED_FIXTURES) are no codes.
    const environment = new Set(
      ["src", "test"]
        .flatMap((d) => files(d, /\.ts$/))
        .flatMap((file) =>
          [...readFileSync(join(ROOT, file), "utf8").matchAll(/\benv\.(VG_[A-Z0-9_]+)/g)].map((m) => m[1]),
        ),
    );
    const named = files("docs", /\.md$/)
      .filter((file) => file !== "docs/center.md")
      .flatMap((file) =>
        [...readFileSync(join(ROOT, file), "utf8").matchAll(CODE)]
          .map(([code]) => code)
          .filter((code) => !code.endsWith("_") && !isCode(code) && !environment.has(code))
          .map((code) => `${code} (${file})`),
      );
    expect(named).toEqual([]);
  });

  it("has the page's words, in Chinese and English, for every code a device's last error can be", () => {
    const shown = Object.entries(CODES)
      .filter(([, e]) => e.seen.includes("device lastError"))
      .map(([code]) => code);
    expect(shown.length).toBeGreaterThan(20);
    for (const lang of ["zh-CN", "en"] as const)
      expect(shown.filter((code) => !STRINGS[lang][`err.${code}`]).map((code) => `${lang} err.${code}`)).toEqual([]);
  });

  it("says what comes next for every failure, and a coded error takes it from there", () => {
    for (const [code, e] of Object.entries(CODES)) {
      expect(e.meaning.trim(), code).not.toBe("");
      expect(e.action.trim(), code).not.toBe("");
    }
    expect(new VitalgateError("VG_NTP_TIMEOUT", "no answer").next).toBe("retry");
    expect(new VitalgateError("VG_CASES_CLOSED", "closed").next).toBe("stop");
    expect(new StoreRefusedError("VG_STORE_QUOTA", "full").next).toBe("operator");
    expect(new StoreRefusedError("VG_STORE_CLOSED", "shutting down").next).toBe("retry");
  });
});
