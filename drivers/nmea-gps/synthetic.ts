// A SYNTHETIC drive for the nmea-gps driver's tests and simulator: a vehicle moving along a straight
// line at constant speed, reported once per epoch (1 Hz by default) as RMC, GGA and GSA (and GSV, ZDA
// when asked), with valid checksums. Written by the vitalgate project from the field layouts of NMEA
// 0183 v4.11 §6.3 (RMC, GGA, GSA, GSV, ZDA); no receiver produced these sentences and no real trip is
// in them. Pure: the start time is given, nothing reads a clock.
import { formatNmeaSentence } from "../../protocols/nmea/index.ts";
import type { FixMode } from "../../protocols/nmea/index.ts";
import { EARTH_RADIUS_M } from "../../protocols/geo.ts";

export interface SyntheticDriveOptions {
  /** UTC of epoch 0, Unix ms. */
  startMs: number;
  /** Epochs to produce; Infinity for an endless drive (the generator is lazy). */
  epochs: number;
  intervalMs?: number;
  /** Where the drive starts. Default: a road in Yanqing, Beijing (fictional trip). */
  origin?: { lat: number; lon: number };
  /** Default 15 m/s (54 km/h). */
  speedMps?: number;
  /** Degrees true; default 90 (due east). */
  courseDeg?: number;
  /** Altitude above mean sea level, m, for 3D epochs. */
  altM?: number;
  /** Talker of every sentence; "GN" for a multi-GNSS receiver. */
  talker?: "GP" | "GN" | "BD" | "GL" | "GA";
  /** The receiver's fix in each epoch (default 3D throughout): a tunnel is a run of "none". */
  fix?: (epoch: number) => FixMode;
  /** Also send ZDA (time and date) each epoch. */
  zda?: boolean;
  /**
   * Also send GSV (satellites in view) each epoch: gpsd reports no SKY (satellites used, DOPs)
   * without them, whatever GSA says.
   */
  gsv?: boolean;
}

export interface SyntheticEpoch {
  index: number;
  /** UTC of the epoch, Unix ms. */
  atMs: number;
  /** Since epoch 0, ms. */
  offsetMs: number;
  /** Where the vehicle truly is, whatever the fix says. */
  lat: number;
  lon: number;
  fix: FixMode;
  /** The epoch's sentences, each with its checksum and CRLF. */
  text: string;
}

const KNOT_MPS = 1852 / 3600;
const DEG = Math.PI / 180;

const pad = (n: number, w: number) => String(n).padStart(w, "0");

/** hhmmss.ss (§6.3 time fields). */
export function nmeaTimeField(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getUTCHours(), 2)}${pad(d.getUTCMinutes(), 2)}${pad(d.getUTCSeconds(), 2)}.${pad(Math.floor(d.getUTCMilliseconds() / 10), 2)}`;
}

/** ddmm.mmmmm or dddmm.mmmmm and its hemisphere letter. */
function coordFields(value: number, degDigits: 2 | 3): [string, string] {
  const hemi = degDigits === 2 ? (value < 0 ? "S" : "N") : value < 0 ? "W" : "E";
  const units = Math.round(Math.abs(value) * 60 * 1e5); // in 1e-5 minutes, so 59.999996' cannot print as 60'
  const deg = Math.floor(units / 6e6);
  const min = (units - deg * 6e6) / 1e5;
  return [`${pad(deg, degDigits)}${min.toFixed(5).padStart(8, "0")}`, hemi];
}

/**
 * Where the vehicle is after `distanceM` along `courseDeg` from `origin`: north and east steps on the
 * sphere (a rhumb line; due east it follows the parallel exactly).
 */
export function pointAlong(
  origin: { lat: number; lon: number },
  courseDeg: number,
  distanceM: number,
): { lat: number; lon: number } {
  const north = distanceM * Math.cos(courseDeg * DEG);
  const east = distanceM * Math.sin(courseDeg * DEG);
  const lat = origin.lat + north / EARTH_RADIUS_M / DEG;
  const lon = origin.lon + east / (EARTH_RADIUS_M * Math.cos(((origin.lat + lat) / 2) * DEG)) / DEG;
  return { lat, lon };
}

/** The drive, one epoch at a time. */
export function* syntheticDrive(o: SyntheticDriveOptions): Generator<SyntheticEpoch> {
  const interval = o.intervalMs ?? 1000;
  const origin = o.origin ?? { lat: 40.4567, lon: 115.9701 };
  const speed = o.speedMps ?? 15;
  const course = o.courseDeg ?? 90;
  const alt = o.altM ?? 512.3;
  const talker = o.talker ?? "GP";
  for (let i = 0; i < o.epochs; i++) {
    const atMs = o.startMs + i * interval;
    const { lat, lon } = pointAlong(origin, course, (speed * (i * interval)) / 1000);
    const fix = o.fix?.(i) ?? "3d";
    const d = new Date(atMs);
    const time = nmeaTimeField(atMs);
    const date = `${pad(d.getUTCDate(), 2)}${pad(d.getUTCMonth() + 1, 2)}${pad(d.getUTCFullYear() % 100, 2)}`;
    const [la, ns] = coordFields(lat, 2);
    const [lo, ew] = coordFields(lon, 3);
    const sats =
      fix === "3d" ? ["05", "07", "13", "15", "18", "20", "24", "29"] : fix === "2d" ? ["05", "13", "24"] : [];
    const sentences: string[] = [];
    if (fix === "none") {
      // A receiver without a fix still sends its time and date, marked not valid (RMC status V,
      // mode N; GGA quality 0; GSA mode 1).
      sentences.push(
        formatNmeaSentence(`${talker}RMC`, [time, "V", "", "", "", "", "", "", date, "", "", "N"]),
        formatNmeaSentence(`${talker}GGA`, [time, "", "", "", "", "0", "00", "99.99", "", "", "", "", "", ""]),
        formatNmeaSentence(`${talker}GSA`, [
          "A",
          "1",
          "",
          "",
          "",
          "",
          "",
          "",
          "",
          "",
          "",
          "",
          "",
          "",
          "99.99",
          "99.99",
          "99.99",
        ]),
      );
    } else {
      sentences.push(
        formatNmeaSentence(`${talker}RMC`, [
          time,
          "A",
          la,
          ns,
          lo,
          ew,
          (speed / KNOT_MPS).toFixed(3),
          course.toFixed(2),
          date,
          "",
          "",
          "A",
        ]),
        formatNmeaSentence(`${talker}GGA`, [
          time,
          la,
          ns,
          lo,
          ew,
          "1",
          pad(sats.length, 2),
          fix === "3d" ? "0.90" : "2.50",
          fix === "3d" ? alt.toFixed(1) : "",
          fix === "3d" ? "M" : "",
          "-8.2",
          "M",
          "",
          "",
        ]),
        formatNmeaSentence(`${talker}GSA`, [
          "A",
          fix === "3d" ? "3" : "2",
          ...sats,
          ...Array<string>(12 - sats.length).fill(""),
          fix === "3d" ? "1.60" : "3.10",
          fix === "3d" ? "0.90" : "2.50",
          fix === "3d" ? "1.30" : "1.80",
        ]),
      );
    }
    if (o.gsv && fix !== "none") {
      // GSV: message count, message number, satellites in view, then up to four of (PRN, elevation °,
      // azimuth °, SNR dB-Hz) per message; made-up but plausible sky positions.
      const groups = Array.from({ length: Math.ceil(sats.length / 4) }, (_, g) => sats.slice(g * 4, g * 4 + 4));
      for (const [g, group] of groups.entries()) {
        const views = group.flatMap((prn, k) => [
          prn,
          pad(20 + (((g * 4 + k) * 7) % 60), 2),
          pad(((g * 4 + k) * 45) % 360, 3),
          pad(30 + k * 3, 2),
        ]);
        sentences.push(
          formatNmeaSentence(`${talker}GSV`, [String(groups.length), String(g + 1), pad(sats.length, 2), ...views]),
        );
      }
    }
    if (o.zda) {
      sentences.push(
        formatNmeaSentence(`${talker}ZDA`, [
          time,
          pad(d.getUTCDate(), 2),
          pad(d.getUTCMonth() + 1, 2),
          String(d.getUTCFullYear()),
          "00",
          "00",
        ]),
      );
    }
    yield { index: i, atMs, offsetMs: i * interval, lat, lon, fix, text: sentences.join("") };
  }
}
