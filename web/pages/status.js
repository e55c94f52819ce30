// Status: is the uplink up and since when, how much waits to be sent and for how long, is the time
// right, how full is the disk, which gateway and version. Refreshed by the live `status` message.
import { api, errorText } from "../api.js";
import { h, replace } from "../dom.js";
import { formatAgo, formatBytes, formatDuration, formatTime, t } from "../i18n.js";
import { card, kv, label, pageHead } from "./ui.js";

/** Queue priorities (DESIGN.md §5): 0 ECG and alarms, 1 cases and time nodes, 2 vitals/lab/position, 3 waveforms. */
const PRIORITIES = ["status.p0", "status.p1", "status.p2", "status.p3"];

export function mountStatus(view, { live, notify }) {
  const body = h("div", { class: "grid", id: "status" });
  view.append(pageHead(t("status.title")), body);
  let last = null;

  function render(s) {
    last = s;
    const up = s.uplink.state === "connected";
    // Connected to the box's own broker is not "connected to the center": nothing leaves the box.
    const uplinkKind = up ? (s.uplink.embedded ? "warn" : "ok") : s.uplink.state === "connecting" ? "warn" : "bad";
    const pending = s.queue.pending ?? [];
    const total = pending.reduce((a, b) => a + b, 0);
    // Of those, sent and waiting for the center's receipt (uplink.receipts): the rest is not sent yet.
    const awaiting = (s.queue.awaitingReceipt ?? []).reduce((a, b) => a + b, 0);
    const oldest = s.queue.oldestPendingAgeS;
    const time = s.time ?? {};
    const disk = s.disk ?? {};
    const quota = disk.quotaBytes ?? s.queue.quotaBytes;
    const used = disk.storeBytes ?? s.queue.bytes;
    const skewed = (time.devices ?? []).filter((d) => d.state === "skewed");
    replace(
      body,
      s.store?.state === "refusing" &&
        h(
          "section",
          { class: "banner bad", id: "store-refusing" },
          h("strong", null, t("status.refusing")),
          " ",
          s.store.lastRefusal?.message ?? "",
        ),
      card(
        t("status.uplink"),
        {
          kind: uplinkKind,
          state: up && s.uplink.embedded ? t("uplink.noCenter") : label("uplink", s.uplink.state),
          id: "card-uplink",
        },
        kv([
          [t("status.since"), `${formatTime(s.uplink.since)} (${formatAgo(s.uplink.since)})`],
          [t("status.center"), s.uplink.embedded ? t("status.embedded") : s.uplink.url],
          [t("status.inflight"), s.uplink.inflight ? String(s.uplink.inflight) : undefined],
        ]),
      ),
      card(
        t("status.queue"),
        {
          kind: total === 0 ? "ok" : oldest !== null && oldest > 600 ? "warn" : "idle",
          state: total === 0 ? t("status.allSent") : t("status.waiting", { n: total }),
          id: "card-queue",
        },
        kv([
          ...PRIORITIES.map((key, i) => [t(key), String(pending[i] ?? 0)]),
          [t("status.awaitingReceipt"), awaiting ? String(awaiting) : undefined],
          [t("status.oldest"), oldest === null || oldest === undefined ? t("status.none") : formatDuration(oldest)],
          [
            t("status.evicted"),
            Object.keys(s.queue.evicted ?? {}).length
              ? Object.entries(s.queue.evicted)
                  .map(([k, n]) => `${label("kind", k)} ${n}`)
                  .join(", ")
              : undefined,
          ],
        ]),
      ),
      card(
        t("status.time"),
        {
          kind: time.synced ? "ok" : "warn",
          state: time.synced ? t("status.synced", { src: label("timesrc", time.src) }) : t("status.unsynced"),
          id: "card-time",
        },
        kv([
          [
            t("status.uncertainty"),
            Number.isFinite(time.uncMs)
              ? `± ${time.uncMs < 1000 ? `${Math.round(time.uncMs)} ms` : formatDuration(time.uncMs / 1000)}`
              : undefined,
          ],
          [t("status.lastSync"), time.lastSync ? formatAgo(time.lastSync) : undefined],
          [
            t("status.skewed"),
            skewed.length ? skewed.map((d) => `${d.id} ${Math.round(d.skewMs / 1000)} s`).join(", ") : undefined,
          ],
        ]),
      ),
      card(
        t("status.disk"),
        {
          kind: quota && used / quota > 0.9 ? "warn" : "ok",
          state: quota
            ? t("status.diskUse", { used: formatBytes(used), quota: formatBytes(quota) })
            : formatBytes(used),
          id: "card-disk",
        },
        quota ? h("meter", { min: 0, max: quota, value: used, low: quota * 0.7, high: quota * 0.9, optimum: 0 }) : null,
        kv([[t("status.free"), disk.freeBytes === undefined ? undefined : formatBytes(disk.freeBytes)]]),
      ),
      card(
        t("status.gateway"),
        { id: "card-gateway" },
        kv([
          [t("status.gwId"), s.gateway.id],
          [t("status.site"), s.gateway.site],
          [t("status.role"), label("gwrole", s.gateway.role)],
          [t("status.version"), s.gateway.version],
          [t("status.started"), `${formatTime(s.gateway.startedAt)} (${formatAgo(s.gateway.startedAt)})`],
          [t("status.memory"), s.process ? `${s.process.rssMB} MB` : undefined],
        ]),
      ),
    );
  }

  api("GET", "/api/status").then(render, (err) => notify(errorText(err)));
  const off = live.on("status", render);
  // "since …" and "… ago" keep moving between two messages.
  const tick = setInterval(() => last && render(last), 1000);
  return () => {
    off();
    clearInterval(tick);
  };
}
