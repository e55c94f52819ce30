// The installer of a release bundle (scripts/install.sh, at the top of every bundle), as a county IT person runs it,
// with the bundle's real daemon: in a scratch root (--root) on a "box" with no network (a network namespace of its
// own, where only the ambulance LAN address 192.168.50.1 exists, on loopback) and no Node (a mount namespace in
// which every node on the system PATH is a program that fails), run with PATH=/usr/bin:/bin and nothing else.
// Fresh install by role, refused until provisioned; upgrade; an upgrade that is not healthy rolled back by itself;
// the rollback command. Bundles from scripts/release.ts (cached under node_modules/.cache, test/support/bundles.ts).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXTRACTED, PACKAGE_VERSION, buildBundles, extractBundle, runCommand } from "./support/bundles.ts";
import { makePki } from "./support/pki.ts";

const hasBoxTools =
  process.getuid?.() === 0 &&
  spawnSync("sh", ["-c", "command -v unshare && command -v nsenter && command -v ip"]).status === 0;
if (!hasBoxTools) console.log("install.test.ts skipped: it needs root, unshare, nsenter and ip (iproute2)");

/** The next version after package.json's (the upgrade), and one after that (the release that fails). */
const [major, minor, patch] = PACKAGE_VERSION.split(/[.-]/).map(Number) as [number, number, number];
const NEXT = `${major}.${minor}.${patch + 1}`;
const BROKEN = `${major}.${minor}.${patch + 2}`;
/** Generous: the 2-core box runs five test suites at once; a daemon that exits is seen at once anyway. */
const HEALTH_TIMEOUT_S = Number(process.env.VG_TEST_HEALTH_TIMEOUT_S ?? 120);

/** A box: a process holding a network and a mount namespace, where commands run by nsenter. */
class Box {
  private holder!: ChildProcess;
  private readonly scratch: string;
  constructor(scratch: string) {
    this.scratch = scratch;
  }

  async start(): Promise<void> {
    const noNode = join(this.scratch, "no-node");
    writeFileSync(noNode, "#!/bin/sh\necho 'node: there is no Node on this box' >&2\nexit 127\n");
    chmodSync(noNode, 0o755);
    const script = [
      "set -e",
      `for n in /usr/bin/node /usr/local/bin/node /usr/sbin/node /opt/node/bin/node; do [ ! -e "$n" ] || mount --bind ${noNode} "$n"; done`,
      "ip link set lo up",
      "ip addr add 192.168.50.1/24 dev lo",
      "echo ready",
      "exec cat >/dev/null",
    ].join("\n");
    this.holder = spawn("unshare", ["--net", "--mount", "--propagation", "private", "bash", "-c", script], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    await new Promise<void>((resolve, reject) => {
      this.holder.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("ready")) resolve();
      });
      this.holder.stderr!.on("data", (d: Buffer) => (out += d.toString()));
      this.holder.once("exit", (code) => reject(new Error(`the box did not start (${code}): ${out}`)));
    });
  }

  /** A shell command on the box, as root with PATH=/usr/bin:/bin and no other environment. */
  run(command: string): Promise<{ code: number | null; out: string }> {
    return runCommand("nsenter", [
      "-t",
      String(this.holder.pid),
      "--net",
      "--mount",
      "--",
      "env",
      "-i",
      "PATH=/usr/bin:/bin",
      "bash",
      "-c",
      command,
    ]);
  }

  stop(): void {
    this.holder?.stdin?.end();
  }
}

/** A bundle's folder made into a release that cannot open its store (its SQLite addon left out), sums redone. */
function brokenRelease(from: string, parent: string): string {
  const dir = join(parent, `vitalgate-${BROKEN}-linux-x64`);
  rmSync(dir, { recursive: true, force: true });
  cpSync(from, dir, { recursive: true });
  const edit = (f: string, a: RegExp, b: string) =>
    writeFileSync(join(dir, f), readFileSync(join(dir, f), "utf8").replace(a, b));
  edit("RELEASE", /^version=.*$/m, `version=${BROKEN}`);
  edit("package.json", /"version": "[^"]*"/, `"version": "${BROKEN}"`);
  rmSync(join(dir, "node_modules/better-sqlite3/prebuilds/linux-x64.node"));
  const files = readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => f !== "SHA256SUMS" && statSync(join(dir, f)).isFile())
    .sort();
  const sums = files.map(
    (f) =>
      `${createHash("sha256")
        .update(readFileSync(join(dir, f)))
        .digest("hex")}  ${f}\n`,
  );
  writeFileSync(join(dir, "SHA256SUMS"), sums.join(""));
  return dir;
}

describe.skipIf(!hasBoxTools)("the installer of a release bundle, on a box without network or Node", () => {
  let scratch: string;
  let root: string;
  let box: Box;
  const bundles: Record<string, string> = {};
  const opt = () => join(root, "opt/vitalgate");
  const current = () => readlinkSync(join(opt(), "current"));
  const pid = () => Number(readFileSync(join(root, "run/vitalgate.pid"), "utf8"));
  const install = (bundle: string, args = "") =>
    box.run(`${bundle}/install.sh --root ${root} --health-timeout ${HEALTH_TIMEOUT_S} ${args}`);
  const cli = (args: string) =>
    box.run(`${root}/opt/vitalgate/current/bin/vitalgate ${args} --config ${root}/etc/vitalgate/vitalgate.yaml`);
  /** Unsent events by priority, from the outbox file (`vitalgate queue stats`). */
  const pending = async () => {
    const r = await cli("queue stats");
    expect(r.code, r.out).toBe(0);
    return (JSON.parse(r.out.slice(r.out.indexOf("{"))) as { pending: number[] }).pending;
  };
  const sendVitals = async (count: number) => {
    const r = await box.run(
      `${root}/opt/vitalgate/current/bin/vitalgate simulate hl7-pcd01 --host 192.168.50.1 --port 2575 --count ${count} --interval-ms 50`,
    );
    expect(r.out).toContain(`${count} message(s) acknowledged AA`);
  };

  beforeAll(async () => {
    const [base, next] = [await buildBundles(["x64"]), await buildBundles(["x64"], NEXT)];
    bundles.base = await extractBundle(base.x64!, EXTRACTED);
    bundles.next = await extractBundle(next.x64!, EXTRACTED);
    scratch = mkdtempSync(join(tmpdir(), "vg-install-"));
    bundles.broken = brokenRelease(bundles.next, scratch);
    root = join(scratch, "root");
    mkdirSync(root);
    box = new Box(scratch);
    await box.start();
  }, 900_000);

  afterAll(async () => {
    try {
      if (root && existsSync(join(root, "run/vitalgate.pid"))) process.kill(pid(), "SIGKILL");
    } catch {
      // already gone
    }
    box?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true }); // three releases and their backups
  }, 120_000);

  it("the box has no Node and no network", async () => {
    expect((await box.run("node --version")).code).not.toBe(0);
    expect((await box.run("getent hosts registry.npmjs.org")).code).not.toBe(0);
  });

  it(
    "a first install by --role writes the role's example, and refuses to start it unprovisioned, saying what to fix",
    { timeout: 240_000 },
    async () => {
      const r = await install(bundles.base!, "--role ambulance");
      expect(r.code, r.out).toBe(3);
      const conf = readFileSync(join(root, "etc/vitalgate/vitalgate.yaml"), "utf8");
      expect(conf).toContain("role: ambulance");
      expect(conf).toContain(`stateDir: ${root}/var/lib/vitalgate`); // the example's paths, under --root
      expect(r.out).toContain("uplink.passwordFile"); // what is wrong, where
      expect(r.out).toContain(`${root}/etc/vitalgate/uplink.password`);
      expect(r.out).toMatch(/then run this again: \S+\/install\.sh --root /);
      expect(r.out).toContain("nothing was started");
      expect(existsSync(join(opt(), "current"))).toBe(false);
      expect(existsSync(join(root, "run/vitalgate.pid"))).toBe(false);
    },
  );

  it(
    "once provisioned, a second run starts the bundle's own daemon, which answers /healthz and stores what a monitor sends",
    { timeout: 240_000 },
    async () => {
      const etc = join(root, "etc/vitalgate");
      const pki = makePki();
      mkdirSync(join(etc, "tls"), { recursive: true });
      copyFileSync(pki.ca, join(etc, "tls/center-ca.pem"));
      copyFileSync(pki.clientCert, join(etc, "tls/yq-amb-07.crt"));
      copyFileSync(pki.clientKey, join(etc, "tls/yq-amb-07.key"));
      writeFileSync(join(etc, "uplink.password"), "provisioned-by-it\n", { mode: 0o600 });
      rmSync(pki.dir, { recursive: true, force: true });

      const r = await install(bundles.base!);
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain('healthy: {"ok":true,"store":"ok"');
      expect(current()).toBe(`releases/${PACKAGE_VERSION}`);
      expect(readlinkSync(`/proc/${pid()}/exe`)).toBe(join(opt(), "releases", PACKAGE_VERSION, "node/bin/node"));
      expect(existsSync(join(root, "var/lib/vitalgate/outbox.db"))).toBe(true);
      expect(existsSync(join(root, "etc/systemd/system/vitalgate.service"))).toBe(true);
      await sendVitals(2);
      expect((await pending())[2]).toBeGreaterThanOrEqual(2); // the uplink is unreachable: they wait in the outbox
    },
  );

  it(
    "an upgrade keeps the previous release, switches current, backs up first and keeps the data",
    { timeout: 240_000 },
    async () => {
      const before = await pending();
      const r = await install(bundles.next!);
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain(`upgrading from ${PACKAGE_VERSION} to ${NEXT}`);
      expect(current()).toBe(`releases/${NEXT}`);
      expect(readdirSync(join(opt(), "releases")).sort()).toEqual([PACKAGE_VERSION, NEXT].sort());
      expect((await cli("health")).code).toBe(0);
      expect((await box.run(`${root}/opt/vitalgate/current/bin/vitalgate --version`)).out.trim()).toBe(NEXT);
      expect(readlinkSync(`/proc/${pid()}/exe`)).toBe(join(opt(), "releases", NEXT, "node/bin/node"));
      expect(await pending()).toEqual(before);
      const record = readFileSync(join(opt(), "rollback"), "utf8");
      expect(record).toContain(`to=${PACKAGE_VERSION}`);
      const backup = /^backup=(.*)$/m.exec(record)![1]!; // vitalgate backup's folder, taken with the service stopped
      for (const f of ["manifest.json", "local.db", "outbox.db", "vitalgate.yaml"])
        expect(existsSync(join(backup, f)), f).toBe(true);
    },
  );

  it(
    "an upgrade to a release that does not come up healthy is rolled back by itself",
    { timeout: 240_000 },
    async () => {
      const before = await pending();
      const r = await install(bundles.broken!);
      expect(r.code, r.out).toBe(5);
      expect(r.out).toContain(`${BROKEN} did not come up healthy: rolling back to ${NEXT}`);
      expect(r.out).toContain("better_sqlite3.node"); // why, from its log
      expect(current()).toBe(`releases/${NEXT}`);
      expect(readlinkSync(`/proc/${pid()}/exe`)).toBe(join(opt(), "releases", NEXT, "node/bin/node"));
      expect((await cli("health")).code).toBe(0);
      expect(await pending()).toEqual(before);
      // The upgrade before it can still be rolled back.
      expect(readFileSync(join(opt(), "rollback"), "utf8")).toContain(`to=${PACKAGE_VERSION}`);
    },
  );

  it(
    "rollback goes back to the previous release and restores the pre-upgrade backup, keeping the newer state aside",
    { timeout: 240_000 },
    async () => {
      const atUpgrade = readFileSync(join(opt(), "rollback"), "utf8");
      const backup = /^backup=(.*)$/m.exec(atUpgrade)![1]!;
      await sendVitals(1); // after the upgrade: in the newer state only
      const newer = await pending();
      const r = await box.run(
        `${root}/opt/vitalgate/current/install.sh rollback --root ${root} --health-timeout ${HEALTH_TIMEOUT_S}`,
      );
      expect(r.code, r.out).toBe(0);
      expect(current()).toBe(`releases/${PACKAGE_VERSION}`);
      expect((await box.run(`${root}/opt/vitalgate/current/bin/vitalgate --version`)).out.trim()).toBe(PACKAGE_VERSION);
      expect((await cli("health")).code).toBe(0);
      expect((await pending())[2]).toBeLessThan(newer[2]!); // the pre-upgrade outbox
      expect(r.out).toContain(`restored ${root}/etc/vitalgate/vitalgate.yaml from ${backup}`);
      // What the restore replaced is kept: the newer configuration beside the backups, the newer state in the state dir.
      const aside = readdirSync(join(root, "var/backups/vitalgate")).filter((d) =>
        d.startsWith(`rolled-back-from-${NEXT}-`),
      );
      expect(aside).toHaveLength(1);
      expect(existsSync(join(root, "var/backups/vitalgate", aside[0]!, "vitalgate.yaml"))).toBe(true);
      const replaced = readdirSync(join(root, "var/lib/vitalgate"))
        .filter((d) => d.startsWith("replaced-"))
        .sort();
      expect(existsSync(join(root, "var/lib/vitalgate", replaced.at(-1)!, "outbox.db"))).toBe(true);
      expect(existsSync(join(opt(), "rollback"))).toBe(false);
      const again = await box.run(`${root}/opt/vitalgate/current/install.sh rollback --root ${root}`);
      expect(again.code).toBe(1);
      expect(again.out).toContain("nothing to roll back to");
    },
  );
});
