// Prometheus metrics (/metrics). Gauges are read from the gateway's status when scraped, so they
// cannot drift from what the web page and `vitalgate status` show.
import client from "prom-client";
import type { GatewayStatus } from "./status.ts";
import { VERSION } from "./version.ts";

export function createMetrics(status: () => GatewayStatus) {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: "vitalgate_" });
  const gauge = (name: string, help: string, labelNames: string[], collect: (g: client.Gauge) => void) =>
    new client.Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        collect(this);
      },
    });

  new client.Gauge({
    name: "vitalgate_info",
    help: "Gateway version and id.",
    labelNames: ["version", "gateway"],
    registers: [registry],
    collect() {
      this.reset();
      this.set({ version: VERSION, gateway: status().gateway.id }, 1);
    },
  });
  gauge(
    "vitalgate_queue_depth",
    "Undelivered events by priority (0 ECG/alarm, 1 case, 2 vitals/lab/position, 3 waveform): not sent yet, or sent and waiting for the center's receipt.",
    ["priority"],
    (g) => {
      status().queue.pending.forEach((n, p) => g.set({ priority: String(p) }, n));
    },
  );
  gauge(
    "vitalgate_queue_awaiting_receipt",
    "Of the undelivered events, those sent (the broker acknowledged them) and waiting for the center's receipt, by priority (uplink.receipts).",
    ["priority"],
    (g) => {
      status().queue.awaitingReceipt.forEach((n, p) => g.set({ priority: String(p) }, n));
    },
  );
  gauge("vitalgate_queue_oldest_age_seconds", "Age of the oldest undelivered event (0 when none).", [], (g) =>
    g.set(status().queue.oldestPendingAgeS ?? 0),
  );
  gauge("vitalgate_store_bytes", "Bytes the outbox counts against its quota.", [], (g) => g.set(status().queue.bytes));
  gauge("vitalgate_store_quota_bytes", "The outbox quota.", [], (g) => g.set(status().queue.quotaBytes));
  gauge("vitalgate_uplink_connected", "1 when the uplink to the center is connected.", [], (g) =>
    g.set(status().uplink.state === "connected" ? 1 : 0),
  );
  gauge("vitalgate_device_up", "1 when the device is connected or its listener is up.", ["device", "driver"], (g) => {
    g.reset();
    for (const d of status().devices)
      g.set({ device: d.id, driver: d.driver }, d.state === "connected" || d.state === "listening" ? 1 : 0);
  });
  gauge(
    "vitalgate_time_synced",
    "1 once a time source (GPS, NTP, a synchronized system clock) has synchronized the gateway's time in this run.",
    [],
    (g) => g.set(status().time.synced ? 1 : 0),
  );
  gauge(
    "vitalgate_time_uncertainty_ms",
    "Uncertainty of the gateway's time now, ms (grows between syncs; a placeholder of one day while unsynchronized).",
    [],
    (g) => g.set(status().time.uncMs),
  );
  gauge(
    "vitalgate_time_offset_ms",
    "True UTC minus the box's system clock, ms: how far the operating system's clock is off, by the source in use (absent until synchronized).",
    ["src"],
    (g) => {
      g.reset();
      const t = status().time;
      if (t.offsetMs !== null) g.set({ src: t.src }, t.offsetMs);
    },
  );
  gauge(
    "vitalgate_time_pps_present",
    "1 when a kernel PPS source (/dev/ppsN) is present: the configured time.ppsDevice, or any when none is configured.",
    [],
    (g) => g.set(status().time.pps.present ? 1 : 0),
  );
  gauge(
    "vitalgate_device_clock_skew_ms",
    "A device's clock minus true time, ms (positive: the device is fast), estimated from its messages.",
    ["device"],
    (g) => {
      g.reset();
      for (const d of status().time.devices) g.set({ device: d.id }, d.skewMs);
    },
  );
  const deviceCounter = (name: string, help: string, pick: (d: GatewayStatus["devices"][number]) => number) =>
    new client.Counter({
      name,
      help,
      labelNames: ["device", "driver"],
      registers: [registry],
      collect() {
        this.reset();
        for (const d of status().devices) this.inc({ device: d.id, driver: d.driver }, pick(d));
      },
    });
  deviceCounter("vitalgate_device_events_total", "Events committed from the device since start.", (d) => d.events);
  deviceCounter("vitalgate_device_frames_total", "Messages received from the device since start.", (d) => d.frames);
  deviceCounter(
    "vitalgate_device_rejected_total",
    "Messages from the device that could not be read (negatively acknowledged).",
    (d) => d.rejected,
  );
  deviceCounter(
    "vitalgate_device_refused_total",
    "Messages from the device the store could not accept (negatively acknowledged).",
    (d) => d.refused,
  );
  new client.Counter({
    name: "vitalgate_device_conditions_total",
    help: "What the driver reported on the device's messages since start, by code: messages refused for what they are (HL7_NO_OBSERVATIONS...) and notices on accepted ones (HL7_DEMO demo data, HL7_NO_VALUE a no-value marker read as absent, HL7_CODE_MISMATCH).",
    labelNames: ["device", "driver", "code"],
    registers: [registry],
    collect() {
      this.reset();
      for (const d of status().devices)
        for (const [code, n] of Object.entries(d.conditions ?? {}))
          this.inc({ device: d.id, driver: d.driver, code }, n);
    },
  });

  return {
    registry,
    delivered: new client.Counter({
      name: "vitalgate_delivered_total",
      help: "Events delivered to the center.",
      registers: [registry],
    }),
    deliveryLatency: new client.Histogram({
      name: "vitalgate_delivery_latency_seconds",
      help: "Time from commit to the broker's acknowledgement.",
      registers: [registry],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600, 3600],
    }),
    storeRefused: new client.Counter({
      name: "vitalgate_store_refused_total",
      help: "Appends the store refused (quota, disk full), by code.",
      labelNames: ["code"],
      registers: [registry],
    }),
    webLogins: new client.Counter({
      name: "vitalgate_web_logins_total",
      help: "Logins on the web page, by result (ok, failed, limited: refused by the rate limit).",
      labelNames: ["result"],
      registers: [registry],
    }),
    webLiveStreams: new client.Gauge({
      name: "vitalgate_web_live_streams",
      help: "Pages watching live (server-sent events) now.",
      registers: [registry],
    }),
    webLiveDropped: new client.Counter({
      name: "vitalgate_web_live_dropped_total",
      help: "Live messages not sent to a page because it had not taken the previous ones.",
      registers: [registry],
    }),
    storeEvicted: new client.Counter({
      name: "vitalgate_store_evicted_total",
      help: "Undelivered events evicted at the quota since start, by kind.",
      labelNames: ["kind"],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
