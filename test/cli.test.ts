// The command line over the registry: `vitalgate decode`'s ECG outputs for whatever driver decoded a
// 12-lead ECG (src/cli/main.ts names no driver).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../src/cli/main.ts";
import { ROOT } from "./support/processes.ts";

const dir = mkdtempSync(join(tmpdir(), "vg-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) } };
}

describe("vitalgate decode --aecg/--svg", () => {
  it("writes the ECG a capture decoded to as HL7 aECG and SVG", async () => {
    const r = io();
    const aecg = join(dir, "cart.xml");
    const svg = join(dir, "cart.svg");
    const file = join(ROOT, "test/fixtures/ecg/twelve-lead-implicit-vr.dcm");
    const argv = ["decode", "--driver", "ecg-cart", "--options", '{"dir":"-"}', file, "--aecg", aecg, "--svg", svg];
    expect(await main(argv, r.io)).toBe(0);
    expect(JSON.parse(r.out.join(""))).toMatchObject({ kind: "ecg12", body: { format: "dicom-ecg" } });
    expect(readFileSync(aecg, "utf8")).toMatch(/<AnnotatedECG[\s>]/);
    expect(readFileSync(svg, "utf8")).toMatch(/^<svg|<\?xml/);
  });

  it("says so, exit 1, when the capture decoded to no 12-lead ECG", async () => {
    const r = io();
    const file = join(ROOT, "test/fixtures/hl7/pcd01-basic.hl7");
    expect(await main(["decode", "--driver", "hl7-pcd01", file, "--svg", join(dir, "no.svg")], r.io)).toBe(1);
    expect(r.err.join("")).toContain("--aecg/--svg: the capture decoded to no 12-lead ECG file this build reads");
  });
});
