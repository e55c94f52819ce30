// A TCP relay on loopback that tests put between two programs (a slow link, a stalling uplink, a
// tablet's Wi-Fi): each connection it accepts is paired with one to the target, and the two end
// together. What flows between them is the caller's to decide (`pair`).
import { connect, createServer, type Socket } from "node:net";

export interface Relay {
  port: number;
  /** Ends every pair now open. */
  dropAll(): void;
  close(): Promise<void>;
}

/** `accept` may refuse a connection (it is closed at once); `pair` wires client and target. */
export async function relay(
  target: { port: number; host?: string },
  pair: (client: Socket, target: Socket) => void,
  accept: () => boolean = () => true,
): Promise<Relay> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    if (!accept()) return void client.destroy();
    const to = connect({ host: target.host ?? "127.0.0.1", port: target.port });
    sockets.add(client).add(to);
    const end = () => {
      client.destroy();
      to.destroy();
      sockets.delete(client);
      sockets.delete(to);
    };
    client.on("error", end).on("close", end);
    to.on("error", end).on("close", end);
    pair(client, to);
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  const dropAll = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
  };
  return {
    port: (server.address() as { port: number }).port,
    dropAll,
    async close() {
      dropAll();
      await new Promise((res) => server.close(res));
    },
  };
}
