// A subscriber standing in for the county center: collects what the gateway publishes.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import type { Envelope } from "../../src/events/model.ts";
import { readEventMessage } from "../../src/uplink/wire.ts";
import { anyEvent } from "../../src/events/schemas.ts";
import { findDriver } from "../../drivers/registry.ts";
import { gunzipSync } from "node:zlib";

export interface Center {
  client: MqttClient;
  events: Envelope[];
  /** Every message by topic, in arrival order. */
  messages: { topic: string; payload: Buffer; retain: boolean }[];
  waitFor(predicate: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  /** An event's original file put back together from its blob chunks, once all have come (gunzipped when its event says gzip). */
  original(eventId: string): Buffer | undefined;
  close(): Promise<void>;
}

export async function connectCenter(url: string, gw: string, options: mqtt.IClientOptions = {}): Promise<Center> {
  const client = await mqtt.connectAsync(url, {
    clientId: `center-${Math.random().toString(16).slice(2)}`,
    reconnectPeriod: 200,
    ...options,
  });
  const events: Envelope[] = [];
  const messages: Center["messages"] = [];
  /** Events that do not match the published schema: the test fails when the center closes. */
  const unlike: string[] = [];
  client.on("message", (topic, payload, packet) => {
    messages.push({ topic, payload, retain: packet.retain });
    // As docs/protocol.md tells a center: gunzip what is gzip, a batch is an array of events.
    if (!topic.startsWith(`vitalgate/v1/${gw}/ev/`)) return;
    const got = readEventMessage(topic, payload);
    events.push(...got);
    // Every event a gateway publishes in a test is one the published schemas (docs/schemas/v1) take:
    // the real drivers' and the gateway's own. Not the stand-ins of tests of the core (test drivers,
    // test/support/events.ts's events of gateway "test-gw").
    for (const e of got) {
      if (e.gw === "test-gw" || (e.dev?.driver !== "vitalgate" && !findDriver(e.dev?.driver))) continue;
      const r = anyEvent.safeParse(e);
      if (!r.success)
        unlike.push(`${e.kind} ${e.id}: ${r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
    }
  });
  await client.subscribeAsync(`vitalgate/v1/${gw}/#`, { qos: 1 });
  return {
    client,
    events,
    messages,
    waitFor: (predicate, timeoutMs = 20_000, what = "condition") => waitFor(predicate, timeoutMs, what),
    original(eventId) {
      const chunks = messages.filter((m) => m.topic.startsWith(`vitalgate/v1/${gw}/blob/${eventId}/`));
      const parts = Number(chunks[0]?.topic.split("/").at(-1));
      if (!parts) return undefined;
      const byPart = new Map(chunks.map((m) => [Number(m.topic.split("/").at(-2)), m.payload]));
      if (byPart.size !== parts) return undefined;
      const joined = Buffer.concat(Array.from({ length: parts }, (_, i) => byPart.get(i + 1)!));
      const event = events.find((e) => e.id === eventId);
      if (!event) return undefined; // its encoding is in the event
      const encoding = (event?.body as { original?: { encoding?: string } } | undefined)?.original?.encoding;
      return encoding === "gzip" ? gunzipSync(joined) : joined;
    },
    close: async () => {
      await client.endAsync(true);
      if (unlike.length > 0)
        throw new Error(`events the published schemas (docs/schemas/v1) refuse:\n${unlike.slice(0, 5).join("\n")}`);
    },
  };
}

/** The center bridge's login on a gateway's embedded broker, as `embeddedBrokerYaml` configures it. */
export const CENTER_LOGIN = { username: "center-bridge", password: "center-bridge-test-password" };

let centerPasswordFile: string | undefined;

/**
 * The `embeddedBroker:` line of a test configuration: on loopback at `port`, with the center bridge
 * CENTER_LOGIN (its password file written once per test process).
 */
export function embeddedBrokerYaml(port: number): string {
  if (!centerPasswordFile) {
    centerPasswordFile = join(mkdtempSync(join(tmpdir(), "vg-center-login-")), "password");
    writeFileSync(centerPasswordFile, `${CENTER_LOGIN.password}\n`, { mode: 0o600 });
  }
  return `embeddedBroker: { host: 127.0.0.1, port: ${port}, center: { username: ${CENTER_LOGIN.username}, passwordFile: "${centerPasswordFile}" } }`;
}

/** The county center on a gateway's embedded broker: logged in as its center bridge. */
export function connectEmbeddedCenter(
  config: { gateway: { id: string }; embeddedBroker: { port: number } },
  options: mqtt.IClientOptions = {},
): Promise<Center> {
  return connectCenter(`mqtt://127.0.0.1:${config.embeddedBroker.port}`, config.gateway.id, {
    protocolVersion: 4,
    ...CENTER_LOGIN,
    ...options,
  });
}

/** Polls a condition every 20 ms; fails with a message naming what never happened. */
export async function waitFor(predicate: () => boolean, timeoutMs = 20_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
