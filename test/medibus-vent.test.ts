// A Dräger ventilator on a "USB adapter" made of real pseudo-terminals (socat), played by the
// medibus-vent simulator (drivers/medibus-vent/simulator.ts: synthetic answers written from the MEDIBUS
// definition), read by an in-process gateway with the real medibus-vent driver and a real SQLite
// outbox: ICC, the poll, vitals and alarms in the outbox, an unplug and replug recovers, silence shows.
import { afterEach, describe, expect, it } from "vitest";
import type { AlarmBody, Observation } from "../src/events/model.ts";
import type { Gateway } from "../src/gateway.ts";
import { simulator as medibusSimulator } from "../drivers/medibus-vent/simulator.ts";
import { simulate } from "../src/cli/simulate.ts";
import { waitFor } from "./support/mqtt.ts";
import { hasSocat, nullModem } from "./support/pty.ts";
import { outboxEvents, startGateway } from "./support/rig.ts";

if (!hasSocat) console.warn("skipping the MEDIBUS serial test: socat is not installed (apt-get install socat)");

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const vitals = (gw: Gateway) => outboxEvents<{ observations: Observation[] }>(gw, "vitals");
const measured = (gw: Gateway) => vitals(gw).filter((v) => v.body.observations.every((o) => o.status !== "setting"));
const alarms = (gw: Gateway) => outboxEvents<AlarmBody>(gw, "alarm").filter((a) => a.dev.id === "vent");

/** A gateway with one ventilator (options as YAML flow); the uplink goes nowhere, so events stay in the outbox. */
const gatewayWithVentilator = (options: string) =>
  startGateway(
    {
      id: "gw-vent",
      logSection: true,
      time: "{ ntpServers: [], trustSystemClock: always }",
      devices: `{ id: vent, driver: medibus-vent, options: ${options} }`,
    },
    cleanup,
  );

function ventilator(o: {
  path?: string;
  tcpPort?: number;
  onListening?: (port: number) => void;
  alarmCycleMs?: number;
}) {
  const stop = new AbortController();
  const commands: string[] = [];
  const { alarmCycleMs, ...place } = o;
  const done = simulate(medibusSimulator, place, { alarmCycleMs, onCommand: (c) => commands.push(c) }, stop.signal);
  const halt = async () => {
    stop.abort();
    await done;
  };
  cleanup.push(halt);
  return { commands, halt };
}

describe.skipIf(!hasSocat)("Dräger ventilator (MEDIBUS) over a real PTY", () => {
  it(
    "ICC first, its answers become vitals and alarms in the outbox, a replug recovers within 5 s, a silent ventilator shows as silent",
    { timeout: 45_000 },
    async () => {
      const cable = nullModem();
      await cable.plugIn();
      cleanup.push(() => cable.unplug());
      const sim = ventilator({ path: cable.devicePath, alarmCycleMs: 3000 });
      const { gw } = await gatewayWithVentilator(
        `{ port: "${cable.gatewayPath}", pollS: 1, alarmsEveryS: 1, settingsEveryS: 2, silentAfterS: 2 }`,
      );

      await waitFor(() => measured(gw).length >= 3, 10_000, "measured data in the outbox");
      expect(sim.commands[0]).toBe("ICC");
      expect(sim.commands).toEqual(expect.arrayContaining(["device id", "measured data", "settings", "alarms"]));
      const v = measured(gw)[0]!;
      expect(v.dev).toMatchObject({ id: "vent", driver: "medibus-vent", kind: "ventilator", model: "SimVent" });
      const codes = Object.fromEntries(v.body.observations.map((o) => [o.code, o]));
      expect(codes.MDC_VOL_AWAY_TIDAL).toMatchObject({ mdc: 151868, value: 480, unit: "mL" });
      expect(codes.MDC_RESP_RATE).toMatchObject({ value: 14, unit: "/min" });
      expect(codes.MDC_VENT_PRESS_AWAY_END_EXP_POS).toMatchObject({ value: 5, unit: "cm[H2O]" });
      await waitFor(
        () => vitals(gw).some((x) => x.body.observations.some((o) => o.status === "setting")),
        5000,
        "settings in the outbox",
      );
      // the synthetic "Paw high" alarm comes and goes every 1.5 s
      await waitFor(
        () => alarms(gw).some((a) => a.body.state === "active") && alarms(gw).some((a) => a.body.state === "inactive"),
        8000,
        "an alarm raised and cleared",
      );
      expect(alarms(gw).find((a) => a.body.state === "active")!.body).toMatchObject({
        code: "MEDIBUS:CP1:10",
        priority: "25",
        text: "Paw high",
      });

      // Unplug the adapter mid-stream, plug it back in: the gateway reopens and starts again with ICC.
      await cable.unplug();
      await waitFor(() => gw.devices.get("vent")?.state === "retrying", 5000, "the unplug noticed");
      const before = measured(gw).length;
      const iccs = sim.commands.filter((c) => c === "ICC").length;
      const pluggedAt = Date.now();
      await cable.plugIn();
      await waitFor(
        () => gw.devices.get("vent")?.state === "connected" && measured(gw).length > before,
        5000,
        "vitals again after the replug",
      );
      expect(Date.now() - pluggedAt).toBeLessThan(5000);
      expect(sim.commands.filter((c) => c === "ICC").length).toBeGreaterThan(iccs);

      // The ventilator stops answering (switched off): silent after 2 s, and the device's error says why.
      await sim.halt();
      await waitFor(() => gw.devices.get("vent")?.state === "silent", 6000, "silent");
      expect(gw.devices.get("vent")?.lastError?.code).toBe("VG_DEVICE_SILENT");
      expect(gw.devices.get("vent")).toMatchObject({ rejected: 0 });
    },
  );
});

describe("Dräger ventilator behind a serial server", () => {
  it("initialises and polls a ventilator over TCP, the simulator playing the server", { timeout: 20_000 }, async () => {
    let listening!: (port: number) => void;
    const port = new Promise<number>((resolve) => (listening = resolve));
    const sim = ventilator({ tcpPort: 0, onListening: listening });
    const { gw } = await gatewayWithVentilator(`{ transport: tcp, host: 127.0.0.1, tcpPort: ${await port}, pollS: 1 }`);
    await waitFor(() => measured(gw).length >= 2, 8000, "vitals from the serial server");
    expect(sim.commands[0]).toBe("ICC");
    expect(gw.devices.get("vent")).toMatchObject({ state: "connected", rejected: 0, model: "SimVent" });
  });
});
