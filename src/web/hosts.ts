// The names the page answers to (issue 13 item 8): a browser tricked by DNS rebinding (a site whose
// name the attacker re-points at the box, or at 127.0.0.1 on the box itself) sends that site's name
// in the Host header. Only the configured names, the box's own addresses and host name, and
// localhost are served; anything else is refused before any route runs.
import { hostname, networkInterfaces } from "node:os";

/** The box's addresses are read again at most this often, when a request names one not known yet (DHCP). */
const REFRESH_MS = 10_000;

export class HostAllowList {
  #fixed: Set<string>;
  #addresses = new Set<string>();
  #readMs = -Infinity;
  #nowMs: () => number;

  constructor(names: readonly string[], nowMs: () => number = () => performance.now()) {
    const box = hostname().toLowerCase();
    this.#fixed = new Set([
      "localhost",
      "127.0.0.1",
      "[::1]",
      box,
      `${box}.local`,
      ...names.map((n) => n.toLowerCase()),
    ]);
    this.#nowMs = nowMs;
    this.#read();
  }

  #read(): void {
    this.#addresses = new Set(
      Object.values(networkInterfaces())
        .flat()
        .filter((a) => a !== undefined)
        .map((a) => (a.family === "IPv6" ? `[${a.address.split("%")[0]!.toLowerCase()}]` : a.address)),
    );
    this.#readMs = this.#nowMs();
  }

  /** Whether a request with this Host header is for this box. */
  allows(host: string | undefined): boolean {
    if (!host || !URL.canParse(`http://${host}`)) return false;
    const url = new URL(`http://${host}`);
    if (url.username || url.password || url.pathname !== "/") return false;
    const name = url.hostname.replace(/\.$/, "");
    if (this.#fixed.has(name) || this.#addresses.has(name)) return true;
    if (this.#nowMs() - this.#readMs < REFRESH_MS) return false;
    this.#read();
    return this.#addresses.has(name);
  }
}
