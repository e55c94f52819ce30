// The shell of a page (the gateway's web/app.js, the county center's center/web/app.js): the session
// (GET /api/session decides between first-run setup, login and the app), the header (navigation by
// role, language, live indicator, logout), one live connection, and a small hash router over the
// routes the page gives (#/name or #/name/PARAM). Ids may appear in the hash; patient ids never do
// (they travel only in request bodies).
import { api, errorText, onUnauthorized, setCsrf } from "./api.js";
import { h, replace } from "./dom.js";
import { lang, setLang, t, translateStatic } from "./i18n.js";
import { createLive } from "./live.js";
import { mountLogin, mountPassword, mountSetup } from "./pages/login.js";

const $ = (id) => document.getElementById(id);
/** A gap this long in the live stream is said across the page, not only in the header's pill. */
const OFFLINE_BANNER_MS = 3000;

/**
 * Starts the page. `routes`: name → { mount(view, ctx, param), nav?: key of its menu entry, perm,
 * navAs?: the menu entry shown as current }; `permissions`: the server's table of roles to
 * permissions, to show only what works; `home`: the route of an empty or forbidden hash;
 * `liveTypes`: the live messages it listens to; `onSignedIn()`: after a login, a setup or a reload
 * while logged in; `onSignedOut()`.
 */
export function startShell({ routes: ROUTES, permissions: PERMISSIONS, home, liveTypes, onSignedIn, onSignedOut }) {
  let session = null;
  let dispose = null;
  let noticeTimer = null;
  let offlineTimer = null;

  ROUTES.password ??= {
    mount: (view, ctx) =>
      mountPassword(view, {
        user: ctx.user,
        forced: false,
        onDone: () => ctx.navigate(`#/${home}`),
        notify: ctx.notify,
      }),
    perm: "read",
  };

  const live = createLive({
    ...(liveTypes ? { types: liveTypes } : {}),
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
    return m ? { name: m[1], param: m[2] === undefined ? undefined : decodeURIComponent(m[2]) } : { name: home };
  }

  function navigate(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  }

  function renderHeader() {
    translateStatic();
    $("lang").textContent = t("lang.switch");
    $("lang").lang = lang() === "en" ? "zh-CN" : "en";
    // The live pill in the language just chosen (it is set when the connection comes or goes).
    if ($("live").className) $("live").textContent = t($("live").classList.contains("up") ? "live.up" : "live.down");
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
    const here = parseHash().name;
    const current = ROUTES[here]?.navAs ?? here;
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
    if (!ROUTES[name] || !can(ROUTES[name].perm)) name = home;
    document.body.dataset.page = name;
    dispose = ROUTES[name].mount(view, { user: session.user, can, live, notify, clearNotice, navigate }, param) ?? null;
  }

  function signedIn({ user, csrf, mustChangePassword }) {
    session = { user, csrf, setup: false, mustChangePassword: Boolean(mustChangePassword) };
    setCsrf(csrf);
    clearNotice();
    if (session.mustChangePassword) return route();
    live.start();
    onSignedIn?.();
    route();
  }

  function passwordChanged() {
    session.mustChangePassword = false;
    live.start();
    onSignedIn?.();
    navigate(`#/${home}`);
  }

  function showSignedOut(s) {
    live.stop();
    $("offline").hidden = true;
    session = { user: null, setup: Boolean(s?.setup), setupCodeRequired: Boolean(s?.setupCodeRequired) };
    setCsrf(null);
    onSignedOut?.();
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
        onSignedIn?.();
      }
    } catch (err) {
      session = { user: null, setup: false };
      notify(errorText(err));
    }
    route();
  }

  void boot();
  return live;
}
