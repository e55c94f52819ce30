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
//
// What one source can do alone is bounded (docs/time.md, "What one source can do alone"):
// - a sample far from where the time is expected to be (the live estimate, else the last known good
//   time kept in the state directory, advanced by the monotonic clock within the same boot) is not
//   believed until another source agrees with it;
// - a GPS receiver's time is held at ±18 s more until its leap-second count is known (the receiver
//   says so, another source agrees with it, or it has had fixes for a whole almanac cycle);
// - retention purges read `retentionNowMs()`, a high-water mark that advances only at the monotonic
//   clock's rate from the one kept on disk, never with a jump.
// Backward corrections beyond `slewMaxMs` are stepped, not slewed: the stamps that follow carry
// `stepBackMs`, and the order of events is their `seq`.
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { Clock, TimeEstimate } from "./clock.ts";
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

/**
 * GPS time minus UTC since 2017-01-01 (IERS Bulletin C 52 onwards): what a receiver that has not yet
 * read the leap-second count from the navigation message's UTC parameters (IS-GPS-200, subframe 4
 * page 18) may be off by at most, if its firmware's default count is 0.
 */
export const GPS_LEAP_SECONDS_MS = 18_000;

/**
 * The UTC parameters come round once per full navigation message: 25 frames of 30 s (IS-GPS-200
 * 20.3.3.5), 12.5 minutes. A receiver that has had fixes that long has read them.
 */
export const GPS_ALMANAC_CYCLE_MS = 750_000;

/** The last known good time, kept in the state directory across runs and boots. */
export interface TimeMark {
  /** True UTC at `monoMs` of boot `boot`, ms. */
  utcMs: number;
  uncMs: number;
  /** The boot it was taken in (undefined where none is known: then it counts as another boot). */
  boot?: string;
  monoMs: number;
  /** The retention clock's high-water mark at `monoMs` (retentionNowMs). */
  retentionMs: number;
}

/** Where the mark is kept (a file in the state directory, by createTimeService). */
export interface TimeMarkStore {
  load(): TimeMark | undefined;
  save(mark: TimeMark): void;
}

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
  /**
   * Backward corrections up to this are slewed (at `slewRate`); larger ones are stepped at once and
   * the stamps after them marked `stepBackMs` (docs/time.md, "Corrections backwards").
   */
  slewMaxMs?: number;
  notBeforeMs?: number;
  /**
   * How far a single source may put the time from where it is expected (the live estimate, or the
   * mark advanced monotonically in the same boot) and still be believed without another source.
   */
  plausibleMs?: number;
  /** After a reboot (time switched off unknown): how far after the mark a single source may put the time. */
  plausibleOffMs?: number;
  /**
   * How long a GPS receiver's time is held at ±18 s more from its first fix of the run, unless it
   * says its leap-second count is known or another source agrees with it. 0: believed at once.
   */
  gpsLeapHoldMs?: number;
  /** A GPS source that has sent no fix for this long shows as silent in the status. */
  gpsSilentMs?: number;
}

/** What a receiver says with a fix, beyond its time. */
export interface GpsFixInfo {
  /**
   * The receiver's UTC is from the leap-second count it read from the satellites (u-blox PUBX,04
   * leap seconds without "D"), not its firmware's default: its time needs no hold.
   */
  leapSecondsKnown?: boolean;
}

/** A correction of the estimate after the first sync (a step or a slew), as `corrected` events carry it. */
export interface ClockCorrection {
  src: SourceName;
  /** New offset minus old: stamps after it are this much later than they would have been. */
  correctionMs: number;
  /** True UTC when it was made, ms. */
  atMs: number;
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
  /** The last known good time across runs (normally `<stateDir>/time-mark.json`); without it, only this run's. */
  mark?: TimeMarkStore;
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
  /** Unsynchronized: a placeholder (UNSYNCED_UNC_MS), not a bound; `unbounded` says so. */
  uncMs: number;
  /** Only when unsynchronized: `uncMs` is no measurement, the error is not bounded. */
  unbounded?: true;
  /** True UTC minus the box's system clock, ms: how far the OS clock is off (null until synced). */
  offsetMs: number | null;
  /** When the selected source last reported (ISO 8601). */
  lastSync: string | null;
  /** Steps of the estimate beyond its uncertainty since start. */
  steps: number;
  sources: TimeSourceState[];
  /** PPS sources the kernel offers, and whether pulses have been taken (`used`: a PPS reader feeds gpsPps). */
  pps: PpsPresence & { used: boolean };
  /** The retention clock purges go by (retentionNowMs), ISO 8601, or null while there is none. */
  retentionNow: string | null;
}

interface Candidate {
  name: SourceName;
  sample: TimeSample;
  /** Uncertainty at `now`. */
  unc: number;
}

export class TimeService extends EventEmitter<{ synced: [FirstSync]; corrected: [ClockCorrection] }> implements Clock {
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
  /** The mark read at start: where the time is expected before this run's first sync. */
  #mark: TimeMark | undefined;
  #markSavedAt = -Infinity;
  /** The retention clock: its value at monotonic `at`; it advances at the monotonic rate, capped by the estimate. */
  #retention: { ms: number; at: number } | undefined;
  /** Monotonic time of this run's first GPS fix, and whether its leap-second count is known. */
  #gpsFirstAt: number | undefined;
  #gpsLeapKnown = false;
  /** Why each source's latest sample is not believed, for status and to log once. */
  #implausible = new Map<SourceName, string>();
  /** Stamps at or before this were made before the last backward step, of this size. */
  #stepBack: { untilMs: number; stepMs: number } | undefined;
  /** A GPS receiver is configured or paired (status lists it before its first fix). */
  #gpsExpected: () => boolean = () => false;

  constructor(options: TimeServiceOptions, deps: TimeServiceDeps) {
    super();
    this.options = {
      slewRate: 0.5,
      slewMaxMs: 500,
      notBeforeMs: NOT_BEFORE_MS,
      ppsUncMs: 5,
      plausibleMs: 86_400_000,
      plausibleOffMs: 30 * 86_400_000,
      gpsLeapHoldMs: 0,
      gpsSilentMs: 10_000,
      ...options,
    };
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
    if (sel === null)
      return {
        ms,
        src: "unsynced",
        uncMs: UNSYNCED_UNC_MS,
        unbounded: true,
        boot: this.#bootId,
        monoMs: this.#bootId === undefined ? undefined : Math.round(mono),
      };
    const slewGap = this.#applied(mono) - this.#target;
    const estimate: TimeEstimate = {
      ms,
      src: sel.name,
      uncMs: Math.ceil(this.#uncAt(sel.sample, mono, sel.name) + slewGap),
    };
    if (this.#stepBack !== undefined) {
      if (ms <= this.#stepBack.untilMs) estimate.stepBackMs = this.#stepBack.stepMs;
      else this.#stepBack = undefined;
    }
    return estimate;
  }

  /**
   * "Now" for retention purges (outbox, audit trail): a high-water mark kept in the state directory
   * that advances only as fast as the monotonic clock, and never past the synchronized estimate. A
   * clock that jumps (a fake GPS saying 2045) cannot make it purge early; time the box was switched
   * off is caught up only when two sources agree on the time. Undefined while there is no mark and
   * no sync: purge nothing then.
   */
  retentionNowMs(): number | undefined {
    const mono = this.#deps.monoMs();
    const sel = this.#selected;
    if (sel !== null && this.#retention === undefined) this.#retention = { ms: mono + this.#applied(mono), at: mono };
    const r = this.#retention;
    if (!r) return undefined;
    let ms = r.ms + (mono - r.at);
    if (sel !== null) {
      const estimate = mono + this.#applied(mono);
      if (ms > estimate || this.#corroborated(mono)) ms = estimate;
    }
    if (ms < r.ms) ms = r.ms; // never backwards
    this.#retention = { ms, at: mono };
    return Math.round(ms);
  }

  /** Tells the service whether a GPS receiver is configured (listed in the status before its first fix). */
  expectGps(present: () => boolean): void {
    this.#gpsExpected = present;
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#base ??= this.#deps.wallMs() - this.#deps.monoMs();
    this.#loadMark();
    this.#detectPps(true);
    for (const s of this.#sources) s.start((sample) => this.report(s.name, sample));
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    this.#saveMark(true);
    for (const s of this.#sources) await s.stop();
  }

  #loadMark(): void {
    let mark: TimeMark | undefined;
    try {
      mark = this.#deps.mark?.load();
    } catch (err) {
      this.#log.warn(
        { code: "VG_TIME_MARK_UNREADABLE", err: (err as Error).message },
        "the last known good time could not be read: starting without it",
      );
    }
    if (!mark || ![mark.utcMs, mark.uncMs, mark.monoMs, mark.retentionMs].every(Number.isFinite)) return;
    this.#mark = mark;
    const mono = this.#deps.monoMs();
    // In the same boot the monotonic clock counts on from the mark; after a reboot, the time the box
    // was off is unknown: the retention clock goes on from where it stood.
    this.#retention = this.#sameBoot(mark)
      ? { ms: mark.retentionMs, at: mark.monoMs }
      : { ms: mark.retentionMs, at: mono };
  }

  #sameBoot(mark: TimeMark): boolean {
    return mark.boot !== undefined && mark.boot === this.#bootId && mark.monoMs <= this.#deps.monoMs();
  }

  /** Keeps the last known good time (at most once a minute unless `force`), while synchronized. */
  #saveMark(force: boolean): void {
    const store = this.#deps.mark;
    const sel = this.#selected;
    if (!store || sel === null) return;
    const mono = this.#deps.monoMs();
    if (!force && mono - this.#markSavedAt < 60_000) return;
    this.#markSavedAt = mono;
    const retentionMs = this.retentionNowMs()!;
    try {
      store.save({
        utcMs: Math.round(mono + this.#applied(mono)),
        uncMs: Math.ceil(this.#uncAt(sel.sample, mono)),
        boot: this.#bootId,
        monoMs: Math.round(mono),
        retentionMs,
      });
    } catch (err) {
      this.#log.warn(
        { code: "VG_TIME_MARK_SAVE", err: (err as Error).message },
        "could not keep the last known good time for the next start",
      );
    }
  }

  /**
   * A GPS receiver's fix: the UTC second it reported (RMC/ZDA time field), and the monotonic time
   * its sentence arrived. The sentence leaves the receiver some time after the second began, which
   * `gpsLatencyMs` accounts for (with `gpsUncMs` either side).
   */
  gpsFix(utcMs: number, monoMs: number, info: GpsFixInfo = {}): void {
    this.#gpsFirstAt ??= monoMs;
    if (info.leapSecondsKnown) this.#gpsLeapKnown = true;
    this.report("gps", {
      offsetMs: utcMs + this.options.gpsLatencyMs - monoMs,
      uncMs: this.options.gpsUncMs,
      at: monoMs,
    });
  }

  /**
   * Whether the GPS receiver's UTC may still be GPS time (its leap-second count not yet read):
   * until it says otherwise, another source agrees with it, or it has had fixes for `gpsLeapHoldMs`.
   */
  #gpsLeapInDoubt(mono: number): boolean {
    if (this.#gpsLeapKnown || this.options.gpsLeapHoldMs <= 0 || this.#gpsFirstAt === undefined) return false;
    if (mono - this.#gpsFirstAt >= this.options.gpsLeapHoldMs) {
      this.#gpsLeapKnown = true;
      return false;
    }
    return true;
  }

  /** Two sources agree within their uncertainties, one of them the selected. */
  #corroborated(mono: number): boolean {
    const sel = this.#selected;
    if (!sel) return false;
    const u = this.#uncAt(sel.sample, mono);
    for (const [name, s] of this.#samples) {
      if (name === sel.name || this.#implausible.has(name)) continue;
      if (Math.abs(s.offsetMs - sel.sample.offsetMs) <= u + this.#uncAt(s, mono)) return true;
    }
    return false;
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
      this.#log.warn(
        { code: "VG_TIME_IMPLAUSIBLE", src: name, utc: new Date(sample.at + sample.offsetMs).toISOString() },
        `time source ${name} reports a time before ${new Date(this.options.notBeforeMs).toISOString().slice(0, 10)}: ignored`,
      );
      return;
    }
    this.#samples.set(name, sample);
    this.#select();
  }

  #applied(mono: number): number {
    if (this.#slewFrom <= this.#target) return this.#target;
    return Math.max(this.#target, this.#slewFrom - this.options.slewRate * (mono - this.#slewAt));
  }

  #uncAt(s: TimeSample, mono: number, name?: SourceName): number {
    return (
      s.uncMs +
      Math.max(0, mono - s.at) * this.#ppm +
      (name === "gps" && this.#gpsLeapInDoubt(mono) ? GPS_LEAP_SECONDS_MS : 0)
    );
  }

  /**
   * Where the time is expected now, as a window of offsets a single source may report and be
   * believed: around the live estimate once synchronized; else around the mark advanced by the
   * monotonic clock (same boot), or from the mark to `plausibleOffMs` after it (another boot: the
   * box was off for a while). Undefined with neither: the first source is believed alone.
   */
  #expected(mono: number): { lo: number; hi: number; from: string } | undefined {
    const o = this.options;
    if (this.#selected !== null) {
      const at = this.#applied(mono);
      const u = this.#uncAt(this.#selected.sample, mono, this.#selected.name);
      return { lo: at - u - o.plausibleMs, hi: at + u + o.plausibleMs, from: "the current estimate" };
    }
    const m = this.#mark;
    if (!m) return undefined;
    if (this.#sameBoot(m)) {
      const at = m.utcMs - m.monoMs;
      const u = m.uncMs + (mono - m.monoMs) * this.#ppm;
      return { lo: at - u - o.plausibleMs, hi: at + u + o.plausibleMs, from: "the last known good time" };
    }
    return {
      lo: m.utcMs - m.uncMs - o.plausibleMs - mono,
      hi: m.utcMs + m.uncMs + o.plausibleOffMs - mono,
      from: "the last known good time (before a reboot)",
    };
  }

  #select(): void {
    const mono = this.#deps.monoMs();
    const all: Candidate[] = [...this.#samples].map(([name, sample]) => ({
      name,
      sample,
      unc: this.#uncAt(sample, mono, name),
    }));
    // A GPS whose leap-second count is in doubt is confirmed by another source agreeing with it at
    // the GPS's own uncertainty: 18 s off would show.
    const gps = all.find((c) => c.name === "gps");
    if (gps && this.#gpsLeapInDoubt(mono)) {
      const plain = gps.sample.uncMs + Math.max(0, mono - gps.sample.at) * this.#ppm;
      if (all.some((c) => c.name !== "gps" && Math.abs(c.sample.offsetMs - gps.sample.offsetMs) <= plain + c.unc)) {
        this.#gpsLeapKnown = true;
        gps.unc = plain;
      }
    }
    const candidates = this.#plausible(all, mono);
    candidates.sort((a, b) => a.unc - b.unc);
    let best = candidates[0];
    if (!best) return;
    const disagreeing = candidates.filter(
      (c) => c !== best && Math.abs(c.sample.offsetMs - best!.sample.offsetMs) > c.unc + best!.unc,
    );
    if (disagreeing.length > 0) {
      const involved = [best, ...disagreeing];
      const trusted = involved.reduce((a, b) => (TRUST_ORDER.indexOf(b.name) < TRUST_ORDER.indexOf(a.name) ? b : a));
      const key =
        involved
          .map((c) => c.name)
          .sort()
          .join(",") +
        ">" +
        trusted.name;
      if (key !== this.#disagreement) {
        this.#log.warn(
          {
            code: "VG_TIME_DISAGREE",
            sources: Object.fromEntries(
              involved.map((c) => [
                c.name,
                { offsetMs: Math.round(c.sample.offsetMs - best!.sample.offsetMs), uncMs: Math.ceil(c.unc) },
              ]),
            ),
            chosen: trusted.name,
          },
          `time sources disagree beyond their uncertainties; believing ${trusted.name} (order: ${TRUST_ORDER.join(" > ")})`,
        );
      }
      this.#disagreement = key;
      best = trusted;
    } else {
      this.#disagreement = "";
    }

    const previous = this.#selected;
    this.#selected = { name: best.name, sample: best.sample };
    const target = best.sample.offsetMs;
    try {
      this.#adopt(previous, best, target, mono);
    } finally {
      this.#saveMark(previous === null);
    }
  }

  /**
   * The samples a source may be believed on: those where the time is expected, and those another
   * source agrees with (corroboration). The others are logged once each (VG_TIME_IMPLAUSIBLE).
   */
  #plausible(all: Candidate[], mono: number): Candidate[] {
    const window = this.#expected(mono);
    const out: Candidate[] = [];
    for (const c of all) {
      const far = window !== undefined && (c.sample.offsetMs < window.lo || c.sample.offsetMs > window.hi);
      const agreed =
        far && all.some((d) => d !== c && Math.abs(d.sample.offsetMs - c.sample.offsetMs) <= d.unc + c.unc);
      if (!far || agreed) {
        if (this.#implausible.delete(c.name) && agreed) {
          this.#log.warn(
            { code: "VG_TIME_CORROBORATED", src: c.name },
            `time source ${c.name}, far from ${window!.from}, is believed: another source agrees with it`,
          );
        }
        out.push(c);
        continue;
      }
      const utc = new Date(Math.round(mono + c.sample.offsetMs)).toISOString();
      const reason = `${utc} is ${c.sample.offsetMs > window.hi ? "after" : "before"} what ${window.from} allows; waiting for another source to agree`;
      if (!this.#implausible.has(c.name)) {
        this.#log.warn(
          { code: "VG_TIME_IMPLAUSIBLE", src: c.name, utc, from: window.from },
          `time source ${c.name} says ${reason}`,
        );
      }
      this.#implausible.set(c.name, reason);
    }
    return out;
  }

  #adopt(
    previous: { name: SourceName; sample: TimeSample } | null,
    best: Candidate,
    target: number,
    mono: number,
  ): void {
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
      this.#log.info(
        {
          code: "VG_TIME_SYNCED",
          src: best.name,
          correctionMs: Math.round(correctionMs),
          uncMs: Math.ceil(best.unc),
          boot: this.#bootId,
          asleepMs: Math.round(asleep),
        },
        `time synchronized from ${best.name}`,
      );
      this.emit("synced", {
        src: best.name,
        correctionMs,
        uncMs: best.unc,
        atMs,
        driftPpm: this.options.driftPpm,
        offsetMs: target,
        boot,
        sleptMs,
      });
      return;
    }
    const before = this.#target;
    const uncBefore = this.#uncAt(previous.sample, mono, previous.name);
    const step = target - before;
    if (Math.abs(step) > uncBefore + best.unc) {
      this.#steps++;
      this.#log.warn(
        { code: "VG_TIME_STEP", src: best.name, stepMs: Math.round(step), uncMs: Math.ceil(uncBefore + best.unc) },
        `time estimate stepped ${step > 0 ? "forward" : "back"} by ${Math.abs(Math.round(step))} ms (more than its uncertainty)`,
      );
    }
    const applied = this.#applied(mono);
    this.#target = target;
    if (target >= applied) {
      this.#slewFrom = target;
    } else if (applied - target <= this.options.slewMaxMs) {
      this.#slewFrom = applied;
      this.#slewAt = mono;
    } else {
      // Stepped back at once: the stamps after it are true to the source again, and those that
      // land at or before the last one made before the step say so (stepBackMs).
      this.#slewFrom = target;
      const stepMs = Math.round(target - applied);
      this.#stepBack = { untilMs: this.#last, stepMs };
      this.#last = -Infinity;
      this.#log.warn(
        { code: "VG_TIME_STEP_BACK", src: best.name, stepMs },
        `time stepped back by ${-stepMs} ms: events stamped next may be earlier than those before them (order by seq; they carry time.stepBackMs)`,
      );
    }
    if (target !== before)
      this.emit("corrected", { src: best.name, correctionMs: target - before, atMs: mono + target });
  }

  state(): TimeState {
    const now = this.now();
    const mono = this.#deps.monoMs();
    const wallOffset = this.#deps.wallMs() - mono;
    const sel = this.#selected;
    const iso = (s: TimeSample) => new Date(Math.round(s.at + this.#target)).toISOString();
    const names = new Set<SourceName>([...this.#sources.map((s) => s.name), ...this.#samples.keys()]);
    if (this.#gpsExpected()) names.add("gps");
    const sources = [...names]
      .sort((a, b) => TRUST_ORDER.indexOf(a) - TRUST_ORDER.indexOf(b))
      .map((name): TimeSourceState => {
        const s = this.#samples.get(name);
        const source = this.#sources.find((x) => x.name === name);
        return {
          name,
          state: this.#implausible.has(name)
            ? `implausible: ${this.#implausible.get(name)!}`
            : (source?.state ?? (name === "gps" ? this.#gpsState(mono) : s ? "ok" : "waiting")),
          offsetMs: s ? Math.round(s.offsetMs - wallOffset) : null,
          uncMs: s ? Math.ceil(this.#uncAt(s, mono, name)) : null,
          lastSample: s && sel ? iso(s) : null,
          selected: sel?.name === name,
        };
      });
    const retention = this.retentionNowMs();
    return {
      synced: sel !== null,
      src: now.src,
      uncMs: now.uncMs,
      ...(now.unbounded ? { unbounded: true as const } : {}),
      offsetMs: sel ? Math.round(this.#applied(mono) - wallOffset) : null,
      lastSync: sel ? iso(sel.sample) : null,
      steps: this.#steps,
      sources,
      pps: { ...this.#detectPps(false), used: this.#pps },
      retentionNow: retention === undefined ? null : new Date(retention).toISOString(),
    };
  }

  /** The GPS source as the status shows it: waiting for a first fix, silent, or ok (and how). */
  #gpsState(mono: number): string {
    const s = this.#samples.get("gps");
    if (!s) return "waiting for a first fix";
    const age = mono - s.at;
    if (age > this.options.gpsSilentMs) return `silent: no fix for ${Math.round(age / 1000)} s`;
    if (this.#gpsLeapInDoubt(mono)) return "ok (leap seconds not yet confirmed: ±18 s)";
    return this.#pps ? "ok (PPS)" : "ok";
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
      this.#log.warn(
        { code: "VG_TIME_PPS_MISSING", ppsDevice: now.device, found: devices },
        `the configured PPS device ${now.device} is not there`,
      );
    } else if (now.devices.length > 0) {
      this.#log.info(
        { code: "VG_TIME_PPS_PRESENT", ppsDevice: now.device, found: devices },
        `PPS source present: ${devices.join(", ")}; its pulses are not read by this version (the kernel PPS API needs a native reader), GPS time comes from the NMEA sentences`,
      );
    }
    return now;
  }
}
