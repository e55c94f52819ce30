// The reading station in a real chromium, end to end: a gateway (`vitalgate start`) with an open
// case and its first medical contact tapped sends a 12-lead from its ECG cart; a center worker
// (`vitalgate center`, PostgreSQL, mosquitto) stores it; a cardiologist logs in at the center, finds
// it on the worklist with its clock from FMC, reads it on standard paper and sends "STEMI"; the
// crew's page on the gateway shows the reading; the center's time nodes list the case and export it
// as CSV. Also: the county picture with its convergence alert, and the page's words in English.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { spawnSync } from "node:child_process";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { hashPassword } from "../src/web/auth.ts";
import { hasChromium, launchChromium, openPage, screenshots, STRINGS } from "./support/browser.ts";
import { centerDbClient, startCenterWorker, startFieldGateway, type FieldGateway } from "./support/center.ts";
import { hasPostgres, startPostgres, type Postgres } from "./support/postgres.ts";
import { mosquitto, ROOT } from "./support/processes.ts";

const hasMosquitto = spawnSync("mosquitto", ["-h"]).error === undefined;
const ready = hasPostgres && hasMosquitto && hasChromium;
if (!ready) console.warn("skipping the reading station's browser tests: needs postgresql, mosquitto and chromium");

const PASSWORD = "correct horse battery 1";
const DOCTOR = "dr.wang";
const DOCTOR_PASSWORD = "Reading Station 7";
/** The project's own synthetic ECG (test/fixtures/ecg): heart rate 75, QRS 92 ms, "SYNTHETIC SINUS RHYTHM". */
const ECG_FIXTURE = join(ROOT, "test/fixtures/ecg/general-ecg-8lead-explicit.dcm");
const CJK = /[\u3400-\u9fff]/;
/** The center page's own words (center/web/center-strings.js, a browser module: loaded as it is, typed here). */
const CENTER_STRINGS = (
  (await import(pathToFileURL(join(ROOT, "center/web/center-strings.js")).href)) as {
    CENTER_STRINGS: Record<"zh-CN" | "en", Record<string, string>>;
  }
).CENTER_STRINGS;
const zh = (key: string) => CENTER_STRINGS["zh-CN"][key] ?? STRINGS["zh-CN"][key]!;

let server: Postgres;
let browser: Browser;
beforeAll(async () => {
  if (!ready) return;
  server = await startPostgres();
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await server?.stop();
});
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

/** A session on a page's JSON API from the test (the gateway's, from its own box: no setup code). */
async function apiSession(base: string) {
  const setup = await fetch(`${base}/api/setup`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "admin", password: PASSWORD }),
  });
  if (!setup.ok) throw new Error(`setup: ${setup.status} ${await setup.text()}`);
  const cookie = setup.headers.get("set-cookie")!.split(";")[0]!;
  const { csrf } = (await setup.json()) as { csrf: string };
  return async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${base}${path}`, {
      method,
      headers: { cookie, "x-csrf-token": csrf, ...(body ? { "content-type": "application/json" } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
    return r.json() as Promise<Record<string, unknown>>;
  };
}

async function login(page: Page, username: string, password: string) {
  await page.locator("#login-form").waitFor();
  await page.fill("#login-form input[name=username]", username);
  await page.fill("#login-form input[name=password]", password);
  await page.click("#login-form button[type=submit]");
}

async function center(webUsers = "[]", extra?: string) {
  const broker = await mosquitto("set_tcp_nodelay true");
  cleanup.push(() => broker.stop());
  const db = await server.database();
  const filesDir = join(server.socketDir, `files-${db.database}`);
  const worker = await startCenterWorker({
    broker: broker.url,
    db,
    worker: "w1",
    filesDir,
    web: true,
    webUsers,
    ...(extra ? { extra } : {}),
  });
  cleanup.push(() => worker.kill9());
  return { broker, db, worker, base: `http://127.0.0.1:${worker.webPort}` };
}

describe.skipIf(!ready)("the reading station", () => {
  it(
    "gateway → center → the cardiologist reads the ECG on paper and sends STEMI → the crew's page shows it; the time nodes list the case and export it as CSV",
    { timeout: 120_000 },
    async () => {
      const hash = await hashPassword(DOCTOR_PASSWORD);
      const c = await center(`[{ username: "${DOCTOR}", role: cardiologist, passwordHash: "${hash}" }]`);
      const gw: FieldGateway = await startFieldGateway("amb-07", c.broker.url);
      cleanup.push(() => gw.daemon.kill9());
      const gwBase = `http://127.0.0.1:${gw.daemon.webPort}`;
      const gwApi = await apiSession(gwBase);
      const opened = (await gwApi("POST", "/api/cases", {})) as { id: string };
      await gwApi("POST", `/api/cases/${opened.id}/nodes`, { node: "fmc" });
      writeFileSync(join(gw.cartDir, "ECG_0815.dcm"), readFileSync(ECG_FIXTURE));

      // The crew's tablet, on the case.
      const crew = await openPage(browser, gwBase);
      cleanup.push(() => crew.context.close());
      await crew.page.goto(`/#/case/${encodeURIComponent(opened.id)}`);
      await login(crew.page, "admin", PASSWORD);
      await crew.page.locator("#fmc-timer").waitFor();

      // The cardiologist at the center.
      const doc = await openPage(browser, c.base);
      cleanup.push(() => doc.context.close());
      await doc.page.goto("/");
      await login(doc.page, DOCTOR, DOCTOR_PASSWORD);
      const row = doc.page.locator("#worklist tr.worklist-row").first();
      await row.waitFor({ timeout: 30_000 });
      await expect.poll(() => row.innerText()).toContain("amb-07");
      expect(await row.innerText()).toContain(opened.id);
      // The clock from first medical contact, once the case's events came (they follow the ECG: priority 1).
      await expect.poll(() => row.locator(".fmc-clock").innerText(), { timeout: 15_000 }).toMatch(/^\d\d:\d\d$/);
      expect(await row.locator(".fmc-clock").getAttribute("class")).toContain("ok");
      // No "reading" for a viewer's menu, the worklist first in the cardiologist's.
      expect(await doc.page.locator("#nav a").first().innerText()).toBe(zh("nav.worklist"));
      await screenshots(doc.page, "center-worklist");

      await row.click();
      const img = doc.page.locator(".ecg-paper img.ecg-img");
      await img.waitFor();
      await expect
        .poll(() => img.evaluate((el) => (el as unknown as { naturalWidth: number }).naturalWidth))
        .toBeGreaterThan(0);
      expect(await doc.page.locator(".ecg-paper figcaption").innerText()).toContain("25 mm/s");
      expect(await doc.page.locator("#measurements").innerText()).toContain("92");
      expect(await doc.page.locator("#statements").innerText()).toContain("SYNTHETIC SINUS RHYTHM");
      expect(await doc.page.locator("#file").innerText()).toContain(zh("ecg.fileOk"));
      expect(await doc.page.locator('#nodes [data-node="fmc"]').innerText()).not.toBe(zh("nodes.none"));
      await screenshots(doc.page, "center-ecg");

      await doc.page.check('#reading-form input[value="stemi"]');
      await doc.page.fill("#reading-form textarea[name=text]", "ST elevation V1-V4");
      await doc.page.click("#reading-form button[type=submit]");
      await doc.page.locator("#reading-result").waitFor();
      expect(await doc.page.locator("#reading-result .report-conclusion").innerText()).toBe("STEMI");
      expect(doc.problems).toEqual([]);

      // The crew sees it on the gateway's page, from the contract's report.
      const conclusion = crew.page.locator("#report .report-conclusion");
      await conclusion.waitFor({ timeout: 30_000 });
      expect(await conclusion.innerText()).toBe("STEMI");
      expect(await crew.page.locator("#report").innerText()).toContain("ST elevation V1-V4");
      expect(await crew.page.locator("#report").innerText()).toContain(DOCTOR);
      expect(crew.problems).toEqual([]);

      // Off the worklist; on the time nodes, and in their CSV.
      await doc.page.goto("/#/worklist");
      await doc.page.locator("#worklist").waitFor({ state: "attached" });
      await expect.poll(() => doc.page.locator("#worklist tr.worklist-row").count()).toBe(0);
      await doc.page.goto("/#/times");
      const caseRow = doc.page.locator(`#times tr[data-case="${opened.id}"]`);
      await caseRow.waitFor();
      for (const node of ["fmc", "firstEcg", "ecgRead"])
        expect(await caseRow.locator(`[data-node="${node}"]`).innerText()).not.toBe("—");
      const csv = await doc.page.request.get("/api/cases.csv");
      expect(csv.headers()["content-type"]).toContain("text/csv");
      const lines = (await csv.text())
        .replace(/^\ufeff/, "")
        .trim()
        .split("\r\n");
      expect(lines[0]).toBe(
        "gateway,case,onset,dispatch,fmc,firstEcg,ecgSent,ecgReceived,ecgRead,arrival,fmcToEcgMin,fmcToReadMin,conclusion,unsynced",
      );
      const cells = lines.find((l) => l.startsWith(`amb-07,${opened.id},`))!.split(",");
      expect(cells[4]).toMatch(/^\d{4}-\d\d-\d\dT/); // fmc
      expect(cells[8]).toMatch(/^\d{4}-\d\d-\d\dT/); // read
      expect(Number(cells[11])).toBeGreaterThanOrEqual(0); // FMC to reading, minutes
      expect(cells[12]).toBe("STEMI");
      await screenshots(doc.page, "center-times");

      // The center's database: read by the cardiologist, the report acknowledged by the broker.
      const sql = await centerDbClient(c.db);
      cleanup.push(() => sql.end());
      await expect
        .poll(
          async () =>
            (await sql.query("SELECT reader, report_sent_at, report_acked_at, report_error FROM ecgs")).rows[0],
          {
            timeout: 10_000,
          },
        )
        .toMatchObject({
          reader: DOCTOR,
          report_sent_at: expect.any(Date),
          report_acked_at: expect.any(Date),
          report_error: null,
        });
      // The reading station says so: the gateway acknowledged the report (docs/protocol.md, Answers).
      const { event_id: eventId } = (await sql.query<{ event_id: string }>("SELECT event_id FROM ecgs")).rows[0]!;
      await doc.page.goto(`/#/ecg/${encodeURIComponent(eventId)}`);
      await expect.poll(() => doc.page.locator("#reading-state").innerText()).toBe(zh("reading.shown"));
    },
  );

  it("the county picture: each vehicle's position, state and case; an alert when three head for one hospital; the page in English", async () => {
    const hospital = { name: "County People's Hospital", lat: 30.0, lon: 120.0 };
    const c = await center(
      "[]",
      `  county: { places: [{ name: "${hospital.name}", lat: ${hospital.lat}, lon: ${hospital.lon} }], radiusM: 1000, withinMin: 30, minVehicles: 3 }`,
    );
    // Four vehicles' last positions as gateways publish them (docs/protocol.md, position): three
    // driving north toward the hospital from the south (5-15 km, 15 m/s), one driving away.
    const mqtt = (await import("mqtt")).default;
    const pub = await mqtt.connectAsync(c.broker.url, { protocolVersion: 5 });
    cleanup.push(() => pub.endAsync());
    const now = Date.now();
    const vehicle = (gw: string, lat: number, courseDeg: number, seq: number) => ({
      v: 1,
      id: `0193${seq.toString(16).padStart(4, "0")}-0000-7000-8000-${gw.replace(/\D/g, "").padStart(12, "0")}`,
      seq,
      gw,
      dev: { id: "gps", driver: "nmea-gps", kind: "gps" },
      kind: "position",
      t: new Date(now - 5000).toISOString(),
      time: { recv: new Date(now - 5000).toISOString(), src: "gps", uncMs: 1 },
      body: { lat, lon: 120.0, speedMps: 15, courseDeg, fix: "3d" },
    });
    const fleet = [
      vehicle("amb-11", 29.95, 0, 1),
      vehicle("amb-12", 29.9, 0, 2),
      vehicle("amb-13", 29.87, 1, 3),
      vehicle("amb-14", 29.9, 180, 4),
    ];
    for (const e of fleet) await pub.publishAsync(`vitalgate/v1/${e.gw}/ev/position`, JSON.stringify(e), { qos: 1 });
    await pub.publishAsync("vitalgate/v1/amb-11/status", JSON.stringify({ state: "online" }), { qos: 1, retain: true });

    const api = await apiSession(c.base);
    await expect
      .poll(async () => ((await api("GET", "/api/county")) as { vehicles: unknown[] }).vehicles.length, {
        timeout: 15_000,
      })
      .toBe(4);

    const page = await openPage(browser, c.base);
    cleanup.push(() => page.context.close());
    await page.page.goto("/#/county");
    await login(page.page, "admin", PASSWORD);
    const alert = page.page.locator(".county-alert");
    await alert.waitFor();
    const text = await alert.innerText();
    expect(text).toContain(hospital.name);
    for (const gw of ["amb-11", "amb-12", "amb-13"]) expect(text).toContain(gw);
    expect(text).not.toContain("amb-14");
    expect(await page.page.locator('#county tr[data-gw="amb-11"]').innerText()).toContain(zh("state.online"));
    expect(await page.page.locator(".county-map circle").count()).toBe(4);
    await screenshots(page.page, "center-county");

    await page.page.click("#lang");
    await expect.poll(() => page.page.locator(".county-alert").innerText()).toContain("ambulances are heading for");
    const body = await page.page.locator("body").innerText();
    expect(body.split("\n").filter((l) => CJK.test(l) && !l.includes("中文"))).toEqual([]);
    expect(page.problems).toEqual([]);
  });
});
