// The ECG drawing, checked by its numbers: the paper (grid, scale), the calibration pulse, where
// each lead goes and how long it is, every sample at the right height, the header's privacy.
// (A browser screenshot was looked at by hand when this was written; browser tests come later.)
import { describe, expect, it } from "vitest";
import { XMLValidator } from "fast-xml-parser";
import { ECG_3X4, ECG_PAPER, ECG_SVG_LAYOUT as L, baselineY, esc, renderEcgSvg } from "./svg.ts";
import { STANDARD_LEADS, finishEcg } from "./index.ts";
import type { Ecg12, EcgLead } from "./index.ts";
import { decodeDicomEcg } from "../dicom-ecg/index.ts";
import { decodeHl7Aecg } from "../hl7-aecg/index.ts";
import { decodePhilipsEcg } from "../philips-ecg/index.ts";
import { ownFixture, sharedFixtures } from "../../test/fixtures/ecg/files.ts";
import { prng } from "../../test/support/prng.ts";

const FS = 500;
const N = 10 * FS + 1; // 10 s and the sample at 10 s, so the last window has its end sample
const UV = 5;
const TRACE_X = L.gridX + L.calW;

/** A synthetic ECG of seeded noise (±2 mV), so every point's height can be checked against its sample. */
function synthetic(overrides: Partial<Ecg12> = {}): Ecg12 {
  const rand = prng(11);
  const leads: EcgLead[] = STANDARD_LEADS.map((name) => {
    const s = new Int16Array(N);
    for (let i = 0; i < N; i++) s[i] = Math.round((rand() - 0.5) * 800);
    return { name, samples: s, uvPerUnit: UV };
  });
  return {
    format: "hl7-aecg",
    fs: FS,
    leads,
    durationS: N / FS,
    warnings: [],
    acquiredAt: "2026-11-23T07:30:00.000Z",
    acquiredAtRaw: "20261123153000+0800",
    measurements: { heartRate: 75, prMs: 160, qrsMs: 92, qtMs: 380, qtcMs: 410, qrsAxisDeg: 45 },
    statements: ["窦性心律 <正常心电图> & ok", "RITMO SINUSALE — ECG NORMALE"],
    patient: { id: "PID-424242", name: "ZHANG^SAN" },
    device: { make: "Acme", model: "Cart 1", serial: "SN-9" },
    ...overrides,
  };
}

interface Line {
  lead: string;
  row: number;
  col: number;
  cls?: string;
  pts: [number, number][];
}

function polylines(svg: string): Line[] {
  const out: Line[] = [];
  for (const m of svg.matchAll(/<polyline ([^>]*?)points="([^"]*)"\/>/g)) {
    const a = m[1]!;
    const get = (k: string) => new RegExp(`${k}="([^"]*)"`).exec(a)?.[1];
    const pts =
      m[2]!.trim() === ""
        ? []
        : m[2]!
            .trim()
            .split(" ")
            .map((p) => p.split(",").map(Number) as [number, number]);
    out.push({
      lead: get("data-lead")!,
      row: Number(get("data-row")),
      col: Number(get("data-col")),
      cls: get("class"),
      pts,
    });
  }
  return out;
}

/** The x of every vertical and the y of every horizontal line in a path of M…V / M…H commands. */
function gridLines(svg: string, id: string): { xs: number[]; ys: number[] } {
  const d = new RegExp(`id="${id}"[^>]* d="([^"]*)"`).exec(svg)![1]!;
  const xs: number[] = [];
  const ys: number[] = [];
  for (const m of d.matchAll(/M([\d.]+) ([\d.]+)([VH])([\d.]+)/g))
    (m[3] === "V" ? xs : ys).push(Number(m[m[3] === "V" ? 1 : 2]));
  return { xs: xs.sort((a, b) => a - b), ys: ys.sort((a, b) => a - b) };
}

const steps = (v: number[]) => v.slice(1).map((x, i) => Math.round((x - v[i]!) * 1000) / 1000);

describe("renderEcgSvg: the paper", () => {
  const svg = renderEcgSvg(synthetic());

  it("is well-formed XML, A4 landscape in millimetres, with no NaN anywhere", () => {
    expect(XMLValidator.validate(svg)).toBe(true);
    expect(svg).toMatch(/<svg [^>]*width="297mm" height="210mm" viewBox="0 0 297 210"/);
    expect(svg).not.toMatch(/NaN|Infinity|undefined/);
  });

  it("grid: 1 mm minor lines between 5 mm major lines, 260 × 160 mm, in pink and red", () => {
    const minor = gridLines(svg, "grid-minor");
    const major = gridLines(svg, "grid-major");
    expect(major.xs[0]).toBe(L.gridX);
    expect(major.xs.at(-1)).toBe(L.gridX + 260);
    expect(major.ys.at(-1)! - major.ys[0]!).toBe(160);
    expect(new Set(steps(major.xs))).toEqual(new Set([5]));
    expect(new Set(steps(major.ys))).toEqual(new Set([5]));
    expect(minor.xs).toHaveLength(260 - 260 / 5);
    // Every millimetre has exactly one line, minor or major.
    const all = [...minor.xs, ...major.xs].sort((a, b) => a - b);
    expect(new Set(steps(all))).toEqual(new Set([1]));
    expect(new Set(steps([...minor.ys, ...major.ys].sort((a, b) => a - b)))).toEqual(new Set([1]));
    expect(svg).toMatch(/id="grid-minor" stroke="#f6bcc6"/);
    expect(svg).toMatch(/id="grid-major" stroke="#e3677a"/);
  });

  it("states 25 mm/s and 10 mm/mV on the page", () => {
    expect(svg).toContain("25 mm/s · 10 mm/mV");
    expect(svg).toMatch(/Paper speed 25 mm\/s · Gain 10 mm\/mV/);
    expect(ECG_PAPER).toEqual({ mmPerS: 25, mmPerMv: 10, minorMm: 1, majorMm: 5 });
  });

  it("a calibration pulse at the start of each of the four rows: 1 mV = 10 mm tall, 200 ms = 5 mm wide, on the baseline", () => {
    for (let row = 0; row < 4; row++) {
      const d = new RegExp(`id="cal-${row}" class="cal" d="([^"]*)"`).exec(svg)![1]!;
      const m = /^M([\d.]+) ([\d.]+)H([\d.]+)V([\d.]+)H([\d.]+)V([\d.]+)H([\d.]+)$/.exec(d)!;
      const [x0, y0, xUp, yTop, xDown, yBack, xEnd] = m.slice(1).map(Number) as number[];
      expect(y0).toBe(baselineY(row));
      expect(y0! - yTop!).toBe(10);
      expect(xDown! - xUp!).toBe(5);
      expect(yBack).toBe(y0);
      expect(x0).toBeGreaterThanOrEqual(L.gridX);
      expect(xEnd).toBeLessThanOrEqual(TRACE_X);
    }
  });
});

describe("renderEcgSvg: the leads", () => {
  const ecg = synthetic();
  const lines = polylines(renderEcgSvg(ecg, { removeOffset: false }));

  it("3×4: I, aVR, V1, V4 / II, aVL, V2, V5 / III, aVF, V3, V6, then a lead II rhythm strip", () => {
    const grid = lines.filter((l) => l.cls !== "rhythm");
    expect(grid).toHaveLength(12);
    for (const l of grid) expect(ECG_3X4[l.row]![l.col]).toBe(l.lead);
    const rhythm = lines.filter((l) => l.cls === "rhythm");
    expect(rhythm.map((l) => [l.lead, l.row])).toEqual([["II", 3]]);
  });

  it("each lead 2.5 s = 62.5 mm, its column's time window (columns in time order), every sample at its height", () => {
    for (const l of lines.filter((x) => x.cls !== "rhythm")) {
      const lead = ecg.leads.find((x) => x.name === l.lead)!;
      const i0 = l.col * 2.5 * FS;
      expect(l.pts).toHaveLength(2.5 * FS + 1); // every sample, both ends
      expect(l.pts[0]![0]).toBeCloseTo(TRACE_X + 62.5 * l.col, 6);
      expect(l.pts.at(-1)![0] - l.pts[0]![0]).toBeCloseTo(62.5, 6);
      l.pts.forEach(([x, y], k) => {
        expect(x).toBeCloseTo(TRACE_X + ((i0 + k) / FS) * 25, 2);
        // 10 mm per mV: µV × 0.01 mm above the baseline.
        expect(y).toBeCloseTo(baselineY(l.row) - lead.samples[i0 + k]! * UV * 0.01, 2);
      });
    }
  });

  it("a recording shorter than the layout: columns that start past its end show it from its start, and the header says so", () => {
    const n5 = 5 * FS;
    const short = synthetic({
      durationS: 5,
      leads: synthetic().leads.map((l) => ({ ...l, samples: l.samples.slice(0, n5) })),
    });
    const svg = renderEcgSvg(short, { removeOffset: false });
    const grid = polylines(svg).filter((l) => l.cls !== "rhythm");
    expect(grid).toHaveLength(12);
    for (const l of grid) {
      const lead = short.leads.find((x) => x.name === l.lead)!;
      const i0 = (l.col % 2) * 2.5 * FS; // columns 3 and 4 (V1–V6) wrap to 0 s and 2.5 s
      expect(l.pts).toHaveLength(l.col === 1 || l.col === 3 ? 2.5 * FS : 2.5 * FS + 1); // the 5 s record has no sample at 5.0 s
      expect(l.pts[0]![0]).toBeCloseTo(TRACE_X + 62.5 * l.col, 6);
      l.pts.forEach(([x, y], k) => {
        expect(x).toBeCloseTo(TRACE_X + 62.5 * l.col + (k / FS) * 25, 2);
        expect(y).toBeCloseTo(baselineY(l.row) - lead.samples[i0 + k]! * UV * 0.01, 2);
      });
    }
    expect(svg).toContain(
      "Recorded 5 s, shorter than the layout: columns that start past its end show it again from its start",
    );
    // A 10 s recording says nothing of the kind.
    expect(renderEcgSvg(synthetic())).not.toContain("shorter than the layout");
  });

  it("the rhythm strip is 10 s = 250 mm of lead II from time 0", () => {
    const r = lines.find((l) => l.cls === "rhythm")!;
    const ii = ecg.leads.find((x) => x.name === "II")!;
    expect(r.pts).toHaveLength(10 * FS + 1);
    expect(r.pts[0]![0]).toBe(TRACE_X);
    expect(r.pts.at(-1)![0] - r.pts[0]![0]).toBeCloseTo(250, 6);
    expect(r.pts[1234]![1]).toBeCloseTo(baselineY(3) - ii.samples[1234]! * UV * 0.01, 2);
  });

  it("a 1 mV step is 10 mm tall, whatever the units", () => {
    const step = (uvPerUnit: number): EcgLead => ({
      name: "II",
      uvPerUnit,
      samples: Array.from({ length: N }, (_, i) => (i < 100 ? 0 : 1000 / uvPerUnit)),
    });
    for (const k of [1, 2.5, 4.88]) {
      const r = polylines(renderEcgSvg(synthetic({ leads: [step(k)] }), { removeOffset: false })).find(
        (l) => l.cls === "rhythm",
      )!;
      expect(r.pts[0]![1] - r.pts[200]![1]).toBeCloseTo(10, 2);
    }
  });

  it("removeOffset (default) puts each lead's median on the baseline, keeping its shape", () => {
    const lead: EcgLead = {
      name: "II",
      uvPerUnit: 1,
      samples: Array.from({ length: N }, (_, i) => 3000 + (i % 500 === 0 ? 1000 : 0)),
    };
    const r = polylines(renderEcgSvg(synthetic({ leads: [lead] }))).find((l) => l.cls === "rhythm")!;
    expect(r.pts[1]![1]).toBeCloseTo(baselineY(3), 2);
    expect(r.pts[1]![1] - r.pts[500]![1]).toBeCloseTo(10, 2);
  });

  it("a short recording, a missing lead and a non-finite sample: drawn as far as there is data, no NaN", () => {
    const leads = synthetic()
      .leads.filter((l) => l.name !== "V3")
      .map((l) => ({ ...l, samples: Array.from(l.samples.slice(0, 1000)) as number[] }));
    leads[0]!.samples[10] = Number.NaN;
    const svg = renderEcgSvg(synthetic({ leads, durationS: 2 }));
    expect(svg).not.toMatch(/NaN|Infinity/);
    expect(svg).toContain('V3<tspan font-weight="normal" font-size="2.6"> (missing)</tspan>');
    const ls = polylines(svg);
    expect(ls.filter((l) => l.lead === "I")).toHaveLength(2); // broken at the NaN
    // aVR's column starts at 2.5 s, past the 2 s recorded: it shows 0.5–2 s of it, from the column's start.
    const avr = ls.find((l) => l.lead === "aVR")!;
    expect(avr.pts).toHaveLength(750);
    expect(avr.pts[0]![0]).toBeCloseTo(TRACE_X + 62.5, 6);
    expect(XMLValidator.validate(svg)).toBe(true);
  });
});

describe("renderEcgSvg: the header", () => {
  it("measurements, statements (escaped), device and time; no patient name or id unless asked", () => {
    const svg = renderEcgSvg(synthetic());
    expect(svg).toContain("HR 75 /min");
    expect(svg).toContain("PR 160 ms · QRS 92 ms · QT 380 ms · QTc 410 ms");
    expect(svg).toContain("窦性心律 &lt;正常心电图&gt; &amp; ok");
    expect(svg).toContain("RITMO SINUSALE — ECG NORMALE");
    expect(svg).toContain("2026-11-23 07:30:00 UTC");
    expect(svg).toContain("500 Hz");
    expect(svg).toContain("Device Acme Cart 1 (SN SN-9)");
    expect(svg).not.toContain("ZHANG");
    expect(svg).not.toContain("PID-424242");
    const shown = renderEcgSvg(synthetic(), { showPatient: true });
    expect(shown).toContain("ZHANG^SAN");
    expect(shown).toContain("PID-424242");
  });

  it("derived leads are marked on their labels and in the header; warnings shown", () => {
    const eight = synthetic().leads.filter((l) => !["III", "aVR", "aVL", "aVF"].includes(l.name));
    const ecg = finishEcg({
      format: "dicom-ecg",
      fs: FS,
      leads: eight,
      warnings: [{ code: "X_TEST", message: "a test warning" }],
    });
    const svg = renderEcgSvg(ecg);
    for (const n of ["III", "aVR", "aVL", "aVF"])
      expect(svg).toContain(`>${n}<tspan font-weight="normal" font-size="2.6"> (derived)</tspan>`);
    expect(svg).toContain("Derived leads (computed from I and II, not recorded): III, aVR, aVL, aVF");
    expect(svg).toContain("Warning X_TEST: a test warning");
    expect(polylines(svg).filter((l) => l.lead === "aVR")).toHaveLength(1);
  });

  it("escapes text for XML and drops characters XML cannot carry", () => {
    expect(esc(`a<b>&"c'\u0001`)).toBe("a&lt;b&gt;&amp;&quot;c&apos;");
  });
});

describe("renderEcgSvg: real and synthetic files", () => {
  const decoded = (r: ReturnType<typeof decodeDicomEcg>) => {
    if (!r.ok) throw new Error(r.error.message);
    return r.ecg;
  };
  it("our fixtures render well-formed with twelve leads and a rhythm strip", () => {
    // 10 s of 8 stored leads (4 derived); 2.5 s, every column showing those 2.5 s.
    const cases: [Ecg12, number][] = [
      [decoded(decodeDicomEcg(ownFixture("general-ecg-8lead-explicit.dcm"))), 13],
      [decoded(decodeHl7Aecg(ownFixture("aecg-limb-leads-I-II-only.xml"))), 13],
    ];
    for (const [ecg, drawn] of cases) {
      const svg = renderEcgSvg(ecg);
      expect(XMLValidator.validate(svg)).toBe(true);
      expect(polylines(svg).filter((l) => l.pts.length > 0)).toHaveLength(drawn);
      expect(svg).not.toContain("SYNTHETIC^PATIENT");
    }
  });

  const dicom = sharedFixtures("dicom-ecg", "the real DICOM ECG drawing");
  it.skipIf(!dicom.present)("the Mortara 10 s, 1000 Hz DICOM: every sample kept, under 1 MB", () => {
    const ecg = decoded(decodeDicomEcg(dicom.read("pydicom_waveform_ecg.dcm")));
    const svg = renderEcgSvg(ecg);
    expect(XMLValidator.validate(svg)).toBe(true);
    expect(svg).not.toMatch(/NaN/);
    const ls = polylines(svg);
    // 2.5 s and the boundary sample; the last column ends at the last sample (9.999 s).
    expect(ls.filter((l) => l.cls !== "rhythm").map((l) => l.pts.length)).toEqual(
      ls.filter((l) => l.cls !== "rhythm").map((l) => (l.col === 3 ? 2500 : 2501)),
    );
    expect(ls.find((l) => l.cls === "rhythm")!.pts).toHaveLength(10_000);
    expect(svg).toContain("RITMO SINUSALE");
    expect(svg).not.toContain("642341"); // the patient id
    expect(new TextEncoder().encode(svg).length).toBeLessThan(1_000_000);
  });

  const philips = sharedFixtures("philips-sierraecg", "the real Philips drawing");
  it.skipIf(!philips.present)("the Philips 1.04 export renders, statements escaped", () => {
    const r = decodePhilipsEcg(philips.read("2020-5-18_15-48-11.xml"));
    const svg = renderEcgSvg(decoded(r));
    expect(XMLValidator.validate(svg)).toBe(true);
    expect(svg).toContain("QRS area&gt;0 in V2");
    expect(polylines(svg).filter((l) => l.pts.length > 0)).toHaveLength(13);
  });
});
