// The astm-analyzer driver in an in-process gateway (real SQLite store) over real PTYs (socat): the
// final ACK of a message reaches the analyser only once its lab event is in the outbox; a store that
// refuses makes it a NAK; an analyser unplugged mid-message loses nothing that was acknowledged and
// is read again within 5 s of the replug, talking to the simulator.
import Database from "better-sqlite3";
import { SerialPort } from "serialport";
import { afterEach, describe, expect, it } from "vitest";
import { astmSender, syntheticBloodGasMessage } from "../drivers/astm-analyzer/synthetic.ts";
import { ACK, NAK } from "../protocols/astm/index.ts";
import type { Gateway } from "../src/gateway.ts";
import { simulator as astmSimulator } from "../drivers/astm-analyzer/simulator.ts";
import { simulate } from "../src/cli/simulate.ts";
import { waitFor } from "./support/mqtt.ts";
import { hasSocat, nullModem } from "./support/pty.ts";
import { startGateway } from "./support/rig.ts";

if (!hasSocat) console.warn("skipping astm-analyzer PTY tests: socat is not installed (apt-get install socat)");

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** A gateway with one analyser (on `path`, or on `options`), its own broker embedded, `extra` top-level YAML lines. */
const gatewayWithAnalyser = (path: string, extra = "", options = `{ port: "${path}" }`) =>
  startGateway(
    { id: "gw-astm", uplink: "embedded", extra, devices: `{ id: bg, driver: astm-analyzer, options: ${options} }` },
    cleanup,
  );

/** The analyser's end of the cable, byte by byte. */
async function analyser(path: string) {
  const port = new SerialPort({ path, baudRate: 9600, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  port.on("error", () => undefined);
  const queue: number[] = [];
  port.on("data", (d: Buffer) => queue.push(...d));
  return {
    write: (b: Uint8Array) => void port.write(Buffer.from(b)),
    async reply(timeoutMs = 5000): Promise<number | undefined> {
      const until = Date.now() + timeoutMs;
      while (queue.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      return queue.shift();
    },
    close: () => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())),
  };
}

/** The lab events in the outbox, sent to the center or not. */
function labRows(gw: Gateway): { payload: string }[] {
  const db = new Database(gw.config.store.path, { readonly: true });
  try {
    return db.prepare("SELECT payload FROM events WHERE kind = 'lab' ORDER BY seq").all() as { payload: string }[];
  } finally {
    db.close();
  }
}

describe("astm-analyzer over TCP (a serial server, or an analyser speaking ASTM over TCP)", () => {
  it("the gateway connects to the simulator and stores its synthetic blood gas", { timeout: 20_000 }, async () => {
    const stop = new AbortController();
    cleanup.push(() => stop.abort());
    let port = 0;
    const results: string[] = [];
    const sim = simulate(
      astmSimulator,
      { tcpPort: 0, onListening: (p) => (port = p) },
      {
        messages: [syntheticBloodGasMessage(Date.now(), 1), syntheticBloodGasMessage(Date.now(), 2)],
        intervalMs: 0,
        replyTimeoutMs: 2000,
        onResult: (_i, r) => results.push(r),
      },
      stop.signal,
    );
    await waitFor(() => port > 0, 5000, "the simulator listening");
    const { gw } = await gatewayWithAnalyser("", "", `{ transport: tcp, host: 127.0.0.1, tcpPort: ${port} }`);
    expect(await sim).toBe(2);
    await waitFor(() => labRows(gw).length === 2, 5000, "both stored");
    expect(results).toEqual(["accepted", "accepted"]);
    expect(gw.devices.get("bg")).toMatchObject({ events: 2, rejected: 0, refused: 0 });
  });
});

describe.skipIf(!hasSocat)("astm-analyzer over a real PTY", () => {
  it(
    "the final ACK comes only once the lab event is in the outbox; a refusing store answers NAK",
    { timeout: 30_000 },
    async () => {
      const cable = nullModem();
      await cable.plugIn();
      cleanup.push(() => cable.unplug());
      const { gw } = await gatewayWithAnalyser(
        cable.gatewayPath,
        "store: { quotaMB: 16 }\nuplink: { url: 'mqtt://127.0.0.1:1' }\n",
      );
      await waitFor(() => gw.devices.get("bg")?.state === "connected", 5000, "the port open");
      const dev = await analyser(cable.devicePath);
      cleanup.push(() => dev.close());

      const sender = astmSender(syntheticBloodGasMessage(Date.now()), 100);
      let step = sender.start();
      const replies: number[] = [];
      let frame = 0;
      while (step.then === "await-reply") {
        const final = frame === sender.frames.length; // ENQ is step 0
        if (final) expect(labRows(gw)).toHaveLength(0); // nothing stored before the last frame
        dev.write(step.send);
        const r = await dev.reply();
        if (final) {
          expect(r).toBe(ACK);
          // the ACK arrived: the event was committed before it was written
          const rows = labRows(gw);
          expect(rows).toHaveLength(1);
          const body = JSON.parse(String(rows[0]!.payload)).body;
          expect(JSON.parse(String(rows[0]!.payload)).kind).toBe("lab");
          expect(body.results.find((x: { localCode: string }) => x.localCode === "pH")).toMatchObject({
            code: "2744-1",
            value: 7.38,
          });
        }
        replies.push(r!);
        frame++;
        step = sender.reply(r);
      }
      expect(step.then).toBe("done");
      if (step.then === "done") dev.write(step.send);
      expect(replies).toEqual(Array(sender.frames.length + 1).fill(ACK));

      // Fill the store: the next message's last frame is NAKed, the ones before it still ACKed.
      for (const size of [1 << 20, 1 << 16, 1 << 12, 1 << 8, 1]) {
        for (;;) {
          const stored = await gw.ingest(gw.self, [{ kind: "ecg12", body: { pad: "x".repeat(size) } }]).then(
            () => true,
            () => false,
          );
          if (!stored) break;
        }
      }
      const second = astmSender(syntheticBloodGasMessage(Date.now(), 2), 100);
      step = second.start();
      const got: (number | undefined)[] = [];
      while (step.then === "await-reply" && got.length <= second.frames.length) {
        dev.write(step.send);
        const r = await dev.reply();
        got.push(r);
        step = second.reply(r);
      }
      expect(got.slice(0, -1).every((b) => b === ACK)).toBe(true);
      expect(got.at(-1)).toBe(NAK);
      expect(gw.devices.get("bg")).toMatchObject({ refused: 1, lastError: { code: "VG_STORE_QUOTA" } });
    },
  );

  it(
    "unplugged mid-message: nothing acknowledged is lost, and the simulator is read again within 5 s of the replug",
    { timeout: 40_000 },
    async () => {
      const cable = nullModem();
      await cable.plugIn();
      cleanup.push(() => cable.unplug());
      const { gw } = await gatewayWithAnalyser(cable.gatewayPath);
      await waitFor(() => gw.devices.get("bg")?.state === "connected", 5000, "the port open");

      // one message delivered by the simulator
      const stop = new AbortController();
      cleanup.push(() => stop.abort());
      const results: string[] = [];
      const first = simulate(
        astmSimulator,
        { path: cable.devicePath },
        {
          messages: [syntheticBloodGasMessage(Date.now(), 1)],
          intervalMs: 0,
          replyTimeoutMs: 1000,
          onResult: (_i, r) => results.push(r),
        },
        stop.signal,
      );
      expect(await first).toBe(1);
      await waitFor(() => labRows(gw).length === 1, 5000, "the first result stored");

      // the second one torn off by the unplug after three frames
      const dev = await analyser(cable.devicePath);
      const torn = astmSender(syntheticBloodGasMessage(Date.now(), 2), 100);
      let step = torn.start();
      for (let i = 0; i < 4 && step.then === "await-reply"; i++) {
        dev.write(step.send);
        step = torn.reply(await dev.reply());
      }
      await dev.close();
      await cable.unplug();
      await waitFor(() => gw.devices.get("bg")?.state === "retrying", 5000, "the unplug noticed");
      expect(labRows(gw)).toHaveLength(1);

      const pluggedAt = Date.now();
      await cable.plugIn();
      await waitFor(() => gw.devices.get("bg")?.state === "connected", 5000, "reopened after the replug");
      // the analyser sends the unfinished message again, then the next one
      let backAt = 0;
      const delivered = await simulate(
        astmSimulator,
        { path: cable.devicePath },
        {
          messages: [syntheticBloodGasMessage(Date.now(), 2), syntheticBloodGasMessage(Date.now(), 3)],
          intervalMs: 0,
          replyTimeoutMs: 1000,
          onResult: (_i, r) => (results.push(r), (backAt ||= Date.now())),
        },
        stop.signal,
      );
      expect(delivered).toBe(2);
      await waitFor(() => labRows(gw).length === 3, 5000, "all three stored");
      expect(backAt - pluggedAt).toBeLessThan(5000);
      expect(results.filter((r) => r === "accepted")).toHaveLength(3);
    },
  );
});
