// One `vitalgate center` process: a worker (its broker connection sharing the load with the other
// workers, the shared PostgreSQL database, the files on disk) and, where `center.serveWeb` is on,
// the reading station page. Construction does nothing; start() and stop() mirror each other.
import type { Logger } from "pino";
import type { CenterConfig, ConfigSecrets } from "./config.ts";
import { CenterDb } from "./db.ts";
import { Receiver } from "./receiver.ts";
import { startCenterWeb, type CenterWeb } from "./web-server.ts";

export interface CenterServiceOptions {
  config: CenterConfig;
  secrets: ConfigSecrets;
  log: Logger;
  /** Receipts gathered this long per gateway before they go (default 20 ms). */
  receiptDelayMs?: number;
}

export class CenterService {
  readonly config: CenterConfig;
  readonly db: CenterDb;
  readonly receiver: Receiver;
  web: CenterWeb | null = null;
  #o: CenterServiceOptions;

  constructor(o: CenterServiceOptions) {
    this.#o = o;
    this.config = o.config;
    const c = o.config.center;
    this.db = new CenterDb({
      pool: {
        host: c.database.host,
        port: c.database.port,
        database: c.database.database,
        user: c.database.user,
        ...(o.secrets.centerDatabasePassword !== undefined ? { password: o.secrets.centerDatabasePassword } : {}),
        max: c.database.poolSize,
        application_name: `vitalgate-center ${c.worker}`,
      },
      filesDir: c.filesDir,
    });
    this.receiver = new Receiver({
      db: this.db,
      log: o.log.child({ component: "receiver" }),
      worker: c.worker,
      ...(o.receiptDelayMs !== undefined ? { receiptDelayMs: o.receiptDelayMs } : {}),
      broker: {
        url: c.broker.url,
        shareGroup: c.broker.shareGroup,
        clientId: c.broker.clientId ?? `vitalgate-center-${c.worker}`,
        rejectUnauthorized: c.broker.rejectUnauthorized,
        keepaliveS: c.broker.keepaliveS,
        bulkConnections: c.broker.bulkConnections,
        ...(c.broker.username !== undefined ? { username: c.broker.username } : {}),
        ...(o.secrets.centerBrokerPassword !== undefined ? { password: o.secrets.centerBrokerPassword } : {}),
        ...(c.broker.caFile ? { caFile: c.broker.caFile } : {}),
        ...(c.broker.certFile ? { certFile: c.broker.certFile } : {}),
        ...(c.broker.keyFile ? { keyFile: c.broker.keyFile } : {}),
      },
    });
  }

  async start(): Promise<void> {
    await this.db.migrate();
    await this.receiver.start();
    if (this.config.center.serveWeb)
      this.web = await startCenterWeb({ config: this.config, db: this.db, receiver: this.receiver, log: this.#o.log });
    this.#o.log.info(
      { code: "VG_CENTER_STARTED", worker: this.config.center.worker, web: this.web?.url ?? null },
      "center worker started",
    );
  }

  async stop(): Promise<void> {
    await this.web?.stop();
    this.web = null;
    await this.receiver.stop();
    await this.db.close();
  }
}
