// The events as they travel to the center (docs/protocol.md), as zod schemas: one per kind, the
// envelope around each. docs/schemas/ is generated from these (src/uplink/json-schemas.ts), and the
// types the code builds events with are checked against them at compile time (the assertions at the
// end), so what the gateway makes, what the docs say and what a center validates are one thing.
//
// Objects are open (`z.object`): a center must ignore fields it does not know, as v1 gains fields.
import { z } from "zod";
import { CASE_ID_PATTERN } from "../cases/fields.ts";
import { DEVICE_ID_PATTERN, GATEWAY_ID_PATTERN } from "../config/schema.ts";
import type {
  AlarmBody,
  DeviceRef,
  EventKind,
  EventTime,
  GapBody,
  MessageRef,
  Observation,
  VitalsBody,
} from "./model.ts";
import { EVENT_KINDS } from "./model.ts";
import type { ClockChange, RecordCheck } from "../time/device-clocks.ts";
import { LEAD_ENCODING, type CompactLead } from "../../protocols/ecg/compact-leads.ts";

const isoUtc = () => z.iso.datetime();
const text = (what: string) => z.string().describe(what);

export const deviceRef = z
  .object({
    id: z
      .string()
      .regex(DEVICE_ID_PATTERN)
      .describe("the device's id on this gateway (configured or paired), or `gateway` for the gateway itself"),
    driver: z.string().describe("the driver that reads it, e.g. `hl7-pcd01`; `vitalgate` for the gateway itself"),
    kind: z.enum(["monitor", "ecg-cart", "ventilator", "analyzer", "gps", "gateway"]),
    model: z.string().optional().describe("as learned from the device's messages"),
    serial: z.string().optional().describe("as learned from the device's messages"),
  })
  .describe("the device the event is from");

export const eventTime = z
  .object({
    recv: isoUtc().describe("when the gateway received it, on its synchronized clock"),
    src: z.enum(["gps", "ntp", "system", "unsynced"]).describe("the gateway's time source"),
    uncMs: z.number().min(0).describe("uncertainty of `recv`, ms; with `unsynced` a placeholder of one day"),
    unbounded: z.literal(true).optional().describe("with `unsynced`: `uncMs` is no bound"),
    tFrom: z
      .enum(["recv", "device", "device-corrected"])
      .optional()
      .describe("which clock `t` is on: the receive time, the device's own, or the device's corrected by `devSkewMs`"),
    stepBackMs: z
      .number()
      .max(0)
      .optional()
      .describe("stamped after the gateway's time stepped back by this much: order such events by `seq`"),
    dev: z.string().optional().describe("the device's own time stamp, exactly as it sent it"),
    devSkewMs: z.number().optional().describe("the device's clock minus true time, ms, when estimated"),
    unsynced: z.boolean().optional().describe("stamped before the gateway had any time source"),
    boot: z.string().optional().describe("with `unsynced`: the kernel's boot id"),
    monoMs: z.number().optional().describe("with `unsynced`: the monotonic clock since boot, ms"),
    restamped: z.boolean().optional().describe("an `unsynced` event corrected by the first sync of the same boot"),
  })
  .describe("provenance of `t`");

export const messageRef = z
  .object({
    id: z
      .string()
      .max(199)
      .describe("the device's own message id: HL7 MSH-10, ASTM H.3, a SOP Instance UID, a file's name#sha256"),
    n: z.int().min(1).describe("the event's place (from 1) among the events made from that message"),
  })
  .describe("the device's own identity of the message the event came from");

export const observation = z.object({
  code: text("IEEE 11073-10101 reference id (MDC_...), else the device's own code, or `unidentified:<n>`"),
  mdc: z.int().optional().describe("the numeric MDC code (partition × 65536 + term code)"),
  value: z.union([z.number(), z.string()]).describe("a number; text when the device sent text"),
  unit: text("UCUM; the device's own spelling when not recognised; empty when none"),
  status: z.string().optional().describe("HL7 OBX-11 as sent, or `setting` for a value a device is set to"),
  at: isoUtc()
    .optional()
    .describe("this row's measurement time when it differs from the event's, corrected by the device's skew"),
  atDev: isoUtc().optional().describe("with a corrected `at`: the device's own time as it said it"),
  sub: z.string().optional().describe("the row's position in the device (OBX-4), or a GE S/5 channel"),
  demo: z.literal(true).optional().describe("demo data, not a patient's"),
  mdcSent: z.int().optional().describe("the numeric code the device sent when it disagrees with `code`"),
});

export const vitalsBody = z.object({
  observations: z.array(observation),
  demo: z.boolean().optional().describe("the event holds demo data, not a patient's"),
});

export const waveformBody = z.object({
  channel: text("the device's name for the signal (S/5: ECG1, INVP1, PLETH, CO2, ...)"),
  fs: z.number().positive().describe("samples per second"),
  unit: text("UCUM unit of sample × scale; `{raw}` when the scale is not known"),
  scale: z.number().describe("a sample times `scale` is a value in `unit`"),
  start: isoUtc().optional().describe("the first sample's time by the device's own clock"),
  samples: text("signed 16-bit little-endian integers, base64; ≤ -32001 are the device's no-data markers"),
});

export const alarmBody = z.object({
  code: text("the alarm condition: MDC_EVT_..., the device's code, or VG_... for the gateway's own"),
  priority: text("high, medium, low, none; the device's own value; empty when not sent"),
  state: text("active, inactive, latched, off, or unknown"),
  text: text("alarm text for people"),
  source: z.string().optional().describe("what raised it: the alarmed measurement's code or position"),
  phase: z.string().optional().describe("IHE PCD-04 event phase as sent (start, continue, end, ...)"),
  type: z.enum(["physiological", "technical", "advisory"]).optional(),
  demo: z.boolean().optional().describe("from demo data"),
});

export const positionBody = z.object({
  lat: z.number().min(-90).max(90).optional().describe("WGS 84 degrees, with a fix"),
  lon: z.number().min(-180).max(180).optional().describe("WGS 84 degrees, with a fix"),
  altM: z.number().optional().describe("altitude above mean sea level, m (3d fix)"),
  speedMps: z.number().optional().describe("speed over ground, m/s"),
  courseDeg: z.number().optional().describe("course over ground, degrees true"),
  fix: z.enum(["none", "2d", "3d"]),
  hdop: z.number().optional(),
  sats: z.int().min(0).optional().describe("satellites used"),
});

const labResult = z.object({
  code: z.string().optional().describe("LOINC, when one verified code fits"),
  localCode: text("the analyser's own test id (ASTM R.3)"),
  name: text("display name"),
  value: z.union([z.number(), z.string()]),
  quality: z.enum(["below-limit", "above-limit", "questionable"]).optional(),
  unit: z.string().optional().describe("UCUM when recognised, else as sent"),
  flag: z.string().optional(),
  refRange: z.string().optional(),
  status: z.string().optional(),
  comments: z.array(z.string()).optional(),
});

export const labBody = z.object({
  analyzer: text("the analyser's name and software version"),
  specimen: z.string().optional(),
  results: z.array(labResult),
  unavailable: z
    .array(
      z.object({
        localCode: z.string(),
        name: z.string(),
        marker: z.string(),
        comments: z.array(z.string()).optional(),
      }),
    )
    .optional(),
});

const compactLead = z.object({
  name: text("I, II, III, aVR, aVL, aVF, V1-V6; other channels keep their own name"),
  uvPerUnit: z.number().describe("microvolts per sample unit"),
  derived: z.literal(true).optional().describe("computed from I and II: the file did not carry it"),
  n: z.int().min(0).describe("the number of samples"),
  encoding: z.literal(LEAD_ENCODING).describe("refuse a lead with another value rather than guess"),
  predictor: z
    .string()
    .optional()
    .describe("III=II-I, 2aVR=-(I+II), 2aVL=2I-II or 2aVF=2II-I: the lead travels as its residual against I and II"),
  data: text("base64 of zlib of the int16 little-endian first differences (docs/protocol.md, Lead encoding)"),
});

/** A lead as events stored by version 0.1.0 carry it (such an event still in an outbox is sent as stored). */
const base64Lead = z.object({
  name: z.string(),
  samples: text("16-bit signed little-endian integers, base64; µV = sample × uvPerUnit"),
  uvPerUnit: z.number(),
  derived: z.boolean().optional(),
});

export const ecg12Body = z.object({
  format: z.enum(["dicom-ecg", "hl7-aecg", "philips-xml", "ge-muse", "scp-ecg"]),
  formatVersion: z.string().optional(),
  acquiredAt: isoUtc()
    .optional()
    .describe("when recorded, UTC, by the cart's clock; only when the file states its offset"),
  fs: z.number().positive().describe("sampling rate, Hz"),
  durationS: z.number().min(0),
  leads: z
    .array(z.union([compactLead, base64Lead]))
    .optional()
    .describe("absent when the event was too large for a message with them: the original file holds them"),
  measurements: z
    .object({
      heartRate: z.number().optional(),
      rrMs: z.number().optional(),
      prMs: z.number().optional(),
      qrsMs: z.number().optional(),
      qtMs: z.number().optional(),
      qtcMs: z.number().optional(),
      qtcFridericiaMs: z.number().optional(),
      pAxisDeg: z.number().optional(),
      qrsAxisDeg: z.number().optional(),
      tAxisDeg: z.number().optional(),
    })
    .optional(),
  statements: z.array(z.string()).optional(),
  patient: z
    .object({
      id: z.string().optional(),
      name: z.string().optional(),
      sex: z.string().optional(),
      birthDate: z.string().optional(),
    })
    .optional(),
  device: z
    .object({
      make: z.string().optional(),
      model: z.string().optional(),
      serial: z.string().optional(),
      software: z.string().optional(),
    })
    .optional(),
  warnings: z.array(z.object({ code: z.string(), message: z.string() })).optional(),
  original: z
    .object({
      contentType: z.string(),
      bytes: z.int().min(0),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      encoding: z.literal("gzip").optional().describe("the chunks are gzip members: gunzip the joined file"),
    })
    .describe("the file, sent after the event on blob/{eventId}/{part}/{parts}"),
});

const caseAt = isoUtc().describe("when it happened; for a node, the node's time");
const caseUnsynced = z
  .literal(true)
  .optional()
  .describe("`at` was read from the unsynchronized clock: not a time to use");
const caseNodeName = z.enum(["dispatch", "onset", "fmc", "firstEcg", "ecgSent", "ecgReceived", "ecgRead", "arrival"]);

export const caseBody = z.discriminatedUnion("action", [
  z.object({
    action: z.literal("opened"),
    at: caseAt,
    unsynced: caseUnsynced,
    location: z.string().optional().describe("the location the case applies to; absent: the whole box"),
    openedBy: text("the user on the page, or `center` for `case-open`"),
    dispatchedAt: isoUtc().optional().describe("with `case-open`: the center's dispatch time"),
    patientId: z.string().optional(),
  }),
  z.object({ action: z.literal("closed"), at: caseAt, unsynced: caseUnsynced }),
  z.object({ action: z.literal("patient"), at: caseAt, unsynced: caseUnsynced, patientId: z.string() }),
  z.object({
    action: z.literal("node"),
    node: caseNodeName,
    at: caseAt,
    unsynced: caseUnsynced,
    eventId: z.uuid().optional().describe("with firstEcg, ecgSent, ecgReceived, ecgRead: the ecg12 event"),
    conclusion: z.string().optional().describe("with ecgRead: the report's conclusion"),
    place: z.string().optional().describe("with arrival: the geofence's name"),
    corrects: isoUtc().optional().describe("a tapped node corrected: the time it had before"),
    placed: z.literal(true).optional().describe("the node sent again at its time placed by the first sync"),
  }),
  z.object({
    action: z.literal("placed"),
    at: caseAt,
    openedAt: isoUtc(),
    closedAt: isoUtc().optional(),
    previousId: z.string().optional().describe("the id the case had, made from the unsynchronized date"),
    placed: z.array(z.string()).describe("keys of the case's times placed"),
    unplaced: z.array(z.string()).optional().describe("keys of times that could not be placed: not to be used"),
  }),
]);

export const deviceBody = z.discriminatedUnion("state", [
  z.object({ state: z.literal("clock-skew"), skewMs: z.number(), thresholdMs: z.number() }),
  z.object({ state: z.literal("clock-ok"), skewMs: z.number(), thresholdMs: z.number() }),
  z.object({ state: z.literal("clock-ahead"), aheadMs: z.number(), thresholdMs: z.number() }),
  z.object({ state: z.literal("clock-suspect"), lateMs: z.number(), thresholdMs: z.number() }),
]);

export const gapBody = z.object({
  of: text("the kind of the events removed: waveform or vitals when thinned; also lab, position, device when dropped"),
  action: z.enum(["thinned", "dropped"]),
  from: isoUtc().describe("receive time of the first event removed"),
  to: isoUtc().describe("receive time of the last event removed"),
  events: z.int().min(1),
  kept: z.string().optional().describe("with `thinned`: what was kept of the span"),
});

export const BODIES = {
  vitals: vitalsBody,
  waveform: waveformBody,
  ecg12: ecg12Body,
  alarm: alarmBody,
  position: positionBody,
  lab: labBody,
  device: deviceBody,
  case: caseBody,
  gap: gapBody,
} satisfies Record<EventKind, z.ZodType>;

/** The envelope of an event of `kind`, with that kind's body. */
export function envelopeOf<K extends EventKind>(kind: K) {
  return z.object({
    v: z.literal(1).describe("envelope version"),
    id: z.uuid().describe("UUIDv7, the idempotency key end to end"),
    seq: z.int().min(0).describe("per-gateway, strictly increasing; 0 only for an alarm sent from memory"),
    gw: z.string().regex(GATEWAY_ID_PATTERN).describe("the gateway id, as in the topic"),
    dev: deviceRef,
    case: z.string().regex(CASE_ID_PATTERN).optional().describe("the case the event belongs to"),
    msg: messageRef.optional(),
    kind: z.literal(kind),
    t: isoUtc().describe("the time the event stands for, UTC"),
    time: eventTime,
    body: BODIES[kind] as (typeof BODIES)[K],
    rev: z.int().min(1).optional().describe("the revision: absent (0) as first stored; keep the highest"),
  });
}

/** Any event: the envelopes of every kind, told apart by `kind`. */
export const anyEvent = z.discriminatedUnion(
  "kind",
  EVENT_KINDS.map((k) => envelopeOf(k)) as unknown as [
    ReturnType<typeof envelopeOf>,
    ...ReturnType<typeof envelopeOf>[],
  ],
);

export type WaveformBody = z.infer<typeof waveformBody>;
export type PositionBody = z.infer<typeof positionBody>;
export type Ecg12Body = z.infer<typeof ecg12Body>;
export type CaseBody = z.infer<typeof caseBody>;
export type DeviceEventBody = z.infer<typeof deviceBody>;

// The types the code builds events with are the schemas' (each way assignable), so neither can
// gain or lose a field without the other.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const same = <A, B>(ok: Same<A, B>) => ok;
same<z.infer<typeof deviceRef>, DeviceRef>(true);
same<z.infer<typeof eventTime>, EventTime>(true);
same<z.infer<typeof messageRef>, MessageRef>(true);
same<z.infer<typeof observation>, Observation>(true);
same<z.infer<typeof vitalsBody>, VitalsBody>(true);
same<z.infer<typeof alarmBody>, AlarmBody>(true);
same<z.infer<typeof gapBody>, GapBody>(true);
same<z.infer<typeof deviceBody>, ClockChange | RecordCheck>(true);
same<z.infer<typeof compactLead>, CompactLead>(true);
