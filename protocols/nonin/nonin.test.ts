import { describe, expect, it } from "vitest";
import { lineFramer } from "../lines/index.ts";
import { formatNoninLine, parseNoninLine } from "./index.ts";

const line = (s: string) => parseNoninLine(Buffer.from(s, "latin1"));

describe("Nonin real-time serial output", () => {
  it("reads SPO2=XXX HR=YYY with its markers, and --- as no value", () => {
    expect(line("SPO2=098 HR=072")).toEqual({
      ok: true,
      line: { kind: "reading", spo2: 98, pulseRate: 72, fast: false, marker: false },
    });
    expect(line("SPO2=--- HR=---")).toEqual({ ok: true, line: { kind: "reading", fast: false, marker: false } });
    expect(line("SPO2=100 HR=---*")).toEqual({
      ok: true,
      line: { kind: "reading", spo2: 100, fast: false, marker: true },
    });
    expect(line("SPO2=097 HR=074 F*")).toMatchObject({ ok: true, line: { fast: true, marker: true } });
  });

  it("passes over the header and other text, and names a broken reading without quoting it", () => {
    expect(line("NONIN 7500FO 08:00:00 12/07/26")).toEqual({ ok: true, line: { kind: "header" } });
    for (const bad of ["SPO2=98 HR=072", "SPO2=098HR=072", "SPO2=098 HR=072 X"])
      expect(line(bad)).toEqual({
        ok: false,
        error: { code: "NONIN_BAD_LINE", message: "a line starting SPO2= that is not SPO2=XXX HR=YYY", where: 0 },
      });
    expect(line("SPO2=101 HR=072")).toMatchObject({ ok: false, error: { code: "NONIN_OUT_OF_RANGE" } });
  });

  it("writes what it reads", () => {
    for (const r of [{ spo2: 98, pulseRate: 72 }, {}, { spo2: 5, pulseRate: 250, fast: true, marker: true }]) {
      const text = formatNoninLine(r);
      expect(text.endsWith("\r\n")).toBe(true);
      expect(line(text.slice(0, -2))).toEqual({
        ok: true,
        line: { kind: "reading", ...r, fast: r.fast ?? false, marker: r.marker ?? false },
      });
    }
  });

  it("frames the same lines however the stream is split", () => {
    const stream = Buffer.from("HEADER\r\nSPO2=098 HR=072\r\nSPO2=--- HR=---\r\n", "latin1");
    const frames = (cuts: number[]) => {
      const f = lineFramer({ maxLineBytes: 64, tooLong: "NONIN_LINE_TOO_LONG", from: "the oximeter" });
      const out = [];
      let at = 0;
      for (const cut of [...cuts, stream.length]) {
        out.push(...f.push(stream.subarray(at, cut)));
        at = cut;
      }
      return out.map((r) => ("frame" in r ? Buffer.from(r.frame).toString("latin1") : r.error.code));
    };
    const whole = frames([]);
    expect(whole).toEqual(["HEADER", "SPO2=098 HR=072", "SPO2=--- HR=---"]);
    for (let cut = 1; cut < stream.length; cut++) expect(frames([cut])).toEqual(whole);
  });
});
