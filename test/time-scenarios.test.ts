// Clinical time when the box's clock is wrong (issue 11), end to end: the REAL daemon (src/cli/main.ts
// start, a child process) runs under Debian's libfaketime, which moves its wall clock (Date.now, the
// kernel's CLOCK_REALTIME as the process sees it) while leaving the monotonic clock alone
// (FAKETIME_DONT_FAKE_MONOTONIC=1); the offset is read from a file at every call
// (FAKETIME_TIMESTAMP_FILE, FAKETIME_NO_CACHE=1), so the test steps the box's clock mid-run. The test
// itself runs on the true clock: it knows true UTC. Around the daemon: a GPS receiver on a PTY (socat)
// sending NMEA at the true time (or wrong, on purpose), a monitor over real MLLP/TCP, an ECG cart's
// watched folder, the web API over real HTTP, and the center on a real mosquitto that comes up only
// after the first sync (the box is in a garage with no 4G: what it stamped waits in the outbox).
//
// Every scenario asserts against true UTC: each case node, the case id's date, the 10-minute clock,
// every event's `t` and `time.recv` within its `uncMs` (or marked as not placed), the audit trail's
// times, the HL7 ACK's MSH-7, and that the crew's session and the folder intake carry on across the
// sync and the steps.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { CaseView } from "../src/cases/case-book.ts";
import type { Envelope } from "../src/events/model.ts";
import { part10File } from "../src/transports/dicom-scp.ts";
import { syntheticDrive } from "../drivers/nmea-gps/synthetic.ts";
import { pcd01Message } from "../drivers/hl7-pcd01/synthetic.ts";
import { EXPLICIT_LE, syntheticEcg } from "./support/dicom.ts";
import { MllpSender } from "./support/mllp-sender.ts";
import { connectCenter, waitFor, type Center } from "./support/mqtt.ts";
import { freePort, mosquitto, startDaemon, type Daemon, type Mosquitto } from "./support/processes.ts";
import { hasSocat, nullModem, openDeviceEnd } from "./support/pty.ts";

/** Debian's libfaketime (package `faketime`); the multi-threaded variant, as Node runs threads. */
const FAKETIME = [
  "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
  "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
].find(existsSync);
const hasMosquitto = spawnSync("mosquitto", ["-h"]).error === undefined;
const ready = FAKETIME !== undefined && hasSocat && hasMosquitto;
if (!ready)
  console.warn(
    "skipping the wrong-clock scenarios: they need faketime, socat and mosquitto (apt-get install faketime socat mosquitto)",
  );

/** How long a scenario waits for something the daemon does (a sync, an event at the center); never slept out. */
const WAIT_MS = Number(process.env.VG_TIME_SCENARIO_WAIT_MS ?? 30_000);
/**
 * The GPS's delay after the top of the second, as configured, and its uncertainty: wide, as the
 * test's timers and the daemon's reads run seconds late on a loaded test machine (a sentence read
 * 1 s late is a fix 1 s off, and the gateway must have said so). The errors the scenarios are about
 * are hours and years; the assertions hold every stated time to its stated uncertainty.
 */
const GPS_LATENCY_MS = 1000;
const GPS_UNC_MS = 2000;

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** The box's wall clock: true UTC plus `offsetS`, changed at any moment by rewriting the file libfaketime reads. */
function boxClock(file: string) {
  const set = (offsetS: number) => {
    writeFileSync(`${file}.new`, `${offsetS >= 0 ? "+" : ""}${Math.round(offsetS)}\n`);
    renameSync(`${file}.new`, file); // whole, never half-written
  };
  return { set };
}

/** Seconds from true now back to 1970-01-01: a box with a dead RTC battery. */
const TO_1970_S = () => -Math.floor(Date.now() / 1000);

/**
 * A GPS receiver sending one epoch a second, early in the true second it reports (0.1-0.8 s in:
 * within the configured GPS_LATENCY_MS ± GPS_UNC_MS, read delays included), that second shifted by
 * `errorMs()` (a receiver that is wrong on purpose). A tick that comes later (a loaded test machine)
 * sends nothing rather than a fix the gateway would misplace beyond what it was told.
 */
function gpsFeeder(write: (text: string) => void, errorMs: () => number = () => 0) {
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const schedule = () => {
    const now = Date.now();
    timer = setTimeout(tick, Math.floor(now / 1000) * 1000 + 1000 + 100 - now);
  };
  const tick = () => {
    if (stopped) return;
    const now = Date.now();
    const second = Math.floor(now / 1000) * 1000;
    if (now - second <= 800) {
      const epoch = syntheticDrive({ startMs: second + errorMs(), epochs: 1, speedMps: 0 }).next().value!;
      write(epoch.text);
    }
    schedule();
  };
  schedule();
  return {
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

interface Box {
  dir: string;
  cartDir: string;
  clock: ReturnType<typeof boxClock>;
  daemon: Daemon;
  broker: Mosquitto;
  hl7Port: number;
  gps: { start(errorMs?: () => number): void; stop(): void };
  web: WebClient;
  /** The center, once the broker is up (`uplink()`). */
  center(): Center;
  uplink(): Promise<Center>;
  /** True UTC when the box was started. */
  startedAt: number;
}

interface WebClient {
  req<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }>;
}

/** A browser's session on the page over real HTTP: the first admin, set up from the box itself. */
async function webClient(port: number): Promise<WebClient> {
  const base = `http://127.0.0.1:${port}`;
  let cookie = "";
  let csrf = "";
  const client: WebClient = {
    async req<T>(method: string, path: string, body?: unknown) {
      const headers: Record<string, string> = { cookie, "x-csrf-token": csrf };
      if (body !== undefined) headers["content-type"] = "application/json";
      const r = await fetch(base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const set = r.headers.get("set-cookie");
      if (set) cookie = set.split(";")[0]!;
      return { status: r.status, json: (await r.json().catch(() => null)) as T };
    },
  };
  const setup = await client.req<{ csrf: string }>("POST", "/api/setup", {
    username: "crew1",
    password: "crew password 1",
  });
  if (setup.status !== 200) throw new Error(`setup: ${setup.status} ${JSON.stringify(setup.json)}`);
  csrf = setup.json.csrf;
  return client;
}

/** The daemon on a box whose clock is `offsetS` off, with a GPS, a monitor and an ECG cart; the uplink down. */
async function startBox(offsetS: number, o: { monitorTimezone?: string; timeYaml?: string } = {}): Promise<Box> {
  const startedAt = Date.now();
  const dir = mkdtempSync(join(tmpdir(), "vg-time-scn-"));
  const cartDir = join(dir, "cart");
  mkdirSync(cartDir);
  const clockFile = join(dir, "faketime");
  const clock = boxClock(clockFile);
  clock.set(offsetS);
  // The center's broker keeps its session across a restart (persistence), so that it gets what the
  // gateway sends the moment the broker is back; down until the test brings the uplink up.
  const broker = await mosquitto(`persistence true\npersistence_location ${dir}/\nautosave_interval 1\n`);
  cleanup.push(() => broker.stop());
  const center = await connectCenter(broker.url, "gw-scn", {
    protocolVersion: 5,
    clean: false,
    clientId: `center-${Date.now()}`,
    properties: { sessionExpiryInterval: 3600 },
  });
  cleanup.push(() => center.close());
  await broker.stop();
  const cable = nullModem();
  await cable.plugIn();
  cleanup.push(() => cable.unplug());
  const receiver = await openDeviceEnd(cable.devicePath);
  cleanup.push(() => receiver.close());
  const hl7Port = await freePort();
  const webPort = await freePort();
  const configPath = join(dir, "vitalgate.yaml");
  writeFileSync(
    configPath,
    `gateway: { id: gw-scn, role: ambulance }
stateDir: ${dir}/state
uplink: { url: "${broker.url}", backoff: { initialMs: 100, maxMs: 300 } }
web: { host: 127.0.0.1, port: ${webPort} }
log: { level: info, pretty: false }
watchedFolders: { roots: ["${dir}"] }
time: { ntpServers: [], trustSystemClock: never, gpsLatencyMs: ${GPS_LATENCY_MS}, gpsUncertaintyMs: ${GPS_UNC_MS}${o.timeYaml ? `, ${o.timeYaml}` : ""} }
devices:
  - { id: gps, driver: nmea-gps, options: { port: "${cable.gatewayPath}", throttle: false, silentAfterS: 30 } }
  - { id: monitor, driver: hl7-pcd01, options: { mode: listen, host: 127.0.0.1, port: ${hl7Port}${o.monitorTimezone === undefined ? `, timezone: "+08:00"` : o.monitorTimezone ? `, timezone: "${o.monitorTimezone}"` : ""} } }
  - { id: cart, driver: ecg-cart, options: { dir: "${cartDir}", stableMs: 200, scanMs: 100 } }
`,
  );
  const daemon = await startDaemon(
    configPath,
    webPort,
    {
      LD_PRELOAD: FAKETIME!,
      FAKETIME_TIMESTAMP_FILE: clockFile,
      FAKETIME_NO_CACHE: "1",
      FAKETIME_DONT_FAKE_MONOTONIC: "1",
    },
    WAIT_MS,
  );
  cleanup.push(() => daemon.stop());
  const web = await webClient(webPort);
  let feeder: ReturnType<typeof gpsFeeder> | null = null;
  cleanup.push(() => feeder?.stop());
  return {
    dir,
    cartDir,
    clock,
    daemon,
    broker,
    hl7Port,
    web,
    startedAt,
    gps: {
      start: (errorMs) => {
        feeder?.stop();
        feeder = gpsFeeder((text) => void receiver.port.write(text), errorMs);
      },
      stop: () => feeder?.stop(),
    },
    center: () => center,
    async uplink() {
      await broker.start();
      return center;
    },
  };
}

interface TimeStatus {
  synced: boolean;
  src: string;
  uncMs: number;
  offsetMs: number | null;
  devices: { id: string; skewMs: number; state: string }[];
}
const timeStatus = async (box: Box) => (await box.web.req<{ time: TimeStatus }>("GET", "/api/status")).json.time;

async function synced(box: Box): Promise<TimeStatus> {
  let t: TimeStatus | undefined;
  await waitFor(
    () => {
      void timeStatus(box).then(
        (s) => (t = s),
        () => undefined,
      );
      return t?.synced === true;
    },
    WAIT_MS,
    "the first sync from the GPS",
  );
  return t!;
}

/** Polls an async value until `ok` says so. */
async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string): Promise<T> {
  let last: T | undefined;
  let pending = false;
  await waitFor(
    () => {
      if (!pending) {
        pending = true;
        void read().then(
          (v) => {
            last = v;
            pending = false;
          },
          () => {
            pending = false;
          },
        );
      }
      return last !== undefined && ok(last);
    },
    WAIT_MS,
    what,
  );
  return last!;
}

/** Runs `act` and returns the true window it ran in: what it caused happened within. */
async function timed<T>(act: () => Promise<T>): Promise<{ value: T; from: number; to: number }> {
  const from = Date.now();
  const value = await act();
  return { value, from, to: Date.now() };
}

/** A time the gateway states is within `uncMs` of a true time known to lie in [from, to]. */
function within(what: string, iso: string | undefined, w: { from: number; to: number }, uncMs: number): void {
  expect(iso, what).toBeDefined();
  const ms = Date.parse(iso!);
  expect(
    ms,
    `${what}: ${iso} vs true ${new Date(w.from).toISOString()}..${new Date(w.to).toISOString()} ±${uncMs} ms`,
  ).toBeGreaterThanOrEqual(w.from - uncMs);
  expect(
    ms,
    `${what}: ${iso} vs true ${new Date(w.from).toISOString()}..${new Date(w.to).toISOString()} ±${uncMs} ms`,
  ).toBeLessThanOrEqual(w.to + uncMs);
}

/** The box's local date, as its case ids carry it. */
function localDay(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, "0")}${String(d.getDate()).padStart(2, "0")}`;
}

const dicomDt = (ms: number) => new Date(ms).toISOString().replace(/[-:T]/g, "").replace(/Z$/, "+0000");

/** A 12-lead ECG file written into the cart's folder, acquired at `acquiredMs` by the cart's clock. */
function dropEcg(box: Box, acquiredMs: number): void {
  const ecg = syntheticEcg({ seconds: 2, acquired: dicomDt(acquiredMs) });
  const file = part10File(ecg.dataset, {
    sopClassUid: ecg.sopClassUid,
    sopInstanceUid: ecg.sopInstanceUid,
    transferSyntaxUid: EXPLICIT_LE,
  });
  const name = `ecg-${acquiredMs}-${Math.random().toString(16).slice(2, 8)}.dcm`;
  writeFileSync(join(box.cartDir, `${name}.part`), file);
  renameSync(join(box.cartDir, `${name}.part`), join(box.cartDir, name));
}

/** An HL7 TS of Unix ms in a zone written as `utcOffset` ("+0800"; "" for local time without offset, read as +08:00 here). */
function hl7Ts(ms: number, utcOffset: string): string {
  const iso = new Date(ms + 8 * 3_600_000).toISOString();
  return iso.slice(0, 19).replace(/[-:T]/g, "") + utcOffset;
}

/**
 * Monitor messages over one connection, back to back: each heart rate `hr` measured at `measuredMs`
 * by the monitor's clock, written in its zone (`utcOffset`, "+0800" or "" for local time without
 * offset), with its own OBX-14 at `hrAtMs` when given (an episodic value), and an NIBP (its own OBR
 * group, systolic `hr + 40`) taken at `nibpMs` when given; the ACKs.
 */
async function sendMessages(
  box: Box,
  messages: { hr: number; measuredMs: number; hrAtMs?: number; nibpMs?: number }[],
  utcOffset = "+0800",
) {
  const sender = await MllpSender.connect(box.hl7Port);
  try {
    const acks = [];
    for (const m of messages) {
      const nibp = m.nibpMs === undefined ? undefined : { sys: m.hr + 40, dia: 80, time: hl7Ts(m.nibpMs, utcOffset) };
      let text = pcd01Message({
        controlId: `M${m.hr}`,
        time: hl7Ts(m.measuredMs, utcOffset),
        utcOffset,
        values: { hr: m.hr, nibp },
      });
      if (m.hrAtMs !== undefined)
        text = text.replace(/(MDC_ECG_HEART_RATE[^\r]*\|)[^|\r]*\r/, `$1${hl7Ts(m.hrAtMs, utcOffset)}\r`);
      acks.push(await sender.send(text));
    }
    return acks;
  } finally {
    sender.close();
  }
}

const sendVitals = async (box: Box, hr: number, measuredMs: number, utcOffset = "+0800") =>
  (await sendMessages(box, [{ hr, measuredMs }], utcOffset))[0]!;

const observation = (e: Envelope, code: string) =>
  (e.body as { observations?: { code: string; value: number; at?: string }[] }).observations?.find(
    (o) => o.code === code,
  );
const hrOf = (e: Envelope) => observation(e, "MDC_ECG_HEART_RATE")?.value;
/** The event of the NIBP with systolic `sys`. */
const nibpEvent = (center: Center, sys: number) =>
  center.events.find((e) => observation(e, "MDC_PRESS_BLD_NONINV_SYS")?.value === sys);

/** ACK MSH-7 (yyyyMMddHHmmss+0000) as Unix ms. */
function ackTime(raw: string): number {
  const msh7 = raw.split(/\r/)[0]!.split("|")[6]!;
  const m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)\+0000$/.exec(msh7);
  if (!m) throw new Error(`MSH-7 ${msh7}`);
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

/**
 * What every event the center got must hold: placed within its stated uncertainty of a true time
 * in the scenario's span (its `t` not after `recv`), or marked as not placed (`unsynced` without
 * `restamped`).
 */
function everyEventPlaced(center: Center, span: { from: number; to: number }): void {
  for (const e of center.events) {
    if (e.time.unsynced && !e.time.restamped) continue; // said: not to be used for audits
    within(`${e.kind} ${e.id} recv`, e.time.recv, span, e.time.uncMs);
    expect(Date.parse(e.t), `${e.kind} t after recv`).toBeLessThanOrEqual(Date.parse(e.time.recv));
  }
}

describe.skipIf(!ready)("clinical time on a box whose clock is wrong (the real daemon under libfaketime)", () => {
  it("libfaketime moves the daemon's wall clock and leaves its monotonic clock alone", async () => {
    const box = await startBox(TO_1970_S());
    // The box's own view: its system clock in 1970, which the status reports as the offset once synced.
    const before = await timeStatus(box);
    expect(before).toMatchObject({ synced: false, src: "unsynced" });
    box.gps.start();
    const s = await synced(box);
    expect(s.src).toBe("gps");
    expect(s.offsetMs).toBeGreaterThan(56 * 365 * 86_400_000); // true UTC minus the box's clock: 56 years
  }, 120_000);

  const wrongAtBoot = [
    { name: "boots at 1970 (dead RTC battery)", offsetS: TO_1970_S },
    { name: "boots 3 h slow", offsetS: () => -3 * 3600 },
    { name: "boots 3 h fast", offsetS: () => 3 * 3600 },
  ];
  for (const scenario of wrongAtBoot) {
    it(`${scenario.name}, then the GPS: case nodes, case id, the 10-minute clock, events, audit, ACKs are true; session and folder intake carry on`, async () => {
      const box = await startBox(scenario.offsetS());
      const { web } = box;
      // Before any sync: the crew opens a case, taps first contact; the monitor sends; the cart's ECG lands.
      const open = await timed(() => web.req<CaseView>("POST", "/api/cases", {}));
      expect(open.value.status).toBe(200);
      const caseId = open.value.json.id;
      const fmc = await timed(() => web.req<CaseView>("POST", `/api/cases/${caseId}/nodes`, { node: "fmc" }));
      expect(fmc.value.status).toBe(200);
      const measured = Date.now() - 2000; // the monitor's clock is right
      const vitals = await timed(() => sendVitals(box, 71, measured));
      expect(vitals.value.code).toBe("AA");
      const acquired = Math.floor(Date.now() / 1000) * 1000 - 5000; // the cart's clock is right
      dropEcg(box, acquired);
      const withEcg = await until(
        () => web.req<CaseView>("GET", `/api/cases/${caseId}`),
        (r) => r.json.ecgs.length === 1,
        "the ECG in the case",
      );
      // The 10-minute clock counts true seconds from the tap, whatever the box's date.
      const elapsedNow = (Date.now() - fmc.from) / 1000;
      expect(withEcg.json.fmcElapsedS).toBeGreaterThanOrEqual(Math.floor(elapsedNow - (fmc.to - fmc.from) / 1000) - 1);
      expect(withEcg.json.fmcElapsedS).toBeLessThanOrEqual(Math.ceil(elapsedNow) + 1);
      expect(withEcg.json.unsynced).toEqual(expect.arrayContaining(["openedAt", "fmc"]));

      // The GPS fix.
      box.gps.start();
      const sync = await synced(box);
      const unc = sync.uncMs;
      const placed = await until(
        () => web.req<CaseView>("GET", `/api/cases/${caseId}`),
        (r) => r.status === 200 && r.json.unsynced === undefined,
        "the case placed",
      );
      const c = placed.json;
      expect(c.unplaced).toBeUndefined();
      within("openedAt", c.openedAt, open, unc);
      within("fmc", c.nodes.fmc, fmc, unc);
      // The cart's own time (its clock is right), not shifted by the box's correction nor replaced by the arrival.
      within("firstEcg (the cart's time)", c.nodes.firstEcg, { from: acquired, to: acquired }, unc);
      expect(c.ecgs[0]!.acquiredAt).toBe(c.nodes.firstEcg);
      expect(c.id.slice(0, 8), "the case id's date").toBe(localDay(Date.parse(c.openedAt)));
      expect(c.id).not.toMatch(/^1970/);
      const elapsed = (Date.now() - fmc.from) / 1000;
      expect(c.fmcElapsedS).toBeGreaterThanOrEqual(Math.floor(elapsed - (fmc.to - fmc.from) / 1000 - unc / 1000) - 1);
      expect(c.fmcElapsedS).toBeLessThanOrEqual(Math.ceil(elapsed + unc / 1000) + 1);

      // After the sync: the session holds; the monitor's ACK carries true time; the folder takes the next ECG.
      const later = await timed(() => sendVitals(box, 72, Date.now()));
      expect(later.value.code).toBe("AA");
      within(
        "ACK MSH-7",
        new Date(ackTime(later.value.raw)).toISOString(),
        { from: later.from - 1000, to: later.to },
        unc,
      );
      const acquired2 = Math.floor(Date.now() / 1000) * 1000;
      dropEcg(box, acquired2);
      await until(
        () => web.req<CaseView>("GET", `/api/cases/${c.id}`),
        (r) => r.json.ecgs?.length === 2,
        "the second ECG in the case",
      );

      // The audit trail: every record placed within the scenario, none left in 1970 or hours off.
      const audit = await web.req<{
        rows: { action: string; at: string; time?: { placed: boolean } }[];
        chain: { ok: boolean };
      }>("GET", "/api/audit?limit=500");
      expect(audit.json.chain.ok).toBe(true);
      const span = { from: box.startedAt, to: Date.now() };
      for (const r of audit.json.rows) within(`audit ${r.action}`, r.at, span, unc);
      expect(audit.json.rows.map((r) => r.action)).toEqual(
        expect.arrayContaining(["case.open", "case.node", "time.synced"]),
      );

      // The center, once the uplink is up: every event placed, the vitals at the monitor's time, the nodes re-sent corrected.
      const center = await box.uplink();
      await center.waitFor(
        () => center.events.some((e) => hrOf(e) === 72) && center.events.filter((e) => e.kind === "ecg12").length === 2,
        WAIT_MS,
        "the events at the center",
      );
      everyEventPlaced(center, { from: box.startedAt, to: Date.now() });
      const hr71 = center.events.find((e) => hrOf(e) === 71)!;
      within(
        "vitals t (the monitor's time, to the second)",
        hr71.t,
        { from: Math.floor(measured / 1000) * 1000, to: measured },
        hr71.time.uncMs,
      );
      within("vitals recv", hr71.time.recv, vitals, hr71.time.uncMs);
      const cases = center.events.filter((e) => e.kind === "case");
      expect(cases.every((e) => e.case === c.id)).toBe(true);
      const fmcEvents = cases
        .filter((e) => (e.body as { node?: string }).node === "fmc")
        .map((e) => e.body as { at: string; unsynced?: true });
      expect(fmcEvents.at(-1)!.unsynced).toBeUndefined();
      within("fmc as the center has it last", fmcEvents.at(-1)!.at, fmc, unc);
      expect(fmcEvents.slice(0, -1).every((b) => b.unsynced === true)).toBe(true); // what it was sent before is marked
    }, 180_000);
  }

  it("a step of the box's clock forward and back after the first sync moves nothing: nodes, clock, events, session, folder intake", async () => {
    const box = await startBox(0);
    const { web } = box;
    box.gps.start();
    const sync = await synced(box);
    const center = await box.uplink();
    const open = await timed(() => web.req<CaseView>("POST", "/api/cases", {}));
    const caseId = open.value.json.id;
    const fmc = await timed(() => web.req<CaseView>("POST", `/api/cases/${caseId}/nodes`, { node: "fmc" }));

    box.clock.set(3600); // `date -s` an hour ahead
    const onset = await timed(() => web.req<CaseView>("POST", `/api/cases/${caseId}/nodes`, { node: "onset" }));
    expect(onset.value.status).toBe(200);
    within("onset after a step forward", onset.value.json.nodes.onset, onset, sync.uncMs + 1000);
    await sendVitals(box, 81, Date.now());

    box.clock.set(-3600); // and two hours back
    const acquired = Math.floor(Date.now() / 1000) * 1000;
    const dropped = Date.now();
    dropEcg(box, acquired);
    const withEcg = await until(
      () => web.req<CaseView>("GET", `/api/cases/${caseId}`),
      (r) => r.json.ecgs?.length === 1,
      "the ECG dropped after the step back",
    );
    expect(Date.now() - dropped, "folder intake not stalled by the step back").toBeLessThan(WAIT_MS);
    within("firstEcg", withEcg.json.nodes.firstEcg, { from: acquired, to: acquired }, sync.uncMs + 1000);
    const elapsed = (Date.now() - fmc.from) / 1000;
    expect(withEcg.json.fmcElapsedS).toBeGreaterThanOrEqual(Math.floor(elapsed - (fmc.to - fmc.from) / 1000) - 1);
    expect(withEcg.json.fmcElapsedS).toBeLessThanOrEqual(Math.ceil(elapsed) + 1);
    await sendVitals(box, 82, Date.now());
    await center.waitFor(
      () => center.events.some((e) => hrOf(e) === 82) && center.events.some((e) => e.kind === "ecg12"),
      WAIT_MS,
      "the events at the center",
    );
    everyEventPlaced(center, { from: box.startedAt, to: Date.now() });
    expect((await web.req<{ user: unknown }>("GET", "/api/session")).json.user).not.toBeNull();
    const audit = await web.req<{ rows: { action: string; at: string }[] }>("GET", "/api/audit?limit=500");
    for (const r of audit.json.rows)
      within(`audit ${r.action}`, r.at, { from: box.startedAt, to: Date.now() }, sync.uncMs + 1000);
  }, 180_000);

  it("a GPS 18 s off for its first 10 s (cold start, leap seconds not yet known), then right: nothing is stated more precisely than it is", async () => {
    const box = await startBox(-3 * 3600);
    const { web } = box;
    const gpsError = { ms: 18_000 };
    box.gps.start(() => gpsError.ms);
    await synced(box);
    const open = await timed(() => web.req<CaseView>("POST", "/api/cases", {}));
    const caseId = open.value.json.id;
    const fmc = await timed(() => web.req<CaseView>("POST", `/api/cases/${caseId}/nodes`, { node: "fmc" }));
    const early = await timed(() => sendVitals(box, 91, Date.now()));
    const wrongFor = Date.now();
    await waitFor(() => Date.now() - wrongFor > 10_000, WAIT_MS, "10 s of a wrong GPS");
    gpsError.ms = 0;
    const right = await until(
      () => timeStatus(box),
      (t) => Math.abs(t.offsetMs! - 3 * 3600_000) < 5000,
      "the GPS right again",
    );
    const late = await timed(() => sendVitals(box, 92, Date.now()));
    const c = (await web.req<CaseView>("GET", `/api/cases/${caseId}`)).json;
    // The nodes taken while the GPS was 18 s off: within what the gateway then said of its time.
    const center = await box.uplink();
    await center.waitFor(() => center.events.some((e) => hrOf(e) === 92), WAIT_MS, "the events at the center");
    const fmcEvent = center.events.find((e) => e.kind === "case" && (e.body as { node?: string }).node === "fmc")!;
    within("fmc", c.nodes.fmc, fmc, fmcEvent.time.uncMs);
    within("openedAt", c.openedAt, open, fmcEvent.time.uncMs);
    everyEventPlaced(center, { from: box.startedAt, to: Date.now() });
    within(
      "vitals recv while the GPS was wrong",
      center.events.find((e) => hrOf(e) === 91)!.time.recv,
      early,
      center.events.find((e) => hrOf(e) === 91)!.time.uncMs,
    );
    within("vitals recv once it was right", center.events.find((e) => hrOf(e) === 92)!.time.recv, late, right.uncMs);
  }, 180_000);

  it("a monitor with a backlog of buffered messages (8, 6, 4 min old, sent back to back after a link drop): each at its own time, no clock warning", async () => {
    const box = await startBox(3 * 3600);
    box.gps.start();
    await synced(box);
    const center = await box.uplink();
    // The monitor's clock is right; it has been heard live.
    const now = Date.now();
    await sendMessages(
      box,
      [0, 1, 2, 3].map((i) => ({ hr: 60 + i, measuredMs: now - 3000 + i * 1000 })),
    );
    const backlog = [8, 6, 4].map((minutes, i) => ({ hr: 70 + i, measuredMs: Date.now() - minutes * 60_000 }));
    await sendMessages(box, backlog);
    const live = await timed(() =>
      sendMessages(
        box,
        [0, 1, 2].map((i) => ({ hr: 80 + i, measuredMs: Date.now() + i })),
      ),
    );
    await center.waitFor(() => center.events.some((e) => hrOf(e) === 82), WAIT_MS, "the events at the center");
    for (const b of backlog) {
      const e = center.events.find((x) => hrOf(x) === b.hr)!;
      within(
        `buffered reading ${b.hr} at its own time`,
        e.t,
        { from: b.measuredMs, to: b.measuredMs },
        e.time.uncMs + 1000,
      );
    }
    for (const hr of [80, 81, 82])
      within(
        `live reading ${hr}`,
        center.events.find((x) => hrOf(x) === hr)!.t,
        { from: live.from - 1000, to: live.to },
        2000,
      );
    expect(
      center.events.filter((e) => e.kind === "device" && (e.body as { state?: string }).state === "clock-skew"),
    ).toEqual([]);
    const status = await timeStatus(box);
    expect(status.devices.find((d) => d.id === "monitor")).toMatchObject({ state: "ok" });
    everyEventPlaced(center, { from: box.startedAt, to: Date.now() });
  }, 180_000);

  it("a monitor 10 min fast with episodic OBX-14 values (an NIBP taken earlier, a value older than its group): readings and observation times corrected, the clock warned about", async () => {
    const box = await startBox(-3 * 3600);
    box.gps.start();
    await synced(box);
    const center = await box.uplink();
    const FAST = 600_000;
    const sent: { hr: number; measuredMs: number; hrAtMs?: number; nibpMs?: number }[] = [];
    for (let i = 0; i < 6; i++) {
      const measured = Date.now();
      const m = {
        hr: 100 + i,
        measuredMs: measured + FAST,
        hrAtMs: i === 4 ? measured - 20_000 + FAST : undefined,
        nibpMs: i % 3 === 2 ? measured - 120_000 + FAST : undefined,
      };
      sent.push(m);
      await sendMessages(box, [m]);
    }
    await center.waitFor(
      () =>
        center.events.some((e) => hrOf(e) === 105) &&
        center.events.some((e) => e.kind === "device" && e.dev.id === "monitor"),
      WAIT_MS,
      "the events and the clock warning at the center",
    );
    for (const m of sent) {
      const e = center.events.find((x) => hrOf(x) === m.hr)!;
      within(`reading ${m.hr}`, e.t, { from: m.measuredMs - FAST, to: m.measuredMs - FAST }, e.time.uncMs + 2000);
      if (m.hrAtMs !== undefined)
        within(
          `reading ${m.hr}'s own OBX-14`,
          observation(e, "MDC_ECG_HEART_RATE")!.at,
          { from: m.hrAtMs - FAST, to: m.hrAtMs - FAST },
          e.time.uncMs + 2000,
        );
      if (m.nibpMs !== undefined) {
        const nibp = nibpEvent(center, m.hr + 40)!;
        within(
          `NIBP with reading ${m.hr}`,
          nibp.t,
          { from: m.nibpMs - FAST, to: m.nibpMs - FAST },
          nibp.time.uncMs + 2000,
        );
      }
    }
    const warning = center.events.find((e) => e.kind === "device" && e.dev.id === "monitor")!;
    expect(warning.body).toMatchObject({ state: "clock-skew" });
    expect(Math.abs((warning.body as { skewMs: number }).skewMs - FAST)).toBeLessThan(3000);
    const status = await timeStatus(box);
    expect(status.devices.find((d) => d.id === "monitor")).toMatchObject({ state: "skewed" });
    everyEventPlaced(center, { from: box.startedAt, to: Date.now() });
  }, 180_000);

  it("a cart 10 min slow: its ECG is not silently put 10 min before first contact", async () => {
    const box = await startBox(0);
    const { web } = box;
    box.gps.start();
    await synced(box);
    const center = await box.uplink();
    const caseId = (await web.req<CaseView>("POST", "/api/cases", {})).json.id;
    await web.req<CaseView>("POST", `/api/cases/${caseId}/nodes`, { node: "fmc" });
    const acquired = Math.floor(Date.now() / 1000) * 1000;
    dropEcg(box, acquired - 600_000);
    await center.waitFor(
      () =>
        center.events.some((e) => e.kind === "ecg12") &&
        center.events.some((e) => e.kind === "device" && e.dev.id === "cart"),
      WAIT_MS,
      "the ECG and a word about the cart's clock",
    );
    const warning = center.events.find((e) => e.kind === "device" && e.dev.id === "cart")!;
    expect((warning.body as { state: string }).state).toMatch(/^clock-/);
    everyEventPlaced(center, { from: box.startedAt, to: Date.now() });
  }, 180_000);

  it("device local times without offset (no timezone on the device): read in the box's configured zone", async () => {
    const box = await startBox(0, { monitorTimezone: "", timeYaml: `zone: "+08:00"` });
    box.gps.start();
    await synced(box);
    const center = await box.uplink();
    const measured = Date.now() - 5000;
    const nibp = measured - 300_000;
    await sendMessages(box, [{ hr: 120, measuredMs: measured, nibpMs: nibp }], ""); // local times, no offset
    await center.waitFor(
      () => center.events.some((e) => hrOf(e) === 120) && nibpEvent(center, 160) !== undefined,
      WAIT_MS,
      "the readings at the center",
    );
    const e = center.events.find((x) => hrOf(x) === 120)!;
    within("reading in local time", e.t, { from: measured, to: measured }, e.time.uncMs + 2000);
    const n = nibpEvent(center, 160)!;
    within("NIBP 5 min earlier, local time", n.t, { from: nibp, to: nibp }, n.time.uncMs + 2000);
  }, 180_000);
});
