// Intake (DESIGN.md §3, §4): a driver's drafts become stamped events, committed to the outbox with
// the original files some carry, marked with the open case, checked for what their device's clock
// says; what was committed is announced to the case book and whoever listens (the page's live view).
import { createHash } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { CaseBook } from "../cases/case-book.ts";
import type { IngestOptions } from "../devices/device-manager.ts";
import type { Outbox } from "../outbox/outbox.ts";
import { chunkBytesFor, fitToMessage, gzipChunks, type WireOptions } from "../uplink/wire.ts";
import type { Clock, TimeEstimate } from "../time/clock.ts";
import { LIVE_KINDS, type DeviceClocks } from "../time/device-clocks.ts";
import type { DeviceRef, Envelope, EventDraft } from "./model.ts";
import { deviceTimeMs, stamp } from "./stamp.ts";

/** A device's message id longer than this is not carried (HL7 ST, as MSH-10 is, is at most 199). */
export const MAX_MESSAGE_ID = 199;

export interface IntakeDeps {
  log: Logger;
  clock: Clock;
  outbox: Outbox;
  deviceClocks: DeviceClocks;
  cases: Pick<CaseBook, "caseFor" | "observe">;
  gatewayId(): string;
  /** `store.resendWindowS`: how long the same message from the same device is recognised as a resend. */
  resendWindowS(): number;
  /** How events travel (compact or not, the message limit): original files are compressed and events fitted here. */
  wire(): WireOptions;
  /** A device's clock state changed and was stored: keep the skews for the next start. */
  clocksChanged(): void;
}

/** `events`: what was just committed (after the device's acknowledgement is due). */
export class Intake extends EventEmitter<{ events: [Envelope[]] }> {
  #deps: IntakeDeps;
  /** Devices whose unplaceable times were reported, and record checks said (once each per run). */
  #unplaced = new Set<string>();
  #recordWarned = new Set<string>();

  constructor(deps: IntakeDeps) {
    super();
    this.#deps = deps;
  }

  /**
   * Stamps drafts from a device and commits them, with the original files some carry; resolves
   * once durable. With a dedupKey, a message already committed under it is not stored again. With
   * the device's message id, its events carry it (`msg`), and the same message (same id, same
   * content) from the same device within `store.resendWindowS` is not stored again either: a
   * resend after a lost acknowledgement, answered as accepted with no second event.
   * While a case is open for the device's location (or the whole box), its events carry its id.
   */
  commit(dev: DeviceRef, drafts: EventDraft[], options: IngestOptions = {}): Promise<Envelope[]> {
    const blobs: { eventId: string; bytes: Uint8Array; chunks?: Buffer[] }[] = [];
    const wire = this.#deps.wire();
    // A GPS receiver is the time reference: its skew is zero by definition. (Its fixes reach us an
    // epoch late, as an epoch is complete only when the next begins, which would read as a slow clock.)
    const now = this.#deps.clock.now();
    const skewMs = dev.kind === "gps" ? 0 : this.#deps.deviceClocks.observe(dev.id, drafts, now.ms, !now.unbounded);
    if (dev.kind !== "gps") this.#checkDeviceTimes(dev, drafts, skewMs, now);
    const caseId = this.#deps.cases.caseFor(dev.id);
    const messageId =
      options.messageId !== undefined && options.messageId.length <= MAX_MESSAGE_ID ? options.messageId : undefined;
    const events = drafts.map((d, i) => {
      const event = stamp(
        d,
        dev,
        this.#deps.gatewayId(),
        this.#deps.clock,
        caseId,
        skewMs,
        messageId === undefined ? undefined : { id: messageId, n: i + 1 },
      );
      if (d.original) {
        const { contentType, bytes } = d.original;
        // Compressed where that helps, when the center reads compact messages (docs/protocol.md "Original files").
        const chunks = wire.compact ? gzipChunks(bytes, chunkBytesFor(wire.maxMessageBytes)) : undefined;
        event.body = {
          ...(event.body as object),
          original: {
            contentType,
            bytes: bytes.length,
            sha256: createHash("sha256").update(bytes).digest("hex"),
            ...(chunks ? { encoding: "gzip" } : {}),
          },
        };
        blobs.push({ eventId: event.id, bytes, chunks });
        return fitToMessage(event, wire.maxMessageBytes);
      }
      return event;
    });
    let dedup: { dedupKey?: string; dedupWindowMs?: number } = { dedupKey: options.dedupKey };
    const windowS = this.#deps.resendWindowS();
    if (options.dedupKey === undefined && messageId !== undefined && windowS > 0) {
      // Same device, same message id and same content: a resend, not a new message that reuses an
      // id (a monitor's counter starts again after a reboot).
      const digest = createHash("sha256")
        .update(messageId)
        .update("\0")
        .update(JSON.stringify(drafts))
        .digest("base64url");
      dedup = { dedupKey: `msg:${dev.id}:${digest}`, dedupWindowMs: windowS * 1000 };
    }
    return this.#deps.outbox.append(events, { ...dedup, blobs }).then((committed) => {
      if (skewMs !== undefined && dev.kind !== "gps") this.#judgeDeviceClock(dev);
      if (committed.length > 0) this.#announce(committed, caseId !== undefined);
      return committed;
    });
  }

  /**
   * Tells the case book (a case's ECG or position may be one of its time nodes, src/cases/case-book.ts) and
   * the page what was committed. A failure here never turns a commit into a refusal.
   */
  #announce(events: Envelope[], inCase: boolean): void {
    try {
      if (inCase && events.some((e) => e.kind === "ecg12" || e.kind === "position")) this.#deps.cases.observe(events);
      this.emit("events", events);
    } catch (err) {
      this.#deps.log.error(
        { code: "VG_LISTENER_FAILED", err: (err as Error).message },
        "a listener of committed events failed",
      );
    }
  }

  /**
   * What the gateway can say about a device's times beyond its skew: times it cannot place (no
   * offset and no zone, or unreadable; kept raw in time.dev), said once per device; and records
   * (an ECG) from a device with no live samples whose time is ahead of their arrival or long
   * before it (a cart's clock wrong), as a `device` event. Not judged while unsynchronized.
   */
  #checkDeviceTimes(
    dev: DeviceRef,
    drafts: readonly EventDraft[],
    skewMs: number | undefined,
    now: TimeEstimate,
  ): void {
    const log = this.#deps.log.child({ device: dev.id });
    for (const d of drafts) {
      if (d.deviceTime === undefined) {
        if (d.deviceTimeRaw !== undefined && !this.#unplaced.has(dev.id)) {
          this.#unplaced.add(dev.id);
          log.warn(
            { code: "VG_DEVICE_TIME_UNPLACED", kind: d.kind },
            "this device's times cannot be placed in UTC (no offset and no readable time zone, or not a time): they are kept raw in time.dev and the receive time is used; set the device's timezone option or time.zone",
          );
        }
        continue;
      }
      if (now.unbounded || skewMs !== undefined || LIVE_KINDS.has(d.kind)) continue;
      const check = this.#deps.deviceClocks.checkRecord(dev.id, deviceTimeMs(d.deviceTime), now.ms);
      if (!check) continue;
      const key = `${dev.id}:${check.state}`;
      if (this.#recordWarned.has(key)) continue;
      this.#recordWarned.add(key);
      log.warn(
        { code: check.state === "clock-ahead" ? "VG_DEVICE_CLOCK_AHEAD" : "VG_DEVICE_RECORD_LATE", ...check },
        check.state === "clock-ahead"
          ? `a ${d.kind} is dated ${Math.round(check.aheadMs / 1000)} s after it arrived: the device's clock is fast, set it right`
          : `a ${d.kind} is dated ${Math.round(check.lateMs / 60_000)} min before it arrived: a late send, or the device's clock is slow; check it`,
      );
      void this.#deps.outbox
        .append([stamp({ kind: "device", body: check }, dev, this.#deps.gatewayId(), this.#deps.clock)])
        .catch(() => this.#recordWarned.delete(key));
    }
  }

  /**
   * Raises a `device` event when a device's clock has gone beyond the threshold, or come back. Not
   * while the gateway's own time is unsynchronized: there is nothing true to judge against.
   */
  #judgeDeviceClock(dev: DeviceRef): void {
    if (this.#deps.clock.now().src === "unsynced") return;
    const change = this.#deps.deviceClocks.change(dev.id);
    if (!change) return;
    this.#deps.deviceClocks.commit(dev.id, change);
    const log = this.#deps.log.child({ device: dev.id });
    if (change.state === "clock-skew")
      log.warn(
        { code: "VG_DEVICE_CLOCK_SKEW", skewMs: change.skewMs, thresholdMs: change.thresholdMs },
        `device clock is off by ${Math.round(change.skewMs / 1000)} s: set it right (its times are being corrected)`,
      );
    else log.info({ code: "VG_DEVICE_CLOCK_OK", skewMs: change.skewMs }, "device clock is right again");
    this.#deps.outbox
      .append([stamp({ kind: "device", body: change }, dev, this.#deps.gatewayId(), this.#deps.clock)])
      .then(
        () => this.#deps.clocksChanged(),
        () =>
          this.#deps.deviceClocks.commit(dev.id, {
            ...change,
            state: change.state === "clock-skew" ? "clock-ok" : "clock-skew",
          }), // not stored: say it again next time
      );
  }
}
