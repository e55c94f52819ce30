// The uplink over TLS to a real mosquitto: the server's certificate is verified against the
// configured CA, and the broker requires the gateway's client certificate.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Forwarder, type UplinkOptions } from "../src/uplink/forwarder.ts";
import { silentLogger } from "../src/log.ts";
import { Outbox } from "../src/outbox/outbox.ts";
import { connectCenter, waitFor } from "./support/mqtt.ts";
import { makePki, type Pki } from "./support/pki.ts";
import { freePort, mosquitto, type Mosquitto } from "./support/processes.ts";
import { vitals } from "./support/events.ts";

const ready =
  spawnSync("mosquitto", ["-h"]).error === undefined && spawnSync("openssl", ["version"]).error === undefined;
if (!ready) console.warn("skipping TLS tests: needs mosquitto and openssl");

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function tlsBroker(pki: Pki): Promise<{ broker: Mosquitto; tlsPort: number }> {
  const tlsPort = await freePort();
  const broker = await mosquitto(
    `listener ${tlsPort} 127.0.0.1\ncafile ${pki.ca}\ncertfile ${pki.serverCert}\nkeyfile ${pki.serverKey}\nrequire_certificate true\nuse_identity_as_username true\n`,
  );
  cleanup.push(() => broker.stop());
  return { broker, tlsPort };
}

function forwarder(url: string, tls: Partial<UplinkOptions>) {
  const outbox = new Outbox({
    path: join(mkdtempSync(join(tmpdir(), "vg-tls-")), "outbox.db"),
    quotaBytes: 1 << 30,
    batchMax: 100,
    nowMs: Date.now,
  });
  outbox.open();
  const errors: string[] = [];
  const log = Object.assign(Object.create(silentLogger), {
    warn: (o: { err?: string }) => errors.push(String(o.err)),
    child: () => log,
  });
  const fwd = new Forwarder(
    {
      url,
      protocolVersion: 5,
      clientId: "vitalgate-yq-amb-07",
      rejectUnauthorized: true,
      inflight: 8,
      keepaliveS: 10,
      connectTimeoutS: 5,
      backoff: { initialMs: 100, maxMs: 500 },
      receipts: false,
      receiptTimeoutS: 600,
      statusIntervalS: 60,
      ...tls,
    },
    { outbox, log, nowMs: Date.now, status: () => ({}) },
    "yq-amb-07",
  );
  cleanup.push(
    () => outbox.close(),
    () => fwd.stop(),
  );
  return { fwd, outbox, errors };
}

describe.skipIf(!ready)("uplink over TLS", () => {
  const pki = ready ? makePki() : (undefined as never);

  it("delivers over mqtts with a verified server certificate and a client certificate", async () => {
    const { broker, tlsPort } = await tlsBroker(pki);
    const center = await connectCenter(broker.url, "yq-amb-07");
    cleanup.push(() => center.close());
    const { fwd, outbox } = forwarder(`mqtts://127.0.0.1:${tlsPort}`, {
      ca: readFileSync(pki.ca),
      cert: readFileSync(pki.clientCert),
      key: readFileSync(pki.clientKey),
    });
    const [e] = await outbox.append([vitals(72)]);
    fwd.start();
    await center.waitFor(() => center.events.some((x) => x.id === e!.id), 10_000, "the event over TLS");
    expect(fwd.state).toBe("connected");
  });

  it("refuses a server whose certificate the configured CA did not sign", async () => {
    const { tlsPort } = await tlsBroker(pki);
    const { fwd, errors } = forwarder(`mqtts://127.0.0.1:${tlsPort}`, {
      ca: readFileSync(pki.otherCa),
      cert: readFileSync(pki.clientCert),
      key: readFileSync(pki.clientKey),
    });
    fwd.start();
    await waitFor(() => errors.some((e) => /certificate/i.test(e)), 10_000, "a certificate error");
    expect(fwd.state).not.toBe("connected");
  });

  it("is refused by a broker that requires a client certificate when it has none", async () => {
    const { tlsPort } = await tlsBroker(pki);
    const { fwd } = forwarder(`mqtts://127.0.0.1:${tlsPort}`, { ca: readFileSync(pki.ca) });
    const states: string[] = [];
    fwd.on("state", (s) => states.push(s));
    fwd.start();
    await waitFor(() => states.filter((s) => s === "waiting").length >= 2, 10_000, "two refused attempts");
    expect(states).not.toContain("connected");
  });
});
