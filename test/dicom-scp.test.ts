// The dicom-scp transport over real TCP on loopback: dcmjs-dimse's Client (and a raw SCU writing
// PDUs by hand) against the gateway in-process, with its real SQLite store and embedded broker,
// and a center that reassembles the stored DICOM file from its chunks.
import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import dicomParser from "dicom-parser";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { CStoreStatus, ECG_STORAGE_SOP_CLASSES, PduGuard, part10File } from "../src/transports/dicom-scp.ts";
import { defineDriver } from "../src/devices/driver.ts";
import {
  A_RELEASE_RQ,
  CT_IMAGE,
  EXPLICIT_LE,
  GENERAL_ECG,
  IMPLICIT_LE,
  RawScu,
  TWELVE_LEAD_ECG,
  associateRq,
  cEcho,
  cStore,
  cStoreCommand,
  newUid,
  pData,
  responseStatus,
  syntheticEcg,
} from "./support/dicom.ts";
import { connectEmbeddedCenter, waitFor, type Center } from "./support/mqtt.ts";
import { freePort } from "./support/processes.ts";
import { startGateway } from "./support/rig.ts";

const AE = "VG-TEST";

/** Takes any DICOM Part 10 file of an ECG waveform SOP class, as an ecg12 event carrying the file. */
const dicomDriver = defineDriver({
  id: "test-dicom",
  kind: "ecg-cart",
  sends: ["ecg12"],
  title: { en: "Test DICOM C-STORE", zh: "测试 DICOM 存储" },
  labels: {},
  options: z.object({
    port: z.int(),
    aeTitle: z.string().default(AE),
    callingAeTitles: z.array(z.string()).optional(),
    maxObjectBytes: z.int().optional(),
  }),
  transport: (o) => ({
    type: "dicom-scp",
    host: "127.0.0.1",
    port: o.port,
    aeTitle: o.aeTitle,
    callingAeTitles: o.callingAeTitles,
    maxObjectBytes: o.maxObjectBytes,
  }),
  handle(bytes) {
    let sopClass: string | undefined;
    try {
      sopClass = dicomParser.parseDicom(bytes).string("x00080016");
    } catch {
      return { ok: false, error: { code: "TEST_UNREADABLE", message: "not a DICOM file dicom-parser can read" } };
    }
    if (!sopClass || !(sopClass in ECG_STORAGE_SOP_CLASSES))
      return { ok: false, error: { code: "TEST_NOT_ECG", message: "not an ECG waveform SOP class" } };
    return {
      ok: true,
      events: [
        {
          kind: "ecg12",
          body: { format: "test-dicom", leads: [] },
          original: { contentType: "application/dicom", bytes },
        },
      ],
    };
  },
});
const findDriver = (id: string) => (id === dicomDriver.id ? dicomDriver : undefined) as never;

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function rig(options: { extra?: string; deviceOptions?: string } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "vg-dicom-"));
  const port = await freePort();
  const { gw, log, config } = await startGateway(
    {
      id: "gw-ecg",
      stateDir: `${dir}/state`,
      uplink: "embedded",
      extra: options.extra,
      drivers: findDriver,
      devices: `{ id: cart, driver: test-dicom, options: { port: ${port}${options.deviceOptions ?? ""} } }`,
    },
    cleanup,
  );
  const logs = log.raw;
  await waitFor(() => gw.devices.get("cart")?.state === "listening", 10_000, "the SCP listening");
  const ecgRows = () => {
    const db = new Database(gw.config.store.path, { readonly: true });
    try {
      return db.prepare("SELECT count(*) FROM events WHERE kind = 'ecg12'").pluck().get() as number;
    } finally {
      db.close();
    }
  };
  return { gw, port, logs, ecgRows, config };
}

async function center(config: { gateway: { id: string }; embeddedBroker: { port: number } }): Promise<Center> {
  const c = await connectEmbeddedCenter(config);
  cleanup.push(() => c.close());
  return c;
}

/** A raw association with the given contexts; returns the SCU and the AC's results by context id. */
async function rawAssociation(port: number, contexts: { abstract: string; syntaxes: string[] }[]) {
  const a = await RawScu.associate(port, AE, contexts);
  cleanup.push(() => a.scu.close());
  return a;
}

describe("DICOM C-STORE SCP", () => {
  it("answers C-ECHO, so a technician can test the link", async () => {
    const { port } = await rig();
    expect(await cEcho(port, { calledAe: AE })).toMatchObject({ status: 0x0000 });
  });

  it("stores a 12-lead ECG, answers success only once it is in the outbox, and the center gets the event and the file byte for byte", async () => {
    const { gw, port, logs, ecgRows, config } = await rig();
    const c = await center(config);
    const ecg = syntheticEcg();
    // A slow commit (a busy SD card): the answer must still wait for it.
    const ingest = gw.ingest.bind(gw);
    gw.ingest = async (...args) => {
      await new Promise((r) => setTimeout(r, 300));
      return ingest(...args);
    };
    let rowsAtResponse = -1;
    const result = await cStore(port, ecg.dataset, { calledAe: AE, onResponse: () => (rowsAtResponse = ecgRows()) });
    expect(result).toMatchObject({ status: CStoreStatus.Success });
    expect(rowsAtResponse).toBe(1);

    await c.waitFor(() => c.events.some((e) => e.kind === "ecg12"), 10_000, "the ECG event");
    const event = c.events.find((e) => e.kind === "ecg12")!;
    const original = (event.body as { original: { contentType: string; bytes: number; sha256: string } }).original;
    expect(original.contentType).toBe("application/dicom");
    await c.waitFor(() => c.original(event.id) !== undefined, 10_000, "every chunk");
    const file = c.original(event.id)!;
    expect(file.length).toBe(original.bytes);
    expect(createHash("sha256").update(file).digest("hex")).toBe(original.sha256);
    // A Part 10 file: meta group naming the object and the transfer syntax it came in, then the data set.
    const parsed = dicomParser.parseDicom(file);
    expect(parsed.string("x00020002")).toBe(TWELVE_LEAD_ECG);
    expect(parsed.string("x00020003")).toBe(ecg.sopInstanceUid);
    expect(parsed.string("x00020010")).toBe(EXPLICIT_LE);
    expect(parsed.string("x00080018")).toBe(ecg.sopInstanceUid);
    const waveform = parsed.elements.x54000100!.items![0]!.dataSet!.elements.x54001010!;
    expect(
      Buffer.from(file.subarray(waveform.dataOffset, waveform.dataOffset + waveform.length)).equals(ecg.waveform),
    ).toBe(true);

    // Sent again (a cart that never got our answer): success, stored once.
    expect(await cStore(port, ecg.dataset, { calledAe: AE })).toMatchObject({ status: CStoreStatus.Success });
    expect(ecgRows()).toBe(1);
    expect(gw.devices.get("cart")).toMatchObject({ frames: 2, events: 1, rejected: 0, refused: 0 });
    // A clean exchange logs no problem, and nothing from inside the data set reaches the log.
    expect(logs.join("")).not.toMatch(/SYNTHETIC|TEST-0001|VG_TRANSPORT|"level":[456]0/);
  });

  it("takes General ECG too, in Implicit VR when that is all the SCU offers, and names that in the file", async () => {
    const { port, ecgRows, config } = await rig();
    const c = await center(config);
    const { scu, results } = await rawAssociation(port, [{ abstract: GENERAL_ECG, syntaxes: [IMPLICIT_LE] }]);
    expect(results.get(1)).toBe(0);
    const ecg = syntheticEcg({ sopClassUid: GENERAL_ECG, implicitVr: true });
    scu.store(1, ecg); // in PDUs of 16 KB, as the SCU announced
    expect(responseStatus((await scu.next())!)).toEqual({ status: CStoreStatus.Success });
    expect(ecgRows()).toBe(1);
    scu.write(A_RELEASE_RQ);
    expect((await scu.next())?.[0]).toBe(0x06); // A-RELEASE-RP
    await c.waitFor(() => c.events.some((e) => e.kind === "ecg12"), 10_000, "the ECG event");
    const event = c.events.find((e) => e.kind === "ecg12")!;
    await c.waitFor(() => c.original(event.id) !== undefined, 10_000, "every chunk");
    const file = c.original(event.id)!;
    expect(dicomParser.parseDicom(file).string("x00020010")).toBe(IMPLICIT_LE);
    expect(file.subarray(file.length - ecg.dataset.length).equals(ecg.dataset)).toBe(true);
  });

  it("refuses a CT image at association, naming its SOP class, and keeps serving", async () => {
    const { gw, port } = await rig();
    const result = await cStore(port, syntheticEcg({ sopClassUid: CT_IMAGE }).dataset, { calledAe: AE });
    expect(result.status).toBeUndefined();
    expect(result.rejected).toMatchObject({ result: 1, source: 1 });
    await waitFor(
      () => gw.devices.get("cart")?.lastError?.message.includes(CT_IMAGE) === true,
      5000,
      "the refusal in the device's state",
    );
    expect(gw.devices.get("cart")!.lastError).toMatchObject({ code: "VG_DICOM_SOP_CLASS", next: "operator" });
    // Offered beside an ECG one, CT is refused on its own and the association goes ahead.
    const { scu, results } = await rawAssociation(port, [
      { abstract: CT_IMAGE, syntaxes: [EXPLICIT_LE] },
      { abstract: TWELVE_LEAD_ECG, syntaxes: [EXPLICIT_LE] },
    ]);
    expect(results).toEqual(
      new Map([
        [1, 3],
        [3, 0],
      ]),
    );
    // A C-STORE claiming CT on the ECG context: SOP class not supported.
    scu.write(pData(3, cStoreCommand(CT_IMAGE, newUid()), true, true));
    scu.write(pData(3, syntheticEcg().dataset, false, true));
    expect(responseStatus((await scu.next())!).status).toBe(CStoreStatus.SopClassNotSupported);
    expect(await cEcho(port, { calledAe: AE })).toMatchObject({ status: 0x0000 });
    // Wrong called AE title: rejected, reason "called AE title not recognized" (7).
    expect((await cEcho(port, { calledAe: "SOMEONE-ELSE" })).rejected).toMatchObject({ reason: 7 });
  });

  it("answers 0xC000 (cannot understand) for an object the driver cannot read", async () => {
    const { gw, port, ecgRows } = await rig();
    const { scu } = await rawAssociation(port, [{ abstract: TWELVE_LEAD_ECG, syntaxes: [EXPLICIT_LE] }]);
    scu.write(pData(1, cStoreCommand(TWELVE_LEAD_ECG, newUid()), true, true));
    scu.write(pData(1, syntheticEcg({ sopClassUid: CT_IMAGE }).dataset, false, true));
    const rsp = responseStatus((await scu.next())!);
    expect(rsp).toEqual({
      status: CStoreStatus.CannotUnderstand,
      errorComment: "TEST_NOT_ECG: not an ECG waveform SOP class",
    });
    expect(ecgRows()).toBe(0);
    expect(gw.devices.get("cart")).toMatchObject({ rejected: 1 });
  });

  it("answers 0xA700 (out of resources) when the store is full, and stores nothing", async () => {
    const { gw, port, ecgRows, logs } = await rig({
      extra: "store: { quotaMB: 16 }\nuplink: { url: 'mqtt://127.0.0.1:1' }\n",
    });
    // The smallest quota, filled with ECGs (never evicted), leaves no room for anything.
    for (const size of [1 << 20, 1 << 16, 1 << 12, 1 << 8, 1]) {
      for (;;) {
        const stored = await gw.ingest(gw.self, [{ kind: "ecg12", body: { pad: "x".repeat(size) } }]).then(
          () => true,
          () => false,
        );
        if (!stored) break;
      }
    }
    const before = ecgRows();
    const result = await cStore(port, syntheticEcg().dataset, { calledAe: AE });
    expect(result.status).toBe(CStoreStatus.OutOfResources);
    expect(result.errorComment).toMatch(/^VG_STORE_QUOTA/);
    expect(ecgRows()).toBe(before);
    expect(gw.devices.get("cart")).toMatchObject({ refused: 1, lastError: { code: "VG_STORE_QUOTA" } });
    expect(logs.some((l) => l.includes("VG_STORE_QUOTA") && l.includes('"device":"cart"'))).toBe(true);
  });

  it("survives bytes that are not DICOM, a huge PDU, a broken association request and a sender gone mid-object, and serves the next cart", async () => {
    const { gw, port, ecgRows, logs } = await rig();
    const lastError = () => {
      const e = gw.devices.get("cart")?.lastError;
      return e ? `${e.code}: ${e.message}` : "";
    };

    const http = await RawScu.connect(port);
    http.write(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    await http.waitClosed();
    await waitFor(() => lastError().includes("VG_DICOM_NOT_DICOM"), 5000, "garbage reported");

    const huge = await RawScu.connect(port);
    huge.write(Buffer.from([0x04, 0x00, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 0]));
    await huge.waitClosed();
    await waitFor(() => lastError().includes("VG_DICOM_PDU_TOO_LARGE"), 5000, "huge PDU reported");

    const broken = await RawScu.connect(port);
    broken.write(Buffer.concat([Buffer.from([0x01, 0x00, 0, 0, 0, 40]), Buffer.alloc(40, 0x5a)]));
    await broken.waitClosed();

    const { scu } = await rawAssociation(port, [{ abstract: TWELVE_LEAD_ECG, syntaxes: [EXPLICIT_LE] }]);
    const ecg = syntheticEcg();
    scu.write(pData(1, cStoreCommand(TWELVE_LEAD_ECG, ecg.sopInstanceUid), true, true));
    scu.write(pData(1, ecg.dataset.subarray(0, 20_000), false, false));
    await new Promise((r) => setTimeout(r, 100));
    scu.close();
    await waitFor(() => lastError().includes("VG_DICOM_INCOMPLETE"), 5000, "the lost object reported");
    expect(ecgRows()).toBe(0);

    expect(await cStore(port, ecg.dataset, { calledAe: AE })).toMatchObject({ status: CStoreStatus.Success });
    expect(ecgRows()).toBe(1);
    expect(gw.devices.get("cart")?.state).toBe("listening");
    // Each problem reported once, with its code; nothing from inside the data sets.
    for (const code of ["VG_DICOM_NOT_DICOM", "VG_DICOM_PDU_TOO_LARGE", "VG_DICOM_NETWORK", "VG_DICOM_INCOMPLETE"])
      expect(logs.filter((l) => l.includes(code))).toHaveLength(1);
    expect(logs.join("")).not.toMatch(/SYNTHETIC|TEST-0001/);
  });

  it("answers 0xA700 for an object over the size limit, without keeping its bytes", async () => {
    const { gw, port, ecgRows } = await rig({ deviceOptions: ", maxObjectBytes: 10000" });
    const result = await cStore(port, syntheticEcg().dataset, { calledAe: AE });
    expect(result).toMatchObject({ status: CStoreStatus.OutOfResources, errorComment: "object over 10000 bytes" });
    expect(ecgRows()).toBe(0);
    expect(gw.devices.get("cart")?.lastError?.code).toBe("VG_DICOM_TOO_LARGE");
    expect(await cStore(port, syntheticEcg({ seconds: 0.1 }).dataset, { calledAe: AE })).toMatchObject({
      status: CStoreStatus.Success,
    });
  });

  it("lets in only the listed calling AE titles when a list is given", async () => {
    const { port } = await rig({ deviceOptions: ", callingAeTitles: [CART-7]" });
    expect((await cEcho(port, { calledAe: AE, callingAe: "CART-9" })).rejected).toMatchObject({ reason: 3 });
    expect(await cEcho(port, { calledAe: AE, callingAe: "CART-7" })).toMatchObject({ status: 0x0000 });
  });
});

describe("dicom-scp pieces", () => {
  it("writes a Part 10 file dicom-parser reads, meta group first", () => {
    const ecg = syntheticEcg();
    const file = part10File(ecg.dataset, {
      sopClassUid: TWELVE_LEAD_ECG,
      sopInstanceUid: ecg.sopInstanceUid,
      transferSyntaxUid: EXPLICIT_LE,
    });
    expect(file.subarray(128, 132).toString()).toBe("DICM");
    const parsed = dicomParser.parseDicom(file);
    expect(parsed.string("x00020010")).toBe(EXPLICIT_LE);
    expect(parsed.string("x00080016")).toBe(TWELVE_LEAD_ECG);
    expect(file.subarray(file.length - ecg.dataset.length).equals(ecg.dataset)).toBe(true);
  });

  it("follows PDU headers split at every byte and names what is wrong", () => {
    const stream = Buffer.concat([
      associateRq(AE, "X", [{ abstract: TWELVE_LEAD_ECG, syntaxes: [EXPLICIT_LE] }]),
      pData(1, Buffer.alloc(300), false, true),
      A_RELEASE_RQ,
    ]);
    for (let cut = 0; cut <= stream.length; cut++) {
      const guard = new PduGuard(1024);
      expect(guard.push(stream.subarray(0, cut))).toBeUndefined();
      expect(guard.push(stream.subarray(cut))).toBeUndefined();
    }
    expect(new PduGuard(1024).push(Buffer.from([0x04, 0, 0, 0, 0x10, 0]))).toMatchObject({
      code: "VG_DICOM_PDU_TOO_LARGE",
    });
    expect(new PduGuard().push(Buffer.from("GET / HTTP/1.1"))).toMatchObject({ code: "VG_DICOM_NOT_DICOM" });
  });
});
