// Builders for stamped events in tests and benchmarks.
import { uuidv7 } from "../../src/events/ids.ts";
import type { EventKind } from "../../src/events/model.ts";
import type { StampedEvent } from "../../src/outbox/outbox.ts";

export function stampedEvent(
  kind: EventKind,
  body: unknown = {},
  atMs = Date.UTC(2026, 10, 23, 15, 36, 34),
  caseId?: string,
): StampedEvent {
  const t = new Date(atMs).toISOString();
  return {
    v: 1,
    id: uuidv7(atMs),
    seq: 0,
    gw: "test-gw",
    dev: { id: "monitor", driver: "hl7-pcd01", kind: "monitor" },
    ...(caseId === undefined ? {} : { case: caseId }),
    kind,
    t,
    time: { recv: t, src: "system", uncMs: 1000 },
    body,
  };
}

export function vitals(hr: number, atMs?: number): StampedEvent {
  return stampedEvent(
    "vitals",
    { observations: [{ code: "MDC_ECG_HEART_RATE", mdc: 147842, value: hr, unit: "/min" }] },
    atMs,
  );
}
