// Start-up with a large or damaged outbox: the listeners open as soon as the outbox can take a
// write, and SQLite's integrity check reads the file through in the background; a corruption it
// finds later is set aside (never deleted) with an alarm, and the gateway goes on in a fresh file.
// The real gateway in-process, the real HL7 driver over MLLP/TCP, SQLite on real files.
import { once } from "node:events";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { pcd01Message } from "../drivers/hl7-pcd01/synthetic.ts";
import type { AlarmBody } from "../src/events/model.ts";
import { Outbox, type CheckResult } from "../src/outbox/outbox.ts";
import { MllpSender } from "./support/mllp-sender.ts";
import { freePort } from "./support/processes.ts";
import { outboxEvents, startGateway } from "./support/rig.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** An outbox of `rows` undelivered waveform rows of 2,000 bytes each (about 2 kB × rows on disk), written fast by SQL. */
function bigOutbox(stateDir: string, rows: number): string {
  mkdirSync(stateDir, { recursive: true });
  const path = join(stateDir, "outbox.db");
  const o = new Outbox({ path, quotaBytes: 1e12, batchMax: 1000, nowMs: () => Date.now() });
  o.open();
  o.close();
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  const series = `WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < ${rows})`;
  db.exec(`${series} INSERT INTO queue (seq, id, priority, kind, evictable, size, topic, created_ms) SELECT 1000000 + i, 'w' || i, 3, 'waveform', 1, 2000, NULL, 0 FROM r;
           ${series} INSERT INTO payloads (seq, payload) SELECT 1000000 + i, randomblob(2000) FROM r;`);
  db.pragma("wal_checkpoint(TRUNCATE)");
  db.close();
  return path;
}

const message = (i: number) => pcd01Message({ controlId: `MSG${i}`, time: new Date(), values: { hr: 60 + i } });

describe("start-up with a large or damaged outbox", () => {
  it("answers a monitor before the background integrity check of a 50 MB outbox ends", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "vg-start-"));
    bigOutbox(stateDir, 25_000);
    const port = await freePort();
    const order: string[] = [];
    let checked: Promise<CheckResult> | undefined;
    const started = startGateway(
      {
        id: "gw-start",
        stateDir,
        devices: `{ id: bed1, driver: hl7-pcd01, options: { host: 127.0.0.1, port: ${port} } }`,
        beforeStart: (gw) => {
          checked = once(gw.outbox, "checked").then(([result]) => {
            order.push("check ended");
            return result as CheckResult;
          });
        },
      },
      cleanup,
    );
    // The monitor connects as soon as the port takes connections, while the gateway is still starting.
    let sender: MllpSender | undefined;
    while (!sender)
      sender = await MllpSender.connect(port).catch(
        () => new Promise<undefined>((r) => setTimeout(() => r(undefined), 5)),
      );
    cleanup.push(() => sender.close());
    expect(await sender.send(message(1))).toMatchObject({ code: "AA" });
    order.push("monitor answered");
    const { log } = await started;
    // The check was still reading the file when the monitor was answered; it then passes.
    expect(await checked).toMatchObject({ ok: true });
    expect(order).toEqual(["monitor answered", "check ended"]);
    expect(log.lines.some((l) => l.msg === "store integrity check passed")).toBe(true);
  });

  it("keeps an outbox whose check could not run (the check's process did not start): only damage sets it aside", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "vg-start-"));
    const path = bigOutbox(stateDir, 200);
    const outbox = new Outbox({
      path,
      quotaBytes: 1e12,
      batchMax: 1000,
      nowMs: () => Date.now(),
      checkExecPath: join(stateDir, "no-such-node"),
    });
    outbox.open();
    cleanup.push(() => outbox.close());
    const result = await outbox.checkIntegrity();
    expect(result).toMatchObject({ ok: false, unchecked: true });
    expect(result.reason).toMatch(/could not run/);
    // Still the same file, still holding its events.
    expect(outbox.stats().pending.reduce((a, b) => a + b, 0)).toBe(200);
    expect(existsSync(path)).toBe(true);
  });

  it("sets a file found corrupt by the background check aside, raises the alarm and goes on in a fresh one", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "vg-start-"));
    const path = bigOutbox(stateDir, 2_000);
    // Damage one page of the payloads table: the file opens and takes writes, only a read of it all finds it.
    const db = new Database(path, { readonly: true });
    const page = db
      .prepare("SELECT pageno FROM dbstat WHERE name = 'payloads' AND pagetype = 'leaf' LIMIT 1 OFFSET 500")
      .pluck()
      .get() as number;
    const pageSize = db.pragma("page_size", { simple: true }) as number;
    db.close();
    const fd = openSync(path, "r+");
    writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, (page - 1) * pageSize);
    closeSync(fd);
    const port = await freePort();
    const { gw, log } = await startGateway(
      {
        id: "gw-start",
        stateDir,
        devices: `{ id: bed1, driver: hl7-pcd01, options: { host: 127.0.0.1, port: ${port} } }`,
      },
      cleanup,
    );
    const [result] = (await once(gw.outbox, "checked")) as [CheckResult];
    expect(result.ok).toBe(false);
    await expect.poll(() => gw.status().store.setAside, { timeout: 5000 }).toMatch(/outbox\.db\.corrupt-\d+$/);
    expect(existsSync(gw.status().store.setAside!)).toBe(true);
    expect(log.codes()).toContain("VG_STORE_CORRUPT");
    await expect.poll(() => outboxEvents(gw, "alarm").length, { timeout: 5000 }).toBe(1);
    const alarms = outboxEvents<AlarmBody>(gw, "alarm");
    expect(alarms).toEqual([
      expect.objectContaining({ body: expect.objectContaining({ code: "VG_STORE_CORRUPT", state: "active" }) }),
    ]);
    // The fresh file takes the monitor's data, numbered on above the old one.
    const sender = await MllpSender.connect(port);
    cleanup.push(() => sender.close());
    expect(await sender.send(message(2))).toMatchObject({ code: "AA" });
    const [vitals] = outboxEvents(gw, "vitals");
    expect(vitals!.seq).toBeGreaterThan(alarms[0]!.seq);
    expect(alarms[0]!.seq).toBeGreaterThan(1_002_000);
  });
});
