// A real full disk for a test: a small tmpfs mounted on a fresh directory (needs root, as CI runs).
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Whether a tmpfs can be mounted here; says on the console which test is skipped when not. */
export function canMountTmpfs(what: string): boolean {
  if (process.getuid?.() !== 0) {
    console.warn(`skipping ${what}: mounting a small tmpfs needs root`);
    return false;
  }
  const dir = mkdtempSync(join(tmpdir(), "vg-probe-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir], { stdio: "ignore" });
    execFileSync("umount", [dir]);
    return true;
  } catch {
    console.warn(`skipping ${what}: cannot mount a tmpfs here`);
    return false;
  }
}

/** Mounts a tmpfs of `size` (e.g. "8m") on a fresh directory; `unmount` lazily, so open files do not hold it. */
export function mountTmpfs(size: string): { dir: string; unmount(): void } {
  const dir = mkdtempSync(join(tmpdir(), "vg-full-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]);
  return { dir, unmount: () => execFileSync("umount", ["-l", dir]) };
}

/** Writes `path` until the file system says ENOSPC: the disk is then full. */
export function fillDisk(path: string): void {
  try {
    writeFileSync(path, Buffer.alloc(1 << 30));
  } catch (err) {
    if ((err as { code?: string }).code !== "ENOSPC") throw err;
  }
}
