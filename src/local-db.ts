// The box's own records, apart from the outbox: web users and sessions, the audit trail, cases and the
// center's ECG readings. One SQLite file (<stateDir>/local.db), WAL and synchronous=FULL like the
// outbox: a case time node or an audit record acknowledged on the page is on disk. Its tables are
// made here and only here, by versioned migrations (src/migrations.ts) applied at open; the modules
// that use them (src/web/auth.ts, src/audit/, src/cases/) find them made.
import Database from "better-sqlite3";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { hasColumn, migrate, type Schema } from "./migrations.ts";
import { ownerOnlyDatabase } from "./private-file.ts";

export type LocalDb = Database.Database;

export function localDbPath(stateDir: string): string {
  return join(stateDir, "local.db");
}

/**
 * local.db's schema versions. Version 1 is the layout before versions were kept, whichever earlier
 * layout a file has (columns added since the first one are added where missing); a file at version 0
 * with today's tables only gets its version written.
 */
export const LOCAL_DB_SCHEMA: Schema = {
  name: "local.db",
  migrations: [
    {
      to: 1,
      what: "web users, sessions and login failures; the audit trail; cases, their ECGs and the center's readings",
      up(db) {
        db.exec(`
CREATE TABLE IF NOT EXISTS web_users (username TEXT PRIMARY KEY, role TEXT NOT NULL, hash TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS web_sessions (key TEXT PRIMARY KEY, username TEXT NOT NULL, role TEXT NOT NULL, csrf TEXT NOT NULL, created_ms INTEGER NOT NULL, last_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS web_login_failures (username TEXT NOT NULL, at_ms INTEGER NOT NULL, boot TEXT, at_mono REAL);
CREATE INDEX IF NOT EXISTS web_login_failures_user ON web_login_failures (username);

CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, ip TEXT, action TEXT NOT NULL,
  target TEXT, detail TEXT, result TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit_anchor (
  id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL, at TEXT NOT NULL);

CREATE TABLE IF NOT EXISTS cases (
  id        TEXT PRIMARY KEY,
  opened_ms INTEGER NOT NULL,
  closed_ms INTEGER,
  data      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cases_open   ON cases(opened_ms) WHERE closed_ms IS NULL;
CREATE INDEX IF NOT EXISTS cases_recent ON cases(opened_ms);
-- Which case each ECG belongs to, and whether its transfer and the center's receipt are still awaited.
CREATE TABLE IF NOT EXISTS case_ecgs (
  event_id  TEXT PRIMARY KEY,
  case_id   TEXT NOT NULL,
  stored_ms INTEGER NOT NULL,
  sent      INTEGER NOT NULL DEFAULT 0,
  received  INTEGER NOT NULL DEFAULT 0
);
-- The per-day counter of the box's own case ids.
CREATE TABLE IF NOT EXISTS case_days (day TEXT PRIMARY KEY, n INTEGER NOT NULL);
-- Ids cases had before the first sync placed the date they were made from.
CREATE TABLE IF NOT EXISTS case_aliases (old TEXT PRIMARY KEY, id TEXT NOT NULL);
-- The center's readings of ECGs that belong to no case (a clinic that opens none): kept for the page.
CREATE TABLE IF NOT EXISTS ecg_readings (
  event_id    TEXT PRIMARY KEY,
  received_ms INTEGER NOT NULL,
  data        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ecg_readings_recent ON ecg_readings(received_ms);
`);
        // must_change: an initial or reset password, to be changed at the next login; changed_ms: when it was last set.
        if (!hasColumn(db, "web_users", "must_change"))
          db.exec("ALTER TABLE web_users ADD COLUMN must_change INTEGER NOT NULL DEFAULT 0");
        if (!hasColumn(db, "web_users", "changed_ms")) db.exec("ALTER TABLE web_users ADD COLUMN changed_ms INTEGER");
        // The boot and monotonic times of a session (rows from before have none).
        if (!hasColumn(db, "web_sessions", "boot"))
          db.exec(
            "ALTER TABLE web_sessions ADD COLUMN boot TEXT; ALTER TABLE web_sessions ADD COLUMN created_mono REAL; ALTER TABLE web_sessions ADD COLUMN last_mono REAL;",
          );
        // An audit record's time source and where the first sync placed it (records from before have none).
        if (!hasColumn(db, "audit", "time"))
          db.exec("ALTER TABLE audit ADD COLUMN time TEXT; ALTER TABLE audit ADD COLUMN placed_at TEXT;");
      },
    },
  ],
};

/** Opens (or creates) local.db and brings it to this release's schema; throws SchemaTooNewError for a newer file. */
export function openLocalDb(path: string): LocalDb {
  mkdirSync(dirname(path), { recursive: true });
  ownerOnlyDatabase(path);
  const db = new Database(path);
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = FULL");
    db.pragma("busy_timeout = 5000");
    migrate(db, path, LOCAL_DB_SCHEMA);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}
