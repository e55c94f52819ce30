// A serial port transport (RS-232, usually a USB adapter): opened exclusively, reopened with backoff
// after an unplug, found again by its USB identity.
import type { SerialPort } from "serialport";
import { backoffDelay } from "../backoff.ts";
import type { SerialSettings } from "../devices/driver.ts";
import { findSerialPort, openSerialPort } from "./serial-ports.ts";
import type { Connection, Transport, TransportOptions } from "./transport.ts";
import { TransportError, serialClosed, serialError } from "./transport-errors.ts";

/**
 * A serial port, opened exclusively. An unplugged adapter (or a vanished PTY) closes the port; it is
 * opened again with backoff, found by its USB identity when `match` is set, since it may come back
 * under another name.
 */
export function serialPort(settings: SerialSettings, options: TransportOptions): Transport {
  let port: SerialPort | null = null;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  return {
    start(events) {
      let attempt = 0;
      let path = settings.path;
      const retry = (error: TransportError) => {
        port = null;
        if (stopped) return;
        const inMs = backoffDelay(attempt++, options.backoff, options.random);
        events.state({ state: "retrying", address: path, inMs, error });
        timer = setTimeout(open, inMs);
      };
      const open = () => {
        timer = null;
        if (settings.match) path = findSerialPort(settings.match)?.path ?? settings.path;
        events.state({ state: "connecting", address: path });
        openSerialPort(path, settings).then(
          (p) => {
            if (stopped) return void p.close();
            attempt = 0;
            port = p;
            events.state({ state: "connected", address: path });
            events.connection(serialConnection(p, path));
            p.once("close", (e?: Error & { disconnected?: boolean }) => retry(serialClosed(path, !!e?.disconnected)));
          },
          (err: Error) => retry(serialError(err, path)),
        );
      };
      open();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      const p = port;
      port = null;
      if (p?.isOpen) await new Promise<void>((resolve) => p.close(() => resolve()));
    },
  };
}

function serialConnection(p: SerialPort, path: string): Connection {
  return {
    remote: `serial:${path}`,
    write: (bytes) => {
      if (p.isOpen) p.write(Buffer.from(bytes));
    },
    pause: () => p.pause(),
    resume: () => p.resume(),
    close: () => {
      if (p.isOpen) p.close();
    },
    onData: (listener) => p.on("data", listener),
    onClose: (listener) => p.once("close", () => listener()),
  };
}
