// What one time source can do alone (issue 11 items 8, 9, 11): the plausibility window against the
// live estimate and the last known good time kept on disk, corroboration, the GPS leap-second hold,
// the retention clock purges go by, backward steps, and the status. Hand-moved clocks, no sleeps.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { nmeaGpsOptions, nmeaGpsSession } from "../drivers/nmea-gps/index.ts";
import { stamp } from "../src/events/stamp.ts";
import { fileTimeMark } from "../src/time/index.ts";
import {
  TimeService,
  type TimeMark,
  type TimeMarkStore,
  type TimeServiceOptions,
  type TimeSource,
} from "../src/time/service.ts";
import { capturedLog, manualClocks, T0 } from "./support/time.ts";

const OPTIONS: TimeServiceOptions = { driftPpm: 50, gpsLatencyMs: 100, gpsUncMs: 100 };
const DAY = 86_400_000;
const YEAR_2045 = Date.UTC(2045, 5, 1);
const dev = { id: "monitor", driver: "hl7-pcd01", kind: "monitor" as const };

const running: TimeService[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) await s.stop();
});

type Clocks = ReturnType<typeof manualClocks>;

function memoryMark(initial?: TimeMark): TimeMarkStore & { saved: TimeMark[] } {
  const saved: TimeMark[] = [];
  return { saved, load: () => initial, save: (m) => void saved.push(m) };
}

function service(
  clocks: Clocks,
  extra: Partial<TimeServiceOptions> = {},
  deps: { mark?: TimeMarkStore; boot?: string; sources?: TimeSource[] } = {},
) {
  const log = capturedLog();
  const svc = new TimeService(
    { ...OPTIONS, ...extra },
    {
      monoMs: clocks.monoMs,
      wallMs: clocks.wallMs,
      log: log.log,
      mark: deps.mark,
      sources: deps.sources,
      boot: deps.boot === undefined ? undefined : { bootId: () => deps.boot, suspendedMs: () => 0 },
    },
  );
  running.push(svc);
  svc.start();
  return { svc, log };
}

/** A GPS sentence for the next second, `lieMs` away from the truth, arriving 100 ms into it. */
function gps(clocks: Clocks, svc: TimeService, lieMs = 0, info?: { leapSecondsKnown?: boolean }) {
  const second = Math.floor(clocks.truth(clocks.mono) / 1000) * 1000 + 1000;
  clocks.mono = second - T0 + 100;
  svc.gpsFix(second + lieMs, clocks.mono, info);
}

/** An NTP-like source reporting the truth (plus `lieMs`) at a small uncertainty, when `report` is called. */
function fakeNtp(clocks: Clocks) {
  let push: ((s: { offsetMs: number; uncMs: number; at: number }) => void) | undefined;
  const source: TimeSource = { name: "ntp", state: "ok", start: (r) => (push = r), stop: () => undefined };
  return {
    source,
    report: (lieMs = 0) =>
      push!({ offsetMs: clocks.truth(clocks.mono) + lieMs - clocks.mono, uncMs: 20, at: clocks.mono }),
  };
}

const errorOf = (clocks: Clocks, svc: TimeService) => svc.now().ms - clocks.truth(clocks.mono);

describe("what one source can do alone", () => {
  it("a paired 'GPS' saying 2045 does not move a synchronized clock; the status says why", () => {
    const clocks = manualClocks();
    const ntp = fakeNtp(clocks);
    const { svc, log } = service(clocks, {}, { sources: [ntp.source] });
    ntp.report();
    expect(svc.now().src).toBe("ntp");
    clocks.advance(5000);
    svc.gpsFix(YEAR_2045, clocks.mono);
    svc.gpsFix(YEAR_2045 + 1000, clocks.mono + 1000);
    clocks.advance(1000);
    expect(Math.abs(errorOf(clocks, svc))).toBeLessThanOrEqual(svc.now().uncMs);
    expect(svc.now().src).toBe("ntp");
    expect(log.lines.filter((l) => l.code === "VG_TIME_IMPLAUSIBLE")).toHaveLength(1); // said once
    expect(svc.state().sources.find((s) => s.name === "gps")!.state).toMatch(
      /^implausible: 2045-06-01T.* is after what the current estimate allows/,
    );
    expect(svc.state().steps).toBe(0);
  });

  it("a GPS alone far from the estimate is believed once another source agrees with it", () => {
    const clocks = manualClocks();
    const ntp = fakeNtp(clocks);
    const { svc, log } = service(clocks, {}, { sources: [ntp.source] });
    ntp.report(-2 * DAY); // the first source was two days slow (a server's wrong setting)
    gps(clocks, svc); // the GPS is right: two days from the estimate, too far for one source
    expect(errorOf(clocks, svc)).toBeLessThan(-DAY);
    ntp.report(); // the server, put right, agrees with the GPS
    expect(Math.abs(errorOf(clocks, svc))).toBeLessThanOrEqual(svc.now().uncMs);
    expect(log.codes()).toContain("VG_TIME_CORROBORATED");
  });

  it("before this run's first sync, the last known good time on disk bounds a single source: the same boot by the monotonic clock, after a reboot up to plausibleOffDays", () => {
    // Same boot: the mark says the truth at monotonic 5 000; a GPS saying 2045 is refused, the true one taken.
    const c1 = manualClocks();
    const mark: TimeMark = { utcMs: c1.truth(5000), uncMs: 100, boot: "b1", monoMs: 5000, retentionMs: c1.truth(5000) };
    const s1 = service(c1, {}, { mark: memoryMark(mark), boot: "b1" });
    s1.svc.gpsFix(YEAR_2045, c1.mono);
    expect(s1.svc.synced).toBe(false);
    expect(s1.log.lines.find((l) => l.code === "VG_TIME_IMPLAUSIBLE")).toMatchObject({
      src: "gps",
      from: "the last known good time",
    });
    gps(c1, s1.svc);
    expect(s1.svc.synced).toBe(true);
    expect(Math.abs(errorOf(c1, s1.svc))).toBeLessThanOrEqual(100);

    // Another boot, switched off for ten days: believed; forty days (over the default 30): not alone.
    for (const [offDays, believed] of [
      [10, true],
      [40, false],
    ] as const) {
      const c = manualClocks();
      const m: TimeMark = {
        utcMs: c.truth(0) - offDays * DAY,
        uncMs: 100,
        boot: "b0",
        monoMs: 999_999,
        retentionMs: c.truth(0) - offDays * DAY,
      };
      const s = service(c, { plausibleOffMs: 30 * DAY }, { mark: memoryMark(m), boot: "b2" });
      gps(c, s.svc);
      expect(s.svc.synced, `${offDays} days off`).toBe(believed);
    }
  });

  it("a GPS receiver is held at ±18 s more until its leap seconds are known: the receiver says so, another source agrees, or an almanac cycle has passed", () => {
    const clocks = manualClocks();
    const { svc } = service(clocks, { gpsLeapHoldMs: 750_000 });
    gps(clocks, svc, 18_000); // a cold receiver reporting GPS time: 18 s ahead of UTC
    const cold = svc.now();
    expect(cold.uncMs).toBeGreaterThanOrEqual(18_100);
    expect(Math.abs(errorOf(clocks, svc))).toBeLessThanOrEqual(cold.uncMs);
    expect(svc.state().sources).toEqual([
      expect.objectContaining({ name: "gps", state: "ok (leap seconds not yet confirmed: ±18 s)" }),
    ]);
    clocks.advance(10_000);
    gps(clocks, svc); // it has read the leap seconds: right now, 18 s back (stepped, within its uncertainty)
    expect(Math.abs(errorOf(clocks, svc))).toBeLessThanOrEqual(svc.now().uncMs);
    expect(svc.now().uncMs).toBeGreaterThan(18_000);
    clocks.advance(750_000);
    gps(clocks, svc);
    expect(svc.now().uncMs).toBeLessThanOrEqual(101);

    const c2 = manualClocks();
    const s2 = service(c2, { gpsLeapHoldMs: 750_000 });
    gps(c2, s2.svc, 0, { leapSecondsKnown: true });
    expect(s2.svc.now().uncMs).toBe(100);

    const c3 = manualClocks();
    const ntp = fakeNtp(c3);
    const s3 = service(c3, { gpsLeapHoldMs: 750_000 }, { sources: [ntp.source] });
    ntp.report();
    gps(c3, s3.svc);
    expect(s3.svc.state().sources.find((s) => s.name === "gps")).toMatchObject({ state: "ok", uncMs: 100 });
  });

  it("a backward correction is stepped, not slewed for hours: stamps after it are true at once, marked while they overlap the old timeline", () => {
    const clocks = manualClocks();
    const ntp = fakeNtp(clocks);
    const { svc } = service(clocks, {}, { sources: [ntp.source] });
    ntp.report(3 * 3_600_000); // a wrong first source, 3 h fast
    const before = stamp({ kind: "vitals", body: {} }, dev, "gw", svc);
    clocks.advance(1000);
    gps(clocks, svc); // GPS says 3 h earlier: believed (trust order), within the window
    const after = stamp({ kind: "vitals", body: {} }, dev, "gw", svc);
    expect(Math.abs(Date.parse(after.time.recv) - clocks.truth(clocks.mono))).toBeLessThanOrEqual(after.time.uncMs);
    expect(after.time.src).toBe("gps");
    expect(after.time.stepBackMs).toBeLessThan(-3 * 3_600_000 + 2000);
    expect(Date.parse(after.time.recv)).toBeLessThan(Date.parse(before.time.recv));
    clocks.advance(3 * 3_600_000 + 5000);
    expect(stamp({ kind: "vitals", body: {} }, dev, "gw", svc).time.stepBackMs).toBeUndefined();
  });
});

describe("a u-blox receiver's own word on its leap seconds", () => {
  /** An NMEA sentence with its checksum (NMEA 0183 §5.3.1: XOR of the characters between $ and *). */
  const sentence = (body: string) => {
    let x = 0;
    for (const ch of body) x ^= ch.charCodeAt(0);
    return new TextEncoder().encode(`$${body}*${x.toString(16).toUpperCase().padStart(2, "0")}\r\n`);
  };
  const rmc = sentence("GPRMC,080000.00,A,3114.0000,N,12128.0000,E,0.0,0.0,231126,,,A");

  it("PUBX,04 with the leap seconds unmarked hands the fixes over as known; marked D (the firmware's default), not", () => {
    const session = nmeaGpsSession(nmeaGpsOptions.parse({ port: "/dev/ttyUSB0" }));
    const ctx = { nowMs: T0 };
    expect(session.handle(rmc, ctx)).toMatchObject({ ok: true, utcFix: Date.UTC(2026, 10, 23, 8, 0, 0) });
    session.handle(sentence("PUBX,04,080000.00,231126,28800.00,2441,18D,-1234567,0.123,16"), ctx);
    expect((session.handle(rmc, ctx) as { leapSecondsKnown?: boolean }).leapSecondsKnown).toBeUndefined();
    session.handle(sentence("PUBX,04,080001.00,231126,28801.00,2441,18,-1234567,0.123,16"), ctx);
    expect(session.handle(rmc, ctx)).toMatchObject({ ok: true, leapSecondsKnown: true });
  });
});

describe("the retention clock", () => {
  it("never jumps with the estimate: it advances at the monotonic rate from the mark on disk, and catches up only when two sources agree", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vg-mark-"));
    const clocks = manualClocks();
    const start = clocks.truth(clocks.mono);
    // A previous boot left the mark two weeks ago.
    fileTimeMark(dir).save({
      utcMs: start - 14 * DAY,
      uncMs: 100,
      boot: "old",
      monoMs: 1,
      retentionMs: start - 14 * DAY,
    });
    const ntp = fakeNtp(clocks);
    const { svc } = service(clocks, {}, { mark: fileTimeMark(dir), boot: "new", sources: [ntp.source] });
    expect(svc.retentionNowMs()).toBe(start - 14 * DAY); // no sync yet: the mark
    gps(clocks, svc);
    clocks.advance(60_000);
    // One source only: the two weeks off are not taken on its word; the minute that ran is.
    expect(svc.retentionNowMs()).toBe(start - 14 * DAY + (clocks.mono - 10_000));
    ntp.report();
    expect(svc.retentionNowMs()).toBe(svc.now().ms); // two sources agree: caught up
    await svc.stop();
    const kept = JSON.parse(readFileSync(join(dir, "time-mark.json"), "utf8")) as TimeMark;
    expect(kept).toMatchObject({ boot: "new", retentionMs: expect.any(Number) });
    expect(Math.abs(kept.retentionMs - clocks.truth(clocks.mono))).toBeLessThanOrEqual(200);
  });

  it("a fresh box without a mark or a sync purges nothing; a corroborated jump to 2045 moves it only at the monotonic rate while it is alone", () => {
    const clocks = manualClocks();
    const { svc } = service(clocks);
    expect(svc.retentionNowMs()).toBeUndefined();
    gps(clocks, svc);
    const first = svc.retentionNowMs()!;
    // The only source jumps 19 years (as if believed): retention moves 1 s for a second, not 19 years.
    clocks.advance(1000);
    svc.report("gps", { offsetMs: YEAR_2045 - clocks.mono, uncMs: 100, at: clocks.mono });
    expect(svc.retentionNowMs()! - first).toBeLessThanOrEqual(1000);
    expect(svc.state().retentionNow).toBe(new Date(svc.retentionNowMs()!).toISOString());
  });
});

describe("status", () => {
  it("lists a configured GPS before its first fix, says when it falls silent, and marks the unsynced uncertainty as no bound", () => {
    const clocks = manualClocks();
    const { svc } = service(clocks);
    svc.expectGps(() => true);
    expect(svc.state()).toMatchObject({
      synced: false,
      unbounded: true,
      sources: [{ name: "gps", state: "waiting for a first fix", selected: false }],
    });
    expect(stamp({ kind: "vitals", body: {} }, dev, "gw", svc).time).toMatchObject({ unsynced: true, unbounded: true });
    gps(clocks, svc);
    expect(svc.state().sources[0]!.state).toBe("ok");
    expect(svc.state().unbounded).toBeUndefined();
    clocks.advance(11_000);
    expect(svc.state().sources[0]!.state).toBe("silent: no fix for 11 s");
  });
});
