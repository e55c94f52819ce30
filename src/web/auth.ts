// Who may use the page (issue 6, docs/security.md#the-web-page): users with scrypt password hashes
// (in the local database, or provisioned in the configuration), the first-run setup of the first
// admin, sessions that end when idle and outlive a restart (the box loses power with the ignition),
// a CSRF token per session, a login rate limit, the guard every route module puts in front of its
// routes, and the session and user routes.
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from "node:crypto";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { z } from "zod";
import { PASSWORD_HASH_PATTERN, webUsername } from "../config/schema.ts";
import type { LocalDb } from "../local-db.ts";
import type { AuditLog } from "../audit/audit.ts";
import { PERMISSIONS, ROLES, type Permission, type Role, type SessionUser } from "../users/roles.ts";
import { parseBody, sendError } from "./http-errors.ts";
import { normalizeUsername, passwordProblem, usernameSkeleton, type PasswordPolicy } from "../users/identity.ts";

/** scrypt cost for new hashes: N = 2^15, r = 8, p = 1 (32 MiB, ~0.1 s on a small ARM box). */
const SCRYPT = { N: 1 << 15, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
/** The largest cost a stored hash may ask for: a hash from the configuration must not exhaust memory. */
const MAX_SCRYPT_MEM = 256 * 1024 * 1024;
/** A session ends this long after login, however active. */
export const SESSION_MAX_MS = 12 * 3_600_000;
/** Sessions held at once; the oldest goes first beyond it. */
const MAX_SESSIONS = 500;
/** A session's last activity is written to the database at most this often: after a restart its idle time is late by no more. */
const SESSION_SAVE_MS = 60_000;
/** Failure counters held in memory at once (client addresses); expired ones are pruned beyond it. */
const MAX_LIMIT_KEYS = 10_000;
/** Failed logins kept in the database (per username, for the lockout); the oldest go first beyond it. */
const MAX_FAILURE_ROWS = 10_000;
/**
 * scrypt runs at most this many at once, with at most MAX_HASH_WAITING more waiting; beyond, 503.
 * Each takes 32 MiB and a thread of libuv's pool of four, which file reads share: a burst of logins
 * must not take the box's memory or stall the watched folders.
 */
const MAX_HASHING = 2;
const MAX_HASH_WAITING = 16;
const COOKIE = "vg_session";
const CHANGING = new Set(["POST", "PUT", "DELETE", "PATCH"]);

function scrypt(password: string, salt: Buffer, params: { N: number; r: number; p: number }): Promise<Buffer> {
  // maxmem above scrypt's own need (128·N·r·p bytes, checked in parseHash) with room to spare.
  const options: ScryptOptions = { ...params, maxmem: MAX_SCRYPT_MEM + (16 << 20) };
  return new Promise((resolve, reject) =>
    scryptCb(password.normalize("NFC"), salt, KEY_BYTES, options, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** A new hash of `password`: `scrypt$N$r$p$salt$hash`, salt and hash in base64. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString("base64")}$${key.toString("base64")}`;
}

function parseHash(stored: string): { N: number; r: number; p: number; salt: Buffer; key: Buffer } | null {
  if (!PASSWORD_HASH_PATTERN.test(stored)) return null;
  const [, n, r, p, salt, key] = stored.split("$") as [string, string, string, string, string, string];
  const params = { N: Number(n), r: Number(r), p: Number(p) };
  const powerOfTwo = params.N > 1 && (params.N & (params.N - 1)) === 0;
  if (!powerOfTwo || params.r < 1 || params.p < 1 || 128 * params.N * params.r * params.p > MAX_SCRYPT_MEM) return null;
  return { ...params, salt: Buffer.from(salt, "base64"), key: Buffer.from(key, "base64") };
}

/** Whether `password` matches `stored`, in constant time; a malformed hash matches nothing. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const h = parseHash(stored);
  if (!h) return false;
  const key = await scrypt(password, h.salt, h);
  return key.length === h.key.length && timingSafeEqual(key, h.key);
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export interface ProvisionedUser {
  username: string;
  role: Role;
  passwordHash: string;
}

export interface AuthOptions {
  db: LocalDb;
  audit: AuditLog;
  log: Logger;
  /** Synchronized time, for what is recorded (a user's creation, a session's last use as kept on disk). */
  nowMs(): number;
  /**
   * Monotonic ms since boot, for every duration (idle time, a session's age, the login window): a
   * step of the clock (the first GPS fix after a boot in 1970) logs nobody out and unlocks nobody.
   */
  monoMs(): number;
  /** The kernel's boot id `monoMs` counts in: a session kept across a restart in the same boot keeps its monotonic times. */
  bootId?: string;
  users: readonly ProvisionedUser[];
  sessionIdleMin: number;
  /** Failed logins per username within loginWindowS before the username is locked (kept across restarts). */
  loginMaxFailures: number;
  /** Failed logins per client address within loginWindowS: an anti-flood bound, far above the per-username one (a crew tablet is shared). */
  addressMaxFailures: number;
  loginWindowS: number;
  password: PasswordPolicy & { maxAgeDays: number };
  /** Where the first-run setup code is kept while no user exists (`<stateDir>/setup-code`). */
  setupCodeFile: string;
  /** Told each login's outcome (for /metrics). */
  onLogin?: (result: "ok" | "failed" | "limited") => void;
}

interface Session {
  /** SHA-256 of the cookie's id: what the database keeps, so that a copy of it opens no session. */
  key: string;
  user: SessionUser;
  csrf: string;
  /** Monotonic ms (since boot) when it was opened and last used: what its age and idle time count from. */
  createdMono: number;
  lastMono: number;
  /** The lastMono the database holds. */
  savedMono: number;
  /** The user must change their password before anything else (an initial or reset one, or one past its age). */
  mustChange: boolean;
}

interface FoundUser {
  user: SessionUser;
  hash: string;
  provisioned: boolean;
  mustChange: boolean;
}

/** A session as the database keeps it. */
interface SessionRow {
  key: string;
  username: string;
  role: Role;
  csrf: string;
  created_ms: number;
  last_ms: number;
  boot: string | null;
  created_mono: number | null;
  last_mono: number | null;
}

const sessionKey = (id: string) => createHash("sha256").update(id).digest("hex");

// The password's policy (length, classes) depends on the configuration: checked after the shape, by #weak.
const password = () => z.string().min(1).max(256);
const username = () => webUsername().transform(normalizeUsername);
const credentials = z.strictObject({ username: username(), password: password() });
const setupBody = z.strictObject({
  username: username(),
  password: password(),
  setupCode: z.string().max(64).optional(),
});
const newUser = z.strictObject({ username: username(), password: password(), role: z.enum(ROLES) });
const passwordChange = z.strictObject({ current: password(), password: password() });
const passwordReset = z.strictObject({ password: password() });

/**
 * True for a request from the box itself: from a loopback address, or from one of the box's own
 * addresses to itself. By the socket, not by headers: no proxy header is trusted.
 */
export function fromBox(request: FastifyRequest): boolean {
  const { remoteAddress, localAddress } = request.socket;
  if (!remoteAddress) return false;
  return (
    remoteAddress === "::1" ||
    remoteAddress.startsWith("127.") ||
    remoteAddress.startsWith("::ffff:127.") ||
    remoteAddress === localAddress
  );
}

export class Auth {
  #o: AuthOptions;
  #sessions = new Map<string, Session>();
  /** Failed logins per client address (the anti-flood bound), in memory: the per-username ones are in the database. */
  #addressFailures = new Map<string, number[]>();
  /** Checks under way (password being hashed) per limit key: counted with the failures, so a burst cannot slip past the limit. */
  #pending = new Map<string, number>();
  /**
   * A hash of nothing anyone knows: unknown users are checked against it, so they cost the same.
   * Made at the first login (every login waits for it), not at start: a daemon nobody logs in to
   * never pays for it.
   */
  #dummyHash: Promise<string> | null = null;
  #setupCode: string | null = null;
  #hashing = 0;
  #hashWaiting: (() => void)[] = [];

  constructor(o: AuthOptions) {
    this.#o = o;
    // The tables are local.db's (src/local-db.ts).
    // Those certainly over; one whose idle time cannot be told yet is refused when it comes back.
    for (const row of o.db.prepare("SELECT * FROM web_sessions").all() as SessionRow[]) {
      const times = this.#times(row);
      if (times && !this.#alive(times)) this.#forget(row.key);
    }
  }

  /**
   * A kept session's monotonic times in this boot. Kept in this boot: as they were. From another
   * boot (the monotonic clock started again): by its recorded times on the synchronized clock, as
   * far as they can be trusted; a last use that lies ahead of now (the box's clock was, or is,
   * wrong) says nothing of how long it has been idle, and the session is not taken back.
   */
  #times(row: SessionRow): { createdMono: number; lastMono: number } | null {
    const mono = this.#o.monoMs();
    if (row.boot !== null && row.boot === this.#o.bootId && row.created_mono !== null && row.last_mono !== null)
      return { createdMono: row.created_mono, lastMono: row.last_mono };
    const now = this.#o.nowMs();
    if (row.last_ms > now || row.created_ms > now) return null;
    return { createdMono: mono - (now - row.created_ms), lastMono: mono - (now - row.last_ms) };
  }

  #alive(t: { createdMono: number; lastMono: number }): boolean {
    const mono = this.#o.monoMs();
    return mono - t.lastMono <= this.#o.sessionIdleMin * 60_000 && mono - t.createdMono <= SESSION_MAX_MS;
  }

  /** No user at all yet: the page offers the first-run setup. */
  get needsSetup(): boolean {
    return this.#o.users.length === 0 && this.#o.db.prepare("SELECT 1 FROM web_users LIMIT 1").get() === undefined;
  }

  /**
   * While no user exists, makes sure a setup code is waiting in its file (mode 0600; kept across
   * restarts, so the code read once stays valid) and logs where, never the code itself.
   */
  prepareSetup(): void {
    if (!this.needsSetup) {
      rmSync(this.#o.setupCodeFile, { force: true });
      return;
    }
    if (existsSync(this.#o.setupCodeFile)) this.#setupCode = readFileSync(this.#o.setupCodeFile, "utf8").trim();
    if (!this.#setupCode) {
      this.#setupCode = randomBytes(9).toString("base64url");
      writeFileSync(this.#o.setupCodeFile, `${this.#setupCode}\n`, { mode: 0o600 });
    }
    this.#o.log.info(
      { code: "VG_WEB_SETUP", file: this.#o.setupCodeFile },
      `no web user yet: open the page and create the admin, with the setup code from ${this.#o.setupCodeFile} (not needed from the box itself)`,
    );
  }

  #findUser(username: string): FoundUser | null {
    const p = this.#o.users.find((u) => u.username === username);
    if (p) return { user: { username, role: p.role }, hash: p.passwordHash, provisioned: true, mustChange: false };
    const row = this.#o.db
      .prepare("SELECT role, hash, created_at, must_change, changed_ms FROM web_users WHERE username = ?")
      .get(username) as
      { role: Role; hash: string; created_at: string; must_change: number; changed_ms: number | null } | undefined;
    if (!row) return null;
    const maxAgeMs = this.#o.password.maxAgeDays * 86_400_000;
    const expired = maxAgeMs > 0 && this.#o.nowMs() - (row.changed_ms ?? Date.parse(row.created_at)) > maxAgeMs;
    return {
      user: { username, role: row.role },
      hash: row.hash,
      provisioned: false,
      mustChange: row.must_change === 1 || expired,
    };
  }

  /** An existing user whose name reads the same as `username` (same skeleton: Cyrillic `а`dmin beside `admin`). */
  #lookalike(username: string): string | undefined {
    const skeleton = usernameSkeleton(username);
    const stored = this.#o.db.prepare("SELECT username FROM web_users").pluck().all() as string[];
    return [...this.#o.users.map((u) => u.username), ...stored].find((u) => usernameSkeleton(u) === skeleton);
  }

  /** 400 naming the password's problem, true when it has one. */
  #weak(reply: FastifyReply, password: string, username: string): boolean {
    const problem = passwordProblem(password, username, this.#o.password);
    if (problem) sendError(reply, 400, "VG_PASSWORD_WEAK", `password: ${problem}`, { field: "password" });
    return problem !== null;
  }

  /** Runs `fn` (scrypt work) within the concurrency cap; null when too many are already waiting. */
  async #limited<T>(fn: () => Promise<T>): Promise<T | null> {
    if (this.#hashing >= MAX_HASHING) {
      if (this.#hashWaiting.length >= MAX_HASH_WAITING) return null;
      await new Promise<void>((resolve) => this.#hashWaiting.push(resolve));
    } else {
      this.#hashing++;
    }
    try {
      return await fn();
    } finally {
      // The slot passes straight to the next in line, so no newcomer slips past the cap.
      const next = this.#hashWaiting.shift();
      if (next) next();
      else this.#hashing--;
    }
  }

  // --- lockout and rate limit -------------------------------------------------------------------
  //
  // A username is locked after loginMaxFailures failures within the window (kept in the database:
  // a restart does not unlock it); a client address only after addressMaxFailures (an anti-flood
  // bound: a crew tablet is shared, and one crew member's typos must not lock out the others).
  // A check is counted the moment it starts, before the password is hashed, so concurrent guesses
  // cannot all pass the limit while the first ones are still being hashed.

  #windowMs(): number {
    return this.#o.loginWindowS * 1000;
  }

  #recentAddress(key: string, now: number): number[] {
    const times = (this.#addressFailures.get(key) ?? []).filter((t) => t > now - this.#windowMs());
    if (times.length) this.#addressFailures.set(key, times);
    else this.#addressFailures.delete(key);
    return times;
  }

  /**
   * The username's failures within the window, as monotonic times of this boot, oldest first. From
   * this boot: as recorded. From another (the monotonic clock started again): by the synchronized
   * clock; a failure recorded ahead of now (the clock was, or is, wrong) counts as just now, so a
   * clock step never unlocks a user.
   */
  #recentUser(username: string, mono: number): number[] {
    const now = this.#o.nowMs();
    const rows = this.#o.db
      .prepare("SELECT at_ms, boot, at_mono FROM web_login_failures WHERE username = ?")
      .all(username) as { at_ms: number; boot: string | null; at_mono: number | null }[];
    return rows
      .map((r) =>
        r.boot !== null && r.boot === this.#o.bootId && r.at_mono !== null
          ? r.at_mono
          : mono - Math.max(0, now - r.at_ms),
      )
      .filter((t) => t > mono - this.#windowMs())
      .sort((a, b) => a - b);
  }

  /**
   * Whether another check is allowed now for this address and username (counting the checks under
   * way); if not, why and for how many seconds.
   */
  #blocked(
    ip: string,
    username: string | null,
  ): { code: "VG_ACCOUNT_LOCKED" | "VG_TOO_MANY_ATTEMPTS"; waitS: number } | null {
    const now = this.#o.monoMs();
    const limits = [
      {
        key: `ip:${ip}`,
        times: this.#recentAddress(`ip:${ip}`, now),
        max: this.#o.addressMaxFailures,
        code: "VG_TOO_MANY_ATTEMPTS" as const,
      },
      ...(username === null
        ? []
        : [
            {
              key: `user:${username}`,
              times: this.#recentUser(username, now),
              max: this.#o.loginMaxFailures,
              code: "VG_ACCOUNT_LOCKED" as const,
            },
          ]),
    ];
    for (const { key, times, max, code } of limits) {
      if (times.length >= max)
        return { code, waitS: Math.max(1, Math.ceil((times[times.length - max]! + this.#windowMs() - now) / 1000)) };
      // Full with the checks under way: their outcome decides; come back in a moment.
      if (times.length + (this.#pending.get(key) ?? 0) >= max) return { code, waitS: 1 };
    }
    return null;
  }

  /** Counts a check under way for these keys until the returned function is called. */
  #reserve(keys: string[]): () => void {
    for (const key of keys) this.#pending.set(key, (this.#pending.get(key) ?? 0) + 1);
    return () => {
      for (const key of keys) {
        const n = (this.#pending.get(key) ?? 1) - 1;
        if (n > 0) this.#pending.set(key, n);
        else this.#pending.delete(key);
      }
    };
  }

  /** Records a failure for the address and, if given, the username; true when it has just locked the username. */
  #fail(ip: string, username: string | null): boolean {
    const now = this.#o.monoMs();
    if (this.#addressFailures.size > MAX_LIMIT_KEYS)
      for (const key of [...this.#addressFailures.keys()]) this.#recentAddress(key, now);
    const key = `ip:${ip}`;
    this.#addressFailures.set(key, [...this.#recentAddress(key, now), now].slice(-this.#o.addressMaxFailures));
    if (username === null) return false;
    const db = this.#o.db;
    db.prepare("INSERT INTO web_login_failures (username, at_ms, boot, at_mono) VALUES (?, ?, ?, ?)").run(
      username,
      this.#o.nowMs(),
      this.#o.bootId ?? null,
      now,
    );
    db.prepare("DELETE FROM web_login_failures WHERE rowid <= (SELECT max(rowid) FROM web_login_failures) - ?").run(
      MAX_FAILURE_ROWS,
    );
    return this.#recentUser(username, now).length === this.#o.loginMaxFailures;
  }

  #clearFailures(username: string): void {
    this.#o.db.prepare("DELETE FROM web_login_failures WHERE username = ?").run(username);
  }

  /** The lockout's end for a username (on the synchronized clock), or null when it is not locked. */
  #lockedUntil(username: string): string | null {
    const mono = this.#o.monoMs();
    const times = this.#recentUser(username, mono);
    const max = this.#o.loginMaxFailures;
    return times.length >= max
      ? new Date(this.#o.nowMs() + times[times.length - max]! + this.#windowMs() - mono).toISOString()
      : null;
  }

  // --- sessions ---------------------------------------------------------------------------------

  /** Opens a session: returns it with the id for the cookie, which is kept nowhere but there. */
  #open(user: SessionUser, mustChange: boolean): { id: string; session: Session } {
    const db = this.#o.db;
    const now = this.#o.nowMs();
    const mono = this.#o.monoMs();
    const held = db.prepare("SELECT count(*) FROM web_sessions").pluck().get() as number;
    if (held >= MAX_SESSIONS) {
      for (const key of db
        .prepare("SELECT key FROM web_sessions ORDER BY created_ms LIMIT ?")
        .pluck()
        .all(held - MAX_SESSIONS + 1) as string[])
        this.#forget(key);
    }
    const id = randomBytes(32).toString("base64url");
    const session = {
      key: sessionKey(id),
      user,
      csrf: randomBytes(32).toString("base64url"),
      createdMono: mono,
      lastMono: mono,
      savedMono: mono,
      mustChange,
    };
    db.prepare(
      "INSERT INTO web_sessions (key, username, role, csrf, created_ms, last_ms, boot, created_mono, last_mono) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ).run(session.key, user.username, user.role, session.csrf, now, now, this.#o.bootId ?? null, mono, mono);
    this.#cache(session);
    return { id, session };
  }

  /** The sessions in memory are a cache of the table's: the least recently opened or loaded goes first. */
  #cache(session: Session): void {
    if (this.#sessions.size >= MAX_SESSIONS) this.#sessions.delete(this.#sessions.keys().next().value!);
    this.#sessions.set(session.key, session);
  }

  /**
   * A session kept in the database from before a restart, if its user still exists with the same
   * role (a user removed from the configuration, or whose role changed, while the box was off, has
   * lost it).
   */
  #load(key: string): Session | undefined {
    const row = this.#o.db.prepare("SELECT * FROM web_sessions WHERE key = ?").get(key) as SessionRow | undefined;
    if (!row) return undefined;
    const times = this.#times(row);
    const found = this.#findUser(row.username);
    if (!found || found.user.role !== row.role) {
      this.#forget(key);
      return undefined;
    }
    if (!times) {
      this.#forget(key);
      return undefined;
    }
    const session = {
      key,
      user: found.user,
      csrf: row.csrf,
      ...times,
      savedMono: times.lastMono,
      mustChange: found.mustChange,
    };
    this.#cache(session);
    return session;
  }

  #forget(key: string): void {
    this.#sessions.delete(key);
    this.#o.db.prepare("DELETE FROM web_sessions WHERE key = ?").run(key);
  }

  /** The request's live session, without touching its idle timer. */
  #peek(request: FastifyRequest): Session | null {
    const id = cookie(request.headers.cookie, COOKIE);
    if (!id) return null;
    const key = sessionKey(id);
    const s = this.#sessions.get(key) ?? this.#load(key);
    if (!s) return null;
    if (!this.#alive(s)) {
      this.#forget(key);
      return null;
    }
    return s;
  }

  #session(request: FastifyRequest): Session | null {
    const s = this.#peek(request);
    if (!s) return null;
    s.lastMono = this.#o.monoMs();
    if (s.lastMono - s.savedMono >= SESSION_SAVE_MS) {
      this.#o.db
        .prepare("UPDATE web_sessions SET last_ms = ?, boot = ?, created_mono = ?, last_mono = ? WHERE key = ?")
        .run(this.#o.nowMs(), this.#o.bootId ?? null, s.createdMono, s.lastMono, s.key);
      s.savedMono = s.lastMono;
    }
    return s;
  }

  /**
   * For a long-lived response (the live stream): the request's session, and whether it is still
   * valid. While `keepAwake` holds (a case is open), the page watching counts as in use: the crew is
   * with the patient, not tapping the tablet, and the reading must still reach it. The absolute
   * session limit still ends it.
   */
  streamOwner(request: FastifyRequest, keepAwake?: () => boolean): { session: string; alive: () => boolean } {
    return {
      session: this.#peek(request)?.key ?? "",
      alive: () => (keepAwake?.() ? this.#session(request) : this.#peek(request)) !== null,
    };
  }

  #setCookie(request: FastifyRequest, reply: FastifyReply, value: string, maxAgeS: number): void {
    const secure = request.protocol === "https" ? "; Secure" : "";
    reply.header("set-cookie", `${COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${secure}`);
  }

  #startSession(
    request: FastifyRequest,
    reply: FastifyReply,
    user: SessionUser,
    mustChange = false,
  ): { user: SessionUser; csrf: string; mustChangePassword: boolean } {
    // A login always gets a new id, and the one the browser held before ends: no session fixation.
    const previous = cookie(request.headers.cookie, COOKIE);
    if (previous) this.#forget(sessionKey(previous));
    const { id, session } = this.#open(user, mustChange);
    this.#setCookie(request, reply, id, SESSION_MAX_MS / 1000);
    return { user, csrf: session.csrf, mustChangePassword: mustChange };
  }

  /** Ends every session of `username` (removed user, new password), but `except` (the one that changed it). */
  #endSessionsOf(username: string, except?: string): void {
    for (const [key, s] of this.#sessions)
      if (s.user.username === username && key !== except) this.#sessions.delete(key);
    this.#o.db.prepare("DELETE FROM web_sessions WHERE username = ? AND key IS NOT ?").run(username, except ?? null);
  }

  // --- the guard --------------------------------------------------------------------------------

  /**
   * A hook (onRequest, or preHandler) that lets a request through only with a live session whose
   * role holds `permission`, and, for a change, the session's CSRF token and no foreign Origin.
   */
  guard(permission: Permission): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
    return this.#guard(permission, false);
  }

  /**
   * The guard; `whileMustChange`: the route is one a user who must change their password may still
   * use (changing it, logging out); every other answers 403 VG_PASSWORD_CHANGE_REQUIRED.
   */
  #guard(
    permission: Permission,
    whileMustChange: boolean,
  ): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
    return async (request, reply) => {
      const s = this.#session(request);
      if (!s) return void sendError(reply, 401, "VG_AUTH_REQUIRED", "log in first");
      request.user = s.user;
      if (s.mustChange && !whileMustChange)
        return void sendError(reply, 403, "VG_PASSWORD_CHANGE_REQUIRED", "change your password first");
      const deny = (code: string, message: string, why: string) => {
        const target = `${request.method} ${request.routeOptions.url ?? request.url.split("?")[0]!.slice(0, 100)}`;
        this.#o.audit.recordBounded(`denied|${s.user.username}|${request.ip}|${target}|${why}`, {
          actor: s.user.username,
          ip: request.ip,
          action: "request.denied",
          target,
          detail: { why },
          result: "denied",
        });
        sendError(reply, 403, code, message);
      };
      if (CHANGING.has(request.method)) {
        if (!originMatches(request)) return deny("VG_ORIGIN", "the request comes from another site", "origin");
        const token = request.headers["x-csrf-token"];
        if (typeof token !== "string" || !sameSecret(token, s.csrf))
          return deny("VG_CSRF", "missing or wrong x-csrf-token: reload the page", "csrf");
      }
      if (!PERMISSIONS[s.user.role].includes(permission))
        return deny("VG_FORBIDDEN", `the ${s.user.role} role may not do this`, `needs ${permission}`);
    };
  }

  // --- routes -----------------------------------------------------------------------------------

  register(app: FastifyInstance): void {
    const { audit } = this.#o;

    app.get("/api/session", async (request) => {
      const s = this.#session(request);
      const setup = this.needsSetup;
      const codeRequired = setup && !fromBox(request);
      // Where the code is, for the page's hint: said only while it is asked for.
      return {
        user: s?.user ?? null,
        ...(s ? { csrf: s.csrf, mustChangePassword: s.mustChange } : {}),
        setup,
        setupCodeRequired: codeRequired,
        ...(codeRequired ? { setupCodeFile: this.#o.setupCodeFile } : {}),
      };
    });

    app.post("/api/setup", { onRequest: sameOrigin }, async (request, reply) => {
      if (!this.needsSetup) return sendError(reply, 409, "VG_SETUP_DONE", "setup is done: log in");
      const body = parseBody(setupBody, request.body, reply);
      if (!body || this.#weak(reply, body.password, body.username)) return;
      const blocked = this.#blocked(request.ip, null);
      if (blocked) return tooMany(reply, blocked, this.#o.nowMs());
      if (
        !fromBox(request) &&
        !(this.#setupCode && body.setupCode && sameSecret(body.setupCode.trim(), this.#setupCode))
      ) {
        this.#fail(request.ip, null);
        audit.record({
          actor: body.username,
          ip: request.ip,
          action: "setup",
          result: "denied",
          detail: { why: "setup code" },
        });
        return sendError(
          reply,
          403,
          "VG_SETUP_CODE",
          `wrong or missing setup code (in ${this.#o.setupCodeFile} on the box)`,
          { field: "setupCode" },
        );
      }
      const hash = await this.#limited(() => hashPassword(body.password));
      if (hash === null) return busy(reply);
      // Checked again after the (slow) hash: two setups racing must not both create an admin.
      if (!this.needsSetup) return sendError(reply, 409, "VG_SETUP_DONE", "setup is done: log in");
      const now = this.#o.nowMs();
      this.#o.db
        .prepare("INSERT INTO web_users (username, role, hash, created_at, changed_ms) VALUES (?, 'admin', ?, ?, ?)")
        .run(body.username, hash, new Date(now).toISOString(), now);
      rmSync(this.#o.setupCodeFile, { force: true });
      this.#setupCode = null;
      audit.record({
        actor: body.username,
        ip: request.ip,
        action: "setup",
        target: body.username,
        detail: { role: "admin" },
        result: "ok",
      });
      return this.#startSession(request, reply, { username: body.username, role: "admin" });
    });

    app.post("/api/login", { onRequest: sameOrigin }, async (request, reply) => {
      const body = parseBody(credentials, request.body, reply);
      if (!body) return;
      const blocked = this.#blocked(request.ip, body.username);
      if (blocked) {
        // Counted, not audited: the failures that led here are, and a flood of refused attempts must not fill the disk.
        this.#o.onLogin?.("limited");
        return tooMany(reply, blocked, this.#o.nowMs());
      }
      const release = this.#reserve([`ip:${request.ip}`, `user:${body.username}`]);
      const found = this.#findUser(body.username);
      const ok = await this.#limited(async () => {
        this.#dummyHash ??= hashPassword(randomBytes(16).toString("hex"));
        const dummy = await this.#dummyHash;
        return verifyPassword(body.password, found?.hash ?? dummy);
      }).finally(release);
      if (ok === null) return busy(reply);
      if (!found || !ok) {
        const locked = this.#fail(request.ip, body.username);
        audit.record({ actor: body.username, ip: request.ip, action: "login", result: "failed" });
        if (locked)
          audit.record({
            actor: "system",
            ip: request.ip,
            action: "user.locked",
            target: body.username,
            detail: { failures: this.#o.loginMaxFailures, windowS: this.#o.loginWindowS },
            result: "ok",
          });
        this.#o.onLogin?.("failed");
        return sendError(reply, 401, "VG_LOGIN_FAILED", "wrong username or password");
      }
      // Only this username's failures: an attacker's own good login must not reset the address's count.
      this.#clearFailures(body.username);
      audit.record({
        actor: body.username,
        ip: request.ip,
        action: "login",
        result: "ok",
        ...(found.mustChange ? { detail: { mustChangePassword: true } } : {}),
      });
      this.#o.onLogin?.("ok");
      return this.#startSession(request, reply, found.user, found.mustChange);
    });

    app.post("/api/logout", { onRequest: this.#guard("read", true) }, async (request, reply) => {
      const id = cookie(request.headers.cookie, COOKIE);
      if (id) this.#forget(sessionKey(id));
      this.#setCookie(request, reply, "", 0);
      audit.record({ actor: request.user!.username, ip: request.ip, action: "logout", result: "ok" });
      return { ok: true };
    });

    // Change one's own password: the current one is checked (and counted like a login), the new one must meet the policy.
    app.post("/api/password", { onRequest: this.#guard("read", true) }, async (request, reply) => {
      const body = parseBody(passwordChange, request.body, reply);
      if (!body) return;
      const { username } = request.user!;
      const found = this.#findUser(username);
      if (!found) return sendError(reply, 401, "VG_AUTH_REQUIRED", "log in first");
      if (found.provisioned)
        return sendError(
          reply,
          409,
          "VG_USER_PROVISIONED",
          `"${username}" is provisioned in the configuration: its password is changed there`,
        );
      if (this.#weak(reply, body.password, username)) return;
      if (body.password === body.current)
        return sendError(reply, 400, "VG_PASSWORD_REUSED", "password: must differ from the current one", {
          field: "password",
        });
      const blocked = this.#blocked(request.ip, username);
      if (blocked) return tooMany(reply, blocked, this.#o.nowMs());
      const release = this.#reserve([`ip:${request.ip}`, `user:${username}`]);
      const hash = await this.#limited(async () =>
        (await verifyPassword(body.current, found.hash)) ? hashPassword(body.password) : false,
      ).finally(release);
      if (hash === null) return busy(reply);
      if (hash === false) {
        this.#fail(request.ip, username);
        audit.record({
          actor: username,
          ip: request.ip,
          action: "password.change",
          target: username,
          detail: { why: "current password" },
          result: "denied",
        });
        return sendError(reply, 403, "VG_PASSWORD_WRONG", "the current password is wrong", { field: "current" });
      }
      this.#setPassword(username, hash, false);
      const id = cookie(request.headers.cookie, COOKIE);
      const key = id ? sessionKey(id) : undefined;
      // Other sessions of this user end (a password changed because it leaked); this one goes on.
      this.#endSessionsOf(username, key);
      const s = key ? this.#sessions.get(key) : undefined;
      if (s) s.mustChange = false;
      audit.record({ actor: username, ip: request.ip, action: "password.change", target: username, result: "ok" });
      return { ok: true };
    });

    app.get("/api/users", { onRequest: this.guard("admin") }, async () => {
      const stored = this.#o.db
        .prepare("SELECT username, role, created_at AS createdAt FROM web_users ORDER BY username")
        .all() as { username: string; role: Role; createdAt: string }[];
      return [
        ...this.#o.users.map((u) => ({
          username: u.username,
          role: u.role,
          provisioned: true,
          createdAt: null,
          mustChangePassword: false,
          lockedUntil: this.#lockedUntil(u.username),
        })),
        ...stored
          .filter((u) => !this.#o.users.some((p) => p.username === u.username))
          .map((u) => ({
            ...u,
            provisioned: false,
            mustChangePassword: this.#findUser(u.username)?.mustChange ?? false,
            lockedUntil: this.#lockedUntil(u.username),
          })),
      ];
    });

    app.post("/api/users", { onRequest: this.guard("admin") }, async (request, reply) => {
      const body = parseBody(newUser, request.body, reply);
      if (!body || this.#weak(reply, body.password, body.username)) return;
      const actor = request.user!.username;
      const exists = () => {
        const same = this.#lookalike(body.username);
        if (same === undefined) return false;
        sendError(
          reply,
          409,
          "VG_USER_EXISTS",
          same === body.username
            ? `user "${body.username}" exists`
            : `"${body.username}" reads the same as the existing user "${same}": choose another name`,
          { field: "username" },
        );
        return true;
      };
      if (exists()) return;
      const hash = await this.#limited(() => hashPassword(body.password));
      if (hash === null) return busy(reply);
      if (exists()) return;
      const now = this.#o.nowMs();
      const createdAt = new Date(now).toISOString();
      // The admin chose this password: the user changes it at the first login.
      this.#o.db
        .prepare(
          "INSERT INTO web_users (username, role, hash, created_at, must_change, changed_ms) VALUES (?, ?, ?, ?, 1, ?)",
        )
        .run(body.username, body.role, hash, createdAt, now);
      audit.record({
        actor,
        ip: request.ip,
        action: "user.add",
        target: body.username,
        detail: { role: body.role },
        result: "ok",
      });
      return reply.code(201).send({
        username: body.username,
        role: body.role,
        provisioned: false,
        createdAt,
        mustChangePassword: true,
        lockedUntil: null,
      });
    });

    /** An admin's change to another user: the refusals audited, as the change itself is. */
    const refuser =
      (request: FastifyRequest, reply: FastifyReply, action: string, username: string) =>
      (status: number, code: string, message: string) => {
        audit.record({
          actor: request.user!.username,
          ip: request.ip,
          action,
          target: username,
          detail: { why: code },
          result: "failed",
        });
        return sendError(reply, status, code, message);
      };

    // An admin sets a new password for a user who forgot theirs (or was locked out): it unlocks the
    // user, ends their sessions, and must be changed at their next login.
    app.post("/api/users/:username/password", { onRequest: this.guard("admin") }, async (request, reply) => {
      const { username } = request.params as { username: string };
      const actor = request.user!.username;
      const refuse = refuser(request, reply, "password.reset", username);
      const found = this.#findUser(username);
      if (!found) return refuse(404, "VG_USER_UNKNOWN", `no user "${username}"`);
      if (found.provisioned)
        return refuse(
          409,
          "VG_USER_PROVISIONED",
          `"${username}" is provisioned in the configuration: its password is changed there`,
        );
      if (username === actor) return refuse(409, "VG_USER_SELF", "change your own password with your current one");
      const body = parseBody(passwordReset, request.body, reply);
      if (!body || this.#weak(reply, body.password, username)) return;
      const hash = await this.#limited(() => hashPassword(body.password));
      if (hash === null) return busy(reply);
      this.#setPassword(username, hash, true);
      this.#clearFailures(username);
      this.#endSessionsOf(username);
      audit.record({ actor, ip: request.ip, action: "password.reset", target: username, result: "ok" });
      return { ok: true };
    });

    app.delete("/api/users/:username", { onRequest: this.guard("admin") }, async (request, reply) => {
      const { username } = request.params as { username: string };
      const actor = request.user!.username;
      const refuse = refuser(request, reply, "user.remove", username);
      const found = this.#findUser(username);
      if (!found) return refuse(404, "VG_USER_UNKNOWN", `no user "${username}"`);
      if (found.provisioned)
        return refuse(409, "VG_USER_PROVISIONED", `"${username}" is provisioned in the configuration: remove it there`);
      if (username === actor) return refuse(409, "VG_USER_SELF", "you cannot remove yourself");
      this.#o.db.prepare("DELETE FROM web_users WHERE username = ?").run(username);
      this.#clearFailures(username);
      this.#endSessionsOf(username);
      audit.record({ actor, ip: request.ip, action: "user.remove", target: username, result: "ok" });
      return { ok: true };
    });
  }

  #setPassword(username: string, hash: string, mustChange: boolean): void {
    this.#o.db
      .prepare("UPDATE web_users SET hash = ?, must_change = ?, changed_ms = ? WHERE username = ?")
      .run(hash, mustChange ? 1 : 0, this.#o.nowMs(), username);
  }
}

/** 429 for a locked username or a flooding address: when to retry, in seconds and as a time (the page says it in words). */
function tooMany(
  reply: FastifyReply,
  blocked: { code: "VG_ACCOUNT_LOCKED" | "VG_TOO_MANY_ATTEMPTS"; waitS: number },
  nowMs: number,
): FastifyReply {
  const retryAt = new Date(nowMs + blocked.waitS * 1000).toISOString();
  const what =
    blocked.code === "VG_ACCOUNT_LOCKED"
      ? "this user is locked after too many failed logins"
      : "too many failed attempts from this address";
  return sendError(reply, 429, blocked.code, `${what}: try again after ${retryAt}`, {
    retryAfterS: blocked.waitS,
    retryAt,
  });
}

function busy(reply: FastifyReply): FastifyReply {
  return sendError(reply, 503, "VG_BUSY", "too many logins at once: try again in a moment", { retryAfterS: 1 });
}

/** One cookie's value from a Cookie header. */
function cookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * No Origin header (not a browser's cross-site request), or the page's own origin: the same scheme,
 * host and port as this request (`http://box:8080` is not `https://box:8080`, nor `http://box:8081`).
 */
function originMatches(request: FastifyRequest): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  const own = `${request.protocol}://${request.headers.host ?? ""}`;
  return URL.canParse(origin) && URL.canParse(own) && new URL(origin).origin === new URL(own).origin;
}

/** For the routes without a session (login, setup): a browser's cross-site POST is refused. */
async function sameOrigin(request: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (!originMatches(request)) sendError(reply, 403, "VG_ORIGIN", "the request comes from another site");
}
