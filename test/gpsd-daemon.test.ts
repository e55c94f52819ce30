// The gpsd driver against the real gpsd (Debian's package), not a fake: a GPS receiver played by the
// nmea-gps simulator (synthetic drive) on one end of a socat PTY pair, gpsd started by the test on
// the other end on a free port, and an in-process gateway with the real gpsd driver, a real SQLite
// outbox and the real time service (GPS as its only source) reading gpsd's JSON over TCP. Proves what
// the fake in gpsd.test.ts cannot: gpsd's own WATCH answers and TPV/SKY reports (as gpsd composes
// them from the receiver's RMC/GGA/GSA) give the positions the receiver sent, and a gpsd that dies
// and is started again is reconnected to within 5 s.
import { afterEach, describe, expect, it } from "vitest";
import { distanceM } from "../protocols/geo.ts";
import { pointAlong, syntheticDrive } from "../drivers/nmea-gps/synthetic.ts";
import type { Gateway } from "../src/gateway.ts";
import { simulator as nmeaGpsSimulator } from "../drivers/nmea-gps/simulator.ts";
import { simulate } from "../src/cli/simulate.ts";
import { waitFor } from "./support/mqtt.ts";
import { gpsdDaemon, gpsdPath } from "./support/processes.ts";
import { hasSocat, nullModem } from "./support/pty.ts";
import { outboxEvents, startGateway } from "./support/rig.ts";

if (!gpsdPath) console.warn("skipping the real-gpsd test: gpsd is not installed (apt-get install gpsd)");
if (!hasSocat) console.warn("skipping the real-gpsd test: socat is not installed (apt-get install socat)");

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

interface PositionBody {
  lat: number;
  lon: number;
  fix: string;
  altM?: number;
  speedMps?: number;
  courseDeg?: number;
  hdop?: number;
  sats?: number;
}

const positions = (gw: Gateway) => outboxEvents<PositionBody>(gw, "position");

describe.skipIf(!gpsdPath || !hasSocat)("GPS through a real gpsd", () => {
  it(
    "the receiver's positions reach the outbox through gpsd, time syncs from its TPVs, a killed and restarted gpsd is recovered within 5 s",
    { timeout: 45_000 },
    async () => {
      const cable = nullModem();
      await cable.plugIn();
      cleanup.push(() => cable.unplug());

      // The receiver: 15 m/s due east, 1 Hz, RMC+GGA+GSA+GSV (gpsd sends no SKY without GSV), its UTC this machine's clock at each second.
      const startMs = Math.ceil(Date.now() / 1000) * 1000;
      const origin = { lat: 40.4567, lon: 115.9701 };
      const stop = new AbortController();
      const sim = simulate(
        nmeaGpsSimulator,
        { path: cable.devicePath },
        { epochs: syntheticDrive({ startMs, epochs: Infinity, origin, altM: 512.3, gsv: true }), startMs },
        stop.signal,
      );
      cleanup.push(async () => {
        stop.abort();
        await sim;
      });

      const gpsd = await gpsdDaemon(cable.gatewayPath);
      cleanup.push(() => gpsd.kill());

      // gpsd knows the receiver by the path it was given: watch that one only.
      const { gw } = await startGateway(
        {
          id: "gw-gpsd-real",
          logSection: true,
          time: "{ ntpServers: [], trustSystemClock: never }",
          devices: `{ id: gps, driver: gpsd, options: { port: ${gpsd.port}, device: "${cable.gatewayPath}", throttle: false, silentAfterS: 3 } }`,
        },
        cleanup,
      );

      await waitFor(
        () => positions(gw).filter((p) => p.body.fix === "3d").length >= 3,
        15_000,
        "3D positions through gpsd",
      );
      const first = positions(gw);
      // Each position is where the drive was at the fix's time (gpsd's TPV time is the receiver's RMC/GGA
      // time), to the simulator's print precision (1e-5 arc minute, 2 cm) and gpsd's (1e-9°).
      for (const p of first) {
        expect(p.dev).toMatchObject({ id: "gps", driver: "gpsd", kind: "gps" });
        const at = Date.parse(p.t);
        expect((at - startMs) % 1000).toBe(0);
        expect(p.time.devSkewMs).toBe(0);
        expect(distanceM(p.body, pointAlong(origin, 90, (15 * (at - startMs)) / 1000))).toBeLessThan(0.1);
        expect(p.body.speedMps).toBeCloseTo(15, 2);
        expect(p.body.courseDeg).toBeCloseTo(90, 5);
      }
      // 3D fixes carry the GGA's altitude above mean sea level, and, once gpsd has sent a SKY, the
      // satellites used (uSat) and HDOP that gpsd derives from the receiver's GSA and GSV (8, 0.9).
      const fixes3d = first.filter((p) => p.body.fix === "3d");
      for (const p of fixes3d) expect(p.body.altM).toBeCloseTo(512.3, 3);
      const withSky = fixes3d.filter((p) => p.body.sats !== undefined);
      expect(withSky.length).toBeGreaterThan(0);
      for (const p of withSky) expect(p.body).toMatchObject({ sats: 8, hdop: 0.9 });
      // every epoch of the receiver, in order (gpsd may report one epoch twice, first as a 2D fix from RMC alone)
      const seconds = [...new Set(first.map((p) => Date.parse(p.t)))];
      for (let i = 1; i < seconds.length; i++) expect(seconds[i]! - seconds[i - 1]!).toBe(1000);
      await waitFor(() => gw.status().time.src === "gps", 5000, "time from gpsd");
      expect(Math.abs(gw.status().time.offsetMs!)).toBeLessThan(1000);
      expect(gw.devices.get("gps")).toMatchObject({ state: "connected", rejected: 0 });

      // gpsd crashes: the connection drops; it is started again (as systemd would) and read again.
      await gpsd.kill();
      await waitFor(() => gw.devices.get("gps")?.state === "retrying", 5000, "gpsd's death noticed");
      const before = positions(gw).length;
      const restartedAt = Date.now();
      await gpsd.start();
      await waitFor(
        () => gw.devices.get("gps")?.state === "connected" && positions(gw).length > before,
        5000,
        "positions again after gpsd's restart",
      );
      expect(Date.now() - restartedAt).toBeLessThan(5000);
      const after = positions(gw).slice(before);
      for (const p of after) {
        const at = Date.parse(p.t);
        expect(at).toBeGreaterThan(restartedAt - 2000);
        expect(distanceM(p.body, pointAlong(origin, 90, (15 * (at - startMs)) / 1000))).toBeLessThan(0.1);
      }
      expect(gw.devices.get("gps")).toMatchObject({ rejected: 0 });
    },
  );
});
