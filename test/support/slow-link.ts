// A slow link between two programs on loopback, in user space: a TCP relay that carries each
// direction at a set bit rate and one-way delay, for when the kernel has no netem (sch_netem) to
// shape a real interface. Bytes are cut into TCP-sized segments, each costs its bytes plus IP and
// TCP headers at the link's rate, one after another (a segment waits while the link is busy with
// those before it), and comes out `delayMs` after its last bit went in. The queue in front of the
// link is unbounded, like a cellular network's deep buffers; the sender's own window bounds it.
import type { Socket } from "node:net";
import { relay } from "./relay.ts";

export interface SlowLinkOptions {
  bitPerS: number;
  /** One-way delay in each direction: half the round-trip time. */
  delayMs: number;
}

export interface SlowLink {
  port: number;
  url: string;
  /** What crossed each way so far: TCP payload bytes and the segments they were cut into. */
  counted(): { up: Counted; down: Counted };
  close(): Promise<void>;
}

export interface Counted {
  bytes: number;
  segments: number;
  /** Bytes on the link: payload plus IP and TCP headers per segment (pure ACK segments not counted). */
  wireBytes: number;
}

/** Payload bytes per segment (an Ethernet MTU less IP and TCP headers with timestamps). */
const SEGMENT = 1448;
/** Header bytes each segment costs on the link: IPv4 20 + TCP 20 + timestamps 12. */
const HEADERS = 52;

/** One direction of the link: segments in order, each delivered when it has crossed. */
class Direction {
  #freeAt = 0;
  readonly counted: Counted = { bytes: 0, segments: 0, wireBytes: 0 };
  #queue: { at: number; data: Buffer; out: Socket }[] = [];
  #timer: NodeJS.Timeout | null = null;
  readonly #options: SlowLinkOptions;

  constructor(options: SlowLinkOptions) {
    this.#options = options;
  }

  send(data: Buffer, out: Socket): void {
    for (let at = 0; at < data.length; at += SEGMENT) {
      const segment = data.subarray(at, at + SEGMENT);
      this.counted.bytes += segment.length;
      this.counted.segments += 1;
      this.counted.wireBytes += segment.length + HEADERS;
      const start = Math.max(performance.now(), this.#freeAt);
      this.#freeAt = start + ((segment.length + HEADERS) * 8 * 1000) / this.#options.bitPerS;
      this.#queue.push({ at: this.#freeAt + this.#options.delayMs, data: segment, out });
    }
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer || this.#queue.length === 0) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = null;
        const now = performance.now();
        while (this.#queue.length > 0 && this.#queue[0]!.at <= now) {
          const { data, out } = this.#queue.shift()!;
          if (!out.destroyed) out.write(data);
        }
        this.#schedule();
      },
      Math.max(0, this.#queue[0]!.at - performance.now()),
    );
  }

  clear(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#queue = [];
  }
}

/** Listens on 127.0.0.1; each connection is relayed to `target` across the one shared slow link. */
export async function slowLink(
  targetPort: number,
  options: SlowLinkOptions,
  targetHost = "127.0.0.1",
): Promise<SlowLink> {
  const up = new Direction(options);
  const down = new Direction(options);
  const link = await relay({ port: targetPort, host: targetHost }, (client, target) => {
    client.on("data", (d: Buffer) => up.send(d, target));
    target.on("data", (d: Buffer) => down.send(d, client));
  });
  return {
    port: link.port,
    url: `mqtt://127.0.0.1:${link.port}`,
    counted: () => ({ up: { ...up.counted }, down: { ...down.counted } }),
    async close() {
      up.clear();
      down.clear();
      await link.close();
    },
  };
}
