// The time service as the daemon runs it: sources from the `time:` section of the configuration,
// real clocks (the monotonic clock since boot, the kernel's boot id), sockets, commands and the
// PPS devices of /sys and /dev unless others are passed in.
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";
import type { TimeConfig } from "../config/schema.ts";
import type { SysfsRoots } from "../transports/serial-ports.ts";
import { monotonicSinceBoot, systemBoot, type BootClock } from "./boot.ts";
import { NtpSource, udpNtpQuery, type NtpQuery } from "./ntp.ts";
import { detectPps } from "./pps.ts";
import { TimeService, type TimeMark, type TimeMarkStore, type TimeSource } from "./service.ts";
import { SystemClockSource, execCommand, type Exec } from "./system.ts";

export { TimeService } from "./service.ts";
export type { ClockCorrection, FirstSync, GpsFixInfo, TimeMark, TimeSample, TimeSource, TimeState } from "./service.ts";
export type { BootClock } from "./boot.ts";
export type { PpsDevice, PpsPresence } from "./pps.ts";

export interface TimeServiceIo {
  log: Logger;
  /** Monotonic ms; by default CLOCK_MONOTONIC, since boot. */
  monoMs?: () => number;
  /** The boot `monoMs` counts from; by default the kernel's (none when `monoMs` is passed without it). */
  boot?: BootClock;
  /** Where /sys and /dev are, for PPS detection (tests use a fake tree). */
  roots?: SysfsRoots;
  wallMs?: () => number;
  exec?: Exec;
  ntpQuery?: NtpQuery;
  /** Where the last known good time is kept (`time-mark.json` in it); none: only this run's. */
  stateDir?: string;
}

/** The last known good time in `<stateDir>/time-mark.json` (written whole, then renamed into place). */
export function fileTimeMark(stateDir: string): TimeMarkStore {
  const path = join(stateDir, "time-mark.json");
  return {
    load: () => {
      let text: string;
      try {
        text = readFileSync(path, "utf8");
      } catch {
        return undefined; // none yet
      }
      const m = JSON.parse(text) as TimeMark;
      return typeof m === "object" && m !== null ? m : undefined;
    },
    save: (mark) => {
      writeFileSync(`${path}.tmp`, JSON.stringify(mark) + "\n", { mode: 0o600 });
      renameSync(`${path}.tmp`, path);
    },
  };
}

export function createTimeService(config: TimeConfig, io: TimeServiceIo): TimeService {
  const monoMs = io.monoMs ?? monotonicSinceBoot();
  const boot = io.boot ?? (io.monoMs ? undefined : systemBoot(monoMs));
  const wallMs = io.wallMs ?? Date.now;
  const log = io.log.child({ component: "time" });
  const sources: TimeSource[] = [];
  if (config.ntpServers.length > 0) {
    sources.push(
      new NtpSource(
        { servers: config.ntpServers, pollS: config.pollS, timeoutMs: config.ntpTimeoutMs },
        { query: io.ntpQuery ?? udpNtpQuery(monoMs), log, monoMs },
      ),
    );
  }
  if (config.trustSystemClock !== "never") {
    sources.push(
      new SystemClockSource(
        { trust: config.trustSystemClock, pollS: config.pollS },
        { exec: io.exec ?? execCommand, wallMs, monoMs, log },
      ),
    );
  }
  return new TimeService(
    {
      driftPpm: config.driftPpm,
      gpsLatencyMs: config.gpsLatencyMs,
      gpsUncMs: config.gpsUncertaintyMs,
      plausibleMs: config.plausibleHours * 3_600_000,
      plausibleOffMs: config.plausibleOffDays * 86_400_000,
      gpsLeapHoldMs: config.gpsLeapHoldS * 1000,
    },
    {
      monoMs,
      wallMs,
      log: io.log,
      sources,
      boot,
      pps: () => detectPps(config.ppsDevice, io.roots),
      mark: io.stateDir === undefined ? undefined : fileTimeMark(io.stateDir),
    },
  );
}
