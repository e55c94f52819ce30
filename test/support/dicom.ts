// DICOM for the C-STORE tests: a small synthetic ECG waveform object, written here element by
// element (Explicit VR Little Endian), and two kinds of SCU to send it with: dcmjs-dimse's Client,
// as a real cart's software would, and a raw one that writes PDUs by hand (PS3.8 §9.3) so a test
// can stop half way, send too much, or send nonsense.
//
// The ECG: 10 s at 500 Hz of leads I, II and V1-V6 (the eight independent leads; a decoder derives
// III, aVR, aVL and aVF), a sine per lead, 1 µV per unit. Patient, device and UIDs are invented.
import { connect, type Socket } from "node:net";
import dimseModule from "dcmjs-dimse";

export const TWELVE_LEAD_ECG = "1.2.840.10008.5.1.4.1.1.9.1.1";
export const GENERAL_ECG = "1.2.840.10008.5.1.4.1.1.9.1.2";
export const CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2";
export const VERIFICATION = "1.2.840.10008.1.1";
export const EXPLICIT_LE = "1.2.840.10008.1.2.1";
export const IMPLICIT_LE = "1.2.840.10008.1.2";

const dimse = dimseModule as unknown as typeof import("dcmjs-dimse");
dimse.log.setLevel("silent");

// ---- writing a data set ------------------------------------------------------------------------

type Value = Buffer | Item[];
type Item = [tag: number, vr: string, value: Value][];

const LONG_VRS = new Set(["OB", "OW", "SQ", "UN", "UT"]);

function text(vr: string, s: string): Buffer {
  const b = Buffer.from(s, "latin1");
  return b.length % 2 === 0 ? b : Buffer.concat([b, Buffer.from([vr === "UI" ? 0 : 0x20])]);
}
const u16 = (n: number) => Buffer.from(Uint16Array.of(n).buffer);
const u32 = (n: number) => Buffer.from(Uint32Array.of(n).buffer);

/** Explicit or Implicit VR Little Endian, defined lengths throughout. */
export function encodeDataset(elements: Item, explicit = true): Buffer {
  const parts: Buffer[] = [];
  for (const [tag, vr, value] of [...elements].sort((a, b) => a[0] - b[0])) {
    const body = Array.isArray(value)
      ? Buffer.concat(
          value.map((item) => {
            const inner = encodeDataset(item, explicit);
            return Buffer.concat([u16(0xfffe), u16(0xe000), u32(inner.length), inner]);
          }),
        )
      : value;
    parts.push(u16(tag >>> 16), u16(tag & 0xffff));
    if (!explicit) parts.push(u32(body.length), body);
    else
      parts.push(
        Buffer.from(vr, "latin1"),
        ...(LONG_VRS.has(vr) ? [u16(0), u32(body.length)] : [u16(body.length)]),
        body,
      );
  }
  return Buffer.concat(parts);
}

const LEADS: [name: string, mdc: string][] = [
  ["Lead I", "2:1"],
  ["Lead II", "2:2"],
  ["Lead V1", "2:3"],
  ["Lead V2", "2:4"],
  ["Lead V3", "2:5"],
  ["Lead V4", "2:6"],
  ["Lead V5", "2:7"],
  ["Lead V6", "2:8"],
];

export interface SyntheticEcg {
  sopClassUid: string;
  sopInstanceUid: string;
  /** The data set alone (what travels in a C-STORE), in Explicit VR Little Endian unless asked otherwise. */
  dataset: Buffer;
  /** The interleaved samples, as in Waveform Data. */
  waveform: Buffer;
}

let counter = 0;
/** A fresh, valid UID under the UUID root (2.25). */
export function newUid(): string {
  const hex = crypto.randomUUID().replace(/-/g, "");
  return `2.25.${BigInt(`0x${hex}`).toString()}`;
}

/** `acquired`: the Acquisition DateTime as the cart writes it (DICOM DT, e.g. "20261123153634.000+0800"); default a fixed local time. */
export function syntheticEcg(
  options: {
    sopClassUid?: string;
    seconds?: number;
    fs?: number;
    patientName?: string;
    implicitVr?: boolean;
    acquired?: string;
  } = {},
): SyntheticEcg {
  const sopClassUid = options.sopClassUid ?? TWELVE_LEAD_ECG;
  const fs = options.fs ?? 500;
  const n = Math.round((options.seconds ?? 10) * fs);
  const samples = new Int16Array(n * LEADS.length);
  for (let k = 0; k < n; k++) {
    for (let c = 0; c < LEADS.length; c++)
      samples[k * LEADS.length + c] = Math.round(800 * Math.sin((2 * Math.PI * (c + 1) * k) / fs) + c);
  }
  const waveform = Buffer.from(samples.buffer);
  const sopInstanceUid = newUid();
  const channel = ([meaning, code]: [string, string]): Item => [
    [
      0x003a0208,
      "SQ",
      [
        [
          [0x00080100, "SH", text("SH", code)],
          [0x00080102, "SH", text("SH", "MDC")],
          [0x00080104, "LO", text("LO", meaning)],
        ],
      ],
    ],
    [0x003a0210, "DS", text("DS", "1")],
    [
      0x003a0211,
      "SQ",
      [
        [
          [0x00080100, "SH", text("SH", "uV")],
          [0x00080102, "SH", text("SH", "UCUM")],
          [0x00080104, "LO", text("LO", "microvolt")],
        ],
      ],
    ],
    [0x003a0212, "DS", text("DS", "1")],
    [0x003a0213, "DS", text("DS", "0")],
    [0x003a021a, "US", u16(16)],
  ];
  const dataset = encodeDataset(
    [
      [0x00080016, "UI", text("UI", sopClassUid)],
      [0x00080018, "UI", text("UI", sopInstanceUid)],
      [0x00080020, "DA", text("DA", (options.acquired ?? "20261123").slice(0, 8))],
      [0x00080030, "TM", text("TM", (options.acquired ?? "20261123153634").slice(8, 14))],
      [0x0008002a, "DT", text("DT", options.acquired ?? "20261123153634")],
      [0x00080060, "CS", text("CS", "ECG")],
      [0x00080070, "LO", text("LO", "VITALGATE TEST CART")],
      [0x00100010, "PN", text("PN", options.patientName ?? `SYNTHETIC^PATIENT${++counter}`)],
      [0x00100020, "LO", text("LO", "TEST-0001")],
      [0x0020000d, "UI", text("UI", newUid())],
      [0x0020000e, "UI", text("UI", newUid())],
      [0x00200013, "IS", text("IS", "1")],
      [
        0x54000100,
        "SQ",
        [
          [
            [0x003a0004, "CS", text("CS", "ORIGINAL")],
            [0x003a0005, "US", u16(LEADS.length)],
            [0x003a0010, "UL", u32(n)],
            [0x003a001a, "DS", text("DS", String(fs))],
            [0x003a0020, "SH", text("SH", "RHYTHM")],
            [0x003a0200, "SQ", LEADS.map(channel)],
            [0x54001004, "US", u16(16)],
            [0x54001006, "CS", text("CS", "SS")],
            [0x54001010, "OW", waveform],
          ],
        ],
      ],
    ],
    !options.implicitVr,
  );
  return { sopClassUid, sopInstanceUid, dataset, waveform };
}

// ---- dcmjs-dimse's SCU -------------------------------------------------------------------------

export interface ScuResult {
  /** The DIMSE status of the response, when one came. */
  status?: number;
  errorComment?: string;
  rejected?: { result: number; source: number; reason: number };
  error?: string;
}

/** One association with one request (C-ECHO or C-STORE); `onResponse` runs the moment the response arrives. */
function runScu(
  port: number,
  request: InstanceType<typeof dimse.requests.Request>,
  options: { calledAe: string; callingAe?: string; onResponse?: () => void },
): Promise<ScuResult> {
  return new Promise((resolve) => {
    const result: ScuResult = {};
    const client = new dimse.Client();
    request.on("response", (response: InstanceType<typeof dimse.responses.Response>) => {
      options.onResponse?.();
      result.status = response.getStatus();
      result.errorComment = response.getErrorComment();
    });
    client.on("associationRejected", (reject: ScuResult["rejected"]) => {
      result.rejected = reject;
    });
    client.on("networkError", (err: Error) => {
      result.error = err.message;
    });
    client.on("closed", () => resolve(result));
    client.addRequest(request);
    client.send("127.0.0.1", port, options.callingAe ?? "TEST-CART", options.calledAe);
  });
}

export function cEcho(port: number, options: { calledAe: string; callingAe?: string }): Promise<ScuResult> {
  return runScu(port, new dimse.requests.CEchoRequest(), options);
}

/** C-STORE of a data set (Explicit VR Little Endian bytes), as dcmjs-dimse re-encodes and sends it. */
export function cStore(
  port: number,
  dataset: Buffer,
  options: { calledAe: string; callingAe?: string; onResponse?: () => void },
): Promise<ScuResult> {
  return runScu(port, new dimse.requests.CStoreRequest(new dimse.Dataset(dataset, EXPLICIT_LE)), options);
}

// ---- a raw SCU ---------------------------------------------------------------------------------

function pdu(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(6);
  head[0] = type;
  head.writeUInt32BE(body.length, 2);
  return Buffer.concat([head, body]);
}
function item(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head[0] = type;
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([head, body]);
}
const ae = (s: string) => Buffer.from(s.padEnd(16, " ").slice(0, 16), "latin1");

/** A-ASSOCIATE-RQ (PS3.8 §9.3.2) with one presentation context per entry, ids 1, 3, 5, … */
export function associateRq(
  calledAe: string,
  callingAe: string,
  contexts: { abstract: string; syntaxes: string[] }[],
  maxPdu = 16_384,
): Buffer {
  const fixed = Buffer.concat([u16be(1), Buffer.alloc(2), ae(calledAe), ae(callingAe), Buffer.alloc(32)]);
  const appContext = item(0x10, Buffer.from("1.2.840.10008.3.1.1.1", "latin1"));
  const pcs = contexts.map((c, i) =>
    item(
      0x20,
      Buffer.concat([
        Buffer.from([2 * i + 1, 0, 0, 0]),
        item(0x30, Buffer.from(c.abstract, "latin1")),
        ...c.syntaxes.map((ts) => item(0x40, Buffer.from(ts, "latin1"))),
      ]),
    ),
  );
  const maxLength = Buffer.alloc(4);
  maxLength.writeUInt32BE(maxPdu);
  const userInfo = item(0x50, Buffer.concat([item(0x51, maxLength), item(0x52, Buffer.from("1.2.3.4", "latin1"))]));
  return pdu(0x01, Buffer.concat([fixed, appContext, ...pcs, userInfo]));
}
function u16be(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

/** An Implicit VR Little Endian command set with its group length (PS3.7 §6.3, §9.3.1). */
function commandSet(elements: [element: number, value: Buffer][]): Buffer {
  const body = Buffer.concat(elements.map(([el, v]) => Buffer.concat([u16(0x0000), u16(el), u32(v.length), v])));
  return Buffer.concat([u16(0x0000), u16(0x0000), u32(4), u32(body.length), body]);
}

/** P-DATA-TF with one PDV (PS3.8 §9.3.5, Annex E.2): control bit 0 = command, bit 1 = last. */
export function pData(pcId: number, value: Buffer, command: boolean, last: boolean): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(value.length + 2);
  return pdu(0x04, Buffer.concat([length, Buffer.from([pcId, (command ? 1 : 0) | (last ? 2 : 0)]), value]));
}

/** The C-STORE-RQ command for a data set (Affected SOP Class/Instance UID, message id 1). */
export function cStoreCommand(sopClassUid: string, sopInstanceUid: string, messageId = 1): Buffer {
  return commandSet([
    [0x0002, text("UI", sopClassUid)],
    [0x0100, u16(0x0001)],
    [0x0110, u16(messageId)],
    [0x0700, u16(0x0000)],
    [0x0800, u16(0x0000)],
    [0x1000, text("UI", sopInstanceUid)],
  ]);
}

export const A_RELEASE_RQ = pdu(0x05, Buffer.alloc(4));

/** A connection writing PDUs by hand and reading back whole PDUs. */
export class RawScu {
  readonly socket: Socket;
  readonly pdus: Buffer[] = [];
  closed = false;
  #buffer = Buffer.alloc(0);

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on("error", () => undefined);
    socket.on("close", () => (this.closed = true));
    socket.on("data", (d: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, d]);
      while (this.#buffer.length >= 6 && this.#buffer.length >= 6 + this.#buffer.readUInt32BE(2)) {
        const n = 6 + this.#buffer.readUInt32BE(2);
        this.pdus.push(this.#buffer.subarray(0, n));
        this.#buffer = this.#buffer.subarray(n);
      }
    });
  }

  static async connect(port: number): Promise<RawScu> {
    const socket = connect({ host: "127.0.0.1", port });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("error", reject);
    });
    return new RawScu(socket);
  }

  /** Connects and asks for an association with `contexts`: the connection and, by context id, each context's result (0: accepted). */
  static async associate(
    port: number,
    calledAe: string,
    contexts: { abstract: string; syntaxes: string[] }[],
  ): Promise<{ scu: RawScu; results: Map<number, number> }> {
    const scu = await RawScu.connect(port);
    scu.write(associateRq(calledAe, "RAW-SCU", contexts));
    const ac = await scu.next();
    return { scu, results: acceptedContexts(ac!) };
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** A C-STORE-RQ of `ecg` on presentation context `pcId`: its command, then its data set as sent, in PDUs of 16 KB. */
  store(pcId: number, ecg: SyntheticEcg): void {
    this.write(pData(pcId, cStoreCommand(ecg.sopClassUid, ecg.sopInstanceUid), true, true));
    for (let at = 0; at < ecg.dataset.length; at += 16_000)
      this.write(pData(pcId, ecg.dataset.subarray(at, at + 16_000), false, at + 16_000 >= ecg.dataset.length));
  }

  /** The next PDU from the SCP, or undefined when the connection closes first. */
  async next(timeoutMs = 5000): Promise<Buffer | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.pdus.length === 0) {
      if (this.closed) return undefined;
      if (Date.now() > deadline) throw new Error("no PDU from the SCP in time");
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.pdus.shift();
  }

  /** Waits until the SCP has closed the connection. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error("the SCP kept the connection open");
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The Status (0000,0900) of a C-STORE-RSP carried in a P-DATA-TF PDU, and its Error Comment. */
export function responseStatus(pdu: Buffer): { status: number; errorComment?: string } {
  if (pdu[0] !== 0x04) throw new Error(`expected P-DATA-TF, got PDU type ${pdu[0]}`);
  const command = pdu.subarray(12); // PDU header 6, PDV length 4, context id 1, control 1
  let status: number | undefined;
  let errorComment: string | undefined;
  for (let at = 0; at + 8 <= command.length;) {
    const element = command.readUInt16LE(at + 2);
    const length = command.readUInt32LE(at + 4);
    const value = command.subarray(at + 8, at + 8 + length);
    if (element === 0x0900) status = value.readUInt16LE(0);
    if (element === 0x0902) errorComment = value.toString("latin1").trim();
    at += 8 + length;
  }
  if (status === undefined) throw new Error("no Status in the response");
  return { status, errorComment };
}

/** The result of each presentation context in an A-ASSOCIATE-AC, by id (0 = accepted). */
export function acceptedContexts(pdu: Buffer): Map<number, number> {
  if (pdu[0] !== 0x02) throw new Error(`expected A-ASSOCIATE-AC, got PDU type ${pdu[0]}`);
  const results = new Map<number, number>();
  for (let at = 6 + 68; at + 4 <= pdu.length;) {
    const type = pdu[at]!;
    const length = pdu.readUInt16BE(at + 2);
    if (type === 0x21) results.set(pdu[at + 4]!, pdu[at + 6]!);
    at += 4 + length;
  }
  return results;
}
