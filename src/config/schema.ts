// The one schema for vitalgate.yaml (DESIGN.md §7). It validates the whole file in one pass, including
// each device's driver options, and is the source of the JSON Schema that editors and the web form use:
// every field carries its description here, once.
import { isIP } from "node:net";
import { validateDetailed } from "node-cron";
import { z } from "zod";
import { ROLES } from "../users/roles.ts";
import { zoneOffsetMinutes } from "../time/zone.ts";
import { usernameSkeleton } from "../users/identity.ts";

/** Finds a driver's options schema by registry id; `undefined` for an unknown driver. */
export type DriverLookup = (id: string) => { options: z.ZodType } | undefined;

/** One problem found in a configuration, located as precisely as the source allows. */
export interface ConfigError {
  /** Where in the document, e.g. `devices[1].options.port`; "" for the document itself. */
  path: string;
  message: string;
  /** 1-based position of the offending YAML node (for a missing key: its parent mapping). */
  line?: number;
  col?: number;
  /** The configuration file the error is in. */
  file?: string;
  /** Set when the offending value came from an environment variable, e.g. `VITALGATE__UPLINK__URL`. */
  env?: string;
}

// The gateway id goes into MQTT topic levels (`vitalgate/v1/{gw}/...`), so it must never hold `/`, `+` or `#`.
export const GATEWAY_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const DEVICE_ID_PATTERN = /^[a-z0-9][a-z0-9-_]{0,62}$/;
const UPLINK_URL_PATTERN = /^(mqtt|mqtts|ws|wss):\/\/[^\s/?#]+/;
const TLS_SCHEMES = new Set(["mqtts:", "wss:"]);

export const GATEWAY_ROLES = ["ambulance", "clinic"] as const;
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

const port = () => z.int().min(1).max(65535);

/** A node-cron expression (5 fields, or 6 with seconds), checked with node-cron itself. */
const cronExpression = () =>
  z.string().superRefine((expression, ctx) => {
    const result = validateDetailed(expression);
    if (!result.valid) {
      const why = result.errors.map((e) => e.message).join("; ") || "not a valid expression";
      ctx.addIssue({
        code: "custom",
        message: `invalid cron expression: ${why} (e.g. "17 * * * *" = hourly at minute 17)`,
      });
    }
  });

const gatewaySchema = z
  .strictObject({
    id: z
      .string()
      .regex(GATEWAY_ID_PATTERN, {
        message:
          "must be 1-63 characters: lowercase letters, digits and '-', starting with a letter or digit (it becomes an MQTT topic level)",
      })
      .describe(
        "This gateway's id, unique in the county: it names the gateway in every event and MQTT topic (e.g. yq-amb-07).",
      ),
    site: z
      .string()
      .max(200)
      .optional()
      .describe("Free text: where the box is (vehicle plate, clinic name). Shown on the web page."),
    role: z
      .enum(GATEWAY_ROLES)
      .default("clinic")
      .describe("ambulance: cases are missions and a GPS is expected; clinic: a fixed site."),
  })
  .describe("Who this gateway is.");

const backoffSchema = z
  .strictObject({
    initialMs: z.int().min(100).max(600_000).default(1000).describe("First reconnect delay in milliseconds."),
    maxMs: z.int().min(100).max(3_600_000).default(60_000).describe("Longest reconnect delay in milliseconds."),
  })
  .superRefine((b, ctx) => {
    if (b.initialMs > b.maxMs)
      ctx.addIssue({ code: "custom", path: ["initialMs"], message: "must not be larger than maxMs" });
  })
  .describe("Reconnect delays: exponential from initialMs up to maxMs, with random jitter.");

const uplinkSchema = z
  .strictObject({
    url: z
      .string()
      .regex(UPLINK_URL_PATTERN, {
        message: "must be an mqtt://, mqtts://, ws:// or wss:// URL with a host (e.g. mqtts://center.example:8883)",
      })
      .refine((url) => URL.canParse(url), { message: "is not a valid URL" })
      .refine((url) => !URL.canParse(url) || (new URL(url).username === "" && new URL(url).password === ""), {
        message: "must not carry a user name or password: set uplink.username and uplink.passwordFile",
      })
      .describe(
        "The county center's MQTT broker: mqtts://host:8883 (TLS) or wss://host/path; mqtt:// and ws:// only on a trusted network.",
      ),
    protocolVersion: z.literal([5, 4]).default(5).describe("MQTT protocol version: 5, or 4 for MQTT 3.1.1 brokers."),
    clientId: z.string().min(1).max(128).optional().describe("MQTT client id. Default: vitalgate-<gateway.id>."),
    caFile: z
      .string()
      .min(1)
      .optional()
      .describe(
        "PEM file with the CA certificate(s) that signed the center's server certificate. Default: the system's CAs.",
      ),
    certFile: z
      .string()
      .min(1)
      .optional()
      .describe("PEM file with this gateway's client certificate (set keyFile too)."),
    keyFile: z
      .string()
      .min(1)
      .optional()
      .describe("PEM file with the private key of certFile. Keep it readable only by the vitalgate user."),
    username: z.string().min(1).optional().describe("MQTT user name."),
    passwordFile: z
      .string()
      .min(1)
      .optional()
      .describe("File holding the MQTT password (one line). Passwords are never written in this file itself."),
    rejectUnauthorized: z
      .boolean()
      .default(true)
      .describe("Verify the center's TLS certificate. Turn off only to diagnose, never in service."),
    inflight: z
      .int()
      .min(1)
      .max(1000)
      .default(64)
      .describe("Most publishes awaiting the broker's acknowledgement at once."),
    keepaliveS: z
      .int()
      .min(0)
      .max(65535)
      .default(30)
      .describe("MQTT keepalive in seconds (0 turns it off; not advised on mobile links)."),
    connectTimeoutS: z
      .int()
      .min(1)
      .max(600)
      .default(30)
      .describe("Give up a connection attempt after this many seconds."),
    backoff: backoffSchema.prefault({}),
    receipts: z
      .boolean()
      .default(false)
      .describe(
        "Mark an event delivered only when the center's end-to-end receipt arrives, not on the broker's PUBACK.",
      ),
    receiptTimeoutS: z
      .int()
      .min(10)
      .max(86_400)
      .default(600)
      .describe("With receipts: resend an event when no receipt came within this many seconds."),
    statusIntervalS: z
      .int()
      .min(5)
      .max(86_400)
      .default(60)
      .describe("How often the retained status message is refreshed, in seconds."),
    compact: z
      .boolean()
      .default(true)
      .describe(
        "Batch what waits (vitals, lab, positions, device events, waveforms) and gzip messages and ECG files (docs/protocol.md). false: one plain JSON event per message and files as they are, as vitalgate 0.1.0 sent, for a center that has not learnt batches.",
      ),
    batchWaitS: z
      .number()
      .min(0)
      .max(600)
      .default(10)
      .describe(
        "With compact: how long a vitals, lab, position, device or waveform event may wait for others to travel in one batch with it (s). A backlog goes at once in full batches; ECGs, alarms and case events never wait.",
      ),
    maxMessageKiB: z
      .int()
      .min(16)
      .max(256 * 1024)
      .default(256)
      .describe(
        "Largest MQTT message the gateway publishes, in KiB (the whole PUBLISH packet): batches are cut and file chunks sized under it. Set it to the broker's limit when that is lower (mosquitto max_packet_size, a managed broker's message size limit).",
      ),
    inflightKiB: z
      .int()
      .min(4)
      .max(64 * 1024)
      .default(16)
      .describe(
        "With compact: batch bytes awaiting the broker's acknowledgement at once. What a new ECG may find ahead of it on the link: 16 KiB is a third of a second at 384 kbit/s, and keeps such a link busy at 150 ms RTT.",
      ),
  })
  .superRefine(
    (u, ctx) => {
      // Runs even when fields above failed, so reads defensively.
      if (typeof u !== "object" || u === null) return;
      const hasCert = typeof u.certFile === "string";
      const hasKey = typeof u.keyFile === "string";
      if (hasCert && !hasKey)
        ctx.addIssue({
          code: "custom",
          path: ["certFile"],
          message: "a client certificate needs its key: set keyFile too (or neither)",
        });
      if (hasKey && !hasCert)
        ctx.addIssue({
          code: "custom",
          path: ["keyFile"],
          message: "a client key needs its certificate: set certFile too (or neither)",
        });
      if (typeof u.url === "string" && URL.canParse(u.url) && !TLS_SCHEMES.has(new URL(u.url).protocol)) {
        for (const key of ["caFile", "certFile", "keyFile"] as const) {
          if (typeof u[key] === "string") {
            ctx.addIssue({ code: "custom", path: [key], message: "TLS files need a TLS url (mqtts:// or wss://)" });
          }
        }
      }
      if (u.protocolVersion === 4 && typeof u.passwordFile === "string" && typeof u.username !== "string") {
        ctx.addIssue({
          code: "custom",
          path: ["passwordFile"],
          message: "MQTT 3.1.1 sends a password only with a username: set username",
        });
      }
    },
    { when: () => true },
  )
  .describe("The county center's MQTT broker. Leave out to use the embedded broker on loopback.");

/** "192.168.10.0/24", "fd00::/64": an IP address and a prefix length that fits it. */
export function isCidr(s: string): boolean {
  const [address, prefix, ...rest] = s.split("/");
  const family = isIP(address ?? "");
  return (
    rest.length === 0 && family !== 0 && /^\d{1,3}$/.test(prefix ?? "") && Number(prefix) <= (family === 4 ? 32 : 128)
  );
}

/** Addresses that never leave the box. */
export const isLoopback = (host: string) => /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/i.test(host);

const embeddedBrokerSchema = z
  .strictObject({
    host: z
      .string()
      .min(1)
      .default("127.0.0.1")
      .describe("Address the embedded broker listens on. Beyond loopback only with a center bridge set (center)."),
    port: port().default(1883).describe("Port the embedded broker listens on."),
    center: z
      .strictObject({
        username: z.string().min(1).max(64).describe("The center bridge's MQTT user name."),
        passwordFile: z.string().min(1).describe("File holding its password (one line)."),
      })
      .optional()
      .describe(
        "The county center's own bridge: the only client that may publish commands, reports and receipts to this gateway. Unset: nobody may.",
      ),
  })
  .superRefine(
    (b, ctx) => {
      if (typeof b.host === "string" && !isLoopback(b.host) && b.center === undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["host"],
          message: `the embedded broker listens beyond loopback (${b.host}) only with a center bridge set (embeddedBroker.center: username, passwordFile); else use 127.0.0.1`,
        });
      }
    },
    { when: () => true },
  )
  .describe(
    "The MQTT broker run inside the gateway when there is no uplink, so data is collected before the center is set up. Clients log in: the gateway and a read-only viewer with passwords generated at each start (<stateDir>/broker-credentials.json, mode 0600), and the center bridge if set.",
  );

const storeSchema = z
  .strictObject({
    path: z.string().min(1).optional().describe("SQLite outbox file. Default: <stateDir>/outbox.db."),
    quotaMB: z
      .int()
      .min(16)
      .max(1_048_576)
      .default(1024)
      .describe(
        "Size limit of the outbox in MB; beyond it the oldest low-priority undelivered events are evicted (never ECGs, alarms or cases).",
      ),
    retentionDays: z.number().min(0).max(3650).default(7).describe("Days delivered events are kept before deletion."),
    batchMax: z
      .int()
      .min(1)
      .max(100_000)
      .default(1000)
      .describe("Most events written in one transaction (group commit)."),
    purgeCron: cronExpression()
      .default("17 * * * *")
      .describe("When delivered events past retention are deleted (cron: minute hour day month weekday)."),
    checkpointCron: cronExpression()
      .default("*/5 * * * *")
      .describe("When the SQLite write-ahead log is checkpointed (cron)."),
    resendWindowS: z
      .int()
      .min(0)
      .max(86_400)
      .default(600)
      .describe(
        "How long a device's message is remembered (its own message id and content): the same message sent again within it (after a lost acknowledgement) is acknowledged again but not stored twice. 0: off.",
      ),
  })
  .describe("The offline-first outbox every event is committed to before any device is acknowledged.");

const deviceFields = {
  id: z
    .string()
    .regex(DEVICE_ID_PATTERN, {
      message: "must be 1-63 characters: lowercase letters, digits, '-' and '_', starting with a letter or digit",
    })
    .describe("Device id, unique on this gateway (e.g. monitor-bed1); appears in every event."),
  driver: z.string().min(1).describe("Registered driver that speaks this device's protocol (e.g. hl7-pcd01)."),
  name: z.string().max(100).optional().describe("Display name on the web page (e.g. 床旁监护仪 1)."),
  location: z
    .string()
    .min(1)
    .max(100)
    .optional()
    .describe(
      "Where the device is: the vehicle, a bed or a room (e.g. 车载, 3床). Shown on the web page beside its name; the case open at this location takes its events; without one, the case of the whole box does.",
    ),
  enabled: z.boolean().default(true).describe("false keeps the entry but does not start the device."),
};
const deviceDescription = "A device the gateway reads.";

/** What a device paired on the web page carries beyond a config entry: who paired it, and when. */
const pairedFields = {
  name: z.string().min(1).max(100).describe("Display name on the web page, given when pairing."),
  pairedBy: z.string().min(1).max(64).describe("The user who paired (or last edited) the device."),
  pairedAt: z.iso.datetime().describe("When it was paired or last edited (ISO 8601, UTC)."),
};

/**
 * A device whose options are validated by its driver's own schema. The driver check runs even when other
 * fields of the same device failed, so one pass reports everything.
 */
function deviceSchema<X extends z.ZodRawShape = Record<never, never>>(drivers: DriverLookup, extra?: X) {
  // the extra fields replace those of the same name (a paired device's name is required)
  const fields: Omit<typeof deviceFields, keyof X> & X = { ...deviceFields, ...(extra as X) };
  return z
    .strictObject({
      ...fields,
      options: z
        .record(z.string(), z.unknown())
        .default({})
        .describe("Driver-specific options, validated by the driver."),
    })
    .superRefine(
      (device: { driver?: unknown; options?: unknown }, ctx) => {
        if (typeof device !== "object" || device === null || typeof device.driver !== "string") return;
        const driver = drivers(device.driver);
        if (!driver) {
          ctx.addIssue({ code: "custom", path: ["driver"], message: `unknown driver "${device.driver}"` });
          return;
        }
        const options: unknown = device.options ?? {};
        if (typeof options !== "object" || options === null || Array.isArray(options)) return; // reported by the record check
        const result = driver.options.safeParse(options);
        if (!result.success) {
          for (const issue of result.error.issues) ctx.addIssue({ ...issue, path: ["options", ...issue.path] });
        }
      },
      { when: () => true },
    )
    .transform((device) => {
      // Fills the driver's defaults. Zod runs this even after the checks above found issues (they
      // do not abort), so a failed parse leaves the options as written: the issues are reported.
      const { driver, options } = device as { driver: string; options: Record<string, unknown> };
      const parsed = drivers(driver)?.options.safeParse(options);
      return parsed?.success ? { ...device, options: parsed.data as Record<string, unknown> } : device;
    })
    .describe(deviceDescription);
}

function devicesList<D extends z.ZodType>(device: D) {
  return z
    .array(device)
    .default([])
    .superRefine(
      (devices, ctx) => {
        const firstAt = new Map<string, number>();
        devices.forEach((device: unknown, index) => {
          const id = typeof device === "object" && device !== null ? (device as { id?: unknown }).id : undefined;
          if (typeof id !== "string") return;
          const first = firstAt.get(id);
          if (first === undefined) firstAt.set(id, index);
          else
            ctx.addIssue({
              code: "custom",
              path: [index, "id"],
              message: `duplicate device id "${id}": devices[${first}] has it too`,
              params: { duplicateOf: [first, "id"] },
            });
        });
      },
      { when: () => true },
    )
    .describe("The devices this gateway reads. Devices paired on the web page are kept in a separate file.");
}

/** A web username: letters (any script), digits, `.`, `_`, `-`; 1 to 32 characters. */
export const WEB_USERNAME_PATTERN = /^[\p{L}\p{N}][\p{L}\p{N}._-]{0,31}$/u;
/** `scrypt$N$r$p$salt$hash` (salt and hash base64), as src/web/auth.ts writes it. */
export const PASSWORD_HASH_PATTERN =
  /^scrypt\$\d{1,8}\$\d{1,3}\$\d{1,3}\$[A-Za-z0-9+/]{16,}={0,2}\$[A-Za-z0-9+/]{16,}={0,2}$/;
export const webUsername = () =>
  z
    .string()
    .regex(WEB_USERNAME_PATTERN, {
      message: "must be 1 to 32 letters, digits, '.', '_' or '-', starting with a letter or digit",
    })
    .describe("The login name.");

/**
 * `<stateDir>/paired-devices.json`, the devices paired on the web page (src/pairing/store.ts): each
 * entry checked as a config device is, plus who paired it and when.
 */
export function pairedDevicesFileSchema(drivers: DriverLookup) {
  return z.strictObject({
    version: z.literal(1).describe("Format version of the file."),
    devices: devicesList(deviceSchema(drivers, pairedFields)).describe("The devices paired on the web page."),
  });
}

/** One device as the pairing page sends it: a config entry with a required name, checked with its driver. */
export function pairedDeviceInputSchema(drivers: DriverLookup) {
  return deviceSchema(drivers, { name: pairedFields.name });
}

const pairingSchema = z
  .strictObject({
    serialPaths: z
      .array(
        z.string().regex(/^\/\S+$/, { message: 'must be an absolute path or pattern, e.g. "/dev/serial/by-id/*"' }),
      )
      .max(32)
      .default([])
      .describe(
        'Serial ports listed for pairing beyond those the kernel reports with a device (USB adapters, real UARTs): paths or patterns such as "/dev/serial/by-id/*" or "/dev/ttyACM*".',
      ),
    probeMs: z
      .int()
      .min(100)
      .max(30_000)
      .default(2500)
      .describe(
        "How long a probe listens at each speed, in ms: long enough for a GPS's next epoch (1 s) and an analyser's repeated ENQ.",
      ),
    listen: z
      .array(port())
      .max(16)
      .default([2575, 11112])
      .describe(
        "TCP ports where network devices that connect unannounced are noticed (HL7 monitors, DICOM carts, ASTM analysers, GPS through a serial server) and told to try again later, so the page can offer to pair them. Ports a device uses are left to it. Default: 2575 (HL7's registered port) and 11112 (DICOM's). [] turns it off.",
      ),
    listenHost: z.string().min(1).default("0.0.0.0").describe("Address those ports listen on."),
    maxSenders: z
      .int()
      .min(1)
      .max(1000)
      .default(32)
      .describe("Most unpaired senders remembered; the longest quiet is forgotten first."),
    maxConnections: z
      .int()
      .min(1)
      .max(1000)
      .default(16)
      .describe("Most connections from unpaired senders open at once; more are closed at once."),
    idleS: z
      .int()
      .min(1)
      .max(3600)
      .default(60)
      .describe("An unpaired sender's connection that sends nothing for this long is closed."),
    connectNetworks: z
      .array(
        z
          .string()
          .refine(isCidr, { message: 'must be a network as address/prefix, e.g. "192.168.10.0/24" or "fd00::/64"' }),
      )
      .max(64)
      .default([])
      .describe(
        "Networks a device paired on the page (a serial server, an analyser's TCP port) or a preview may connect to, as address/prefix. Empty: none, so the page cannot be used to probe the LAN.",
      ),
    connectPorts: z
      .array(port())
      .max(64)
      .default([])
      .describe("TCP ports such a device or preview may connect to on those networks. Empty: any."),
  })
  .describe(
    "Pairing devices on the web page: serial ports offered, probing, and network senders noticed. See docs/devices.md.",
  );

const listenersSchema = z
  .strictObject({
    idleS: z
      .int()
      .min(1)
      .max(86_400)
      .default(300)
      .describe(
        "A connection to a device's listener (HL7, DICOM, serial server) that sends nothing for this long is closed; the device reconnects when it has something to say.",
      ),
    maxConnections: z
      .int()
      .min(1)
      .max(1000)
      .default(32)
      .describe("Most connections one listener holds at once; more are closed at once."),
    maxPerAddress: z
      .int()
      .min(1)
      .max(1000)
      .default(16)
      .describe("Most connections one address holds to one listener at once, so one host cannot take every slot."),
  })
  .describe(
    "Bounds of every TCP listener of the devices: idle timeout, connections in all and per address. Refused connections are logged as one summary line per 10 s.",
  );

const watchedFoldersSchema = z
  .strictObject({
    roots: z
      .array(z.string().regex(/^\/\S*$/, { message: 'must be an absolute path, e.g. "/srv/vitalgate/ecg-inbox"' }))
      .max(32)
      .default([])
      .describe(
        "Folders under which a device (an ECG cart's export share, a USB copy) may be watched, from this file or paired on the page. Resolved through symlinks; never the state directory, its parents or its children, nor /proc, /sys or /dev. Empty: no folder is watched.",
      ),
  })
  .describe(
    "Where watched folders may be (docs/security.md): a watched folder's files are moved to done/ or rejected/, so it must be one IT chose.",
  );

export const webSchema = z
  .strictObject({
    host: z
      .string()
      .min(1)
      .default("0.0.0.0")
      .describe("Address the web page listens on (0.0.0.0: every interface, so the LAN can reach it)."),
    port: port().default(8080).describe("Port of the web page."),
    tls: z
      .strictObject({
        certFile: z.string().min(1).describe("PEM file with the page's certificate (and its chain)."),
        keyFile: z
          .string()
          .min(1)
          .describe("PEM file with the private key of certFile. Keep it readable only by the vitalgate user."),
      })
      .optional()
      .describe(
        "IT's certificate for the page. Without it, a page on any address beyond loopback is served over HTTPS with a self-signed certificate made on the first start (<stateDir>/web-tls/, its fingerprint in the log and `vitalgate status`); only a page on 127.0.0.1 alone is plain HTTP.",
      ),
    users: z
      .array(
        z
          .strictObject({
            username: webUsername(),
            role: z
              .enum(ROLES)
              .describe(
                "admin: everything; crew, technician: pair devices and run cases; viewer: read only; cardiologist: reads ECGs at the county center (vitalgate center), read only on a gateway.",
              ),
            passwordHash: z
              .string()
              .regex(PASSWORD_HASH_PATTERN, {
                message: "must be a hash from `vitalgate web hash-password` (scrypt$N$r$p$salt$hash), never a password",
              })
              .describe("The password's hash, made by `vitalgate web hash-password`."),
          })
          .describe(
            "A user provisioned by IT: can log in, is shown read-only on the page and cannot be removed there.",
          ),
      )
      .default([])
      .superRefine((users, ctx) => {
        // One identity per name as a reader sees it: Cyrillic `а`dmin beside `admin`, `Admin` beside `admin` are duplicates.
        const seen = new Map<string, string>();
        users.forEach((u, i) => {
          const same = seen.get(usernameSkeleton(u.username));
          if (same !== undefined)
            ctx.addIssue({
              code: "custom",
              path: [i, "username"],
              message:
                same === u.username
                  ? `duplicate username "${u.username}"`
                  : `"${u.username}" reads the same as "${same}"`,
            });
          seen.set(usernameSkeleton(u.username), u.username);
        });
      })
      .describe("Users provisioned in the configuration, in addition to those created on the page."),
    sessionIdleMin: z
      .int()
      .min(1)
      .max(1440)
      .default(30)
      .describe("Minutes without a request after which a login session ends (a session also ends 12 h after login)."),
    loginMaxFailures: z
      .int()
      .min(1)
      .max(100)
      .default(5)
      .describe(
        "Failed logins per username allowed within loginWindowS; then the username is locked (429) until the window has passed, across restarts, or until an admin sets a new password.",
      ),
    loginMaxFailuresPerAddress: z
      .int()
      .min(1)
      .max(10_000)
      .default(50)
      .describe(
        "Failed logins and setup codes per client address allowed within loginWindowS: an anti-flood bound, well above loginMaxFailures, since a crew tablet is shared.",
      ),
    loginWindowS: z
      .int()
      .min(10)
      .max(86_400)
      .default(900)
      .describe("The window, in seconds, over which failed logins are counted, and how long a lockout lasts."),
    passwordMinLength: z
      .int()
      .min(8)
      .max(64)
      .default(8)
      .describe("Characters a password set on the page must have at least."),
    passwordMinClasses: z
      .int()
      .min(1)
      .max(4)
      .default(3)
      .describe(
        "Of lower-case letters, upper-case letters, digits and other characters: how many a password must mix.",
      ),
    passwordMaxAgeDays: z
      .int()
      .min(0)
      .max(3650)
      .default(0)
      .describe(
        "Days after which a user must change their password at the next login; 0: never. Provisioned users are not held to it (IT changes their hash).",
      ),
    hostNames: z
      .array(
        z
          .string()
          .min(1)
          .max(253)
          .regex(/^[A-Za-z0-9.-]+$/, { message: "must be a DNS name (letters, digits, '.', '-')" }),
      )
      .max(32)
      .default([])
      .describe(
        "Names the page is reached by (e.g. vitalgate.clinic.lan), besides the box's own addresses and localhost: a request naming any other host is refused (DNS rebinding).",
      ),
    auditRetentionDays: z
      .int()
      .min(180)
      .max(36_500)
      .default(365)
      .describe(
        "Days the audit trail is kept (at least 180); older records are purged by store.purgeCron, the hash chain anchored past them.",
      ),
  })
  .describe("The local web page: status, devices, pairing, cases.");

const casesSchema = z
  .strictObject({
    targetMin: z
      .number()
      .min(1)
      .max(240)
      .default(10)
      .describe(
        "Target from first medical contact to the ECG read by the center, in minutes (the chest-pain-center standard: 10).",
      ),
    geofences: z
      .array(
        z.strictObject({
          name: z.string().min(1).max(100).describe("The place, as the page shows it (e.g. 县人民医院急诊)."),
          lat: z.number().min(-90).max(90).describe("Centre latitude, WGS 84 degrees."),
          lon: z.number().min(-180).max(180).describe("Centre longitude, WGS 84 degrees."),
          radiusM: z.number().min(10).max(50_000).describe("Radius in metres: a position within it counts as arrived."),
        }),
      )
      .max(100)
      .default([])
      .describe("Hospital doors: the first GPS position of a case inside one of these is its arrival node."),
  })
  .describe("Cases (missions, visits): the time-node target and the geofences that mark arrival. See docs/cases.md.");

export const logSchema = z
  .strictObject({
    level: z.enum(LOG_LEVELS).default("info").describe("Least severe level written to the log."),
    pretty: z
      .union([z.literal("auto"), z.boolean()])
      .default("auto")
      .describe("Human-readable log lines instead of JSON; auto: when stdout is a terminal."),
  })
  .describe("Logging (JSON lines on stdout, for journald).");

/** Whether the runtime knows a time zone by this name (IANA), or it is a UTC offset ("+08:00"). */
function isTimeZone(zone: string): boolean {
  return zoneOffsetMinutes(zone, 0) !== undefined;
}

/** An NTP server: a host name or address, optionally with a port ("ntp.example.org", "10.0.0.1:123", "[fd00::1]:123"). */
const NTP_SERVER_PATTERN = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:\d{1,5})?$/;

const timeSchema = z
  .strictObject({
    ntpServers: z
      .array(
        z
          .string()
          .regex(NTP_SERVER_PATTERN, {
            message: 'must be a host name or address, optionally with :port (e.g. "ntp.ecg-center.example.org")',
          })
          .refine(
            (s) => {
              const port = /:(\d+)$/.exec(s)?.[1];
              return port === undefined || (Number(port) >= 1 && Number(port) <= 65535);
            },
            { message: "the port must be 1-65535" },
          ),
      )
      .max(8)
      .default([])
      .describe(
        "NTP servers the gateway asks itself (SNTP, UDP port 123): the county center's first. Empty: no NTP of our own (chrony or GPS may still give time).",
      ),
    pollS: z
      .int()
      .min(16)
      .max(86_400)
      .default(64)
      .describe("How often the NTP servers and the operating system's clock daemon are asked, in seconds."),
    ntpTimeoutMs: z
      .int()
      .min(100)
      .max(30_000)
      .default(2000)
      .describe("Give up one NTP exchange after this many milliseconds."),
    trustSystemClock: z
      .enum(["auto", "always", "never"])
      .default("auto")
      .describe(
        "auto: believe the system clock when chrony or systemd-timesyncd says it is synchronized; always: believe it regardless (only where IT vouches for it); never: ignore it.",
      ),
    gpsLatencyMs: z
      .number()
      .min(0)
      .max(2000)
      .default(100)
      .describe(
        "How long after the start of a UTC second the GPS receiver's NMEA sentence for it arrives, in ms (receiver output delay plus serial transfer).",
      ),
    gpsUncertaintyMs: z
      .number()
      .min(1)
      .max(5000)
      .default(100)
      .describe("Uncertainty of gpsLatencyMs, in ms: the GPS time is trusted to within this."),
    ppsDevice: z
      .string()
      .regex(/^\/dev\/\S+$/, { message: 'must be a device path, e.g. "/dev/pps0"' })
      .optional()
      .describe(
        "The kernel PPS device of the GPS receiver's pulse-per-second line (e.g. /dev/pps0, or a udev alias): its presence is checked and shown in the status. This version does not read the pulses. Unset: any PPS device found is reported.",
      ),
    driftPpm: z
      .number()
      .min(0)
      .max(1000)
      .default(50)
      .describe(
        "How fast this box's clock may drift between syncs, in parts per million: the time's uncertainty grows by this much (50 ppm: 3 ms a minute).",
      ),
    skewThresholdS: z
      .number()
      .min(1)
      .max(86_400)
      .default(60)
      .describe(
        "A device whose own clock is off by more than this many seconds raises a clock-skew warning (its times are corrected either way).",
      ),
    zone: z
      .string()
      .refine(isTimeZone, { message: 'an IANA time zone name like "Asia/Shanghai", or a UTC offset like "+08:00"' })
      .optional()
      .describe(
        "Time zone of device clocks that send local times without a UTC offset, unless the device sets its own timezone (e.g. Asia/Shanghai). Default: the box's own zone (TZ, /etc/localtime).",
      ),
    plausibleHours: z
      .number()
      .min(0.01)
      .max(8760)
      .default(24)
      .describe(
        "How far (hours) a single time source may move the clock from where it is expected (the current time, or the last known good time kept in the state directory) before another source must agree.",
      ),
    plausibleOffDays: z
      .number()
      .min(1)
      .max(3650)
      .default(30)
      .describe(
        "After a reboot: how many days after the last known good time a single source may put the clock (a box switched off longer needs a second source to agree).",
      ),
    gpsLeapHoldS: z
      .number()
      .min(0)
      .max(3600)
      .default(750)
      .describe(
        "From a GPS receiver's first fix, how long its time is held at ±18 s more (it may not yet know the leap seconds) unless another source agrees with it; 750 s is one almanac cycle. 0: believed at once.",
      ),
  })
  .describe(
    "Synchronized time: where the gateway gets true UTC from, and when a device's clock counts as wrong. See docs/time.md.",
  );

const backupSchema = z
  .strictObject({
    dir: z
      .string()
      .min(1)
      .default("/var/lib/vitalgate-backup")
      .describe(
        "Folder the backups are written to, one folder each (vitalgate-<gateway id>-<UTC time>). The unit lets the gateway write /var/lib/vitalgate-backup; another place (a second disk) needs a ReadWritePaths= line (docs/operations.md, Backups).",
      ),
    schedule: cronExpression()
      .default("30 3 * * *")
      .describe("When the gateway takes a backup (cron: minute hour day month weekday; default daily at 03:30)."),
    keep: z
      .int()
      .min(1)
      .max(1000)
      .default(7)
      .describe("Backups of this gateway kept in dir; older ones are deleted after each new one."),
    outbox: z
      .boolean()
      .default(true)
      .describe(
        "Whether outbox.db (the queue, with events not yet delivered) is in each scheduled backup (up to store.quotaMB large). `vitalgate backup` always takes it.",
      ),
  })
  .describe(
    "Scheduled backups of local.db (users, audit trail, cases), the outbox, the paired devices and this file (docs/operations.md, Backups). Without this section the gateway takes none by itself; `vitalgate backup` takes one on demand.",
  );

/** The document's shape, given the schema each device entry is checked with. */
function documentSchema<D extends z.ZodType>(device: D) {
  return z
    .strictObject({
      gateway: gatewaySchema,
      stateDir: z
        .string()
        .min(1)
        .default("/var/lib/vitalgate")
        .describe(
          "Directory for the outbox and the paired-devices file. Relative paths are taken from the working directory.",
        ),
      uplink: uplinkSchema.optional(),
      embeddedBroker: embeddedBrokerSchema.prefault({}),
      store: storeSchema.prefault({}),
      devices: devicesList(device),
      web: webSchema.prefault({}),
      pairing: pairingSchema.prefault({}),
      watchedFolders: watchedFoldersSchema.prefault({}),
      listeners: listenersSchema.prefault({}),
      log: logSchema.prefault({}),
      time: timeSchema.prefault({}),
      cases: casesSchema.prefault({}),
      backup: backupSchema.optional(),
    })
    .meta({
      title: "vitalgate configuration",
      description: "Configuration of a vitalgate edge gateway (vitalgate.yaml).",
    });
}

function withDerivedDefaults<
  T extends {
    gateway: { id: string };
    stateDir: string;
    uplink?: { clientId?: string | undefined } | undefined;
    store: { path?: string | undefined };
  },
>(c: T) {
  return {
    ...c,
    uplink:
      c.uplink === undefined ? undefined : { ...c.uplink, clientId: c.uplink.clientId ?? `vitalgate-${c.gateway.id}` },
    store: { ...c.store, path: c.store.path ?? `${c.stateDir.replace(/\/+$/, "")}/outbox.db` },
  };
}

/** The schema of vitalgate.yaml; device options are checked with the drivers `drivers` finds. */
export function configSchema(drivers: DriverLookup) {
  return documentSchema(deviceSchema(drivers)).transform(withDerivedDefaults);
}

/**
 * The same document with each device as a union keyed by `driver` over the given drivers' option schemas:
 * a description of the input for the JSON Schema, not a validator (unknown drivers and duplicates are not
 * expressed in it).
 */
export function configInputSchemaFor(drivers: readonly { id: string; options: z.ZodType; title?: { en: string } }[]) {
  const variants = drivers.map((d) =>
    z
      .strictObject({
        ...deviceFields,
        driver: z.literal(d.id).describe(d.title ? `${d.title.en}.` : `Driver ${d.id}.`),
        options: d.options.optional().describe(`Options of the ${d.id} driver.`),
      })
      .describe(deviceDescription),
  );
  const [first, ...rest] = variants;
  const device =
    first === undefined
      ? z
          .strictObject({
            ...deviceFields,
            options: z.record(z.string(), z.unknown()).optional().describe("Driver-specific options."),
          })
          .describe(deviceDescription)
      : z.discriminatedUnion("driver", [first, ...rest]);
  return documentSchema(device);
}

export type Config = z.output<ReturnType<typeof configSchema>>;
/** The document as written, before defaults: what the web form edits. */
export type ConfigInput = z.input<ReturnType<typeof configSchema>>;
export type GatewayConfig = Config["gateway"];
export type UplinkConfig = NonNullable<Config["uplink"]>;
export type EmbeddedBrokerConfig = Config["embeddedBroker"];
export type StoreConfig = Config["store"];
export type DeviceConfig = Config["devices"][number];
export type WebConfig = Config["web"];
export type LogConfig = Config["log"];
export type TimeConfig = Config["time"];
export type CasesConfig = Config["cases"];
export type PairingConfig = Config["pairing"];
export type WatchedFoldersConfig = Config["watchedFolders"];
