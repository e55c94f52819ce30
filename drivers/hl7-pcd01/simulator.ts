// `vitalgate simulate hl7-pcd01`: an IHE PCD-01 patient monitor that connects to the gateway and sends
// synthetic ORU^R01 observation reports (./synthetic.ts) over MLLP, one at a time, each after the
// previous one's acknowledgement (HL7 v2 original mode), sending it again on no answer.
import { mllpEncode, mllpFramer } from "../../protocols/mllp/index.ts";
import { defineSimulator, delay, untilUp, type SimulatorLine } from "../../src/devices/simulator.ts";
import { pcd01Series } from "./synthetic.ts";

/** How long the monitor waits for the gateway's ACK (and for a connection) before it tries again. */
const ANSWER_MS = 10_000;

export interface Hl7MonitorOptions {
  messages: Iterable<string>;
  /** Pause between messages; after a failure the monitor waits at least 1 s. */
  intervalMs: number;
  /** Each attempt's outcome: MSA-1 (AA, AE, AR), or "error: ..." (it is sent again). */
  onResult?: (index: number, result: string) => void;
}

/** Returns how many messages were acknowledged AA. */
export async function hl7Monitor(line: SimulatorLine, o: Hl7MonitorOptions, signal?: AbortSignal): Promise<number> {
  const acks = ackReader(line);
  let accepted = 0;
  let index = 0;
  for (const message of o.messages) {
    if (signal?.aborted) break;
    if (index > 0) await delay(o.intervalMs, signal);
    for (;;) {
      const result = await acks.send(message, signal);
      if (signal?.aborted) break;
      o.onResult?.(index, result);
      if (result === "AA") accepted++;
      if (!result.startsWith("error")) break;
      await delay(Math.max(o.intervalMs, 1000), signal); // the gateway is not there: try again
    }
    index++;
  }
  return accepted;
}

/** Sends a message on the line and resolves to its ACK's MSA-1, or to "error: ..." (the connection dropped). */
function ackReader(line: SimulatorLine) {
  let framer = mllpFramer({ maxFrameBytes: 1 << 20 });
  let waiting: ((result: string) => void) | undefined;
  const settle = (result: string) => {
    const w = waiting;
    waiting = undefined;
    w?.(result);
  };
  line.onOpen(() => (framer = mllpFramer({ maxFrameBytes: 1 << 20 })));
  line.onClose(() => settle("error: connection closed"));
  line.onData((chunk) => {
    for (const r of framer.push(chunk)) {
      if (!("frame" in r)) continue;
      const msa = Buffer.from(r.frame)
        .toString("latin1")
        .split("\r")
        .find((seg) => seg.startsWith("MSA"));
      settle(msa?.split(msa[3] ?? "|")[1] ?? "?");
    }
  });
  return {
    async send(message: string, signal?: AbortSignal): Promise<string> {
      if (!(await untilUp(line, ANSWER_MS, signal))) return "error: cannot connect to the gateway";
      const answer = new Promise<string>((resolve) => (waiting = resolve));
      line.write(mllpEncode(Buffer.from(message, "utf8")));
      const timer = setTimeout(() => settle("error: no acknowledgement within 10 s"), ANSWER_MS);
      const abort = () => settle("error: stopped");
      signal?.addEventListener("abort", abort, { once: true });
      const result = await answer;
      clearTimeout(timer);
      signal?.removeEventListener("abort", abort);
      if (result.startsWith("error")) line.drop(); // a gateway that did not answer: dial it afresh
      return result;
    },
  };
}

export const simulator = defineSimulator<Hl7MonitorOptions>({
  plays: "an HL7 PCD-01 monitor",
  describe: "a patient monitor sending synthetic IHE PCD-01\nobservations to a gateway (default 127.0.0.1:2575, 1/s)",
  link: { type: "dial", port: 2575 },
  count: true,
  intervalMs: 1000,
  fromFlags: (f, say) => ({
    options: {
      messages: pcd01Series(f.count ?? Infinity, new Date(f.nowMs), f.intervalMs, `SIM${f.nowMs.toString(36)}-`),
      intervalMs: f.intervalMs,
      onResult: (i, result) => say.out(`message ${i + 1}: ${result}`),
    },
    what: `synthetic PCD-01 observations every ${f.intervalMs} ms (not a patient)`,
  }),
  run: hl7Monitor,
  counts: "message(s) acknowledged AA",
});
