// The cases' time nodes as the chest-pain center audit lists them (onset, dispatch, first medical
// contact, first ECG, ECG sent, received here, read here, arrival), the last 7 days, and their CSV
// export (all columns, RFC 4180, UTC times: GET /api/cases.csv).
import { api, errorText } from "../api.js";
import { h, replace } from "../dom.js";
import { formatTime, t } from "../i18n.js";
import { empty, pageHead } from "./ui.js";

const NODES = ["fmc", "firstEcg", "ecgSent", "ecgReceived", "ecgRead", "arrival"];

export function mountTimes(view, { live, notify }) {
  const tbody = h("tbody");
  const table = h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "times", id: "times" },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          h("th", null, t("times.gw")),
          h("th", null, t("times.case")),
          NODES.map((n) => h("th", null, t(`node.${n}`))),
          h("th", null, t("times.fmcToRead")),
          h("th", null, t("reading.conclusion")),
        ),
      ),
      tbody,
    ),
  );
  const none = empty(t("times.empty"));
  view.append(
    pageHead(
      t("times.title"),
      h("a", { href: "/api/cases.csv", id: "export-csv", class: "button", download: "" }, t("times.export")),
    ),
    table,
    none,
  );

  async function load() {
    try {
      const { cases } = await api("GET", "/api/cases");
      table.hidden = cases.length === 0;
      none.hidden = cases.length > 0;
      replace(
        tbody,
        cases.map((c) => {
          const nodes = {
            ...c.nodes,
            ...(c.received ? { ecgReceived: c.received } : {}),
            ...(c.read ? { ecgRead: c.read } : {}),
          };
          const fmcToRead =
            nodes.fmc && nodes.ecgRead ? (Date.parse(nodes.ecgRead) - Date.parse(nodes.fmc)) / 60_000 : null;
          return h(
            "tr",
            { dataset: { case: c.caseId } },
            h("td", null, c.gw),
            h("td", null, c.caseId),
            NODES.map((n) => h("td", { dataset: { node: n } }, nodes[n] ? formatTime(nodes[n]) : "—")),
            h("td", null, fmcToRead === null ? "—" : `${fmcToRead.toFixed(1)} min`),
            h("td", null, c.conclusion ?? ""),
          );
        }),
      );
    } catch (err) {
      notify(errorText(err));
    }
  }

  const offs = ["case", "reading", "ecg", "resync"].map((type) => live.on(type, () => load()));
  load();
  return () => offs.forEach((off) => off());
}
