// The pairing page's watch for unpaired network senders (src/pairing/senders.ts) over real TCP, generic
// over the drivers' sender detection (src/devices/sender.ts): each driver recognises its device by the
// first byte, reads who it is and refuses its data so the sender keeps it. HL7 and DICOM through a
// running gateway are in test/pairing.test.ts; here the analyser's bids, the GPS's sentences, and a
// driver the watch has never heard of.
import { connect, type Socket } from "node:net";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { drivers } from "../drivers/registry.ts";
import { syntheticDrive } from "../drivers/nmea-gps/synthetic.ts";
import { defineDriver, type DriverDefinition } from "../src/devices/driver.ts";
import { NOT_PAIRED, SenderWatch } from "../src/pairing/senders.ts";
import { waitFor } from "./support/mqtt.ts";
import { freePort } from "./support/processes.ts";
import { lineDriver } from "./support/line-driver.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function watching(list: readonly DriverDefinition<unknown>[]) {
  const port = await freePort();
  const watch = new SenderWatch(
    {
      host: "127.0.0.1",
      maxSenders: 8,
      maxConnections: 8,
      maxPerAddress: 8,
      idleMs: 5000,
      maxBytes: 1 << 20,
      previewSize: 3,
    },
    { log: pino({ level: "silent" }), nowMs: Date.now, drivers: list },
  );
  await watch.setPorts([port]);
  cleanup.push(() => watch.stop());
  return { watch, port };
}

async function sender(port: number) {
  const socket: Socket = connect({ host: "127.0.0.1", port });
  const heard: Buffer[] = [];
  socket.on("data", (d: Buffer) => heard.push(d));
  socket.on("error", () => undefined);
  await new Promise((resolve) => socket.once("connect", resolve));
  cleanup.push(() => socket.destroy());
  return { socket, heard: () => Buffer.concat(heard) };
}

describe("unpaired senders, told apart by the drivers' sender detection", () => {
  it("answers an ASTM analyser's every bid NAK, so it keeps its results, and says to make it a server", async () => {
    const { watch, port } = await watching(drivers);
    const analyser = await sender(port);
    analyser.socket.write(Uint8Array.of(0x05));
    await waitFor(() => analyser.heard().length === 1, 5000, "the first NAK");
    analyser.socket.write(Uint8Array.of(0x05));
    await waitFor(() => analyser.heard().length === 2, 5000, "the second NAK");
    expect([...analyser.heard()]).toEqual([0x15, 0x15]);
    expect(watch.list()).toEqual([
      expect.objectContaining({
        protocol: "astm",
        port,
        messages: 2,
        note: expect.stringContaining("set it (or its serial server) to listen as a TCP server"),
      }),
    ]);
    expect(watch.list()[0]!.suggestion).toBeUndefined();
  });

  it("previews a GPS's fixes from its sentences and answers nothing (NMEA is one-way)", async () => {
    const { watch, port } = await watching(drivers);
    const gps = await sender(port);
    for (const epoch of syntheticDrive({ startMs: Date.parse("2026-12-07T08:00:00Z"), epochs: 3 }))
      gps.socket.write(epoch.text);
    await waitFor(() => (watch.list()[0]?.preview.length ?? 0) > 0, 5000, "a position in the preview");
    const [seen] = watch.list();
    expect(seen).toMatchObject({ protocol: "nmea", port, note: expect.stringContaining("TCP server mode") });
    expect(seen!.messages).toBeGreaterThanOrEqual(6);
    expect(seen!.preview[0]).toMatchObject({ kind: "position", body: { fix: "3d" } });
    expect(gps.heard()).toHaveLength(0);
  });

  it("recognises the device of any driver that declares sender detection, and closes what none recognises", async () => {
    // A driver the watch has never heard of: its lines start with "v", it is refused "NAK <reason>".
    const lines = defineDriver({
      ...lineDriver,
      sender: {
        protocol: "test-line",
        name: "the test line protocol",
        opens: (first) => first === 0x76,
        listen: (port) => ({
          hear: (chunk, context) => [
            {
              who: "a test device",
              identity: { said: Buffer.from(chunk).toString("latin1").trim() },
              pairWith: { port },
              reply: Buffer.from(`NAK ${context.reason}\n`),
            },
          ],
        }),
      },
    }) as DriverDefinition<unknown>;
    const { watch, port } = await watching([lines]);
    const device = await sender(port);
    device.socket.write("v 72\n");
    await waitFor(() => device.heard().length > 0, 5000, "the refusal");
    expect(device.heard().toString()).toBe(`NAK ${NOT_PAIRED}\n`);
    expect(watch.list()).toEqual([
      expect.objectContaining({
        key: `test-line:${port}:a test device`,
        protocol: "test-line",
        identity: { said: "v 72" },
        suggestion: { driver: "test-line", options: { port } },
      }),
    ]);
    const stranger = await sender(port);
    stranger.socket.write("$GPRMC,,V*00\r\n"); // NMEA, but no driver here reads it
    await new Promise((resolve) => stranger.socket.once("close", resolve));
    expect(watch.list()).toHaveLength(1);
  });
});
