// Files of the box's state that hold patient data or secrets (the outbox, local.db with users and
// cases, the paired devices, the logins): readable and writable by the gateway's user alone (0600),
// whatever the umask (issue 13 item 10).
import { chmodSync, closeSync, existsSync, openSync } from "node:fs";

/**
 * Makes the SQLite database at `path` owner-only before it is opened: created empty with mode 0600 when
 * missing (SQLite gives the -wal and -shm files it makes later the database file's mode), and an
 * existing one, with its -wal and -shm, set to 0600.
 */
export function ownerOnlyDatabase(path: string): void {
  closeSync(openSync(path, "a", 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(file)) chmodSync(file, 0o600);
}
