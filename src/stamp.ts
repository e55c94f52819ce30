// Stamping: a driver's draft becomes an event with its id, gateway, device and time (DESIGN.md §3,
// §4). The time comes from the gateway's clock (monotonic plus offset), never the raw wall clock;
// the device's own timestamp is kept raw beside it.
import type { Clock } from "./clock.ts";
import { ENVELOPE_VERSION, type DeviceRef, type EventDraft } from "./events.ts";
import { uuidv7 } from "./ids.ts";
import type { StampedEvent } from "./store.ts";

export function stamp(draft: EventDraft, dev: DeviceRef, gw: string, clock: Clock, caseId?: string): StampedEvent {
  const now = clock.now();
  const recv = new Date(now.ms).toISOString();
  // Absent optional fields are left undefined rather than spread in: JSON leaves them out, and a
  // literal with a fixed shape is several times cheaper to build than one assembled by spreads.
  return {
    v: ENVELOPE_VERSION,
    id: uuidv7(now.ms),
    seq: 0, // assigned by the store when it commits
    gw,
    dev,
    case: caseId,
    kind: draft.kind,
    t: recv,
    time: { recv, src: now.src, uncMs: now.uncMs, dev: draft.deviceTimeRaw },
    body: draft.body,
  };
}
