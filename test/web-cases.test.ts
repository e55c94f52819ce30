// The page's case routes (docs/web-api.md, "Cases and ECG") on the real web server, its login and
// its local database (test/support/web.ts): the crew opens a case, sets the patient id, taps first
// medical contact and closes it, each audited without the patient id and pushed to a page watching
// live; a viewer reads but changes nothing; bodies are checked naming the bad field; and a stored
// 12-lead ECG comes back drawn as an SVG of its twelve leads, without the patient's name.
import { get } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { ecgCartOptions, handleEcgFile } from "../drivers/ecg-cart/index.ts";
import type { CaseView } from "../src/cases/case-book.ts";
import { part10File } from "../src/transports/dicom-scp.ts";
import { EXPLICIT_LE, syntheticEcg } from "./support/dicom.ts";
import { stampedEvent } from "./support/events.ts";
import { waitFor } from "./support/mqtt.ts";
import { ROOT } from "./support/processes.ts";
import { addUser, clientOn, setupAdmin, startWeb, type WebRig } from "./support/web.ts";

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** A page watching /api/live over real HTTP: what it has received so far, and whether the server ended it. */
async function watchLive(rig: WebRig, cookie: string): Promise<{ text: () => string; ended: () => boolean }> {
  await rig.app.listen({ host: "127.0.0.1", port: 0 });
  const { port } = rig.app.server.address() as AddressInfo;
  const chunks: string[] = [];
  let ended = false;
  await new Promise<void>((resolve, reject) => {
    get({ host: "127.0.0.1", port, path: "/api/live", headers: { cookie } }, (res) => {
      res.setEncoding("utf8");
      res.on("end", () => (ended = true));
      res.on("data", (chunk: string) => {
        chunks.push(chunk);
        if (chunk.startsWith("retry:")) resolve();
      });
    }).on("error", reject);
  });
  return { text: () => chunks.join(""), ended: () => ended };
}

describe("a reading's colour on the page (web/reading.js)", () => {
  it("is STEMI red only for a conclusion that calls one, not one that rules it out", async () => {
    const { callsStemi } = (await import(pathToFileURL(join(ROOT, "web/reading.js")).href)) as {
      callsStemi: (c: string) => boolean;
    };
    for (const c of [
      "STEMI",
      "Anterior STEMI",
      "急性下壁STEMI",
      "No prior MI. Acute anterior STEMI",
      "Inferior STEMI; no Q waves",
    ])
      expect(callsStemi(c), c).toBe(true);
    for (const c of [
      "No STEMI",
      "no stemi",
      "NSTEMI",
      "non-STEMI",
      "Not a STEMI",
      "STEMI ruled out",
      "STEMI excluded",
      "排除STEMI",
      "非 STEMI",
      "未见STEMI",
      "无STEMI表现",
      "STEMI可能性小",
      "Sinus rhythm",
      "",
    ])
      expect(callsStemi(c), c).toBe(false);
  });
});

describe("case routes", () => {
  it("open, patient id, first medical contact, close: answered with the case, audited without the patient id, pushed live", async () => {
    const rig = await startWeb(cleanup);
    const admin = await setupAdmin(rig);
    const crew = await addUser(rig, admin, "crew1", "crew", "crew password 1");
    const live = await watchLive(rig, crew.cookie);

    const opened = await crew.request("POST", "/api/cases", {});
    expect(opened.statusCode).toBe(200);
    const c = opened.json() as CaseView;
    expect(c).toMatchObject({ openedBy: "crew1", nodes: {}, targetS: 600, ecgs: [] });
    expect(c.id).toMatch(/^\d{8}-0001$/);
    const again = await crew.request("POST", "/api/cases", {});
    expect(again.statusCode).toBe(409);
    expect(again.json().error).toMatchObject({ code: "VG_CASE_ALREADY_OPEN", message: expect.stringContaining(c.id) });

    const patient = await crew.request("POST", `/api/cases/${c.id}/patient`, { patientId: "P-SECRET-4711" });
    expect(patient.json()).toMatchObject({ id: c.id, patientId: "P-SECRET-4711" });
    const fmc = await crew.request("POST", `/api/cases/${c.id}/nodes`, {
      node: "fmc",
      at: "2026-11-23T08:00:00+08:00",
    });
    expect(fmc.json().nodes).toEqual({ fmc: "2026-11-23T00:00:00.000Z" });
    const bad = await crew.request("POST", `/api/cases/${c.id}/nodes`, { node: "balloon" });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ code: "VG_BAD_REQUEST", field: "node" });
    expect((await crew.request("POST", `/api/cases/${c.id}/patient`, { patientId: "" })).json().error.field).toBe(
      "patientId",
    );
    expect((await crew.request("POST", "/api/cases/no%20such/close")).statusCode).toBe(400);
    expect((await crew.request("POST", "/api/cases/20200101-0001/close")).json().error.code).toBe("VG_CASE_NOT_FOUND");

    expect((await crew.request("GET", `/api/cases/${c.id}`)).json()).toMatchObject({
      id: c.id,
      patientId: "P-SECRET-4711",
      fmcRunning: true,
    });
    expect((await crew.request("GET", "/api/cases")).json().map((x: CaseView) => x.id)).toEqual([c.id]);
    const closed = await crew.request("POST", `/api/cases/${c.id}/close`);
    expect(closed.json().closedAt).toEqual(expect.any(String));
    expect((await crew.request("GET", "/api/cases?state=open")).json()).toEqual([]);
    expect(
      (await crew.request("GET", "/api/cases?state=recent"))
        .json()
        .map((x: CaseView) => [x.id, x.closedAt !== undefined]),
    ).toEqual([[c.id, true]]);
    expect((await crew.request("GET", "/api/cases?state=all")).statusCode).toBe(400);

    // Audited: who, what, on which case, how it ended; the patient id nowhere in the trail or the log.
    const audit = (await admin.request("GET", "/api/audit")).json() as {
      rows: { actor: string; action: string; target?: string; result: string; detail?: unknown }[];
    };
    const caseRows = audit.rows.filter((r) => r.action.startsWith("case.")).reverse();
    expect(caseRows.map((r) => [r.actor, r.action, r.result])).toEqual([
      ["crew1", "case.open", "ok"],
      ["crew1", "case.open", "failed"],
      ["crew1", "case.patient", "ok"],
      ["crew1", "case.node", "ok"],
      ["crew1", "case.close", "failed"],
      ["crew1", "case.close", "ok"],
    ]);
    expect(caseRows[3]!.detail).toMatchObject({ node: "fmc" });
    expect(JSON.stringify(audit) + rig.log.raw.join("")).not.toContain("P-SECRET-4711");

    // The page watching saw each change as it happened.
    await waitFor(
      () => (live.text().match(/^event: case$/gm) ?? []).length === 4,
      5000,
      "four case messages on /api/live",
    );
    expect(live.text()).toContain(`"closedAt":"${closed.json().closedAt}"`);

    // A reading from the center reaches the page too (of an ECG the gateway sent: any other is refused).
    await rig.gateway.outbox.append([
      {
        ...stampedEvent("ecg12", { format: "dicom-ecg", fs: 500, durationS: 0, leads: [] }),
        id: "01a209ad-88fb-7465-aafa-04002edf9dc2",
      },
    ]);
    rig.gateway.cases.onReport({
      eventId: "01a209ad-88fb-7465-aafa-04002edf9dc2",
      reader: "Dr. Wang",
      at: "2026-11-23T16:27:00+08:00",
      conclusion: "STEMI",
    });
    await waitFor(() => live.text().includes("event: report"), 5000, "the report on /api/live");
    expect(live.text()).toContain(
      'event: report\ndata: {"eventId":"01a209ad-88fb-7465-aafa-04002edf9dc2","reader":"Dr. Wang","at":"2026-11-23T08:27:00.000Z","conclusion":"STEMI"}',
    );
  });

  it("never overwrites a recorded node: a second tap is refused, a correction names its time and is audited with what it was", async () => {
    const rig = await startWeb(cleanup);
    const admin = await setupAdmin(rig);
    const c = (await admin.request("POST", "/api/cases", {})).json() as CaseView;
    const tap = (body: Record<string, unknown>) => admin.request("POST", `/api/cases/${c.id}/nodes`, body);
    const first = (await tap({ node: "fmc", at: "2026-11-23T08:00:00+08:00" })).json().nodes.fmc as string;
    // A second tap (a stray touch, a scanner's Enter on the focused button): refused, the node kept.
    const again = await tap({ node: "fmc" });
    expect(again.statusCode).toBe(409);
    expect(again.json().error).toMatchObject({ code: "VG_CASE_NODE_SET", message: expect.stringContaining(first) });
    expect((await tap({ node: "fmc", at: "2026-11-23T08:05:00+08:00" })).statusCode).toBe(409);
    // A correction without the time it really was is no correction.
    expect((await tap({ node: "fmc", correct: true })).json().error.code).toBe("VG_CASE_CORRECTION");
    expect(((await admin.request("GET", `/api/cases/${c.id}`)).json() as CaseView).nodes.fmc).toBe(first);
    const corrected = await tap({ node: "fmc", at: "2026-11-23T07:55:00+08:00", correct: true });
    expect(corrected.json().nodes.fmc).toBe("2026-11-22T23:55:00.000Z");
    // Onset, never tapped, is recorded by its first tap as before.
    expect((await tap({ node: "onset", at: "2026-11-23T07:30:00+08:00" })).json().nodes.onset).toBe(
      "2026-11-22T23:30:00.000Z",
    );

    const rows = (
      (await admin.request("GET", "/api/audit")).json() as {
        rows: { action: string; result: string; detail?: Record<string, unknown> }[];
      }
    ).rows
      .filter((r) => r.action.startsWith("case.node"))
      .reverse();
    expect(rows.map((r) => [r.action, r.result, r.detail?.code])).toEqual([
      ["case.node", "ok", undefined],
      ["case.node", "failed", "VG_CASE_NODE_SET"],
      ["case.node", "failed", "VG_CASE_NODE_SET"],
      ["case.node.correct", "failed", "VG_CASE_CORRECTION"],
      ["case.node.correct", "ok", undefined],
      ["case.node", "ok", undefined],
    ]);
    expect(rows[4]!.detail).toMatchObject({ node: "fmc", correct: true, before: first });
  });

  it("keeps a page watching live signed in while a case is open, past the idle time; idle time counts again once it is closed", async () => {
    const rig = await startWeb(cleanup, "{ sessionIdleMin: 30 }");
    const admin = await setupAdmin(rig);
    const live = await watchLive(rig, admin.cookie);
    const beats = () => (live.text().match(/: heartbeat/g) ?? []).length;
    // Idle 25 min twice over while the page only watches (heartbeats every 100 ms in this rig).
    const c = (await admin.request("POST", "/api/cases", {})).json() as CaseView;
    for (let i = 0; i < 2; i++) {
      rig.clock.ms += 25 * 60_000;
      const n = beats();
      await waitFor(() => beats() > n, 5000, "a heartbeat");
    }
    expect((await admin.request("GET", "/api/session")).json()).toMatchObject({ user: { username: "admin" } });
    // Closed: the next 31 idle minutes end it, watching or not.
    await admin.request("POST", `/api/cases/${c.id}/close`);
    rig.clock.ms += 31 * 60_000;
    const n = beats();
    await waitFor(() => beats() > n || live.ended(), 5000, "a heartbeat or the end of the stream");
    expect((await admin.request("GET", "/api/session")).json()).toMatchObject({ user: null });
  });

  it("keeps the center's readings of ECGs outside any case for the page: the newest per ECG, across a restart", async () => {
    const rig = await startWeb(cleanup);
    const admin = await setupAdmin(rig);
    expect((await admin.request("GET", "/api/readings")).json()).toEqual([]);
    const cases = rig.gateway.cases;
    // Two ECGs the gateway sent outside any case (a reading of any other is refused).
    await rig.gateway.outbox.append(
      ["01a209ad-88fb-7465-aafa-04002edf9dc2", "01a209ad-88fb-7465-aafa-04002edf9dc3"].map((id) => ({
        ...stampedEvent("ecg12", { format: "dicom-ecg", fs: 500, durationS: 0, leads: [] }),
        id,
      })),
    );
    cases.onReport({
      eventId: "01a209ad-88fb-7465-aafa-04002edf9dc2",
      reader: "Dr. Wang",
      at: "2026-11-23T16:27:00+08:00",
      conclusion: "Sinus rhythm",
    });
    rig.clock.ms += 60_000;
    cases.onReport({
      eventId: "01a209ad-88fb-7465-aafa-04002edf9dc3",
      reader: "Dr. Li",
      at: "2026-11-23T16:28:00+08:00",
      conclusion: "STEMI",
      text: "inferior",
    });
    rig.clock.ms += 60_000;
    // The center reads the first again: its newer reading replaces the older, and comes first.
    cases.onReport({
      eventId: "01a209ad-88fb-7465-aafa-04002edf9dc2",
      reader: "Dr. Wang",
      at: "2026-11-23T16:30:00+08:00",
      conclusion: "Anterior STEMI",
    });
    const expected = [
      {
        eventId: "01a209ad-88fb-7465-aafa-04002edf9dc2",
        reader: "Dr. Wang",
        at: "2026-11-23T08:30:00.000Z",
        conclusion: "Anterior STEMI",
      },
      {
        eventId: "01a209ad-88fb-7465-aafa-04002edf9dc3",
        reader: "Dr. Li",
        at: "2026-11-23T08:28:00.000Z",
        conclusion: "STEMI",
        text: "inferior",
      },
    ];
    expect((await admin.request("GET", "/api/readings")).json()).toEqual(expected);
    const again = await startWeb(cleanup, "{}", rig.stateDir);
    again.clock.ms = rig.clock.ms; // restarted after the last use (a session last used "later" than now is not taken back)
    expect((await clientOn(again, admin).request("GET", "/api/readings")).json()).toEqual(expected);
    expect((await clientOn(again, admin).request("GET", "/api/readings", undefined, { cookie: "" })).statusCode).toBe(
      401,
    );
  });

  it("lets a viewer read cases but not change them", async () => {
    const rig = await startWeb(cleanup);
    const admin = await setupAdmin(rig);
    const viewer = await addUser(rig, admin, "qc", "viewer", "viewer password 3");
    const c = (await admin.request("POST", "/api/cases", { location: "bed-1" })).json() as CaseView;
    expect(c.location).toBe("bed-1");
    expect((await viewer.request("GET", `/api/cases/${c.id}`)).json().id).toBe(c.id);
    const refused = await viewer.request("POST", `/api/cases/${c.id}/close`);
    expect(refused.statusCode).toBe(403);
    expect((await viewer.request("GET", `/api/cases/${c.id}`)).json().closedAt).toBeUndefined();
  });

  it("draws a stored 12-lead ECG as an SVG on standard paper: twelve leads and the rhythm strip, no patient name", async () => {
    const rig = await startWeb(cleanup);
    const admin = await setupAdmin(rig);
    const ecg = syntheticEcg({ seconds: 10, patientName: "DOE^JANE" });
    const file = part10File(ecg.dataset, {
      sopClassUid: ecg.sopClassUid,
      sopInstanceUid: ecg.sopInstanceUid,
      transferSyntaxUid: EXPLICIT_LE,
    });
    const exchange = handleEcgFile(file, ecgCartOptions.parse({ dir: "/unused" }));
    if (!exchange.ok) throw new Error(exchange.error.message);
    const [event] = await rig.gateway.ingest({ id: "cart", driver: "ecg-cart", kind: "ecg-cart" }, exchange.events);

    const res = await admin.request("GET", `/api/ecg/${event!.id}/svg`);
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toBe("image/svg+xml; charset=utf-8");
    const svg = res.body;
    expect(svg).toContain("25 mm/s, 10 mm/mV");
    const leads = [...svg.matchAll(/data-lead="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(leads)).toEqual(
      new Set(["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]),
    );
    expect(leads.filter((l) => l === "II")).toHaveLength(2); // its 3×4 cell and the rhythm strip
    expect((event!.body as { patient?: { name?: string } }).patient?.name).toContain("DOE"); // kept in the event, for the center
    expect(svg).not.toContain("DOE");

    expect((await admin.request("GET", "/api/ecg/not-a-uuid/svg")).json().error).toMatchObject({
      code: "VG_BAD_REQUEST",
      field: "eventId",
    });
    expect((await admin.request("GET", "/api/ecg/01a209ad-88fb-7465-aafa-04002edf9dc2/svg")).json().error.code).toBe(
      "VG_ECG_NOT_FOUND",
    );
    expect((await rig.app.inject({ url: `/api/ecg/${event!.id}/svg` })).statusCode).toBe(401);
  });
});
