// The outbox's integrity check, run in a child process on a read-only connection of its own, so the
// gateway opens its listeners and takes data while a large file is read through (DESIGN.md §5).
// A process, not a worker thread: a worker's V8 isolate left ~8 MB in the daemon's heap arenas
// after it ended (daemon RSS with 10k queued 106 MB against 97 MB without it, decision 0008's goal
// is 100); a child's memory goes back to the system when it exits. Sends its verdict: "ok", "corrupt"
// with what SQLite found wrong, or "unchecked" when the file could not be read for another cause
// (busy, out of memory or descriptors): only damage may set the outbox aside.
import Database from "better-sqlite3";

/** The argument that makes this module the check (imported anywhere else it does nothing). */
export const CHECK_ARG = "--vitalgate-store-check";

export interface CheckVerdict {
  found: "ok" | "corrupt" | "unchecked";
  detail?: string;
}

/** SQLite's result codes for a damaged file (sqlite.org/rescode.html: SQLITE_CORRUPT, SQLITE_NOTADB and their extended codes). */
const DAMAGE = /^SQLITE_(CORRUPT|NOTADB)/;

/** The check of the file at `path`. */
function quickCheck(path: string): CheckVerdict {
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      db.pragma("cache_size = -1000"); // 1 MB, as the writer's (decision 0008): the file is read once
      const found = String(db.pragma("quick_check", { simple: true }));
      return found === "ok" ? { found: "ok" } : { found: "corrupt", detail: found };
    } finally {
      db.close();
    }
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const detail = err instanceof Error ? err.message : String(err);
    return typeof code === "string" && DAMAGE.test(code)
      ? { found: "corrupt", detail }
      : { found: "unchecked", detail };
  }
}

// Only as the child the outbox starts: imported anywhere else (scripts/warm-cache.ts imports every
// module), it does nothing, as every module of the gateway.
if (process.argv[2] === CHECK_ARG && process.argv[3] !== undefined && process.send) {
  process.send(quickCheck(process.argv[3]), () => process.disconnect());
}
