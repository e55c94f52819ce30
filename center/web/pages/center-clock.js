// The 10-minute clock of the chest-pain center: time since first medical contact, against the reading
// target. Counted on the server's clock (the page's own may be wrong): the offset is taken from the
// `now` of each answer.
import { h } from "../dom.js";
import { formatClock, t } from "../i18n.js";

export function serverClock() {
  let offsetMs = 0;
  return {
    /** The server's `now` (ISO) of an answer, to count from. */
    sync(nowIso) {
      const ms = Date.parse(nowIso);
      if (Number.isFinite(ms)) offsetMs = ms - Date.now();
    },
    now: () => Date.now() + offsetMs,
  };
}

/** The clock since `fmcIso` (mm:ss), red once past `targetMin`; done (not counting) once read at `readIso`. */
export function fmcClock(fmcIso, targetMin, nowMs, readIso) {
  if (!fmcIso) return h("span", { class: "fmc-clock idle" }, t("worklist.noFmc"));
  const end = readIso ? Date.parse(readIso) : nowMs;
  const s = (end - Date.parse(fmcIso)) / 1000;
  const over = s > targetMin * 60;
  return h(
    "span",
    {
      class: ["fmc-clock", over ? "over" : "ok", readIso && "done"],
      title: over ? t("worklist.overTarget", { min: targetMin }) : undefined,
    },
    formatClock(s),
  );
}
