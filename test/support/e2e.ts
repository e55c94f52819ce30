// The end-to-end rig: the gateway daemon as a child process (SQLite on a real file), a mosquitto
// broker as a process with persistence (or the gateway's embedded aedes), an HL7 monitor port over
// real MLLP/TCP, a subscriber with a persistent session standing in for the county center; and a
// monitor that sends numbered ORU messages, resending until acknowledged AA.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import type { Envelope, VitalsBody } from "../../src/events/model.ts";
import { pcd01Message } from "../../drivers/hl7-pcd01/synthetic.ts";
import { MllpSender } from "./mllp-sender.ts";
import { CENTER_LOGIN, connectCenter, embeddedBrokerYaml, type Center } from "./mqtt.ts";
import { freePort, mosquitto, startDaemon, type Daemon, type Mosquitto } from "./processes.ts";

export interface Rig {
  dir: string;
  broker: Mosquitto;
  center: Center;
  hl7Port: number;
  webPort: number;
  configPath: string;
  daemon: Daemon;
  /** kill -9 of the gateway, then a start on the same configuration and state. */
  restart(): Promise<void>;
}

export interface RigOptions {
  /** No uplink: the center subscribes to the gateway's own aedes broker, as on a box nobody has provisioned yet. */
  embedded?: boolean;
  /** More `uplink:` entries, as indented YAML lines (e.g. `  receipts: true\n`). */
  uplink?: string;
  /** More `devices:` entries, as YAML lines. */
  devices?: string;
  /** The uplink through this (a proxy in front of the broker's port, e.g. test/support/mqtt-gate.ts): its URL. */
  via?: (brokerPort: number) => Promise<string>;
}

/** The gateway with a monitor port (`monitor-bed1`, hl7-pcd01) and a center; stopped through `cleanup`. */
export async function daemonRig(cleanup: (() => unknown)[], o: RigOptions = {}): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), "vg-e2e-"));
  // A persistent broker, as the center's is: the center's session survives the broker's restart.
  const broker = await mosquitto(`persistence true\npersistence_location ${dir}/\nautosave_interval 1\n`);
  cleanup.push(() => broker.stop());
  const embeddedPort = await freePort();
  const hl7Port = await freePort();
  const webPort = await freePort();
  const configPath = join(dir, "vitalgate.yaml");
  const uplink = o.embedded
    ? embeddedBrokerYaml(embeddedPort)
    : // Compact, as deployed; vitals wait 0.2 s for company rather than 10 (the tests wait for them).
      `uplink:\n  url: ${o.via ? await o.via(broker.port) : broker.url}\n  protocolVersion: 5\n  backoff: { initialMs: 100, maxMs: 1000 }\n  batchWaitS: 0.2\n${o.uplink ?? ""}`;
  writeFileSync(
    configPath,
    `gateway: { id: e2e, role: ambulance }
stateDir: ${dir}/state
${uplink}
web: { host: 127.0.0.1, port: ${webPort} }
log: { level: info, pretty: false }
devices:
  - id: monitor-bed1
    driver: hl7-pcd01
    options: { mode: listen, host: 127.0.0.1, port: ${hl7Port}, maxFrameBytes: 65536, timezone: "+08:00" }
${o.devices ?? ""}`,
  );
  const daemon = await startDaemon(configPath, webPort);
  cleanup.push(() => r.daemon.kill9());
  const center = await connectCenter(o.embedded ? `mqtt://127.0.0.1:${embeddedPort}` : broker.url, "e2e", {
    ...(o.embedded ? { ...CENTER_LOGIN, protocolVersion: 4 } : { protocolVersion: 5 }),
    clean: false,
    clientId: `center-${Date.now()}`,
    ...(o.embedded ? {} : { properties: { sessionExpiryInterval: 3600 } }),
  });
  cleanup.push(() => center.close());
  const r: Rig = {
    dir,
    broker,
    center,
    hl7Port,
    webPort,
    configPath,
    daemon,
    async restart() {
      await r.daemon.kill9();
      r.daemon = await startDaemon(configPath, webPort);
    },
  };
  return r;
}

export const T0 = Date.UTC(2026, 10, 23, 7, 0, 0);
/** Message i carries heart rate 1000 + i, so every event names the message it came from. */
export const message = (i: number) =>
  pcd01Message({
    controlId: `MSG${i}`,
    time: new Date(T0 + i * 1000),
    values: { hr: 1000 + i, spo2: 97, nibp: { sys: 120, dia: 80, mean: 93 } },
  });
export const hrOf = (e: Envelope) =>
  e.kind === "vitals"
    ? ((e.body as VitalsBody).observations.find((o) => o.code === "MDC_ECG_HEART_RATE")?.value as number | undefined)
    : undefined;
/** The numbers of the messages the center has events of. */
export const messagesAt = (center: Center) =>
  new Set(
    center.events
      .map(hrOf)
      .filter((v) => v !== undefined)
      .map((v) => v - 1000),
  );

/**
 * Sends messages from..to-1 (`build(i)`, with control id `MSG<i>`; default `message`) like a real
 * monitor: one at a time, resending until acknowledged AA.
 */
export async function sendAll(
  r: { hl7Port: number },
  from: number,
  to: number,
  acked: Set<number>,
  onAck?: (i: number) => Promise<void> | void,
  build: (i: number) => string = message,
): Promise<void> {
  let sender: MllpSender | null = null;
  for (let i = from; i < to;) {
    try {
      sender ??= await MllpSender.connect(r.hl7Port);
      const ack = await sender.send(build(i), 10_000);
      expect(ack).toMatchObject({ code: "AA", controlId: `MSG${i}` });
      acked.add(i);
      await onAck?.(i);
      i++;
    } catch {
      sender?.close();
      sender = null;
      await new Promise((res) => setTimeout(res, 50)); // the gateway is restarting: try again
    }
  }
  sender?.close();
}
