// The county picture: each vehicle's last position, state and case on one page, drawn on a plain
// plot (north up, no map tiles: the center may have no Internet), with the places ambulances head
// for, and the alert when three or more head for the same one (center/county.ts).
import { api, errorText } from "../api.js";
import { h, replace } from "../dom.js";
import { formatAgo, t } from "../i18n.js";
import { badge, empty, pageHead } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 800;
const H = 500;
const PAD = 40;

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs ?? {})) if (v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) el.append(typeof c === "string" ? document.createTextNode(c) : c);
  return el;
}

/** Vehicles and places on a local equirectangular plot, scaled to fit. */
function plot(vehicles, places) {
  const points = [...vehicles.map((v) => v.position), ...places];
  const lats = points.map((p) => p.lat);
  const lons = points.map((p) => p.lon);
  const midLat = (Math.min(...lats) + Math.max(...lats)) / 2;
  const k = Math.cos((midLat * Math.PI) / 180);
  const spanX = Math.max((Math.max(...lons) - Math.min(...lons)) * k, 0.01);
  const spanY = Math.max(Math.max(...lats) - Math.min(...lats), 0.01);
  const scale = Math.min((W - 2 * PAD) / spanX, (H - 2 * PAD) / spanY);
  const x = (p) => PAD + (p.lon - Math.min(...lons)) * k * scale;
  const y = (p) => H - PAD - (p.lat - Math.min(...lats)) * scale;
  const root = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "county-map",
    role: "img",
    "aria-label": t("county.map"),
  });
  root.append(svg("rect", { x: 0, y: 0, width: W, height: H, class: "map-bg" }));
  for (const p of places) {
    root.append(
      svg("rect", { x: x(p) - 6, y: y(p) - 6, width: 12, height: 12, class: "map-place" }),
      svg("text", { x: x(p) + 9, y: y(p) + 4, class: "map-label" }, p.name),
    );
  }
  for (const v of vehicles) {
    const p = v.position;
    const g = svg("g", {
      class: ["map-vehicle", v.state === "offline" ? "offline" : "", v.caseId ? "on-case" : ""].join(" "),
    });
    if (p.courseDeg !== undefined && (p.speedMps ?? 0) >= 1) {
      const a = (p.courseDeg * Math.PI) / 180;
      g.append(
        svg("line", {
          x1: x(p),
          y1: y(p),
          x2: x(p) + 24 * Math.sin(a),
          y2: y(p) - 24 * Math.cos(a),
          class: "map-course",
        }),
      );
    }
    g.append(
      svg("circle", { cx: x(p), cy: y(p), r: 6 }),
      svg("text", { x: x(p) + 9, y: y(p) - 8, class: "map-label" }, v.gw),
    );
    root.append(g);
  }
  return root;
}

export function mountCounty(view, { live, notify }) {
  const alerts = h("div", { id: "county-alerts" });
  const rule = h("p", { class: "hint", id: "county-rule" });
  const map = h("div", { class: "card county-plot" });
  const tbody = h("tbody");
  const table = h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "county", id: "county" },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          [
            "county.vehicle",
            "county.state",
            "county.case",
            "county.heading",
            "county.speed",
            "county.position",
            "county.age",
          ].map((k) => h("th", null, t(k))),
        ),
      ),
      tbody,
    ),
  );
  view.append(pageHead(t("county.title")), alerts, map, table, rule);

  async function load() {
    try {
      const c = await api("GET", "/api/county");
      replace(
        alerts,
        c.alerts.map((a) =>
          h(
            "p",
            { class: "banner alert county-alert", role: "alert", dataset: { place: a.place } },
            t("county.alert", {
              n: a.vehicles.length,
              place: a.place,
              list: a.vehicles.map((v) => `${v.gw} (${v.etaMin} min)`).join(", "),
            }),
          ),
        ),
      );
      replace(rule, t("county.rule", { n: c.rule.minVehicles, radius: c.rule.radiusM, min: c.rule.withinMin }));
      const placed = c.vehicles.filter((v) => v.position);
      replace(map, placed.length ? plot(placed, c.places) : empty(t("county.empty")));
      replace(
        tbody,
        c.vehicles.map((v) =>
          h(
            "tr",
            { dataset: { gw: v.gw } },
            h("td", null, v.gw),
            h("td", null, v.state ? badge(t(`state.${v.state}`), v.state === "online" ? "ok" : "idle") : "—"),
            h("td", null, v.caseId ?? "—"),
            h(
              "td",
              null,
              v.heading ? t("county.eta", { place: v.heading.place, min: Math.round(v.heading.etaMin) }) : "—",
            ),
            h("td", null, v.position?.speedMps !== undefined ? `${(v.position.speedMps * 3.6).toFixed(0)} km/h` : "—"),
            h("td", null, v.position ? `${v.position.lat.toFixed(5)}, ${v.position.lon.toFixed(5)}` : "—"),
            h("td", null, v.position ? formatAgo(v.position.t, Date.parse(c.now)) : "—"),
          ),
        ),
      );
    } catch (err) {
      notify(errorText(err));
    }
  }

  const offs = ["position", "status", "case", "resync"].map((type) => live.on(type, () => load()));
  const timer = setInterval(load, 10_000);
  load();
  return () => {
    clearInterval(timer);
    offs.forEach((off) => off());
  };
}
