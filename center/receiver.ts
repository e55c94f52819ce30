// A center worker's MQTT side: one connection to the county's broker, sharing the gateways' event
// and file streams with every other worker through MQTT 5 shared subscriptions
// (`$share/<group>/vitalgate/v1/+/ev/#`, `.../blob/#`), and reading the retained status with an
// ordinary subscription (docs/protocol.md). A message is acknowledged (PUBACK) only after the
// database committed it, and receipted to its gateway only after that commit: a worker killed at any
// point loses nothing, because what it had not committed is neither acknowledged nor receipted, and
// comes again (from the broker, or from the gateway after its receipt timeout) to a worker that is
// alive. Bad input is logged by what and where (never its content) and dropped.
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import type { Logger } from "pino";
import { outsideText } from "../src/log.ts";
import {
  ackSchema,
  envelopeSchema,
  parseTopic,
  RECEIPT_MAX_IDS,
  statusSchema,
  topics,
  type Report,
} from "./contract.ts";
import type { CenterDb, StoreResult } from "./db.ts";
import { decodeEventPayload } from "./payload.ts";

export interface BrokerOptions {
  url: string;
  /** MQTT 5 shared-subscription group: every worker of one center uses the same. */
  shareGroup: string;
  clientId: string;
  username?: string;
  password?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  rejectUnauthorized: boolean;
  keepaliveS: number;
  /** Connections for the bulk of the stream (vitals, waveforms, positions, lab, batches), beside the urgent one. */
  bulkConnections: number;
}

/**
 * The kinds the gateway sends with priority 0 and 1 (docs/protocol.md, Priorities and ordering): the
 * urgent lane. The others, and batches (priorities 2-3 only), are the bulk lanes'. A kind the
 * contract gains must be added to one of them.
 */
export const URGENT_KINDS = ["ecg12", "alarm", "case", "gap"] as const;
export const BULK_KINDS = ["vitals", "waveform", "position", "lab", "device", "batch"] as const;

export interface ReceiverOptions {
  broker: BrokerOptions;
  db: CenterDb;
  log: Logger;
  /** This worker's name, stored with each event it commits. */
  worker: string;
  /** Receipts for one gateway are gathered this long before they are sent (one message for a burst). */
  receiptDelayMs?: number;
  /** Wait between tries while the database refuses a commit (it is restarting): doubled up to 5 s. */
  retryMs?: number;
}

export interface ReceiverCounters {
  messages: number;
  stored: number;
  duplicates: number;
  invalid: number;
  files: number;
  fileMismatches: number;
  receipted: number;
  /** Milliseconds spent handling messages (parsing, committing). */
  busyMs: number;
}

export interface ReceiverEvents {
  /** A message committed: what the database made of it. */
  stored: [StoreResult & { topic: string }];
}

export class Receiver extends EventEmitter<ReceiverEvents> {
  #o: ReceiverOptions;
  /** The urgent lane's connection first (it also publishes receipts and reports), then the bulk lanes'. */
  #clients: MqttClient[] = [];
  #pendingReceipts = new Map<string, Set<string>>();
  #receiptTimer: NodeJS.Timeout | null = null;
  #stopping = false;
  readonly counters: ReceiverCounters = {
    messages: 0,
    stored: 0,
    duplicates: 0,
    invalid: 0,
    files: 0,
    fileMismatches: 0,
    receipted: 0,
    busyMs: 0,
  };

  constructor(o: ReceiverOptions) {
    super();
    this.#o = o;
  }

  get connected(): boolean {
    return this.#clients.length > 0 && this.#clients.every((c) => c.connected);
  }

  async start(): Promise<void> {
    const b = this.#o.broker;
    const share = `$share/${b.shareGroup}/vitalgate/v1/+`;
    // The urgent lane: what a gateway sends with priority 0 and 1 (ECGs and their files, alarms, case
    // times), on a connection of its own, so that it never waits behind a backlog of vitals at the
    // center either. Retained status with an ordinary subscription: brokers differ in whether a shared
    // subscription gets retained messages.
    const urgent = [
      ...URGENT_KINDS.map((k) => `${share}/ev/${k}`),
      `${share}/blob/#`,
      `${share}/cmd-result`,
      `${share}/ack/center`,
    ];
    const bulk = BULK_KINDS.map((k) => `${share}/ev/${k}`);
    this.#clients = [await this.#connect(`${b.clientId}`, [...urgent, "vitalgate/v1/+/status"])];
    for (let i = 1; i <= b.bulkConnections; i++) this.#clients.push(await this.#connect(`${b.clientId}-${i}`, bulk));
    this.#o.log.info(
      { code: "VG_CENTER_CONNECTED", broker: b.url, group: b.shareGroup, connections: this.#clients.length },
      "connected to the broker",
    );
  }

  /** One connection, subscribed to `filters`; its messages handled one at a time, each acknowledged after its commit. */
  async #connect(clientId: string, filters: string[]): Promise<MqttClient> {
    const b = this.#o.broker;
    const options: IClientOptions = {
      protocolVersion: 5,
      clientId,
      // A clean session: the broker gives shared messages only to workers that are connected. What a
      // killed worker held unacknowledged comes back from the gateway (receipts) or, on brokers that
      // redispatch (EMQX), from the broker at once. docs/center.md, "A worker killed".
      clean: true,
      properties: { sessionExpiryInterval: 0 },
      keepalive: b.keepaliveS,
      reconnectPeriod: 1000,
      connectTimeout: 30_000,
      rejectUnauthorized: b.rejectUnauthorized,
      ...(b.username !== undefined ? { username: b.username } : {}),
      ...(b.password !== undefined ? { password: b.password } : {}),
      ...(b.caFile ? { ca: readFileSync(b.caFile) } : {}),
      ...(b.certFile ? { cert: readFileSync(b.certFile) } : {}),
      ...(b.keyFile ? { key: readFileSync(b.keyFile) } : {}),
    };
    const client = mqtt.connect(b.url, options);
    // mqtt.js sends the PUBACK when this callback is called: after the commit.
    client.handleMessage = (packet, done) => {
      this.#handle(packet.topic, packet.payload as Buffer).then(
        () => done(),
        (err: Error) => {
          // Only when stopping: the message stays unacknowledged and comes again.
          this.#o.log.warn({ code: "VG_CENTER_UNSTORED", err: err.message }, "a message was not stored");
        },
      );
    };
    client.on("connect", () => client.subscribe(filters, { qos: 1 }));
    client.on("error", (err) => this.#o.log.warn({ code: "VG_CENTER_BROKER", err: err.message }, "broker error"));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no connection to ${b.url} within 30 s`)), 30_000);
      client.once("connect", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    return client;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#receiptTimer) clearTimeout(this.#receiptTimer);
    this.#flushReceipts();
    await Promise.all(this.#clients.map((c) => c.endAsync()));
    this.#clients = [];
  }

  /** Publishes a reading to the ECG's gateway (QoS 1); resolves on the broker's PUBACK. */
  async publishReport(gw: string, report: Report): Promise<void> {
    const client = this.#clients[0];
    if (!client) throw new Error("not connected to the broker");
    await client.publishAsync(topics.report(gw), JSON.stringify(report), {
      qos: 1,
      // The gateway answers on this topic (below its own `ack`), which every worker shares.
      properties: {
        contentType: "application/json",
        responseTopic: topics.reportAck(gw),
        correlationData: Buffer.from(report.id),
      },
    });
  }

  async #handle(topic: string, payload: Buffer): Promise<void> {
    const started = performance.now();
    this.counters.messages++;
    try {
      const t = parseTopic(topic);
      if (!t) return this.#invalid(topic, "not a topic of the contract");
      if (t.type === "status") {
        let status;
        try {
          status = statusSchema.safeParse(JSON.parse(payload.toString("utf8")));
        } catch {
          return this.#invalid(topic, "status is not JSON");
        }
        if (!status.success) return this.#invalid(topic, "status has no state");
        await this.#retry(() => this.#o.db.storeStatus(t.gw, status.data));
        return;
      }
      if (t.type === "cmd-result") return;
      if (t.type === "ack") {
        let ack;
        try {
          ack = ackSchema.safeParse(JSON.parse(payload.toString("utf8")));
        } catch {
          return this.#invalid(topic, "ack is not JSON");
        }
        if (!ack.success) return this.#invalid(topic, "ack has no of or ok");
        const { of, id, ok, error } = ack.data;
        if (of === "report" && id) await this.#retry(() => this.#o.db.reportAcknowledged(id, ok, error));
        return;
      }
      if (t.type === "blob") {
        const r = await this.#retry(() => this.#o.db.storePart(t.eventId, t.part, t.parts, payload));
        return this.#stored(topic, t.gw, r);
      }
      const decoded = decodeEventPayload(payload, t.kind);
      if (!decoded.ok) return this.#invalid(topic, decoded.error);
      for (const [i, raw] of decoded.events.entries()) {
        const e = envelopeSchema.safeParse(raw);
        if (!e.success) {
          const issue = e.error.issues[0]!;
          this.#invalid(topic, `event ${i}: ${issue.path.join(".") || "(root)"}: ${issue.message}`);
          continue;
        }
        if (e.data.gw !== t.gw) {
          this.#invalid(topic, `event ${i}: its gw is not the topic's`);
          continue;
        }
        const r = await this.#retry(() => this.#o.db.storeEvent(e.data, this.#o.worker));
        this.#stored(topic, t.gw, r);
      }
    } finally {
      this.counters.busyMs += performance.now() - started;
    }
  }

  /** Runs a commit until it goes through (the database may be restarting); gives up only when stopping. */
  async #retry<T>(fn: () => Promise<T>): Promise<T> {
    let wait = this.#o.retryMs ?? 100;
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        if (this.#stopping) throw err;
        this.#o.log.warn(
          { code: "VG_CENTER_DB", err: (err as Error).message, retryMs: wait },
          "the database refused a commit; trying again",
        );
        await new Promise((r) => setTimeout(r, wait));
        wait = Math.min(wait * 2, 5000);
      }
    }
  }

  #stored(topic: string, gw: string, r: StoreResult): void {
    if (r.outcome === "stored" || r.outcome === "revised") this.counters.stored++;
    else if (r.outcome === "duplicate" || r.outcome === "resend") this.counters.duplicates++;
    if (r.outcome === "complete") this.counters.files++;
    if (r.outcome === "file-mismatch") {
      this.counters.fileMismatches++;
      this.#o.log.warn(
        { code: "VG_CENTER_FILE_MISMATCH", gw, topic: outsideText(topic, 200) },
        "an ECG's file did not match its event (length or SHA-256): not kept, the gateway sends it again",
      );
    }
    for (const id of r.receipt) this.#receipt(gw, id);
    this.emit("stored", { ...r, topic });
  }

  #invalid(topic: string, why: string): void {
    this.counters.invalid++;
    this.#o.log.warn({ code: "VG_CENTER_INVALID", topic: outsideText(topic, 200), why }, "message ignored");
  }

  #receipt(gw: string, id: string): void {
    let ids = this.#pendingReceipts.get(gw);
    if (!ids) this.#pendingReceipts.set(gw, (ids = new Set()));
    ids.add(id);
    if (ids.size >= RECEIPT_MAX_IDS) this.#flushReceipts();
    else this.#receiptTimer ??= setTimeout(() => this.#flushReceipts(), this.#o.receiptDelayMs ?? 20);
  }

  #flushReceipts(): void {
    if (this.#receiptTimer) clearTimeout(this.#receiptTimer);
    this.#receiptTimer = null;
    const client = this.#clients[0];
    if (!client) return;
    for (const [gw, ids] of this.#pendingReceipts) {
      client.publish(topics.receipt(gw), JSON.stringify({ ids: [...ids] }), {
        qos: 1,
        properties: { contentType: "application/json" },
      });
      this.counters.receipted += ids.size;
    }
    this.#pendingReceipts.clear();
  }
}
