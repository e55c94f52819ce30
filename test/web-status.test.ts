// The page's read side over real HTTP against a started gateway (issue 6): status with the disk,
// devices with their latest values, the drivers a technician can pick, and the live feed that
// carries a monitor's values to the page as they are committed.
import { get, type IncomingMessage } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { pcd01Message } from "../drivers/hl7-pcd01/synthetic.ts";
import type { Envelope } from "../src/events/model.ts";
import { LatestValues, thinWave } from "../src/web/status-routes.ts";
import { MllpSender } from "./support/mllp-sender.ts";
import { freePort } from "./support/processes.ts";
import { startGateway } from "./support/rig.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** The gateway with one HL7 monitor, and an admin session made from the box itself. */
async function gatewayWithMonitor() {
  const hl7Port = await freePort();
  const { gw, config } = await startGateway(
    {
      id: "gw-status",
      devices: `{ id: bed-1, driver: hl7-pcd01, name: "床旁 1", options: { host: 127.0.0.1, port: ${hl7Port} } }`,
    },
    cleanup,
  );
  const base = `http://127.0.0.1:${config.web.port}`;
  const setup = await fetch(`${base}/api/setup`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "admin", password: "correct horse battery 1" }),
  });
  expect(setup.status).toBe(200);
  const cookie = setup.headers.get("set-cookie")!.split(";")[0]!;
  const api = async (path: string) => {
    const res = await fetch(`${base}${path}`, { headers: { cookie } });
    expect(res.status, path).toBe(200);
    return res.json() as Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  };
  return { gw, base, cookie, api, hl7Port };
}

/** Reads server-sent events from /api/live until `until` says enough. */
/* eslint-disable @typescript-eslint/no-explicit-any -- live events are whatever JSON the page receives */
function liveEvents(
  base: string,
  cookie: string,
  until: (events: { type: string; data: any }[]) => boolean,
): Promise<{ type: string; data: any }[]> {
  /* eslint-enable @typescript-eslint/no-explicit-any */
  return new Promise((resolve, reject) => {
    const events: { type: string; data: unknown }[] = [];
    get(`${base}/api/live`, { headers: { cookie } }, (res: IncomingMessage) => {
      if (res.statusCode !== 200) return reject(new Error(`live: ${res.statusCode}`));
      let buf = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buf += chunk;
        let end: number;
        while ((end = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const type = /^event: (.+)$/m.exec(block)?.[1];
          const data = /^data: (.+)$/m.exec(block)?.[1];
          if (type && data) events.push({ type, data: JSON.parse(data) });
        }
        if (until(events)) {
          res.destroy();
          resolve(events);
        }
      });
    }).on("error", reject);
  });
}

describe("status and devices for the page", () => {
  it("need a session", async () => {
    const { base } = await gatewayWithMonitor();
    for (const path of ["/api/status", "/api/devices", "/api/drivers", "/api/live"])
      expect((await fetch(`${base}${path}`)).status, path).toBe(401);
  });

  it("status carries the uplink, queue, time and the disk against the quota", async () => {
    const { api } = await gatewayWithMonitor();
    const s = await api("/api/status");
    expect(s.gateway.id).toBe("gw-status");
    expect(s.uplink.state).toMatch(/connecting|waiting|idle/);
    expect(s.queue.pending).toHaveLength(4);
    expect(s.disk.quotaBytes).toBeGreaterThan(0);
    expect(s.disk.freeBytes).toBeGreaterThan(0);
    expect(s.disk.storeBytes).toBe(s.queue.bytes);
  });

  it("drivers list each driver's titles in both languages and its options as JSON Schema", async () => {
    const { api } = await gatewayWithMonitor();
    const list = await api("/api/drivers");
    const hl7 = list.find((d: { id: string }) => d.id === "hl7-pcd01");
    expect(hl7.title.zh).toBeTruthy();
    expect(hl7.title.en).toBeTruthy();
    expect(hl7.options.type).toBe("object");
    expect(Object.keys(hl7.options.properties)).toContain("port");
  });

  it("a monitor's values reach the live feed as they are committed, and the devices list keeps the latest", async () => {
    const { base, cookie, api, hl7Port } = await gatewayWithMonitor();
    const seen = liveEvents(base, cookie, (evs) => evs.some((e) => e.type === "values"));
    // Give the stream a moment to be registered before the message is sent: wait for its first status push.
    await liveEvents(base, cookie, (evs) => evs.some((e) => e.type === "status"));
    const sender = await MllpSender.connect(hl7Port);
    cleanup.push(() => sender.close());
    const ack = await sender.send(pcd01Message({ controlId: "C1", time: new Date(), values: { hr: 72, spo2: 97 } }));
    expect(ack.code).toBe("AA");
    const values = (await seen).find((e) => e.type === "values")!.data;
    expect(values.device).toBe("bed-1");
    expect(values.observations).toEqual(
      expect.arrayContaining([
        { code: "MDC_ECG_HEART_RATE", value: 72, unit: "/min" },
        { code: "MDC_PULS_OXIM_SAT_O2", value: 97, unit: "%" },
      ]),
    );
    const devices = await api("/api/devices");
    const bed = devices.find((d: { id: string }) => d.id === "bed-1");
    expect(bed).toMatchObject({ name: "床旁 1", state: "connected", live: { observations: values.observations } });
    // With no page watching any more, the devices list still follows the monitor.
    expect((await sender.send(pcd01Message({ controlId: "C2", time: new Date(), values: { hr: 88 } }))).code).toBe(
      "AA",
    );
    const again = (await api("/api/devices")).find((d: { id: string }) => d.id === "bed-1");
    expect(again.live.observations).toEqual(
      expect.arrayContaining([
        { code: "MDC_ECG_HEART_RATE", value: 88, unit: "/min" },
        { code: "MDC_PULS_OXIM_SAT_O2", value: 97, unit: "%" },
      ]),
    );
  });
});

describe("waveform strips", () => {
  it("are thinned to about 125 points a second, keeping the samples' values", () => {
    const samples = Int16Array.from({ length: 300 }, (_, i) => i - 150);
    const out = thinWave({
      channel: "ECG1",
      fs: 300,
      unit: "mV",
      scale: 0.001,
      samples: Buffer.from(samples.buffer).toString("base64"),
    });
    expect(out.fs).toBe(150);
    expect(out.samples).toHaveLength(150);
    expect(out.samples.slice(0, 3)).toEqual([-150, -148, -146]);
  });
});

describe("a device's latest values", () => {
  const vitals = (t: string, observations: { code: string; value: number; unit: string }[]) =>
    ({ kind: "vitals", t, dev: { id: "bed-1" }, body: { observations } }) as unknown as Envelope;

  it("are kept per measurement, so one event with only some of them does not hide the others, and an older one replaces nothing newer", () => {
    const latest = new LatestValues();
    latest.observe(
      vitals("2026-11-23T08:00:01Z", [
        { code: "MDC_ECG_HEART_RATE", value: 72, unit: "/min" },
        { code: "MDC_PULS_OXIM_SAT_O2", value: 97, unit: "%" },
      ]),
    );
    latest.observe(vitals("2026-11-23T08:00:02Z", [{ code: "MDC_PRESS_BLD_NONINV_SYS", value: 120, unit: "mm[Hg]" }]));
    latest.observe(vitals("2026-11-23T08:00:00Z", [{ code: "MDC_ECG_HEART_RATE", value: 60, unit: "/min" }]));
    const got = latest.get("bed-1")!;
    expect(got.at).toBe("2026-11-23T08:00:02Z");
    expect(Object.fromEntries(got.observations.map((o) => [o.code, o.value]))).toEqual({
      MDC_ECG_HEART_RATE: 72,
      MDC_PULS_OXIM_SAT_O2: 97,
      MDC_PRESS_BLD_NONINV_SYS: 120,
    });
    latest.forget(new Set());
    expect(latest.get("bed-1")).toBeUndefined();
  });

  it("keep a GPS's latest fix beside them, never replaced by an older one", () => {
    const latest = new LatestValues();
    const fix = (t: string, lat: number) =>
      ({
        kind: "position",
        t,
        dev: { id: "gps" },
        body: { lat, lon: 121.47, fix: "3d", speedMps: 12.5 },
      }) as unknown as Envelope;
    expect(latest.observe(fix("2026-11-23T08:00:01Z", 31.23))).toEqual({
      at: "2026-11-23T08:00:01Z",
      observations: [],
      position: { lat: 31.23, lon: 121.47, fix: "3d", speedMps: 12.5 },
    });
    expect(latest.observe(fix("2026-11-23T08:00:00Z", 30))).toBeUndefined();
    expect(latest.get("gps")?.position).toMatchObject({ lat: 31.23 });
  });
});
