// Each capture of our own decodes to what its expected output beside it says (gpsd's regression
// way): `vitalgate decode` with the driver and options of test/fixtures/captures.ts, its events with
// their ids and arrival times normalised (an ECG's leads by their samples), and what it says on stderr (errors, notices), compared with
// `<capture>.expected.json`. `VG_REGENERATE=1 npx vitest run test/captures.test.ts` rewrites them:
// read the diff before committing it (test/fixtures/README.md).
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { decodeLeads, type CompactLead } from "../protocols/ecg/compact-leads.ts";
import { main } from "../src/cli/main.ts";
import { CAPTURES, type Capture } from "./fixtures/captures.ts";
import { ROOT } from "./support/processes.ts";

const FIXTURES = join(ROOT, "test/fixtures");
const REGENERATE = process.env.VG_REGENERATE === "1";
const scratch = mkdtempSync(join(tmpdir(), "vg-captures-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** What is not a capture: the fixtures' helpers and notes, the configuration files, the expected outputs. */
const NOT_A_CAPTURE = /(\.ts|\.md|\.expected\.json)$/;

/** The decode, as the command line gives it, with what changes from run to run replaced by a mark. */
async function decode(name: string, c: Capture) {
  let file = join(FIXTURES, name);
  if (c.wire) {
    file = join(scratch, name.replaceAll("/", "-"));
    writeFileSync(file, c.wire(new Uint8Array(readFileSync(join(FIXTURES, name)))));
  }
  let out = "";
  let err = "";
  const argv = ["decode", "--driver", c.driver, "--options", JSON.stringify(c.options ?? {}), file];
  const exit = await main(argv, { out: (s) => void (out += s), err: (s) => void (err += s) });
  const lines = (text: string) =>
    text
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const events = lines(out).map((e) => {
    const time = e.time as { recv: string; tFrom?: string };
    return {
      ...e,
      id: "<id>",
      // A time taken from the arrival (no device time) is the decode's own moment.
      ...(time.tFrom === "recv" ? { t: "<recv>" } : {}),
      time: { ...time, recv: "<recv>" },
      ...(e.kind === "ecg12" ? { body: samplesOf(e.body as { leads?: CompactLead[] }) } : {}),
    };
  });
  return { exit, events, stderr: lines(err) };
}

/**
 * An ECG's leads by what they hold, not how they travel: the compact encoding (zlib level, which
 * leads go as residuals of I and II) may change while the samples may not. Each lead's samples as
 * their SHA-256.
 */
function samplesOf(body: { leads?: CompactLead[] }) {
  if (!body.leads) return body;
  const samples = decodeLeads(body.leads);
  return {
    ...body,
    leads: body.leads.map(({ data: _data, encoding: _encoding, predictor: _predictor, ...lead }) => ({
      ...lead,
      samples: `sha256:${createHash("sha256").update(samples.get(lead.name)!).digest("hex")}`,
    })),
  };
}

describe("our own captures decode to their expected output", () => {
  it("every capture in test/fixtures/ is in the index (test/fixtures/captures.ts), and only those", () => {
    const found = ["hl7", "ecg", "serial"].flatMap((dir) =>
      readdirSync(join(FIXTURES, dir))
        .filter((f) => !NOT_A_CAPTURE.test(f))
        .map((f) => `${dir}/${f}`),
    );
    expect(found.sort()).toEqual(Object.keys(CAPTURES).sort());
  });

  for (const [name, capture] of Object.entries(CAPTURES)) {
    it(name, async () => {
      const expectedFile = join(FIXTURES, `${name}.expected.json`);
      const got = await decode(name, capture);
      if (REGENERATE) writeFileSync(expectedFile, JSON.stringify(got, null, 2) + "\n");
      expect(existsSync(expectedFile), `${expectedFile}: run with VG_REGENERATE=1 to write it`).toBe(true);
      expect(got).toEqual(JSON.parse(readFileSync(expectedFile, "utf8")));
    });
  }
});
