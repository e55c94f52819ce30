// The messages between a gateway and the county center besides events (docs/protocol.md): what the
// center sends (receipts, reports, commands) as the gateway checks them, and what the gateway answers
// (command results, acknowledgements, its status). The forwarder parses with these; the gateway's
// commands take their arguments and give their results in these shapes; docs/schemas/ is generated
// from them (src/uplink/json-schemas.ts).
import { z } from "zod";
import { caseId, caseLocation, patientId } from "../cases/fields.ts";
import { EVENT_KINDS } from "../events/model.ts";

/**
 * The version of this contract, in the status message and the schemas' ids. The major is the
 * topics' `v1`; the minor grows with fields a center may use and older ones ignore.
 */
export const PROTOCOL_VERSION = "1.1";

/**
 * Largest message we accept from the center; anything bigger is dropped with a warning. The same
 * 256 KiB many managed brokers allow at most, and the default maximum of what the gateway sends.
 */
export const MAX_INBOUND_BYTES = 256 * 1024;
/**
 * Most ids in one receipt: 6,000 UUIDs written `{"ids":["…", "…"]}` (40 bytes each) are 240,010
 * bytes, under MAX_INBOUND_BYTES, so a receipt of the most ids is never dropped for its size.
 */
export const MAX_RECEIPT_IDS = 6000;
/** Most events one `resend` command may put back in the queue. */
export const MAX_RESEND = 100_000;

/** The center's own id for a message, echoed in the answer (its correlation with MQTT 3.1.1). */
const requestId = z.string().min(1).max(128).describe("the center's id for this message, echoed in the answer");
/**
 * Where the answer goes instead of the default topic, with MQTT 3.1.1 (MQTT 5: the response topic
 * property). Only below the default topic, which a gateway's ACL lets it publish to.
 */
const replyTo = z
  .string()
  .max(256)
  .optional()
  .describe("MQTT 3.1.1: the topic for the answer, the default answer topic or below it (MQTT 5: response topic)");
const expiresAt = z.iso
  .datetime({ offset: true })
  .optional()
  .describe(
    "not to be acted on after this time (the gateway's synchronized clock); MQTT 5: also the message expiry interval",
  );

export const receipt = z
  .object({
    ids: z
      .array(z.string().max(64))
      .max(MAX_RECEIPT_IDS)
      .describe("ids of events the center has stored (an ecg12 with every chunk of its file)"),
    id: requestId.optional(),
    replyTo,
  })
  .describe("center → gateway, vitalgate/v1/{gw}/receipt");

export const report = z
  .object({
    eventId: z.uuid().describe("the ecg12 event read"),
    reader: z.string().max(200),
    at: z.iso.datetime({ offset: true }).describe("when it was read"),
    conclusion: z.string().max(200).describe("e.g. STEMI"),
    text: z.string().max(10_000).optional(),
    id: requestId.optional(),
    replyTo,
  })
  .describe("center → gateway, vitalgate/v1/{gw}/report: the cardiologist's reading of an ECG");
export type CenterReport = z.infer<typeof report>;

export const commandRequest = z
  .object({
    id: requestId,
    args: z.unknown().optional().describe("the command's arguments; left out, {}"),
    expiresAt,
    replyTo,
  })
  .describe("center → gateway, vitalgate/v1/{gw}/cmd/{name}");

export const commandResult = z
  .object({
    id: requestId.optional().describe("the request's id; absent when the request had none that was valid"),
    name: z.string().describe("the command, from the topic"),
    ok: z.boolean(),
    result: z.unknown().optional().describe("with ok: what the command returns"),
    error: z.string().optional().describe("with ok false: why"),
  })
  .describe("gateway → center, vitalgate/v1/{gw}/cmd-result (or the request's response topic)");

export const ack = z
  .object({
    of: z.enum(["receipt", "report"]),
    id: requestId.optional().describe("the receipt's or report's id, when it had one"),
    ok: z.boolean(),
    result: z
      .object({
        ids: z.int().min(0).optional().describe("receipt: ids named"),
        delivered: z.int().min(0).optional().describe("receipt: events (and sent chunks) marked delivered by it"),
        eventId: z.uuid().optional().describe("report: the ECG"),
        caseId: z.string().optional().describe("report: the case it was kept with; absent: an ECG of no case"),
      })
      .optional(),
    error: z.string().optional().describe("with ok false: why it was ignored or refused"),
  })
  .describe(
    "gateway → center, vitalgate/v1/{gw}/ack (or the message's response topic): what became of a receipt or report",
  );

const perPriority = z.array(z.int().min(0)).length(4);

export const status = z
  .object({
    state: z.enum(["online", "offline"]),
    at: z.iso.datetime().optional().describe("when this message was made; absent in the last will"),
    version: z.string().optional().describe("the gateway's version"),
    protocol: z.string().optional().describe("the version of this contract the gateway speaks"),
    kinds: z.array(z.enum(EVENT_KINDS)).optional().describe("the event kinds this gateway sends, with its devices"),
    queue: z
      .object({
        pending: perPriority.describe("not yet delivered, per priority 0..3"),
        awaitingReceipt: perPriority.optional().describe("of pending, sent and waiting for the center's receipt"),
        oldestPendingMs: z.number().nullable(),
        oldestPendingAgeS: z.number().nullable(),
        rows: z.int().min(0),
        bytes: z.int().min(0),
        quotaBytes: z.int().min(0),
        evicted: z.record(z.string(), z.int()),
        lastSeq: z.int().min(0),
      })
      .optional(),
    time: z.object({ src: z.enum(["gps", "ntp", "system", "unsynced"]), uncMs: z.number() }).optional(),
    devices: z.array(z.object({ id: z.string(), state: z.string() })).optional(),
    audit: z.object({ seq: z.int(), hash: z.string() }).optional(),
  })
  .describe("gateway → center, vitalgate/v1/{gw}/status, retained; also the last will");

/** The center's commands: each one's arguments (checked strictly) and result. */
export const COMMANDS = {
  ping: {
    args: z.strictObject({}),
    result: z.object({
      pong: z.literal(true),
      at: z.iso.datetime(),
      version: z.string(),
      queue: perPriority.describe("not yet delivered, per priority, as the status's queue.pending"),
    }),
  },
  resend: {
    args: z
      .strictObject({ fromSeq: z.int().positive(), toSeq: z.int().positive().optional() })
      .refine((a) => a.toSeq === undefined || (a.toSeq >= a.fromSeq && a.toSeq - a.fromSeq < MAX_RESEND), {
        message: `toSeq must be at least fromSeq and the range under ${MAX_RESEND}`,
      }),
    result: z.object({ requeued: z.int().min(0) }),
  },
  "case-open": {
    args: z.strictObject({
      caseId: caseId().optional(),
      location: caseLocation().optional(),
      patientId: patientId().optional(),
      dispatchedAt: z.iso.datetime({ offset: true }).optional(),
    }),
    result: z.object({ caseId: z.string(), openedAt: z.iso.datetime(), location: z.string() }),
  },
  "case-close": {
    args: z.strictObject({ caseId: caseId() }),
    result: z.object({ caseId: z.string(), closedAt: z.iso.datetime().optional() }),
  },
  devices: {
    args: z.strictObject({}),
    result: z.object({
      devices: z.array(
        z.object({
          id: z.string(),
          driver: z.string(),
          kind: z.string().describe("monitor, ecg-cart, ventilator, analyzer, gps"),
          name: z.string().optional(),
          location: z.string().optional().describe("the location a case-open can name for it; absent: none"),
          state: z.string(),
        }),
      ),
      locations: z.array(z.string()).describe("the distinct locations, for case-open's `location`"),
      openCases: z
        .array(z.object({ caseId: z.string(), location: z.string().describe("empty: the whole box") }))
        .describe("the cases open now"),
    }),
  },
} as const;
export type CommandName = keyof typeof COMMANDS;
export type CommandArgs<N extends CommandName> = z.infer<(typeof COMMANDS)[N]["args"]>;
export type CommandResult<N extends CommandName> = z.infer<(typeof COMMANDS)[N]["result"]>;
