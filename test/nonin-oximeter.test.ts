// A Nonin pulse oximeter on a "USB adapter" made of real pseudo-terminals (socat), played by its
// simulator (drivers/nonin-oximeter/simulator.ts: synthetic readings), read by an in-process gateway
// with the nonin-oximeter driver and a real SQLite outbox: readings become vitals, an unplug and
// replug recovers, an oximeter that stops shows as silent. And the same over a serial server on TCP.
import { afterEach, describe, expect, it } from "vitest";
import { simulator as oximeterSimulator } from "../drivers/nonin-oximeter/simulator.ts";
import type { Observation } from "../src/events/model.ts";
import type { Gateway } from "../src/gateway.ts";
import { simulate } from "../src/cli/simulate.ts";
import { waitFor } from "./support/mqtt.ts";
import { hasSocat, nullModem } from "./support/pty.ts";
import { outboxEvents, startGateway } from "./support/rig.ts";

if (!hasSocat) console.warn("skipping the oximeter serial test: socat is not installed (apt-get install socat)");

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const vitals = (gw: Gateway) => outboxEvents<{ observations: Observation[] }>(gw, "vitals");

const gatewayWithOximeter = (options: string) =>
  startGateway(
    {
      id: "gw-spo2",
      time: "{ ntpServers: [], trustSystemClock: always }",
      devices: `{ id: spo2, driver: nonin-oximeter, options: ${options} }`,
    },
    cleanup,
  );

/** The simulator printing a reading every 100 ms (the real one: every second) until halted. */
function oximeter(place: { path?: string; tcpPort?: number; onListening?: (port: number) => void }) {
  const stop = new AbortController();
  const { options } = oximeterSimulator.fromFlags({ intervalMs: 100, nowMs: Date.now() }, { out() {}, err() {} });
  const done = simulate(oximeterSimulator, place, options, stop.signal);
  const halt = async () => {
    stop.abort();
    return done;
  };
  cleanup.push(halt);
  return { halt };
}

describe.skipIf(!hasSocat)("Nonin pulse oximeter over a real PTY", () => {
  it(
    "its readings become vitals in the outbox, a replug recovers within 5 s, an oximeter that stops shows as silent",
    { timeout: 30_000 },
    async () => {
      const cable = nullModem();
      await cable.plugIn();
      cleanup.push(() => cable.unplug());
      const sim = oximeter({ path: cable.devicePath });
      const { gw } = await gatewayWithOximeter(`{ port: "${cable.gatewayPath}", silentAfterS: 2 }`);

      await waitFor(() => vitals(gw).length >= 3, 10_000, "vitals in the outbox");
      const v = vitals(gw)[0]!;
      expect(v.dev).toMatchObject({ id: "spo2", driver: "nonin-oximeter", kind: "monitor" });
      expect(v.body.observations).toEqual([
        { code: "MDC_PULS_OXIM_SAT_O2", mdc: 150456, value: expect.any(Number), unit: "%" },
        { code: "MDC_PULS_OXIM_PULS_RATE", mdc: 149530, value: expect.any(Number), unit: "/min" },
      ]);

      await cable.unplug();
      await waitFor(() => gw.devices.get("spo2")?.state === "retrying", 5000, "the unplug noticed");
      const before = vitals(gw).length;
      const pluggedAt = Date.now();
      await cable.plugIn();
      await waitFor(() => vitals(gw).length > before, 5000, "vitals again after the replug");
      expect(Date.now() - pluggedAt).toBeLessThan(5000);

      expect(await sim.halt()).toBeGreaterThan(before);
      await waitFor(() => gw.devices.get("spo2")?.state === "silent", 6000, "silent");
      expect(gw.devices.get("spo2")).toMatchObject({ rejected: 0 });
    },
  );
});

describe("Nonin pulse oximeter behind a serial server", () => {
  it("reads the oximeter over TCP, the simulator playing the server", { timeout: 20_000 }, async () => {
    let listening!: (port: number) => void;
    const port = new Promise<number>((resolve) => (listening = resolve));
    oximeter({ tcpPort: 0, onListening: listening });
    const { gw } = await gatewayWithOximeter(`{ transport: tcp, host: 127.0.0.1, tcpPort: ${await port} }`);
    await waitFor(() => vitals(gw).length >= 2, 8000, "vitals from the serial server");
    expect(gw.devices.get("spo2")).toMatchObject({ state: "connected", rejected: 0 });
  });
});
