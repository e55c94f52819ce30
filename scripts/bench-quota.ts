// Ingest under quota pressure (issue 18.1): messages of one vitals event and one waveform each,
// committed 50 at a time as the gateway groups them, into a 16 MB outbox the uplink never drains.
// Prints messages/s while filling it and then under pressure, and what the quota thinned or dropped.
//
//   node scripts/bench-quota.ts                  # this checkout's store, 50 messages per second of device time
//   STEP_MS=10000 node scripts/bench-quota.ts    # 5 messages/s: older data, so the store thins it
//   node scripts/bench-quota.ts /path/to/other/src/outbox/outbox.ts   # another checkout's store, to compare
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
const { Outbox } = await import(process.argv[2] ?? "../src/outbox/outbox.ts");
const { stampedEvent, vitals } = await import("../test/support/events.ts");
const dir = mkdtempSync(join(tmpdir(), "vg-quota-"));
let now = Date.UTC(2026, 10, 23, 8, 0, 0);
const o = new Outbox({
  path: join(dir, "outbox.db"),
  quotaBytes: 16 * 1024 * 1024,
  batchMax: 1000,
  nowMs: () => now,
  gapEvent: (g: { dev: unknown }) => ({ ...stampedEvent("gap", { g }), dev: g.dev }),
});
o.open();
const dev = { id: "bed1", driver: "hl7-pcd01", kind: "monitor" };
const msg = (i: number) => [
  { ...vitals(60 + (i % 40)), dev },
  { ...stampedEvent("waveform", { samples: "x".repeat(1200) }), dev },
];
async function run(n: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i += 50) {
    now += Number(process.env.STEP_MS ?? 1000); // 50 messages per STEP_MS of device time
    await Promise.all(Array.from({ length: 50 }, (_, k) => o.append(msg(i + k))));
  }
  return n / ((performance.now() - t0) / 1000);
}
const fill = await run(12_000); // ~20 MB offered: the quota is reached in this phase
const pressure = await run(10_000);
console.log(
  JSON.stringify({
    store: process.argv[2] ?? "src/outbox/outbox.ts",
    fillMsgPerS: Math.round(fill),
    underPressureMsgPerS: Math.round(pressure),
    stats: { bytes: o.stats().bytes, evicted: o.stats().evicted, thinned: o.stats().thinned },
  }),
);
o.close();
