// Cases (ambulance missions, clinic visits): open one, scan or type the patient id, tap first
// medical contact and onset, watch the time since first medical contact against the 10-minute
// target, and follow the 12-lead ECG: drawn, sent, received by the center, and the center's reading,
// large enough to be read from the stretcher. The case id is in the address; the patient id never is.
import { api, errorText } from "../api.js";
import { h, replace } from "../dom.js";
import { formatAgo, formatClock, formatDuration, formatTime, t } from "../i18n.js";
import { badge, empty, pageHead } from "./ui.js";
import { callsStemi } from "../reading.js";

/** Time nodes in the order they happen (chest-pain-center accreditation's list, DESIGN.md §1). */
const NODES = ["onset", "dispatch", "fmc", "firstEcg", "ecgSent", "ecgReceived", "ecgRead", "arrival"];
const DEFAULT_TARGET_S = 600;

/**
 * Seconds since first medical contact, as the gateway counts them (its synchronized clock, not the
 * tablet's), moved on locally since the case came while the clock runs (no reading yet, case open).
 */

/** The case's ECG whose reading came last, if any was read. */
function latestReading(ecgs) {
  let newest = null;
  for (const e of ecgs)
    if (e.report && (!newest || Date.parse(e.report.at) >= Date.parse(newest.report.at))) newest = e;
  return newest;
}

/** "HH:MM" on the page's clock as the latest such moment not in the future, in ISO 8601. */
function latestPast(hhmm) {
  const [hh, mm] = hhmm.split(":").map(Number);
  const d = new Date();
  d.setHours(hh, mm, 0, 0);
  if (d.getTime() > Date.now()) d.setDate(d.getDate() - 1);
  return d.toISOString();
}

/**
 * A reading has come: the crew's eyes are on the patient, so the tablet vibrates and sounds (twice
 * for a STEMI) and the reading is scrolled into view.
 */
function announceReading(el, stemi) {
  el.scrollIntoView({ block: "start", behavior: "smooth" });
  navigator.vibrate?.(stemi ? [400, 150, 400, 150, 400] : [300]);
  try {
    const audio = new AudioContext();
    for (let i = 0; i < (stemi ? 3 : 1); i++) {
      const tone = audio.createOscillator();
      tone.frequency.value = stemi ? 880 : 660;
      tone.connect(audio.destination);
      tone.start(audio.currentTime + i * 0.35);
      tone.stop(audio.currentTime + i * 0.35 + 0.2);
    }
    setTimeout(() => void audio.close(), 1500);
  } catch {
    // No audio on this device (or not allowed before a tap): the vibration and the banner remain.
  }
}

/**
 * A time of the case as the page shows it: read from the box's clock before it was synchronized,
 * it waits for the sync (which places it); one the sync could not place is said to be unknown.
 */
function timeOf(c, key, iso) {
  if (c.unplaced?.includes(key)) return t("cases.timeUnknown");
  if (c.unsynced?.includes(key)) return t("cases.timePending");
  return formatTime(iso);
}

export function fmcElapsed(c, receivedAtMs, nowMs) {
  if (!c.nodes?.fmc || typeof c.fmcElapsedS !== "number") return null;
  return c.fmcRunning ? c.fmcElapsedS + (nowMs - receivedAtMs) / 1000 : c.fmcElapsedS;
}

/** Where one ECG stands: its reading, or how far its transfer got. */
function ecgState(e) {
  if (e.report) return `${t("cases.read")}: ${e.report.conclusion}`;
  if (e.transfer?.receipted) return t("cases.received");
  if (e.transfer?.delivered) return t("cases.delivered");
  return t("cases.sending");
}

export function mountCases(view, { can, live, notify, navigate }) {
  const openList = h("div", { class: "case-list", id: "cases-open" });
  const recentList = h("div", { class: "case-list", id: "cases-recent" });
  // The center's readings of ECGs taken outside any case (a clinic that opens none): only shown when there are some.
  const readings = h("section", { id: "readings" });
  const openBtn =
    can("cases") && h("button", { type: "button", class: "primary huge", id: "open-case" }, t("cases.open"));
  openBtn?.addEventListener("click", async () => {
    openBtn.disabled = true;
    try {
      const c = await api("POST", "/api/cases", {});
      navigate(`#/case/${encodeURIComponent(c.id)}`);
    } catch (err) {
      notify(errorText(err));
      openBtn.disabled = false;
    }
  });
  const goTo = h("div", { class: "go-to" });
  view.append(
    pageHead(t("cases.title")),
    openBtn || null,
    goTo,
    readings,
    h("h2", { class: "section" }, t("cases.openCases")),
    openList,
    h("h2", { class: "section" }, t("cases.recent")),
    recentList,
  );

  const row = (c) => {
    const read = latestReading(c.ecgs);
    return h(
      "a",
      {
        class: ["case-row", read && "has-report", read && callsStemi(read.report.conclusion) && "stemi"],
        href: `#/case/${encodeURIComponent(c.id)}`,
      },
      h("span", { class: "case-id" }, c.id),
      h("span", null, formatTime(c.openedAt)),
      c.location && h("span", null, c.location),
      h("span", { class: "case-ecg" }, c.ecg ? ecgState(read ?? c.ecg) : t("cases.noEcg")),
      c.closedAt ? badge(t("cases.closed"), "idle") : badge(t("cases.isOpen"), "ok"),
    );
  };

  async function load() {
    try {
      const [open, recent, read] = await Promise.all([
        api("GET", "/api/cases?state=open"),
        api("GET", "/api/cases?state=recent"),
        api("GET", "/api/readings"),
      ]);
      replace(
        readings,
        read.length > 0 && h("h2", { class: "section" }, t("cases.readingsOutside")),
        read.length > 0 &&
          h(
            "div",
            { class: "case-list" },
            read.map((r) =>
              h(
                "a",
                {
                  class: ["case-row", "has-report", callsStemi(r.conclusion) ? "stemi" : null],
                  href: `/api/ecg/${encodeURIComponent(r.eventId)}/svg`,
                  target: "_blank",
                  rel: "noopener",
                  dataset: { ecg: r.eventId },
                },
                h("span", null, formatTime(r.at)),
                h("strong", { class: "case-ecg" }, r.conclusion),
                h("span", null, r.reader),
              ),
            ),
          ),
      );
      replace(openList, open.length ? open.map(row) : empty(t("cases.noneOpen")));
      // One case at a time here: with one open, the big button leads back to it instead of opening another.
      const current = open.find((c) => !c.location);
      if (openBtn) openBtn.hidden = Boolean(current);
      replace(
        goTo,
        current &&
          h(
            "a",
            { class: "button primary huge", href: `#/case/${encodeURIComponent(current.id)}`, id: "go-to-case" },
            t("cases.goToOpen", { id: current.id }),
          ),
      );
      const closed = recent.filter((c) => !open.some((o) => o.id === c.id));
      replace(recentList, closed.length ? closed.map(row) : empty(t("cases.noneRecent")));
    } catch (err) {
      notify(errorText(err));
    }
  }
  load();
  const offs = [live.on("case", () => load()), live.on("report", (r) => !r.caseId && load()), live.on("resync", load)];
  return () => {
    for (const off of offs) off();
  };
}

export function mountCase(view, { can, live, notify, navigate }, id) {
  let c = null;
  let receivedAt = 0;
  const mayAct = can("cases");
  const head = h("div", { class: "page-head" });
  const report = h("div", { id: "report" });
  const timer = h("section", { class: "timer", id: "fmc-timer", "aria-live": "off" });
  const taps = h("div", { class: "taps" });
  const patient = h("section", { class: "card patient" });
  const nodes = h("section", { class: "card nodes" });
  const ecg = h("section", { class: "card ecg", id: "ecg" });
  view.append(head, report, timer, taps, h("div", { class: "case-cols" }, h("div", null, patient, nodes), ecg));

  // The patient id form is built once, so a scan in progress is not wiped by a live update.
  const pid = h("input", {
    name: "patientId",
    id: "patient-id",
    autocomplete: "off",
    autocapitalize: "none",
    spellcheck: "false",
    maxLength: 64,
    enterKeyHint: "done",
    placeholder: t("cases.patientPlaceholder"),
  });
  const pidForm = h("form", { class: "inline" }, pid, h("button", { type: "submit" }, t("cases.patientSave")));
  const pidNow = h("p", { class: "patient-now" });
  pidForm.addEventListener("submit", async (ev) => {
    // A keyboard-wedge scanner types the code and presses Enter: that submits.
    ev.preventDefault();
    const value = pid.value.trim();
    if (!value) return;
    try {
      update(await api("POST", `/api/cases/${encodeURIComponent(id)}/patient`, { patientId: value }));
      pid.value = "";
      notify(t("cases.patientSaved"), "ok");
    } catch (err) {
      notify(errorText(err));
    }
  });
  replace(
    patient,
    h("h2", null, t("cases.patient")),
    pidNow,
    mayAct && pidForm,
    mayAct && h("p", { class: "hint" }, t("cases.scanHint")),
  );

  /**
   * A tap records the time now, or the time typed beside the button: onset is often told by the
   * patient ("two hours ago"). Once recorded, a node is never overwritten by another tap (a stray
   * tap, a scanner's Enter): it changes only by a correction, with the time it really was typed
   * beside it and confirmed; the server audits what it was before.
   */
  function tapControl(node, label) {
    const at = h("input", { type: "time", name: `${node}At`, id: `${node}-at`, "aria-label": t(label) });
    const button = h("button", {
      type: "button",
      class: "tap",
      id: `tap-${node}`,
      onclick: async () => {
        // The scanner's field owns the keyboard: the next scan must not land on this button.
        button.blur();
        const recorded = c?.nodes?.[node];
        const typed = at.value ? latestPast(at.value) : undefined;
        if (recorded && !typed) {
          notify(t("cases.correctHow", { node: t(`node.${node}`) }), "info");
          at.focus();
          return;
        }
        if (recorded && !window.confirm(correctionQuestion(node, recorded, typed))) return;
        try {
          const body = recorded ? { node, at: typed, correct: true } : typed ? { node, at: typed } : { node };
          update(await api("POST", `/api/cases/${encodeURIComponent(id)}/nodes`, body));
          at.value = "";
        } catch (err) {
          notify(errorText(err));
        }
        if (mayAct && !c?.closedAt && !c?.patientId) pid.focus();
      },
    });
    return {
      button,
      at,
      group: h("div", { class: "tap-group" }, button, h("label", { class: "tap-at" }, h("span", null, t(label)), at)),
    };
  }

  /** The question a correction asks, louder when it moves the node by an hour or more. */
  function correctionQuestion(node, from, to) {
    const q = t("cases.confirmCorrect", { node: t(`node.${node}`), from: formatTime(from), to: formatTime(to) });
    return Math.abs(Date.parse(to) - Date.parse(from)) >= 3_600_000
      ? `${q}\n\n${t("cases.correctFar", { d: formatDuration(Math.abs(Date.parse(to) - Date.parse(from)) / 1000) })}`
      : q;
  }

  // A keyboard-wedge scanner types fast and ends with Enter. Keys typed while no field has the focus
  // go to the patient id field, and their Enter submits it, never the button that had the focus.
  const onKey = (ev) => {
    if (!mayAct || c?.closedAt || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (["INPUT", "TEXTAREA", "SELECT"].includes(ev.target?.tagName)) return;
    if (ev.key.length === 1) {
      ev.preventDefault();
      pid.value += ev.key;
      pid.focus();
    } else if (ev.key === "Enter" && pid.value) {
      ev.preventDefault();
      pidForm.requestSubmit();
    }
  };
  document.addEventListener("keydown", onKey);
  const fmc = tapControl("fmc", "cases.fmcAt");
  const onset = tapControl("onset", "cases.onsetAt");
  if (mayAct) replace(taps, fmc.group, onset.group);

  function renderTimer() {
    if (!c) return;
    const target = c.targetS ?? DEFAULT_TARGET_S;
    const elapsed = fmcElapsed(c, receivedAt, Date.now());
    if (elapsed === null) {
      timer.className = "timer idle";
      replace(timer, h("span", { class: "timer-label" }, t(c.nodes?.fmc ? "cases.clockUnknown" : "cases.noFmc")));
      return;
    }
    const over = elapsed > target;
    const done = !c.fmcRunning;
    timer.className = `timer ${over ? "over" : "ok"}${done ? " done" : ""}`;
    replace(
      timer,
      h("span", { class: "timer-label" }, t(c.nodes.ecgRead ? "cases.fmcToRead" : "cases.sinceFmc")),
      h("span", { class: "timer-value" }, formatClock(elapsed)),
      h("span", { class: "timer-units" }, t("cases.clockUnits")),
      h(
        "span",
        { class: "timer-target" },
        over
          ? t("cases.overTarget", { d: formatDuration(elapsed - target) })
          : t("cases.target", { d: formatClock(target) }),
      ),
    );
  }

  function render() {
    const closed = Boolean(c.closedAt);
    replace(
      head,
      h("h1", null, t("cases.case"), " ", h("span", { class: "case-id" }, c.id)),
      h(
        "div",
        { class: "actions" },
        closed ? badge(t("cases.closed"), "idle") : badge(t("cases.isOpen"), "ok"),
        mayAct && !closed && h("button", { type: "button", class: "danger", onclick: closeCase }, t("cases.close")),
        h("button", { type: "button", class: "quiet", onclick: () => navigate("#/cases") }, t("cases.back")),
      ),
    );
    // The newest reading of any of the case's ECGs: a STEMI called on the first stays in sight while a
    // second, taken since, waits for its own reading.
    const read = latestReading(c.ecgs);
    const r = read?.report;
    replace(
      report,
      r &&
        h(
          "section",
          { class: ["report", callsStemi(r.conclusion) ? "alert" : null] },
          h("span", { class: "report-label" }, t("cases.centerReading")),
          h("strong", { class: "report-conclusion" }, r.conclusion),
          h("span", { class: "report-by" }, t("cases.readBy", { reader: r.reader, at: formatTime(r.at) })),
          c.ecgs.length > 1 &&
            h("span", { class: "report-of" }, t("cases.readingOf", { at: formatTime(read.acquiredAt) })),
          r.text && h("p", { class: "report-text" }, r.text),
        ),
    );
    for (const control of [fmc, onset]) control.button.disabled = control.at.disabled = closed;
    for (const [control, node, title] of [
      [fmc, "fmc", "cases.tapFmc"],
      [onset, "onset", "cases.tapOnset"],
    ]) {
      replace(
        control.button,
        h("span", null, t(title)),
        h("small", null, c.nodes[node] ? t("cases.tappedAt", { at: formatTime(c.nodes[node]) }) : t("cases.tapNow")),
      );
      control.button.classList.toggle("recorded", Boolean(c.nodes[node]));
    }
    replace(
      pidNow,
      c.patientId
        ? h("span", null, t("cases.patientIs"), " ", h("strong", { class: "pid" }, c.patientId))
        : h("span", { class: "empty" }, t("cases.noPatient")),
    );
    pidForm.hidden = closed;
    replace(
      nodes,
      h("h2", null, t("cases.nodes")),
      h(
        "ol",
        { class: "node-list" },
        NODES.map((n) =>
          h(
            "li",
            { class: c.nodes[n] ? "done" : "todo", dataset: { node: n } },
            h("span", null, t(`node.${n}`)),
            h("time", { datetime: c.nodes[n] ?? "" }, c.nodes[n] ? timeOf(c, n, c.nodes[n]) : "—"),
            n === "arrival" && c.arrivalPlace ? h("small", null, c.arrivalPlace) : null,
          ),
        ),
      ),
      h(
        "p",
        { class: "hint" },
        t("cases.openedBy", { by: c.openedBy ?? "—", at: timeOf(c, "openedAt", c.openedAt) }),
        c.location ? ` · ${c.location}` : "",
        c.closedAt ? ` · ${t("cases.closedAt", { at: timeOf(c, "closedAt", c.closedAt) })}` : "",
      ),
    );
    renderEcg();
    renderTimer();
  }

  /** Each device's name by id, for the list of the case's ECGs (which says which cart took each). */
  const deviceNames = new Map();
  let shownEcg = null;
  /** The ECG picked from the case's list; the latest when none was. */
  let pickedEcg = null;
  function renderEcg() {
    const all = c.ecgs;
    const e = all.find((x) => x.eventId === pickedEcg) ?? c.ecg;
    if (!e) {
      shownEcg = null;
      replace(ecg, h("h2", null, t("cases.ecg")), empty(t("cases.noEcgYet")));
      return;
    }
    const tr = e.transfer ?? {};
    const parts = Math.max(1, tr.parts ?? 1);
    // The drawing is kept across updates (the same event): re-creating the <img> would flash.
    let img = ecg.querySelector("img.ecg-img");
    if (!img || shownEcg !== e.eventId) {
      img = h("img", {
        class: "ecg-img",
        src: `/api/ecg/${encodeURIComponent(e.eventId)}/svg`,
        alt: t("cases.ecgAlt"),
      });
      shownEcg = e.eventId;
    }
    replace(
      ecg,
      h(
        "h2",
        null,
        t("cases.ecg"),
        " ",
        h(
          "small",
          { class: "acquired" },
          t(e.tFrom === "recv" ? "cases.arrived" : "cases.acquired", {
            at: formatTime(e.acquiredAt),
            ago: formatAgo(e.acquiredAt),
          }),
        ),
      ),
      h(
        "div",
        { class: "transfer" },
        h("progress", { max: parts, value: Math.min(tr.sent ?? 0, parts), "aria-label": t("cases.transfer") }),
        h(
          "span",
          { class: "transfer-text" },
          tr.delivered ? t("cases.delivered") : t("cases.sent", { sent: tr.sent ?? 0, parts }),
        ),
        tr.receipted ? badge(`✓ ${t("cases.received")}`, "ok received") : badge(t("cases.notReceived"), "idle"),
      ),
      h("a", { href: img.src, target: "_blank", rel: "noopener", class: "ecg-link" }, img),
      all.length > 1 &&
        h(
          "ol",
          { class: "ecg-list", "aria-label": t("cases.ecgList") },
          [...all].reverse().map((x) =>
            h(
              "li",
              null,
              h(
                "button",
                {
                  type: "button",
                  class: ["quiet", x.eventId === e.eventId ? "picked" : null],
                  "aria-pressed": String(x.eventId === e.eventId),
                  dataset: { ecg: x.eventId },
                  onclick: () => {
                    pickedEcg = x.eventId;
                    renderEcg();
                  },
                },
                h("time", { datetime: x.acquiredAt }, formatTime(x.acquiredAt)),
                x.tFrom === "recv" && h("small", null, ` ${t("cases.ecgArrivalTime")}`),
                x.device && h("span", { class: "ecg-source" }, ` · ${deviceNames.get(x.device) ?? x.device}`),
                " · ",
                h(x.report ? "strong" : "span", null, ecgState(x)),
              ),
            ),
          ),
        ),
    );
  }

  /** Readings this page has shown: a new one is announced (vibration, a tone) and brought into view. */
  let readingsSeen = null;
  function update(next) {
    c = next;
    receivedAt = Date.now();
    render();
    const read = c.ecgs.filter((e) => e.report).map((e) => `${e.eventId}@${e.report.at}`);
    if (readingsSeen && read.some((r) => !readingsSeen.has(r)))
      announceReading(report, callsStemi(latestReading(c.ecgs).report.conclusion));
    readingsSeen = new Set(read);
  }

  async function closeCase() {
    if (!window.confirm(t("cases.confirmClose"))) return;
    try {
      update(await api("POST", `/api/cases/${encodeURIComponent(id)}/close`));
    } catch (err) {
      notify(errorText(err));
    }
  }

  async function load(focus = true) {
    try {
      update(await api("GET", `/api/cases/${encodeURIComponent(id)}`));
      if (focus && mayAct && !c.closedAt && !c.patientId) pid.focus();
    } catch (err) {
      notify(errorText(err));
    }
  }
  load();

  // An ECG cart's file that could not be read (set aside in its folder's rejected/), or one sent
  // again and recognised: the crew is told in words, from the cart's counts in its device status.
  const carts = new Map();
  const cartCounts = (d) => ({ rejected: d.rejected ?? 0, again: d.conditions?.VG_ALREADY_RECEIVED ?? 0 });
  api("GET", "/api/devices").then(
    (list) => {
      for (const d of list) deviceNames.set(d.id, d.name || d.id);
      if (c) renderEcg();
      for (const d of list) if (d.driver === "ecg-cart" && !carts.has(d.id)) carts.set(d.id, cartCounts(d));
    },
    () => undefined, // without a baseline, each cart's first change only sets it
  );
  function cartChanged(d) {
    if (d?.driver !== "ecg-cart") return;
    const before = carts.get(d.id);
    const now = cartCounts(d);
    carts.set(d.id, now);
    if (!before) return;
    if (now.rejected > before.rejected) {
      const reason = t(/TRUNCATED/.test(d.lastError?.code ?? "") ? "cases.ecgTruncated" : "cases.ecgNotEcg");
      notify(t("cases.ecgUnreadable", { reason }));
    } else if (now.again > before.again) {
      notify(t("cases.ecgAgain"), "info");
    }
  }

  const offs = [
    live.on("device", cartChanged),
    live.on("case", (next) => next?.id === id && update(next)),
    live.on("report", (r) => (r.caseId === id || r.eventId === c?.ecg?.eventId) && load(false)),
    live.on("resync", () => load(false)),
  ];
  const tick = setInterval(renderTimer, 1000);
  return () => {
    for (const off of offs) off();
    clearInterval(tick);
    document.removeEventListener("keydown", onKey);
  };
}
