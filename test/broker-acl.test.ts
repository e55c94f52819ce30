// The ACL the project ships for a county center's mosquitto (config/broker/mosquitto.acl), loaded by a
// real mosquitto process with password logins: a real gateway works through it (events in, a command
// answered), and a vehicle's login cannot publish under another vehicle's id, read another's commands
// or events, nor pose as the center. docs/protocol.md, "Identity and ACLs".
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { connectCenter, waitFor } from "./support/mqtt.ts";
import { mosquitto, ROOT } from "./support/processes.ts";
import { startGateway } from "./support/rig.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const LOGINS = { "amb-01": "pw-amb-01", "amb-02": "pw-amb-02", Center: "pw-center" } as const;

/** A mosquitto with password logins and the shipped ACL. */
async function aclBroker() {
  const dir = mkdtempSync(join(tmpdir(), "vg-acl-"));
  const passwd = join(dir, "passwd");
  writeFileSync(passwd, "");
  for (const [user, pw] of Object.entries(LOGINS)) execFileSync("mosquitto_passwd", ["-b", passwd, user, pw]);
  const broker = await mosquitto(
    `allow_anonymous false\npassword_file ${passwd}\nacl_file ${join(ROOT, "config/broker/mosquitto.acl")}\n`,
  );
  cleanup.push(() => broker.stop());
  return { broker, dir };
}

/**
 * Publishes at QoS 1 as `login` on a connection of its own: "acked" when the broker took it,
 * "refused" when it answered not authorized (0x87) or closed the connection instead.
 */
async function attempt(url: string, login: keyof typeof LOGINS, topic: string, payload: string) {
  const client = await mqtt.connectAsync(url, {
    protocolVersion: 5,
    clientId: `try-${login}-${Math.random().toString(16).slice(2)}`,
    username: login,
    password: LOGINS[login],
    reconnectPeriod: 0,
  });
  const outcome = await new Promise<"acked" | "refused">((resolve) => {
    client.once("close", () => resolve("refused"));
    client.publish(topic, payload, { qos: 1 }, (err) => resolve(err ? "refused" : "acked"));
  });
  await client.endAsync(true);
  return outcome;
}

describe("the shipped mosquitto ACL", () => {
  it("lets a gateway work under its own id, and refuses a vehicle's login everything of another vehicle and of the center", async () => {
    const { broker, dir } = await aclBroker();
    const passwordFile = join(dir, "amb-01.password");
    writeFileSync(passwordFile, `${LOGINS["amb-01"]}\n`, { mode: 0o600 });
    const center = await connectCenter(broker.url, "amb-01", {
      protocolVersion: 5,
      username: "Center",
      password: LOGINS.Center,
    });
    cleanup.push(() => center.close());
    const { gw } = await startGateway(
      {
        id: "amb-01",
        devices: "  []",
        uplink: { url: broker.url, more: `protocolVersion: 5, username: amb-01, passwordFile: "${passwordFile}"` },
      },
      cleanup,
    );
    await waitFor(() => gw.status().uplink.state === "connected", 5000, "the gateway logged in");

    // The gateway's own traffic passes: an event in, a command out and its answer back.
    const [e] = await gw.ingest({ id: "monitor", driver: "hl7-pcd01", kind: "monitor" }, [
      { kind: "vitals", body: { observations: [{ code: "MDC_ECG_HEART_RATE", value: 72, unit: "/min" }] } },
    ]);
    await center.waitFor(() => center.events.some((x) => x.id === e!.id), 5000, "the event at the center");
    await center.client.publishAsync("vitalgate/v1/amb-01/cmd/ping", JSON.stringify({ id: "p1" }), { qos: 1 });
    await center.waitFor(
      () => center.messages.some((m) => m.topic === "vitalgate/v1/amb-01/cmd-result"),
      5000,
      "the gateway's answer",
    );

    // amb-01's login (taken off the vehicle), as other clients: publishing under another vehicle's id,
    // or as the center to itself, is refused; its own topics it may publish to.
    const forged = (what: string) => JSON.stringify({ forged: what });
    for (const topic of [
      "vitalgate/v1/amb-02/ev/vitals",
      "vitalgate/v1/amb-02/status",
      "vitalgate/v1/amb-01/receipt",
      "vitalgate/v1/amb-01/cmd/case-open",
      "vitalgate/v1/amb-01/report",
    ])
      expect(await attempt(broker.url, "amb-01", topic, forged(topic)), topic).toBe("refused");
    expect(await attempt(broker.url, "amb-01", "vitalgate/v1/amb-01/cmd-result", forged("own"))).toBe("acked");
    const rogue = await mqtt.connectAsync(broker.url, {
      protocolVersion: 5,
      clientId: "rogue-amb-01",
      username: "amb-01",
      password: LOGINS["amb-01"],
      reconnectPeriod: 0,
    });
    cleanup.push(() => rogue.endAsync(true));
    // Reading another vehicle's commands, receipts or events, or any events (its own included): mosquitto
    // grants the subscription but delivers nothing the ACL does not let the login read.
    const seen: string[] = [];
    rogue.on("message", (topic) => seen.push(topic));
    for (const topic of [
      "vitalgate/v1/amb-02/cmd/+",
      "vitalgate/v1/amb-02/receipt",
      "vitalgate/v1/+/ev/#",
      "vitalgate/v1/amb-01/ev/#",
      "vitalgate/v1/amb-01/cmd/+",
    ])
      await rogue.subscribeAsync(topic, { qos: 1 });
    await center.client.subscribeAsync("$share/ecg-center/vitalgate/v1/amb-02/ev/#", { qos: 1 });
    const other = await mqtt.connectAsync(broker.url, {
      protocolVersion: 5,
      clientId: "amb-02-test",
      username: "amb-02",
      password: LOGINS["amb-02"],
      reconnectPeriod: 0,
    });
    cleanup.push(() => other.endAsync(true));
    await other.publishAsync("vitalgate/v1/amb-02/ev/vitals", forged("no: amb-02's own"), { qos: 1 });
    await center.client.publishAsync("vitalgate/v1/amb-02/cmd/ping", JSON.stringify({ id: "p2" }), { qos: 1 });
    await center.client.publishAsync("vitalgate/v1/amb-02/receipt", '{"ids":[]}', { qos: 1 });
    // Last, amb-01's own command: once it is in, everything sent before it was delivered or withheld.
    await center.client.publishAsync("vitalgate/v1/amb-01/cmd/ping", JSON.stringify({ id: "p3" }), { qos: 1 });
    await waitFor(() => seen.includes("vitalgate/v1/amb-01/cmd/ping"), 5000, "amb-01's own command");
    expect(seen).toEqual(["vitalgate/v1/amb-01/cmd/ping"]);
    // The center reads everything, through a shared subscription too.
    await center.waitFor(
      () => center.messages.some((m) => m.topic === "vitalgate/v1/amb-02/ev/vitals"),
      5000,
      "amb-02's event at the center",
    );
    // Nothing the rogue forged reached the center (what it sent under its own id did).
    const forgedSeen = center.messages.filter((m) => m.payload.toString().startsWith('{"forged":"vitalgate'));
    expect(forgedSeen).toEqual([]);
  });
});
