#!/usr/bin/env node
// vitalgate's command line. `main` wires real dependencies; everything it calls takes them as
// arguments.
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { text } from "node:stream/consumers";
import { parseArgs } from "node:util";
import { findDriver, drivers } from "../../drivers/registry.ts";
import { decodeEcgFile, ECG_FILE_FORMATS } from "../../protocols/ecg/files.ts";
import type { EcgFormat } from "../../protocols/ecg/index.ts";
import { renderEcgSvg } from "../../protocols/ecg/svg.ts";
import { exportAecg } from "../../protocols/hl7-aecg/export.ts";
import { systemClock } from "../time/clock.ts";
import { loadConfig, formatConfigErrors, type LoadConfigResult } from "../config/load.ts";
import { DEFAULT_CONFIG_NAME, loadDefaultConfig } from "../config/defaults.ts";
import type { Config } from "../config/schema.ts";
import { openSession } from "../devices/driver.ts";
import { Gateway } from "../gateway.ts";
import { createLogger } from "../log.ts";
import { listSerialPorts } from "../transports/serial-ports.ts";
import { Outbox } from "../outbox/outbox.ts";
import { stamp } from "../events/stamp.ts";
import { systemdService } from "../service/systemd.ts";
import { removePidFile, writePidFile } from "../service/pid-file.ts";
import { scheduleBackups } from "../backup/schedule.ts";
import { backupCommand, restoreCommand } from "./backup.ts";
import { createTimeService } from "../time/index.ts";
import { VERSION } from "../version.ts";
import type { SimulateFlags } from "./simulate.ts";

export const DEFAULT_CONFIG_PATH = "/etc/vitalgate/vitalgate.yaml";

const USAGE = `vitalgate ${VERSION}: device-integration edge gateway

usage:
  vitalgate start [--config FILE]        run the gateway (default config: $VITALGATE_CONFIG,
                                         then ${DEFAULT_CONFIG_PATH}, then the embedded demo)
  vitalgate center [--config FILE]       run a county center worker (docs/center.md): receive the
                                         gateways' events into PostgreSQL, serve the reading station
                                         (default config: $VITALGATE_CENTER_CONFIG, then /etc/vitalgate/center.yaml)
  vitalgate config check FILE [--on-box] validate a config file; exit 1 listing every error. Secret
                                         and TLS files that are not here are warnings, errors with
                                         --on-box (on the box itself, as start does)
  vitalgate config schema                print the JSON Schema of the config file
  vitalgate status [--config FILE]       ask the running gateway how it is
  vitalgate backup [--config FILE] [--to DIR]
                                         a consistent copy of local.db, the outbox, the paired
                                         devices and the config, running or not, into backup.dir
                                         (or DIR); prints its path
  vitalgate restore BACKUP [--config FILE] [--with-config]
                                         put a backup back into the stopped gateway's state dir
                                         (checks its SHA-256 sums; keeps what it replaces)
  vitalgate health [--config FILE]       the running gateway's /healthz; exit 0 when healthy
  vitalgate queue stats [--config FILE]  outbox depth by priority, size, evictions
  vitalgate decode --driver ID FILE [--options JSON]
                                         print the events a capture decodes to, as NDJSON
  vitalgate decode --driver ID FILE [--options JSON] [--aecg OUT.xml] [--svg OUT.svg]
                                         an ECG file (e.g. --driver ecg-cart --options '{"dir":"-"}'):
                                         also write it as HL7 aECG and draw it
                                         on ECG paper (SVG, 25 mm/s, 10 mm/mV, no patient name)
  vitalgate ports                        serial ports with their USB identity
  vitalgate errors                       every VG_ code: what it means, what to do (docs/errors.md)
  vitalgate broker viewer [--config FILE]
                                         the embedded broker's read-only login, as mosquitto_sub
                                         arguments: mosquitto_sub $(vitalgate broker viewer) -t 'vitalgate/#' -v
                                         (run as the vitalgate user: the login is in the state dir, 0600)
  vitalgate web hash-password            read a password on stdin, print its hash for
                                         web.users[].passwordHash (e.g. read -rs P; echo "$P" | ...)
  vitalgate simulate                     the devices it can play, as below
`;

type Out = { out: (s: string) => void; err: (s: string) => void; stdin?: () => Promise<string> };
const stdio: Out = {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  stdin: () => text(process.stdin),
};

/** Loads the config a command names, or the default chain; `null` after printing why not. */
function resolveConfig(
  explicit: string | undefined,
  io: Out,
): { result: LoadConfigResult & { ok: true }; source: string } | null {
  const file = explicit ?? process.env.VITALGATE_CONFIG ?? DEFAULT_CONFIG_PATH;
  const fromFile = loadConfig({ file, env: process.env, drivers: findDriver });
  if (fromFile.ok) return { result: fromFile, source: file };
  if (fromFile.reason === "not-found" && explicit === undefined && process.env.VITALGATE_CONFIG === undefined) {
    const embedded = loadDefaultConfig({ env: process.env, drivers: findDriver });
    if (embedded.ok) return { result: embedded, source: DEFAULT_CONFIG_NAME };
    io.err(formatConfigErrors(embedded.errors) + "\n");
    return null;
  }
  io.err(formatConfigErrors(fromFile.errors) + "\n");
  return null;
}

async function start(configPath: string | undefined, io: Out): Promise<number> {
  const resolved = resolveConfig(configPath, io);
  if (!resolved) return 2;
  const { config, secrets } = resolved.result;
  const log = createLogger(config.log);
  // Every event is stamped by the synchronized time service (GPS, NTP, chrony; docs/time.md).
  const time = createTimeService(config.time, { log, stateDir: config.stateDir });
  const gateway = new Gateway(config, { log, clock: time, time, findDriver, drivers, secrets });
  log.info({ config: resolved.source }, "configuration loaded");
  // Under systemd: watchdog pings from now on, READY=1 once started, STOPPING=1 (src/service/).
  const service = systemdService({ env: process.env, log });
  try {
    await gateway.start();
    writePidFile(config.stateDir);
    void service.ready(`running: ${config.devices.length} configured device(s)`);
  } catch (err) {
    log.fatal({ err: (err as Error).message, code: (err as { code?: string }).code }, "vitalgate could not start");
    await gateway.stop().catch(() => undefined);
    return 1;
  }
  const backups = scheduleBackups(config, resolved.source === DEFAULT_CONFIG_NAME ? undefined : resolved.source, {
    log,
    audit: () => gateway.audit,
  });
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    const said = service.stopping();
    await backups?.stop();
    await gateway.stop();
    removePidFile(config.stateDir);
    await said;
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGHUP", () => {
    if (resolved.source === DEFAULT_CONFIG_NAME)
      return void log.warn("SIGHUP: running on the embedded default; nothing to reload");
    const next = loadConfig({ file: resolved.source, env: process.env, drivers: findDriver });
    if (!next.ok)
      return void log.error(
        { errors: next.errors.map((e) => `${e.line ?? "?"}:${e.col ?? "?"} ${e.path}: ${e.message}`) },
        "SIGHUP: configuration invalid; keeping the running one",
      );
    void gateway
      .reload(next.config, "operator (SIGHUP)")
      .catch((err: Error) => log.error({ err: err.message }, "reload failed"));
  });
  return -1; // keep running
}

/**
 * Off the box (the default) a secret or TLS file that is not there is a warning: it exists only on the
 * box. `--on-box` (the installer, and what `start` does) makes it an error.
 */
function configCheck(file: string | undefined, onBox: boolean, io: Out): number | Promise<number> {
  if (!file) return usage(io);
  const r = loadConfig({ file, env: {}, drivers: findDriver, onBox });
  const warnings = r.warnings ?? [];
  if (warnings.length > 0) io.err(formatConfigErrors(warnings, "warning") + "\n");
  const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
  const warned = warnings.length > 0 ? `, ${plural(warnings.length, "warning")} (files only the box has)` : "";
  if (r.ok) {
    io.out(`${file}: valid (${plural(r.config.devices.length, "device")})${warned}\n`);
    return 0;
  }
  io.err(formatConfigErrors(r.errors) + "\n");
  io.err(`${file}: ${plural(r.errors.length, "error")}${warned}\n`);
  return 1;
}

/** The running gateway's page as seen from the box itself: `web.host`, or loopback when it listens on all addresses. */
async function gatewayUrl(web: Config["web"]): Promise<string> {
  const host = web.host === "0.0.0.0" || web.host === "::" ? "127.0.0.1" : web.host;
  const { pageIsHttps } = await import("../web/tls.ts");
  return `${pageIsHttps(web) ? "https" : "http"}://${host}:${web.port}`;
}

async function status(configPath: string | undefined, io: Out): Promise<number> {
  const resolved = resolveConfig(configPath, io);
  if (!resolved) return 2;
  const url = await gatewayUrl(resolved.result.config.web);
  try {
    const body = await getText(`${url}/status`);
    io.out(JSON.stringify(JSON.parse(body), null, 2) + "\n");
    return 0;
  } catch (err) {
    io.err(`cannot reach the gateway at ${url}: ${(err as Error).message}\n`);
    return 1;
  }
}

/** `vitalgate health`: the running gateway's /healthz; 0 when it answers ok (the installer waits on this). */
async function health(configPath: string | undefined, io: Out): Promise<number> {
  const resolved = resolveConfig(configPath, io);
  if (!resolved) return 2;
  const url = `${await gatewayUrl(resolved.result.config.web)}/healthz`;
  try {
    io.out(`${await getText(url)}\n`);
    return 0;
  } catch (err) {
    io.err(`${url}: ${(err as Error).message}\n`);
    return 1;
  }
}

/**
 * GETs a URL of the box itself. Over HTTPS the certificate is not checked: the page's certificate is
 * often self-signed, and the request goes to this very box's address.
 */
async function getText(url: string): Promise<string> {
  // Loaded here, not at the top: an ESM import of node:http evaluates its lazy `WebSocket` export,
  // which loads Node's bundled undici (~1.2 MB of heap) into the daemon, which never uses it.
  const { get } = url.startsWith("https:") ? await import("node:https") : await import("node:http");
  return new Promise((resolve, reject) => {
    const req = get(url, { rejectUnauthorized: false, timeout: 5000 }, (res) => {
      text(res).then(
        (body) =>
          res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}: ${body.slice(0, 200)}`)),
        reject,
      );
    });
    req.on("timeout", () => req.destroy(new Error("no answer within 5 s")));
    req.on("error", reject);
  });
}

function queueStats(configPath: string | undefined, io: Out): number {
  const resolved = resolveConfig(configPath, io);
  if (!resolved) return 2;
  const config: Config = resolved.result.config;
  if (!existsSync(config.store.path)) {
    io.err(`no outbox at ${config.store.path}\n`);
    return 1;
  }
  const outbox = new Outbox({
    path: config.store.path,
    quotaBytes: config.store.quotaMB * 1024 * 1024,
    batchMax: 1,
    nowMs: Date.now,
  });
  outbox.open("readonly");
  const s = outbox.stats();
  outbox.close();
  io.out(
    JSON.stringify(
      {
        path: config.store.path,
        ...s,
        oldestPendingAgeS: s.oldestPendingMs === null ? null : (Date.now() - s.oldestPendingMs) / 1000,
      },
      null,
      2,
    ) + "\n",
  );
  return 0;
}

/** Feeds a capture through a driver's codec exactly as the daemon would, printing every event. */
function decode(
  driverId: string | undefined,
  file: string | undefined,
  optionsJson: string | undefined,
  io: Out,
  ecgOut: EcgOutputs = {},
): number | Promise<number> {
  if (!driverId || !file) return usage(io);
  const driver = findDriver(driverId);
  if (!driver) {
    io.err(`unknown driver "${driverId}"; known: ${drivers.map((d) => d.id).join(", ")}\n`);
    return 2;
  }
  let raw: unknown;
  try {
    raw = optionsJson ? JSON.parse(optionsJson) : {};
  } catch (err) {
    io.err(`--options is not JSON: ${(err as Error).message}\n`);
    return 2;
  }
  const parsed = driver.options.safeParse(raw);
  if (!parsed.success) {
    io.err(`invalid --options: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}\n`);
    return 2;
  }
  const options = parsed.data;
  // A driver without a framer takes whole files: the capture is one message.
  const framer = (driver.captureFramer ?? driver.framer)?.(options) ?? {
    push: (chunk: Uint8Array) => [{ frame: chunk }],
    pending: 0,
  };
  const clock = systemClock();
  const dev = { id: "decode", driver: driver.id, kind: driver.kind };
  let errors = 0;
  let seq = 0;
  /** The format of the 12-lead ECG the capture decoded to, for --aecg/--svg. */
  let ecgFormat: unknown;
  const report = (e: { code: string; message: string; where?: string | number }) => {
    errors++;
    io.err(JSON.stringify({ error: e.code, message: e.message, where: e.where }) + "\n");
  };
  const session = openSession(driver, options);
  const bytes = readFileSync(file);
  for (const result of [...framer.push(bytes), ...(framer.end?.() ?? [])]) {
    if ("error" in result) {
      report(result.error);
      continue;
    }
    const ex = session.handle(result.frame, { nowMs: clock.now().ms, replay: true });
    if (!ex.ok) {
      report(ex.error);
      continue;
    }
    // What the gateway would count and log once (demo data, a "no value" marker read as absent).
    for (const n of ex.notices ?? []) io.err(JSON.stringify({ notice: n.code, message: n.message }) + "\n");
    for (const draft of ex.events) {
      // A capture is decoded as recorded: the device's own times, uncorrected (skew 0).
      const event = stamp(draft, { ...dev, model: draft.model, serial: draft.serial }, "decode", clock, undefined, 0);
      event.seq = ++seq;
      if (draft.kind === "ecg12") ecgFormat ??= (draft.body as { format?: unknown }).format;
      io.out(JSON.stringify(event) + "\n");
    }
  }
  if (errors === 0 && (ecgOut.aecg !== undefined || ecgOut.svg !== undefined))
    if (!writeEcgOutputs(new Uint8Array(bytes), ecgFormat, ecgOut, io)) errors++;
  return errors > 0 ? 1 : 0;
}

type EcgOutputs = { aecg?: string; svg?: string };

/**
 * decode --aecg/--svg: the file decoded once more, straight by its format's decoder (the event
 * carries the leads as int16 in base64, not the decoded ECG), then written as HL7 aECG and drawn as SVG.
 * For any driver whose capture decoded to a 12-lead ECG (an ecg12 event naming its file format).
 */
function writeEcgOutputs(bytes: Uint8Array, format: unknown, out: EcgOutputs, io: Out): boolean {
  const result = ECG_FILE_FORMATS.includes(format as EcgFormat) ? decodeEcgFile(format as EcgFormat, bytes) : undefined;
  if (!result?.ok) {
    io.err("--aecg/--svg: the capture decoded to no 12-lead ECG file this build reads\n");
    return false;
  }
  if (out.aecg !== undefined) {
    writeFileSync(out.aecg, exportAecg(result.ecg, { id: randomUUID() }));
    io.err(`wrote HL7 aECG to ${out.aecg}\n`);
  }
  if (out.svg !== undefined) {
    writeFileSync(out.svg, renderEcgSvg(result.ecg));
    io.err(`wrote the ECG drawing to ${out.svg}\n`);
  }
  return true;
}

/**
 * `vitalgate simulate [ID]`: the simulators the drivers bring (src/cli/simulate.ts, loaded only here:
 * it brings serialport, and each simulator its device's synthetic data, which the daemon never loads).
 */
async function simulate(id: string | undefined, v: SimulateFlags, io: Out): Promise<number> {
  const { simulators, simulateCommand, simulatorsUsage } = await import("./simulate.ts");
  const list = await simulators(drivers);
  if (id === undefined) {
    io.out(simulatorsUsage(list));
    return 0;
  }
  const found = list.find((s) => s.id === id);
  if (!found) {
    io.err(`no simulator "${id}"; simulators: ${list.map((s) => s.id).join(", ")}\n`);
    return 2;
  }
  const stop = new AbortController();
  process.once("SIGINT", () => stop.abort());
  process.once("SIGTERM", () => stop.abort());
  const say = { out: (line: string) => io.out(`${line}\n`), err: (line: string) => io.err(`${line}\n`) };
  const flags: SimulateFlags = {
    host: v.host,
    port: v.port,
    "tcp-port": v["tcp-port"],
    baud: v.baud,
    count: v.count,
    "interval-ms": v["interval-ms"],
    file: v.file,
    log: v.log,
  };
  return simulateCommand(id, found.simulator, flags, say, stop.signal);
}

function ports(io: Out): number {
  const found = listSerialPorts();
  if (found.length === 0) io.err("no serial ports found\n");
  for (const p of found) {
    const usb = p.vendorId
      ? ` usb ${p.vendorId}:${p.productId ?? "?"}${p.serialNumber ? ` serial ${p.serialNumber}` : ""}${p.product ? ` "${[p.manufacturer, p.product].filter(Boolean).join(" ")}"` : ""}`
      : "";
    io.out(`${p.byId ?? p.path}${p.byId ? ` (${p.path})` : ""}${usb}${p.driver ? ` [${p.driver}]` : ""}\n`);
  }
  return 0;
}

/** `vitalgate web hash-password`: the password from stdin (one line, its newline dropped), never from argv. */
async function hashPasswordCommand(io: Out): Promise<number> {
  const password = (await (io.stdin ?? (() => text(process.stdin)))()).replace(/\r?\n$/, "");
  const { hashPassword } = await import("../web/auth.ts");
  const { passwordProblem } = await import("../users/identity.ts");
  // The defaults of web.passwordMinLength and web.passwordMinClasses: a provisioned user is held to the page's policy.
  const problem = passwordProblem(password, "", { minLength: 8, minClasses: 3 });
  if (problem) {
    io.err(`the password ${problem} (give it on stdin)\n`);
    return 1;
  }
  io.out(`${await hashPassword(password)}\n`);
  return 0;
}

/** `vitalgate broker viewer`: the running gateway's read-only login on its embedded broker, as mosquitto_sub arguments. */
async function brokerViewer(configPath: string | undefined, io: Out): Promise<number> {
  const resolved = resolveConfig(configPath, io);
  if (!resolved) return 2;
  const { embeddedBroker, stateDir, uplink } = resolved.result.config;
  if (uplink) {
    io.err("this gateway has an uplink: it runs no embedded broker\n");
    return 1;
  }
  const { readBrokerCredentials } = await import("../uplink/broker.ts");
  try {
    const { viewer } = readBrokerCredentials(stateDir);
    const host = embeddedBroker.host === "0.0.0.0" || embeddedBroker.host === "::" ? "127.0.0.1" : embeddedBroker.host;
    io.out(`-h ${host} -p ${embeddedBroker.port} -V mqttv311 -u ${viewer.username} -P ${viewer.password}\n`);
    return 0;
  } catch (err) {
    io.err(
      `no login of the embedded broker in ${stateDir} (is the gateway running, and are you its user?): ${(err as Error).message}\n`,
    );
    return 1;
  }
}

/** The usage text, with the simulators the drivers bring (loaded for it). */
async function usage(io: Out): Promise<number> {
  const { simulators, simulatorsUsage } = await import("./simulate.ts");
  io.err(USAGE + simulatorsUsage(await simulators(drivers)));
  return 2;
}

export async function main(argv: string[], io: Out = stdio): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: "string", short: "c" },
      driver: { type: "string", short: "d" },
      options: { type: "string" },
      aecg: { type: "string" },
      svg: { type: "string" },
      host: { type: "string" },
      port: { type: "string" },
      count: { type: "string" },
      "interval-ms": { type: "string" },
      "tcp-port": { type: "string" },
      baud: { type: "string" },
      log: { type: "string" },
      file: { type: "string" },
      "on-box": { type: "boolean" },
      to: { type: "string" },
      "with-config": { type: "boolean" },
      help: { type: "boolean", short: "h" },
      version: { type: "boolean" },
    },
  });
  if (values.version) {
    io.out(`${VERSION}\n`);
    return 0;
  }
  const [command, sub, arg] = positionals;
  if (values.help || !command) return usage(io);
  switch (command) {
    case "start":
      return start(values.config, io);
    case "center":
      return (await import("../../center/cli.ts")).centerMain(argv.slice(1));
    case "config":
      if (sub === "check") return configCheck(arg ?? values.config, values["on-box"] ?? false, io);
      if (sub === "schema") {
        const { configJsonSchema } = await import("../config/json-schema.ts");
        io.out(JSON.stringify(configJsonSchema(drivers), null, 2) + "\n");
        return 0;
      }
      return usage(io);
    case "status":
      return status(values.config, io);
    case "backup":
    case "restore": {
      const resolved = resolveConfig(values.config, io);
      if (!resolved) return 2;
      const r = { config: resolved.result.config, source: resolved.source };
      return command === "backup"
        ? backupCommand(r, values.to, io)
        : restoreCommand(r, sub, values["with-config"] ?? false, io);
    }
    case "health":
      return health(values.config, io);
    case "queue":
      return sub === "stats" ? queueStats(values.config, io) : usage(io);
    case "decode":
      return decode(values.driver, sub, values.options, io, { aecg: values.aecg, svg: values.svg });
    case "simulate":
      return simulate(sub, values, io);
    case "ports":
      return ports(io);
    case "errors": {
      const { errorsPage } = await import("../error-catalog.ts");
      io.out(errorsPage());
      return 0;
    }
    case "web":
      return sub === "hash-password" ? hashPasswordCommand(io) : usage(io);
    case "broker":
      return sub === "viewer" ? brokerViewer(values.config, io) : usage(io);
    default:
      return usage(io);
  }
}

if (import.meta.main) {
  // `vitalgate decode … | head`: the reader went away; that is the end, not an error.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(0);
    throw err;
  });
  main(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exitCode = code;
      // A start that failed has stopped what it started; whatever a library still holds open must
      // not keep a daemon that is not running alive (systemd then sees the failure and restarts it).
      if (code > 0 && process.argv[2] === "start") setTimeout(() => process.exit(code), 2000).unref();
    },
    (err: Error) => {
      process.stderr.write(`vitalgate: ${err.message}\n`);
      process.exitCode = 2;
    },
  );
}
