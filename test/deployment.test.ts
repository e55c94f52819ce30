// How the daemon is run: the same Node flags and compile cache in the systemd unit, `npm start` and
// the tests' daemons, and the compile cache doing what docs/decisions/0008-daemon-memory.md counts on.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DAEMON_ENV, DEPLOYED_NODE_FLAGS, ROOT, daemonArgs, freePort, portOpen } from "./support/processes.ts";

const unit = readFileSync(join(ROOT, "systemd/vitalgate.service"), "utf8");
const start = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> })
  .scripts.start!;

describe("the daemon's command line", () => {
  it("has the same Node flags in the unit, npm start and the tests", () => {
    const unitFlags = /^ExecStart=\S+\/node (.*) \/opt\/vitalgate\/current\/src\/cli\/main\.ts start /m
      .exec(unit)?.[1]
      ?.split(" ");
    const startFlags = /(?:^|\s)node (.*) src\/cli\/main\.ts start$/.exec(start)?.[1]?.split(" ");
    expect(unitFlags).toEqual(DEPLOYED_NODE_FLAGS);
    expect(startFlags).toEqual(DEPLOYED_NODE_FLAGS);
  });

  it("keeps Node's compile cache in the unit, npm start and the tests", () => {
    expect(unit).toMatch(/^CacheDirectory=vitalgate$/m);
    expect(unit).toMatch(/^Environment=NODE_COMPILE_CACHE=\/var\/cache\/vitalgate\/\S+$/m);
    expect(start).toMatch(/^NODE_COMPILE_CACHE=\S+ exec node /);
    expect(DAEMON_ENV.NODE_COMPILE_CACHE).toBeTruthy();
  });

  it("loads the type stripper only where the compile cache lacks a module; scripts/warm-cache.ts fills it with all", () => {
    const dir = mkdtempSync(join(tmpdir(), "vg-compile-cache-"));
    const env = { ...process.env, NODE_COMPILE_CACHE: join(dir, "compile") };
    // Names the TypeScript stripper's modules Node loaded, on stderr, as the process exits.
    const probe = `data:text/javascript,process.on("exit",()=>process.stderr.write("loaded:"+process.moduleLoadList.filter((m)=>m.includes("amaro")).join(",")+"\\n"))`;
    const node = (args: string[]) => {
      const r = spawnSync(process.execPath, ["--import", probe, ...DEPLOYED_NODE_FLAGS, ...args], {
        cwd: ROOT,
        env,
        encoding: "utf8",
      });
      expect(r.status, r.stderr).toBe(0);
      return /^loaded:(.*)$/m.exec(r.stderr)![1];
    };
    const check = [join(ROOT, "src/cli/main.ts"), "config", "check", join(ROOT, "config/demo.yaml")];
    // The embedded broker's module, which the daemon imports only when no uplink is configured.
    const broker = ["--input-type=module", "-e", `await import(${JSON.stringify(join(ROOT, "src/uplink/broker.ts"))})`];
    try {
      expect(node(check)).toContain("amaro");
      expect(node(broker)).toContain("amaro"); // config check filled the cache, but not with this one
      rmSync(dir, { recursive: true, force: true });
      node([join(ROOT, "scripts/warm-cache.ts")]);
      expect(node(check)).toBe("");
      expect(node(broker)).toBe("");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a daemon that cannot start", () => {
  // Debian's mosquitto package starts a broker on 1883; a second daemon may hold the web port. The
  // daemon must say why and exit non-zero within seconds (systemd restarts it), not hang holding ports.
  for (const taken of ["embeddedBroker", "web"] as const) {
    // The bound is generous (a loaded CI box starts Node slowly); the fault it guards against is a daemon that never exits.
    it(
      `exits 1 within seconds, its listeners closed, when the ${taken} port is taken`,
      { timeout: 90_000 },
      async () => {
        const blocker = createServer();
        await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
        const busy = (blocker.address() as AddressInfo).port;
        const [brokerPort, webPort, hl7Port] = [
          taken === "embeddedBroker" ? busy : await freePort(),
          taken === "web" ? busy : await freePort(),
          await freePort(),
        ];
        const dir = mkdtempSync(join(tmpdir(), "vg-nostart-"));
        const configPath = join(dir, "vitalgate.yaml");
        writeFileSync(
          configPath,
          `gateway: { id: nostart }
stateDir: ${dir}/state
embeddedBroker: { host: 127.0.0.1, port: ${brokerPort} }
web: { host: 127.0.0.1, port: ${webPort} }
devices:
  - { id: monitor, driver: hl7-pcd01, options: { mode: listen, host: 127.0.0.1, port: ${hl7Port} } }
`,
        );
        const started = performance.now();
        const child = spawn(process.execPath, daemonArgs(["start", "--config", configPath]), {
          cwd: ROOT,
          env: { ...process.env, ...DAEMON_ENV },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        child.stderr.on("data", (d: Buffer) => (out += d.toString()));
        const code = await new Promise<number | null>((resolve) => {
          const timer = setTimeout(() => {
            child.kill("SIGKILL");
            resolve(null);
          }, 60_000);
          child.once("exit", (c) => {
            clearTimeout(timer);
            resolve(c);
          });
        });
        try {
          expect(code, out).toBe(1);
          expect(performance.now() - started).toBeLessThan(60_000);
          expect(out).toContain("vitalgate could not start");
          expect(out).toContain("EADDRINUSE");
          for (const port of [brokerPort, webPort, hl7Port].filter((p) => p !== busy))
            expect(await portOpen(port)).toBe(false);
        } finally {
          blocker.close();
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );
  }
});

describe("npm start", () => {
  // npm runs the script under `sh -c`; without exec, npm's signal reaches the shell, not the gateway,
  // which then runs on, orphaned, on its ports.
  it("stops the gateway when npm is stopped (the script execs node)", { timeout: 90_000 }, async () => {
    const [brokerPort, webPort] = [await freePort(), await freePort()];
    const dir = mkdtempSync(join(tmpdir(), "vg-npmstart-"));
    const configPath = join(dir, "vitalgate.yaml");
    writeFileSync(
      configPath,
      `gateway: { id: npmstart }\nstateDir: ${dir}/state\nembeddedBroker: { host: 127.0.0.1, port: ${brokerPort} }\nweb: { host: 127.0.0.1, port: ${webPort} }\n`,
    );
    const npm = spawn("npm", ["start", "--silent"], {
      cwd: ROOT,
      env: { ...process.env, VITALGATE_CONFIG: configPath },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    npm.stdout.on("data", (d: Buffer) => (out += d.toString()));
    npm.stderr.on("data", (d: Buffer) => (out += d.toString()));
    try {
      const deadline = performance.now() + 60_000;
      while (!(await portOpen(webPort))) {
        if (npm.exitCode !== null || performance.now() > deadline)
          throw new Error(`the gateway did not come up under npm start:\n${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      npm.kill("SIGTERM");
      await new Promise((r) => npm.once("exit", r));
      const closedBy = performance.now() + 10_000;
      while ((await portOpen(webPort)) && performance.now() < closedBy) await new Promise((r) => setTimeout(r, 100));
      expect(await portOpen(webPort), out).toBe(false);
      expect(await portOpen(brokerPort)).toBe(false);
    } finally {
      npm.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
