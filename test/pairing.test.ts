// Pairing devices (issue 6): the paired-devices file, the listen-only probe on a real PTY, the watch
// for unpaired network senders over real TCP, and the gateway running config and paired devices
// together, live, across a restart.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { findDriver } from "../drivers/registry.ts";
import { pcd01Message } from "../drivers/hl7-pcd01/synthetic.ts";
import { syntheticDrive } from "../drivers/nmea-gps/synthetic.ts";
import { PairingError } from "../src/pairing/index.ts";
import { NOT_PAIRED } from "../src/pairing/senders.ts";
import { loadPairedDevices, pairedDevicesPath, savePairedDevices, type PairedDevice } from "../src/pairing/store.ts";
import { simulator as nmeaGpsSimulator } from "../drivers/nmea-gps/simulator.ts";
import { simulate } from "../src/cli/simulate.ts";
import { cEcho } from "./support/dicom.ts";
import { MllpSender } from "./support/mllp-sender.ts";
import { waitFor } from "./support/mqtt.ts";
import { freePort } from "./support/processes.ts";
import { hasSocat, nullModem } from "./support/pty.ts";
import { outboxEvents, startGateway } from "./support/rig.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const monitor = (id: string, port: number): PairedDevice => ({
  id,
  name: "床旁监护仪",
  driver: "hl7-pcd01",
  location: "3床",
  enabled: true,
  options: { port } as Record<string, unknown>,
  pairedBy: "tech",
  pairedAt: "2026-11-23T10:00:00.000Z",
});

/** What a PairingError-throwing call throws, as code and field. */
async function refusal(
  p: Promise<unknown>,
): Promise<{ code: string; field?: string; status: number; message: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof PairingError)) throw new Error(`expected a PairingError, got ${String(err)}`);
  return { code: err.code, field: err.field, status: err.status, message: err.message };
}

let controlIds = 0;
const oru = (eui = "0012A3FFFE0000AA") =>
  pcd01Message({ controlId: `P${++controlIds}`, time: new Date(), values: { hr: 72, spo2: 97 }, eui64: eui });

describe("the paired-devices file", () => {
  const dir = () => mkdtempSync(join(tmpdir(), "vg-paired-"));

  it("is written whole and read back, with no temporary file left", () => {
    const path = pairedDevicesPath(dir());
    savePairedDevices(path, [monitor("m1", 2575)]);
    expect(loadPairedDevices(path, findDriver, 0)).toEqual({ devices: [monitor("m1", 2575)] });
    expect(readdirSync(join(path, ".."))).toEqual(["paired-devices.json"]);
  });

  it("is never written in place: a save that fails leaves the old file as it was", () => {
    const d = dir();
    const path = pairedDevicesPath(d);
    savePairedDevices(path, [monitor("m1", 2575)]);
    const before = readFileSync(path, "utf8");
    mkdirSync(join(d, `.paired-devices.json.${process.pid}.tmp`)); // the temporary file cannot be made
    expect(() => savePairedDevices(path, [monitor("m2", 2576)])).toThrow(/EISDIR/);
    expect(readFileSync(path, "utf8")).toBe(before);
  });

  it("sets a half-written or invalid file aside, naming the path and the field, and loads nothing", () => {
    const d = dir();
    const path = pairedDevicesPath(d);
    writeFileSync(path, '{ "version": 1, "devices": [ { "id": "m1", "na');
    const half = loadPairedDevices(path, findDriver, 1000);
    expect(half.devices).toEqual([]);
    expect(half.setAside?.path).toBe(`${path}.bad-1000`);
    expect(half.setAside?.reason).toMatch(/^paired-devices\.json: not readable as JSON/);
    expect(existsSync(path)).toBe(false);
    expect(existsSync(`${path}.bad-1000`)).toBe(true);

    writeFileSync(
      path,
      JSON.stringify({ version: 1, devices: [{ ...monitor("m1", 2575), driver: "nmea-gps", options: {} }] }),
    );
    const bad = loadPairedDevices(path, findDriver, 2000);
    expect(bad.devices).toEqual([]);
    expect(bad.setAside?.reason).toContain(
      "devices[0].options.port: the serial port is required with transport serial",
    );
  });
});

describe("pairing on a running gateway", () => {
  it("keeps running its config devices when the paired file is bad, and says where it was put", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "vg-pairbad-"));
    writeFileSync(pairedDevicesPath(stateDir), "{ not json");
    const port = await freePort();
    const { gw, log } = await startGateway(
      {
        id: "gw-pairbad",
        stateDir,
        devices: `{ id: mon, driver: hl7-pcd01, options: { host: 127.0.0.1, port: ${port} } }`,
      },
      cleanup,
    );
    expect(gw.devices.list().map((d) => d.id)).toEqual(["mon"]);
    const line = log.lines.find((l) => l.code === "VG_PAIRED_FILE_INVALID");
    expect(line?.setAside).toMatch(/paired-devices\.json\.bad-\d+$/);
    expect(gw.pairing.list()).toEqual([]);
  });

  it("refuses ids of config devices, invalid options and taken ports, naming the field", async () => {
    const port = await freePort();
    const { gw } = await startGateway(
      { id: "gw-pairchk", devices: `{ id: mon, driver: hl7-pcd01, options: { host: 127.0.0.1, port: ${port} } }` },
      cleanup,
    );
    expect(
      await refusal(
        gw.pairing.add({ id: "mon", name: "x", driver: "hl7-pcd01", options: { port: await freePort() } }, "tech"),
      ),
    ).toMatchObject({ code: "VG_DEVICE_ID_TAKEN", field: "id", status: 409 });
    expect(
      await refusal(
        gw.pairing.add({ id: "gps", name: "GPS", driver: "nmea-gps", options: { baudRate: 9601 } }, "tech"),
      ),
    ).toMatchObject({ code: "VG_INVALID", field: "options.baudRate" });
    expect(
      await refusal(gw.pairing.add({ id: "gps", driver: "nmea-gps", options: { port: "/dev/ttyUSB0" } }, "tech")),
    ).toMatchObject({ code: "VG_INVALID", field: "name" });
    expect(
      await refusal(gw.pairing.add({ id: "mon2", name: "x", driver: "hl7-pcd01", options: { port } }, "tech")),
    ).toMatchObject({ code: "VG_PORT_IN_USE", field: "options.port" });
    expect(await refusal(gw.pairing.remove("mon"))).toMatchObject({ code: "VG_DEVICE_CONFIGURED", status: 409 });
    expect(await refusal(gw.pairing.remove("nobody"))).toMatchObject({ code: "VG_NOT_FOUND", status: 404 });
    expect(existsSync(pairedDevicesPath(gw.config.stateDir))).toBe(false);
  });

  it("starts a paired device at once, keeps it over a config reload and a restart, restarts only it when edited, stops it when removed", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "vg-pairlife-"));
    const [cfgPort, pairedPort] = [await freePort(), await freePort()];
    const devices = `{ id: mon, driver: hl7-pcd01, options: { host: 127.0.0.1, port: ${cfgPort} } }`;
    const first = await startGateway({ id: "gw-pairlife", stateDir, devices }, cleanup);
    const device = {
      id: "bed3",
      name: "3床监护仪",
      location: "3床",
      driver: "hl7-pcd01",
      options: { host: "127.0.0.1", port: pairedPort },
    };
    const paired = await first.gw.pairing.add(device, "tech");
    expect(paired).toMatchObject({ ...device, enabled: true, pairedBy: "tech" });
    await waitFor(() => first.gw.devices.get("bed3")?.state === "listening", 5000, "the paired monitor's listener");
    const s = await MllpSender.connect(pairedPort);
    expect((await s.send(oru())).code).toBe("AA");
    s.close();

    // a config change keeps the paired device running, untouched
    const reloaded = await first.gw.reload({ ...first.config, devices: [] });
    expect(reloaded.devices).toEqual({ started: [], stopped: ["mon"], restarted: [] });
    expect(first.gw.devices.get("bed3")).toBeDefined();
    expect(first.gw.pairing.deviceInfo("bed3")).toEqual({ source: "paired", location: "3床" });
    await first.gw.stop();
    cleanup.splice(0);

    const second = await startGateway({ id: "gw-pairlife", stateDir, devices }, cleanup);
    expect(second.gw.pairing.list()).toEqual([paired]);
    await waitFor(
      () => second.gw.devices.get("bed3")?.state === "listening" && second.gw.devices.get("mon")?.state === "listening",
      5000,
      "both devices after the restart",
    );
    const monSince = second.gw.devices.get("mon")!.since;

    await second.gw.pairing.update("bed3", { ...device, name: "3床" }, "nurse");
    expect(second.gw.pairing.list()[0]).toMatchObject({ name: "3床", pairedBy: "nurse" });
    expect(second.gw.devices.get("mon")!.since).toBe(monSince);
    expect(await refusal(second.gw.pairing.update("bed3", { ...device, id: "bed4" }, "nurse"))).toMatchObject({
      code: "VG_INVALID",
      field: "id",
    });

    await second.gw.pairing.remove("bed3");
    expect(second.gw.devices.get("bed3")).toBeUndefined();
    expect(JSON.parse(readFileSync(pairedDevicesPath(stateDir), "utf8"))).toEqual({ version: 1, devices: [] });
    // the port is free again: it can be listened on (a connection attempt could meet itself, TCP self-connect)
    const probe = createServer();
    await new Promise<void>((resolve, reject) => probe.once("error", reject).listen(pairedPort, "127.0.0.1", resolve));
    await new Promise((r) => probe.close(r));
  });
});

describe("unpaired network senders", () => {
  it("answers an unannounced HL7 monitor AE, shows it with its MSH-3 and a preview; once paired, its next message is accepted and stored", async () => {
    const port = await freePort();
    const { gw } = await startGateway(
      { id: "gw-senders", devices: "  []", pairing: `{ listen: [${port}], listenHost: 127.0.0.1 }` },
      cleanup,
    );
    const s = await MllpSender.connect(port);
    const ack = await s.send(oru());
    expect(ack.code).toBe("AE");
    expect(ack.text).toBe(NOT_PAIRED);
    expect((await s.send(oru())).code).toBe("AE"); // it sends again later: still not taken
    const [sender] = gw.pairing.senders();
    expect(sender).toMatchObject({
      protocol: "hl7",
      port,
      remote: "127.0.0.1",
      messages: 2,
      identity: { sendingApplication: "SIM_MONITOR^0012A3FFFE0000AA^EUI-64" },
      suggestion: { driver: "hl7-pcd01", options: { port } },
    });
    expect(sender!.preview[0]).toMatchObject({
      kind: "vitals",
      body: {
        observations: expect.arrayContaining([expect.objectContaining({ code: "MDC_ECG_HEART_RATE", value: 72 })]),
      },
    });
    expect(outboxEvents(gw, "vitals")).toEqual([]); // nothing stored before pairing

    await gw.pairing.add(
      {
        id: "bed1",
        name: "1床",
        driver: sender!.suggestion!.driver,
        options: { ...sender!.suggestion!.options, host: "127.0.0.1" },
      },
      "tech",
    );
    // the watch let go of the port for the device: the monitor's connection closed, it connects again
    await waitFor(() => s.closed, 5000, "the watch to close the unpaired connection");
    expect(gw.pairing.senders()).toEqual([]);
    await waitFor(() => gw.devices.get("bed1")?.state === "listening", 5000, "the paired monitor's listener");
    const again = await MllpSender.connect(port);
    cleanup.push(() => again.close());
    expect((await again.send(oru())).code).toBe("AA");
    const stored = outboxEvents<{ observations: { code: string; value: number }[] }>(gw, "vitals");
    expect(stored.map((e) => e.dev.id)).toEqual(["bed1"]);
    expect(stored[0]!.body.observations).toContainEqual(
      expect.objectContaining({ code: "MDC_ECG_HEART_RATE", value: 72 }),
    );
  });

  it("rejects a DICOM cart's association as transient and records its AE titles; closes garbage and keeps watching", async () => {
    const port = await freePort();
    const { gw, log } = await startGateway(
      { id: "gw-senders2", devices: "  []", pairing: `{ listen: [${port}], listenHost: 127.0.0.1 }` },
      cleanup,
    );
    const echo = await cEcho(port, { calledAe: "VITALGATE", callingAe: "CART-7" });
    // PS3.8 §9.3.4: result 2 rejected-transient, source 3, reason 1 temporary-congestion
    expect(echo.rejected).toEqual({ result: 2, source: 3, reason: 1 });
    expect(gw.pairing.senders()).toEqual([
      expect.objectContaining({
        protocol: "dicom",
        messages: 1,
        identity: { calledAeTitle: "VITALGATE", callingAeTitle: "CART-7" },
        suggestion: {
          driver: "ecg-cart",
          options: { source: "dicom", port, aeTitle: "VITALGATE", callingAeTitles: ["CART-7"] },
        },
      }),
    ]);

    const junk = connect({ host: "127.0.0.1", port });
    junk.on("error", () => undefined);
    await new Promise((r) => junk.once("connect", r));
    junk.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    await new Promise((r) => junk.once("close", r));
    expect(log.lines).toContainEqual(
      expect.objectContaining({
        code: "VG_PAIRING_REFUSED",
        msg: expect.stringMatching(/refused 1 connection from 1 address: VG_PAIRING_UNKNOWN: not HL7/),
      }),
    );

    const s = await MllpSender.connect(port);
    cleanup.push(() => s.close());
    expect((await s.send(oru("0012A3FFFE0000BB"))).code).toBe("AE");
    expect(
      gw.pairing
        .senders()
        .map((x) => x.protocol)
        .sort(),
    ).toEqual(["dicom", "hl7"]);
  });
});

describe.skipIf(!hasSocat)("probing a serial port", () => {
  it("finds a GPS sending at 9600 on a real PTY without writing to it, and the paired GPS then reports positions", async () => {
    const cable = nullModem();
    await cable.plugIn();
    cleanup.push(() => cable.unplug());
    const heard: Uint8Array[] = [];
    const stop = new AbortController();
    const startMs = Math.ceil(Date.now() / 1000) * 1000;
    const sim = simulate(
      nmeaGpsSimulator,
      { path: cable.devicePath, baudRate: 9600 },
      { epochs: syntheticDrive({ startMs, epochs: Infinity }), startMs, onData: (d) => heard.push(d) },
      stop.signal,
    );
    cleanup.push(async () => {
      stop.abort();
      await sim;
    });
    const { gw } = await startGateway(
      {
        id: "gw-probe",
        devices: "  []",
        pairing: `{ listen: [], serialPaths: ["${join(cable.gatewayPath, "..")}/gateway-*"], probeMs: 2500 }`,
      },
      cleanup,
    );
    expect(gw.pairing.ports()).toContainEqual({ path: cable.gatewayPath });

    const probing = gw.pairing.probe(cable.gatewayPath);
    expect(await refusal(gw.pairing.probe(cable.gatewayPath))).toMatchObject({ code: "VG_PORT_BUSY", status: 409 });
    const result = await probing;
    expect(result.best).toEqual({
      driver: "nmea-gps",
      options: { transport: "serial", port: cable.gatewayPath, baudRate: 9600 },
    });
    const nmea = result.results.find((r) => r.driver === "nmea-gps")!;
    expect(nmea).toMatchObject({ baudRate: 9600, verdict: "match", errors: expect.any(Number) });
    expect(nmea.ok).toBeGreaterThanOrEqual(3);
    expect(nmea.sample[0]).toMatchObject({ kind: "position", body: { fix: "3d" } });
    // the analyser driver shares the line setting and heard the same bytes: not its protocol
    const astm = result.results.find((r) => r.driver === "astm-analyzer")!;
    expect(astm).toMatchObject({ baudRate: 9600, verdict: "noise", answered: 0, events: 0 });
    expect(astm.errors).toBeGreaterThan(0);
    expect(result.manual.map((m) => m.driver).sort()).toEqual(["datex-s5", "medibus-vent"]);
    expect(Buffer.concat(heard).length).toBe(0); // listen-only: not one byte went to the device

    await gw.pairing.add(
      { id: "gps", name: "车载 GPS", location: "车载", driver: result.best!.driver, options: result.best!.options },
      "crew",
    );
    await waitFor(() => outboxEvents(gw, "position").length > 0, 10_000, "a position from the paired GPS");
    expect(gw.pairing.ports()).toContainEqual({ path: cable.gatewayPath, usedBy: "gps" });
    expect(await refusal(gw.pairing.probe(cable.gatewayPath))).toMatchObject({ code: "VG_PORT_IN_USE", status: 409 });
  });
});
