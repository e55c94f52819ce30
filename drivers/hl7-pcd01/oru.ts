// From a parsed ORU message to events: IHE PCD-01 observation reports (ORU^R01) to vitals, IHE
// PCD-04 alarm reports (ORU^R40) to alarms. Pure.
//
// Source for the structure: IHE PCD Technical Framework Vol. 2 (PCD-01 "Communicate PCD Data",
// PCD-04 "Report Alert"): OBR per observation group, OBX-3 the MDC observation identifier
// ("150456^MDC_PULS_OXIM_SAT_O2^MDC"), OBX-4 the containment sub-id ("1.3.1.150456"), OBX-5 the
// value, OBX-6 the unit ("262688^MDC_DIM_PERCENT^MDC" or UCUM), OBX-11 result status, OBX-14
// observation time, OBX-18 equipment instance identifier (e.g. "0123456789ABCDEF^EUI-64").
import type { DriverNotice } from "../../src/devices/driver.ts";
import type { AlarmBody, AlarmType, EventDraft, Observation, VitalsBody } from "../../src/events/model.ts";
import { parseHl7Time, segmentsNamed, type AssumedOffset } from "../../protocols/hl7v2/index.ts";
import type { Hl7Message, Hl7Segment } from "../../protocols/hl7v2/index.ts";
import {
  metricByCode,
  metricByRefid,
  partitionOfRefid,
  ucumForMdcUnit,
  ucumForSpelling,
} from "../../protocols/mdc/index.ts";
import { DEMO_BED, DEMO_FLAG, NOT_MEASURED_STATUS, NOT_PRODUCTION, NO_VALUE_TEXT, vendorOf } from "./vendors.ts";
import type { VendorQuirks } from "./vendors.ts";

export interface CodeMapEntry {
  code: string;
  mdc?: number;
  unit?: string;
}

export interface MappingOptions {
  codeMap: Readonly<Record<string, CodeMapEntry>>;
  /** The UTC offset assumed for device times that carry none (the device's or the box's zone); none = leave them raw. */
  assumeOffsetMinutes?: AssumedOffset;
  /** OBX-5 values this device sends to say "no value", beside its vendor's (vendors.ts). */
  noValue?: readonly string[];
}

interface Identified {
  code: string;
  mdc?: number;
  /** Unit the table or codeMap gives (codeMap: overrides the message; table: only a fallback). */
  unit?: string;
  unitOverride?: boolean;
  /** The numeric code the device sent when it disagrees with its reference id (then `mdc` is the reference id's). */
  mdcSent?: number;
}

/** What an ORU message became: events, and what is worth counting and saying once about it. */
export interface OruDecoding {
  events: EventDraft[];
  notices: DriverNotice[];
}

const NUMERIC = /^[+-]?(\d+([.,]\d*)?|[.,]\d+)$/;

/** HL7 NM, accepting a decimal comma ("76,132" from European devices); undefined if not a number. */
export function parseNumber(text: string): number | undefined {
  const t = text.trim();
  if (!NUMERIC.test(t)) return undefined;
  const n = Number(t.replace(",", "."));
  return Number.isFinite(n) ? n : undefined;
}

/**
 * What OBX-3 names, as a code for events: the MDC reference id when the device sends MDC, the
 * codeMap's code for a vendor's local code, else the local code itself. An empty OBX-3 (the Osypka
 * Aesculon sends only positions) becomes "unidentified:<OBX-1>", which a codeMap can also map.
 * Keys tried in the codeMap: "id^text^system", "id^text", "id", then "text".
 */
export function identify(
  obx: Hl7Segment,
  codeMap: MappingOptions["codeMap"],
  obx3: readonly string[] = obx3Of(obx),
): Identified {
  const [id = "", text = "", system = ""] = obx3;
  const local = id !== "" || text !== "" ? id || text : `unidentified:${obx.value(1).trim() || obx.occurrence}`;
  const keys =
    id !== "" || text !== ""
      ? [`${id}^${text}^${system}`, `${id}^${text}`, id, text].filter((k) => k !== "" && k !== "^" && k !== "^^")
      : [local];
  for (const k of keys) {
    const hit = Object.hasOwn(codeMap, k) ? codeMap[k] : undefined;
    if (hit) {
      const known = metricByRefid(hit.code);
      return {
        code: hit.code,
        mdc: hit.mdc ?? known?.mdc,
        unit: hit.unit ?? known?.unit,
        unitOverride: hit.unit !== undefined,
      };
    }
  }
  // 0 is "unspecified" (devices use it with private MDCX_ reference ids): no numeric code.
  const num = /^\d+$/.test(id) && Number(id) > 0 ? Number(id) : undefined;
  const refid = /^MDCX?_/.test(text) ? text : /^MDCX?_/.test(id) ? id : undefined;
  if (refid) {
    const known = metricByRefid(refid);
    // A numeric code that is not the reference id's (by our table, or by its partition) is not kept
    // silently: the reference id wins (a name is written on purpose, a number is easily mistyped)
    // and the number sent travels beside it, flagged.
    const partition = partitionOfRefid(refid);
    const disagrees =
      num !== undefined &&
      (known?.mdc !== undefined ? known.mdc !== num : partition !== undefined && Math.floor(num / 65536) !== partition);
    if (disagrees) return { code: refid, mdc: known?.mdc, unit: known?.unit, mdcSent: num };
    return { code: refid, mdc: num ?? known?.mdc, unit: known?.unit };
  }
  if (num !== undefined && system.toUpperCase() === "MDC") {
    const known = metricByCode(num);
    return { code: known?.refid ?? id, mdc: num, unit: known?.unit };
  }
  return { code: local };
}

/** OBX-3's identifier, text and coding system, trimmed. */
export function obx3Of(obx: Hl7Segment): string[] {
  return obx.components(3).map((s) => s.trim());
}

/** OBX-6 as UCUM: MDC dimension codes mapped, UCUM passed through, common spellings mapped. */
export function unitOf(obx: Hl7Segment): string {
  const [id = "", text = "", system = ""] = obx.components(6).map((s) => s.trim());
  if (id === "" && text === "") return "";
  const refid = text.startsWith("MDC_") ? text : id.startsWith("MDC_") ? id : "";
  if (refid !== "" || system.toUpperCase() === "MDC") {
    const num = /^\d+$/.test(id) ? Number(id) : undefined;
    return ucumForMdcUnit(refid, num) ?? (refid || id);
  }
  if (system.toUpperCase() === "UCUM") return id || text;
  return ucumForSpelling(id) ?? ucumForSpelling(text) ?? (id || text);
}

/** OBX-5 as a value, or undefined when the OBX carries none we keep. */
function valueOf(obx: Hl7Segment, type: string): number | string | undefined {
  // Empty or blank: the row carries no value (containment rows, an unmeasured parameter).
  if (obx.field(5).trim() === "") return undefined;
  switch (type) {
    // No value type: read as NM when it is a number (some devices leave OBX-2 empty).
    case "":
    case "NM": {
      const text = obx.value(5);
      // Not a number although typed NM ("---", "LL" from devices out of range): kept as text.
      return parseNumber(text) ?? text;
    }
    case "SN": {
      const [comparator = "", n1 = "", sep = "", n2 = ""] = obx.components(5);
      const n = parseNumber(n1);
      if (comparator === "" && sep === "" && n2 === "" && n !== undefined) return n;
      return `${comparator}${n1}${sep}${n2}`;
    }
    case "CWE":
    case "CE":
    case "CNE":
    case "CF": {
      const [code = "", text = ""] = obx.components(5);
      return text || code;
    }
    default:
      return obx.value(5);
  }
}

/** Device identity from OBX-18 (EI: entity id ^ namespace) or, for the model, MSH-3. */
function identity(message: Hl7Message, obxs: Hl7Segment[]): { model?: string; serial?: string } {
  const out: { model?: string; serial?: string } = {};
  for (const obx of obxs) {
    const serial = obx.value(18, 1).trim();
    if (serial === "") continue;
    out.serial = serial;
    const ns = obx.value(18, 2).trim();
    // The namespace is either an id scheme (EUI-64...) or, with some vendors, the model.
    if (ns !== "" && !/^(EUI-?64|EUI-?48|MAC|UUID|GUID|ISO|DNS|URI|L|M|N)$/i.test(ns)) out.model = ns;
    break;
  }
  if (out.model === undefined) {
    const msh3 = message.segments[0]?.value(3, 1).trim() ?? "";
    if (msh3 !== "") out.model = msh3;
  }
  return out;
}

interface Group {
  obr?: Hl7Segment;
  obxs: Hl7Segment[];
}

/** OBX segments grouped under the OBR before them (OBXs before any OBR form a group of their own). */
function groups(message: Hl7Message): Group[] {
  const out: Group[] = [];
  let current: Group | undefined;
  for (const seg of message.segments) {
    if (seg.name === "OBR") {
      current = { obr: seg, obxs: [] };
      out.push(current);
    } else if (seg.name === "OBX") {
      if (!current) {
        current = { obxs: [] };
        out.push(current);
      }
      current.obxs.push(seg);
    }
  }
  return out;
}

function timeOf(raw: string, options: MappingOptions): { deviceTime?: string; deviceTimeRaw?: string } {
  const t = parseHl7Time(raw, options.assumeOffsetMinutes);
  if (!t) return {};
  return t.iso ? { deviceTime: t.iso, deviceTimeRaw: t.raw } : { deviceTimeRaw: t.raw };
}

/** Why a whole message is demo data, or undefined when it is not. */
function demoMessage(message: Hl7Message): string | undefined {
  const processing = message.header.processingId.trim().toUpperCase();
  if (NOT_PRODUCTION.has(processing))
    return `MSH-11 ${processing} (${processing === "T" ? "training" : "debugging"}, not production)`;
  const pv1 = segmentsNamed(message, "PV1")[0];
  if (pv1 && DEMO_BED.test(pv1.value(3, 3).trim())) return "PV1-3 a demo bed";
  return undefined;
}

/** What holds for the whole message: who sent it, whether it is demo data, what means "no value". */
interface MessageContext {
  who: { model?: string; serial?: string };
  vendor?: VendorQuirks;
  demo?: string;
  noValue: readonly string[];
  notices: DriverNotice[];
  options: MappingOptions;
}

function messageContext(message: Hl7Message, rows: readonly Row[], options: MappingOptions): MessageContext {
  const msh = message.segments[0];
  const who = identity(
    message,
    rows.map((r) => r.obx),
  );
  const vendor = vendorOf({
    header: msh ? [msh.field(3), msh.field(4)] : [],
    codingSystems: new Set(rows.map((r) => r.system)),
    // OBX-18's namespace, when it names a model ("B40_GE"), is the model identity() read.
    equipment: who.model === undefined ? [] : [who.model],
  });
  return { who, vendor, demo: demoMessage(message), noValue: options.noValue ?? [], notices: [], options };
}

/** The fields of an OBX the mapping looks at, read once. */
interface Row {
  obx: Hl7Segment;
  /** OBX-2, upper case. */
  type: string;
  /** OBX-3 components, trimmed. */
  obx3: string[];
  /** OBX-3.3, upper case. */
  system: string;
  /** OBX-4. */
  sub: string;
  /** OBX-11. */
  status: string;
}

function rowOf(obx: Hl7Segment): Row {
  const obx3 = obx3Of(obx);
  return {
    obx,
    type: obx.value(2).trim().toUpperCase(),
    obx3,
    system: (obx3[2] ?? "").toUpperCase(),
    sub: obx.value(4).trim(),
    status: obx.value(11).trim(),
  };
}

/**
 * Why OBX-5 is a "no value" marker rather than a measurement, or undefined when it is a value:
 * OBX-11 X (HL7 table 0085: results cannot be obtained), text that only says "nothing" ("---",
 * "NA"), the vendor's sentinel number, or one configured for the device (`noValue`).
 */
function noValueReason(row: Row, value: number | string, ctx: MessageContext): string | undefined {
  const obx = row.obx;
  if (row.status.toUpperCase() === NOT_MEASURED_STATUS) return "OBX-11 X (result cannot be obtained)";
  if (typeof value === "string") return NO_VALUE_TEXT.test(value.trim()) ? `"${value.trim()}"` : undefined;
  if (ctx.vendor?.noValue.includes(value)) return `${value} (${ctx.vendor.id}'s "no value")`;
  const raw = obx.value(5).trim();
  if (ctx.noValue.some((n) => n === raw || (parseNumber(n) !== undefined && parseNumber(n) === value)))
    return `${raw} (configured noValue)`;
  return undefined;
}

/** IEEE 11073-10101 attributes of a waveform channel, sent as rows of their own (Mindray). */
const WAVEFORM_SETTINGS = new Set(["MDC_ATTR_SAMP_RATE", "MDC_ATTR_NU_MSMT_RES"]);
const WAVEFORM_TYPES = new Set(["NA", "MA"]);

function refidOf(row: Row): string {
  const [id = "", text = ""] = row.obx3;
  return /^MDCX?_/.test(text) ? text : /^MDCX?_/.test(id) ? id : "";
}

/**
 * Rows that are not a patient's measurement though they look like one: a waveform channel's settings
 * (sample rate, resolution, filter: the rows under the channel's OBX-4, and the attributes by name)
 * and IEEE 11073 events (MDC_EVT_..., partition 3: things that happened, such as a channel's INOP
 * marker, not quantities).
 */
function isWaveformOrEvent(row: Row, channels: readonly string[]): boolean {
  const refid = refidOf(row);
  if (WAVEFORM_SETTINGS.has(refid) || refid.startsWith("MDC_EVT_")) return true;
  return row.sub !== "" && channels.some((c) => row.sub.startsWith(`${c}.`));
}

/** A Philips MDIL-ALERT row (an alarm or INOP as text in an ORU^R01), read as an alarm. */
function mdilAlert(row: Row): AlarmBody {
  const obx = row.obx;
  const [id = "", name = ""] = row.obx3;
  const type: AlarmType | undefined = /inop/i.test(name)
    ? "technical"
    : /alarm/i.test(name)
      ? "physiological"
      : undefined;
  const priority = /^red/i.test(name) ? "high" : /^yellow/i.test(name) ? "medium" : "";
  const body: AlarmBody = { code: name || id, priority, state: "active", text: obx.value(5).trim() };
  if (type) body.type = type;
  return body;
}

function hasDemoFlag(obx: Hl7Segment): boolean {
  return obx.repetitions(8).some(
    (_, i) =>
      obx
        .value(8, 1, 1, i + 1)
        .trim()
        .toUpperCase() === DEMO_FLAG,
  );
}

/**
 * One OBR group of an ORU^R01 to vitals: one event per OBR group, because each OBR of a PCD-01
 * report is one observation snapshot with its own time (OBR-7): periodic numerics and an episodic
 * NIBP taken minutes earlier arrive in one message but are not measured together. Containment rows
 * (MDS, VMD, channel: OBX without value) carry identity, not observations. Waveform OBX (value types
 * NA and MA) and their settings rows are skipped for now without error; waveform events come with a
 * later issue. Philips MDIL-ALERT rows become alarms; "no value" markers are absence.
 */
function vitalsFromGroup(message: Hl7Message, g: Group, rows: readonly Row[], ctx: MessageContext): EventDraft[] {
  const options = ctx.options;
  const obrTime = g.obr?.value(7).trim() ?? "";
  const time = timeOf(obrTime || message.header.time, options);
  const channels = rows.filter((r) => WAVEFORM_TYPES.has(r.type) && r.sub !== "").map((r) => r.sub);
  const observations: Observation[] = [];
  const alarms: EventDraft[] = [];
  let demoRows = false;
  for (const row of rows) {
    const { obx, type } = row;
    if (WAVEFORM_TYPES.has(type) || isWaveformOrEvent(row, channels)) continue;
    if (row.system === "MDIL-ALERT") {
      alarms.push({ kind: "alarm", body: mdilAlert(row), ...time, ...ctx.who });
      continue;
    }
    const value = valueOf(obx, type);
    if (value === undefined) continue;
    const id = identify(obx, options.codeMap, row.obx3);
    const absent = noValueReason(row, value, ctx);
    if (absent !== undefined) {
      ctx.notices.push({ code: "HL7_NO_VALUE", message: `${absent} in ${id.code} read as no value` });
      continue;
    }
    const sent = unitOf(obx);
    const obs: Observation = { code: id.code, value, unit: id.unitOverride ? id.unit! : sent || id.unit || "" };
    if (id.mdc !== undefined) obs.mdc = id.mdc;
    if (id.mdcSent !== undefined) {
      obs.mdcSent = id.mdcSent;
      ctx.notices.push({
        code: "HL7_CODE_MISMATCH",
        message: `OBX-3 numeric code ${id.mdcSent} disagrees with ${id.code}${id.mdc === undefined ? "" : ` (${id.mdc})`}: kept by the reference id, flagged mdcSent`,
      });
    }
    if (row.status !== "") obs.status = row.status;
    const at = parseHl7Time(obx.value(14), options.assumeOffsetMinutes)?.iso;
    if (at !== undefined && at !== time.deviceTime) obs.at = at;
    if (row.sub !== "") obs.sub = row.sub;
    if (ctx.demo !== undefined || hasDemoFlag(obx)) {
      obs.demo = true;
      demoRows = true;
    }
    observations.push(obs);
  }
  if (demoRows && ctx.demo === undefined) ctx.demo = "OBX-8 DEMO";
  const events = [...alarms];
  if (observations.length > 0) {
    const body: VitalsBody = { observations };
    events.unshift({ kind: "vitals", body, ...time, ...ctx.who });
  }
  return events;
}

const PRIORITY: Record<string, string> = { PH: "high", PM: "medium", PL: "low", PN: "none" };
/** IHE PCD-04 OBX-8 alert type: SP physiological, ST technical, SA advisory. */
const ALARM_TYPE: Record<string, AlarmType> = { SP: "physiological", ST: "technical", SA: "advisory" };
const ALARM_ATTRS = new Set([
  "MDC_ATTR_EVENT_PHASE",
  "MDC_ATTR_ALARM_STATE",
  "MDC_ATTR_ALARM_INACTIVATION_STATE",
  "MDC_ATTR_ALARM_PRIORITY",
  "MDC_ATTR_ALERT_TYPE",
  "MDC_ATTR_ALERT_SOURCE",
  "MDC_ATTR_ALERT_TEXT",
]);
const ALARM_ROW = "MDC_EVT_ALARM";

function isAlarmGroup(rows: readonly Row[]): boolean {
  return rows.some((r) => r.obx3[1] === ALARM_ROW);
}

/**
 * One OBR group of alarms (IHE PCD-04, in an ORU^R40, or an ORU^R01 group as Mindray sends them).
 * Each OBX whose OBX-3 is MDC_EVT_ALARM starts one alarm: its OBX-5 names the alarm condition
 * (MDC_EVT_...), OBX-8 may carry priority (PH/PM/PL/PN) and type (SP/ST/SA). The OBXs after it, up
 * to the next alarm, refine it: the alarmed measurement (its code becomes `source`),
 * MDC_ATTR_EVENT_PHASE (start/continue/end...), MDC_ATTR_ALARM_STATE (active/inactive/latched/off),
 * MDC_ATTR_ALARM_PRIORITY, the alert text. Attributes are recognised by reference id, not number:
 * devices disagree on the numbers.
 */
function alarmsFromGroup(message: Hl7Message, g: Group, ctx: MessageContext): EventDraft[] {
  const options = ctx.options;
  const events: EventDraft[] = [];
  const groupTime = g.obr?.value(7).trim() || message.header.time;
  let body: (AlarmBody & { phase?: string }) | undefined;
  let time: { deviceTime?: string; deviceTimeRaw?: string } = {};
  const flush = () => {
    if (body) {
      if (body.state === "") body.state = "unknown";
      events.push({ kind: "alarm", body, ...time, ...ctx.who });
    }
    body = undefined;
  };
  for (const obx of g.obxs) {
    const [, ref = ""] = obx.components(3);
    const name = ref.trim();
    if (name === ALARM_ROW) {
      flush();
      const [code = "", text = "", , , , , , , original = ""] = obx.components(5);
      const flags = obx.repetitions(8).map((f) => f.trim().toUpperCase());
      const prio = flags.find((f) => f in PRIORITY);
      const type = flags.find((f) => f in ALARM_TYPE);
      body = {
        code: text.startsWith("MDC_") ? text : code || text,
        priority: prio ? PRIORITY[prio]! : "",
        state: "",
        text: original || text || code,
      };
      if (type) body.type = ALARM_TYPE[type]!;
      const src = obx.value(4).trim();
      if (src !== "") body.source = src;
      time = timeOf(obx.value(14).trim() || groupTime, options);
      continue;
    }
    if (!body) continue;
    const value = obx.value(5).trim();
    switch (name) {
      case "MDC_ATTR_EVENT_PHASE":
        body.phase = value;
        if (body.state === "") body.state = value === "end" ? "inactive" : "active";
        break;
      case "MDC_ATTR_ALARM_STATE":
        if (value !== "") body.state = value;
        break;
      case "MDC_ATTR_ALARM_PRIORITY":
        if (value !== "") body.priority = PRIORITY[value.toUpperCase()] ?? value;
        break;
      case "MDC_ATTR_ALERT_TEXT":
        if (value !== "") body.text = value;
        break;
      case "MDC_ATTR_ALERT_SOURCE":
        if (value !== "") body.source = obx.components(5)[1] || value;
        break;
      default:
        if (!ALARM_ATTRS.has(name) && name !== "") body.source = identify(obx, options.codeMap).code;
    }
  }
  flush();
  return events;
}

/**
 * An ORU message to events: ORU^R01 (IHE PCD-01) groups to vitals, its alarm groups and Philips
 * MDIL-ALERT rows to alarms; ORU^R40 (IHE PCD-04) alarm groups to alarms. Demo data is marked on
 * every observation and event it touches (`demo: true`), and said in the notices (`HL7_DEMO`).
 */
export function eventsFromOru(message: Hl7Message, trigger: "R01" | "R40", options: MappingOptions): OruDecoding {
  const all = groups(message).map((g) => ({ g, rows: g.obxs.map(rowOf) }));
  const ctx = messageContext(
    message,
    all.flatMap((x) => x.rows),
    options,
  );
  const events: EventDraft[] = [];
  for (const { g, rows } of all) {
    if (isAlarmGroup(rows)) events.push(...alarmsFromGroup(message, g, ctx));
    else if (trigger === "R01") events.push(...vitalsFromGroup(message, g, rows, ctx));
  }
  if (ctx.demo !== undefined) {
    for (const e of events) (e.body as { demo?: boolean }).demo = true;
    ctx.notices.push({ code: "HL7_DEMO", message: `demo data (${ctx.demo}): its events are marked demo` });
  }
  return { events, notices: ctx.notices };
}
