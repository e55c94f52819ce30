// The page's read side: the gateway's status with the disk beside it, each device with its latest
// values, the drivers a technician can pick, and the live feed (server-sent events) that keeps the
// status and devices pages current without polling.
import { statfsSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import type { DeviceStatus } from "../devices/device-manager.ts";
import type { Envelope, Observation } from "../events/model.ts";
import type { WebContext } from "./context.ts";

/** How often the status is pushed to the pages watching. */
const STATUS_EVERY_MS = 2000;
/** A device's state change is pushed at most this often (a flapping link must not flood the pages). */
const DEVICE_MIN_GAP_MS = 500;
/** Waveform points a page gets per second and channel: enough for a strip 500 px wide. */
const WAVE_POINTS_PER_S = 125;

/** `demo`: the value is demo data (a monitor in demo mode), shown marked. */
type LiveObservation = Pick<Observation, "code" | "value" | "unit" | "demo">;

export interface LiveValues {
  at: string;
  observations: LiveObservation[];
  /** A GPS's latest fix (a `position` event's body). */
  position?: Record<string, unknown>;
}

/**
 * Each device's latest value of every measurement, as the devices page shows them. One message may
 * become several events (an HL7 ORU with one OBR per measurement time), so values are kept per
 * code, not per event: a page opened now sees the heart rate even if the newest event holds only the
 * blood pressure.
 */
interface DeviceValues {
  at: string;
  byCode: Map<string, { t: string; o: LiveObservation }>;
  positionAt: string;
  position?: Record<string, unknown>;
}

export class LatestValues {
  #byDevice = new Map<string, DeviceValues>();

  /** Takes a committed event; for vitals and positions, returns what it brought (for the live feed). */
  observe(event: Envelope): LiveValues | undefined {
    if (event.kind === "position") {
      const device =
        this.#byDevice.get(event.dev.id) ?? ({ at: event.t, byCode: new Map(), positionAt: "" } as DeviceValues);
      if (event.t < device.positionAt) return undefined; // never replaced by an older fix
      if (event.t > device.at) device.at = event.t;
      device.positionAt = event.t;
      device.position = event.body as Record<string, unknown>;
      this.#byDevice.set(event.dev.id, device);
      return { at: event.t, observations: [], position: device.position };
    }
    if (event.kind !== "vitals") return undefined;
    const observations = ((event.body as { observations?: Observation[] }).observations ?? []).map(
      ({ code, value, unit, demo }) => ({ code, value, unit, ...(demo ? { demo } : {}) }),
    );
    const device =
      this.#byDevice.get(event.dev.id) ?? ({ at: event.t, byCode: new Map(), positionAt: "" } as DeviceValues);
    for (const o of observations) {
      const known = device.byCode.get(o.code);
      if (!known || known.t <= event.t) device.byCode.set(o.code, { t: event.t, o }); // never replaced by an older measurement
    }
    if (event.t > device.at) device.at = event.t;
    this.#byDevice.set(event.dev.id, device);
    return { at: event.t, observations };
  }

  get(device: string): LiveValues | undefined {
    const d = this.#byDevice.get(device);
    return (
      d && {
        at: d.at,
        observations: [...d.byCode.values()].map((v) => v.o),
        ...(d.position ? { position: d.position } : {}),
      }
    );
  }

  forget(keep: ReadonlySet<string>): void {
    for (const id of this.#byDevice.keys()) if (!keep.has(id)) this.#byDevice.delete(id);
  }
}

/** A waveform segment thinned to what a strip on the page can draw: every n-th sample. */
export function thinWave(body: { channel: string; fs: number; unit: string; scale: number; samples: string }): {
  channel: string;
  fs: number;
  unit: string;
  scale: number;
  samples: number[];
} {
  const bytes = Buffer.from(body.samples, "base64");
  const all = new Int16Array(bytes.buffer, bytes.byteOffset, bytes.length >> 1);
  const step = Math.max(1, Math.round(body.fs / WAVE_POINTS_PER_S));
  const samples: number[] = [];
  for (let i = 0; i < all.length; i += step) samples.push(all[i]!);
  return { channel: body.channel, fs: body.fs / step, unit: body.unit, scale: body.scale, samples };
}

export function registerStatusRoutes(app: FastifyInstance, ctx: WebContext): void {
  const { services } = ctx;
  const latest = new LatestValues();

  const status = () => {
    const s = services.status();
    return { ...s, disk: disk(services.stateDir, s.queue.bytes, s.queue.quotaBytes) };
  };
  const devices = () => {
    const list = services.devices.list();
    latest.forget(new Set(list.map((d) => d.id)));
    // source (config file or paired on the page) and location, from the pairing, which knows both
    return list.map((d) => ({ ...d, ...services.pairing.deviceInfo(d.id), live: latest.get(d.id) }));
  };

  app.get("/api/status", { onRequest: ctx.guard("read") }, async () => status());
  app.get("/api/devices", { onRequest: ctx.guard("read") }, async () => devices());
  app.get("/api/drivers", { onRequest: ctx.guard("read") }, async () =>
    services.drivers.map((d) => ({
      id: d.id,
      kind: d.kind,
      title: d.title,
      labels: d.labels,
      ...(d.probe ? { probe: { bauds: d.probe.bauds } } : {}),
      options: z.toJSONSchema(d.options, { io: "input", unrepresentable: "any" }),
    })),
  );

  // The live feed: committed events become values and waveform strips; device changes and the
  // status are pushed as they happen. This runs on every commit: with no page watching, it only
  // keeps each device's latest values (for GET /api/devices).
  const onEvents = (events: Envelope[]) => {
    const watching = ctx.watching();
    for (const e of events) {
      const live = latest.observe(e);
      if (!watching) continue;
      if (live) ctx.publish("values", { device: e.dev.id, ...live });
      else if (e.kind === "waveform")
        ctx.publish("wave", { device: e.dev.id, ...thinWave(e.body as Parameters<typeof thinWave>[0]) });
    }
  };
  const lastPushed = new Map<string, number>();
  const pending = new Map<string, ReturnType<typeof setTimeout>>();
  const onDevice = (d: DeviceStatus) => {
    if (pending.has(d.id)) return; // the timer pushes the state as it is by then
    const wait = (lastPushed.get(d.id) ?? -Infinity) + DEVICE_MIN_GAP_MS - ctx.nowMs();
    const push = () => {
      pending.delete(d.id);
      lastPushed.set(d.id, ctx.nowMs());
      const now = services.devices.get(d.id);
      if (now) ctx.publish("device", { ...now, live: latest.get(d.id) });
    };
    if (wait <= 0) push();
    else pending.set(d.id, setTimeout(push, wait));
  };
  let timer: ReturnType<typeof setInterval> | undefined;
  app.addHook("onReady", async () => {
    services.committed.on("events", onEvents);
    services.devices.on("change", onDevice);
    timer = setInterval(() => {
      if (ctx.watching()) ctx.publish("status", status());
    }, STATUS_EVERY_MS);
    timer.unref();
  });
  app.addHook("onClose", async () => {
    services.committed.off("events", onEvents);
    services.devices.off("change", onDevice);
    clearInterval(timer);
    for (const t of pending.values()) clearTimeout(t);
    pending.clear();
  });
}

/** The store's share of the disk: what it holds against its quota, and what the file system has left. */
function disk(
  stateDir: string,
  storeBytes: number,
  quotaBytes: number,
): { storeBytes: number; quotaBytes: number; freeBytes: number | null } {
  try {
    const fs = statfsSync(stateDir);
    return { storeBytes, quotaBytes, freeBytes: fs.bavail * fs.bsize };
  } catch {
    return { storeBytes, quotaBytes, freeBytes: null };
  }
}
