// Devices: each device's state in colour (green flowing, amber silent or retrying, red faulted),
// its last reading, rate and errors, its clock skew, its live values (`values`) and a waveform
// strip (`wave`). Cards are built once per device and their parts updated in place, so a value
// arriving every second does not rebuild the page.
import { api, errorText } from "../api.js";
import { h, replace } from "../dom.js";
import { formatAgo, formatDuration, formatTime, has, lang, t } from "../i18n.js";
import { badge, empty, formatValue, kv, label, obsLabel, pageHead, tone, unitLabel } from "./ui.js";
import { WaveStrip } from "./wave.js";

/** Seconds of event counts the rate is worked out over. */
const RATE_WINDOW_S = 60;
/** A listener (an HL7 port monitors call) that took data this recently shows as flowing. */
const FLOWING_S = 120;
/**
 * Data is stale once it is this many of the device's own intervals late (a monitor sending every
 * second: after 3 s), never sooner than STALE_MIN_MS; FLOWING_S until the page has seen the rate.
 */
const STALE_INTERVALS = 3;
const STALE_MIN_MS = 5000;
/** Arrivals kept to learn a device's interval. */
const ARRIVALS = 9;
/** Non-invasive blood pressure (IEEE 11073-10101 MDC reference ids): shown as one reading. */
const NIBP = { sys: "MDC_PRESS_BLD_NONINV_SYS", dia: "MDC_PRESS_BLD_NONINV_DIA", mean: "MDC_PRESS_BLD_NONINV_MEAN" };

/**
 * A device's last error as the crew reads it: what it means in their language and whether the gateway
 * gets over it alone (the error catalog's `next`), then the gateway's own words (English) for whoever they call.
 */
function lastErrorText(e, recovered) {
  const key = `err.${e.code}`;
  // Once the device works again, what was to be done is history: it says so instead.
  const advice = recovered ? t("devices.recovered") : e.next ? t(`devices.next.${e.next}`) : null;
  const said = [has(key) ? t(key) : null, advice].filter(Boolean).join("; ");
  return said ? `${said} (${e.message})` : e.message;
}

/** The median gap between arrivals (page's monotonic ms), once there are two gaps. */
function typicalGapMs(arrivals) {
  if (arrivals.length < 3) return null;
  const gaps = arrivals
    .slice(1)
    .map((a, i) => a - arrivals[i])
    .sort((x, y) => x - y);
  return gaps[Math.floor(gaps.length / 2)];
}

/** How long a device's data may be quiet before it is shown stale. */
function staleAfterMs(c) {
  const gap = typicalGapMs(c.arrivals);
  return gap === null ? FLOWING_S * 1000 : Math.max(STALE_INTERVALS * gap, STALE_MIN_MS);
}

/**
 * The state to show: a listening device is "waiting" to the gateway until a sender connects, but
 * for the crew a monitor whose data came in moments ago is flowing, whether or not it hung up since;
 * a device that stopped sending is "stale" within a few of its own intervals, whatever the link says.
 */
function shownState(c, mono) {
  const d = c.status;
  const quietMs = c.lastSeen === null ? null : mono - c.lastSeen;
  const stale = quietMs !== null && quietMs > staleAfterMs(c);
  if (d.state === "connected") return stale ? "stale" : "connected";
  if (d.state !== "listening") return d.state;
  if (stale) return "stale";
  return d.connections > 0 || quietMs !== null ? "connected" : d.state;
}

export function mountDevices(view, { live, notify }) {
  const list = h("div", { class: "devices", id: "devices" });
  view.append(pageHead(t("devices.title")), list);
  const cards = new Map();
  let drivers = new Map();
  let skews = new Map();

  function driverTitle(id) {
    const d = drivers.get(id);
    return d ? (lang() === "en" ? d.title.en : d.title.zh) : id;
  }

  function cardFor(dev) {
    let c = cards.get(dev.id);
    if (c) return c;
    const name = h("span", { class: "dev-name" });
    const stateEl = h("div", { class: "dev-state" });
    const values = h("div", { class: "values" });
    const info = h("div", { class: "dev-info" });
    const canvas = h("canvas", { class: "wave", hidden: true, height: 90, "aria-label": t("devices.wave") });
    const el = h(
      "article",
      { class: "card device", dataset: { device: dev.id } },
      h("header", { class: "dev-head" }, h("h2", null, name), stateEl),
      values,
      canvas,
      info,
    );
    c = {
      el,
      name,
      stateEl,
      values,
      info,
      canvas,
      wave: new WaveStrip(canvas),
      status: dev,
      valueByCode: new Map(),
      counts: [],
      arrivals: [],
      lastSeen: null,
      lastEventAt: null,
    };
    cards.set(dev.id, c);
    list.append(el);
    return c;
  }

  /**
   * Notes when the device's data last came, on the page's monotonic clock (the tablet's wall clock
   * may be off): the time of a newer `lastEventAt` seen live, or, for data older than this page, how
   * long ago the gateway says it came.
   */
  function seen(c, lastEventAt, live) {
    if (!lastEventAt || lastEventAt === c.lastEventAt) return;
    c.lastEventAt = lastEventAt;
    const mono = performance.now();
    if (!live) {
      c.lastSeen = mono - Math.max(0, Date.now() - Date.parse(lastEventAt));
      return;
    }
    c.lastSeen = mono;
    c.arrivals.push(mono);
    if (c.arrivals.length > ARRIVALS) c.arrivals.shift();
  }

  function renderStatus(c, nowMs = Date.now()) {
    const d = c.status;
    const mono = performance.now();
    const state = shownState(c, mono);
    const stale = state === "stale";
    c.el.className = `card device tone-${tone(state)}${stale ? " stale" : ""}`;
    if (stale !== c.shownStale) {
      c.shownStale = stale;
      renderValues(c);
    } else if (stale) renderAges(c, mono);
    replace(c.name, d.name || d.id, d.name ? h("small", null, ` ${d.id}`) : null);
    const skew = skews.get(d.id);
    replace(
      c.stateEl,
      badge(
        stale ? t("devices.staleFor", { d: formatDuration((mono - c.lastSeen) / 1000) }) : label("devstate", state),
        tone(state),
      ),
      skew && skew.state === "skewed" && badge(t("devices.clockOff", { s: Math.round(skew.skewMs / 1000) }), "warn"),
      // Values a monitor in demo mode simulates must never pass for a patient's.
      [...c.valueByCode.values()].some(({ o }) => o.demo) && badge(t("devices.demo"), "warn demo"),
    );
    // Events per minute over the last RATE_WINDOW_S seconds of counter samples.
    c.counts.push([nowMs, d.events]);
    while (c.counts.length > 2 && c.counts[0][0] < nowMs - RATE_WINDOW_S * 1000) c.counts.shift();
    const [t0, n0] = c.counts[0];
    const spanS = (nowMs - t0) / 1000;
    const rate = spanS >= 5 ? ((d.events - n0) / spanS) * 60 : null;
    const errors = (d.rejected ?? 0) + (d.refused ?? 0);
    replace(
      c.info,
      kv([
        [t("devices.driver"), driverTitle(d.driver)],
        [t("devices.location"), d.location],
        [
          t("devices.lastReading"),
          d.lastEventAt ? `${formatTime(d.lastEventAt)} (${formatAgo(d.lastEventAt, nowMs)})` : t("devices.never"),
        ],
        [
          t("devices.rate"),
          rate === null ? undefined : t("devices.perMin", { n: rate < 10 ? rate.toFixed(1) : Math.round(rate) }),
        ],
        [t("devices.events"), String(d.events ?? 0)],
        [
          t("devices.errors"),
          errors ? t("devices.errorCounts", { rejected: d.rejected ?? 0, refused: d.refused ?? 0 }) : undefined,
        ],
        [
          t("devices.lastError"),
          d.lastError
            ? `${formatTime(d.lastError.at)} ${lastErrorText(
                d.lastError,
                (d.state === "connected" || d.state === "listening") && d.lastError.at <= d.since,
              )}`
            : undefined,
        ],
        [t("devices.skew"), skew ? t("devices.skewValue", { s: (skew.skewMs / 1000).toFixed(1) }) : undefined],
        [t("devices.since"), formatTime(d.since)],
        [t("devices.address"), d.address],
        [t("devices.model"), [d.model, d.serial].filter(Boolean).join(" · ") || undefined],
      ]),
    );
  }

  // One message from a monitor can become several vitals events (one per measurement time: the
  // NIBP taken minutes ago apart from the heart rate now), each its own `values` message: the card
  // keeps the latest value of each measurement rather than only the last message's.
  function mergeValues(c, live, fresh) {
    if (!live) return;
    const mono = fresh ? performance.now() : (c.lastSeen ?? performance.now());
    for (const o of live.observations ?? []) c.valueByCode.set(o.code, { o, mono });
    if (live.position) c.position = { p: live.position, mono };
  }

  /** Each value, greyed with its age once the device is stale (or the value older than its device's data). */
  function renderValues(c) {
    const mono = performance.now();
    const tile = (code, labelText, num, unit, at, demo) =>
      h(
        "div",
        { class: demo ? "value demo" : "value", dataset: { code } },
        h("span", { class: "v-label" }, labelText),
        h("span", { class: "v-num" }, num),
        h("span", { class: "v-unit" }, unit),
        h("span", { class: "v-age", dataset: { at: String(at) } }, ageText(c, at, mono)),
      );
    const byCode = c.valueByCode;
    // A blood pressure is read as one: 118/76 (90), as the monitor shows it, not three tiles.
    const sys = byCode.get(NIBP.sys);
    const dia = byCode.get(NIBP.dia);
    const bp = sys && dia;
    const mean = bp && byCode.get(NIBP.mean);
    const tiles = [...byCode.values()]
      .filter(({ o }) => !bp || ![NIBP.sys, NIBP.dia, NIBP.mean].includes(o.code))
      .map(({ o, mono: at }) => tile(o.code, obsLabel(o.code), formatValue(o.value), unitLabel(o.unit), at, o.demo));
    if (bp) {
      const text = `${formatValue(sys.o.value)}/${formatValue(dia.o.value)}${mean ? ` (${formatValue(mean.o.value)})` : ""}`;
      tiles.unshift(
        tile(
          "NIBP",
          t("devices.nibp"),
          text,
          unitLabel(sys.o.unit),
          Math.min(sys.mono, dia.mono),
          sys.o.demo || dia.o.demo,
        ),
      );
    }
    // A GPS: where the vehicle is, how fast, how good the fix.
    const p = c.position;
    if (p && typeof p.p.lat === "number" && typeof p.p.lon === "number") {
      const speed = typeof p.p.speedMps === "number" ? t("devices.speed", { v: Math.round(p.p.speedMps * 3.6) }) : "";
      const fix = [p.p.fix && label("fix", p.p.fix), typeof p.p.sats === "number" && t("devices.sats", { n: p.p.sats })]
        .filter(Boolean)
        .join(" · ");
      tiles.unshift(
        tile(
          "position",
          t("devices.position"),
          `${p.p.lat.toFixed(5)}, ${p.p.lon.toFixed(5)}`,
          [speed, fix].filter(Boolean).join(" · "),
          p.mono,
          false,
        ),
      );
    }
    replace(c.values, tiles);
  }

  function ageText(c, at, mono) {
    const age = mono - at;
    return age > staleAfterMs(c) ? t("time.ago", { d: formatDuration(age / 1000) }) : "";
  }

  function renderAges(c, mono) {
    for (const el of c.values.querySelectorAll(".v-age")) el.textContent = ageText(c, Number(el.dataset.at), mono);
  }

  function load() {
    Promise.all([
      api("GET", "/api/devices"),
      api("GET", "/api/drivers").catch(() => []),
      api("GET", "/api/status").catch(() => null),
    ]).then(
      ([devs, drvs, status]) => {
        drivers = new Map(drvs.map((d) => [d.id, d]));
        if (status) skews = new Map((status.time?.devices ?? []).map((d) => [d.id, d]));
        list.querySelector(".empty")?.remove();
        const ids = new Set(devs.map((d) => d.id));
        for (const [id, c] of cards) {
          if (ids.has(id)) continue;
          c.el.remove();
          cards.delete(id);
        }
        for (const d of devs) {
          const c = cardFor(d);
          c.status = d;
          seen(c, d.lastEventAt, false);
          mergeValues(c, d.live, false);
          renderStatus(c);
          renderValues(c);
        }
        if (devs.length === 0) replace(list, empty(t("devices.none")));
      },
      (err) => notify(errorText(err)),
    );
  }

  const offs = [
    live.on("resync", load),
    live.on("device", (d) => {
      if (!cards.has(d.id)) return load();
      const c = cards.get(d.id);
      c.status = { ...c.status, ...d };
      seen(c, c.status.lastEventAt, true);
      renderStatus(c);
    }),
    live.on("values", (v) => {
      const c = cards.get(v.device);
      if (!c) return;
      mergeValues(c, v, true);
      if (!c.status.lastEventAt || v.at > c.status.lastEventAt) c.status.lastEventAt = v.at;
      seen(c, c.status.lastEventAt, true);
      renderValues(c);
      renderStatus(c);
    }),
    live.on("wave", (w) => {
      const c = cards.get(w.device);
      if (!c) return;
      c.canvas.hidden = false;
      c.wave.push(w);
    }),
    // The status (every 2 s) carries every device's counters too: the rate and "last reading" move
    // with it even for a device whose state does not change (a GPS connected for hours).
    live.on("status", (s) => {
      skews = new Map((s.time?.devices ?? []).map((d) => [d.id, d]));
      for (const d of s.devices ?? []) {
        const c = cards.get(d.id);
        if (!c) continue;
        c.status = { ...c.status, ...d };
        seen(c, c.status.lastEventAt, true);
      }
    }),
  ];
  load();
  // Ages ("12 s ago"), staleness and the rate keep moving between two messages.
  const tick = setInterval(() => {
    for (const c of cards.values()) renderStatus(c);
  }, 1000);
  return () => {
    for (const off of offs) off();
    clearInterval(tick);
    for (const c of cards.values()) c.wave.stop();
  };
}
