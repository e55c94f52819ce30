// The gateway core in-process, with a test line-protocol driver over real TCP, a real embedded
// broker and a real SQLite file: device isolation, live reconfiguration, acknowledgement after
// commit, negative acknowledgement when the store refuses, metrics and health.
import { mkdtempSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { systemClock } from "../src/time/clock.ts";
import { loadConfig } from "../src/config/load.ts";
import type { Config } from "../src/config/schema.ts";
import { Gateway } from "../src/gateway.ts";
import { createLogger } from "../src/log.ts";
import { lineDriver, pollDriver } from "./support/line-driver.ts";
import { CENTER_LOGIN, connectEmbeddedCenter, embeddedBrokerYaml, waitFor } from "./support/mqtt.ts";
import { freePort } from "./support/processes.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const findDriver = (id: string) => [lineDriver, pollDriver].find((d) => d.id === id) as never;

async function config(devices: string, extra = ""): Promise<Config> {
  const dir = mkdtempSync(join(tmpdir(), "vg-gw-"));
  const text = `gateway: { id: gw-test }\nstateDir: ${dir}\n${embeddedBrokerYaml(await freePort())}\nweb: { host: 127.0.0.1, port: ${await freePort()} }\nlog: { level: info, pretty: false }\n${extra}\ndevices:\n${devices}`;
  const r = loadConfig({ text, file: "test.yaml", drivers: findDriver });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.config;
}

async function gateway(cfg: Config) {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  const gw = new Gateway(cfg, {
    log: createLogger({ level: "info", pretty: false }, sink),
    clock: systemClock(),
    findDriver,
    secrets: { centerPassword: CENTER_LOGIN.password },
  });
  await gw.start();
  cleanup.push(() => gw.stop());
  return { gw, logs: lines };
}

/** A device speaking the line protocol: sends lines, collects replies. */
async function lineDevice(port: number) {
  const socket: Socket = connect({ port, host: "127.0.0.1" });
  await new Promise((r) => socket.once("connect", r));
  const replies: string[] = [];
  let buf = "";
  socket.on("data", (d) => {
    buf += d.toString();
    const parts = buf.split("\n");
    buf = parts.pop()!;
    replies.push(...parts);
  });
  cleanup.push(() => socket.destroy());
  return { socket, replies, send: (l: string) => socket.write(`${l}\n`) };
}

describe("gateway core", () => {
  it("answers the center's ping and resend commands, and sends requeued events again", async () => {
    const pa = await freePort();
    const cfg = await config(`  - { id: dev-a, driver: test-line, options: { port: ${pa} } }\n`);
    const { gw } = await gateway(cfg);
    const center = await connectEmbeddedCenter(cfg);
    cleanup.push(() => center.close());
    await waitFor(
      () => gw.status().uplink.state === "connected" && gw.devices.get("dev-a")?.state === "listening",
      5000,
      "uplink and listener",
    );
    const a = await lineDevice(pa);
    a.send("v 66");
    await center.waitFor(() => center.events.length === 1, 5000, "the event");
    const seq = center.events[0]!.seq;
    await waitFor(() => gw.status().queue.pending[2] === 0, 5000, "marked delivered");
    const results = () =>
      center.messages
        .filter((m) => m.topic === "vitalgate/v1/gw-test/cmd-result")
        .map((m) => JSON.parse(m.payload.toString()));
    await center.client.publishAsync("vitalgate/v1/gw-test/cmd/ping", JSON.stringify({ id: "p1" }), { qos: 1 });
    await center.client.publishAsync(
      "vitalgate/v1/gw-test/cmd/resend",
      JSON.stringify({ id: "r1", args: { fromSeq: seq } }),
      { qos: 1 },
    );
    await center.client.publishAsync(
      "vitalgate/v1/gw-test/cmd/resend",
      JSON.stringify({ id: "r2", args: { fromSeq: seq, toSeq: seq - 1 } }),
      { qos: 1 },
    );
    await center.waitFor(() => results().length === 3, 5000, "three results");
    expect(results().find((r) => r.id === "p1")).toMatchObject({
      ok: true,
      result: { pong: true, queue: [0, 0, 0, 0] },
    });
    expect(results().find((r) => r.id === "r1")).toMatchObject({ ok: true, result: { requeued: 1 } });
    expect(results().find((r) => r.id === "r2")).toMatchObject({ ok: false, error: expect.stringContaining("toSeq") });
    await center.waitFor(() => center.events.filter((e) => e.seq === seq).length === 2, 5000, "the event sent again");
  });

  it("acknowledges only what it committed, keeps one device's failures away from another, and forwards", async () => {
    const [pa, pb] = [await freePort(), await freePort()];
    const cfg = await config(
      `  - { id: dev-a, driver: test-line, options: { port: ${pa} } }\n  - { id: dev-b, driver: test-line, options: { port: ${pb} } }\n`,
    );
    const { gw } = await gateway(cfg);
    const center = await connectEmbeddedCenter(cfg);
    cleanup.push(() => center.close());
    await waitFor(() => gw.devices.list().every((d) => d.state === "listening"), 5000, "listeners");
    const a = await lineDevice(pa);
    const b = await lineDevice(pb);
    a.send("v 61");
    a.send("boom");
    a.send("bad");
    a.send("v 62");
    b.send("v 71");
    await waitFor(() => a.replies.length === 3 && b.replies.length === 1, 5000, "replies");
    expect(a.replies).toEqual(["OK 61", "ERR bad", "OK 62"]);
    expect(b.replies).toEqual(["OK 71"]);
    const devA = gw.devices.get("dev-a")!;
    expect(devA).toMatchObject({ state: "connected", frames: 4, events: 2, rejected: 2 });
    expect(devA.lastError?.code).toBe("LINE_BAD");
    expect(gw.devices.get("dev-b")).toMatchObject({ events: 1, rejected: 0 });
    await center.waitFor(() => center.events.length === 3, 5000, "3 events at the center");
    expect(
      center.events
        .map((e) => [e.dev.id, (e.body as { observations: { value: number }[] }).observations[0]!.value])
        .sort(),
    ).toEqual([
      ["dev-a", 61],
      ["dev-a", 62],
      ["dev-b", 71],
    ]);
    for (const e of center.events)
      expect(e).toMatchObject({
        v: 1,
        gw: "gw-test",
        kind: "vitals",
        dev: { driver: "test-line", kind: "monitor" },
        time: { src: "system" },
      });
  });

  it("adds, changes and removes devices while running, restarting only what changed", async () => {
    const [pa, pb, pc] = [await freePort(), await freePort(), await freePort()];
    const cfg = await config(
      `  - { id: dev-a, driver: test-line, options: { port: ${pa} } }\n  - { id: dev-b, driver: test-line, options: { port: ${pb} } }\n`,
    );
    const { gw } = await gateway(cfg);
    await waitFor(() => gw.devices.list().every((d) => d.state === "listening"), 5000, "listeners");
    const a = await lineDevice(pa);
    const next = await config(
      `  - { id: dev-a, driver: test-line, options: { port: ${pa} } }\n  - { id: dev-b, driver: test-line, options: { port: ${pc} } }\n  - { id: dev-c, driver: test-line, enabled: false, options: { port: 1 } }\n`,
    );
    const r = await gw.reload(next);
    expect(r.devices).toEqual({ started: [], stopped: [], restarted: ["dev-b"] });
    a.send("v 80"); // dev-a's connection survived the reload
    await waitFor(() => a.replies.includes("OK 80"), 5000, "dev-a still served");
    await waitFor(() => gw.devices.get("dev-b")?.state === "listening", 5000, "dev-b on its new port");
    const b = await lineDevice(pc);
    b.send("v 90");
    await waitFor(() => b.replies.includes("OK 90"), 5000, "dev-b on the new port");
    const removed = await gw.reload(await config(`  - { id: dev-b, driver: test-line, options: { port: ${pc} } }\n`));
    expect(removed.devices.stopped).toEqual(["dev-a"]);
    expect(gw.devices.list().map((d) => d.id)).toEqual(["dev-b"]);
  });

  it("reconnects to a device that serves (tcp-connect) after it goes away", async () => {
    const port = await freePort();
    const sockets: Socket[] = [];
    const serve = () => {
      const s = createServer((sock) => {
        sockets.push(sock);
        sock.write("v 55\n");
      });
      s.listen(port, "127.0.0.1");
      return s;
    };
    let server = serve();
    const cfg = await config(`  - { id: dev-srv, driver: test-line, options: { mode: connect, port: ${port} } }\n`);
    const { gw } = await gateway(cfg);
    await waitFor(() => gw.devices.get("dev-srv")?.events === 1, 5000, "first reading");
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
    await waitFor(() => gw.devices.get("dev-srv")?.state === "retrying", 5000, "retrying");
    server = serve();
    cleanup.push(
      () =>
        new Promise((r) => {
          for (const s of sockets) s.destroy();
          server.close(r);
        }),
    );
    await waitFor(() => gw.devices.get("dev-srv")?.events === 2, 10_000, "reading after reconnect");
  });

  it("lets a session speak first and poll: a request on connecting, then one every tick", async () => {
    const port = await freePort();
    const heard: string[] = [];
    let device: Socket | undefined;
    const server = createServer((sock) => {
      device = sock;
      let buf = "";
      sock.on("data", (d) => {
        buf += d.toString();
        const lines = buf.split("\n");
        buf = lines.pop()!;
        for (const l of lines) {
          heard.push(l);
          if (l.startsWith("POLL")) sock.write(`v ${60 + Number(l.split(" ")[1])}\n`);
        }
      });
    });
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", () => r()));
    cleanup.push(
      () =>
        new Promise((r) => {
          device?.destroy();
          server.close(r);
        }),
    );
    const { gw } = await gateway(await config(`  - { id: vent, driver: test-poll, options: { port: ${port} } }\n`));
    await waitFor(() => (gw.devices.get("vent")?.events ?? 0) >= 3, 5000, "three polled readings");
    expect(heard[0]).toBe("HELLO");
    expect(heard.filter((l) => l.startsWith("POLL")).slice(0, 3)).toEqual(["POLL 1", "POLL 2", "POLL 3"]);
    expect(heard).toContain("OK 61"); // each reading acknowledged after its commit
  });

  it("serves /healthz and Prometheus /metrics with queue depth and per-device counters", async () => {
    const pa = await freePort();
    const cfg = await config(
      `  - { id: dev-a, driver: test-line, options: { port: ${pa} } }\n`,
      "uplink: { url: 'mqtt://127.0.0.1:1', backoff: { initialMs: 1000, maxMs: 5000 } }\n",
    );
    const { gw } = await gateway(cfg);
    await waitFor(() => gw.devices.get("dev-a")?.state === "listening", 5000, "listener");
    const a = await lineDevice(pa);
    a.send("v 70");
    a.send("v 71");
    await waitFor(() => a.replies.length === 2, 5000, "acks");
    const base = `http://127.0.0.1:${cfg.web.port}`;
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({
      ok: true,
      uplink: expect.stringMatching(/connecting|waiting/),
      queue: [0, 0, 2, 0],
    });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/vitalgate_queue_depth\{priority="2"\} 2/);
    expect(metrics).toMatch(/vitalgate_device_events_total\{device="dev-a",driver="test-line"\} 2/);
    expect(metrics).toMatch(/vitalgate_uplink_connected 0/);
    expect(metrics).toMatch(/vitalgate_queue_oldest_age_seconds \d/);
    const status = (await (await fetch(`${base}/status`)).json()) as {
      queue: { pending: number[] };
      devices: { id: string }[];
    };
    expect(status.queue.pending).toEqual([0, 0, 2, 0]);
  });

  it("tells the device NAK when the store refuses, raises the alarm in log and metrics, and keeps running", async () => {
    const pa = await freePort();
    // The smallest quota, filled with ECGs (never evicted), leaves no room for anything.
    const cfg = await config(
      `  - { id: dev-a, driver: test-line, options: { port: ${pa} } }\n`,
      "store: { quotaMB: 16 }\nuplink: { url: 'mqtt://127.0.0.1:1' }\n",
    );
    const { gw, logs } = await gateway(cfg);
    for (const size of [1 << 20, 1 << 16, 1 << 12, 1 << 8, 1]) {
      for (;;) {
        const stored = await gw.ingest(gw.self, [{ kind: "ecg12", body: { pad: "x".repeat(size) } }]).then(
          () => true,
          () => false,
        );
        if (!stored) break;
      }
    }
    await waitFor(() => gw.devices.get("dev-a")?.state === "listening", 5000, "listener");
    const a = await lineDevice(pa);
    a.send("v 1");
    await waitFor(() => a.replies.length === 1, 5000, "reply");
    expect(a.replies[0]).toMatch(/^NAK store quota/);
    expect(gw.devices.get("dev-a")).toMatchObject({ refused: 1, lastError: { code: "VG_STORE_QUOTA" } });
    expect(logs.some((l) => l.includes("VG_STORE_QUOTA") && l.includes('"level":50'))).toBe(true);
    const metrics = await (await fetch(`http://127.0.0.1:${cfg.web.port}/metrics`)).text();
    // 5 refusals while filling, then the device's.
    expect(metrics).toMatch(/vitalgate_store_refused_total\{code="VG_STORE_QUOTA"\} 6/);
    // The first refusal raised an alarm for the center, small enough to fit where the ECG did not.
    const alarms = gw.outbox
      .pending(100)
      .filter((r) => r.kind === "alarm")
      .map((r) => JSON.parse(String(r.payload)));
    expect(alarms).toEqual([
      expect.objectContaining({
        dev: { id: "gateway", driver: "vitalgate", kind: "gateway" },
        body: expect.objectContaining({ code: "VG_STORE_QUOTA", priority: "high" }),
      }),
    ]);
    expect((await fetch(`http://127.0.0.1:${cfg.web.port}/healthz`)).status).toBe(503);
  });

  it("warns at every start of an uplink that is plain text beyond the box, or whose certificate is not checked", async () => {
    const warned = async (uplink: string) => {
      const { logs } = await gateway(
        await config("  []", `uplink: { ${uplink}, backoff: { initialMs: 60000, maxMs: 60000 } }`),
      );
      return logs
        .map((l) => JSON.parse(l) as { code?: string; msg: string })
        .filter((l) => l.code?.startsWith("VG_UPLINK_"));
    };
    expect(await warned("url: 'mqtt://192.0.2.7:1883'")).toEqual([
      expect.objectContaining({
        code: "VG_UPLINK_PLAINTEXT",
        msg: expect.stringMatching(/not encrypted .*use mqtts:\/\/ or wss:\/\//),
      }),
    ]);
    expect(await warned("url: 'mqtts://192.0.2.7:8883', rejectUnauthorized: false")).toEqual([
      expect.objectContaining({ code: "VG_UPLINK_UNVERIFIED" }),
    ]);
    expect(await warned("url: 'mqtt://127.0.0.1:1'")).toEqual([]);
  });
});
