// A really full disk (a small tmpfs) under the whole gateway: the HL7 monitor is told AE, one log line
// says so however many messages are refused, a restart with the disk still full starts and forwards
// what the outbox holds, and the center (on mosquitto) gets the disk-full alarm raised, cleared, and raised again.
// The real gateway in-process, the real HL7 driver over MLLP/TCP, mosquitto as a process, SQLite.
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { pcd01Message } from "../drivers/hl7-pcd01/synthetic.ts";
import type { AlarmBody, Envelope } from "../src/events/model.ts";
import { MllpSender } from "./support/mllp-sender.ts";
import { connectCenter } from "./support/mqtt.ts";
import { freePort, mosquitto } from "./support/processes.ts";
import { startGateway } from "./support/rig.ts";
import { canMountTmpfs, fillDisk, mountTmpfs } from "./support/tmpfs.ts";

const hasMosquitto = spawnSync("mosquitto", ["-h"]).error === undefined;
if (!hasMosquitto) console.warn("skipping the gateway's full-disk test: mosquitto is not installed");

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const message = (i: number) => pcd01Message({ controlId: `MSG${i}`, time: new Date(), values: { hr: 1000 + i } });
const diskAlarms = (events: Envelope[]) =>
  events
    .filter((e) => e.kind === "alarm" && (e.body as AlarmBody).code === "VG_STORE_DISK_FULL")
    .map((e) => (e.body as AlarmBody).state);

describe.skipIf(!canMountTmpfs("the gateway's full-disk test") || !hasMosquitto)("the gateway on a full disk", () => {
  it("answers AE with one log line, restarts and forwards what it holds, and raises, clears and raises again the alarm at the center", async () => {
    const disk = mountTmpfs("8m");
    cleanup.push(() => disk.unmount());
    const stateDir = join(disk.dir, "state");
    const filler = join(disk.dir, "filler");
    const port = await freePort();
    const devices = `{ id: bed1, driver: hl7-pcd01, options: { host: 127.0.0.1, port: ${port} } }`;

    // First run, no uplink: 20 messages wait in the outbox; then the disk fills up.
    const first = await startGateway({ id: "gw-full", stateDir, devices }, cleanup);
    let sender = await MllpSender.connect(port);
    for (let i = 0; i < 20; i++) expect(await sender.send(message(i))).toMatchObject({ code: "AA" });
    fillDisk(filler);
    for (let i = 20; i < 70; i++) expect(await sender.send(message(i))).toMatchObject({ code: "AE" });
    // One line for the condition, one for the device's refusals: not one per refused message.
    expect(first.log.lines.filter((l) => l.code === "VG_STORE_DISK_FULL" && l.device === undefined)).toHaveLength(1);
    expect(
      first.log.lines.filter(
        (l) => l.msg === "message not stored, device told so: the disk is full: events cannot be stored",
      ),
    ).toHaveLength(1);
    expect(first.gw.status().store).toMatchObject({ state: "refusing", diskFull: true });
    sender.close();
    await first.gw.stop();

    // Restart with the disk still full: it starts, refuses new data, and forwards what it holds.
    const broker = await mosquitto();
    cleanup.push(() => broker.stop());
    const center = await connectCenter(broker.url, "gw-full");
    cleanup.push(() => center.close());
    const second = await startGateway({ id: "gw-full", stateDir, devices, uplink: { url: broker.url } }, cleanup);
    const hrs = () => new Set(center.events.filter((e) => e.kind === "vitals").map((e) => e.msg?.id));
    await center.waitFor(
      () => hrs().size === 20 && diskAlarms(center.events).length === 1,
      20_000,
      "the 20 stored messages and the disk-full alarm",
    );
    const [raised] = center.events.filter((e) => e.kind === "alarm");
    expect(raised).toMatchObject({
      seq: 0,
      dev: { id: "gateway" },
      body: { code: "VG_STORE_DISK_FULL", state: "active" },
    });
    sender = await MllpSender.connect(port);
    cleanup.push(() => sender.close());
    expect(await sender.send(message(70))).toMatchObject({ code: "AE" });
    expect(second.log.lines.filter((l) => l.code === "VG_STORE_DISK_FULL" && l.device === undefined)).toHaveLength(1);

    // Room again: the next message is stored, and the center hears the alarm cleared.
    rmSync(filler);
    expect(await sender.send(message(71))).toMatchObject({ code: "AA" });
    await center.waitFor(
      () => diskAlarms(center.events).length === 2 && hrs().has("MSG71"),
      10_000,
      "the alarm cleared and message 71",
    );
    expect(diskAlarms(center.events)).toEqual(["active", "inactive"]);
    expect(second.gw.status().store).toMatchObject({ state: "ok", diskFull: false });

    // Full again: raised again.
    fillDisk(filler);
    expect(await sender.send(message(72))).toMatchObject({ code: "AE" });
    await center.waitFor(() => diskAlarms(center.events).length === 3, 10_000, "the alarm raised again");
    expect(diskAlarms(center.events)).toEqual(["active", "inactive", "active"]);
    expect(second.log.lines.filter((l) => l.code === "VG_STORE_DISK_FULL" && l.device === undefined)).toHaveLength(2);
  });
});
