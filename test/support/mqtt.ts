// A subscriber standing in for the county center: collects what the gateway publishes.
import mqtt, { type MqttClient } from "mqtt";
import type { Envelope } from "../../src/events.ts";

export interface Center {
  client: MqttClient;
  events: Envelope[];
  /** Every message by topic, in arrival order. */
  messages: { topic: string; payload: Buffer; retain: boolean }[];
  waitFor(predicate: () => boolean, timeoutMs?: number, what?: string): Promise<void>;
  /** An event's original file put back together from its blob chunks, once all have come. */
  original(eventId: string): Buffer | undefined;
  close(): Promise<void>;
}

export async function connectCenter(url: string, gw: string, options: mqtt.IClientOptions = {}): Promise<Center> {
  const client = await mqtt.connectAsync(url, { clientId: `center-${Math.random().toString(16).slice(2)}`, reconnectPeriod: 200, ...options });
  const events: Envelope[] = [];
  const messages: Center["messages"] = [];
  client.on("message", (topic, payload, packet) => {
    messages.push({ topic, payload, retain: packet.retain });
    if (topic.startsWith(`vitalgate/v1/${gw}/ev/`)) events.push(JSON.parse(payload.toString()) as Envelope);
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
      return Buffer.concat(Array.from({ length: parts }, (_, i) => byPart.get(i + 1)!));
    },
    close: () => client.endAsync(true),
  };
}

/** Polls a condition every 20 ms; fails with a message naming what never happened. */
export async function waitFor(predicate: () => boolean, timeoutMs = 20_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
