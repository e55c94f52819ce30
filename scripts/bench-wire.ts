// Bytes on the wire (issue 16, decision 0017), for `npm run bench -- wire drain`: the forwarder in this
// process, its outbox a real SQLite file, to a real mosquitto through the emulated 384 kbit/s, 150 ms
// link (test/support/slow-link.ts, which counts what crosses it: TCP payload, and segments at 52
// bytes of IP and TCP headers each), once with `uplink.compact` as configured by default and once
// with it off (one plain JSON event per message: vitalgate 0.1.0's wire, "today's"), in the same run.
//
//   wire   vitals at 1 Hz, as a monitor sends them: bytes on the link per event, both directions,
//          from the first event to the last acknowledged.
//   drain  a backlog of an ambulance's full device set (monitor, GPS, ventilator, S/5 with its ECG
//          waveform, blood gas, at the fullset bench's rates), drained over the link: events/s; with
//          compact, a new ECG (event and file) appended mid-drain, timed to the center.
import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ecgCartOptions, handleEcgFile } from "../drivers/ecg-cart/index.ts";
import { silentLogger } from "../src/log.ts";
import type { DeviceRef, EventDraft } from "../src/events/model.ts";
import { stamp } from "../src/events/stamp.ts";
import { Outbox } from "../src/outbox/outbox.ts";
import { systemClock } from "../src/time/clock.ts";
import { Forwarder, type UplinkOptions } from "../src/uplink/forwarder.ts";
import { chunkBytesFor, DEFAULT_WIRE, gzipChunks, type WireOptions } from "../src/uplink/wire.ts";
import { connectCenter } from "../test/support/mqtt.ts";
import { prng } from "../test/support/prng.ts";
import { mosquitto } from "../test/support/processes.ts";
import { slowLink, type Counted } from "../test/support/slow-link.ts";

/** The emulated uplink: a 3G/4G link as the ambulances get it. */
export const LINK = { bitPerS: 384_000, rttMs: 150 };
const clock = systemClock();

/** The configuration's defaults (src/config/schema.ts), as a provisioned box runs. */
const COMPACT: WireOptions = {
  compact: true,
  batchWaitMs: 10_000,
  maxMessageBytes: 256 * 1024,
  inflightBytes: 16 * 1024,
};
const PLAIN: WireOptions = { ...DEFAULT_WIRE };

const DEV: Record<string, DeviceRef> = {
  monitor: {
    id: "monitor",
    driver: "hl7-pcd01",
    kind: "monitor",
    model: "MINDRAY_BENEVIEW",
    serial: "0123456789ABCDEF",
  },
  gps: { id: "gps", driver: "nmea-gps", kind: "gps" },
  vent: { id: "vent", driver: "medibus-vent", kind: "ventilator", model: "Draeger Oxylog 3000 plus" },
  s5: { id: "s5", driver: "datex-s5", kind: "monitor", model: "GE S/5" },
  bloodgas: { id: "bloodgas", driver: "astm-analyzer", kind: "analyzer" },
  cart: { id: "cart", driver: "ecg-cart", kind: "ecg-cart" },
};

const obs = (code: string, mdc: number, value: number, unit: string, sub: string) => ({
  code,
  mdc,
  value,
  unit,
  status: "F",
  sub,
});

/** A monitor's vitals over HL7 (one OBR group), as the bench's ingest measures. */
function monitorVitals(i: number): EventDraft {
  return {
    kind: "vitals",
    deviceTime: new Date(Date.now() + 3000).toISOString(),
    deviceTimeRaw: "20261123153634+0800",
    body: {
      observations: [
        obs("MDC_ECG_HEART_RATE", 147842, 60 + (i % 40), "/min", "1.2.1.147842"),
        obs("MDC_PULS_OXIM_SAT_O2", 150456, 95 + (i % 5), "%", "1.3.1.150456"),
        obs("MDC_PRESS_BLD_NONINV_SYS", 150021, 120 + (i % 9), "mm[Hg]", "1.4.1.150021"),
      ],
    },
  };
}

/** The full set's events of second `s` of the backlog, as their drivers make them (shapes of docs/protocol.md). */
function secondOfTheSet(s: number, random: () => number): { dev: DeviceRef; draft: EventDraft }[] {
  const out: { dev: DeviceRef; draft: EventDraft }[] = [{ dev: DEV.monitor!, draft: monitorVitals(s) }];
  out.push({
    dev: DEV.gps!,
    draft: {
      kind: "position",
      deviceTime: new Date(Date.now()).toISOString(),
      body: {
        lat: +(27.7 + s * 1e-5).toFixed(7),
        lon: +(111.9 + s * 2e-5).toFixed(7),
        altM: 112.4,
        speedMps: +(13 + 3 * random()).toFixed(2),
        courseDeg: +(45 + 10 * random()).toFixed(1),
        fix: "3d",
        hdop: 0.9,
        sats: 9,
      },
    },
  });
  // The S/5's ECG1 waveform: 300 samples a second, one record a second (a beat-like signal with noise).
  const samples = new Int16Array(300);
  for (let k = 0; k < 300; k++) {
    const t = (s * 300 + k) / 300;
    const beat = (t * 1.2) % 1;
    samples[k] = Math.round(
      (beat < 0.04 ? 900 * Math.sin((beat / 0.04) * Math.PI) : 0) +
        60 * Math.sin(2 * Math.PI * 0.25 * t) +
        12 * (random() - 0.5),
    );
  }
  out.push({
    dev: DEV.s5!,
    draft: {
      kind: "waveform",
      body: {
        channel: "ECG1",
        fs: 300,
        unit: "mV",
        scale: 0.001,
        start: new Date(Date.now()).toISOString(),
        samples: Buffer.from(samples.buffer).toString("base64"),
      },
    },
  });
  if (s % 5 === 0)
    out.push({
      dev: DEV.vent!,
      draft: {
        kind: "vitals",
        body: {
          observations: [
            obs("MDC_VENT_RESP_RATE", 151586, 14 + (s % 3), "/min", "05"),
            obs("MDC_VOL_AWAY_TIDAL", 151868, 480 + (s % 20), "mL", "88"),
            obs("MDC_PRESS_AWAY_INSP_PEAK", 151817, 21 + (s % 4), "cm[H2O]", "7D"),
            obs("MDC_PRESS_AWAY_END_EXP_POS", 151976, 5, "cm[H2O]", "78"),
            obs("MDC_VOL_MINUTE_AWAY", 151880, 6.8, "L/min", "B9"),
            obs("MDC_CONC_AWAY_O2_INSP", 152196, 40, "%", "F0"),
          ],
        },
      },
    });
  if (s % 10 === 0)
    out.push({
      dev: DEV.s5!,
      draft: {
        kind: "vitals",
        body: {
          observations: [
            obs("MDC_ECG_HEART_RATE", 147842, 72 + (s % 7), "/min", "ECG"),
            obs("MDC_PULS_OXIM_SAT_O2", 150456, 97, "%", "SpO2"),
            obs("MDC_PRESS_BLD_ART_ABP_SYS", 150037, 118, "mm[Hg]", "P1:ART"),
            obs("MDC_PRESS_BLD_ART_ABP_DIA", 150038, 76, "mm[Hg]", "P1:ART"),
            obs("MDC_TEMP_BODY", 150364, 36.8, "Cel", "T1"),
            obs("MDC_AWAY_CO2_ET", 151708, 36, "mm[Hg]", "CO2"),
          ],
        },
      },
    });
  if (s % 60 === 0)
    out.push({
      dev: DEV.bloodgas!,
      draft: {
        kind: "lab",
        body: {
          analyzer: "VG-SIM BG 1.0",
          specimen: "Arterial",
          results: [
            { code: "2744-1", localCode: "pH", name: "pH", value: 7.38, unit: "[pH]", flag: "N", status: "F" },
            { code: "2019-8", localCode: "pCO2", name: "pCO2", value: 41, unit: "mm[Hg]", flag: "N", status: "F" },
            { code: "2703-7", localCode: "pO2", name: "pO2", value: 92, unit: "mm[Hg]", flag: "N", status: "F" },
            { localCode: "Glu", name: "Glucose", value: 5.6, unit: "mmol/L", flag: "N", status: "F" },
          ],
        },
      },
    });
  return out;
}

/** An outbox on the gateway's clock, `ago()` ms in the past (a backlog stored while the link was down). */
function newOutbox(ago = () => 0): Outbox {
  const outbox = new Outbox({
    path: join(mkdtempSync(join(tmpdir(), "vg-bench-wire-")), "outbox.db"),
    quotaBytes: 1 << 30,
    batchMax: 1000,
    nowMs: () => clock.now().ms - ago(),
    blobChunkBytes: chunkBytesFor(COMPACT.maxMessageBytes),
  });
  outbox.open();
  return outbox;
}

/** The forwarder's options as the benches run it: the configuration's defaults, no status chatter. */
export function benchUplink(url: string, o: Partial<UplinkOptions> = {}): UplinkOptions {
  return {
    url,
    protocolVersion: 5,
    clientId: "bench-fwd",
    rejectUnauthorized: true,
    inflight: 64,
    keepaliveS: 30,
    connectTimeoutS: 10,
    backoff: { initialMs: 100, maxMs: 1000 },
    receipts: false,
    receiptTimeoutS: 600,
    statusIntervalS: 3600,
    ...o,
  };
}

function forwarder(url: string, outbox: Outbox, wire: WireOptions, name: string, gw = "bench"): Forwarder {
  return new Forwarder(
    benchUplink(url, { clientId: `bench-${name}`, wire }),
    { outbox, log: silentLogger, nowMs: () => clock.now().ms, status: () => ({}) },
    gw,
  );
}

const sum = (c: { up: Counted; down: Counted }, k: keyof Counted) => c.up[k] + c.down[k];

async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface WireRun {
  events: number;
  /** Per event, on the link (payload + IP/TCP headers), both directions. */
  wirePerEvent: number;
  /** Per event, TCP payload (MQTT) alone. */
  mqttPerEvent: number;
  messages: number;
}

/**
 * Vitals at 1 Hz for `seconds`, into compact and plain forwarders side by side, each over its own
 * emulated link to the same mosquitto; counted from the first event to the last acknowledged.
 */
export async function wireVitals(seconds: number): Promise<{ compact: WireRun; plain: WireRun }> {
  const broker = await mosquitto("set_tcp_nodelay true");
  const lanes = await Promise.all(
    (["compact", "plain"] as const).map(async (name) => {
      const link = await slowLink(broker.port, { bitPerS: LINK.bitPerS, delayMs: LINK.rttMs / 2 });
      const outbox = newOutbox();
      const fwd = forwarder(link.url, outbox, name === "compact" ? COMPACT : PLAIN, name, `bench-${name}`);
      const center = await connectCenter(broker.url, `bench-${name}`);
      let delivered = 0;
      fwd.on("delivered", (n) => (delivered += n));
      fwd.start();
      return {
        name,
        link,
        outbox,
        fwd,
        center,
        delivered: () => delivered,
        from: { up: link.counted().up, down: link.counted().down },
      };
    }),
  );
  try {
    await until(() => lanes.every((l) => l.fwd.state === "connected"), 10_000, "both uplinks connected");
    await new Promise((r) => setTimeout(r, 500)); // the connection's own packets (CONNACK, SUBACK, status) have crossed
    for (const l of lanes) l.from = l.link.counted();
    for (let i = 0; i < seconds; i++) {
      const at = Date.now();
      for (const l of lanes) void l.outbox.append([stamp(monitorVitals(i), DEV.monitor!, "bench", clock)]);
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - at))));
    }
    await until(() => lanes.every((l) => l.delivered() >= seconds), 30_000, "every vitals event acknowledged");
    const runs = lanes.map((l): WireRun => {
      const now = l.link.counted();
      const d = {
        up: {
          bytes: now.up.bytes - l.from.up.bytes,
          segments: now.up.segments - l.from.up.segments,
          wireBytes: now.up.wireBytes - l.from.up.wireBytes,
        },
        down: {
          bytes: now.down.bytes - l.from.down.bytes,
          segments: now.down.segments - l.from.down.segments,
          wireBytes: now.down.wireBytes - l.from.down.wireBytes,
        },
      };
      return {
        events: seconds,
        wirePerEvent: sum(d, "wireBytes") / seconds,
        mqttPerEvent: sum(d, "bytes") / seconds,
        messages: l.center.messages.filter((m) => m.topic.includes("/ev/")).length,
      };
    });
    return { compact: runs[0]!, plain: runs[1]! };
  } finally {
    for (const l of lanes) {
      await l.center.close();
      await l.fwd.stop();
      l.outbox.close();
      await l.link.close();
    }
    await broker.stop();
  }
}

export interface DrainRun {
  events: number;
  seconds: number;
  perS: number;
  wireBytes: number;
  /** With compact: an ECG appended once a tenth of the backlog was through. */
  ecg?: { eventS: number; fileS: number; fileBytes: number; backlogLeft: number };
}

/** Fills an outbox with `seconds` of the full set, as its drivers would have committed it (their own devices, stamps). */
async function backlog(outbox: Outbox, seconds: number): Promise<number> {
  const random = prng(16);
  let n = 0;
  for (let from = 0; from < seconds; from += 600) {
    const batch: Promise<unknown>[] = [];
    for (let s = from; s < Math.min(seconds, from + 600); s++)
      for (const { dev, draft } of secondOfTheSet(s, random)) {
        batch.push(outbox.append([stamp(draft, dev, "bench", clock)]));
        n++;
      }
    await Promise.all(batch);
  }
  outbox.checkpoint();
  return n;
}

/**
 * Drains `seconds` of the full set from a filled outbox over the link: events/s from connected to
 * the last acknowledged. With `ecg`, that file's ecg12 event and chunks are appended once a tenth of
 * the backlog is through, and timed to the center.
 */
export async function drain(seconds: number, compact: boolean, ecg?: Buffer): Promise<DrainRun> {
  const broker = await mosquitto("set_tcp_nodelay true");
  const link = await slowLink(broker.port, { bitPerS: LINK.bitPerS, delayMs: LINK.rttMs / 2 });
  // The backlog was stored over the hours before the link came back: its events are older than
  // batchWaitS, so no batch of it waits for company (as a backlog filled seconds ago would).
  let age = seconds * 1000;
  const outbox = newOutbox(() => age);
  const center = await connectCenter(broker.url, "bench");
  const wire = compact ? COMPACT : PLAIN;
  const fwd = forwarder(link.url, outbox, wire, compact ? "drain-compact" : "drain-plain");
  try {
    const events = await backlog(outbox, seconds);
    age = 0;
    let delivered = 0;
    let t0 = 0;
    fwd.on("delivered", (n) => (delivered += n));
    fwd.on("state", (s) => {
      if (s === "connected" && t0 === 0) t0 = performance.now();
    });
    fwd.start();
    let result: DrainRun["ecg"];
    let extra = 0;
    if (ecg) {
      await until(() => delivered >= events / 10, 600_000, "a tenth of the backlog through");
      // As intake commits it (src/events/intake.ts): the cart driver's event, its original file named and compressed.
      const x = handleEcgFile(ecg, ecgCartOptions.parse({ dir: "/unused" }));
      if (!x.ok) throw new Error(`the bench's ECG does not decode: ${x.error.message}`);
      const event = stamp(x.events[0]!, DEV.cart!, "bench", clock);
      const chunks = wire.compact ? gzipChunks(ecg, chunkBytesFor(wire.maxMessageBytes)) : undefined;
      event.body = {
        ...(event.body as object),
        original: {
          contentType: "application/dicom",
          bytes: ecg.length,
          sha256: createHash("sha256").update(ecg).digest("hex"),
          ...(chunks ? { encoding: "gzip" } : {}),
        },
      };
      const at = performance.now();
      await outbox.append([event], { blobs: [{ eventId: event.id, bytes: ecg, chunks }] });
      const parts = outbox.deliveryOf(event.id)!.parts;
      extra = 1 + parts;
      const blobs = () =>
        center.messages.filter((m) => m.topic.startsWith(`vitalgate/v1/bench/blob/${event.id}/`)).length;
      await until(() => center.events.some((e) => e.id === event.id), 120_000, "the new ECG's event at the center");
      const eventS = (performance.now() - at) / 1000;
      await until(() => blobs() >= parts, 120_000, "the new ECG's file at the center");
      result = {
        eventS,
        fileS: (performance.now() - at) / 1000,
        fileBytes: ecg.length,
        backlogLeft: events - delivered,
      };
    }
    await until(() => delivered >= events + extra, 3_600_000, "the backlog drained");
    const drained = (performance.now() - t0) / 1000;
    const counted = link.counted();
    return { events, seconds: drained, perS: events / drained, wireBytes: sum(counted, "wireBytes"), ecg: result };
  } finally {
    await fwd.stop();
    outbox.close();
    await center.close();
    await link.close();
    await broker.stop();
  }
}
