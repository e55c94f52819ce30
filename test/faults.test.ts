// The fault suite, end to end with real parts (test/support/e2e.ts): faults at the edges of the
// gateway, each asserting that what a device was told was accepted reaches the center.
import { readEventMessage } from "../src/uplink/wire.ts";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { AlarmBody } from "../src/events/model.ts";
import { pcd04Alarm } from "../drivers/hl7-pcd01/synthetic.ts";
import {
  EXPLICIT_LE,
  RawScu,
  responseStatus,
  syntheticEcg,
  TWELVE_LEAD_ECG,
  type SyntheticEcg,
} from "./support/dicom.ts";
import { waitFor } from "./support/mqtt.ts";
import { freePort } from "./support/processes.ts";
import { daemonRig, hrOf, messagesAt, sendAll, T0, type Rig } from "./support/e2e.ts";
import { mqttGate, type MqttGate } from "./support/mqtt-gate.ts";

const hasMosquitto = spawnSync("mosquitto", ["-h"]).error === undefined;
if (!hasMosquitto) console.warn("skipping the fault suite: mosquitto is not installed (apt-get install mosquitto)");

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** kill -9 of the gateway at a random moment within 20 ms, then its start again; the monitor keeps resending meanwhile. */
const restartSoon = async (r: Rig) => {
  await new Promise((res) => setTimeout(res, Math.random() * 20));
  await r.restart();
};

describe.skipIf(!hasMosquitto)("faults, end to end", () => {
  it(
    "loses nothing acknowledged AA when the broker is killed -9 mid-stream and restarted with its persistence",
    { timeout: 60_000 },
    async () => {
      const r = await daemonRig(cleanup);
      // The center's persistent session (its subscription) must be in the broker's persistence file
      // before the crash, or the restarted broker has no one to queue for until the center is back: a
      // loss of the broker's, not the gateway's. mosquitto saves it within its 1 s autosave interval.
      const subscribed = Date.now();
      await waitFor(
        () => existsSync(join(r.dir, "mosquitto.db")) && statSync(join(r.dir, "mosquitto.db")).mtimeMs > subscribed,
        5000,
        "the broker's autosave of the center's session",
      );
      const acked = new Set<number>();
      let restarted: Promise<void> | undefined;
      await sendAll(r, 0, 400, acked, (i) => {
        // The broker dies while the monitor goes on sending and the gateway is forwarding; it comes
        // back on its port a moment later from its last autosave, as after a crash under systemd.
        if (i === 150) {
          restarted = (async () => {
            await r.broker.kill();
            await new Promise((res) => setTimeout(res, 500));
            await r.broker.start();
          })();
        }
      });
      await restarted;
      // Duplicates are allowed (the center dedups by event id); a gap is not.
      const missing = () => [...acked].filter((i) => !messagesAt(r.center).has(i));
      await r.center
        .waitFor(() => missing().length === 0, 30_000, "every acknowledged message at the center")
        .catch((e: Error) => {
          throw new Error(`${e.message}: missing ${missing().join(", ")}`);
        });
      expect(acked.size).toBe(400);
      expect(r.daemon.output()).toContain("uplink down"); // the gateway did lose the broker
      const status = (await (await fetch(`http://127.0.0.1:${r.webPort}/status`)).json()) as {
        uplink: { state: string };
      };
      expect(status.uplink.state).toBe("connected");
    },
  );

  it(
    "delivers every ORU^R40 alarm acknowledged AA when the gateway is killed -9 mid-stream and restarted",
    { timeout: 60_000 },
    async () => {
      const r = await daemonRig(cleanup);
      // Alarm i names itself in its text; its control id is MSG<i>, as sendAll expects.
      const alarm = (i: number) =>
        pcd04Alarm({
          controlId: `MSG${i}`,
          time: new Date(T0 + i * 1000),
          event: "196670^MDC_EVT_LO^MDC",
          text: `SpO2 low ${i}`,
          priority: "PH",
          phase: "start",
          state: "active",
        });
      const alarmsAt = () =>
        new Set(
          r.center.events
            .filter((e) => e.kind === "alarm")
            .map((e) => Number((e.body as AlarmBody).text.split(" ").at(-1))),
        );
      const acked = new Set<number>();
      let restarted: Promise<void> | undefined;
      await sendAll(
        r,
        0,
        200,
        acked,
        (i) => {
          if (i === 80) restarted = restartSoon(r);
        },
        alarm,
      );
      await restarted;
      expect(acked.size).toBe(200);
      await r.center.waitFor(
        () => [...acked].every((i) => alarmsAt().has(i)),
        30_000,
        "every acknowledged alarm at the center",
      );
      const e = r.center.events.find((x) => x.kind === "alarm")!;
      expect(e.body).toMatchObject({ priority: expect.any(String), state: expect.any(String) });
      const states = r.center.messages
        .filter((m) => m.topic === "vitalgate/v1/e2e/status")
        .map((m) => JSON.parse(m.payload.toString()).state);
      expect(states).toContain("offline"); // the killed gateway's last will: it did die
    },
  );

  it(
    "delivers an ECG whose DICOM C-STORE got success, its file byte for byte, when the gateway is killed -9 at that response",
    { timeout: 60_000 },
    async () => {
      const scpPort = await freePort();
      const r = await daemonRig(cleanup, {
        devices: `  - { id: cart, driver: ecg-cart, options: { source: dicom, host: 127.0.0.1, port: ${scpPort}, aeTitle: VG_E2E } }\n`,
      });
      const ecgs = [syntheticEcg(), syntheticEcg()];
      // A cart's C-STORE, written by hand so that the data set's bytes are exactly the ones sent.
      const store = async (ecg: SyntheticEcg, onSuccess?: () => void) => {
        const { scu, results } = await RawScu.associate(scpPort, "VG_E2E", [
          { abstract: TWELVE_LEAD_ECG, syntaxes: [EXPLICIT_LE] },
        ]);
        cleanup.push(() => scu.close());
        expect(results.get(1)).toBe(0);
        scu.store(1, ecg);
        expect(responseStatus((await scu.next())!)).toEqual({ status: 0x0000 });
        onSuccess?.();
        scu.close();
      };
      // The first: the gateway dies the moment the cart has its success, before it could forward much.
      let killed: Promise<void> | undefined;
      await store(ecgs[0]!, () => (killed = r.daemon.kill9()));
      await killed;
      await r.restart();
      // The second, after the restart: the SCP is back on its port.
      await store(ecgs[1]!);
      const ecgEvents = () => r.center.events.filter((e) => e.kind === "ecg12");
      const fileOf = (sop: string) => {
        for (const e of ecgEvents()) {
          const file = r.center.original(e.id);
          if (file?.includes(sop, 0, "latin1")) return { e, file };
        }
        return undefined;
      };
      await r.center.waitFor(
        () => ecgs.every((x) => fileOf(x.sopInstanceUid)),
        30_000,
        "both ECGs and every chunk of their files",
      );
      for (const x of ecgs) {
        const { e, file } = fileOf(x.sopInstanceUid)!;
        const original = (e.body as { original: { bytes: number; sha256: string } }).original;
        expect(file.length).toBe(original.bytes);
        expect(createHash("sha256").update(file).digest("hex")).toBe(original.sha256);
        // The Part 10 file is the meta header and the data set the cart sent, unchanged.
        expect(file.subarray(file.length - x.dataset.length).equals(x.dataset)).toBe(true);
      }
    },
  );

  it(
    "sends again after a kill -9, in receipts mode, every event acknowledged but not receipted, until the center receipts it",
    { timeout: 60_000 },
    async () => {
      const r = await daemonRig(cleanup, { uplink: "  receipts: true\n  receiptTimeoutS: 10\n" });
      const acked = new Set<number>();
      await sendAll(r, 0, 50, acked);
      // Each event has come once, and the broker acknowledged it; the center has receipted none.
      await r.center.waitFor(() => messagesAt(r.center).size === 50, 20_000, "the first copies");
      const idOf = new Map(r.center.events.filter((e) => hrOf(e) !== undefined).map((e) => [hrOf(e)! - 1000, e.id]));
      await r.restart();
      const queued = async () =>
        (
          (await (await fetch(`http://127.0.0.1:${r.webPort}/status`)).json()) as { queue: { pending: number[] } }
        ).queue.pending.reduce((a, b) => a + b, 0);
      expect(await queued()).toBeGreaterThanOrEqual(50); // acknowledged by the broker, but still waiting for their receipts
      const since = r.center.events.length;
      // From now on the center stores and receipts whatever it gets.
      r.center.client.on("message", (topic, payload) => {
        // Read as docs/protocol.md says (gunzip, a batch is an array); the receipt names every event of the message.
        if (topic.startsWith("vitalgate/v1/e2e/ev/"))
          r.center.client.publish(
            "vitalgate/v1/e2e/receipt",
            JSON.stringify({ ids: readEventMessage(topic, payload).map((e) => e.id) }),
            { qos: 1 },
          );
      });
      const resent = () => new Set(r.center.events.slice(since).map((e) => e.id));
      await r.center.waitFor(
        () => [...acked].every((i) => resent().has(idOf.get(i)!)),
        40_000,
        "every unreceipted event sent again, the same event",
      );
      // Receipted, they leave the queue: nothing waits any more.
      let pending: number | undefined;
      await waitFor(
        () => {
          void queued().then(
            (n) => (pending = n),
            () => undefined,
          );
          return pending === 0;
        },
        20_000,
        "an empty queue once receipted",
      );
    },
  );

  it(
    "loses nothing when the gateway is killed -9 with a batch published and not yet acknowledged (uplink.compact)",
    { timeout: 60_000 },
    async () => {
      // The link lets the first batch through, then holds back everything after it, unacknowledged.
      let gate: MqttGate | undefined;
      const r = await daemonRig(cleanup, {
        via: async (port) => {
          gate = await mqttGate(port, 1, (topic) => topic.endsWith("/ev/batch"));
          cleanup.push(() => gate!.close());
          return gate.url;
        },
      });
      const acked = new Set<number>();
      await sendAll(r, 0, 150, acked);
      await waitFor(() => gate!.held.blobChunks > 0, 20_000, "a batch sent into the stalled link");
      const before = messagesAt(r.center);
      expect(before.size).toBeGreaterThan(0); // the first batch went through
      expect(before.size).toBeLessThan(150);
      gate!.open();
      await r.restart();
      await r.center.waitFor(
        () => [...acked].every((i) => messagesAt(r.center).has(i)),
        30_000,
        "every acknowledged message at the center",
      );
      // In batches, as the center reads them.
      expect(r.center.messages.filter((m) => m.topic === "vitalgate/v1/e2e/ev/batch").length).toBeGreaterThan(1);
    },
  );
});
