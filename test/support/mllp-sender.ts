// An HL7 sender as a monitor or central station is one: MLLP over real TCP, one message at a time,
// waiting for its acknowledgement (HL7 original mode), resending what was not acknowledged.
import { connect, type Socket } from "node:net";
import { mllpEncode, mllpFramer } from "../../protocols/mllp/index.ts";

export interface Ack {
  /** MSA-1: AA, AE or AR. */
  code: string;
  /** MSA-2: the control id acknowledged. */
  controlId: string;
  /** MSA-3 text and the whole ACK, for assertions. */
  text: string;
  raw: string;
}

export function parseAck(raw: string): Ack {
  const msa = raw.split(/\r\n|\r|\n/).find((s) => s.startsWith("MSA"));
  const fs = raw[3] ?? "|";
  const f = (msa ?? "").split(fs);
  return { code: f[1] ?? "", controlId: f[2] ?? "", text: f[3] ?? "", raw };
}

export class MllpSender {
  #socket: Socket;
  #framer = mllpFramer({ maxFrameBytes: 1 << 20 });
  #waiting: ((ack: Ack | Error) => void)[] = [];
  #acks: Ack[] = [];
  closed = false;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on("data", (chunk) => {
      for (const r of this.#framer.push(chunk)) {
        if ("frame" in r) {
          const ack = parseAck(Buffer.from(r.frame).toString("utf8"));
          const w = this.#waiting.shift();
          if (w) w(ack);
          else this.#acks.push(ack);
        }
      }
    });
    const fail = (err: Error) => {
      this.closed = true;
      for (const w of this.#waiting.splice(0)) w(err);
    };
    socket.on("error", fail);
    socket.on("close", () => fail(new Error("connection closed before the acknowledgement")));
  }

  /** Connects to host:port, from `localAddress` when given (another loopback address: another host to the listener). */
  static connect(port: number, host = "127.0.0.1", localAddress?: string): Promise<MllpSender> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host, ...(localAddress ? { localAddress } : {}) });
      s.once("connect", () => resolve(new MllpSender(s)));
      s.once("error", reject);
    });
  }

  /** Sends raw bytes as they are (no MLLP envelope added). */
  writeRaw(bytes: Uint8Array | string): void {
    this.#socket.write(bytes);
  }

  /** The next acknowledgement, however it arrives. */
  nextAck(timeoutMs = 10_000): Promise<Ack> {
    const queued = this.#acks.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no acknowledgement within ${timeoutMs} ms`)), timeoutMs);
      this.#waiting.push((a) => {
        clearTimeout(timer);
        if (a instanceof Error) reject(a);
        else resolve(a);
      });
    });
  }

  /** Sends one message in an MLLP frame and waits for its acknowledgement. */
  send(message: string | Uint8Array, timeoutMs = 10_000): Promise<Ack> {
    this.#socket.write(mllpEncode(typeof message === "string" ? Buffer.from(message, "utf8") : message));
    return this.nextAck(timeoutMs);
  }

  close(): void {
    this.#socket.destroy();
  }
}
