// A real PostgreSQL server for the center's tests: Debian's postgresql, a scratch cluster per test
// file (initdb, then pg_ctl start) in a private temporary directory, listening on a unix socket in
// that directory and on a free loopback port (for a relay a test can stall). PostgreSQL refuses to
// run as root: as root the cluster belongs to the `postgres` user and its commands run as it
// (runuser); otherwise as the current user. Each test makes its own database in it (`database()`).
import { spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "./processes.ts";

/** The newest installed server's bin directory (Debian: /usr/lib/postgresql/<major>/bin). */
function findBin(): string | undefined {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const majors = readdirSync(root)
    .filter((d) => /^\d+$/.test(d) && existsSync(join(root, d, "bin/initdb")))
    .sort((a, b) => Number(b) - Number(a));
  return majors[0] === undefined ? undefined : join(root, majors[0], "bin");
}

export const PG_BIN = findBin();
export const hasPostgres = PG_BIN !== undefined;

const asRoot = process.getuid?.() === 0;
/** The cluster's superuser. */
const SUPERUSER = "vitalgate";

export interface Postgres {
  /** The socket directory: `host` for node-postgres. */
  socketDir: string;
  /** The same server on TCP, 127.0.0.1. */
  port: number;
  /** A new empty database; its connection settings. */
  database(name?: string): Promise<PgTarget>;
  stop(): Promise<void>;
}

export interface PgTarget {
  host: string;
  port: number;
  user: string;
  database: string;
}

function run(command: string, args: string[]): void {
  const full = asRoot ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, args];
  const r = spawnSync(full[0] as string, full[1] as string[], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${command} failed (${r.status}): ${r.stderr || r.stdout}`);
}

let databases = 0;

/** A scratch cluster, started; `stop()` stops it and removes its files. */
export async function startPostgres(): Promise<Postgres> {
  if (!PG_BIN) throw new Error("PostgreSQL is not installed (apt-get install postgresql)");
  // Not under the test run's temporary directory: that one is private to root, and the server runs as postgres.
  const dir = mkdtempSync("/tmp/vg-pg-");
  if (asRoot) chownSync(dir, Number(uid("postgres")), Number(uid("postgres", "-g")));
  const data = join(dir, "data");
  const port = await freePort();
  run(join(PG_BIN, "initdb"), ["-D", data, "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
  run(join(PG_BIN, "pg_ctl"), [
    "-D",
    data,
    "-l",
    join(dir, "server.log"),
    "-w",
    "-o",
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=32MB`,
    "start",
  ]);
  return {
    socketDir: dir,
    port,
    async database(name = `vg_test_${process.pid}_${++databases}`) {
      const admin = new pg.Client({ host: dir, port, user: SUPERUSER, database: "postgres" });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return { host: dir, port, user: SUPERUSER, database: name };
    },
    async stop() {
      try {
        run(join(PG_BIN!, "pg_ctl"), ["-D", data, "-m", "immediate", "-w", "stop"]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

function uid(user: string, flag = "-u"): string {
  return spawnSync("id", [flag, user], { encoding: "utf8" }).stdout.trim();
}
