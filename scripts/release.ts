// Builds the release bundles: `npm run release` writes, into dist/,
//   vitalgate-<version>-linux-x64.tar.gz and vitalgate-<version>-linux-arm64.tar.gz, and SHA256SUMS for them.
// Each holds everything a box needs and nothing it must fetch (docs/decisions/0019-release-bundles.md): the official
// Node 24 binary for its architecture (the npm registry's node-linux-<arch> package, the one `node@24` installs),
// the production dependencies with that architecture's native addons (better-sqlite3 and @serialport/bindings-cpp
// ship them in their npm packages; the others are dropped and every addon's ELF header is checked), the gateway's
// files as they are (no build step, decision 0001), the launcher bin/vitalgate, the installer install.sh, a RELEASE
// file and SHA256SUMS of every file in it.
//
//   npm run release -- [--arch x64,arm64] [--version V] [--out DIR]
//
// --version stamps another version into the bundle's package.json (the tests build a "next" release with it).
// Downloads are kept in node_modules/.cache/vitalgate-release/, and a bundle whose inputs did not change is not
// built again, so a second run takes a second.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  closeSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { parseArgs } from "node:util";

const ROOT = join(import.meta.dirname, "..");
export const RELEASE_CACHE = join(ROOT, "node_modules/.cache/vitalgate-release");

/** Architectures we ship, by Node's name, with the ELF machine of their binaries (the System V gABI's e_machine). */
export const ARCHES = {
  x64: { elfMachine: 62, uname: "x86_64" },
  arm64: { elfMachine: 183, uname: "aarch64" },
} as const;
export type Arch = keyof typeof ARCHES;

/** What of the checkout goes into a bundle: the gateway runs these files as they are (decision 0001). */
const APP_PATHS = [
  "src",
  "drivers",
  "protocols",
  "web",
  // The county center's receiver and reading station (vitalgate center, docs/center.md): the same bundle.
  "center",
  "config",
  "systemd",
  "docs",
  "scripts/warm-cache.ts",
  "README.md",
  "LICENSE",
  "package.json",
  "package-lock.json",
  ".node-version",
];

function run(cmd: string, args: string[], cwd = ROOT): string {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(" ")} failed (${r.error?.message ?? `exit ${r.status}`}):\n${r.stderr}`);
  return r.stdout;
}

const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

/** The app's files: tracked or new in the checkout, not ignored, still present. */
function appFiles(): string[] {
  return run("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", ...APP_PATHS])
    .split("\0")
    .filter((f) => f && existsSync(join(ROOT, f)))
    .sort();
}

/** The node-linux-<arch> package of the npm registry (official binary, headers, license), fetched once. */
function nodePackage(arch: Arch, nodeVersion: string): string {
  const tgz = join(RELEASE_CACHE, `node-linux-${arch}-${nodeVersion}.tgz`);
  if (!existsSync(tgz)) {
    mkdirSync(RELEASE_CACHE, { recursive: true });
    console.log(`release: fetching node-linux-${arch}@${nodeVersion} from the npm registry`);
    const tmp = mkdtempSync(join(RELEASE_CACHE, "pack-"));
    run("npm", ["pack", "--silent", `node-linux-${arch}@${nodeVersion}`, "--pack-destination", tmp]);
    renameSync(join(tmp, basename(tgz)), tgz);
    rmSync(tmp, { recursive: true, force: true });
  }
  return tgz;
}

/**
 * The production dependencies as `npm ci --omit=dev` installs them from the lockfile, once per lockfile. Install
 * scripts are not run: the two native packages load their prebuilt addons (below), and nothing is compiled for the
 * build machine's architecture.
 */
function productionModules(): string {
  const key = sha256(readFileSync(join(ROOT, "package-lock.json"))).slice(0, 16);
  const dir = join(RELEASE_CACHE, `deps-${key}`);
  if (!existsSync(join(dir, "node_modules"))) {
    console.log("release: npm ci --omit=dev (production dependencies from the lockfile)");
    const tmp = mkdtempSync(join(RELEASE_CACHE, "deps-tmp-"));
    for (const f of ["package.json", "package-lock.json"]) cpSync(join(ROOT, f), join(tmp, f));
    run("npm", ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--silent"], tmp);
    moveIntoPlace(tmp, dir);
  }
  return join(dir, "node_modules");
}

/**
 * Whether a file of node_modules belongs in the bundle for `arch`. Prebuilt addons are kept for linux-<arch> with
 * glibc only (the official Node binary is a glibc one); better-sqlite3's SQLite sources and build folder are what
 * a compile would need, and nothing here compiles.
 */
function keepModuleFile(path: string, arch: Arch): boolean {
  const parts = path.split("/");
  if (parts[0] === ".bin") return false; // links to the packages' command lines, which the gateway does not run
  const i = parts.lastIndexOf("prebuilds");
  if (i >= 0 && parts.length > i + 1) {
    const entry = parts[i + 1]!;
    if (!(entry === `linux-${arch}` || entry === `linux-${arch}.node`)) return false;
    if (/musl/.test(parts.at(-1)!)) return false;
  }
  const sqlite = parts.indexOf("better-sqlite3");
  if (sqlite >= 0 && ["deps", "src", "build", "binding.gyp"].includes(parts[sqlite + 1] ?? "")) return false;
  return true;
}

/** Renames a finished folder into place; when another build got there first, keeps theirs. */
function moveIntoPlace(tmp: string, dir: string): void {
  try {
    renameSync(tmp, dir);
  } catch (err) {
    if (!existsSync(dir)) throw err;
    rmSync(tmp, { recursive: true, force: true });
  }
}

function walk(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => statSync(join(dir, f)).isFile())
    .sort();
}

/** e_machine of an ELF file, or null when it is not one. */
function elfMachine(file: string): number | null {
  const fd = openSync(file, "r");
  try {
    const head = Buffer.alloc(20);
    if (readSync(fd, head, 0, 20, 0) < 20 || head.readUInt32BE(0) !== 0x7f454c46) return null;
    return head.readUInt16LE(18);
  } finally {
    closeSync(fd);
  }
}

/** Every native file is for `arch`; returns the newest glibc symbol version any of them needs. */
function checkNativeFiles(bundle: string, arch: Arch): string {
  let glibc = [2, 17];
  let natives = 0;
  for (const f of walk(bundle)) {
    const machine = elfMachine(join(bundle, f));
    if (machine === null) continue;
    natives++;
    if (machine !== ARCHES[arch].elfMachine)
      throw new Error(`release: ${f} is built for ELF machine ${machine}, not ${arch} (${ARCHES[arch].elfMachine})`);
    for (const m of readFileSync(join(bundle, f))
      .toString("latin1")
      .matchAll(/GLIBC_2\.(\d+)(?:\.\d+)?\0/g)) {
      const minor = Number(m[1]);
      if (minor > glibc[1]!) glibc = [2, minor];
    }
  }
  if (natives < 3) throw new Error(`release: expected node and two native addons in the bundle, found ${natives}`);
  return glibc.join(".");
}

type Built = { file: string; bytes: number; seconds: number; cached: boolean };

function buildBundle(arch: Arch, version: string, outDir: string): Built {
  const t0 = performance.now();
  const nodeVersion = readFileSync(join(ROOT, ".node-version"), "utf8").trim();
  const name = `vitalgate-${version}-linux-${arch}`;
  const tarball = join(outDir, `${name}.tar.gz`);
  const files = appFiles();
  const nodeTgz = nodePackage(arch, nodeVersion);
  const modules = productionModules();

  // What the bundle is made of; unchanged inputs, unchanged bundle.
  const inputs = createHash("sha256");
  for (const f of [...files, "scripts/install.sh", "scripts/vitalgate", "scripts/release.ts"])
    inputs.update(`${f}\0`).update(readFileSync(join(ROOT, f)));
  inputs.update(`${version}\0${arch}\0${basename(nodeTgz)}\0${basename(dirname(modules))}`);
  const stamp = join(outDir, `.${name}.inputs`);
  const digest = inputs.digest("hex");
  if (existsSync(tarball) && existsSync(stamp) && readFileSync(stamp, "utf8") === digest)
    return { file: tarball, bytes: statSync(tarball).size, seconds: (performance.now() - t0) / 1000, cached: true };

  const stage = mkdtempSync(join(outDir, ".stage-"));
  try {
    const bundle = join(stage, name);
    for (const f of files) cpSync(join(ROOT, f), join(bundle, f));
    if (version !== JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version) {
      const pkg = JSON.parse(readFileSync(join(bundle, "package.json"), "utf8"));
      writeFileSync(join(bundle, "package.json"), JSON.stringify({ ...pkg, version }, null, 2) + "\n");
    }
    cpSync(modules, join(bundle, "node_modules"), {
      recursive: true,
      filter: (src) => keepModuleFile(relative(modules, src), arch),
    });
    mkdirSync(join(bundle, "node"));
    run("tar", [
      "-xzf",
      nodeTgz,
      "-C",
      join(bundle, "node"),
      "--strip-components=1",
      "package/bin/node",
      "package/LICENSE",
    ]);
    mkdirSync(join(bundle, "bin"));
    cpSync(join(ROOT, "scripts/vitalgate"), join(bundle, "bin/vitalgate"));
    cpSync(join(ROOT, "scripts/install.sh"), join(bundle, "install.sh"));
    chmodSync(join(bundle, "bin/vitalgate"), 0o755);
    chmodSync(join(bundle, "install.sh"), 0o755);

    const glibc = checkNativeFiles(bundle, arch);
    writeFileSync(
      join(bundle, "RELEASE"),
      `version=${version}\narch=${arch}\nmachine=${ARCHES[arch].uname}\nnode=${nodeVersion}\nglibc=${glibc}\n`,
    );
    const sums = walk(bundle).map((f) => `${sha256(readFileSync(join(bundle, f)))}  ${f}\n`);
    writeFileSync(join(bundle, "SHA256SUMS"), sums.join(""));

    const epoch = run("git", ["log", "-1", "--format=%ct"]).trim();
    const partial = join(stage, `${name}.tar.gz`);
    run("tar", [
      "--sort=name",
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      `--mtime=@${epoch}`,
      "-C",
      stage,
      "-czf",
      partial,
      name,
    ]);
    renameSync(partial, tarball);
    writeFileSync(stamp, digest);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
  return { file: tarball, bytes: statSync(tarball).size, seconds: (performance.now() - t0) / 1000, cached: false };
}

/** Builds the bundles for `arches` into `outDir` and writes its SHA256SUMS; returns what was built. */
export function release(opts: { arches: Arch[]; version?: string; outDir: string }): Built[] {
  const version =
    opts.version ?? (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;
  if (!/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/.test(version))
    throw new Error(
      `release: version ${JSON.stringify(version)} is not a semantic version such as 1.2.3 or 1.2.3-rc.1`,
    );
  mkdirSync(opts.outDir, { recursive: true });
  const built = opts.arches.map((arch) => buildBundle(arch, version, opts.outDir));
  const sums = readdirSync(opts.outDir)
    .filter((f) => /^vitalgate-.*\.tar\.gz$/.test(f))
    .sort()
    .map((f) => `${sha256(readFileSync(join(opts.outDir, f)))}  ${f}\n`);
  writeFileSync(join(opts.outDir, "SHA256SUMS"), sums.join(""));
  return built;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      arch: { type: "string", default: "x64,arm64" },
      version: { type: "string" },
      out: { type: "string", default: join(ROOT, "dist") },
    },
  });
  const arches = values.arch.split(",").map((a) => a.trim());
  for (const a of arches) if (!(a in ARCHES)) throw new Error(`release: unknown --arch ${a}; one of x64, arm64`);
  try {
    for (const b of release({ arches: arches as Arch[], version: values.version, outDir: values.out }))
      console.log(
        `${relative(process.cwd(), b.file)}  ${(b.bytes / 1e6).toFixed(1)} MB  ${b.seconds.toFixed(1)} s${b.cached ? " (inputs unchanged)" : ""}`,
      );
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
}
