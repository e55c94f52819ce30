// Schema versions of the gateway's SQLite files (local.db, outbox.db): each file's version is its
// `PRAGMA user_version`, each database has an ordered list of forward migrations, and opening a file
// applies the ones it lacks in one transaction (a migration that fails leaves the file as it was).
// A file newer than this release knows is refused: an older release must not guess at a newer layout
// (after a rollback, the pre-upgrade backup is what to restore).
import type Database from "better-sqlite3";
import { VitalgateError } from "./errors.ts";
import { VERSION } from "./version.ts";

export interface Migration {
  /** The version the file is at after it; 1, 2, … in order. */
  to: number;
  /** What it changes, for the log. */
  what: string;
  up(db: Database.Database): void;
}

export interface Schema {
  /** The database's name in messages, e.g. "local.db". */
  name: string;
  migrations: readonly Migration[];
}

/** The file was written by a newer release: this one does not open it. */
export class SchemaTooNewError extends VitalgateError {
  readonly found: number;
  readonly known: number;
  constructor(file: string, found: number, known: number) {
    super(
      "VG_SCHEMA_TOO_NEW",
      `${file} is at schema version ${found}, newer than this vitalgate ${VERSION} knows (up to ${known}): ` +
        "it was written by a newer release. Run that release, or restore the backup taken before the upgrade " +
        "(vitalgate restore BACKUP, with the gateway stopped; docs/operations.md, Backups)",
    );
    this.name = "SchemaTooNewError";
    this.found = found;
    this.known = known;
  }
}

/** The newest version a schema's migrations reach. */
export function latestVersion(schema: Schema): number {
  return schema.migrations.at(-1)?.to ?? 0;
}

/** A file's schema version (0: a new file, or one from before versions were kept). */
export function schemaVersion(db: Database.Database): number {
  return db.pragma("user_version", { simple: true }) as number;
}

/**
 * Brings an open file up to the schema's latest version, in one transaction; throws SchemaTooNewError
 * for a file newer than that. Returns the versions before and after.
 */
export function migrate(db: Database.Database, file: string, schema: Schema): { from: number; to: number } {
  const from = schemaVersion(db);
  const latest = latestVersion(schema);
  if (from > latest) throw new SchemaTooNewError(file, from, latest);
  if (from === latest) return { from, to: from };
  db.transaction(() => {
    for (const m of schema.migrations) {
      if (m.to <= from) continue;
      m.up(db);
      // user_version is in the file's header, written with the transaction (and rolled back with it).
      db.pragma(`user_version = ${m.to}`);
    }
  })();
  return { from, to: latest };
}

/** Whether a table has a column: for migrations that meet files of every earlier layout. */
export function hasColumn(db: Database.Database, table: string, column: string): boolean {
  return (db.prepare("SELECT name FROM pragma_table_info(?)").pluck().all(table) as string[]).includes(column);
}
