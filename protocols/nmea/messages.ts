// Typed NMEA 0183 messages for the sentences a position needs: GGA, RMC, GNS, GLL, VTG, GSA, ZDA.
//
// Field layouts: NMEA 0183 v4.11 §6.3 (IEC 61162-1 §8.3) — GGA "Global positioning system fix data", GLL "Geographic position",
// RMC "Recommended minimum specific GNSS data", GNS "GNSS fix data", VTG "Course over ground and
// ground speed", GSA "GNSS DOP and active satellites", ZDA "Time and date". Fields added by later
// versions (RMC/VTG mode indicator in 2.3, RMC navigational status and GSA system id in 4.10) are read
// when present. Empty fields are null fields (§5.3.2) and become `undefined`. A field that is present
// but not a number where a number belongs is an error (NMEA_BAD_FIELD), never a guess.
import type { CodecError } from "../codec.ts";
import type { NmeaSentence } from "./sentence.ts";

/** Talker identifiers for GNSS receivers: NMEA 0183 v4.11 §6.1.4 table 6 ("BD" is the pre-4.11 BeiDou talker still sent by Chinese receivers). */
export const NMEA_GNSS_TALKERS: Readonly<Record<string, string>> = {
  GP: "GPS",
  GL: "GLONASS",
  GA: "Galileo",
  GB: "BeiDou",
  BD: "BeiDou",
  GQ: "QZSS",
  GI: "NavIC",
  GN: "multi-GNSS",
};

/** GGA quality indicator (§6.3 GGA field 6). */
export const GGA_QUALITY: Readonly<Record<number, string>> = {
  0: "invalid",
  1: "gps",
  2: "dgps",
  3: "pps",
  4: "rtk",
  5: "float-rtk",
  6: "estimated",
  7: "manual",
  8: "simulator",
};

/** UTC time of day as sent: hours, minutes, seconds and milliseconds since midnight. */
export interface NmeaTime {
  /** Milliseconds since 00:00:00 UTC. */
  ms: number;
  /** As sent, e.g. "193221.00". */
  raw: string;
}

export interface NmeaDate {
  year: number;
  month: number;
  day: number;
}

interface Base {
  talker: string;
  /** GNSS named by the talker (NMEA_GNSS_TALKERS), when it is a GNSS talker. */
  system?: string;
  checksum: "ok" | "absent";
}

export interface GgaMessage extends Base {
  type: "GGA";
  time?: NmeaTime;
  lat?: number;
  lon?: number;
  quality?: number;
  sats?: number;
  hdop?: number;
  /** Antenna altitude above mean sea level, metres. */
  altM?: number;
  /** Geoidal separation (WGS-84 ellipsoid minus mean sea level), metres. */
  geoidSepM?: number;
  dgpsAgeS?: number;
  dgpsStation?: string;
}

export interface RmcMessage extends Base {
  type: "RMC";
  time?: NmeaTime;
  /** "A" data valid, "V" navigation receiver warning. */
  status?: string;
  lat?: number;
  lon?: number;
  speedMps?: number;
  courseDeg?: number;
  date?: NmeaDate;
  /** Magnetic variation, degrees, east positive. */
  magVarDeg?: number;
  /** Mode indicator (2.3+): A autonomous, D differential, E estimated, F float RTK, M manual, N not valid, P precise, R RTK, S simulator. */
  mode?: string;
  navStatus?: string;
  /** RMC date and time as UTC (ISO 8601), when both are present. */
  utc?: string;
}

export interface GnsMessage extends Base {
  type: "GNS";
  time?: NmeaTime;
  lat?: number;
  lon?: number;
  /** One mode character per constellation (GPS, GLONASS, Galileo, BeiDou, QZSS, NavIC). */
  modes?: string;
  sats?: number;
  hdop?: number;
  altM?: number;
  geoidSepM?: number;
  dgpsAgeS?: number;
  dgpsStation?: string;
  navStatus?: string;
}

export interface GllMessage extends Base {
  type: "GLL";
  lat?: number;
  lon?: number;
  time?: NmeaTime;
  /** "A" data valid, "V" not valid. */
  status?: string;
  mode?: string;
}

export interface VtgMessage extends Base {
  type: "VTG";
  courseDeg?: number;
  courseMagDeg?: number;
  speedMps?: number;
  mode?: string;
}

export interface GsaMessage extends Base {
  type: "GSA";
  /** M manual, A automatic 2D/3D. */
  selection?: string;
  /** 1 fix not available, 2 2D, 3 3D. */
  fixType?: number;
  satIds: number[];
  pdop?: number;
  hdop?: number;
  vdop?: number;
  systemId?: number;
}

export interface ZdaMessage extends Base {
  type: "ZDA";
  time?: NmeaTime;
  date?: NmeaDate;
  zoneHours?: number;
  zoneMinutes?: number;
  utc?: string;
}

/** A well-formed sentence this module does not interpret (GSV, GLL, TXT, proprietary ...). */
export interface OtherMessage extends Base {
  type: "other";
  sentenceType: string;
  proprietary: boolean;
  fields: string[];
}

export type NmeaMessage =
  GgaMessage | RmcMessage | GnsMessage | GllMessage | VtgMessage | GsaMessage | ZdaMessage | OtherMessage;
export type NmeaMessageResult = { ok: true; message: NmeaMessage } | { ok: false; error: CodecError };

/** Knots to metres per second: 1 international nautical mile = 1852 m (exact). */
const KNOT_MPS = 1852 / 3600;

class FieldError extends Error {
  readonly field: number;
  constructor(field: number, message: string) {
    super(message);
    this.field = field;
  }
}

/** Reads fields by number (1-based as in the standard's tables); the first bad field stops the parse. */
function reader(s: NmeaSentence) {
  const name = s.talker + s.type;
  const f = (n: number): string => s.fields[n - 1] ?? "";
  const num = (n: number): number | undefined => {
    const v = f(n);
    if (v === "") return undefined;
    if (!/^[-+]?(\d+\.?\d*|\.\d+)$/.test(v))
      throw new FieldError(n, `${name} field ${n} "${v.slice(0, 20)}" is not a number`);
    return Number(v);
  };
  const int = (n: number): number | undefined => {
    const v = num(n);
    if (v !== undefined && !Number.isInteger(v))
      throw new FieldError(n, `${name} field ${n} "${f(n)}" is not an integer`);
    return v;
  };
  const time = (n: number): NmeaTime | undefined => {
    const v = f(n);
    if (v === "") return undefined;
    const m = /^(\d{2})(\d{2})(\d{2}(?:\.\d*)?)$/.exec(v);
    if (!m) throw new FieldError(n, `${name} field ${n} "${v.slice(0, 20)}" is not a time hhmmss.ss`);
    const h = Number(m[1]);
    const mi = Number(m[2]);
    const sec = Number(m[3]);
    // 60 is a leap second (§6.3 ZDA note); hours past 23 are receivers' nonsense.
    if (h > 23 || mi > 59 || sec >= 61) throw new FieldError(n, `${name} field ${n} "${v}" is not a valid UTC time`);
    return { ms: Math.round(((h * 60 + mi) * 60 + sec) * 1000), raw: v };
  };
  /** ddmm.mmmm / dddmm.mmmm plus hemisphere field: signed decimal degrees. */
  const coord = (n: number, degDigits: 2 | 3): number | undefined => {
    const v = f(n);
    const hemi = f(n + 1);
    if (v === "") return undefined;
    const m = degDigits === 2 ? /^(\d{2})(\d{2}(?:\.\d*)?)$/.exec(v) : /^(\d{3})(\d{2}(?:\.\d*)?)$/.exec(v);
    if (!m)
      throw new FieldError(
        n,
        `${name} field ${n} "${v.slice(0, 20)}" is not a ${degDigits === 2 ? "latitude ddmm.mm" : "longitude dddmm.mm"}`,
      );
    const deg = Number(m[1]);
    const min = Number(m[2]);
    const value = deg + min / 60;
    if (min >= 60 || value > (degDigits === 2 ? 90 : 180))
      throw new FieldError(n, `${name} field ${n} "${v}" is out of range`);
    const neg = degDigits === 2 ? "S" : "W";
    const pos = degDigits === 2 ? "N" : "E";
    if (hemi !== neg && hemi !== pos)
      throw new FieldError(n + 1, `${name} field ${n + 1} "${hemi.slice(0, 8)}" is not ${pos} or ${neg}`);
    return hemi === neg ? -value : value;
  };
  const text = (n: number): string | undefined => (f(n) === "" ? undefined : f(n));
  return { f, num, int, time, coord, text };
}

function base(s: NmeaSentence): Base {
  const system = NMEA_GNSS_TALKERS[s.talker];
  return system === undefined
    ? { talker: s.talker, checksum: s.checksum }
    : { talker: s.talker, system, checksum: s.checksum };
}

/** Drops undefined members so messages compare and print cleanly. */
function clean<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

function isoOf(date: NmeaDate, time: NmeaTime): string | undefined {
  const day0 = Date.UTC(date.year, date.month - 1, date.day);
  // an impossible date (31 February) is refused rather than rolled into March
  if (new Date(day0).getUTCDate() !== date.day) return undefined;
  return new Date(day0 + time.ms).toISOString();
}

/**
 * RMC carries a two-digit year (§6.3 RMC field 9). Pivot: 80..99 are 1980..1999 (GPS began in 1980),
 * 00..79 are 2000..2079.
 */
export function nmeaYear(yy: number): number {
  return yy >= 80 ? 1900 + yy : 2000 + yy;
}

function dateDdmmyy(r: ReturnType<typeof reader>, n: number, name: string): NmeaDate | undefined {
  const v = r.f(n);
  if (v === "") return undefined;
  const m = /^(\d{2})(\d{2})(\d{2})$/.exec(v);
  const date = m ? { day: Number(m[1]), month: Number(m[2]), year: nmeaYear(Number(m[3])) } : undefined;
  if (!date || date.month < 1 || date.month > 12 || date.day < 1 || date.day > 31) {
    throw new FieldError(n, `${name} field ${n} "${v.slice(0, 12)}" is not a date ddmmyy`);
  }
  return date;
}

function decodeGga(s: NmeaSentence): GgaMessage {
  // §6.3 GGA: 1 time, 2-3 lat N/S, 4-5 lon E/W, 6 quality, 7 satellites, 8 HDOP, 9-10 altitude M,
  // 11-12 geoidal separation M, 13 age of differential data, 14 reference station id.
  const r = reader(s);
  return clean({
    ...base(s),
    type: "GGA",
    time: r.time(1),
    lat: r.coord(2, 2),
    lon: r.coord(4, 3),
    quality: r.int(6),
    sats: r.int(7),
    hdop: r.num(8),
    altM: r.num(9),
    geoidSepM: r.num(11),
    dgpsAgeS: r.num(13),
    dgpsStation: r.text(14),
  });
}

function decodeRmc(s: NmeaSentence): RmcMessage {
  // §6.3 RMC: 1 time, 2 status A/V, 3-4 lat, 5-6 lon, 7 speed over ground knots, 8 course over
  // ground degrees true, 9 date ddmmyy, 10-11 magnetic variation E/W, 12 mode indicator (2.3+),
  // 13 navigational status (4.10+).
  const r = reader(s);
  const name = s.talker + s.type;
  const time = r.time(1);
  const date = dateDdmmyy(r, 9, name);
  const knots = r.num(7);
  const mv = r.num(10);
  const mvDir = r.f(11);
  return clean({
    ...base(s),
    type: "RMC",
    time,
    status: r.text(2),
    lat: r.coord(3, 2),
    lon: r.coord(5, 3),
    speedMps: knots === undefined ? undefined : knots * KNOT_MPS,
    courseDeg: r.num(8),
    date,
    magVarDeg: mv === undefined ? undefined : mvDir === "W" ? -mv : mv,
    mode: r.text(12),
    navStatus: r.text(13),
    utc: date && time ? isoOf(date, time) : undefined,
  });
}

function decodeGns(s: NmeaSentence): GnsMessage {
  // §6.3 GNS: 1 time, 2-3 lat, 4-5 lon, 6 mode indicators, 7 satellites, 8 HDOP, 9 orthometric
  // height (MSL) m, 10 geoidal separation m, 11 age of differential data, 12 station id, 13 nav status.
  const r = reader(s);
  return clean({
    ...base(s),
    type: "GNS",
    time: r.time(1),
    lat: r.coord(2, 2),
    lon: r.coord(4, 3),
    modes: r.text(6),
    sats: r.int(7),
    hdop: r.num(8),
    altM: r.num(9),
    geoidSepM: r.num(10),
    dgpsAgeS: r.num(11),
    dgpsStation: r.text(12),
    navStatus: r.text(13),
  });
}

function decodeGll(s: NmeaSentence): GllMessage {
  // §6.3 GLL "Geographic position – latitude/longitude": 1-2 lat N/S, 3-4 lon E/W, 5 UTC time,
  // 6 status A/V, 7 mode indicator (2.3+).
  const r = reader(s);
  return clean({
    ...base(s),
    type: "GLL",
    lat: r.coord(1, 2),
    lon: r.coord(3, 3),
    time: r.time(5),
    status: r.text(6),
    mode: r.text(7),
  });
}

function decodeVtg(s: NmeaSentence): VtgMessage {
  const r = reader(s);
  // §6.3 VTG: 1 course true, 2 "T", 3 course magnetic, 4 "M", 5 speed knots, 6 "N", 7 speed km/h,
  // 8 "K", 9 mode (2.3+). NMEA 0183 v1.x receivers send the four values without unit letters.
  if (r.f(2) === "T" || r.f(4) === "M" || r.f(6) === "N" || r.f(8) === "K" || s.fields.length >= 8) {
    const knots = r.num(5);
    const kmh = r.num(7);
    return clean({
      ...base(s),
      type: "VTG",
      courseDeg: r.num(1),
      courseMagDeg: r.num(3),
      speedMps: knots !== undefined ? knots * KNOT_MPS : kmh !== undefined ? kmh / 3.6 : undefined,
      mode: r.text(9),
    });
  }
  const knots = r.num(3);
  return clean({
    ...base(s),
    type: "VTG",
    courseDeg: r.num(1),
    courseMagDeg: r.num(2),
    speedMps: knots === undefined ? undefined : knots * KNOT_MPS,
  });
}

function decodeGsa(s: NmeaSentence): GsaMessage {
  // §6.3 GSA: 1 selection mode M/A, 2 mode 1/2/3, 3-14 satellite ids used, 15 PDOP, 16 HDOP,
  // 17 VDOP, 18 GNSS system id (4.10+).
  const r = reader(s);
  const satIds: number[] = [];
  for (let n = 3; n <= 14; n++) {
    const id = r.int(n);
    if (id !== undefined) satIds.push(id);
  }
  return clean({
    ...base(s),
    type: "GSA",
    selection: r.text(1),
    fixType: r.int(2),
    satIds,
    pdop: r.num(15),
    hdop: r.num(16),
    vdop: r.num(17),
    // NMEA 4.10 system id: a small integer. SiRF-TriG receivers put another DOP there (beidou-bd.log
    // in gpsd's tests: "1.2"); that is not a system id and not an error in the fields that matter.
    systemId: /^\d{1,2}$/.test(r.f(18)) ? Number(r.f(18)) : undefined,
  });
}

function decodeZda(s: NmeaSentence): ZdaMessage {
  // §6.3 ZDA: 1 UTC time, 2 day, 3 month, 4 year (four digits), 5 local zone hours, 6 local zone minutes.
  const r = reader(s);
  const name = s.talker + s.type;
  const time = r.time(1);
  const day = r.int(2);
  const month = r.int(3);
  const year = r.int(4);
  let date: NmeaDate | undefined;
  if (day !== undefined && month !== undefined && year !== undefined) {
    if (day < 1 || day > 31 || month < 1 || month > 12 || year < 1980 || year > 2200) {
      throw new FieldError(2, `${name} date ${r.f(2)}/${r.f(3)}/${r.f(4)} is not a valid date`);
    }
    date = { year, month, day };
  }
  return clean({
    ...base(s),
    type: "ZDA",
    time,
    date,
    zoneHours: r.int(5),
    zoneMinutes: r.int(6),
    utc: date && time ? isoOf(date, time) : undefined,
  });
}

const DECODERS: Readonly<Record<string, (s: NmeaSentence) => NmeaMessage>> = {
  GGA: decodeGga,
  RMC: decodeRmc,
  GNS: decodeGns,
  GLL: decodeGll,
  VTG: decodeVtg,
  GSA: decodeGsa,
  ZDA: decodeZda,
};

/** Turns a parsed sentence into a typed message. Proprietary and other sentences pass as `other`. Never throws. */
export function decodeNmeaSentence(s: NmeaSentence): NmeaMessageResult {
  const decode = s.proprietary ? undefined : DECODERS[s.type];
  if (!decode) {
    return {
      ok: true,
      message: { ...base(s), type: "other", sentenceType: s.type, proprietary: s.proprietary, fields: s.fields },
    };
  }
  try {
    return { ok: true, message: decode(s) };
  } catch (e) {
    if (e instanceof FieldError) {
      return { ok: false, error: { code: "NMEA_BAD_FIELD", message: e.message, where: `${s.address}-${e.field}` } };
    }
    return { ok: false, error: { code: "NMEA_BAD_FIELD", message: `${s.address}: ${String(e)}` } };
  }
}
