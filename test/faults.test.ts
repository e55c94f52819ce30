// The fault suite, end to end with real parts (test/support/e2e.ts): faults at the edges of the
// gateway, each asserting that what a device was told was accepted reaches the center.
import { spawnSync } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { daemonRig, messagesAt, sendAll } from "./support/e2e.ts";

const hasMosquitto = spawnSync("mosquitto", ["-h"]).error === undefined;
if (!hasMosquitto) console.warn("skipping the fault suite: mosquitto is not installed (apt-get install mosquitto)");

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe.skipIf(!hasMosquitto)("faults, end to end", () => {
  it("loses nothing acknowledged AA when the broker is killed -9 mid-stream and restarted with its persistence", { timeout: 60_000 }, async () => {
    const r = await daemonRig(cleanup);
    const acked = new Set<number>();
    let restarted: Promise<void> | undefined;
    await sendAll(r, 0, 400, acked, (i) => {
      // The broker dies while the monitor goes on sending and the gateway is forwarding; it comes
      // back on its port a moment later from its last autosave, as after a crash under systemd.
      if (i === 150) {
        restarted = (async () => {
          await r.broker.kill();
          await new Promise((res) => setTimeout(res, 500));
          await r.broker.start();
        })();
      }
    });
    await restarted;
    // Duplicates are allowed (the center dedups by event id); a gap is not.
    await r.center.waitFor(() => [...acked].every((i) => messagesAt(r.center).has(i)), 30_000, "every acknowledged message at the center");
    expect(acked.size).toBe(400);
    expect(r.daemon.output()).toContain("uplink down"); // the gateway did lose the broker
    const status = (await (await fetch(`http://127.0.0.1:${r.webPort}/status`)).json()) as { uplink: { state: string } };
    expect(status.uplink.state).toBe("connected");
  });
});
