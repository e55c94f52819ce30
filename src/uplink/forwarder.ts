// The forwarder: moves events from the outbox to the county center over MQTT (DESIGN.md §5, §6).
//
// The SQLite outbox is the source of truth, never mqtt.js's in-memory queue: we publish only while
// connected, keep at most `inflight` publishes unacknowledged, and mark a row delivered only on its
// PUBACK (or on the center's receipt). Each connection attempt gets a fresh client, so nothing
// half-sent in a dead client's memory is replayed behind our back; after a reconnect, whatever was
// not acknowledged is simply still pending in the outbox and goes again (at least once; the center
// dedups by event id).
import { EventEmitter } from "node:events";
import mqtt, { type IClientOptions, type IClientPublishOptions, type MqttClient } from "mqtt";
import type { Logger } from "pino";
import { backoffDelay } from "../backoff.ts";
import type { Envelope } from "../events/model.ts";
import type { Outbox, PendingRow } from "../outbox/outbox.ts";
import { Batcher } from "./batch.ts";
import { CONTENT_ENCODING, DEFAULT_WIRE, eventPayload, PUBLISH_OVERHEAD, type WireOptions } from "./wire.ts";
import { Inbound, type Command } from "./inbound.ts";
import type { CenterReport } from "./messages.ts";

export interface UplinkOptions {
  url: string;
  protocolVersion: 4 | 5;
  clientId: string;
  username?: string;
  password?: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: boolean;
  inflight: number;
  keepaliveS: number;
  connectTimeoutS: number;
  backoff: { initialMs: number; maxMs: number };
  /** Mark delivered only on the center's end-to-end receipt; resend when none came in time. */
  receipts: boolean;
  receiptTimeoutS: number;
  statusIntervalS: number;
  /** Batches, compression and the message size limit (src/uplink/wire.ts); default: plain, 256 KiB. */
  wire?: WireOptions;
}

/**
 * Delivery marks are written when this many PUBACKs are waiting, or after MARK_DELAY_MS. A
 * transaction of 1,024 marks costs ~1.2 µs of CPU a mark, of 256 ~1.7, of 64 ~2.4 (2-core dev box);
 * a crash before the write means at most this many events sent again.
 */
export const MARK_BATCH = 1024;
export const MARK_DELAY_MS = 50;

/**
 * Rows read from the outbox at a time. A read costs a fixed overhead (two statements) plus its
 * rows; refills come a few rows per turn of the event loop.
 */
const READ_AHEAD = 256;

/** How long stop() waits for in-flight publishes to be acknowledged. */
const STOP_GRACE_MS = 3000;

export interface ForwarderDeps {
  outbox: Outbox;
  log: Logger;
  nowMs: () => number;
  /** What the retained status message says besides online/offline. */
  status: () => Record<string, unknown>;
  commands?: Record<string, Command>;
  /** Takes the center's reading of an ECG, or throws why not (src/uplink/inbound.ts). */
  acceptReport?: (r: CenterReport) => { caseId?: string };
  /** Whether the gateway's clock is synchronized (a command's expiry is judged by it). Default yes. */
  timeKnown?: () => boolean;
  random?: () => number;
  /** How long acknowledgements wait to be marked with more of them while the queue is busy (MARK_DELAY_MS). */
  markDelayMs?: number;
  /** How long publishStatusSoon() waits, gathering what else changes meanwhile (default 2 s). */
  statusSoonMs?: number;
}

export type UplinkState = "idle" | "connecting" | "connected" | "waiting";

export class Forwarder extends EventEmitter<{
  state: [UplinkState];
  /** Events delivered: how many, and for PUBACKs, each one's time from storing to acknowledgement. */
  delivered: [count: number, latenciesMs: number[]];
  /** The broker acknowledged these rows (events or chunks), whatever the delivery mode: progress for the page. */
  acked: [seqs: number[]];
  /** The center's receipt named these event ids. */
  receipt: [ids: string[]];
  /** A command from the center refused before it ran (not JSON, malformed, unknown, invalid arguments), and why. */
  commandRefused: [name: string, reason: string];
}> {
  readonly options: UplinkOptions;
  readonly topics: { base: string; status: string; receipt: string; report: string; cmd: string };
  #deps: ForwarderDeps;
  /** Receipts, reports and commands from the center, and their answers. */
  #inbound: Inbound;
  #client: MqttClient | null = null;
  #generation = 0;
  #attempt = 0;
  #retryTimer: NodeJS.Timeout | null = null;
  #statusTimer: NodeJS.Timeout | null = null;
  #resendTimer: NodeJS.Timeout | null = null;
  /** Sequence numbers published and not yet acknowledged, with when they were stored. */
  #inflight = new Map<number, number>();
  /** Messages published and not yet acknowledged (a batch is one), and the bytes of the batches among them. */
  #messages = 0;
  #batchBytes = 0;
  #batcher: Batcher;
  /** Rows too large for any message (stored before the limit was lowered): held, said once. */
  #oversize = new Set<number>();
  /** Acknowledged, delivery not yet marked in the outbox (marks are written in batches). */
  #acked = new Map<number, number>();
  #skip = { has: (seq: number) => this.#inflight.has(seq) || this.#acked.has(seq) || this.#oversize.has(seq) };
  /** Position in delivery order after the last event handed out on this connection. */
  #cursor: { priority: number; seq: number } | undefined;
  /**
   * Rows read ahead from the cursor, in delivery order, and how many of them were handed out: one
   * read of READ_AHEAD rows serves many refills of the window, each of a few rows.
   */
  #ahead: PendingRow[] = [];
  #aheadAt = 0;
  #pumpScheduled = false;
  #eventTopics = new Map<string, string>();
  /** The same options object for every publish of a kind (mqtt.js copies what it needs from them). */
  #publishOptions: { event: IClientPublishOptions; gzip: IClientPublishOptions; blob: IClientPublishOptions };
  #markTimer: NodeJS.Timeout | null = null;
  #markSoon: NodeJS.Immediate | null = null;
  /** Events the outbox had no room for (its own alarms on a full disk), and whether each is in flight. */
  #unstored = new Map<Envelope, boolean>();
  #statusSoon: NodeJS.Timeout | null = null;
  #running = false;
  #state: UplinkState = "idle";
  #since = 0;
  #onAppended = (priority: number) => {
    // Something more urgent than where the cursor stands (a new ECG behind a vitals backlog): start over.
    if (this.#cursor && priority < this.#cursor.priority) this.#rewind();
    // Something that goes before rows read ahead (a case event ahead of read-ahead waveforms): read again from the cursor.
    else if (priority < (this.#ahead.at(-1)?.priority ?? -1)) this.#ahead = [];
    this.#pump();
  };

  constructor(options: UplinkOptions, deps: ForwarderDeps, gatewayId: string) {
    super();
    this.options = options;
    this.#deps = deps;
    const base = `vitalgate/v1/${gatewayId}`;
    const contentType = (type: string, gzip = false): IClientPublishOptions =>
      options.protocolVersion === 5
        ? {
            qos: 1,
            properties: {
              contentType: type,
              ...(gzip ? { userProperties: { [CONTENT_ENCODING.name]: CONTENT_ENCODING.value } } : {}),
            },
          }
        : { qos: 1 };
    this.#publishOptions = {
      event: contentType("application/json"),
      gzip: contentType("application/json", true),
      blob: contentType("application/octet-stream"),
    };
    this.topics = {
      base,
      status: `${base}/status`,
      receipt: `${base}/receipt`,
      report: `${base}/report`,
      cmd: `${base}/cmd/`,
    };
    this.#batcher = new Batcher(options.wire ?? DEFAULT_WIRE, this.#eventTopic("batch"), {
      nowMs: deps.nowMs,
      // The earliest lingering batch is due: read the queue again from the top.
      due: () => {
        this.#rewind();
        this.#pump();
      },
    });
    this.#inbound = new Inbound({
      log: deps.log,
      base,
      protocolVersion: options.protocolVersion,
      nowMs: deps.nowMs,
      timeKnown: deps.timeKnown,
      commands: deps.commands,
      acceptReport: deps.acceptReport,
      receive: (ids) => {
        const n = deps.outbox.markReceived(ids);
        if (n > 0) this.emit("delivered", n, []);
        this.emit("receipt", ids);
        return n;
      },
      refused: (name, reason) => this.emit("commandRefused", name, reason),
      ran: () => {
        this.#rewind(); // a command may have put events back in the queue
        this.#pump();
      },
      publish: (topic, payload, options) => this.#client?.publish(topic, payload, options, () => undefined),
    });
  }

  get state(): UplinkState {
    return this.#state;
  }

  /** Since when (Unix ms) the uplink has been in its current state. */
  get since(): number {
    return this.#since;
  }

  get inflight(): number {
    return this.#inflight.size;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#deps.outbox.on("appended", this.#onAppended);
    this.#connect();
  }

  /** Publishes the offline status, waits for outstanding acknowledgements briefly, disconnects. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#deps.outbox.off("appended", this.#onAppended);
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    if (this.#statusTimer) clearInterval(this.#statusTimer);
    if (this.#resendTimer) clearInterval(this.#resendTimer);
    if (this.#statusSoon) clearTimeout(this.#statusSoon);
    this.#statusSoon = null;
    this.#batcher.stop();
    const client = this.#client;
    this.#client = null;
    this.#generation++;
    this.#flushAcks();
    if (client) {
      // A connected client gets a moment to say offline and finish what is in flight; the broker
      // may not answer (it may be gone without the socket knowing yet), so the moment is bounded.
      // Whatever was not acknowledged is in the outbox still.
      const graceful = async () => {
        if (!client.connected) return;
        await client.publishAsync(this.topics.status, this.#statusPayload("offline"), { qos: 1, retain: true });
        await client.endAsync(false);
      };
      let grace: NodeJS.Timeout | undefined;
      await Promise.race([
        graceful().catch(() => undefined),
        new Promise((r) => (grace = setTimeout(r, STOP_GRACE_MS))),
      ]);
      clearTimeout(grace);
      await client.endAsync(true).catch(() => undefined);
    }
    this.#clearInflight();
    this.#setState("idle");
  }

  #setState(state: UplinkState): void {
    if (state === this.#state) return;
    this.#state = state;
    this.#since = this.#deps.nowMs();
    this.emit("state", state);
  }

  #connect(): void {
    const o = this.options;
    const generation = ++this.#generation;
    this.#setState("connecting");
    const clientOptions: IClientOptions = {
      clientId: o.clientId,
      protocolVersion: o.protocolVersion,
      clean: false,
      keepalive: o.keepaliveS,
      connectTimeout: o.connectTimeoutS * 1000,
      reconnectPeriod: 0, // we reconnect ourselves, with backoff and a fresh client
      username: o.username,
      password: o.password,
      ca: o.ca,
      cert: o.cert,
      key: o.key,
      rejectUnauthorized: o.rejectUnauthorized,
      // mqtt-packet's cache of a Buffer for every one of the 65,536 message ids costs 6.5 MB of heap
      // for a saving too small to measure at our rates (decision 0008).
      writeCache: false,
      // mqtt.js formats a debug line several times per publish and acknowledgement even when the
      // `debug` namespace is off: ~0.7 µs of CPU per event (docs/decisions/0007). DEBUG=mqttjs* still
      // turns its lines on for troubleshooting.
      log: process.env.DEBUG?.includes("mqttjs") ? undefined : () => undefined,
      // The broker publishes this when the connection dies: it carries no time, as we cannot know when that will be.
      will: { topic: this.topics.status, payload: JSON.stringify({ state: "offline" }), qos: 1, retain: true },
      ...(o.protocolVersion === 5 ? { properties: { sessionExpiryInterval: 7 * 24 * 3600 } } : {}),
    };
    const client = mqtt.connect(o.url, clientOptions);
    this.#client = client;
    const current = () => generation === this.#generation;
    client.on("connect", () => {
      if (!current()) return;
      this.#attempt = 0;
      this.#clearInflight();
      this.#rewind();
      this.#setState("connected");
      this.#deps.log.info({ url: redactUrl(o.url) }, "uplink connected");
      client.subscribe([this.topics.receipt, this.topics.report, `${this.topics.cmd}+`], { qos: 1 }, (err) => {
        if (err && current()) this.#deps.log.warn({ err: err.message }, "uplink subscribe failed");
      });
      this.#publishStatus();
      this.#sendUnstored();
      this.#statusTimer ??= setInterval(() => this.#publishStatus(), o.statusIntervalS * 1000);
      // Sent events whose receipt is overdue become pending again; look for them now and then.
      if (o.receipts) {
        this.#resendTimer ??= setInterval(
          () => {
            this.#rewind();
            this.#pump();
          },
          Math.min(o.receiptTimeoutS * 500, 5000),
        );
      }
      this.#pump();
    });
    client.on("message", (topic, payload, packet) => {
      if (current()) this.#inbound.handle(topic, payload, packet.properties);
    });
    client.on("error", (err) => {
      if (current()) this.#deps.log.warn({ err: err.message, code: (err as { code?: unknown }).code }, "uplink error");
    });
    client.on("close", () => {
      if (!current()) return;
      this.#lost(client);
    });
  }

  #lost(client: MqttClient): void {
    this.#generation++;
    for (const e of this.#unstored.keys()) this.#unstored.set(e, false);
    this.#clearInflight();
    this.#rewind();
    this.#flushAcks();
    // Our listeners stay: they ignore a client of an earlier generation, and its "error" listener is
    // what keeps a late error (a connack timeout firing after the socket died) from being unhandled.
    // (removeAllListeners would also strip mqtt.js's own handlers, which clear that very timer.)
    client.end(true);
    if (this.#client === client) this.#client = null;
    if (!this.#running) return;
    const delay = backoffDelay(this.#attempt++, this.options.backoff, this.#deps.random);
    this.#setState("waiting");
    this.#deps.log.info({ retryInMs: delay, attempt: this.#attempt }, "uplink down; retrying");
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (this.#running) this.#connect();
    }, delay);
  }

  #clearInflight(): void {
    this.#inflight.clear();
    this.#messages = 0;
    this.#batchBytes = 0;
  }

  /**
   * Fills the in-flight window from the outbox, highest priority first: each row a message of its
   * own, but for what waits (priorities 2 and 3, with `wire.compact`), which goes in batches.
   */
  #pump(): void {
    const client = this.#client;
    if (!client || this.#state !== "connected") return;
    const wire = this.options.wire ?? DEFAULT_WIRE;
    while (this.#messages < this.options.inflight) {
      const row = this.#peek();
      if (!row) break;
      if (this.#batcher.takes(row)) {
        if (this.#batchBytes >= wire.inflightBytes) {
          // The batch window is full: only a more urgent row may still go (the next rewind finds it).
          break;
        }
        const batch = this.#batcher.take(
          row.priority,
          () => this.#peek(),
          () => this.#next(),
        );
        if (batch === "wait") continue; // this priority lingers; the rows after it may go
        for (const message of batch.messages)
          this.#send(client, message.topic, message.payload, message.rows, this.#publishOptions.gzip);
        for (const r of batch.oversize) this.#holdOversize(r);
        continue;
      }
      this.#next();
      const blob = row.topic !== null;
      if (blob) {
        this.#send(client, `${this.topics.base}/${row.topic}`, row.payload, [row], this.#publishOptions.blob);
        continue;
      }
      const { payload, gzip } = eventPayload(row.payload, wire.compact);
      if (Buffer.byteLength(payload) + PUBLISH_OVERHEAD > wire.maxMessageBytes) {
        this.#holdOversize(row);
        continue;
      }
      const topic = this.#eventTopic(row.kind);
      this.#send(client, topic, payload, [row], gzip ? this.#publishOptions.gzip : this.#publishOptions.event);
    }
  }

  /** Publishes one message of `rows` (one event or chunk, or a batch); on its PUBACK, all of them are acknowledged. */
  #send(
    client: MqttClient,
    topic: string,
    payload: string | Buffer,
    rows: PendingRow[],
    options: IClientPublishOptions,
  ): void {
    const generation = this.#generation;
    const batchBytes = rows.length > 1 || this.#batcher.takes(rows[0]!) ? Buffer.byteLength(payload) : 0;
    for (const r of rows) this.#inflight.set(r.seq, r.createdMs);
    this.#messages++;
    this.#batchBytes += batchBytes;
    client.publish(topic, payload, options, (err) => {
      if (generation !== this.#generation) return; // the connection it went out on is gone
      this.#messages--;
      this.#batchBytes -= batchBytes;
      for (const r of rows) this.#inflight.delete(r.seq);
      if (err) {
        this.#rewind(); // go back for them
        return;
      }
      for (const r of rows) this.#acked.set(r.seq, r.createdMs);
      this.#schedulePump();
    });
  }

  /**
   * A row no message under `wire.maxMessageBytes` can carry (one stored before the limit was
   * lowered: new events are fitted at intake): kept in the outbox, not sent, said in the log once.
   */
  #holdOversize(row: PendingRow): void {
    if (this.#oversize.has(row.seq)) return;
    this.#oversize.add(row.seq);
    this.#deps.log.error(
      {
        code: "VG_MESSAGE_TOO_LARGE",
        seq: row.seq,
        kind: row.kind,
        bytes: Buffer.byteLength(row.payload),
        maxMessageBytes: (this.options.wire ?? DEFAULT_WIRE).maxMessageBytes,
      },
      "an event is larger than uplink.maxMessageKiB allows: kept in the outbox, not sent (raise the limit to send it)",
    );
  }

  /**
   * Sends an event that is not in the outbox (an alarm about the outbox itself, when the disk has no
   * room for it): from memory, QoS 1, again on each new connection until the broker acknowledges it.
   * Lost if the gateway stops first; the condition is then found again at the next start.
   */
  publishUnstored(event: Envelope): void {
    this.#unstored.set(event, false);
    this.#sendUnstored();
  }

  #sendUnstored(): void {
    const client = this.#client;
    if (!client || this.#state !== "connected") return;
    const generation = this.#generation;
    for (const [event, inFlight] of this.#unstored) {
      if (inFlight) continue;
      this.#unstored.set(event, true);
      client.publish(this.#eventTopic(event.kind), JSON.stringify(event), this.#publishOptions.event, (err) => {
        if (generation !== this.#generation) return;
        if (err) this.#unstored.set(event, false);
        else this.#unstored.delete(event);
      });
    }
  }

  /** The next row to publish in delivery order, read ahead from the outbox; undefined when none is pending. */
  #peek(): PendingRow | undefined {
    if (this.#aheadAt >= this.#ahead.length) {
      const resendBefore = this.options.receipts ? this.#deps.nowMs() - this.options.receiptTimeoutS * 1000 : undefined;
      this.#ahead = this.#deps.outbox.pending(READ_AHEAD, this.#skip, resendBefore, this.#cursor);
      this.#aheadAt = 0;
    }
    return this.#ahead[this.#aheadAt];
  }

  /** Takes the row #peek() shows: the cursor moves past it. */
  #next(): PendingRow | undefined {
    const row = this.#peek();
    if (row) {
      this.#aheadAt++;
      this.#cursor = row;
    }
    return row;
  }

  /** Reads from the top of the delivery order again (what is in flight or acknowledged is skipped). */
  #rewind(): void {
    this.#cursor = undefined;
    this.#ahead = [];
  }

  /** `…/ev/{kind}`, built once per kind rather than once per event. */
  #eventTopic(kind: string): string {
    let topic = this.#eventTopics.get(kind);
    if (topic === undefined) this.#eventTopics.set(kind, (topic = `${this.topics.base}/ev/${kind}`));
    return topic;
  }

  /** Refills the window once per turn of the event loop, however many PUBACKs came in it. */
  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    queueMicrotask(() => {
      this.#pumpScheduled = false;
      // The window is refilled first, and a full batch of marks is written only once the refill has
      // left: mqtt-packet corks the socket until the next tick, so marks written here would hold the
      // broker's next publishes back for as long as they take, and the window would run dry.
      this.#pump();
      // With nothing left in flight the queue is drained: no more acknowledgements to batch with.
      if (this.#acked.size >= MARK_BATCH || this.#messages === 0)
        this.#markSoon ??= setImmediate(() => this.#flushAcks());
      else this.#markTimer ??= setTimeout(() => this.#flushAcks(), this.#deps.markDelayMs ?? MARK_DELAY_MS);
    });
  }

  /** Writes the acknowledged events' delivery marks to the outbox, many per transaction. */
  #flushAcks(): void {
    if (this.#markTimer) clearTimeout(this.#markTimer);
    if (this.#markSoon) clearImmediate(this.#markSoon);
    this.#markTimer = null;
    this.#markSoon = null;
    if (this.#acked.size === 0) return;
    const acked = this.#acked;
    this.#acked = new Map();
    const seqs = [...acked.keys()];
    if (this.options.receipts) this.#deps.outbox.markSent(seqs);
    else this.#deps.outbox.markDelivered(seqs);
    const now = this.#deps.nowMs();
    if (!this.options.receipts)
      this.emit(
        "delivered",
        seqs.length,
        [...acked.values()].map((created) => now - created),
      );
    this.emit("acked", seqs);
  }

  /**
   * Publishes the status again shortly (after `statusSoonMs`, default 2 s), once however many ask in
   * the meantime: for news the center should not wait the whole status interval for.
   */
  publishStatusSoon(): void {
    this.#statusSoon ??= setTimeout(() => {
      this.#statusSoon = null;
      this.#publishStatus();
    }, this.#deps.statusSoonMs ?? 2000);
  }

  #publishStatus(): void {
    const client = this.#client;
    if (!client?.connected) return;
    client.publish(this.topics.status, this.#statusPayload("online"), { qos: 1, retain: true }, () => undefined);
  }

  #statusPayload(state: "online" | "offline"): string {
    return JSON.stringify({
      state,
      at: new Date(this.#deps.nowMs()).toISOString(),
      ...(state === "online" ? this.#deps.status() : {}),
    });
  }
}

/** The uplink URL without credentials, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    return u.toString();
  } catch {
    return "(invalid url)";
  }
}
