// The pairing API over real HTTP, on a running gateway, with real sessions: a technician pairs an
// HL7 monitor that connected unannounced, edits and removes it; every change is audited; bodies are
// checked with the field named; viewers and strangers are turned away; a probe on a real PTY that
// hears nothing says so and writes nothing.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { pcd01Message } from "../drivers/hl7-pcd01/synthetic.ts";
import { NOT_PAIRED } from "../src/pairing/senders.ts";
import { MllpSender } from "./support/mllp-sender.ts";
import { waitFor } from "./support/mqtt.ts";
import { freePort } from "./support/processes.ts";
import { hasSocat, nullModem, openDeviceEnd } from "./support/pty.ts";
import { outboxEvents, startGateway, type RigOptions } from "./support/rig.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

interface Session {
  cookie: string;
  csrf: string;
}

/** A client of the gateway's web API: with a session, its cookie and CSRF token go with every request. */
function client(base: string, session?: Session) {
  return async (method: string, url: string, body?: unknown) => {
    const res = await fetch(`${base}${url}`, {
      method,
      headers: {
        ...(session ? { cookie: session.cookie, "x-csrf-token": session.csrf } : {}),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status,
      body: text
        ? (JSON.parse(text) as Record<string, unknown> & { error?: { code: string; field?: string; message: string } })
        : {},
      headers: res.headers,
    };
  };
}

async function signIn(base: string, url: string, body: unknown): Promise<Session> {
  const res = await fetch(`${base}${url}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  const { csrf } = (await res.json()) as { csrf: string };
  return { cookie: res.headers.get("set-cookie")!.split(";")[0]!, csrf };
}

/** A started gateway watching `port` for unpaired senders, its admin, a technician and a viewer. */
async function rig(id: string, pairing: string, more: Partial<RigOptions> = {}) {
  const { gw } = await startGateway({ id, devices: "  []", pairing, ...more }, cleanup);
  const base = `http://127.0.0.1:${gw.config.web.port}`;
  const admin = await signIn(base, "/api/setup", { username: "admin", password: "correct horse battery 1" });
  /** A user the admin adds, after the first login's password change (asked before anything else). */
  const user = async (username: string, role: string) => {
    expect(
      (await client(base, admin)("POST", "/api/users", { username, password: "initial password 1", role })).status,
    ).toBe(201);
    const session = await signIn(base, "/api/login", { username, password: "initial password 1" });
    expect(
      (
        await client(base, session)("POST", "/api/password", {
          current: "initial password 1",
          password: "another good password 2",
        })
      ).status,
    ).toBe(200);
    return client(base, session);
  };
  const tech = await user("tech", "technician");
  const viewer = await user("view", "viewer");
  return { gw, base, admin: client(base, admin), tech, viewer, anonymous: client(base) };
}

let n = 0;
const oru = () =>
  pcd01Message({ controlId: `R${++n}`, time: new Date(), values: { hr: 64, spo2: 99 }, eui64: "0012A3FFFE0000CC" });

describe("the pairing API", () => {
  it("lets a technician pair an unannounced HL7 monitor, edit it and remove it, each change audited", async () => {
    const port = await freePort();
    const r = await rig("gw-proutes", `{ listen: [${port}], listenHost: 127.0.0.1 }`);
    const monitor = await MllpSender.connect(port);
    expect(await monitor.send(oru())).toMatchObject({ code: "AE", text: NOT_PAIRED });

    const senders = await r.tech("GET", "/api/pairing/senders");
    expect(senders.status).toBe(200);
    const [sender] = senders.body as unknown as {
      key: string;
      identity: Record<string, string>;
      suggestion: { driver: string; options: Record<string, unknown> };
    }[];
    expect(sender!.identity.sendingApplication).toBe("SIM_MONITOR^0012A3FFFE0000CC^EUI-64");

    const paired = await r.tech("POST", "/api/devices", {
      id: "bed5",
      name: "5床监护仪",
      location: "5床",
      driver: sender!.suggestion.driver,
      options: { ...sender!.suggestion.options, host: "127.0.0.1" },
    });
    expect(paired.status).toBe(201);
    expect(paired.body).toMatchObject({
      id: "bed5",
      name: "5床监护仪",
      location: "5床",
      driver: "hl7-pcd01",
      enabled: true,
      pairedBy: "tech",
    });
    await waitFor(() => monitor.closed, 5000, "the watch to let go of the monitor");
    await waitFor(() => r.gw.devices.get("bed5")?.state === "listening", 5000, "the paired monitor's listener");
    const again = await MllpSender.connect(port);
    cleanup.push(() => again.close());
    expect((await again.send(oru())).code).toBe("AA");
    expect(outboxEvents(r.gw, "vitals").map((e) => e.dev.id)).toEqual(["bed5"]);
    expect((await r.viewer("GET", "/api/devices")).body).toEqual([
      expect.objectContaining({ id: "bed5", source: "paired", location: "5床" }),
    ]);
    const drivers = (await r.viewer("GET", "/api/drivers")).body as unknown as {
      id: string;
      probe?: { bauds: number[] };
    }[];
    expect(drivers.find((d) => d.id === "nmea-gps")?.probe).toEqual({
      bauds: [9600, 4800, 38400, 19200, 57600, 115200],
    });
    expect(drivers.find((d) => d.id === "datex-s5")?.probe).toBeUndefined();

    expect((await r.viewer("GET", "/api/devices/paired")).status).toBe(403);
    expect((await r.tech("GET", "/api/devices/paired")).body).toEqual([paired.body]);
    const edited = await r.tech("PUT", "/api/devices/bed5", {
      id: "bed5",
      name: "5床",
      driver: "hl7-pcd01",
      options: { host: "127.0.0.1", port },
    });
    expect(edited).toMatchObject({ status: 200, body: { name: "5床", pairedBy: "tech" } });
    expect(edited.body.location).toBeUndefined();
    expect(await r.tech("DELETE", "/api/devices/bed5")).toMatchObject({ status: 200, body: { ok: true } });
    expect(r.gw.devices.get("bed5")).toBeUndefined();

    const audit = await r.admin("GET", "/api/audit?limit=20");
    const rows = (
      audit.body.rows as { actor: string; action: string; target?: string; result: string; detail?: unknown }[]
    ).filter((x) => x.action.startsWith("device."));
    expect(rows.map(({ actor, action, target, result }) => ({ actor, action, target, result }))).toEqual([
      { actor: "tech", action: "device.remove", target: "bed5", result: "ok" },
      { actor: "tech", action: "device.edit", target: "bed5", result: "ok" },
      { actor: "tech", action: "device.pair", target: "bed5", result: "ok" },
    ]);
    expect(JSON.stringify(rows)).not.toContain("SIM0001"); // the monitor's patient id never reaches the audit trail
  });

  it("names the field of a bad body, refuses taken ids, unlisted ports, strangers and viewers, and audits refused changes", async () => {
    const r = await rig("gw-proutes2", "{ listen: [] }");
    const bad = await r.tech("POST", "/api/devices", {
      id: "gps",
      name: "GPS",
      driver: "nmea-gps",
      options: { port: "/dev/ttyUSB0", baudRate: 1234 },
    });
    expect(bad).toMatchObject({ status: 400, body: { error: { code: "VG_INVALID", field: "options.baudRate" } } });
    expect(
      (await r.tech("POST", "/api/devices", { id: "Bad Id", name: "x", driver: "hl7-pcd01" })).body.error,
    ).toMatchObject({ field: "id" });
    expect((await r.tech("POST", "/api/devices", { id: "m", name: "x", driver: "no-such" })).body.error).toMatchObject({
      field: "driver",
    });
    expect((await r.tech("POST", "/api/devices", [])).status).toBe(400);
    expect((await r.tech("PUT", "/api/devices/nobody", { id: "nobody", name: "x", driver: "hl7-pcd01" })).status).toBe(
      404,
    );
    expect((await r.tech("POST", "/api/pairing/probe", { path: "/etc/passwd" })).body.error).toMatchObject({
      code: "VG_NOT_A_PORT",
      field: "path",
    });
    expect((await r.tech("POST", "/api/pairing/probe", { path: "/dev/ttyUSB0", extra: 1 })).body.error).toMatchObject({
      code: "VG_INVALID",
    });
    expect((await r.anonymous("POST", "/api/devices", { id: "m", name: "x", driver: "hl7-pcd01" })).status).toBe(401);
    expect((await r.viewer("POST", "/api/devices", { id: "m", name: "x", driver: "hl7-pcd01" })).status).toBe(403);
    expect((await r.anonymous("GET", "/api/pairing/ports")).status).toBe(401);
    expect((await r.tech("GET", "/api/devices/paired")).body).toEqual([]);
    const rows = (
      (await r.admin("GET", "/api/audit?limit=50")).body.rows as {
        action: string;
        result: string;
        detail?: { code?: string };
      }[]
    ).filter((x) => x.action === "device.pair");
    expect(rows[rows.length - 1]).toMatchObject({ result: "failed", detail: { code: "VG_INVALID" } });
  });
});

describe("watched folders a technician may pair (issue 13 item 1)", () => {
  it("refuses the state directory, its parent, its children, a symlink into it, /proc and folders outside the roots, 400 naming the rule; the box keeps its databases", async () => {
    const base = mkdtempSync(join(tmpdir(), "vg-roots-"));
    const stateDir = join(base, "state");
    mkdirSync(join(base, "carts"));
    symlinkSync(stateDir, join(base, "carts", "innocent"));
    const r = await rig("gw-roots", "{ listen: [] }", { stateDir, watchedFolders: `{ roots: ["${base}"] }` });
    const pair = (id: string, dir: string) =>
      r.tech("POST", "/api/devices", {
        id,
        name: "心电图机",
        driver: "ecg-cart",
        options: { dir, stableMs: 100, scanMs: 50 },
      });
    const before = readdirSync(stateDir).sort();
    for (const [dir, rule] of [
      [stateDir, /is, holds or lies in the gateway's state directory/],
      [base, /is, holds or lies in the gateway's state directory/],
      [join(stateDir, "inbox"), /is, holds or lies in the gateway's state directory/],
      [join(base, "carts", "innocent"), /state directory .*\(it leads to .*state\)/],
      ["/proc/self", /kernel/],
      [mkdtempSync(join(tmpdir(), "vg-elsewhere-")), /outside the folders IT allows \(watchedFolders\.roots: /],
      ["carts/relative", /absolute path/],
    ] as const) {
      const res = await pair("cart", dir);
      expect(res, dir).toMatchObject({
        status: 400,
        body: { error: { code: "VG_FOLDER_NOT_ALLOWED", field: "options.dir", message: expect.stringMatching(rule) } },
      });
    }
    expect(r.gw.devices.get("cart")).toBeUndefined();
    expect(readdirSync(stateDir).sort()).toEqual(before);
    expect(existsSync(join(stateDir, "rejected"))).toBe(false);

    const ok = await pair("cart", join(base, "carts", "bay-1"));
    expect(ok.status).toBe(201);
    await waitFor(() => r.gw.devices.get("cart")?.state === "listening", 5000, "the allowed folder watched");

    // each attempt is audited with the options asked for (the folder, never a file's content)
    const rows = (
      (await r.admin("GET", "/api/audit?limit=50")).body.rows as {
        action: string;
        result: string;
        detail?: { code?: string; options?: { dir?: string } };
      }[]
    ).filter((x) => x.action === "device.pair");
    expect(rows.filter((x) => x.result === "failed").map((x) => x.detail)).toContainEqual({
      code: "VG_FOLDER_NOT_ALLOWED",
      driver: "ecg-cart",
      options: { dir: stateDir, stableMs: 100, scanMs: 50 },
    });
    expect(rows[0]).toMatchObject({
      result: "ok",
      detail: { driver: "ecg-cart", options: { dir: join(base, "carts", "bay-1") } },
    });
  });

  it("never runs a saved paired device that watches the state directory (an old file): refused at start, with an alarm", async () => {
    const base = mkdtempSync(join(tmpdir(), "vg-roots-old-"));
    const stateDir = join(base, "state");
    mkdirSync(stateDir);
    const device = {
      id: "cart",
      name: "心电图机",
      driver: "ecg-cart",
      enabled: true,
      options: { dir: stateDir, stableMs: 100, scanMs: 50 },
      pairedBy: "tech",
      pairedAt: "2026-01-01T00:00:00.000Z",
    };
    writeFileSync(join(stateDir, "paired-devices.json"), JSON.stringify({ version: 1, devices: [device] }));
    const { gw } = await startGateway(
      { id: "gw-roots-old", devices: "  []", stateDir, watchedFolders: `{ roots: ["${base}"] }` },
      cleanup,
    );
    expect(gw.devices.get("cart")).toMatchObject({ state: "faulted", lastError: { code: "VG_FOLDER_NOT_ALLOWED" } });
    await waitFor(() => outboxEvents(gw, "alarm").length > 0, 5000, "the alarm");
    expect(outboxEvents<{ code: string; text: string }>(gw, "alarm")[0]!.body).toMatchObject({
      code: "VG_FOLDER_NOT_ALLOWED",
      text: expect.stringMatching(/^device cart not started: folder .* state directory/),
    });
    expect(existsSync(join(stateDir, "rejected"))).toBe(false);
    expect(existsSync(join(stateDir, "paired-devices.json"))).toBe(true);
  });
});

describe("what a technician may reach (issue 13 item 10)", () => {
  it("pairs and previews only listed serial ports and the networks and ports IT allows: the page is no port scanner", async () => {
    const allowedPort = await freePort();
    const quiet = createServer((socket) => socket.on("error", () => undefined)).listen(allowedPort, "127.0.0.1");
    cleanup.push(() => new Promise((r) => quiet.close(r)));
    const r = await rig("gw-reach", `{ listen: [], connectNetworks: ["127.0.0.0/8"], connectPorts: [${allowedPort}] }`);
    const serialServer = (host: string, tcpPort: number) => ({
      driver: "astm-analyzer",
      options: { transport: "tcp", host, tcpPort },
      ms: 200,
    });

    expect(
      (
        await r.tech("POST", "/api/devices", {
          id: "gps",
          name: "GPS",
          driver: "nmea-gps",
          options: { port: "/etc/passwd" },
        })
      ).body.error,
    ).toMatchObject({ code: "VG_NOT_A_PORT", field: "options.port" });
    for (const [host, port, rule] of [
      ["10.20.30.40", 22, /10\.20\.30\.40 is not on a network IT allows .*127\.0\.0\.0\/8/],
      ["127.0.0.1", 22, /port 22 of 127\.0\.0\.1 is not one IT allows/],
      ["localhost", allowedPort, /IP address, not a name/],
    ] as const) {
      const preview = await r.tech("POST", "/api/pairing/preview", serialServer(host, port));
      expect(preview, `${host}:${port}`).toMatchObject({
        status: 400,
        body: {
          error: { code: "VG_ADDRESS_NOT_ALLOWED", field: "options.host", message: expect.stringMatching(rule) },
        },
      });
      const pair = await r.tech("POST", "/api/devices", {
        id: "lab",
        name: "血气",
        ...serialServer(host, port),
        ms: undefined,
      });
      expect(pair.body.error, `${host}:${port}`).toMatchObject({ code: "VG_ADDRESS_NOT_ALLOWED" });
    }
    expect(await r.tech("POST", "/api/pairing/preview", serialServer("127.0.0.1", allowedPort))).toMatchObject({
      status: 200,
      body: { bytes: 0 },
    });
    expect((await r.tech("GET", "/api/devices/paired")).body).toEqual([]);
  });

  it("keeps the box's databases, paired devices and logins readable by its own user only (0600)", async () => {
    const { gw, config } = await startGateway({ id: "gw-modes", uplink: "embedded", devices: "  []" }, cleanup);
    await gw.pairing.add(
      { id: "bed1", name: "1床", driver: "hl7-pcd01", options: { host: "127.0.0.1", port: await freePort() } },
      "tech",
    );
    gw.audit?.record({ actor: "tech", action: "test.write", result: "ok" });
    const files = readdirSync(config.stateDir)
      .filter((f) =>
        /^(local|outbox)\.db(-wal|-shm)?$|^paired-devices\.json$|^broker-credentials\.json$|\.seq$/.test(f),
      )
      .sort();
    expect(files).toEqual([
      "broker-credentials.json",
      "local.db",
      "local.db-shm",
      "local.db-wal",
      "outbox.db",
      "outbox.db-shm",
      "outbox.db-wal",
      "outbox.db.seq",
      "paired-devices.json",
    ]);
    for (const f of files) expect((statSync(join(config.stateDir, f)).mode & 0o777).toString(8), f).toBe("600");
  });
});

describe.skipIf(!hasSocat)("the probe route", () => {
  it("probes a listed PTY that is silent: every speed tried says so, the polled drivers are offered by hand, nothing is written", async () => {
    const cable = nullModem();
    await cable.plugIn();
    cleanup.push(() => cable.unplug());
    const device = await openDeviceEnd(cable.devicePath);
    cleanup.push(() => device.close());
    const heard: Buffer[] = [];
    device.port.on("data", (d: Buffer) => heard.push(d));
    const r = await rig("gw-proutes3", `{ listen: [], serialPaths: ["${cable.gatewayPath}"], probeMs: 150 }`);
    expect((await r.tech("GET", "/api/pairing/ports")).body).toContainEqual({ path: cable.gatewayPath });
    const res = await r.tech("POST", "/api/pairing/probe", {
      path: cable.gatewayPath,
      drivers: ["astm-analyzer", "datex-s5"],
    });
    expect(res.status).toBe(200);
    const results = res.body.results as { driver: string; baudRate: number; verdict: string }[];
    expect(results.map((x) => `${x.driver}@${x.baudRate}:${x.verdict}`)).toEqual(
      [9600, 19200, 4800, 2400, 1200, 38400].map((b) => `astm-analyzer@${b}:silent`),
    );
    expect(res.body.best).toBeUndefined();
    expect(res.body.manual).toEqual([
      {
        driver: "datex-s5",
        options: { transport: "serial", port: cable.gatewayPath },
        why: expect.stringMatching(/only when polled/),
      },
    ]);
    expect(heard).toEqual([]);
  });
});
