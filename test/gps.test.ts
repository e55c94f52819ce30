// A GPS receiver on a "USB adapter" made of real pseudo-terminals (socat), played by the nmea-gps
// simulator (drivers/nmea-gps/simulator.ts, synthetic drive), read by an in-process gateway with the real nmea-gps
// driver, a real SQLite outbox and the real time service (GPS as its only source): positions reach
// the outbox, the gateway's time comes from the GPS, an unplug and replug recovers, silence shows.
import { afterEach, describe, expect, it } from "vitest";
import { distanceM } from "../protocols/geo.ts";
import { pointAlong, syntheticDrive } from "../drivers/nmea-gps/synthetic.ts";
import type { Envelope } from "../src/events/model.ts";
import type { Gateway } from "../src/gateway.ts";
import { simulator as nmeaGpsSimulator } from "../drivers/nmea-gps/simulator.ts";
import { simulate } from "../src/cli/simulate.ts";
import { waitFor } from "./support/mqtt.ts";
import { hasSocat, nullModem } from "./support/pty.ts";
import { outboxEvents, startGateway } from "./support/rig.ts";

if (!hasSocat) console.warn("skipping the GPS serial test: socat is not installed (apt-get install socat)");

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

interface PositionBody {
  lat: number;
  lon: number;
  fix: string;
  speedMps?: number;
}

/** The receiver's UTC for a position, from its raw time and date as sent (`time.dev`: "hhmmss.ss ddmmyy"). */
function fixTime(p: Envelope<PositionBody>): number {
  const m = /^(\d\d)(\d\d)(\d\d(?:\.\d+)?) (\d\d)(\d\d)(\d\d)$/.exec(p.time.dev ?? "");
  if (!m) throw new Error(`no raw GPS time in ${JSON.stringify(p.time)}`);
  return (
    Date.UTC(2000 + Number(m[6]), Number(m[5]) - 1, Number(m[4]), Number(m[1]), Number(m[2])) +
    Math.round(Number(m[3]) * 1000)
  );
}

const positions = (gw: Gateway) => outboxEvents<PositionBody>(gw, "position");

/**
 * A gateway with one GPS device (its options as YAML flow) and no time source but the GPS: no NTP,
 * no system clock. The uplink goes nowhere, so every event stays in the outbox for the test to read.
 */
const gatewayWithGps = (options: string) =>
  startGateway(
    {
      id: "gw-gps",
      logSection: true,
      time: "{ ntpServers: [], trustSystemClock: never }",
      devices: `{ id: gps, driver: nmea-gps, options: ${options} }`,
    },
    cleanup,
  );

describe.skipIf(!hasSocat)("GPS receiver over a real PTY", () => {
  it(
    "positions reach the outbox, time syncs from GPS, a replug recovers within 5 s, a silent GPS shows as silent",
    { timeout: 45_000 },
    async () => {
      const cable = nullModem();
      await cable.plugIn();
      cleanup.push(() => cable.unplug());

      const { gw, log } = await gatewayWithGps(
        `{ port: "${cable.gatewayPath}", minIntervalS: 2, minDistanceM: 1000, silentAfterS: 1 }`,
      );
      expect(gw.status().time).toMatchObject({ synced: false, src: "unsynced" });

      // The receiver: a synthetic drive at 15 m/s, 1 Hz, its UTC from this machine's clock.
      const startMs = Math.ceil(Date.now() / 1000) * 1000;
      const origin = { lat: 40.4567, lon: 115.9701 };
      const stop = new AbortController();
      const sim = simulate(
        nmeaGpsSimulator,
        { path: cable.devicePath },
        { epochs: syntheticDrive({ startMs, epochs: Infinity, origin }), startMs },
        stop.signal,
      );
      const stopGps = async () => {
        stop.abort();
        await sim;
      };
      cleanup.push(stopGps);

      await waitFor(() => positions(gw).length >= 3, 10_000, "positions in the outbox");
      const time1 = gw.status().time;
      expect(time1).toMatchObject({ synced: true, src: "gps" });
      // The GPS's UTC is this machine's clock at the top of each second, plus the configured receiver
      // latency (100 ms): the system clock is judged off by about that much, not more.
      expect(Math.abs(time1.offsetMs!)).toBeLessThan(300);
      expect(log.codes()).toContain("VG_TIME_SYNCED");
      const first = positions(gw);
      // Throttled to one every 2 s (the vehicle moves 30 m: under minDistanceM), each where the drive was.
      for (const [i, p] of first.entries()) {
        expect(p.dev).toMatchObject({ id: "gps", driver: "nmea-gps", kind: "gps" });
        expect(p.body.fix).toBe("3d");
        const at = fixTime(p);
        const truth = pointAlong(origin, 90, (15 * (at - startMs)) / 1000);
        expect(distanceM(p.body, truth)).toBeLessThan(0.5);
        if (i > 0) expect(at - fixTime(first[i - 1]!)).toBe(2000);
        // The receiver is the time reference: `t` is when the fix was measured, by its own UTC, not
        // when it arrived an epoch later (no device-clock "correction" for a GPS).
        expect(Date.parse(p.t)).toBe(at);
        expect(p.time.devSkewMs).toBe(0);
      }
      await waitFor(() => positions(gw).some((p) => p.time.src === "gps"), 5000, "a position stamped on GPS time");

      // Unplug the adapter mid-stream (the receiver keeps talking into the void), plug it back in.
      await cable.unplug();
      await waitFor(() => gw.devices.get("gps")?.state === "retrying", 5000, "the unplug noticed");
      const before = positions(gw).length;
      const pluggedAt = Date.now();
      await cable.plugIn();
      await waitFor(
        () => gw.devices.get("gps")?.state === "connected" && positions(gw).length > before,
        5000,
        "positions again after the replug",
      );
      expect(Date.now() - pluggedAt).toBeLessThan(5000);
      const after = positions(gw).at(-1)!;
      expect(fixTime(after)).toBeGreaterThan(pluggedAt - 2000);

      // The receiver stops talking: silent after 1 s, and the device's error says why.
      await stopGps();
      await waitFor(() => gw.devices.get("gps")?.state === "silent", 5000, "silent");
      expect(gw.devices.get("gps")?.lastError?.code).toBe("VG_DEVICE_SILENT");
      expect(gw.devices.get("gps")).toMatchObject({ rejected: 0 });
    },
  );
});

describe("GPS receiver behind a serial server", () => {
  it("reads a receiver over TCP, the simulator playing the server", { timeout: 20_000 }, async () => {
    let listening!: (port: number) => void;
    const port = new Promise<number>((resolve) => (listening = resolve));
    const startMs = Math.ceil(Date.now() / 1000) * 1000;
    const stop = new AbortController();
    const sim = simulate(
      nmeaGpsSimulator,
      { tcpPort: 0, onListening: listening },
      { epochs: syntheticDrive({ startMs, epochs: Infinity }), startMs },
      stop.signal,
    );
    cleanup.push(async () => {
      stop.abort();
      await sim;
    });
    const { gw } = await gatewayWithGps(`{ transport: tcp, host: 127.0.0.1, tcpPort: ${await port}, throttle: false }`);
    await waitFor(() => positions(gw).length >= 2, 8000, "positions from the serial server");
    expect(gw.devices.get("gps")).toMatchObject({ state: "connected", rejected: 0 });
    expect(gw.status().time).toMatchObject({ synced: true, src: "gps" });
    const [a, b] = positions(gw);
    expect(fixTime(b!) - fixTime(a!)).toBe(1000); // throttle off: every epoch
  });
});
