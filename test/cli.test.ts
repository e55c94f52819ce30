// The command line over the registry: `vitalgate decode`'s ECG outputs for whatever driver decoded a
// 12-lead ECG, and `vitalgate simulate` for whatever driver brings a simulator (src/cli/main.ts names
// no driver).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { drivers } from "../drivers/registry.ts";
import { main } from "../src/cli/main.ts";
import { simulators, simulatorSynopsis } from "../src/cli/simulate.ts";
import { waitFor } from "./support/mqtt.ts";
import { ROOT, freePort } from "./support/processes.ts";

const dir = mkdtempSync(join(tmpdir(), "vg-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) } };
}

describe("vitalgate decode --aecg/--svg", () => {
  it("writes the ECG a capture decoded to as HL7 aECG and SVG", async () => {
    const r = io();
    const aecg = join(dir, "cart.xml");
    const svg = join(dir, "cart.svg");
    const file = join(ROOT, "test/fixtures/ecg/twelve-lead-implicit-vr.dcm");
    const argv = ["decode", "--driver", "ecg-cart", "--options", '{"dir":"-"}', file, "--aecg", aecg, "--svg", svg];
    expect(await main(argv, r.io)).toBe(0);
    expect(JSON.parse(r.out.join(""))).toMatchObject({ kind: "ecg12", body: { format: "dicom-ecg" } });
    expect(readFileSync(aecg, "utf8")).toMatch(/<AnnotatedECG[\s>]/);
    expect(readFileSync(svg, "utf8")).toMatch(/^<svg|<\?xml/);
  });

  it("says so, exit 1, when the capture decoded to no 12-lead ECG", async () => {
    const r = io();
    const file = join(ROOT, "test/fixtures/hl7/pcd01-basic.hl7");
    expect(await main(["decode", "--driver", "hl7-pcd01", file, "--svg", join(dir, "no.svg")], r.io)).toBe(1);
    expect(r.err.join("")).toContain("--aecg/--svg: the capture decoded to no 12-lead ECG file this build reads");
  });
});

describe("vitalgate simulate", () => {
  it("lists every simulator a driver of the registry brings, with its flags, also in the usage text", async () => {
    const list = await simulators(drivers);
    expect(list.map((s) => s.id)).toEqual(drivers.filter((d) => d.simulator).map((d) => d.id));
    expect(list.length).toBeGreaterThanOrEqual(5);
    const r = io();
    expect(await main(["simulate"], r.io)).toBe(0);
    const usage = io();
    expect(await main(["--help"], usage.io)).toBe(2);
    for (const { id, simulator } of list) {
      expect(r.out.join("")).toContain(simulatorSynopsis(id, simulator));
      expect(usage.err.join("")).toContain(simulatorSynopsis(id, simulator));
    }
    expect(r.out.join("")).toContain(
      "vitalgate simulate nmea-gps (--port PATH [--baud B] | --tcp-port P [--host H]) [--log FILE] [--count N]",
    );
  });

  it("README's command list names exactly the registry's simulators", async () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const named = [...readme.matchAll(/^vitalgate simulate (\S+)/gm)].map((m) => m[1]);
    expect(named).toEqual((await simulators(drivers)).map((s) => s.id));
  });

  it("refuses flags a simulator does not take, a missing place and an unknown device, exit 2", async () => {
    const cases: [string[], string][] = [
      [["simulate", "datex-s5", "--port", "/dev/null", "--baud", "9600"], "simulate datex-s5: it takes no --baud"],
      [["simulate", "nmea-gps", "--count", "3"], "give --port PATH (a serial port or PTY) or --tcp-port 0-65535"],
      [["simulate", "hl7-pcd01", "--port", "70000"], "simulate hl7-pcd01: --port must be 1-65535"],
      [["simulate", "astm-analyzer", "--tcp-port", "0", "--interval-ms=-1"], "--interval-ms must not be negative"],
      [["simulate", "nmea-gps", "--tcp-port", "0", "--log", join(dir, "absent.nmea")], "cannot read --log"],
      [["simulate", "ecg-cart"], 'no simulator "ecg-cart"; simulators: hl7-pcd01,'],
    ];
    for (const [argv, said] of cases) {
      const r = io();
      expect(await main(argv, r.io), argv.join(" ")).toBe(2);
      expect(r.err.join(""), argv.join(" ")).toContain(said);
    }
  });

  it("runs a simulator from its flags: a GPS receiver as a serial server on TCP, --count epochs", async () => {
    const r = io();
    const done = main(["simulate", "nmea-gps", "--tcp-port", "0", "--count", "2"], r.io);
    await waitFor(() => /listening on tcp port \d+/.test(r.err.join("")), 5000, "the simulator listening");
    const port = Number(/listening on tcp port (\d+)/.exec(r.err.join(""))![1]);
    const client = connect({ port, host: "127.0.0.1" });
    const heard: Buffer[] = [];
    client.on("data", (d: Buffer) => heard.push(d));
    expect(await done).toBe(0);
    // the last burst may have gone out just before the line closed: it is on its way
    await waitFor(() => /^\$GPRMC,/m.test(Buffer.concat(heard).toString("latin1")), 5000, "a burst at the client");
    client.destroy();
    expect(r.err.join("")).toContain(
      "simulating a GPS receiver on tcp 127.0.0.1:0: a synthetic drive (15 m/s due east",
    );
    expect(r.err.join("")).toMatch(/\n[12] epoch\(s\) sent\n$/);
  });
});

describe("vitalgate health", () => {
  it("exits 1 naming the address when no gateway answers there (the installer waits on it)", async () => {
    const port = await freePort();
    const config = join(dir, "health.yaml");
    writeFileSync(
      config,
      `gateway: { id: health }\nstateDir: ${dir}/health-state\nweb: { host: 127.0.0.1, port: ${port} }\n`,
    );
    const r = io();
    expect(await main(["health", "--config", config], r.io)).toBe(1);
    expect(r.err.join("")).toContain(`http://127.0.0.1:${port}/healthz: connect ECONNREFUSED`);
  });
});
