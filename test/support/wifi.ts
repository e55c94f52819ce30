// A tablet's Wi-Fi between the browser and the gateway: a TCP relay on loopback that can drop every
// connection and refuse new ones for a while (a gap in a moving ambulance), then carry on.
import { connect, createServer, type Socket } from "node:net";

export interface Wifi {
  /** The page's address through the relay. */
  base: string;
  /** Cuts every connection and refuses new ones until `restore`. */
  drop(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function wifiTo(targetPort: number): Promise<Wifi> {
  const sockets = new Set<Socket>();
  let up = true;
  const server = createServer((client) => {
    if (!up) return void client.destroy();
    const target = connect({ host: "127.0.0.1", port: targetPort });
    sockets.add(client).add(target);
    const end = () => {
      client.destroy();
      target.destroy();
      sockets.delete(client);
      sockets.delete(target);
    };
    client.on("error", end).on("close", end);
    target.on("error", end).on("close", end);
    client.pipe(target);
    target.pipe(client);
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  const dropAll = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    base: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    drop() {
      up = false;
      dropAll();
    },
    restore() {
      up = true;
    },
    async close() {
      dropAll();
      await new Promise((res) => server.close(res));
    },
  };
}
