// The time service as the daemon runs it: sources from the `time:` section of the configuration,
// real clocks, sockets and commands unless others are passed in.
import type { Logger } from "pino";
import type { TimeConfig } from "../config/schema.ts";
import { NtpSource, udpNtpQuery, type NtpQuery } from "./ntp.ts";
import { TimeService, type TimeSource } from "./service.ts";
import { SystemClockSource, execCommand, type Exec } from "./system.ts";

export { TimeService } from "./service.ts";
export type { FirstSync, TimeSample, TimeSource, TimeState } from "./service.ts";

export interface TimeServiceIo {
  log: Logger;
  monoMs?: () => number;
  wallMs?: () => number;
  exec?: Exec;
  ntpQuery?: NtpQuery;
}

export function createTimeService(config: TimeConfig, io: TimeServiceIo): TimeService {
  const monoMs = io.monoMs ?? (() => performance.now());
  const wallMs = io.wallMs ?? Date.now;
  const log = io.log.child({ component: "time" });
  const sources: TimeSource[] = [];
  if (config.ntpServers.length > 0) {
    sources.push(new NtpSource(
      { servers: config.ntpServers, pollS: config.pollS, timeoutMs: config.ntpTimeoutMs },
      { query: io.ntpQuery ?? udpNtpQuery(monoMs), log, monoMs },
    ));
  }
  if (config.trustSystemClock !== "never") {
    sources.push(new SystemClockSource({ trust: config.trustSystemClock, pollS: config.pollS }, { exec: io.exec ?? execCommand, wallMs, monoMs, log }));
  }
  return new TimeService(
    { driftPpm: config.driftPpm, gpsLatencyMs: config.gpsLatencyMs, gpsUncMs: config.gpsUncertaintyMs },
    { monoMs, wallMs, log: io.log, sources },
  );
}
