// Backups of the box's state (docs/operations.md, "Backups"): local.db (web users, the audit trail,
// cases, the center's readings) and outbox.db copied online and consistent by SQLite's backup API,
// beside the paired devices, the device clocks, the page's own certificate and the configuration file,
// into one folder with a manifest and SHA-256 sums. Restore puts them back into a stopped gateway's
// state directory after checking every sum, and keeps what it replaces.
import Database from "better-sqlite3";
import { createHash } from "node:crypto";
import {
  chmodSync,
  chownSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { VitalgateError } from "../errors.ts";
import { LOCAL_DB_SCHEMA, localDbPath } from "../local-db.ts";
import { latestVersion, schemaVersion, type Schema } from "../migrations.ts";
import { OUTBOX_SCHEMA } from "../outbox/schema.ts";
import { PAIRED_FILE } from "../pairing/store.ts";
import { VERSION } from "../version.ts";

export const BACKUP_FORMAT = "vitalgate-backup/1";
export const MANIFEST = "manifest.json";
/** The sums again in sha256sum(1)'s format: `sha256sum -c SHA256SUMS` checks a backup without the gateway. */
export const SUMS = "SHA256SUMS";
/** A backup being written: renamed to its name only when complete, so a half-written one never looks like one. */
const PARTIAL = ".partial";

/** What a backup copies from where: SQLite files through the backup API, the others as files. */
export interface BackupSources {
  gatewayId: string;
  stateDir: string;
  /** outbox.db; undefined: not in the backup (`backup.outbox: false`). */
  outboxPath?: string;
  /** The configuration file; undefined when the gateway runs on the embedded default. */
  configFile?: string;
}

export interface BackupFile {
  /** Its name in the backup, e.g. `local.db`, `web-tls/cert.pem`. */
  name: string;
  bytes: number;
  sha256: string;
}

export interface BackupManifest {
  format: string;
  /** The vitalgate release that took it. */
  version: string;
  gatewayId: string;
  createdAt: string;
  /** The schema version of each database in it (src/migrations.ts). */
  schema: Record<string, number>;
  files: BackupFile[];
}

export class BackupError extends VitalgateError {
  constructor(code: "VG_BACKUP_FAILED" | "VG_BACKUP_DAMAGED" | "VG_RESTORE_REFUSED", message: string) {
    super(code, message);
    this.name = "BackupError";
  }
}

const DATABASES: { name: string; schema: Schema }[] = [
  { name: "local.db", schema: LOCAL_DB_SCHEMA },
  { name: "outbox.db", schema: OUTBOX_SCHEMA },
];

/** The plain files of a state directory a backup takes, by their name there (and in the backup). */
const STATE_FILES = [PAIRED_FILE, "device-clocks.json", "web-tls/cert.pem", "web-tls/key.pem"];

/** `vitalgate-<gateway id>-<UTC time to the second>`: sorted by name, sorted by time. */
export function backupName(gatewayId: string, ms: number): string {
  return `vitalgate-${gatewayId}-${new Date(ms)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z")}`;
}

/** A file's SHA-256, read 1 MB at a time: an outbox of store.quotaMB is never held in memory whole. */
function sha256(path: string): string {
  const hash = createHash("sha256");
  const chunk = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(path, "r");
  try {
    for (let n; (n = readSync(fd, chunk, 0, chunk.length, null)) > 0;) hash.update(chunk.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest("hex");
}

/**
 * Copies a database while the gateway may be writing it: SQLite's online backup API, all pages in one
 * step (one read transaction: a consistent snapshot, not restarted by the writer's commits). In a
 * process of its own (the CLI, or the daemon's backup child), so the copy blocks no event loop.
 */
async function copyDatabase(from: string, to: string): Promise<void> {
  const db = new Database(from, { fileMustExist: true });
  try {
    db.pragma("busy_timeout = 5000");
    db.pragma("cache_size = -1000"); // 1 MB, as the daemon's (decision 0008): the file is read once
    await db.backup(to, { progress: () => 0x7fffffff });
  } finally {
    db.close();
  }
}

/**
 * Takes a backup into `dir` (made if missing): a new folder named by `backupName`, written as
 * `<name>.partial` and renamed when complete. Returns its path and manifest.
 */
export async function takeBackup(
  sources: BackupSources,
  dir: string,
  nowMs: number = Date.now(),
): Promise<{ path: string; manifest: BackupManifest }> {
  const name = backupName(sources.gatewayId, nowMs);
  const final = join(dir, name);
  const work = final + PARTIAL;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (existsSync(final)) throw new BackupError("VG_BACKUP_FAILED", `${final} exists already: one backup a second`);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { mode: 0o700 });
  try {
    const copied: string[] = [];
    const localDb = localDbPath(sources.stateDir);
    if (existsSync(localDb)) {
      await copyDatabase(localDb, join(work, "local.db"));
      copied.push("local.db");
    }
    if (sources.outboxPath !== undefined && existsSync(sources.outboxPath)) {
      await copyDatabase(sources.outboxPath, join(work, "outbox.db"));
      copied.push("outbox.db");
      // The sequence reservation, read after the copy: at or above every seq in it.
      if (existsSync(`${sources.outboxPath}.seq`)) {
        copyFileSync(`${sources.outboxPath}.seq`, join(work, "outbox.db.seq"));
        copied.push("outbox.db.seq");
      }
    }
    for (const file of STATE_FILES) {
      const from = join(sources.stateDir, file);
      if (!existsSync(from)) continue;
      mkdirSync(dirname(join(work, file)), { recursive: true, mode: 0o700 });
      copyFileSync(from, join(work, file));
      copied.push(file);
    }
    if (copied.length === 0)
      throw new BackupError(
        "VG_BACKUP_FAILED",
        `nothing to back up in ${sources.stateDir}: no local.db, outbox or paired devices (is it the gateway's stateDir?)`,
      );
    if (sources.configFile !== undefined) {
      copyFileSync(sources.configFile, join(work, "vitalgate.yaml"));
      copied.push("vitalgate.yaml");
    }
    const schema: Record<string, number> = {};
    for (const { name: db } of DATABASES) if (copied.includes(db)) schema[db] = versionOf(join(work, db));
    const files = copied.map((f) => {
      const path = join(work, f);
      chmodSync(path, 0o600);
      return { name: f, bytes: statSync(path).size, sha256: sha256(path) };
    });
    const manifest: BackupManifest = {
      format: BACKUP_FORMAT,
      version: VERSION,
      gatewayId: sources.gatewayId,
      createdAt: new Date(nowMs).toISOString(),
      schema,
      files,
    };
    writeFileSync(join(work, MANIFEST), JSON.stringify(manifest, null, 2) + "\n", { mode: 0o600 });
    writeFileSync(join(work, SUMS), files.map((f) => `${f.sha256}  ${f.name}\n`).join(""), { mode: 0o600 });
    renameSync(work, final);
    return { path: final, manifest };
  } catch (err) {
    rmSync(work, { recursive: true, force: true });
    if (err instanceof BackupError) throw err;
    throw new BackupError("VG_BACKUP_FAILED", `the backup into ${dir} failed: ${(err as Error).message}`);
  }
}

function versionOf(path: string): number {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return schemaVersion(db);
  } finally {
    db.close();
  }
}

/**
 * Deletes this gateway's backups in `dir` beyond the newest `keep` (and half-written ones left by an
 * interrupted run). Returns the paths deleted. Other files in `dir` are never touched.
 */
export function pruneBackups(dir: string, gatewayId: string, keep: number): string[] {
  const prefix = `vitalgate-${gatewayId}-`;
  const ours = readdirSync(dir).filter((n) => n.startsWith(prefix) && existsSync(join(dir, n, MANIFEST)));
  const partial = readdirSync(dir).filter((n) => n.startsWith(prefix) && n.endsWith(PARTIAL));
  const old = [...ours.sort().slice(0, Math.max(0, ours.length - keep)), ...partial].map((n) => join(dir, n));
  for (const path of old) rmSync(path, { recursive: true, force: true });
  return old;
}

/**
 * Reads a backup's manifest and checks every file in it against its SHA-256, and that its databases
 * are of a schema this release knows. Throws VG_BACKUP_DAMAGED naming what is wrong.
 */
export function verifyBackup(path: string): BackupManifest {
  const damaged = (why: string) => new BackupError("VG_BACKUP_DAMAGED", `the backup ${path} ${why}: not restored`);
  let manifest: BackupManifest;
  try {
    manifest = JSON.parse(readFileSync(join(path, MANIFEST), "utf8")) as BackupManifest;
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw damaged(
      code === "ENOENT" ? `has no ${MANIFEST} (is it a vitalgate backup?)` : `has an unreadable ${MANIFEST}`,
    );
  }
  if (manifest.format !== BACKUP_FORMAT || !Array.isArray(manifest.files))
    throw damaged(`is not of format ${BACKUP_FORMAT} (its ${MANIFEST} says ${String(manifest.format)})`);
  for (const f of manifest.files) {
    if (typeof f.name !== "string" || f.name.split("/").some((p) => p === ".." || p === "") || f.name.startsWith("/"))
      throw damaged(`names a file outside itself (${String(f.name)})`);
    const file = join(path, f.name);
    if (!existsSync(file)) throw damaged(`lacks ${f.name}, which its ${MANIFEST} lists`);
    const sum = sha256(file);
    if (sum !== f.sha256)
      throw damaged(`has a damaged ${f.name}: its SHA-256 is ${sum}, the ${MANIFEST} says ${f.sha256}`);
  }
  for (const { name, schema } of DATABASES) {
    const found = manifest.schema?.[name];
    if (found !== undefined && found > latestVersion(schema))
      throw new BackupError(
        "VG_RESTORE_REFUSED",
        `the backup ${path} holds ${name} at schema version ${found}, newer than this vitalgate ${VERSION} knows (up to ${latestVersion(schema)}): restore it with the release that took it (${manifest.version})`,
      );
  }
  return manifest;
}

/** Where a restore puts each file of a backup. */
export interface RestoreTargets {
  stateDir: string;
  outboxPath: string;
  /** The configuration file, when the restore puts it back too (`--with-config`). */
  configFile?: string;
}

/**
 * Puts a verified backup back into a stopped gateway's state (the caller makes sure it is stopped).
 * What it replaces is moved, never deleted, into `<stateDir>/replaced-<UTC time>/` (a database with
 * its -wal and -shm). The sequence reservation keeps the higher of the two, so seq never goes back.
 * Files are given the state directory's owner (a restore run as root for the vitalgate user).
 */
export function restoreBackup(
  path: string,
  targets: RestoreTargets,
  nowMs: number = Date.now(),
): { manifest: BackupManifest; replaced: string; restored: string[] } {
  const manifest = verifyBackup(path);
  mkdirSync(targets.stateDir, { recursive: true, mode: 0o750 });
  const owner = statSync(targets.stateDir);
  const replaced = join(
    targets.stateDir,
    `replaced-${new Date(nowMs)
      .toISOString()
      .replace(/[-:]/g, "")
      .replace(/\.\d+Z$/, "Z")}`,
  );
  const target = (name: string): string | undefined => {
    if (name === "outbox.db") return targets.outboxPath;
    if (name === "outbox.db.seq") return `${targets.outboxPath}.seq`;
    if (name === "vitalgate.yaml") return targets.configFile;
    return join(targets.stateDir, name);
  };
  const setAside = (file: string) => {
    if (!existsSync(file)) return;
    mkdirSync(replaced, { recursive: true, mode: 0o700 });
    const name = file.startsWith(targets.stateDir + "/") ? file.slice(targets.stateDir.length + 1) : basename(file);
    mkdirSync(dirname(join(replaced, name)), { recursive: true, mode: 0o700 });
    renameSync(file, join(replaced, name));
  };
  const restored: string[] = [];
  for (const f of manifest.files) {
    const to = target(f.name);
    if (to === undefined) continue;
    const from = join(path, f.name);
    let keepSeq: number | undefined;
    if (f.name === "outbox.db.seq" && existsSync(to)) keepSeq = Number(readFileSync(to, "utf8").trim());
    for (const suffix of DATABASES.some((d) => d.name === f.name) ? ["", "-wal", "-shm"] : [""]) setAside(to + suffix);
    mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
    copyFileSync(from, to);
    if (keepSeq !== undefined && keepSeq > Number(readFileSync(to, "utf8").trim())) writeFileSync(to, `${keepSeq}\n`);
    chmodSync(to, f.name === "vitalgate.yaml" ? 0o640 : 0o600);
    if (process.getuid?.() === 0) chownSync(to, owner.uid, owner.gid);
    restored.push(f.name);
  }
  return { manifest, replaced, restored };
}
