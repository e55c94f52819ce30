// The county picture's alert (issue 17): three or more ambulances heading for the same destination.
// A vehicle heads for a place when it moves (at least 1 m/s, with a course), the place lies ahead of
// it and its course passes within `radiusM` of the place (the cross-track distance on a flat local
// approximation, good to a few metres over the tens of kilometres of a county), and at its speed it
// would be there within `withinMin`. Pure: positions and places in, alerts out.
import { bearingDeg, distanceM } from "../protocols/geo.ts";

export interface Vehicle {
  gw: string;
  lat: number;
  lon: number;
  speedMps?: number | undefined;
  courseDeg?: number | undefined;
  /** When the position was measured (ms). */
  atMs: number;
}

export interface Place {
  name: string;
  lat: number;
  lon: number;
}

export interface ConvergenceRule {
  radiusM: number;
  withinMin: number;
  minVehicles: number;
  positionMaxAgeMin: number;
}

/** Below this a vehicle is standing: its course says nothing of where it goes. */
const MOVING_MPS = 1;

/** Minutes until `v` reaches `place` on its course, or undefined when it is not heading for it. */
export function etaMin(
  v: Vehicle,
  place: Place,
  rule: Pick<ConvergenceRule, "radiusM" | "withinMin">,
): number | undefined {
  if (v.speedMps === undefined || v.courseDeg === undefined || v.speedMps < MOVING_MPS) return undefined;
  const d = distanceM(v, place);
  if (d <= rule.radiusM) return undefined; // there already: arrived, not heading
  const off = ((bearingDeg(v, place) - v.courseDeg) * Math.PI) / 180;
  const along = d * Math.cos(off);
  const across = Math.abs(d * Math.sin(off));
  if (along <= 0 || across > rule.radiusM) return undefined;
  const eta = along / v.speedMps / 60;
  return eta <= rule.withinMin ? eta : undefined;
}

export interface ConvergenceAlert {
  place: Place;
  vehicles: { gw: string; etaMin: number }[];
}

/** For each place, the vehicles heading for it, where they are at least `minVehicles`; soonest first. */
export function convergenceAlerts(
  vehicles: readonly Vehicle[],
  places: readonly Place[],
  rule: ConvergenceRule,
  nowMs: number,
): ConvergenceAlert[] {
  const fresh = vehicles.filter((v) => nowMs - v.atMs <= rule.positionMaxAgeMin * 60_000);
  const alerts: ConvergenceAlert[] = [];
  for (const place of places) {
    const heading = fresh
      .map((v) => ({ gw: v.gw, etaMin: etaMin(v, place, rule) }))
      .filter((h): h is { gw: string; etaMin: number } => h.etaMin !== undefined)
      .sort((a, b) => a.etaMin - b.etaMin);
    if (heading.length >= rule.minVehicles) alerts.push({ place, vehicles: heading });
  }
  return alerts;
}

/** The place each vehicle heads for (the soonest), by gateway. */
export function destinations(
  vehicles: readonly Vehicle[],
  places: readonly Place[],
  rule: ConvergenceRule,
  nowMs: number,
): Map<string, { place: string; etaMin: number }> {
  const out = new Map<string, { place: string; etaMin: number }>();
  for (const v of vehicles) {
    if (nowMs - v.atMs > rule.positionMaxAgeMin * 60_000) continue;
    for (const p of places) {
      const eta = etaMin(v, p, rule);
      if (eta !== undefined && (out.get(v.gw)?.etaMin ?? Infinity) > eta) out.set(v.gw, { place: p.name, etaMin: eta });
    }
  }
  return out;
}
