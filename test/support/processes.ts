// Real processes for integration tests: the gateway daemon, a mosquitto broker, a gpsd.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { waitFor } from "./mqtt.ts";

export const ROOT = resolve(import.meta.dirname, "../..");

/**
 * Node flags the daemon runs with, as systemd/vitalgate.service and `npm start` give them (a test
 * keeps the three equal), so tests and benchmarks run it as deployed; why these, in
 * docs/decisions/0008-daemon-memory.md. BENCH_NODE_FLAGS replaces them, to try others.
 */
export const DEPLOYED_NODE_FLAGS: readonly string[] = [
  "--max-semi-space-size=2",
  "--no-opt",
  "--no-maglev",
  "--optimize-for-size",
];
export const DAEMON_NODE_FLAGS: string[] = process.env.BENCH_NODE_FLAGS?.split(" ").filter(Boolean) ?? [
  ...DEPLOYED_NODE_FLAGS,
];

/**
 * The daemon's environment beside the caller's: Node's compile cache, as the unit and `npm start`
 * keep it, so a daemon started after the first finds its TypeScript already stripped and compiled
 * instead of loading the type stripper (docs/decisions/0008-daemon-memory.md).
 */
export const DAEMON_ENV: Record<string, string> = {
  NODE_COMPILE_CACHE: join(ROOT, "node_modules/.cache/vitalgate/compile"),
};

/** `node <flags> src/cli/main.ts <args>`, as the daemon is run: its arguments for spawn. */
export function daemonArgs(args: string[]): string[] {
  return [...DAEMON_NODE_FLAGS, join(ROOT, "src/cli/main.ts"), ...args];
}

/** Fills the daemon's compile cache with every module for its flags, as install.sh does on a box (scripts/warm-cache.ts). */
export function warmDaemonCache(): void {
  const r = spawnSync(process.execPath, [...DAEMON_NODE_FLAGS, join(ROOT, "scripts/warm-cache.ts")], {
    cwd: ROOT,
    env: { ...process.env, ...DAEMON_ENV },
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`scripts/warm-cache.ts failed (${r.status}): ${r.stderr}`);
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

export async function portOpen(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((res) => {
    const s = connect({ port, host });
    s.once("connect", () => {
      s.destroy();
      res(true);
    });
    s.once("error", () => res(false));
  });
}

/** Stops a child as an operator would (SIGTERM), SIGKILL after 5 s if it will not go. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited(child);
  clearTimeout(killer);
}

/** SIGKILL, and waits for the child to be gone. */
async function killProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGKILL");
  await exited(child);
}

async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise((res) => child.once("exit", res));
}

/** Starts a server as a child process and waits (up to 10 s) until it listens on `port`; its stderr says why when it does not. */
async function spawnListening(command: string, args: string[], port: number): Promise<ChildProcess> {
  const c = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  c.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 10_000;
  while (!(await portOpen(port))) {
    if (Date.now() > deadline || c.exitCode !== null) {
      c.kill("SIGKILL");
      throw new Error(`${command} did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return c;
}

export interface Mosquitto {
  port: number;
  url: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** SIGKILL, as a crashed broker or a power cut: no goodbye, no persistence file written on the way out. */
  kill(): Promise<void>;
}

/** A mosquitto broker as its own process (MQTT 5 and 3.1.1), stoppable and restartable on its port. */
export async function mosquitto(extraConfig = ""): Promise<Mosquitto> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "vg-mosq-"));
  const conf = join(dir, "mosquitto.conf");
  // Run as root (as tests here are), mosquitto would switch to its own user and could not read the
  // test's private temporary files; "user root" keeps it as the user that started it.
  const user = process.getuid?.() === 0 ? "user root\n" : "";
  writeFileSync(
    conf,
    `${user}listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 0\nmax_queued_messages 0\n${extraConfig}\n`,
  );
  let child: ChildProcess | null = null;
  const m: Mosquitto = {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    async start() {
      child = await spawnListening("mosquitto", ["-c", conf], port);
    },
    /**
     * Stops the broker as an operator's restart does (SIGTERM: it writes its persistence file on the
     * way out). A SIGKILL could land in the middle of an autosave and lose the center's session,
     * which is the broker's loss, not the gateway's.
     */
    async stop() {
      const c = child;
      child = null;
      if (!c) return;
      await stopProcess(c);
    },
    async kill() {
      const c = child;
      child = null;
      if (c) await killProcess(c);
    },
  };
  await m.start();
  return m;
}

/**
 * Debian's gpsd, where installed: /usr/sbin is not on every user's PATH, so that path is tried too.
 * Undefined where there is none (`apt-get install gpsd`).
 */
export const gpsdPath: string | undefined = ["gpsd", "/usr/sbin/gpsd"].find((p) =>
  p.includes("/") ? existsSync(p) : spawnSync(p, ["-V"]).error === undefined,
);

export interface Gpsd {
  port: number;
  start(): Promise<void>;
  /** SIGKILL, as a crashed gpsd: its clients see the connection drop with no goodbye. */
  kill(): Promise<void>;
}

/**
 * gpsd on one receiver (`devicePath`), in the foreground as a child process, on a free port:
 * `-n` opens the receiver at once rather than at the first client; `-b` (read-only) so it never
 * probes or reconfigures it (writes into the simulator's PTY); `-F` its control socket in a temp
 * directory, not /run. Restartable on the same port.
 */
export async function gpsdDaemon(devicePath: string): Promise<Gpsd> {
  if (!gpsdPath) throw new Error("gpsd is not installed");
  const port = await freePort();
  const control = join(mkdtempSync(join(tmpdir(), "vg-gpsd-")), "gpsd.sock");
  let child: ChildProcess | null = null;
  const g: Gpsd = {
    port,
    async start() {
      child = await spawnListening(gpsdPath!, ["-N", "-n", "-b", "-S", String(port), "-F", control, devicePath], port);
    },
    async kill() {
      const c = child;
      child = null;
      if (c) await killProcess(c);
    },
  };
  await g.start();
  return g;
}

export interface Daemon {
  child: ChildProcess;
  output: () => string;
  webPort: number;
  kill9(): Promise<void>;
  stop(): Promise<number | null>;
}

/** Runs `vitalgate start --config FILE` as a child process and waits for /healthz. */
export async function startDaemon(
  configPath: string,
  webPort: number,
  env: Record<string, string> = {},
  timeoutMs = 20_000,
): Promise<Daemon> {
  const child = spawn(process.execPath, daemonArgs(["start", "--config", configPath]), {
    cwd: ROOT,
    env: { ...process.env, ...DAEMON_ENV, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  let healthy = false;
  await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`daemon exited with ${child.exitCode}:\n${out}`);
      void fetch(`http://127.0.0.1:${webPort}/healthz`).then(
        (r) => {
          healthy = r.ok;
        },
        () => undefined,
      );
      return healthy;
    },
    timeoutMs,
    "the daemon's /healthz",
  );
  return {
    child,
    output: () => out,
    webPort,
    async kill9() {
      child.kill("SIGKILL");
      await exited(child);
    },
    async stop() {
      child.kill("SIGTERM");
      await exited(child);
      return child.exitCode;
    },
  };
}
