// Synchronized time through the gateway in-process, with real parts: a real SQLite outbox, the
// real hl7-pcd01 driver over real MLLP/TCP, the HTTP status and metrics. The time service gets
// hand-moved clocks where the test must control time (a box booting in 1970), and the real clocks
// where a device talks to it in real time (a monitor 7 minutes fast).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { findDriver } from "../drivers/registry.ts";
import { pcd01Message } from "../drivers/hl7-pcd01/synthetic.ts";
import { loadConfig } from "../src/config/load.ts";
import type { Config } from "../src/config/schema.ts";
import type { Envelope, EventDraft } from "../src/events/model.ts";
import { Gateway } from "../src/gateway.ts";
import type { BootClock } from "../src/time/boot.ts";
import { TimeService } from "../src/time/service.ts";
import { MllpSender } from "./support/mllp-sender.ts";
import { CENTER_LOGIN, connectEmbeddedCenter, embeddedBrokerYaml, waitFor } from "./support/mqtt.ts";
import { freePort } from "./support/processes.ts";
import { capturedLog, manualClocks, T0 } from "./support/time.ts";

const OPTIONS = { driftPpm: 50, gpsLatencyMs: 100, gpsUncMs: 100 };

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function config(stateDir: string, devices = "[]", uplink?: "embedded"): Promise<Config> {
  // By default an uplink nobody answers: every event stays in the outbox, undelivered, for the test to read.
  const link =
    uplink === "embedded"
      ? embeddedBrokerYaml(await freePort())
      : `uplink: { url: "mqtt://127.0.0.1:1", backoff: { initialMs: 60000, maxMs: 60000 } }`;
  const text = `gateway: { id: gw-time }\nstateDir: ${stateDir}\n${link}\nweb: { host: 127.0.0.1, port: ${await freePort()} }\nlog: { level: info, pretty: false }\ndevices: ${devices}\n`;
  const r = loadConfig({ text, file: "test.yaml", drivers: findDriver });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.config;
}

async function gateway(cfg: Config, time: TimeService, log: ReturnType<typeof capturedLog>) {
  const gw = new Gateway(cfg, {
    log: log.log,
    clock: time,
    time,
    findDriver,
    secrets: { centerPassword: CENTER_LOGIN.password },
  });
  await gw.start();
  let stopped = false;
  const stop = async () => {
    if (!stopped) await gw.stop();
    stopped = true;
  };
  cleanup.push(stop);
  return { gw, stop };
}

const stored = (gw: Gateway): Envelope[] =>
  gw.outbox
    .pending(10_000)
    .filter((r) => r.kind !== "blob")
    .map((r) => JSON.parse(String(r.payload)) as Envelope);
const monitor = { id: "monitor", driver: "hl7-pcd01", kind: "monitor" as const };
const reading = (hr: number, deviceTime?: number): EventDraft => ({
  kind: "vitals",
  body: { observations: [{ code: "MDC_ECG_HEART_RATE", mdc: 147842, value: hr, unit: "/min" }] },
  deviceTime: deviceTime === undefined ? undefined : new Date(deviceTime).toISOString(),
  deviceTimeRaw: deviceTime === undefined ? undefined : String(deviceTime),
});

describe("synchronized time in the gateway", () => {
  it("boots in 1970, gets a GPS fix after 10 minutes: what waited is re-stamped to within the GPS uncertainty, and marked", async () => {
    const clocks = manualClocks();
    clocks.setWall(0); // dead RTC battery
    const log = capturedLog("info");
    const time = new TimeService(OPTIONS, { monoMs: clocks.monoMs, wallMs: clocks.wallMs, log: log.log });
    const { gw } = await gateway(await config(mkdtempSync(join(tmpdir(), "vg-time-"))), time, log);
    const truth = new Map<number, number>();
    for (let i = 0; i < 10; i++) {
      clocks.advance(60_000);
      // The monitor's own clock is right: before the sync the gateway sees it as 56 years ahead.
      await gw.ingest(monitor, [reading(100 + i, clocks.truth(clocks.mono))]);
      truth.set(100 + i, clocks.truth(clocks.mono));
    }
    const before = stored(gw);
    expect(before.every((e) => e.time.unsynced === true && e.time.src === "unsynced" && e.t.startsWith("1970-"))).toBe(
      true,
    );
    expect(before.some((e) => e.kind === "device")).toBe(false); // the gateway cannot judge device clocks yet
    expect(gw.status().time).toMatchObject({ synced: false, src: "unsynced" });

    // The GPS fix: the sentence for the next second arrives 100 ms into it, as configured.
    clocks.advance(30_000);
    const second = Math.ceil(clocks.truth(clocks.mono) / 1000) * 1000;
    clocks.mono = second - T0 + 100;
    time.gpsFix(second, clocks.mono);

    const after = stored(gw);
    expect(after).toHaveLength(10);
    for (const e of after) {
      const hr = (e.body as { observations: { value: number }[] }).observations[0]!.value;
      const err = Math.abs(Date.parse(e.t) - truth.get(hr)!);
      expect(err).toBeLessThanOrEqual(OPTIONS.gpsUncMs);
      // What it claims: GPS's 100 ms, plus the drift allowance back to when it was stamped (≤ 11 min at 50 ppm: 33 ms).
      expect(e.time.uncMs).toBeGreaterThanOrEqual(100);
      expect(e.time.uncMs).toBeLessThanOrEqual(100 + 33 + 1);
      expect(e.time).toMatchObject({ src: "gps", unsynced: true, restamped: true });
      expect(Math.abs(Date.parse(e.time.recv) - truth.get(hr)!)).toBeLessThanOrEqual(e.time.uncMs);
      expect(Math.abs(e.time.devSkewMs!)).toBeLessThanOrEqual(1); // the monitor was right all along
    }
    expect(log.lines.find((l) => l.code === "VG_TIME_RESTAMPED")).toMatchObject({ events: 10 });

    // From now on events are synchronized, and the monitor's clock is judged right: no warning.
    clocks.advance(1000);
    await gw.ingest(monitor, [reading(200, clocks.truth(clocks.mono))]);
    const last = stored(gw).at(-1)!;
    expect(last.time).toMatchObject({ src: "gps" });
    expect(last.time.unsynced).toBeUndefined();
    expect(stored(gw).some((e) => e.kind === "device")).toBe(false);
    const status = gw.status().time;
    expect(status).toMatchObject({ synced: true, src: "gps", lastSync: new Date(second + 100).toISOString() });
    expect(status.offsetMs).toBeGreaterThan(56 * 365 * 86_400_000); // the box's clock is 56 years behind
    expect(status.devices).toEqual([{ id: "monitor", skewMs: expect.any(Number), samples: 11, state: "ok" }]);
  });

  // Two runs of the daemon in one boot (systemd restarted it after a crash), the uplink down all along:
  // one monotonic clock since boot runs through both, each run reads its own wrong wall clock at start.
  const boot = (id: string, asleep: { ms: number } = { ms: 0 }): BootClock => ({
    bootId: () => id,
    suspendedMs: () => asleep.ms,
  });
  const hrOf = (e: Envelope) => (e.body as { observations: { value: number }[] }).observations[0]!.value;
  async function twoRuns(
    secondBoot: string,
    opts: { asleep?: { ms: number }; secondClocks?: ReturnType<typeof manualClocks>; beforeFix?: () => void } = {},
  ) {
    const dir = mkdtempSync(join(tmpdir(), "vg-time-"));
    const clocks = manualClocks();
    const truth = new Map<number, number>();
    clocks.setWall(0); // dead RTC battery
    const log1 = capturedLog("info");
    const run1 = await gateway(
      await config(dir),
      new TimeService(OPTIONS, { monoMs: clocks.monoMs, wallMs: clocks.wallMs, log: log1.log, boot: boot("boot-a") }),
      log1,
    );
    for (let i = 0; i < 5; i++) {
      clocks.advance(60_000);
      await run1.gw.ingest(monitor, [reading(i, clocks.truth(clocks.mono))]);
      truth.set(i, clocks.truth(clocks.mono));
    }
    await run1.stop(); // the crash

    const c2 = opts.secondClocks ?? clocks;
    c2.advance(20_000); // systemd's restart delay and the start
    c2.setWall(Date.UTC(2003, 0, 1)); // another wrong time: the RTC read garbage
    const log2 = capturedLog("info");
    const time = new TimeService(OPTIONS, {
      monoMs: c2.monoMs,
      wallMs: c2.wallMs,
      log: log2.log,
      boot: boot(secondBoot, opts.asleep),
    });
    const run2 = await gateway(await config(dir), time, log2);
    for (let i = 10; i < 13; i++) {
      c2.advance(60_000);
      await run2.gw.ingest(monitor, [reading(i, c2.truth(c2.mono))]);
      truth.set(i, c2.truth(c2.mono));
    }
    expect(stored(run2.gw).every((e) => e.time.unsynced === true && e.time.restamped === undefined)).toBe(true);
    // Every unsynced stamp says where it was made: the boot, and the monotonic time since boot.
    expect(
      stored(run2.gw)
        .filter((e) => hrOf(e) < 10)
        .map((e) => e.time.boot),
    ).toEqual(Array(5).fill("boot-a"));
    expect(
      stored(run2.gw)
        .map((e) => e.time.monoMs)
        .every((m) => typeof m === "number"),
    ).toBe(true);
    opts.beforeFix?.();
    // The GPS fix, the sentence 100 ms into its second as configured.
    c2.advance(30_000);
    const second = Math.ceil(c2.truth(c2.mono) / 1000) * 1000;
    c2.mono = second - T0 + 100;
    time.gpsFix(second, c2.mono);
    return { gw: run2.gw, log: log2, truth, events: () => stored(run2.gw) };
  }

  it("boots in 1970: the case opened, tapped and its ECG taken before the GPS fix are placed by it (local.db, page, center); its id gets the true date; the 10-minute clock counts on the monotonic clock", async () => {
    const clocks = manualClocks();
    clocks.setWall(0); // dead RTC battery
    const log = capturedLog("info");
    const time = new TimeService(OPTIONS, {
      monoMs: clocks.monoMs,
      wallMs: clocks.wallMs,
      log: log.log,
      boot: boot("boot-a"),
    });
    const { gw } = await gateway(await config(mkdtempSync(join(tmpdir(), "vg-time-"))), time, log);
    const cart = { id: "cart", driver: "ecg-cart", kind: "ecg-cart" as const };
    const opened = clocks.truth(clocks.mono);
    const c = await gw.cases.openCase({ openedBy: "crew1" });
    expect(c.id).toMatch(/^19700101-/);
    expect(c.unsynced).toEqual(["openedAt", "id"]);
    clocks.advance(40_000);
    const fmc = clocks.truth(clocks.mono);
    await gw.cases.tapNode(c.id, "fmc");
    clocks.advance(38_000);
    const acquired = clocks.truth(clocks.mono);
    await gw.ingest(cart, [{ kind: "ecg12", body: {} }]); // a cart that states no time: the ECG is its arrival
    clocks.advance(20_000);
    // Before the fix: the clock counts 58 s, from the monotonic clock (the box's date says nothing).
    expect(gw.cases.get(c.id)).toMatchObject({ fmcElapsedS: 58, fmcRunning: true });

    const second = Math.ceil(clocks.truth(clocks.mono) / 1000) * 1000;
    clocks.mono = second - T0 + 100;
    time.gpsFix(second, clocks.mono);
    const day = (ms: number) => {
      const d = new Date(ms);
      return `${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, "0")}${String(d.getDate()).padStart(2, "0")}`;
    };
    const placed = gw.cases.get(c.id)!; // the old id still finds it
    expect(placed.id).toBe(`${day(opened)}-0001`);
    expect(placed.previousId).toBe(c.id);
    expect(placed.unsynced).toBeUndefined();
    expect(placed.unplaced).toBeUndefined();
    const near = (iso: string | undefined, truth: number) =>
      expect(Math.abs(Date.parse(iso!) - truth)).toBeLessThanOrEqual(OPTIONS.gpsUncMs);
    near(placed.openedAt, opened);
    near(placed.nodes.fmc, fmc);
    near(placed.nodes.firstEcg, acquired);
    near(placed.ecgs[0]!.acquiredAt, acquired);
    expect(placed.fmcElapsedS).toBeGreaterThanOrEqual(58);
    expect(placed.fmcElapsedS).toBeLessThanOrEqual(59);
    // local.db holds the same, under the new id.
    const row = gw.localDb.prepare("SELECT data FROM cases WHERE id = ?").pluck().get(placed.id) as string;
    expect(JSON.parse(row)).toMatchObject({ openedAt: placed.openedAt, nodes: { fmc: placed.nodes.fmc } });
    // The center: the waiting events carry the new id, the nodes are sent again corrected, and a `placed` event says what changed.
    await waitFor(
      () => stored(gw).some((e) => e.kind === "case" && (e.body as { placed?: unknown }).placed === true),
      2000,
      "the corrected nodes committed",
    );
    const events = stored(gw);
    expect(events.filter((e) => e.case !== undefined).every((e) => e.case === placed.id)).toBe(true);
    const caseBodies = events
      .filter((e) => e.kind === "case")
      .map(
        (e) =>
          e.body as {
            action: string;
            node?: string;
            at: string;
            unsynced?: true;
            placed?: unknown;
            previousId?: string;
          },
      );
    expect(caseBodies.find((b) => b.action === "node" && b.node === "fmc" && !b.unsynced)).toMatchObject({
      at: placed.nodes.fmc,
      placed: true,
    });
    expect(caseBodies.find((b) => b.action === "placed")).toMatchObject({
      previousId: c.id,
      openedAt: placed.openedAt,
    });
    expect(caseBodies.filter((b) => b.unsynced).map((b) => b.at.slice(0, 4))).toEqual(["1970", "1970", "1970"]); // opened, fmc, firstEcg as they were, marked
    expect(log.lines.find((l) => l.code === "VG_CASE_TIMES_PLACED")).toMatchObject({ previousId: c.id, unplaced: [] });
  });

  it("a case of an earlier boot, never synchronized then: its times are marked as not placed, and no clock is shown for them", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vg-time-"));
    const clocks = manualClocks();
    clocks.setWall(0);
    const log1 = capturedLog("info");
    const run1 = await gateway(
      await config(dir),
      new TimeService(OPTIONS, { monoMs: clocks.monoMs, wallMs: clocks.wallMs, log: log1.log, boot: boot("boot-a") }),
      log1,
    );
    const c = await run1.gw.cases.openCase({ openedBy: "crew1" });
    await run1.gw.cases.tapNode(c.id, "fmc");
    await run1.stop(); // switched off

    const c2 = manualClocks(3_000); // another boot: the monotonic clock starts again
    c2.setWall(0);
    const log2 = capturedLog("info");
    const time = new TimeService(OPTIONS, {
      monoMs: c2.monoMs,
      wallMs: c2.wallMs,
      log: log2.log,
      boot: boot("boot-b"),
    });
    const run2 = await gateway(await config(dir), time, log2);
    expect(run2.gw.cases.get(c.id)!.fmcElapsedS).toBeUndefined(); // another boot: how long ago cannot be told
    c2.advance(5000);
    time.gpsFix(Math.ceil(c2.truth(c2.mono) / 1000) * 1000, c2.mono);
    const after = run2.gw.cases.get(c.id)!;
    expect(after.id).toBe(c.id); // its date could not be placed: the id stays
    expect(after.unplaced?.sort()).toEqual(["fmc", "id", "openedAt"]);
    expect(after.fmcElapsedS).toBeUndefined();
  });

  it("a restart within one boot: the earlier run's unsynced events are re-stamped by the next run's first GPS fix, to within its uncertainty", async () => {
    const { events, truth, log } = await twoRuns("boot-a");
    expect(events()).toHaveLength(8);
    for (const e of events()) {
      const err = Math.abs(Date.parse(e.t) - truth.get(hrOf(e))!);
      expect(err, `hr ${hrOf(e)}`).toBeLessThanOrEqual(OPTIONS.gpsUncMs);
      expect(e.time).toMatchObject({ src: "gps", unsynced: true, restamped: true, boot: "boot-a" });
      // GPS's 100 ms plus the drift allowance back to the stamp (≤ 9 min at 50 ppm: 27 ms).
      expect(e.time.uncMs).toBeGreaterThanOrEqual(100);
      expect(e.time.uncMs).toBeLessThanOrEqual(100 + 27 + 1);
      expect(Math.abs(Date.parse(e.time.recv) - truth.get(hrOf(e))!)).toBeLessThanOrEqual(e.time.uncMs);
      expect(Math.abs(e.time.devSkewMs!)).toBeLessThanOrEqual(1); // each run's own wrong clock is undone
    }
    expect(log.lines.find((l) => l.code === "VG_TIME_RESTAMPED")).toMatchObject({ events: 8, boot: "boot-a" });
  });

  it("after a reboot (another boot id), the earlier boot's events stay marked unsynchronized; this run's are re-stamped", async () => {
    // Monotonic time starts again at boot.
    const { events, truth } = await twoRuns("boot-b", { secondClocks: manualClocks(3_000) });
    for (const e of events()) {
      if (hrOf(e) < 10) {
        expect(e.time).toMatchObject({ src: "unsynced", unsynced: true, boot: "boot-a" });
        expect(e.time.restamped).toBeUndefined();
        expect(e.t.startsWith("1970-")).toBe(true);
      } else {
        expect(e.time).toMatchObject({ src: "gps", unsynced: true, restamped: true, boot: "boot-b" });
        expect(Math.abs(Date.parse(e.t) - truth.get(hrOf(e))!)).toBeLessThanOrEqual(OPTIONS.gpsUncMs);
      }
    }
  });

  it("a box that was suspended: since this run started, nothing is re-stamped; only before it, this run's events are", async () => {
    // Suspended for 90 s between the second run's start and the fix.
    const asleep = { ms: 0 };
    const during = await twoRuns("boot-a", { asleep, beforeFix: () => (asleep.ms = 90_000) });
    expect(during.events().every((e) => e.time.src === "unsynced" && e.time.restamped === undefined)).toBe(true);
    expect(during.log.lines.find((l) => l.code === "VG_TIME_RESTAMP_SKIPPED")).toMatchObject({ sleptMs: 90_000 });

    // Suspended (for 90 s) before the second run started: the first run's stamps may straddle it.
    const before = await twoRuns("boot-a", { asleep: { ms: 90_000 } });
    for (const e of before.events()) {
      if (hrOf(e) < 10) expect(e.time.restamped).toBeUndefined();
      else expect(e.time).toMatchObject({ src: "gps", restamped: true });
    }
    expect(before.log.lines.find((l) => l.code === "VG_TIME_RESTAMPED")).toMatchObject({ events: 3, boot: null });
  });

  it("across a restart without a boot id (not Linux), earlier events stay marked unsynchronized; only this run's are re-stamped", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vg-time-"));
    const first = manualClocks();
    first.setWall(0);
    const log1 = capturedLog("info");
    const run1 = await gateway(
      await config(dir),
      new TimeService(OPTIONS, { monoMs: first.monoMs, wallMs: first.wallMs, log: log1.log }),
      log1,
    );
    for (let i = 0; i < 3; i++) {
      first.advance(1000);
      await run1.gw.ingest(monitor, [reading(i)]);
    }
    await run1.stop();

    const second = manualClocks(5_000); // monotonic time starts again after a reboot
    second.setWall(3_000);
    const log2 = capturedLog("info");
    const time = new TimeService(OPTIONS, { monoMs: second.monoMs, wallMs: second.wallMs, log: log2.log });
    const run2 = await gateway(await config(dir), time, log2);
    for (let i = 10; i < 12; i++) {
      second.advance(1000);
      await run2.gw.ingest(monitor, [reading(i)]);
    }
    second.advance(1000);
    time.gpsFix(Math.floor(second.truth(second.mono) / 1000) * 1000, second.mono);
    const events = stored(run2.gw);
    const byHr = (hr: number) =>
      events.find((e) => (e.body as { observations: { value: number }[] }).observations[0]!.value === hr)!;
    for (const hr of [0, 1, 2]) {
      expect(byHr(hr).time).toMatchObject({ src: "unsynced", unsynced: true });
      expect(byHr(hr).time.restamped).toBeUndefined();
    }
    for (const hr of [10, 11]) expect(byHr(hr).time).toMatchObject({ src: "gps", unsynced: true, restamped: true });
  });

  it("a monitor 7 minutes fast, end to end over HL7: times corrected, a clock-skew event raised, cleared when its clock is set right", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vg-time-"));
    const port = await freePort();
    const cfg = await config(
      dir,
      `[{ id: bed1, driver: hl7-pcd01, options: { mode: listen, host: 127.0.0.1, port: ${port} } }]`,
    );
    const log = capturedLog("info");
    // Real clocks, synchronized by a GPS fix that agrees with this machine's clock.
    const time = new TimeService(OPTIONS, { monoMs: () => performance.now(), wallMs: Date.now, log: log.log });
    time.gpsFix(Date.now() - OPTIONS.gpsLatencyMs, performance.now());
    const { gw } = await gateway(cfg, time, log);
    await waitFor(() => gw.devices.get("bed1")?.state === "listening", 5000, "HL7 listener");
    const sender = await MllpSender.connect(port);
    cleanup.push(() => sender.close());
    const FAST = 7 * 60_000;
    const send = async (i: number, aheadMs: number) => {
      const ack = await sender.send(
        pcd01Message({ controlId: `M${i}`, time: new Date(Date.now() + aheadMs), values: { hr: 60 + i, spo2: 97 } }),
      );
      expect(ack.code).toBe("AA");
    };
    for (let i = 0; i < 5; i++) await send(i, FAST);
    await waitFor(() => stored(gw).some((e) => e.kind === "device"), 5000, "the clock-skew event");
    const skewEvent = stored(gw).find((e) => e.kind === "device")!;
    expect(skewEvent).toMatchObject({
      dev: { id: "bed1", driver: "hl7-pcd01" },
      body: { state: "clock-skew", thresholdMs: 60_000 },
    });
    expect(Math.abs((skewEvent.body as { skewMs: number }).skewMs - FAST)).toBeLessThan(1500);
    for (const e of stored(gw).filter((x) => x.kind === "vitals")) {
      // HL7 times are whole seconds: within 1.5 s of when the gateway received them, not 7 minutes ahead.
      expect(Math.abs(Date.parse(e.t) - Date.parse(e.time.recv))).toBeLessThan(1500);
      expect(e.time.dev).toMatch(/^\d{14}\+0800$/);
      expect(Math.abs(e.time.devSkewMs! - FAST)).toBeLessThan(1500);
    }
    expect(log.lines.find((l) => l.code === "VG_DEVICE_CLOCK_SKEW")).toMatchObject({ device: "bed1" });
    const metrics = await (await fetch(`http://127.0.0.1:${cfg.web.port}/metrics`)).text();
    expect(metrics).toMatch(/vitalgate_device_clock_skew_ms\{device="bed1"\} 4\d{5}/);
    expect(metrics).toMatch(/vitalgate_time_synced 1/);
    expect(metrics).toMatch(/vitalgate_time_offset_ms\{src="gps"\} -?\d/);
    expect(metrics).toMatch(/vitalgate_time_uncertainty_ms \d/);
    expect(metrics).toMatch(/^vitalgate_time_pps_present 0$/m);
    const status = (await (await fetch(`http://127.0.0.1:${cfg.web.port}/status`)).json()) as {
      time: { src: string; devices: { id: string; state: string }[] };
    };
    expect(status.time).toMatchObject({ src: "gps", devices: [{ id: "bed1", state: "skewed" }] });

    // The technician sets the monitor's clock right.
    for (let i = 5; i < 9; i++) await send(i, 0);
    await waitFor(() => stored(gw).filter((e) => e.kind === "device").length === 2, 5000, "the clock-ok event");
    expect(
      stored(gw)
        .filter((e) => e.kind === "device")
        .at(-1),
    ).toMatchObject({ body: { state: "clock-ok" } });
    expect(gw.status().time.devices).toEqual([expect.objectContaining({ id: "bed1", state: "ok" })]);
    expect(Math.abs(gw.status().time.devices[0]!.skewMs)).toBeLessThan(1500);
    const lastVitals = stored(gw)
      .filter((e) => e.kind === "vitals")
      .at(-1)!;
    expect(Math.abs(lastVitals.time.devSkewMs!)).toBeLessThan(1500);
  });

  it("an ECG from a cart with no other traffic takes the cart's last known skew, kept across a restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vg-time-"));
    const cart = { id: "cart", driver: "test", kind: "ecg-cart" as const };
    const log = capturedLog("info");
    const real = () => {
      const t = new TimeService(OPTIONS, { monoMs: () => performance.now(), wallMs: Date.now, log: log.log });
      t.gpsFix(Date.now() - OPTIONS.gpsLatencyMs, performance.now());
      return t;
    };
    const run1 = await gateway(await config(dir), real(), log);
    // The cart's live rhythm strips showed its clock 5 minutes slow.
    for (let i = 0; i < 5; i++)
      await run1.gw.ingest(cart, [{ ...reading(70), deviceTime: new Date(Date.now() - 300_000).toISOString() }]);
    await run1.stop();
    const run2 = await gateway(await config(dir), real(), log);
    // Acquired 2 minutes ago by the cart's clock (7 minutes ago by its slow clock), sent now.
    const acquired = Date.now() - 120_000;
    const [ecg] = await run2.gw.ingest(cart, [
      { kind: "ecg12", body: {}, deviceTime: new Date(acquired - 300_000).toISOString(), deviceTimeRaw: "raw" },
    ]);
    expect(Math.abs(Date.parse(ecg!.t) - acquired)).toBeLessThan(1000);
    expect(Math.abs(ecg!.time.devSkewMs! + 300_000)).toBeLessThan(1000);
    // It was not taken for a sample: 2 minutes of review are not clock skew.
    expect(run2.gw.status().time.devices).toEqual([expect.objectContaining({ id: "cart", samples: 0 })]);
  });

  it("tells the center its time state on the retained status topic, PPS presence included, and on /status and /metrics", async () => {
    const cfg = await config(mkdtempSync(join(tmpdir(), "vg-time-")), "[]", "embedded");
    const log = capturedLog("info");
    // A PPS source the kernel offers (detection itself: test/time-sources.test.ts, on a fake tree).
    const pps = () => ({
      present: true,
      device: null,
      devices: [{ device: "/dev/pps0", name: "serial0", path: "/dev/ttyS0" }],
    });
    const time = new TimeService(OPTIONS, { monoMs: () => performance.now(), wallMs: Date.now, log: log.log, pps });
    time.gpsFix(Date.now() - OPTIONS.gpsLatencyMs, performance.now());
    const { gw } = await gateway(cfg, time, log);
    await gw.ingest(
      monitor,
      Array.from({ length: 3 }, () => reading(70, Date.now() + 120_000)),
    );
    const center = await connectEmbeddedCenter(cfg);
    cleanup.push(() => center.close());
    const statuses = () =>
      center.messages
        .filter((m) => m.topic === "vitalgate/v1/gw-time/status" && m.retain)
        .map((m) => JSON.parse(m.payload.toString()) as { state: string; time?: unknown });
    await center.waitFor(() => statuses().some((s) => s.state === "online"), 10_000, "the retained status");
    expect(statuses().find((s) => s.state === "online")!.time).toMatchObject({
      synced: true,
      src: "gps",
      uncMs: expect.any(Number),
      offsetMs: expect.any(Number),
      lastSync: expect.any(String),
      sources: [expect.objectContaining({ name: "gps", selected: true })],
      devices: [expect.objectContaining({ id: "monitor", skewMs: expect.any(Number) })],
      pps: {
        present: true,
        device: null,
        used: false,
        devices: [{ device: "/dev/pps0", name: "serial0", path: "/dev/ttyS0" }],
      },
    });
    const status = (await (await fetch(`http://127.0.0.1:${cfg.web.port}/status`)).json()) as {
      time: { pps: { present: boolean } };
    };
    expect(status.time.pps).toMatchObject({ present: true, devices: [{ device: "/dev/pps0" }] });
    expect(await (await fetch(`http://127.0.0.1:${cfg.web.port}/metrics`)).text()).toMatch(
      /^vitalgate_time_pps_present 1$/m,
    );
  });
});
