// Pulse-per-second sources the kernel offers (Documentation/driver-api/pps.rst): each is a
// /dev/ppsN character device with a /sys/class/pps/ppsN directory saying what drives it (`name`:
// "pps-gpio.-1" for a GPIO pin, "serial0"/"usbserial0" for a serial port's DCD line under the PPS
// line discipline, "ktimer" for the kernel's test generator; `path`: the serial device, if any).
//
// Only their presence is noted here, for status. Reading the pulses means the RFC 2783 PPS API
// (time_pps_fetch, an ioctl on /dev/ppsN), which Node cannot call without a native addon; a reader
// that does hands each edge to TimeService.gpsPps(monoMs). See docs/time.md and decision 0006.
import { readdirSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { readSysfs, SYSTEM_ROOTS, type SysfsRoots } from "../transports/serial-ports.ts";

export interface PpsDevice {
  /** The character device, e.g. /dev/pps0. */
  device: string;
  /** What drives it, as the kernel names it (sysfs `name`). */
  name?: string;
  /** The serial line it is attached to, when it is the PPS line discipline on a serial port's DCD (sysfs `path`). */
  path?: string;
}

export interface PpsPresence {
  /** A PPS source is there: the configured `time.ppsDevice`, or with none configured, any. */
  present: boolean;
  /** `time.ppsDevice` as configured, or null. */
  device: string | null;
  /** Every PPS source the kernel offers. */
  devices: PpsDevice[];
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** A /dev path in the (possibly fake) tree. */
function inTree(path: string, roots: SysfsRoots): string {
  return path.startsWith("/dev/") ? join(roots.dev, path.slice(5)) : path;
}

/** The kernel's PPS sources, from /sys/class/pps and /dev/pps*, sorted by number. */
export function listPpsDevices(roots: SysfsRoots = SYSTEM_ROOTS): PpsDevice[] {
  const found = new Map<string, PpsDevice>();
  for (const entry of list(join(roots.sys, "class/pps"))) {
    if (!/^pps\d+$/.test(entry)) continue;
    const dir = join(roots.sys, "class/pps", entry);
    found.set(entry, {
      device: `/dev/${entry}`,
      name: readSysfs(join(dir, "name")),
      path: readSysfs(join(dir, "path")),
    });
  }
  // /dev nodes without sysfs (a container given the device, sysfs not mounted).
  for (const entry of list(roots.dev))
    if (/^pps\d+$/.test(entry) && !found.has(entry)) found.set(entry, { device: `/dev/${entry}` });
  return [...found.entries()].sort(([a], [b]) => Number(a.slice(3)) - Number(b.slice(3))).map(([, d]) => d);
}

/**
 * Which PPS sources there are, and whether the configured one (`time.ppsDevice`, which may be a
 * udev alias such as /dev/gps0pps) exists and is a PPS device.
 */
export function detectPps(configured: string | undefined, roots: SysfsRoots = SYSTEM_ROOTS): PpsPresence {
  const devices = listPpsDevices(roots);
  if (configured === undefined) return { present: devices.length > 0, device: null, devices };
  let present: boolean;
  try {
    present = /\/pps\d+$/.test(realpathSync(inTree(configured, roots)));
  } catch {
    present = false; // not there
  }
  return { present, device: configured, devices };
}
