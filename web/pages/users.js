// Users (admin): who may log in and with which role; add and remove. Users provisioned in the
// config file are shown but cannot be removed here.
import { api, errorText } from "../api.js";
import { h, replace } from "../dom.js";
import { formatTime, t } from "../i18n.js";
import { badge, pageHead } from "./ui.js";

/** The gateway's roles; the county center's page offers its own (center/web/app.js). */
const GATEWAY_ROLES = ["admin", "crew", "technician", "viewer"];

export function mountUsers(view, { user, notify, roles = GATEWAY_ROLES, roleHint = "users.roleHint" }) {
  const tbody = h("tbody");
  const username = h("input", {
    name: "username",
    required: true,
    autocomplete: "off",
    autocapitalize: "none",
    spellcheck: "false",
    maxLength: 64,
  });
  const password = h("input", {
    name: "password",
    type: "password",
    required: true,
    autocomplete: "new-password",
    minLength: 8,
  });
  const role = h(
    "select",
    { name: "role" },
    roles.map((r) => h("option", { value: r }, t(`role.${r}`))),
  );
  // The role most users have: crew on a gateway, cardiologist at the center.
  role.value = roles[1] ?? roles[0];
  const add = h("button", { type: "submit", class: "primary" }, t("users.add"));
  const form = h(
    "form",
    { class: "card", id: "user-form" },
    h("h2", null, t("users.addTitle")),
    h("label", { class: "field" }, h("span", null, t("login.username")), username),
    h("label", { class: "field" }, h("span", null, t("login.password")), password),
    h("p", { class: "hint" }, t("users.initialHint"), " ", t("password.rule")),
    h("label", { class: "field" }, h("span", null, t("users.role")), role),
    h("p", { class: "hint" }, t(roleHint)),
    add,
  );
  view.append(
    pageHead(t("users.title")),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "users", id: "users" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            ["login.username", "users.role", "users.created", ""].map((k) => h("th", null, k ? t(k) : "")),
          ),
        ),
        tbody,
      ),
    ),
    form,
  );

  async function load() {
    try {
      const list = await api("GET", "/api/users");
      replace(
        tbody,
        list.map((u) =>
          h(
            "tr",
            { dataset: { user: u.username } },
            h(
              "td",
              null,
              u.username,
              u.username === user.username ? h("small", null, ` (${t("users.you")})`) : null,
              u.lockedUntil ? [" ", badge(t("users.locked", { at: formatTime(u.lockedUntil) }), "bad")] : null,
              u.mustChangePassword ? [" ", badge(t("users.mustChange"), "warn")] : null,
            ),
            h("td", null, t(`role.${u.role}`)),
            h("td", null, formatTime(u.createdAt)),
            h(
              "td",
              { class: "actions" },
              u.provisioned
                ? badge(t("users.provisioned"), "idle")
                : u.username !== user.username && [
                    h(
                      "button",
                      { type: "button", class: "reset", onclick: (ev) => resetForm(ev.currentTarget, u.username) },
                      t("users.reset"),
                    ),
                    h(
                      "button",
                      { type: "button", class: "danger", onclick: () => remove(u.username) },
                      t("users.remove"),
                    ),
                  ],
            ),
          ),
        ),
      );
    } catch (err) {
      notify(errorText(err));
    }
  }

  /** A new password for `name`, typed in place of the button (never in a prompt, which shows it). */
  function resetForm(button, name) {
    const input = h("input", {
      name: "reset-password",
      type: "password",
      autocomplete: "new-password",
      required: true,
      minLength: 8,
      "aria-label": t("password.new"),
    });
    const form = h(
      "form",
      { class: "inline-form" },
      input,
      h("button", { type: "submit", class: "primary" }, t("users.resetConfirm")),
    );
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await api("POST", `/api/users/${encodeURIComponent(name)}/password`, { password: input.value });
        notify(t("users.resetDone", { name }), "ok");
        load();
      } catch (err) {
        notify(errorText(err));
        input.select();
      }
    });
    button.replaceWith(form);
    input.focus();
  }

  async function remove(name) {
    if (!window.confirm(t("users.confirmRemove", { name }))) return;
    try {
      await api("DELETE", `/api/users/${encodeURIComponent(name)}`);
      notify(t("users.removed", { name }), "ok");
      load();
    } catch (err) {
      notify(errorText(err));
    }
  }

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    add.disabled = true;
    try {
      await api("POST", "/api/users", { username: username.value.trim(), password: password.value, role: role.value });
      notify(t("users.added", { name: username.value.trim() }), "ok");
      username.value = "";
      password.value = "";
      load();
    } catch (err) {
      notify(errorText(err));
    } finally {
      add.disabled = false;
    }
  });
  load();
}
