// The daemon's backups on `backup.schedule` (node-cron), into `backup.dir`, keeping `backup.keep`
// (docs/operations.md, "Backups"). Each runs in a child process (./child.ts); one at a time.
import { fork } from "node:child_process";
import cron from "node-cron";
import type { Logger } from "pino";
import type { AuditLog } from "../audit/audit.ts";
import type { Config } from "../config/schema.ts";
import { BACKUP_ARG, type BackupJob, type BackupJobResult } from "./child.ts";

export function backupJob(config: Config, configFile: string | undefined): BackupJob | undefined {
  const b = config.backup;
  if (!b) return undefined;
  return {
    sources: {
      gatewayId: config.gateway.id,
      stateDir: config.stateDir,
      outboxPath: b.outbox ? config.store.path : undefined,
      configFile,
    },
    dir: b.dir,
    keep: b.keep,
  };
}

/** Runs one backup job in a child process; resolves with what it reports. */
export function runBackupChild(job: BackupJob): Promise<BackupJobResult> {
  return new Promise((resolve) => {
    // The daemon's own Node flags and environment (its compile cache) carry over to the child.
    const child = fork(new URL("./child.ts", import.meta.url), [BACKUP_ARG, JSON.stringify(job)], {
      stdio: ["ignore", "ignore", "inherit", "ipc"],
    });
    let answered = false;
    child.once("message", (m) => {
      answered = true;
      resolve(m as BackupJobResult);
    });
    child.once("error", (err) => resolve({ error: err.message }));
    child.once("exit", (code, signal) => {
      if (!answered) resolve({ error: `the backup ended without an answer (${signal ?? `exit ${code}`})` });
    });
  });
}

/**
 * Schedules the configured backups; undefined when the configuration has no `backup` section. Each is
 * logged, and recorded in the audit trail (`backup`, by `system`).
 */
export function scheduleBackups(
  config: Config,
  configFile: string | undefined,
  o: { log: Logger; audit: () => Pick<AuditLog, "record"> | undefined },
): { stop(): Promise<void> } | undefined {
  const { log } = o;
  const job = backupJob(config, configFile);
  if (!job) return undefined;
  let running: Promise<void> | undefined;
  const task = cron.schedule(config.backup!.schedule, () => {
    if (running) return void log.warn({ code: "VG_BACKUP_SKIPPED" }, "the previous backup is still running: skipped");
    running = runBackupChild(job).then((r) => {
      running = undefined;
      if ("error" in r) log.error({ code: r.code ?? "VG_BACKUP_FAILED", err: r.error }, `backup failed: ${r.error}`);
      else log.info({ code: "VG_BACKUP", path: r.path, bytes: r.bytes, pruned: r.pruned.length }, "backup taken");
      try {
        o.audit()?.record(
          "error" in r
            ? { actor: "system", action: "backup", detail: { error: r.error }, result: "failed" }
            : { actor: "system", action: "backup", target: r.path, detail: { bytes: r.bytes }, result: "ok" },
        );
      } catch (err) {
        log.error({ code: "VG_AUDIT_FAILED", err: (err as Error).message }, "a backup could not be audited");
      }
    });
  });
  log.info({ dir: job.dir, schedule: config.backup!.schedule, keep: job.keep }, "backups scheduled");
  return {
    async stop() {
      await task.stop();
      await running;
    },
  };
}
