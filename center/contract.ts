// The wire contract as the center reads it: docs/protocol.md, and nothing of the gateway's code.
// Topics, the event envelope (unknown fields ignored, as the contract asks of a consumer), the bodies
// the center looks into (ecg12, case, position), and what the center sends (receipt, report).
import { z } from "zod";

export const TOPIC_ROOT = "vitalgate/v1";
/** `gateway.id`: 1-63 lowercase letters, digits and `-` (docs/protocol.md, Summary). */
const GW = /^[a-z0-9][a-z0-9-]{0,62}$/;

export type Topic =
  | { type: "ev"; gw: string; kind: string }
  | { type: "blob"; gw: string; eventId: string; part: number; parts: number }
  | { type: "status"; gw: string }
  | { type: "cmd-result"; gw: string }
  | { type: "ack"; gw: string };

/** What a topic the center subscribes to names; undefined for anything else. */
export function parseTopic(topic: string): Topic | undefined {
  const p = topic.split("/");
  if (p[0] !== "vitalgate" || p[1] !== "v1" || !GW.test(p[2] ?? "")) return undefined;
  const gw = p[2]!;
  if (p[3] === "ev" && p.length === 5 && p[4]) return { type: "ev", gw, kind: p[4] };
  if (p[3] === "blob" && p.length === 7) {
    const part = Number(p[5]);
    const parts = Number(p[6]);
    if (!p[4] || !Number.isInteger(part) || !Number.isInteger(parts) || part < 1 || part > parts) return undefined;
    return { type: "blob", gw, eventId: p[4], part, parts };
  }
  if (p[3] === "status" && p.length === 4) return { type: "status", gw };
  if (p[3] === "cmd-result" && p.length === 4) return { type: "cmd-result", gw };
  if (p[3] === "ack" && p.length >= 4) return { type: "ack", gw };
  return undefined;
}

export const topics = {
  receipt: (gw: string) => `${TOPIC_ROOT}/${gw}/receipt`,
  report: (gw: string) => `${TOPIC_ROOT}/${gw}/report`,
  /** Where a gateway answers the center's reports: below its `ack` topic, the center's own (docs/protocol.md, Answers). */
  reportAck: (gw: string) => `${TOPIC_ROOT}/${gw}/ack/center`,
};

/** A gateway's acknowledgement of a receipt or a report. */
export const ackSchema = z.looseObject({
  of: z.string(),
  id: z.string().optional(),
  ok: z.boolean(),
  error: z.string().optional(),
});

const isoTime = z.iso.datetime({ offset: true });

/** The event envelope (docs/protocol.md, "The event envelope"); fields it does not name pass through untouched. */
export const envelopeSchema = z.looseObject({
  v: z.number(),
  id: z.string().min(1).max(64),
  seq: z.number().int().min(0),
  gw: z.string().regex(GW),
  dev: z.looseObject({ id: z.string().min(1).max(200), driver: z.string().optional(), kind: z.string().optional() }),
  case: z.string().min(1).max(64).optional(),
  msg: z.looseObject({ id: z.string().min(1).max(200), n: z.number().int().min(1) }).optional(),
  kind: z.string().min(1).max(32),
  t: isoTime,
  time: z.looseObject({}).optional(),
  body: z.looseObject({}),
  /** A revision of the same event (a later correction): the highest is kept. Absent: 0. */
  rev: z.number().int().min(0).optional(),
});
export type Envelope = z.output<typeof envelopeSchema>;

/** ecg12's `original`: the file that follows on blob/... */
export const originalSchema = z.looseObject({
  contentType: z.string().min(1).max(200),
  bytes: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** `gzip`: the chunks joined are a gzip stream of the file (docs/protocol.md, Original files). */
  encoding: z.literal("gzip").optional(),
});
export type Original = z.output<typeof originalSchema>;

export const ecgBodySchema = z.looseObject({
  acquiredAt: isoTime.optional(),
  measurements: z.record(z.string(), z.number()).optional(),
  statements: z.array(z.string()).optional(),
  original: originalSchema.optional(),
});

/** A case's change (docs/protocol.md, "case"). */
export const caseBodySchema = z.looseObject({
  action: z.string(),
  at: isoTime.optional(),
  node: z.string().optional(),
  eventId: z.string().optional(),
  conclusion: z.string().optional(),
  place: z.string().optional(),
  unsynced: z.boolean().optional(),
});
export type CaseBody = z.output<typeof caseBodySchema>;

export const positionBodySchema = z.looseObject({
  lat: z.number().min(-90).max(90),
  lon: z.number().min(-180).max(180),
  speedMps: z.number().optional(),
  courseDeg: z.number().optional(),
});
export type PositionBody = z.output<typeof positionBodySchema>;

/** The status message (retained), of which the center keeps the state and the time. */
export const statusSchema = z.looseObject({ state: z.string(), at: isoTime.optional() });

/** The center's reading (docs/protocol.md, "report"). */
export interface Report {
  /** Ours, echoed in the gateway's acknowledgement on `ack` (docs/protocol.md, Answers). */
  id: string;
  eventId: string;
  reader: string;
  at: string;
  conclusion: string;
  text?: string;
}

/** Receipts: at most this many ids per message (docs/protocol.md, "receipt"). */
export const RECEIPT_MAX_IDS = 6_000;
