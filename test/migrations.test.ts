// Schema versions of local.db and outbox.db (src/migrations.ts): files of earlier layouts, made with
// the statements of their time, are brought forward at open; a file from a newer release is refused
// with the versions named and what to do; each database's tables are made by one module. SQLite on
// real files, and the real daemon refusing to start on a newer file.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { LOCAL_DB_SCHEMA, localDbPath, openLocalDb } from "../src/local-db.ts";
import { latestVersion, SchemaTooNewError } from "../src/migrations.ts";
import { Outbox } from "../src/outbox/outbox.ts";
import { OUTBOX_SCHEMA } from "../src/outbox/schema.ts";
import { vitals } from "./support/events.ts";
import { DAEMON_ENV, ROOT, daemonArgs, freePort } from "./support/processes.ts";

const scratch = () => mkdtempSync(join(tmpdir(), "vg-migrations-"));
const columns = (db: Database.Database, table: string) =>
  db.prepare("SELECT name FROM pragma_table_info(?)").pluck().all(table) as string[];
const version = (path: string) => {
  const db = new Database(path, { readonly: true });
  const v = db.pragma("user_version", { simple: true }) as number;
  db.close();
  return v;
};
const schemaSql = (db: Database.Database) =>
  db.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").raw().all();

/** local.db as the first releases made it: before forced password changes, session boot times and audit time sources. */
function earliestLocalDb(path: string): void {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.exec(`
    CREATE TABLE web_users (username TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL, created_at TEXT NOT NULL);
    CREATE TABLE web_sessions (key TEXT PRIMARY KEY, username TEXT NOT NULL, role TEXT NOT NULL, csrf TEXT NOT NULL, created_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL);
    CREATE TABLE audit (
      seq INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, ip TEXT, action TEXT NOT NULL,
      target TEXT, detail TEXT, result TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);
    CREATE TABLE cases (id TEXT PRIMARY KEY, opened_ms INTEGER NOT NULL, closed_ms INTEGER, data TEXT NOT NULL);
    INSERT INTO web_users VALUES ('admin', 'admin', 'scrypt$x', '2026-11-01T00:00:00Z');
    INSERT INTO web_sessions VALUES ('k1', 'admin', 'admin', 'c', 1, 2);
    INSERT INTO audit VALUES (1, '2026-11-01T00:00:00Z', 'system', NULL, 'daemon.start', NULL, NULL, 'ok', 'g', 'h');
    INSERT INTO cases VALUES ('AMB07-20261101-001', 1, NULL, '{}');`);
  db.close();
}

describe("local.db", () => {
  it("brings a file of the first layout (version 0) to version 1, its rows kept", () => {
    const path = localDbPath(scratch());
    earliestLocalDb(path);
    expect(version(path)).toBe(0);
    const db = openLocalDb(path);
    expect(db.pragma("user_version", { simple: true })).toBe(1);
    expect(columns(db, "web_users")).toEqual(expect.arrayContaining(["must_change", "changed_ms"]));
    expect(columns(db, "web_sessions")).toEqual(expect.arrayContaining(["boot", "created_mono", "last_mono"]));
    expect(columns(db, "audit")).toEqual(expect.arrayContaining(["time", "placed_at"]));
    for (const table of [
      "audit_anchor",
      "web_login_failures",
      "case_ecgs",
      "case_days",
      "case_aliases",
      "ecg_readings",
    ])
      expect(columns(db, table).length, table).toBeGreaterThan(0);
    expect(db.prepare("SELECT username, must_change FROM web_users").raw().all()).toEqual([["admin", 0]]);
    expect(db.prepare("SELECT action FROM audit").pluck().all()).toEqual(["daemon.start"]);
    expect(db.prepare("SELECT id FROM cases").pluck().all()).toEqual(["AMB07-20261101-001"]);
    db.close();
  });

  it("gives a file of today's tables without a version (version 0) version 1, changing nothing else", () => {
    const path = localDbPath(scratch());
    const fresh = openLocalDb(path);
    const tables = schemaSql(fresh);
    fresh.pragma("user_version = 0");
    fresh.close();
    const db = openLocalDb(path);
    expect(db.pragma("user_version", { simple: true })).toBe(1);
    expect(schemaSql(db)).toEqual(tables);
    db.close();
  });

  it("refuses a file from a newer release, naming both versions and the backup to restore, and leaves it as it is", () => {
    const path = localDbPath(scratch());
    openLocalDb(path).close();
    const newer = new Database(path);
    newer.pragma(`user_version = ${latestVersion(LOCAL_DB_SCHEMA) + 1}`);
    newer.close();
    expect(() => openLocalDb(path)).toThrow(SchemaTooNewError);
    try {
      openLocalDb(path);
    } catch (err) {
      expect((err as SchemaTooNewError).code).toBe("VG_SCHEMA_TOO_NEW");
      expect((err as Error).message).toMatch(
        new RegExp(
          `^${path} is at schema version 2, newer than this vitalgate .* knows \\(up to 1\\).*vitalgate restore`,
        ),
      );
    }
    expect(version(path)).toBe(2);
  });
});

describe("outbox.db", () => {
  const outbox = (dir: string) =>
    new Outbox({ path: join(dir, "outbox.db"), quotaBytes: 1e9, batchMax: 100, nowMs: () => Date.now() });

  it("writes version 1 into an outbox of today's tables without one, keeping its events", async () => {
    const dir = scratch();
    const first = outbox(dir);
    first.open();
    const [stored] = await first.append([vitals(70)]);
    first.close();
    const db = new Database(join(dir, "outbox.db"));
    db.pragma("user_version = 0");
    db.close();
    const again = outbox(dir);
    again.open();
    expect(again.pending(10).map((r) => r.seq)).toEqual([stored!.seq]);
    again.close();
    expect(version(join(dir, "outbox.db"))).toBe(latestVersion(OUTBOX_SCHEMA));
  });

  it("refuses an outbox from a newer release instead of setting it aside as corrupt", () => {
    const dir = scratch();
    const first = outbox(dir);
    first.open();
    first.close();
    const db = new Database(join(dir, "outbox.db"));
    db.pragma("user_version = 9");
    db.close();
    expect(() => outbox(dir).open()).toThrow(
      /outbox\.db is at schema version 9, newer than this vitalgate .* \(up to 1\)/,
    );
    expect(readdirSync(dir).filter((f) => f.includes("corrupt"))).toEqual([]);
    expect(version(join(dir, "outbox.db"))).toBe(9);
  });
});

describe("the daemon", () => {
  it("does not start on a local.db from a newer release: exit 1, the versions and what to do in the log", async () => {
    const dir = scratch();
    const stateDir = join(dir, "state");
    mkdirSync(stateDir);
    const db = new Database(localDbPath(stateDir));
    db.pragma("user_version = 5");
    db.close();
    const config = join(dir, "vitalgate.yaml");
    writeFileSync(
      config,
      `gateway: { id: newer, role: clinic }\nstateDir: ${stateDir}\nembeddedBroker: { host: 127.0.0.1, port: ${await freePort()} }\nweb: { host: 127.0.0.1, port: ${await freePort()} }\nlog: { level: info, pretty: false }\n`,
    );
    const r = spawnSync(process.execPath, daemonArgs(["start", "--config", config]), {
      cwd: ROOT,
      env: { ...process.env, ...DAEMON_ENV },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(r.status, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toContain("VG_SCHEMA_TOO_NEW");
    expect(r.stdout).toMatch(/local\.db is at schema version 5, newer than this vitalgate .* \(up to 1\)/);
    expect(version(localDbPath(stateDir))).toBe(5);
  });
});

describe("where tables are made", () => {
  it("is one module per database: src/local-db.ts and src/outbox/schema.ts", () => {
    const files = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
      );
    const making = files(join(ROOT, "src"))
      .filter((f) => /CREATE (TABLE|INDEX|VIEW)|ALTER TABLE/.test(readFileSync(f, "utf8")))
      .map((f) => relative(ROOT, f))
      .sort();
    expect(making).toEqual(["src/local-db.ts", "src/outbox/schema.ts"]);
    expect(existsSync(join(ROOT, "src/migrations.ts"))).toBe(true);
  });
});
