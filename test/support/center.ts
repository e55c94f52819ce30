// The county center as the center's tests run it: `vitalgate center` workers as child processes on a
// real PostgreSQL (test/support/postgres.ts) and a real mosquitto, and gateways (`vitalgate start`)
// with an ECG cart on a watched folder and an HL7 monitor, publishing to the same broker.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { waitFor } from "./mqtt.ts";
import type { PgTarget } from "./postgres.ts";
import { DAEMON_ENV, daemonArgs, freePort, ROOT, startDaemon, type Daemon } from "./processes.ts";

export interface CenterWorker {
  child: ChildProcess;
  output: () => string;
  /** The reading station's port, when this worker serves it. */
  webPort?: number;
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

export interface CenterWorkerOptions {
  broker: string;
  db: PgTarget;
  worker: string;
  filesDir: string;
  /** The page: served from this worker on a free port when true. */
  web?: boolean;
  /** More lines inside `center:` (indented two spaces). */
  extra?: string;
  /** `web.users` of the configuration, as a YAML flow list (provisioned logins). */
  webUsers?: string;
}

async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise((res) => child.once("exit", res));
}

/** Starts `vitalgate center --config FILE` and waits for its "center worker started" line. */
export async function startCenterWorker(o: CenterWorkerOptions): Promise<CenterWorker> {
  const dir = mkdtempSync(join(tmpdir(), "vg-center-"));
  const webPort = o.web ? await freePort() : undefined;
  const configPath = join(dir, "center.yaml");
  writeFileSync(
    configPath,
    `center:
  worker: ${o.worker}
  broker: { url: "${o.broker}" }
  database: { host: "${o.db.host}", port: ${o.db.port}, database: ${o.db.database}, user: ${o.db.user} }
  stateDir: ${dir}/state
  filesDir: ${o.filesDir}
  serveWeb: ${o.web ? "true" : "false"}
${o.extra ?? ""}
web: { host: 127.0.0.1, port: ${webPort ?? 8080}, users: ${o.webUsers ?? "[]"} }
log: { level: info, pretty: false }
`,
  );
  const child = spawn(process.execPath, daemonArgs(["center", "--config", configPath]), {
    cwd: ROOT,
    env: { ...process.env, ...DAEMON_ENV },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`center worker ${o.worker} exited with ${child.exitCode}:\n${out}`);
      return out.includes("VG_CENTER_STARTED");
    },
    20_000,
    `center worker ${o.worker} to start`,
  );
  return {
    child,
    output: () => out,
    ...(webPort !== undefined ? { webPort } : {}),
    async kill9() {
      child.kill("SIGKILL");
      await exited(child);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      await exited(child);
    },
  };
}

export interface FieldGateway {
  id: string;
  dir: string;
  /** The ECG cart's folder: a file written here is an ECG the cart exported. */
  cartDir: string;
  hl7Port: number;
  daemon: Daemon;
  /** Unsent (or, with receipts, unreceipted) events per priority, from the box's /status. */
  pending(): Promise<number[]>;
}

/** A gateway (`vitalgate start`) with an ECG cart folder and an HL7 monitor port, publishing to `broker` with receipts on. */
export async function startFieldGateway(
  id: string,
  broker: string,
  o: { receiptTimeoutS?: number; extraYaml?: string } = {},
): Promise<FieldGateway> {
  const dir = mkdtempSync(join(tmpdir(), `vg-gw-${id}-`));
  const cartDir = join(dir, "cart");
  mkdirSync(cartDir);
  const webPort = await freePort();
  const hl7Port = await freePort();
  const configPath = join(dir, "vitalgate.yaml");
  writeFileSync(
    configPath,
    `gateway: { id: ${id}, role: ambulance }
stateDir: ${dir}/state
uplink: { url: "${broker}", protocolVersion: 5, receipts: true, receiptTimeoutS: ${o.receiptTimeoutS ?? 600}, backoff: { initialMs: 100, maxMs: 1000 }, batchWaitS: 0.2 }
web: { host: 127.0.0.1, port: ${webPort} }
log: { level: info, pretty: false }
watchedFolders: { roots: ["${dir}"] }
devices:
  - { id: cart, driver: ecg-cart, options: { dir: "${cartDir}", stableMs: 100, scanMs: 50 } }
  - { id: monitor, driver: hl7-pcd01, options: { mode: listen, host: 127.0.0.1, port: ${hl7Port}, timezone: "+08:00" } }
time: { trustSystemClock: always }
${o.extraYaml ?? ""}`,
  );
  const daemon = await startDaemon(configPath, webPort);
  return {
    id,
    dir,
    cartDir,
    hl7Port,
    daemon,
    async pending() {
      const s = (await (await fetch(`http://127.0.0.1:${webPort}/status`)).json()) as {
        queue: { pending: number[] };
      };
      return s.queue.pending;
    },
  };
}

/** A client on the center's database, for the test to look at what the workers stored. */
export async function centerDbClient(db: PgTarget): Promise<pg.Client> {
  const c = new pg.Client(db);
  await c.connect();
  return c;
}
