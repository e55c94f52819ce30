// The outbox's integrity check, run in a worker thread on a read-only connection of its own, so the
// gateway opens its listeners and takes data while a large file is read through (DESIGN.md §5).
// Posts "ok" or what SQLite found wrong.
import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";

const { path } = workerData as { path: string };
let result: string;
try {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    db.pragma("cache_size = -1000"); // 1 MB, as the writer's (decision 0008): the file is read once
    result = String(db.pragma("quick_check", { simple: true }));
  } finally {
    db.close();
  }
} catch (err) {
  result = err instanceof Error ? err.message : String(err);
}
parentPort!.postMessage(result);
