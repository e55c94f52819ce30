// Network senders seen but not paired, for the pairing page. A monitor set up to send HL7 to "the
// box" connects before anyone has told the box about it; so does a cart sending its ECG by DICOM.
// The watch listens on the `pairing.listen` ports no device uses and hands each connection to the
// driver whose sender detection (src/devices/sender.ts) its first byte opens: the driver reads who
// the sender is and what it says (decoded, for a preview), and refuses its data the way its protocol
// makes the sender keep it and try again later (HL7 AE, a DICOM association rejected transient, an
// ASTM bid answered NAK, nothing to a one-way NMEA talker): we have stored nothing, so nothing may be
// acknowledged. A connection no driver recognises is closed with a log line.
//
// Bounded: at most `maxConnections` open (more are closed at once), `maxBytes` read per connection,
// `idleMs` of silence before a connection is closed, `maxSenders` remembered (the longest quiet is
// forgotten first), `previewSize` events kept per sender, each capped in size (listen.ts), each
// identity field cut to 64 characters.
import { createServer, type Server, type Socket } from "node:net";
import { ConnectionGate, describeRefusals } from "../transports/connection-gate.ts";
import type { Logger } from "pino";
import type { DriverDefinition } from "../devices/driver.ts";
import type { SenderHeard, SenderListener } from "../devices/sender.ts";
import { previewOf, type DraftPreview } from "./listen.ts";

export interface Sender {
  /** Stable while the sender keeps its identity: protocol, port and who it says it is (or its address). */
  key: string;
  /** The protocol, as its driver's sender detection calls it: "hl7", "dicom", "astm", "nmea". */
  protocol: string;
  /** The sender's address. */
  remote: string;
  /** Our port it connected to. */
  port: number;
  firstSeen: string;
  lastSeen: string;
  /** Messages (HL7), associations (DICOM), bids (ASTM ENQ) or sentences (NMEA) received. */
  messages: number;
  /** Who it says it is, as its driver reads it: HL7 MSH-3/MSH-4 and the model from its observations; DICOM AE titles. */
  identity: Record<string, string>;
  /** The last few events decoded from it. */
  preview: DraftPreview[];
  /** The driver and options to pair it with, when one fits. */
  suggestion?: { driver: string; options: Record<string, unknown> };
  /** What to do when no driver fits as it is set up. */
  note?: string;
}

export interface SenderWatchOptions {
  host: string;
  maxSenders: number;
  maxConnections: number;
  /** Most connections from one address at once. */
  maxPerAddress: number;
  idleMs: number;
  /** Most bytes read from one connection before it is closed. */
  maxBytes: number;
  /** Events kept per sender for the preview. */
  previewSize: number;
}

export interface SenderWatchDeps {
  log: Logger;
  nowMs(): number;
  /** The drivers whose sender detection recognises a connection by its first byte. */
  drivers: readonly DriverDefinition<unknown>[];
}

/** Said to an unpaired HL7 sender in its AE (MSA-3, ERR-8). */
export const NOT_PAIRED = "device not paired on this gateway";

/** The longest identity field kept (MSH-3 may be long with its components). */
const MAX_IDENTITY = 64;

const clip = (s: string) => s.trim().slice(0, MAX_IDENTITY);

interface Listener {
  server: Server | null;
  sockets: Set<Socket>;
  retry?: NodeJS.Timeout;
  warned: boolean;
}

export class SenderWatch {
  readonly #o: SenderWatchOptions;
  readonly #deps: SenderWatchDeps;
  readonly #listeners = new Map<number, Listener>();
  readonly #senders = new Map<string, Sender>();
  /** Every port's connections, bounded together; refusals and senders closed for what they sent, summed up in the log. */
  readonly #gate: ConnectionGate;

  constructor(options: SenderWatchOptions, deps: SenderWatchDeps) {
    this.#o = options;
    this.#deps = deps;
    this.#gate = new ConnectionGate(options, (r) =>
      deps.log.warn(
        { component: "pairing", code: "VG_PAIRING_REFUSED", refused: r.refused, addresses: r.addresses },
        `unpaired senders: ${describeRefusals(r)}`,
      ),
    );
  }

  /** The ports listened on now. */
  get ports(): number[] {
    return [...this.#listeners.keys()];
  }

  /**
   * Listens on exactly `ports`: opens new ones, and releases the others at once (their connections
   * closed, their senders forgotten: a device now owns that port).
   */
  async setPorts(ports: readonly number[]): Promise<void> {
    const wanted = new Set(ports);
    for (const port of [...this.#listeners.keys()]) if (!wanted.has(port)) await this.#release(port);
    for (const port of wanted) if (!this.#listeners.has(port)) this.#listen(port);
    await Promise.all(
      [...this.#listeners.values()].map((l) =>
        l.server?.listening
          ? undefined
          : new Promise<void>((resolve) => {
              if (!l.server) return resolve();
              l.server.once("listening", () => resolve());
              l.server.once("error", () => resolve());
            }),
      ),
    );
  }

  list(): Sender[] {
    return [...this.#senders.values()].sort((a, b) => b.lastSeen.localeCompare(a.lastSeen));
  }

  async stop(): Promise<void> {
    await this.setPorts([]);
    this.#gate.close();
  }

  #listen(port: number): void {
    const l: Listener = { server: null, sockets: new Set(), warned: false };
    this.#listeners.set(port, l);
    const open = () => {
      l.retry = undefined;
      const server = createServer((socket) => this.#connection(socket, port, l));
      l.server = server;
      server.once("error", (err: NodeJS.ErrnoException) => {
        // Taken by another program (or not permitted): tried again, said once.
        if (!l.warned)
          this.#deps.log.warn(
            { code: "VG_PAIRING_LISTEN", port, err: err.code ?? err.message },
            `cannot listen for unpaired senders on port ${port}; trying again every 10 s`,
          );
        l.warned = true;
        l.server = null;
        if (this.#listeners.get(port) === l) l.retry = setTimeout(open, 10_000);
      });
      server.listen(port, this.#o.host, () => {
        if (l.warned) this.#deps.log.info({ port }, "listening for unpaired senders after all");
      });
    };
    open();
  }

  async #release(port: number): Promise<void> {
    const l = this.#listeners.get(port);
    if (!l) return;
    this.#listeners.delete(port);
    clearTimeout(l.retry);
    for (const s of l.sockets) s.destroy();
    for (const [key, sender] of this.#senders) if (sender.port === port) this.#senders.delete(key);
    const server = l.server;
    if (server?.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #connection(socket: Socket, port: number, l: Listener): void {
    const remote = socket.remoteAddress ?? "?";
    const log = this.#deps.log.child({
      component: "pairing",
      remote: `tcp:${remote}:${socket.remotePort ?? "?"}`,
      port,
    });
    socket.on("error", () => undefined); // a reset is a close
    if (!this.#gate.admit(socket)) return;
    l.sockets.add(socket);
    socket.once("close", () => l.sockets.delete(socket));
    let heard: ((chunk: Buffer) => void) | undefined;
    let bytes = 0;
    socket.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > this.#o.maxBytes)
        return void this.#gate.turnOut(
          socket,
          `VG_PAIRING_TOO_MUCH: a sender sent more than the ${this.#o.maxBytes} bytes an unpaired sender may`,
        );
      heard ??= this.#recognise(chunk[0]!, socket, port, remote);
      if (!heard)
        return void this.#gate.turnOut(
          socket,
          `VG_PAIRING_UNKNOWN: not ${this.#protocolNames()} (first byte 0x${chunk[0]!.toString(16).padStart(2, "0")})`,
        );
      try {
        heard(chunk);
      } catch (err) {
        // a decoder's bug must not take the watch down; the message text is not logged (patient data)
        log.error(
          { code: "VG_PAIRING_BUG", error: (err as Error)?.name },
          "unpaired sender closed: its data could not be handled",
        );
        socket.destroy();
      }
    });
  }

  /** "HL7/MLLP, DICOM, ASTM E1381 or NMEA 0183": what the drivers recognise. */
  #protocolNames(): string {
    const names = this.#deps.drivers.flatMap((d) => (d.sender ? [d.sender.name] : []));
    return names.length > 1 ? `${names.slice(0, -1).join(", ")} or ${names.at(-1)}` : (names[0] ?? "any protocol");
  }

  /** The handler of a connection whose first byte a driver's sender detection recognises. */
  #recognise(first: number, socket: Socket, port: number, remote: string): ((chunk: Buffer) => void) | undefined {
    const driver = this.#deps.drivers.find((d) => d.sender?.opens(first));
    if (!driver) return undefined;
    const detection = driver.sender!;
    const listener: SenderListener = detection.listen(port);
    return (chunk) => {
      for (const h of listener.hear(chunk, { nowMs: this.#deps.nowMs(), reason: NOT_PAIRED })) {
        if (h.notIt !== undefined) return void this.#gate.turnOut(socket, h.notIt);
        this.#heard(h, driver.id, detection.protocol, port, remote);
        if (h.reply && h.end) socket.end(h.reply);
        else if (h.reply) socket.write(h.reply);
        else if (h.end) socket.end();
      }
    };
  }

  /** What a sender showed, kept under who it is. */
  #heard(h: SenderHeard, driver: string, protocol: string, port: number, remote: string): void {
    const who = h.who === undefined ? "" : clip(h.who);
    const s = this.#seen(`${protocol}:${port}:${who || remote}`, protocol, port, remote);
    s.messages += h.messages ?? 1;
    for (const [field, value] of Object.entries(h.identity ?? {})) s.identity[field] = clip(value);
    if (h.events) this.#keep(s, h.events.map(previewOf));
    if (h.pairWith) s.suggestion = { driver, options: h.pairWith };
    if (h.note) s.note = h.note;
  }

  /** The sender under `key`, made (and the longest-quiet forgotten past the cap) on first sight. */
  #seen(key: string, protocol: string, port: number, remote: string): Sender {
    const now = new Date(this.#deps.nowMs()).toISOString();
    let s = this.#senders.get(key);
    if (!s) {
      if (this.#senders.size >= this.#o.maxSenders) {
        const oldest = [...this.#senders.values()].reduce((a, b) => (a.lastSeen <= b.lastSeen ? a : b));
        this.#senders.delete(oldest.key);
      }
      s = { key, protocol, remote, port, firstSeen: now, lastSeen: now, messages: 0, identity: {}, preview: [] };
      this.#senders.set(key, s);
      this.#deps.log.info(
        { component: "pairing", protocol, port, remote },
        "an unpaired sender connected: shown on the pairing page",
      );
    }
    s.lastSeen = now;
    s.remote = remote;
    return s;
  }

  #keep(s: Sender, previews: DraftPreview[]): void {
    s.preview.push(...previews);
    if (s.preview.length > this.#o.previewSize) s.preview.splice(0, s.preview.length - this.#o.previewSize);
  }
}
