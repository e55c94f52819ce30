import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import type { FrameContext } from "../../src/devices/driver.ts";
import type { EventDraft } from "../../src/events/model.ts";
import { main } from "../../src/cli/main.ts";
import {
  decodeNmeaSentence,
  formatNmeaSentence,
  nmeaFramer,
  nmeaPositionAssembler,
  nmeaStreamDecoder,
  parseNmeaSentence,
} from "../../protocols/nmea/index.ts";
import type { FixMode, PositionFix } from "../../protocols/nmea/index.ts";
import { listFiles, readText, sharedDir } from "../../test/fixtures/serial/load.ts";
import { distanceM } from "../../protocols/geo.ts";
import { nmeaGps, nmeaGpsOptions, nmeaGpsSession } from "./index.ts";
import type { NmeaGpsOptions } from "./index.ts";
import { nmeaLogEpochs } from "./replay.ts";
import { syntheticDrive } from "./synthetic.ts";

const GPSD = sharedDir("nmea/gpsd", "nmea-gps driver") ?? "";
const haveShared = GPSD !== "";

const enc = new TextEncoder();
/** The moment the core says frames are handled: 2026-11-23 08:00:00 UTC. */
const NOW = Date.UTC(2026, 10, 23, 8, 0, 0);
const LIVE: FrameContext = { nowMs: NOW };
const REPLAY: FrameContext = { nowMs: NOW, replay: true };
const opts = (o: object = {}): NmeaGpsOptions => nmeaGpsOptions.parse({ port: "/dev/ttyUSB0", ...o });

interface Body {
  lat?: number;
  lon?: number;
  altM?: number;
  speedMps?: number;
  courseDeg?: number;
  fix: FixMode;
  hdop?: number;
  sats?: number;
}

interface Run {
  events: (EventDraft & { body: Body })[];
  errors: string[];
  /** [utcFix, the sentence that gave it] */
  utcFixes: [number, string][];
  frames: number;
}

/** Feeds bytes through the driver's framer and one session, as the device manager does. */
function run(bytes: Uint8Array | string, options: NmeaGpsOptions, context: FrameContext = LIVE, chunk = Infinity): Run {
  const data = typeof bytes === "string" ? enc.encode(bytes) : bytes;
  const framer = nmeaGps.framer!(options);
  const session = nmeaGps.session!(options);
  const out: Run = { events: [], errors: [], utcFixes: [], frames: 0 };
  for (let at = 0; at < data.length; at += chunk) {
    for (const r of framer.push(data.subarray(at, Math.min(data.length, at + chunk)))) {
      if ("error" in r) {
        out.errors.push(r.error.code);
        continue;
      }
      out.frames++;
      const ex = session.handle(r.frame, context);
      if (!ex.ok) {
        out.errors.push(ex.error.code);
        continue;
      }
      expect(ex.accept).toBeUndefined(); // NMEA is one-way: nothing is ever sent back
      out.events.push(...(ex.events as Run["events"]));
      if (ex.utcFix !== undefined) out.utcFixes.push([ex.utcFix, Buffer.from(r.frame).toString("latin1")]);
    }
  }
  return out;
}

/** What the codec's assembler makes of the same bytes, as a live stream sees it (no end()): an epoch leaves at its learnt cycle end. */
function assemblerFixes(bytes: Uint8Array): PositionFix[] {
  const d = nmeaStreamDecoder();
  const a = nmeaPositionAssembler();
  const fixes: PositionFix[] = [];
  for (const r of d.push(bytes)) if (r.ok) fixes.push(...a.push(r.message));
  return fixes;
}

/** gpsd's .log files carry a '#' header; gpsfake drops those lines, so do we. */
function gpsdLog(name: string): Uint8Array {
  return Buffer.from(
    readText(GPSD, name, "latin1")
      .split(/(?<=\n)/)
      .filter((l) => !l.startsWith("#"))
      .join(""),
    "latin1",
  );
}

const withFix = (e: { body: Body }) => e.body.fix !== "none";
const drive = (o: Partial<Parameters<typeof syntheticDrive>[0]> & { epochs: number }) => [
  ...syntheticDrive({ startMs: NOW, ...o }),
];
const text = (epochs: { text: string }[]) => epochs.map((e) => e.text).join("");

/**
 * Checks a throttled run against the rule itself: an emitted fix is due (first, fix gained or lost,
 * interval passed, or moved far enough from the last emitted), and every fix left out was not due.
 */
function checkThrottle(fixes: PositionFix[], events: { body: Body; deviceTime?: string }[], o: NmeaGpsOptions): void {
  let last: PositionFix | undefined;
  let k = 0;
  for (const fix of fixes) {
    let due: boolean;
    if (!last) due = true;
    else if ((last.mode === "none") !== (fix.mode === "none")) due = true;
    else if (fix.mode === "none") due = false;
    else if (fix.time === undefined || last.time === undefined) due = true;
    else {
      const dt = Date.parse(fix.time) - Date.parse(last.time);
      due =
        dt < 0 ||
        dt >= o.minIntervalS * 1000 ||
        distanceM(last as { lat: number; lon: number }, fix as { lat: number; lon: number }) >= o.minDistanceM;
    }
    if (!due) continue;
    const e = events[k++];
    expect(e, `fix at ${fix.time} is due`).toBeDefined();
    expect(e!.body.fix).toBe(fix.mode);
    expect(e!.deviceTime).toBe(fix.time);
    expect(e!.body.lat).toBe(fix.lat);
    expect(e!.body.lon).toBe(fix.lon);
    last = fix;
  }
  expect(k).toBe(events.length);
}

describe("nmea-gps options", () => {
  it("has GPS serial defaults and a serial transport; tcp goes to a serial server", () => {
    const o = opts();
    expect(o).toMatchObject({
      transport: "serial",
      baudRate: 9600,
      dataBits: 8,
      parity: "none",
      stopBits: 1,
      throttle: true,
      minIntervalS: 5,
      minDistanceM: 20,
      silentAfterS: 5,
    });
    expect(nmeaGps.transport(o)).toEqual({
      type: "serial",
      path: "/dev/ttyUSB0",
      baudRate: 9600,
      dataBits: 8,
      parity: "none",
      stopBits: 1,
      rtscts: false,
      xonxoff: false,
    });
    expect(nmeaGps.transport(opts({ baudRate: 4800, match: { vendorId: "1546", productId: "01a8" } }))).toMatchObject({
      baudRate: 4800,
      match: { vendorId: "1546", productId: "01a8" },
    });
    expect(nmeaGps.transport(nmeaGpsOptions.parse({ transport: "tcp", host: "192.168.50.20", tcpPort: 4001 }))).toEqual(
      { type: "tcp-connect", host: "192.168.50.20", port: 4001 },
    );
    expect(nmeaGps.silentAfterMs!(o)).toBe(5000);
    expect(nmeaGps.kind).toBe("gps");
  });

  it("refuses a serial receiver without a port, a tcp one without address, unknown keys and odd baud rates", () => {
    const issues = (o: object) => nmeaGpsOptions.safeParse(o).error?.issues.map((i) => i.path.join(".")) ?? [];
    expect(issues({})).toEqual(["port"]);
    expect(issues({ transport: "tcp" })).toEqual(["host", "tcpPort"]);
    expect(issues({ port: "/dev/ttyACM0", baud: 9600 })).toEqual([""]);
    expect(issues({ port: "/dev/ttyACM0", baudRate: 9601 })).toEqual(["baudRate"]);
  });

  it("describes every option (for the JSON Schema and the pairing page)", () => {
    const schema = z.toJSONSchema(nmeaGpsOptions, { io: "input" }) as {
      properties: Record<string, { description?: string; properties?: Record<string, { description?: string }> }>;
    };
    expect(Object.keys(schema.properties)).toHaveLength(14);
    for (const [key, field] of Object.entries(schema.properties)) {
      expect(field.description, key).toBeTruthy();
      for (const [sub, f] of Object.entries(field.properties ?? {}))
        expect(f.description, `${key}.${sub}`).toBeTruthy();
    }
  });
});

describe("synthetic drive (drivers/nmea-gps/synthetic.ts)", () => {
  it("is valid NMEA that the codec assembles into the true positions, 15 m apart at 1 Hz", () => {
    const epochs = drive({ epochs: 6, zda: true });
    const d = nmeaStreamDecoder();
    const results = [...d.push(enc.encode(text(epochs))), ...d.end()];
    expect(results.every((r) => r.ok && r.message.checksum === "ok")).toBe(true);
    const a = nmeaPositionAssembler();
    const fixes = [...results.flatMap((r) => (r.ok ? a.push(r.message) : [])), ...a.end()];
    expect(fixes).toHaveLength(6);
    fixes.forEach((f, i) => {
      expect(f).toMatchObject({
        mode: "3d",
        time: new Date(NOW + i * 1000).toISOString(),
        sats: 8,
        hdop: 0.9,
        altM: 512.3,
      });
      expect(Math.abs(f.lat! - epochs[i]!.lat)).toBeLessThan(1e-7);
      expect(Math.abs(f.lon! - epochs[i]!.lon)).toBeLessThan(1e-7);
      expect(f.speedMps).toBeCloseTo(15, 3);
      if (i > 0)
        expect(distanceM(fixes[i - 1] as { lat: number; lon: number }, f as { lat: number; lon: number })).toBeCloseTo(
          15,
          1,
        );
    });
  });

  it("says no fix the way receivers do (RMC V, GGA quality 0, GSA 1), and 2D without altitude", () => {
    const fixOf = (i: number): FixMode => (i === 1 ? "none" : i === 2 ? "2d" : "3d");
    const fixes = assemblerFixes(enc.encode(text(drive({ epochs: 4, fix: fixOf }))));
    expect(fixes.map((f) => f.mode)).toEqual(["3d", "none", "2d", "3d"]);
    expect(fixes[2]!.altM).toBeUndefined();
  });
});

describe("nmea-gps session: positions", () => {
  it("maps a fix to a DESIGN §3 position with the receiver's UTC and its raw time and date", () => {
    const r = run(text(drive({ epochs: 2 })), opts());
    expect(r.events).toHaveLength(1);
    const e = r.events[0]!;
    expect(e.kind).toBe("position");
    expect(e.deviceTime).toBe("2026-11-23T08:00:00.000Z");
    expect(e.deviceTimeRaw).toBe("080000.00 231126");
    expect(Object.keys(e.body)).toEqual(["lat", "lon", "altM", "speedMps", "courseDeg", "fix", "hdop", "sats"]);
    expect(e.body).toMatchObject({ fix: "3d", altM: 512.3, courseDeg: 90, hdop: 0.9, sats: 8 });
  });

  it("throttles by distance: at 15 m/s and 20 m, every other second", () => {
    const o = opts({ minIntervalS: 3600, minDistanceM: 20 });
    const epochs = drive({ epochs: 21 });
    const r = run(text(epochs), o);
    // all 21 epochs complete (each leaves with its cycle-ending sentence): 0, 2, 4, ... 20
    expect(r.events.map((e) => e.deviceTime)).toEqual(
      epochs.filter((_, i) => i % 2 === 0).map((e) => new Date(e.atMs).toISOString()),
    );
    checkThrottle(assemblerFixes(enc.encode(text(epochs))), r.events, o);
  });

  it("throttles by time: standing still, one position every 5 s", () => {
    const o = opts();
    const epochs = drive({ epochs: 21, speedMps: 0 });
    const r = run(text(epochs), o);
    expect(r.events.map((e) => e.deviceTime)).toEqual(
      [0, 5, 10, 15, 20].map((i) => new Date(NOW + i * 1000).toISOString()),
    );
  });

  it("either one fires: slow (3 m/s) goes by time, fast (15 m/s) by distance, with the default 5 s / 20 m", () => {
    const count = (speedMps: number) => run(text(drive({ epochs: 31, speedMps })), opts()).events.length;
    expect(count(3)).toBe(7); // 0, 5, 10, 15, 20, 25, 30: 20 m takes 7 s, 5 s comes first
    expect(count(15)).toBe(16); // every 2 s: 30 m
  });

  it("always emits losing and regaining the fix, once; 2D/3D changes wait for the throttle", () => {
    // 0-9 3D, 10-14 no fix (a tunnel), 15-19 3D, 20-29 2D
    const fixOf = (i: number): FixMode => (i >= 10 && i < 15 ? "none" : i >= 20 ? "2d" : "3d");
    const o = opts({ minIntervalS: 3600, minDistanceM: 100_000 });
    const r = run(text(drive({ epochs: 30, fix: fixOf, speedMps: 0 })), o);
    expect(r.events.map((e) => [e.deviceTime!.slice(17, 19), e.body.fix])).toEqual([
      ["00", "3d"],
      ["10", "none"],
      ["15", "3d"],
    ]);
    const lost = r.events[1]!.body;
    expect(lost).toEqual({ fix: "none", hdop: 99.99, sats: 0 }); // no stale coordinates passed off as current
    // a receiver that starts without a fix says so once
    const cold = run(text(drive({ epochs: 6, fix: (i) => (i < 3 ? "none" : "3d") })), o);
    expect(cold.events.map((e) => e.body.fix)).toEqual(["none", "3d"]);
  });

  it("throttle false, and a replay (decode), give every fix", () => {
    const epochs = drive({ epochs: 31, speedMps: 3, fix: (i) => (i >= 10 && i < 15 ? "none" : "3d") });
    const fixes = assemblerFixes(enc.encode(text(epochs)));
    const expected = fixes.filter((f) => f.mode !== "none").map((f) => f.time);
    for (const r of [run(text(epochs), opts({ throttle: false })), run(text(epochs), opts(), REPLAY)]) {
      expect(r.events.filter(withFix).map((e) => e.deviceTime)).toEqual(expected);
      expect(r.events.filter((e) => !withFix(e))).toHaveLength(1);
    }
  });

  it("keeps going through bad checksums, garbage and torn lines, rejecting each", () => {
    const epochs = drive({ epochs: 4 });
    const good = text(epochs);
    const bad = formatNmeaSentence("GPGGA", [
      "080001.00",
      "4027.40200",
      "N",
      "11558.21664",
      "E",
      "1",
      "08",
      "0.9",
      "512.3",
      "M",
      "",
      "M",
      "",
      "",
    ]).replace(/\*..\r\n$/, "*00\r\n");
    const noisy = `${good.slice(0, 200)}\r\n${bad}$GPXYZ,broken\u0001line\r\nGARBAGE WITHOUT DOLLAR\r\n$GPGGA,nonsense*00\r\n${good.slice(200)}`;
    const clean = run(good, opts({ throttle: false }));
    const r = run(noisy, opts({ throttle: false }), LIVE, 7);
    expect(r.errors).toContain("NMEA_BAD_CHECKSUM");
    expect(r.errors).toContain("NMEA_TRUNCATED");
    expect(r.errors.length).toBeGreaterThanOrEqual(3);
    expect(r.events.map((e) => e.deviceTime)).toEqual(clean.events.map((e) => e.deviceTime));
  });
});

describe("nmea-gps session: UTC for the time service", () => {
  it("RMC with status A and ZDA give utcFix equal to the sentence's UTC; RMC V gives none", () => {
    const epochs = drive({ epochs: 5, zda: true, fix: (i) => (i === 3 ? "none" : "3d") });
    const r = run(text(epochs), opts());
    const utcOf = (line: string) => {
      const s = parseNmeaSentence(line);
      const m = s.ok ? decodeNmeaSentence(s.sentence) : undefined;
      return m?.ok && (m.message.type === "RMC" || m.message.type === "ZDA") ? Date.parse(m.message.utc!) : NaN;
    };
    for (const [fix, line] of r.utcFixes) expect(fix).toBe(utcOf(line));
    // RMC and ZDA of epochs 0, 1, 2, 4; epoch 3 has no fix: neither its RMC (V) nor its ZDA counts
    expect(r.utcFixes.map(([ms, line]) => `${(ms - NOW) / 1000}${line.slice(3, 6)}`)).toEqual([
      "0RMC",
      "0ZDA",
      "1RMC",
      "1ZDA",
      "2RMC",
      "2ZDA",
      "4RMC",
      "4ZDA",
    ]);
  });

  it("ZDA before the receiver's first fix is not believed (it may come from the receiver's own clock)", () => {
    const zda = formatNmeaSentence("GPZDA", ["080000.00", "23", "11", "2026", "00", "00"]);
    expect(run(zda, opts()).utcFixes).toEqual([]);
    const fixed = formatNmeaSentence("GPRMC", [
      "075959.00",
      "A",
      "4027.40200",
      "N",
      "11558.21664",
      "E",
      "0.0",
      "",
      "231126",
      "",
      "",
      "A",
    ]);
    expect(run(fixed + zda, opts()).utcFixes.map(([ms]) => ms)).toEqual([NOW - 1000, NOW]);
    // simulator mode is not time
    const sim = formatNmeaSentence("GPRMC", [
      "075959.00",
      "A",
      "4027.40200",
      "N",
      "11558.21664",
      "E",
      "0.0",
      "",
      "231126",
      "",
      "",
      "S",
    ]);
    expect(run(sim + zda, opts()).utcFixes).toEqual([]);
  });
});

describe("vitalgate decode --driver nmea-gps", () => {
  it("emits every fix of a capture (a replay is not throttled)", async () => {
    const epochs = drive({ epochs: 40, speedMps: 1 });
    const file = join(mkdtempSync(join(tmpdir(), "vg-gps-")), "drive.nmea");
    writeFileSync(file, text(epochs));
    const out: string[] = [];
    const code = await main(["decode", "--driver", "nmea-gps", "--options", '{"port":"/dev/null"}', file], {
      out: (s) => out.push(s),
      err: () => undefined,
    });
    expect(code).toBe(0);
    const events = out
      .join("")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { kind: string; t: string; time: { dev: string } });
    expect(events).toHaveLength(40); // the last one too: it ends with the cycle-ending sentence learnt from the first
    expect(events.map((e) => e.t)).toEqual(epochs.map((e) => new Date(e.atMs).toISOString()));
    expect(events[0]!.time.dev).toBe("080000.00 231126");
  });
});

describe.skipIf(!haveShared)("gpsd logs through the session (../shared/fixtures/nmea/gpsd)", () => {
  const logs = haveShared ? listFiles(GPSD).filter((f) => f.endsWith(".log")) : [];

  it.each(logs)(
    "%s: replayed, every fix the codec assembles becomes a position with its time, lat, lon; throttled, the rule holds",
    (name) => {
      const bytes = gpsdLog(name);
      const fixes = assemblerFixes(bytes);
      const replay = run(bytes, opts(), REPLAY);
      const withPos = fixes.filter((f) => f.mode !== "none");
      expect(replay.events.filter(withFix).map((e) => [e.deviceTime, e.body.lat, e.body.lon, e.body.fix])).toEqual(
        withPos.map((f) => [f.time, f.lat, f.lon, f.mode]),
      );
      // the same in any chunking
      expect(run(bytes, opts(), REPLAY, 13).events).toEqual(replay.events);
      const o = opts();
      const live = run(bytes, o);
      checkThrottle(fixes, live.events, o);
      expect(live.events.filter(withFix).length).toBeLessThanOrEqual(withPos.length);
      // every RMC (A) / ZDA time handed on is that sentence's own UTC
      for (const [ms, line] of live.utcFixes) {
        const s = parseNmeaSentence(line);
        const m = s.ok ? decodeNmeaSentence(s.sentence) : undefined;
        expect(m?.ok && "utc" in m.message ? Date.parse(m.message.utc!) : NaN).toBe(ms);
      }
    },
  );

  it("ublox-neo-m9n-nmea.log (a 3D fix throughout, standing): 61 positions replayed, the last one too, 13 throttled (every 5 s), 122 UTC fixes", () => {
    const bytes = gpsdLog("ublox-neo-m9n-nmea.log");
    expect(run(bytes, opts(), REPLAY).events.filter(withFix)).toHaveLength(61);
    const live = run(bytes, opts());
    expect(live.events.length).toBe(13);
    expect(live.events.every((e) => e.body.fix === "3d" && e.body.altM !== undefined)).toBe(true);
    expect(live.utcFixes.length).toBe(122);
  });

  it("nmeaLogEpochs cuts a log into 1 s bursts for the simulator", () => {
    const epochs = nmeaLogEpochs(readText(GPSD, "ublox-neo-m9n-nmea.log", "latin1"));
    expect(epochs.length).toBeGreaterThanOrEqual(60);
    expect(epochs.slice(1).every((e, i) => e.offsetMs - epochs[i]!.offsetMs === 1000)).toBe(true);
    expect(epochs.map((e) => e.text).join("")).toBe(
      Buffer.from(gpsdLog("ublox-neo-m9n-nmea.log")).toString("latin1").replace(/\r?\n/g, "\r\n"),
    );
  });
});

describe("nmeaGpsSession is the driver's session", () => {
  it("one per connection, each with its own memory", () => {
    expect(nmeaGps.session).toBe(nmeaGpsSession);
    const [a, b] = [nmeaGpsSession(opts()), nmeaGpsSession(opts())];
    const lines = text(drive({ epochs: 2 })).split(/(?<=\n)/);
    for (const l of lines) a.handle(enc.encode(l.trim()), LIVE);
    const x = a.handle(enc.encode(lines[0]!.trim()), LIVE);
    const y = b.handle(enc.encode(lines[0]!.trim()), LIVE);
    expect(x.ok && y.ok).toBe(true);
    expect(nmeaFramer).toBeTypeOf("function");
  });
});
