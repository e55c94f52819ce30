// The page's words (web/strings.js): both languages hold the same keys with the same {placeholders},
// every key the page asks for exists, and no text is written into the page's code or HTML
// bypassing the dictionaries. (The browser test checks the rendered pages in English for Chinese left over.)
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROLES } from "../src/users/roles.ts";
import { STRINGS } from "./support/browser.ts";
import { ROOT } from "./support/processes.ts";

const WEB = join(ROOT, "web");
const zh = STRINGS["zh-CN"];
const en = STRINGS.en;

function sources(dir = WEB): { file: string; text: string }[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return /\.(js|html)$/.test(e.name) ? [{ file: p.slice(WEB.length + 1), text: readFileSync(p, "utf8") }] : [];
  });
}
const code = sources().filter((s) => s.file !== "strings.js");
const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
const CJK = /[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]/;

/**
 * The codes the page's API can answer with: those of the errors its routes raise (sendError,
 * PairingError, CaseError) in the web, pairing, cases and users code.
 */
function answeredCodes(): string[] {
  const dirs = ["src/web", "src/pairing", "src/cases", "src/users"].map((d) => join(ROOT, d));
  const files = dirs.flatMap((d) =>
    readdirSync(d, { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".ts"))
      .map((f) => readFileSync(join(d, f), "utf8")),
  );
  const codes = new Set<string>();
  for (const text of files)
    for (const m of text.matchAll(
      /(?:sendError\(\s*reply,\s*\d+,|new (?:PairingError|CaseError)\()\s*"(VG_[A-Z0-9_]+)"/g,
    ))
      codes.add(m[1]!);
  return [...codes].sort();
}

describe("the page's dictionaries", () => {
  it("say every error the page's API answers with in words, in both languages (no raw server text alone)", () => {
    const codes = answeredCodes();
    expect(codes.length).toBeGreaterThan(10);
    expect(codes.filter((c) => zh[`err.${c}`] === undefined || en[`err.${c}`] === undefined)).toEqual([]);
  });

  it("hold the same keys in Chinese and English, none empty, with the same placeholders", () => {
    expect(Object.keys(en).sort()).toEqual(Object.keys(zh).sort());
    for (const [key, text] of Object.entries(zh)) {
      expect(text.trim(), key).not.toBe("");
      expect(en[key]!.trim(), key).not.toBe("");
      expect(placeholders(en[key]!), key).toEqual(placeholders(text));
    }
  });

  it("has English without Chinese in it (except the switch back to Chinese)", () => {
    const mixed = Object.entries(en).filter(([k, v]) => k !== "lang.switch" && CJK.test(v));
    expect(mixed).toEqual([]);
  });

  it("has every key the page's code and HTML ask for", () => {
    const asked = new Set<string>();
    for (const { text } of code) {
      for (const m of text.matchAll(/\bt\("([\w.]+)"/g)) asked.add(m[1]!);
      for (const m of text.matchAll(/data-i18n(?:-title)?="([\w.]+)"/g)) asked.add(m[1]!);
      // Keys named in tables (navigation, column headings) rather than in a t() call.
      for (const m of text.matchAll(/"((?:nav|audit|users|login|status)\.\w+)"/g)) asked.add(m[1]!);
    }
    expect(asked.size).toBeGreaterThan(150);
    expect([...asked].filter((k) => !(k in zh))).toEqual([]);
  });

  it("has the families the page builds keys of: every role, every time node, every probe verdict", () => {
    const nodes = /const NODES = \[([^\]]+)\]/
      .exec(readFileSync(join(WEB, "pages/cases.js"), "utf8"))![1]!
      .match(/"(\w+)"/g)!
      .map((s) => s.slice(1, -1));
    expect(nodes).toContain("fmc");
    const wanted = [
      ...ROLES.map((r) => `role.${r}`),
      ...nodes.map((n) => `node.${n}`),
      ...["match", "noise", "silent"].map((v) => `verdict.${v}`),
    ];
    expect(wanted.filter((k) => !(k in zh))).toEqual([]);
  });

  it("is the only place page text is written: no Chinese in the code, no text in the HTML outside data-i18n elements", () => {
    // reading.js matches the center's words (排除STEMI), it shows none of its own.
    for (const { file, text } of code.filter((s) => s.file !== "reading.js")) {
      const lines = text.split("\n").filter((l) => CJK.test(l) && !/^\s*(\/\/|\*|\/\*)/.test(l));
      expect(lines, file).toEqual([]);
    }
    const html = readFileSync(join(WEB, "index.html"), "utf8");
    const text = html
      .replace(/<title>[^<]*<\/title>/, "")
      .replace(/<[^>]+>/g, "")
      .trim();
    expect(text).toBe("");
  });
});
