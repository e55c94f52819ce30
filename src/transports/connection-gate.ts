// What every TCP listener of the gateway lets in (issue 13 item 4): the HL7 and line-protocol listeners
// of devices, the DICOM SCP, the watch for unpaired senders. Without it, 32 idle connections from one
// host held an HL7 listener's every slot, and each refused one was a log line (1,400 a second).
//  - a connection silent for `idleMs` is closed (the device reconnects when it has something to say);
//  - at most `maxPerAddress` connections from one address, and `maxConnections` in all;
//  - refused connections are reported as a summary: the first at once, then at most one line per
//    SUMMARY_MS window ("refused N connections from M addresses"), and what is left when the listener stops.
import type { Socket } from "node:net";

export interface GateLimits {
  /** A connection that sends nothing for this long is closed; 0: never. */
  idleMs: number;
  maxConnections: number;
  maxPerAddress: number;
}

/** Refusals since the last report. */
export interface Refusals {
  /** Connections refused, or closed for what they sent (turnOut). */
  refused: number;
  addresses: number;
  /** Why the last one was refused: the listener was full, that address had its most, or what it sent. */
  reason: string;
}

/** One summary line at most per this many ms. */
export const SUMMARY_MS = 10_000;

export class ConnectionGate {
  readonly #limits: GateLimits;
  readonly #report: (r: Refusals) => void;
  readonly #open = new Map<string, number>();
  #total = 0;
  #pending: { refused: number; addresses: Set<string>; reason: string } | null = null;
  #window: NodeJS.Timeout | null = null;

  constructor(limits: GateLimits, report: (r: Refusals) => void) {
    this.#limits = limits;
    this.#report = report;
  }

  /** Lets the socket in (idle timer set, counted until it closes), or closes it and counts the refusal. */
  admit(socket: Socket): boolean {
    const address = socket.remoteAddress ?? "?";
    const mine = this.#open.get(address) ?? 0;
    const reason =
      this.#total >= this.#limits.maxConnections
        ? `the listener has its most connections (${this.#limits.maxConnections})`
        : mine >= this.#limits.maxPerAddress
          ? `that address has its most connections (${this.#limits.maxPerAddress})`
          : undefined;
    if (reason) {
      socket.destroy();
      this.#refused(address, reason);
      return false;
    }
    this.#total++;
    this.#open.set(address, mine + 1);
    socket.once("close", () => {
      this.#total--;
      const left = (this.#open.get(address) ?? 1) - 1;
      if (left === 0) this.#open.delete(address);
      else this.#open.set(address, left);
    });
    if (this.#limits.idleMs > 0) socket.setTimeout(this.#limits.idleMs, () => socket.destroy());
    return true;
  }

  /** Closes an admitted connection for `reason` (it sent what it may not), counted like a refusal. */
  turnOut(socket: Socket, reason: string): void {
    socket.destroy();
    this.#refused(socket.remoteAddress ?? "?", reason);
  }

  /** Reports what was refused since the last line; the listener is stopping. */
  close(): void {
    if (this.#window) clearTimeout(this.#window);
    this.#window = null;
    this.#flush();
  }

  #refused(address: string, reason: string): void {
    if (!this.#window) {
      // the first of a quiet spell is said at once; the rest are summed up when the window ends
      this.#report({ refused: 1, addresses: 1, reason });
      this.#window = setTimeout(() => {
        this.#window = null;
        this.#flush();
      }, SUMMARY_MS).unref();
      return;
    }
    this.#pending ??= { refused: 0, addresses: new Set(), reason };
    this.#pending.refused++;
    if (this.#pending.addresses.size < 10_000) this.#pending.addresses.add(address);
    this.#pending.reason = reason;
  }

  #flush(): void {
    const p = this.#pending;
    this.#pending = null;
    if (p) this.#report({ refused: p.refused, addresses: p.addresses.size, reason: p.reason });
  }
}

/** "refused 23 connections from 1 address: …", for a log line or a device's last error. */
export function describeRefusals(r: Refusals): string {
  return `refused ${r.refused} connection${r.refused === 1 ? "" : "s"} from ${r.addresses} address${r.addresses === 1 ? "" : "es"}: ${r.reason}`;
}
