// A device's resend after a lost acknowledgement (the gateway committed, then the ACK never left):
// the events carry the device's own message identity, and intake recognises the same message from
// the same device within store.resendWindowS, answering it as accepted again with no second event.
// The real gateway in-process, the real HL7 driver over MLLP/TCP, SQLite on a real file.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { labEvents } from "../drivers/astm-analyzer/index.ts";
import { syntheticBloodGasMessage } from "../drivers/astm-analyzer/synthetic.ts";
import { ecgCartOptions, handleEcgFile } from "../drivers/ecg-cart/index.ts";
import { handleHl7, hl7Pcd01Options } from "../drivers/hl7-pcd01/index.ts";
import { pcd01Message } from "../drivers/hl7-pcd01/synthetic.ts";
import { decodeDicomEcg } from "../protocols/dicom-ecg/index.ts";
import type { Clock } from "../src/time/clock.ts";
import { EXPLICIT_VR_LITTLE_ENDIAN, part10File } from "../src/transports/dicom-scp.ts";
import type { VitalsBody } from "../src/events/model.ts";
import { syntheticEcg } from "./support/dicom.ts";
import { MllpSender } from "./support/mllp-sender.ts";
import { freePort } from "./support/processes.ts";
import { outboxEvents, startGateway } from "./support/rig.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** A clock the test moves: the resend window is judged by the gateway's time. */
function steppedClock(startMs: number): Clock & { advance(ms: number): void } {
  let ms = startMs;
  return { now: () => ({ ms, src: "system", uncMs: 1000 }), monoMs: () => ms, advance: (d) => void (ms += d) };
}

const T0 = Date.UTC(2026, 10, 23, 7, 0, 0);
const message = (controlId: string, hr: number) =>
  pcd01Message({ controlId, time: new Date(T0), values: { hr, spo2: 97 } });
const hrs = (events: { body: VitalsBody }[]) =>
  events.map((e) => e.body.observations.find((o) => o.code === "MDC_ECG_HEART_RATE")?.value);

describe("a device's resend after a lost acknowledgement", () => {
  it("is known by the device's own message identity: HL7 MSH-10, ASTM H.3, a DICOM SOP Instance UID", () => {
    const hl7 = handleHl7(new TextEncoder().encode(message("CTRL-77", 70)), hl7Pcd01Options.parse({}));
    expect(hl7).toMatchObject({ ok: true, messageId: "CTRL-77" });
    const astm = syntheticBloodGasMessage(T0);
    // Without H.3 none: two samples of the same values in the same second make the same events.
    expect(labEvents(astm)).toMatchObject({ ok: true, messageId: undefined });
    expect(labEvents(astm.replace("H|\\^&|", "H|\\^&|BG-0042|"))).toMatchObject({ ok: true, messageId: "BG-0042" });
    const ecg = syntheticEcg();
    const file = part10File(ecg.dataset, { ...ecg, transferSyntaxUid: EXPLICIT_VR_LITTLE_ENDIAN });
    const decoded = decodeDicomEcg(file);
    expect(decoded.ok && decoded.ecg.instanceUid).toBe(ecg.sopInstanceUid);
    expect(handleEcgFile(file, ecgCartOptions.parse({ dir: "/nowhere" }))).toMatchObject({
      ok: true,
      messageId: ecg.sopInstanceUid,
    });
  });

  it("is answered AA again and stored once within the window, across a restart; a reused id with other content, or past the window, is a new message", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "vg-resend-"));
    const port = await freePort();
    const clock = steppedClock(T0 + 60_000);
    const start = () =>
      startGateway(
        {
          id: "gw-resend",
          stateDir,
          clock,
          extra: "store: { resendWindowS: 600 }\n",
          devices: `{ id: bed1, driver: hl7-pcd01, options: { host: 127.0.0.1, port: ${port} } }`,
        },
        cleanup,
      );
    let { gw } = await start();
    let sender = await MllpSender.connect(port);
    expect(await sender.send(message("MSG1", 71))).toMatchObject({ code: "AA", controlId: "MSG1" });
    const [first] = outboxEvents<VitalsBody>(gw, "vitals");
    // The device's own identity travels in the event: MSH-10, and the event's place among the message's.
    expect(first!.msg).toEqual({ id: "MSG1", n: 1 });

    // The gateway stops after the commit (the ACK lost on the way): the monitor sends MSG1 again to the next run.
    sender.close();
    await gw.stop();
    cleanup.length = 0;
    ({ gw } = await start());
    sender = await MllpSender.connect(port);
    clock.advance(30_000);
    expect(await sender.send(message("MSG1", 71))).toMatchObject({ code: "AA", controlId: "MSG1" });
    expect(hrs(outboxEvents<VitalsBody>(gw, "vitals"))).toEqual([71]);
    expect(gw.devices.get("bed1")).toMatchObject({ frames: 1, events: 0 });

    // A monitor whose counter started again after a reboot: the same id, other content, is a new message.
    expect(await sender.send(message("MSG1", 72))).toMatchObject({ code: "AA" });
    expect(hrs(outboxEvents<VitalsBody>(gw, "vitals"))).toEqual([71, 72]);
    // Past the window, the same message counts again (the center still knows it by msg.id).
    clock.advance(600_001);
    expect(await sender.send(message("MSG1", 71))).toMatchObject({ code: "AA" });
    expect(hrs(outboxEvents<VitalsBody>(gw, "vitals"))).toEqual([71, 72, 71]);
    // The window's keys are forgotten once it is over (the checkpoint job does it).
    expect(gw.outbox.forgetResends(clock.now().ms - 600_000)).toBe(1);
    sender.close();
  });
});
