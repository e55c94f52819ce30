// The page's server, login and guard (issue 6, docs/security.md#the-web-page): first-run setup with
// its code, login and its rate limit, sessions that expire, CSRF and role checks on every route that
// changes anything, security headers, static files, provisioned users, the live stream.
import { X509Certificate } from "node:crypto";
import { readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { get } from "node:http";
import { request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import { hostname, networkInterfaces } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { findDriver } from "../drivers/registry.ts";
import { main } from "../src/cli/main.ts";
import { loadConfig } from "../src/config/load.ts";
import { hashPassword, verifyPassword } from "../src/web/auth.ts";
import { makePki } from "./support/pki.ts";
import { startGateway } from "./support/rig.ts";
import { addUser, clientFrom, clientOn, login, setupAdmin, startWeb } from "./support/web.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const FROM_LAN = "192.0.2.10";

describe("password hashes", () => {
  it("are scrypt with their parameters and a per-hash salt, and verify only the right password", async () => {
    const a = await hashPassword("s3cret-pass");
    const b = await hashPassword("s3cret-pass");
    expect(a).toMatch(/^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(a.split("$")[4]).not.toBe(b.split("$")[4]);
    expect(await verifyPassword("s3cret-pass", a)).toBe(true);
    expect(await verifyPassword("s3cret-pasS", a)).toBe(false);
    expect(await verifyPassword("s3cret-pass", "scrypt$3$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAA==")).toBe(
      false,
    ); // N not a power of 2
  });

  it("are made by `vitalgate web hash-password` from stdin", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = (input: string) => ({
      out: (s: string) => out.push(s),
      err: (s: string) => err.push(s),
      stdin: async () => input,
    });
    expect(await main(["web", "hash-password"], io("it provisioned 1\n"))).toBe(0);
    expect(await verifyPassword("it provisioned 1", out.join("").trim())).toBe(true);
    expect(await main(["web", "hash-password"], io("short\n"))).toBe(1);
    expect(err.join("")).toContain("at least 8 characters");
  });
});

describe("first-run setup", () => {
  it("needs the setup code from the 0600 file unless from the box itself, then is closed", async () => {
    const rig = await startWeb(cleanup);
    const file = join(rig.stateDir, "setup-code");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const code = readFileSync(file, "utf8").trim();
    expect(rig.log.raw.join("")).toContain(file);
    expect(rig.log.raw.join("")).not.toContain(code);

    const session = await rig.app.inject({ url: "/api/session", remoteAddress: FROM_LAN });
    expect(session.json()).toEqual({ user: null, setup: true, setupCodeRequired: true, setupCodeFile: file });
    const body = { username: "admin", password: "long enough 1" };
    const noCode = await rig.app.inject({ method: "POST", url: "/api/setup", payload: body, remoteAddress: FROM_LAN });
    expect(noCode.statusCode).toBe(403);
    expect(noCode.json().error.code).toBe("VG_SETUP_CODE");
    const wrong = await rig.app.inject({
      method: "POST",
      url: "/api/setup",
      payload: { ...body, setupCode: "nope" },
      remoteAddress: FROM_LAN,
    });
    expect(wrong.statusCode).toBe(403);
    const short = await rig.app.inject({
      method: "POST",
      url: "/api/setup",
      payload: { ...body, password: "short", setupCode: code },
      remoteAddress: FROM_LAN,
    });
    expect(short.statusCode).toBe(400);
    expect(short.json().error).toMatchObject({ code: "VG_PASSWORD_WEAK", field: "password" });

    const ok = await rig.app.inject({
      method: "POST",
      url: "/api/setup",
      payload: { ...body, setupCode: code },
      remoteAddress: FROM_LAN,
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().user).toEqual({ username: "admin", role: "admin" });
    expect(() => statSync(file)).toThrow();
    const admin = clientFrom(rig, ok);
    expect((await admin.request("GET", "/api/session")).json()).toMatchObject({
      user: { username: "admin" },
      csrf: admin.csrf,
      setup: false,
    });

    const again = await rig.app.inject({
      method: "POST",
      url: "/api/setup",
      payload: { username: "eve", password: "long enough 2" },
    });
    expect(again.statusCode).toBe(409);
    const actions = rig.audit.list({ limit: 10 }).map((r) => `${r.action}:${r.result}`);
    expect(actions).toEqual(["setup:ok", "setup:denied", "setup:denied"]);
  });

  it("from loopback needs no code", async () => {
    const rig = await startWeb(cleanup);
    expect((await rig.app.inject({ url: "/api/session" })).json()).toMatchObject({
      setup: true,
      setupCodeRequired: false,
    });
    const admin = await setupAdmin(rig);
    expect(admin.csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe("login", () => {
  it("starts a session with a strict HttpOnly cookie on the right password, 401 on a wrong one or an unknown user", async () => {
    const rig = await startWeb(cleanup);
    await setupAdmin(rig, "admin", "correct horse battery 1");
    const ok = await login(rig, "admin", "correct horse battery 1");
    expect(ok.statusCode).toBe(200);
    const cookie = String(ok.headers["set-cookie"]);
    expect(cookie).toMatch(/^vg_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/);
    expect((await login(rig, "admin", "wrong horse battery")).statusCode).toBe(401);
    const unknown = await login(rig, "nobody", "correct horse battery 1");
    expect(unknown.statusCode).toBe(401);
    expect(unknown.json().error.code).toBe("VG_LOGIN_FAILED");
    const failed = rig.audit.list({ limit: 2 });
    expect(failed.map((r) => [r.action, r.actor, r.result])).toEqual([
      ["login", "nobody", "failed"],
      ["login", "admin", "failed"],
    ]);
    expect(JSON.stringify(rig.audit.list({ limit: 100 }))).not.toContain("horse");
    expect(rig.log.raw.join("")).not.toContain("horse");
    // A login from a browser that held a session ends that one.
    const first = clientFrom(rig, ok);
    const second = await rig.app.inject({
      method: "POST",
      url: "/api/login",
      payload: { username: "admin", password: "correct horse battery 1" },
      headers: { cookie: first.cookie },
    });
    expect(String(second.headers["set-cookie"]).split(";")[0]).not.toBe(first.cookie);
    expect((await first.request("GET", "/api/session")).json().user).toBeNull();
  });

  it("locks the username after too many failures, across a restart, but not the shared tablet: the address only at a much higher bound", async () => {
    const web = "{ loginMaxFailures: 3, loginMaxFailuresPerAddress: 8, loginWindowS: 60 }";
    const rig = await startWeb(cleanup, web);
    const admin = await setupAdmin(rig, "admin", "correct horse battery 1");
    await addUser(rig, admin, "crew1", "crew", "crew pass 12");
    for (let i = 0; i < 3; i++) {
      expect((await login(rig, "admin", "guess " + i)).statusCode).toBe(401);
      rig.clock.ms += 1000;
    }
    const locked = await login(rig, "admin", "correct horse battery 1");
    expect(locked.statusCode).toBe(429);
    expect(locked.json()).toMatchObject({
      error: { code: "VG_ACCOUNT_LOCKED" },
      retryAfterS: 57,
      retryAt: "2026-11-23T08:01:00.000Z",
    });
    expect(locked.headers["retry-after"]).toBe("57");
    expect(rig.audit.list({ limit: 1 })[0]).toMatchObject({ action: "user.locked", target: "admin" });
    // Locked from every address; another user on the same crew tablet logs in.
    expect((await login(rig, "admin", "correct horse battery 1", "192.0.2.99")).statusCode).toBe(429);
    expect((await login(rig, "crew1", "crew pass 12")).statusCode).toBe(200);

    // The daemon restarts (the ignition): the lockout holds.
    const again = await startWeb(cleanup, web, rig.stateDir);
    again.clock.ms = rig.clock.ms + 10_000;
    expect((await login(again, "admin", "correct horse battery 1")).json()).toMatchObject({
      error: { code: "VG_ACCOUNT_LOCKED" },
      retryAfterS: 47,
    });
    again.clock.ms += 47_000;
    expect((await login(again, "admin", "correct horse battery 1")).statusCode).toBe(200);

    // An address is refused after loginMaxFailuresPerAddress failures, whatever the usernames.
    for (let i = 0; i < 8; i++) expect((await login(again, `nobody${i}`, "guess", "192.0.2.50")).statusCode).toBe(401);
    expect((await login(again, "crew1", "crew pass 12", "192.0.2.50")).json()).toMatchObject({
      error: { code: "VG_TOO_MANY_ATTEMPTS" },
    });
    const metrics = (await again.app.inject({ url: "/metrics" })).body;
    expect(metrics).toMatch(/^vitalgate_web_logins_total\{result="failed"\} 8$/m);
    expect(metrics).toMatch(/^vitalgate_web_logins_total\{result="limited"\} 2$/m);
  });

  it("counts a guess before hashing it: 40 concurrent guesses at one username get at most the limit checked", async () => {
    const rig = await startWeb(cleanup, "{ loginMaxFailures: 5 }");
    await setupAdmin(rig, "admin", "correct horse battery 1");
    // From 40 addresses, so that only the username's limit applies.
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => login(rig, "admin", `guess ${i}`, `198.51.100.${i + 1}`)),
    );
    const codes = answers.map((r) => r.statusCode);
    expect(codes.filter((c) => c === 401).length).toBeLessThanOrEqual(5);
    expect(codes.filter((c) => c === 401 || c === 429).length).toBe(40);
    expect(
      rig.audit.list({ limit: 100 }).filter((r) => r.action === "login" && r.result === "failed").length,
    ).toBeLessThanOrEqual(5);
    expect((await login(rig, "admin", "correct horse battery 1")).json().error.code).toBe("VG_ACCOUNT_LOCKED");
  });

  it("a success clears only its own username's failures: an attacker's own login does not reset the address or another user", async () => {
    const rig = await startWeb(cleanup, "{ loginMaxFailures: 3, loginMaxFailuresPerAddress: 6 }");
    const admin = await setupAdmin(rig, "admin", "correct horse battery 1");
    await addUser(rig, admin, "mallory", "viewer", "own account 1", "192.0.2.77");
    // Password spraying from one address, with a login to the attacker's own account between rounds.
    const answers: number[] = [];
    for (let round = 0; round < 4; round++) {
      answers.push(
        (await login(rig, "admin", `spray ${round}`, "192.0.2.66")).statusCode,
        (await login(rig, `victim${round}`, "spray", "192.0.2.66")).statusCode,
      );
      expect([200, 429]).toContain((await login(rig, "mallory", "own account 1", "192.0.2.66")).statusCode);
    }
    // 6 failures from the address, then refused: the attacker's successes reset nothing but mallory's count.
    expect(answers).toEqual([401, 401, 401, 401, 401, 401, 429, 429]);
    // admin's 3 failures locked it, though mallory logged in from that address between them.
    expect((await login(rig, "admin", "correct horse battery 1", "192.0.2.10")).json().error.code).toBe(
      "VG_ACCOUNT_LOCKED",
    );
  });

  it("hashes at most a few passwords at once: a burst of logins gets 503 beyond the queue, not unbounded memory", async () => {
    const rig = await startWeb(cleanup);
    await setupAdmin(rig);
    // Each from its own address, so the rate limit does not step in first.
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => login(rig, `guess${i}`, "wrong password", `198.51.100.${i + 1}`)),
    );
    const codes = answers.map((r) => r.statusCode);
    // 2 hashing and 16 waiting: at least 18 are answered; the rest (all 12 when the burst arrives
    // before the first hash is done, as it does here) are told to come back.
    const busy = codes.filter((c) => c === 503).length;
    expect(busy).toBeGreaterThan(0);
    expect(busy).toBeLessThanOrEqual(30 - 2 - 16);
    expect(codes.filter((c) => c === 401).length).toBe(30 - busy);
    expect(answers.find((r) => r.statusCode === 503)!.json()).toMatchObject({
      error: { code: "VG_BUSY" },
      retryAfterS: 1,
    });
    expect((await login(rig, "admin", "correct horse battery 1")).statusCode).toBe(200);
  });

  it("sessions end after the idle time, and at logout", async () => {
    const rig = await startWeb(cleanup, "{ sessionIdleMin: 30 }");
    const admin = await setupAdmin(rig);
    rig.clock.ms += 29 * 60_000;
    expect((await admin.request("GET", "/api/users")).statusCode).toBe(200); // activity renews it
    rig.clock.ms += 29 * 60_000;
    expect((await admin.request("GET", "/api/users")).statusCode).toBe(200);
    rig.clock.ms += 30 * 60_000 + 1;
    const expired = await admin.request("GET", "/api/users");
    expect(expired.statusCode).toBe(401);
    expect(expired.json().error.code).toBe("VG_AUTH_REQUIRED");
    expect((await admin.request("GET", "/api/session")).json()).toMatchObject({ user: null });

    const again = clientFrom(rig, await login(rig, "admin", "correct horse battery 1"));
    expect((await again.request("POST", "/api/logout")).json()).toEqual({ ok: true });
    expect((await again.request("GET", "/api/users")).statusCode).toBe(401);
  });

  it("sessions outlive a restart (the box loses power with the ignition), but not their idle time, a removed user, or logout", async () => {
    const first = await startWeb(cleanup, "{ sessionIdleMin: 30 }");
    const admin = await setupAdmin(first);
    await admin.request("POST", "/api/users", { username: "crew1", password: "crew pass 12", role: "crew" });
    const crew = clientFrom(first, await login(first, "crew1", "crew pass 12"));
    // The cookie's id is kept nowhere on the box: the table holds its SHA-256.
    const keys = first.ctx.db.prepare("SELECT key FROM web_sessions").pluck().all() as string[];
    expect(keys).toHaveLength(2);
    expect(keys).not.toContain(admin.cookie.split("=")[1]);

    // Ignition off for 20 minutes, then the daemon starts again on the same state.
    const second = await startWeb(cleanup, "{ sessionIdleMin: 30 }", first.stateDir);
    second.clock.ms = first.clock.ms + 20 * 60_000;
    const adminAgain = clientOn(second, admin);
    expect((await adminAgain.request("GET", "/api/session")).json().user).toEqual({ username: "admin", role: "admin" });
    expect((await adminAgain.request("DELETE", "/api/users/crew1")).statusCode).toBe(200); // the CSRF token still holds
    expect((await clientOn(second, crew).request("GET", "/api/session")).json().user).toBeNull();
    expect((await adminAgain.request("POST", "/api/logout")).statusCode).toBe(200);

    // A session idle past its time across a restart is over; so is a logged-out one.
    const third = await startWeb(cleanup, "{ sessionIdleMin: 30 }", first.stateDir);
    third.clock.ms = second.clock.ms + 60_000;
    expect((await clientOn(third, admin).request("GET", "/api/session")).json().user).toBeNull();
    const late = clientFrom(third, await login(third, "admin", "correct horse battery 1"));
    const fourth = await startWeb(cleanup, "{ sessionIdleMin: 30 }", first.stateDir);
    fourth.clock.ms = third.clock.ms + 31 * 60_000;
    expect((await clientOn(fourth, late).request("GET", "/api/session")).json().user).toBeNull();
    expect(fourth.ctx.db.prepare("SELECT count(*) FROM web_sessions").pluck().get()).toBe(0);
  });

  it("a step of the clock (the first GPS fix after a boot in 1970, a box 3 h fast set right) logs nobody out and stretches no idle time", async () => {
    const rig = await startWeb(cleanup, "{ sessionIdleMin: 30 }");
    rig.clock.stepMs = -(Date.parse("2026-11-23T08:00:00Z") - Date.parse("1970-01-01T00:00:00Z")); // dead RTC battery
    const admin = await setupAdmin(rig);
    rig.clock.ms += 60_000;
    rig.clock.stepMs = 0; // the GPS fix: 56 years forward
    expect((await admin.request("GET", "/api/users")).statusCode).toBe(200);
    rig.clock.stepMs = -3 * 3_600_000; // and a step back of 3 h
    rig.clock.ms += 29 * 60_000;
    expect((await admin.request("GET", "/api/users")).statusCode).toBe(200);
    rig.clock.ms += 30 * 60_000 + 1; // idle for 30 min on the monotonic clock, whatever the wall says
    expect((await admin.request("GET", "/api/users")).statusCode).toBe(401);
  });

  it("sessions end 12 h after login however active", async () => {
    const rig = await startWeb(cleanup);
    const admin = await setupAdmin(rig);
    for (let i = 0; i < 24; i++) {
      rig.clock.ms += 29 * 60_000; // 11 h 36 min in all, never idle for long
      expect((await admin.request("GET", "/api/session")).json().user, `after ${(i + 1) * 29} min`).not.toBeNull();
    }
    rig.clock.ms += 29 * 60_000;
    expect((await admin.request("GET", "/api/session")).json().user).toBeNull();
  });
});

describe("account policy (等保三级 身份鉴别)", () => {
  it("refuses passwords without length and a mix of character classes, or holding the username, wherever one is set", async () => {
    const rig = await startWeb(cleanup);
    const weak = async (
      res: Promise<{ statusCode: number; json(): { error: { code: string; field?: string; message: string } } }>,
    ) => {
      const r = await res;
      expect(r.statusCode).toBe(400);
      expect(r.json().error).toMatchObject({ code: "VG_PASSWORD_WEAK", field: "password" });
      return r.json().error.message;
    };
    expect(
      await weak(
        rig.app.inject({ method: "POST", url: "/api/setup", payload: { username: "admin", password: "alllowercase" } }),
      ),
    ).toContain("at least 3 of");
    const admin = await setupAdmin(rig, "admin", "Boss pass 1");
    expect(
      await weak(admin.request("POST", "/api/users", { username: "crew2", password: "Short1!", role: "crew" })),
    ).toContain("at least 8 characters");
    expect(
      await weak(
        admin.request("POST", "/api/users", { username: "crew2", password: "my crew2 password", role: "crew" }),
      ),
    ).toContain("username");
    const crew = await addUser(rig, admin, "crew2", "crew", "Good pass 22");
    expect(
      await weak(crew.request("POST", "/api/password", { current: "Good pass 22", password: "12345678" })),
    ).toContain("at least 3 of");
    expect(await weak(admin.request("POST", "/api/users/crew2/password", { password: "abcdefgh" }))).toContain(
      "at least 3 of",
    );
  });

  it("makes a user change an initial password at the first login before anything else; the change ends their other sessions", async () => {
    const rig = await startWeb(cleanup);
    const admin = await setupAdmin(rig);
    expect(
      (
        await admin.request("POST", "/api/users", { username: "crew3", password: "Initial pass 1", role: "crew" })
      ).json(),
    ).toMatchObject({ mustChangePassword: true });
    const first = await login(rig, "crew3", "Initial pass 1");
    expect(first.json()).toMatchObject({ user: { username: "crew3" }, mustChangePassword: true });
    const crew = clientFrom(rig, first);
    const other = clientFrom(rig, await login(rig, "crew3", "Initial pass 1", "192.0.2.11"));
    expect((await crew.request("GET", "/api/session")).json()).toMatchObject({ mustChangePassword: true });
    for (const [method, url] of [
      ["GET", "/api/status"],
      ["GET", "/api/cases"],
      ["POST", "/api/cases"],
    ] as const) {
      const refused = await crew.request(method, url, method === "POST" ? {} : undefined);
      expect(refused.statusCode, url).toBe(403);
      expect(refused.json().error.code).toBe("VG_PASSWORD_CHANGE_REQUIRED");
    }
    expect(
      (await crew.request("POST", "/api/password", { current: "Wrong pass 1", password: "Own choice 22" })).json()
        .error,
    ).toMatchObject({ code: "VG_PASSWORD_WRONG", field: "current" });
    expect(
      (await crew.request("POST", "/api/password", { current: "Initial pass 1", password: "Initial pass 1" })).json()
        .error.code,
    ).toBe("VG_PASSWORD_REUSED");
    expect(
      (await crew.request("POST", "/api/password", { current: "Initial pass 1", password: "Own choice 22" })).json(),
    ).toEqual({ ok: true });
    expect((await crew.request("GET", "/api/status")).statusCode).toBe(200);
    expect((await crew.request("GET", "/api/session")).json()).toMatchObject({ mustChangePassword: false });
    expect((await other.request("GET", "/api/session")).json().user).toBeNull();
    expect((await login(rig, "crew3", "Initial pass 1")).statusCode).toBe(401);
    expect((await login(rig, "crew3", "Own choice 22")).json()).toMatchObject({ mustChangePassword: false });
    const actions = rig.audit.list({ limit: 20 }).map((r) => `${r.action}:${r.result}`);
    expect(actions).toEqual(expect.arrayContaining(["password.change:ok", "password.change:denied"]));
    expect(JSON.stringify(rig.audit.list({ limit: 100 }))).not.toMatch(/Own choice|Initial pass/);
  });

  it("lets an admin reset a locked-out user's password: unlocked, their sessions ended, to be changed at the next login", async () => {
    const rig = await startWeb(cleanup, "{ loginMaxFailures: 2 }");
    const admin = await setupAdmin(rig);
    const crew = await addUser(rig, admin, "crew4", "crew", "Forgotten 1234");
    for (let i = 0; i < 2; i++) await login(rig, "crew4", `try ${i}`);
    expect(
      (await admin.request("GET", "/api/users")).json().find((u: { username: string }) => u.username === "crew4"),
    ).toMatchObject({ lockedUntil: "2026-11-23T08:15:00.000Z" });
    expect(
      (await admin.request("POST", "/api/users/admin/password", { password: "Self reset 12" })).json().error.code,
    ).toBe("VG_USER_SELF");
    expect((await admin.request("POST", "/api/users/crew4/password", { password: "Temporary 123" })).json()).toEqual({
      ok: true,
    });
    expect((await crew.request("GET", "/api/session")).json().user).toBeNull();
    const back = await login(rig, "crew4", "Temporary 123");
    expect(back.json()).toMatchObject({ mustChangePassword: true });
    expect(rig.audit.list({ limit: 10 }).find((r) => r.action === "password.reset")).toMatchObject({
      actor: "admin",
      target: "crew4",
      result: "ok",
    });
  });

  it("asks for a new password at login once it is older than passwordMaxAgeDays", async () => {
    const rig = await startWeb(cleanup, "{ passwordMaxAgeDays: 90 }");
    await setupAdmin(rig);
    rig.clock.ms += 89 * 86_400_000;
    expect((await login(rig, "admin", "correct horse battery 1")).json().mustChangePassword).toBe(false);
    rig.clock.ms += 2 * 86_400_000;
    const old = clientFrom(rig, await login(rig, "admin", "correct horse battery 1"));
    expect((await old.request("GET", "/api/session")).json().mustChangePassword).toBe(true);
    expect((await old.request("GET", "/api/users")).statusCode).toBe(403);
    expect(
      (await old.request("POST", "/api/password", { current: "correct horse battery 1", password: "Next quarter 2" }))
        .statusCode,
    ).toBe(200);
    expect((await old.request("GET", "/api/users")).statusCode).toBe(200);
  });

  it("refuses a username that reads the same as an existing one: Cyrillic а, fullwidth, case, 1 for l", async () => {
    const rig = await startWeb(cleanup);
    const admin = await setupAdmin(rig, "admin");
    await addUser(rig, admin, "li.na", "viewer", "viewer pass 1");
    for (const lookalike of [
      "\u0430dmin",
      "Admin",
      "\uff41\uff44\uff4d\uff49\uff4e",
      "adm1n",
      "\u0430dm\u0456n",
      "1i.na",
      "LI.NA",
    ]) {
      const res = await admin.request("POST", "/api/users", {
        username: lookalike,
        password: "Lookalike 123",
        role: "admin",
      });
      expect(res.statusCode, lookalike).toBe(409);
      expect(res.json().error).toMatchObject({ code: "VG_USER_EXISTS", field: "username" });
    }
    expect(
      (await admin.request("POST", "/api/users", { username: "li.ming", password: "Lookalike 123", role: "viewer" }))
        .statusCode,
    ).toBe(201);
    expect(rig.ctx.db.prepare("SELECT count(*) FROM web_users").pluck().get()).toBe(3);
    // In the configuration too.
    const hash = await hashPassword("it provisioned 1");
    const r = loadConfig({
      text: `gateway: { id: g }\nweb: { users: [{ username: admin, role: admin, passwordHash: "${hash}" }, { username: "\u0430dmin", role: viewer, passwordHash: "${hash}" }] }\n`,
      file: "c.yaml",
      env: {},
      drivers: findDriver,
    });
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.errors[0]).toMatchObject({
        path: "web.users[1].username",
        message: '"\u0430dmin" reads the same as "admin"',
      });
  });
});

describe("the guard", () => {
  it("refuses every route that changes anything without a session (401) and without the CSRF token (403)", async () => {
    const rig = await startWeb(cleanup);
    const admin = await setupAdmin(rig);
    // Login and setup are the only changes made without a session (docs/web-api.md).
    const open = new Set(["POST /api/login", "POST /api/setup"]);
    const changing = rig.routes.filter(
      (r) => ["POST", "PUT", "DELETE", "PATCH"].includes(r.method) && !open.has(`${r.method} ${r.url}`),
    );
    expect(changing.map((r) => `${r.method} ${r.url}`)).toEqual(
      expect.arrayContaining(["POST /api/logout", "POST /api/users", "DELETE /api/users/:username"]),
    );
    for (const r of changing) {
      const url = r.url.replace(/:(\w+)/g, "x$1");
      const method = r.method as "POST";
      const none = await rig.app.inject({ method, url, payload: {} });
      expect(none.statusCode, `${r.method} ${r.url} without a session`).toBe(401);
      const noCsrf = await rig.app.inject({ method, url, payload: {}, headers: { cookie: admin.cookie } });
      expect(noCsrf.statusCode, `${r.method} ${r.url} without a CSRF token`).toBe(403);
      expect(noCsrf.json().error.code).toBe("VG_CSRF");
      const badCsrf = await rig.app.inject({
        method,
        url,
        payload: {},
        headers: { cookie: admin.cookie, "x-csrf-token": admin.csrf.replace(/^./, (c) => (c === "A" ? "B" : "A")) },
      });
      expect(badCsrf.statusCode, `${r.method} ${r.url} with a wrong CSRF token`).toBe(403);
      const foreign = await rig.app.inject({
        method,
        url,
        payload: {},
        headers: {
          cookie: admin.cookie,
          "x-csrf-token": admin.csrf,
          origin: "http://evil.example",
          host: "localhost:8080",
        },
      });
      expect(foreign.statusCode, `${r.method} ${r.url} from another origin`).toBe(403);
      expect(foreign.json().error.code).toBe("VG_ORIGIN");
    }
    // Audited once a minute per user, route and reason: the missing and the wrong token are one reason (csrf), the foreign origin another.
    expect(rig.audit.list({ limit: 500 }).filter((a) => a.action === "request.denied").length).toBe(
      changing.length * 2,
    );
    expect(
      (
        await rig.app.inject({
          method: "POST",
          url: "/api/login",
          payload: { username: "admin", password: "x" },
          headers: { origin: "http://evil.example", host: "localhost" },
        })
      ).statusCode,
    ).toBe(403);
  });

  it("reads need a session too, except the session itself and the machine endpoints", async () => {
    const rig = await startWeb(cleanup);
    const publicReads = new Set(["/api/session", "/healthz", "/metrics", "/status", "/*"]);
    const reads = rig.routes.filter((r) => r.method === "GET" && !publicReads.has(r.url));
    expect(reads.map((r) => r.url)).toEqual(
      expect.arrayContaining(["/api/status", "/api/users", "/api/audit", "/api/live"]),
    );
    for (const r of reads)
      expect((await rig.app.inject({ url: r.url.replace(/:(\w+)/g, "x$1") })).statusCode, r.url).toBe(401);
    expect((await rig.app.inject({ url: "/healthz" })).statusCode).toBe(200);
    expect((await rig.app.inject({ url: "/status" })).json().gateway.id).toBe("gw-web");
    expect((await rig.app.inject({ url: "/status", remoteAddress: FROM_LAN })).statusCode).toBe(403);
  });

  it("holds roles: a viewer reads but cannot add users; an admin can", async () => {
    const rig = await startWeb(cleanup);
    const admin = await setupAdmin(rig);
    const viewer = await addUser(rig, admin, "li.na", "viewer", "viewer pass 1");
    expect((await admin.request("GET", "/api/users")).json()[1]).toMatchObject({
      username: "li.na",
      role: "viewer",
      provisioned: false,
    });
    expect(
      (await admin.request("POST", "/api/users", { username: "li.na", password: "viewer pass 1", role: "viewer" }))
        .statusCode,
    ).toBe(409);
    expect((await viewer.request("GET", "/api/status")).statusCode).toBe(200);
    const denied = await viewer.request("POST", "/api/users", {
      username: "mallory",
      password: "mallory pass",
      role: "admin",
    });
    expect(denied.statusCode).toBe(403);
    expect(denied.json().error.code).toBe("VG_FORBIDDEN");
    expect((await viewer.request("GET", "/api/users")).statusCode).toBe(403);
    expect(rig.audit.list({ limit: 1 })[0]).toMatchObject({
      actor: "li.na",
      action: "request.denied",
      target: "GET /api/users",
      result: "denied",
    });
    const bad = await admin.request("POST", "/api/users", {
      username: "../x",
      password: "long enough",
      role: "viewer",
    });
    expect(bad.json().error).toMatchObject({ code: "VG_BAD_REQUEST", field: "username" });

    expect((await admin.request("DELETE", "/api/users/admin")).statusCode).toBe(409); // not yourself
    expect((await admin.request("DELETE", "/api/users/li.na")).json()).toEqual({ ok: true });
    expect((await viewer.request("GET", "/api/status")).statusCode).toBe(401); // removed: its sessions end
  });

  it("lets a user provisioned in the configuration log in, shows it read-only and refuses to delete it", async () => {
    const hash = await hashPassword("it provisioned 1");
    const rig = await startWeb(cleanup, `{ users: [{ username: it-admin, role: admin, passwordHash: "${hash}" }] }`);
    expect((await rig.app.inject({ url: "/api/session" })).json().setup).toBe(false);
    expect(
      (
        await rig.app.inject({
          method: "POST",
          url: "/api/setup",
          payload: { username: "x", password: "long enough 1" },
        })
      ).statusCode,
    ).toBe(409);
    const it = clientFrom(rig, await login(rig, "it-admin", "it provisioned 1"));
    const tech = await addUser(rig, it, "tech", "technician", "wrench pass 1");
    expect((await it.request("GET", "/api/users")).json()).toEqual([
      {
        username: "it-admin",
        role: "admin",
        provisioned: true,
        createdAt: null,
        mustChangePassword: false,
        lockedUntil: null,
      },
      {
        username: "tech",
        role: "technician",
        provisioned: false,
        createdAt: "2026-11-23T08:00:00.000Z",
        mustChangePassword: false,
        lockedUntil: null,
      },
    ]);
    // A provisioned user's password is IT's, in the configuration.
    expect(
      (await it.request("POST", "/api/password", { current: "it provisioned 1", password: "New password 22" })).json()
        .error.code,
    ).toBe("VG_USER_PROVISIONED");
    expect((await tech.request("GET", "/api/users")).statusCode).toBe(403);
    const del = await clientFrom(rig, await login(rig, "it-admin", "it provisioned 1")).request(
      "DELETE",
      "/api/users/it-admin",
    );
    expect(del.statusCode).toBe(409);
    expect((await it.request("DELETE", "/api/users/it-admin")).json().error.code).toBe("VG_USER_PROVISIONED");
  });
});

describe("Host and Origin", () => {
  it("refuses a name that is not the box's (DNS rebinding from a browser on the box cannot create the first admin)", async () => {
    const rig = await startWeb(cleanup, "{ hostNames: [vitalgate.clinic.lan] }");
    // evil.example re-pointed at 127.0.0.1: the browser sends its name, from loopback, where no setup code is asked.
    const rebound = await rig.app.inject({
      method: "POST",
      url: "/api/setup",
      payload: { username: "eve", password: "Rebound pass 1" },
      headers: { host: "evil.example:8080", origin: "http://evil.example:8080" },
    });
    expect(rebound.statusCode).toBe(421);
    expect(rebound.json().error.code).toBe("VG_HOST");
    expect((await rig.app.inject({ url: "/api/session", headers: { host: "evil.example:8080" } })).statusCode).toBe(
      421,
    );
    expect(rig.auth.needsSetup).toBe(true);
    const lan = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === "IPv4" && !a.internal)?.address;
    for (const host of [
      "localhost:8080",
      "127.0.0.1:8080",
      "[::1]:8080",
      "vitalgate.clinic.lan",
      "VITALGATE.clinic.lan:8080",
      hostname(),
      ...(lan ? [`${lan}:8080`] : []),
    ]) {
      expect((await rig.app.inject({ url: "/api/session", headers: { host } })).statusCode, host).toBe(200);
    }
    for (const host of ["evil.example", "vitalgate.clinic.lan.evil.example", "127.0.0.1.nip.io", "user@localhost"]) {
      expect((await rig.app.inject({ url: "/healthz", headers: { host } })).statusCode, host).toBe(421);
    }
  });

  it("compares Origin by scheme, host and port", async () => {
    const rig = await startWeb(cleanup);
    const setup = (origin: string) =>
      rig.app.inject({
        method: "POST",
        url: "/api/setup",
        payload: { username: "admin", password: "Origin pass 1" },
        headers: { host: "localhost:8080", origin },
      });
    for (const origin of [
      "https://localhost:8080",
      "http://localhost:8081",
      "http://localhost",
      "null",
      "http://127.0.0.1:8080",
    ]) {
      const r = await setup(origin);
      expect(r.statusCode, origin).toBe(403);
      expect(r.json().error.code).toBe("VG_ORIGIN");
    }
    expect((await setup("http://localhost:8080")).statusCode).toBe(200);
  });
});

describe("over HTTPS", () => {
  it("is HTTPS by default beyond loopback: a certificate made on first start, its fingerprint in the log and the status, HSTS", async () => {
    const { config, log } = await startGateway({ id: "gw-tls-default", devices: "  []", webHost: "0.0.0.0" }, cleanup);
    const certPem = readFileSync(join(config.stateDir, "web-tls/cert.pem"));
    const fingerprint = new X509Certificate(certPem).fingerprint256;
    expect(statSync(join(config.stateDir, "web-tls")).mode & 0o777).toBe(0o700);
    expect(log.raw.join("")).toContain(fingerprint);
    // Over TLS, the certificate the browser gets is that one (it names 127.0.0.1), and HSTS is set.
    const res = await new Promise<{ status: number; hsts: string | undefined; fingerprint: string }>(
      (resolve, reject) => {
        const req = httpsRequest({ host: "127.0.0.1", port: config.web.port, path: "/healthz", ca: certPem }, (r) => {
          r.resume();
          resolve({
            status: r.statusCode!,
            hsts: r.headers["strict-transport-security"],
            fingerprint: (r.socket as import("node:tls").TLSSocket).getPeerCertificate().fingerprint256,
          });
        });
        req.on("error", reject);
        req.end();
      },
    );
    expect(res).toEqual({ status: 200, hsts: "max-age=31536000", fingerprint });
    // Plain HTTP gets no page: the password cannot cross the LAN in clear.
    const plain = await new Promise<string>((resolve) => {
      get({ host: "127.0.0.1", port: config.web.port, path: "/healthz" }, (r) => resolve(`HTTP ${r.statusCode}`)).on(
        "error",
        (err) => resolve(err.message),
      );
    });
    expect(plain).not.toBe("HTTP 200");
    // `vitalgate status` on the box asks over HTTPS and shows the fingerprint.
    const file = join(config.stateDir, "vitalgate.yaml");
    writeFileSync(
      file,
      `gateway: { id: gw-tls-default }\nstateDir: ${config.stateDir}\nweb: { host: 0.0.0.0, port: ${config.web.port} }\n`,
    );
    const out: string[] = [];
    expect(await main(["status", "--config", file], { out: (t) => out.push(t), err: (t) => out.push(t) })).toBe(0);
    expect(JSON.parse(out.join("")).web).toEqual({
      https: true,
      certificate: {
        source: "self-signed",
        file: join(config.stateDir, "web-tls/cert.pem"),
        fingerprint256: fingerprint,
      },
    });
  });

  it("keeps the certificate it made across restarts (the fingerprint a user checked stays valid)", async () => {
    const first = await startGateway({ id: "gw-tls-keep", devices: "  []", webHost: "0.0.0.0" }, cleanup);
    const fingerprint = first.gw.status().web.certificate!.fingerprint256;
    await first.gw.stop();
    const again = await startGateway(
      { id: "gw-tls-keep", devices: "  []", webHost: "0.0.0.0", stateDir: first.config.stateDir },
      cleanup,
    );
    expect(again.gw.status().web.certificate!.fingerprint256).toBe(fingerprint);
  });

  it("stays plain HTTP on loopback alone", async () => {
    const { gw } = await startGateway({ id: "gw-tls-loop", devices: "  []" }, cleanup);
    expect(gw.status().web).toEqual({ https: false });
  });

  it("serves the page with the configured certificate and marks the session cookie Secure", async () => {
    const pki = makePki();
    const { config } = await startGateway(
      { id: "gw-tls-web", devices: "  []", web: `tls: { certFile: ${pki.serverCert}, keyFile: ${pki.serverKey} }` },
      cleanup,
    );
    const res = await new Promise<{ status: number; cookie: string; body: string }>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: "127.0.0.1",
          port: config.web.port,
          path: "/api/setup",
          method: "POST",
          ca: readFileSync(pki.ca),
          headers: { "content-type": "application/json" },
        },
        (r) => {
          let body = "";
          r.setEncoding("utf8")
            .on("data", (c: string) => (body += c))
            .on("end", () => resolve({ status: r.statusCode!, cookie: String(r.headers["set-cookie"]), body }));
        },
      );
      req.on("error", reject);
      req.end(JSON.stringify({ username: "admin", password: "correct horse battery 1" }));
    });
    expect(res.status, res.body).toBe(200);
    expect(res.cookie).toMatch(/; HttpOnly; SameSite=Strict; Max-Age=43200; Secure$/);
    // `vitalgate status` on the box asks over HTTPS too, whatever signed the page's certificate.
    const file = join(pki.dir, "vitalgate.yaml");
    writeFileSync(
      file,
      `gateway: { id: gw-tls-web }\nweb: { host: 127.0.0.1, port: ${config.web.port}, tls: { certFile: ${pki.serverCert}, keyFile: ${pki.serverKey} } }\n`,
    );
    const out: string[] = [];
    expect(await main(["status", "--config", file], { out: (t) => out.push(t), err: (t) => out.push(t) })).toBe(0);
    expect(JSON.parse(out.join("")).gateway.id).toBe("gw-tls-web");
  });
});

describe("the server", () => {
  it("sets the security headers on every answer, no-store on the API", async () => {
    const rig = await startWeb(cleanup);
    for (const url of ["/", "/api/session", "/api/users", "/healthz", "/nope.js"]) {
      const res = await rig.app.inject({ url });
      expect(res.headers["content-security-policy"], url).toContain("default-src 'self'");
      expect(res.headers["content-security-policy"], url).toContain("frame-ancestors 'none'");
      expect(res.headers["content-security-policy"], url).not.toContain("unsafe-inline");
      expect(res.headers["x-content-type-options"], url).toBe("nosniff");
      expect(res.headers["referrer-policy"], url).toBe("no-referrer");
      if (url.startsWith("/api/")) expect(res.headers["cache-control"], url).toBe("no-store");
    }
  });

  it("serves the files under web/ with their types, index.html at /, and nothing else", async () => {
    const rig = await startWeb(cleanup);
    const index = await rig.app.inject({ url: "/" });
    expect(index.statusCode).toBe(200);
    expect(index.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(index.body).toContain("<title>vitalgate</title>");
    expect((await rig.app.inject({ url: "/app.js" })).headers["content-type"]).toBe("text/javascript; charset=utf-8");
    // Links out of web/: to a file, and to a folder (whose files are regular files).
    symlinkSync(join(rig.stateDir, "secret.txt"), join(rig.webRoot, "link.txt"));
    symlinkSync(rig.stateDir, join(rig.webRoot, "linked"));
    for (const url of [
      "/../secret.txt",
      "/%2e%2e/secret.txt",
      "/..%2fsecret.txt",
      "/.hidden.js",
      "/missing.css",
      "/api/nothing",
      "/app.js/x",
      "/link.txt",
      "/linked/secret.txt",
    ]) {
      const res = await rig.app.inject({ url });
      expect(res.statusCode, url).toBe(404);
      expect(res.body, url).not.toContain("outside web/");
    }
  });

  it("streams published messages to a logged-in page over server-sent events, and ends the stream when the session does", async () => {
    const rig = await startWeb(cleanup);
    const admin = await setupAdmin(rig);
    await rig.app.listen({ host: "127.0.0.1", port: 0 });
    const { port } = rig.app.server.address() as AddressInfo;
    const received: string[] = [];
    const ended = new Promise<void>((resolve, reject) => {
      get({ host: "127.0.0.1", port, path: "/api/live", headers: { cookie: admin.cookie } }, (res) => {
        expect(res.statusCode).toBe(200);
        expect(res.headers["content-type"]).toBe("text/event-stream; charset=utf-8");
        expect(res.headers["content-security-policy"]).toContain("default-src 'self'");
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          received.push(chunk);
          if (chunk.startsWith("retry:"))
            rig.ctx.publish("values", {
              device: "monitor",
              observations: [{ code: "MDC_PULS_OXIM_SAT_O2", value: 97, unit: "%" }],
            });
          if (chunk.startsWith("event: values")) rig.clock.ms += 31 * 60_000; // the session expires while watching
        });
        res.on("end", resolve);
      }).on("error", reject);
    });
    await ended;
    expect(received.join("")).toContain(
      'event: values\ndata: {"device":"monitor","observations":[{"code":"MDC_PULS_OXIM_SAT_O2","value":97,"unit":"%"}]}\n\n',
    );
    expect(rig.live.streams).toBe(0);
    expect(() => rig.ctx.publish("bad\ntype", {})).toThrow();
  });

  it("drops messages for a page that does not read, instead of queueing them, and keeps the order of what it sends", async () => {
    const rig = await startWeb(cleanup);
    const admin = await setupAdmin(rig);
    await rig.app.listen({ host: "127.0.0.1", port: 0 });
    const { port } = rig.app.server.address() as AddressInfo;
    const N = 400;
    const pad = "x".repeat(64 * 1024); // 25 MiB in all: more than loopback socket buffers hold
    /** One page watching: the indices of the `big` events it got, whether it has seen `end`. */
    const watch = () => {
      const page = {
        got: [] as number[],
        ended: false,
        pause: () => undefined as unknown,
        resume: () => undefined as unknown,
      };
      return new Promise<typeof page>((resolve, reject) => {
        const req = get({ host: "127.0.0.1", port, path: "/api/live", headers: { cookie: admin.cookie } }, (res) => {
          let buf = "";
          res.setEncoding("utf8").on("data", (chunk: string) => {
            buf += chunk;
            const parts = buf.split("\n\n");
            buf = parts.pop()!;
            for (const m of parts) {
              if (m.startsWith("event: big"))
                page.got.push((JSON.parse(m.slice(m.indexOf("data: ") + 6)) as { i: number }).i);
              if (m.startsWith("event: end")) page.ended = true;
            }
          });
          page.pause = () => res.pause();
          page.resume = () => res.resume();
          resolve(page);
        });
        req.on("error", reject);
        cleanup.push(() => req.destroy());
      });
    };
    const reader = await watch();
    const stalled = await watch();
    stalled.pause();
    for (let i = 0; i < N; i++) {
      rig.ctx.publish("big", { i, pad });
      await new Promise((r) => setImmediate(r));
    }
    const dropped = rig.live.dropped;
    expect(dropped).toBeGreaterThan(0);
    const metrics = (await rig.app.inject({ url: "/metrics" })).body;
    expect(metrics).toMatch(new RegExp(`^vitalgate_web_live_dropped_total ${dropped}$`, "m"));
    expect(metrics).toMatch(/^vitalgate_web_live_streams 2$/m);
    stalled.resume();
    while (!stalled.ended || !reader.ended) {
      rig.ctx.publish("end", {});
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(reader.got).toEqual([...Array(N).keys()]);
    // What the stalled page missed was dropped, not queued: it got fewer, in order, none twice.
    expect(stalled.got.length).toBeLessThan(N);
    expect(N - stalled.got.length).toBeLessThanOrEqual(dropped);
    expect(stalled.got).toEqual([...new Set(stalled.got)].sort((a, b) => a - b));
  });

  it("refuses streams beyond the cap, and one session beyond its share: one viewer cannot take them all", async () => {
    const rig = await startWeb(cleanup, "{}");
    const admin = await setupAdmin(rig);
    await rig.app.listen({ host: "127.0.0.1", port: 0 });
    const { port } = rig.app.server.address() as AddressInfo;
    const open = (cookie: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = get({ host: "127.0.0.1", port, path: "/api/live", headers: { cookie } }, (res) =>
          resolve(res.statusCode!),
        );
        req.on("error", reject);
        cleanup.push(() => req.destroy());
      });
    const perSession = rig.live.maxPerSession;
    expect(perSession).toBeLessThanOrEqual(4);
    for (let i = 0; i < perSession; i++) expect(await open(admin.cookie)).toBe(200);
    expect(await open(admin.cookie)).toBe(429);
    expect(rig.live.streams).toBe(perSession);
    // Other sessions fill the rest, up to the cap.
    while (rig.live.streams < rig.live.maxStreams) {
      const other = clientFrom(rig, await login(rig, "admin", "correct horse battery 1"));
      for (let i = 0; i < perSession && rig.live.streams < rig.live.maxStreams; i++)
        expect(await open(other.cookie)).toBe(200);
    }
    expect(await open(clientFrom(rig, await login(rig, "admin", "correct horse battery 1")).cookie)).toBe(503);
  });
});
