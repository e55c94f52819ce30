// Draws a normalized 12-lead ECG as an SVG on standard ECG paper, the way resting carts print it:
//
//   - 25 mm/s and 10 mm/mV, stated on the page; 1 mm minor and 5 mm major grid in pink and red;
//   - the 3×4 layout (I, aVR, V1, V4 / II, aVL, V2, V5 / III, aVF, V3, V6), 2.5 s per lead, the
//     columns in time order (column c shows 2.5c to 2.5c + 2.5 s of its leads, as a cart that
//     records all twelve at once prints them), then a 10 s lead II rhythm strip; a recording shorter
//     than the layout has the columns that start past its end show it from its start again (said in
//     the header), so that no lead is left blank;
//   - a 1 mV × 200 ms calibration pulse at the start of every row, lead labels, derived leads
//     marked as such;
//   - a header with what is not patient-identifying: acquisition time, sampling rate, the cart's
//     measurements and statements, the device, warnings. Patient name and id only on request.
//
// SVG user units are millimetres (viewBox in mm, width and height in mm), so the page prints at
// true scale on A4 landscape. Pure: a string out, no DOM, no I/O.
import { STANDARD_LEADS } from "./index.ts";
import type { Ecg12, EcgLead } from "./index.ts";

export interface EcgSvgOptions {
  /** Print the patient's name and id in the header. Default false: the drawing travels to places logs do. */
  showPatient?: boolean;
  /**
   * Move each lead so its median sits on the row's baseline (a constant shift; the waveform's shape
   * and size are untouched). Default true: a DC offset in the file would otherwise push a trace
   * into the next row.
   */
  removeOffset?: boolean;
}

/** The paper: speed, gain and grid, in millimetres. */
export const ECG_PAPER = { mmPerS: 25, mmPerMv: 10, minorMm: 1, majorMm: 5 } as const;

/** Where everything goes on the page, millimetres from the top left corner. */
export const ECG_SVG_LAYOUT = {
  pageW: 297,
  pageH: 210,
  /** The grid: 260 × 160 mm, 52 × 32 major squares. */
  gridX: 18,
  gridY: 37,
  gridW: 260,
  gridH: 160,
  /** Four rows (three of the 3×4 layout and the rhythm strip), each this tall, baseline in the middle. */
  rowH: 40,
  /** Room at the start of each row for the calibration pulse; the traces start after it. */
  calW: 10,
  /** 2.5 s at 25 mm/s. */
  columnW: 62.5,
  columnS: 2.5,
  rhythmS: 10,
} as const;

/** The 3×4 layout: rows of leads, each row's columns left to right. */
export const ECG_3X4: readonly (readonly string[])[] = [
  ["I", "aVR", "V1", "V4"],
  ["II", "aVL", "V2", "V5"],
  ["III", "aVF", "V3", "V6"],
];
export const RHYTHM_LEAD = "II";

const COLOURS = {
  minor: "#f6bcc6",
  major: "#e3677a",
  paper: "#fffafa",
  trace: "#111",
  text: "#222",
  warn: "#a40000",
} as const;
const FONT =
  "'Noto Sans','Noto Sans CJK SC','Source Han Sans SC','Microsoft YaHei','PingFang SC','WenQuanYi Micro Hei',Arial,sans-serif";

/** Renders the ECG as an SVG document (UTF-8 text). */
export function renderEcgSvg(ecg: Ecg12, options: EcgSvgOptions = {}): string {
  const L = ECG_SVG_LAYOUT;
  const removeOffset = options.removeOffset ?? true;
  const byName = new Map<string, EcgLead>();
  for (const lead of ecg.leads) if (!byName.has(lead.name)) byName.set(lead.name, lead);
  const offsets = new Map<string, number>();
  const offsetOf = (lead: EcgLead) => {
    let o = offsets.get(lead.name);
    if (o === undefined) {
      o = removeOffset ? medianUv(lead) : 0;
      offsets.set(lead.name, o);
    }
    return o;
  };

  const out: string[] = [];
  out.push(`<?xml version="1.0" encoding="UTF-8"?>`);
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${L.pageW}mm" height="${L.pageH}mm" viewBox="0 0 ${L.pageW} ${L.pageH}" font-family="${esc(FONT)}">`,
  );
  out.push(`<title>12-lead ECG, 25 mm/s, 10 mm/mV</title>`);
  out.push(`<rect x="0" y="0" width="${L.pageW}" height="${L.pageH}" fill="#fff"/>`);
  out.push(...grid());
  out.push(...header(ecg, options.showPatient === true));

  // Traces: calibration pulses, the 3×4 leads, the rhythm strip.
  out.push(
    `<g id="traces" fill="none" stroke="${COLOURS.trace}" stroke-width="0.22" stroke-linejoin="round" stroke-linecap="round">`,
  );
  const labels: string[] = [];
  const traceX = L.gridX + L.calW;
  for (let row = 0; row < 4; row++) {
    const base = baselineY(row);
    out.push(`<path id="cal-${row}" class="cal" d="${calibrationPath(L.gridX, base)}"/>`);
  }
  for (let row = 0; row < ECG_3X4.length; row++) {
    const base = baselineY(row);
    const rowTop = L.gridY + row * L.rowH;
    ECG_3X4[row]!.forEach((name, col) => {
      const x0 = traceX + col * L.columnW;
      if (col > 0) out.push(`<path class="sep" d="M${num(x0)} ${num(base - 4)}V${num(base + 4)}"/>`);
      const lead = byName.get(name);
      const t0 = columnStart(col, ecg.durationS);
      labels.push(label(x0 + 1.2, rowTop + 5, name, lead));
      if (!lead) return;
      out.push(polyline(lead, ecg.fs, t0, t0 + L.columnS, x0, base, offsetOf(lead), { row, col }));
    });
  }
  {
    const row = 3;
    const base = baselineY(row);
    const lead = byName.get(RHYTHM_LEAD);
    labels.push(label(traceX + 1.2, L.gridY + row * L.rowH + 5, RHYTHM_LEAD, lead, "rhythm"));
    if (lead)
      out.push(polyline(lead, ecg.fs, 0, L.rhythmS, traceX, base, offsetOf(lead), { row, col: 0, rhythm: true }));
  }
  out.push(`</g>`);
  out.push(`<g id="labels" fill="${COLOURS.text}" font-size="3.5" font-weight="bold">`, ...labels, `</g>`);

  // Footer: the scale, stated.
  out.push(
    `<text id="scale" x="${L.gridX}" y="${L.gridY + L.gridH + 5}" font-size="2.8" fill="${COLOURS.text}">${esc(
      "Paper speed 25 mm/s · Gain 10 mm/mV · Grid 1 mm = 0.04 s / 0.1 mV, 5 mm = 0.2 s / 0.5 mV · Calibration pulse 1 mV × 200 ms",
    )}</text>`,
  );
  const notDrawn = ecg.leads.map((l) => l.name).filter((n) => !(STANDARD_LEADS as readonly string[]).includes(n));
  if (notDrawn.length > 0) {
    out.push(
      `<text x="${L.gridX + L.gridW}" y="${L.gridY + L.gridH + 5}" font-size="2.8" text-anchor="end" fill="${COLOURS.text}">${esc(fit(`Not drawn: ${notDrawn.join(", ")}`, 80))}</text>`,
    );
  }
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

/** The y of a row's baseline: the middle of the row, on a major grid line. */
export function baselineY(row: number): number {
  return ECG_SVG_LAYOUT.gridY + row * ECG_SVG_LAYOUT.rowH + ECG_SVG_LAYOUT.rowH / 2;
}

function grid(): string[] {
  const L = ECG_SVG_LAYOUT;
  const minor: string[] = [];
  const major: string[] = [];
  const x1 = L.gridX + L.gridW;
  const y1 = L.gridY + L.gridH;
  for (let i = 0; i <= L.gridW; i++) (i % 5 === 0 ? major : minor).push(`M${L.gridX + i} ${L.gridY}V${y1}`);
  for (let j = 0; j <= L.gridH; j++) (j % 5 === 0 ? major : minor).push(`M${L.gridX} ${L.gridY + j}H${x1}`);
  return [
    `<g id="grid" fill="none">`,
    `<rect x="${L.gridX}" y="${L.gridY}" width="${L.gridW}" height="${L.gridH}" fill="${COLOURS.paper}"/>`,
    `<path id="grid-minor" stroke="${COLOURS.minor}" stroke-width="0.08" d="${minor.join("")}"/>`,
    `<path id="grid-major" stroke="${COLOURS.major}" stroke-width="0.2" d="${major.join("")}"/>`,
    `</g>`,
  ];
}

/** 1 mV (10 mm) high, 200 ms (5 mm) wide, on a short stretch of baseline either side. */
function calibrationPath(x: number, base: number): string {
  const L = ECG_SVG_LAYOUT;
  const w = 0.2 * ECG_PAPER.mmPerS;
  const h = ECG_PAPER.mmPerMv;
  const start = x + (L.calW - w) / 2;
  return `M${num(x + 1)} ${num(base)}H${num(start)}V${num(base - h)}H${num(start + w)}V${num(base)}H${num(x + L.calW - 0.5)}`;
}

function label(x: number, y: number, name: string, lead: EcgLead | undefined, extra?: string): string {
  const note = !lead ? " (missing)" : lead.derived ? " (derived)" : "";
  const tail = extra ? ` ${extra}` : "";
  return `<text x="${num(x)}" y="${num(y)}"${note ? ` data-note="${note.trim().slice(1, -1)}"` : ""}>${esc(name)}<tspan font-weight="normal" font-size="2.6">${esc(note + tail)}</tspan></text>`;
}

/**
 * Where column `col`'s 2.5 s of its leads start in the recording: its place in time, or, for a
 * column that starts past the end of a recording shorter than the layout, that place wrapped to the
 * recording's start.
 */
function columnStart(col: number, durationS: number): number {
  const t = col * ECG_SVG_LAYOUT.columnS;
  return durationS > 0 && t >= durationS ? t % durationS : t;
}

/**
 * One lead from t0 to t1 seconds, every sample kept, drawn from x0: x = x0 + (t − t0) × 25 mm/s,
 * y = baseline − µV × 10 mm/mV. Each end includes the sample at the boundary (when there is one), so
 * a 2.5 s window spans exactly 62.5 mm. A sample that is not a finite number breaks the line.
 */
function polyline(
  lead: EcgLead,
  fs: number,
  t0: number,
  t1: number,
  x0: number,
  base: number,
  offsetUv: number,
  where: { row: number; col: number; rhythm?: boolean },
): string {
  const n = lead.samples.length;
  const attrs = `data-lead="${esc(lead.name)}" data-row="${where.row}" data-col="${where.col}" data-t0="${t0}" data-t1="${t1}"${where.rhythm ? ` class="rhythm"` : ""}${lead.derived ? ` data-derived="true"` : ""}`;
  if (!(fs > 0) || n === 0) return `<polyline ${attrs} points=""/>`;
  const i0 = Math.max(0, Math.ceil(t0 * fs - 1e-9));
  const i1 = Math.min(n - 1, Math.floor(t1 * fs + 1e-9));
  const mmPerUv = ECG_PAPER.mmPerMv / 1000;
  const k = lead.uvPerUnit;
  const runs: string[][] = [];
  let run: string[] = [];
  for (let i = i0; i <= i1; i++) {
    const v = lead.samples[i]! * k - offsetUv;
    if (!Number.isFinite(v)) {
      if (run.length > 0) runs.push(run);
      run = [];
      continue;
    }
    run.push(`${num(x0 + (i / fs - t0) * ECG_PAPER.mmPerS, 3)},${num(base - v * mmPerUv)}`);
  }
  if (run.length > 0) runs.push(run);
  if (runs.length <= 1) return `<polyline ${attrs} points="${(runs[0] ?? []).join(" ")}"/>`;
  return runs.map((r) => `<polyline ${attrs} points="${r.join(" ")}"/>`).join("\n");
}

/** The median of a lead in µV (over at most ~20,000 evenly spaced samples), 0 when it has none. */
function medianUv(lead: EcgLead): number {
  const n = lead.samples.length;
  if (n === 0) return 0;
  const step = Math.max(1, Math.floor(n / 20_000));
  const values: number[] = [];
  for (let i = 0; i < n; i += step) {
    const v = lead.samples[i]! * lead.uvPerUnit;
    if (Number.isFinite(v)) values.push(v);
  }
  if (values.length === 0) return 0;
  values.sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)]!;
}

// ---- header ---------------------------------------------------------------------------------------

const MAX_HEADER_LINES = 8;

function header(ecg: Ecg12, showPatient: boolean): string[] {
  const L = ECG_SVG_LAYOUT;
  const lines: { text: string; cls: string; bold?: boolean; colour?: string }[] = [];
  const m = ecg.measurements ?? {};
  const dev = ecg.device;

  const first = ["12-lead ECG", `Acquired ${acquisition(ecg)}`, `${num(ecg.fs)} Hz`, `${num(ecg.durationS, 2)} s`];
  lines.push({ text: first.join(" · "), cls: "h-main", bold: true });
  if (ecg.durationS > 0 && (ECG_3X4[0]!.length - 1) * L.columnS >= ecg.durationS) {
    lines.push({
      text: `Recorded ${num(ecg.durationS, 2)} s, shorter than the layout: columns that start past its end show it again from its start`,
      cls: "h-short",
      colour: COLOURS.warn,
    });
  }
  const device = [dev?.make, dev?.model].filter(Boolean).join(" ");
  const second = [
    device && `Device ${device}${dev?.serial ? ` (SN ${dev.serial})` : ""}`,
    dev?.software && `software ${dev.software}`,
    `file ${ecg.format}${ecg.formatVersion ? ` ${ecg.formatVersion}` : ""}`,
  ].filter(Boolean);
  lines.push({ text: second.join(" · "), cls: "h-device" });

  if (showPatient && ecg.patient) {
    const p = ecg.patient;
    const parts = [
      p.name && `Patient ${p.name}`,
      p.id && `ID ${p.id}`,
      p.sex && `Sex ${p.sex}`,
      p.birthDate && `Born ${p.birthDate}`,
    ].filter(Boolean);
    if (parts.length > 0) lines.push({ text: parts.join(" · "), cls: "h-patient", bold: true });
  }

  const meas: string[] = [];
  if (m.heartRate !== undefined) meas.push(`HR ${num(m.heartRate)} /min`);
  if (m.rrMs !== undefined) meas.push(`RR ${num(m.rrMs)} ms`);
  if (m.prMs !== undefined) meas.push(`PR ${num(m.prMs)} ms`);
  if (m.qrsMs !== undefined) meas.push(`QRS ${num(m.qrsMs)} ms`);
  if (m.qtMs !== undefined) meas.push(`QT ${num(m.qtMs)} ms`);
  if (m.qtcMs !== undefined) meas.push(`QTc ${num(m.qtcMs)} ms`);
  if (m.qtcFridericiaMs !== undefined) meas.push(`QTcF ${num(m.qtcFridericiaMs)} ms`);
  const axes = [
    ["P", m.pAxisDeg],
    ["QRS", m.qrsAxisDeg],
    ["T", m.tAxisDeg],
  ]
    .filter((a) => a[1] !== undefined)
    .map(([k, v]) => `${k} ${num(v as number)}°`);
  if (axes.length > 0) meas.push(`Axes ${axes.join(" ")}`);
  lines.push({
    text: meas.length > 0 ? `Cart measurements: ${meas.join(" · ")}` : "No measurements from the cart",
    cls: "h-measurements",
  });

  const derived = ecg.leads.filter((l) => l.derived).map((l) => l.name);
  const warnings = ecg.warnings.filter((w) => !(w.code === "ECG_DERIVED" && derived.length > 0));
  const room = MAX_HEADER_LINES - lines.length - (derived.length > 0 ? 1 : 0) - Math.min(2, warnings.length);
  const statements = ecg.statements ?? [];
  const shown = statements.slice(0, Math.max(1, room));
  shown.forEach((s, i) => {
    const more =
      i === shown.length - 1 && statements.length > shown.length ? ` (+${statements.length - shown.length} more)` : "";
    lines.push({ text: `${i === 0 ? "Cart interpretation: " : ""}${s}${more}`, cls: "h-statement" });
  });
  if (derived.length > 0)
    lines.push({
      text: `Derived leads (computed from I and II, not recorded): ${derived.join(", ")}`,
      cls: "h-derived",
      colour: COLOURS.warn,
    });
  const warnRoom = Math.max(0, MAX_HEADER_LINES - lines.length);
  warnings.slice(0, warnRoom).forEach((w, i) => {
    const more = i === warnRoom - 1 && warnings.length > warnRoom ? ` (+${warnings.length - warnRoom} more)` : "";
    lines.push({ text: `Warning ${w.code}: ${w.message}${more}`, cls: "h-warning", colour: COLOURS.warn });
  });

  const out = [`<g id="header" fill="${COLOURS.text}" font-size="2.9">`];
  lines.slice(0, MAX_HEADER_LINES).forEach((l, i) => {
    const y = 6 + i * 3.7;
    const maxMm = i === 0 ? L.gridW - 42 : L.gridW;
    out.push(
      `<text class="${l.cls}" x="${L.gridX}" y="${num(y)}"${l.bold ? ` font-weight="bold"` : ""}${l.colour ? ` fill="${l.colour}"` : ""}>${esc(fit(l.text, maxMm / 2.9))}</text>`,
    );
  });
  out.push(
    `<text id="paper-speed" x="${L.gridX + L.gridW}" y="6" font-size="3.4" font-weight="bold" text-anchor="end">25 mm/s · 10 mm/mV</text>`,
  );
  out.push(`</g>`);
  return out;
}

function acquisition(ecg: Ecg12): string {
  if (ecg.acquiredAt) {
    const utc = ecg.acquiredAt.replace("T", " ").replace(/\.000Z$|Z$/, "") + " UTC";
    return ecg.acquiredAtRaw ? `${utc} (device clock ${readableTime(ecg.acquiredAtRaw)})` : utc;
  }
  if (ecg.acquiredAtRaw) return `${readableTime(ecg.acquiredAtRaw)} (device clock, time zone not stated)`;
  return "time unknown";
}

/** "20130125105919" or "2013-01-25T10:59:19" as "2013-01-25 10:59:19"; anything else as it is. */
function readableTime(raw: string): string {
  const ts = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(\.\d+)?([+-]\d{4})?$/.exec(raw);
  if (ts) return `${ts[1]}-${ts[2]}-${ts[3]} ${ts[4]}:${ts[5]}${ts[6] ? `:${ts[6]}` : ""}${ts[8] ? ` ${ts[8]}` : ""}`;
  const iso = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}(?::\d{2})?)(\.\d+)?(.*)$/.exec(raw);
  if (iso) return `${iso[1]} ${iso[2]}${iso[4] ? ` ${iso[4]}` : ""}`;
  return raw;
}

// ---- text -------------------------------------------------------------------------------------------

/** XML-safe text: the five special characters escaped, characters XML 1.0 forbids dropped. */
export function esc(s: string): string {
  return s
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

/**
 * Shortens text to about `ems` font sizes of width: CJK and other wide characters count as one
 * em, the rest as about 0.55.
 */
function fit(s: string, ems: number): string {
  let w = 0;
  let i = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    w +=
      cp >= 0x1100 &&
      (cp <= 0x115f ||
        (cp >= 0x2e80 && cp <= 0xa4cf) ||
        (cp >= 0xac00 && cp <= 0xd7a3) ||
        (cp >= 0xf900 && cp <= 0xfaff) ||
        (cp >= 0xfe30 && cp <= 0xfe4f) ||
        (cp >= 0xff00 && cp <= 0xff60) ||
        cp >= 0x20000)
        ? 1
        : 0.55;
    if (w > ems - 1) return s.slice(0, i) + "…";
    i += ch.length;
  }
  return s;
}

/** A number for SVG: at most `digits` decimals, no trailing zeros, never "NaN" or "-0". */
function num(n: number, digits = 2): string {
  if (!Number.isFinite(n)) return "0";
  let s = n.toFixed(digits);
  if (s.includes(".")) s = s.replace(/0+$/, "").replace(/\.$/, "");
  return s === "-0" ? "0" : s;
}
