// A 12-lead ECG dropped into the cart's folder while 100,000 vitals wait for an uplink that is
// down: when the uplink returns, the center has the ECG, and its whole original file, before the
// backlog has drained (DESIGN §5: a new ECG never waits behind hours of queued vitals).
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { openBroker } from "./support/broker.ts";
import { systemClock } from "../src/time/clock.ts";
import { loadConfig } from "../src/config/load.ts";
import { Gateway } from "../src/gateway.ts";
import { createLogger } from "../src/log.ts";
import { findDriver } from "../drivers/registry.ts";
import { ownFixture } from "./fixtures/ecg/files.ts";
import { cStore, syntheticEcg } from "./support/dicom.ts";
import { connectCenter, connectEmbeddedCenter, embeddedBrokerYaml, waitFor } from "./support/mqtt.ts";
import { freePort } from "./support/processes.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe("ECG intake through the ecg-cart driver", () => {
  it("takes a 12-lead ECG a cart pushes by DICOM C-STORE, answers success once committed, and the center gets leads and file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vg-ecg-"));
    const scpPort = await freePort();
    const brokerPort = await freePort();
    const text = `gateway: { id: clinic-3 }
stateDir: ${dir}/state
${embeddedBrokerYaml(brokerPort)}
web: { host: 127.0.0.1, port: ${await freePort()} }
devices:
  - { id: cart, driver: ecg-cart, options: { source: dicom, host: 127.0.0.1, port: ${scpPort}, aeTitle: VG_CLINIC3 } }
`;
    const r = loadConfig({ text, drivers: findDriver });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const gw = new Gateway(r.config, {
      log: createLogger(
        { level: "silent", pretty: false },
        new Writable({
          write(_c, _e, cb) {
            cb();
          },
        }),
      ),
      clock: systemClock(),
      findDriver,
      secrets: r.secrets,
    });
    await gw.start();
    cleanup.push(() => gw.stop());
    const center = await connectEmbeddedCenter(r.config);
    cleanup.push(() => center.close());
    await waitFor(() => gw.devices.get("cart")?.state === "listening", 5000, "the SCP listening");
    const ecg = syntheticEcg();
    const store = await cStore(scpPort, ecg.dataset, { calledAe: "VG_CLINIC3" });
    expect(store.status).toBe(0x0000);
    await center.waitFor(() => center.events.some((e) => e.kind === "ecg12"), 10_000, "the ECG event");
    const event = center.events.find((e) => e.kind === "ecg12")!;
    const body = event.body as {
      format: string;
      leads: { name: string }[];
      original: { contentType: string; sha256: string };
    };
    expect(body.format).toBe("dicom-ecg");
    expect(body.leads).toHaveLength(12);
    expect(body.original.contentType).toBe("application/dicom");
    expect(event.dev).toMatchObject({ id: "cart", driver: "ecg-cart", kind: "ecg-cart" });
  });

  it("sends a dropped ECG, and its file, ahead of a 100,000-event backlog", { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "vg-ecg-"));
    const drop = join(dir, "cart");
    const uplinkPort = await freePort();
    const text = `gateway: { id: amb-07, role: ambulance }
stateDir: ${dir}/state
uplink: { url: "mqtt://127.0.0.1:${uplinkPort}", protocolVersion: 4, backoff: { initialMs: 100, maxMs: 300 } }
web: { host: 127.0.0.1, port: ${await freePort()} }
watchedFolders: { roots: ["${dir}"] }
devices:
  - { id: cart, driver: ecg-cart, options: { dir: "${drop}", stableMs: 100, scanMs: 50 } }
`;
    const r = loadConfig({ text, drivers: findDriver });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const gw = new Gateway(r.config, {
      log: createLogger(
        { level: "silent", pretty: false },
        new Writable({
          write(_c, _e, cb) {
            cb();
          },
        }),
      ),
      clock: systemClock(),
      findDriver,
      secrets: {},
    });
    await gw.start();
    cleanup.push(() => gw.stop());

    // The backlog: 100,000 vitals from a monitor while the uplink is down.
    const monitor = { id: "monitor", driver: "hl7-pcd01", kind: "monitor" as const };
    for (let i = 0; i < 100; i++) {
      await gw.ingest(
        monitor,
        Array.from({ length: 1000 }, (_, j) => ({
          kind: "vitals" as const,
          body: {
            observations: [{ code: "MDC_ECG_HEART_RATE", mdc: 147842, value: 60 + ((i + j) % 40), unit: "/min" }],
          },
        })),
      );
    }
    expect(gw.status().queue.pending[2]).toBe(100_000);

    // The ECG: the cart writes a DICOM file into its export folder.
    const file = ownFixture("general-ecg-8lead-explicit.dcm");
    writeFileSync(join(drop, "ECG_0001.dcm"), file);
    await waitFor(() => existsSync(join(drop, "done/ECG_0001.dcm")), 10_000, "the ECG committed");

    // The uplink comes back.
    const broker = await openBroker("127.0.0.1", uplinkPort);
    cleanup.push(() => broker.close());
    const center = await connectCenter(broker.url, "amb-07");
    cleanup.push(() => center.close());
    await center.waitFor(() => center.events.some((e) => e.kind === "ecg12"), 30_000, "the ECG at the center");
    const ecgAt = center.events.findIndex((e) => e.kind === "ecg12");
    const ecg = center.events[ecgAt]!;
    const sha256 = (ecg.body as { original: { sha256: string } }).original.sha256;
    await center.waitFor(() => center.original(ecg.id) !== undefined, 10_000, "the ECG's file, every chunk");
    const vitalsBeforeFile = center.events.length - 1;
    const parts = Number(
      center.messages
        .find((m) => m.topic.startsWith(`vitalgate/v1/amb-07/blob/${ecg.id}/`))!
        .topic.split("/")
        .at(-1),
    );
    const whole = center.original(ecg.id)!;
    expect(createHash("sha256").update(whole).digest("hex")).toBe(sha256);
    expect(whole.equals(Buffer.from(file))).toBe(true);
    // Ahead of the backlog: at most an in-flight window of vitals went before it.
    expect(ecgAt).toBeLessThanOrEqual(64);
    expect(vitalsBeforeFile).toBeLessThan(1000);
    console.log(
      `ECG arrived after ${ecgAt} vitals of the 100,000 backlog; its file, ${parts} chunk(s), after ${vitalsBeforeFile}`,
    );
  });
});
