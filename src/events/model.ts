// The event envelope of DESIGN.md §3: the one shape that is stored, published, printed by
// `vitalgate decode` and shown on the web page.

import type { TimeSource } from "../time/clock.ts";

export const ENVELOPE_VERSION = 1;

export type EventKind = "vitals" | "waveform" | "ecg12" | "alarm" | "position" | "lab" | "device" | "case" | "gap";
export const EVENT_KINDS: readonly EventKind[] = [
  "vitals",
  "waveform",
  "ecg12",
  "alarm",
  "position",
  "lab",
  "device",
  "case",
  "gap",
];

export type DeviceKind = "monitor" | "ecg-cart" | "ventilator" | "analyzer" | "gps" | "gateway";

/** Delivery priority (DESIGN.md §5): lower goes first. */
export const PRIORITY: Record<EventKind, 0 | 1 | 2 | 3> = {
  ecg12: 0,
  alarm: 0,
  case: 1,
  gap: 1,
  device: 2,
  vitals: 2,
  lab: 2,
  position: 2,
  waveform: 3,
};

/** Kinds the store never evicts to make room (DESIGN.md §5); a gap record says what was. */
export const NEVER_EVICTED: ReadonlySet<EventKind> = new Set(["ecg12", "alarm", "case", "gap"]);

export interface DeviceRef {
  id: string;
  driver: string;
  kind: DeviceKind;
  model?: string;
  serial?: string;
}

export interface EventTime {
  /** When the gateway received it, on the gateway's synchronized clock. */
  recv: string;
  /** Source of the gateway's time estimate. */
  src: TimeSource;
  /** Uncertainty of `recv` in milliseconds. With `unbounded`, a placeholder (one day), not a bound. */
  uncMs: number;
  /** Only with `unsynced` (not restamped): `uncMs` is no measurement; the error of the times is not bounded. */
  unbounded?: true;
  /**
   * Which clock `t` is on: "recv", the receive time; "device-corrected", the device's time less
   * `devSkewMs`; "device", the device's own time, uncorrected (no skew known), as good as its clock.
   */
  tFrom?: "recv" | "device" | "device-corrected";
  /**
   * Stamped after the gateway's time stepped back by this much (ms, negative), while its times may
   * be earlier than those stamped before the step: order such events by `seq` (docs/time.md).
   */
  stepBackMs?: number;
  /** The device's own timestamp, raw, as it sent it. */
  dev?: string;
  /** Device clock minus true time, ms, when estimated. */
  devSkewMs?: number;
  /** Set when the event was stamped before any time source was synchronized. */
  unsynced?: boolean;
  /**
   * With `unsynced` (on Linux): the kernel's boot id and the monotonic clock since boot (ms,
   * CLOCK_MONOTONIC) when it was stamped. The first sync in the same boot corrects it by these,
   * whichever run of the gateway stamped it.
   */
  boot?: string;
  monoMs?: number;
  /**
   * Set on an `unsynced` event whose times were corrected when the first sync of the same boot came
   * (the monotonic clock was valid throughout): `recv` and `t` are then right to `uncMs`, and `src`
   * names the source that synchronized. An `unsynced` event without it was never corrected (the box
   * rebooted or slept, or the event had already left, before any sync).
   */
  restamped?: boolean;
}

export interface Observation {
  /** IEEE 11073-10101 reference id (MDC_...) or the vendor's local code when unmapped. */
  code: string;
  /** IEEE 11073-10101 numeric code (partition × 2^16 + term code), when known. */
  mdc?: number;
  value: number | string;
  /** UCUM unit. */
  unit: string;
  status?: string;
  /** Measurement time (ISO 8601, UTC), when it differs from the event's: the device's, corrected by its skew when known. */
  at?: string;
  /** With a corrected `at`: the device's own time as it said it (ISO 8601, UTC). */
  atDev?: string;
  /** Where the observation sits in the device (IHE PCD-01 OBX-4 containment, e.g. "1.3.1.150456"). */
  sub?: string;
  /** The device was in demo mode (simulated values, not a patient's). */
  demo?: true;
  /** The numeric code the device sent when it disagrees with `code` (then `mdc` is `code`'s). */
  mdcSent?: number;
}

/** `demo`: the event holds demo data (a monitor in demo mode, a training message), not a patient's. */
export interface VitalsBody {
  observations: Observation[];
  demo?: boolean;
}
/** IHE PCD-04 alert type (OBX-8 SP, ST, SA): technical alarms are the device's INOPs. */
export type AlarmType = "physiological" | "technical" | "advisory";
export interface AlarmBody {
  code: string;
  priority: string;
  state: string;
  text: string;
  source?: string;
  /** IHE PCD-04 event phase as sent (start, continue, end, ...). */
  phase?: string;
  type?: AlarmType;
  demo?: boolean;
}
/**
 * A gap record: what the outbox's quota took of one device's kind of data (docs/protocol.md "gap").
 * Receive times, ISO 8601 UTC.
 */
export interface GapBody {
  of: string;
  action: "thinned" | "dropped";
  from: string;
  to: string;
  events: number;
  /** With `thinned`: what was kept of the span. */
  kept?: string;
}

/**
 * A device message's own identity: HL7 MSH-10, the ASTM header's message control id (H.3), a
 * DICOM object's SOP Instance UID, or a dropped file's name and SHA-256. `n` is the event's place
 * (from 1) among the events made from that message: the same message always makes the same events.
 */
export interface MessageRef {
  id: string;
  n: number;
}

export interface Envelope<B = unknown> {
  v: typeof ENVELOPE_VERSION;
  id: string;
  seq: number;
  gw: string;
  dev: DeviceRef;
  case?: string;
  /** The device's own identity of the message the event came from (docs/protocol.md "msg"). */
  msg?: MessageRef;
  kind: EventKind;
  t: string;
  time: EventTime;
  body: B;
  /**
   * The event's revision: absent (0) as first stored; one more each time the gateway rewrites it
   * after it may have been sent (its times placed by the first sync, its case renamed). Same id,
   * other bytes: the center keeps the highest.
   */
  rev?: number;
}

/**
 * What a driver produces from one message: the kind-specific part. The core adds id, seq, gw, dev
 * and the time stamp.
 */
export interface EventDraft {
  kind: EventKind;
  body: unknown;
  /** Device-reported measurement time (ISO 8601 UTC) if the message carries one. */
  deviceTime?: string;
  /** Device-reported time exactly as sent (e.g. HL7 TS "20261123152901+0800"). */
  deviceTimeRaw?: string;
  /** Device identity learned from the message (model, serial). */
  model?: string;
  serial?: string;
  /**
   * The file the event was decoded from (an ECG cart's export), kept and sent whole: the core puts
   * `original: { contentType, bytes, sha256 }` into the body and sends the file in chunks after it.
   */
  original?: { contentType: string; bytes: Uint8Array };
}
