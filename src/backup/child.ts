// The daemon's scheduled backup, run in a child process (as the outbox's integrity check is): the
// SQLite copies and the SHA-256 sums read whole files, which must not hold the daemon's event loop.
// Sends {path, bytes, pruned} or {error}.
import { pruneBackups, takeBackup, type BackupSources } from "./backup.ts";

/** The argument that makes this module the backup (imported anywhere else it does nothing). */
export const BACKUP_ARG = "--vitalgate-backup";

export interface BackupJob {
  sources: BackupSources;
  dir: string;
  keep: number;
}

export type BackupJobResult = { path: string; bytes: number; pruned: string[] } | { error: string; code?: string };

async function run(job: BackupJob): Promise<BackupJobResult> {
  try {
    const { path, manifest } = await takeBackup(job.sources, job.dir);
    const pruned = pruneBackups(job.dir, job.sources.gatewayId, job.keep);
    return { path, bytes: manifest.files.reduce((n, f) => n + f.bytes, 0), pruned };
  } catch (err) {
    return { error: (err as Error).message, code: (err as { code?: string }).code };
  }
}

if (process.argv[2] === BACKUP_ARG && process.argv[3] !== undefined && process.send) {
  const result = await run(JSON.parse(process.argv[3]) as BackupJob);
  process.send(result, () => process.disconnect());
}
