// The center's configuration (/etc/vitalgate/center.yaml): its `center:` section, and the `web:` and
// `log:` sections as the gateway has them (the same login, sessions and password rules). Read like
// vitalgate.yaml: every error at once with its line, VITALGATE__ environment overrides, passwords
// from files (src/config/load.ts).
import { hostname } from "node:os";
import { z } from "zod";
import { loadDocument, type ConfigSecrets, type LoadDocumentResult } from "../src/config/load.ts";
import { logSchema, webSchema } from "../src/config/schema.ts";

export const DEFAULT_CENTER_CONFIG_PATH = "/etc/vitalgate/center.yaml";

const place = z.strictObject({
  name: z.string().min(1).max(100).describe("What the place is called on the page (e.g. 县人民医院)."),
  lat: z.number().min(-90).max(90),
  lon: z.number().min(-180).max(180),
});

const centerSchema = z
  .strictObject({
    worker: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/)
      .default(`${hostname()}-${process.pid}`)
      .describe(
        "This worker's name: in its MQTT client id and on every event it stores. Unique among the workers (default: host name and process id).",
      ),
    broker: z
      .strictObject({
        url: z
          .string()
          .regex(/^(mqtt|mqtts|ws|wss):\/\/[^\s/?#]+/, { message: "must be an mqtt://, mqtts://, ws:// or wss:// URL" })
          .describe("The county's broker, the one the gateways publish to."),
        shareGroup: z
          .string()
          .regex(/^[A-Za-z0-9_-]{1,64}$/)
          .default("vitalgate-center")
          .describe(
            "MQTT 5 shared-subscription group: the same for every worker of this center, so they share the load.",
          ),
        clientId: z.string().min(1).max(128).optional().describe("Default: vitalgate-center-<worker>."),
        username: z.string().min(1).max(200).optional(),
        passwordFile: z.string().min(1).optional().describe("File holding the broker password."),
        caFile: z.string().min(1).optional(),
        certFile: z.string().min(1).optional(),
        keyFile: z.string().min(1).optional(),
        rejectUnauthorized: z.boolean().default(true),
        keepaliveS: z.int().min(0).max(3600).default(30),
        bulkConnections: z
          .int()
          .min(1)
          .max(16)
          .default(2)
          .describe(
            "Connections this worker opens for the bulk of the stream (vitals, waveforms, positions, batches), beside the one for ECGs, alarms and case times: each takes one message at a time.",
          ),
      })
      .describe("The MQTT broker."),
    database: z
      .strictObject({
        host: z
          .string()
          .min(1)
          .default("/var/run/postgresql")
          .describe("PostgreSQL host, or the directory of its unix socket."),
        port: z.int().min(1).max(65535).default(5432),
        database: z.string().min(1).max(63).default("vitalgate_center"),
        user: z.string().min(1).max(63).default("vitalgate"),
        passwordFile: z
          .string()
          .min(1)
          .optional()
          .describe("File holding the database password (none: peer or trust)."),
        poolSize: z.int().min(1).max(100).default(4),
      })
      .prefault({})
      .describe("The PostgreSQL database every worker shares."),
    stateDir: z
      .string()
      .min(1)
      .default("/var/lib/vitalgate-center")
      .describe("This node's own files: the reading station's users, sessions and audit trail (local.db)."),
    filesDir: z
      .string()
      .min(1)
      .default("/var/lib/vitalgate-center/ecg")
      .describe("Where the original ECG files are kept (shared storage when several workers run on several hosts)."),
    serveWeb: z.boolean().default(true).describe("Serve the reading station page (web:) from this worker."),
    readingTargetMin: z
      .number()
      .min(1)
      .max(120)
      .default(10)
      .describe("The reading target from first medical contact, minutes (chest-pain centers: 10)."),
    county: z
      .strictObject({
        places: z
          .array(place)
          .max(200)
          .default([])
          .describe("Destinations ambulances may head for: hospitals, cath labs."),
        radiusM: z
          .number()
          .min(10)
          .max(50_000)
          .default(1000)
          .describe("A vehicle heads for a place when its course passes within this many metres of it."),
        withinMin: z
          .number()
          .min(1)
          .max(600)
          .default(30)
          .describe("... and it would get there within this many minutes at its speed."),
        minVehicles: z
          .int()
          .min(2)
          .max(100)
          .default(3)
          .describe("Vehicles heading for one place that raise the alert."),
        positionMaxAgeMin: z
          .number()
          .min(0.1)
          .max(1440)
          .default(10)
          .describe("A position older than this says nothing of where a vehicle heads."),
      })
      .prefault({})
      .describe("The county picture: where the vehicles are, and when too many head for one place."),
  })
  .describe("The county ECG center's receiver and reading station (vitalgate center).");

export const centerDocumentSchema = z
  .strictObject({ center: centerSchema, web: webSchema.prefault({}), log: logSchema.prefault({}) })
  .meta({ title: "vitalgate center configuration", description: "center.yaml" });

export type CenterConfig = z.output<typeof centerDocumentSchema>;

export function loadCenterConfig(o: {
  file: string;
  text?: string;
  env?: Record<string, string | undefined>;
}): LoadDocumentResult<CenterConfig> {
  return loadDocument({ ...o, drivers: () => undefined }, centerDocumentSchema);
}

export type { ConfigSecrets };
