// What real monitors send, through the whole gateway (issue 12, issue 18 item 5): the hl7-pcd01 driver
// behind a real MLLP listener over TCP, the real SQLite outbox, /metrics over HTTP. Demo data and a
// vendor's "no value" marker are stored marked or not at all, counted per device and code, and said
// once in the log; an ORU without OBX is answered AE and counted.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { AlarmBody, VitalsBody } from "../src/events/model.ts";
import { MllpSender } from "./support/mllp-sender.ts";
import { waitFor } from "./support/mqtt.ts";
import { freePort } from "./support/processes.ts";
import { outboxEvents, startGateway } from "./support/rig.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

const fixture = (name: string) =>
  readFileSync(fileURLToPath(new URL(`fixtures/hl7/${name}`, import.meta.url)), "latin1");
/** The fixture with its control id replaced, as a monitor numbers each message anew. */
const numbered = (name: string, id: string) => fixture(name).replace(/^(MSH(?:\|[^|\r]*){8}\|)[^|\r]*/, `$1${id}`);

describe("hl7-pcd01 in the gateway: demo, no value, technical alarms, an empty ORU", () => {
  it("stores demo data marked, never a sentinel, counts each condition per device, says each once, and answers an empty ORU AE", async () => {
    const port = await freePort();
    const { gw, log, config } = await startGateway(
      { id: "gw-hl7q", devices: `{ id: bed1, driver: hl7-pcd01, options: { host: 127.0.0.1, port: ${port} } }` },
      cleanup,
    );
    await waitFor(() => gw.devices.get("bed1")?.state === "listening", 5000, "listener");
    const monitor = await MllpSender.connect(port);
    cleanup.push(() => monitor.close());

    expect((await monitor.send(numbered("mindray-demo.hl7", "D1"))).code).toBe("AA");
    expect((await monitor.send(numbered("mindray-demo.hl7", "D2"))).code).toBe("AA");
    expect((await monitor.send(numbered("mindray-pds-novalue.hl7", "N1"))).code).toBe("AA");
    expect((await monitor.send(numbered("philips-piic-inop.hl7", "P1"))).code).toBe("AA");
    const empty = await monitor.send(
      "MSH|^~\\&|MON||||20261123152901+0800||ORU^R01|E1|P|2.6\rPID|||SIM1||SYNTHETIC^PATIENT\rOBR|1|||||20261123152901+0800\r",
    );
    expect(empty).toMatchObject({ code: "AE", controlId: "E1" });
    expect(empty.raw).toMatch(/ERR\|\|OBX\^1\|100\^Segment sequence error\^HL70357\|E/);

    const vitals = outboxEvents<VitalsBody>(gw, "vitals");
    const demo = vitals.filter((e) => e.body.demo);
    expect(demo).toHaveLength(2);
    for (const e of demo) expect(e.body.observations.every((o) => o.demo === true)).toBe(true);
    const all = vitals.flatMap((e) => e.body.observations);
    expect(all.some((o) => o.value === -100 || o.value === "---")).toBe(false);
    const alarms = outboxEvents<AlarmBody>(gw, "alarm");
    expect(alarms.map((e) => [e.body.code, e.body.type])).toEqual([
      ["HardInop", "technical"],
      ["Yellow Alarm", "physiological"],
    ]);

    await waitFor(() => gw.devices.get("bed1")?.conditions?.HL7_NO_OBSERVATIONS === 1, 5000, "the empty ORU counted");
    // -100 three times and "---" once in N1; OBX-11 X with a value once in P1.
    expect(gw.devices.get("bed1")?.conditions).toEqual({ HL7_DEMO: 2, HL7_NO_VALUE: 5, HL7_NO_OBSERVATIONS: 1 });
    const metrics = await (await fetch(`http://127.0.0.1:${config.web.port}/metrics`)).text();
    expect(metrics).toMatch(/vitalgate_device_conditions_total\{device="bed1",driver="hl7-pcd01",code="HL7_DEMO"\} 2/);
    expect(metrics).toMatch(
      /vitalgate_device_conditions_total\{device="bed1",driver="hl7-pcd01",code="HL7_NO_OBSERVATIONS"\} 1/,
    );

    // Two demo messages, one warning; no line of the log carries the patient's name.
    const demoLines = log.lines.filter((l) => l.code === "HL7_DEMO");
    expect(demoLines).toHaveLength(1);
    expect(demoLines[0]).toMatchObject({
      level: 40,
      device: "bed1",
      msg: "demo data (OBX-8 DEMO): its events are marked demo",
    });
    expect(log.raw.join("")).not.toMatch(/SYNTHETIC|PATIENT|HR Low/);
  });
});
