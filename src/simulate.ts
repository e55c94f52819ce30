// `vitalgate simulate`: a device talking its real protocol to a gateway, for the demo, for
// technicians checking a box, and for tests. Each simulator is the synthetic message source of a
// driver plus the sending rules of its protocol.
import { connect, type Socket } from "node:net";
import { mllpEncode, mllpFramer } from "../protocols/mllp/index.ts";
import { pcd01Series } from "../drivers/hl7-pcd01/synthetic.ts";

export interface SimulateOptions {
  host: string;
  port: number;
  /** Messages to send; Infinity for until stopped. */
  count: number;
  intervalMs: number;
  /** Called with each message's outcome: the acknowledgement code, or an error. */
  onResult?: (index: number, result: string) => void;
  signal?: AbortSignal;
}

/**
 * An IHE PCD-01 patient monitor: sends synthetic ORU^R01 observation reports over MLLP, one at a
 * time, each after the previous one's acknowledgement (HL7 original mode), resending on no answer.
 * Returns how many were acknowledged AA.
 */
export async function simulateHl7Monitor(o: SimulateOptions): Promise<number> {
  const link = mllpLink(o.host, o.port);
  const messages = pcd01Series(o.count, new Date(), o.intervalMs, `SIM${Date.now().toString(36)}-`);
  let accepted = 0;
  let index = 0;
  try {
    for (const message of messages) {
      if (o.signal?.aborted) break;
      for (;;) {
        const result = await link.send(Buffer.from(message, "utf8")).catch((err: Error) => `error: ${err.message}`);
        o.onResult?.(index, result);
        if (result === "AA") accepted++;
        if (!result.startsWith("error") || o.signal?.aborted) break;
        await delay(Math.max(o.intervalMs, 1000), o.signal); // the gateway is not there: try again
      }
      index++;
      if (index < o.count) await delay(o.intervalMs, o.signal);
    }
  } finally {
    link.close();
  }
  return accepted;
}

/** One MLLP connection, opened on first use and again after it breaks. */
function mllpLink(host: string, port: number) {
  let socket: Socket | null = null;
  const close = () => {
    socket?.destroy();
    socket = null;
  };
  const open = async (): Promise<Socket> => {
    if (socket && !socket.destroyed) return socket;
    const s = connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      s.once("connect", resolve);
      s.once("error", reject);
    });
    s.on("error", () => undefined); // reported through "close"
    socket = s;
    return s;
  };
  /** Sends one message and waits for its ACK; resolves to MSA-1 (AA, AE, AR). */
  const send = async (message: Uint8Array): Promise<string> => {
    const s = await open();
    const framer = mllpFramer({ maxFrameBytes: 1 << 20 });
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error("no acknowledgement within 10 s")), 10_000);
      const onData = (chunk: Buffer) => {
        for (const r of framer.push(chunk)) {
          if (!("frame" in r)) continue;
          const msa = Buffer.from(r.frame).toString("latin1").split("\r").find((seg) => seg.startsWith("MSA"));
          done(undefined, msa?.split(msa[3] ?? "|")[1] ?? "?");
        }
      };
      const onClose = () => done(new Error("connection closed"));
      const done = (err?: Error, code?: string) => {
        clearTimeout(timer);
        s.off("data", onData);
        s.off("close", onClose);
        if (err) {
          close();
          reject(err);
        } else resolve(code!);
      };
      s.on("data", onData);
      s.once("close", onClose);
      s.write(mllpEncode(message));
    });
  };
  return { send, close };
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}
