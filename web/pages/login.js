// Login, and the first-run setup that creates the admin account (docs/web-api.md, session).
import { api, errorText } from "../api.js";
import { h } from "../dom.js";
import { t } from "../i18n.js";

function field(label, input) {
  return h("label", { class: "field" }, h("span", null, label), input);
}

/**
 * A form that sets a password typed twice: on submit, checks the two agree, then runs `send` with
 * the button disabled; `failed(err)` when it throws.
 */
function onNewPassword(form, { password, again, submit, notify }, send, failed) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (password.value !== again.value) {
      notify(t("setup.mismatch"));
      again.select();
      return;
    }
    submit.disabled = true;
    try {
      await send();
    } catch (err) {
      failed(err);
    } finally {
      submit.disabled = false;
    }
  });
}

export function mountLogin(view, { onDone, notify }) {
  const username = h("input", {
    name: "username",
    autocomplete: "username",
    required: true,
    autofocus: true,
    autocapitalize: "none",
    spellcheck: "false",
  });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const submit = h("button", { type: "submit", class: "primary big" }, t("login.submit"));
  const form = h(
    "form",
    { class: "card narrow", id: "login-form" },
    h("h1", null, t("login.title")),
    field(t("login.username"), username),
    field(t("login.password"), password),
    submit,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    try {
      onDone(await api("POST", "/api/login", { username: username.value.trim(), password: password.value }));
    } catch (err) {
      notify(err.status === 401 ? t("login.wrong") : errorText(err));
      password.select();
    } finally {
      submit.disabled = false;
    }
  });
  view.append(form);
  username.focus();
}

export function mountSetup(view, { session, onDone, notify }) {
  const username = h("input", {
    name: "username",
    autocomplete: "username",
    required: true,
    value: "admin",
    autocapitalize: "none",
    spellcheck: "false",
  });
  const password = h("input", {
    name: "password",
    type: "password",
    autocomplete: "new-password",
    required: true,
    minLength: 8,
  });
  const again = h("input", { name: "password2", type: "password", autocomplete: "new-password", required: true });
  // The code has letters and digits: a text keyboard, never a number pad; as typed, not capitalised.
  const code = session.setupCodeRequired
    ? h("input", {
        name: "setupCode",
        required: true,
        autocomplete: "one-time-code",
        inputMode: "text",
        autocapitalize: "none",
        autocorrect: "off",
        spellcheck: "false",
      })
    : null;
  const submit = h("button", { type: "submit", class: "primary big" }, t("setup.submit"));
  const form = h(
    "form",
    { class: "card narrow", id: "setup-form" },
    h("h1", null, t("setup.title")),
    h("p", null, t("setup.intro")),
    field(t("login.username"), username),
    field(t("setup.password"), password),
    h("p", { class: "hint" }, t("password.rule")),
    field(t("setup.again"), again),
    code && field(t("setup.code"), code),
    code &&
      h(
        "p",
        { class: "hint", id: "setup-code-hint" },
        t("setup.codeHint", { file: session.setupCodeFile ?? "setup-code" }),
      ),
    submit,
  );
  onNewPassword(
    form,
    { password, again, submit, notify },
    async () => {
      const body = { username: username.value.trim(), password: password.value };
      if (code) body.setupCode = code.value.trim();
      onDone(await api("POST", "/api/setup", body));
    },
    (err) => notify(errorText(err)),
  );
  view.append(form);
  password.focus();
}

/**
 * Changing one's own password: asked before anything else after a login with an initial, reset or
 * expired password (`forced`), and from the header at any time.
 */
export function mountPassword(view, { user, forced, onDone, notify }) {
  const current = h("input", { name: "current", type: "password", autocomplete: "current-password", required: true });
  const password = h("input", {
    name: "password",
    type: "password",
    autocomplete: "new-password",
    required: true,
    minLength: 8,
  });
  const again = h("input", { name: "password2", type: "password", autocomplete: "new-password", required: true });
  const submit = h("button", { type: "submit", class: "primary big" }, t("password.submit"));
  // The user name, for the browser's password manager to file the new password under.
  const name = h("input", {
    name: "username",
    autocomplete: "username",
    value: user.username,
    hidden: true,
    readOnly: true,
  });
  const form = h(
    "form",
    { class: "card narrow", id: "password-form" },
    h("h1", null, t("password.title")),
    forced && h("p", { class: "notice-inline" }, t("password.forced")),
    name,
    field(t("password.current"), current),
    field(t("password.new"), password),
    h("p", { class: "hint" }, t("password.rule")),
    field(t("password.again"), again),
    submit,
  );
  onNewPassword(
    form,
    { password, again, submit, notify },
    async () => {
      await api("POST", "/api/password", { current: current.value, password: password.value });
      notify(t("password.done"), "ok");
      onDone();
    },
    (err) => {
      notify(errorText(err));
      (err.field === "current" ? current : password).select();
    },
  );
  view.append(form);
  current.focus();
}
