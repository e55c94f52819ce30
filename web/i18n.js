// Every word the page shows, in Simplified Chinese (the default: most users read only Chinese) and
// English, switched on the page and remembered in localStorage. Both dictionaries hold the same
// keys (test/web-i18n.test.ts checks it, and that the page's code asks only for keys that exist).
import { STRINGS } from "./strings.js";

export const LANGS = ["zh-CN", "en"];
const STORAGE_KEY = "vitalgate.lang";

function stored() {
  try {
    const v = globalThis.localStorage?.getItem(STORAGE_KEY);
    return LANGS.includes(v) ? v : "zh-CN";
  } catch {
    return "zh-CN";
  }
}

let current = stored();

export function lang() {
  return current;
}

export function setLang(l) {
  if (!LANGS.includes(l)) return;
  current = l;
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, l);
  } catch {
    // Private mode: the choice lasts until the page is closed.
  }
}

/** Adds another page's words (the county center's, center/web/center-strings.js) to both dictionaries. */
export function addStrings(more) {
  for (const l of LANGS) Object.assign(STRINGS[l], more[l]);
}

export function has(key) {
  return key in STRINGS[current];
}

/** The text of `key` in the current language, `{name}` replaced from params. */
export function t(key, params) {
  const s = STRINGS[current][key] ?? STRINGS["zh-CN"][key] ?? key;
  return params ? s.replace(/\{(\w+)\}/g, (_, n) => (params[n] === undefined ? "" : String(params[n]))) : s;
}

const pad = (n) => String(n).padStart(2, "0");

/** A time of day (HH:MM:SS), with the date when it is not today. Local time of the browser. */
export function formatTime(iso, nowMs = Date.now()) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "—";
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const now = new Date(nowMs);
  if (d.toDateString() === now.toDateString()) return time;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/** A span of seconds: "45 秒", "3 分 20 秒", "2 小时 5 分", "3 天 4 小时". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return t("dur.s", { s });
  if (s < 3600) return t("dur.ms", { m: Math.floor(s / 60), s: s % 60 });
  if (s < 86400) return t("dur.hm", { h: Math.floor(s / 3600), m: Math.floor((s % 3600) / 60) });
  return t("dur.dh", { d: Math.floor(s / 86400), h: Math.floor((s % 86400) / 3600) });
}

/** "3 分 20 秒前". */
export function formatAgo(iso, nowMs = Date.now()) {
  if (!iso) return "—";
  const ms = nowMs - new Date(iso).getTime();
  if (!Number.isFinite(ms)) return "—";
  return ms < 1500 ? t("time.justNow") : t("time.ago", { d: formatDuration(ms / 1000) });
}

/** A stopwatch reading: "07:42", "1:02:05". */
export function formatClock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  return h > 0
    ? `${h}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`
    : `${pad(Math.floor(s / 60))}:${pad(s % 60)}`;
}

export function formatBytes(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 && i > 0 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** Puts the text of `data-i18n` keys into the static page (index.html) and marks its language. */
export function translateStatic(root = document) {
  document.documentElement.lang = current;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  document.title = t("app.title");
}
