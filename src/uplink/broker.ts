// The embedded MQTT broker (DESIGN.md §7): with no uplink configured, the gateway publishes to an
// aedes broker on loopback, so a box collects, stores and shows data before anyone has set up the
// county center. Local subscribers (a laptop on the box, the tests) read from it.
//
// It authenticates and authorizes its clients like any broker of the center's (issue 13 item 3);
// anonymous clients are refused. Three identities, each for one gateway id:
//  - `gateway`: the gateway's own client. Publishes its events, original files, status and command
//    results (`vitalgate/v1/{gw}/ev/…`, `blob/…`, `status`, `cmd-result`); subscribes only to what
//    the center sends it (`receipt`, `report`, `cmd/+`).
//  - the center bridge (`embeddedBroker.center`, when set): the only one that publishes commands,
//    reports and receipts (`cmd/{name}`, `report`, `receipt`); reads everything.
//  - `viewer`: reads everything, publishes nothing (mosquitto_sub on the box, `vitalgate broker viewer`).
// The gateway's and the viewer's passwords are random, made at each start and written to
// `<stateDir>/broker-credentials.json`, mode 0600 (the gateway's user alone reads it).
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { Aedes, type Client } from "aedes";

export interface BrokerLogin {
  username: string;
  password: string;
}

export type BrokerRole = "gateway" | "center" | "viewer";

export interface BrokerAccess {
  gatewayId: string;
  gateway: BrokerLogin;
  viewer: BrokerLogin;
  /** The center bridge; without it nobody publishes commands, reports or receipts. */
  center?: BrokerLogin;
}

export interface EmbeddedBroker {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** The file the generated logins are kept in, in the state directory. */
export const BROKER_CREDENTIALS_FILE = "broker-credentials.json";

/** New random logins for the gateway and the viewer, written 0600 to `<stateDir>/broker-credentials.json`. */
export function newBrokerCredentials(stateDir: string): { gateway: BrokerLogin; viewer: BrokerLogin } {
  const logins = {
    gateway: { username: "gateway", password: randomBytes(24).toString("base64url") },
    viewer: { username: "viewer", password: randomBytes(24).toString("base64url") },
  };
  const path = join(stateDir, BROKER_CREDENTIALS_FILE);
  const tmp = `${path}.${process.pid}.tmp`;
  rmSync(tmp, { force: true }); // a leftover would keep its own mode
  writeFileSync(tmp, `${JSON.stringify(logins, null, 2)}\n`, { mode: 0o600, flag: "w" });
  renameSync(tmp, path);
  return logins;
}

/** The logins the running gateway wrote (for `vitalgate broker viewer`). */
export function readBrokerCredentials(stateDir: string): { gateway: BrokerLogin; viewer: BrokerLogin } {
  return JSON.parse(readFileSync(join(stateDir, BROKER_CREDENTIALS_FILE), "utf8")) as {
    gateway: BrokerLogin;
    viewer: BrokerLogin;
  };
}

/** Compares secrets in constant time (by their digests, so lengths do not leak either). */
function same(given: Buffer | undefined, expected: string): boolean {
  const digest = (b: Buffer) => createHash("sha256").update(b).digest();
  return given !== undefined && timingSafeEqual(digest(given), digest(Buffer.from(expected)));
}

/** What each role may publish (topics below `vitalgate/v1/{gw}/`). */
const PUBLISH: Record<BrokerRole, (rest: string) => boolean> = {
  // Answers go to the default topic or below it (a requester's own, docs/protocol.md "Answers").
  gateway: (rest) => /^(ev|blob)\/./.test(rest) || rest === "status" || /^(cmd-result|ack)(\/.+)?$/.test(rest),
  center: (rest) => /^cmd\/[^/]+$/.test(rest) || rest === "report" || rest === "receipt",
  viewer: () => false,
};

/** The gateway subscribes only to what the center sends it; the others read everything. */
const GATEWAY_SUBSCRIBES = (rest: string) => rest === "receipt" || rest === "report" || rest === "cmd/+";

export async function startEmbeddedBroker(host: string, port: number, access: BrokerAccess): Promise<EmbeddedBroker> {
  const broker = await Aedes.createBroker();
  const roles = new WeakMap<Client, BrokerRole>();
  const base = `vitalgate/v1/${access.gatewayId}/`;
  const logins: [BrokerRole, BrokerLogin | undefined][] = [
    ["gateway", access.gateway],
    ["center", access.center],
    ["viewer", access.viewer],
  ];
  broker.authenticate = (client, username, password, done) => {
    const role = logins.find(
      ([, login]) => login !== undefined && username === login.username && same(password, login.password),
    )?.[0];
    if (!role) {
      // MQTT 3.1.1 CONNACK return code 4: bad user name or password (anonymous included)
      const err = Object.assign(new Error("bad user name or password"), { returnCode: 4 });
      return done(err as Parameters<typeof done>[0], false);
    }
    roles.set(client, role);
    done(null, true);
  };
  broker.authorizePublish = (client, packet, done) => {
    const role = client ? roles.get(client) : undefined;
    const topic = packet.topic;
    if (role && topic.startsWith(base) && PUBLISH[role](topic.slice(base.length))) return done(null);
    done(new Error(`not allowed to publish to ${topic.slice(0, 128)}`));
  };
  broker.authorizeSubscribe = (client, sub, done) => {
    const role = client ? roles.get(client) : undefined;
    if (!role) return done(new Error("not logged in"));
    if (role === "gateway" && !(sub.topic.startsWith(base) && GATEWAY_SUBSCRIBES(sub.topic.slice(base.length))))
      return done(null, null);
    done(null, sub);
  };
  return serveBroker(broker, host, port);
}

/** Serves `broker` on host:port (0: any free port) until closed. */
export async function serveBroker(broker: Aedes, host: string, port: number): Promise<EmbeddedBroker> {
  const server: Server = createServer({ noDelay: true }, broker.handle);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as { port: number }).port;
  return {
    url: `mqtt://${host}:${actual}`,
    port: actual,
    close: () =>
      new Promise<void>((resolve) => {
        broker.close(() => server.close(() => resolve()));
      }),
  };
}
