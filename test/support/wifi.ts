// A tablet's Wi-Fi between the browser and the gateway: a relay that can drop every connection and
// refuse new ones for a while (a gap in a moving ambulance), then carry on.
import { relay } from "./relay.ts";

export interface Wifi {
  /** The page's address through the relay. */
  base: string;
  /** Cuts every connection and refuses new ones until `restore`. */
  drop(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function wifiTo(targetPort: number): Promise<Wifi> {
  let up = true;
  const link = await relay(
    { port: targetPort },
    (client, target) => {
      client.pipe(target);
      target.pipe(client);
    },
    () => up,
  );
  return {
    base: `http://127.0.0.1:${link.port}`,
    drop() {
      up = false;
      link.dropAll();
    },
    restore() {
      up = true;
    },
    close: () => link.close(),
  };
}
