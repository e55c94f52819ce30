// `vitalgate simulate medibus-vent`: a Dräger ventilator on MEDIBUS, on a serial port (a PTY, or a
// port wired to the gateway's) or as a serial server on TCP. It only answers: what it says is the
// synthetic device of drivers/medibus-vent/synthetic.ts (written from the MEDIBUS definition, not
// recorded: no public capture of a Dräger device exists). This file moves bytes and reads the clock.
import { createServer, type Socket } from "node:net";
import { SerialPort } from "serialport";
import { medibusFramer } from "../protocols/medibus/index.ts";
import { medibusDevice } from "../drivers/medibus-vent/synthetic.ts";

export interface MedibusSimulateOptions {
  /** A serial port to talk on: the device end of a PTY pair, or a port wired to the gateway's. */
  path?: string;
  /** Default 19200 (8E1, the Evita's MEDIBUS port). */
  baudRate?: number;
  /** Or: listen on this TCP port, as a serial server does (0: any free port); the gateway connects. */
  tcpPort?: number;
  host?: string;
  /** The synthetic alarm is on for the first half of each cycle (default 60 s). */
  alarmCycleMs?: number;
  onListening?: (port: number) => void;
  /** Each command heard ("ICC", "measured data", ...) and whether it was answered. */
  onCommand?: (command: string, answered: boolean) => void;
  signal?: AbortSignal;
}

/** Runs until aborted; returns the number of answers sent. */
export async function simulateMedibusVentilator(o: MedibusSimulateOptions): Promise<number> {
  const device = medibusDevice({ alarmCycleMs: o.alarmCycleMs });
  let framer = medibusFramer();
  let answered = 0;
  const line: Line = o.tcpPort !== undefined
    ? await tcpLine(o.host ?? "127.0.0.1", o.tcpPort, o.onListening, onData, fresh)
    : serialLine(o.path!, o.baudRate ?? 19200, onData, fresh);
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
      if (reply && line.write(reply)) answered++;
    }
  }
  try {
    await new Promise<void>((resolve) => {
      if (o.signal?.aborted) return resolve();
      o.signal?.addEventListener("abort", () => resolve(), { once: true });
    });
  } finally {
    await line.close();
  }
  return answered;
}

interface Line {
  write(bytes: Uint8Array): boolean;
  close(): Promise<void>;
}

/** A serial port (19200 8E1 by default), reopened in the background every 250 ms whenever it is gone. */
function serialLine(path: string, baudRate: number, onData: (chunk: Buffer) => void, onOpen: () => void): Line {
  let port: SerialPort | null = null;
  let opening = false;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const again = () => {
    if (!closed && timer === undefined) timer = setTimeout(() => ((timer = undefined), open()), 250);
  };
  const open = () => {
    if (opening || closed || port) return;
    opening = true;
    const p = new SerialPort({ path, baudRate, dataBits: 8, parity: "even", stopBits: 1, autoOpen: false });
    p.on("error", () => undefined); // a write into a vanished PTY: seen as "close"
    p.on("data", onData);
    p.open((err) => {
      opening = false;
      if (err) return again();
      if (closed) return void p.close();
      port = p;
      onOpen();
      p.once("close", () => {
        if (port === p) port = null;
        again();
      });
    });
  };
  open();
  return {
    write(bytes) {
      if (!port?.isOpen) return false;
      const p = port;
      p.write(Buffer.from(bytes), (err) => {
        if (err && port === p) {
          port = null;
          if (p.isOpen) p.close(() => undefined);
          again();
        }
      });
      return true;
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      const p = port;
      port = null;
      if (p?.isOpen) await new Promise<void>((resolve) => p.close(() => resolve()));
    },
  };
}

/** A TCP server, as a serial server's port in TCP server mode: the latest client is the line. */
async function tcpLine(host: string, port: number, onListening: ((port: number) => void) | undefined, onData: (chunk: Buffer) => void, onOpen: () => void): Promise<Line> {
  let client: Socket | null = null;
  const server = createServer((s) => {
    client?.destroy();
    client = s;
    onOpen();
    s.on("error", () => undefined);
    s.on("data", (d) => {
      if (client === s) onData(d);
    });
    s.on("close", () => {
      if (client === s) client = null;
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  onListening?.(typeof address === "object" && address ? address.port : port);
  return {
    write(bytes) {
      if (!client) return false;
      client.write(bytes);
      return true;
    },
    async close() {
      client?.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
