// Folder intake over the real file system, through the embedded broker, to a center that
// reassembles the original file from its chunks and checks its SHA-256.
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  appendFileSync,
  copyFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import { findDriver as registry } from "../drivers/registry.ts";
import { pcd01Message } from "../drivers/hl7-pcd01/synthetic.ts";
import { fileDriver } from "./support/file-driver.ts";
import { MllpSender } from "./support/mllp-sender.ts";
import { freePort } from "./support/processes.ts";
import { connectEmbeddedCenter, waitFor } from "./support/mqtt.ts";
import { startGateway } from "./support/rig.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});
const findDriver = (id: string) => (id === fileDriver.id ? fileDriver : registry(id)) as never;

async function rig(o: { drop?: string; devices?: string; options?: string } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "vg-folder-"));
  const drop = o.drop ?? join(dir, "drop");
  const { gw, config } = await startGateway(
    {
      id: "gw-ecg",
      stateDir: `${dir}/state`,
      uplink: "embedded",
      logLevel: "silent",
      drivers: findDriver,
      devices: `  - { id: cart, driver: test-file, options: { dir: "${drop}"${o.options ?? ""} } }\n${o.devices ?? ""}`,
    },
    cleanup,
  );
  const center = await connectEmbeddedCenter(config);
  cleanup.push(() => center.close());
  await waitFor(() => gw.devices.get("cart")?.state === "listening", 5000, "the folder watched");
  return { gw, drop, center };
}

describe("watched folder intake", () => {
  it("takes a complete file once, sends its event then the file in chunks the center reassembles byte for byte, and moves it to done/", async () => {
    const { drop, center } = await rig();
    const file = Buffer.concat([
      Buffer.from("ECG"),
      Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 31) % 251)),
    ]);
    // Carts write under a temporary name, then rename.
    writeFileSync(join(drop, "ecg-0001.dcm.part"), file);
    renameSync(join(drop, "ecg-0001.dcm.part"), join(drop, "ecg-0001.dcm"));
    await center.waitFor(() => center.events.some((e) => e.kind === "ecg12"), 10_000, "the ECG event");
    const ecg = center.events.find((e) => e.kind === "ecg12")!;
    const original = (ecg.body as { original: { sha256: string; bytes: number; contentType: string } }).original;
    expect(original).toEqual({
      contentType: "application/octet-stream",
      bytes: file.length,
      sha256: createHash("sha256").update(file).digest("hex"),
    });
    await center.waitFor(() => center.original(ecg.id) !== undefined, 10_000, "every chunk");
    const whole = center.original(ecg.id)!;
    expect(createHash("sha256").update(whole).digest("hex")).toBe(original.sha256);
    expect(whole.equals(file)).toBe(true);
    await waitFor(() => existsSync(join(drop, "done/ecg-0001.dcm")), 5000, "the file in done/");
    expect(readdirSync(drop).filter((f) => !["done", "rejected"].includes(f))).toEqual([]);
  });

  it("waits for a file still being written, and moves an unreadable one to rejected/ with the reason", async () => {
    const { gw, drop, center } = await rig();
    writeFileSync(join(drop, "slow.xml"), "ECG first half");
    await new Promise((r) => setTimeout(r, 120)); // under stableMs (200): not yet taken
    appendFileSync(join(drop, "slow.xml"), " and the rest");
    writeFileSync(join(drop, "garbage.bin"), "MZ not an ECG");
    await waitFor(
      () => existsSync(join(drop, "done/slow.xml")) && existsSync(join(drop, "rejected/garbage.bin")),
      10_000,
      "both settled",
    );
    expect(readFileSync(join(drop, "rejected/garbage.bin.why.txt"), "utf8")).toBe(
      "TEST_NOT_ECG: the file does not start with ECG\n",
    );
    await center.waitFor(() => center.events.filter((e) => e.kind === "ecg12").length === 1, 5000, "one ECG");
    expect(center.events.filter((e) => e.kind === "ecg12")).toHaveLength(1);
    expect(gw.devices.get("cart")).toMatchObject({ frames: 2, events: 1, rejected: 1 });
  });

  it("rejects a file over the device's size limit without reading it", async () => {
    const { gw, drop } = await rig();
    writeFileSync(join(drop, "huge.dcm"), Buffer.alloc((1 << 20) + 1, 0x45));
    await waitFor(() => existsSync(join(drop, "rejected/huge.dcm.why.txt")), 10_000, "the big file rejected");
    expect(readFileSync(join(drop, "rejected/huge.dcm.why.txt"), "utf8")).toMatch(/^VG_FILE_TOO_LARGE: 1048577 bytes/);
    expect(gw.devices.get("cart")?.frames).toBe(0);
  });

  it("stores a file only once when it shows up again (a crash between commit and the move)", async () => {
    const { gw, drop } = await rig();
    writeFileSync(join(drop, "a.dcm"), "ECG same bytes");
    await waitFor(() => existsSync(join(drop, "done/a.dcm")), 10_000, "first pickup");
    copyFileSync(join(drop, "done/a.dcm"), join(drop, "a.dcm"));
    await waitFor(() => readdirSync(join(drop, "done")).length === 2, 10_000, "second pickup moved to done/ too");
    const db = new Database(gw.config.store.path, { readonly: true });
    expect(db.prepare("SELECT count(*) FROM events WHERE kind = 'ecg12'").pluck().get()).toBe(1);
    db.close();
    expect(gw.devices.get("cart")).toMatchObject({ frames: 2, events: 1 });
  });

  it("sets aside a file that never settles and stops reading a folder swapped for /proc, while another device's ACKs and the page keep answering", async () => {
    const base = mkdtempSync(join(tmpdir(), "vg-folder-proc-"));
    mkdirSync(join(base, "inbox"));
    symlinkSync(join(base, "inbox"), join(base, "cart"));
    const hl7 = await freePort();
    const { gw } = await rig({
      drop: join(base, "cart"),
      options: ", stableMs: 100, maxSettleMs: 400",
      devices: `  - { id: mon, driver: hl7-pcd01, options: { host: 127.0.0.1, port: ${hl7} } }`,
    });
    const monitor = await MllpSender.connect(hl7);
    cleanup.push(() => monitor.close());
    let n = 0;
    const acked = async () =>
      (await monitor.send(pcd01Message({ controlId: `P${++n}`, time: new Date(), values: { hr: 70 } }))).code;
    const page = async () => (await fetch(`http://127.0.0.1:${gw.config.web.port}/status`)).status;

    // A log the cart never finishes: it grows at every scan.
    const grow = setInterval(() => appendFileSync(join(base, "inbox/trace.log"), "x".repeat(512)), 20);
    cleanup.push(() => clearInterval(grow));
    await waitFor(
      () => existsSync(join(base, "inbox/rejected/trace.log.why.txt")),
      10_000,
      "the file that never settles set aside",
    );
    clearInterval(grow);
    expect(readFileSync(join(base, "inbox/rejected/trace.log.why.txt"), "utf8")).toMatch(
      /^VG_FILE_NEVER_SETTLED: still changing \d+ s after it appeared/,
    );
    expect(await acked()).toBe("AA");

    // The watched folder now leads into /proc (whose files claim 0 bytes and never end): not read.
    rmSync(join(base, "cart"));
    symlinkSync("/proc/self", join(base, "cart"));
    await waitFor(
      () => /now leads to \/proc/.test(gw.devices.get("cart")?.lastError?.message ?? ""),
      10_000,
      "the swapped folder refused",
    );
    expect(gw.devices.get("cart")?.lastError).toMatchObject({ code: "VG_FOLDER_MOVED", next: "operator" });
    expect(await acked()).toBe("AA");
    expect(await page()).toBe(200);
    expect(gw.devices.get("cart")?.frames).toBe(0);
    expect(gw.devices.get("mon")?.events).toBeGreaterThanOrEqual(2);
  });
});
