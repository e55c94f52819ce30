// The serial transport over real pseudo-terminals (socat): a device on a "USB adapter" that is
// unplugged and plugged back in, and a device that goes quiet.
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { lineDriver } from "./support/line-driver.ts";
import { waitFor } from "./support/mqtt.ts";
import { hasSocat, nullModem, openDeviceEnd } from "./support/pty.ts";
import { startGateway } from "./support/rig.ts";

if (!hasSocat) console.warn("skipping serial tests: socat is not installed (apt-get install socat)");

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const findDriver = (id: string) => (id === lineDriver.id ? lineDriver : undefined) as never;

async function gatewayWithSerialDevice(path: string, silentAfterMs: number) {
  const { gw, log } = await startGateway(
    {
      id: "gw-serial",
      uplink: "embedded",
      drivers: findDriver,
      devices: `{ id: analyzer, driver: test-line, options: { mode: serial, path: "${path}", silentAfterMs: ${silentAfterMs} } }`,
    },
    cleanup,
  );
  return { gw, logs: log.raw };
}

describe.skipIf(!hasSocat)("serial devices over real PTYs", () => {
  it(
    "reads a serial device, recovers within 5 s of a replug with nothing acknowledged lost, and flags silence",
    { timeout: 30_000 },
    async () => {
      const cable = nullModem();
      await cable.plugIn();
      cleanup.push(() => cable.unplug());
      const { gw, logs } = await gatewayWithSerialDevice(cable.gatewayPath, 400);
      await waitFor(() => gw.devices.get("analyzer")?.state === "connected", 5000, "the port open");
      let device = await openDeviceEnd(cable.devicePath);
      device.send("v 71");
      await waitFor(() => device.replies.includes("OK 71"), 5000, "the first acknowledgement");

      // Quiet for longer than the driver allows: the device shows as silent, then recovers on data.
      await waitFor(() => gw.devices.get("analyzer")?.state === "silent", 5000, "silent");
      expect(gw.devices.get("analyzer")?.lastError?.code).toBe("VG_DEVICE_SILENT");
      device.send("v 72");
      await waitFor(
        () => device.replies.includes("OK 72") && gw.devices.get("analyzer")?.state === "connected",
        5000,
        "speaking again",
      );

      // Unplug the adapter mid-stream, plug it back in.
      await device.close();
      await cable.unplug();
      await waitFor(() => gw.devices.get("analyzer")?.state === "retrying", 5000, "the unplug noticed");
      const pluggedAt = Date.now();
      await cable.plugIn();
      await waitFor(() => gw.devices.get("analyzer")?.state === "connected", 5000, "reopened after the replug");
      device = await openDeviceEnd(cable.devicePath);
      cleanup.push(() => device.close());
      device.send("v 73");
      await waitFor(() => device.replies.includes("OK 73"), 5000, "acknowledged after the replug");
      expect(Date.now() - pluggedAt).toBeLessThan(5000);

      // Everything acknowledged is in the outbox (delivered or not).
      const db = new Database(gw.config.store.path, { readonly: true });
      const values = db
        .prepare("SELECT payload FROM events")
        .pluck()
        .all()
        .map((p) => JSON.parse(p as string).body.observations[0].value);
      db.close();
      expect(values).toEqual([71, 72, 73]);
      expect(logs.some((l) => l.includes("VG_SERIAL_MISSING"))).toBe(true);
    },
  );
});
