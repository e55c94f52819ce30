// A TCP proxy between the gateway and its broker, on loopback, that stalls the uplink at an exact
// point of a transfer: it lets through the first `passBlobChunks` blob chunks the gateway publishes
// (`…/blob/{eventId}/{part}/{parts}`; or the first messages on the topics `counts` names), then
// holds back everything the gateway sends after that (the broker never sees it, so nothing held is
// acknowledged), as a 3G link that stops mid-file does.
// `open()` lets every later connection through untouched. The broker's answers always pass.
import { relay } from "./relay.ts";

export interface MqttGate {
  port: number;
  url: string;
  /** Blob chunks let through so far. */
  readonly passed: number;
  /** MQTT packets held back (never forwarded), of which blob chunks (or messages `counts` names). */
  readonly held: { packets: number; blobChunks: number };
  /** From now on, forward everything. */
  open(): void;
  close(): Promise<void>;
}

/** Length of an MQTT fixed header and the packet's total length, once enough bytes are there. */
function packetLength(buf: Buffer): { header: number; total: number } | undefined {
  let remaining = 0;
  for (let i = 1; i <= 4; i++) {
    if (buf.length <= i) return undefined;
    const b = buf[i]!;
    remaining += (b & 0x7f) * 128 ** (i - 1);
    if ((b & 0x80) === 0) return { header: 1 + i, total: 1 + i + remaining };
  }
  throw new Error("malformed MQTT remaining length");
}

export async function mqttGate(
  brokerPort: number,
  passBlobChunks: number,
  counts: (topic: string) => boolean = (topic) => topic.includes("/blob/"),
): Promise<MqttGate> {
  let limit = passBlobChunks;
  let passed = 0;
  const held = { packets: 0, blobChunks: 0 };
  const gate = await relay({ port: brokerPort }, (client, broker) => {
    broker.pipe(client);
    let pending = Buffer.alloc(0);
    let stalled = false;
    client.on("data", (data: Buffer) => {
      pending = Buffer.concat([pending, data]);
      for (let guard = 0; guard < 100_000; guard++) {
        const len = packetLength(pending);
        if (!len || pending.length < len.total) break;
        const packet = pending.subarray(0, len.total);
        pending = pending.subarray(len.total);
        let blob = false;
        if (packet[0]! >> 4 === 3) {
          const topicLength = packet.readUInt16BE(len.header);
          blob = counts(packet.toString("utf8", len.header + 2, len.header + 2 + topicLength));
        }
        if (!stalled && blob) {
          if (passed < limit) passed++;
          else stalled = true;
        }
        if (stalled) {
          held.packets++;
          if (blob) held.blobChunks++;
        } else {
          broker.write(packet);
        }
      }
    });
  });
  return {
    port: gate.port,
    url: `mqtt://127.0.0.1:${gate.port}`,
    get passed() {
      return passed;
    },
    held,
    open() {
      limit = Infinity;
    },
    close: () => gate.close(),
  };
}
