// What every part of the web page's server shares (DESIGN.md §8). Route modules (auth, pairing,
// cases, status) each register their routes on the one fastify app with this context; none opens
// anything of its own.
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import type { Gateway } from "../gateway.ts";
import type { LocalDb } from "../local-db.ts";

/** Roles (issue 6): admin does everything; crew and technician pair devices and run cases; viewer reads. */
export const ROLES = ["admin", "crew", "technician", "viewer"] as const;
export type Role = (typeof ROLES)[number];

/** What a route needs of the user. "read": any logged-in user. */
export type Permission = "read" | "devices" | "cases" | "admin";

export const PERMISSIONS: Record<Role, readonly Permission[]> = {
  admin: ["read", "devices", "cases", "admin"],
  crew: ["read", "devices", "cases"],
  technician: ["read", "devices", "cases"],
  viewer: ["read"],
};

export interface SessionUser {
  username: string;
  role: Role;
}

/** One record of the audit trail: who did what to what, from where, and how it ended. */
export interface AuditEntry {
  /** Username, "center" for commands from the county center, "system" for the daemon itself. */
  actor: string;
  /** Client address for web requests. */
  ip?: string;
  /** Dotted verb: "login", "device.pair", "case.open", "config.reload", ... */
  action: string;
  /** What it acted on: a device id, a case id, a username. Never patient data. */
  target?: string;
  /** Extra facts (never patient data). */
  detail?: Record<string, unknown>;
  result: "ok" | "denied" | "failed";
}

export interface Audit {
  /** Appends to the hash-chained trail (src/audit/audit.ts); synchronous, throws if it cannot be stored. */
  record(entry: AuditEntry): void;
  /**
   * For what anyone can repeat at will (refused requests, reads of patient data): records `entry`
   * at most once per `windowMs` for the same `key`; those held back are counted in the next one's
   * `detail.suppressed`. A flood cannot fill the disk, and the first of each kind is there.
   */
  recordBounded(key: string, entry: AuditEntry, windowMs?: number): void;
}

export interface WebContext {
  gateway: Gateway;
  log: Logger;
  db: LocalDb;
  audit: Audit;
  nowMs(): number;
  /**
   * A hook that lets the request through only for a logged-in user holding `permission`, and, for a
   * change (POST, PUT, DELETE, PATCH), only with the session's CSRF token and no foreign Origin;
   * answers 401/403 itself. Sets `request.user`. Use it as `onRequest` (before the body is read).
   */
  guard(permission: Permission): (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  /** Pushes a message to every page watching live (server-sent events). */
  publish(type: string, data: unknown): void;
  /** Whether any page is watching live: work done only for them (thinning waveforms, the status push) is skipped otherwise. */
  watching(): boolean;
}

declare module "fastify" {
  interface FastifyRequest {
    user?: SessionUser;
  }
}
