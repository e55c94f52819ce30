// The worklist: ECGs stored at the center and waiting to be read, oldest first medical contact first,
// each with its clock since FMC (the 10-minute target); a row opens the ECG. Updated live.
import { api, errorText } from "../api.js";
import { h, replace } from "../dom.js";
import { formatTime, t } from "../i18n.js";
import { badge, empty, pageHead } from "./ui.js";
import { fmcClock, serverClock } from "./center-clock.js";

const COLUMNS = [
  "worklist.clock",
  "worklist.gw",
  "worklist.case",
  "worklist.acquired",
  "worklist.hr",
  "worklist.statement",
];

export function mountWorklist(view, { live, notify, navigate }) {
  const clock = serverClock();
  const tbody = h("tbody");
  const table = h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "worklist", id: "worklist" },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          COLUMNS.map((k) => h("th", null, t(k))),
        ),
      ),
      tbody,
    ),
  );
  const none = empty(t("worklist.empty"));
  view.append(pageHead(t("worklist.title")), table, none);
  let data = null;

  function render() {
    const list = data?.ecgs ?? [];
    table.hidden = list.length === 0;
    none.hidden = list.length > 0;
    replace(
      tbody,
      list.map((e) =>
        h(
          "tr",
          {
            class: "worklist-row",
            dataset: { event: e.eventId },
            tabindex: "0",
            onclick: () => navigate(`#/ecg/${encodeURIComponent(e.eventId)}`),
            onkeydown: (ev) => ev.key === "Enter" && navigate(`#/ecg/${encodeURIComponent(e.eventId)}`),
          },
          h(
            "td",
            null,
            fmcClock(e.fmc, data.readingTargetMin, clock.now()),
            e.fmcUnsynced ? [" ", badge(t("worklist.unsynced"), "warn")] : null,
          ),
          h("td", null, e.gw),
          h("td", null, e.caseId ?? "—"),
          h("td", null, formatTime(e.t)),
          h("td", null, e.heartRate ?? "—"),
          h("td", null, e.statement ?? "", e.fileError ? [" ", badge(t("worklist.fileError"), "bad")] : null),
        ),
      ),
    );
  }

  async function load() {
    try {
      data = await api("GET", "/api/worklist");
      clock.sync(data.now);
      render();
    } catch (err) {
      notify(errorText(err));
    }
  }

  const tick = setInterval(render, 1000);
  const offs = ["ecg", "reading", "case", "resync"].map((type) => live.on(type, () => load()));
  load();
  return () => {
    clearInterval(tick);
    for (const off of offs) off();
  };
}
