// From a stream of NMEA messages to one position fix per epoch: what gpsd's TPV report says.
//
// A receiver sends one burst of sentences per measurement epoch (typically 1 Hz), every timed
// sentence of the burst carrying the same UTC time of day (NMEA 0183 v4.11 §6.3: GGA, RMC, GNS,
// GLL, ZDA). The assembler groups messages by that time: a timed sentence with a new time closes the
// epoch before it; untimed sentences (VTG, GSA) belong to the epoch in progress. Within an epoch a
// later sentence's value replaces an earlier one's (as gpsd does). The date comes from RMC or ZDA in the
// epoch, else from the last one seen, advanced by a day when the time of day wraps past midnight.
//
// The fix mode (gpsd TPV "mode": 1 no fix, 2 2D, 3 3D) is decided by the sentences' own validity
// fields, and any one of them saying "not valid" wins, because a wrong position sent to an
// ambulance dispatcher is worse than none:
//  - GGA quality 0 (invalid), 7 (manual input) or 8 (simulator) — §6.3 GGA field 6 — is no fix: the
//    last two are not measured positions;
//  - GGA with 0 satellites in use (a receiver coasting on a stale solution);
//  - RMC or GLL status V or mode indicator N or S (§6.3 RMC fields 2, 12), GNS modes all N, GSA mode 1;
//  - otherwise GSA's 2/3 when present, else 3D when an altitude is present, else 2D.
//
// When is an epoch complete? Which sentence ends a burst differs between receivers (u-blox ends with
// GLL, MediaTek with RMC, Chinese multi-GNSS chips with their last per-system GSA...), so the
// assembler learns it, the way gpsd's NMEA driver does (gpsd drivers/driver_nmea0183.c, "the
// end-of-cycle detector": when a timestamped sentence starts a new cycle, the sentence before it is
// marked as a cycle ender, and a later sentence of that kind triggers the report at once). Here, when
// a new time begins an epoch, the last sentence of the epoch just closed — its talker and type, a
// GSA's system id, and how many of that kind the epoch held (a multi-GNSS chip sends one GSA per
// system) — becomes the cycle end. From the next epoch on, an epoch is emitted as soon as that
// sentence arrives (`closedBy: "cycle-end"`), not one epoch late; the last epoch of a capture is not
// left waiting for a successor that never comes. An epoch that lacks the learnt ender (the receiver
// changed its output, or switched talker from GP to GN) is emitted when the next begins
// (`"next-epoch"`), and the ender is learnt again from it. Sentences that come after an epoch was
// emitted, with its time or none, belong to it but are not sent twice: they only move the learnt end.
import type { NmeaDate, NmeaMessage } from "./messages.ts";

export type FixMode = "none" | "2d" | "3d";

export interface PositionFix {
  /** UTC (ISO 8601, ms) of the epoch, when both its time of day and a date are known. */
  time?: string;
  /** Milliseconds since midnight UTC as sent, when any sentence of the epoch carried a time. */
  timeOfDayMs?: number;
  mode: FixMode;
  /** Decimal degrees, WGS-84; only when mode is 2d or 3d. */
  lat?: number;
  lon?: number;
  /** Altitude above mean sea level, metres (3d only). */
  altM?: number;
  speedMps?: number;
  /** Course over ground, degrees true. */
  courseDeg?: number;
  /** GGA quality indicator, when a GGA was in the epoch. */
  quality?: number;
  sats?: number;
  hdop?: number;
  /** Sentence types that made this epoch, e.g. ["RMC", "GGA", "GSA"]. */
  sentences: string[];
  /**
   * What completed the epoch: its learnt cycle-ending sentence (the fix leaves with that sentence),
   * the first sentence of the next epoch (that sentence is the next epoch's), or end().
   */
  closedBy: "cycle-end" | "next-epoch" | "end";
}

export interface NmeaPositionAssembler {
  /** Feeds one message; returns the fixes of the epochs it closed (zero or one). */
  push(message: NmeaMessage): PositionFix[];
  /** Closes the epoch in progress. */
  end(): PositionFix[];
}

interface Epoch {
  tod?: number;
  date?: NmeaDate;
  lat?: number;
  lon?: number;
  altM?: number;
  speedMps?: number;
  courseDeg?: number;
  quality?: number;
  sats?: number;
  hdop?: number;
  gsaFix?: number;
  invalid: boolean;
  valid: boolean;
  /** A sentence that carries a time field (GGA, RMC, GNS, GLL, ZDA) is in the epoch, timed or not. */
  timedKind: boolean;
  sentences: string[];
  /** Sentences per cycle slot (talker, type, GSA system id), and the slot and count of the last one. */
  slots: Map<string, number>;
  last?: { slot: string; count: number };
  /** Already emitted at its cycle end; what follows only moves the learnt end. */
  emitted: boolean;
}

/** A sentence's place in a receiver's cycle: talker and type, and a GSA's GNSS system id (NMEA 4.10). */
function cycleSlot(m: Exclude<NmeaMessage, { type: "other" }>): string {
  return m.type === "GSA" && m.systemId !== undefined ? `${m.talker}GSA/${m.systemId}` : `${m.talker}${m.type}`;
}

const DAY_MS = 86_400_000;

function addDays(d: NmeaDate, n: number): NmeaDate {
  const t = new Date(Date.UTC(d.year, d.month - 1, d.day) + n * DAY_MS);
  return { year: t.getUTCFullYear(), month: t.getUTCMonth() + 1, day: t.getUTCDate() };
}

export function nmeaPositionAssembler(): NmeaPositionAssembler {
  let cur: Epoch | undefined;
  let lastDate: NmeaDate | undefined;
  let lastTod: number | undefined;
  /** The learnt cycle-ending sentence: its slot, and how many of that slot an epoch holds when it ends. */
  let ender: { slot: string; count: number } | undefined;

  function fresh(): Epoch {
    return { invalid: false, valid: false, timedKind: false, sentences: [], slots: new Map(), emitted: false };
  }

  /** Closes the epoch in progress: learns its last sentence as the cycle end, emits it unless it was. */
  function close(closedBy: PositionFix["closedBy"]): PositionFix[] {
    const e = cur;
    cur = undefined;
    if (!e) return [];
    if (closedBy === "next-epoch" && e.last) ender = e.last;
    if (e.emitted) return [];
    return fixOf(e, closedBy);
  }

  function fixOf(e: Epoch, closedBy: PositionFix["closedBy"]): PositionFix[] {
    if (e.sentences.length === 0) return [];
    let date = e.date;
    if (!date && lastDate && e.tod !== undefined) {
      date = lastTod !== undefined && e.tod < lastTod - DAY_MS / 2 ? addDays(lastDate, 1) : lastDate;
    }
    if (date) lastDate = date;
    if (e.tod !== undefined) lastTod = e.tod;
    const hasPos = e.lat !== undefined && e.lon !== undefined;
    let mode: FixMode = "none";
    if (hasPos && !e.invalid && (e.valid || e.gsaFix !== undefined)) {
      if (e.gsaFix === 2) mode = "2d";
      else if (e.gsaFix === 3) mode = "3d";
      else if (e.gsaFix === undefined || e.gsaFix > 3) mode = e.altM !== undefined ? "3d" : "2d";
    }
    const fix: PositionFix = { mode, sentences: e.sentences, closedBy };
    if (e.tod !== undefined) {
      fix.timeOfDayMs = e.tod;
      if (date) {
        const t = Date.UTC(date.year, date.month - 1, date.day) + e.tod;
        if (!Number.isNaN(t)) fix.time = new Date(t).toISOString();
      }
    }
    if (mode !== "none") {
      fix.lat = e.lat;
      fix.lon = e.lon;
      if (mode === "3d" && e.altM !== undefined) fix.altM = e.altM;
      if (e.speedMps !== undefined) fix.speedMps = e.speedMps;
      if (e.courseDeg !== undefined) fix.courseDeg = e.courseDeg;
    }
    if (e.quality !== undefined) fix.quality = e.quality;
    if (e.sats !== undefined) fix.sats = e.sats;
    if (e.hdop !== undefined) fix.hdop = e.hdop;
    return [fix];
  }

  function position(e: Epoch, lat: number | undefined, lon: number | undefined): void {
    if (lat !== undefined && lon !== undefined) {
      e.lat = lat;
      e.lon = lon;
    }
  }

  return {
    push(m: NmeaMessage): PositionFix[] {
      if (m.type === "other") return [];
      const out: PositionFix[] = [];
      const tod = "time" in m ? m.time?.ms : undefined;
      const timedKind =
        m.type === "GGA" || m.type === "RMC" || m.type === "GNS" || m.type === "GLL" || m.type === "ZDA";
      // A new time closes the epoch; so does a time after an epoch of time-bearing sentences that had
      // none (a cold start's empty RMC must not lend its "V" to the first real fix).
      if (tod !== undefined && cur && (cur.tod !== undefined ? cur.tod !== tod : cur.timedKind))
        out.push(...close("next-epoch"));
      cur ??= fresh();
      const e = cur;
      const slot = cycleSlot(m);
      const count = (e.slots.get(slot) ?? 0) + 1;
      e.slots.set(slot, count);
      e.last = { slot, count };
      if (e.emitted) return out;
      if (tod !== undefined) e.tod = tod;
      if (timedKind) e.timedKind = true;
      e.sentences.push(m.type);
      switch (m.type) {
        case "GGA":
          position(e, m.lat, m.lon);
          if (m.altM !== undefined) e.altM = m.altM;
          if (m.quality !== undefined) {
            e.quality = m.quality;
            if (m.quality === 0 || m.quality === 7 || m.quality === 8) e.invalid = true;
            else e.valid = true;
          }
          // A "fix" from no satellites is a receiver coasting on its last solution (Hemisphere
          // receivers do this; gpsd also reports no fix for it).
          if (m.sats === 0) e.invalid = true;
          if (m.sats !== undefined) e.sats = m.sats;
          if (m.hdop !== undefined) e.hdop = m.hdop;
          break;
        case "GNS":
          position(e, m.lat, m.lon);
          if (m.altM !== undefined) e.altM = m.altM;
          if (m.modes !== undefined) {
            if (/^N*$/.test(m.modes) || m.modes.startsWith("S")) e.invalid = true;
            else e.valid = true;
          }
          if (m.sats !== undefined) e.sats = m.sats;
          if (m.hdop !== undefined) e.hdop = m.hdop;
          break;
        case "RMC":
          position(e, m.lat, m.lon);
          if (m.date) e.date = m.date;
          if (m.speedMps !== undefined) e.speedMps = m.speedMps;
          if (m.courseDeg !== undefined) e.courseDeg = m.courseDeg;
          if (m.status === "V" || m.mode === "N" || m.mode === "S") e.invalid = true;
          else if (m.status === "A") e.valid = true;
          break;
        case "GLL":
          position(e, m.lat, m.lon);
          if (m.status === "V" || m.mode === "N" || m.mode === "S") e.invalid = true;
          else if (m.status === "A") e.valid = true;
          break;
        case "VTG":
          if (m.speedMps !== undefined) e.speedMps = m.speedMps;
          if (m.courseDeg !== undefined) e.courseDeg = m.courseDeg;
          break;
        case "GSA":
          if (m.fixType !== undefined) {
            if (m.fixType === 1) e.invalid = true;
            else e.gsaFix = Math.max(e.gsaFix ?? 0, m.fixType);
          }
          if (m.hdop !== undefined) e.hdop ??= m.hdop;
          break;
        case "ZDA":
          if (m.date) e.date = m.date;
          break;
      }
      if (ender && slot === ender.slot && count === ender.count) {
        out.push(...fixOf(e, "cycle-end"));
        e.emitted = true;
      }
      return out;
    },
    end(): PositionFix[] {
      return close("end");
    },
  };
}
