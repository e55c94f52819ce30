// The driver contract (DESIGN.md §2). A driver is a declarative object: what it is, which options it
// takes, which transport the core must open for it, which codec frames its bytes, and how one frame
// maps to events and to the acknowledgements the device expects. It never opens a port or socket.
import type { z } from "zod";
import type { CodecError, Framer } from "../../protocols/codec.ts";
import type { DeviceKind, EventDraft, EventKind } from "../events/model.ts";
import type { FrameContext } from "./frame-context.ts";
import type { SenderDetection } from "./sender.ts";
import type { SimulatorDefinition } from "./simulator.ts";

export type { FrameContext };

/** A transport the core opens, watches and reopens on the driver's behalf. */
export type TransportSpec =
  /** We listen; devices (monitors, central stations) connect to us. Each connection is a session. */
  | { type: "tcp-listen"; host: string; port: number }
  /** We connect to a device (or a serial-to-Ethernet server such as a Moxa NPort or ser2net) that listens. */
  | { type: "tcp-connect"; host: string; port: number }
  /** An RS-232 port, usually through a USB adapter. */
  | ({ type: "serial" } & SerialSettings)
  /**
   * A folder a device drops files into (an ECG cart's export share, a USB stick's copy): each file,
   * once complete, is one message; it moves to done/ once committed, or to rejected/ with the reason.
   */
  | {
      type: "folder";
      dir: string;
      stableMs: number;
      scanMs: number;
      /** Larger files are rejected unread. */
      maxBytes: number;
      /** A file still changing this long after it appeared is set aside in rejected/ (default 10 min). */
      maxSettleMs?: number;
    }
  /**
   * A DICOM Storage SCP (C-STORE receiver) for ECG carts that push over the network: accepts the
   * 12-lead, General and Ambulatory ECG waveform SOP classes (and C-ECHO), each stored object handed
   * over as one file, answered with success only once committed (see src/transports/dicom-scp.ts). `aeTitle`
   * is ours (the called AE title carts must use); `callingAeTitles`, when given, are the only carts
   * let in; `maxObjectBytes` bounds one received object (default 64 MiB).
   */
  | {
      type: "dicom-scp";
      host: string;
      port: number;
      aeTitle: string;
      callingAeTitles?: string[];
      maxObjectBytes?: number;
    };

export interface SerialSettings {
  /** A stable path (/dev/serial/by-id/...) or /dev/ttyUSB0; with `match`, only the first guess. */
  path: string;
  baudRate: number;
  dataBits: 5 | 6 | 7 | 8;
  parity: "none" | "even" | "odd" | "mark" | "space";
  stopBits: 1 | 1.5 | 2;
  /** Hardware (RTS/CTS) flow control. */
  rtscts: boolean;
  /** Software (XON/XOFF) flow control. */
  xonxoff: boolean;
  /**
   * Finds the adapter by its USB identity when it comes back under another name after a replug
   * (ttyUSB0 → ttyUSB1). Hex ids as lsusb prints them ("0403", "6001").
   */
  match?: { vendorId?: string; productId?: string; serialNumber?: string };
}

/**
 * Something a message showed that the gateway counts per device and says once in its log: demo data,
 * a vendor's "no value" marker read as absent, a code that disagrees with itself. Never patient data.
 */
export interface DriverNotice {
  /** Stable code, counted per device by code (`conditions` in the device's status). */
  code: string;
  /** Logged at warn the first time this device shows it. */
  message: string;
}

/** The outcome of handling one frame. */
export type Exchange =
  | {
      ok: true;
      /** Events to commit. The device is acknowledged only after they are. */
      events: EventDraft[];
      /** Counted and logged once the events are committed. */
      notices?: DriverNotice[];
      /**
       * The device's own identity of the message (HL7 MSH-10, ASTM H.3, a DICOM SOP Instance UID):
       * carried in each event (`msg`), and how a resend after a lost acknowledgement is recognised.
       */
      messageId?: string;
      /**
       * UTC the frame reports as now (a GPS receiver's RMC/ZDA): handed to the time service with
       * the moment the frame arrived. Unix ms.
       */
      utcFix?: number;
      /** With utcFix: the receiver says its UTC uses the leap-second count from the satellites, not a firmware default. */
      leapSecondsKnown?: true;
      /** Sent to the device once the events are committed (HL7 AA). */
      accept?: Uint8Array;
      /** Sent when the store cannot accept them (HL7 AE), with the reason. */
      refuse?: (reason: string) => Uint8Array;
    }
  | {
      ok: false;
      /** What is wrong with the message, for the device's state and the log (never patient data). */
      error: CodecError;
      /** Negative acknowledgement for the device (HL7 AR), when its protocol has one. */
      reply?: Uint8Array;
    };

/** A text in the page's two languages, zh-CN first. */
export interface Text {
  zh: string;
  en: string;
}

/**
 * How the pairing form names each option, by its path ("port", "match.vendorId"): a label in both
 * languages and a line of help in zh-CN (the English help is the option's description in the
 * driver's zod schema, so it is written once). Every option of the schema has one; a test checks it.
 */
export type OptionLabels = Record<string, Text & { helpZh: string }>;

export interface DriverDefinition<O = unknown> {
  /** Registry id, used in config (`driver: hl7-pcd01`) and in every event's `dev.driver`. */
  id: string;
  kind: DeviceKind;
  /** The kinds of event it makes (listed in the status message, docs/protocol.md). */
  sends: readonly EventKind[];
  /** Shown on the web page. */
  title: Text;
  /** The device's options; defaults fill what the config leaves out. */
  options: z.ZodType<O>;
  /** The options as the pairing form shows them. */
  labels: OptionLabels;
  /**
   * What to set on the device itself beyond what follows from its transport (the page says the
   * address, port, AE title or serial settings, src/pairing/setup.ts): where the device's own menu
   * has it, as its manual names it.
   */
  setupHint?(options: O): Text | undefined;
  transport(options: O): TransportSpec;
  /**
   * A fresh framer for each connection. Drivers whose transport hands over whole messages (a
   * watched folder: one file, one message) have none.
   */
  framer?(options: O): Framer;
  /**
   * How long the device may stay quiet before it counts as silent (a fault shown in its state), in
   * ms; none for devices that only speak when they have something to say.
   */
  silentAfterMs?(options: O): number | undefined;
  /** Maps one frame to events and replies. Pure. Drivers that need memory across frames use `session`. */
  handle?(frame: Uint8Array, options: O, context: FrameContext): Exchange;
  /**
   * For protocols whose meaning spans frames (a GPS fix assembled from a burst of sentences,
   * throttled positions): one session per connection, made when it opens, holding that memory.
   * Still no I/O and no clock of its own.
   */
  session?(options: O): DriverSession;
  /** The negative acknowledgement for a framing error (e.g. an oversized frame), if any. */
  rejectFrame?(error: CodecError, options: O, context: FrameContext): Uint8Array | undefined;
  /**
   * How `vitalgate decode` finds frames in a capture file, when captures are not stored as they
   * travel on the wire (HL7 logs hold bare messages rather than MLLP frames). Defaults to `framer`.
   */
  captureFramer?(options: O): Framer;
  /**
   * For the pairing page: the driver's options (as a config would write them; defaults fill the
   * rest) for a device on `path`, a serial port of this box, at `baudRate` when one is known.
   * Drivers of devices on an RS-232 line have it (drivers/serial-line.ts).
   */
  serialOptions?(path: string, baudRate?: number): Record<string, unknown>;
  /**
   * How a listener recognises this driver's device on a serial port (src/pairing/probe.ts): the
   * speeds to try, most likely first, and how many frames make a clear match: frames read without
   * error (`evidence: "frames"`, for checksummed frames such as NMEA sentences), or only frames the
   * driver would acknowledge or decoded events from (`"answers"`, for byte streams such as ASTM's,
   * whose receiver passes over bytes it does not expect without calling them errors).
   * Only for devices that talk unprompted: a probe never writes to the port (an analyser must not be
   * acknowledged for data we do not keep), so a device that speaks only when polled cannot be
   * found this way and has none. Needs `serialOptions`.
   */
  probe?: { bauds: readonly number[]; matchFrames: number; evidence: "frames" | "answers" };
  /**
   * How the pairing page's watch recognises this driver's device among unpaired network senders by
   * its first byte, reads who it is and refuses its data so it keeps it (src/devices/sender.ts).
   * For devices that connect to us over TCP.
   */
  sender?: SenderDetection;
  /**
   * The driver's simulator of its device (`vitalgate simulate <id>`, src/devices/simulator.ts), loaded
   * on demand so the daemon never loads it: `() => import("./simulator.ts").then((m) => m.simulator)`.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  simulator?(): Promise<SimulatorDefinition<any>>;
}

export interface DriverSession {
  handle(frame: Uint8Array, context: FrameContext): Exchange;
  /** Bytes to send as soon as the connection opens (a request for periodic data, a link initialisation). */
  open?(context: FrameContext): Uint8Array[];
  /**
   * Called every `tickMs` while connected: bytes to send (a poll, a keep-alive), and the moment to
   * judge timeouts by `context.nowMs` (a device that did not answer, a link layer waiting too long).
   */
  tick?(context: FrameContext): Uint8Array[];
  tickMs?: number;
}

/** Declares a driver: checks it can handle frames one way or the other, and gives it its type. */
export function defineDriver<O>(definition: DriverDefinition<O>): DriverDefinition<O> {
  if (!definition.handle === !definition.session)
    throw new Error(`driver ${definition.id}: give exactly one of handle or session`);
  if (definition.probe && !definition.serialOptions)
    throw new Error(`driver ${definition.id}: a probe needs serialOptions`);
  return definition;
}

/** The way a connection's frames are handled: the driver's session, or its stateless handle. */
export function openSession<O>(driver: DriverDefinition<O>, options: O): DriverSession {
  if (driver.session) return driver.session(options);
  const handle = driver.handle!;
  return { handle: (frame, context) => handle(frame, options, context) };
}
