// The in-process gateway the integration tests build: a YAML configuration (a temporary state
// directory, an uplink, a free web port, the devices under test), loaded with the driver registry,
// a log the test reads back, the real SQLite outbox; started, and stopped by the test's cleanup.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { drivers as allDrivers, findDriver as registry } from "../../drivers/registry.ts";
import { systemClock, type Clock } from "../../src/time/clock.ts";
import { loadConfig } from "../../src/config/load.ts";
import type { Config } from "../../src/config/schema.ts";
import type { Envelope } from "../../src/events/model.ts";
import { Gateway } from "../../src/gateway.ts";
import type { GatewayDeps } from "../../src/gateway.ts";
import { createLogger } from "../../src/log.ts";
import { createTimeService } from "../../src/time/index.ts";
import { embeddedBrokerYaml } from "./mqtt.ts";
import { freePort } from "./processes.ts";

/** An uplink nobody answers (a minute between attempts): every event stays in the outbox for the test to read. */
const NOWHERE = 'uplink: { url: "mqtt://127.0.0.1:1", backoff: { initialMs: 60000, maxMs: 60000 } }';

export interface RigOptions {
  /** The gateway id, e.g. `gw-s5`. */
  id: string;
  /** The state directory; default a fresh `vg-<id without gw->-*` in the system's temp dir. */
  stateDir?: string;
  /** The `devices:` entries: one flow mapping (`{ id: s5, driver: datex-s5, options: … }`) or YAML lines. */
  devices: string;
  /**
   * `none` (default): the uplink goes nowhere. `embedded`: the gateway's own broker on a free port
   * (`config.embeddedBroker.port`, for a test that connects a center). `{ url }`: a broker of the
   * test's (mosquitto), reconnecting within a second, with `more` entries of the `uplink:` flow
   * mapping (e.g. `receipts: true, receiptTimeoutS: 600`).
   */
  uplink?: "none" | "embedded" | { url: string; more?: string };
  /**
   * The `time:` section as YAML flow (e.g. `{ ntpServers: [], trustSystemClock: always }`), run by the
   * real time service as the gateway's clock. Without it: no time section, no time service, the system clock.
   */
  time?: string;
  /** The captured log's level (default info). */
  logLevel?: string;
  /** Also write the configuration's `log: { level: <logLevel>, pretty: false }` section. */
  logSection?: boolean;
  /** More entries of the `web:` flow mapping (after host and port), e.g. `tls: { certFile: …, keyFile: … }`. */
  web?: string;
  /** The page's `web.host` (default 127.0.0.1: plain HTTP, loopback only). */
  webHost?: string;
  /** More top-level YAML lines, put just before `devices:` (each ending in a newline). */
  extra?: string;
  /** The driver lookup; default the real registry. */
  drivers?: GatewayDeps["findDriver"];
  /** The gateway's clock when there is no time service; default the system clock. */
  clock?: Clock;
  /**
   * The `pairing:` section as YAML flow. Default `{ listen: [] }`: no watch for unpaired senders on the
   * well-known ports, which parallel tests would contend for.
   */
  pairing?: string;
  /** The `watchedFolders:` section as YAML flow. Default: the system's temp dir as the one root. */
  watchedFolders?: string;
  /** Called with the gateway built but not yet started (to watch what happens during start-up). */
  beforeStart?: (gw: Gateway) => void;
}

/** A pino logger whose lines the test reads back: as written (`raw`) and parsed (`lines`, `codes()`). */
export function recordedLog(level = "info") {
  const raw: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      const text = String(chunk);
      raw.push(text);
      lines.push(JSON.parse(text) as Record<string, unknown>);
      cb();
    },
  });
  const log = createLogger({ level, pretty: false }, sink);
  return { log, raw, lines, codes: () => lines.map((l) => l.code).filter(Boolean) as string[] };
}

/** Builds, starts and (through `cleanup`) stops a gateway as `o` describes. */
export async function startGateway(
  o: RigOptions,
  cleanup: (() => unknown)[],
): Promise<{ gw: Gateway; log: ReturnType<typeof recordedLog>; config: Config }> {
  const findDriver = o.drivers ?? registry;
  const devices = o.devices.trimStart().startsWith("{") ? `  - ${o.devices}` : o.devices.replace(/\n$/, "");
  const text = [
    `gateway: { id: ${o.id} }`,
    `stateDir: ${o.stateDir ?? mkdtempSync(join(tmpdir(), `${o.id.replace(/^gw-/, "vg-")}-`))}`,
    o.uplink === "embedded"
      ? embeddedBrokerYaml(await freePort())
      : typeof o.uplink === "object"
        ? `uplink: { url: "${o.uplink.url}", backoff: { initialMs: 100, maxMs: 1000 }, batchWaitS: 0.2${o.uplink.more ? `, ${o.uplink.more}` : ""} }`
        : NOWHERE,
    `web: { host: ${o.webHost ?? "127.0.0.1"}, port: ${await freePort()}${o.web ? `, ${o.web}` : ""} }`,
    `pairing: ${o.pairing ?? "{ listen: [] }"}`,
    `watchedFolders: ${o.watchedFolders ?? JSON.stringify({ roots: [tmpdir()] })}`,
    ...(o.logSection ? [`log: { level: ${o.logLevel ?? "info"}, pretty: false }`] : []),
    ...(o.time === undefined ? [] : [`time: ${o.time}`]),
  ].join("\n");
  const r = loadConfig({
    text: `${text}\n${o.extra ?? ""}devices:\n${devices}\n`,
    file: "test.yaml",
    drivers: findDriver,
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  const log = recordedLog(o.logLevel ?? "info");
  const time = o.time === undefined ? undefined : createTimeService(r.config.time, { log: log.log });
  const deps = { log: log.log, findDriver, drivers: o.drivers ? undefined : allDrivers, secrets: r.secrets };
  const gw = new Gateway(
    r.config,
    time ? { ...deps, clock: time, time } : { ...deps, clock: o.clock ?? systemClock() },
  );
  o.beforeStart?.(gw);
  cleanup.push(() => gw.stop());
  await gw.start();
  return { gw, log, config: r.config };
}

/** The events of one kind in the gateway's outbox (pending, that is not yet delivered), parsed. */
export const outboxEvents = <B = unknown>(gw: Gateway, kind: string): Envelope<B>[] =>
  gw.outbox
    .pending(10_000)
    .filter((r) => r.kind === kind)
    .map((r) => JSON.parse(String(r.payload)) as Envelope<B>);
