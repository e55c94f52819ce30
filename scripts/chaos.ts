// Fault injection on this box only (loopback), for a few minutes: the gateway as its own process, a
// mosquitto broker as the center's, a center subscriber with a persistent session, and monitors
// sending ORU^R01 over MLLP, each resending until acknowledged AA (as monitors do). Meanwhile, at
// random: kill -9 of the gateway (and its restart), broker outages, and, when this box lets us mount
// a small tmpfs (root), the disk filling up under the outbox and freed again. The outbox has a small
// quota (16 MB) and waveform-heavy messages, so quota pressure comes with the outages. At the end it
// prints what was sent, acknowledged, delivered, lost (acknowledged AA and never delivered, less
// what a gap record says was thinned or dropped), duplicates and thinned. Cleans up after itself.
//
//   npm run chaos                          # 180 s
//   CHAOS_S=600 CHAOS_MONITORS=8 npm run chaos
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pcd01Message } from "../drivers/hl7-pcd01/synthetic.ts";
import type { Envelope, GapBody } from "../src/events/model.ts";
import { MllpSender } from "../test/support/mllp-sender.ts";
import { connectCenter } from "../test/support/mqtt.ts";
import { freePort, mosquitto, startDaemon, type Daemon } from "../test/support/processes.ts";

const SECONDS = Number(process.env.CHAOS_S ?? 180);
const MONITORS = Number(process.env.CHAOS_MONITORS ?? 4);
const random = (lo: number, hi: number) => lo + Math.random() * (hi - lo);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function mountTmpfs(dir: string, size: string): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const say = (line: string) => process.stderr.write(`chaos ${new Date().toISOString().slice(11, 19)} ${line}\n`);
const work = mkdtempSync(join(tmpdir(), "vg-chaos-"));
const stateDir = join(work, "state");
mkdirSync(stateDir);
const tmpfs = mountTmpfs(stateDir, "64m");
const cleanup: (() => unknown)[] = [];
let centerEvents: Envelope[] = [];
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    report(centerEvents);
    void finish();
  });
}
const stats = { sent: 0, acknowledged: 0, refused: 0, kills: 0, outages: 0, diskFills: 0 };
const acked = new Set<string>();
let daemon: Daemon | undefined;
try {
  const broker = await mosquitto(`persistence true\npersistence_location ${work}/\nautosave_interval 1\n`);
  cleanup.push(() => broker.stop());
  const hl7Port = await freePort();
  const webPort = await freePort();
  const configPath = join(work, "vitalgate.yaml");
  writeFileSync(
    configPath,
    `gateway: { id: chaos, role: ambulance }
stateDir: ${stateDir}
uplink: { url: ${broker.url}, protocolVersion: 5, backoff: { initialMs: 100, maxMs: 1000 } }
store: { quotaMB: 16 }
web: { host: 127.0.0.1, port: ${webPort} }
log: { level: warn, pretty: false }
devices:
  - { id: monitors, driver: hl7-pcd01, options: { mode: listen, host: 127.0.0.1, port: ${hl7Port}, maxFrameBytes: 65536 } }
`,
  );
  const center = await connectCenter(broker.url, "chaos", {
    protocolVersion: 5,
    clean: false,
    clientId: `chaos-center-${process.pid}`,
    properties: { sessionExpiryInterval: 3600 },
  });
  cleanup.push(() => center.close());
  centerEvents = center.events;
  daemon = await startDaemon(configPath, webPort);
  const until = Date.now() + SECONDS * 1000;
  // Bounded whatever happens: a hung restart or broker ends the run with the figures so far.
  const hardStop = setTimeout(
    () => {
      say("hard time limit reached: stopping");
      process.emit("SIGTERM");
    },
    (SECONDS + 120) * 1000,
  );
  hardStop.unref();

  // Monitors: one message at a time each, resent until AA; a padded OBX makes quota pressure come soon.
  const monitor = async (m: number) => {
    let sender: MllpSender | null = null;
    for (let i = 0; Date.now() < until;) {
      const id = `M${m}-${i}`;
      const text =
        pcd01Message({ controlId: id, time: new Date(), values: { hr: 60 + (i % 60), spo2: 97 } }).replace(/\r$/, "") +
        `\rOBX|9|ST|0^NOTE^99VG||${"x".repeat(1500)}||||||F\r`;
      try {
        sender ??= await MllpSender.connect(hl7Port);
        stats.sent++;
        const ack = await sender.send(text, 5000);
        if (ack.code === "AA") {
          acked.add(id);
          stats.acknowledged++;
          i++;
        } else {
          stats.refused++;
          await sleep(200);
        }
      } catch {
        sender?.close();
        sender = null;
        await sleep(100);
      }
    }
    sender?.close();
  };
  const load = Promise.all(Array.from({ length: MONITORS }, (_, m) => monitor(m)));

  // Faults, one at a time, until the end.
  while (Date.now() < until - 20_000) {
    await sleep(random(3000, 10_000));
    const fault = Math.random();
    if (fault < 0.4) {
      stats.kills++;
      say("kill -9 of the gateway, and a restart");
      await daemon.kill9();
      daemon = await startDaemon(configPath, webPort);
    } else if (fault < 0.75) {
      stats.outages++;
      say("broker outage");
      await broker.stop();
      await sleep(random(5000, 20_000));
      await broker.start();
    } else if (tmpfs) {
      stats.diskFills++;
      say("disk full");
      try {
        writeFileSync(join(stateDir, "filler"), Buffer.alloc(64 << 20));
      } catch {
        // ENOSPC: the disk is full now
      }
      await sleep(random(3000, 8000));
      rmSync(join(stateDir, "filler"), { force: true });
    }
  }
  await load;
  say(`load over: ${acked.size} acknowledged; draining`);
  // Drain: everything the gateway holds reaches the center, or stays after a minute.
  const deadline = Date.now() + 60_000;
  const delivered = () => new Set(center.events.filter((e) => e.kind === "vitals").map((e) => e.msg?.id ?? ""));
  const drained = () => {
    const at = delivered();
    return [...acked].every((id) => at.has(id));
  };
  while (Date.now() < deadline && !drained()) await sleep(500);

  report(center.events);
} finally {
  await finish();
}

function report(events: Envelope[]): void {
  const vitals = events.filter((e) => e.kind === "vitals");
  const byMessage = new Map<string, number>();
  for (const e of vitals) byMessage.set(e.msg?.id ?? "", (byMessage.get(e.msg?.id ?? "") ?? 0) + 1);
  const gaps = events.filter((e): e is Envelope<GapBody> => e.kind === "gap" && (e.body as GapBody).of === "vitals");
  const told = gaps.reduce((n, g) => n + g.body.events, 0);
  const missing = [...acked].filter((id) => !byMessage.has(id)).length;
  console.log(
    JSON.stringify(
      {
        seconds: SECONDS,
        monitors: MONITORS,
        faults: {
          kill9: stats.kills,
          brokerOutages: stats.outages,
          diskFills: tmpfs ? stats.diskFills : "skipped: cannot mount a tmpfs here (needs root)",
        },
        sent: stats.sent,
        acknowledged: acked.size,
        refusedAE: stats.refused,
        delivered: byMessage.size,
        lost: Math.max(0, missing - told),
        missingToldByGapRecords: Math.min(missing, told),
        duplicates: vitals.length - new Set(vitals.map((e) => `${e.msg?.id}#${e.msg?.n}`)).size,
        thinned: gaps.filter((g) => g.body.action === "thinned").reduce((n, g) => n + g.body.events, 0),
        dropped: gaps.filter((g) => g.body.action === "dropped").reduce((n, g) => n + g.body.events, 0),
      },
      null,
      2,
    ),
  );
}

/** Stops what the run started (the gateway, the broker, the center), unmounts, removes its files. */
async function finish(): Promise<never> {
  await daemon?.kill9().catch(() => undefined);
  for (const f of cleanup.reverse()) await Promise.resolve(f()).catch(() => undefined);
  if (tmpfs) execFileSync("umount", ["-l", stateDir]);
  rmSync(work, { recursive: true, force: true });
  process.exit(0);
}
