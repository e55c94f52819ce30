// `vitalgate backup` and `vitalgate restore` (src/backup/): a backup taken while the real daemon runs and
// a monitor keeps sending, restored into a fresh state directory, where a new daemon finds the users, the
// cases, the paired device and the events; a damaged backup refused; a restore refused beside a running
// daemon; the daemon's schedule and retention. SQLite on real files, HL7 over real MLLP/TCP.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, cpSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { AuditLog, type AuditEntry } from "../src/audit/audit.ts";
import { MANIFEST, SUMS } from "../src/backup/backup.ts";
import { scheduleBackups } from "../src/backup/schedule.ts";
import { loadConfig } from "../src/config/load.ts";
import { findDriver } from "../drivers/registry.ts";
import { localDbPath, openLocalDb } from "../src/local-db.ts";
import { createLogger } from "../src/log.ts";
import { savePairedDevices, pairedDevicesPath } from "../src/pairing/store.ts";
import { message } from "./support/e2e.ts";
import { MllpSender } from "./support/mllp-sender.ts";
import { waitFor } from "./support/mqtt.ts";
import { DAEMON_ENV, ROOT, daemonArgs, freePort, startDaemon, type Daemon } from "./support/processes.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** `vitalgate <args>` as a child process (asynchronous: the test goes on sending meanwhile). */
function cli(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, daemonArgs(args), { cwd: ROOT, env: { ...process.env, ...DAEMON_ENV } });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("exit", (code) => resolve({ code, out, err }));
  });
}

async function writeConfig(
  dir: string,
  monitorPort: number,
): Promise<{ path: string; stateDir: string; webPort: number }> {
  const webPort = await freePort();
  const stateDir = join(dir, "state");
  const path = join(dir, "vitalgate.yaml");
  writeFileSync(
    path,
    `gateway: { id: amb-07, role: ambulance }
stateDir: ${stateDir}
embeddedBroker: { host: 127.0.0.1, port: ${await freePort()} }
web: { host: 127.0.0.1, port: ${webPort} }
log: { level: info, pretty: false }
# the monitor is the paired one (${monitorPort}), in the state directory
`,
  );
  return { path, stateDir, webPort };
}

/** A state directory with a web user, a closed case and a paired monitor on `port`, as a box in use has. */
function seedState(stateDir: string, port: number): void {
  const db = openLocalDb(localDbPath(stateDir));
  db.prepare("INSERT INTO web_users (username, role, hash, created_at) VALUES ('dr-wang', 'admin', 'scrypt$x', ?)").run(
    new Date().toISOString(),
  );
  db.prepare("INSERT INTO cases (id, opened_ms, closed_ms, data) VALUES ('AMB07-20261207-001', 1, 2, '{}')").run();
  db.close();
  savePairedDevices(pairedDevicesPath(stateDir), [
    {
      id: "monitor-bed1",
      name: "床旁监护仪",
      driver: "hl7-pcd01",
      enabled: true,
      options: { mode: "listen", host: "127.0.0.1", port, timezone: "+08:00" } as Record<string, unknown>,
      pairedBy: "tech",
      pairedAt: "2026-12-07T10:00:00.000Z",
    },
  ]);
}

const rows = (path: string, sql: string) => {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare(sql).pluck().all();
  } finally {
    db.close();
  }
};

describe("vitalgate backup and restore", () => {
  it(
    "backs up a running gateway that is taking data, restores into a fresh state directory, and a new gateway finds everything there",
    {
      timeout: 120_000,
    },
    async () => {
      const monitorPort = await freePort();
      const box = await writeConfig(mkdtempSync(join(tmpdir(), "vg-backup-")), monitorPort);
      seedState(box.stateDir, monitorPort);
      let daemon: Daemon = await startDaemon(box.path, box.webPort);
      cleanup.push(() => daemon.kill9());

      // A monitor sending one message after another, acknowledged AA each, until told to stop.
      const acked: number[] = [];
      let sending = true;
      const sender = await MllpSender.connect(monitorPort);
      const monitor = (async () => {
        for (let i = 0; sending; i++) {
          const ack = await sender.send(message(i), 10_000);
          expect(ack.code).toBe("AA");
          acked.push(i);
        }
      })();
      await waitFor(() => acked.length >= 20, 20_000, "20 messages acknowledged");
      const ackedBefore = acked.length;
      const backupDir = join(mkdtempSync(join(tmpdir(), "vg-backups-")), "backups");
      const backup = await cli(["backup", "--config", box.path, "--to", backupDir]);
      const ackedDuring = acked.length - ackedBefore;
      sending = false;
      await monitor;
      sender.close();
      expect(backup.code, backup.err).toBe(0);
      expect(ackedDuring, "the monitor kept being acknowledged while the backup ran").toBeGreaterThan(0);
      const path = backup.out.trim().split("\n").at(-1)!;
      expect(path).toMatch(/\/vitalgate-amb-07-\d{8}T\d{6}Z$/);

      // A consistent copy: SQLite finds both files whole, with every event acknowledged before it began.
      const manifest = JSON.parse(readFileSync(join(path, MANIFEST), "utf8")) as {
        files: { name: string }[];
        schema: Record<string, number>;
      };
      expect(manifest.files.map((f) => f.name)).toEqual([
        "local.db",
        "outbox.db",
        "outbox.db.seq",
        "paired-devices.json",
        "vitalgate.yaml",
      ]);
      expect(manifest.schema).toEqual({ "local.db": 1, "outbox.db": 1 });
      expect(readFileSync(join(path, SUMS), "utf8")).toMatch(/^[0-9a-f]{64} {2}local\.db\n/);
      for (const db of ["local.db", "outbox.db"])
        expect(rows(join(path, db), "PRAGMA integrity_check")).toEqual(["ok"]);
      const vitalsInBackup = rows(
        join(path, "outbox.db"),
        "SELECT count(*) FROM queue WHERE kind = 'vitals'",
      )[0] as number;
      expect(vitalsInBackup).toBeGreaterThanOrEqual(ackedBefore);

      // Not beside the running gateway.
      const refused = await cli(["restore", path, "--config", box.path]);
      expect(refused.code).toBe(1);
      expect(refused.err).toMatch(/the gateway is running on .* \(pid \d+\): stop it first/);

      // A fresh box (another state directory), the first one stopped: restore, then start.
      await daemon.stop();
      const fresh = await writeConfig(mkdtempSync(join(tmpdir(), "vg-restored-")), monitorPort);
      const restored = await cli(["restore", path, "--config", fresh.path]);
      expect(restored.code, restored.err).toBe(0);
      expect(restored.err).toContain("restored local.db, outbox.db, outbox.db.seq, paired-devices.json from");
      daemon = await startDaemon(fresh.path, fresh.webPort);
      await waitFor(() => daemon.output().includes('"msg":"devices started"'), 10_000, "devices started");
      expect(daemon.output()).toMatch(/"paired":1,.*"msg":"devices started"/);
      expect(daemon.output()).not.toContain("VG_WEB_SETUP"); // a web user exists: no first-run setup
      // The restored monitor is listening again.
      const again = await MllpSender.connect(monitorPort);
      expect((await again.send(message(10_000), 10_000)).code).toBe("AA");
      again.close();
      await daemon.stop();
      const local = localDbPath(fresh.stateDir);
      expect(rows(local, "SELECT username FROM web_users")).toEqual(["dr-wang"]);
      expect(rows(local, "SELECT id FROM cases")).toEqual(["AMB07-20261207-001"]);
      // The restore is in the restored audit trail (taken while the first daemon ran), before the new daemon's start.
      expect(rows(local, "SELECT action FROM audit ORDER BY seq")).toEqual([
        "daemon.start",
        "backup.restore",
        "daemon.start",
        "daemon.stop",
      ]);
      const audit = openLocalDb(local);
      expect(new AuditLog(audit, () => ({ ms: Date.now(), src: "system", uncMs: 1000 })).verify()).toMatchObject({
        ok: true,
      });
      audit.close();
      const outbox = join(fresh.stateDir, "outbox.db");
      expect(rows(outbox, "SELECT count(*) FROM queue WHERE kind = 'vitals'")[0]).toBeGreaterThan(vitalsInBackup);
    },
  );

  it(
    "refuses a damaged backup, naming the file and its sums, and leaves the state as it was",
    { timeout: 60_000 },
    async () => {
      const box = await writeConfig(mkdtempSync(join(tmpdir(), "vg-backup-")), await freePort());
      seedState(box.stateDir, await freePort());
      const backup = await cli(["backup", "--config", box.path, "--to", join(box.stateDir, "..", "backups")]);
      expect(backup.code, backup.err).toBe(0);
      const path = backup.out.trim();
      const damaged = `${path}-damaged`;
      cpSync(path, damaged, { recursive: true });
      const db = readFileSync(join(damaged, "local.db"));
      db[db.length - 100]! ^= 0xff;
      writeFileSync(join(damaged, "local.db"), db);

      const fresh = await writeConfig(mkdtempSync(join(tmpdir(), "vg-restored-")), await freePort());
      const r = await cli(["restore", damaged, "--config", fresh.path]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(
        new RegExp(
          `^vitalgate restore: the backup ${damaged} has a damaged local\\.db: its SHA-256 is [0-9a-f]{64}, the manifest\\.json says [0-9a-f]{64}: not restored\\n$`,
        ),
      );
      expect(existsSync(fresh.stateDir)).toBe(false);

      const nothing = await cli(["backup", "--config", fresh.path, "--to", join(fresh.stateDir, "..", "backups")]);
      expect(nothing.code).toBe(1);
      expect(nothing.err).toContain(`nothing to back up in ${fresh.stateDir}: no local.db, outbox or paired devices`);

      const notABackup = await cli(["restore", fresh.stateDir + "-nothing", "--config", fresh.path]);
      expect(notABackup.code).toBe(1);
      expect(notABackup.err).toContain("has no manifest.json (is it a vitalgate backup?)");
    },
  );

  it(
    "takes the configured backups on the daemon's schedule and keeps backup.keep of them",
    { timeout: 60_000 },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "vg-backup-schedule-"));
      const stateDir = join(dir, "state");
      seedState(stateDir, await freePort());
      const backups = join(dir, "backups");
      const loaded = loadConfig({
        text: `gateway: { id: clinic-3, role: clinic }\nstateDir: ${stateDir}\nbackup: { dir: ${backups}, schedule: "* * * * * *", keep: 2 }\n`,
        drivers: findDriver,
      });
      if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
      let logged = "";
      const log = createLogger(
        { level: "info", pretty: false },
        new Writable({
          write(chunk: Buffer, _enc, done) {
            logged += chunk.toString();
            done();
          },
        }),
      );
      const audited: AuditEntry[] = [];
      const schedule = scheduleBackups(loaded.config, undefined, {
        log,
        audit: () => ({ record: (e) => audited.push(e) }),
      })!;
      cleanup.push(() => schedule.stop());
      await waitFor(() => (logged.match(/"msg":"backup taken"/g) ?? []).length >= 3, 20_000, "three scheduled backups");
      await schedule.stop();
      const kept = readdirSync(backups);
      expect(kept).toHaveLength(2);
      for (const name of kept) expect(name).toMatch(/^vitalgate-clinic-3-\d{8}T\d{6}Z$/);
      expect(logged).not.toContain("backup failed");
      expect(audited.length).toBeGreaterThanOrEqual(3);
      expect(audited[0]).toMatchObject({ actor: "system", action: "backup", result: "ok" });
    },
  );
});
