// Cases end to end through the in-process gateway (test/support/rig.ts) and its embedded broker,
// with a subscriber standing in for the county center: events carry the open case's id, each
// case change reaches the center as a `case` event, the center's dispatch command opens a case,
// and a 12-lead ECG dropped into a cart's watched folder walks through its time nodes (acquired,
// sent, received, read) as the center acknowledges and reads it. The clock is the system clock
// shifted by hand, so elapsed times are checked without waiting them out.
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { CaseView } from "../src/cases/case-book.ts";
import type { Clock } from "../src/time/clock.ts";
import { ecgCartOptions, handleEcgFile } from "../drivers/ecg-cart/index.ts";
import { part10File } from "../src/transports/dicom-scp.ts";
import type { DeviceRef, Envelope } from "../src/events/model.ts";
import type { AuditEntry } from "../src/audit/audit.ts";
import { EXPLICIT_LE, syntheticEcg } from "./support/dicom.ts";
import { connectEmbeddedCenter, waitFor, type Center } from "./support/mqtt.ts";
import { startGateway } from "./support/rig.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** The system clock, moved forward by hand with `advance`. */
function shiftedClock(): Clock & { advance(ms: number): void } {
  let shift = 0;
  return {
    now: () => ({ ms: Math.round(Date.now() + shift), src: "ntp", uncMs: 5 }),
    monoMs: () => performance.now() + shift,
    advance: (ms) => void (shift += ms),
  };
}

const monitor: DeviceRef = { id: "monitor", driver: "hl7-pcd01", kind: "monitor" };
const vitals = (hr: number) => ({
  kind: "vitals" as const,
  body: { observations: [{ code: "MDC_ECG_HEART_RATE", value: hr, unit: "/min" }] },
});

/** A rig gateway with its own broker and the center connected to it. */
async function gatewayWithCenter(
  id: string,
  o: { devices?: string; extra?: string; stateDir?: string; clock?: Clock } = {},
) {
  const { gw, config, log } = await startGateway(
    { id, uplink: "embedded", devices: o.devices ?? "  []", extra: o.extra, stateDir: o.stateDir, clock: o.clock },
    cleanup,
  );
  const center = await connectEmbeddedCenter(config);
  cleanup.push(() => center.close());
  await waitFor(() => gw.status().uplink.state === "connected", 5000, "the uplink connected");
  return { gw, center, log };
}

const caseEvents = (center: Center) =>
  center.events.filter((e) => e.kind === "case") as Envelope<{
    action: string;
    node?: string;
    at: string;
    [k: string]: unknown;
  }>[];

describe("cases", () => {
  it("stamps every event ingested while a case is open with its id, and none after it closed; the center gets each change", async () => {
    const clock = shiftedClock();
    const { gw, center, log } = await gatewayWithCenter("gw-case-a", { clock });
    const opened = await gw.cases.openCase({ openedBy: "crew1" });
    const d = new Date(clock.now().ms);
    const day = `${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, "0")}${String(d.getDate()).padStart(2, "0")}`;
    expect(opened.id).toBe(`${day}-0001`);
    expect(opened).toMatchObject({ openedBy: "crew1", nodes: {}, targetS: 600, ecgs: [] });
    await expect(gw.cases.openCase({ openedBy: "crew2" })).rejects.toMatchObject({
      code: "VG_CASE_ALREADY_OPEN",
      status: 409,
    });

    const [during] = await gw.ingest(monitor, [vitals(88)]);
    expect(during!.case).toBe(opened.id);
    await gw.cases.setPatient(opened.id, "P-4711");
    const closed = await gw.cases.closeCase(opened.id);
    expect(closed.closedAt).toBeDefined();
    const [after] = await gw.ingest(monitor, [vitals(90)]);
    expect(after!.case).toBeUndefined();
    const next = await gw.cases.openCase({ openedBy: "crew1" });
    expect(next.id).toBe(`${day}-0002`);

    await center.waitFor(() => caseEvents(center).length === 4, 5000, "four case events at the center");
    const events = caseEvents(center);
    expect(events.map((e) => [e.case, e.body.action])).toEqual([
      [opened.id, "opened"],
      [opened.id, "patient"],
      [opened.id, "closed"],
      [next.id, "opened"],
    ]);
    expect(events[0]!.body).toMatchObject({ openedBy: "crew1", at: opened.openedAt });
    // The patient id travels to the center in the case event, and nowhere into the log.
    expect(events[1]!.body.patientId).toBe("P-4711");
    expect(log.raw.join("")).not.toContain("P-4711");
    expect(log.lines.some((l) => l.case === opened.id && l.msg === "case patient id set")).toBe(true);
    expect(events.every((e) => e.dev.id === "gateway")).toBe(true);
    expect(center.events.find((e) => e.kind === "vitals" && e.case === opened.id)).toBeDefined();
  });

  it("gives a device the case of its location, else the whole box's", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vg-casel-"));
    const { gw } = await startGateway(
      { id: "gw-case-l", devices: `{ id: cart, driver: ecg-cart, location: bay-2, options: { dir: "${dir}" } }` },
      cleanup,
    );
    await waitFor(() => gw.devices.get("cart")?.state === "listening", 5000, "the cart's folder watched");
    const box = await gw.cases.openCase({ openedBy: "crew1" });
    expect(gw.cases.caseFor("cart")).toBe(box.id);
    const bay = await gw.cases.openCase({ openedBy: "crew1", location: "bay-2" });
    expect(gw.cases.caseFor("cart")).toBe(bay.id);
    expect(gw.cases.caseFor("monitor")).toBe(box.id);
    expect(gw.cases.list("open").map((c) => c.id)).toEqual([bay.id, box.id]);
    await gw.cases.closeCase(box.id);
    expect(gw.cases.caseFor("monitor")).toBeUndefined();
    expect(gw.cases.caseFor("cart")).toBe(bay.id);
  });

  it("opens and closes a case on the center's dispatch commands, answering each, and refuses an invalid one saying why", async () => {
    const { gw, center, log } = await gatewayWithCenter("gw-case-d");
    const audit: AuditEntry[] = [];
    gw.audit = { record: (e) => void audit.push(e), recordBounded: (_key, e) => void audit.push(e) };
    const results = () =>
      center.messages
        .filter((m) => m.topic === "vitalgate/v1/gw-case-d/cmd-result")
        .map(
          (m) =>
            JSON.parse(m.payload.toString()) as {
              id: string;
              ok: boolean;
              result?: Record<string, unknown>;
              error?: string;
            },
        );
    const send = (name: string, id: string, args: unknown) =>
      center.client.publishAsync(`vitalgate/v1/gw-case-d/cmd/${name}`, JSON.stringify({ id, args }), { qos: 1 });
    await send("case-open", "d1", {
      caseId: "DISP-2026-0815",
      patientId: "P-DISPATCH-77",
      dispatchedAt: "2026-11-23T15:30:00+08:00",
    });
    await center.waitFor(() => results().some((r) => r.id === "d1"), 5000, "the dispatch result");
    expect(results().find((r) => r.id === "d1")).toMatchObject({
      ok: true,
      result: { caseId: "DISP-2026-0815", location: "" },
    });
    const c = gw.cases.get("DISP-2026-0815")!;
    expect(c).toMatchObject({
      openedBy: "center",
      patientId: "P-DISPATCH-77",
      nodes: { dispatch: "2026-11-23T07:30:00.000Z" },
    });
    expect(gw.cases.caseFor("monitor")).toBe("DISP-2026-0815");
    // The same command again (at-least-once delivery) is the same case.
    await send("case-open", "d1-again", { caseId: "DISP-2026-0815" });
    await send("case-open", "d2", { caseId: "DISP-2026-0816" });
    // d2's refusal is audited after an await; d3 is refused at once: sent once d2 is answered, so the trail's order is known.
    await center.waitFor(() => results().some((r) => r.id === "d2"), 5000, "d2's result");
    await send("case-open", "d3", { caseId: "bad/id", dispatchedAt: "yesterday", beds: 2 });
    await center.waitFor(() => results().length === 4, 5000, "three more results");
    expect(results().find((r) => r.id === "d1-again")).toMatchObject({
      ok: true,
      result: { caseId: "DISP-2026-0815" },
    });
    expect(results().find((r) => r.id === "d2")).toMatchObject({
      ok: false,
      error: expect.stringContaining("case DISP-2026-0815 is open"),
    });
    const invalid = results().find((r) => r.id === "d3")!;
    expect(invalid.ok).toBe(false);
    for (const what of ["caseId", "dispatchedAt", "beds"]) expect(invalid.error).toContain(what);

    await send("case-close", "c1", { caseId: "DISP-2026-0815" });
    await send("case-close", "c2", { caseId: "NO-SUCH-CASE" });
    await center.waitFor(() => results().length === 6, 5000, "the close results");
    // Refused before running: unknown, not JSON; and a resend, which changes what the center gets again.
    await send("reboot", "x1", {});
    await center.client.publishAsync("vitalgate/v1/gw-case-d/cmd/case-close", "{not json", { qos: 1 });
    await send("resend", "r1", { fromSeq: 1, toSeq: 5 });
    await center.waitFor(() => results().length === 9, 5000, "the refused commands' and the resend's results");
    expect(results().find((r) => r.id === "x1")).toMatchObject({ ok: false, error: 'unknown command "reboot"' });
    expect(results().find((r) => r.id === "r1")).toMatchObject({ ok: true, result: { requeued: 0 } });
    expect(results().find((r) => r.id === "c1")).toMatchObject({
      ok: true,
      result: { caseId: "DISP-2026-0815", closedAt: expect.any(String) },
    });
    expect(results().find((r) => r.id === "c2")).toMatchObject({
      ok: false,
      error: expect.stringContaining("no case NO-SUCH-CASE"),
    });
    expect(gw.cases.caseFor("monitor")).toBeUndefined();
    await center.waitFor(() => caseEvents(center).length === 2, 5000, "the case events");
    expect(caseEvents(center).map((e) => [e.body.action, e.body.openedBy])).toEqual([
      ["opened", "center"],
      ["closed", undefined],
    ]);
    expect(caseEvents(center)[0]!.body).toMatchObject({
      dispatchedAt: "2026-11-23T07:30:00.000Z",
      patientId: "P-DISPATCH-77",
    });
    // Audited as the center's doing, done or refused; the patient id neither there nor in the log.
    expect(audit.map((e) => [e.actor, e.action, e.target, e.result])).toEqual([
      ["center", "case.open", "DISP-2026-0815", "ok"],
      ["center", "case.open", "DISP-2026-0815", "ok"],
      ["center", "case.open", "DISP-2026-0816", "failed"],
      ["center", "command", "case-open", "denied"],
      ["center", "case.close", "DISP-2026-0815", "ok"],
      ["center", "case.close", "NO-SUCH-CASE", "failed"],
      ["center", "command", "reboot", "denied"],
      ["center", "command", "case-close", "denied"],
      ["center", "queue.resend", undefined, "ok"],
    ]);
    expect(audit[2]!.detail).toMatchObject({ code: "VG_CASE_ALREADY_OPEN" });
    expect(audit[3]!.detail!.reason).toMatch(/^invalid args: .*caseId.*dispatchedAt.*beds/);
    expect(audit[7]!.detail).toEqual({ reason: "payload is not JSON" });
    expect(audit[8]!.detail).toEqual({ fromSeq: 1, toSeq: 5, requeued: 0 });
    expect(JSON.stringify(audit) + log.raw.join("")).not.toContain("P-DISPATCH-77");
  });

  it("follows a dropped ECG through its time nodes: acquired, sent, received by the center, read; and times first medical contact against the target", async () => {
    const clock = shiftedClock();
    const drop = mkdtempSync(join(tmpdir(), "vg-casee-"));
    const { gw, center } = await gatewayWithCenter("gw-case-e", {
      clock,
      devices: `{ id: cart, driver: ecg-cart, location: amb, options: { dir: "${drop}", stableMs: 100, scanMs: 50 } }`,
    });
    const changes: CaseView[] = [];
    gw.cases.on("change", (v) => changes.push(v));
    const reports: unknown[] = [];
    gw.cases.on("report", (r) => reports.push(r));
    await waitFor(() => gw.devices.get("cart")?.state === "listening", 5000, "the cart's folder watched");
    const c = await gw.cases.openCase({ openedBy: "crew1", location: "amb" });
    const fmcAt = new Date(clock.now().ms).toISOString();
    await gw.cases.tapNode(c.id, "fmc");
    await gw.cases.tapNode(c.id, "onset", "2026-11-23T05:10:00Z");
    await expect(
      gw.cases.tapNode(c.id, "onset", new Date(clock.now().ms + 3_600_000).toISOString()),
    ).rejects.toMatchObject({ code: "VG_CASE_TIME" });
    clock.advance(4 * 60_000);
    const running = gw.cases.get(c.id)!;
    expect(running.fmcRunning).toBe(true);
    expect(running.fmcElapsedS).toBeGreaterThanOrEqual(240);
    expect(running.fmcElapsedS).toBeLessThan(250);

    // A 10 s 12-lead ECG, two chunks of file.
    const ecg = syntheticEcg({ seconds: 10 });
    const file = part10File(ecg.dataset, {
      sopClassUid: ecg.sopClassUid,
      sopInstanceUid: ecg.sopInstanceUid,
      transferSyntaxUid: EXPLICIT_LE,
    });
    mkdirSync(drop, { recursive: true });
    writeFileSync(join(drop, "ECG_0001.dcm"), file);
    await waitFor(() => existsSync(join(drop, "done/ECG_0001.dcm")), 10_000, "the ECG committed");
    await center.waitFor(() => center.events.some((e) => e.kind === "ecg12"), 10_000, "the ECG at the center");
    const event = center.events.find((e) => e.kind === "ecg12")!;
    expect(event.case).toBe(c.id);

    await waitFor(() => gw.cases.get(c.id)?.nodes.ecgSent !== undefined, 10_000, "the ECG marked sent");
    let view = gw.cases.get(c.id)!;
    expect(view.nodes.firstEcg).toBe(event.t);
    expect(view.ecg).toMatchObject({
      eventId: event.id,
      acquiredAt: event.t,
      transfer: { parts: 2, sent: 2, delivered: true, receipted: false },
    });
    expect(center.original(event.id)?.equals(file)).toBe(true);
    // The page saw the transfer progress on its way (the first chunk before the second).
    expect(changes.some((v) => v.ecg?.transfer.sent === 0 || v.ecg?.transfer.sent === 1)).toBe(true);

    await center.client.publishAsync("vitalgate/v1/gw-case-e/receipt", JSON.stringify({ ids: [event.id] }), { qos: 1 });
    await waitFor(() => gw.cases.get(c.id)?.nodes.ecgReceived !== undefined, 5000, "the ECG marked received");
    expect(gw.cases.get(c.id)!.ecg!.transfer.receipted).toBe(true);

    clock.advance(3 * 60_000);
    const readAt = new Date(clock.now().ms).toISOString();
    await center.client.publishAsync(
      "vitalgate/v1/gw-case-e/report",
      JSON.stringify({
        eventId: event.id,
        reader: "Dr. Wang",
        at: readAt,
        conclusion: "STEMI",
        text: "ST elevation V1-V4",
      }),
      { qos: 1 },
    );
    await waitFor(() => gw.cases.get(c.id)?.nodes.ecgRead !== undefined, 5000, "the ECG marked read");
    view = gw.cases.get(c.id)!;
    expect(view.nodes.ecgRead).toBe(readAt);
    expect(view.ecg!.report).toEqual({
      reader: "Dr. Wang",
      at: readAt,
      conclusion: "STEMI",
      text: "ST elevation V1-V4",
    });
    expect(reports).toEqual([
      {
        caseId: c.id,
        eventId: event.id,
        reader: "Dr. Wang",
        at: readAt,
        conclusion: "STEMI",
        text: "ST elevation V1-V4",
      },
    ]);
    expect(gw.cases.readingsOutsideCases()).toEqual([]); // the case's, not kept apart
    // The clock from first medical contact stopped at the reading: 7 minutes, inside the 10-minute target.
    expect(view.fmcRunning).toBe(false);
    expect(view.fmcElapsedS).toBe(Math.round((Date.parse(readAt) - Date.parse(fmcAt)) / 1000));
    expect(view.fmcElapsedS).toBeGreaterThanOrEqual(420);
    expect(view.fmcElapsedS).toBeLessThan(view.targetS);
    clock.advance(60 * 60_000);
    expect(gw.cases.get(c.id)!.fmcElapsedS).toBe(view.fmcElapsedS);

    // The center holds the same record: each node as a case event, in the order they happened.
    await center.waitFor(
      () => caseEvents(center).filter((e) => e.body.action === "node").length === 6,
      5000,
      "the node events",
    );
    const nodes = caseEvents(center).filter((e) => e.body.action === "node");
    expect(nodes.map((e) => e.body.node)).toEqual(["fmc", "onset", "firstEcg", "ecgSent", "ecgReceived", "ecgRead"]);
    expect(nodes.slice(2).every((e) => e.body.eventId === event.id)).toBe(true);
    expect(nodes.at(-1)!.body).toMatchObject({ at: readAt, conclusion: "STEMI" });
  });

  it("marks arrival at the first GPS position of the case inside a geofence", async () => {
    const { gw } = await startGateway(
      {
        id: "gw-case-g",
        devices: "  []",
        extra: "cases: { geofences: [{ name: 县人民医院, lat: 30.2741, lon: 120.1551, radiusM: 150 }] }\n",
      },
      cleanup,
    );
    const gps: DeviceRef = { id: "gps", driver: "nmea-gps", kind: "gps" };
    const position = (lat: number, lon: number) => ({ kind: "position" as const, body: { lat, lon, fix: "3d" } });
    const c = await gw.cases.openCase({ openedBy: "crew1" });
    await gw.ingest(gps, [{ kind: "position", body: { fix: "none" } }]);
    await gw.ingest(gps, [position(30.2741, 120.17)]); // 1.4 km east: on the way
    expect(gw.cases.get(c.id)!.nodes.arrival).toBeUndefined();
    const [inside] = await gw.ingest(gps, [position(30.275, 120.156)]); // ~130 m from the door
    await gw.ingest(gps, [position(30.2741, 120.1551)]);
    const view = gw.cases.get(c.id)!;
    expect(view.nodes.arrival).toBe(inside!.t);
    expect(view.arrivalPlace).toBe("县人民医院");
  });

  it("keeps open cases, the day's numbering and an ECG's transfer under way across a restart", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "vg-caser-"));
    // First run: no uplink. The ECG is stored, not sent.
    const first = await startGateway({ id: "gw-case-r", devices: "  []", stateDir }, cleanup);
    const c = await first.gw.cases.openCase({ openedBy: "crew1", location: "bed-1" });
    await first.gw.cases.tapNode(c.id, "fmc", "2026-11-23T08:00:00Z");
    const ecg = syntheticEcg({ seconds: 10 });
    const exchange = handleEcgFile(
      part10File(ecg.dataset, {
        sopClassUid: ecg.sopClassUid,
        sopInstanceUid: ecg.sopInstanceUid,
        transferSyntaxUid: EXPLICIT_LE,
      }),
      ecgCartOptions.parse({ dir: "/unused" }),
    );
    if (!exchange.ok) throw new Error(exchange.error.message);
    const box = await first.gw.cases.openCase({ openedBy: "crew1" });
    const [event] = await first.gw.ingest({ id: "cart", driver: "ecg-cart", kind: "ecg-cart" }, exchange.events);
    // The first run has an uplink configured (nowhere), so its file is stored gzip-compressed: its parts are fewer than raw.
    const parts = first.gw.outbox.deliveryOf(event!.id)!.parts;
    expect(first.gw.cases.get(box.id)!.ecg).toMatchObject({
      eventId: event!.id,
      transfer: { parts, sent: 0, delivered: false },
    });
    await first.gw.stop();

    // Second run: the center is there.
    const second = await gatewayWithCenter("gw-case-r", { stateDir });
    expect(second.gw.cases.list("open").map((x) => [x.id, x.location, x.nodes.fmc])).toEqual([
      [box.id, undefined, undefined],
      [c.id, "bed-1", "2026-11-23T08:00:00.000Z"],
    ]);
    await expect(second.gw.cases.openCase({ openedBy: "crew1", location: "bed-1" })).rejects.toMatchObject({
      code: "VG_CASE_ALREADY_OPEN",
    });
    // The center connects to the box's broker after the box does, so it may miss what the box sends
    // at once (a few small messages, the file compressed): it asks for the ECG again, as a center can.
    await waitFor(() => second.gw.outbox.deliveryOf(event!.id)?.sent === parts, 10_000, "the file acknowledged");
    await second.center.client.publishAsync(
      "vitalgate/v1/gw-case-r/cmd/resend",
      JSON.stringify({ id: "again", args: { fromSeq: event!.seq, toSeq: event!.seq + parts } }),
      { qos: 1 },
    );
    await second.center.waitFor(
      () => second.center.original(event!.id) !== undefined,
      10_000,
      "the ECG's file at the center",
    );
    await waitFor(
      () => second.gw.cases.get(box.id)?.nodes.ecgSent !== undefined,
      5000,
      "the ECG marked sent after the restart",
    );
    expect(second.gw.cases.get(box.id)!.ecg!.transfer).toEqual({
      parts,
      sent: parts,
      delivered: true,
      receipted: false,
    });
    await second.gw.cases.closeCase(box.id);
    const next = await second.gw.cases.openCase({ openedBy: "crew1" });
    expect(next.id).toBe(c.id.replace(/-0001$/, "-0003"));
  });
});
