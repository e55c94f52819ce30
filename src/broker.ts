// The embedded MQTT broker (DESIGN.md §7): with no uplink configured, the gateway publishes to an
// aedes broker on loopback, so a box collects, stores and shows data before anyone has set up the
// county center. Local subscribers (a laptop on the box, the tests) read from it.
import { createServer, type Server } from "node:net";
import { Aedes } from "aedes";

export interface EmbeddedBroker {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startEmbeddedBroker(host: string, port: number): Promise<EmbeddedBroker> {
  const broker = await Aedes.createBroker();
  const server: Server = createServer({ noDelay: true }, broker.handle);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
  } catch (err) {
    // The broker's own timers would otherwise keep a daemon that cannot start alive.
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    throw err;
  }
  const actual = (server.address() as { port: number }).port;
  return {
    url: `mqtt://${host}:${actual}`,
    port: actual,
    close: () =>
      new Promise<void>((resolve) => {
        broker.close(() => server.close(() => resolve()));
      }),
  };
}
