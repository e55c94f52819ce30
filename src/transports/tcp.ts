// TCP transports: a listener devices connect to (each connection a session), and a client that
// connects to a device or a serial-to-Ethernet server, reconnecting with backoff.
import { createServer, connect, type Server, type Socket } from "node:net";
import { backoffDelay } from "../backoff.ts";
import { ConnectionGate } from "./connection-gate.ts";
import type { Connection, Transport, TransportOptions } from "./transport.ts";
import { connectError, listenError } from "./transport-errors.ts";

function socketConnection(socket: Socket): Connection {
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 30_000);
  const remote = `tcp:${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`;
  return {
    remote,
    write: (bytes) => {
      if (!socket.destroyed) socket.write(bytes);
    },
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    close: () => socket.destroy(),
    onData: (listener) => socket.on("data", listener),
    onClose: (listener) => socket.once("close", listener),
  };
}

export function tcpListener(host: string, port: number, options: TransportOptions): Transport {
  let server: Server | null = null;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const sockets = new Set<Socket>();
  const address = `${host}:${port}`;
  let gate: ConnectionGate | null = null;
  return {
    start(events) {
      let attempt = 0;
      gate = new ConnectionGate(options, (r) => events.turnedAway(r));
      const listen = () => {
        events.state({ state: "starting" });
        const s = createServer((socket) => {
          socket.on("error", () => undefined); // a reset by the peer is a close, reported by onClose
          if (!gate?.admit(socket)) return;
          sockets.add(socket);
          socket.once("close", () => sockets.delete(socket));
          events.connection(socketConnection(socket));
        });
        s.once("error", (err) => {
          // Port in use or not permitted: try again later, the port may be freed.
          server = null;
          if (stopped) return;
          const inMs = backoffDelay(attempt++, options.backoff, options.random);
          events.state({ state: "retrying", address, inMs, error: listenError(err, address) });
          timer = setTimeout(listen, inMs);
        });
        // Held from now, not from "listening": a stop() before the listener is up must still close it.
        server = s;
        s.listen(port, host, () => {
          attempt = 0;
          if (stopped) return void s.close();
          const a = s.address();
          events.state({
            state: "listening",
            address: typeof a === "object" && a ? `${a.address}:${a.port}` : address,
          });
        });
      };
      listen();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      gate?.close();
      for (const s of sockets) s.destroy();
      const s = server;
      server = null;
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
    },
  };
}

export function tcpClient(host: string, port: number, options: TransportOptions): Transport {
  let socket: Socket | null = null;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const address = `${host}:${port}`;
  return {
    start(events) {
      let attempt = 0;
      const dial = () => {
        events.state({ state: "connecting", address });
        const s = connect({ host, port });
        socket = s;
        let lastError: Error | undefined;
        s.on("error", (err) => {
          lastError = err;
        });
        s.once("connect", () => {
          attempt = 0;
          events.state({ state: "connected", address });
          events.connection(socketConnection(s));
        });
        s.once("close", () => {
          socket = null;
          if (stopped) return;
          const inMs = backoffDelay(attempt++, options.backoff, options.random);
          events.state({ state: "retrying", address, inMs, error: connectError(lastError, address) });
          timer = setTimeout(dial, inMs);
        });
      };
      dial();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      socket?.destroy();
      socket = null;
    },
  };
}
