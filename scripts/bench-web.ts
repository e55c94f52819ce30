// bench web: what the local web page costs the daemon (issue 6). The daemon (`vitalgate start`, a
// child process) with an HL7 monitor sending vitals once a second and an S/5 monitor sending its
// ECG waveform (each played by its simulator), measured twice over the same window: first with
// no browser, then with five chromium pages (five sessions) on the devices page, each taking the
// live values and the waveform strip over server-sent events. CPU is utime + stime from
// /proc/<pid>/stat over the window, as % of one core; the page's cost is the difference.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchChromium } from "../test/support/browser.ts";
import { DAEMON_NODE_FLAGS, freePort, portOpen, ROOT, stopProcess } from "../test/support/processes.ts";
import { cpuSeconds, sleep, waitUntil } from "./bench-fullset.ts";

export interface WebBenchResult {
  pages: number;
  windowS: number;
  /** % of one core, no browser. */
  idleCpuPct: number;
  /** % of one core, `pages` browsers on the devices page. */
  watchedCpuPct: number;
  /** Live messages one page received in the watched window (values, wave, device, status). */
  messagesPerPage: number;
  feeds: string[];
}

const PASSWORD = "bench password 1";

export async function webWatchers(o: { pages: number; warmupS: number; windowS: number }): Promise<WebBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), "vg-bench-web-"));
  mkdirSync(join(dir, "state"));
  const children: ChildProcess[] = [];
  const cli = (args: string[]) => {
    const flags = args[0] === "start" ? DAEMON_NODE_FLAGS : [];
    const child = spawn(process.execPath, [...flags, join(ROOT, "src/cli/main.ts"), ...args], {
      cwd: ROOT,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    child.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.on(
      "exit",
      (code) => code && code !== 143 && console.log(`  ${args.slice(0, 2).join(" ")} exited ${code}: ${err}`),
    );
    children.push(child);
    return child;
  };
  const browser = await launchChromium();
  try {
    const [hl7Port, s5Port, webPort, brokerPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    cli(["simulate", "datex-s5", "--tcp-port", String(s5Port)]);
    await waitUntil(() => portOpen(s5Port), 20_000, "the S/5 simulator's port");
    const conf = join(dir, "vitalgate.yaml");
    writeFileSync(
      conf,
      `gateway: { id: bench-web, role: ambulance }
stateDir: ${dir}/state
embeddedBroker: { host: 127.0.0.1, port: ${brokerPort} }
web: { host: 127.0.0.1, port: ${webPort} }
pairing: { listen: [] }
log: { level: warn, pretty: false }
devices:
  - { id: monitor, driver: hl7-pcd01, name: 监护仪, options: { mode: listen, host: 127.0.0.1, port: ${hl7Port} } }
  - { id: s5, driver: datex-s5, name: S/5, options: { transport: tcp, host: 127.0.0.1, tcpPort: ${s5Port}, intervalS: 10, waveforms: [ECG1] } }
`,
    );
    const daemon = cli(["start", "--config", conf]);
    const base = `http://127.0.0.1:${webPort}`;
    await waitUntil(
      () => {
        if (daemon.exitCode !== null) throw new Error(`daemon exited with ${daemon.exitCode}`);
        return portOpen(webPort);
      },
      20_000,
      "the daemon's web port",
    );
    cli(["simulate", "hl7-pcd01", "--port", String(hl7Port), "--interval-ms", "1000"]);
    // `/status` answers the box itself without a session (as `vitalgate status` uses it).
    const events = async (id: string) =>
      ((await (await fetch(`${base}/status`)).json()) as { devices: { id: string; events: number }[] }).devices.find(
        (d) => d.id === id,
      )?.events ?? 0;
    await waitUntil(
      async () => (await events("monitor")) > 0 && (await events("s5")) > 0,
      30_000,
      "both monitors' first events",
    );
    await sleep(o.warmupS * 1000);

    const ticks = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;
    const measure = async () => {
      const c0 = cpuSeconds(daemon.pid!, ticks);
      const t0 = performance.now();
      await sleep(o.windowS * 1000);
      return ((cpuSeconds(daemon.pid!, ticks) - c0) / ((performance.now() - t0) / 1000)) * 100;
    };
    const idleCpuPct = await measure();

    // The admin from the box itself (no setup code over loopback); each page its own session.
    const setup = await fetch(`${base}/api/setup`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "admin", password: PASSWORD }),
    });
    if (!setup.ok) throw new Error(`setup: ${setup.status} ${await setup.text()}`);
    const pages = [];
    for (let i = 0; i < o.pages; i++) {
      const context = await browser.newContext({ baseURL: base, viewport: { width: 1280, height: 800 } });
      const login = await context.request.post("/api/login", { data: { username: "admin", password: PASSWORD } });
      if (!login.ok()) throw new Error(`login: ${login.status()}`);
      const page = await context.newPage();
      // Count what the live feed brings this page (EventSource messages of every type).
      await page.addInitScript(`(() => {
        const Real = window.EventSource;
        window.__liveMessages = 0;
        window.EventSource = class extends Real {
          addEventListener(type, fn, o) { return super.addEventListener(type, (e) => { window.__liveMessages++; fn(e); }, o); }
        };
      })()`);
      await page.goto("/#/devices");
      await page.locator("article.device[data-device=monitor] .value").first().waitFor({ timeout: 20_000 });
      pages.push(page);
    }
    await sleep(o.warmupS * 1000);
    const before = await Promise.all(pages.map((p) => p.evaluate("window.__liveMessages") as Promise<number>));
    const watchedCpuPct = await measure();
    const after = await Promise.all(pages.map((p) => p.evaluate("window.__liveMessages") as Promise<number>));
    const messages = after.reduce((a, n, i) => a + n - before[i]!, 0) / pages.length;
    return {
      pages: o.pages,
      windowS: o.windowS,
      idleCpuPct,
      watchedCpuPct,
      messagesPerPage: messages,
      feeds: [
        "HL7 monitor: simulate hl7-pcd01 (synthetic PCD-01) over MLLP/TCP, 1 message/s",
        "S/5: simulate datex-s5 as a TCP serial server; displayed values every 10 s and the ECG1 waveform (one record a second, thinned for the page)",
      ],
    };
  } finally {
    await browser.close();
    await Promise.all(children.map(stopProcess));
    rmSync(dir, { recursive: true, force: true });
  }
}
