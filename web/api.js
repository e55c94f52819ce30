// The page's one way to the daemon's JSON API (docs/web-api.md): JSON both ways, the session's CSRF
// token on every change, a lost session sends the user back to the login screen, and an error is
// an ApiError whose text is in the user's language with the server's own message beside it.
import { has, lang, t } from "./i18n.js";

let csrf = null;
let unauthorized = () => {};

/** The CSRF token of the session (from GET /api/session, POST /api/login, POST /api/setup). */
export function setCsrf(token) {
  csrf = token ?? null;
}

/** What to do when the server says the session is gone (401): the app shows the login screen. */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

export class ApiError extends Error {
  constructor(status, code, serverMessage, field, retryAfterS, retryAt) {
    super(serverMessage || code);
    this.status = status;
    this.code = code;
    this.serverMessage = serverMessage;
    this.field = field;
    this.retryAfterS = retryAfterS;
    this.retryAt = retryAt;
  }
}

/**
 * One request. Every POST carries a JSON body ({} when there is nothing to say: fastify refuses an
 * empty one with a JSON content type). Resolves to the parsed answer; rejects with an ApiError.
 */
export async function api(method, path, body) {
  const headers = { accept: "application/json" };
  const changes = method !== "GET" && method !== "HEAD";
  if (changes && csrf) headers["x-csrf-token"] = csrf;
  const payload = body !== undefined ? body : method === "POST" || method === "PUT" ? {} : undefined;
  if (payload !== undefined) headers["content-type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: payload === undefined ? undefined : JSON.stringify(payload),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "VG_NETWORK", err instanceof Error ? err.message : String(err));
  }
  const type = res.headers.get("content-type") ?? "";
  const data = type.includes("json") ? await res.json().catch(() => null) : null;
  if (res.ok) return data;
  const e = data?.error ?? {};
  const err = new ApiError(
    res.status,
    e.code ?? `HTTP_${res.status}`,
    e.message ?? res.statusText,
    e.field,
    data?.retryAfterS ?? e.retryAfterS,
    data?.retryAt,
  );
  // A wrong password is a 401 too; only a lost session goes back to the login screen.
  if (res.status === 401 && path !== "/api/login" && path !== "/api/setup") unauthorized();
  throw err;
}

/** An error as the user reads it: what happened in their language, then the server's words. */
export function errorText(err, fieldLabel = (field) => field) {
  if (!(err instanceof ApiError)) return t("err.generic", { status: "?" }) + (err?.message ? ` (${err.message})` : "");
  const key = `err.${err.code}`;
  // A wait (a locked user, a flooding address) is said in words and as a time of day, in the page's language alone.
  if (err.retryAfterS !== undefined && has(key)) return t(key, retryWords(err.retryAfterS, err.retryAt));
  let text = has(key) ? t(key) : t(err.status === 0 ? "err.VG_NETWORK" : "err.generic", { status: err.status });
  if (err.field) text += ` — ${t("err.field", { field: fieldLabel(err.field) })}`;
  // The server's message is English; in Chinese it still helps whoever the user calls for help.
  // Without the field's path, which the text already names in the page's words.
  const detail =
    err.field && err.serverMessage?.startsWith(`${err.field}: `)
      ? err.serverMessage.slice(err.field.length + 2)
      : err.serverMessage;
  if (detail && err.code !== "VG_NETWORK") text += ` (${detail})`;
  return text;
}

/** When to try again: `when` in words ("15 分钟后", "in 15 minutes"), `at` the time of day (HH:MM). */
function retryWords(seconds, retryAt) {
  const when =
    seconds < 60
      ? t("retry.soon")
      : seconds < 5400
        ? t("retry.minutes", { m: Math.ceil(seconds / 60) })
        : t("retry.hours", { h: Math.round(seconds / 3600) });
  const at = new Date(retryAt ?? Date.now() + seconds * 1000);
  return { when, at: at.toLocaleTimeString(lang(), { hour: "2-digit", minute: "2-digit", hour12: false }) };
}
