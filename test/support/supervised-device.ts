// One device under the real supervisor (DeviceManager) and transports, with a test driver (the line
// driver unless told): in the test's process (`superviseDevice`), or run as a script in a process of its own (to run as
// another user than root, who may open any port whatever its mode), printing each status change as
// a JSON line: `node test/support/supervised-device.ts '<test-line options as JSON>'`.
import { DeviceManager, type DeviceStatus } from "../../src/devices/device-manager.ts";
import type { DriverDefinition } from "../../src/devices/driver.ts";
import { createLogger } from "../../src/log.ts";
import { lineDriver } from "./line-driver.ts";

/** Quick retries (50 ms up to 200 ms): a test sees the next attempt at once, with no sleeps. */
const TRANSPORT = { backoff: { initialMs: 50, maxMs: 200 }, idleMs: 0, maxConnections: 8, maxPerAddress: 8 };

export function superviseDevice(
  options: Record<string, unknown>,
  onChange?: (s: DeviceStatus) => void,
  driver: DriverDefinition<never> = lineDriver as never,
) {
  const devices = new DeviceManager({
    ingest: async () => [],
    findDriver: (id) => (id === driver.id ? (driver as never) : undefined),
    log: createLogger({ level: "silent", pretty: false }),
    nowMs: Date.now,
    monoMs: () => performance.now(),
    transport: TRANSPORT,
  });
  if (onChange) devices.on("change", (s) => onChange(structuredClone(s)));
  void devices.apply([{ id: "dev", driver: driver.id, enabled: true, options }]);
  return { status: () => devices.get("dev"), stop: () => devices.stop() };
}

if (import.meta.main) {
  const device = superviseDevice(JSON.parse(process.argv[2]!) as Record<string, unknown>, (s) =>
    process.stdout.write(JSON.stringify(s) + "\n"),
  );
  process.once("SIGTERM", () => void device.stop().then(() => process.exit(0)));
}
