// The `dicom-scp` transport: a DICOM Storage SCP (C-STORE receiver, PS3.4 Annex B) for ECG carts
// that push over the network (DESIGN.md §2, §5). The upper layer (associations, PDUs, DIMSE
// messages) is dcmjs-dimse's (decision 0005); what is ours is the policy:
//  - only the ECG waveform storage SOP classes, and Verification (C-ECHO, which technicians use to
//    test the link), in Explicit or Implicit VR Little Endian, are accepted at negotiation;
//    anything else is refused there, and an association offering nothing acceptable is rejected
//    with the proposed SOP class UIDs named in the device's state;
//  - each stored object is put back into a Part 10 file (a file meta group naming its SOP class,
//    instance and transfer syntax, then the data set exactly as received) and handed to the
//    device runner as a FileDrop, one at a time, like a file dropped into a watched folder;
//  - the C-STORE response waits for the runner: success only once committed, a failure status
//    otherwise (statuses below);
//  - bad input (bytes that are not DICOM, a huge declared PDU, an object over the size limit, a
//    sender that vanishes mid-object) closes that one connection, is reported, and the listener
//    keeps serving. Reports carry codes, remote addresses, AE titles and UIDs of SOP classes, never
//    anything from inside a data set.
import { createHash } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { Writable } from "node:stream";
import { backoffDelay } from "../backoff.ts";
import { ConnectionGate } from "./connection-gate.ts";
import type { FailureCode } from "../errors.ts";
import { TransportError, listenError } from "./transport-errors.ts";
import type { TransportSpec } from "../devices/driver.ts";
import type { FileDrop, Transport, TransportOptions } from "./transport.ts";

export type DicomScpSpec = Extract<TransportSpec, { type: "dicom-scp" }>;

/** Storage SOP classes accepted (PS3.4 Annex B.5), by UID. */
export const ECG_STORAGE_SOP_CLASSES: Readonly<Record<string, string>> = {
  "1.2.840.10008.5.1.4.1.1.9.1.1": "12-Lead ECG Waveform Storage",
  "1.2.840.10008.5.1.4.1.1.9.1.2": "General ECG Waveform Storage",
  "1.2.840.10008.5.1.4.1.1.9.1.3": "Ambulatory ECG Waveform Storage",
};
export const VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1";
export const EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1";
export const IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2";
/** Transfer syntaxes accepted, in order of preference when an SCU proposes both. */
const TRANSFER_SYNTAXES = [EXPLICIT_VR_LITTLE_ENDIAN, IMPLICIT_VR_LITTLE_ENDIAN];

/**
 * The C-STORE response statuses we answer (PS3.4 Annex B.2.3, Table B.2-1; general statuses of
 * PS3.7 Annex C).
 */
export const CStoreStatus = {
  /** Success: committed to the store (or stored before: the same object sent again). */
  Success: 0x0000,
  /** Refused: Out of Resources (A7xx): the store could not take it now (quota, disk full), or it is over our size limit. */
  OutOfResources: 0xa700,
  /** Error: Cannot understand (Cxxx): the driver could not read the object; sending it again will not help. */
  CannotUnderstand: 0xc000,
  /** Refused: SOP Class not supported (PS3.7 C.5.9): a C-STORE whose SOP class is not the presentation context's, or not an ECG one. */
  SopClassNotSupported: 0x0122,
  /** Failure: Processing failure (PS3.7 C.5.x): our own fault (a driver bug, a runner that failed); the cart may try again. */
  ProcessingFailure: 0x0110,
} as const;

/** Largest PDU we take from a sender; we announce 64 KiB, this leaves room for lax SCUs. */
export const MAX_PDU_BYTES = 1 << 20;
/** Announced in A-ASSOCIATE-AC: the largest PDU we want to receive. */
const ANNOUNCED_MAX_PDU = 65_536;
const DEFAULT_MAX_OBJECT_BYTES = 64 << 20;
/** Identifies this implementation in the file meta group (a UUID-derived UID, PS3.5 B.2). */
export const IMPLEMENTATION_CLASS_UID = "2.25.122210067852825507388423940409432496476";
export const IMPLEMENTATION_VERSION_NAME = "VITALGATE";

// ---- Part 10 file ------------------------------------------------------------------------------

/** One Explicit VR Little Endian element of the file meta group. */
function metaElement(element: number, vr: "UL" | "OB" | "UI" | "SH", value: Buffer): Buffer {
  const padded = value.length % 2 === 0 ? value : Buffer.concat([value, Buffer.from([vr === "SH" ? 0x20 : 0])]);
  const long = vr === "OB";
  const head = Buffer.alloc(long ? 12 : 8);
  head.writeUInt16LE(0x0002, 0);
  head.writeUInt16LE(element, 2);
  head.write(vr, 4, "latin1");
  if (long) head.writeUInt32LE(padded.length, 8);
  else head.writeUInt16LE(padded.length, 6);
  return Buffer.concat([head, padded]);
}

/**
 * A DICOM Part 10 file (PS3.10 §7): 128-byte preamble, "DICM", the file meta group (always
 * Explicit VR Little Endian), then the data set as received in `transferSyntaxUid`. No Source AE
 * Title: the same object sent twice makes the same bytes, so it is stored once.
 */
export function part10File(
  dataset: Buffer,
  meta: { sopClassUid: string; sopInstanceUid: string; transferSyntaxUid: string },
): Buffer {
  const ascii = (s: string) => Buffer.from(s, "latin1");
  const body = Buffer.concat([
    metaElement(0x0001, "OB", Buffer.from([0x00, 0x01])),
    metaElement(0x0002, "UI", ascii(meta.sopClassUid)),
    metaElement(0x0003, "UI", ascii(meta.sopInstanceUid)),
    metaElement(0x0010, "UI", ascii(meta.transferSyntaxUid)),
    metaElement(0x0012, "UI", ascii(IMPLEMENTATION_CLASS_UID)),
    metaElement(0x0013, "SH", ascii(IMPLEMENTATION_VERSION_NAME)),
  ]);
  const length = Buffer.alloc(4);
  length.writeUInt32LE(body.length);
  return Buffer.concat([Buffer.alloc(128), ascii("DICM"), metaElement(0x0000, "UL", length), body, dataset]);
}

/** A UID as PS3.5 §9.1 allows: digits and dots, components without leading zeros, at most 64. */
export function isValidUid(uid: string): boolean {
  return uid.length > 0 && uid.length <= 64 && /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$/.test(uid);
}

// ---- PDU guard ---------------------------------------------------------------------------------

/**
 * Follows the PDU headers of one connection (PS3.8 §9.3: type, reserved, 32-bit length) alongside
 * dcmjs-dimse, which would otherwise buffer whatever length a sender declares: a connection that
 * is not DICOM, or that announces a PDU over `maxPdu`, is named here and closed.
 */
export class PduGuard {
  #header = Buffer.alloc(0);
  #remaining = 0;
  readonly #maxPdu: number;

  constructor(maxPdu = MAX_PDU_BYTES) {
    this.#maxPdu = maxPdu;
  }

  /** The problem with the stream so far, if any. */
  push(chunk: Buffer): { code: FailureCode; message: string } | undefined {
    let at = 0;
    while (at < chunk.length) {
      if (this.#remaining > 0) {
        const n = Math.min(this.#remaining, chunk.length - at);
        this.#remaining -= n;
        at += n;
        continue;
      }
      const take = chunk.subarray(at, at + 6 - this.#header.length);
      this.#header = Buffer.concat([this.#header, take]);
      at += take.length;
      if (this.#header.length < 6) break;
      const type = this.#header[0]!;
      const length = this.#header.readUInt32BE(2);
      this.#header = Buffer.alloc(0);
      if (type < 0x01 || type > 0x07)
        return {
          code: "VG_DICOM_NOT_DICOM",
          message: `bytes that are not DICOM (PDU type 0x${type.toString(16).padStart(2, "0")})`,
        };
      if (length > this.#maxPdu)
        return {
          code: "VG_DICOM_PDU_TOO_LARGE",
          message: `a PDU of ${length} bytes, more than the ${this.#maxPdu} accepted`,
        };
      this.#remaining = length;
    }
    return undefined;
  }
}

// ---- the SCP -----------------------------------------------------------------------------------

type Dimse = typeof import("dcmjs-dimse");
type ScpInstance = InstanceType<Dimse["Scp"]>;
type Association = InstanceType<Dimse["association"]["Association"]>;
type PresentationContext = InstanceType<Dimse["association"]["PresentationContext"]>;
type CStoreRequest = InstanceType<Dimse["requests"]["CStoreRequest"]>;
type CStoreResponse = InstanceType<Dimse["responses"]["CStoreResponse"]>;
type CEchoRequest = InstanceType<Dimse["requests"]["CEchoRequest"]>;
type CEchoResponse = InstanceType<Dimse["responses"]["CEchoResponse"]>;

let loaded: Promise<Dimse> | undefined;
/** dcmjs-dimse (and dcmjs under it) is loaded only by a box that has a DICOM device. */
function loadDimse(): Promise<Dimse> {
  loaded ??= import("dcmjs-dimse").then((m) => {
    const dimse = (m as unknown as { default: Dimse }).default;
    // Its own logger prints every association and command to the console by default: ours
    // reports what matters, with codes and without data set contents.
    dimse.log.setLevel("silent");
    return dimse;
  });
  return loaded;
}

/** Accumulates one C-STORE data set, up to a limit; past it, bytes are counted and dropped. */
class ObjectCollector extends Writable {
  readonly chunks: Buffer[] = [];
  bytes = 0;
  overLimit = false;
  readonly limit: number;
  readonly context: { abstractSyntax: string; transferSyntax: string | undefined; accepted: boolean };

  constructor(limit: number, context: ObjectCollector["context"]) {
    super({ highWaterMark: 1 << 30 }); // writes complete at once; dcmjs-dimse need not wait for drain
    this.limit = limit;
    this.context = context;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      this.overLimit = true;
      this.chunks.length = 0;
    } else {
      this.chunks.push(chunk);
    }
    callback();
  }
}

/** What one connection needs from the transport. */
interface ScpContext {
  spec: DicomScpSpec;
  remote: string;
  maxObjectBytes: number;
  /** Hands one object to the device runner, in turn with the others; resolves to the answer. */
  store(drop: Omit<FileDrop, "done" | "reject" | "refused">): Promise<{ status: number; comment?: string }>;
  report(code: FailureCode, message: string): void;
}

function defineScp(dimse: Dimse) {
  const { PresentationContextResult, RejectResult, RejectSource, RejectReason } = dimse.constants;

  return class EcgStorageScp extends dimse.Scp {
    readonly vg: ScpContext;
    readonly vgCollectors = new WeakMap<CStoreRequest, ObjectCollector>();
    /** The object being received, if any: a close before it ends loses it (the cart resends). */
    vgReceiving: ObjectCollector | undefined;
    vgCallingAe = "?";

    constructor(socket: Socket, opts: ConstructorParameters<Dimse["Scp"]>[1], context: ScpContext) {
      super(socket, opts);
      this.vg = context;
    }

    /** A-ASSOCIATE-RJ, then our side of the connection closed: nothing more can come of it. */
    vgReject(reason: number): void {
      this.sendAssociationReject(RejectResult.Permanent, RejectSource.ServiceUser, reason);
      (this as unknown as { socket: Socket }).socket.end();
    }

    override associationRequested(association: Association): void {
      const { spec } = this.vg;
      const calling = association.getCallingAeTitle().trim();
      const called = association.getCalledAeTitle().trim();
      this.vgCallingAe = calling;
      const who = `association from ${this.vg.remote} (calling AE "${calling}")`;
      if (spec.callingAeTitles && !spec.callingAeTitles.includes(calling)) {
        this.vg.report("VG_DICOM_CALLING_AE", `${who} rejected: calling AE title not in the allowed list`);
        this.vgReject(RejectReason.CallingAeNotRecognized);
        return;
      }
      if (called !== spec.aeTitle) {
        this.vg.report(
          "VG_DICOM_CALLED_AE",
          `${who} rejected: called AE title "${called}" is not ours ("${spec.aeTitle}")`,
        );
        this.vgReject(RejectReason.CalledAeNotRecognized);
        return;
      }
      association.setMaxPduLength(ANNOUNCED_MAX_PDU);
      let accepted = 0;
      const refused: string[] = [];
      for (const { id } of association.getPresentationContexts()) {
        const context = association.getPresentationContext(id);
        const abstract = context.getAbstractSyntaxUid();
        if (abstract !== VERIFICATION_SOP_CLASS && !(abstract in ECG_STORAGE_SOP_CLASSES)) {
          context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
          refused.push(`${abstract} (not an ECG waveform storage or verification SOP class)`);
          continue;
        }
        const offered = context.getTransferSyntaxUids();
        const syntax = TRANSFER_SYNTAXES.find((ts) => offered.includes(ts));
        if (!syntax) {
          context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
          refused.push(
            `${abstract} (transfer syntaxes ${offered.join(", ")}: only Explicit or Implicit VR Little Endian)`,
          );
          continue;
        }
        context.setResult(PresentationContextResult.Accept, syntax);
        accepted++;
      }
      if (accepted === 0) {
        // Nothing it could send us: say why at once rather than accept an association that can only fail.
        this.vg.report(
          "VG_DICOM_SOP_CLASS",
          `${who} rejected: nothing acceptable proposed: ${refused.join("; ") || "no presentation context"}`,
        );
        this.vgReject(RejectReason.NoReasonGiven);
        return;
      }
      this.sendAssociationAccept();
    }

    override associationReleaseRequested(): void {
      this.sendAssociationReleaseResponse();
      (this as unknown as { socket: Socket }).socket.end();
    }

    override cEchoRequest(request: CEchoRequest, callback: (response: CEchoResponse) => void): void {
      const response = dimse.responses.CEchoResponse.fromRequest(request);
      response.setStatus(CStoreStatus.Success);
      callback(response);
    }

    override createStoreWritableStream(context: PresentationContext, request: CStoreRequest): Writable {
      const collector = new ObjectCollector(this.vg.maxObjectBytes, {
        abstractSyntax: context?.getAbstractSyntaxUid() ?? "",
        transferSyntax: context?.getAcceptedTransferSyntaxUid(),
        accepted: context?.getResult() === PresentationContextResult.Accept,
      });
      this.vgCollectors.set(request, collector);
      this.vgReceiving = collector;
      return collector;
    }

    override createDatasetFromStoreWritableStream(
      _writable: Writable,
      _context: PresentationContext,
      callback: (dataset: InstanceType<Dimse["Dataset"]>) => void,
    ): void {
      // The data set stays as received (bytes in the collector); dcmjs-dimse gets an empty one so
      // nothing of it is parsed here: the driver reads it.
      this.vgReceiving = undefined;
      callback(new dimse.Dataset({}));
    }

    override cStoreRequest(request: CStoreRequest, callback: (response: CStoreResponse) => void): void {
      const socket = (this as unknown as { socket: Socket }).socket;
      const answer = ({ status, comment }: { status: number; comment?: string }) => {
        if (socket.destroyed) return; // the cart went away; it did not get a success, so it will resend
        const response = dimse.responses.CStoreResponse.fromRequest(request);
        response.setStatus(status);
        // Error Comment (0000,0902) is LO: at most 64 characters, printable.
        if (status !== CStoreStatus.Success && comment)
          response.setErrorComment(comment.replace(/[^\x20-\x7e]/g, " ").slice(0, 64));
        callback(response);
      };
      void this.#store(request)
        .catch((err: unknown) => ({
          status: CStoreStatus.ProcessingFailure,
          comment: `failed: ${(err as Error)?.name ?? "error"}`,
        }))
        .then(answer);
    }

    async #store(request: CStoreRequest): Promise<{ status: number; comment?: string }> {
      const sopClass = request.getAffectedSopClassUid() ?? "";
      const sopInstance = request.getAffectedSopInstanceUid() ?? "";
      const collector = this.vgCollectors.get(request);
      const ctx = collector?.context;
      if (!collector || !ctx) return { status: CStoreStatus.CannotUnderstand, comment: "C-STORE without a data set" };
      if (
        !ctx.accepted ||
        !ctx.transferSyntax ||
        !(ctx.abstractSyntax in ECG_STORAGE_SOP_CLASSES) ||
        sopClass !== ctx.abstractSyntax
      ) {
        this.vg.report(
          "VG_DICOM_SOP_CLASS",
          `C-STORE from ${this.vg.remote} (calling AE "${this.vgCallingAe}") refused: SOP class ${sopClass || "(none)"} on a presentation context for ${ctx.abstractSyntax || "(none)"}`,
        );
        return { status: CStoreStatus.SopClassNotSupported, comment: "SOP class not supported here" };
      }
      if (collector.overLimit) {
        this.vg.report(
          "VG_DICOM_TOO_LARGE",
          `C-STORE from ${this.vg.remote} (calling AE "${this.vgCallingAe}") refused: ${collector.bytes} bytes, more than the ${collector.limit} accepted`,
        );
        return { status: CStoreStatus.OutOfResources, comment: `object over ${collector.limit} bytes` };
      }
      if (!isValidUid(sopInstance))
        return { status: CStoreStatus.CannotUnderstand, comment: "invalid Affected SOP Instance UID" };
      if (collector.bytes === 0) return { status: CStoreStatus.CannotUnderstand, comment: "empty data set" };
      const bytes = part10File(Buffer.concat(collector.chunks), {
        sopClassUid: sopClass,
        sopInstanceUid: sopInstance,
        transferSyntaxUid: ctx.transferSyntax,
      });
      collector.chunks.length = 0;
      return this.vg.store({
        name: `${sopInstance}.dcm`,
        bytes,
        sha256: createHash("sha256").update(bytes).digest("hex"),
      });
    }

    override abort(): void {
      (this as unknown as { socket: Socket }).socket.destroy();
    }
  };
}

/** Reject reasons from the runner that are our own fault, not the object's (devices.ts #file). */
const OUR_FAULT = /^VG_DRIVER_BUG\b/;

/**
 * The transport. Objects from every connection reach the runner one at a time, in arrival order,
 * as files from a watched folder do; each connection's answer waits for its own object.
 */
export function dicomScp(spec: DicomScpSpec, options: TransportOptions): Transport {
  let server: Server | null = null;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  let turn: Promise<unknown> = Promise.resolve();
  const sockets = new Set<Socket>();
  const address = `${spec.host}:${spec.port}`;
  let listeningAt = address;
  let gate: ConnectionGate | null = null;
  return {
    start(events) {
      let attempt = 0;
      gate = new ConnectionGate(options, (r) => events.turnedAway(r));
      const report = (code: FailureCode, message: string) => {
        // The core has no channel for a transport's passing problem other than its state: the
        // error is recorded as the device's last error and logged, then the listener is back.
        if (stopped) return;
        events.state({ state: "retrying", address: listeningAt, inMs: 0, error: new TransportError(code, message) });
        events.state({ state: "listening", address: listeningAt });
      };
      const store = (drop: Omit<FileDrop, "done" | "reject" | "refused">) => {
        const run = async (): Promise<{ status: number; comment?: string }> => {
          let answer: { status: number; comment?: string } | undefined;
          const settle = (a: { status: number; comment?: string }) => void (answer ??= a);
          try {
            await events.file({
              ...drop,
              done: () => settle({ status: CStoreStatus.Success }),
              reject: (reason) =>
                settle({
                  status: OUR_FAULT.test(reason) ? CStoreStatus.ProcessingFailure : CStoreStatus.CannotUnderstand,
                  comment: reason,
                }),
              refused: (reason) => settle({ status: CStoreStatus.OutOfResources, comment: reason }),
            });
          } catch (err) {
            settle({ status: CStoreStatus.ProcessingFailure, comment: `failed: ${(err as Error)?.name ?? "error"}` });
          }
          // Neither committed nor rejected: the store refused it; the cart should try again later.
          return answer ?? { status: CStoreStatus.OutOfResources, comment: "not stored; try again later" };
        };
        const result = turn.then(run, run);
        turn = result.catch(() => undefined);
        return result;
      };
      const accept = (Scp: ReturnType<typeof defineScp>, socket: Socket) => {
        const remote = `tcp:${socket.remoteAddress ?? "?"}:${socket.remotePort ?? "?"}`;
        socket.on("error", () => undefined); // a reset by the peer is a close
        if (!gate?.admit(socket)) return;
        sockets.add(socket);
        socket.setNoDelay(true);
        let problem = false;
        const fail = (code: FailureCode, message: string) => {
          if (problem) return;
          problem = true;
          report(code, `connection from ${remote} closed: ${message}`);
          socket.destroy();
        };
        // Registered before dcmjs-dimse's own listener, so it sees each chunk first.
        const guard = new PduGuard();
        socket.on("data", (chunk: Buffer) => {
          const bad = guard.push(chunk);
          if (bad) fail(bad.code, bad.message);
        });
        let scp: InstanceType<typeof Scp>;
        try {
          scp = new Scp(
            socket,
            { connectTimeout: 120_000, associationTimeout: 30_000, pduTimeout: 60_000 },
            { spec, remote, maxObjectBytes: spec.maxObjectBytes ?? DEFAULT_MAX_OBJECT_BYTES, store, report },
          );
        } catch (err) {
          fail("VG_DICOM_ERROR", `could not start a session (${(err as Error)?.name ?? "error"})`);
          return;
        }
        // A server-side socket never emits "connect": start dcmjs-dimse's association timer here.
        Object.assign(scp as unknown as Record<string, unknown>, { connected: true, connectedTime: Date.now() });
        scp.on("networkError", (err: Error) => {
          // Timeouts, resets, PDUs dcmjs-dimse could not read: that connection ends, nothing else.
          fail(
            "VG_DICOM_NETWORK",
            String(err?.message ?? err)
              .replace(/\s+/g, " ")
              .slice(0, 160),
          );
        });
        socket.once("close", () => {
          sockets.delete(socket);
          const receiving = (scp as ScpInstance & { vgReceiving?: ObjectCollector }).vgReceiving;
          if (receiving && !problem && !stopped) {
            problem = true;
            report(
              "VG_DICOM_INCOMPLETE",
              `connection from ${remote} closed in the middle of an object (${receiving.bytes} bytes received): nothing stored, the cart has to send it again`,
            );
          }
        });
      };
      const listen = (dimse: Dimse, Scp: ReturnType<typeof defineScp>) => {
        if (stopped) return;
        events.state({ state: "starting" });
        const s = createServer((socket) => accept(Scp, socket));
        s.once("error", (err) => {
          server = null;
          if (stopped) return;
          const inMs = backoffDelay(attempt++, options.backoff, options.random);
          events.state({ state: "retrying", address, inMs, error: listenError(err, address) });
          timer = setTimeout(() => listen(dimse, Scp), inMs);
        });
        s.listen(spec.port, spec.host, () => {
          attempt = 0;
          server = s;
          if (stopped) return void s.close();
          const a = s.address();
          listeningAt = typeof a === "object" && a ? `${a.address}:${a.port}` : address;
          events.state({ state: "listening", address: listeningAt });
        });
      };
      events.state({ state: "starting" });
      loadDimse().then(
        (dimse) => listen(dimse, defineScp(dimse)),
        (err: unknown) =>
          events.state({
            state: "retrying",
            address,
            inMs: 0,
            error: new TransportError(
              "VG_DICOM_ERROR",
              `dcmjs-dimse could not be loaded (${(err as Error)?.message ?? err})`,
            ),
          }),
      );
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      gate?.close();
      for (const s of sockets) s.destroy();
      const s = server;
      server = null;
      if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
      await turn;
    },
  };
}
