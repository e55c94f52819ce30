// The forwarder's options as the tests run it: a short keepalive and quick reconnects, a fresh client id.
import type { UplinkOptions } from "../../src/uplink/forwarder.ts";

export function testUplinkOptions(url: string, o: Partial<UplinkOptions> = {}): UplinkOptions {
  return {
    url,
    protocolVersion: 4,
    clientId: `vg-test-${Math.random().toString(16).slice(2)}`,
    rejectUnauthorized: true,
    inflight: 32,
    keepaliveS: 5,
    connectTimeoutS: 5,
    backoff: { initialMs: 50, maxMs: 400 },
    receipts: false,
    receiptTimeoutS: 600,
    statusIntervalS: 60,
    ...o,
  };
}
