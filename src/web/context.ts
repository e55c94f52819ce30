// What every part of the web page's server shares (DESIGN.md §8). Route modules (auth, pairing,
// cases, status) each register their routes on the one fastify app with this context; none opens
// anything of its own.
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import type { LocalDb } from "../local-db.ts";
import type { Audit } from "../audit/audit.ts";
import type { Permission, SessionUser } from "../users/roles.ts";
import type { CaseBook } from "../cases/case-book.ts";
import type { DeviceManager } from "../devices/device-manager.ts";
import type { DriverDefinition } from "../devices/driver.ts";
import type { Intake } from "../events/intake.ts";
import type { Envelope } from "../events/model.ts";
import type { Metrics } from "../metrics.ts";
import type { Pairing } from "../pairing/index.ts";
import type { GatewayStatus } from "../status.ts";

/**
 * What the page's server needs of the rest of the gateway: narrow services, each owned elsewhere
 * (src/gateway.ts hands them over). The web layer reaches nothing else of the daemon.
 */
export interface WebServices {
  /** What the gateway says of itself (src/status.ts). */
  status(): GatewayStatus;
  /** The store is open (GET /healthz, with the status's store state). */
  storeOpen(): boolean;
  metrics: Pick<Metrics, "webLogins" | "webLiveStreams" | "webLiveDropped" | "registry">;
  /** The devices running, their states and changes. */
  devices: Pick<DeviceManager, "list" | "get" | "on" | "off">;
  /** Events as they are committed (the live values and waveforms). */
  committed: Pick<Intake, "on" | "off">;
  /** A stored event by id (the ECG a case page draws). */
  eventById(id: string): Envelope | undefined;
  cases: CaseBook;
  pairing: Pairing;
  /** Every driver the gateway knows: what a technician can pair. */
  drivers: readonly DriverDefinition<unknown>[];
  /** The state directory (the status page shows its disk's free space). */
  stateDir: string;
  /** `pairing.probeMs`: how long a preview listens unless asked otherwise. */
  probeMs(): number;
}

export interface WebContext {
  services: WebServices;
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
