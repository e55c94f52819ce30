// The lines a simulated device talks over (src/devices/simulator.ts), opened by the runner
// (simulate.ts): a serial port reopened after an unplug, a TCP port served as a serial server's is,
// or a TCP connection to the gateway dialled again whenever it breaks. The simulators in
// drivers/<id>/simulator.ts only decide what to send.
import { connect, createServer, type Socket } from "node:net";
import { SerialPort } from "serialport";
import type { SimulatorLine, SimulatorSerial } from "../devices/simulator.ts";

/** A line as the runner holds it: the device's line, and the runner's close. */
export interface OpenLine extends SimulatorLine {
  close(): Promise<void>;
}

/** What a line tells the device: its listeners, and the line's methods that register them. */
function listeners() {
  const data = new Set<(chunk: Uint8Array) => void>();
  const open = new Set<() => void>();
  const close = new Set<() => void>();
  return {
    data: (chunk: Uint8Array) => data.forEach((l) => l(chunk)),
    open: () => open.forEach((l) => l()),
    close: () => close.forEach((l) => l()),
    register: {
      onData: (l: (chunk: Uint8Array) => void) => void data.add(l),
      onOpen: (l: () => void) => void open.add(l),
      onClose: (l: () => void) => void close.add(l),
    },
  };
}

/** A serial port, reopened in the background (every 250 ms) whenever it is gone (an unplugged adapter, a PTY that vanishes). */
export function serialLine(path: string, baudRate: number, serial: SimulatorSerial = {}): OpenLine {
  const hear = listeners();
  let port: SerialPort | null = null;
  let opening = false;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const again = () => {
    if (!closed && timer === undefined) timer = setTimeout(() => ((timer = undefined), open()), 250);
  };
  const lost = (p: SerialPort) => {
    if (port !== p) return;
    port = null;
    hear.close();
  };
  const open = () => {
    if (opening || closed || port) return;
    opening = true;
    const p = new SerialPort({ path, baudRate, autoOpen: false, ...serial });
    p.on("error", () => undefined); // a write into a vanished PTY: seen as "close"
    p.on("data", hear.data);
    p.open((err) => {
      opening = false;
      if (err) return again();
      if (closed) return void p.close();
      port = p;
      hear.open();
      p.once("close", () => {
        lost(p);
        again();
      });
    });
  };
  open();
  return {
    ...hear.register,
    up: () => port?.isOpen === true,
    write(bytes) {
      if (!port?.isOpen) {
        if (port) lost(port);
        open();
        return 0;
      }
      const p = port;
      p.write(Buffer.from(bytes), (err) => {
        if (err && port === p) {
          lost(p);
          if (p.isOpen) p.close(() => undefined);
          again();
        }
      });
      return 1;
    },
    drop() {
      if (port?.isOpen) port.close(() => undefined);
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

/**
 * A TCP server, as a serial server's port in TCP server mode: with `clients: "all"` every client gets
 * the stream (and is heard); with "latest" a new client replaces the one before it.
 */
export async function tcpServerLine(
  host: string,
  port: number,
  clients: "all" | "latest",
  onListening?: (port: number) => void,
): Promise<OpenLine> {
  const hear = listeners();
  const connected = new Set<Socket>();
  const server = createServer((s) => {
    if (clients === "latest") {
      for (const c of connected) c.destroy();
      connected.clear();
    }
    connected.add(s);
    hear.open();
    s.on("error", () => undefined);
    s.on("data", (d: Buffer) => {
      if (connected.has(s)) hear.data(d);
    });
    s.on("close", () => {
      if (connected.delete(s)) hear.close();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  onListening?.(typeof address === "object" && address ? address.port : port);
  return {
    ...hear.register,
    up: () => [...connected].some((c) => !c.destroyed),
    write(bytes) {
      for (const c of connected) c.write(bytes);
      return connected.size;
    },
    drop() {
      for (const c of connected) c.destroy();
    },
    async close() {
      for (const c of connected) c.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A TCP connection to the gateway, dialled at once and again `redialMs` after it breaks or fails. */
export function tcpClientLine(host: string, port: number, redialMs = 1000): OpenLine {
  const hear = listeners();
  let socket: Socket | null = null;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const dial = () => {
    timer = undefined;
    if (closed) return;
    const s = connect({ host, port });
    s.on("error", () => undefined); // seen as "close"
    s.once("connect", () => {
      socket = s;
      hear.open();
    });
    s.on("data", hear.data);
    s.once("close", () => {
      if (socket === s) {
        socket = null;
        hear.close();
      }
      if (!closed) timer = setTimeout(dial, redialMs);
    });
  };
  dial();
  return {
    ...hear.register,
    up: () => socket !== null && !socket.destroyed,
    write(bytes) {
      if (!socket || socket.destroyed) return 0;
      socket.write(bytes);
      return 1;
    },
    drop() {
      socket?.destroy();
    },
    async close() {
      closed = true;
      clearTimeout(timer);
      socket?.destroy();
    },
  };
}
