// A null-modem cable made of two pseudo-terminals (socat): the gateway opens one end as its serial
// port, the test plays the device on the other. Killing socat is an unplugged USB adapter.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SerialPort } from "serialport";
import { waitFor } from "./mqtt.ts";

export const hasSocat = spawnSync("socat", ["-V"]).error === undefined;

export interface NullModem {
  /** The gateway's end. */
  gatewayPath: string;
  /** The device's end. */
  devicePath: string;
  plugIn(): Promise<void>;
  unplug(): Promise<void>;
}

export function nullModem(): NullModem {
  const dir = mkdtempSync(join(tmpdir(), "vg-pty-"));
  const gatewayPath = join(dir, "gateway-tty");
  const devicePath = join(dir, "device-tty");
  let socat: ChildProcess | null = null;
  return {
    gatewayPath,
    devicePath,
    async plugIn() {
      socat = spawn("socat", [`pty,raw,echo=0,link=${gatewayPath}`, `pty,raw,echo=0,link=${devicePath}`], {
        stdio: "ignore",
      });
      await waitFor(() => existsSync(gatewayPath) && existsSync(devicePath), 5000, "socat's PTYs");
    },
    async unplug() {
      const s = socat;
      socat = null;
      if (!s || s.exitCode !== null) return;
      s.kill("SIGKILL");
      await new Promise((r) => s.once("exit", r));
      await waitFor(() => !existsSync(gatewayPath), 5000, "the PTY links to go");
    },
  };
}

/** The device's side of the cable: writes lines, collects what the gateway answers. */
export async function openDeviceEnd(
  path: string,
): Promise<{ port: SerialPort; replies: string[]; send(line: string): void; close(): Promise<void> }> {
  const port = new SerialPort({ path, baudRate: 9600, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  port.on("error", () => undefined);
  const replies: string[] = [];
  let buf = "";
  port.on("data", (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split("\n");
    buf = parts.pop()!;
    replies.push(...parts);
  });
  return {
    port,
    replies,
    send: (line) => void port.write(`${line}\n`),
    close: () => new Promise((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())),
  };
}
