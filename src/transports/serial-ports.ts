// Serial port discovery from sysfs, for `vitalgate ports`, the pairing page and finding a replugged
// USB adapter by its identity. serialport's own list() shells out to udevadm, which a minimal box
// may lack (and then throws outside any promise); sysfs is always there and needs no process.
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { SerialPort } from "serialport";
import type { SerialSettings } from "../devices/driver.ts";

/** A serial line's settings, without where the port is. */
export type LineSettings = Omit<SerialSettings, "path" | "match">;

/** serialport and its native binding, loaded on first use: a box with no serial device never pays for them. */
let serialport: Promise<typeof import("serialport")> | undefined;

/**
 * Opens a serial port exclusively (a second program on the same port would steal bytes), as the
 * transports and the pairing probe do. Errors after the open surface as the port's "close".
 */
export async function openSerialPort(path: string, s: LineSettings): Promise<SerialPort> {
  const { SerialPort } = await (serialport ??= import("serialport"));
  const port = new SerialPort({
    path,
    baudRate: s.baudRate,
    dataBits: s.dataBits,
    parity: s.parity,
    stopBits: s.stopBits,
    rtscts: s.rtscts,
    xon: s.xonxoff,
    xoff: s.xonxoff,
    lock: true,
    autoOpen: false,
  });
  port.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  return port;
}

export interface SerialPortInfo {
  /** Kernel device path, e.g. /dev/ttyUSB0. */
  path: string;
  /** The stable alias udev made for it, e.g. /dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0. */
  byId?: string;
  /** USB identity, when the port is on a USB adapter (hex as lsusb prints it). */
  vendorId?: string;
  productId?: string;
  serialNumber?: string;
  manufacturer?: string;
  product?: string;
  /** Kernel driver: ftdi_sio, pl2303, cp210x, ch341, cdc_acm, serial8250, ... */
  driver?: string;
}

export interface SysfsRoots {
  /** Where /sys is (tests use a fake tree). */
  sys: string;
  /** Where /dev is. */
  dev: string;
}

/** The real /sys and /dev. */
export const SYSTEM_ROOTS: SysfsRoots = { sys: "/sys", dev: "/dev" };

/** A sysfs attribute's text, trimmed; undefined when absent or empty. */
export function readSysfs(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Serial ports backed by a device (virtual consoles and PTYs have none), with their USB identity
 * found by walking up from the tty's device to the USB device that has idVendor.
 */
export function listSerialPorts(roots: SysfsRoots = SYSTEM_ROOTS): SerialPortInfo[] {
  const classDir = join(roots.sys, "class/tty");
  if (!existsSync(classDir)) return [];
  const byId = new Map<string, string>();
  const byIdDir = join(roots.dev, "serial/by-id");
  if (existsSync(byIdDir)) {
    for (const alias of readdirSync(byIdDir)) {
      try {
        byId.set(basename(readlinkSync(join(byIdDir, alias))), join(byIdDir, alias));
      } catch {
        // a dangling alias: the adapter is gone
      }
    }
  }
  const ports: SerialPortInfo[] = [];
  for (const name of readdirSync(classDir).sort()) {
    const deviceLink = join(classDir, name, "device");
    if (!existsSync(deviceLink)) continue;
    let device: string;
    try {
      device = realpathSync(deviceLink);
    } catch {
      continue;
    }
    const driverLink = join(device, "driver");
    const driver = existsSync(driverLink) ? basename(realpathSync(driverLink)) : undefined;
    // Legacy 8250 UARTs are listed whether or not hardware is there; only those with a port type are real.
    if (driver === "serial8250" && (readSysfs(join(classDir, name, "type")) ?? "0") === "0") continue;
    const info: SerialPortInfo = { path: join(roots.dev, name), byId: byId.get(name), driver };
    for (let dir = device; dir.startsWith(roots.sys) && dir !== roots.sys; dir = dirname(dir)) {
      const vendorId = readSysfs(join(dir, "idVendor"));
      if (vendorId) {
        Object.assign(info, {
          vendorId,
          productId: readSysfs(join(dir, "idProduct")),
          serialNumber: readSysfs(join(dir, "serial")),
          manufacturer: readSysfs(join(dir, "manufacturer")),
          product: readSysfs(join(dir, "product")),
        });
        break;
      }
    }
    ports.push(info);
  }
  return ports;
}

/** The port whose USB identity matches every given field, if exactly one does. */
export function findSerialPort(
  match: { vendorId?: string; productId?: string; serialNumber?: string },
  roots: SysfsRoots = SYSTEM_ROOTS,
): SerialPortInfo | undefined {
  const same = (a: string | undefined, b: string | undefined) =>
    b === undefined || a?.toLowerCase() === b.toLowerCase();
  const hits = listSerialPorts(roots).filter(
    (p) =>
      p.vendorId &&
      same(p.vendorId, match.vendorId) &&
      same(p.productId, match.productId) &&
      same(p.serialNumber, match.serialNumber),
  );
  return hits.length === 1 ? hits[0] : undefined;
}
