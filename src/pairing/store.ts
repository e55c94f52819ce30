// The devices paired on the web page, kept in `<stateDir>/paired-devices.json`, apart from the
// IT-managed configuration file (DESIGN.md §7): config management never clobbers a technician's
// pairing, nor the reverse. The file is written whole and atomically (a temporary file in the same
// directory, fsynced, renamed over the old one, the directory fsynced), so a power cut leaves the
// old list or the new one, never half of either. It is checked on load with the config's own device
// schema; a file that does not pass (hand-edited, from a newer version, damaged) is set aside with
// the reason and the path of what is wrong, never deleted, and the box runs with its config devices.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { z } from "zod";
import { pairedDevicesFileSchema, type DriverLookup } from "../config/schema.ts";

export type PairedDevice = z.output<ReturnType<typeof pairedDevicesFileSchema>>["devices"][number];

export const PAIRED_FILE = "paired-devices.json";

export interface PairedLoad {
  devices: PairedDevice[];
  /** Where an unreadable file was moved to, and why it was unreadable. */
  setAside?: { path: string; reason: string };
}

/** The path of the paired-devices file in a state directory. */
export function pairedDevicesPath(stateDir: string): string {
  return join(stateDir, PAIRED_FILE);
}

/** The first problems of a failed parse, each as `devices[0].options.port: message`. */
function describeIssues(error: z.ZodError, most = 5): string {
  const at = (path: PropertyKey[]) =>
    path.reduce<string>((s, p) => (typeof p === "number" ? `${s}[${p}]` : s ? `${s}.${String(p)}` : String(p)), "");
  const shown = error.issues.slice(0, most).map((i) => `${at(i.path) || "(the file)"}: ${i.message}`);
  return shown.join("; ") + (error.issues.length > most ? ` (and ${error.issues.length - most} more)` : "");
}

/**
 * Reads the paired devices. A missing file is an empty list; an unreadable or invalid one is moved
 * aside (`paired-devices.json.bad-<ms>`) and reported, and the list is empty.
 */
export function loadPairedDevices(path: string, drivers: DriverLookup, nowMs: number): PairedLoad {
  if (!existsSync(path)) return { devices: [] };
  let reason: string;
  try {
    const raw = JSON.parse(readFileSync(path, "utf8")) as { devices: PairedDevice[] };
    const result = pairedDevicesFileSchema(drivers).safeParse(raw);
    // valid: the entries as written (options as the technician gave them; the driver's defaults
    // are filled each time the device starts, so a newer version's defaults apply)
    if (result.success) return { devices: raw.devices };
    reason = describeIssues(result.error);
  } catch (err) {
    // a half-written file (only possible if something other than saveDevices wrote it), or not JSON
    reason = `not readable as JSON: ${(err as Error).message}`;
  }
  const aside = `${path}.bad-${nowMs}`;
  renameSync(path, aside);
  return { devices: [], setAside: { path: aside, reason: `${basename(path)}: ${reason}` } };
}

/** Writes the list atomically (see the top of this file); throws when the disk refuses. */
export function savePairedDevices(path: string, devices: readonly PairedDevice[]): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, `${JSON.stringify({ version: 1, devices }, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  // the rename itself is durable only once the directory is
  const dirFd = openSync(dir, "r");
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
