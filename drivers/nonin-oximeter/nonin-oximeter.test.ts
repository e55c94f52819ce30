import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.ts";
import { ownFixture } from "../../test/fixtures/serial/load.ts";
import { findDriver } from "../registry.ts";
import { handleNoninLine, noninOximeter, noninOximeterOptions } from "./index.ts";

const SPO2 = { code: "MDC_PULS_OXIM_SAT_O2", mdc: 150456, unit: "%" };
const PR = { code: "MDC_PULS_OXIM_PULS_RATE", mdc: 149530, unit: "/min" };

describe("nonin-oximeter", () => {
  it("is in the registry, with a probe at its one speed", () => {
    expect(findDriver("nonin-oximeter")).toBe(noninOximeter);
    expect(noninOximeter.probe).toEqual({ bauds: [9600], matchFrames: 2, evidence: "answers" });
    expect(noninOximeterOptions.parse({ port: "/dev/ttyUSB0" })).toMatchObject({
      transport: "serial",
      baudRate: 9600,
      dataBits: 8,
      parity: "none",
      stopBits: 1,
      silentAfterS: 5,
    });
  });

  it("the synthetic capture: vitals per reading, the header passed over, no value absent, notices for ---, * and F", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const file = new URL("../../test/fixtures/serial/nonin-synthetic.txt", import.meta.url).pathname;
    const argv = ["decode", "--driver", "nonin-oximeter", "--options", '{"port":"-"}', file];
    expect(await main(argv, { out: (s) => void out.push(s), err: (s) => void err.push(s) })).toBe(0);
    const events = out
      .join("")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { kind: string; body: { observations: unknown[] } });
    expect(events.map((e) => e.body.observations)).toEqual([
      [
        { ...SPO2, value: 98 },
        { ...PR, value: 72 },
      ],
      [
        { ...SPO2, value: 97 },
        { ...PR, value: 73 },
      ],
      [{ ...SPO2, value: 98 }],
      [
        { ...SPO2, value: 98 },
        { ...PR, value: 71 },
      ],
      [
        { ...SPO2, value: 97 },
        { ...PR, value: 74 },
      ],
    ]);
    expect(events.every((e) => e.kind === "vitals")).toBe(true);
    expect(err.map((l) => JSON.parse(l).notice)).toEqual(["NONIN_NO_DATA", "NONIN_EVENT_MARKER", "NONIN_FAST"]);
    expect(Buffer.from(ownFixture("nonin-synthetic.txt")).toString("latin1")).toMatch(/^SYNTHETIC /);
  });

  it("refuses a broken reading with its code, never quoting it", () => {
    expect(handleNoninLine(Buffer.from("SPO2=9x8 HR=072"))).toEqual({
      ok: false,
      error: { code: "NONIN_BAD_LINE", message: "a line starting SPO2= that is not SPO2=XXX HR=YYY", where: 0 },
    });
  });
});
