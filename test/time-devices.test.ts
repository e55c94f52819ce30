// Device clocks against the gateway's time (issue 11 items 2-7): backlogs are not clock changes,
// skews follow the gateway's own corrections, observation times are corrected, restamping keeps a
// device's time on the device's clock, ECG carts are checked, and local times are read in a zone.
// Unit rules on the real classes; the gateway ones in-process on a real SQLite outbox.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { handleEcgFile } from "../drivers/ecg-cart/index.ts";
import { handleHl7 } from "../drivers/hl7-pcd01/index.ts";
import { hl7Pcd01Options } from "../drivers/hl7-pcd01/index.ts";
import { ecgCartOptions } from "../drivers/ecg-cart/index.ts";
import { findDriver } from "../drivers/registry.ts";
import { loadConfig } from "../src/config/load.ts";
import type { Config } from "../src/config/schema.ts";
import type { Envelope, EventDraft, VitalsBody } from "../src/events/model.ts";
import { Gateway } from "../src/gateway.ts";
import { restamp, stamp } from "../src/events/stamp.ts";
import { DeviceClocks } from "../src/time/device-clocks.ts";
import { TimeService } from "../src/time/service.ts";
import { placeLocalTime } from "../src/time/zone.ts";
import { freePort } from "./support/processes.ts";
import { capturedLog, manualClocks, T0 } from "./support/time.ts";

const OPTIONS = { driftPpm: 50, gpsLatencyMs: 100, gpsUncMs: 100 };
const monitor = { id: "monitor", driver: "hl7-pcd01", kind: "monitor" as const };
const cart = { id: "cart", driver: "ecg-cart", kind: "ecg-cart" as const };
const iso = (ms: number) => new Date(ms).toISOString();
const vitals = (devMs: number, body: unknown = { observations: [] }): EventDraft => ({
  kind: "vitals",
  body,
  deviceTime: iso(devMs),
  deviceTimeRaw: String(devMs),
});

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe("a device's clock", () => {
  it("a backlog of buffered messages, each with its own older time, is not a clock change; three agreeing messages are, two are not", () => {
    const clocks = new DeviceClocks({ thresholdMs: 60_000 });
    let recv = T0;
    for (let i = 0; i < 20; i++) clocks.observe("monitor", [vitals((recv += 1000) - 300)], recv);
    expect(clocks.skewOf("monitor")).toBe(-300);
    // The link comes back: readings 8, 6 and 4 minutes old arrive back to back, then live ones.
    for (const ageMin of [8, 6, 4]) clocks.observe("monitor", [vitals(recv - ageMin * 60_000)], (recv += 20));
    expect(clocks.skewOf("monitor")).toBe(-300);
    expect(clocks.change("monitor")).toBeUndefined();
    // Two messages 5 minutes ahead, then back: no change (the docs say three).
    for (let i = 0; i < 2; i++) clocks.observe("monitor", [vitals((recv += 1000) + 300_000)], recv);
    expect(clocks.skewOf("monitor")).toBe(-300);
    clocks.observe("monitor", [vitals((recv += 1000) - 300)], recv);
    // Someone sets it 5 minutes ahead: the third message moves the estimate.
    for (let i = 0; i < 2; i++) clocks.observe("monitor", [vitals((recv += 1000) + 300_000)], recv);
    expect(clocks.skewOf("monitor")).toBe(-300);
    clocks.observe("monitor", [vitals((recv += 1000) + 300_000)], recv);
    expect(clocks.skewOf("monitor")).toBe(300_000);
  });

  it("skews measured on the gateway's timeline follow its corrections; one kept from a previous run does not", () => {
    const clocks = new DeviceClocks({ thresholdMs: 60_000 });
    clocks.restore({ cart: { skewMs: -600_000 } });
    for (let i = 0; i < 5; i++) clocks.observe("monitor", [vitals(T0 + i * 1000 + 420_000)], T0 + i * 1000);
    clocks.shift(-3 * 3_600_000); // the gateway stepped back 3 h: what it measured before was 3 h short
    expect(clocks.skewOf("monitor")).toBe(420_000 + 3 * 3_600_000);
    expect(clocks.skewOf("cart")).toBe(-600_000);
  });

  it("observation times (OBX-14) are corrected by the device's skew, its own kept in atDev, never after arrival", () => {
    const clocks = manualClocks();
    const time = new TimeService(OPTIONS, { monoMs: clocks.monoMs, wallMs: clocks.wallMs, log: capturedLog().log });
    time.gpsFix(T0 + 10_000 - 100, clocks.mono);
    const now = time.now().ms;
    const body: VitalsBody = {
      observations: [
        { code: "MDC_PRESS_CUFF_SYS", value: 120, unit: "mm[Hg]", at: iso(now - 300_000 + 600_000) }, // NIBP 5 min ago, by a clock 10 min fast
        { code: "MDC_PULS_OXIM_SAT_O2", value: 97, unit: "%", at: iso(now + 600_000 + 30_000) }, // ahead even after correction
        { code: "MDC_ECG_HEART_RATE", value: 70, unit: "/min" },
      ],
    };
    const e = stamp(vitals(now + 600_000 - 1000, body), monitor, "gw", time, undefined, 600_000);
    const obs = (e.body as VitalsBody).observations;
    expect(obs[0]).toMatchObject({ at: iso(now - 300_000), atDev: iso(now + 300_000) });
    expect(Date.parse(obs[1]!.at!)).toBeLessThanOrEqual(Date.parse(e.time.recv));
    expect(obs[2]!.at).toBeUndefined();
    expect(e.time).toMatchObject({ tFrom: "device-corrected", devSkewMs: 600_000 });
  });
});

describe("restamping keeps a device's time on the device's clock", () => {
  const sync = { src: "gps" as const, uncMs: 100, atMs: T0 + 60_000, driftPpm: 50 };

  it("an ECG acquired on a right cart clock, stamped while the box was 3 h fast, keeps its time and is not shifted by the correction", () => {
    const acquired = T0 - 120_000;
    const e: Envelope = {
      v: 1,
      id: "x",
      seq: 1,
      gw: "gw",
      dev: cart,
      kind: "ecg12",
      t: iso(acquired),
      body: {},
      time: {
        recv: iso(T0 + 3 * 3_600_000),
        src: "unsynced",
        uncMs: 86_400_000,
        unbounded: true,
        unsynced: true,
        tFrom: "device",
        dev: "raw",
      },
    };
    restamp(e, { ...sync, correctionMs: -3 * 3_600_000 });
    expect(e.t).toBe(iso(acquired));
    expect(e.time).toMatchObject({ recv: iso(T0), tFrom: "device", restamped: true });
    expect(e.time.unbounded).toBeUndefined();
  });

  it("with the box 3 h slow the cart's time was 'ahead' of arrival: after the sync it is placed by the cart's skew known from a previous run, not by arrival", () => {
    const clocks = manualClocks();
    clocks.wallError = -3 * 3_600_000;
    const time = new TimeService(OPTIONS, { monoMs: clocks.monoMs, wallMs: clocks.wallMs, log: capturedLog().log });
    time.start();
    const acquired = clocks.truth(clocks.mono) - 60_000;
    // The cart is 10 minutes slow; no live skew in this run (a carried one is applied at the sync).
    const e = stamp(
      { kind: "ecg12", body: {}, deviceTime: iso(acquired - 600_000), deviceTimeRaw: "raw" },
      cart,
      "gw",
      time,
    ) as Envelope;
    expect(e.time.tFrom).toBe("device");
    restamp(e, { ...sync, correctionMs: 3 * 3_600_000, skewOf: (id) => (id === "cart" ? -600_000 : undefined) });
    expect(e.t).toBe(iso(acquired));
    expect(e.time).toMatchObject({ tFrom: "device-corrected", devSkewMs: -600_000 });
  });
});

describe("zones", () => {
  it("reads local times in an IANA zone or an offset, daylight saving included", () => {
    expect(placeLocalTime("20261123153601", "Asia/Shanghai")).toBe("2026-11-23T07:36:01.000Z");
    expect(placeLocalTime("2026-11-23T15:36:01.5", "+08:00")).toBe("2026-11-23T07:36:01.500Z");
    expect(placeLocalTime("20260701120000", "Europe/Berlin")).toBe("2026-07-01T10:00:00.000Z");
    expect(placeLocalTime("20260231120000", "Asia/Shanghai")).toBeUndefined();
    expect(placeLocalTime("20261123153601", "Mars/Olympus")).toBeUndefined();
  });

  it("HL7 times without an offset are read in the box's zone when the device has none, in the device's when it has one", () => {
    const msg = (t: string) =>
      new TextEncoder().encode(
        `MSH|^~\\&|MON|ICU|||${t}||ORU^R01^ORU_R01|C1|P|2.6\rPID|||1\rOBR|1|||1^x|||${t}\rOBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.1.1.147842|70|/min^^UCUM|||||R|||${t}\r`,
      );
    const opts = hl7Pcd01Options.parse({});
    const boxZone = handleHl7(msg("20261123153601"), opts, { nowMs: T0, timeZone: "Asia/Shanghai" });
    expect(boxZone.ok && boxZone.events[0]!.deviceTime).toBe("2026-11-23T07:36:01.000Z");
    const own = handleHl7(msg("20261123153601"), hl7Pcd01Options.parse({ timezone: "Europe/Berlin" }), {
      nowMs: T0,
      timeZone: "Asia/Shanghai",
    });
    expect(own.ok && own.events[0]!.deviceTime).toBe("2026-11-23T14:36:01.000Z");
    expect(hl7Pcd01Options.safeParse({ timezone: "Asia/Shanghai" }).success).toBe(true);
  });

  it("ECG cart files with a local acquisition time (DICOM DT without offset) are read in the cart's zone, else the box's", () => {
    const file = readFileSync(join(import.meta.dirname, "fixtures", "ecg", "twelve-lead-implicit-vr.dcm")); // AcquisitionDateTime 20261123153000, no offset
    const raw = handleEcgFile(file, ecgCartOptions.parse({ dir: "/x" }));
    if (!raw.ok) throw new Error(raw.error.message);
    const rawTime = raw.events[0]!.deviceTimeRaw!;
    expect(raw.events[0]!.deviceTime).toBeUndefined();
    const placed = handleEcgFile(file, ecgCartOptions.parse({ dir: "/x" }), { nowMs: T0, timeZone: "Asia/Shanghai" });
    expect(placed.ok && placed.events[0]!.deviceTime).toBe(placeLocalTime(rawTime, "Asia/Shanghai"));
    const own = handleEcgFile(file, ecgCartOptions.parse({ dir: "/x", timezone: "+01:00" }), {
      nowMs: T0,
      timeZone: "Asia/Shanghai",
    });
    expect(own.ok && own.events[0]!.deviceTime).toBe(placeLocalTime(rawTime, "+01:00"));
  });
});

describe("in the gateway", () => {
  async function gateway(stateDir: string, time: TimeService) {
    const text = `gateway: { id: gw-dev }\nstateDir: ${stateDir}\nuplink: { url: "mqtt://127.0.0.1:1", backoff: { initialMs: 60000, maxMs: 60000 } }\nweb: { host: 127.0.0.1, port: ${await freePort()} }\nlog: { level: info, pretty: false }\ndevices: []\n`;
    const r = loadConfig({ text, file: "test.yaml", drivers: findDriver });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const log = capturedLog("info");
    const gw = new Gateway(r.config as Config, { log: log.log, clock: time, time, findDriver, secrets: {} });
    await gw.start();
    cleanup.push(() => gw.stop());
    return { gw, log, stored: () => gw.outbox.pending(10_000).map((x) => JSON.parse(String(x.payload)) as Envelope) };
  }

  it("a skew kept from a previous run is not shifted by a 1970 boot's first sync; skews measured after it follow a later step", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vg-devclk-"));
    writeFileSync(join(dir, "device-clocks.json"), JSON.stringify({ cart: { skewMs: -600_000 } }));
    const clocks = manualClocks();
    clocks.setWall(0);
    const log = capturedLog();
    const time = new TimeService(OPTIONS, { monoMs: clocks.monoMs, wallMs: clocks.wallMs, log: log.log });
    const { gw } = await gateway(dir, time);
    clocks.advance(1000);
    time.gpsFix(clocks.truth(clocks.mono) - 100, clocks.mono);
    expect(gw.deviceClocks.skewOf("cart")).toBe(-600_000);
    // A monitor 7 minutes fast, then the gateway's time steps forward 2 s (a better source).
    for (let i = 0; i < 5; i++) {
      clocks.advance(1000);
      await gw.ingest(monitor, [vitals(clocks.truth(clocks.mono) + 420_000)]);
    }
    time.report("gps", { offsetMs: T0 + 2000, uncMs: 100, at: clocks.mono }); // the truth was 2 s later all along (a better fix)
    clocks.advance(1000);
    // The monitor's clock is as it was: 418 s fast of the better truth. Measured without the shift,
    // its skew would still read 420 s and this reading land 2 s early.
    const [e] = await gw.ingest(monitor, [vitals(clocks.truth(clocks.mono) + 420_000)]);
    expect(Math.abs(Date.parse(e!.t) - (clocks.truth(clocks.mono) + 2000))).toBeLessThanOrEqual(50);
    expect(Math.abs(e!.time.devSkewMs! - 418_000)).toBeLessThanOrEqual(50);
    await gw.stop();
    expect(JSON.parse(readFileSync(join(dir, "device-clocks.json"), "utf8")).cart).toEqual({ skewMs: -600_000 });
  });

  it("an ECG from a cart 10 minutes slow, never heard live, is reported as suspect; one dated after its arrival as a fast clock; unplaceable times said once", async () => {
    const clocks = manualClocks();
    const time = new TimeService(OPTIONS, { monoMs: clocks.monoMs, wallMs: clocks.wallMs, log: capturedLog().log });
    const { gw, log, stored } = await gateway(mkdtempSync(join(tmpdir(), "vg-devclk-")), time);
    time.gpsFix(clocks.truth(clocks.mono) - 100, clocks.mono);
    const now = () => time.now().ms;
    await gw.ingest(cart, [
      { kind: "ecg12", body: {}, deviceTime: iso(now() - 60_000 - 600_000), deviceTimeRaw: "raw" },
    ]);
    await gw.ingest({ ...cart, id: "cart2" }, [
      { kind: "ecg12", body: {}, deviceTime: iso(now() + 300_000), deviceTimeRaw: "raw" },
    ]);
    for (let i = 0; i < 2; i++) await gw.ingest(monitor, [{ kind: "vitals", body: {}, deviceTimeRaw: "not a time" }]);
    const device = stored().filter((e) => e.kind === "device");
    expect(device.map((e) => [e.dev.id, (e.body as { state: string }).state])).toEqual([
      ["cart", "clock-suspect"],
      ["cart2", "clock-ahead"],
    ]);
    expect((device[0]!.body as { lateMs: number }).lateMs).toBeGreaterThanOrEqual(660_000);
    expect(log.codes().filter((c) => c === "VG_DEVICE_TIME_UNPLACED")).toHaveLength(1);
    expect(gw.status().time.zone).toEqual(expect.any(String));
  });

  it("a device removed from the box drops from the status's device clocks", async () => {
    const clocks = manualClocks();
    const time = new TimeService(OPTIONS, { monoMs: clocks.monoMs, wallMs: clocks.wallMs, log: capturedLog().log });
    const { gw } = await gateway(mkdtempSync(join(tmpdir(), "vg-devclk-")), time);
    time.gpsFix(clocks.truth(clocks.mono) - 100, clocks.mono);
    await gw.pairing.reload(); // nothing configured: nothing to stop yet
    for (let i = 0; i < 3; i++) await gw.ingest(monitor, [vitals(time.now().ms + 420_000)]);
    expect(gw.status().time.devices.map((d) => d.id)).toEqual(["monitor"]);
    await gw.devices.apply([
      {
        id: "monitor",
        driver: "hl7-pcd01",
        enabled: true,
        options: { mode: "listen", host: "127.0.0.1", port: await freePort() },
      },
    ]); // paired, running
    await gw.pairing.reload(); // the device is gone from the configuration: stopped
    expect(gw.status().time.devices).toEqual([]);
  });

  it("a case's first ECG dated before first medical contact (a cart's slow clock) is said in the log", async () => {
    const clocks = manualClocks();
    const time = new TimeService(OPTIONS, { monoMs: clocks.monoMs, wallMs: clocks.wallMs, log: capturedLog().log });
    const { gw, log } = await gateway(mkdtempSync(join(tmpdir(), "vg-devclk-")), time);
    time.gpsFix(clocks.truth(clocks.mono) - 100, clocks.mono);
    const opened = await gw.cases.openCase({ openedBy: "crew1" });
    await gw.cases.tapNode(opened.id, "fmc");
    clocks.advance(120_000);
    // Acquired a minute ago by the truth; the cart's clock is 10 minutes slow.
    await gw.ingest(cart, [
      { kind: "ecg12", body: {}, deviceTime: iso(time.now().ms - 60_000 - 600_000), deviceTimeRaw: "raw" },
    ]);
    await expect
      .poll(() => log.lines.find((l) => l.code === "VG_CASE_ECG_BEFORE_FMC"))
      .toMatchObject({ case: opened.id, device: "cart", tFrom: "device" });
  });
});
