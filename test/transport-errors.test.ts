// Transport failures reach the device supervisor as coded errors (src/transports/transport-errors.ts),
// so that a device's status tells what is wrong and whether a person must act: over real PTYs
// (socat) and real TCP. A port without permission is tried as a user other than root (root opens
// any port whatever its mode).
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { DeviceStatus } from "../src/devices/device-manager.ts";
import { openSerialPort } from "../src/transports/serial-ports.ts";
import { waitFor } from "./support/mqtt.ts";
import { ROOT, freePort, stopProcess } from "./support/processes.ts";
import { hasSocat, nullModem } from "./support/pty.ts";
import { fileDriver } from "./support/file-driver.ts";
import { superviseDevice } from "./support/supervised-device.ts";

if (!hasSocat) console.warn("skipping the serial cases of transport-errors: socat is not installed");

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

function device(options: Record<string, unknown>, driver?: Parameters<typeof superviseDevice>[2]) {
  const d = superviseDevice(options, undefined, driver);
  cleanup.push(() => d.stop());
  return d;
}

/** Retrying, the last error saying why. */
const failing = (d: ReturnType<typeof device>, code: string) =>
  d.status()?.state === "retrying" && d.status()?.lastError?.code === code;

const LINE = { baudRate: 9600, dataBits: 8, parity: "none", stopBits: 1, rtscts: false, xonxoff: false } as const;

async function pluggedCable() {
  const cable = nullModem();
  await cable.plugIn();
  cleanup.push(() => cable.unplug());
  return cable;
}

describe.skipIf(!hasSocat)("serial port failures, over real PTYs", () => {
  it("a port the gateway's user may not open is VG_SERIAL_PERMISSION (a person acts), and opens once allowed", async () => {
    const cable = await pluggedCable();
    // The PTY itself (/dev/pts/N), which anyone may reach: its mode alone decides.
    const tty = realpathSync(cable.gatewayPath);
    chmodSync(tty, 0o000);
    // As nobody when the tests run as root; as the tests' own user (who may not open a mode 000 port) otherwise.
    const node = [process.execPath, join(ROOT, "test/support/supervised-device.ts")];
    const asNobody = process.getuid?.() === 0 ? ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] : [];
    const [command, ...args] = [...asNobody, ...node, JSON.stringify({ mode: "serial", path: tty })];
    const child = spawn(command!, args, { stdio: ["ignore", "pipe", "inherit"] });
    cleanup.push(() => stopProcess(child));
    let last: DeviceStatus | undefined;
    let buffered = "";
    child.stdout.on("data", (d: Buffer) => {
      const lines = (buffered + d.toString()).split("\n");
      buffered = lines.pop()!;
      for (const l of lines) last = JSON.parse(l) as DeviceStatus;
    });
    await waitFor(() => last?.lastError?.code === "VG_SERIAL_PERMISSION", 10_000, "the permission refused");
    expect(last?.lastError?.next).toBe("operator");
    expect(last!.lastError!.message).toMatch(/Permission denied/);

    chmodSync(tty, 0o666); // what the udev rule or the dialout group gives
    await waitFor(() => last?.state === "connected", 5000, "opened once allowed");
  });

  it("an adapter that disappears is VG_SERIAL_MISSING (the gateway waits for it), and reconnects by itself", async () => {
    const cable = await pluggedCable();
    const d = device({ mode: "serial", path: cable.gatewayPath });
    await waitFor(() => d.status()?.state === "connected", 5000, "the port open");
    await cable.unplug();
    await waitFor(() => failing(d, "VG_SERIAL_MISSING"), 5000, "the unplug");
    expect(d.status()?.lastError?.next).toBe("retry");
    await cable.plugIn();
    await waitFor(() => d.status()?.state === "connected", 5000, "reopened after the replug");
  });

  it("a port another program holds is VG_SERIAL_BUSY (a person acts)", async () => {
    const cable = await pluggedCable();
    const holder = await openSerialPort(cable.gatewayPath, LINE);
    const d = device({ mode: "serial", path: cable.gatewayPath });
    await waitFor(() => failing(d, "VG_SERIAL_BUSY"), 5000, "the port found locked");
    expect(d.status()?.lastError?.next).toBe("operator");
    await new Promise((r) => holder.close(r));
    await waitFor(() => d.status()?.state === "connected", 5000, "opened once released");
  });
});

describe("TCP failures", () => {
  it("a connection to a closed port is VG_TCP_REFUSED (retried), and connects once the device listens", async () => {
    const port = await freePort();
    const d = device({ mode: "connect", host: "127.0.0.1", port });
    await waitFor(() => failing(d, "VG_TCP_REFUSED"), 5000, "the refusal");
    expect(d.status()?.lastError?.next).toBe("retry");
    expect(d.status()!.lastError!.message).toContain(`127.0.0.1:${port}`);
    const sockets: Socket[] = [];
    const server = createServer((s) => void sockets.push(s.on("error", () => undefined)));
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    cleanup.push(() => {
      const closed = new Promise((r) => server.close(r));
      for (const s of sockets) s.destroy();
      return closed;
    });
    await waitFor(() => d.status()?.state === "connected", 5000, "connected once the device listens");
  });

  it("a host name that does not resolve is VG_TCP_DNS (a person acts)", async () => {
    const d = device({ mode: "connect", host: "monitor.invalid", port: 2575 });
    await waitFor(() => failing(d, "VG_TCP_DNS"), 10_000, "the failed lookup");
    expect(d.status()?.lastError?.next).toBe("operator");
  });

  it("a listening port another program holds is VG_LISTEN_PORT_TAKEN, and listens once it is freed", async () => {
    const taken: Server = createServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r));
    const port = (taken.address() as { port: number }).port;
    const d = device({ mode: "listen", host: "127.0.0.1", port });
    await waitFor(() => failing(d, "VG_LISTEN_PORT_TAKEN"), 5000, "the port found taken");
    expect(d.status()?.lastError?.next).toBe("operator");
    await new Promise((r) => taken.close(r));
    await waitFor(() => d.status()?.state === "listening", 5000, "listening once freed");
  });
});

describe("watched folder failures", () => {
  it("a folder that cannot be made is VG_FOLDER_UNUSABLE (a person acts), and is watched once it can be", async () => {
    const base = mkdtempSync(join(tmpdir(), "vg-folder-"));
    cleanup.push(() => rmSync(base, { recursive: true, force: true }));
    writeFileSync(join(base, "share"), "a file where the share should be mounted");
    const dir = join(base, "share/inbox");
    const d = device({ dir, scanMs: 50 }, fileDriver as never);
    await waitFor(() => failing(d, "VG_FOLDER_UNUSABLE"), 5000, "the folder refused");
    expect(d.status()?.lastError).toMatchObject({ next: "operator", message: expect.stringContaining("ENOTDIR") });
    rmSync(join(base, "share"));
    await waitFor(() => d.status()?.state === "listening", 5000, "watched once it can be made");
  });
});
