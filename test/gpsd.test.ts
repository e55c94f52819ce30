// A box that already runs gpsd: a small fake gpsd (a TCP server speaking gpsd's JSON protocol: VERSION
// on connect, DEVICES and WATCH once asked to watch, then TPV and SKY reports) read by an in-process
// gateway with the real gpsd driver, a real SQLite outbox and the real time service (GPS as its only
// source): positions reach the outbox, the gateway's time comes from gpsd's TPV time, a restarted gpsd
// is reconnected to and watched again, bad lines are rejected without stopping anything, silence shows.
import { createServer } from "node:net";
import type { Server, Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { Gateway } from "../src/gateway.ts";
import { waitFor } from "./support/mqtt.ts";
import { freePort } from "./support/processes.ts";
import { outboxEvents, startGateway } from "./support/rig.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

interface PositionBody {
  lat: number;
  lon: number;
  fix: string;
  sats?: number;
  hdop?: number;
}

const positions = (gw: Gateway) => outboxEvents<PositionBody>(gw, "position");

/**
 * A fake gpsd on `port`: VERSION on connect; on ?WATCH, DEVICES and WATCH, then every `everyMs` a
 * SKY and a TPV whose time is this machine's clock, and (with `garbage`) a line that is not JSON.
 */
function fakeGpsd(port: number, o: { everyMs: number; garbage?: boolean }) {
  const watches: string[] = [];
  const sockets = new Set<Socket>();
  let n = 0;
  let server: Server | undefined;
  const timer = setInterval(() => {
    const t = Date.now();
    for (const s of sockets) {
      if (!(s as Socket & { watching?: boolean }).watching) continue;
      n++;
      s.write(`{"class":"SKY","device":"/dev/ttyACM0","hdop":0.8,"uSat":9,"nSat":14}\n`);
      s.write(
        `{"class":"TPV","device":"/dev/ttyACM0","status":1,"mode":3,"time":"${new Date(t).toISOString()}","ept":0.005,"lat":${40 + n * 1e-4},"lon":116.1,"altHAE":40.1,"altMSL":50.2,"speed":11.1,"track":3.5,"eph":4.2}\n`,
      );
      if (o.garbage) s.write(`{"class":"TPV","mode":3,"lat":\n\u0000\u0007binary noise\n`);
    }
  }, o.everyMs);
  const start = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer((s) => {
        sockets.add(s);
        s.on("error", () => undefined);
        s.once("close", () => sockets.delete(s));
        s.write('{"class":"VERSION","release":"3.25","rev":"3.25","proto_major":3,"proto_minor":15}\n');
        let got = "";
        s.on("data", (d) => {
          got += d.toString("latin1");
          let nl: number;
          while ((nl = got.indexOf("\n")) >= 0) {
            const line = got.slice(0, nl);
            got = got.slice(nl + 1);
            if (!line.startsWith("?WATCH=")) continue;
            watches.push(line);
            s.write(
              '{"class":"DEVICES","devices":[{"class":"DEVICE","path":"/dev/ttyACM0","driver":"u-blox","activated":"2026-11-23T08:00:00.000Z","flags":1,"native":0,"bps":9600,"parity":"N","stopbits":1,"cycle":1.00}]}\n',
            );
            s.write(
              '{"class":"WATCH","enable":true,"json":true,"nmea":false,"raw":0,"scaled":false,"timing":false,"split24":false,"pps":false}\n',
            );
            (s as Socket & { watching?: boolean }).watching = true;
          }
        });
      });
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
  const stop = async () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  };
  return {
    start,
    stop,
    watches,
    end: async () => {
      clearInterval(timer);
      await stop();
    },
  };
}

/** A gateway with one gpsd device (options as YAML flow), gpsd its only time source; the uplink goes nowhere. */
const gatewayWithGpsd = (options: string) =>
  startGateway(
    {
      id: "gw-gpsd",
      logSection: true,
      time: "{ ntpServers: [], trustSystemClock: never }",
      devices: `{ id: gps, driver: gpsd, options: ${options} }`,
    },
    cleanup,
  );

describe("GPS through gpsd over TCP", () => {
  it(
    "positions reach the outbox, time syncs from gpsd's TPV, a gpsd restart is reconnected and watched again, bad lines are rejected, silence shows",
    { timeout: 30_000 },
    async () => {
      const port = await freePort();
      const server = fakeGpsd(port, { everyMs: 200, garbage: true });
      cleanup.push(() => server.end());
      await server.start();

      const { gw } = await gatewayWithGpsd(`{ port: ${port}, device: /dev/ttyACM0, throttle: false, silentAfterS: 1 }`);
      expect(gw.status().time).toMatchObject({ synced: false, src: "unsynced" });

      await waitFor(() => positions(gw).length >= 3, 8000, "positions from gpsd");
      expect(server.watches).toEqual(['?WATCH={"enable":true,"json":true,"device":"/dev/ttyACM0"};']);
      const first = positions(gw);
      for (const p of first) {
        expect(p.dev).toMatchObject({ id: "gps", driver: "gpsd", kind: "gps" });
        expect(p.body).toMatchObject({
          fix: "3d",
          altM: 50.2,
          speedMps: 11.1,
          courseDeg: 3.5,
          hdop: 0.8,
          sats: 9,
          lon: 116.1,
        });
        expect(p.time.devSkewMs).toBe(0);
      }
      // every TPV, in order, 200 ms apart (throttle off)
      const times = first.map((p) => Date.parse(p.t));
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThan(100);
      await waitFor(() => gw.status().time.src === "gps", 5000, "time from gpsd");
      expect(gw.status().time).toMatchObject({ synced: true, src: "gps" });
      expect(Math.abs(gw.status().time.offsetMs!)).toBeLessThan(300);
      // the garbage after each TPV is rejected, and the device stays connected
      await waitFor(() => (gw.devices.get("gps")?.rejected ?? 0) >= 2, 5000, "bad lines rejected");
      expect(gw.devices.get("gps")).toMatchObject({ state: "connected" });

      // gpsd restarts (systemctl restart gpsd): the connection drops, and comes back when gpsd does
      await server.stop();
      await waitFor(() => gw.devices.get("gps")?.state === "retrying", 5000, "the restart noticed");
      const before = positions(gw).length;
      const restartedAt = Date.now();
      await server.start();
      await waitFor(
        () => gw.devices.get("gps")?.state === "connected" && positions(gw).length > before,
        8000,
        "positions again after the restart",
      );
      expect(Date.now() - restartedAt).toBeLessThan(5000);
      expect(server.watches).toHaveLength(2); // WATCH sent again on the new connection

      // gpsd loses its receiver (it stays connected, but says nothing): silent after 1 s
      await server.end();
      const silent = fakeGpsd(port, { everyMs: 60_000 });
      cleanup.push(() => silent.end());
      await silent.start();
      await waitFor(() => gw.devices.get("gps")?.state === "silent", 8000, "silent");
      expect(gw.devices.get("gps")?.lastError?.code).toBe("VG_DEVICE_SILENT");
    },
  );
});
