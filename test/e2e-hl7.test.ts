// End to end with real parts: the gateway as a child process, a mosquitto broker as a process, an HL7
// sender over real MLLP/TCP, a subscriber standing in for the county center, SQLite on a real file.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import type { Envelope, VitalsBody } from "../src/events/model.ts";
import { daemonRig, hrOf, message, messagesAt, sendAll, T0 } from "./support/e2e.ts";
import { MllpSender } from "./support/mllp-sender.ts";
import { waitFor } from "./support/mqtt.ts";
import { pcd04Alarm } from "../drivers/hl7-pcd01/synthetic.ts";
import { freePort, ROOT } from "./support/processes.ts";

const hasMosquitto = spawnSync("mosquitto", ["-h"]).error === undefined;
if (!hasMosquitto) console.warn("skipping end-to-end tests: mosquitto is not installed (apt-get install mosquitto)");

/** How long the broker stays down in the outage test; the issue asks for 60 s. */
const OUTAGE_S = Number(process.env.VG_E2E_OUTAGE_S ?? 60);

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const rig = (embedded = false) => daemonRig(cleanup, { embedded });

describe.skipIf(!hasMosquitto)("end to end: HL7 monitor → gateway → mosquitto → center", () => {
  it.each([
    ["mosquitto", false],
    ["the embedded aedes broker", true],
  ])(
    "acknowledges 1,000 ORU^R01 only after commit, and the center gets 1,000 events with MDC codes, values, units and times (%s)",
    async (_name, embedded) => {
      const r = await rig(embedded);
      const acked = new Set<number>();
      const db = new Database(join(r.dir, "state/outbox.db"), { readonly: true });
      cleanup.push(() => db.close());
      await sendAll(r, 0, 1000, acked, (i) => {
        // At the moment of its AA, the message's event is already in the database file.
        if (i % 50 === 0)
          expect(
            db
              .prepare("SELECT count(*) FROM events WHERE payload LIKE ?")
              .pluck()
              .get(`%"value":${1000 + i},%`),
          ).toBe(1);
      });
      expect(acked.size).toBe(1000);
      // One ORU^R01 with two OBR groups: vitals events carry everything, with no event lost.
      await r.center.waitFor(() => messagesAt(r.center).size === 1000, 30_000, "events of all 1,000 messages");
      const e = r.center.events.find((x) => hrOf(x) === 1000 + 7)!;
      expect(e).toMatchObject({
        v: 1,
        gw: "e2e",
        kind: "vitals",
        dev: { id: "monitor-bed1", driver: "hl7-pcd01", kind: "monitor" },
      });
      const obs = r.center.events
        .filter((x) => x.time.dev === "20261123150007+0800")
        .flatMap((x) => (x.body as VitalsBody).observations);
      expect(obs).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ code: "MDC_ECG_HEART_RATE", mdc: 147842, value: 1007, unit: "/min" }),
          expect.objectContaining({ code: "MDC_PULS_OXIM_SAT_O2", mdc: 150456, value: 97, unit: "%" }),
          expect.objectContaining({ code: "MDC_PRESS_BLD_NONINV_SYS", mdc: 150021, value: 120, unit: "mm[Hg]" }),
          expect.objectContaining({ code: "MDC_PRESS_BLD_NONINV_DIA", mdc: 150022, value: 80, unit: "mm[Hg]" }),
        ]),
      );
      // t is the gateway's synchronized receive time; the monitor's own clock stays raw in time.dev.
      expect(e.time.dev).toBe("20261123150007+0800");
      expect(Math.abs(Date.parse(e.t) - Date.now())).toBeLessThan(120_000);
      const ids = r.center.events.map((x) => x.id);
      expect(new Set(ids).size).toBe(ids.length);
      // Clean stop on SIGTERM.
      expect(await r.daemon.stop()).toBe(0);
    },
    90_000,
  ); // 1,000 round trips through a child process: ~10 s here, far more on a loaded machine

  it("loses nothing that was acknowledged when the gateway is killed -9 mid-stream and restarted", async () => {
    const r = await rig();
    const acked = new Set<number>();
    let restarted: Promise<void> | undefined;
    await sendAll(r, 0, 600, acked, (i) => {
      // While the monitor goes on sending, the gateway dies at some moment between messages 250
      // and 255: in the middle of receiving, committing or acknowledging one.
      if (i === 250) {
        restarted = (async () => {
          await new Promise((res) => setTimeout(res, Math.random() * 20));
          await r.restart();
        })();
      }
    });
    await restarted;
    await r.center.waitFor(
      () => [...acked].every((i) => messagesAt(r.center).has(i)),
      30_000,
      "every acknowledged message at the center",
    );
    expect(r.daemon.output()).not.toContain("SYNTHETIC"); // no patient name in the log
    const last = r.center.messages
      .filter((m) => m.topic === "vitalgate/v1/e2e/status")
      .map((m) => JSON.parse(m.payload.toString()).state);
    expect(last).toContain("offline"); // the last will, published by the broker for the killed gateway
    expect(last.at(-1)).toBe("online");
  }, 90_000);

  it(
    `loses nothing while the broker is down for ${OUTAGE_S} s, resumes within seconds, by priority then sequence`,
    { timeout: (OUTAGE_S + 90) * 1000 },
    async () => {
      const r = await rig();
      const acked = new Set<number>();
      await sendAll(r, 0, 100, acked);
      await r.center.waitFor(() => messagesAt(r.center).size === 100, 20_000, "first 100");
      await r.broker.stop();
      const down = Date.now();
      // The monitor keeps sending; the gateway keeps accepting into its outbox.
      await sendAll(r, 100, 400, acked);
      const sender = await MllpSender.connect(r.hl7Port);
      const alarm = await sender.send(
        pcd04Alarm({
          controlId: "ALM1",
          time: new Date(T0),
          event: "196670^MDC_EVT_LO^MDC",
          text: "SpO2 low",
          priority: "PH",
          phase: "start",
          state: "active",
        }),
      );
      sender.close();
      expect(alarm.code).toBe("AA");
      const status = (await (await fetch(`http://127.0.0.1:${r.webPort}/status`)).json()) as {
        uplink: { state: string };
        queue: { pending: number[] };
      };
      expect(status.uplink.state).not.toBe("connected");
      expect(status.queue.pending[0]).toBeGreaterThanOrEqual(1);
      await new Promise((res) => setTimeout(res, Math.max(0, OUTAGE_S * 1000 - (Date.now() - down))));
      const before = r.center.events.length;
      await r.broker.start();
      const back = Date.now();
      await r.center.waitFor(() => messagesAt(r.center).size === 400, 30_000, "all 400 after the outage");
      const resumedInS = (Date.now() - back) / 1000;
      expect(resumedInS).toBeLessThan(15);
      // What the gateway queued during the outage arrives by priority (the alarm, stored last, first),
      // then by sequence. (The center may first get copies the broker had kept for it from before the
      // outage: messages 0-99 are left out of the order check.)
      const after = r.center.events.slice(before);
      const queued = after.filter((e) => e.kind === "alarm" || (hrOf(e) ?? 0) >= 1100);
      expect(queued[0]!.kind).toBe("alarm");
      const seqs = queued.filter((e) => e.kind === "vitals").map((e) => e.seq);
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    },
  );

  it("answers malformed input with AR and a reason, survives garbage and oversized frames, and keeps serving", async () => {
    const r = await rig();
    const s = await MllpSender.connect(r.hl7Port);
    cleanup.push(() => s.close());
    const bad = await s.send("MSH|^~\\&|X||Y||20261123||ORU^R01|BAD1|P|2.6\rOBX|1|NM|xx\rNONSENSE");
    expect(bad.code).toBe("AR");
    expect(bad.controlId).toBe("BAD1");
    expect(bad.text.length).toBeGreaterThan(5);
    expect(bad.raw).toContain("ERR|");
    const notHl7 = await s.send("hello, is this the ECG center?");
    expect(notHl7.code).toBe("AR");
    s.writeRaw(Buffer.from([0x00, 0xff, 0x13, 0x37, 0x42]));
    s.writeRaw(Buffer.concat([Buffer.from([0x0b]), Buffer.alloc(200_000, 0x41), Buffer.from([0x1c, 0x0d])]));
    const oversize = await s.nextAck();
    expect(oversize.code).toBe("AR");
    expect(oversize.text).toMatch(/larger than 65536/);
    const good = await s.send(message(1));
    expect(good).toMatchObject({ code: "AA", controlId: "MSG1" });
    const other = await MllpSender.connect(r.hl7Port);
    expect((await other.send(message(2))).code).toBe("AA");
    other.close();
    // A sender that dies mid-frame: the torn message was never acknowledged, so it is not stored;
    // the sender sends it again whole, and that one is.
    const torn = await MllpSender.connect(r.hl7Port);
    const whole = Buffer.concat([Buffer.from([0x0b]), Buffer.from(message(3)), Buffer.from([0x1c, 0x0d])]);
    torn.writeRaw(whole.subarray(0, Math.floor(whole.length / 2)));
    await new Promise((res) => setTimeout(res, 50));
    torn.close();
    const again = await MllpSender.connect(r.hl7Port);
    expect((await again.send(message(3))).code).toBe("AA");
    again.close();
    await r.center.waitFor(() => messagesAt(r.center).has(3), 10_000, "message 3 once whole");
    expect(r.center.events.filter((e) => hrOf(e) === 1003)).toHaveLength(1);
    expect((await fetch(`http://127.0.0.1:${r.webPort}/healthz`)).status).toBe(200);
    const dev = (
      (await (await fetch(`http://127.0.0.1:${r.webPort}/status`)).json()) as {
        devices: { id: string; rejected: number }[];
      }
    ).devices[0]!;
    expect(dev.rejected).toBeGreaterThanOrEqual(3);
  });

  it("vitalgate simulate hl7-pcd01 speaks PCD-01 over MLLP to the gateway, and its readings reach the center", async () => {
    const r = await rig();
    const sim = spawnSync(
      process.execPath,
      [
        join(ROOT, "src/cli/main.ts"),
        "simulate",
        "hl7-pcd01",
        "--port",
        String(r.hl7Port),
        "--count",
        "3",
        "--interval-ms",
        "10",
      ],
      { cwd: ROOT, encoding: "utf8" },
    );
    expect(sim.status).toBe(0);
    expect(sim.stdout.trim().split("\n")).toEqual(["message 1: AA", "message 2: AA", "message 3: AA"]);
    await r.center.waitFor(
      () => r.center.events.filter((e) => e.kind === "vitals").length >= 3,
      10_000,
      "the simulator's readings",
    );
  });

  it("applies SIGHUP: a device added to the file starts without a restart", async () => {
    const r = await rig();
    const newPort = await freePort();
    const { readFileSync } = await import("node:fs");
    writeFileSync(
      r.configPath,
      readFileSync(r.configPath, "utf8") +
        `  - id: monitor-bed2\n    driver: hl7-pcd01\n    options: { host: 127.0.0.1, port: ${newPort} }\n`,
    );
    r.daemon.child.kill("SIGHUP");
    await waitFor(() => r.daemon.output().includes("configuration reloaded"), 10_000, "reload");
    // the new device's listener comes up just after the reload is logged (the reload's audit record is written in between)
    await waitFor(
      () =>
        r.daemon
          .output()
          .split("\n")
          .some((l) => l.includes('"device":"monitor-bed2"') && l.includes('"msg":"listening"')),
      10_000,
      "bed 2's listener",
    );
    const s = await MllpSender.connect(newPort);
    expect((await s.send(message(5))).code).toBe("AA");
    s.close();
    await r.center.waitFor(() => r.center.events.some((e) => e.dev.id === "monitor-bed2"), 10_000, "bed 2's event");
  });
});

describe("command line", () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [join(ROOT, "src/cli/main.ts"), ...args], { cwd: ROOT, encoding: "utf8" });

  it("config check rejects a bad file listing every error with its path and line, and accepts a good one", () => {
    const bad = cli("config", "check", "test/fixtures/config/many-errors.yaml");
    expect(bad.status).toBe(1);
    const lines = bad.stderr.trim().split("\n");
    expect(lines.filter((l) => /many-errors\.yaml:\d+:\d+ /.test(l)).length).toBeGreaterThanOrEqual(6);
    // (The ambulance and clinic examples name secret files under /etc/vitalgate that only a
    // provisioned box has; test/config.test.ts validates them with those reads stubbed.)
    const ok = cli("config", "check", "config/demo.yaml");
    expect(ok.stderr).toBe("");
    expect(ok.stdout).toMatch(/valid \(1 device\)/);
    expect(ok.status).toBe(0);
  });

  it("reports a misspelt driver option with its line, alongside the file's other errors", () => {
    const dir = mkdtempSync(join(tmpdir(), "vg-cfg-"));
    const file = join(dir, "typo.yaml");
    writeFileSync(
      file,
      "gateway: { id: t1 }\ndevices:\n  - id: m1\n    driver: hl7-pcd01\n    options: { prot: 2575 }\n  - id: m2\n    driver: hl7-pcd01\n    options: { port: x }\n",
    );
    const r = cli("config", "check", file);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /typo\.yaml:5:\d+ devices\[0\]\.options\.prot: unknown key "prot" \(did you mean "port"\?\)/,
    );
    expect(r.stderr).toMatch(/typo\.yaml:8:\d+ devices\[1\]\.options\.port: /);
  });

  it("start refuses an invalid config with exit 2 and the errors", () => {
    const r = cli("start", "--config", "test/fixtures/config/many-errors.yaml");
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/many-errors\.yaml:\d+:\d+/);
  });

  it("decode prints the events of a capture as NDJSON", () => {
    const dir = mkdtempSync(join(tmpdir(), "vg-decode-"));
    const file = join(dir, "capture.hl7");
    writeFileSync(file, [message(1), message(2)].join("\n"));
    const r = cli("decode", "--driver", "hl7-pcd01", "--options", '{"timezone":"+08:00"}', file);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const events = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Envelope);
    expect(events.map(hrOf).filter(Boolean)).toEqual([1001, 1002]);
    expect(events.every((e) => e.dev.driver === "hl7-pcd01")).toBe(true);
  });

  it("config schema prints the JSON Schema the committed file holds", () => {
    const r = cli("config", "schema");
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(
      JSON.parse(execFileSync("cat", [join(ROOT, "config/vitalgate.schema.json")], { encoding: "utf8" })),
    );
  });
});
