// Release bundles for the tests, made by the real `npm run release` (scripts/release.ts) into a folder under
// node_modules/.cache that outlives the run: the first run downloads Node and builds (about a minute per bundle on
// the 2-core box), later ones find the bundles up to date in a second.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "./processes.ts";

export const BUNDLE_OUT = join(ROOT, "node_modules/.cache/vitalgate-release/test-dist");
/**
 * Where bundles are extracted for the tests, once per bundle's contents, kept from run to run (with the arm64
 * daemon's compile cache beside them). Not under node_modules: Node strips no types from files below a folder of
 * that name (ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING), as it would not on a box.
 */
export const EXTRACTED = "/var/tmp/vitalgate-test-bundles";
export const PACKAGE_VERSION: string = (
  JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }
).version;

/** Runs a command to its end; its exit code and what it printed, both streams in order. */
export function runCommand(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd ?? ROOT,
      env: opts.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 600_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** `npm run release` for these architectures and version; the tarball of each, by architecture. */
export async function buildBundles(arches: string[], version = PACKAGE_VERSION): Promise<Record<string, string>> {
  const r = await runCommand(process.execPath, [
    join(ROOT, "scripts/release.ts"),
    "--arch",
    arches.join(","),
    "--version",
    version,
    "--out",
    BUNDLE_OUT,
  ]);
  if (r.code !== 0) throw new Error(`npm run release failed (${r.code}):\n${r.out}`);
  return Object.fromEntries(arches.map((a) => [a, join(BUNDLE_OUT, `vitalgate-${version}-linux-${a}.tar.gz`)]));
}

/**
 * A tarball extracted into a folder named by its digest under `parent`, once: a bundle's Node compile cache (keyed
 * by the files' paths) stays valid from run to run. Returns the bundle's own folder.
 */
export async function extractBundle(tarball: string, parent: string): Promise<string> {
  const digest = createHash("sha256").update(readFileSync(tarball)).digest("hex").slice(0, 12);
  const name = tarball
    .split("/")
    .at(-1)!
    .replace(/\.tar\.gz$/, "");
  const dir = join(parent, `${name}-${digest}`);
  if (!existsSync(join(dir, name))) {
    mkdirSync(parent, { recursive: true });
    for (const old of readdirSync(parent).filter((d) => d.startsWith(`${name}-`) && d !== `${name}-${digest}`))
      rmSync(join(parent, old), { recursive: true, force: true });
    const tmp = mkdtempSync(join(parent, ".partial-"));
    const r = await runCommand("tar", ["-xzf", tarball, "-C", tmp]);
    if (r.code !== 0) throw new Error(`tar -xzf ${tarball}: ${r.out}`);
    try {
      renameSync(tmp, dir);
    } catch (err) {
      if (!existsSync(join(dir, name))) throw err;
      rmSync(tmp, { recursive: true, force: true }); // another test file extracted it first
    }
  }
  return join(dir, name);
}
