// The embedded broker's logins and topic rights (issue 13 item 3), attacked from local clients over
// real TCP: anonymous and wrong-password clients are refused; the gateway's own login, leaked, cannot
// forge the center's reading or commands, nor read the events; the viewer reads and publishes nothing;
// only the configured center bridge's reading reaches the case.
import { statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { readBrokerCredentials, BROKER_CREDENTIALS_FILE, type BrokerLogin } from "../src/uplink/broker.ts";
import { main } from "../src/cli/main.ts";
import { loadConfig } from "../src/config/load.ts";
import { findDriver } from "../drivers/registry.ts";
import { connectEmbeddedCenter, waitFor } from "./support/mqtt.ts";
import { startGateway } from "./support/rig.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** Connects as `login` (none: anonymous); the broker's refusal as its message. */
async function connect(port: number, login?: Partial<BrokerLogin>): Promise<mqtt.MqttClient | string> {
  try {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      ...login,
    });
    cleanup.push(() => client.endAsync(true));
    return client;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Publishes at QoS 1: "acked" when the broker took it, "closed" when it threw the client out instead. */
function publish(client: mqtt.MqttClient, topic: string, payload: string): Promise<"acked" | "closed"> {
  return new Promise((resolve) => {
    client.once("close", () => resolve("closed"));
    client.publish(topic, payload, { qos: 1 }, (err) => resolve(err ? "closed" : "acked"));
  });
}

describe("the embedded broker's logins and rights", () => {
  it("refuses anonymous clients, lets no login but the center bridge's forge a reading or a command, and the gateway's read no events", async () => {
    const { gw, config } = await startGateway({ id: "gw-acl", uplink: "embedded", devices: "  []" }, cleanup);
    await waitFor(() => gw.status().uplink.state === "connected", 5000, "the gateway logged in to its own broker");
    const port = config.embeddedBroker.port;
    const base = "vitalgate/v1/gw-acl";
    const logins = readBrokerCredentials(config.stateDir);
    expect(statSync(join(config.stateDir, BROKER_CREDENTIALS_FILE)).mode & 0o777).toBe(0o600);
    const readings: unknown[] = [];
    gw.cases.on("report", (r) => readings.push(r));
    // An ECG this gateway sent: a reading of any other is refused whoever sends it.
    const [ecg] = await gw.ingest({ id: "cart", driver: "ecg-cart", kind: "ecg-cart" }, [
      {
        kind: "ecg12",
        body: { format: "dicom-ecg", fs: 500, durationS: 0, leads: [] },
        original: { contentType: "application/dicom", bytes: new Uint8Array([1, 2, 3]) },
      },
    ]);
    const reading = (reader: string) =>
      JSON.stringify({
        eventId: ecg!.id,
        reader,
        at: new Date().toISOString(),
        conclusion: "STEMI",
        text: "fake",
      });

    expect(await connect(port)).toMatch(/Bad username or password|Not authorized/i);
    expect(await connect(port, { username: "viewer", password: "guess" })).toMatch(
      /Bad username or password|Not authorized/i,
    );
    expect(await connect(port, { username: logins.gateway.username, password: logins.viewer.password })).toMatch(
      /Bad username or password|Not authorized/i,
    );

    // The gateway's login (say, copied off the box) cannot pose as the center.
    for (const topic of [`${base}/report`, `${base}/receipt`, `${base}/cmd/case-open`]) {
      const asGateway = (await connect(port, logins.gateway)) as mqtt.MqttClient;
      expect(
        await publish(
          asGateway,
          topic,
          topic.endsWith("report") ? reading("Dr. Fake (gateway login)") : JSON.stringify({ id: "x", args: {} }),
        ),
        topic,
      ).toBe("closed");
    }
    const asGateway = (await connect(port, logins.gateway)) as mqtt.MqttClient;
    // refused (SUBACK 0x80): the gateway's login reads no patient data back
    await expect(asGateway.subscribeAsync(`${base}/ev/#`, { qos: 1 })).rejects.toThrow(/Subscribe error/);

    // The viewer reads, and publishes nothing.
    const viewer = (await connect(port, logins.viewer)) as mqtt.MqttClient;
    const seen: string[] = [];
    viewer.on("message", (topic) => seen.push(topic));
    await viewer.subscribeAsync(`${base}/#`, { qos: 1 });
    await waitFor(() => seen.includes(`${base}/status`), 5000, "the viewer reading the retained status");
    expect(await publish(viewer, `${base}/report`, reading("Dr. Fake (viewer login)"))).toBe("closed");
    const again = (await connect(port, logins.viewer)) as mqtt.MqttClient;
    expect(await publish(again, `${base}/ev/vitals`, "{}")).toBe("closed");

    // The center bridge's reading is the one that arrives.
    const center = await connectEmbeddedCenter(config);
    cleanup.push(() => center.close());
    await center.client.publishAsync(`${base}/report`, reading("Dr. Wang"), { qos: 1 });
    await waitFor(() => readings.length > 0, 5000, "the center's reading");
    expect(readings).toEqual([expect.objectContaining({ reader: "Dr. Wang" })]);
    expect(gw.cases.readingsOutsideCases().map((r) => r.reader)).toEqual(["Dr. Wang"]);
  });

  it("gives the viewer's login to `vitalgate broker viewer`, as mosquitto_sub arguments that log in", async () => {
    const { gw, config } = await startGateway({ id: "gw-acl-cli", uplink: "embedded", devices: "  []" }, cleanup);
    await waitFor(() => gw.status().uplink.state === "connected", 5000, "the gateway logged in to its own broker");
    const file = join(config.stateDir, "cli.yaml");
    writeFileSync(
      file,
      `gateway: { id: gw-acl-cli }\nstateDir: ${config.stateDir}\nembeddedBroker: { port: ${config.embeddedBroker.port} }\n`,
    );
    const out: string[] = [];
    expect(
      await main(["broker", "viewer", "--config", file], { out: (t) => out.push(t), err: (t) => out.push(t) }),
    ).toBe(0);
    const args = out.join("").trim().split(" ");
    const arg = (flag: string) => args[args.indexOf(flag) + 1]!;
    expect(arg("-u")).toBe("viewer");
    const client = await connect(Number(arg("-p")), { username: arg("-u"), password: arg("-P") });
    expect(typeof client).not.toBe("string");
  });

  it("will not listen beyond loopback without a center bridge: a configuration error naming the key", () => {
    const r = loadConfig({
      text: "gateway: { id: gw-open }\nembeddedBroker: { host: 0.0.0.0 }\n",
      drivers: findDriver,
    });
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.errors).toEqual([
      expect.objectContaining({
        path: "embeddedBroker.host",
        message: expect.stringMatching(/beyond loopback .*embeddedBroker\.center/),
      }),
    ]);
  });
});
