// The daemon's HTTP side (DESIGN.md §8, docs/web-api.md): the machine endpoints (/healthz,
// /metrics, and /status for the box's own `vitalgate status`), the page's JSON API and its static
// files from the repository's web/ folder. `createWebServer` builds the fastify app without
// listening or opening anything (the gateway passes the local database and listens), so tests use
// `inject()`. Route modules register here, each with the one WebContext.
import { realpathSync } from "node:fs";
import { lstat, readFile, realpath } from "node:fs/promises";
import { extname, join, resolve, sep } from "node:path";
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import type { Logger } from "pino";
import { z } from "zod";
import type { Config } from "../config/schema.ts";
import type { LocalDb } from "../local-db.ts";
import { AuditLog } from "../audit/audit.ts";
import { registerCaseRoutes } from "./case-routes.ts";
import { Auth, fromBox, type AuthOptions } from "./auth.ts";
import type { WebContext, WebServices } from "./context.ts";
import { HostAllowList } from "./hosts.ts";
import { sendError } from "./http-errors.ts";
import { LiveHub, type LiveHubOptions } from "./live.ts";
import { registerPairingRoutes } from "./pairing-routes.ts";
import { registerStatusRoutes } from "./status-routes.ts";

/** The page's files: plain ES modules, CSS and HTML, served as they are (no build step). */
export const WEB_ROOT = resolve(import.meta.dirname, "../../web");

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
};

/** A path the static handler will look up: plain segments, none hidden, no `..`, no backslash. */
const STATIC_PATH = /^\/(?:[A-Za-z0-9_-][A-Za-z0-9._-]*\/)*[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

const SECURITY_HEADERS = {
  // No inline script or style, nothing from elsewhere, never framed (clickjacking).
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

export interface WebServerOptions {
  services: WebServices;
  log: Logger;
  /** The local database (src/local-db.ts), opened and closed by the caller. */
  db: LocalDb;
  /** `web` of the configuration. */
  web: Config["web"];
  /** Where the first-run setup code is kept (`<stateDir>/setup-code`). */
  setupCodeFile: string;
  /** Synchronized time (what is recorded), and monotonic ms since boot with its boot id (durations: docs/time.md). */
  nowMs(): number;
  monoMs(): number;
  bootId?: string;
  /** The page's files; default the repository's web/. */
  webRoot?: string;
  /** PEM certificate and key: serve over HTTPS. */
  https?: { cert: Buffer; key: Buffer };
  live?: LiveHubOptions;
  /** The gateway's audit trail; one is made on `db` when none is given. One per database: each keeps the chain's head. */
  audit?: AuditLog;
}

export interface WebServer {
  app: FastifyInstance;
  ctx: WebContext;
  audit: AuditLog;
  auth: Auth;
  live: LiveHub;
  /** Every route registered on the app (by an onRoute hook): what the security tests walk. */
  routes: { method: string; url: string }[];
}

/**
 * The fastify app every page of the project is served by (the gateway's, the county center's,
 * center/web-server.ts): no request lines in the log, the security headers, the allowed host names
 * (DNS rebinding), errors as `{ error: { code, message } }` with a 500's cause only in the log, and the
 * list of registered routes (what the security tests walk).
 */
export function createBaseApp(o: {
  log: Logger;
  https?: { cert: Buffer; key: Buffer } | undefined;
  hostNames: readonly string[];
}): { app: FastifyInstance; routes: { method: string; url: string }[] } {
  const app = Fastify({
    loggerInstance: o.log.child({ component: "http" }) as FastifyBaseLogger,
    // Scrapes of /metrics every few seconds would drown the journal, and request lines could carry ids.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1 << 20,
    ...(o.https ? { https: o.https } : {}),
  }) as unknown as FastifyInstance;
  const log = o.log.child({ component: "web" });
  const routes: { method: string; url: string }[] = [];
  app.addHook("onRoute", (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url });
  });
  const hosts = new HostAllowList(o.hostNames);
  app.addHook("onRequest", async (request, reply) => {
    reply.headers(SECURITY_HEADERS);
    // Over HTTPS, the browser is told to come back only over HTTPS (a year). Browsers ignore it
    // from a certificate they were asked to accept, so a self-signed one can still be clicked through.
    if (request.protocol === "https") reply.header("strict-transport-security", "max-age=31536000");
    if (request.url.startsWith("/api/")) reply.header("cache-control", "no-store");
    // DNS rebinding: a page of another site that now resolves to this box still sends its own name.
    if (!hosts.allows(request.headers.host))
      return sendError(
        reply,
        421,
        "VG_HOST",
        "this box is not served under that name: use its address, or add the name to web.hostNames",
      );
  });
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _request, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) {
      log.error({ code: "VG_WEB_ERROR", err: err.message }, "web request failed");
      return sendError(reply, 500, "VG_INTERNAL", "internal error (see the gateway's log)");
    }
    // Fastify's own client errors (bad JSON, unsupported content type, body too large): their texts name no content.
    return sendError(reply, status, err.code ?? "VG_BAD_REQUEST", err.message);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 404, "VG_NOT_FOUND", `no ${request.method} ${request.url.split("?")[0]}`),
  );
  return { app, routes };
}

/** The logins of a page, as its `web:` configuration sets them; the first-run setup prepared. */
export function authFromConfig(
  o: Pick<AuthOptions, "db" | "audit" | "log" | "nowMs" | "monoMs" | "bootId" | "setupCodeFile" | "onLogin"> & {
    web: Config["web"];
  },
): Auth {
  const auth = new Auth({
    db: o.db,
    audit: o.audit,
    log: o.log.child({ component: "web" }),
    nowMs: o.nowMs,
    monoMs: o.monoMs,
    bootId: o.bootId,
    users: o.web.users,
    sessionIdleMin: o.web.sessionIdleMin,
    loginMaxFailures: o.web.loginMaxFailures,
    addressMaxFailures: o.web.loginMaxFailuresPerAddress,
    loginWindowS: o.web.loginWindowS,
    password: {
      minLength: o.web.passwordMinLength,
      minClasses: o.web.passwordMinClasses,
      maxAgeDays: o.web.passwordMaxAgeDays,
    },
    setupCodeFile: o.setupCodeFile,
    ...(o.onLogin ? { onLogin: o.onLogin } : {}),
  });
  auth.prepareSetup();
  return auth;
}

export async function createWebServer(o: WebServerOptions): Promise<WebServer> {
  const { services } = o;
  const { app, routes } = createBaseApp({ log: o.log, https: o.https, hostNames: o.web.hostNames });

  const audit = o.audit ?? new AuditLog(o.db, () => ({ ms: o.nowMs(), src: "system", uncMs: 0 }));
  const auth = authFromConfig({
    ...o,
    audit,
    onLogin: (result) => services.metrics.webLogins.inc({ result }),
  });
  const live = new LiveHub({
    ...o.live,
    onStreams: (n) => services.metrics.webLiveStreams.set(n),
    onDropped: () => services.metrics.webLiveDropped.inc(),
  });
  const ctx: WebContext = {
    services,
    log: o.log.child({ component: "web" }),
    db: o.db,
    audit,
    nowMs: o.nowMs,
    guard: (permission) => auth.guard(permission),
    publish: (type, data) => live.publish(type, data),
    watching: () => live.streams > 0,
  };

  // Machine endpoints, without login: they show no patient data (docs/security.md#the-http-endpoints).
  app.get("/healthz", async (_req, reply) => {
    const s = services.status();
    const ok = services.storeOpen() && s.store.state === "ok";
    return reply
      .code(ok ? 200 : 503)
      .send({ ok, store: s.store.state, uplink: s.uplink.state, queue: s.queue.pending });
  });
  app.get("/metrics", async (_req, reply) => {
    const body = await services.metrics.registry.metrics();
    return reply.type(services.metrics.registry.contentType).send(body);
  });
  // `vitalgate status` on the box itself; the page reads /api/status with a session.
  app.get("/status", async (request, reply) =>
    fromBox(request)
      ? services.status()
      : sendError(reply, 403, "VG_LOOPBACK_ONLY", "only from the box itself; the page uses /api/status"),
  );

  auth.register(app);
  // A page watching while a case is open stays signed in (DESIGN.md §8: a crew's session lasts as long as its open case).
  live.register(app, ctx.guard("read"), (request) =>
    auth.streamOwner(request, () => services.cases.list("open").length > 0),
  );
  app.get("/api/audit", { onRequest: ctx.guard("admin") }, async (request, reply) => {
    const q = auditQuery.safeParse(request.query);
    if (!q.success)
      return sendError(
        reply,
        400,
        "VG_BAD_REQUEST",
        `${q.error.issues[0]!.path.join(".")}: ${q.error.issues[0]!.message}`,
        { field: String(q.error.issues[0]!.path[0] ?? "") },
      );
    return { rows: audit.list(q.data), chain: audit.verify() };
  });

  // Route modules: each registers its routes with the context (and guards them with ctx.guard).
  registerStatusRoutes(app, ctx);
  registerCaseRoutes(app, ctx, services.cases);
  registerPairingRoutes(app, ctx, services.pairing);

  // The real path: the installation may itself sit behind a link (/opt/vitalgate → /opt/vitalgate-1.4).
  const roots = [realpathSync(resolve(o.webRoot ?? WEB_ROOT))];
  app.get("/*", async (request, reply) => serveStatic(roots, request, reply));
  return { app, ctx, audit, auth, live, routes };
}

export const auditQuery = z.strictObject({
  before: z.coerce.number().int().positive().optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

/**
 * A file under the first of `roots` (real paths) that has it: one that exists, is a regular file and
 * has a known type, reached through no symbolic link (neither the file nor a folder on its way); else
 * 404. The center's page is its own folder over the gateway's web/ (center/web-server.ts).
 */
export async function serveStatic(
  roots: readonly string[],
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const urlPath = request.url.split("?")[0]!;
  const path = urlPath === "/" ? "/index.html" : urlPath;
  const type = CONTENT_TYPES[extname(path)];
  const notFound = () => sendError(reply, 404, "VG_NOT_FOUND", `no ${urlPath}`);
  if (path.startsWith("/api/") || !STATIC_PATH.test(path) || !type) return notFound();
  for (const root of roots) {
    const file = join(root, path);
    if (!file.startsWith(root + sep)) return notFound();
    try {
      if (!(await lstat(file)).isFile() || (await realpath(file)) !== file) continue;
      return reply
        .type(type)
        .header("cache-control", "no-cache")
        .send(await readFile(file));
    } catch {
      continue;
    }
  }
  return notFound();
}
