// The web server as the web tests build it: a real Gateway (its outbox and case book open, not
// started), the real local database in a temporary state directory, a clock the test moves, a web/
// folder of its own, and the fastify app for inject(). Helpers log in and carry the session cookie
// and CSRF token.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LightMyRequestResponse } from "fastify";
import { drivers, findDriver } from "../../drivers/registry.ts";
import { systemClock } from "../../src/time/clock.ts";
import { loadConfig } from "../../src/config/load.ts";
import { Gateway } from "../../src/gateway.ts";
import { localDbPath, openLocalDb } from "../../src/local-db.ts";
import { createWebServer, type WebServer } from "../../src/web/server.ts";
import { recordedLog } from "./rig.ts";

export interface WebRig extends WebServer {
  /** The gateway whose services the page uses (not started: its outbox and case book open). */
  gateway: Gateway;
  stateDir: string;
  webRoot: string;
  log: ReturnType<typeof recordedLog>;
  /**
   * The web server's clock, in ms; the test moves it. `ms` is time as it passes (the monotonic clock
   * moves with it); `stepMs` a step of the synchronized clock on top, through which no time passes.
   */
  clock: { ms: number; stepMs: number };
}

/** Builds the web server; `webYaml` is the configuration's `web:` flow mapping (default `{}`). */
export async function startWeb(
  cleanup: (() => unknown)[],
  webYaml = "{}",
  stateDir = mkdtempSync(join(tmpdir(), "vg-web-")),
): Promise<WebRig> {
  const r = loadConfig({
    text: `gateway: { id: gw-web }\nstateDir: ${stateDir}\nweb: ${webYaml}\n`,
    file: "test.yaml",
    env: {},
    drivers: findDriver,
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  const log = recordedLog("info");
  const gateway = new Gateway(r.config, { log: log.log, clock: systemClock(), findDriver, drivers, secrets: {} });
  gateway.outbox.open();
  const db = openLocalDb(localDbPath(stateDir));
  gateway.cases.open(db);
  const webRoot = join(stateDir, "web");
  mkdirSync(webRoot, { recursive: true });
  writeFileSync(
    join(webRoot, "index.html"),
    "<!doctype html><title>vitalgate</title><script type=module src=app.js></script>\n",
  );
  writeFileSync(join(webRoot, "app.js"), "export {};\n");
  writeFileSync(join(stateDir, "secret.txt"), "outside web/\n");
  const clock = { ms: Date.parse("2026-11-23T08:00:00Z"), stepMs: 0 };
  const web = await createWebServer({
    services: gateway.webServices(),
    log: log.log,
    db,
    web: r.config.web,
    setupCodeFile: join(stateDir, "setup-code"),
    nowMs: () => clock.ms + clock.stepMs,
    monoMs: () => clock.ms,
    webRoot,
    live: { heartbeatMs: 100 },
  });
  cleanup.push(
    () => web.app.close(),
    () => gateway.cases.close(),
    () => db.close(),
    () => gateway.outbox.close(),
  );
  await web.app.ready();
  return { ...web, gateway, stateDir, webRoot, log, clock };
}

/** A browser's session: its cookie and CSRF token, added to each request. */
export interface Client {
  cookie: string;
  csrf: string;
  request(
    method: string,
    url: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<LightMyRequestResponse>;
}

/** The session a login or setup answer started, as a client for further requests. */
export function clientFrom(rig: WebRig, res: LightMyRequestResponse): Client {
  const setCookie = String(res.headers["set-cookie"]);
  return clientOn(rig, { cookie: setCookie.split(";")[0]!, csrf: (res.json() as { csrf: string }).csrf });
}

/** A browser's session (its cookie and CSRF token) talking to `rig`: the same browser after the daemon restarted. */
export function clientOn(rig: WebRig, { cookie, csrf }: { cookie: string; csrf: string }): Client {
  return {
    cookie,
    csrf,
    request: (method, url, body, headers = {}) =>
      rig.app.inject({
        method: method as "GET",
        url,
        headers: { cookie, "x-csrf-token": csrf, ...headers },
        ...(body === undefined ? {} : { payload: body as object }),
      }),
  };
}

/** Creates the first admin from the box itself (loopback: no setup code) and returns its session. */
export async function setupAdmin(
  rig: WebRig,
  username = "admin",
  password = "correct horse battery 1",
): Promise<Client> {
  const res = await rig.app.inject({ method: "POST", url: "/api/setup", payload: { username, password } });
  if (res.statusCode !== 200) throw new Error(`setup: ${res.statusCode} ${res.body}`);
  return clientFrom(rig, res);
}

export async function login(
  rig: WebRig,
  username: string,
  password: string,
  remoteAddress = "192.0.2.10",
): Promise<LightMyRequestResponse> {
  return rig.app.inject({ method: "POST", url: "/api/login", payload: { username, password }, remoteAddress });
}

/**
 * A user added by an admin, as they start: logged in with the initial password the admin gave,
 * changed to `password` (the page asks for it at the first login). Their session.
 */
export async function addUser(
  rig: WebRig,
  admin: Client,
  username: string,
  role: string,
  password: string,
  remoteAddress = "192.0.2.10",
): Promise<Client> {
  const initial = `Initial ${password}`;
  const add = await admin.request("POST", "/api/users", { username, password: initial, role });
  if (add.statusCode !== 201) throw new Error(`add ${username}: ${add.statusCode} ${add.body}`);
  const first = await login(rig, username, initial, remoteAddress);
  if (first.statusCode !== 200) throw new Error(`first login of ${username}: ${first.statusCode} ${first.body}`);
  const client = clientFrom(rig, first);
  const change = await client.request("POST", "/api/password", { current: initial, password });
  if (change.statusCode !== 200) throw new Error(`password change of ${username}: ${change.statusCode} ${change.body}`);
  return client;
}
