// The configuration loader: one pass, every error with its line, environment overrides, secrets from
// files, the embedded default, the examples in config/ and the generated JSON Schema.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { DEFAULT_CONFIG_NAME, DEFAULT_CONFIG_YAML, loadDefaultConfig } from "../src/config/defaults.ts";
import { configJsonSchema, configJsonSchemaText } from "../src/config/json-schema.ts";
import type { DriverOptionsEntry } from "../src/config/json-schema.ts";
import { formatConfigErrors, formatPath, loadConfig } from "../src/config/load.ts";
import { main } from "../src/cli/main.ts";
import type { LoadConfigOptions, LoadConfigResult } from "../src/config/load.ts";
import type { Config, ConfigError } from "../src/config/schema.ts";

// A stand-in registry, so these tests do not depend on the real drivers being written alongside.
const fakeDrivers: DriverOptionsEntry[] = [
  {
    id: "hl7-pcd01",
    title: { en: "HL7 v2 PCD-01 (test double)" },
    options: z.strictObject({
      mode: z.enum(["listen", "connect"]).default("listen"),
      host: z.string().default("0.0.0.0"),
      port: z.int().min(1).max(65535).default(2575),
    }),
  },
  {
    id: "nmea-gps",
    options: z.strictObject({ path: z.string(), baudRate: z.int().default(4800) }),
  },
];
const drivers = (id: string) => fakeDrivers.find((d) => d.id === id);

const root = join(import.meta.dirname, "..");
const fixture = (name: string) => join(root, "test/fixtures/config", name);
const SECRET = "s3cr3t-Pa55w0rd";
const readSecret = () => SECRET;
const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const readTlsFile = () => PEM;

// The real registry, only for the committed JSON Schema's freshness; undefined while it cannot be imported.
const registry = await import("../drivers/registry.ts").catch(() => undefined);

const tmp = mkdtempSync(join(tmpdir(), "vitalgate-config-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function load(options: Partial<LoadConfigOptions>): LoadConfigResult {
  return loadConfig({ drivers, readSecret, readTlsFile, ...options });
}

function loadOk(options: Partial<LoadConfigOptions>): Config {
  const result = load(options);
  if (!result.ok) throw new Error(`expected a valid configuration:\n${formatConfigErrors(result.errors)}`);
  return result.config;
}

function loadErrors(options: Partial<LoadConfigOptions>): ConfigError[] {
  const result = load(options);
  if (result.ok) throw new Error("expected errors, the configuration was accepted");
  return result.errors;
}

describe("valid configurations", () => {
  it("fills every default from a minimal file", () => {
    const config = loadOk({ file: fixture("minimal.yaml") });
    expect(config).toEqual({
      gateway: { id: "minimal-01", role: "clinic" },
      stateDir: "/var/lib/vitalgate",
      embeddedBroker: { host: "127.0.0.1", port: 1883 },
      store: {
        path: "/var/lib/vitalgate/outbox.db",
        quotaMB: 1024,
        retentionDays: 7,
        batchMax: 1000,
        purgeCron: "17 * * * *",
        checkpointCron: "*/5 * * * *",
        resendWindowS: 600,
      },
      devices: [],
      web: {
        host: "0.0.0.0",
        port: 8080,
        users: [],
        sessionIdleMin: 30,
        loginMaxFailures: 5,
        loginMaxFailuresPerAddress: 50,
        loginWindowS: 900,
        passwordMinLength: 8,
        passwordMinClasses: 3,
        passwordMaxAgeDays: 0,
        hostNames: [],
        auditRetentionDays: 365,
      },
      pairing: {
        serialPaths: [],
        probeMs: 2500,
        listen: [2575, 11112],
        listenHost: "0.0.0.0",
        maxSenders: 32,
        maxConnections: 16,
        idleS: 60,
        connectNetworks: [],
        connectPorts: [],
      },
      watchedFolders: { roots: [] },
      listeners: { idleS: 300, maxConnections: 32, maxPerAddress: 16 },
      log: { level: "info", pretty: "auto" },
      time: {
        ntpServers: [],
        pollS: 64,
        ntpTimeoutMs: 2000,
        trustSystemClock: "auto",
        gpsLatencyMs: 100,
        gpsUncertaintyMs: 100,
        driftPpm: 50,
        skewThresholdS: 60,
        plausibleHours: 24,
        plausibleOffDays: 30,
        gpsLeapHoldS: 750,
      },
      cases: { targetMin: 10, geofences: [] },
    });
    expect("uplink" in config && config.uplink !== undefined).toBe(false);
  });

  it("derives the uplink client id from the gateway id, and fills uplink and driver defaults", () => {
    const config = loadOk({
      text: "gateway: { id: gw-1 }\nstateDir: /srv/vg/\nuplink: { url: 'mqtt://10.0.0.1' }\ndevices: [{ id: m1, driver: hl7-pcd01 }]\n",
    });
    expect(config.uplink).toMatchObject({
      url: "mqtt://10.0.0.1",
      clientId: "vitalgate-gw-1",
      protocolVersion: 5,
      rejectUnauthorized: true,
      inflight: 64,
      keepaliveS: 30,
      connectTimeoutS: 30,
      backoff: { initialMs: 1000, maxMs: 60000 },
      receipts: false,
      receiptTimeoutS: 600,
      statusIntervalS: 60,
    });
    expect(config.store.path).toBe("/srv/vg/outbox.db");
    expect(config.devices).toEqual([
      { id: "m1", driver: "hl7-pcd01", enabled: true, options: { mode: "listen", host: "0.0.0.0", port: 2575 } },
    ]);
  });

  it("keeps an explicit client id and store path", () => {
    const config = loadOk({
      text: "gateway: { id: gw-1 }\nuplink: { url: 'wss://c.example/mqtt', clientId: custom }\nstore: { path: /data/o.db }\n",
    });
    expect(config.uplink?.clientId).toBe("custom");
    expect(config.store.path).toBe("/data/o.db");
  });

  it("takes a section whose lines are all commented out as not set", () => {
    const config = loadOk({
      text: "gateway:\n  id: a\nuplink:\n#  url: mqtts://center.example\nstore:\ndevices:\n  - id: m\n    driver: hl7-pcd01\n    options:\n",
    });
    expect(config.uplink).toBeUndefined();
    expect(config.store.quotaMB).toBe(1024);
    expect(config.devices[0]?.options).toEqual({ mode: "listen", host: "0.0.0.0", port: 2575 });
    // An empty single value is still a mistake.
    expect(loadErrors({ text: "gateway:\n  id:\n" }).map((e) => e.message)).toEqual([
      "expected string, received an empty value",
    ]);
  });

  it.each(["ambulance.yaml", "clinic.yaml", "demo.yaml"])("accepts the example config/%s", (name) => {
    const text = readFileSync(join(root, "config", name), "utf8");
    expect(text.startsWith("# yaml-language-server: $schema=./vitalgate.schema.json\n")).toBe(true);
    const config = loadOk({ file: `config/${name}`, text });
    expect(config.devices.length).toBeGreaterThan(0);
  });

  it("ambulance example: TLS with a client certificate, receipts on", () => {
    const config = loadOk({ file: join(root, "config/ambulance.yaml") });
    expect(config.gateway.role).toBe("ambulance");
    expect(config.uplink).toMatchObject({
      url: expect.stringMatching(/^mqtts:/),
      certFile: expect.any(String),
      keyFile: expect.any(String),
      receipts: true,
    });
  });

  it("clinic example: one device connects to us, we connect to the other", () => {
    const config = loadOk({ file: join(root, "config/clinic.yaml") });
    expect(config.devices.map((d) => d.options.mode)).toEqual(["listen", "connect"]);
  });
});

describe("embedded default", () => {
  it("is config/demo.yaml byte for byte", () => {
    // To update: write DEFAULT_CONFIG_YAML (src/config/defaults.ts) to config/demo.yaml.
    expect(readFileSync(join(root, "config/demo.yaml"), "utf8")).toBe(DEFAULT_CONFIG_YAML);
  });

  it("validates through the same loader: demo gateway, no uplink, state in ./var, one HL7 listener on loopback", () => {
    const result = loadDefaultConfig({ drivers });
    if (!result.ok) throw new Error(formatConfigErrors(result.errors));
    const { config } = result;
    expect(config.gateway.id).toBe("demo");
    expect(config.uplink).toBeUndefined();
    expect(config.stateDir).toBe("./var");
    expect(config.store.path).toBe("./var/outbox.db");
    expect(config.devices).toEqual([
      {
        id: "demo-monitor",
        driver: "hl7-pcd01",
        name: "Demo monitor (HL7 PCD-01)",
        enabled: true,
        options: { mode: "listen", host: "127.0.0.1", port: 2575 },
      },
    ]);
  });

  it("reports its errors under its own name", () => {
    const result = loadDefaultConfig({ drivers: () => undefined });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(formatConfigErrors(result.errors)).toContain(`${DEFAULT_CONFIG_NAME}:`);
  });
});

describe("every error at once", () => {
  it("reports nine different mistakes with their paths and positions", () => {
    const file = fixture("many-errors.yaml");
    const errors = loadErrors({ file });
    expect(errors.map((e) => [e.path, e.line, e.col])).toEqual([
      ["gateway.id", 3, 3], // missing: points at the parent mapping
      ["gateway.role", 4, 9],
      ["uplnk", 5, 1],
      ["uplink.certFile", 10, 13],
      ["uplink.inflight", 11, 13],
      ["store.purgeCron", 13, 14],
      ["devices[0].options.port", 18, 13],
      ["devices[1].id", 19, 9],
      ["devices[2].driver", 22, 13],
    ]);
    expect(errors.every((e) => e.file === file)).toBe(true);
    const byPath = Object.fromEntries(errors.map((e) => [e.path, e.message]));
    expect(byPath["gateway.id"]).toBe('missing required key "id"');
    expect(byPath["gateway.role"]).toBe("expected one of ambulance, clinic");
    expect(byPath["uplnk"]).toBe('unknown key "uplnk"');
    expect(byPath["uplink.certFile"]).toMatch(/keyFile/);
    expect(byPath["uplink.inflight"]).toBe("expected number, received string");
    expect(byPath["store.purgeCron"]).toMatch(/^invalid cron expression: .*minute/);
    expect(byPath["devices[0].options.port"]).toBe("expected number, received string");
    expect(byPath["devices[1].id"]).toBe('duplicate device id "monitor-bed1": devices[0] has it too (line 15)');
    expect(byPath["devices[2].driver"]).toBe('unknown driver "no-such-driver"');
  });

  it("formats one line per error for the CLI", () => {
    const errors = loadErrors({ file: "vitalgate.yaml", text: readFileSync(fixture("many-errors.yaml"), "utf8") });
    const lines = formatConfigErrors(errors).split("\n");
    expect(lines).toHaveLength(9);
    expect(lines).toContain("vitalgate.yaml:18:13 devices[0].options.port: expected number, received string");
    expect(lines[0]).toBe('vitalgate.yaml:3:3 gateway.id: missing required key "id"');
  });

  it("suggests the key a typo meant", () => {
    const errors = loadErrors({ text: "gateway: { id: a }\nuplnk: { url: 'mqtts://x' }\nstore: { quotaMb: 5 }\n" });
    expect(errors.map((e) => e.message)).toEqual([
      'unknown key "uplnk" (did you mean "uplink"?)',
      'unknown key "quotaMb" (did you mean "quotaMB"?)',
    ]);
  });

  it("checks driver options against the driver's own schema, with a full path", () => {
    const errors = loadErrors({
      text: [
        "gateway: { id: a }",
        "devices:",
        "  - id: gps",
        "    driver: nmea-gps",
        "    options: { baudRate: 4800.5, pth: 1 }",
        "  - id: mon",
        "    driver: hl7-pcd01",
        "    options: { mode: serial, port: 70000 }",
      ].join("\n"),
    });
    expect(errors.map((e) => `${e.line}:${e.col} ${e.path}: ${e.message}`)).toEqual([
      '5:14 devices[0].options.path: missing required key "path"', // at the options mapping
      "5:26 devices[0].options.baudRate: expected integer, received number",
      '5:34 devices[0].options.pth: unknown key "pth" (did you mean "path"?)',
      "8:22 devices[1].options.mode: expected one of listen, connect",
      "8:36 devices[1].options.port: must be at most 65535",
    ]);
  });

  it("still checks a device's driver options when its other fields are wrong", () => {
    const errors = loadErrors({
      text: "gateway: { id: a }\ndevices:\n  - id: Bad/Id\n    driver: hl7-pcd01\n    colour: red\n    options: { port: 0 }\n",
    });
    expect(errors.map((e) => e.path)).toEqual(["devices[0].id", "devices[0].colour", "devices[0].options.port"]);
  });

  it("rejects gateway ids that cannot be an MQTT topic level", () => {
    for (const id of ["a/b", "a+b", "a#", "Upper", "-lead", "x".repeat(64), ""]) {
      const errors = loadErrors({ text: `gateway: { id: ${JSON.stringify(id)} }\n` });
      expect(errors.map((e) => e.path)).toEqual(["gateway.id"]);
    }
  });

  it("checks the uplink: URL scheme, key without certificate, TLS files on a plain URL, MQTT 3.1.1 password without user", () => {
    const errors = loadErrors({
      text: "gateway: { id: a }\nuplink:\n  url: mqtt://center.example\n  protocolVersion: 4\n  keyFile: /k.pem\n  passwordFile: /p\n  backoff: { initialMs: 5000, maxMs: 1000 }\n",
    });
    expect(errors.map((e) => e.path)).toEqual([
      "uplink.keyFile",
      "uplink.keyFile",
      "uplink.passwordFile",
      "uplink.backoff.initialMs",
    ]);
    expect(
      loadErrors({ text: "gateway: { id: a }\nuplink: { url: 'http://center.example' }\n" }).map((e) => e.message),
    ).toEqual(["must be an mqtt://, mqtts://, ws:// or wss:// URL with a host (e.g. mqtts://center.example:8883)"]);
    expect(
      loadErrors({ text: "gateway: { id: a }\nuplink: { url: 'mqtts://center.example', protocolVersion: 3 }\n" }).map(
        (e) => e.message,
      ),
    ).toEqual(["expected one of 5, 4"]);
  });

  it("checks the cases section: the target and each geofence", () => {
    const errors = loadErrors({
      text: "gateway: { id: a }\ncases: { targetMin: 0, geofences: [{ name: ER, lat: 91, lon: 120, radiusM: 150 }, { name: Door, lat: 30, lon: 120 }] }\n",
    });
    expect(errors.map((e) => e.path)).toEqual([
      "cases.targetMin",
      "cases.geofences[0].lat",
      "cases.geofences[1].radiusM",
    ]);
  });

  it("reports an empty document and a document that is not a mapping", () => {
    expect(loadErrors({ text: "" }).map((e) => e.path)).toEqual(["gateway"]);
    expect(loadErrors({ text: "- a\n- b\n" }).map((e) => [e.path, e.message])).toEqual([
      ["", "expected mapping, received list"],
    ]);
  });
});

describe("YAML syntax", () => {
  it("reports a syntax error with its line and column, and nothing else", () => {
    const errors = loadErrors({ file: fixture("syntax-error.yaml") });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({
      line: 7,
      col: 1,
      path: "",
      message: expect.stringMatching(/^YAML syntax error: Flow map/),
    });
    expect(formatConfigErrors(errors)).toMatch(/syntax-error\.yaml:7:1 YAML syntax error/);
  });

  it("reports a key written twice", () => {
    const errors = loadErrors({ file: "v.yaml", text: "gateway:\n  id: a\nweb:\n  port: 1\n  port: 2\n" });
    expect(errors).toMatchObject([{ line: 5, col: 3, message: expect.stringMatching(/unique/) }]);
  });
});

describe("the configuration file", () => {
  it("says when the file does not exist, so the CLI can fall back to the embedded default", () => {
    const file = join(tmp, "no-such.yaml");
    const result = loadConfig({ file, drivers });
    expect(result).toEqual({
      ok: false,
      reason: "not-found",
      errors: [{ path: "", file, message: `configuration file ${file} does not exist` }],
    });
  });

  it("reports a file it cannot read", () => {
    const result = loadConfig({ file: tmp, drivers });
    expect(result).toMatchObject({
      ok: false,
      reason: "invalid",
      errors: [{ file: tmp, message: expect.stringMatching(/is a directory/) }],
    });
  });
});

describe("environment overrides", () => {
  const base =
    "gateway:\n  id: env-01\ndevices:\n  - id: monitor-bed1\n    driver: hl7-pcd01\n    options:\n      port: 2575\n";

  it("applies VITALGATE__ variables, nesting on double underscores, matching keys regardless of case and underscores", () => {
    const config = loadOk({
      text: base,
      env: {
        VITALGATE__UPLINK__URL: "mqtts://center.example:8883",
        VITALGATE__UPLINK__PROTOCOL_VERSION: "4",
        vitalgate__ignored: "not our prefix",
        VITALGATE__STORE__QUOTAMB: "512",
        VITALGATE__LOG__PRETTY: "false",
        VITALGATE__DEVICES__MONITOR_BED1__ENABLED: "false",
        VITALGATE__DEVICES__0__OPTIONS__PORT: "2600",
        VITALGATE__DEVICES__0__OPTIONS__MODE: "connect",
        VITALGATE__WEB__HOST: "",
        PATH: "/usr/bin",
      },
    });
    expect(config.uplink).toMatchObject({
      url: "mqtts://center.example:8883",
      protocolVersion: 4,
      clientId: "vitalgate-env-01",
    });
    expect(config.store.quotaMB).toBe(512);
    expect(config.log.pretty).toBe(false);
    expect(config.devices[0]).toMatchObject({ enabled: false, options: { port: 2600, mode: "connect" } });
    expect(config.web.host).toBe("0.0.0.0"); // empty values are ignored
  });

  it("fills a section left empty in the file", () => {
    const config = loadOk({
      text: "gateway: { id: a }\nuplink:\n",
      env: { VITALGATE__UPLINK__URL: "mqtts://center.example" },
    });
    expect(config.uplink?.url).toBe("mqtts://center.example");
  });

  it("keeps text settings as text even when they look like numbers", () => {
    expect(loadOk({ text: base, env: { VITALGATE__GATEWAY__ID: "007" } }).gateway.id).toBe("007");
  });

  it("attributes an invalid value to its variable, not to the file", () => {
    const errors = loadErrors({
      file: "v.yaml",
      text: base,
      env: { VITALGATE__WEB__PORT: "eighty", VITALGATE__UPLINK__URL: "ftp://x" },
    });
    expect(errors).toEqual([
      {
        path: "uplink.url",
        env: "VITALGATE__UPLINK__URL",
        message:
          "must be an mqtt://, mqtts://, ws:// or wss:// URL with a host (e.g. mqtts://center.example:8883) (from environment variable VITALGATE__UPLINK__URL)",
      },
      {
        path: "web.port",
        env: "VITALGATE__WEB__PORT",
        message: "expected number, received string (from environment variable VITALGATE__WEB__PORT)",
      },
    ]);
    expect(formatConfigErrors(errors)).toContain(
      "web.port: expected number, received string (from environment variable VITALGATE__WEB__PORT)",
    );
  });

  it("reports variables that name no setting", () => {
    const errors = loadErrors({
      text: base,
      env: {
        VITALGATE__UPLNK__URL: "mqtts://x",
        VITALGATE__DEVICES__NOPE__ENABLED: "false",
        VITALGATE__GATEWAY__ID__X: "1",
        VITALGATE__DEVICES__0__OPTIONS__PORTT: "1",
      },
    });
    expect(errors.map((e) => [e.env, e.message])).toEqual([
      [
        "VITALGATE__DEVICES__0__OPTIONS__PORTT",
        'environment variable VITALGATE__DEVICES__0__OPTIONS__PORTT: no setting "portt" in devices[0].options',
      ],
      [
        "VITALGATE__DEVICES__NOPE__ENABLED",
        'environment variable VITALGATE__DEVICES__NOPE__ENABLED: devices has no entry "nope"',
      ],
      [
        "VITALGATE__GATEWAY__ID__X",
        'environment variable VITALGATE__GATEWAY__ID__X: gateway.id is a single value, it has no "x"',
      ],
      ["VITALGATE__UPLNK__URL", 'environment variable VITALGATE__UPLNK__URL: no setting "uplnk" in the configuration'],
    ]);
  });
});

describe("secrets", () => {
  const withPassword = readFileSync(fixture("with-password.yaml"), "utf8");

  it("reads uplink.passwordFile and returns the password only in secrets", () => {
    const file = join(tmp, "uplink.password");
    writeFileSync(file, `${SECRET}\n`, { mode: 0o600 });
    const result = loadConfig({ text: withPassword.replace("/etc/vitalgate/uplink.password", file), drivers });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.secrets).toEqual({ uplinkPassword: SECRET });
    expect(JSON.stringify(result.config)).not.toContain(SECRET);
    expect(result.config.uplink?.passwordFile).toBe(file);
  });

  it("reports a password file that does not exist, at the passwordFile line", () => {
    const file = join(tmp, "missing.password");
    const result = loadConfig({
      file: "v.yaml",
      text: withPassword.replace("/etc/vitalgate/uplink.password", file),
      drivers,
    });
    const errors = result.ok ? [] : result.errors;
    expect(errors).toEqual([
      {
        path: "uplink.passwordFile",
        file: "v.yaml",
        line: 6,
        col: 17,
        message: `cannot read the password file ${file}: it does not exist`,
      },
    ]);
  });

  it("reports an empty password file", () => {
    const errors = loadErrors({ text: withPassword, readSecret: () => "" });
    expect(errors.map((e) => e.message)).toEqual(["the password file /etc/vitalgate/uplink.password is empty"]);
  });

  it("never puts the secret in an error, even beside other errors or when written inline", () => {
    const text = `${withPassword}  password: ${SECRET}\n  inflight: ${SECRET}\nweb: { port: ${SECRET} }\n`;
    const result = load({ text, env: { VITALGATE__UPLINK__PASS_WORD: SECRET, VITALGATE__LOG__LEVEL: SECRET } });
    expect(result.ok).toBe(false);
    const output = JSON.stringify(result) + (result.ok ? "" : formatConfigErrors(result.errors));
    expect(output).not.toContain(SECRET);
    if (!result.ok) expect(result.errors.find((e) => e.path === "uplink.password")?.message).toMatch(/passwordFile/);
  });
});

describe("files only the box has (secrets, TLS)", () => {
  const ambulance = join(root, "config/ambulance.yaml");
  const run = async (args: string[]) => {
    let out = "";
    let err = "";
    const code = await main(args, { out: (t) => (out += t), err: (t) => (err += t) });
    return { code, out, err };
  };

  it("off the box, warns of each one that is not there, naming the setting and the file, and exits 0", async () => {
    const r = loadConfig({ file: ambulance, drivers, onBox: false });
    expect(r.ok).toBe(true);
    expect(formatConfigErrors(r.warnings ?? [], "warning").split("\n")).toEqual([
      `${ambulance}:24:11 warning: uplink.caFile: the CA certificate file /etc/vitalgate/tls/center-ca.pem cannot be read here (it does not exist); the box needs it`,
      `${ambulance}:25:13 warning: uplink.certFile: the client certificate file /etc/vitalgate/tls/yq-amb-07.crt cannot be read here (it does not exist); the box needs it`,
      `${ambulance}:26:12 warning: uplink.keyFile: the client key file /etc/vitalgate/tls/yq-amb-07.key cannot be read here (it does not exist); the box needs it`,
      `${ambulance}:29:17 warning: uplink.passwordFile: the password file /etc/vitalgate/uplink.password cannot be read here (it does not exist); the box needs it`,
    ]);
    for (const name of ["ambulance.yaml", "clinic.yaml"]) {
      const { code, out, err } = await run(["config", "check", join(root, "config", name)]);
      expect(code, err).toBe(0);
      expect(out).toMatch(/: valid \(\d devices?\), \d warnings \(files only the box has\)\n$/);
      expect(err).toContain("warning: uplink.passwordFile:");
    }
  });

  it("on the box (start, and config check --on-box), refuses each one that is not there", async () => {
    const r = loadConfig({ file: ambulance, drivers });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => `${e.path}: ${e.message}`)).toEqual([
      "uplink.caFile: cannot read the CA certificate file /etc/vitalgate/tls/center-ca.pem: it does not exist",
      "uplink.certFile: cannot read the client certificate file /etc/vitalgate/tls/yq-amb-07.crt: it does not exist",
      "uplink.keyFile: cannot read the client key file /etc/vitalgate/tls/yq-amb-07.key: it does not exist",
      "uplink.passwordFile: cannot read the password file /etc/vitalgate/uplink.password: it does not exist",
    ]);
    const { code, err } = await run(["config", "check", "--on-box", ambulance]);
    expect(code).toBe(1);
    expect(err).toContain(`${ambulance}:24:11 uplink.caFile: cannot read the CA certificate file`);
    expect(err).toMatch(/: 4 errors\n$/);
  });

  it("checks the page's TLS files like the uplink's, and what is wrong in a file that is there even off the box", () => {
    const cert = join(tmp, "page.crt");
    writeFileSync(cert, "not a certificate\n");
    const empty = join(tmp, "empty.password");
    writeFileSync(empty, "");
    const text = `gateway: { id: a }
uplink: { url: mqtts://center.example, username: gw, passwordFile: ${empty} }
web:
  tls: { certFile: ${cert}, keyFile: /nowhere/page.key }
`;
    const off = loadConfig({ text, drivers, onBox: false });
    expect(off.ok).toBe(false);
    if (off.ok) return;
    expect(off.errors.map((e) => `${e.line} ${e.path}: ${e.message}`)).toEqual([
      `2 uplink.passwordFile: the password file ${empty} is empty`,
      `4 web.tls.certFile: the page certificate file ${cert} is not PEM (no "-----BEGIN" line)`,
    ]);
    expect(off.warnings?.map((e) => `${e.line} ${e.path}: ${e.message}`)).toEqual([
      "4 web.tls.keyFile: the page key file /nowhere/page.key cannot be read here (it does not exist); the box needs it",
    ]);
    const on = loadConfig({ text, drivers });
    expect(on.ok ? [] : on.errors.map((e) => e.path)).toEqual([
      "uplink.passwordFile",
      "web.tls.certFile",
      "web.tls.keyFile",
    ]);
  });
});

describe("JSON Schema", () => {
  const schema = configJsonSchema(fakeDrivers) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

  it("is draft 2020-12 and refuses unknown keys", () => {
    expect(schema.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(["gateway"]);
    expect(schema.properties.gateway.properties.id.pattern).toBe("^[a-z0-9][a-z0-9-]{0,62}$");
  });

  it("describes every setting (outside the drivers' own options)", () => {
    const undescribed: string[] = [];
    interface Node {
      description?: unknown;
      properties?: Record<string, Node>;
      items?: Node;
      oneOf?: Node[];
      anyOf?: Node[];
    }
    const visit = (node: Node, path: string) => {
      for (const [key, child] of Object.entries(node.properties ?? {})) {
        const here = `${path}.${key}`;
        if (typeof child.description !== "string" || child.description === "") undescribed.push(here);
        if (key !== "options") visit(child, here);
      }
      if (node.items) visit(node.items, `${path}[]`);
      for (const variant of node.oneOf ?? node.anyOf ?? []) visit(variant, path);
    };
    visit(schema, "");
    expect(undescribed).toEqual([]);
  });

  it("gives each device entry its driver's options, keyed by driver", () => {
    const variants = schema.properties.devices.items.oneOf;
    expect(variants.map((v: { properties: { driver: { const: string } } }) => v.properties.driver.const)).toEqual([
      "hl7-pcd01",
      "nmea-gps",
    ]);
    expect(variants[0].properties.options.properties.port).toMatchObject({
      type: "integer",
      default: 2575,
      maximum: 65535,
    });
    expect(variants[1].properties.options.required).toEqual(["path"]);
  });

  it("falls back to free-form options with no drivers", () => {
    const bare = configJsonSchema([]) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(bare.properties.devices.items.properties.options.type).toBe("object");
  });

  // config/vitalgate.schema.json is generated for the real registry. Skipped while the registry cannot be
  // imported (drivers are being written); it then fails whenever the committed file is stale.
  it.skipIf(registry === undefined)(
    "config/vitalgate.schema.json is current (regenerate: node src/cli/main.ts config schema > config/vitalgate.schema.json, or run this test with -u)",
    async () => {
      const text = configJsonSchemaText(registry!.drivers);
      await expect(
        text,
        "config/vitalgate.schema.json is stale: regenerate with `node src/cli/main.ts config schema > config/vitalgate.schema.json` or `npx vitest run test/config.test.ts -u`",
      ).toMatchFileSnapshot("../config/vitalgate.schema.json");
    },
  );
});

describe("formatPath", () => {
  it("writes list indices in brackets", () => {
    expect(formatPath(["devices", 1, "options", "port"])).toBe("devices[1].options.port");
    expect(formatPath([])).toBe("");
  });
});
