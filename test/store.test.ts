import { existsSync, mkdtempSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { Outbox, type Gap, type OutboxOptions } from "../src/outbox/outbox.ts";
import { StoreRefusedError } from "../src/errors.ts";
import { stampedEvent, vitals } from "./support/events.ts";
import { canMountTmpfs, fillDisk, mountTmpfs } from "./support/tmpfs.ts";

const opened: Outbox[] = [];
function outbox(options: Partial<OutboxOptions> = {}, dir = mkdtempSync(join(tmpdir(), "vg-store-"))): Outbox {
  const o = new Outbox({
    path: join(dir, "outbox.db"),
    quotaBytes: 64 * 1024 * 1024,
    batchMax: 1000,
    nowMs: () => Date.now(),
    ...options,
  });
  opened.push(o);
  return o;
}
afterEach(() => {
  for (const o of opened.splice(0)) o.close();
});

describe("outbox", () => {
  it("assigns strictly increasing sequence numbers that survive a reopen and are never reused", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vg-store-"));
    const a = outbox({ nowMs: () => 5_000 }, dir);
    a.open();
    const first = await a.append([vitals(70), vitals(71)]);
    // A new outbox starts above the clock's Unix milliseconds: above anything numbered before it.
    expect(first.map((e) => e.seq)).toEqual([5001, 5002]);
    a.markDelivered([5001, 5002]);
    a.purgeDelivered(Date.now() + 1);
    a.close();
    const b = outbox({ nowMs: () => 0 }, dir);
    b.open();
    const [next] = await b.append([vitals(72)]);
    // A restart continues above the reservation written a block ahead (at most 100,000 skipped).
    expect(next!.seq).toBe(5001 + 100_000 + 1);
  });

  it("never reuses a number when an older copy of the database is restored from a backup", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vg-store-"));
    const a = outbox({ nowMs: () => 1_000 }, dir);
    a.open();
    await a.append([vitals(1)]);
    a.close();
    const backup = readFileSync(join(dir, "outbox.db"));
    const b = outbox({ nowMs: () => 1_000 }, dir);
    b.open();
    // Past a reservation block (100,000), so the reservation rewritten while appending is what holds.
    const later = await b.append(Array.from({ length: 101_000 }, (_, i) => vitals(i)));
    b.close();
    for (const f of ["outbox.db-wal", "outbox.db-shm"]) if (existsSync(join(dir, f))) unlinkSync(join(dir, f));
    writeFileSync(join(dir, "outbox.db"), backup);
    const c = outbox({ nowMs: () => 1_000 }, dir);
    c.open();
    const [next] = await c.append([vitals(2)]);
    expect(next!.seq).toBeGreaterThan(later.at(-1)!.seq);
  });

  it("never reuses a number after its database is destroyed, even with a clock gone back to 1970", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vg-store-"));
    const a = outbox({ nowMs: () => 9_000_000 }, dir);
    a.open();
    const before = await a.append([vitals(70), vitals(71)]);
    a.close();
    writeFileSync(join(dir, "outbox.db"), Buffer.alloc(8192, 0x5a)); // unreadable: nothing to salvage
    const b = outbox({ nowMs: () => 1_000 }, dir);
    expect(b.open().setAside).toBeTruthy();
    const [next] = await b.append([vitals(72)]);
    expect(next!.seq).toBeGreaterThan(before[1]!.seq);
    expect(readFileSync(join(dir, "outbox.db.seq"), "utf8").trim()).toBe(String(next!.seq + 100_000));
  });

  it("opens read-only beside a running writer without touching the file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vg-store-"));
    const w = outbox({}, dir);
    w.open();
    await w.append([vitals(1), stampedEvent("alarm")]);
    const r = outbox({}, dir);
    expect(r.open("readonly")).toEqual({});
    expect(r.stats().pending).toEqual([1, 0, 1, 0]);
    await expect(r.append([vitals(2)])).rejects.toThrow();
    expect(readdirSync(dir).some((f) => f.includes("corrupt"))).toBe(false);
  });

  it("groups concurrent appends into one transaction and keeps each message's events together", async () => {
    const o = outbox();
    o.open();
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => o.append([vitals(60 + i), vitals(60 + i)])));
    const seqs = results.flatMap((r) => r.map((e) => e.seq));
    expect(seqs).toEqual(Array.from({ length: 100 }, (_, i) => seqs[0]! + i));
    for (const r of results) expect(r[1]!.seq).toBe(r[0]!.seq + 1);
  });

  it("stores the envelope exactly as it will be published", async () => {
    const o = outbox();
    o.open();
    const [env] = await o.append([stampedEvent("vitals", { observations: [] }, Date.now(), "20261123-0007")]);
    const [row] = o.pending(10);
    expect(JSON.parse(String(row!.payload))).toEqual(env);
    expect(Object.keys(JSON.parse(String(row!.payload)))).toEqual([
      "v",
      "id",
      "seq",
      "gw",
      "dev",
      "case",
      "kind",
      "t",
      "time",
      "body",
    ]);
  });

  it("hands out pending events by priority, then sequence", async () => {
    const o = outbox();
    o.open();
    const stored = await o.append([
      stampedEvent("waveform"),
      vitals(70),
      stampedEvent("case"),
      vitals(71),
      stampedEvent("ecg12"),
      stampedEvent("alarm"),
    ]);
    expect(o.pending(10).map((r) => [r.priority, r.kind])).toEqual([
      [0, "ecg12"],
      [0, "alarm"],
      [1, "case"],
      [2, "vitals"],
      [2, "vitals"],
      [3, "waveform"],
    ]);
    o.markDelivered([stored[4]!.seq]);
    expect(o.pending(10).map((r) => r.kind)[0]).toBe("alarm");
    expect(o.pending(10, new Set([stored[5]!.seq])).map((r) => r.kind)[0]).toBe("case");
    // After a cursor position, only what comes later in delivery order.
    expect(o.pending(10, new Set(), undefined, { priority: 1, seq: stored[2]!.seq }).map((r) => r.kind)).toEqual([
      "vitals",
      "vitals",
      "waveform",
    ]);
  });

  it("fills a read up to its limit past rows it skips, across priorities", async () => {
    const o = outbox();
    o.open();
    const stored = await o.append([
      stampedEvent("alarm"),
      stampedEvent("alarm"),
      stampedEvent("alarm"),
      vitals(70),
      vitals(71),
      vitals(72),
    ]);
    // The first pages read hold only skipped (in-flight) rows: the read goes on rather than reporting nothing pending.
    const inFlight = new Set(stored.slice(0, 4).map((e) => e.seq));
    expect(o.pending(2, inFlight).map((r) => r.seq)).toEqual([stored[4]!.seq, stored[5]!.seq]);
    expect(o.pending(1, new Set(stored.map((e) => e.seq)))).toEqual([]);
  });

  it("makes room at its quota in the documented order and never evicts ECGs, alarms or case events", async () => {
    const o = outbox({ quotaBytes: 40_000 });
    o.open();
    const ecg = await o.append([stampedEvent("ecg12", { pad: "x".repeat(2000) })]);
    const alarm = await o.append([stampedEvent("alarm", { code: "MDC_EVT_HI" })]);
    const waves = await o.append(Array.from({ length: 20 }, () => stampedEvent("waveform", { pad: "w".repeat(400) })));
    const old = await o.append(Array.from({ length: 20 }, (_, i) => vitals(i)));
    o.markDelivered([old[0]!.seq]);
    // Keep adding vitals: first the delivered row goes, then (nothing being old enough to thin) waveforms, then the oldest vitals.
    for (let i = 0; i < 120; i++) await o.append([vitals(100 + i)]);
    const s = o.stats();
    expect(s.bytes).toBeLessThanOrEqual(40_000);
    // All within the last 10 minutes: nothing is thinned, the oldest go, waveforms first.
    expect(s.thinned).toEqual({});
    expect(s.evicted.waveform).toBe(20);
    expect(s.evicted.vitals).toBeGreaterThan(0);
    const left = o.pending(1000);
    expect(left.some((r) => r.seq === ecg[0]!.seq)).toBe(true);
    expect(left.some((r) => r.seq === alarm[0]!.seq)).toBe(true);
    expect(left.some((r) => r.kind === "waveform")).toBe(false);
    // The newest vitals survive, the oldest went first.
    const vit = left.filter((r) => r.kind === "vitals").map((r) => r.seq);
    expect(vit.at(-1)).toBe(s.lastSeq);
    expect(vit[0]).toBeGreaterThan(old[1]!.seq);
    expect(waves.length).toBe(20);
  });

  it("thins old vitals and waveforms to each minute's first before dropping anything undelivered, and records every thinning and drop as a gap record", async () => {
    const T = Date.UTC(2026, 10, 23, 8, 0, 0);
    let now = T;
    const gaps: Gap[] = [];
    const o = outbox({
      quotaBytes: 150_000,
      nowMs: () => now,
      gapEvent: (gap) => {
        gaps.push(gap);
        return { ...stampedEvent("gap", { of: gap.kind, action: gap.action, events: gap.events }), dev: gap.dev };
      },
    });
    o.open();
    const ecg = await o.append([stampedEvent("ecg12", { pad: "x".repeat(2000) })]);
    // Ten minutes of a monitor's vitals and waveforms, one of each every 10 s, with the broker down.
    const bed2 = { id: "bed2", driver: "hl7-pcd01", kind: "monitor" as const };
    for (let i = 0; i < 60; i++) {
      now = T + i * 10_000;
      await o.append([
        { ...vitals(60 + i), dev: bed2 },
        { ...stampedEvent("waveform", { pad: "w".repeat(1500) }), dev: bed2 },
      ]);
    }
    const full = o.stats();
    expect(full.evicted).toEqual({});
    // Pressure: the quota now takes only part of that. Waveforms are thinned first, oldest first.
    now = T + 3_600_000;
    const news: number[] = [];
    for (let i = 0; i < 20; i++) news.push(...(await o.append([{ ...vitals(200 + i), dev: bed2 }])).map((e) => e.seq));
    let s = o.stats();
    expect(s.thinned.waveform).toBeGreaterThan(0);
    expect(s.evicted).toEqual({});
    // Of the oldest minute, the first waveform is kept and later ones went; vitals untouched; nothing dropped.
    const byMinute = (kind: string) => {
      const m = new Map<number, number>();
      for (const r of o.pending(10_000).filter((x) => x.kind === kind))
        m.set(Math.floor(r.createdMs / 60_000), (m.get(Math.floor(r.createdMs / 60_000)) ?? 0) + 1);
      return m;
    };
    expect(byMinute("waveform").get(T / 60_000)).toBeLessThan(6);
    expect(o.pending(10_000).some((r) => r.kind === "waveform" && r.createdMs === T)).toBe(true);
    expect(byMinute("vitals").get(T / 60_000)).toBe(6);
    expect(gaps[0]).toMatchObject({ dev: bed2, kind: "waveform", action: "thinned", fromMs: T + 10_000 });
    // More pressure: vitals are thinned too, then the oldest undelivered are dropped, waveforms
    // first; the last 10 minutes are never thinned; ECGs never go.
    for (let i = 0; i < 400; i++)
      await o.append([
        { ...vitals(300 + i), dev: bed2 },
        { ...stampedEvent("waveform", { pad: "w".repeat(1500) }), dev: bed2 },
      ]);
    for (let i = 0; i < 400; i++) await o.append([{ ...vitals(700 + i), dev: bed2 }]);
    s = o.stats();
    expect(s.bytes).toBeLessThanOrEqual(150_000);
    expect(s.thinned.vitals).toBeGreaterThan(0);
    expect(s.evicted.waveform).toBeGreaterThan(0);
    expect(o.pending(10_000).some((r) => r.seq === ecg[0]!.seq)).toBe(true);
    // Every thinning and drop is a gap record in the outbox, never itself evicted, stating device, kind and span.
    const records = o
      .pending(10_000)
      .filter((r) => r.kind === "gap")
      .map(
        (r) =>
          JSON.parse(String(r.payload)) as {
            dev: { id: string };
            body: { of: string; action: string; events: number };
          },
      );
    expect(records.length).toBe(gaps.length);
    expect(new Set(gaps.map((g) => `${g.action} ${g.kind}`))).toEqual(
      new Set(["thinned waveform", "thinned vitals", "dropped waveform", "dropped vitals"]),
    );
    const sum = (action: string, kind: string) =>
      gaps.filter((g) => g.action === action && g.kind === kind).reduce((n, g) => n + g.events, 0);
    expect(sum("thinned", "waveform")).toBe(s.thinned.waveform);
    expect(sum("dropped", "vitals")).toBe(s.evicted.vitals);
    expect(records.every((r) => r.dev.id === "bed2")).toBe(true);
    expect(gaps.every((g) => g.fromMs <= g.toMs)).toBe(true);
  });

  it("refuses what cannot fit once only never-evicted events are left, and says why", async () => {
    const o = outbox({ quotaBytes: 8_000 });
    o.open();
    await o.append([stampedEvent("ecg12", { pad: "x".repeat(6000) })]);
    await expect(o.append([stampedEvent("ecg12", { pad: "y".repeat(6000) })])).rejects.toMatchObject({
      code: "VG_STORE_QUOTA",
    });
    await expect(o.append([vitals(1)])).resolves.toHaveLength(1);
    // waveforms may not displace vitals
    const big = stampedEvent("waveform", { pad: "z".repeat(1500) });
    await expect(o.append([big])).rejects.toBeInstanceOf(StoreRefusedError);
  });

  it.skipIf(!canMountTmpfs("the outbox disk-full test"))(
    "refuses with VG_STORE_DISK_FULL on a really full disk, keeps what it had, and recovers",
    async () => {
      const { dir, unmount } = mountTmpfs("1m");
      try {
        const o = outbox({}, dir);
        o.open();
        const kept = await o.append([vitals(1)]);
        // Leave the store almost no room, then write until the disk says no.
        writeFileSync(join(dir, "filler"), Buffer.alloc(700 * 1024));
        let refusal: unknown;
        for (let i = 0; i < 2000 && !refusal; i++) {
          await o.append([stampedEvent("waveform", { pad: "w".repeat(1000) })]).catch((e: unknown) => {
            refusal = e;
          });
        }
        expect(refusal).toMatchObject({ code: "VG_STORE_DISK_FULL" });
        expect(o.pending(1).map((r) => r.id)).toEqual([kept[0]!.id]);
        unlinkSync(join(dir, "filler"));
        await expect(o.append([vitals(2)])).resolves.toHaveLength(1);
        o.close();
      } finally {
        unmount();
      }
    },
  );

  it.skipIf(!canMountTmpfs("the outbox full-disk restart test"))(
    "on a full disk opens again to hand out what it holds, keeps delivery marks in memory, checkpoints without throwing, and catches up once there is room",
    async () => {
      const { dir, unmount } = mountTmpfs("2m");
      try {
        const a = outbox({}, dir);
        a.open();
        const held = await a.append([vitals(1), vitals(2), vitals(3)]);
        fillDisk(join(dir, "filler"));
        const full: string[] = [];
        a.on("full", (what) => full.push(what));
        expect(() => a.checkpoint()).not.toThrow();
        a.close();
        // A restart with the disk still full: no crash, no set-aside, and what it holds is handed out.
        const b = outbox({}, dir);
        b.on("full", (what) => full.push(what));
        expect(b.open()).toEqual({ diskFull: true });
        expect(readdirSync(dir).filter((f) => f.includes("corrupt"))).toEqual([]);
        expect(b.diskFull).toBe(true);
        expect(b.pending(10).map((r) => r.id)).toEqual(held.map((e) => e.id));
        await expect(b.append([vitals(4)])).rejects.toMatchObject({ code: "VG_STORE_DISK_FULL" });
        // Delivered while the disk is full: the marks wait in memory, and those events are not handed out again.
        b.markDelivered([held[0]!.seq]);
        expect(b.pending(10).map((r) => r.id)).toEqual([held[1]!.id, held[2]!.id]);
        expect(b.probe()).toBe(false);
        expect(full).toContain("marks");
        let writable = 0;
        b.on("writable", () => writable++);
        unlinkSync(join(dir, "filler"));
        expect(b.probe()).toBe(true);
        expect(writable).toBe(1);
        expect(b.diskFull).toBe(false);
        b.close();
        // The held mark was written with the probe: after a restart it is still delivered.
        const c = outbox({}, dir);
        expect(c.open()).toEqual({});
        expect(c.pending(10).map((r) => r.id)).toEqual([held[1]!.id, held[2]!.id]);
        await expect(c.append([vitals(5)])).resolves.toHaveLength(1);
      } finally {
        unmount();
      }
    },
  );

  it("sets a corrupt database aside, never deleting it, and starts a fresh one", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vg-store-"));
    writeFileSync(join(dir, "outbox.db"), Buffer.alloc(8192, 0x5a));
    const o = outbox({}, dir);
    const report = o.open();
    expect(report.setAside).toMatch(/outbox\.db\.corrupt-\d+$/);
    expect(report.reason).toBeTruthy();
    expect(readdirSync(dir).some((f) => f.startsWith("outbox.db.corrupt-"))).toBe(true);
    await expect(o.append([vitals(1)])).resolves.toHaveLength(1);
  });

  it("stores an original file as chunks right behind its event, and a dropped file only once", async () => {
    const o = outbox({ blobChunkBytes: 64 * 1024 });
    o.open();
    await o.append([vitals(1)]);
    const file = Buffer.from(Array.from({ length: 150_000 }, (_, i) => (i * 7) % 256));
    const ecg = stampedEvent("ecg12", { format: "test" });
    const stored = await o.append([ecg], { dedupKey: "file:abc", blobs: [{ eventId: ecg.id, bytes: file }] });
    expect(stored.map((e) => e.id)).toEqual([ecg.id]);
    const rows = o.pending(10);
    expect(rows.map((r) => [r.kind, r.topic])).toEqual([
      ["ecg12", null],
      ["blob", `blob/${ecg.id}/1/3`],
      ["blob", `blob/${ecg.id}/2/3`],
      ["blob", `blob/${ecg.id}/3/3`],
      ["vitals", null],
    ]);
    expect(Buffer.concat(rows.slice(1, 4).map((r) => r.payload as Buffer)).equals(file)).toBe(true);
    // The same drop again (a crash between commit and moving the file): nothing new.
    await expect(o.append([stampedEvent("ecg12")], { dedupKey: "file:abc", blobs: [] })).resolves.toEqual([]);
    expect(o.pending(10)).toHaveLength(5);
    // A receipt for the ECG's id covers its chunks once they were sent, never chunks still waiting.
    expect(o.markReceived([ecg.id])).toBe(1);
    o.markSent(rows.slice(1, 4).map((r) => r.seq));
    expect(o.markReceived([ecg.id])).toBe(3);
  });

  it("marks events delivered by the center's receipt and purges delivered ones after retention", async () => {
    const o = outbox();
    o.open();
    const evs = await o.append([vitals(1), vitals(2), vitals(3)]);
    expect(o.markReceived([evs[1]!.id, "not-ours"])).toBe(1);
    expect(o.pending(10).map((r) => r.seq)).toEqual([evs[0]!.seq, evs[2]!.seq]);
    o.markSent([evs[0]!.seq]);
    expect(o.pending(10, new Set(), 0).map((r) => r.seq)).toEqual([evs[2]!.seq]);
    expect(o.purgeDelivered(Date.now() + 1)).toBe(1);
    expect(o.stats().rows).toBe(2);
    // The purged event's payload went with its queue row.
    const db = new Database(o.options.path, { readonly: true });
    expect(db.prepare("SELECT seq FROM payloads ORDER BY seq").pluck().all()).toEqual([evs[0]!.seq, evs[2]!.seq]);
    db.close();
  });

  it("takes over an outbox of the first layout (payload in the events table) with nothing lost and seq continuing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vg-store-"));
    const path = join(dir, "outbox.db");
    const old = new Database(path);
    old.pragma("journal_mode = WAL");
    old.exec(`
      CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, priority INTEGER NOT NULL, kind TEXT NOT NULL,
        evictable INTEGER NOT NULL, payload BLOB NOT NULL, size INTEGER NOT NULL, topic TEXT, created_ms INTEGER NOT NULL,
        sent_ms INTEGER, delivered_ms INTEGER);
      CREATE INDEX events_pending   ON events(priority, seq) WHERE delivered_ms IS NULL;
      CREATE INDEX events_delivered ON events(delivered_ms)  WHERE delivered_ms IS NOT NULL;
      CREATE INDEX events_id        ON events(id);
      CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE intake   (key TEXT PRIMARY KEY, seq INTEGER NOT NULL);`);
    const delivered = { ...vitals(60), seq: 7001 };
    const waiting = { ...stampedEvent("alarm", { code: "MDC_EVT_HI" }), seq: 7002 };
    const insert = old.prepare(
      "INSERT INTO events (seq, id, priority, kind, evictable, payload, size, created_ms, delivered_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    insert.run(
      delivered.seq,
      delivered.id,
      2,
      "vitals",
      1,
      JSON.stringify(delivered),
      JSON.stringify(delivered).length,
      1,
      2,
    );
    insert.run(
      waiting.seq,
      waiting.id,
      0,
      "alarm",
      0,
      JSON.stringify(waiting),
      JSON.stringify(waiting).length,
      1,
      null,
    );
    old.close();

    const o = outbox({ nowMs: () => 0 }, dir);
    o.open();
    const [row] = o.pending(10);
    expect(row!.seq).toBe(7002);
    expect(JSON.parse(String(row!.payload))).toEqual(waiting);
    expect(o.stats()).toMatchObject({ pending: [1, 0, 0, 0], rows: 2, lastSeq: 7002 });
    const [next] = await o.append([vitals(61)]);
    expect(next!.seq).toBeGreaterThan(7002);
    // The same rows as before through the `events` view, delivery marks included.
    const db = new Database(path, { readonly: true });
    expect(db.prepare("SELECT seq, delivered_ms FROM events ORDER BY seq").raw().all()).toEqual([
      [7001, 2],
      [7002, null],
      [next!.seq, null],
    ]);
    expect(JSON.parse(db.prepare("SELECT payload FROM events WHERE seq = 7001").pluck().get() as string)).toEqual(
      delivered,
    );
    expect(db.prepare("SELECT name FROM pragma_table_info('queue')").pluck().all()).not.toContain("payload");
    db.close();
  });
});
