// The time service driven by hand: injected monotonic and wall clocks, GPS fixes fed directly, NTP
// servers simulated with real packets through the real codec, the OS clock daemons' outputs fed to
// the real parsers. No sleeps, no real time.
import { afterEach, describe, expect, it } from "vitest";
import { isoTime, stamp } from "../src/events/stamp.ts";
import { NtpSource } from "../src/time/ntp.ts";
import { TimeService, UNSYNCED_UNC_MS, type FirstSync, type TimeSource } from "../src/time/service.ts";
import { SystemClockSource, type Exec } from "../src/time/system.ts";
import { capturedLog, manualClocks, settle, simulatedNtp, T0 } from "./support/time.ts";

const OPTIONS = { driftPpm: 50, gpsLatencyMs: 100, gpsUncMs: 100 };
const dev = { id: "monitor", driver: "hl7-pcd01", kind: "monitor" as const };

const running: TimeService[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop();
});

function service(clocks: ReturnType<typeof manualClocks>, sources: TimeSource[] = []) {
  const log = capturedLog();
  const svc = new TimeService(OPTIONS, { monoMs: clocks.monoMs, wallMs: clocks.wallMs, log: log.log, sources });
  running.push(svc);
  return { svc, log };
}

/** A GPS receiver whose sentence for each second arrives `actualLatencyMs` after it begins. */
function gpsAt(clocks: ReturnType<typeof manualClocks>, svc: TimeService, actualLatencyMs = 130) {
  const second = Math.floor(clocks.truth(clocks.mono) / 1000) * 1000 + 1000;
  clocks.mono = second - T0 + actualLatencyMs;
  svc.gpsFix(second, clocks.mono);
}

/** The error of the service's time now against the truth, and its claimed uncertainty. */
function error(clocks: ReturnType<typeof manualClocks>, svc: TimeService) {
  const now = svc.now();
  return { errMs: now.ms - clocks.truth(clocks.mono), uncMs: now.uncMs, src: now.src };
}

const CHRONY_SYNCED = (fastS: number) => `Reference ID    : C0A80001 (192.168.0.1)
Stratum         : 3
Ref time (UTC)  : Mon Nov 23 07:58:27 2026
System time     : ${Math.abs(fastS).toFixed(9)} seconds ${fastS >= 0 ? "fast" : "slow"} of NTP time
Last offset     : +0.000012070 seconds
RMS offset      : 0.000040221 seconds
Frequency       : 9.613 ppm slow
Residual freq   : +0.001 ppm
Skew            : 0.027 ppm
Root delay      : 0.020000000 seconds
Root dispersion : 0.005000000 seconds
Update interval : 1039.3 seconds
Leap status     : Normal
`;

describe("time service", () => {
  it("with no source: stamps from the system clock read at start, advanced monotonically, marked unsynced", () => {
    const clocks = manualClocks();
    clocks.wallError = 42_000;
    const { svc } = service(clocks);
    svc.start();
    const first = svc.now();
    expect(first).toEqual({
      ms: clocks.truth(clocks.mono) + 42_000,
      src: "unsynced",
      uncMs: UNSYNCED_UNC_MS,
      unbounded: true,
    });
    clocks.advance(1000);
    clocks.setWall(0); // the wall clock is stepped to 1970: stamps do not follow
    const e = stamp({ kind: "vitals", body: {} }, dev, "gw", svc);
    expect(Date.parse(e.t)).toBe(first.ms + 1000);
    expect(e.time).toMatchObject({ src: "unsynced", unsynced: true });
    expect(svc.state()).toMatchObject({ synced: false, src: "unsynced", offsetMs: null, lastSync: null, sources: [] });
  });

  it("GPS only: true to the GPS uncertainty, which then grows at the drift allowance", () => {
    const clocks = manualClocks();
    clocks.wallError = -3000; // the box's clock is 3 s slow
    const { svc, log } = service(clocks);
    svc.start();
    gpsAt(clocks, svc, 130); // the receiver is 30 ms slower than the configured 100 ms
    const synced = error(clocks, svc);
    expect(synced.src).toBe("gps");
    expect(Math.abs(synced.errMs)).toBeLessThanOrEqual(31);
    expect(synced.uncMs).toBe(100);
    expect(log.codes()).toContain("VG_TIME_SYNCED");
    clocks.advance(3_600_000); // an hour in a tunnel without a fix
    const later = error(clocks, svc);
    expect(later.uncMs).toBe(100 + 180); // 50 ppm of an hour
    expect(Math.abs(later.errMs)).toBeLessThanOrEqual(later.uncMs);
    const state = svc.state();
    expect(state).toMatchObject({ synced: true, src: "gps", uncMs: 280, steps: 0 });
    expect(Math.abs(state.offsetMs! - 3000)).toBeLessThanOrEqual(31); // true UTC − system clock
    expect(state.sources).toEqual([expect.objectContaining({ name: "gps", selected: true, uncMs: 280 })]);
  });

  it("GPS with PPS: the pulse pins the second to a few ms; a pulse without a recent fix is not used", () => {
    const clocks = manualClocks();
    const { svc } = service(clocks);
    svc.start();
    expect(svc.gpsPps(clocks.mono)).toBe(false); // no fix yet: which second would it be?
    gpsAt(clocks, svc, 180); // this receiver is slow: 80 ms more than configured
    // The next second's pulse, 1 s after the second the fix named.
    clocks.mono = Math.ceil(clocks.truth(clocks.mono) / 1000) * 1000 - T0;
    expect(svc.gpsPps(clocks.mono)).toBe(true);
    const e = error(clocks, svc);
    expect(e).toMatchObject({ errMs: 0, uncMs: 5, src: "gps" });
    expect(svc.state().sources).toEqual([expect.objectContaining({ name: "gps", state: "ok (PPS)" })]);
    clocks.advance(3_600_000 * 10); // ten hours without a fix: uncertainty 1.8 s, the second is in doubt
    expect(svc.gpsPps(Math.round(clocks.mono / 1000) * 1000)).toBe(false);
  });

  it("NTP only: best of a burst, a falseticker dropped, offset within the round-trip bound", async () => {
    const clocks = manualClocks();
    clocks.wallError = 90_000;
    const query = simulatedNtp(clocks, {
      // The center's server over an asymmetric 4G path; one exchange of the burst is slow.
      center: {
        paths: [
          [40, 90],
          [12, 20],
          [300, 20],
          [15, 25],
        ],
      },
      pool: { paths: [[20, 30]] },
      other: { paths: [[25, 25]] },
      liar: { errorMs: 3_600_000, paths: [[1, 1]] },
    });
    const { log, lines } = capturedLog();
    const ntp = new NtpSource(
      { servers: ["center", "pool:123", "other", "liar"], pollS: 86_400, timeoutMs: 1000 },
      { query, log, monoMs: clocks.monoMs },
    );
    const { svc } = service(clocks, [ntp]);
    svc.start();
    await ntp.poll();
    const e = error(clocks, svc);
    expect(e.src).toBe("ntp");
    expect(Math.abs(e.errMs)).toBeLessThanOrEqual(e.uncMs);
    expect(e.uncMs).toBeLessThan(30);
    expect(lines.some((l) => l.code === "VG_NTP_FALSETICKER" && l.server === "liar:123")).toBe(true);
    expect(ntp.state).toMatch(/^ok \(/);
    expect(query.asked.filter((h) => h === "center")).toHaveLength(4);
  });

  it("GPS and NTP agreeing: the smaller uncertainty wins; disagreeing: GPS is believed, and it is logged", async () => {
    const clocks = manualClocks();
    const servers: Parameters<typeof simulatedNtp>[1] = { center: { paths: [[5, 5]] } };
    const query = simulatedNtp(clocks, servers);
    const { log } = capturedLog();
    const ntp = new NtpSource(
      { servers: ["center"], pollS: 86_400, timeoutMs: 1000, burst: 1 },
      { query, log, monoMs: clocks.monoMs },
    );
    const { svc, log: svcLog } = service(clocks, [ntp]);
    svc.start();
    await ntp.poll();
    gpsAt(clocks, svc, 100);
    expect(svc.now().src).toBe("ntp"); // ~8 ms against GPS's 100 ms
    // The center's server goes 5 s wrong (a misconfigured upstream), still claiming a few ms.
    servers.center!.errorMs = 5000;
    clocks.advance(60_000);
    gpsAt(clocks, svc, 100);
    await ntp.poll();
    const e = error(clocks, svc);
    expect(e.src).toBe("gps");
    expect(Math.abs(e.errMs)).toBeLessThanOrEqual(e.uncMs);
    const disagree = svcLog.lines.find((l) => l.code === "VG_TIME_DISAGREE");
    expect(disagree).toMatchObject({ chosen: "gps", sources: { gps: expect.anything(), ntp: expect.anything() } });
    expect(svc.state().sources.map((s) => [s.name, s.selected])).toEqual([
      ["gps", true],
      ["ntp", false],
    ]);
  });

  it("a wall-clock step forwards, backwards and to 1970 mid-stream moves no stamp while GPS holds the time", async () => {
    const clocks = manualClocks();
    const exec: Exec = async () => {
      throw new Error("not installed");
    };
    const sysLog = capturedLog();
    // The system clock trusted as it is, to show that even a trusted wall clock does not win against GPS.
    const system = new SystemClockSource(
      { trust: "always", pollS: 86_400 },
      { exec, wallMs: clocks.wallMs, monoMs: clocks.monoMs, log: sysLog.log },
    );
    const { svc, log: svcLog } = service(clocks, [system]);
    svc.start();
    await settle();
    gpsAt(clocks, svc);
    const stamps: number[] = [];
    for (let i = 0; i < 40; i++) {
      clocks.advance(1000);
      if (i % 5 === 0) gpsAt(clocks, svc);
      if (i === 10) clocks.wallError = 3_600_000; // forwards an hour
      if (i === 20) clocks.wallError = -7_200_000; // back two hours
      if (i === 30) clocks.setWall(0); // dead RTC: 1970
      if (i % 10 === 0) await system.poll();
      const e = stamp({ kind: "vitals", body: {} }, dev, "gw", svc);
      const t = Date.parse(e.t);
      expect(Math.abs(t - clocks.truth(clocks.mono))).toBeLessThanOrEqual(e.time.uncMs);
      expect(e.time.src).toBe("gps");
      stamps.push(t);
    }
    expect(stamps).toEqual([...stamps].sort((a, b) => a - b));
    expect(Math.min(...stamps)).toBeGreaterThan(Date.UTC(2026, 0, 1));
    expect(
      sysLog.lines
        .filter((l) => l.code === "VG_WALL_CLOCK_STEP")
        .map((l) => Math.round((l.stepMs as number) / 3_600_000)),
    ).toEqual([1, -3, expect.any(Number)]);
    expect(svcLog.codes()).toContain("VG_TIME_DISAGREE");
    expect(svcLog.codes()).toContain("VG_TIME_IMPLAUSIBLE"); // the 1970 reading
  });

  it("the system clock as the only source: chrony's correction cancels a `date -s`; a trusted clock stepped back a minute is stepped, the stamps after it marked", async () => {
    const clocks = manualClocks();
    let chrony = CHRONY_SYNCED(0.000021);
    const exec: Exec = async (file) => (file === "chronyc" ? chrony : Promise.reject(new Error("no")));
    const { log } = capturedLog();
    const system = new SystemClockSource(
      { trust: "auto", pollS: 86_400 },
      { exec, wallMs: clocks.wallMs, monoMs: clocks.monoMs, log },
    );
    const { svc, log: svcLog } = service(clocks, [system]);
    svc.start();
    await settle();
    expect(svc.now().src).toBe("system");
    expect(svc.now().uncMs).toBe(16); // |0.021 ms| + 5 ms dispersion + 10 ms half root delay, rounded up
    clocks.advance(10_000);
    clocks.wallError = 3_600_000; // someone ran date -s an hour ahead; chrony sees it
    chrony = CHRONY_SYNCED(3600.000021);
    await system.poll();
    expect(Math.abs(error(clocks, svc).errMs)).toBeLessThanOrEqual(16);
    expect(svcLog.codes()).not.toContain("VG_TIME_STEP");

    // Trusted without a daemon's word: a backward step is believed, and stepped at once (issue 11
    // item 9: no hours of slewing while src says the source): the stamps after it that are not
    // later than the last one before it say so; order is by seq.
    const plain = manualClocks();
    const trusting = new SystemClockSource(
      { trust: "always", pollS: 86_400 },
      { exec, wallMs: plain.wallMs, monoMs: plain.monoMs, log },
    );
    const s2 = service(plain, [trusting]);
    s2.svc.start();
    await settle();
    const before = s2.svc.now().ms;
    plain.advance(1000);
    plain.wallError = -60_000; // stepped back a minute
    await trusting.poll();
    const seen = [s2.svc.now()];
    for (let i = 0; i < 70; i++) {
      plain.advance(1000);
      seen.push(s2.svc.now());
    }
    expect(seen[0]!.ms).toBe(plain.truth(plain.monoMs() - 70_000) - 60_000);
    expect(seen[0]!.ms).toBeLessThan(before);
    for (const x of seen) expect(x.uncMs).toBeLessThan(1100);
    // Marked while the new times overlap the old ones: up to the last stamp before the step.
    expect(seen.map((x) => x.stepBackMs !== undefined)).toEqual(seen.map((x) => x.ms <= before));
    expect(seen[0]!.stepBackMs).toBe(-60_000);
    expect(seen.at(-1)!.stepBackMs).toBeUndefined();
    expect(s2.log.lines.find((l) => l.code === "VG_TIME_STEP")).toMatchObject({ src: "system", stepMs: -60_000 });
    expect(s2.log.lines.find((l) => l.code === "VG_TIME_STEP_BACK")).toMatchObject({ src: "system", stepMs: -60_000 });
    // And forwards: a jump, at once.
    plain.wallError = 0;
    await trusting.poll();
    expect(Math.abs(s2.svc.now().ms - plain.truth(plain.mono))).toBeLessThanOrEqual(1000);
    expect(s2.log.lines.filter((l) => l.code === "VG_TIME_STEP").map((l) => l.stepMs)).toEqual([-60_000, 60_000]);
  });

  it("announces the first sync once, with the correction for what was stamped before it", () => {
    const clocks = manualClocks();
    clocks.setWall(0); // booted in 1970
    const { svc } = service(clocks);
    const syncs: unknown[] = [];
    svc.on("synced", (s) => syncs.push(s));
    svc.start();
    const before = svc.now();
    clocks.advance(600_000);
    gpsAt(clocks, svc, 100);
    gpsAt(clocks, svc, 100);
    expect(syncs).toEqual([
      {
        src: "gps",
        correctionMs: T0 + 10_000 - before.ms,
        uncMs: 100,
        atMs: expect.any(Number),
        driftPpm: 50,
        offsetMs: T0,
        sleptMs: 0,
      },
    ]);
    expect(before.boot).toBeUndefined(); // no boot known: this run's stamps only
  });

  it("with a boot: unsynced stamps carry it and their monotonic time; the first sync names it, unless the box slept", () => {
    const clocks = manualClocks();
    clocks.setWall(0);
    const asleep = { ms: 0 };
    const log = capturedLog();
    const svc = new TimeService(OPTIONS, {
      monoMs: clocks.monoMs,
      wallMs: clocks.wallMs,
      log: log.log,
      boot: { bootId: () => "b1", suspendedMs: () => asleep.ms },
    });
    running.push(svc);
    const syncs: FirstSync[] = [];
    svc.on("synced", (s) => syncs.push(s));
    svc.start();
    clocks.advance(1234);
    expect(svc.now()).toMatchObject({ src: "unsynced", boot: "b1", monoMs: 11_234 });
    expect(stamp({ kind: "vitals", body: {} }, dev, "gw", svc).time).toMatchObject({
      unsynced: true,
      boot: "b1",
      monoMs: 11_234,
    });
    asleep.ms = 400; // read noise, not a suspension
    gpsAt(clocks, svc, 100);
    expect(syncs[0]).toMatchObject({ boot: "b1", offsetMs: T0, sleptMs: 0 });
    const synced = stamp({ kind: "vitals", body: {} }, dev, "gw", svc).time;
    expect(synced.boot).toBeUndefined();
    expect(synced.monoMs).toBeUndefined();

    const slept = new TimeService(OPTIONS, {
      monoMs: clocks.monoMs,
      wallMs: clocks.wallMs,
      log: log.log,
      boot: { bootId: () => "b1", suspendedMs: () => asleep.ms },
    });
    running.push(slept);
    slept.on("synced", (s) => syncs.push(s));
    asleep.ms = 60_400;
    gpsAt(clocks, slept, 100);
    expect(syncs[1]).toMatchObject({ boot: undefined, sleptMs: 60_000 });
  });
});

describe("stamping", () => {
  it("writes times exactly as Date#toISOString does, however the seconds alternate", () => {
    const xs = [
      0,
      1,
      999,
      1000,
      -1,
      -1000,
      Date.UTC(2026, 10, 23, 15, 36, 34, 5),
      253_402_300_800_000,
      -62_198_755_200_001,
    ];
    for (let i = 0; i < 2000; i++) xs.push(Date.UTC(2026, 10, 23) + ((i * 7919) % 5000) - 2500);
    for (const ms of xs) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
  });

  it("puts a device's time, corrected by its skew, in t; never later than received", () => {
    const clocks = manualClocks();
    const { svc } = service(clocks);
    svc.start();
    const recv = svc.now().ms;
    const at = (ms: number) => new Date(ms).toISOString();
    const e = stamp(
      { kind: "vitals", body: {}, deviceTime: at(recv + 420_000 - 1500), deviceTimeRaw: "raw" },
      dev,
      "gw",
      svc,
      undefined,
      420_000,
    );
    expect(e.t).toBe(at(recv - 1500));
    expect(e.time).toMatchObject({ dev: "raw", devSkewMs: 420_000 });
    const ahead = stamp({ kind: "vitals", body: {}, deviceTime: at(recv + 5000) }, dev, "gw", svc, undefined, 0);
    expect(ahead.t).toBe(ahead.time.recv);
    const none = stamp({ kind: "ecg12", body: {}, deviceTime: at(recv - 60_000) }, dev, "gw", svc);
    expect(none.t).toBe(at(recv - 60_000));
    expect(none.time.devSkewMs).toBeUndefined();
  });
});
