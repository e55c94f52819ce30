// The release bundles of `npm run release` (scripts/release.ts): what is in them, and that each runs, with nothing
// from the build machine: the x64 one natively, the arm64 one under qemu-user (Debian's qemu-user-static through
// binfmt_misc, with the arm64 C library tree of libc6-arm64-cross and libstdc++6-arm64-cross in
// /usr/aarch64-linux-gnu): its Node, `config check`, the daemon answering /healthz with its SQLite store open
// (better-sqlite3's arm64 addon) and a write to a serial port (serialport's arm64 addon). Bundles are cached under
// node_modules/.cache, their extracted copies with the daemon's compile cache in /var/tmp (test/support/bundles.ts).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { BUNDLE_OUT, EXTRACTED, PACKAGE_VERSION, buildBundles, extractBundle, runCommand } from "./support/bundles.ts";
import { waitFor } from "./support/mqtt.ts";
import { DEPLOYED_NODE_FLAGS, ROOT, freePort, stopProcess } from "./support/processes.ts";
import { hasSocat, nullModem, openDeviceEnd } from "./support/pty.ts";

const ARM64_LIBS = "/usr/aarch64-linux-gnu";
const binfmt = "/proc/sys/fs/binfmt_misc/qemu-aarch64";
const canRunArm64 =
  existsSync(`${ARM64_LIBS}/lib/ld-linux-aarch64.so.1`) &&
  existsSync(binfmt) &&
  readFileSync(binfmt, "utf8").startsWith("enabled");
if (!canRunArm64)
  console.log(
    "release.test.ts: the arm64 bundle is built and inspected, not run: no qemu-aarch64 binfmt entry or no " +
      `${ARM64_LIBS} (apt-get install qemu-user-static binfmt-support libc6-arm64-cross libstdc++6-arm64-cross)`,
  );

/** Whatever the bundle runs is its own: no Node on PATH, the arm64 C library found by qemu. */
const BUNDLE_ENV = { PATH: "/usr/bin:/bin", QEMU_LD_PREFIX: ARM64_LIBS };
/** Under emulation a start takes tens of seconds on the loaded 2-core box (a second run less: compile cache). */
const START_TIMEOUT_MS = Number(process.env.VG_TEST_QEMU_START_MS ?? 240_000);

const elfMachine = (file: string) => readFileSync(file).readUInt16LE(18);

describe("npm run release", () => {
  let tarballs: Record<string, string>;
  const bundle: Record<string, string> = {};

  beforeAll(async () => {
    tarballs = await buildBundles(["x64", "arm64"]);
    for (const arch of ["x64", "arm64"]) bundle[arch] = await extractBundle(tarballs[arch]!, EXTRACTED);
  }, 900_000);

  it("writes SHA256SUMS beside the bundles, and one inside each for all its files", async () => {
    const outside = await runCommand("sha256sum", ["--strict", "-c", "SHA256SUMS"], { cwd: BUNDLE_OUT });
    expect(outside.code, outside.out).toBe(0);
    for (const arch of ["x64", "arm64"]) {
      expect(outside.out).toContain(`vitalgate-${PACKAGE_VERSION}-linux-${arch}.tar.gz: OK`);
      const inside = await runCommand("sha256sum", ["--strict", "--quiet", "-c", "SHA256SUMS"], { cwd: bundle[arch] });
      expect(inside.code, inside.out).toBe(0);
      const listed = readFileSync(join(bundle[arch]!, "SHA256SUMS"), "utf8");
      for (const f of [
        "node/bin/node",
        "bin/vitalgate",
        "install.sh",
        "src/cli/main.ts",
        "RELEASE",
        "config/ambulance.yaml",
      ])
        expect(listed).toContain(`  ${f}\n`);
    }
  });

  for (const [arch, machine] of [
    ["x64", 62],
    ["arm64", 183],
  ] as const) {
    it(`the ${arch} bundle holds Node ${readFileSync(join(ROOT, ".node-version"), "utf8").trim()} and the addons for ${arch} only, no dev dependency`, () => {
      const dir = bundle[arch]!;
      expect(readFileSync(join(dir, "RELEASE"), "utf8")).toContain(`version=${PACKAGE_VERSION}\narch=${arch}\n`);
      expect(elfMachine(join(dir, "node/bin/node"))).toBe(machine);
      const addons = readdirSync(join(dir, "node_modules"), { recursive: true, encoding: "utf8" }).filter((f) =>
        f.endsWith(".node"),
      );
      expect(addons.sort()).toEqual(
        [
          `@serialport/bindings-cpp/prebuilds/linux-${arch}/@serialport+bindings-cpp.${arch === "arm64" ? "armv8." : ""}glibc.node`,
          `better-sqlite3/prebuilds/linux-${arch}.node`,
        ].sort(),
      );
      for (const a of addons) expect(elfMachine(join(dir, "node_modules", a)), a).toBe(machine);
      for (const dev of ["vitest", "typescript", "eslint", "playwright-core", "prettier", ".bin"])
        expect(existsSync(join(dir, "node_modules", dev)), dev).toBe(false);
      expect(existsSync(join(dir, "test"))).toBe(false);
    });
  }

  it("runs the gateway with the daemon's Node flags and compile cache (bin/vitalgate)", () => {
    const launcher = readFileSync(join(bundle.x64!, "bin/vitalgate"), "utf8");
    expect(launcher).toContain(
      `"$release/node/bin/node" ${DEPLOYED_NODE_FLAGS.join(" ")} "$release/src/cli/main.ts" "$@"`,
    );
    expect(launcher).toContain("NODE_COMPILE_CACHE=/var/cache/vitalgate/compile");
  });

  for (const arch of ["x64", "arm64"] as const) {
    describe.skipIf(arch === "arm64" && !canRunArm64)(
      `the ${arch} bundle${arch === "arm64" ? " under qemu-user" : ""}`,
      () => {
        const cli = (args: string[], extra: Record<string, string> = {}) =>
          runCommand(join(bundle[arch]!, "bin/vitalgate"), args, {
            env: { ...BUNDLE_ENV, NODE_COMPILE_CACHE: join(bundle[arch]!, "..", "compile-cache"), ...extra },
            timeoutMs: START_TIMEOUT_MS,
          });

        it("runs its own Node", { timeout: START_TIMEOUT_MS }, async () => {
          const r = await runCommand(
            join(bundle[arch]!, "node/bin/node"),
            ["-p", "process.arch + ' ' + process.version"],
            {
              env: BUNDLE_ENV,
            },
          );
          expect(r.out.trim()).toBe(`${arch} v${readFileSync(join(ROOT, ".node-version"), "utf8").trim()}`);
          expect((await cli(["--version"])).out.trim()).toBe(PACKAGE_VERSION);
        });

        it("passes config check on an example", { timeout: START_TIMEOUT_MS }, async () => {
          const r = await cli(["config", "check", join(bundle[arch]!, "config/demo.yaml")]);
          expect(r.code, r.out).toBe(0);
          expect(r.out).toContain("valid");
        });

        it.skipIf(!hasSocat)(
          "writes to a serial port (a socat PTY) through serialport's addon",
          { timeout: START_TIMEOUT_MS },
          async () => {
            const cable = nullModem();
            await cable.plugIn();
            const device = await openDeviceEnd(cable.devicePath);
            try {
              const script =
                `const { SerialPort } = await import("serialport");` +
                `const p = new SerialPort({ path: ${JSON.stringify(cable.gatewayPath)}, baudRate: 9600 });` +
                `p.write("from " + process.arch + "\\n", () => p.drain(() => p.close()));`;
              const r = await runCommand(join(bundle[arch]!, "node/bin/node"), ["--input-type=module", "-e", script], {
                cwd: bundle[arch],
                env: BUNDLE_ENV,
                timeoutMs: START_TIMEOUT_MS,
              });
              expect(r.code, r.out).toBe(0);
              await waitFor(() => device.replies.includes(`from ${arch}`), 10_000, "the line on the device's end");
            } finally {
              await device.close();
              await cable.unplug();
            }
          },
        );

        it(
          "starts the daemon, which opens its SQLite store and answers /healthz",
          { timeout: START_TIMEOUT_MS + 60_000 },
          async () => {
            const dir = mkdtempSync(join(tmpdir(), `vg-bundle-${arch}-`));
            const [webPort, brokerPort] = [await freePort(), await freePort()];
            writeFileSync(
              join(dir, "vitalgate.yaml"),
              `gateway: { id: bundle-${arch} }\nstateDir: ${dir}/state\n` +
                `embeddedBroker: { host: 127.0.0.1, port: ${brokerPort} }\nweb: { host: 127.0.0.1, port: ${webPort} }\n`,
            );
            const daemon = spawn(
              join(bundle[arch]!, "bin/vitalgate"),
              ["start", "--config", join(dir, "vitalgate.yaml")],
              {
                env: { ...BUNDLE_ENV, NODE_COMPILE_CACHE: join(bundle[arch]!, "..", "compile-cache") },
                stdio: ["ignore", "pipe", "pipe"],
              },
            );
            let log = "";
            daemon.stdout.on("data", (d: Buffer) => (log += d.toString()));
            daemon.stderr.on("data", (d: Buffer) => (log += d.toString()));
            try {
              // Started (its store open, its listeners up), or gone.
              await new Promise<void>((resolve) => {
                const check = () => (log.includes("vitalgate started") ? resolve() : undefined);
                daemon.stdout.on("data", check);
                daemon.once("exit", () => resolve());
                check();
              });
              const health = await cli(["health", "--config", join(dir, "vitalgate.yaml")]);
              expect(health.code, `${health.out}\n${log}`).toBe(0);
              expect(JSON.parse(health.out)).toMatchObject({ ok: true, store: "ok" });
              expect(existsSync(join(dir, "state/outbox.db"))).toBe(true);
              expect(existsSync(join(dir, "state/local.db"))).toBe(true);
              expect(log).not.toContain("VG_STORE_CORRUPT");
            } finally {
              await stopProcess(daemon);
              rmSync(dir, { recursive: true, force: true });
            }
          },
        );
      },
    );
  }
});
