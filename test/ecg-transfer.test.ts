// Killing the gateway mid-transfer of an ECG's original file, and restarting it, resumes the
// transfer: the gateway as a child process (`vitalgate start`), an ecg-cart device on a watched
// folder, mosquitto as a process, and a subscriber standing in for the county center that
// reassembles the file. The uplink goes through a loopback proxy (test/support/mqtt-gate.ts) that
// lets the ECG event and its first chunks through and then stalls, so the kill -9 lands at a known
// point: some chunks delivered and marked so, the rest sent but never acknowledged.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { part10File } from "../src/transports/dicom-scp.ts";
import { EXPLICIT_LE, syntheticEcg } from "./support/dicom.ts";
import { mqttGate } from "./support/mqtt-gate.ts";
import { connectCenter, waitFor } from "./support/mqtt.ts";
import { freePort, mosquitto, startDaemon, type Daemon } from "./support/processes.ts";

const hasMosquitto = spawnSync("mosquitto", ["-h"]).error === undefined;
if (!hasMosquitto)
  console.warn("skipping the ECG transfer test: mosquitto is not installed (apt-get install mosquitto)");

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** The outbox's chunk size (store.ts DEFAULT_BLOB_CHUNK_BYTES; not settable from the YAML). */
const CHUNK_BYTES = 64 * 1024;
/** Chunks the stalled link lets through before the kill. */
const BEFORE_KILL = 3;

describe.skipIf(!hasMosquitto)("an ECG's file across a kill -9 of the gateway", () => {
  it(
    "resumes the transfer after a restart: the center gets the whole file, and chunks delivered before the kill are not sent again",
    { timeout: 90_000 },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "vg-ecgx-"));
      const drop = join(dir, "cart");
      mkdirSync(drop);
      const broker = await mosquitto();
      cleanup.push(() => broker.stop());
      const center = await connectCenter(broker.url, "amb-12");
      cleanup.push(() => center.close());
      const gate = await mqttGate(broker.port, BEFORE_KILL);
      cleanup.push(() => gate.close());
      const webPort = await freePort();
      const configPath = join(dir, "vitalgate.yaml");
      writeFileSync(
        configPath,
        `gateway: { id: amb-12, role: ambulance }
stateDir: ${dir}/state
uplink: { url: "${gate.url}", protocolVersion: 5, backoff: { initialMs: 100, maxMs: 500 } }
web: { host: 127.0.0.1, port: ${webPort} }
log: { level: info, pretty: false }
watchedFolders: { roots: ["${dir}"] }
devices:
  - { id: cart, driver: ecg-cart, options: { dir: "${drop}", stableMs: 100, scanMs: 50 } }
`,
      );
      let daemon: Daemon = await startDaemon(configPath, webPort);
      cleanup.push(() => daemon.kill9());

      // A 60 s synthetic 12-lead ECG written as a DICOM Part 10 file: 482 KB, several chunks.
      const ecg = syntheticEcg({ seconds: 60 });
      const file = part10File(ecg.dataset, {
        sopClassUid: ecg.sopClassUid,
        sopInstanceUid: ecg.sopInstanceUid,
        transferSyntaxUid: EXPLICIT_LE,
      });
      const parts = Math.ceil(file.length / CHUNK_BYTES);
      expect(parts).toBeGreaterThanOrEqual(6);
      writeFileSync(join(drop, "ECG_0042.dcm"), file);
      await waitFor(() => existsSync(join(drop, "done/ECG_0042.dcm")), 15_000, "the ECG committed and moved to done/");

      // The link stalls after the event and BEFORE_KILL chunks; the gateway has sent more, unacknowledged.
      const chunkParts = () =>
        center.messages.filter((m) => m.topic.includes("/blob/")).map((m) => Number(m.topic.split("/").at(-2)));
      await center.waitFor(
        () => center.events.some((e) => e.kind === "ecg12") && chunkParts().length === BEFORE_KILL,
        15_000,
        "the event and the first chunks at the center",
      );
      await waitFor(() => gate.held.blobChunks > 0, 10_000, "the gateway sending the rest into the stalled link");
      // Kill once the gateway has written those deliveries down (its outbox, read beside it).
      const db = new Database(join(dir, "state/outbox.db"), { readonly: true });
      const marked = () =>
        db
          .prepare(
            "SELECT kind, count(*) AS n FROM events WHERE kind IN ('ecg12', 'blob') AND delivered_ms IS NOT NULL GROUP BY kind",
          )
          .all() as { kind: string; n: number }[];
      try {
        await waitFor(
          () => {
            const m = marked();
            return m.find((r) => r.kind === "ecg12")?.n === 1 && m.find((r) => r.kind === "blob")?.n === BEFORE_KILL;
          },
          10_000,
          "the delivered chunks marked in the outbox",
        );
      } finally {
        db.close();
      }
      const before = chunkParts();
      expect(new Set(before).size).toBe(BEFORE_KILL);
      expect(before.length).toBeLessThan(parts);
      await daemon.kill9();

      // Restart, with the link working again.
      gate.open();
      daemon = await startDaemon(configPath, webPort);
      cleanup.push(() => daemon.kill9());
      const event = center.events.find((e) => e.kind === "ecg12")!;
      await center.waitFor(() => center.original(event.id) !== undefined, 30_000, "every chunk of the ECG's file");
      const whole = center.original(event.id)!;
      expect(whole.equals(file)).toBe(true);
      expect(createHash("sha256").update(whole).digest("hex")).toBe(
        (event.body as { original: { sha256: string } }).original.sha256,
      );

      // Resumed, not restarted: what was delivered before the kill does not come again.
      const after = chunkParts().slice(before.length);
      const resent = after.filter((p) => before.includes(p));
      expect(resent).toEqual([]);
      expect(new Set([...before, ...after]).size).toBe(parts);
      expect(before.length + after.length).toBeLessThan(2 * parts);
      expect(center.events.filter((e) => e.kind === "ecg12")).toHaveLength(1);
      // The file was not picked up again after the restart.
      expect(existsSync(join(drop, "ECG_0042.dcm"))).toBe(false);
      console.log(
        `ECG file of ${parts} chunks: ${before.length} delivered before the kill -9 (${gate.held.blobChunks} more sent into the stalled link), ${after.length} after the restart, ${resent.length} sent twice`,
      );
    },
  );
});
