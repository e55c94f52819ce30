// A GE S/5 monitor on a "USB adapter" made of real pseudo-terminals (socat), played by the datex-s5
// simulator (drivers/datex-s5/simulator.ts: the shared capture replayed, or synthetic records without it), read by
// an in-process gateway with the real datex-s5 driver and a real SQLite outbox: the gateway asks,
// the monitor answers, vitals reach the outbox, an unplug and replug recovers, silence shows.
import { afterEach, describe, expect, it } from "vitest";
import type { Observation } from "../src/events/model.ts";
import type { Gateway } from "../src/gateway.ts";
import { simulator as datexSimulator } from "../drivers/datex-s5/simulator.ts";
import { simulate } from "../src/cli/simulate.ts";
import { readBytes, sharedDir } from "./fixtures/serial/load.ts";
import { waitFor } from "./support/mqtt.ts";
import { hasSocat, nullModem } from "./support/pty.ts";
import { outboxEvents, startGateway } from "./support/rig.ts";

if (!hasSocat) console.warn("skipping the S/5 serial test: socat is not installed (apt-get install socat)");
const S5 = sharedDir("datex-s5", "S/5 gateway test (synthetic records instead)");

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const events = (gw: Gateway, kind: string) => outboxEvents<{ observations: Observation[] }>(gw, kind);

/** A gateway with one S/5 (options as YAML flow); the uplink goes nowhere, so events stay in the outbox. */
const gatewayWithMonitor = (options: string) =>
  startGateway(
    {
      id: "gw-s5",
      logSection: true,
      time: "{ ntpServers: [], trustSystemClock: always }",
      devices: `{ id: s5, driver: datex-s5, options: ${options} }`,
    },
    cleanup,
  );

function monitor(o: { path?: string; tcpPort?: number; onListening?: (port: number) => void }) {
  const stop = new AbortController();
  const requests: string[] = [];
  const done = simulate(
    datexSimulator,
    o,
    { capture: S5 ? readBytes(S5, "pycollect_db02.raw") : undefined, onRequest: (r) => requests.push(r) },
    stop.signal,
  );
  const halt = async () => {
    stop.abort();
    await done;
  };
  cleanup.push(halt);
  return { requests, halt };
}

describe.skipIf(!hasSocat)("S/5 monitor over a real PTY", () => {
  it(
    "asked on connecting, its records become vitals in the outbox, a replug recovers within 5 s, a silent monitor shows as silent",
    { timeout: 45_000 },
    async () => {
      const cable = nullModem();
      await cable.plugIn();
      cleanup.push(() => cable.unplug());
      const sim = monitor({ path: cable.devicePath });
      const { gw } = await gatewayWithMonitor(
        `{ port: "${cable.gatewayPath}", intervalS: 1, waveforms: [PLETH], silentAfterS: 2 }`,
      );

      await waitFor(() => events(gw, "vitals").length >= 3, 10_000, "vitals in the outbox");
      expect(sim.requests).toContain("phdb 1 s");
      expect(sim.requests).toContain("wave 8");
      const v = events(gw, "vitals")[0]!;
      expect(v.dev).toMatchObject({ id: "s5", driver: "datex-s5", kind: "monitor" });
      const codes = Object.fromEntries(v.body.observations.map((o) => [o.code, o]));
      expect(codes.MDC_PULS_OXIM_SAT_O2).toMatchObject({ mdc: 150456, unit: "%" });
      expect(codes.MDC_ECG_HEART_RATE).toMatchObject({ mdc: 147842, value: S5 ? 80 : 72 });
      expect(v.time.dev).toMatch(/^\d+$/); // r_time as sent
      await waitFor(() => events(gw, "waveform").length >= 1, 5000, "a pleth waveform");

      // Unplug the adapter mid-stream (the monitor keeps its schedule into the void), plug it back in.
      await cable.unplug();
      await waitFor(() => gw.devices.get("s5")?.state === "retrying", 5000, "the unplug noticed");
      const before = events(gw, "vitals").length;
      const pluggedAt = Date.now();
      await cable.plugIn();
      await waitFor(
        () => gw.devices.get("s5")?.state === "connected" && events(gw, "vitals").length > before,
        5000,
        "vitals again after the replug",
      );
      expect(Date.now() - pluggedAt).toBeLessThan(5000);

      // The monitor stops (switched off): silent after 2 s, and the device's error says why.
      await sim.halt();
      await waitFor(() => gw.devices.get("s5")?.state === "silent", 6000, "silent");
      expect(gw.devices.get("s5")?.lastError?.code).toBe("VG_DEVICE_SILENT");
      expect(gw.devices.get("s5")).toMatchObject({ rejected: 0 });
    },
  );
});

describe("S/5 monitor behind a serial server", () => {
  it("asks and reads a monitor over TCP, the simulator playing the server", { timeout: 20_000 }, async () => {
    let listening!: (port: number) => void;
    const port = new Promise<number>((resolve) => (listening = resolve));
    const sim = monitor({ tcpPort: 0, onListening: listening });
    const { gw } = await gatewayWithMonitor(
      `{ transport: tcp, host: 127.0.0.1, tcpPort: ${await port}, intervalS: 1 }`,
    );
    await waitFor(() => events(gw, "vitals").length >= 2, 8000, "vitals from the serial server");
    expect(sim.requests[0]).toBe("phdb 1 s");
    expect(events(gw, "waveform")).toHaveLength(0); // none asked for
    expect(gw.devices.get("s5")).toMatchObject({ state: "connected", rejected: 0 });
  });
});
