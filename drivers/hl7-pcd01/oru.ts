// From a parsed ORU message to events: IHE PCD-01 observation reports (ORU^R01) to vitals, IHE
// PCD-04 alarm reports (ORU^R40) to alarms. Pure.
//
// Source for the structure: IHE PCD Technical Framework Vol. 2 (PCD-01 "Communicate PCD Data",
// PCD-04 "Report Alert"): OBR per observation group, OBX-3 the MDC observation identifier
// ("150456^MDC_PULS_OXIM_SAT_O2^MDC"), OBX-4 the containment sub-id ("1.3.1.150456"), OBX-5 the
// value, OBX-6 the unit ("262688^MDC_DIM_PERCENT^MDC" or UCUM), OBX-11 result status, OBX-14
// observation time, OBX-18 equipment instance identifier (e.g. "0123456789ABCDEF^EUI-64").
import type { AlarmBody, EventDraft, Observation, VitalsBody } from "../../src/events.ts";
import { parseHl7Time, segmentsNamed } from "../../protocols/hl7v2/index.ts";
import type { Hl7Message, Hl7Segment } from "../../protocols/hl7v2/index.ts";
import { metricByCode, metricByRefid, ucumForMdcUnit, ucumForSpelling } from "./mdc.ts";

export interface CodeMapEntry {
  code: string;
  mdc?: number;
  unit?: string;
}

export interface MappingOptions {
  codeMap: Readonly<Record<string, CodeMapEntry>>;
  /** Minutes east of UTC assumed for device times that carry no offset; none = leave them raw. */
  assumeOffsetMinutes?: number;
}

interface Identified {
  code: string;
  mdc?: number;
  /** Unit the table or codeMap gives (codeMap: overrides the message; table: only a fallback). */
  unit?: string;
  unitOverride?: boolean;
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
export function identify(obx: Hl7Segment, codeMap: MappingOptions["codeMap"]): Identified {
  const [id = "", text = "", system = ""] = obx.components(3).map((s) => s.trim());
  const local = id !== "" || text !== "" ? id || text : `unidentified:${obx.value(1).trim() || obx.occurrence}`;
  const keys = id !== "" || text !== "" ? [`${id}^${text}^${system}`, `${id}^${text}`, id, text].filter((k) => k !== "" && k !== "^" && k !== "^^") : [local];
  for (const k of keys) {
    const hit = Object.hasOwn(codeMap, k) ? codeMap[k] : undefined;
    if (hit) {
      const known = metricByRefid(hit.code);
      return { code: hit.code, mdc: hit.mdc ?? known?.mdc, unit: hit.unit ?? known?.unit, unitOverride: hit.unit !== undefined };
    }
  }
  // 0 is "unspecified" (devices use it with private MDCX_ reference ids): no numeric code.
  const num = /^\d+$/.test(id) && Number(id) > 0 ? Number(id) : undefined;
  const refid = /^MDCX?_/.test(text) ? text : /^MDCX?_/.test(id) ? id : undefined;
  if (refid) {
    const known = metricByRefid(refid);
    // The device's own numeric code is kept when it sends one, even if our table differs.
    return { code: refid, mdc: num ?? known?.mdc, unit: known?.unit };
  }
  if (num !== undefined && system.toUpperCase() === "MDC") {
    const known = metricByCode(num);
    return { code: known?.refid ?? id, mdc: num, unit: known?.unit };
  }
  return { code: local };
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
  if (obx.field(5) === "") return undefined;
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

/**
 * ORU^R01 to vitals: one event per OBR group, because each OBR of a PCD-01 report is one
 * observation snapshot with its own time (OBR-7): periodic numerics and an episodic NIBP taken
 * minutes earlier arrive in one message but are not measured together. Containment rows (MDS,
 * VMD, channel: OBX without value) carry identity, not observations. Waveform OBX (value types NA
 * and MA) are skipped for now without error; waveform events come with a later issue.
 */
export function vitalsFromOru(message: Hl7Message, options: MappingOptions): EventDraft[] {
  const mshTime = message.header.time;
  const allObx = segmentsNamed(message, "OBX");
  const who = identity(message, allObx);
  const events: EventDraft[] = [];
  for (const g of groups(message)) {
    const obrTime = g.obr?.value(7).trim() ?? "";
    const time = timeOf(obrTime || mshTime, options);
    const observations: Observation[] = [];
    for (const obx of g.obxs) {
      const type = obx.value(2).trim().toUpperCase();
      if (type === "NA" || type === "MA") continue;
      const value = valueOf(obx, type);
      if (value === undefined) continue;
      const id = identify(obx, options.codeMap);
      const sent = unitOf(obx);
      const obs: Observation = { code: id.code, value, unit: id.unitOverride ? id.unit! : sent || id.unit || "" };
      if (id.mdc !== undefined) obs.mdc = id.mdc;
      const status = obx.value(11).trim();
      if (status !== "") obs.status = status;
      const at = parseHl7Time(obx.value(14), options.assumeOffsetMinutes)?.iso;
      if (at !== undefined && at !== time.deviceTime) obs.at = at;
      const sub = obx.value(4).trim();
      if (sub !== "") obs.sub = sub;
      observations.push(obs);
    }
    if (observations.length === 0) continue;
    const body: VitalsBody = { observations };
    events.push({ kind: "vitals", body, ...time, ...who });
  }
  return events;
}

const PRIORITY: Record<string, string> = { PH: "high", PM: "medium", PL: "low", PN: "none" };
const ALARM_ATTRS = new Set(["MDC_ATTR_EVENT_PHASE", "MDC_ATTR_ALARM_STATE", "MDC_ATTR_ALARM_INACTIVATION_STATE", "MDC_ATTR_ALARM_PRIORITY", "MDC_ATTR_ALERT_TYPE", "MDC_ATTR_ALERT_SOURCE", "MDC_ATTR_ALERT_TEXT"]);

/**
 * ORU^R40 (IHE PCD-04) to alarms. Each OBX whose OBX-3 is MDC_EVT_ALARM starts one alarm: its
 * OBX-5 names the alarm condition (MDC_EVT_...), OBX-8 may carry priority (PH/PM/PL/PN) and
 * type (SP/ST/SA). The OBXs after it, up to the next alarm, refine it: the alarmed measurement
 * (its code becomes `source`), MDC_ATTR_EVENT_PHASE (start/continue/end...),
 * MDC_ATTR_ALARM_STATE (active/inactive/latched/off), MDC_ATTR_ALARM_PRIORITY, the alert text.
 * Attributes are recognised by reference id, not number: devices disagree on the numbers.
 */
export function alarmsFromOru(message: Hl7Message, options: MappingOptions): EventDraft[] {
  const who = identity(message, segmentsNamed(message, "OBX"));
  const events: EventDraft[] = [];
  for (const g of groups(message)) {
    const groupTime = g.obr?.value(7).trim() || message.header.time;
    let body: (AlarmBody & { phase?: string }) | undefined;
    let time: { deviceTime?: string; deviceTimeRaw?: string } = {};
    const flush = () => {
      if (body) {
        if (body.state === "") body.state = "unknown";
        events.push({ kind: "alarm", body, ...time, ...who });
      }
      body = undefined;
    };
    for (const obx of g.obxs) {
      const [, ref = ""] = obx.components(3);
      const name = ref.trim();
      if (name === "MDC_EVT_ALARM") {
        flush();
        const [code = "", text = "", , , , , , , original = ""] = obx.components(5);
        const flags = obx.repetitions(8).map((f) => f.trim().toUpperCase());
        const prio = flags.find((f) => f in PRIORITY);
        body = { code: text.startsWith("MDC_") ? text : code || text, priority: prio ? PRIORITY[prio]! : "", state: "", text: original || text || code };
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
  }
  return events;
}
