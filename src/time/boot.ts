// The kernel's notion of a boot, so events stamped before any sync can be corrected after a restart
// of the daemon within the same boot (systemd Restart=always, a crash), and not after a reboot.
//
// - The boot id (/proc/sys/kernel/random/boot_id, random(4)): a UUID the kernel makes at each boot.
// - A monotonic clock that counts from boot: Node's process.hrtime reads CLOCK_MONOTONIC on Linux
//   (libuv's uv_hrtime), which starts near 0 at boot and is the same for every process of that boot;
//   performance.now() reads the same clock from the process's own origin. CLOCK_BOOTTIME (which also
//   counts time suspended) is not readable from Node at better than /proc/uptime's 10 ms. The
//   difference only matters on a box that suspends; ours are powered off with the ignition. So the
//   stamps use CLOCK_MONOTONIC, and the time asleep (/proc/uptime, which is CLOCK_BOOTTIME, less
//   CLOCK_MONOTONIC) is checked at the first sync: after a suspend, monotonic times from before it
//   are off by its length, and those stamps are left marked unsynchronized (docs/time.md).
import { readFileSync } from "node:fs";
import { uptime } from "node:os";

/** What the time service needs to know about this boot. Injected: tests simulate boots. */
export interface BootClock {
  /** The kernel's boot id; undefined where there is none (not Linux, /proc not mounted). */
  bootId(): string | undefined;
  /** Milliseconds spent suspended since boot (CLOCK_BOOTTIME − CLOCK_MONOTONIC), to ~10 ms; 0 where unknown. */
  suspendedMs(): number;
}

/** Below this, a measured suspension is read noise (/proc/uptime has 10 ms steps). */
export const SUSPEND_NOISE_MS = 1000;

/** The boot id, lower-case, or undefined when it cannot be read or is not a UUID. */
export function readBootId(path = "/proc/sys/kernel/random/boot_id"): string | undefined {
  try {
    const id = readFileSync(path, "utf8").trim().toLowerCase();
    return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Milliseconds since boot on CLOCK_MONOTONIC (not counting suspend), as a cheap function: the
 * offset from performance.now() to process.hrtime is taken once (both read CLOCK_MONOTONIC), since
 * performance.now() costs less than a BigInt per call.
 */
export function monotonicSinceBoot(): () => number {
  const offset = Number(process.hrtime.bigint()) / 1e6 - performance.now();
  return () => performance.now() + offset;
}

/** The real boot: the kernel's boot id (read once) and the time suspended since boot. */
export function systemBoot(monoMs: () => number, bootIdPath?: string): BootClock {
  const id = readBootId(bootIdPath);
  return {
    bootId: () => id,
    suspendedMs: () => {
      if (id === undefined) return 0;
      const asleep = uptime() * 1000 - monoMs();
      return asleep > 0 ? asleep : 0;
    },
  };
}
