// The outbox's integrity check, run in a worker thread on a read-only connection of its own, so the
// gateway opens its listeners and takes data while a large file is read through (DESIGN.md §5).
// Posts "ok" or what SQLite found wrong.
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

/** The check of the file at `path`: "ok", or what SQLite (or opening it) found wrong. */
function quickCheck(path: string): string {
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      db.pragma("cache_size = -1000"); // 1 MB, as the writer's (decision 0008): the file is read once
      return String(db.pragma("quick_check", { simple: true }));
    } finally {
      db.close();
    }
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

// Only as the worker the outbox starts: imported anywhere else (scripts/warm-cache.ts imports every
// module), it does nothing, as every module of the gateway.
if (parentPort && workerData) parentPort.postMessage(quickCheck((workerData as { path: string }).path));
