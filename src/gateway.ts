// The gateway: wires the store, the forwarder (or the embedded broker), the device manager, the
// scheduler and the HTTP endpoints together. Construction does nothing; start() and stop() mirror
// each other; every piece of I/O is reached through the dependencies passed in.
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import cron, { type ScheduledTask } from "node-cron";
import type { Logger } from "pino";
import { CaseBook } from "./cases/case-book.ts";
import type { Clock } from "./time/clock.ts";
import type { ConfigSecrets } from "./config/load.ts";
import { isLoopback, type Config } from "./config/schema.ts";
import { DeviceManager, type DeviceConfig, type IngestOptions } from "./devices/device-manager.ts";
import type { DriverDefinition, TransportSpec } from "./devices/driver.ts";
import {
  EVENT_KINDS,
  type DeviceRef,
  type Envelope,
  type EventDraft,
  type EventKind,
  type GapBody,
} from "./events/model.ts";
import { Forwarder, redactUrl, type UplinkOptions } from "./uplink/forwarder.ts";
import { centerCommands } from "./uplink/commands.ts";
import { PROTOCOL_VERSION } from "./uplink/messages.ts";
import type { EmbeddedBroker } from "./uplink/broker.ts";
import { createMetrics } from "./metrics.ts";
import { localDbPath, openLocalDb, type LocalDb } from "./local-db.ts";
import { Conditions } from "./log.ts";
import { Intake } from "./events/intake.ts";
import { isoTime, restamp, stamp } from "./events/stamp.ts";
import { DeviceClocks, loadDeviceClocks, saveDeviceClocks } from "./time/device-clocks.ts";
import type { ClockCorrection, FirstSync, TimeService } from "./time/service.ts";
import { systemTimeZone } from "./time/zone.ts";
import { Outbox, type OpenReport } from "./outbox/outbox.ts";
import { chunkBytesFor, DEFAULT_WIRE, type WireOptions } from "./uplink/wire.ts";
import { Pairing } from "./pairing/index.ts";
import { processMemory, type GatewayStatus } from "./status.ts";
import { VERSION } from "./version.ts";
import { AuditLog, type Audit } from "./audit/audit.ts";
import type { WebServices } from "./web/context.ts";
import { createWebServer, type WebServer } from "./web/server.ts";
import { pageCertificate, pageIsHttps, type PageCertificate } from "./web/tls.ts";
import type { CodecError } from "../protocols/codec.ts";
import { folderProblem } from "./transports/watched-folders.ts";

/** How often a full disk is probed for room again while no device's data arrives to tell. */
const DISK_PROBE_MS = 5000;
/**
 * What the gateway sends of its own, whatever its devices: alarms (its store, a refused folder),
 * case events, gap records, and `device` events about its devices' clocks.
 */
const GATEWAY_SENDS: readonly EventKind[] = ["alarm", "case", "gap", "device"];

export interface GatewayDeps {
  log: Logger;
  clock: Clock;
  /** The synchronized time service, started and stopped with the gateway (normally also `clock`). */
  time?: TimeService;
  findDriver(id: string): DriverDefinition<unknown> | undefined;
  /** Every driver: those the pairing page probes a serial port with. Default none. */
  drivers?: readonly DriverDefinition<unknown>[];
  /** Secrets read from files by the config loader. */
  secrets: ConfigSecrets;
  readFile?: (path: string) => Buffer;
}

export class Gateway {
  config: Config;
  readonly outbox: Outbox;
  readonly devices: DeviceManager;
  /** Each device's clock skew, estimated from its messages. */
  readonly deviceClocks: DeviceClocks;
  /** Cases (missions, visits) and their time nodes, kept in the local database. */
  readonly cases: CaseBook;
  /** Where drafts become committed events; its `events` are what was just committed. */
  readonly intake: Intake;
  /**
   * The audit trail (src/audit/audit.ts), from start to stop: commands from the center, logins,
   * pairing, case actions and configuration reloads are recorded in it.
   */
  audit: Audit | undefined;
  #localDb: LocalDb | null = null;
  #pageCertificate: PageCertificate | null = null;
  /** The audit trail in the local database, from start to stop; `audit` is where records go (tests replace it). */
  #auditLog: AuditLog | null = null;
  /** Devices paired on the web page, run beside the config's (src/pairing/). */
  readonly pairing: Pairing;
  /** The first sequence number of this run: only events from here on can be restamped. */
  #firstSeq = 0;
  #deps: GatewayDeps;
  #log: Logger;
  #forwarder: Forwarder | null = null;
  #broker: EmbeddedBroker | null = null;
  #web: WebServer | null = null;
  #tasks: ScheduledTask[] = [];
  #startedAt = 0;
  #lastRefusal: GatewayStatus["store"]["lastRefusal"];
  /** Conditions logged once while they last (a full disk, a refusing store, a failing job). */
  #conditions: Conditions;
  #diskProbe: NodeJS.Timeout | undefined;
  /** Store alarms the outbox had no room for, raised before the forwarder existed. */
  #unstored: Envelope[] = [];
  #setAside: string | undefined;
  readonly metrics = createMetrics(() => this.status());

  constructor(config: Config, deps: GatewayDeps) {
    this.config = config;
    this.#deps = deps;
    this.#log = deps.log;
    this.#conditions = new Conditions(() => deps.clock.now().ms);
    this.outbox = new Outbox({
      path: config.store.path,
      quotaBytes: config.store.quotaMB * 1024 * 1024,
      batchMax: config.store.batchMax,
      nowMs: () => deps.clock.now().ms,
      blobChunkBytes: chunkBytesFor(wireOptions(config).maxMessageBytes),
      gapEvent: (gap) => {
        const body: GapBody = {
          of: gap.kind,
          action: gap.action,
          from: isoTime(gap.fromMs),
          to: isoTime(gap.toMs),
          events: gap.events,
          kept: gap.action === "thinned" ? "the first event of each minute" : undefined,
        };
        return stamp({ kind: "gap", body }, gap.dev, this.config.gateway.id, this.#deps.clock);
      },
    });
    this.deviceClocks = new DeviceClocks({ thresholdMs: config.time.skewThresholdS * 1000 });
    this.devices = new DeviceManager({
      ingest: (dev, drafts, options) => this.ingest(dev, drafts, options),
      findDriver: deps.findDriver,
      log: deps.log,
      nowMs: () => deps.clock.now().ms,
      monoMs: () => deps.clock.monoMs(),
      utcFix: (utcMs, monoMs, info) => deps.time?.gpsFix(utcMs, monoMs, info),
      timeZone: config.time.zone ?? systemTimeZone(),
      transport: {
        backoff: { initialMs: 500, maxMs: 30_000 },
        idleMs: config.listeners.idleS * 1000,
        maxConnections: config.listeners.maxConnections,
        maxPerAddress: config.listeners.maxPerAddress,
      },
      admit: (device, spec) => this.#admit(device, spec),
    });
    this.cases = new CaseBook(config.cases, {
      clock: deps.clock,
      log: deps.log.child({ component: "cases" }),
      record: (draft, id) =>
        this.outbox.append([stamp(draft, this.self, this.config.gateway.id, this.#deps.clock, id)]),
      locationOf: (id) => this.devices.locationOf(id),
      delivery: (eventId) => this.outbox.deliveryOf(eventId),
      event: (eventId) => this.outbox.eventById(eventId),
      renameCase: (from, to) => this.outbox.renameCase(from, to),
    });
    this.intake = new Intake({
      log: deps.log,
      clock: deps.clock,
      outbox: this.outbox,
      deviceClocks: this.deviceClocks,
      cases: this.cases,
      gatewayId: () => this.config.gateway.id,
      resendWindowS: () => this.config.store.resendWindowS,
      wire: () => wireOptions(this.config),
      clocksChanged: () => this.#saveDeviceClocks(),
    });
    this.pairing = new Pairing({
      log: deps.log,
      nowMs: () => deps.clock.now().ms,
      config: () => this.config,
      findDriver: deps.findDriver,
      drivers: deps.drivers,
      apply: async (devices) => {
        const applied = await this.devices.apply(devices);
        for (const id of applied.stopped) this.deviceClocks.forget(id); // a removed device drops from the skew list
        return applied;
      },
    });
  }

  /**
   * A device watching a folder IT does not allow (docs/security.md) is not started: it is listed
   * faulted, and an alarm says why, to the page and the center.
   */
  #admit(device: DeviceConfig, spec: TransportSpec): CodecError | undefined {
    if (spec.type !== "folder") return undefined;
    const { watchedFolders, stateDir, store } = this.config;
    const problem = folderProblem(spec.dir, { roots: watchedFolders.roots, stateDir, storePath: store.path });
    if (problem) {
      void this.ingest(this.self, [
        {
          kind: "alarm",
          body: {
            code: problem.code,
            priority: "high",
            state: "active",
            text: `device ${device.id} not started: ${problem.message}`,
          },
        },
      ]).catch(() => undefined);
    }
    return problem;
  }

  /** The box's own records (users, audit, cases): `<stateDir>/local.db`, open while the gateway runs. */
  get localDb(): LocalDb {
    if (!this.#localDb) throw new Error("the gateway is not started: its local database is closed");
    return this.#localDb;
  }

  /** The gateway itself, as the source of its own events (store alarms, clock warnings). */
  get self(): DeviceRef {
    return { id: "gateway", driver: "vitalgate", kind: "gateway" };
  }

  /** Commits a device's drafts (src/events/intake.ts); resolves once durable. */
  ingest(dev: DeviceRef, drafts: EventDraft[], options: IngestOptions = {}): Promise<Envelope[]> {
    return this.intake.commit(dev, drafts, options);
  }

  /**
   * The time service's first sync: events stamped before it in this boot (this run's, and earlier
   * runs' when the boot is known), still here, get the correction. Not when the box slept since
   * this run started: the monotonic clock stood still, so those stamps keep their unsynced mark.
   */
  #onFirstSync = (sync: FirstSync): void => {
    this.deviceClocks.shift(sync.correctionMs);
    try {
      this.#auditLog?.placeUnsynced(sync);
    } catch (err) {
      this.#log.error(
        { code: "VG_TIME_PLACE_FAILED", err: (err as Error).message },
        "time synchronized, but the audit records made before it could not be placed",
      );
    }
    const skewOf = (id: string) => this.deviceClocks.skewOf(id);
    if (sync.sleptMs > 0) {
      this.#log.warn(
        { code: "VG_TIME_RESTAMP_SKIPPED", sleptMs: sync.sleptMs },
        `time synchronized, but the box was suspended for ${Math.round(sync.sleptMs / 1000)} s since start: the events stamped before it stay marked unsynchronized`,
      );
    } else {
      try {
        const n = this.outbox.restampUnsynced(this.#firstSeq, (e) => restamp(e, { ...sync, skewOf }), sync.boot);
        this.#log.info(
          {
            code: "VG_TIME_RESTAMPED",
            events: n,
            correctionMs: Math.round(sync.correctionMs),
            src: sync.src,
            boot: sync.boot ?? null,
          },
          `time synchronized: ${n} waiting event(s) stamped before it ${sync.boot ? "in this boot" : "in this run"} corrected`,
        );
      } catch (err) {
        // They keep their unsynced mark: the center knows not to trust their times.
        this.#log.error(
          { code: "VG_TIME_RESTAMP_FAILED", err: (err as Error).message },
          "time synchronized, but the events stamped before it could not be corrected",
        );
      }
    }
    // The cases' times, after the events (an ECG's node is placed from its restamped event).
    try {
      this.cases.placeUnsynced(sync);
    } catch (err) {
      this.#log.error(
        { code: "VG_TIME_PLACE_FAILED", err: (err as Error).message },
        "time synchronized, but the case times taken before it could not be placed",
      );
    }
  };

  /** A step or slew of the gateway's time after its first sync: device skews measured against it follow. */
  #onCorrected = (c: ClockCorrection): void => {
    this.deviceClocks.shift(c.correctionMs);
  };

  /**
   * "Now" for retention purges: the time service's high-water mark (never a clock that just
   * jumped); undefined while it has none (nothing is purged then). Without a time service, the clock.
   */
  #retentionNow(): number | undefined {
    return this.#deps.time ? this.#deps.time.retentionNowMs() : this.#deps.clock.now().ms;
  }

  get #deviceClocksPath(): string {
    return join(this.config.stateDir, "device-clocks.json");
  }

  #saveDeviceClocks(): void {
    if (this.#deps.clock.now().src === "unsynced") return;
    try {
      saveDeviceClocks(this.#deviceClocksPath, this.deviceClocks.snapshot());
    } catch (err) {
      this.#log.warn(
        { code: "VG_DEVICE_CLOCKS_SAVE", err: (err as Error).message },
        "could not keep device clock skews for the next start",
      );
    }
  }

  /** What the page's server may use of the gateway (src/web/context.ts). */
  webServices(): WebServices {
    return {
      status: () => this.status(),
      storeOpen: () => this.outbox.isOpen,
      metrics: this.metrics,
      devices: this.devices,
      committed: this.intake,
      eventById: (id) => this.outbox.eventById(id),
      cases: this.cases,
      pairing: this.pairing,
      drivers: this.#deps.drivers ?? [],
      stateDir: this.config.stateDir,
      probeMs: () => this.config.pairing.probeMs,
    };
  }

  async start(): Promise<void> {
    const { config } = this;
    this.#startedAt = this.#deps.clock.now().ms;
    mkdirSync(dirname(config.store.path), { recursive: true });
    const report = this.outbox.open();
    this.#firstSeq = this.outbox.stats().lastSeq + 1;
    this.deviceClocks.restore(loadDeviceClocks(this.#deviceClocksPath));
    this.#localDb = openLocalDb(localDbPath(config.stateDir));
    this.cases.open(this.#localDb);
    // Each record's new head goes to the center within seconds, not at the next status interval:
    // what the box could rewrite unseen is then at most the last few seconds of the trail.
    this.#auditLog = new AuditLog(
      this.#localDb,
      () => this.#deps.clock.now(),
      () => this.#forwarder?.publishStatusSoon(),
    );
    this.audit = this.#auditLog;
    // A box restarted on a full disk must still start and forward what it holds (DESIGN.md §5): a start
    // record that cannot be written is said in the log instead.
    try {
      this.#auditLog.record({
        actor: "system",
        action: "daemon.start",
        detail: { version: VERSION, pid: process.pid },
        result: "ok",
      });
    } catch (err) {
      this.#log.error(
        { code: "VG_AUDIT_FAILED", err: (err as Error).message },
        "the daemon's start could not be audited",
      );
    }
    this.#deps.time?.on("synced", this.#onFirstSync);
    this.#deps.time?.on("corrected", this.#onCorrected);
    this.#deps.time?.expectGps(() => this.devices.list().some((d) => this.#deps.findDriver(d.driver)?.kind === "gps"));
    this.#deps.time?.start();
    this.outbox.on("refused", (err) => {
      const now = this.#deps.clock.now().ms;
      const episodeStarts = !this.#lastRefusal || Date.parse(this.#lastRefusal.at) < now - 60_000;
      this.#lastRefusal = { code: err.code, message: err.message, at: new Date(now).toISOString() };
      this.metrics.storeRefused.inc({ code: err.code });
      if (err.code === "VG_STORE_DISK_FULL") return; // the "full" condition says it, raised and cleared
      const more = this.#conditions.occur(err.code);
      if (more !== undefined)
        this.#log.error(
          { code: err.code, ...(more > 0 ? { refusedSinceLastLine: more } : {}) },
          `STORE CANNOT ACCEPT EVENTS: ${err.message}`,
        );
      // Tell the center too, once per episode, if the store can still take this one small alarm.
      if (episodeStarts) this.#storeAlarm(err.code, "active", `the gateway is refusing device data: ${err.message}`);
    });
    this.outbox.on("full", (what) => this.#diskFull(what));
    this.outbox.on("writable", () => this.#diskHasRoom());
    if (report.diskFull) this.#diskFull("open");
    this.outbox.on("evicted", (byKind) => {
      for (const [kind, n] of Object.entries(byKind)) this.metrics.storeEvicted.inc({ kind }, n);
      const more = this.#conditions.occur("VG_STORE_EVICTED");
      if (more !== undefined)
        this.#log.warn(
          { code: "VG_STORE_EVICTED", evicted: byKind, ...(more > 0 ? { timesSinceLastLine: more } : {}) },
          "store quota reached: oldest low-priority undelivered events dropped (gap records sent)",
        );
    });
    this.outbox.on("thinned", (byKind) => {
      const more = this.#conditions.occur("VG_STORE_THINNED");
      if (more !== undefined)
        this.#log.warn(
          { code: "VG_STORE_THINNED", thinned: byKind, ...(more > 0 ? { timesSinceLastLine: more } : {}) },
          "store quota reached: oldest undelivered vitals and waveforms thinned to a minute's first (gap records sent)",
        );
    });
    if (report.setAside) await this.#corrupt(report);
    // The devices (the config's and the paired ones) as soon as their data can be committed: before
    // the uplink and the web page, which take a while to start on a small box.
    await this.pairing.start();
    let uplink: UplinkOptions;
    if (config.uplink) {
      uplink = uplinkOptions(config, this.#deps);
      this.#warnIfInsecure(config.uplink);
    } else {
      // Loaded only when used: a provisioned box, with its uplink, never needs a broker of its own.
      const { newBrokerCredentials, startEmbeddedBroker } = await import("./uplink/broker.ts");
      const logins = newBrokerCredentials(config.stateDir);
      const { center } = config.embeddedBroker;
      const centerPassword = this.#deps.secrets.centerPassword;
      this.#broker = await startEmbeddedBroker(config.embeddedBroker.host, config.embeddedBroker.port, {
        gatewayId: config.gateway.id,
        ...logins,
        ...(center && centerPassword !== undefined
          ? { center: { username: center.username, password: centerPassword } }
          : {}),
      });
      this.#log.info(
        { url: this.#broker.url, centerBridge: center?.username ?? null },
        "no uplink configured: embedded MQTT broker, clients log in (broker-credentials.json)",
      );
      uplink = { ...uplinkOptions(config, this.#deps), url: this.#broker.url, protocolVersion: 4, ...logins.gateway };
    }
    this.#forwarder = new Forwarder(
      uplink,
      {
        outbox: this.outbox,
        log: this.#log.child({ component: "uplink" }),
        nowMs: () => this.#deps.clock.now().ms,
        status: () => this.#uplinkStatus(),
        commands: centerCommands({
          nowMs: () => this.#deps.clock.now().ms,
          outbox: this.outbox,
          cases: this.cases,
          devices: this.devices,
          kindOf: (driver) => this.#deps.findDriver(driver)?.kind,
          audit: () => this.audit,
        }),
        acceptReport: (report) => this.cases.onReport(report),
        timeKnown: () => this.#deps.clock.now().src !== "unsynced",
      },
      config.gateway.id,
    );
    for (const e of this.#unstored.splice(0)) this.#forwarder.publishUnstored(e);
    this.#forwarder.on("delivered", (n, latencies) => {
      this.metrics.delivered.inc(n);
      for (const ms of latencies) this.metrics.deliveryLatency.observe(ms / 1000);
    });
    this.#forwarder.on("acked", () => this.cases.onAcked());
    this.#forwarder.on("receipt", (ids) => this.cases.onReceipt(ids));
    // Zod's messages name paths and expected types, never the values sent: nothing of a patient's here.
    this.#forwarder.on("commandRefused", (name, reason) => {
      try {
        // The name comes from the topic, the reason quotes the center's JSON keys: both bounded and sanitized by the forwarder.
        this.audit?.record({ actor: "center", action: "command", target: name, detail: { reason }, result: "denied" });
      } catch (err) {
        this.#log.error(
          { code: "VG_AUDIT_FAILED", err: (err as Error).message },
          "a refused command from the center could not be audited",
        );
      }
    });
    this.#forwarder.start();

    this.#tasks = [
      this.#job("purge", config.store.purgeCron, () => {
        const now = this.#retentionNow();
        const n = now === undefined ? 0 : this.outbox.purgeDelivered(now - config.store.retentionDays * 86_400_000);
        if (n > 0) this.#log.info({ purged: n }, "delivered events past retention deleted");
      }),
      this.#job("audit-purge", config.store.purgeCron, () => this.#purgeAudit()),
      this.#job("checkpoint", config.store.checkpointCron, () => {
        this.outbox.forgetResends(this.#deps.clock.now().ms - config.store.resendWindowS * 1000);
        this.outbox.checkpoint();
      }),
    ];

    const read = this.#deps.readFile ?? ((p: string) => readFileSync(p));
    // HTTPS wherever the page leaves the box: IT's certificate, else one made here on the first start.
    this.#pageCertificate = pageCertificate(config.web, config.stateDir, read, config.gateway.id);
    if (this.#pageCertificate) {
      const { source, certFile, fingerprint256 } = this.#pageCertificate;
      this.#log.info(
        { code: "VG_WEB_TLS", source, certFile, fingerprint256 },
        `the page is served over HTTPS with ${source === "self-signed" ? "a certificate made on this box" : "the configured certificate"}; its SHA-256 fingerprint, to check against the browser's: ${fingerprint256}`,
      );
    } else {
      this.#log.info(
        { code: "VG_WEB_HTTP", host: config.web.host },
        "the page is served over plain HTTP on loopback only",
      );
    }
    this.#web = await createWebServer({
      services: this.webServices(),
      log: this.#log,
      db: this.localDb,
      web: config.web,
      setupCodeFile: join(config.stateDir, "setup-code"),
      nowMs: () => this.#deps.clock.now().ms,
      monoMs: () => this.#deps.clock.monoMs(),
      bootId: this.#deps.time?.bootId,
      https: this.#pageCertificate ? { cert: this.#pageCertificate.cert, key: this.#pageCertificate.key } : undefined,
      audit: this.#auditLog,
    });
    await this.#web.app.listen({ host: config.web.host, port: config.web.port });
    this.#log.info(
      { gateway: config.gateway.id, version: VERSION, devices: config.devices.length },
      "vitalgate started",
    );
    // The whole file is read through in the background, once started: the devices listen from the
    // moment the outbox takes writes (a large outbox after a crash took seconds to check, and a
    // monitor's messages were refused until then), and the check does not compete with the start.
    void this.outbox
      .checkIntegrity()
      .then(async (check) => {
        if (check.ok) this.#log.info({ ms: Math.round(check.ms) }, "store integrity check passed");
        else if (check.unchecked)
          this.#log.warn(
            { code: "VG_STORE_UNCHECKED", reason: check.reason },
            "the store's integrity could not be checked: it is kept as it is and checked again at the next start",
          );
        else if (this.outbox.isOpen) await this.#corrupt(this.outbox.setAside(check.reason!));
      })
      .catch((err: unknown) =>
        this.#log.error(
          { code: "VG_STORE_CORRUPT", err: (err as Error).message },
          "store found corrupt, but could not be set aside",
        ),
      );
  }

  /**
   * The disk is full (an append, delivery marks, a checkpoint or the open failed for want of space):
   * one log line and one alarm to the center for the whole condition, however many messages are
   * refused meanwhile; the store is probed now and then to learn when there is room again.
   */
  #diskFull(what: string): void {
    if (this.#conditions.occur("VG_STORE_DISK_FULL") !== 0) return;
    const text = `the disk is full: the gateway takes no new device data (devices are told so) and forwards what it holds; free space in ${dirname(this.config.store.path)}`;
    this.#log.error({ code: "VG_STORE_DISK_FULL", failed: what }, text);
    this.#storeAlarm("VG_STORE_DISK_FULL", "active", text);
    this.#diskProbe ??= setInterval(() => {
      try {
        this.outbox.probe();
      } catch (err) {
        this.#log.error({ code: "VG_STORE_FAILED", err: (err as Error).message }, "the store's write probe failed");
      }
    }, DISK_PROBE_MS);
  }

  #diskHasRoom(): void {
    clearInterval(this.#diskProbe);
    this.#diskProbe = undefined;
    if (!this.#conditions.clear("VG_STORE_DISK_FULL")) return;
    this.#lastRefusal = undefined;
    this.#log.info({ code: "VG_STORE_DISK_OK" }, "the disk has room again: the gateway takes device data again");
    this.#storeAlarm("VG_STORE_DISK_FULL", "inactive", "the disk has room again: the gateway takes device data again");
  }

  /**
   * An alarm of the gateway about its store, to the center: through the outbox when it can take it,
   * else sent from memory (seq 0) by the forwarder, as soon as it is connected.
   */
  #storeAlarm(code: string, state: "active" | "inactive", text: string): void {
    const event = stamp(
      { kind: "alarm", body: { code, priority: "high", state, text } },
      this.self,
      this.config.gateway.id,
      this.#deps.clock,
    );
    this.outbox.append([event]).catch(() => {
      event.seq = 0;
      if (this.#forwarder) this.#forwarder.publishUnstored(event);
      else this.#unstored.push(event);
    });
  }

  /** A corrupt outbox was set aside and a fresh one started: said in the log, the status and to the center. */
  async #corrupt(report: OpenReport): Promise<void> {
    this.#setAside = report.setAside;
    this.#log.error(
      { code: "VG_STORE_CORRUPT", setAside: report.setAside, reason: report.reason },
      "store was corrupt: set aside, started a fresh one",
    );
    await this.ingest(this.self, [
      {
        kind: "alarm",
        body: {
          code: "VG_STORE_CORRUPT",
          priority: "high",
          state: "active",
          text: `outbox database was corrupt (${report.reason}); set aside as ${report.setAside}, a fresh one started`,
        },
      },
    ]);
  }

  /** Applies a new configuration: devices change live; other sections need a restart, said so. */
  async reload(
    next: Config,
    actor = "system",
  ): Promise<{ restartNeeded: string[]; devices: Awaited<ReturnType<DeviceManager["apply"]>> }> {
    const restartNeeded = (
      [
        "gateway",
        "stateDir",
        "uplink",
        "embeddedBroker",
        "store",
        "web",
        "log",
        "time",
        "pairing",
        "listeners",
      ] as const
    ).filter((k) => JSON.stringify(next[k]) !== JSON.stringify(this.config[k]));
    this.config = { ...this.config, devices: next.devices, cases: next.cases, watchedFolders: next.watchedFolders };
    try {
      this.cases.configure(next.cases);
      const devices = await this.pairing.reload(); // paired devices stay as they are
      this.#log.info({ ...devices, restartNeeded }, "configuration reloaded");
      this.audit?.record({ actor, action: "config.reload", detail: { ...devices, restartNeeded }, result: "ok" });
      return { restartNeeded, devices };
    } catch (err) {
      this.audit?.record({
        actor,
        action: "config.reload",
        detail: { error: (err as Error).message },
        result: "failed",
      });
      throw err;
    }
  }

  /**
   * A scheduled job whose failure (SQLITE_FULL on a full disk) is a log line with its code, once
   * per failing stretch, never a stack trace on stderr; the next run that succeeds ends it.
   */
  #job(name: string, expression: string, run: () => void): ScheduledTask {
    return cron.schedule(expression, () => {
      const key = `job:${name}`;
      try {
        run();
        if (this.#conditions.clear(key)) this.#log.info({ job: name }, `the ${name} job runs again`);
      } catch (err) {
        const more = this.#conditions.occur(key);
        const code = (err as { code?: unknown }).code;
        if (more !== undefined)
          this.#log.error(
            {
              code: "VG_JOB_FAILED",
              job: name,
              err: (err as Error).message,
              ...(typeof code === "string" ? { errCode: code } : {}),
              ...(more > 0 ? { failedSinceLastLine: more } : {}),
            },
            `the ${name} job failed: ${(err as Error).message}`,
          );
      }
    });
  }

  /** Says at start, every start, when the link to the center can be read or impersonated on the way (docs/security.md). */
  #warnIfInsecure(u: NonNullable<Config["uplink"]>): void {
    const url = new URL(u.url);
    if (!u.rejectUnauthorized) {
      this.#log.warn(
        { code: "VG_UPLINK_UNVERIFIED", url: redactUrl(u.url) },
        "uplink.rejectUnauthorized is false: the center's certificate is not checked, so anyone on the way can pose as the center (only to diagnose, never in service)",
      );
    }
    if ((url.protocol === "mqtt:" || url.protocol === "ws:") && !isLoopback(url.hostname.replace(/^\[|\]$/g, ""))) {
      this.#log.warn(
        { code: "VG_UPLINK_PLAINTEXT", url: redactUrl(u.url) },
        `the uplink to ${url.hostname} is not encrypted (${url.protocol}//): patient data and the MQTT password cross the network in clear; use mqtts:// or wss://`,
      );
    }
  }

  /** Audit records past `web.auditRetentionDays`, with the store's purge. */
  #purgeAudit(): void {
    const audit = this.#auditLog;
    if (!audit) return;
    const now = this.#retentionNow();
    if (now === undefined) return;
    const r = audit.purge(now - this.config.web.auditRetentionDays * 86_400_000);
    if (r.refused)
      this.#log.error(
        { code: "VG_AUDIT_CHAIN_BROKEN", firstBad: r.refused.firstBad },
        "audit trail fails its hash check: not purged (see GET /api/audit)",
      );
    else if (r.purged > 0) this.#log.info({ purged: r.purged }, "audit records past retention deleted");
  }

  /** Stops taking data, lets the forwarder finish what is in flight, closes the store. */
  async stop(): Promise<void> {
    clearInterval(this.#diskProbe);
    this.#diskProbe = undefined;
    for (const t of this.#tasks) await t.stop();
    this.#tasks = [];
    await this.pairing.stop();
    await this.devices.stop();
    await this.#web?.app.close();
    this.#web = null;
    await this.#forwarder?.stop();
    this.#forwarder = null;
    await this.#broker?.close();
    this.#broker = null;
    this.#saveDeviceClocks();
    this.#deps.time?.off("synced", this.#onFirstSync);
    this.#deps.time?.off("corrected", this.#onCorrected);
    await this.#deps.time?.stop();
    this.cases.close();
    try {
      this.#auditLog?.record({
        actor: "system",
        action: "daemon.stop",
        detail: { version: VERSION, pid: process.pid },
        result: "ok",
      });
    } catch (err) {
      this.#log.error(
        { code: "VG_AUDIT_FAILED", err: (err as Error).message },
        "the daemon's stop could not be audited",
      );
    }
    this.audit = undefined;
    this.#auditLog = null;
    this.#localDb?.close();
    this.#localDb = null;
    this.outbox.close();
    this.#log.info("vitalgate stopped");
  }

  #uplinkStatus(): Record<string, unknown> {
    const s = this.status();
    return {
      version: VERSION,
      protocol: PROTOCOL_VERSION,
      kinds: this.#kinds(s.devices),
      queue: s.queue,
      time: s.time,
      devices: s.devices.map((d) => ({ id: d.id, state: d.state })),
      ...(this.#auditLog ? { audit: this.#auditLog.head } : {}),
    };
  }

  /** The event kinds this gateway sends: its own, and its devices' drivers' (docs/protocol.md "status"). */
  #kinds(devices: readonly { driver: string }[]): EventKind[] {
    const kinds = new Set<EventKind>(GATEWAY_SENDS);
    for (const d of devices) for (const k of this.#deps.findDriver(d.driver)?.sends ?? []) kinds.add(k);
    return EVENT_KINDS.filter((k) => kinds.has(k));
  }

  status(): GatewayStatus {
    const now = this.#deps.clock.now();
    const q = this.outbox.stats();
    const f = this.#forwarder;
    return {
      gateway: {
        id: this.config.gateway.id,
        site: this.config.gateway.site,
        role: this.config.gateway.role,
        version: VERSION,
        startedAt: new Date(this.#startedAt).toISOString(),
      },
      uplink: {
        url: f ? redactUrl(f.options.url) : "",
        state: f?.state ?? "idle",
        since: new Date(f?.since ?? this.#startedAt).toISOString(),
        inflight: f?.inflight ?? 0,
        embedded: this.#broker !== null,
      },
      queue: {
        ...q,
        oldestPendingAgeS: q.oldestPendingMs === null ? null : Math.max(0, (now.ms - q.oldestPendingMs) / 1000),
      },
      store: {
        state:
          this.outbox.diskFull || (this.#lastRefusal && Date.parse(this.#lastRefusal.at) > now.ms - 60_000)
            ? "refusing"
            : "ok",
        diskFull: this.outbox.diskFull,
        lastRefusal: this.#lastRefusal,
        setAside: this.#setAside,
      },
      time: {
        ...(this.#deps.time?.state() ?? {
          synced: now.src !== "unsynced",
          src: now.src,
          uncMs: now.uncMs,
          offsetMs: null,
          lastSync: null,
          steps: 0,
          sources: [],
          pps: { present: false, device: null, devices: [], used: false },
          retentionNow: null,
        }),
        devices: this.deviceClocks.list(),
        zone: this.config.time.zone ?? systemTimeZone(),
      },
      devices: this.devices.list(),
      process: processMemory(),
      web: this.#pageCertificate
        ? {
            https: true,
            certificate: {
              source: this.#pageCertificate.source,
              file: this.#pageCertificate.certFile,
              fingerprint256: this.#pageCertificate.fingerprint256,
            },
          }
        : { https: pageIsHttps(this.config.web) },
    };
  }
}

function uplinkOptions(config: Config, deps: GatewayDeps): UplinkOptions {
  const u = config.uplink;
  const read = deps.readFile ?? ((p: string) => readFileSync(p));
  return {
    url: u?.url ?? "",
    protocolVersion: u?.protocolVersion ?? 4,
    clientId: u?.clientId ?? `vitalgate-${config.gateway.id}`,
    username: u?.username,
    password: deps.secrets.uplinkPassword,
    ca: u?.caFile ? read(u.caFile) : undefined,
    cert: u?.certFile ? read(u.certFile) : undefined,
    key: u?.keyFile ? read(u.keyFile) : undefined,
    rejectUnauthorized: u?.rejectUnauthorized ?? true,
    inflight: u?.inflight ?? 64,
    keepaliveS: u?.keepaliveS ?? 30,
    connectTimeoutS: u?.connectTimeoutS ?? 30,
    backoff: u?.backoff ?? { initialMs: 500, maxMs: 5000 },
    receipts: u?.receipts ?? false,
    receiptTimeoutS: u?.receiptTimeoutS ?? 600,
    statusIntervalS: u?.statusIntervalS ?? 60,
    wire: wireOptions(config),
  };
}

/**
 * Batches, compression and the message limit from the uplink's configuration. Without an uplink
 * (the embedded broker, for watching on the box) messages are plain JSON, one event each.
 */
function wireOptions(config: Config): WireOptions {
  const u = config.uplink;
  if (!u) return DEFAULT_WIRE;
  return {
    compact: u.compact,
    batchWaitMs: u.batchWaitS * 1000,
    maxMessageBytes: u.maxMessageKiB * 1024,
    inflightBytes: u.inflightKiB * 1024,
  };
}
