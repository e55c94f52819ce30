// `vitalgate simulate medibus-vent`: a Dräger ventilator on MEDIBUS, on a serial port (a PTY, or a
// port wired to the gateway's) or as a serial server on TCP. It only answers: what it says is the
// synthetic device of drivers/medibus-vent/synthetic.ts (written from the MEDIBUS definition, not
// recorded: no public capture of a Dräger device exists). This file moves bytes and reads the clock.
import { medibusFramer } from "../../protocols/medibus/index.ts";
import { medibusDevice } from "../../drivers/medibus-vent/synthetic.ts";
import { openLine, untilAborted, type Line, type SimulatedLineOptions } from "./simulate-line.ts";

export interface MedibusSimulateOptions extends SimulatedLineOptions {
  /** Default 19200 (8E1, the Evita's MEDIBUS port). */
  baudRate?: number;
  /** The synthetic alarm is on for the first half of each cycle (default 60 s). */
  alarmCycleMs?: number;
  /** Each command heard ("ICC", "measured data", ...) and whether it was answered. */
  onCommand?: (command: string, answered: boolean) => void;
}

/** Runs until aborted; returns the number of answers sent. */
export async function simulateMedibusVentilator(o: MedibusSimulateOptions): Promise<number> {
  const device = medibusDevice({ alarmCycleMs: o.alarmCycleMs });
  let framer = medibusFramer();
  let answered = 0;
  // 19200 8E1 by default: the Evita's MEDIBUS port
  const line: Line = await openLine({
    path: o.path,
    baudRate: o.baudRate ?? 19200,
    serial: { dataBits: 8, parity: "even", stopBits: 1 },
    tcpPort: o.tcpPort,
    host: o.host,
    clients: "latest",
    onListening: o.onListening,
    onData,
    onOpen: fresh,
  });
  function fresh() {
    // a new line (a replugged cable, a new client): the old link and any torn message are gone
    device.reset();
    framer = medibusFramer();
  }
  function onData(chunk: Buffer) {
    for (const r of framer.push(chunk)) {
      if (!("frame" in r)) continue;
      const { reply, command } = device.receive(r.frame, Date.now());
      if (command !== undefined) o.onCommand?.(command, reply !== undefined);
      if (reply && line.write(reply) > 0) answered++;
    }
  }
  try {
    await untilAborted(o.signal);
  } finally {
    await line.close();
  }
  return answered;
}
