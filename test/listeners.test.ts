// Every device listener is bounded (issue 13 item 4), over real TCP: one host holding idle connections
// cannot lock a real monitor out, its idle connections are closed, and its refused connections make a
// summary line, not a line each.
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { pcd01Message } from "../drivers/hl7-pcd01/synthetic.ts";
import { MllpSender } from "./support/mllp-sender.ts";
import { waitFor } from "./support/mqtt.ts";
import { freePort } from "./support/processes.ts";
import { startGateway } from "./support/rig.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** A TCP connection that says nothing, and whether it was closed on us. */
function idle(port: number): Promise<{ socket: Socket; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    let closed = false;
    const socket = connect({ port, host: "127.0.0.1" });
    socket.on("close", () => (closed = true));
    socket.once("error", () => undefined);
    socket.once("connect", () => resolve({ socket, closed: () => closed }));
    socket.once("error", reject);
    cleanup.push(() => socket.destroy());
  });
}

describe("device listeners", () => {
  it("let a real monitor in past 40 idle connections from one host, close those idle ones, and log the refused ones as one line", async () => {
    const port = await freePort();
    const { gw, log } = await startGateway(
      {
        id: "gw-flood",
        devices: `{ id: mon, driver: hl7-pcd01, options: { host: 127.0.0.1, port: ${port} } }`,
        extra: "listeners: { idleS: 1 }\n",
      },
      cleanup,
    );
    await waitFor(() => gw.devices.get("mon")?.state === "listening", 5000, "the HL7 listener");
    const flood = await Promise.all(Array.from({ length: 40 }, () => idle(port)));
    await waitFor(
      () => flood.filter((c) => c.closed()).length >= 24,
      5000,
      "the connections over the per-address cap refused",
    );

    // another host (another loopback address) gets in and is acknowledged
    const monitor = await MllpSender.connect(port, "127.0.0.1", "127.0.0.2");
    cleanup.push(() => monitor.close());
    expect((await monitor.send(pcd01Message({ controlId: "REAL1", time: new Date(), values: { hr: 72 } }))).code).toBe(
      "AA",
    );

    const refusedLines = log.lines.filter((l) => l.code === "VG_TOO_MANY_CONNECTIONS");
    expect(refusedLines).toHaveLength(1); // not one per refused connection: the rest are summed up every 10 s
    expect(refusedLines[0]!.msg).toMatch(
      /refused 1 connection from 1 address: that address has its most connections \(16\)/,
    );
    expect(gw.devices.get("mon")?.lastError?.code).toBe("VG_TOO_MANY_CONNECTIONS");

    // the 16 let in said nothing for idleS: closed
    await waitFor(() => flood.every((c) => c.closed()), 10_000, "the idle connections closed");
    await gw.devices.stop();
    expect(log.lines.filter((l) => l.code === "VG_TOO_MANY_CONNECTIONS").map((l) => l.msg)).toEqual([
      refusedLines[0]!.msg,
      "refused 23 connections from 1 address: that address has its most connections (16)",
    ]);
  });
});
