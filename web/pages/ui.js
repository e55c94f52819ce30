// Pieces the pages share: cards with a state colour, label/value lists, state badges.
import { h } from "../dom.js";
import { has, t } from "../i18n.js";

/**
 * The colour of a state at a glance (issue 6): green data flowing, amber silent or trying, red
 * faulted, grey stopped or idle.
 */
export function tone(deviceState) {
  switch (deviceState) {
    case "connected":
      return "ok";
    case "listening":
      return "idle";
    case "silent":
    case "stale":
    case "connecting":
    case "retrying":
    case "starting":
      return "warn";
    case "faulted":
      return "bad";
    default:
      return "idle";
  }
}

export function badge(text, kind) {
  return h("span", { class: `badge ${kind}` }, text);
}

/** A card with a title and, when given, a coloured state line. */
export function card(title, { kind, state, cls, id } = {}, ...body) {
  return h(
    "section",
    { class: ["card", kind && `tone-${kind}`, cls], id },
    h("h2", null, title),
    state !== undefined && h("p", { class: "state-line" }, h("span", { class: "dot", "aria-hidden": "true" }), state),
    ...body,
  );
}

/** Label/value pairs; rows with an undefined value are left out. */
export function kv(rows) {
  return h(
    "dl",
    { class: "kv" },
    rows
      .filter(([, v]) => v !== undefined && v !== null && v !== "")
      .map(([k, v]) => [h("dt", null, k), h("dd", null, v)]),
  );
}

/** A page's heading line with optional actions at its right. */
export function pageHead(title, ...actions) {
  return h("div", { class: "page-head" }, h("h1", null, title), h("div", { class: "actions" }, ...actions));
}

export function empty(text) {
  return h("p", { class: "empty" }, text);
}

/** A translated label for a key family, falling back to the raw value when there is no entry. */
export function label(prefix, value) {
  return has(`${prefix}.${value}`) ? t(`${prefix}.${value}`) : String(value);
}

/** A measurement's name (MDC reference id): translated where the dictionary has it, else the id without its prefix. */
export function obsLabel(code) {
  return has(`obs.${code}`) ? t(`obs.${code}`) : String(code).replace(/^MDC_/, "");
}

/**
 * A UCUM unit as a monitor prints it (UCUM, unitsofmeasure.org: Cel is degrees Celsius, mm[Hg]
 * millimetres of mercury, [in_i] inches...); units not listed are shown as they are.
 */
const UNIT_DISPLAY = { Cel: "°C", "mm[Hg]": "mmHg", "cm[H2O]": "cmH₂O", "[degF]": "°F", "L/min": "L/min", mL: "mL" };
export function unitLabel(unit) {
  return unit ? (UNIT_DISPLAY[unit] ?? unit) : "";
}

/** A value as a monitor shows it: integers as they are, others to one or two decimals. */
export function formatValue(v) {
  if (typeof v !== "number") return String(v ?? "—");
  return Number.isInteger(v) ? String(v) : v.toFixed(Math.abs(v) < 10 ? 2 : 1);
}

/** A lab result's quality as marks before and after its number. */
const QUALITY_MARK = { "below-limit": ["<", ""], "above-limit": [">", ""], questionable: ["", "?"] };

/** One line saying what a decoded event (or a draft of one) holds: "心率 HR 72 /min · SpO₂ 98 %". */
export function summarize(ev) {
  const b = ev?.body ?? {};
  const kind = label("kind", ev?.kind ?? "?");
  switch (ev?.kind) {
    case "vitals":
      return `${kind}: ${(b.observations ?? [])
        .slice(0, 6)
        .map((o) => `${obsLabel(o.code)} ${formatValue(o.value)} ${unitLabel(o.unit)}`.trim())
        .join(" · ")}`;
    case "position":
      return `${kind}: ${formatValue(b.lat)}, ${formatValue(b.lon)}${b.speedMps !== undefined ? ` · ${formatValue(b.speedMps)} m/s` : ""}`;
    case "ecg12":
      return `${kind}: ${t("ecg.leads", { n: (b.leads ?? []).length })}${b.durationS ? ` · ${formatValue(b.durationS)} s` : ""}`;
    case "lab":
      // a qualified value shows how: "<0.3" is below the analyser's range, "7.35?" doubted (drivers/astm-analyzer/values.ts)
      return `${kind}: ${(b.results ?? [])
        .slice(0, 6)
        .map((r) =>
          `${r.name ?? r.code} ${QUALITY_MARK[r.quality]?.[0] ?? ""}${formatValue(r.value)}${QUALITY_MARK[r.quality]?.[1] ?? ""} ${unitLabel(r.unit)}`.trim(),
        )
        .join(" · ")}`;
    case "alarm":
      return `${kind}: ${b.text ?? b.code ?? ""}`;
    case "waveform":
      return `${kind}: ${obsLabel(b.channel)} ${b.fs ?? "?"} Hz`;
    default:
      return `${kind}: ${JSON.stringify(b).slice(0, 120)}`;
  }
}
