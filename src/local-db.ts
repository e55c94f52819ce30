// The box's own records, apart from the outbox: web users, the audit trail, cases. One SQLite file
// (<stateDir>/local.db), WAL and synchronous=FULL like the outbox: a pairing, a case time node or an
// audit record acknowledged on the page is on disk. Each module creates its own tables in it.
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { ownerOnlyDatabase } from "./private-file.ts";

export type LocalDb = Database.Database;

export function localDbPath(stateDir: string): string {
  return join(stateDir, "local.db");
}

export function openLocalDb(path: string): LocalDb {
  mkdirSync(dirname(path), { recursive: true });
  ownerOnlyDatabase(path);
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("busy_timeout = 5000");
  return db;
}
