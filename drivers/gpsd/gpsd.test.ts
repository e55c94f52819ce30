import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import type { FrameContext } from "../../src/devices/driver.ts";
import type { EventDraft } from "../../src/events/model.ts";
import { main } from "../../src/cli/main.ts";
import { findDriver } from "../registry.ts";
import { nmeaStreamDecoder, nmeaPositionAssembler } from "../../protocols/nmea/index.ts";
import type { FixMode, PositionFix } from "../../protocols/nmea/index.ts";
import { listFiles, readText, sharedDir } from "../../test/fixtures/serial/load.ts";
import { nmeaGps, nmeaGpsOptions } from "../nmea-gps/index.ts";
import { syntheticDrive } from "../nmea-gps/synthetic.ts";
import { distanceM } from "../../protocols/geo.ts";
import { GPSD_MAX_REQUEST, gpsd, gpsdOptions, gpsdSession, jsonLineFramer, watchCommand } from "./index.ts";
import type { GpsdOptions } from "./index.ts";

const GPSD = sharedDir("nmea/gpsd", "gpsd driver") ?? "";
const haveShared = GPSD !== "";

const enc = new TextEncoder();
const NOW = Date.UTC(2026, 10, 23, 8, 0, 0);
const LIVE: FrameContext = { nowMs: NOW };
const REPLAY: FrameContext = { nowMs: NOW, replay: true };
const opts = (o: object = {}): GpsdOptions => gpsdOptions.parse(o);

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
type Ev = EventDraft & { body: Body };

interface Run {
  events: Ev[];
  errors: string[];
  utcFixes: number[];
}

/** Feeds text through the driver's framer and one session, as the device manager does. */
function run(text: string, options: GpsdOptions, context: FrameContext = LIVE, chunk = Infinity): Run {
  const data = enc.encode(text);
  const framer = gpsd.framer!(options);
  const session = gpsd.session!(options);
  const out: Run = { events: [], errors: [], utcFixes: [] };
  for (let at = 0; at < data.length; at += chunk) {
    for (const r of framer.push(data.subarray(at, Math.min(data.length, at + chunk)))) {
      if ("error" in r) {
        out.errors.push(r.error.code);
        continue;
      }
      const ex = session.handle(r.frame, context);
      if (!ex.ok) {
        out.errors.push(ex.error.code);
        continue;
      }
      out.events.push(...(ex.events as Ev[]));
      if (ex.utcFix !== undefined) out.utcFixes.push(ex.utcFix);
    }
  }
  return out;
}

const tpvLine = (o: object) => `${JSON.stringify({ class: "TPV", ...o })}\n`;
const withFix = (e: Ev) => e.body.fix !== "none";

/** The TPV (and SKY) gpsd would report for an NMEA epoch the codec assembled. */
function asGpsd(fix: PositionFix): string {
  const mode = fix.mode === "3d" ? 3 : fix.mode === "2d" ? 2 : 1;
  const tpv: Record<string, unknown> = { device: "/dev/ttyACM0", mode };
  if (fix.time !== undefined) tpv.time = fix.time;
  if (mode >= 2)
    Object.assign(tpv, {
      lat: fix.lat,
      lon: fix.lon,
      altHAE: fix.altM === undefined ? undefined : fix.altM - 8,
      altMSL: fix.altM,
      speed: fix.speedMps,
      track: fix.courseDeg,
      epx: 3.1,
      eph: 6.2,
    });
  const sky = { class: "SKY", device: "/dev/ttyACM0", hdop: fix.hdop, uSat: fix.sats, nSat: 12 };
  return `${JSON.stringify(sky)}\n${tpvLine(tpv)}`;
}

function assemblerFixes(text: string): PositionFix[] {
  const d = nmeaStreamDecoder();
  const a = nmeaPositionAssembler();
  const fixes: PositionFix[] = [];
  for (const r of d.push(enc.encode(text))) if (r.ok) fixes.push(...a.push(r.message));
  return fixes;
}

/** What nmea-gps makes of the same NMEA. */
function nmeaEvents(text: string, o: object, context: FrameContext = LIVE): Ev[] {
  const options = nmeaGpsOptions.parse({ port: "/dev/null", ...o });
  const framer = nmeaGps.framer!(options);
  const session = nmeaGps.session!(options);
  const events: Ev[] = [];
  for (const r of framer.push(enc.encode(text))) {
    if ("error" in r) continue;
    const ex = session.handle(r.frame, context);
    if (ex.ok) events.push(...(ex.events as Ev[]));
  }
  return events;
}

describe("gpsd options", () => {
  it("defaults to the local gpsd on 2947, the nmea-gps throttle defaults, a tcp-connect transport", () => {
    const o = opts();
    expect(o).toEqual({
      host: "127.0.0.1",
      port: 2947,
      throttle: true,
      minIntervalS: 5,
      minDistanceM: 20,
      silentAfterS: 5,
    });
    expect(gpsd.transport(o)).toEqual({ type: "tcp-connect", host: "127.0.0.1", port: 2947 });
    expect(gpsd.transport(opts({ host: "10.0.0.5", port: 3000 }))).toEqual({
      type: "tcp-connect",
      host: "10.0.0.5",
      port: 3000,
    });
    expect(gpsd.silentAfterMs!(opts({ silentAfterS: 2 }))).toBe(2000);
    expect(gpsd.kind).toBe("gps");
    expect(findDriver("gpsd")).toBe(gpsd);
  });

  it("refuses unknown keys and bad values, and describes every option", () => {
    const issues = (o: object) => gpsdOptions.safeParse(o).error?.issues.map((i) => i.path.join(".")) ?? [];
    expect(issues({ hots: "x" })).toEqual([""]);
    expect(issues({ port: 0 })).toEqual(["port"]);
    expect(issues({ minDistanceM: -1 })).toEqual(["minDistanceM"]);
    expect(issues({ device: "" })).toEqual(["device"]);
    const schema = z.toJSONSchema(gpsdOptions, { io: "input" }) as {
      properties: Record<string, { description?: string }>;
    };
    expect(Object.keys(schema.properties)).toEqual([
      "host",
      "port",
      "device",
      "throttle",
      "minIntervalS",
      "minDistanceM",
      "silentAfterS",
    ]);
    for (const [key, field] of Object.entries(schema.properties)) expect(field.description, key).toBeTruthy();
  });

  it("sends WATCH on open, naming the device when gpsd's 80-character request limit allows", () => {
    const sent = (o: GpsdOptions) => gpsdSession(o).open!(LIVE).map((b) => Buffer.from(b).toString());
    expect(sent(opts())).toEqual(['?WATCH={"enable":true,"json":true};\n']);
    expect(sent(opts({ device: "/dev/ttyACM0" }))).toEqual([
      '?WATCH={"enable":true,"json":true,"device":"/dev/ttyACM0"};\n',
    ]);
    const long = "/dev/serial/by-id/usb-u-blox_AG_-_www.u-blox.com_u-blox_GNSS_receiver-if00";
    expect(watchCommand(long)).toBe('?WATCH={"enable":true,"json":true};\n');
    for (const d of [undefined, "/dev/ttyACM0", long])
      expect(watchCommand(d).trimEnd().length).toBeLessThanOrEqual(GPSD_MAX_REQUEST);
  });
});

describe("gpsd line framer", () => {
  const text = '{"class":"VERSION"}\r\n\n{"class":"TPV","mode":1}\n{"class":"SKY"}\n';
  const frames = (rs: ReturnType<ReturnType<typeof jsonLineFramer>["push"]>) =>
    rs.map((r) => ("frame" in r ? Buffer.from(r.frame).toString() : `!${r.error.code}`));

  it("gives the same lines split at every byte boundary, CR LF or LF, empty lines skipped", () => {
    const bytes = enc.encode(text);
    const whole = frames(jsonLineFramer().push(bytes));
    expect(whole).toEqual(['{"class":"VERSION"}', '{"class":"TPV","mode":1}', '{"class":"SKY"}']);
    for (let cut = 0; cut <= bytes.length; cut++) {
      for (let cut2 = cut; cut2 <= bytes.length; cut2++) {
        const f = jsonLineFramer();
        const got = [
          ...f.push(bytes.subarray(0, cut)),
          ...f.push(bytes.subarray(cut, cut2)),
          ...f.push(bytes.subarray(cut2)),
          ...f.end(),
        ];
        expect(frames(got), `cut at ${cut}, ${cut2}`).toEqual(whole);
      }
    }
  });

  it("reports an over-long line once and skips it without holding it, in any chunking", () => {
    const long = `{"class":"TPV","x":"${"a".repeat(500)}"}\n{"class":"SKY"}\n`;
    for (const chunk of [1, 7, 64, 10_000]) {
      const f = jsonLineFramer(100);
      const out: ReturnType<typeof f.push> = [];
      let maxPending = 0;
      for (let at = 0; at < long.length; at += chunk) {
        out.push(...f.push(enc.encode(long.slice(at, at + chunk))));
        maxPending = Math.max(maxPending, f.pending);
      }
      expect(frames(out)).toEqual(["!GPSD_LINE_TOO_LONG", '{"class":"SKY"}']);
      expect(maxPending).toBeLessThanOrEqual(100);
    }
    // an endless line without a terminator: memory stays bounded
    const f = jsonLineFramer(100);
    const errors = [];
    for (let i = 0; i < 1000; i++) errors.push(...f.push(enc.encode("x".repeat(1000))));
    expect(errors).toHaveLength(1);
    expect(f.pending).toBe(0);
  });
});

describe("gpsd session", () => {
  it("maps a 3D TPV to the nmea-gps position body, altMSL as altM, hdop and sats from the last SKY", () => {
    const r = run(
      '{"class":"VERSION","release":"3.25","rev":"3.25","proto_major":3,"proto_minor":15}\n' +
        '{"class":"DEVICES","devices":[{"class":"DEVICE","path":"/dev/ttyACM0","driver":"u-blox"}]}\n' +
        '{"class":"WATCH","enable":true,"json":true}\n' +
        '{"class":"SKY","device":"/dev/ttyACM0","hdop":0.91,"uSat":12,"nSat":20}\n' +
        tpvLine({
          device: "/dev/ttyACM0",
          status: 2,
          mode: 3,
          time: "2026-11-23T08:00:00.000Z",
          ept: 0.005,
          lat: 40.4567,
          lon: 115.9701,
          altHAE: 500.1,
          altMSL: 512.3,
          alt: 512.3,
          epx: 3,
          epy: 4,
          eph: 6,
          speed: 15.2,
          track: 90.5,
          climb: 0.1,
        }),
      opts(),
    );
    expect(r.errors).toEqual([]);
    expect(r.events).toHaveLength(1);
    const e = r.events[0]!;
    expect(e).toEqual({
      kind: "position",
      body: {
        lat: 40.4567,
        lon: 115.9701,
        altM: 512.3,
        speedMps: 15.2,
        courseDeg: 90.5,
        fix: "3d",
        hdop: 0.91,
        sats: 12,
      },
      deviceTime: "2026-11-23T08:00:00.000Z",
      deviceTimeRaw: "2026-11-23T08:00:00.000Z",
    });
    expect(Object.keys(e.body)).toEqual(["lat", "lon", "altM", "speedMps", "courseDeg", "fix", "hdop", "sats"]);
    expect(r.utcFixes).toEqual([NOW]);
  });

  it("2D has no altitude; SKY without uSat counts satellites used; a lost fix is said once, without coordinates", () => {
    const r = run(
      '{"class":"SKY","satellites":[{"PRN":1,"used":true},{"PRN":2,"used":false},{"PRN":3,"used":true}]}\n' +
        tpvLine({ mode: 2, time: "2026-11-23T08:00:00Z", lat: 1, lon: 2, alt: 99, speed: 0 }) +
        tpvLine({ mode: 1, time: "2026-11-23T08:00:01Z" }) +
        tpvLine({ mode: 1 }) +
        tpvLine({ mode: 0 }) +
        tpvLine({ mode: 3, time: "2026-11-23T08:00:04Z", lat: 1, lon: 2, alt: 99 }),
      opts(),
    );
    expect(r.events.map((e) => e.body)).toEqual([
      { lat: 1, lon: 2, speedMps: 0, fix: "2d", sats: 2 },
      { fix: "none", sats: 2 },
      { lat: 1, lon: 2, altM: 99, fix: "3d", sats: 2 },
    ]);
    expect(r.events[1]!.deviceTime).toBe("2026-11-23T08:00:01.000Z"); // the receiver's clock, as nmea-gps shows an RMC V's
    // only fixes give the time service a UTC
    expect(r.utcFixes).toEqual([NOW, NOW + 4000]);
  });

  it("a fix without time is a position on the gateway's clock and no utcFix; a simulated fix (status 8) gives no utcFix", () => {
    const r = run(
      tpvLine({ mode: 3, lat: 1, lon: 2 }) +
        tpvLine({ status: 8, mode: 3, time: "2026-11-23T08:00:09Z", lat: 1, lon: 2 }),
      opts({ throttle: false }),
    );
    expect(r.events).toHaveLength(2);
    expect(r.events[0]!.deviceTime).toBeUndefined();
    expect(r.events[1]!.deviceTime).toBe("2026-11-23T08:00:09.000Z");
    expect(r.utcFixes).toEqual([]);
  });

  it("rejects bad JSON, objects without class, bad TPVs and gpsd errors with clear codes, and keeps going", () => {
    const good = tpvLine({ mode: 3, time: "2026-11-23T08:00:00Z", lat: 1, lon: 2 });
    const text =
      [
        "{not json",
        "[1,2]",
        '"TPV"',
        "null",
        '{"mode":3}',
        '{"class":"TPV","mode":7}',
        '{"class":"TPV","mode":3,"lat":"x","lon":2}',
        '{"class":"TPV","mode":2,"lat":91,"lon":2}',
        '{"class":"ERROR","message":"Unrecognized request \'FOO\'"}',
        "\u0000\u0001\u00ff",
      ].join("\n") +
      "\n" +
      good;
    for (const chunk of [1, 3, Infinity]) {
      const r = run(text, opts(), LIVE, chunk);
      expect(r.errors).toEqual([
        "GPSD_BAD_JSON",
        "GPSD_NO_CLASS",
        "GPSD_NO_CLASS",
        "GPSD_NO_CLASS",
        "GPSD_NO_CLASS",
        "GPSD_BAD_TPV",
        "GPSD_BAD_TPV",
        "GPSD_BAD_TPV",
        "GPSD_ERROR",
        "GPSD_BAD_JSON",
      ]);
      expect(r.events.map((e) => e.body.lat)).toEqual([1]);
    }
    const ex = gpsdSession(opts()).handle(enc.encode("{oops"), LIVE);
    expect(ex).toMatchObject({
      ok: false,
      error: { code: "GPSD_BAD_JSON", message: "a line from gpsd (5 bytes) is not JSON" },
    });
    const err = gpsdSession(opts()).handle(
      enc.encode('{"class":"ERROR","message":"Unrecognized request \'FOO\'"}'),
      LIVE,
    );
    expect(err).toMatchObject({ ok: false, error: { message: "gpsd reported an error: Unrecognized request 'FOO'" } });
    // a huge line is refused whole, not parsed
    expect(gpsdSession(opts()).handle(new Uint8Array(100_000).fill(0x20), LIVE)).toMatchObject({
      ok: false,
      error: { code: "GPSD_LINE_TOO_LONG" },
    });
  });

  it("with `device`, reports of other receivers are left out", () => {
    const text =
      tpvLine({ device: "/dev/ttyUSB1", mode: 3, time: "2026-11-23T08:00:00Z", lat: 5, lon: 5 }) +
      '{"class":"SKY","device":"/dev/ttyUSB1","uSat":3}\n' +
      tpvLine({ device: "/dev/ttyACM0", mode: 3, time: "2026-11-23T08:00:01Z", lat: 1, lon: 2 });
    expect(run(text, opts({ device: "/dev/ttyACM0" })).events.map((e) => [e.body.lat, e.body.sats])).toEqual([
      [1, undefined],
    ]);
    expect(run(text, opts({ throttle: false })).events.map((e) => e.body.lat)).toEqual([5, 1]);
  });

  it("throttles exactly as nmea-gps does: the same drive, as NMEA and as gpsd's TPV, gives the same positions", () => {
    const fixOf = (i: number): FixMode => (i >= 20 && i < 26 ? "none" : i >= 40 && i < 50 ? "2d" : "3d");
    const cases: [object, FrameContext][] = [
      [{}, LIVE],
      [{ minIntervalS: 3600, minDistanceM: 20 }, LIVE],
      [{ minIntervalS: 2, minDistanceM: 1000 }, LIVE],
      [{ throttle: false }, LIVE],
      [{}, REPLAY],
    ];
    for (const speedMps of [0, 3, 15]) {
      const nmea = [...syntheticDrive({ startMs: NOW, epochs: 61, speedMps, fix: fixOf })].map((e) => e.text).join("");
      const tpvs = assemblerFixes(nmea).map(asGpsd).join("");
      for (const [o, context] of cases) {
        const mine = run(tpvs, opts(o), context).events;
        const theirs = nmeaEvents(nmea, o, context);
        expect(mine.length, `${speedMps} m/s ${JSON.stringify(o)}`).toBeGreaterThan(1);
        expect(mine.map(({ kind, body, deviceTime }) => ({ kind, body, deviceTime }))).toEqual(
          theirs.map(({ kind, body, deviceTime }) => ({ kind, body, deviceTime })),
        );
      }
    }
  });
});

describe("gpsd codec under random input (fast-check)", () => {
  const KNOWN = new Set(["GPSD_BAD_JSON", "GPSD_NO_CLASS", "GPSD_BAD_TPV", "GPSD_ERROR", "GPSD_LINE_TOO_LONG"]);
  const tpv = fc
    .record({
      mode: fc.integer({ min: -1, max: 4 }),
      lat: fc.double({ min: -100, max: 100, noNaN: true }),
      lon: fc.double({ min: -200, max: 200, noNaN: true }),
      time: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
    })
    .map((t) => tpvLine(t));
  const part = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    tpv.map((l) => enc.encode(l)),
    fc.json().map((j) => enc.encode(`${j}\n`)),
    fc
      .constantFrom('{"class":"SKY","uSat":5,"hdop":1.1}\n', '{"class":"ERROR","message":"x"}\n', "\n", "\r\n")
      .map((x) => enc.encode(x)),
  );

  it("never throws, answers every line with events or a known error, holds at most its cap, and is the same in any chunking", () => {
    fc.assert(
      fc.property(
        fc.array(part, { maxLength: 40 }),
        fc.array(fc.nat(3000), { maxLength: 8 }),
        fc.boolean(),
        (parts, cuts, throttle) => {
          const bytes = Buffer.concat(parts);
          const feed = (points: number[]) => {
            const framer = jsonLineFramer(256);
            const session = gpsdSession(opts({ throttle }));
            const out: string[] = [];
            let from = 0;
            for (const at of [...points, bytes.length]) {
              for (const r of framer.push(bytes.subarray(from, at))) {
                if ("error" in r) out.push(r.error.code);
                else {
                  const ex = session.handle(r.frame, LIVE);
                  out.push(ex.ok ? JSON.stringify(ex.events) : ex.error.code);
                }
              }
              expect(framer.pending).toBeLessThanOrEqual(256);
              from = at;
            }
            return out;
          };
          const whole = feed([]);
          for (const r of whole) if (!r.startsWith("[")) expect(KNOWN.has(r), r).toBe(true);
          expect(feed([...new Set(cuts.map((c) => Math.min(c, bytes.length)))].sort((a, b) => a - b))).toEqual(whole);
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** gpsd's regression output: the JSON lines of a .chk (its NMEA input lines are left out). */
function chkJson(name: string): string {
  return readText(GPSD, name)
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => `${l}\n`)
    .join("");
}

interface Tpv {
  mode: number;
  time?: string;
  lat?: number;
  lon?: number;
  status?: number;
}

describe.skipIf(!haveShared)("gpsd's own TPV reports (../shared/fixtures/nmea/gpsd/*.chk)", () => {
  const chks = haveShared ? listFiles(GPSD).filter((f) => f.endsWith(".chk")) : [];

  it.each(chks)(
    "%s: a position for every TPV with a 2D/3D fix (its time, lat, lon), none for the others; throttled, the rule holds",
    (name) => {
      const text = chkJson(name);
      // gpsd also reports a mode alone (a GSA before the position): such TPVs carry no position to send
      const all = text
        .split("\n")
        .filter((l) => l.startsWith('{"class":"TPV"'))
        .map((l) => JSON.parse(l) as Tpv);
      const tpvs = all.filter((t) => t.mode < 2 || t.lat !== undefined);
      const fixed = tpvs.filter((t) => t.mode >= 2);
      const replay = run(text, opts(), REPLAY);
      expect(replay.errors).toEqual([]);
      const positions = replay.events.filter(withFix);
      expect(
        positions.map((e) => [
          e.deviceTime === undefined ? undefined : Date.parse(e.deviceTime),
          e.body.lat,
          e.body.lon,
          e.body.fix,
        ]),
      ).toEqual(
        fixed.map((t) => [
          t.time === undefined ? undefined : Date.parse(t.time),
          t.lat,
          t.lon,
          t.mode === 3 ? "3d" : "2d",
        ]),
      );
      // no fix: said once per loss (or at the start), never with coordinates
      const losses = tpvs.filter((t, i) => t.mode < 2 && (i === 0 || tpvs[i - 1]!.mode >= 2)).length;
      const none = replay.events.filter((e) => !withFix(e));
      expect(none).toHaveLength(losses);
      for (const e of none) expect(e.body.lat ?? e.body.lon).toBeUndefined();
      expect(replay.utcFixes).toEqual(
        fixed.filter((t) => t.time !== undefined && t.status !== 8).map((t) => Date.parse(t.time!)),
      );
      // the same in any chunking
      expect(run(text, opts(), REPLAY, 13).events).toEqual(replay.events);

      // live, throttled: a position is sent exactly when the rule says so
      const o = opts();
      const live = run(text, o).events;
      let last: Tpv | undefined;
      let k = 0;
      for (const t of tpvs) {
        let due: boolean;
        if (!last) due = true;
        else if (last.mode >= 2 !== t.mode >= 2) due = true;
        else if (t.mode < 2) due = false;
        else if ((t.time === undefined) !== (last.time === undefined)) due = true;
        else {
          const dt = t.time === undefined ? 0 : Date.parse(t.time) - Date.parse(last.time!);
          due =
            dt < 0 ||
            dt >= o.minIntervalS * 1000 ||
            distanceM(last as { lat: number; lon: number }, t as { lat: number; lon: number }) >= o.minDistanceM;
        }
        if (!due) continue;
        const e = live[k++];
        expect(e, `TPV at ${t.time} is due`).toBeDefined();
        expect([e!.body.lat, e!.body.lon]).toEqual([t.mode >= 2 ? t.lat : undefined, t.mode >= 2 ? t.lon : undefined]);
        last = t;
      }
      expect(k).toBe(live.length);
    },
  );

  it("the set holds a good number of fixes, losses and 2D fixes", () => {
    let fixes = 0;
    let twoD = 0;
    let noFix = 0;
    for (const name of chks) {
      for (const l of chkJson(name)
        .split("\n")
        .filter((x) => x.startsWith('{"class":"TPV"'))) {
        const t = JSON.parse(l) as Tpv;
        if (t.mode >= 2) fixes++;
        else noFix++;
        if (t.mode === 2) twoD++;
      }
    }
    expect(fixes).toBeGreaterThan(1000);
    expect(twoD).toBeGreaterThan(10);
    expect(noFix).toBeGreaterThan(100);
  });

  it("vitalgate decode --driver gpsd reads a .chk file, NMEA lines skipped: every fix", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const file = join(GPSD, "ublox-neo-m9n-nmea.log.chk");
    const code = await main(["decode", "--driver", "gpsd", file], { out: (s) => out.push(s), err: (s) => err.push(s) });
    expect(err.join("")).toBe("");
    expect(code).toBe(0);
    const events = out
      .join("")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { kind: string; dev: { driver: string } });
    const tpv = chkJson("ublox-neo-m9n-nmea.log.chk")
      .split("\n")
      .filter((l) => l.startsWith('{"class":"TPV"') && /"mode":[23]/.test(l));
    expect(events.filter((e) => e.kind === "position")).toHaveLength(tpv.length);
    expect(events[0]!.dev.driver).toBe("gpsd");
  });
});

describe("vitalgate decode --driver gpsd", () => {
  it("reads gpspipe -w output and reports bad lines", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "vg-gpsd-")), "pipe.json");
    writeFileSync(
      file,
      '{"class":"VERSION"}\n' +
        tpvLine({ mode: 3, time: "2026-11-23T08:00:00Z", lat: 1, lon: 2 }) +
        "{broken\n" +
        tpvLine({ mode: 3, time: "2026-11-23T08:00:01Z", lat: 1, lon: 2 }),
    );
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(["decode", "--driver", "gpsd", file], { out: (s) => out.push(s), err: (s) => err.push(s) });
    expect(code).toBe(1);
    expect(out.join("").trim().split("\n")).toHaveLength(2);
    expect(err.join("")).toContain("GPSD_BAD_JSON");
  });
});
