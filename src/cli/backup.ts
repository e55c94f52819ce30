// `vitalgate backup` and `vitalgate restore` (docs/operations.md, "Backups").
import { chownSync, existsSync, statSync } from "node:fs";
import { userInfo } from "node:os";
import { basename } from "node:path";
import { AuditLog } from "../audit/audit.ts";
import type { Config } from "../config/schema.ts";
import { localDbPath, openLocalDb } from "../local-db.ts";
import { systemClock } from "../time/clock.ts";
import { BackupError, pruneBackups, restoreBackup, takeBackup } from "../backup/backup.ts";
import { DEFAULT_CONFIG_NAME } from "../config/defaults.ts";
import { daemonPid } from "../service/pid-file.ts";

type Io = { out: (s: string) => void; err: (s: string) => void };
export interface Resolved {
  config: Config;
  /** The configuration file, or the embedded default's name. */
  source: string;
}

const configFileOf = (r: Resolved) => (r.source === DEFAULT_CONFIG_NAME ? undefined : r.source);

/**
 * Takes a backup now, beside a running gateway or a stopped one, into `to` or `backup.dir`; with the
 * `backup` section, prunes to `backup.keep`. Prints the backup's path on standard output (the last line).
 */
export async function backupCommand(r: Resolved, to: string | undefined, io: Io): Promise<number> {
  const { config } = r;
  const dir = to ?? config.backup?.dir ?? "/var/lib/vitalgate-backup";
  try {
    const { path, manifest } = await takeBackup(
      {
        gatewayId: config.gateway.id,
        stateDir: config.stateDir,
        // Always the outbox (backup.outbox is for the scheduled ones): an upgrade's backup must hold the
        // layout the release being left reads, or a rollback finds an outbox it refuses.
        outboxPath: config.store.path,
        configFile: configFileOf(r),
      },
      dir,
    );
    for (const f of manifest.files) io.err(`  ${f.name} (${f.bytes} bytes)\n`);
    if (config.backup && to === undefined)
      for (const old of pruneBackups(dir, config.gateway.id, config.backup.keep))
        io.err(`deleted ${old} (backup.keep: ${config.backup.keep})\n`);
    io.out(`${path}\n`);
    return 0;
  } catch (err) {
    io.err(`vitalgate backup: ${(err as Error).message}\n`);
    return 1;
  }
}

/**
 * Restores a backup into the stopped gateway's state directory; refuses while the daemon runs on it,
 * and a backup whose sums do not match. `withConfig`: the configuration file too.
 */
export function restoreCommand(r: Resolved, backup: string | undefined, withConfig: boolean, io: Io): number {
  if (!backup) {
    io.err("usage: vitalgate restore BACKUP [--config FILE] [--with-config]\n");
    return 2;
  }
  const { config } = r;
  const pid = daemonPid(config.stateDir);
  if (pid !== undefined) {
    io.err(
      `vitalgate restore: the gateway is running on ${config.stateDir} (pid ${pid}): stop it first (systemctl stop vitalgate), then restore, then start it\n`,
    );
    return 1;
  }
  if (withConfig && configFileOf(r) === undefined) {
    io.err("vitalgate restore: --with-config needs the configuration file's path (--config FILE)\n");
    return 2;
  }
  try {
    const { manifest, replaced, restored } = restoreBackup(backup, {
      stateDir: config.stateDir,
      outboxPath: config.store.path,
      configFile: withConfig ? configFileOf(r) : undefined,
    });
    io.err(
      `restored ${restored.join(", ")} from ${backup} (taken ${manifest.createdAt} by vitalgate ${manifest.version})\n`,
    );
    io.err(`what they replaced is kept in ${replaced}\n`);
    if (restored.includes("local.db")) auditRestore(config.stateDir, backup, manifest, restored);
    if (manifest.gatewayId !== config.gateway.id)
      io.err(`note: the backup is of gateway ${manifest.gatewayId}, this configuration is of ${config.gateway.id}\n`);
    return 0;
  } catch (err) {
    io.err(`vitalgate restore: ${(err as Error).message}\n`);
    return err instanceof BackupError ? 1 : 2;
  }
}

/**
 * The restore in the restored audit trail (等保: who put which backup back, when), chained after its
 * last record. As root, the files SQLite may leave are given the state directory's owner.
 */
function auditRestore(
  stateDir: string,
  backup: string,
  manifest: { createdAt: string; version: string },
  restored: string[],
): void {
  const path = localDbPath(stateDir);
  const db = openLocalDb(path);
  try {
    new AuditLog(db, systemClock().now).record({
      actor: process.env.SUDO_USER ?? userInfo().username,
      action: "backup.restore",
      target: basename(backup),
      detail: { takenAt: manifest.createdAt, takenBy: manifest.version, files: restored },
      result: "ok",
    });
  } finally {
    db.close();
  }
  if (process.getuid?.() !== 0) return;
  const { uid, gid } = statSync(stateDir);
  for (const file of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(file)) chownSync(file, uid, gid);
}
