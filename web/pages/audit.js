// The audit trail (admin): every login, pairing change, case action and config reload, newest first,
// with the state of its hash chain said plainly: intact, or the first record that was changed or removed.
import { api, errorText } from "../api.js";
import { h, replace } from "../dom.js";
import { formatTime, t } from "../i18n.js";
import { badge, empty, label, pageHead } from "./ui.js";

const PAGE = 100;
const COLUMNS = [
  "audit.seq",
  "audit.at",
  "audit.actor",
  "audit.action",
  "audit.target",
  "audit.result",
  "audit.detail",
  "audit.ip",
];

export function mountAudit(view, { notify }) {
  const chain = h("div", { id: "chain" });
  const tbody = h("tbody");
  const more = h("button", { type: "button", hidden: true }, t("audit.older"));
  view.append(
    pageHead(t("audit.title"), h("button", { type: "button", onclick: () => load() }, t("pairing.refresh"))),
    chain,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "audit stack", id: "audit" },
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
    ),
    more,
  );
  let oldest = null;

  function rows(list) {
    // data-label: on a phone each row becomes a small card, each cell with its column's name (table.stack).
    const cell = (i, cls, ...content) => h("td", { class: cls, "data-label": t(COLUMNS[i]) }, ...content);
    return list.map((r) =>
      h(
        "tr",
        { class: `result-${r.result}`, dataset: { seq: String(r.seq) } },
        cell(0, "num", String(r.seq)),
        cell(1, "nowrap", formatTime(r.at)),
        cell(2, null, r.actor),
        cell(3, null, label("action", r.action)),
        cell(4, null, r.target ?? ""),
        cell(
          5,
          null,
          badge(label("result", r.result), r.result === "ok" ? "ok" : r.result === "denied" ? "warn" : "bad"),
        ),
        cell(
          6,
          "detail",
          r.detail && Object.keys(r.detail).length
            ? Object.entries(r.detail)
                .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)
                .join(", ")
            : "",
        ),
        cell(7, null, r.ip ?? ""),
      ),
    );
  }

  async function load(before) {
    try {
      const q = new URLSearchParams({ limit: String(PAGE) });
      if (before !== undefined) q.set("before", String(before));
      const res = await api("GET", `/api/audit?${q}`);
      const c = res.chain ?? {};
      replace(
        chain,
        c.ok
          ? h(
              "section",
              { class: "banner ok", id: "chain-ok" },
              h("strong", null, t("audit.intact")),
              " ",
              t("audit.checked", { n: c.checked ?? 0 }),
            )
          : h(
              "section",
              { class: "banner bad", id: "chain-bad" },
              h("strong", null, t("audit.broken")),
              " ",
              c.firstBad ? t("audit.firstBad", { seq: c.firstBad.seq, reason: c.firstBad.reason }) : "",
            ),
      );
      if (before === undefined) replace(tbody);
      tbody.append(...rows(res.rows ?? []));
      if (before === undefined && !(res.rows ?? []).length)
        replace(tbody, h("tr", null, h("td", { colSpan: 8 }, empty(t("audit.none")))));
      oldest = res.rows?.length ? res.rows[res.rows.length - 1].seq : null;
      more.hidden = (res.rows?.length ?? 0) < PAGE;
    } catch (err) {
      notify(errorText(err));
    }
  }
  more.addEventListener("click", () => oldest !== null && load(oldest));
  load();
}
