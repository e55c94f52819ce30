// `vitalgate simulate medibus-vent`: a Dräger ventilator on MEDIBUS, on a serial port (a PTY, or a
// port wired to the gateway's) or as a serial server on TCP. It only answers: what it says is the
// synthetic device of ./synthetic.ts (written from the MEDIBUS definition, not recorded: no public
// capture of a Dräger device exists). This file moves bytes and reads the clock.
import { medibusFramer } from "../../protocols/medibus/index.ts";
import { defineSimulator, untilAborted, type SimulatorLine } from "../../src/devices/simulator.ts";
import { medibusDevice } from "./synthetic.ts";

export interface MedibusVentilatorOptions {
  /** The synthetic alarm is on for the first half of each cycle (default 60 s). */
  alarmCycleMs?: number;
  /** Each command heard ("ICC", "measured data", ...) and whether it was answered. */
  onCommand?: (command: string, answered: boolean) => void;
}

/** Runs until aborted; returns the number of answers sent. */
export async function medibusVentilator(
  line: SimulatorLine,
  o: MedibusVentilatorOptions,
  signal?: AbortSignal,
): Promise<number> {
  const device = medibusDevice({ alarmCycleMs: o.alarmCycleMs });
  let framer = medibusFramer();
  let answered = 0;
  line.onOpen(() => {
    // a new line (a replugged cable, a new client): the old link and any torn message are gone
    device.reset();
    framer = medibusFramer();
  });
  line.onData((chunk) => {
    for (const r of framer.push(chunk)) {
      if (!("frame" in r)) continue;
      const { reply, command } = device.receive(r.frame, Date.now());
      if (command !== undefined) o.onCommand?.(command, reply !== undefined);
      if (reply && line.write(reply) > 0) answered++;
    }
  });
  await untilAborted(signal);
  return answered;
}

export const simulator = defineSimulator<MedibusVentilatorOptions>({
  plays: "a Dräger ventilator (MEDIBUS)",
  describe:
    "a Dräger ventilator on MEDIBUS (19200 8E1 by default):\nanswers ICC, NOP, measured data, settings, alarms and\ndevice id with synthetic values (written from the spec)",
  // the Evita's MEDIBUS port: 19200 8E1
  link: { type: "line", baudRate: 19200, serial: { dataBits: 8, parity: "even", stopBits: 1 }, clients: "latest" },
  fromFlags: (_f, say) => ({
    options: {
      onCommand: (command, ok) => {
        if (command === "ICC" || !ok) say.err(`command: ${command}${ok ? "" : " (not answered: no ICC yet)"}`);
      },
    },
    what: "synthetic values (written from the spec, not a patient)",
  }),
  run: medibusVentilator,
  counts: "answer(s) sent",
});
