// The system clock as a time source, believed only when the operating system says it is
// synchronized: chrony (`chronyc tracking`) or systemd-timesyncd (`timedatectl show`). The parsers
// are pure; running the commands is injected (`exec`) so tests feed recorded outputs.
//
// Each poll also notices steps of the wall clock (someone ran `date -s`, the RTC was read late):
// they are logged, and they move no stamp, since stamps come from the monotonic clock.
import { execFile } from "node:child_process";
import type { Logger } from "pino";
import type { TimeSample, TimeSource } from "./service.ts";

/** What the OS says about its clock. */
export interface OsClockReport {
  via: "chrony" | "timesyncd";
  synchronized: boolean;
  /** True UTC minus the system clock, ms, when the daemon knows it (chrony does). */
  correctionMs?: number;
  /** Bound on the system clock's error, ms, when the daemon gives one. */
  uncMs?: number;
  /** The server or reference clock it follows, for status. */
  reference?: string;
  /** Why it is not synchronized, in the daemon's words. */
  reason?: string;
}

/** chrony's reference id when it serves its own clock (`local` directive): no external time behind it. */
const CHRONY_LOCAL_REFID = "7F7F0101";

/**
 * `chronyc tracking` (chronyc(1), "tracking"). Synchronized when "Leap status" is Normal, Insert
 * second or Delete second (not "Not synchronised") and the reference is not chrony's own local
 * clock. "System time" says how far the system clock is from chrony's estimate of true time
 * ("… seconds slow/fast of NTP time"); chronyc(1) bounds the clock's error by
 * |system time offset| + root dispersion + root delay / 2.
 */
export function parseChronyTracking(text: string): OsClockReport | undefined {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^([A-Za-z][A-Za-z ()]*?)\s*:\s*(.*)$/.exec(line);
    if (m) fields.set(m[1]!.toLowerCase(), m[2]!.trim());
  }
  const leap = fields.get("leap status");
  if (leap === undefined) return undefined;
  const refField = fields.get("reference id") ?? "";
  const refId = /^([0-9A-Fa-f]{8})/.exec(refField)?.[1]?.toUpperCase();
  const reference = /\(([^)]*)\)/.exec(refField)?.[1] || refId;
  const seconds = (key: string) => {
    const v = /^([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)\s+seconds?/i.exec(fields.get(key) ?? "");
    return v ? Number(v[1]) * 1000 : undefined;
  };
  if (/not synchroni[sz]ed/i.test(leap))
    return { via: "chrony", synchronized: false, reference, reason: `leap status: ${leap}` };
  if (refId === CHRONY_LOCAL_REFID)
    return {
      via: "chrony",
      synchronized: false,
      reference,
      reason: "following its own local clock (local directive), no external time",
    };
  const system = /^([-+]?\d+(?:\.\d+)?)\s+seconds\s+(slow|fast)/i.exec(fields.get("system time") ?? "");
  // "slow" means the system clock is behind true time: add to it.
  const offset = system ? Number(system[1]) * 1000 * (system[2]!.toLowerCase() === "slow" ? 1 : -1) : undefined;
  const rootDelay = seconds("root delay");
  const rootDispersion = seconds("root dispersion");
  const uncMs =
    offset !== undefined && rootDelay !== undefined && rootDispersion !== undefined
      ? Math.abs(offset) + rootDispersion + rootDelay / 2
      : undefined;
  return { via: "chrony", synchronized: true, correctionMs: offset, uncMs, reference };
}

/**
 * `timedatectl show` (timedatectl(1)): key=value lines. NTPSynchronized=yes when the kernel's
 * clock is marked synchronized (adjtimex without STA_UNSYNC), which timesyncd and other daemons
 * set after a successful sync and which `date -s` clears. It gives no error bound.
 */
export function parseTimedatectlShow(text: string): OsClockReport | undefined {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf("=");
    if (i > 0) fields.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  const synced = fields.get("NTPSynchronized");
  if (synced === undefined) return undefined;
  if (synced === "yes") return { via: "timesyncd", synchronized: true };
  return {
    via: "timesyncd",
    synchronized: false,
    reason: fields.get("NTP") === "no" ? "NTP is turned off (timedatectl set-ntp true)" : "not synchronized yet",
  };
}

/** Runs a command and resolves with its stdout; rejects when it cannot run or exits non-zero. */
export type Exec = (file: string, args: string[]) => Promise<string>;

export const execCommand: Exec = (file, args) =>
  new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 5000, env: { ...process.env, LC_ALL: "C" } }, (err, stdout) =>
      err ? reject(err) : resolve(stdout),
    );
  });

export interface SystemClockOptions {
  /** auto: believed when the OS says it is synchronized; always: believed as it is (with `alwaysUncMs`). */
  trust: "auto" | "always";
  pollS: number;
  /** Uncertainty when trusted without the OS vouching for it. */
  alwaysUncMs?: number;
  /** Uncertainty assumed when timesyncd says synchronized but gives no bound. */
  timesyncdUncMs?: number;
}

export interface SystemClockDeps {
  exec: Exec;
  wallMs(): number;
  monoMs(): number;
  log: Logger;
}

/** Wall clock moves beyond this between polls, against the monotonic clock, are reported as steps. */
const WALL_STEP_MS = 1000;

export class SystemClockSource implements TimeSource {
  readonly name = "system";
  state = "waiting";
  #options: Required<SystemClockOptions>;
  #deps: SystemClockDeps;
  #timer: NodeJS.Timeout | null = null;
  #report: ((s: TimeSample) => void) | null = null;
  #lastWallOffset: number | undefined;
  /** The daemon that answered last; tried first next time. */
  #via: "chrony" | "timesyncd" | undefined;

  constructor(options: SystemClockOptions, deps: SystemClockDeps) {
    this.#options = { alwaysUncMs: 1000, timesyncdUncMs: 250, ...options };
    this.#deps = deps;
  }

  start(report: (s: TimeSample) => void): void {
    this.#report = report;
    const poll = () =>
      void this.poll().catch((err: Error) =>
        this.#deps.log.error(
          { code: "VG_TIME_SOURCE_BUG", source: this.name, err: err.message },
          "time source poll failed",
        ),
      );
    poll();
    this.#timer = setInterval(poll, this.#options.pollS * 1000);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#report = null;
  }

  async poll(): Promise<void> {
    this.#noticeWallStep();
    if (this.#options.trust === "always") {
      const mono = this.#deps.monoMs();
      this.state = "ok (trusted as it is: trustSystemClock always)";
      this.#report?.({ offsetMs: this.#deps.wallMs() - mono, uncMs: this.#options.alwaysUncMs, at: mono });
      return;
    }
    const os = await this.#ask();
    const mono = this.#deps.monoMs();
    const wall = this.#deps.wallMs();
    if (!os) {
      this.state = "no chrony or timesyncd to ask";
      return;
    }
    if (!os.synchronized) {
      this.state = `${os.via}: not synchronized${os.reason ? ` (${os.reason})` : ""}`;
      return;
    }
    const uncMs = os.uncMs ?? this.#options.timesyncdUncMs;
    this.state = `ok (${os.via}${os.reference ? `, ${os.reference}` : ""})`;
    this.#report?.({ offsetMs: wall + (os.correctionMs ?? 0) - mono, uncMs, at: mono });
  }

  #noticeWallStep(): void {
    const offset = this.#deps.wallMs() - this.#deps.monoMs();
    const last = this.#lastWallOffset;
    this.#lastWallOffset = offset;
    if (last !== undefined && Math.abs(offset - last) > WALL_STEP_MS) {
      this.#deps.log.warn(
        { code: "VG_WALL_CLOCK_STEP", stepMs: Math.round(offset - last) },
        "the system clock was stepped; event times are unaffected (they run on the monotonic clock)",
      );
    }
  }

  async #ask(): Promise<OsClockReport | undefined> {
    const order: ("chrony" | "timesyncd")[] =
      this.#via === "timesyncd" ? ["timesyncd", "chrony"] : ["chrony", "timesyncd"];
    for (const via of order) {
      try {
        const report =
          via === "chrony"
            ? parseChronyTracking(await this.#deps.exec("chronyc", ["-n", "tracking"]))
            : parseTimedatectlShow(await this.#deps.exec("timedatectl", ["show"]));
        if (report) {
          this.#via = via;
          return report;
        }
      } catch {
        // Not installed, or its daemon not running: ask the other one.
      }
    }
    return undefined;
  }
}
