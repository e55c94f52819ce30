// `<stateDir>/vitalgate.pid`: the running daemon's pid, written at start and removed at a clean stop,
// so that what must not run beside it (`vitalgate restore`) can tell. A file left by a killed daemon
// names a process that is gone, or one that is not a vitalgate daemon: neither counts.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export function pidFilePath(stateDir: string): string {
  return join(stateDir, "vitalgate.pid");
}

export function writePidFile(stateDir: string, pid: number = process.pid): void {
  writeFileSync(pidFilePath(stateDir), `${pid}\n`, { mode: 0o600 });
}

/** Removes the file if it still names this process (a second daemon's file is left alone). */
export function removePidFile(stateDir: string, pid: number = process.pid): void {
  if (daemonPid(stateDir, () => true) === pid) rmSync(pidFilePath(stateDir), { force: true });
}

/** Whether `pid` is a vitalgate daemon: its command line has the CLI and `start`. */
function isDaemon(pid: number): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return argv.some((a) => /(?:cli\/main\.ts|vitalgate)$/.test(a)) && argv.includes("start");
  } catch {
    return false;
  }
}

/** The pid of the vitalgate daemon running on this state directory, or undefined. */
export function daemonPid(stateDir: string, running: (pid: number) => boolean = isDaemon): number | undefined {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFilePath(stateDir), "utf8").trim());
  } catch {
    return undefined;
  }
  return Number.isSafeInteger(pid) && pid > 0 && running(pid) ? pid : undefined;
}
