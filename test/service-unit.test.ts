// The systemd unit as shipped (systemd/vitalgate.service): hardened to an exposure of at most 2.0 in
// `systemd-analyze security` while keeping what the gateway needs; and the real daemon speaking
// sd_notify(3) to a socket standing in for systemd's: READY=1, WATCHDOG=1 only while its event loop
// is healthy, STOPPING=1 on SIGTERM.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "./support/mqtt.ts";
import { notifySocket, type NotifyMessage } from "./support/notify-socket.ts";
import { ROOT, freePort, startDaemon } from "./support/processes.ts";

const UNIT = join(ROOT, "systemd/vitalgate.service");

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** The unit's [Service] settings: every value of each key, in order (DeviceAllow= and friends repeat). */
function serviceSettings(text: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) section = header[1]!;
    else if (section === "Service") {
      const eq = line.indexOf("=");
      const key = line.slice(0, eq);
      settings.set(key, [...(settings.get(key) ?? []), line.slice(eq + 1)]);
    }
  }
  return settings;
}

const hasAnalyze = spawnSync("systemd-analyze", ["--version"]).error === undefined;
const hasNotify = spawnSync("systemd-notify", ["--version"]).error === undefined;
const hasPython = spawnSync("python3", ["--version"]).error === undefined;

describe("the systemd unit", () => {
  const unit = serviceSettings(readFileSync(UNIT, "utf8"));
  const all = (key: string) => unit.get(key) ?? [];
  const last = (key: string) => all(key).at(-1);

  it.skipIf(!hasAnalyze)("is exposed at most 2.0 in systemd-analyze security (offline)", () => {
    const r = spawnSync("systemd-analyze", ["security", "--offline=true", "--no-pager", UNIT], { encoding: "utf8" });
    const m = /Overall exposure level for vitalgate\.service: (\d+\.\d)/.exec(r.stdout);
    expect(m, r.stdout + r.stderr).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(2.0);
  });

  it.skipIf(!hasAnalyze)("has no setting systemd does not know (systemd-analyze verify says nothing)", () => {
    // The program is not installed here: verify the unit with another one in its place.
    const dir = mkdtempSync(join(tmpdir(), "vg-unit-"));
    const copy = join(dir, "vitalgate.service");
    writeFileSync(copy, readFileSync(UNIT, "utf8").replace(/^ExecStart=.*$/m, "ExecStart=/bin/true"));
    const r = spawnSync("systemd-analyze", ["verify", copy], { encoding: "utf8" });
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("keeps serial ports, the network, its state and the time service's sources", () => {
    expect(all("SupplementaryGroups")).toContain("dialout");
    expect(last("DevicePolicy")).toBe("closed");
    for (const serial of ["char-ttyS rw", "char-ttyUSB rw", "char-ttyACM rw"])
      expect(all("DeviceAllow")).toContain(serial);
    expect(all("DeviceAllow")).toContain("char-pps r");
    expect(last("PrivateDevices") ?? "no").toBe("no");
    expect(all("ReadWritePaths")).toContain("/var/lib/vitalgate");
    // The state, and backup.dir's default.
    expect(last("StateDirectory")?.split(" ")).toEqual(["vitalgate", "vitalgate-backup"]);
    expect(last("PrivateNetwork") ?? "no").toBe("no");
    const families = (last("RestrictAddressFamilies") ?? "").split(/\s+/);
    // Devices and the uplink over IP; timedatectl's D-Bus over a Unix socket; the page's own addresses over netlink.
    for (const f of ["AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"]) expect(families).toContain(f);
    // /proc/sys/kernel/random/boot_id and /proc/uptime are read by the time service (src/time/boot.ts).
    expect(last("ProcSubset") ?? "all").toBe("all");
    expect(all("IPAddressDeny")).toEqual([]);
  });

  it("is Type=notify with a watchdog, and memory and task limits", () => {
    expect(last("Type")).toBe("notify");
    expect(last("NotifyAccess")).toBe("all"); // systemd-notify is a child of the daemon
    expect(Number(last("WatchdogSec"))).toBeGreaterThan(0);
    expect(last("MemoryHigh")).toMatch(/^\d+M$/);
    expect(last("MemoryMax")).toMatch(/^\d+M$/);
    expect(parseInt(last("MemoryMax")!)).toBeGreaterThan(parseInt(last("MemoryHigh")!));
    expect(Number(last("TasksMax"))).toBeGreaterThan(0);
  });
});

/** The messages carrying `field`, e.g. "WATCHDOG=1". */
const having = (messages: NotifyMessage[], field: string) => messages.filter((m) => m.fields.includes(field));

describe.skipIf(!hasNotify || !hasPython)("the daemon under a service manager (sd_notify via systemd-notify)", () => {
  it(
    "says READY=1 once started, pings the watchdog while its loop is healthy, not while it is blocked, and STOPPING=1 on SIGTERM",
    {
      timeout: 60_000,
    },
    async () => {
      const socket = await notifySocket();
      cleanup.push(() => socket.close());
      const dir = mkdtempSync(join(tmpdir(), "vg-notify-"));
      const webPort = await freePort();
      const configPath = join(dir, "vitalgate.yaml");
      writeFileSync(
        configPath,
        `gateway: { id: notify, role: clinic }
stateDir: ${dir}/state
embeddedBroker: { host: 127.0.0.1, port: ${await freePort()} }
web: { host: 127.0.0.1, port: ${webPort} }
log: { level: info, pretty: false }
`,
      );
      const daemon = await startDaemon(configPath, webPort, {
        NOTIFY_SOCKET: socket.path,
        // A 2 s watchdog: a ping every 500 ms, none after a delay over 1 s.
        WATCHDOG_USEC: "2000000",
        // Test-only: SIGUSR2 blocks the daemon's event loop (test/support/block-loop.ts).
        NODE_OPTIONS: `--import ${join(ROOT, "test/support/block-loop.ts")}`,
        VG_TEST_BLOCK_MS: "3000",
      });
      cleanup.push(() => daemon.kill9());

      await waitFor(() => having(socket.messages, "READY=1").length === 1, 10_000, "READY=1");
      const ready = having(socket.messages, "READY=1")[0]!;
      expect(ready.fields.some((f) => f.startsWith("STATUS=running"))).toBe(true);
      // Not before the store was open and the listeners up: the gateway's last start line (the page
      // listening, devices started, the uplink or broker up) came first.
      const started = /\{[^\n]*"msg":"vitalgate started"\}/.exec(daemon.output());
      expect(started, daemon.output()).not.toBeNull();
      expect(ready.atMs).toBeGreaterThanOrEqual(Date.parse((JSON.parse(started![0]) as { time: string }).time));
      await waitFor(
        () => having(socket.messages, "WATCHDOG=1").filter((m) => m.atMs > ready.atMs).length >= 3,
        10_000,
        "three watchdog pings after READY=1",
      );

      const blockedAt = Date.now();
      daemon.child.kill("SIGUSR2");
      await waitFor(
        () => having(socket.messages, "WATCHDOG=1").some((m) => m.atMs > blockedAt + 3000),
        15_000,
        "a watchdog ping after the block",
      );
      const pings = having(socket.messages, "WATCHDOG=1").map((m) => m.atMs);
      const before = pings.filter((t) => t <= blockedAt).at(-1)!;
      const after = pings.find((t) => t > blockedAt)!;
      // Nothing while the loop was blocked (3 s), nor at the first tick after it (its delay was over the bound):
      // longer than the whole watchdog interval, which systemd would have answered with a restart.
      expect(after - before).toBeGreaterThan(3000);
      expect(daemon.output()).toContain("VG_EVENT_LOOP_STALLED");

      expect(await daemon.stop()).toBe(0);
      const stopping = having(socket.messages, "STOPPING=1");
      expect(stopping).toHaveLength(1);
      expect(having(socket.messages, "WATCHDOG=1").every((m) => m.atMs <= stopping[0]!.atMs)).toBe(true);
    },
  );
});
