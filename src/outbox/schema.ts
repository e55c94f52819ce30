// outbox.db's tables, made here and only here, by versioned migrations (src/migrations.ts) applied
// when the outbox opens (src/outbox/outbox.ts).
import type Database from "better-sqlite3";
import { hasColumn, type Schema } from "../migrations.ts";

/**
 * The queue's rows and the envelopes' bytes are two tables joined by seq. A delivery mark rewrites
 * its row, and SQLite rewrites a row whole: with the ~600-byte envelope beside the delivery
 * columns, marking an event delivered cost four times what it does on a ~60-byte queue row. The
 * payload is written once and never rewritten (but by restamping). `events` is a view of the two
 * together, the one table the store had before, for reading (queue stats, tests, tools).
 */
const TABLES = `
CREATE TABLE IF NOT EXISTS queue (
  seq          INTEGER PRIMARY KEY AUTOINCREMENT,
  id           TEXT    NOT NULL,
  priority     INTEGER NOT NULL,
  kind         TEXT    NOT NULL,
  evictable    INTEGER NOT NULL,
  size         INTEGER NOT NULL,
  topic        TEXT,
  created_ms   INTEGER NOT NULL,
  sent_ms      INTEGER,
  delivered_ms INTEGER,
  dev          TEXT
);
CREATE TABLE IF NOT EXISTS payloads (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS events_pending   ON queue(priority, seq) WHERE delivered_ms IS NULL;
CREATE INDEX IF NOT EXISTS events_delivered ON queue(delivered_ms)  WHERE delivered_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_id        ON queue(id);
CREATE VIEW IF NOT EXISTS events AS
  SELECT q.seq, q.id, q.priority, q.kind, q.evictable, p.payload, q.size, q.topic, q.created_ms, q.sent_ms, q.delivered_ms
  FROM queue q JOIN payloads p ON p.seq = q.seq;
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS intake   (key TEXT PRIMARY KEY, seq INTEGER NOT NULL, at_ms INTEGER);
`;

/**
 * An outbox of the first layout (one `events` table with the payload in each row) becomes the
 * current one: nothing queued is lost, seq continues (SQLite renames the AUTOINCREMENT counter with
 * the table), the indexes keep their names.
 */
function splitPayloads(db: Database.Database): void {
  const type = db.prepare("SELECT type FROM sqlite_master WHERE name = 'events'").pluck().get();
  if (type !== "table") return;
  db.exec(`
    ALTER TABLE events RENAME TO queue;
    CREATE TABLE payloads (seq INTEGER PRIMARY KEY, payload BLOB NOT NULL);
    INSERT INTO payloads (seq, payload) SELECT seq, payload FROM queue;
    ALTER TABLE queue DROP COLUMN payload;
  `);
}

/**
 * outbox.db's schema versions. Version 1 is the layout before versions were kept, from whichever
 * earlier layout a file has; a file at version 0 with today's tables only gets its version written.
 */
export const OUTBOX_SCHEMA: Schema = {
  name: "outbox.db",
  migrations: [
    {
      to: 1,
      what: "the queue and its payloads apart, counters, intake keys with their time, rows naming their device",
      up(db) {
        splitPayloads(db);
        db.exec(TABLES);
        // Outboxes from before resends were recognised: their intake keys (dropped files) have no time.
        if (!hasColumn(db, "intake", "at_ms")) db.exec("ALTER TABLE intake ADD COLUMN at_ms INTEGER");
        // Outboxes from before thinning: their rows name no device (each is thinned as a stream of its own kind).
        if (!hasColumn(db, "queue", "dev")) db.exec("ALTER TABLE queue ADD COLUMN dev TEXT");
      },
    },
  ],
};
