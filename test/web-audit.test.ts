// The audit trail (issue 6): hash-chained in the local database, so that a row edited or deleted
// behind the daemon's back (here: by a second SQLite connection to the same file) is found, while a
// purge past the retention leaves a chain that still verifies; read on GET /api/audit by admins.
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TimeEstimate } from "../src/time/clock.ts";
import { localDbPath, openLocalDb } from "../src/local-db.ts";
import { AuditLog, rowHash, type StoredRow } from "../src/audit/audit.ts";
import { startGateway } from "./support/rig.ts";
import { connectEmbeddedCenter } from "./support/mqtt.ts";
import { addUser, clientFrom, login, setupAdmin, startWeb } from "./support/web.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const DAY = 86_400_000;

/** A rig with `n` more records, one a day, and a second connection to its database: the tamperer. */
async function trail(n: number) {
  const rig = await startWeb(cleanup);
  for (let i = 1; i <= n; i++) {
    rig.audit.record({
      actor: "tech",
      ip: "192.0.2.7",
      action: "device.pair",
      target: `dev-${i}`,
      detail: { driver: "hl7-pcd01", n: i },
      result: "ok",
    });
    rig.clock.ms += DAY;
  }
  const other = new Database(localDbPath(rig.stateDir));
  cleanup.push(() => other.close());
  return { rig, other };
}

describe("the audit chain", () => {
  it("verifies as written", async () => {
    const { rig } = await trail(5);
    expect(rig.audit.verify()).toEqual({ ok: true, checked: 5 });
  });

  it("finds a row edited through another connection", async () => {
    const { rig, other } = await trail(5);
    other.prepare("UPDATE audit SET actor = 'admin' WHERE seq = 3").run();
    expect(rig.audit.verify()).toEqual({
      ok: false,
      checked: 2,
      firstBad: { seq: 3, reason: "edited: its content does not match its hash" },
    });
  });

  it("finds a row rewritten with a recomputed hash: the next row no longer links to it", async () => {
    const { rig, other } = await trail(5);
    const row = other.prepare("SELECT * FROM audit WHERE seq = 3").get() as StoredRow;
    const forged = { ...row, target: "dev-x" };
    other.prepare("UPDATE audit SET target = ?, hash = ? WHERE seq = 3").run(forged.target, rowHash(forged));
    expect(rig.audit.verify()).toEqual({
      ok: false,
      checked: 3,
      firstBad: { seq: 4, reason: "broken link: it does not follow the hash of the row before" },
    });
  });

  it("finds a deleted row in the middle, and deleted newest rows", async () => {
    const { rig, other } = await trail(5);
    other.prepare("DELETE FROM audit WHERE seq = 2").run();
    expect(rig.audit.verify()).toMatchObject({
      ok: false,
      firstBad: { seq: 2, reason: "missing: rows 2..2 were deleted" },
    });

    const t2 = await trail(5);
    t2.other.prepare("DELETE FROM audit WHERE seq >= 4").run();
    expect(t2.rig.audit.verify()).toMatchObject({ ok: false, firstBad: { seq: 4 } });
  });

  it("survives a purge past the retention, which records itself; refuses to purge a broken chain", async () => {
    const { rig, other } = await trail(10);
    // Records of days 1..4 are older than the cutoff (day 5).
    const r = rig.audit.purge(Date.parse("2026-11-23T08:00:00Z") + 4 * DAY);
    expect(r).toEqual({ purged: 4 });
    const rows = rig.audit.list({ limit: 100 });
    expect(rows.map((x) => x.seq)).toEqual([11, 10, 9, 8, 7, 6, 5]);
    expect(rows[0]).toMatchObject({
      actor: "system",
      action: "audit.purge",
      detail: { throughSeq: 4, rows: 4, throughHash: expect.stringMatching(/^[0-9a-f]{64}$/) },
    });
    expect(rig.audit.verify()).toEqual({ ok: true, checked: 7 });
    // Reopened (a restart): the anchor is in the database, the chain still verifies and goes on.
    const reopened = new AuditLog(other, () => ({ ms: rig.clock.ms, src: "gps", uncMs: 100 }));
    reopened.record({ actor: "admin", action: "login", result: "ok" });
    expect(reopened.verify()).toEqual({ ok: true, checked: 8 });
    // Rows before the anchor cannot be slipped back in unnoticed, nor can the oldest kept be deleted.
    other.prepare("DELETE FROM audit WHERE seq = 5").run();
    expect(rig.audit.verify()).toMatchObject({ ok: false, firstBad: { seq: 5 } });
    expect(rig.audit.purge(rig.clock.ms)).toMatchObject({ purged: 0, refused: { ok: false } });
  });

  it("finds the oldest rows deleted and the anchor moved past them: an anchor must match a purge record", async () => {
    const { rig, other } = await trail(6);
    const row3 = other.prepare("SELECT seq, hash FROM audit WHERE seq = 3").get() as { seq: number; hash: string };
    other.prepare("DELETE FROM audit WHERE seq <= 3").run();
    other
      .prepare("INSERT INTO audit_anchor (id, seq, hash, at) VALUES (1, ?, ?, '2026-11-30T08:00:00.000Z')")
      .run(row3.seq, row3.hash);
    expect(rig.audit.verify()).toMatchObject({
      ok: false,
      firstBad: { seq: 3, reason: expect.stringContaining("no purge record") },
    });
    expect(rig.audit.purge(rig.clock.ms)).toMatchObject({ purged: 0, refused: { ok: false } });

    // After a real purge, moving its anchor further (deleting more of the oldest rows) is caught too.
    const t2 = await trail(8);
    expect(t2.rig.audit.purge(Date.parse("2026-11-23T08:00:00Z") + 2 * DAY)).toEqual({ purged: 2 });
    expect(t2.rig.audit.verify().ok).toBe(true);
    const row4 = t2.other.prepare("SELECT seq, hash FROM audit WHERE seq = 4").get() as { seq: number; hash: string };
    t2.other.prepare("DELETE FROM audit WHERE seq <= 4").run();
    t2.other.prepare("UPDATE audit_anchor SET seq = ?, hash = ?").run(row4.seq, row4.hash);
    expect(t2.rig.audit.verify()).toMatchObject({ ok: false, firstBad: { seq: 4 } });
  });

  it("purges only the oldest run of old rows: a row stamped by a wrong clock among newer ones stays", async () => {
    const { rig } = await trail(3);
    const now = rig.clock.ms;
    rig.clock.ms = 0; // a box that booted in 1970
    rig.audit.record({ actor: "system", action: "config.reload", result: "ok" });
    rig.clock.ms = now;
    expect(rig.audit.purge(now - 1.5 * DAY)).toEqual({ purged: 2 });
    expect(rig.audit.list({ limit: 10 }).map((r) => [r.seq, r.at.slice(0, 4)])).toEqual([
      [5, "2026"],
      [4, "1970"],
      [3, "2026"],
    ]);
    expect(rig.audit.verify().ok).toBe(true);
  });
});

describe("records made before the gateway's clock was synchronized", () => {
  it("carry their boot and monotonic time in the chain, are placed by the first sync (recorded as time.synced), and an earlier boot's say they could not be", async () => {
    const db = openLocalDb(localDbPath(mkdtempSync(join(tmpdir(), "vg-audit-time-"))));
    cleanup.push(() => db.close());
    const TRUE = Date.parse("2026-11-23T08:00:00Z");
    // Box at 1970: true UTC is 56 years ahead of what it reads; monotonic 600 s since boot "b".
    let now: TimeEstimate = { ms: 600_000, src: "unsynced", uncMs: 86_400_000, boot: "b", monoMs: 600_000 };
    const audit = new AuditLog(db, () => now);
    now = { ...now, boot: "a" }; // a record of an earlier boot (the box was switched off before any sync)
    audit.record({ actor: "crew1", action: "login", result: "ok" });
    now = { ...now, boot: "b" };
    audit.record({ actor: "crew1", action: "case.open", target: "c1", result: "ok" });
    now = { ...now, ms: 660_000, monoMs: 660_000 };
    audit.record({ actor: "crew1", action: "case.node", target: "c1", detail: { node: "fmc" }, result: "ok" });
    expect(audit.verify()).toEqual({ ok: true, checked: 3 });
    // Tampering with the mark is caught like any other field.
    const other = new Database(db.name);
    cleanup.push(() => other.close());
    const kept = other.prepare("SELECT time FROM audit WHERE seq = 3").pluck().get() as string;
    other.prepare("UPDATE audit SET time = ? WHERE seq = 3").run(kept.replace("660000", "600000"));
    expect(audit.verify()).toMatchObject({ ok: false, firstBad: { seq: 3 } });
    other.prepare("UPDATE audit SET time = ? WHERE seq = 3").run(kept);

    now = { ms: TRUE + 700_000, src: "gps", uncMs: 100 };
    audit.placeUnsynced({
      src: "gps",
      correctionMs: TRUE,
      uncMs: 100,
      atMs: TRUE + 700_000,
      driftPpm: 50,
      offsetMs: TRUE,
      boot: "b",
      sleptMs: 0,
    });
    const rows = audit.list({ limit: 10 });
    expect(rows.map((r) => [r.action, r.at, r.time])).toEqual([
      ["time.synced", new Date(TRUE + 700_000).toISOString(), undefined],
      [
        "case.node",
        new Date(TRUE + 660_000).toISOString(),
        { unsynced: true, placed: true, recordedAt: "1970-01-01T00:11:00.000Z" },
      ],
      [
        "case.open",
        new Date(TRUE + 600_000).toISOString(),
        { unsynced: true, placed: true, recordedAt: "1970-01-01T00:10:00.000Z" },
      ],
      ["login", "1970-01-01T00:10:00.000Z", { unsynced: true, placed: false, recordedAt: "1970-01-01T00:10:00.000Z" }],
    ]);
    expect(rows[0]!.detail).toMatchObject({ src: "gps", offsetMs: TRUE, boot: "b", placed: 2, unplaced: 1 });
    expect(audit.verify()).toEqual({ ok: true, checked: 4 });
  });
});

describe("GET /api/audit", () => {
  it("shows admins the trail newest first, paged, with the chain's state; never a password", async () => {
    const rig = await startWeb(cleanup);
    const admin = await setupAdmin(rig, "admin", "correct horse battery 1");
    await login(rig, "admin", "wrong horse battery");
    const again = clientFrom(rig, await login(rig, "admin", "correct horse battery 1"));
    await again.request("POST", "/api/users", { username: "viewer1", password: "viewer pass 1", role: "viewer" });
    await admin.request("POST", "/api/logout");
    const res = await again.request("GET", "/api/audit?limit=3");
    expect(res.statusCode).toBe(200);
    const body = res.json() as {
      rows: { seq: number; action: string; actor: string; ip: string; target: string; result: string }[];
      chain: unknown;
    };
    expect(body.chain).toEqual({ ok: true, checked: 5 });
    expect(body.rows.map((r) => [r.seq, r.action, r.actor, r.target, r.result])).toEqual([
      [5, "logout", "admin", null, "ok"],
      [4, "user.add", "admin", "viewer1", "ok"],
      [3, "login", "admin", null, "ok"],
    ]);
    const older = (await again.request("GET", "/api/audit?before=3&limit=5")).json() as {
      rows: { seq: number; action: string; result: string; ip: string }[];
    };
    expect(older.rows.map((r) => [r.seq, r.action, r.result, r.ip])).toEqual([
      [2, "login", "failed", "192.0.2.10"],
      [1, "setup", "ok", "127.0.0.1"],
    ]);
    expect(res.body + JSON.stringify(older)).not.toContain("horse");
    expect((await again.request("GET", "/api/audit?limit=0")).json().error).toMatchObject({
      code: "VG_BAD_REQUEST",
      field: "limit",
    });

    const viewer = clientFrom(rig, await login(rig, "viewer1", "viewer pass 1"));
    expect((await viewer.request("GET", "/api/audit")).statusCode).toBe(403);
  });
});

describe("the gateway", () => {
  it("sends the chain's head to the center with its status, so that a chain rewritten whole on the box is caught", async () => {
    // A trail of three records from an earlier run, then the gateway starts on it and says online.
    const stateDir = mkdtempSync(join(tmpdir(), "vg-audit-head-"));
    const earlier = openLocalDb(localDbPath(stateDir));
    const before = new AuditLog(earlier, () => ({ ms: Date.now(), src: "ntp", uncMs: 20 }));
    for (const target of ["dev-1", "dev-2", "dev-3"])
      before.record({ actor: "tech", action: "device.pair", target, result: "ok" });
    earlier.close();
    const { gw, config } = await startGateway(
      { id: "gw-audit-head", devices: "  []", stateDir, uplink: "embedded" },
      cleanup,
    );
    const center = await connectEmbeddedCenter(config);
    cleanup.push(() => center.close());
    const heads = () =>
      center.messages
        .filter((m) => m.topic === "vitalgate/v1/gw-audit-head/status")
        .map((m) => JSON.parse(m.payload.toString()) as { state: string; audit?: { seq: number; hash: string } })
        .filter((m) => m.state === "online")
        .map((m) => m.audit);
    await center.waitFor(() => heads().length > 0, 5000, "the gateway's status");
    const audit = gw.audit as AuditLog;
    // The earlier three, and this start.
    expect(audit.list({ limit: 1 })[0]).toMatchObject({ seq: 4, action: "daemon.start" });
    await center.waitFor(() => heads().some((h) => h?.seq === 4), 5000, "the head after the start");
    expect(heads().find((h) => h?.seq === 4)).toEqual({ seq: 4, hash: audit.list({ limit: 1 })[0]!.hash });
    // A new record's head follows within seconds, not at the next status interval (60 s).
    await gw.reload(gw.config, "operator (SIGHUP)");
    await center.waitFor(() => heads().some((h) => h?.seq === 5), 5000, "the new head");
    const sent = heads().find((h) => h?.seq === 5)!;
    expect(sent.hash).toBe(audit.list({ limit: 1 })[0]!.hash);

    // Someone with the disk rewrites the whole trail and recomputes every hash: it verifies on the box...
    const other = new Database(localDbPath(stateDir));
    cleanup.push(() => other.close());
    let prev = other.prepare("SELECT prev FROM audit WHERE seq = 1").pluck().get() as string;
    for (const row of other.prepare("SELECT * FROM audit ORDER BY seq").all() as StoredRow[]) {
      const forged = { ...row, target: row.target === "dev-2" ? "dev-x" : row.target, prev };
      const hash = rowHash(forged);
      other
        .prepare("UPDATE audit SET target = ?, prev = ?, hash = ? WHERE seq = ?")
        .run(forged.target, prev, hash, row.seq);
      prev = hash;
    }
    expect(audit.verify()).toMatchObject({ ok: true, checked: 5 });
    // ...but no longer holds, at the seq the center was sent, the hash the center was sent.
    const rowThen = audit.list({ before: sent.seq + 1, limit: 1 })[0]!;
    expect(rowThen.seq).toBe(sent.seq);
    expect(rowThen.hash).not.toBe(sent.hash);
  });

  it("records configuration reloads in the trail", async () => {
    const { gw } = await startGateway({ id: "gw-audit", devices: "  []" }, cleanup);
    await gw.reload(gw.config, "operator (SIGHUP)");
    const audit = gw.audit as AuditLog;
    expect(audit.list({ limit: 1 })[0]).toMatchObject({
      actor: "operator (SIGHUP)",
      action: "config.reload",
      result: "ok",
      detail: { restartNeeded: [] },
    });
    expect(audit.verify().ok).toBe(true);
  });
});

describe("what else is audited (等保三级 安全审计)", () => {
  it("the daemon's start and stop", async () => {
    const { gw, config } = await startGateway({ id: "gw-audit-life", devices: "  []" }, cleanup);
    expect((gw.audit as AuditLog).list({ limit: 1 })[0]).toMatchObject({
      actor: "system",
      action: "daemon.start",
      result: "ok",
    });
    await gw.stop();
    const db = new Database(localDbPath(config.stateDir), { readonly: true });
    cleanup.push(() => db.close());
    expect(db.prepare("SELECT action FROM audit ORDER BY seq").pluck().all()).toEqual(["daemon.start", "daemon.stop"]);
  });

  it("refused requests, at most once a minute for the same user, route and reason: a flood does not fill the disk", async () => {
    const rig = await startWeb(cleanup);
    const admin = await setupAdmin(rig);
    const viewer = await addUser(rig, admin, "viewer1", "viewer", "viewer pass 1");
    for (let i = 0; i < 50; i++)
      expect(
        (await viewer.request("POST", "/api/users", { username: `x${i}`, password: "Whatever 123", role: "admin" }))
          .statusCode,
      ).toBe(403);
    const denied = rig.audit.list({ limit: 500 }).filter((r) => r.action === "request.denied");
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({ actor: "viewer1", target: "POST /api/users", result: "denied" });
  });

  it("reads of patient data: the cases, a case, an ECG; once per user and target every 10 minutes", async () => {
    const rig = await startWeb(cleanup);
    const admin = await setupAdmin(rig);
    const c = (await admin.request("POST", "/api/cases", {})).json() as { id: string };
    await admin.request("POST", `/api/cases/${c.id}/patient`, { patientId: "P-0001" });
    for (let i = 0; i < 3; i++) {
      expect((await admin.request("GET", `/api/cases/${c.id}`)).statusCode).toBe(200);
      expect((await admin.request("GET", "/api/cases")).statusCode).toBe(200);
    }
    const reads = rig.audit.list({ limit: 100 }).filter((r) => r.action === "patient.read");
    expect(reads.map((r) => [r.actor, r.target])).toEqual([
      ["admin", "cases"],
      ["admin", `case ${c.id}`],
    ]);
    expect(JSON.stringify(reads)).not.toContain("P-0001");
  });

  it("a command's name from the topic and the keys the center sends, bounded and sanitized before the log and the trail", async () => {
    const { gw, config, log } = await startGateway(
      { id: "gw-audit-cmd", devices: "  []", uplink: "embedded" },
      cleanup,
    );
    const center = await connectEmbeddedCenter(config);
    cleanup.push(() => center.close());
    const name = `ping\u202e\nfake line ${"x".repeat(300)}`;
    await center.client.publishAsync(`vitalgate/v1/gw-audit-cmd/cmd/${name}`, JSON.stringify({ id: "a1" }), { qos: 1 });
    await center.client.publishAsync(
      "vitalgate/v1/gw-audit-cmd/cmd/case-open",
      JSON.stringify({ id: "a2", args: { caseId: "C-1", ["k\n\u2066".repeat(200)]: 1 } }),
      { qos: 1 },
    );
    const audit = gw.audit as AuditLog;
    await center.waitFor(
      () => audit.list({ limit: 10 }).filter((r) => r.action === "command").length === 2,
      5000,
      "both refusals audited",
    );
    const [keys, named] = audit.list({ limit: 10 }).filter((r) => r.action === "command");
    expect([...named!.target!].length).toBeLessThanOrEqual(64);
    expect(named!.target).toMatch(/^ping\\u\{202e\}\\u\{a\}fake line x+…$/);
    for (const r of [named!, keys!]) {
      expect(JSON.stringify(r)).not.toMatch(/[\n\u202e\u2066]/);
      expect([...String(r.detail!.reason)].length).toBeLessThanOrEqual(500);
    }
    const lines = log.raw
      .join("")
      .split("\n")
      .filter((l) => l.includes("command from the center"));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const l of lines) expect(l).not.toMatch(/[\u202e\u2066]|fake line x{100}/);
  });
});
