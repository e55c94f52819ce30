// bench fullset: the daemon (`vitalgate start`, a child process) with one of each device an
// ambulance carries, each played by its simulator (`vitalgate simulate <driver>`, child processes)
// at its real rate, the uplink to a local broker; after a warm-up, the daemon's CPU over a window
// (utime + stime from /proc/<pid>/stat) and its memory at the end (/proc/<pid>/status). All traffic
// stays on loopback and socat's PTYs; every child is stopped afterwards, whatever happens.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openBroker } from "../test/support/broker.ts";
import { part10File } from "../src/transports/dicom-scp.ts";
import { EXPLICIT_LE, syntheticEcg } from "../test/support/dicom.ts";
import {
  DAEMON_ENV,
  daemonArgs,
  freePort,
  mosquitto,
  portOpen,
  ROOT,
  stopProcess,
  warmDaemonCache,
} from "../test/support/processes.ts";

export interface FullsetResult {
  windowS: number;
  cpuPct: number;
  memory: DaemonMemory;
  /** Events committed during the window, per device. */
  events: Record<string, number>;
  states: Record<string, string>;
  queuePending: number[];
  feeds: string[];
  broker: string;
  missing: string[];
}

interface DeviceRow {
  id: string;
  state: string;
  events: number;
}

interface Status {
  devices: DeviceRow[];
  queue: { pending: number[] };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitUntil(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** utime + stime of a process, in seconds. */
export function cpuSeconds(pid: number, ticksPerS: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // after "pid (comm) ": state is field 3, utime 14, stime 15 (proc(5)) → indices 11 and 12 here
  return (Number(fields[11]) + Number(fields[12])) / ticksPerS;
}

/** The daemon's resident memory from /proc/PID/status, in MB: all of it, and its two parts. */
export interface DaemonMemory {
  /** VmRSS: what the issue's limit is on. */
  vmRss: number;
  /** RssAnon: the process's own memory (V8's heap, malloc, SQLite's page cache, stacks). */
  rssAnon: number;
  /** RssFile: pages of mapped files it touched, nearly all the node binary's; shared and reclaimable. */
  rssFile: number;
}

export function daemonMemory(pid: number): DaemonMemory {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]) / 1024;
  return { vmRss: kb("VmRSS"), rssAnon: kb("RssAnon"), rssFile: kb("RssFile") };
}

/** The ECG the cart exports during the window: the shared real cart's DICOM when there, else a synthetic one. */
function ecgFile(): { bytes: Uint8Array; what: string } {
  const shared = join(ROOT, "../shared/fixtures/dicom-ecg/pydicom_waveform_ecg.dcm");
  if (existsSync(shared)) return { bytes: readFileSync(shared), what: "pydicom_waveform_ecg.dcm" };
  const e = syntheticEcg({ seconds: 10 });
  return {
    bytes: part10File(e.dataset, {
      sopClassUid: e.sopClassUid,
      sopInstanceUid: e.sopInstanceUid,
      transferSyntaxUid: EXPLICIT_LE,
    }),
    what: "a synthetic 10 s DICOM ECG",
  };
}

export async function fullset(o: { warmupS: number; windowS: number }): Promise<FullsetResult> {
  const dir = mkdtempSync(join(tmpdir(), "vg-bench-fullset-"));
  const drop = join(dir, "cart");
  mkdirSync(drop);
  mkdirSync(join(dir, "state"));
  const children: ChildProcess[] = [];
  const stderrOf = new Map<ChildProcess, string>();
  const cli = (args: string[]) => {
    // The daemon runs as deployed: its flags (DAEMON_NODE_FLAGS; BENCH_NODE_FLAGS replaces them) and compile cache.
    const daemon = args[0] === "start";
    const child = spawn(process.execPath, daemon ? daemonArgs(args) : [join(ROOT, "src/cli/main.ts"), ...args], {
      cwd: ROOT,
      env: daemon ? { ...process.env, ...DAEMON_ENV } : process.env,
      stdio: ["ignore", "ignore", "pipe"],
    });
    stderrOf.set(child, "");
    child.stderr!.on("data", (d: Buffer) => stderrOf.set(child, (stderrOf.get(child)! + d.toString()).slice(-4000)));
    children.push(child);
    return child;
  };
  const cleanups: (() => Promise<void>)[] = [];
  const feeds: string[] = [];
  // The ventilator joins the set once its driver is committed (the bench runs the working tree, but
  // a driver half-written by someone else is not what an ambulance runs); listed when left out.
  const committed = (d: string) =>
    spawnSync("git", ["-C", ROOT, "ls-files", "--error-unmatch", `${d}/index.ts`], { stdio: "ignore" }).status === 0;
  const withVent = committed("drivers/medibus-vent");
  const missing = withVent ? [] : ["drivers/medibus-vent"];
  try {
    // The uplink: a local mosquitto, else the embedded broker in this process (not the daemon's).
    let brokerUrl: string;
    let broker: string;
    if (spawnSync("mosquitto", ["-h"]).error === undefined) {
      const m = await mosquitto();
      cleanups.push(() => m.stop());
      brokerUrl = m.url;
      broker = "local mosquitto";
    } else {
      const b = await openBroker("127.0.0.1", 0);
      cleanups.push(() => b.close());
      brokerUrl = b.url;
      broker = "aedes in the bench process";
    }

    const [hl7Port, s5Port, astmPort, webPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    // Serial devices (the GPS, the ventilator): on a null-modem cable of two PTYs (socat), as over a
    // USB adapter; without socat, the simulator's serial-server mode on TCP.
    const hasSocat = spawnSync("socat", ["-V"]).error === undefined;
    const serialLine = async (
      name: string,
      simulate: string[],
      baud: number,
    ): Promise<{ options: string; how: string }> => {
      if (!hasSocat) {
        const port = await freePort();
        cli([...simulate, "--tcp-port", String(port)]);
        return {
          options: `{ transport: tcp, host: 127.0.0.1, tcpPort: ${port} }`,
          how: "as a TCP serial server (no socat)",
        };
      }
      const gatewayPath = join(dir, `${name}-gateway-tty`);
      const devicePath = join(dir, `${name}-device-tty`);
      const socat = spawn("socat", [`pty,raw,echo=0,link=${gatewayPath}`, `pty,raw,echo=0,link=${devicePath}`], {
        stdio: "ignore",
      });
      cleanups.push(() => stopProcess(socat));
      await waitUntil(() => existsSync(gatewayPath) && existsSync(devicePath), 5000, "socat's PTYs");
      cli([...simulate, "--port", devicePath, "--baud", String(baud)]);
      return {
        options: `{ transport: serial, port: "${gatewayPath}", baudRate: ${baud} }`,
        how: `on a socat PTY pair, the daemon on the other end as a serial port at ${baud}`,
      };
    };
    const gps = await serialLine("gps", ["simulate", "nmea-gps"], 9600);
    feeds.push(`GPS: simulate nmea-gps (synthetic drive, 1 Hz) ${gps.how}`);
    const vent = withVent ? await serialLine("vent", ["simulate", "medibus-vent"], 19200) : undefined;
    if (vent)
      feeds.push(
        `ventilator: simulate medibus-vent (synthetic, answers the daemon's polls: ICC, measured data and alarms every 5 s, settings every 60 s, NOP keep-alive) ${vent.how}`,
      );
    cli(["simulate", "datex-s5", "--tcp-port", String(s5Port)]);
    feeds.push(
      "S/5: simulate datex-s5 (synthetic records) as a TCP serial server; the daemon asks for displayed values every 10 s and the ECG1 waveform (300 samples/s, one record a second)",
    );
    cli(["simulate", "astm-analyzer", "--tcp-port", String(astmPort), "--interval-ms", "60000"]);
    feeds.push(
      "blood gas: simulate astm-analyzer (synthetic blood gas, E1381 over a TCP serial server), one result on connecting and one every 60 s",
    );
    await waitUntil(
      async () => (await portOpen(s5Port)) && (await portOpen(astmPort)),
      20_000,
      "the simulators' TCP ports",
    );

    const conf = join(dir, "vitalgate.yaml");
    writeFileSync(
      conf,
      `gateway: { id: bench, role: ambulance }
stateDir: ${dir}/state
uplink: { url: "${brokerUrl}", protocolVersion: 5, backoff: { initialMs: 100, maxMs: 1000 } }
web: { host: 127.0.0.1, port: ${webPort} }
log: { level: warn, pretty: false }
watchedFolders: { roots: ["${drop}"] }
devices:
  - { id: monitor, driver: hl7-pcd01, options: { mode: listen, host: 127.0.0.1, port: ${hl7Port} } }
  - { id: gps, driver: nmea-gps, options: ${gps.options} }
  - { id: s5, driver: datex-s5, options: { transport: tcp, host: 127.0.0.1, tcpPort: ${s5Port}, intervalS: 10, waveforms: [ECG1] } }
  - { id: bloodgas, driver: astm-analyzer, options: { transport: tcp, host: 127.0.0.1, tcpPort: ${astmPort} } }
  - { id: cart, driver: ecg-cart, options: { dir: "${drop}" } }
${vent ? `  - { id: vent, driver: medibus-vent, options: ${vent.options} }\n` : ""}`,
    );
    warmDaemonCache(); // as install.sh leaves a box
    const daemon = cli(["start", "--config", conf]);
    const status = async (): Promise<Status> =>
      (await (await fetch(`http://127.0.0.1:${webPort}/status`)).json()) as Status;
    await waitUntil(
      async () => {
        if (daemon.exitCode !== null) throw new Error(`daemon exited with ${daemon.exitCode}: ${stderrOf.get(daemon)}`);
        return portOpen(webPort);
      },
      20_000,
      "the daemon's web port",
    );
    cli(["simulate", "hl7-pcd01", "--port", String(hl7Port), "--interval-ms", "1000"]);
    feeds.unshift("HL7 monitor: simulate hl7-pcd01 (synthetic PCD-01) over MLLP/TCP to the daemon, 1 message/s");
    // Every device streaming before the warm-up counts down.
    await waitUntil(
      async () => {
        for (const c of children)
          if (c.exitCode !== null) throw new Error(`a child exited with ${c.exitCode}: ${stderrOf.get(c)}`);
        const s = await status();
        return ["monitor", "gps", "s5", "bloodgas", ...(vent ? ["vent"] : [])].every(
          (id) => (s.devices.find((d) => d.id === id)?.events ?? 0) > 0,
        );
      },
      30_000,
      "every device's first events",
    );
    await sleep(o.warmupS * 1000);

    const ticks = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
    const pid = daemon.pid!;
    const before = await status();
    const cpu0 = cpuSeconds(pid, ticks);
    const t0 = performance.now();
    // The cart exports a 12-lead ECG a third of the way in (written aside, then renamed, as a share copy ends).
    const ecg = ecgFile();
    const dropTimer = setTimeout(
      () => {
        writeFileSync(join(dir, "ECG_0001.dcm.part"), ecg.bytes);
        renameSync(join(dir, "ECG_0001.dcm.part"), join(drop, "ECG_0001.dcm"));
      },
      (o.windowS * 1000) / 3,
    );
    feeds.push(
      `ECG cart: ${ecg.what} (${ecg.bytes.length} B) dropped into its watched folder ${Math.round(o.windowS / 3)} s into the window (stableMs 2000, scanMs 1000: the defaults)`,
    );
    await sleep(o.windowS * 1000);
    clearTimeout(dropTimer);
    const cpu1 = cpuSeconds(pid, ticks);
    const seconds = (performance.now() - t0) / 1000;
    const mem = daemonMemory(pid);
    const after = await status();
    const events: Record<string, number> = {};
    const states: Record<string, string> = {};
    for (const d of after.devices) {
      events[d.id] = d.events - (before.devices.find((b) => b.id === d.id)?.events ?? 0);
      states[d.id] = d.state;
    }
    return {
      windowS: seconds,
      cpuPct: ((cpu1 - cpu0) / seconds) * 100,
      memory: mem,
      events,
      states,
      queuePending: after.queue.pending,
      feeds,
      broker,
      missing,
    };
  } finally {
    await Promise.all(children.map(stopProcess));
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
}
