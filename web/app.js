// The page's shell: the session (GET /api/session decides between first-run setup, login and the
// app), the header (navigation by role, language, live indicator, logout), one live connection,
// and a small hash router (#/status, #/devices, #/pairing, #/cases, #/case/ID, #/audit, #/users).
// A case id may appear in the hash; patient ids never do (they travel only in request bodies).
import { api, errorText, onUnauthorized, setCsrf } from "./api.js";
import { h, replace } from "./dom.js";
import { lang, setLang, t, translateStatic } from "./i18n.js";
import { createLive } from "./live.js";
import { mountLogin, mountPassword, mountSetup } from "./pages/login.js";
import { mountStatus } from "./pages/status.js";
import { mountDevices } from "./pages/devices.js";
import { mountPairing } from "./pages/pairing.js";
import { mountCases, mountCase } from "./pages/cases.js";
import { mountAudit } from "./pages/audit.js";
import { mountUsers } from "./pages/users.js";

/** Who may do what: the server's table (src/web/context.ts PERMISSIONS), to show only what works. */
const PERMISSIONS = {
  admin: ["read", "devices", "cases", "admin"],
  crew: ["read", "devices", "cases"],
  technician: ["read", "devices", "cases"],
  viewer: ["read"],
};

const ROUTES = {
  status: { mount: mountStatus, nav: "nav.status", perm: "read" },
  devices: { mount: mountDevices, nav: "nav.devices", perm: "read" },
  pairing: { mount: mountPairing, nav: "nav.pairing", perm: "devices" },
  cases: { mount: mountCases, nav: "nav.cases", perm: "read" },
  case: { mount: mountCase, perm: "read" },
  audit: { mount: mountAudit, nav: "nav.audit", perm: "admin" },
  users: { mount: mountUsers, nav: "nav.users", perm: "admin" },
  password: {
    mount: (view, ctx) =>
      mountPassword(view, {
        user: ctx.user,
        forced: false,
        onDone: () => ctx.navigate("#/status"),
        notify: ctx.notify,
      }),
    perm: "read",
  },
};

const $ = (id) => document.getElementById(id);
let session = null;
let dispose = null;
let noticeTimer = null;
let offlineTimer = null;
/** A gap this long in the live stream is said across the page, not only in the header's pill. */
const OFFLINE_BANNER_MS = 3000;

const live = createLive({
  onConnected(up) {
    const el = $("live");
    el.className = up ? "live up" : "live down";
    el.textContent = t(up ? "live.up" : "live.down");
    if (up) {
      clearTimeout(offlineTimer);
      offlineTimer = null;
      $("offline").hidden = true;
    } else if (!offlineTimer && $("offline").hidden) {
      offlineTimer = setTimeout(() => {
        offlineTimer = null;
        $("offline").textContent = t("live.lost");
        $("offline").hidden = !session?.user;
      }, OFFLINE_BANNER_MS);
    }
  },
  // The server closed the stream: perhaps the session expired. Asking shows the login screen if so.
  // A lapsed session says so, rather than leaving a blank login in front of the crew.
  onGaveUp: () =>
    void api("GET", "/api/session").then(
      (s) => {
        if (s.user || !session?.user) return;
        showSignedOut(s);
        notify(t("login.expired"), "info");
      },
      () => undefined,
    ),
});

function can(perm) {
  return Boolean(session?.user && PERMISSIONS[session.user.role]?.includes(perm));
}

/** A message at the top of the page: errors stay until closed, confirmations go by themselves. */
function notify(text, kind = "error") {
  const el = $("notice");
  if (noticeTimer) clearTimeout(noticeTimer);
  replace(
    el,
    h("span", null, text),
    h(
      "button",
      { type: "button", class: "quiet", "aria-label": t("app.close"), onclick: () => (el.hidden = true) },
      "×",
    ),
  );
  el.className = `notice ${kind}`;
  el.hidden = false;
  if (kind !== "error") noticeTimer = setTimeout(() => (el.hidden = true), 4000);
}

function clearNotice() {
  $("notice").hidden = true;
  $("notice").replaceChildren();
}

function parseHash() {
  const m = /^#\/([a-z]+)(?:\/(.+))?$/.exec(location.hash);
  return m ? { name: m[1], param: m[2] === undefined ? undefined : decodeURIComponent(m[2]) } : { name: "status" };
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function renderHeader() {
  translateStatic();
  $("lang").textContent = t("lang.switch");
  $("lang").lang = lang() === "en" ? "zh-CN" : "en";
  const user = session?.user;
  const nav = $("nav");
  nav.hidden = !user || Boolean(session?.mustChangePassword);
  $("logout").hidden = !user;
  $("password-link").hidden = !user || Boolean(session?.mustChangePassword);
  $("live").hidden = !user || Boolean(session?.mustChangePassword);
  replace($("who"), user ? h("span", null, user.username, " ", h("small", null, t(`role.${user.role}`))) : "");
  if (!user) {
    nav.replaceChildren();
    return;
  }
  const current = parseHash().name === "case" ? "cases" : parseHash().name;
  replace(
    nav,
    Object.entries(ROUTES)
      .filter(([, r]) => r.nav && can(r.perm))
      .map(([name, r]) =>
        h(
          "a",
          {
            href: `#/${name}`,
            class: name === current ? "active" : undefined,
            "aria-current": name === current ? "page" : undefined,
          },
          t(r.nav),
        ),
      ),
  );
}

function route() {
  dispose?.();
  dispose = null;
  const view = $("view");
  view.replaceChildren();
  renderHeader();
  if (!session?.user) {
    dispose = session?.setup
      ? mountSetup(view, { session, onDone: signedIn, notify })
      : mountLogin(view, { onDone: signedIn, notify });
    return;
  }
  if (session.mustChangePassword) {
    // Nothing else answers until the password is changed (403 VG_PASSWORD_CHANGE_REQUIRED).
    document.body.dataset.page = "password";
    dispose = mountPassword(view, { user: session.user, forced: true, notify, onDone: passwordChanged }) ?? null;
    return;
  }
  let { name, param } = parseHash();
  if (!ROUTES[name] || !can(ROUTES[name].perm)) name = "status";
  document.body.dataset.page = name;
  dispose = ROUTES[name].mount(view, { user: session.user, can, live, notify, clearNotice, navigate }, param) ?? null;
}

// Which box this is, in the header: from the status, once signed in.
live.on("status", (s) => ($("gw-id").textContent = s?.gateway?.id ?? ""));

function showGatewayId() {
  api("GET", "/api/status").then(
    (s) => ($("gw-id").textContent = s?.gateway?.id ?? ""),
    () => undefined,
  );
}

function signedIn({ user, csrf, mustChangePassword }) {
  session = { user, csrf, setup: false, mustChangePassword: Boolean(mustChangePassword) };
  setCsrf(csrf);
  clearNotice();
  if (session.mustChangePassword) return route();
  live.start();
  showGatewayId();
  route();
}

function passwordChanged() {
  session.mustChangePassword = false;
  live.start();
  showGatewayId();
  navigate("#/status");
}

function showSignedOut(s) {
  live.stop();
  $("offline").hidden = true;
  session = { user: null, setup: Boolean(s?.setup), setupCodeRequired: Boolean(s?.setupCodeRequired) };
  setCsrf(null);
  $("gw-id").textContent = "";
  route();
}

onUnauthorized(() => {
  if (!session?.user) return;
  showSignedOut(null);
  notify(t("login.expired"), "info");
});

$("lang").addEventListener("click", () => {
  setLang(lang() === "en" ? "zh-CN" : "en");
  route();
});

$("logout").addEventListener("click", async () => {
  try {
    await api("POST", "/api/logout");
  } catch (err) {
    notify(errorText(err));
  }
  showSignedOut(await api("GET", "/api/session").catch(() => null));
});

window.addEventListener("hashchange", () => {
  clearNotice();
  route();
});

async function boot() {
  renderHeader();
  try {
    const s = await api("GET", "/api/session");
    session = s;
    setCsrf(s.csrf);
    if (s.user && !s.mustChangePassword) {
      live.start();
      showGatewayId();
    }
  } catch (err) {
    session = { user: null, setup: false };
    notify(errorText(err));
  }
  route();
}

void boot();
