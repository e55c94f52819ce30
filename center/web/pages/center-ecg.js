// One ECG to read: drawn on standard paper (25 mm/s, 10 mm/mV; the server's SVG, as the gateway's
// case page has it), the cart's measurements and statements, the patient as the cart recorded them,
// the file's check, the case's time nodes with the clock since first medical contact, and the
// cardiologist's reading (STEMI / not STEMI / other, free text), sent to the crew as the contract's
// report.
import { api, errorText } from "../api.js";
import { h, replace } from "../dom.js";
import { formatTime, t } from "../i18n.js";
import { callsStemi } from "../reading.js";
import { badge, card, empty, kv, pageHead } from "./ui.js";
import { fmcClock, serverClock } from "./center-clock.js";

const MEASUREMENTS = [
  "heartRate",
  "rrMs",
  "prMs",
  "qrsMs",
  "qtMs",
  "qtcMs",
  "qtcFridericiaMs",
  "pAxisDeg",
  "qrsAxisDeg",
  "tAxisDeg",
];
/** The case's times in the chest-pain center audit's order; received and read are the center's own. */
const NODES = ["onset", "dispatch", "fmc", "firstEcg", "ecgSent", "ecgReceived", "ecgRead", "arrival"];

/** How far the reading got: shown on the crew's page (the gateway acknowledged it), refused, at the broker, or waiting. */
function readingState(r) {
  if (r.ackedAt && !r.error) return badge(t("reading.shown"), "ok");
  if (r.error) return [badge(t("reading.refused"), "bad"), " ", r.error];
  return badge(t(r.sentAt ? "reading.delivered" : "reading.pending"), r.sentAt ? "idle" : "warn");
}

export function mountEcg(view, { can, live, notify }, eventId) {
  const clock = serverClock();
  const head = pageHead(t("ecg.title"), h("a", { href: "#/worklist", class: "quiet" }, t("ecg.back")));
  const timer = h("div", { class: "ecg-clock", id: "ecg-clock" });
  const paper = h("figure", { class: "ecg-paper" });
  const reading = h("section", { class: "card", id: "reading" });
  const facts = h("div", { class: "ecg-facts" });
  view.append(head, timer, paper, reading, facts);
  let e = null;
  let editing = false;

  function renderTimer() {
    if (!e) return;
    const fmc = e.case?.nodes?.fmc;
    replace(
      timer,
      h("span", { class: "timer-label" }, t("worklist.clock")),
      " ",
      fmcClock(fmc, e.readingTargetMin, clock.now(), e.reading?.at),
    );
  }

  function renderReading() {
    const r = e.reading;
    if (r && !editing) {
      replace(
        reading,
        h("h2", null, t("reading.title")),
        h(
          "div",
          { class: ["report", callsStemi(r.conclusion) ? "alert" : null], id: "reading-result" },
          h("strong", { class: "report-conclusion" }, r.conclusion),
          h("span", { class: "report-by" }, t("reading.by", { reader: r.reader, at: formatTime(r.at) })),
          r.text && h("p", { class: "report-text" }, r.text),
          h("p", { id: "reading-state" }, readingState(r)),
        ),
        can("reading") &&
          h("button", { type: "button", onclick: () => ((editing = true), renderReading()) }, t("reading.again")),
      );
      return;
    }
    if (!can("reading")) {
      replace(reading, h("h2", null, t("reading.title")), empty(t("reading.noRight")));
      return;
    }
    const choice = (value, key) =>
      h(
        "label",
        { class: "choice" },
        h("input", { type: "radio", name: "verdict", value, required: true }),
        h("span", null, t(key)),
      );
    const conclusion = h("input", { name: "conclusion", maxLength: 200 });
    const text = h("textarea", { name: "text", rows: 3, maxLength: 10000 });
    const submit = h("button", { type: "submit", class: "primary big" }, t("reading.submit"));
    const form = h(
      "form",
      { id: "reading-form" },
      h("h2", null, t("reading.title")),
      h(
        "div",
        { class: "choices" },
        choice("stemi", "reading.stemi"),
        choice("not-stemi", "reading.notStemi"),
        choice("other", "reading.other"),
      ),
      h("label", { class: "field" }, h("span", null, t("reading.conclusion")), conclusion),
      h("label", { class: "field" }, h("span", null, t("reading.text")), text),
      submit,
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const verdict = form.elements.verdict.value;
      submit.disabled = true;
      try {
        await api("POST", `/api/ecgs/${encodeURIComponent(eventId)}/reading`, {
          verdict,
          ...(conclusion.value.trim() ? { conclusion: conclusion.value.trim() } : {}),
          ...(text.value.trim() ? { text: text.value.trim() } : {}),
        });
        notify(t("reading.sent"), "ok");
        editing = false;
        await load();
      } catch (err) {
        notify(errorText(err));
      } finally {
        submit.disabled = false;
      }
    });
    replace(reading, form);
  }

  function render() {
    replace(
      paper,
      h("img", { class: "ecg-img", src: `/api/ecgs/${encodeURIComponent(eventId)}/svg`, alt: t("ecg.img") }),
      h("figcaption", null, t("ecg.paper")),
    );
    const m = e.measurements ?? {};
    const p = e.patient ?? {};
    const nodes = { ...(e.case?.nodes ?? {}) };
    if (e.case?.received) nodes.ecgReceived = e.case.received;
    if (e.case?.read) nodes.ecgRead = e.case.read;
    replace(
      facts,
      card(
        t("ecg.source"),
        {},
        kv([
          [t("ecg.source"), e.gw],
          [t("times.case"), e.caseId ?? "—"],
          [t("ecg.acquired"), formatTime(e.acquiredAt ?? e.t)],
          [t("ecg.received"), formatTime(e.storedAt)],
          [t("ecg.device"), [e.device?.make, e.device?.model, e.device?.serial].filter(Boolean).join(" ")],
        ]),
      ),
      card(
        t("ecg.measurements"),
        { id: "measurements" },
        kv(MEASUREMENTS.filter((k) => m[k] !== undefined).map((k) => [t(`ecg.m.${k}`), String(m[k])])),
      ),
      card(
        t("ecg.statements"),
        { id: "statements" },
        (e.statements ?? []).length
          ? h(
              "ul",
              null,
              e.statements.map((s) => h("li", null, s)),
            )
          : empty("—"),
        (e.warnings ?? []).length > 0 &&
          h(
            "ul",
            { class: "warnings" },
            e.warnings.map((w) => h("li", null, badge(w.code, "warn"), " ", w.message)),
          ),
      ),
      card(
        t("ecg.patient"),
        {},
        kv([
          [t("ecg.patientId"), p.id],
          [t("ecg.patientName"), p.name],
          [t("ecg.patientSex"), p.sex],
          [t("ecg.patientBirth"), p.birthDate],
        ]),
      ),
      card(
        t("ecg.file"),
        { id: "file" },
        e.file.stored
          ? [
              h("p", null, badge(t("ecg.fileOk"), "ok")),
              kv([
                ["SHA-256", h("code", null, e.file.sha256)],
                ["bytes", String(e.file.bytes)],
              ]),
              can("reading") &&
                h("a", { href: `/api/ecgs/${encodeURIComponent(eventId)}/original`, download: "" }, t("ecg.download")),
            ]
          : h("p", null, badge(e.file.error ?? t("ecg.fileMissing"), e.file.error ? "bad" : "warn")),
      ),
      card(
        t("nodes.title"),
        { id: "nodes" },
        h(
          "dl",
          { class: "kv node-list" },
          NODES.map((n) => [
            h("dt", null, t(`node.${n}`)),
            h("dd", { dataset: { node: n } }, nodes[n] ? formatTime(nodes[n]) : t("nodes.none")),
          ]),
        ),
      ),
    );
    renderTimer();
    renderReading();
  }

  async function load() {
    try {
      e = await api("GET", `/api/ecgs/${encodeURIComponent(eventId)}`);
      clock.sync(e.now);
      render();
    } catch (err) {
      if (err.status === 404) replace(view, head, empty(t("ecg.notFound")));
      else notify(errorText(err));
    }
  }

  const tick = setInterval(renderTimer, 1000);
  const offs = [
    live.on("reading", (m) => m.id === eventId && !editing && load()),
    live.on("case", () => !editing && load()),
    live.on("resync", () => !editing && load()),
  ];
  load();
  return () => {
    clearInterval(tick);
    for (const off of offs) off();
  };
}
