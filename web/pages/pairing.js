// Pairing: the serial ports of this box (with their USB identities) and the network senders that
// have talked to it without being paired; probe a port (listen only: try the likely drivers and
// speeds, see what each decodes), or take a sender's suggestion; pick the driver, name the device,
// say where it is (vehicle or bed), preview, save. Paired devices can be edited and removed here.
import { api, errorText } from "../api.js";
import { h, replace } from "../dom.js";
import { formatAgo, formatTime, lang, t } from "../i18n.js";
import { badge, card, empty, kv, label, pageHead, summarize } from "./ui.js";

/** How long a preview listens, ms. */
const PREVIEW_MS = 4000;

export function mountPairing(view, { notify }) {
  const ports = h("div", { class: "grid", id: "ports" });
  const senders = h("div", { class: "grid", id: "senders" });
  const paired = h("div", { class: "grid", id: "paired" });
  const formHost = h("div", { id: "pair-form-host" });
  view.append(
    pageHead(
      t("pairing.title"),
      h("button", { type: "button", onclick: () => load() }, t("pairing.refresh")),
      h("button", { type: "button", class: "primary", onclick: () => openForm({}) }, t("pairing.manual")),
    ),
    formHost,
    h("h2", { class: "section" }, t("pairing.ports")),
    ports,
    h("h2", { class: "section" }, t("pairing.senders")),
    senders,
    h("h2", { class: "section" }, t("pairing.paired")),
    paired,
  );
  let drivers = [];
  let pairedList = [];
  let disposed = false;

  const title = (id) => {
    const d = drivers.find((x) => x.id === id);
    return d ? (lang() === "en" ? d.title.en : d.title.zh) : id;
  };

  // A probe's results (and one still listening) belong to the port, not to its card: the lists are
  // redrawn every few seconds, and a probe that takes 20 s must still show what it found.
  const probes = new Map();

  function portCard(p) {
    let probe = probes.get(p.path);
    if (!probe) probes.set(p.path, (probe = { results: h("div", { class: "probe-results" }), running: false }));
    const { results } = probe;
    const probeBtn = h(
      "button",
      { type: "button", class: "primary", disabled: Boolean(p.usedBy) || probe.running },
      t("pairing.probe"),
    );
    probeBtn.addEventListener("click", async () => {
      probe.running = true;
      probeBtn.disabled = true;
      replace(results, h("p", { class: "busy" }, t("pairing.probing")));
      try {
        renderProbe(p, results, await api("POST", "/api/pairing/probe", { path: p.path }));
      } catch (err) {
        replace(results);
        notify(errorText(err));
      } finally {
        probe.running = false;
        for (const b of ports.querySelectorAll(`button[data-probe="${CSS.escape(p.path)}"]`))
          b.disabled = Boolean(p.usedBy);
      }
    });
    probeBtn.dataset.probe = p.path;
    const usb = [p.manufacturer, p.product].filter(Boolean).join(" ");
    return card(
      p.path,
      {
        kind: p.usedBy ? "ok" : "idle",
        cls: "port",
        state: p.usedBy ? t("pairing.usedBy", { id: p.usedBy }) : t("pairing.free"),
      },
      kv([
        [t("pairing.usb"), usb || undefined],
        [t("pairing.usbIds"), p.vendorId ? `${p.vendorId}:${p.productId ?? "????"}` : undefined],
        [t("pairing.serialNo"), p.serialNumber],
        [t("pairing.byId"), p.byId],
        [t("pairing.kernelDriver"), p.driver],
      ]),
      h(
        "div",
        { class: "actions" },
        probeBtn,
        h(
          "button",
          { type: "button", disabled: Boolean(p.usedBy), onclick: () => openForm({ options: serialOptions(p) }) },
          t("pairing.chooseDriver"),
        ),
      ),
      results,
    );
  }

  /** A port's options: the stable by-id path when there is one, and the USB identity to find it again. */
  function serialOptions(p, baudRate) {
    const o = { transport: "serial", port: p.byId ?? p.path };
    if (baudRate) o.baudRate = baudRate;
    if (p.vendorId && p.productId)
      o.match = {
        vendorId: p.vendorId,
        productId: p.productId,
        ...(p.serialNumber ? { serialNumber: p.serialNumber } : {}),
      };
    return o;
  }

  function renderProbe(p, el, res) {
    const columns = [
      t("pairing.driver"),
      t("pairing.baud"),
      t("pairing.verdict"),
      t("pairing.frames"),
      t("pairing.errors"),
      t("pairing.sample"),
      "",
    ];
    // data-label: on a phone each row becomes a small card (table.stack), each cell named.
    const cell = (i, cls, ...content) => h("td", { class: cls, "data-label": columns[i] }, ...content);
    const rows = (res.results ?? []).map((r) =>
      h(
        "tr",
        { class: `verdict-${r.verdict}` },
        cell(0, null, title(r.driver)),
        cell(1, null, String(r.baudRate ?? "")),
        cell(
          2,
          null,
          badge(label("verdict", r.verdict), r.verdict === "match" ? "ok" : r.verdict === "noise" ? "warn" : "idle"),
        ),
        cell(3, "num", String(r.frames ?? 0)),
        cell(4, "num", String(Array.isArray(r.errors) ? r.errors.length : (r.errors ?? 0))),
        cell(
          5,
          "sample",
          (r.sample ?? []).slice(0, 2).map((d) => h("div", null, summarize(d))),
          !(r.sample ?? []).length &&
            (r.errorSample ?? []).slice(0, 1).map((e) => h("div", { class: "error-text" }, e.message ?? e.code ?? "")),
        ),
        cell(
          6,
          null,
          r.verdict === "match" &&
            h(
              "button",
              { type: "button", onclick: () => openForm({ driver: r.driver, options: serialOptions(p, r.baudRate) }) },
              t("pairing.useThis"),
            ),
        ),
      ),
    );
    replace(
      el,
      res.best
        ? h(
            "p",
            { class: "probe-best" },
            badge(t("pairing.bestFound"), "ok"),
            " ",
            title(res.best.driver),
            " ",
            h(
              "button",
              {
                type: "button",
                class: "primary",
                onclick: () =>
                  openForm({ driver: res.best.driver, options: { ...serialOptions(p), ...res.best.options } }),
              },
              t("pairing.useBest"),
            ),
          )
        : h("p", { class: "probe-best" }, badge(t("pairing.nothingFound"), "warn"), " ", t("pairing.nothingHint")),
      // Devices that speak only when asked (a ventilator polled by the gateway): a probe never writes, so they are offered by hand.
      (res.manual ?? []).length > 0 &&
        h(
          "div",
          { class: "probe-manual" },
          h("p", { class: "hint" }, t("pairing.manualHint")),
          res.manual.map((m) =>
            h(
              "button",
              {
                type: "button",
                title: m.why,
                onclick: () => openForm({ driver: m.driver, options: { ...serialOptions(p), ...m.options } }),
              },
              title(m.driver),
            ),
          ),
        ),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "probe stack" },
          h(
            "thead",
            null,
            h(
              "tr",
              null,
              columns.map((x) => h("th", null, x)),
            ),
          ),
          h("tbody", null, rows),
        ),
      ),
    );
  }

  function senderCard(s) {
    const identity = Object.entries(s.identity ?? {}).filter(
      ([, v]) => v !== undefined && v !== null && typeof v !== "object",
    );
    return card(
      `${label("protocol", s.protocol)} · ${s.remote}`,
      { kind: "warn", cls: "sender", state: t("pairing.unpaired") },
      kv([
        [t("pairing.localPort"), s.port === undefined ? undefined : String(s.port)],
        [t("pairing.firstSeen"), formatTime(s.firstSeen)],
        [t("pairing.lastSeen"), formatAgo(s.lastSeen)],
        [t("pairing.messages"), String(s.messages ?? 0)],
        ...identity.map(([k, v]) => [label("ident", k), String(v)]),
      ]),
      (s.preview ?? []).length > 0 &&
        h(
          "div",
          { class: "preview" },
          h("h3", null, t("pairing.preview")),
          (s.preview ?? []).slice(0, 3).map((d) => h("p", null, summarize(d))),
        ),
      s.note && h("p", { class: "hint" }, s.note),
      h(
        "div",
        { class: "actions" },
        h(
          "button",
          {
            type: "button",
            class: "primary",
            onclick: () =>
              openForm({
                driver: s.suggestion?.driver,
                options: s.suggestion?.options ?? {},
                name: s.identity?.model ?? s.identity?.sendingApplication ?? "",
              }),
          },
          t("pairing.pairThis"),
        ),
      ),
    );
  }

  function pairedCard(d) {
    return card(
      d.name || d.id,
      {
        cls: "paired",
        kind: d.enabled === false ? "idle" : "ok",
        state: d.enabled === false ? t("pairing.disabled") : t("pairing.enabled"),
      },
      kv([
        [t("pairing.driver"), title(d.driver)],
        [t("pairing.id"), d.id],
        [t("pairing.location"), d.location],
        [t("pairing.pairedBy"), d.pairedBy ? `${d.pairedBy} · ${formatTime(d.pairedAt)}` : undefined],
      ]),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", onclick: () => openForm({ ...d, editing: true }) }, t("pairing.edit")),
        h("button", { type: "button", class: "danger", onclick: () => remove(d) }, t("pairing.remove")),
      ),
    );
  }

  async function remove(d) {
    if (!window.confirm(t("pairing.confirmRemove", { name: d.name || d.id }))) return;
    try {
      await api("DELETE", `/api/devices/${encodeURIComponent(d.id)}`);
      notify(t("pairing.removed", { name: d.name || d.id }), "ok");
      load();
    } catch (err) {
      notify(errorText(err));
    }
  }

  /** A free id for a new device of this driver: "nmea-gps-1", "nmea-gps-2", … */
  function suggestId(driver) {
    const base = (driver || "device").replace(/[^a-z0-9-]/g, "");
    for (let i = 1; ; i++) if (!pairedList.some((d) => d.id === `${base}-${i}`)) return `${base}-${i}`;
  }

  function openForm(init) {
    const form = pairForm({
      init,
      drivers,
      title,
      suggestId,
      notify,
      onSaved: (dev) => {
        replace(formHost);
        notify(t(init.editing ? "pairing.updated" : "pairing.saved", { name: dev?.name || dev?.id || "" }), "ok");
        load();
      },
      onCancel: () => replace(formHost),
    });
    replace(formHost, form);
    form.scrollIntoView({ block: "start" });
    form.querySelector("select, input")?.focus();
  }

  async function load() {
    try {
      const [drv, p, s, pd] = await Promise.all([
        api("GET", "/api/drivers"),
        api("GET", "/api/pairing/ports"),
        api("GET", "/api/pairing/senders"),
        api("GET", "/api/devices/paired"),
      ]);
      if (disposed) return;
      drivers = drv;
      pairedList = pd;
      replace(ports, p.length ? p.map(portCard) : empty(t("pairing.noPorts")));
      replace(senders, s.length ? s.map(senderCard) : empty(t("pairing.noSenders")));
      replace(paired, pd.length ? pd.map(pairedCard) : empty(t("pairing.noPaired")));
    } catch (err) {
      notify(errorText(err));
    }
  }

  load();
  // New senders appear as they call in; the lists are refreshed while no form is open.
  const poll = setInterval(() => {
    if (!formHost.firstChild) load();
  }, 5000);
  return () => {
    disposed = true;
    clearInterval(poll);
  };
}

/** The form to pair a device (or edit a paired one): driver, id, name, location, the driver's options. */
function pairForm({ init, drivers, title, suggestId, notify, onSaved, onCancel }) {
  const driver = h(
    "select",
    { name: "driver", required: true },
    h("option", { value: "" }, t("pairing.pickDriver")),
    drivers.map((d) => h("option", { value: d.id }, title(d.id))),
  );
  driver.value = init.driver ?? "";
  const id = h("input", {
    name: "id",
    required: true,
    pattern: "[a-z0-9][a-z0-9_\\-]{0,62}",
    maxLength: 63,
    value: init.id ?? (init.driver ? suggestId(init.driver) : ""),
    readOnly: Boolean(init.editing),
    autocapitalize: "none",
    spellcheck: "false",
  });
  const name = h("input", {
    name: "name",
    maxLength: 100,
    value: init.name ?? "",
    placeholder: t("pairing.namePlaceholder"),
  });
  const location = h("input", {
    name: "location",
    maxLength: 100,
    value: init.location ?? "",
    placeholder: t("pairing.locationPlaceholder"),
  });
  const optionsBox = h("fieldset", { class: "options" });
  const setupBox = h("div", { class: "device-setup", id: "device-setup", "aria-live": "polite" });
  const previewBox = h("div", { class: "preview", id: "preview" });
  let values = { ...(init.options ?? {}) };
  let fields = new Map();

  /** The driver's name for an option (its `labels`), in the page's language; the key where it has none. */
  const optionLabel = (key) => {
    const l = drivers.find((x) => x.id === driver.value)?.labels?.[key];
    return l ? (lang() === "en" ? l.en : l.zh) : label("opt", key);
  };
  /** An error's field ("options.port") as the form names it. */
  const fieldLabel = (field) =>
    field?.startsWith("options.") ? optionLabel(field.slice("options.".length)) : label("pairing", field);
  /** Says what is wrong, and marks and focuses the option at fault. */
  function showError(err) {
    for (const f of fields.values()) f.input.removeAttribute("aria-invalid");
    const key = err?.field?.startsWith("options.") ? err.field.slice("options.".length) : null;
    const bad = key && fields.get(key);
    if (bad) {
      bad.input.setAttribute("aria-invalid", "true");
      bad.input.focus();
    }
    notify(errorText(err, fieldLabel));
  }

  /** What to set on the device itself, for the options as they stand (asked of the gateway, which knows its addresses). */
  let setupTimer;
  function refreshSetup() {
    clearTimeout(setupTimer);
    setupTimer = setTimeout(async () => {
      if (!driver.value) return replace(setupBox);
      try {
        const res = await api("POST", "/api/pairing/setup", { driver: driver.value, options: options() });
        replace(
          setupBox,
          h("h3", null, t("pairing.setupTitle")),
          h(
            "ol",
            null,
            (res.steps ?? []).map((s) => h("li", null, lang() === "en" ? s.en : s.zh)),
          ),
        );
      } catch (err) {
        replace(
          setupBox,
          h("h3", null, t("pairing.setupTitle")),
          h(
            "p",
            { class: "empty" },
            err?.field ? t("pairing.setupNeeds", { field: fieldLabel(err.field) }) : errorText(err, fieldLabel),
          ),
        );
      }
    }, 250);
  }

  /** The options form from the driver's JSON Schema: its plain top-level fields; nested ones keep their values. */
  function renderOptions() {
    for (const [k, f] of fields) values[k] = read(f);
    fields = new Map();
    const d = drivers.find((x) => x.id === driver.value);
    if (!d) return replace(optionsBox);
    const props = d.options?.properties ?? {};
    const required = new Set(d.options?.required ?? []);
    const rows = [];
    for (const [key, schema] of Object.entries(props)) {
      const input = optionInput(key, schema, values[key]);
      if (!input) continue;
      if (required.has(key)) input.required = true;
      fields.set(key, { input, schema });
      rows.push(
        h(
          "label",
          { class: input.type === "checkbox" ? "field check" : "field" },
          h("span", null, optionLabel(key)),
          input,
          h("small", { class: "hint" }, lang() === "en" ? schema.description : d.labels?.[key]?.helpZh),
        ),
      );
    }
    replace(optionsBox, h("legend", null, t("pairing.options")), rows);
    refreshSetup();
  }
  optionsBox.addEventListener("input", refreshSetup);
  optionsBox.addEventListener("change", refreshSetup);

  function options() {
    const out = { ...values };
    for (const [k, f] of fields) {
      const v = read(f);
      if (v === undefined) delete out[k];
      else out[k] = v;
    }
    return out;
  }

  driver.addEventListener("change", () => {
    if (!init.editing && (!id.value || /-\d+$/.test(id.value))) id.value = suggestId(driver.value);
    renderOptions();
  });
  renderOptions();

  const save = h("button", { type: "submit", class: "primary big" }, t("pairing.save"));
  const previewBtn = h("button", { type: "button" }, t("pairing.previewBtn"));
  previewBtn.addEventListener("click", async () => {
    previewBtn.disabled = true;
    replace(previewBox, h("p", { class: "busy" }, t("pairing.listening")));
    try {
      const res = await api("POST", "/api/pairing/preview", {
        driver: driver.value,
        options: options(),
        ms: PREVIEW_MS,
      });
      replace(
        previewBox,
        (res.events ?? []).length
          ? (res.events ?? []).slice(0, 5).map((e) => h("p", null, summarize(e)))
          : h("p", { class: "empty" }, t("pairing.previewNothing")),
        (res.errors ?? [])
          .slice(0, 3)
          .map((e) => h("p", { class: "error-text" }, typeof e === "string" ? e : (e.message ?? JSON.stringify(e)))),
      );
    } catch (err) {
      replace(previewBox);
      showError(err);
    } finally {
      previewBtn.disabled = false;
    }
  });

  const form = h(
    "form",
    { class: "card pair-form", id: "pair-form" },
    h("h2", null, t(init.editing ? "pairing.editTitle" : "pairing.formTitle")),
    h("label", { class: "field" }, h("span", null, t("pairing.driver")), driver),
    h("label", { class: "field" }, h("span", null, t("pairing.name")), name),
    h("label", { class: "field" }, h("span", null, t("pairing.location")), location),
    h(
      "label",
      { class: "field" },
      h("span", null, t("pairing.id")),
      id,
      h("small", { class: "hint" }, t("pairing.idHint")),
    ),
    optionsBox,
    setupBox,
    previewBox,
    h(
      "div",
      { class: "actions" },
      save,
      previewBtn,
      h("button", { type: "button", class: "quiet", onclick: onCancel }, t("app.cancel")),
    ),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    save.disabled = true;
    const body = {
      id: id.value.trim(),
      name: name.value.trim() || id.value.trim(),
      driver: driver.value,
      options: options(),
    };
    if (location.value.trim()) body.location = location.value.trim();
    try {
      onSaved(
        init.editing
          ? await api("PUT", `/api/devices/${encodeURIComponent(init.id)}`, body)
          : await api("POST", "/api/devices", body),
      );
    } catch (err) {
      showError(err);
    } finally {
      save.disabled = false;
    }
  });
  return form;
}

/** An input for one option of a driver's JSON Schema, or null for what is not a plain field. */
function optionInput(key, schema, value) {
  const choices = schema.enum ?? (schema.anyOf?.every((s) => "const" in s) ? schema.anyOf.map((s) => s.const) : null);
  const initial = value !== undefined ? value : schema.default;
  if (choices) {
    const sel = h(
      "select",
      { name: `opt-${key}` },
      schema.default === undefined && h("option", { value: "" }, "—"),
      choices.map((c) => h("option", { value: JSON.stringify(c) }, String(c))),
    );
    if (initial !== undefined) sel.value = JSON.stringify(initial);
    return sel;
  }
  if (schema.type === "boolean") return h("input", { type: "checkbox", name: `opt-${key}`, checked: Boolean(initial) });
  if (schema.type === "number" || schema.type === "integer") {
    return h("input", {
      type: "number",
      name: `opt-${key}`,
      value: initial === undefined ? "" : String(initial),
      min: schema.minimum,
      max: schema.maximum,
      step: schema.type === "integer" ? 1 : "any",
    });
  }
  if (schema.type === "string")
    return h("input", {
      name: `opt-${key}`,
      value: initial === undefined ? "" : String(initial),
      autocapitalize: "none",
      spellcheck: "false",
    });
  return null;
}

function read({ input, schema }) {
  if (input.tagName === "SELECT") return input.value === "" ? undefined : JSON.parse(input.value);
  if (input.type === "checkbox") return input.checked;
  if (input.value === "") return undefined;
  return schema.type === "number" || schema.type === "integer" ? Number(input.value) : input.value;
}
