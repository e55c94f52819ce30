// The serial ports the pairing page offers: those the kernel reports with a device (src/transports/serial-ports.ts,
// with their USB identities), and the paths the configuration adds (`pairing.serialPaths`: stable
// aliases, ports sysfs does not show, a test's PTY link), each marked with the device using it.
import { existsSync, globSync, realpathSync } from "node:fs";
import { listSerialPorts, type SerialPortInfo, type SysfsRoots, SYSTEM_ROOTS } from "../transports/serial-ports.ts";

export interface PairingPort extends SerialPortInfo {
  /** The device (config or paired) whose transport is this port. */
  usedBy?: string;
}

/** The file a path leads to (a by-id alias, a PTY link), or the path itself when it does not resolve. */
export function resolvePath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * The ports, the kernel's first. `inUse` maps a resolved port path to the device using it. A
 * configured path that leads to a port already listed is shown as that port's alias.
 */
export function pairingPorts(
  serialPaths: readonly string[],
  inUse: ReadonlyMap<string, string>,
  roots: SysfsRoots = SYSTEM_ROOTS,
): PairingPort[] {
  const ports: PairingPort[] = listSerialPorts(roots);
  const byTarget = new Map(ports.map((p) => [resolvePath(p.path), p]));
  for (const pattern of serialPaths) {
    const paths = /[*?[{]/.test(pattern) ? globSync(pattern).sort() : [pattern].filter((p) => existsSync(p));
    for (const path of paths) {
      const target = resolvePath(path);
      const known = byTarget.get(target);
      if (known) {
        if (known.path !== path) known.byId ??= path;
        continue;
      }
      const port: PairingPort = { path };
      ports.push(port);
      byTarget.set(target, port);
    }
  }
  for (const [target, port] of byTarget) {
    const user = inUse.get(target);
    if (user !== undefined) port.usedBy = user;
  }
  return ports;
}
