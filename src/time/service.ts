// The gateway's synchronized time (DESIGN.md §4). It keeps one number, the offset from a monotonic
// clock to true UTC, estimated from whichever source currently has the smallest uncertainty, and
// stamps as monotonic time plus that offset. The raw wall clock is never read to stamp: a clock
// step (NTP jump, `date -s`, a box booting in 1970) moves nothing unless a source vouches for it.
//
// Sources report samples: { offsetMs: true UTC − monotonic ms, uncMs, at: monotonic ms }. A sample's
// uncertainty grows with its age at the drift allowance (the crystal of a small box keeps within
// ~50 ppm: 3 ms a minute, 180 ms an hour). Before any source has reported, stamps come from the
// system clock's reading at start advanced monotonically, with src "unsynced" and the boot and
// monotonic time they were made at; the first sync of this run is announced ("synced", with the
// correction and the boot it holds for) so those stamps, of this run and of earlier runs of the same
// boot, can be corrected (boot.ts).
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { Clock, TimeEstimate } from "../clock.ts";
import { SUSPEND_NOISE_MS, type BootClock } from "./boot.ts";
import type { PpsPresence } from "./pps.ts";

export type SourceName = "gps" | "ntp" | "system";

/** One measurement of true UTC against the monotonic clock. */
export interface TimeSample {
  /** True UTC minus monotonic ms. */
  offsetMs: number;
  /** Bound on the error of `offsetMs` when it was taken, ms. */
  uncMs: number;
  /** Monotonic ms when it was valid. */
  at: number;
}

/** A pluggable source: it reports samples when it has them, and says how it is doing. */
export interface TimeSource {
  readonly name: SourceName;
  start(report: (sample: TimeSample) => void): void;
  stop(): void | Promise<void>;
  /** For status: "ok", "waiting", or what is wrong ("VG_NTP_TIMEOUT ...", "chrony: not synchronised"). */
  readonly state: string;
}

/**
 * When sources disagree beyond their uncertainties, the one earlier in this list is believed, even
 * against a smaller claimed uncertainty: GPS is a physical reference that no network path, server
 * misconfiguration or local clock setting can bend; NTP is a measured exchange with a server; the
 * system clock is only as good as whatever set it last.
 */
export const TRUST_ORDER: readonly SourceName[] = ["gps", "ntp", "system"];

/**
 * Reported as the uncertainty of unsynchronized stamps: a placeholder, not a bound (the box's
 * clock may be decades off). Such events are flagged `time.unsynced`; read that.
 */
export const UNSYNCED_UNC_MS = 86_400_000;

/** No source is believed when it puts UTC before this: a GPS week rollover, a server at 1970. */
export const NOT_BEFORE_MS = Date.UTC(2025, 0, 1);

export interface TimeServiceOptions {
  /** Drift allowance of the monotonic clock, ppm: uncertainty added per unit of age. */
  driftPpm: number;
  /** Delay from the top of the UTC second to the arrival of the NMEA sentence reporting it, ms. */
  gpsLatencyMs: number;
  /** Uncertainty of `gpsLatencyMs` (receivers differ, serial buffers add jitter), ms. */
  gpsUncMs: number;
  /**
   * Uncertainty of a PPS edge as the gateway sees it (serial DCD read from user space, or
   * /dev/pps), ms: the pulse itself is good to well under a microsecond; reading it is not.
   */
  ppsUncMs?: number;
  /**
   * How backward corrections are absorbed: the stamps run slower by this fraction until the
   * estimate has caught up, so they never go backwards. 0.5: an error of 1 s takes 2 s.
   */
  slewRate?: number;
  notBeforeMs?: number;
}

export interface TimeServiceDeps {
  monoMs(): number;
  /** The system (wall) clock; read once, for the unsynchronized base, and for status. */
  wallMs(): number;
  log: Logger;
  sources?: TimeSource[];
  /**
   * The boot `monoMs` counts from (its id, and time suspended since): with it, unsynchronized stamps
   * carry their boot and monotonic time, and the first sync can correct those of earlier runs of the
   * same boot. Without it, only this run's.
   */
  boot?: BootClock;
  /** Which PPS sources the kernel offers (pps.ts), for status; asked at start and then every minute at most. */
  pps?: () => PpsPresence;
}

/** The first synchronization of this run: stamps made before it are off by `correctionMs`. */
export interface FirstSync {
  src: SourceName;
  /** Add this to every stamp made before the sync. */
  correctionMs: number;
  /** Uncertainty of the synchronized estimate at `atMs`. */
  uncMs: number;
  /** True UTC of the sync, ms. */
  atMs: number;
  driftPpm: number;
  /** True UTC minus the monotonic clock at the sync: a stamp made at monotonic m was at m + offsetMs. */
  offsetMs: number;
  /**
   * The boot id, when stamps made by earlier runs of this boot can be corrected too (by their own
   * monotonic time): the boot id is known and the box has not been suspended since boot.
   */
  boot?: string;
  /**
   * How long the box was suspended since this run started, ms (0 below read noise): the monotonic
   * clock stood still meanwhile, so stamps from before the suspension are off by up to this much.
   */
  sleptMs: number;
}

export interface TimeSourceState {
  name: SourceName;
  state: string;
  /** True UTC minus the system clock by this source's last sample, ms. */
  offsetMs: number | null;
  /** Its uncertainty now (grown with age), ms. */
  uncMs: number | null;
  /** When it last reported (ISO 8601, on the synchronized clock). */
  lastSample: string | null;
  selected: boolean;
}

export interface TimeState {
  synced: boolean;
  /** gps | ntp | system | unsynced */
  src: string;
  uncMs: number;
  /** True UTC minus the box's system clock, ms: how far the OS clock is off (null until synced). */
  offsetMs: number | null;
  /** When the selected source last reported (ISO 8601). */
  lastSync: string | null;
  /** Steps of the estimate beyond its uncertainty since start. */
  steps: number;
  sources: TimeSourceState[];
  /** PPS sources the kernel offers, and whether pulses have been taken (`used`: a PPS reader feeds gpsPps). */
  pps: PpsPresence & { used: boolean };
}

interface Candidate {
  name: SourceName;
  sample: TimeSample;
  /** Uncertainty at `now`. */
  unc: number;
}

export class TimeService extends EventEmitter<{ synced: [FirstSync] }> implements Clock {
  readonly options: Required<TimeServiceOptions>;
  #deps: TimeServiceDeps;
  #log: Logger;
  #sources: TimeSource[];
  #samples = new Map<SourceName, TimeSample>();
  /** Offset of the unsynchronized timeline: the system clock at first use minus the monotonic clock. */
  #base: number | undefined;
  #selected: { name: SourceName; sample: TimeSample } | null = null;
  /** The offset the estimate says; the applied one reaches it at once forwards, by slewing backwards. */
  #target = 0;
  #slewFrom = 0;
  #slewAt = 0;
  #last = -Infinity;
  #steps = 0;
  #disagreement = "";
  #ppm: number;
  #started = false;
  /** A PPS signal has been seen with the GPS. */
  #pps = false;
  #bootId: string | undefined;
  /** Time suspended since boot when this run began, ms. */
  #asleepAtStart: number;
  #ppsPresence: PpsPresence = { present: false, device: null, devices: [] };
  #ppsAt = -Infinity;

  constructor(options: TimeServiceOptions, deps: TimeServiceDeps) {
    super();
    this.options = { slewRate: 0.5, notBeforeMs: NOT_BEFORE_MS, ppsUncMs: 5, ...options };
    this.#deps = deps;
    this.#log = deps.log.child({ component: "time" });
    this.#sources = deps.sources ?? [];
    this.#ppm = options.driftPpm / 1e6;
    this.#bootId = deps.boot?.bootId();
    this.#asleepAtStart = deps.boot?.suspendedMs() ?? 0;
  }

  /** The kernel's boot id `monoMs` counts in (undefined where unknown). */
  get bootId(): string | undefined {
    return this.#bootId;
  }

  get synced(): boolean {
    return this.#selected !== null;
  }

  monoMs(): number {
    return this.#deps.monoMs();
  }

  now(): TimeEstimate {
    const mono = this.#deps.monoMs();
    const sel = this.#selected;
    let ms: number;
    if (sel === null) {
      this.#base ??= this.#deps.wallMs() - mono;
      ms = Math.round(mono + this.#base);
    } else {
      ms = Math.round(mono + this.#applied(mono));
    }
    if (ms < this.#last) ms = this.#last;
    this.#last = ms;
    if (sel === null) return { ms, src: "unsynced", uncMs: UNSYNCED_UNC_MS, boot: this.#bootId, monoMs: this.#bootId === undefined ? undefined : Math.round(mono) };
    const slewGap = this.#applied(mono) - this.#target;
    return { ms, src: sel.name, uncMs: Math.ceil(sel.sample.uncMs + (mono - sel.sample.at) * this.#ppm + slewGap) };
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#base ??= this.#deps.wallMs() - this.#deps.monoMs();
    this.#detectPps(true);
    for (const s of this.#sources) s.start((sample) => this.report(s.name, sample));
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    for (const s of this.#sources) await s.stop();
  }

  /**
   * A GPS receiver's fix: the UTC second it reported (RMC/ZDA time field), and the monotonic time
   * its sentence arrived. The sentence leaves the receiver some time after the second began, which
   * `gpsLatencyMs` accounts for (with `gpsUncMs` either side).
   */
  gpsFix(utcMs: number, monoMs: number): void {
    this.report("gps", { offsetMs: utcMs + this.options.gpsLatencyMs - monoMs, uncMs: this.options.gpsUncMs, at: monoMs });
  }

  /**
   * A GPS pulse-per-second edge, seen at `monoMs`: it marks the start of a UTC second exactly. Which
   * second is taken from the GPS fixes, so a pulse counts only while a GPS sample is recent enough
   * to name the second beyond doubt (its uncertainty well under half a second). Returns whether it
   * was used.
   */
  gpsPps(monoMs: number): boolean {
    const gps = this.#samples.get("gps");
    if (!gps || this.#uncAt(gps, monoMs) >= 250) return false;
    const utc = monoMs + gps.offsetMs;
    const second = Math.round(utc / 1000) * 1000;
    if (Math.abs(utc - second) >= 400) return false; // not near a second boundary: not a PPS edge
    this.#pps = true;
    this.report("gps", { offsetMs: second - monoMs, uncMs: this.options.ppsUncMs, at: monoMs });
    return true;
  }

  /** Takes a sample from a source (sources call this through the callback `start` gives them). */
  report(name: SourceName, sample: TimeSample): void {
    if (!(Number.isFinite(sample.offsetMs) && Number.isFinite(sample.uncMs) && sample.uncMs >= 0)) return;
    if (sample.at + sample.offsetMs < this.options.notBeforeMs) {
      this.#log.warn({ code: "VG_TIME_IMPLAUSIBLE", src: name, utc: new Date(sample.at + sample.offsetMs).toISOString() }, `time source ${name} reports a time before ${new Date(this.options.notBeforeMs).toISOString().slice(0, 10)}: ignored`);
      return;
    }
    this.#samples.set(name, sample);
    this.#select();
  }

  #applied(mono: number): number {
    if (this.#slewFrom <= this.#target) return this.#target;
    return Math.max(this.#target, this.#slewFrom - this.options.slewRate * (mono - this.#slewAt));
  }

  #uncAt(s: TimeSample, mono: number): number {
    return s.uncMs + Math.max(0, mono - s.at) * this.#ppm;
  }

  #select(): void {
    const mono = this.#deps.monoMs();
    const candidates: Candidate[] = [...this.#samples].map(([name, sample]) => ({ name, sample, unc: this.#uncAt(sample, mono) }));
    candidates.sort((a, b) => a.unc - b.unc);
    let best = candidates[0];
    if (!best) return;
    const disagreeing = candidates.filter((c) => c !== best && Math.abs(c.sample.offsetMs - best!.sample.offsetMs) > c.unc + best!.unc);
    if (disagreeing.length > 0) {
      const involved = [best, ...disagreeing];
      const trusted = involved.reduce((a, b) => (TRUST_ORDER.indexOf(b.name) < TRUST_ORDER.indexOf(a.name) ? b : a));
      const key = involved.map((c) => c.name).sort().join(",") + ">" + trusted.name;
      if (key !== this.#disagreement) {
        this.#log.warn({
          code: "VG_TIME_DISAGREE",
          sources: Object.fromEntries(involved.map((c) => [c.name, { offsetMs: Math.round(c.sample.offsetMs - best!.sample.offsetMs), uncMs: Math.ceil(c.unc) }])),
          chosen: trusted.name,
        }, `time sources disagree beyond their uncertainties; believing ${trusted.name} (order: ${TRUST_ORDER.join(" > ")})`);
      }
      this.#disagreement = key;
      best = trusted;
    } else {
      this.#disagreement = "";
    }

    const previous = this.#selected;
    this.#selected = { name: best.name, sample: best.sample };
    const target = best.sample.offsetMs;
    if (previous === null) {
      // First sync of this run: jump to it in either direction. Stamps made before it are
      // corrected by the listener (they keep their order: the correction is the same for all).
      const correctionMs = target - (this.#base ?? target);
      this.#target = this.#slewFrom = target;
      this.#last = -Infinity;
      const atMs = mono + target;
      // Stamps of earlier runs count on the monotonic clock from boot: right unless the box slept.
      const asleep = this.#deps.boot?.suspendedMs() ?? 0;
      const sleptMs = asleep - this.#asleepAtStart > SUSPEND_NOISE_MS ? Math.round(asleep - this.#asleepAtStart) : 0;
      const boot = asleep <= SUSPEND_NOISE_MS ? this.#bootId : undefined;
      this.#log.info({ code: "VG_TIME_SYNCED", src: best.name, correctionMs: Math.round(correctionMs), uncMs: Math.ceil(best.unc), boot: this.#bootId, asleepMs: Math.round(asleep) }, `time synchronized from ${best.name}`);
      this.emit("synced", { src: best.name, correctionMs, uncMs: best.unc, atMs, driftPpm: this.options.driftPpm, offsetMs: target, boot, sleptMs });
      return;
    }
    const before = this.#target;
    const uncBefore = this.#uncAt(previous.sample, mono);
    const step = target - before;
    if (Math.abs(step) > uncBefore + best.unc) {
      this.#steps++;
      this.#log.warn({ code: "VG_TIME_STEP", src: best.name, stepMs: Math.round(step), uncMs: Math.ceil(uncBefore + best.unc) },
        `time estimate stepped ${step > 0 ? "forward" : "back"} by ${Math.abs(Math.round(step))} ms (more than its uncertainty)${step < 0 ? "; absorbed by slewing, stamps never go backwards" : ""}`);
    }
    const applied = this.#applied(mono);
    this.#target = target;
    if (target >= applied) {
      this.#slewFrom = target;
    } else {
      this.#slewFrom = applied;
      this.#slewAt = mono;
    }
  }

  state(): TimeState {
    const now = this.now();
    const mono = this.#deps.monoMs();
    const wallOffset = this.#deps.wallMs() - mono;
    const sel = this.#selected;
    const iso = (s: TimeSample) => new Date(Math.round(s.at + this.#target)).toISOString();
    const names = new Set<SourceName>([...this.#sources.map((s) => s.name), ...this.#samples.keys()]);
    const sources = [...names].sort((a, b) => TRUST_ORDER.indexOf(a) - TRUST_ORDER.indexOf(b)).map((name): TimeSourceState => {
      const s = this.#samples.get(name);
      const source = this.#sources.find((x) => x.name === name);
      return {
        name,
        state: source?.state ?? (s ? (name === "gps" && this.#pps ? "ok (PPS)" : "ok") : "waiting"),
        offsetMs: s ? Math.round(s.offsetMs - wallOffset) : null,
        uncMs: s ? Math.ceil(this.#uncAt(s, mono)) : null,
        lastSample: s && sel ? iso(s) : null,
        selected: sel?.name === name,
      };
    });
    return {
      synced: sel !== null,
      src: now.src,
      uncMs: now.uncMs,
      offsetMs: sel ? Math.round(this.#applied(mono) - wallOffset) : null,
      lastSync: sel ? iso(sel.sample) : null,
      steps: this.#steps,
      sources,
      pps: { ...this.#detectPps(false), used: this.#pps },
    };
  }

  /** The PPS sources, asked again at most once a minute; changes are logged. */
  #detectPps(starting: boolean): PpsPresence {
    const detect = this.#deps.pps;
    const mono = this.#deps.monoMs();
    if (!detect || (!starting && mono - this.#ppsAt < 60_000)) return this.#ppsPresence;
    this.#ppsAt = mono;
    const before = this.#ppsPresence;
    const now = detect();
    this.#ppsPresence = now;
    if (!starting && JSON.stringify(now) === JSON.stringify(before)) return now;
    const devices = now.devices.map((d) => d.device + (d.name ? ` (${d.name}${d.path ? ` on ${d.path}` : ""})` : ""));
    if (now.device !== null && !now.present) {
      this.#log.warn({ code: "VG_TIME_PPS_MISSING", ppsDevice: now.device, found: devices }, `the configured PPS device ${now.device} is not there`);
    } else if (now.devices.length > 0) {
      this.#log.info({ code: "VG_TIME_PPS_PRESENT", ppsDevice: now.device, found: devices },
        `PPS source present: ${devices.join(", ")}; its pulses are not read by this version (the kernel PPS API needs a native reader), GPS time comes from the NMEA sentences`);
    }
    return now;
  }
}
