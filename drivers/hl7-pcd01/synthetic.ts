// A generator of SYNTHETIC IHE PCD-01 (ORU^R01) and PCD-04 (ORU^R40) messages, for tests and
// benchmarks that push thousands of messages. Written by the vitalgate project from the structure
// of the IHE PCD TF-2 example messages (MSH with IHE PCD profile in MSH-21, PID, PV1, OBR per
// observation group, OBX rows for the MDS/VMD/channel containment and one per metric, OBX-4
// containment sub-ids, MDC codes and MDC units). No device produced these; the patient is fictional.

export interface Pcd01Values {
  /** ECG heart rate, /min */
  hr?: number;
  /** SpO2, % */
  spo2?: number;
  /** Pulse rate from the oximeter, /min */
  pr?: number;
  /** Impedance respiration rate, /min */
  rr?: number;
  /** Body temperature, Cel */
  tempC?: number;
  /** NIBP, mm[Hg]; taken at `time` (its own OBR group) when given. */
  nibp?: { sys: number; dia: number; mean?: number; time?: Date | string };
}

export interface Pcd01Options {
  controlId: string;
  /** Measurement time: a Date (written with `utcOffset`) or an HL7 TS written as given. */
  time: Date | string;
  values: Pcd01Values;
  /** Offset written into time stamps made from Dates; "" writes local times without offset. */
  utcOffset?: string;
  /** Segment terminator; HL7 says CR. */
  lineEnding?: "\r" | "\n" | "\r\n";
  /** MSH-18 (omitted when undefined). */
  charset?: string;
  /** EUI-64 of the simulated monitor (MSH-3 and OBX-18). */
  eui64?: string;
}

const MDC_SUFFIX = "^MDC";

function ts(t: Date | string, utcOffset: string): string {
  if (typeof t === "string") return t;
  const sign = utcOffset.startsWith("-") ? -1 : 1;
  const m = /^[+-](\d{2}):?(\d{2})$/.exec(utcOffset);
  const offMin = m ? sign * (Number(m[1]) * 60 + Number(m[2])) : 0;
  const d = new Date(t.getTime() + offMin * 60_000);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const base = `${p(d.getUTCFullYear(), 4)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
  return m ? `${base}${utcOffset.replace(":", "")}` : base;
}

function metric(
  set: number,
  code: number,
  refid: string,
  sub: string,
  value: number,
  unitCode: number,
  unitRefid: string,
  time: string,
): string {
  return `OBX|${set}|NM|${code}^${refid}${MDC_SUFFIX}|${sub}|${value}|${unitCode}^${unitRefid}${MDC_SUFFIX}|||||R|||${time}`;
}

/** One synthetic PCD-01 ORU^R01 message. */
export function pcd01Message(o: Pcd01Options): string {
  const off = o.utcOffset ?? "+0800";
  const t = ts(o.time, off);
  const eui = o.eui64 ?? "0012A3FFFE000001";
  const v = o.values;
  const msh = [
    "MSH",
    "^~\\&",
    `SIM_MONITOR^${eui}^EUI-64`,
    "",
    "VITALGATE",
    "",
    t,
    "",
    "ORU^R01^ORU_R01",
    o.controlId,
    "P",
    "2.6",
    "",
    "",
    "AL",
    "NE",
  ];
  while (msh.length < 18) msh.push("");
  msh.push(o.charset ?? "", "", "", "IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO");
  const segs = [
    msh.join("|"),
    "PID|||SIM0001^^^SIM^PI||SYNTHETIC^PATIENT",
    "PV1||I|SIM^1^1",
    `OBR|1|${o.controlId}^SIM_MONITOR^${eui}^EUI-64|${o.controlId}^SIM_MONITOR^${eui}^EUI-64|182777000^monitoring of patient^SCT|||${t}`,
    `OBX|1||69798^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS${MDC_SUFFIX}|1.0.0.0|||||||X|||||||${eui}^EUI-64`,
  ];
  let n = 2;
  if (v.hr !== undefined)
    segs.push(metric(n++, 147842, "MDC_ECG_HEART_RATE", "1.1.1.147842", v.hr, 264864, "MDC_DIM_BEAT_PER_MIN", t));
  if (v.rr !== undefined)
    segs.push(metric(n++, 151578, "MDC_TTHOR_RESP_RATE", "1.1.2.151578", v.rr, 264928, "MDC_DIM_RESP_PER_MIN", t));
  if (v.spo2 !== undefined)
    segs.push(metric(n++, 150456, "MDC_PULS_OXIM_SAT_O2", "1.2.1.150456", v.spo2, 262688, "MDC_DIM_PERCENT", t));
  if (v.pr !== undefined)
    segs.push(metric(n++, 149530, "MDC_PULS_OXIM_PULS_RATE", "1.2.1.149530", v.pr, 264864, "MDC_DIM_BEAT_PER_MIN", t));
  if (v.tempC !== undefined)
    segs.push(metric(n++, 150364, "MDC_TEMP_BODY", "1.4.1.150364", v.tempC, 268192, "MDC_DIM_DEGC", t));
  if (v.nibp) {
    const nt = v.nibp.time === undefined ? t : ts(v.nibp.time, off);
    segs.push(
      `OBR|2|${o.controlId}-2^SIM_MONITOR^${eui}^EUI-64|${o.controlId}-2^SIM_MONITOR^${eui}^EUI-64|182777000^monitoring of patient^SCT|||${nt}`,
    );
    segs.push(metric(n++, 150021, "MDC_PRESS_BLD_NONINV_SYS", "1.3.1.150021", v.nibp.sys, 266016, "MDC_DIM_MMHG", nt));
    segs.push(metric(n++, 150022, "MDC_PRESS_BLD_NONINV_DIA", "1.3.1.150022", v.nibp.dia, 266016, "MDC_DIM_MMHG", nt));
    if (v.nibp.mean !== undefined)
      segs.push(
        metric(n, 150023, "MDC_PRESS_BLD_NONINV_MEAN", "1.3.1.150023", v.nibp.mean, 266016, "MDC_DIM_MMHG", nt),
      );
  }
  const end = o.lineEnding ?? "\r";
  return segs.join(end) + end;
}

export interface Pcd04Options {
  controlId: string;
  time: Date | string;
  utcOffset?: string;
  /** Alarm condition, e.g. "196670^MDC_EVT_LO^MDC". */
  event: string;
  text: string;
  /** PH, PM, PL or PN. */
  priority: "PH" | "PM" | "PL" | "PN";
  phase: "start" | "continue" | "end";
  state: "active" | "inactive" | "latched" | "off";
  /** The alarmed measurement, e.g. { id: "150456^MDC_PULS_OXIM_SAT_O2^MDC", value: 84, unit: "262688^MDC_DIM_PERCENT^MDC", limits: "90-100" } */
  source?: { id: string; value: number; unit: string; limits?: string };
}

/** One synthetic PCD-04 ORU^R40 alarm report. */
export function pcd04Alarm(o: Pcd04Options): string {
  const t = ts(o.time, o.utcOffset ?? "+0800");
  const eui = "0012A3FFFE000001";
  const segs = [
    `MSH|^~\\&|SIM_MONITOR^${eui}^EUI-64||VITALGATE||${t}||ORU^R40^ORU_R40|${o.controlId}|P|2.6|||AL|NE||UNICODE UTF-8|||IHE_PCD_ACM_001^IHE PCD^1.3.6.1.4.1.19376.1.6.4.4.4^ISO`,
    "PID|||SIM0001^^^SIM^PI||SYNTHETIC^PATIENT",
    "PV1||I|SIM^1^1",
    `OBR|1|${o.controlId}^SIM_MONITOR^${eui}^EUI-64|${o.controlId}^SIM_MONITOR^${eui}^EUI-64|196616^MDC_EVT_ALARM^MDC|||${t}`,
    `OBX|1|CWE|196616^MDC_EVT_ALARM^MDC|1.2.1.150456.1|${o.event}^^^^^^${o.text}|||${o.priority}~SP|||F|||${t}`,
  ];
  let n = 2;
  if (o.source)
    segs.push(
      `OBX|${n++}|NM|${o.source.id}|1.2.1.150456.2|${o.source.value}|${o.source.unit}|${o.source.limits ?? ""}||||R|||${t}`,
    );
  segs.push(`OBX|${n++}|ST|68481^MDC_ATTR_EVENT_PHASE^MDC|1.2.1.150456.3|${o.phase}||||||F`);
  segs.push(`OBX|${n++}|ST|68482^MDC_ATTR_ALARM_STATE^MDC|1.2.1.150456.4|${o.state}||||||F`);
  segs.push(`OBX|${n}|ST|68484^MDC_ATTR_ALARM_PRIORITY^MDC|1.2.1.150456.6|${o.priority}||||||F`);
  return segs.join("\r") + "\r";
}

/** `count` PCD-01 messages one `stepMs` apart, with plausible drifting values. */
export function* pcd01Series(count: number, start: Date, stepMs = 1000, idPrefix = "SIM"): Generator<string> {
  for (let i = 0; i < count; i++) {
    const wobble = Math.round(3 * Math.sin(i / 7));
    yield pcd01Message({
      controlId: `${idPrefix}${i}`,
      time: new Date(start.getTime() + i * stepMs),
      values: {
        hr: 72 + wobble,
        spo2: 97 + (i % 3 === 0 ? -1 : 0),
        pr: 71 + wobble,
        rr: 16 + (i % 2),
        tempC: 36.8,
        nibp: i % 60 === 0 ? { sys: 118, dia: 76, mean: 90 } : undefined,
      },
    });
  }
}
