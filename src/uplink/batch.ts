// Batches of what waits (docs/protocol.md "Batches and compression"): the forwarder hands the
// rows of priorities 2 and 3 here, in delivery order; they leave as gzip-compressed JSON arrays of
// envelopes, sized to a target that keeps the link's queue short for a new ECG and every message
// under the size limit. A batch not yet full waits up to `batchWaitMs` from its oldest event for
// more to travel with it.
import type { PendingRow } from "../outbox/outbox.ts";
import { BATCHED_FROM_PRIORITY, batchPayload, MAX_BATCH_EVENTS, PUBLISH_OVERHEAD, type WireOptions } from "./wire.ts";

export interface BatchMessage {
  topic: string;
  payload: Buffer;
  rows: PendingRow[];
}

/** How many bytes of JSON make one byte of gzip, at first, low to be safe (vitals batches make 10-30; waveforms 1.3-3). */
const FIRST_RATIO = 2;

export class Batcher {
  readonly #wire: WireOptions;
  readonly #topic: string;
  readonly #deps: { nowMs: () => number; due: () => void };
  /**
   * JSON bytes per compressed byte of the last batches of each priority (a moving average), to size
   * the next: vitals compress far better than waveforms, so each priority keeps its own.
   */
  #ratio = new Map<number, number>();
  #timer: NodeJS.Timeout | null = null;
  #dueAt = Infinity;

  constructor(wire: WireOptions, topic: string, deps: { nowMs: () => number; due: () => void }) {
    this.#wire = wire;
    this.#topic = topic;
    this.#deps = deps;
  }

  /** Whether this row travels in a batch: an event (not a file chunk) of priority 2 or 3, with compact on. */
  takes(row: PendingRow): boolean {
    return this.#wire.compact && row.priority >= BATCHED_FROM_PRIORITY && row.topic === null;
  }

  /**
   * Takes the rows of `priority` that come next (`peek` shows the next row, `next` takes it) into
   * messages; or "wait", with the rows taken, when the batch is not full and its oldest event may
   * still wait for more: the forwarder goes on to later priorities and is called back (`due`) when
   * the batch is due, to read these rows again. `oversize`: rows no message can carry.
   */
  take(
    priority: number,
    peek: () => PendingRow | undefined,
    next: () => PendingRow | undefined,
  ): "wait" | { messages: BatchMessage[]; oversize: PendingRow[] } {
    const target = this.#targetJsonBytes(priority);
    const rows: PendingRow[] = [];
    let bytes = 0;
    let oldest = Infinity;
    for (
      let row = peek();
      row && row.priority === priority && this.takes(row) && rows.length < MAX_BATCH_EVENTS && bytes < target;
      row = peek()
    ) {
      next();
      rows.push(row);
      bytes += Buffer.byteLength(row.payload) + 1;
      oldest = Math.min(oldest, row.createdMs);
    }
    const full = bytes >= target || rows.length >= MAX_BATCH_EVENTS;
    const dueAt = oldest + this.#wire.batchWaitMs;
    if (!full && dueAt > this.#deps.nowMs()) {
      this.#wake(dueAt);
      return "wait";
    }
    const messages: BatchMessage[] = [];
    const oversize: PendingRow[] = [];
    this.#cut(priority, rows, messages, oversize);
    return { messages, oversize };
  }

  /** Compresses `rows` into one message, or, above the size limit, halves them until each fits. */
  #cut(priority: number, rows: PendingRow[], messages: BatchMessage[], oversize: PendingRow[]): void {
    const { payload, jsonBytes } = batchPayload(rows.map((r) => r.payload));
    if (payload.length + PUBLISH_OVERHEAD <= this.#wire.maxMessageBytes) {
      const ratio = this.#ratio.get(priority) ?? FIRST_RATIO;
      this.#ratio.set(priority, 0.7 * ratio + 0.3 * (jsonBytes / payload.length));
      messages.push({ topic: this.#topic, payload, rows });
      return;
    }
    if (rows.length === 1) {
      oversize.push(rows[0]!);
      return;
    }
    const half = Math.ceil(rows.length / 2);
    this.#cut(priority, rows.slice(0, half), messages, oversize);
    this.#cut(priority, rows.slice(half), messages, oversize);
  }

  /**
   * JSON bytes to gather for one batch: what compresses to half the batch window (so two batches
   * keep the link busy while a new ECG finds at most the window ahead of it), under the size limit.
   */
  #targetJsonBytes(priority: number): number {
    const compressed = Math.min(this.#wire.maxMessageBytes - PUBLISH_OVERHEAD, this.#wire.inflightBytes / 2);
    return compressed * (this.#ratio.get(priority) ?? FIRST_RATIO) * 0.9;
  }

  /** Calls `due` at `at` (the earliest of the batches waiting). */
  #wake(at: number): void {
    if (at >= this.#dueAt && this.#timer) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#dueAt = at;
    this.#timer = setTimeout(
      () => {
        this.#timer = null;
        this.#dueAt = Infinity;
        this.#deps.due();
      },
      Math.max(0, at - this.#deps.nowMs()),
    );
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#dueAt = Infinity;
  }
}
