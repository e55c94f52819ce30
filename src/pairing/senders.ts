// Network senders seen but not paired, for the pairing page. A monitor set up to send HL7 to "the
// box" connects before anyone has told the box about it; so does a cart sending its ECG by DICOM.
// The watch listens on the `pairing.listen` ports no device uses, tells each sender by its first
// bytes, records who it is and what it says (decoded with the matching driver, for a preview), and
// refuses its data in the way its protocol makes the sender keep it and try again later: we have
// stored nothing, so nothing may be acknowledged.
//
// First byte → protocol, and the refusal:
//  - 0x0B (MLLP start block): HL7 v2 over MLLP. Each message is answered AE, "device not paired on
//    this gateway" (HL7 v2 original-mode acknowledgement: AE, application error, the message was not
//    processed; the sender keeps it and sends it again), never AA.
//  - 0x01 (A-ASSOCIATE-RQ, DICOM PS3.8 §9.3.2): the called and calling AE titles are read from its
//    fixed part (bytes 10-25 and 26-41), and the association rejected transient (A-ASSOCIATE-RJ,
//    PS3.8 §9.3.4: result 2 rejected-transient, source 3 service-provider presentation related,
//    reason 1 temporary-congestion), so the cart keeps the ECG queued and calls again.
//  - 0x05 (ENQ, ASTM E1381's establishment phase): an analyser bidding to send results: answered
//    NAK (the receiver is not ready), after which it waits at least 10 s and bids again.
//  - '$' or '!': NMEA 0183 sentences, from a GPS behind a serial server in TCP client mode; one-way,
//    nothing to answer.
// Anything else is closed with a log line.
//
// Bounded: at most `maxConnections` open (more are closed at once), `maxBytes` read per connection,
// `idleMs` of silence before a connection is closed, `maxSenders` remembered (the longest quiet is
// forgotten first), `previewSize` events kept per sender, each capped in size (listen.ts).
import { createServer, type Server, type Socket } from "node:net";
import { ConnectionGate, describeRefusals } from "../transports/connection-gate.ts";
import type { Logger } from "pino";
import { mllpEncode } from "../../protocols/mllp/index.ts";
import { HL7_ERROR, buildAck, formatHl7Time, parseHl7 } from "../../protocols/hl7v2/index.ts";
import { openSession, type DriverDefinition } from "../devices/driver.ts";
import { listenOnly, previewOf, type DraftPreview } from "./listen.ts";

export type SenderProtocol = "hl7" | "dicom" | "astm" | "nmea";

export interface Sender {
  /** Stable while the sender keeps its identity: protocol, port and who it says it is (or its address). */
  key: string;
  protocol: SenderProtocol;
  /** The sender's address. */
  remote: string;
  /** Our port it connected to. */
  port: number;
  firstSeen: string;
  lastSeen: string;
  /** Messages (HL7), associations (DICOM), bids (ASTM ENQ) or sentences (NMEA) received. */
  messages: number;
  /** Who it says it is: HL7 MSH-3/MSH-4 and the model from its observations; DICOM AE titles. */
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
  findDriver(id: string): DriverDefinition<unknown> | undefined;
}

/** Said to an unpaired HL7 sender in its AE (MSA-3, ERR-8). */
export const NOT_PAIRED = "device not paired on this gateway";

const NAK = 0x15;
/** A-ASSOCIATE-RQ's fixed part up to the calling AE title (PS3.8 §9.3.2, Table 9-11). */
const ASSOCIATE_RQ_HEAD = 42;
/** A-ASSOCIATE-RJ (PS3.8 §9.3.4, Table 9-21): type 3, length 4, reserved, result 2 (transient), source 3, reason 1. */
const ASSOCIATE_RJ_TRANSIENT = Uint8Array.of(0x03, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x02, 0x03, 0x01);
/** The longest identity field kept (MSH-3 may be long with its components). */
const MAX_IDENTITY = 64;

const clip = (s: string) => s.trim().slice(0, MAX_IDENTITY);

/** One connection's protocol handler: fed the bytes, may answer on the socket. */
type Handler = (chunk: Buffer) => void;

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
    let handler: Handler | undefined;
    let bytes = 0;
    socket.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > this.#o.maxBytes)
        return void this.#gate.turnOut(
          socket,
          `VG_PAIRING_TOO_MUCH: a sender sent more than the ${this.#o.maxBytes} bytes an unpaired sender may`,
        );
      handler ??= this.#sniff(chunk[0]!, socket, port, remote);
      if (!handler)
        return void this.#gate.turnOut(
          socket,
          `VG_PAIRING_UNKNOWN: not HL7/MLLP, DICOM, ASTM or NMEA (first byte 0x${chunk[0]!.toString(16).padStart(2, "0")})`,
        );
      try {
        handler(chunk);
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

  #sniff(first: number, socket: Socket, port: number, remote: string): Handler | undefined {
    switch (first) {
      case 0x0b:
        return this.#hl7(socket, port, remote);
      case 0x01:
        return this.#dicom(socket, port, remote);
      case 0x05:
        return this.#astm(socket, port, remote);
      case 0x24: // $
      case 0x21: // !
        return this.#nmea(port, remote);
      default:
        return undefined;
    }
  }

  /** The sender under `key`, made (and the longest-quiet forgotten past the cap) on first sight. */
  #seen(key: string, protocol: SenderProtocol, port: number, remote: string): Sender {
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

  #hl7(socket: Socket, port: number, remote: string): Handler | undefined {
    const driver = this.#deps.findDriver("hl7-pcd01");
    if (!driver?.framer) return undefined;
    const options = driver.options.parse({ port });
    const framer = driver.framer(options);
    const session = openSession(driver, options);
    return (chunk) => {
      for (const r of framer.push(chunk)) {
        if ("error" in r) continue; // bytes between frames; the byte cap bounds a sender that only sends those
        const nowMs = this.#deps.nowMs();
        const parsed = parseHl7(r.frame);
        const header = parsed.ok ? parsed.message.header : parsed.header;
        if (!parsed.ok && parsed.error.code === "HL7_EMPTY") continue;
        if (header.messageCode === "ACK") continue; // acknowledging an acknowledgement would start a loop
        const app = clip(header.sendingApplication);
        const facility = clip(header.sendingFacility);
        const s = this.#seen(`hl7:${port}:${app ? `${app}|${facility}` : remote}`, "hl7", port, remote);
        s.messages++;
        if (app) s.identity.sendingApplication = app;
        if (facility) s.identity.sendingFacility = facility;
        const exchange = session.handle(r.frame, { nowMs });
        if (exchange.ok) {
          const model = exchange.events.find((e) => e.model)?.model;
          if (model) s.identity.model = clip(model);
          this.#keep(s, exchange.events.map(previewOf));
        }
        s.suggestion = { driver: "hl7-pcd01", options: { port } };
        socket.write(
          mllpEncode(
            buildAck({
              message: header,
              code: "AE",
              error: { code: HL7_ERROR.APPLICATION_INTERNAL, text: NOT_PAIRED },
              time: formatHl7Time(new Date(nowMs)),
              application: "VITALGATE",
            }),
          ),
        );
      }
    };
  }

  #dicom(socket: Socket, port: number, remote: string): Handler {
    let head = Buffer.alloc(0);
    let answered = false;
    return (chunk) => {
      if (answered) return; // the rest of the request is not read
      head = Buffer.concat([head, chunk]);
      if (head.length < ASSOCIATE_RQ_HEAD) return;
      answered = true;
      // PDU length: at least the request's fixed part (68 bytes after the 6-byte header, Table 9-11)
      if (head.readUInt32BE(2) < 68)
        return void this.#gate.turnOut(socket, "VG_PAIRING_UNKNOWN: a DICOM association request too short to be one");
      const called = clip(head.subarray(10, 26).toString("latin1"));
      const calling = clip(head.subarray(26, 42).toString("latin1"));
      const s = this.#seen(`dicom:${port}:${calling || remote}`, "dicom", port, remote);
      s.messages++;
      s.identity.calledAeTitle = called;
      s.identity.callingAeTitle = calling;
      const options: Record<string, unknown> = { source: "dicom", port };
      if (called) options.aeTitle = called;
      if (calling) options.callingAeTitles = [calling];
      s.suggestion = { driver: "ecg-cart", options };
      // the requestor closes the transport after an A-ASSOCIATE-RJ (PS3.8 §9.1.3); ending ours too
      socket.end(ASSOCIATE_RJ_TRANSIENT);
    };
  }

  #astm(socket: Socket, port: number, remote: string): Handler {
    const s = this.#seen(`astm:${port}:${remote}`, "astm", port, remote);
    s.note =
      "an ASTM analyser that connects to us: set it (or its serial server) to listen as a TCP server, then pair it with astm-analyzer, transport tcp, its address and port";
    return (chunk) => {
      for (const byte of chunk) {
        if (byte !== 0x05) continue;
        this.#seen(s.key, "astm", port, remote).messages++;
        socket.write(Uint8Array.of(NAK));
      }
    };
  }

  #nmea(port: number, remote: string): Handler | undefined {
    const driver = this.#deps.findDriver("nmea-gps");
    if (!driver) return undefined;
    const s = this.#seen(`nmea:${port}:${remote}`, "nmea", port, remote);
    s.note =
      "a GPS through a serial server in TCP client mode: set the serial server to TCP server mode, then pair it with nmea-gps, transport tcp, its address and port";
    const listener = listenOnly(driver, driver.options.parse({ port: "-" }), this.#deps.nowMs, this.#o.previewSize);
    return (chunk) => {
      const before = listener.tally.ok;
      listener.push(chunk);
      this.#seen(s.key, "nmea", port, remote).messages += listener.tally.ok - before;
      s.preview = [...listener.tally.sample];
    };
  }
}
