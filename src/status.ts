// What the gateway says of itself (DESIGN.md §8): its identity, uplink, queue, store, time, devices,
// process and page, one shape read by `vitalgate status`, the page's status view, the center's
// status message and the metrics.
import type { DeviceManager } from "./devices/device-manager.ts";
import type { DeviceClockView } from "./time/device-clocks.ts";
import type { TimeState } from "./time/service.ts";
import type { PageCertificate } from "./web/tls.ts";

export interface GatewayStatus {
  gateway: { id: string; site?: string; role: string; version: string; startedAt: string };
  uplink: { url: string; state: string; since: string; inflight: number; embedded: boolean };
  queue: {
    pending: number[];
    awaitingReceipt: number[];
    oldestPendingAgeS: number | null;
    bytes: number;
    quotaBytes: number;
    evicted: Record<string, number>;
    lastSeq: number;
  };
  store: {
    state: "ok" | "refusing";
    diskFull: boolean;
    lastRefusal?: { code: string; message: string; at: string };
    setAside?: string;
  };
  /** `zone`: the box's time zone (time.zone), in which device times without an offset are read. */
  time: TimeState & { devices: DeviceClockView[]; zone: string };
  devices: ReturnType<DeviceManager["list"]>;
  process: { rssMB: number; heapUsedMB: number; externalMB: number; uptimeS: number };
  /** How the page is served: over HTTPS with which certificate (its SHA-256 fingerprint, to check against the browser's), or plain HTTP on loopback. */
  web: { https: boolean; certificate?: { source: PageCertificate["source"]; file: string; fingerprint256: string } };
}

export function processMemory(): GatewayStatus["process"] {
  const m = process.memoryUsage();
  const mb = (n: number) => Math.round(n / 1e5) / 10;
  return {
    rssMB: mb(m.rss),
    heapUsedMB: mb(m.heapUsed),
    externalMB: mb(m.external),
    uptimeS: Math.round(process.uptime()),
  };
}
