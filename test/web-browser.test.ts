// The web page in a real browser (issue 6): Debian's chromium driven by playwright-core against a
// real gateway in this process (test/support/rig.ts) serving web/ and its API on a free port. Each
// flow is its own test, on its own gateway: first-run setup and login; the status page kept live;
// pairing a GPS on a real PTY by probing it; pairing an HL7 monitor that connected unannounced;
// a case from first medical contact to the center's reading of its ECG; the audit trail, intact
// and then tampered with; English and back; a device name that is markup shown as text.
// Every page is photographed phone- and laptop-sized into test-results/screenshots/.
import { createServer, type Socket } from "node:net";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { syntheticDrive } from "../drivers/nmea-gps/synthetic.ts";
import { localDbPath } from "../src/local-db.ts";
import { simulator as nmeaGpsSimulator } from "../drivers/nmea-gps/simulator.ts";
import { simulate } from "../src/cli/simulate.ts";
import { hasChromium, launchChromium, openPage, screenshots, STRINGS, VIEWPORTS } from "./support/browser.ts";
import { MllpSender } from "./support/mllp-sender.ts";
import { stampedEvent } from "./support/events.ts";
import { connectEmbeddedCenter } from "./support/mqtt.ts";
import { freePort, ROOT } from "./support/processes.ts";
import { hasSocat, nullModem } from "./support/pty.ts";
import { startGateway, type RigOptions } from "./support/rig.ts";
import { wifiTo } from "./support/wifi.ts";

if (!hasChromium)
  console.warn("skipping the browser tests: /usr/bin/chromium is not installed (apt-get install chromium)");

/** A word of the page, as the test expects to read it; a key the dictionary lacks fails the test here. */
function word(lang: "zh-CN" | "en", key: string, params: Record<string, string> = {}): string {
  const s = STRINGS[lang][key];
  if (s === undefined) throw new Error(`no ${lang} text for ${key}`);
  return s.replace(/\{(\w+)\}/g, (_, n: string) => params[n] ?? "");
}
const zh = (key: string, params?: Record<string, string>) => word("zh-CN", key, params);
const en = (key: string) => word("en", key);
const PASSWORD = "correct horse battery 1";
/**
 * How long the page may take to show what the gateway did: live updates come every 2 s at most, but a
 * login's scrypt on a CI box busy with the other test files can take seconds.
 */
const SEEN_MS = Number(process.env.VG_BROWSER_WAIT_MS ?? 20_000);
const CJK = /[\u3400-\u9fff]/;

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

let browser: Browser;
beforeAll(async () => {
  if (hasChromium) browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

/**
 * A gateway as `o` says, and a fresh browser context on its page; the page's script errors are checked
 * at the end. With `wifi`, the page reaches the gateway through a link the test can cut.
 */
async function gatewayAndPage(o: Partial<RigOptions> & { id: string }, { wifi = false } = {}) {
  const { gw, config, log } = await startGateway({ devices: "  []", ...o }, cleanup);
  const link = wifi ? await wifiTo(config.web.port) : undefined;
  if (link) cleanup.push(() => link.close());
  const base = link?.base ?? `http://127.0.0.1:${config.web.port}`;
  const { context, page, problems } = await openPage(browser, base);
  page.setDefaultTimeout(SEEN_MS);
  cleanup.push(() => {
    expect(problems, "script errors or CSP refusals on the page").toEqual([]);
    return context.close();
  });
  return { gw, config, log, base, page, link };
}

/** The first admin created from the box (no setup code from loopback), then the page opened logged in. */
async function signIn(page: Page, hash = "#/status"): Promise<void> {
  const res = await page.request.post("/api/setup", { data: { username: "admin", password: PASSWORD } });
  expect(res.status(), await res.text()).toBe(200);
  await page.goto(`/${hash}`);
  await page.locator("#nav").waitFor();
}

const text = (page: Page, selector: string) => page.locator(selector).innerText();

/**
 * The pairing form, opened with `driver` chosen for the device found: named and placed, saved, and
 * said saved. With `screenshot`, photographed filled in.
 */
async function pairWithForm(
  page: Page,
  device: { driver: string; id: string; name: string; location: string },
  screenshot?: string,
): Promise<void> {
  const form = page.locator("#pair-form");
  await form.waitFor();
  expect(await form.locator("select[name=driver]").inputValue()).toBe(device.driver);
  await form.locator("input[name=id]").fill(device.id);
  await form.locator("input[name=name]").fill(device.name);
  await form.locator("input[name=location]").fill(device.location);
  if (screenshot) await screenshots(page, screenshot);
  await form.getByRole("button", { name: zh("pairing.save") }).click();
  await expect
    .poll(() => text(page, "#notice"), { timeout: SEEN_MS })
    .toContain(zh("pairing.saved", { name: device.name }));
}

describe.skipIf(!hasChromium)("the web page in chromium", { timeout: 90_000 }, () => {
  it("first run: creates the admin, logs out, refuses a wrong password, logs in", async () => {
    const { page, config } = await gatewayAndPage({ id: "gw-web-setup" });
    await page.goto("/");
    await page.locator("#setup-form").waitFor();
    await expect.poll(() => page.evaluate("document.documentElement.lang"), { timeout: SEEN_MS }).toBe("zh-CN");
    expect(await text(page, "#setup-form h1")).toBe(zh("setup.title"));
    await screenshots(page, "setup");

    await page.fill("#setup-form input[name=username]", "admin");
    await page.fill("#setup-form input[name=password]", PASSWORD);
    await page.fill("#setup-form input[name=password2]", `${PASSWORD}!`);
    await page.click("#setup-form button[type=submit]");
    await expect.poll(() => text(page, "#notice"), { timeout: SEEN_MS }).toContain(zh("setup.mismatch"));
    await page.fill("#setup-form input[name=password2]", PASSWORD);
    await page.click("#setup-form button[type=submit]");
    await page.locator("#card-gateway").waitFor();
    expect(await text(page, "#card-gateway")).toContain(config.gateway.id);
    expect(await text(page, "#who")).toContain("admin");

    await page.click("#logout");
    await page.locator("#login-form").waitFor();
    expect(await page.locator("#nav").isHidden()).toBe(true);
    await screenshots(page, "login");
    await page.fill("#login-form input[name=username]", "admin");
    await page.fill("#login-form input[name=password]", "not the password");
    await page.click("#login-form button[type=submit]");
    await expect.poll(() => text(page, "#notice"), { timeout: SEEN_MS }).toContain(zh("login.wrong"));
    await page.fill("#login-form input[name=password]", PASSWORD);
    await page.click("#login-form button[type=submit]");
    await page.locator("#card-gateway").waitFor();
    // The session is a cookie the page's script cannot read.
    expect(await page.evaluate("document.cookie")).not.toContain("vg_session");
  });

  it("first run from the LAN: the setup code field opens a text keyboard and says the code is in its file, not the log", async () => {
    const { page, config } = await gatewayAndPage({ id: "gw-web-setup-code" });
    // The page is opened from the box here (loopback needs no code): the session answer is the one a LAN client gets.
    const file = join(config.stateDir, "setup-code");
    await page.route("**/api/session", (route) =>
      route.fulfill({ json: { user: null, setup: true, setupCodeRequired: true, setupCodeFile: file } }),
    );
    await page.goto("/");
    const code = page.locator("#setup-form input[name=setupCode]");
    await code.waitFor();
    expect(await code.getAttribute("inputmode")).toBe("text");
    expect(await code.getAttribute("autocapitalize")).toBe("none");
    const hint = await text(page, "#setup-code-hint");
    expect(hint).toContain(file);
    expect(hint).toBe(zh("setup.codeHint", { file }));
    await screenshots(page, "setup-code");
  });

  it("accounts: a new user changes the initial password before anything else; a locked account says when to retry, in words and one language", async () => {
    const { page } = await gatewayAndPage({ id: "gw-web-accounts", web: "loginMaxFailures: 3" });
    await signIn(page, "#/users");
    await page.fill("#user-form input[name=username]", "crew1");
    await page.fill("#user-form input[name=password]", "Initial pass 1");
    await page.click("#user-form button[type=submit]");
    await expect
      .poll(() => text(page, "#users tr[data-user=crew1]"), { timeout: SEEN_MS })
      .toContain(zh("users.mustChange"));
    await page.click("#logout");
    await page.locator("#login-form").waitFor();

    // The crew member's first login: only the password form, until a good password of their own is set.
    await page.fill("#login-form input[name=username]", "crew1");
    await page.fill("#login-form input[name=password]", "Initial pass 1");
    await page.click("#login-form button[type=submit]");
    await page.locator("#password-form").waitFor();
    expect(await text(page, "#password-form")).toContain(zh("password.forced"));
    expect(await page.locator("#nav").isHidden()).toBe(true);
    await screenshots(page, "password-forced");
    await page.fill("#password-form input[name=current]", "Initial pass 1");
    await page.fill("#password-form input[name=password]", "abcdefgh1");
    await page.fill("#password-form input[name=password2]", "abcdefgh1");
    await page.click("#password-form button[type=submit]");
    await expect.poll(() => text(page, "#notice"), { timeout: SEEN_MS }).toContain(zh("err.VG_PASSWORD_WEAK"));
    await page.fill("#password-form input[name=password]", "My own Pass 7");
    await page.fill("#password-form input[name=password2]", "My own Pass 7");
    await page.click("#password-form button[type=submit]");
    await page.locator("#card-gateway").waitFor();
    expect(await page.locator("#nav").isVisible()).toBe(true);
    await page.click("#logout");
    await page.locator("#login-form").waitFor();

    // Three wrong passwords lock crew1 (web.loginMaxFailures: 3): the fourth try says when, in words, in Chinese alone.
    for (let i = 0; i < 4; i++) {
      await page.fill("#login-form input[name=username]", "crew1");
      await page.fill("#login-form input[name=password]", `wrong ${i}`);
      const answered = page.waitForResponse("**/api/login");
      await page.click("#login-form button[type=submit]");
      await answered;
    }
    const locked = await text(page, "#notice span");
    expect(locked).toMatch(
      /^密码错误次数过多，该账户已暂时锁定。请在 15 分钟后再试（\d\d:\d\d 以后），或请管理员重设密码$/,
    );
    expect(locked).not.toMatch(/[A-Za-z]|秒/);
    await screenshots(page, "login-locked");
    // The right password does not open it either; in English the same, without Chinese.
    await page.click("#lang");
    await page.fill("#login-form input[name=username]", "crew1");
    await page.fill("#login-form input[name=password]", "My own Pass 7");
    await page.click("#login-form button[type=submit]");
    await expect
      .poll(() => text(page, "#notice span"), { timeout: SEEN_MS })
      .toMatch(
        /^Too many wrong passwords: this account is locked for now\. Try again in 15 minutes \(after \d\d:\d\d\)/,
      );
    expect(await text(page, "#notice span")).not.toMatch(CJK);
  });

  it("status: shows the uplink, queue, time, disk and gateway, and follows the queue live", async () => {
    const { page, gw, config } = await gatewayAndPage({ id: "gw-web-status" });
    await signIn(page);
    await page.locator("#live.up").waitFor();
    expect(await text(page, "#card-gateway")).toContain(config.gateway.id);
    // The uplink goes nowhere (rig.ts): not connected, said in words and colour.
    expect(await page.locator("#card-uplink").getAttribute("class")).toMatch(/tone-(warn|bad)/);
    expect(await text(page, "#card-queue")).toContain(zh("status.allSent"));

    // Three readings committed now reach the page by the live feed, without a reload.
    await gw.ingest(
      { id: "bench", driver: "test", kind: "monitor" },
      [1, 2, 3].map((n) => ({
        kind: "vitals",
        body: { observations: [{ code: "MDC_ECG_HEART_RATE", value: 70 + n, unit: "/min" }] },
      })),
    );
    await expect
      .poll(() => text(page, "#card-queue"), { timeout: SEEN_MS })
      .toContain(zh("status.waiting", { n: "3" }));
    expect(await text(page, "#card-queue")).toContain(zh("status.p2"));
    await screenshots(page, "status");
  });

  it.skipIf(!hasSocat)(
    "pairing: probes a GPS on a real serial port (PTY), pairs it, and its data shows live within seconds",
    async () => {
      const cable = nullModem();
      await cable.plugIn();
      cleanup.push(() => cable.unplug());
      const stop = new AbortController();
      const startMs = Math.ceil(Date.now() / 1000) * 1000;
      const sim = simulate(
        nmeaGpsSimulator,
        { path: cable.devicePath },
        { epochs: syntheticDrive({ startMs, epochs: Infinity }), startMs },
        stop.signal,
      );
      cleanup.push(async () => {
        stop.abort();
        await sim;
      });
      const { page, gw } = await gatewayAndPage({
        id: "gw-web-gps",
        pairing: `{ listen: [], serialPaths: ["${cable.gatewayPath}"], probeMs: 3000 }`,
      });
      await signIn(page, "#/pairing");

      const port = page.locator(".card.port", { has: page.locator("h2", { hasText: cable.gatewayPath }) });
      await port.waitFor();
      await port.getByRole("button", { name: zh("pairing.probe") }).click();
      // Listen-only probing of every probeable driver at each speed, 3 s each: long enough for a whole
      // GPS epoch (it ends when the next begins) to decode into a position. Give it the time it needs.
      await port.locator(".probe-best").waitFor({ timeout: 60_000 });
      expect(await port.locator(".probe-best").innerText()).toContain(zh("pairing.bestFound"));
      expect(await port.locator("tr.verdict-match").count()).toBeGreaterThan(0);
      expect(await port.locator("tr.verdict-match td.sample").first().innerText()).toContain(zh("kind.position"));
      // On a laptop the probed port takes the whole row, so its table is not cut off.
      expect((await port.boundingBox())!.width).toBeGreaterThan(VIEWPORTS.laptop.width * 0.8);
      await screenshots(page, "pairing-probe");

      await port.getByRole("button", { name: zh("pairing.useBest") }).click();
      // The form it opens is scrolled to below the sticky header, its title in sight.
      await page.locator("#pair-form").waitFor();
      await expect
        .poll(async () => (await page.locator("#pair-form").boundingBox())!.y, { timeout: SEEN_MS })
        .toBeGreaterThanOrEqual((await page.locator("header.top").boundingBox())!.height - 1);
      await pairWithForm(
        page,
        { driver: "nmea-gps", id: "gps", name: "车顶 GPS", location: "救护车 07" },
        "pairing-form",
      );
      expect(gw.devices.get("gps")?.driver).toBe("nmea-gps");

      await page.goto("/#/devices");
      const card = page.locator("article.device[data-device=gps]");
      await card.waitFor();
      expect(await card.locator("h2").innerText()).toContain("车顶 GPS");
      await expect
        .poll(() => card.locator(".dev-state").innerText(), { timeout: SEEN_MS })
        .toContain(zh("devstate.connected"));
      // Its count of readings moves on while the page is open: live, not a snapshot.
      const readings = async () =>
        Number(/(\d+)/.exec((await card.locator(".kv").innerText()).split(zh("devices.events"))[1] ?? "")?.[1] ?? 0);
      const first = await readings();
      await expect.poll(readings, { timeout: SEEN_MS }).toBeGreaterThan(first);
      expect(await card.innerText()).toContain("救护车 07");
      // Where the vehicle is: the latest fix, with its speed and quality.
      await expect
        .poll(() => card.locator(".value[data-code=position] .v-num").innerText(), { timeout: SEEN_MS })
        .toMatch(/^-?\d+\.\d{5}, -?\d+\.\d{5}$/);
      expect(await card.locator(".value[data-code=position] .v-unit").innerText()).toContain(zh("fix.3d"));
      await screenshots(page, "devices-gps");
    },
  );

  it("pairing: an HL7 monitor that connected unannounced is offered, paired, and its values show live", async () => {
    const hl7Port = await freePort();
    const { page } = await gatewayAndPage({ id: "gw-web-hl7", pairing: `{ listen: [${hl7Port}] }` });
    await signIn(page, "#/pairing");
    // The monitor calls the gateway's HL7 port before anyone paired it; its sending application
    // carries markup, which must show as text.
    const evil = "<img src=x onerror=window.__xss=1>";
    const message = readFileSync(join(ROOT, "test/fixtures/hl7/pcd01-basic.hl7"), "utf8")
      .replace(/\r?\n/g, "\r")
      .replace("SIM_MONITOR", evil);
    const early = await MllpSender.connect(hl7Port);
    cleanup.push(() => early.close());
    const refused = await early.send(message);
    expect(refused.code).not.toBe("AA");

    const sender = page.locator(".card.sender");
    await sender.waitFor({ timeout: SEEN_MS });
    expect(await sender.innerText()).toContain(zh("protocol.hl7"));
    await screenshots(page, "pairing-sender");
    expect(await page.evaluate("window.__xss")).toBeUndefined();
    expect(await sender.locator("img").count()).toBe(0);

    await sender.getByRole("button", { name: zh("pairing.pairThis") }).click();
    await pairWithForm(page, { driver: "hl7-pcd01", id: "monitor", name: "床旁监护仪 1", location: "3 号床" });

    // The monitor tries again, as it does after a refusal: now the device takes it, and its values
    // reach the devices page live.
    await page.goto("/#/devices");
    const card = page.locator("article.device[data-device=monitor]");
    await card.waitFor();
    const monitor = await MllpSender.connect(hl7Port);
    cleanup.push(() => monitor.close());
    expect((await monitor.send(message)).code).toBe("AA");
    const heartRate = card.locator(".value[data-code=MDC_ECG_HEART_RATE] .v-num");
    await expect.poll(() => heartRate.innerText(), { timeout: SEEN_MS }).toBe("72");
    // One message holds vitals of two times (the NIBP taken earlier): the card keeps both, the blood
    // pressure as one reading.
    expect(await card.locator(".value[data-code=NIBP] .v-num").innerText()).toBe("118/76 (90)");
    expect(await card.locator(".value[data-code^=MDC_PRESS_BLD_NONINV]").count()).toBe(0);
    expect(await card.locator(".value[data-code=MDC_TEMP_BODY] .v-unit").innerText()).toBe("°C");
    // A listening device whose data just came is shown flowing (green), not waiting.
    await expect
      .poll(() => card.locator(".dev-state").innerText(), { timeout: SEEN_MS })
      .toContain(zh("devstate.connected"));
    expect((await monitor.send(message.replace("|72|", "|131|").replace("MSG0001", "MSG0002"))).code).toBe("AA");
    await expect.poll(() => heartRate.innerText(), { timeout: SEEN_MS }).toBe("131");
    await screenshots(page, "devices-monitor");
    // A monitor left in demo mode (OBX-8 DEMO): its simulated values are marked on the card, never
    // shown as a patient's.
    expect(await card.locator(".badge.demo").count()).toBe(0);
    expect((await monitor.send(readFileSync(join(ROOT, "test/fixtures/hl7/mindray-demo.hl7"), "utf8"))).code).toBe(
      "AA",
    );
    await card.locator(".dev-state .badge.demo").waitFor({ timeout: SEEN_MS });
    expect(await card.locator(".dev-state").innerText()).toContain(zh("devices.demo"));
    expect(await card.locator(".value.demo[data-code=MDC_PULS_OXIM_SAT_O2]").count()).toBe(1);
    expect(await card.locator(".value.demo[data-code=MDC_ECG_HEART_RATE]").count()).toBe(0);
    await page.goto("/#/pairing");
    await page.locator(".card.paired").first().waitFor();
    expect(await text(page, "#paired")).toContain("床旁监护仪 1");
  });

  it(
    "case: open, scan the patient id, tap first medical contact, the ECG drawn, received by the center, and its reading",
    { timeout: 90_000 },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "vg-web-ecg-"));
      cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
      const drop = join(dir, "cart");
      mkdirSync(drop);
      const { page, config, gw } = await gatewayAndPage({
        id: "gw-web-case",
        uplink: "embedded",
        devices: `{ id: cart, driver: ecg-cart, name: 心电图机, options: { dir: "${drop}", stableMs: 100, scanMs: 50 } }`,
      });
      const center = await connectEmbeddedCenter(config);
      cleanup.push(() => center.close());
      await signIn(page, "#/cases");
      await screenshots(page, "cases-empty");
      await page.click("#open-case");
      await page.locator("#fmc-timer").waitFor();
      expect(page.url()).toMatch(/#\/case\/[^/]+$/);
      // The patient id field has the focus: a keyboard-wedge scanner types the code and Enter.
      await expect.poll(() => page.evaluate("document.activeElement?.id"), { timeout: SEEN_MS }).toBe("patient-id");
      await page.keyboard.type("P20261123-0042\n");
      await expect.poll(() => text(page, ".patient-now"), { timeout: SEEN_MS }).toContain("P20261123-0042");
      expect(page.url()).not.toContain("P20261123");
      expect(await text(page, "#fmc-timer")).toContain(zh("cases.noFmc"));

      await page.click("#tap-fmc");
      await page.locator("#fmc-timer.ok").waitFor();
      expect(await text(page, "#fmc-timer .timer-target")).toContain("10:00");
      const clock = () => text(page, "#fmc-timer .timer-value");
      const shown = await clock();
      await expect.poll(clock, { timeout: 5000 }).not.toBe(shown);
      expect(await text(page, "li[data-node=fmc] time")).not.toBe("—");
      // Tapped late: the crew corrects first contact to when it really was, three minutes ago on the page's clock.
      const earlier = await page.evaluate(() => {
        const d = new Date(Date.now() - 180_000);
        return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
      });
      await page.fill("#fmc-at", earlier);
      page.once("dialog", (d) => void d.accept());
      await page.click("#tap-fmc");
      // (Just after midnight the corrected time is yesterday's, shown with its date.)
      await expect
        .poll(() => text(page, "li[data-node=fmc] time"), { timeout: SEEN_MS })
        .toMatch(new RegExp(`(^|\\s)${earlier}:00$`));
      expect(await page.inputValue("#fmc-at")).toBe("");
      // The clock counts from the corrected contact: at least three minutes, still under the 10-minute target.
      await expect
        .poll(async () => Number((await clock()).split(":")[0]), { timeout: SEEN_MS })
        .toBeGreaterThanOrEqual(3);
      await page.locator("#fmc-timer.ok").waitFor();

      // The cart exports its 12-lead into the watched folder.
      copyFileSync(join(ROOT, "test/fixtures/ecg/twelve-lead-implicit-vr.dcm"), join(drop, "ECG_0001.dcm"));
      const img = page.locator("#ecg img.ecg-img");
      await img.waitFor({ timeout: SEEN_MS });
      await expect
        .poll(() => img.evaluate((el) => (el as unknown as { naturalWidth: number }).naturalWidth), {
          timeout: SEEN_MS,
        })
        .toBeGreaterThan(0);
      expect(await text(page, "li[data-node=firstEcg] time")).not.toBe("—");

      // The center gets the ECG, stores it and says so; then its cardiologist's reading comes back.
      await center.waitFor(() => center.events.some((e) => e.kind === "ecg12"), 20_000, "the ECG at the center");
      const ecg = center.events.find((e) => e.kind === "ecg12")!;
      await center.waitFor(() => center.original(ecg.id) !== undefined, 20_000, "the ECG's file at the center");
      await expect.poll(() => text(page, "#ecg .transfer"), { timeout: SEEN_MS }).toContain(zh("cases.delivered"));
      await center.client.publishAsync(`vitalgate/v1/${config.gateway.id}/receipt`, JSON.stringify({ ids: [ecg.id] }), {
        qos: 1,
      });
      await page.locator("#ecg .badge.received").waitFor({ timeout: SEEN_MS });
      expect(await text(page, "li[data-node=ecgReceived] time")).not.toBe("—");
      await center.client.publishAsync(
        `vitalgate/v1/${config.gateway.id}/report`,
        JSON.stringify({
          eventId: ecg.id,
          reader: "王医生",
          at: new Date().toISOString(),
          conclusion: "STEMI",
          text: "下壁导联 ST 段抬高，建议直接送导管室",
        }),
        { qos: 1 },
      );
      await page.locator("#report .report-conclusion").waitFor({ timeout: SEEN_MS });
      expect(await text(page, "#report .report-conclusion")).toBe("STEMI");
      expect(await text(page, "#report")).toContain("王医生");
      // Large enough to read from the stretcher: the conclusion's letters are at least 48 px high.
      expect(
        await page
          .locator("#report .report-conclusion")
          .evaluate((el) => (el as unknown as { offsetHeight: number }).offsetHeight),
      ).toBeGreaterThanOrEqual(48);
      // The clock stops at the reading.
      await page.locator("#fmc-timer.done").waitFor();
      expect(await text(page, "li[data-node=ecgRead] time")).not.toBe("—");

      // A second ECG, taken since: it is shown, while the first one's STEMI reading stays in sight, and
      // the case's list of ECGs leads back to the first.
      copyFileSync(join(ROOT, "test/fixtures/ecg/general-ecg-8lead-explicit.dcm"), join(drop, "ECG_0002.dcm"));
      await page.locator("#ecg .ecg-list li").nth(1).waitFor({ timeout: SEEN_MS });
      const listed = await page
        .locator("#ecg .ecg-list button")
        .evaluateAll((els) => els.map((el) => (el as unknown as { dataset: { ecg: string } }).dataset.ecg));
      expect(listed).toHaveLength(2);
      expect(listed[1]).toBe(ecg.id);
      // Each names the cart that took it, not a bare time.
      for (const item of await page.locator("#ecg .ecg-list button").allInnerTexts())
        expect(item).toContain("心电图机");
      expect(await img.getAttribute("src")).toContain(listed[0]);
      expect(await text(page, "#report .report-conclusion")).toBe("STEMI");
      const [pre, post] = zh("cases.readingOf", { at: "|" }).split("|");
      expect(await text(page, "#report .report-of")).toMatch(
        new RegExp(`^${pre}(\\d{4}-\\d\\d-\\d\\d )?\\d\\d:\\d\\d:\\d\\d${post}$`),
      );
      await page.click(`#ecg .ecg-list button[data-ecg="${ecg.id}"]`);
      await expect
        .poll(() => page.locator("#ecg img.ecg-img").getAttribute("src"), { timeout: SEEN_MS })
        .toContain(ecg.id);
      expect(await page.getAttribute(`#ecg .ecg-list button[data-ecg="${ecg.id}"]`, "aria-pressed")).toBe("true");
      await screenshots(page, "case");

      await page.goto("/#/cases");
      await page.locator(".case-row").first().waitFor();
      expect(await text(page, "#cases-open")).toContain("STEMI");
      // A reading of an ECG outside any case (a clinic that opens none) shows on the list, as it comes.
      // (Two ECGs the gateway sent outside the case: a reading of any other is refused.)
      const outside = await gw.outbox.append(
        ["01a209ad-88fb-7465-aafa-04002edf9dc9", "01a209ad-88fb-7465-aafa-04002edf9dca"].map((id) => ({
          ...stampedEvent("ecg12", { format: "dicom-ecg", fs: 500, durationS: 0, leads: [] }),
          id,
        })),
      );
      expect(outside).toHaveLength(2);
      await center.client.publishAsync(
        `vitalgate/v1/${config.gateway.id}/report`,
        JSON.stringify({
          eventId: "01a209ad-88fb-7465-aafa-04002edf9dc9",
          reader: "李医生",
          at: new Date().toISOString(),
          conclusion: "Anterior STEMI",
        }),
        { qos: 1 },
      );
      await expect.poll(() => text(page, "#readings"), { timeout: SEEN_MS }).toContain("Anterior STEMI");
      expect(await text(page, "#readings h2")).toBe(zh("cases.readingsOutside"));
      expect(await page.locator("#readings .case-row.stemi").count()).toBe(1);
      // A reading that rules a STEMI out is not shown in STEMI red.
      await center.client.publishAsync(
        `vitalgate/v1/${config.gateway.id}/report`,
        JSON.stringify({
          eventId: "01a209ad-88fb-7465-aafa-04002edf9dca",
          reader: "李医生",
          at: new Date().toISOString(),
          conclusion: "No STEMI",
        }),
        { qos: 1 },
      );
      await expect.poll(() => text(page, "#readings"), { timeout: SEEN_MS }).toContain("No STEMI");
      expect(await page.locator("#readings .case-row.stemi").count()).toBe(1);
      await screenshots(page, "cases");
      expect(gw.devices.get("cart")).toBeDefined();
    },
  );

  it("audit: the trail of what was done, its chain intact, and a changed record found", async () => {
    const { page, config } = await gatewayAndPage({ id: "gw-web-audit" });
    await signIn(page, "#/users");
    // An admin adds a crew member on the users page: one more audited change.
    await page.fill("#user-form input[name=username]", "crew1");
    await page.fill("#user-form input[name=password]", PASSWORD);
    await page.selectOption("#user-form select[name=role]", "crew");
    await page.click("#user-form button[type=submit]");
    await page.locator("#users tr[data-user=crew1]").waitFor();
    await screenshots(page, "users");

    await page.goto("/#/audit");
    await page.locator("#chain-ok").waitFor();
    const rows = page.locator("#audit tbody tr");
    expect(await rows.count()).toBeGreaterThanOrEqual(2);
    expect(await text(page, "#audit")).toContain(zh("action.user.add"));
    expect(await text(page, "#audit")).toContain(zh("action.setup"));
    await screenshots(page, "audit");

    // Someone edits a record behind the gateway's back: the page says the chain is broken, and where.
    const db = new Database(localDbPath(config.stateDir));
    const seq = (db.prepare("SELECT min(seq) AS seq FROM audit").get() as { seq: number }).seq;
    db.prepare("UPDATE audit SET actor = 'nobody' WHERE seq = ?").run(seq);
    db.close();
    await page.reload();
    await page.locator("#chain-bad").waitFor();
    expect(await text(page, "#chain-bad")).toContain(`#${seq}`);
    await screenshots(page, "audit-broken");
  });

  it("language: switches to English, every page without Chinese, remembered after a reload, and back", async () => {
    const { page } = await gatewayAndPage({ id: "gw-web-lang" });
    await signIn(page);
    expect(await text(page, "#nav")).toContain(zh("nav.status"));
    await page.click("#lang");
    await expect.poll(() => text(page, "#nav"), { timeout: SEEN_MS }).toContain(en("nav.status"));
    await page.reload();
    await page.locator("#nav").waitFor();
    expect(await text(page, "#nav")).toContain(en("nav.status"));
    expect(await page.evaluate("document.documentElement.lang")).toBe("en");
    for (const hash of ["#/status", "#/devices", "#/pairing", "#/cases", "#/audit", "#/users"]) {
      await page.goto(`/${hash}`);
      await page.locator(".page-head h1").waitFor();
      await page.waitForLoadState("networkidle");
      // The button back to Chinese is the one Chinese word an English page has.
      const body = (await page.locator("body").innerText()).replace(en("lang.switch"), "");
      expect(
        body.split("\n").filter((l) => CJK.test(l)),
        hash,
      ).toEqual([]);
    }
    await screenshots(page, "users-en");
    await page.click("#lang");
    await expect.poll(() => text(page, "#nav"), { timeout: SEEN_MS }).toContain(zh("nav.status"));
  });

  it("pairing form: each option named and explained in Chinese and English, what to set on the monitor, and an error pointing at its field", async () => {
    const { page } = await gatewayAndPage({ id: "gw-web-form", pairing: "{ listen: [] }" });
    await signIn(page, "#/pairing");
    await page.getByRole("button", { name: zh("pairing.manual") }).click();
    const form = page.locator("#pair-form");
    await form.locator("select[name=driver]").selectOption("hl7-pcd01");
    const field = (key: string) => form.locator("label.field", { has: page.locator(`[name=opt-${key}]`) });
    // The driver's own words for its options, never the raw key; a line of help in the same language.
    expect(await field("port").locator("span").innerText()).toBe("TCP 端口");
    expect(await field("port").locator(".hint").innerText()).toMatch(/2575/);
    expect(CJK.test(await field("port").locator(".hint").innerText())).toBe(true);
    await field("port").locator("input").fill("2600");
    // What to set on the monitor: this box's address and the port just typed.
    const setup = form.locator("#device-setup");
    await expect.poll(() => setup.innerText(), { timeout: SEEN_MS }).toContain("端口 2600");
    expect(await setup.innerText()).toContain(zh("pairing.setupTitle"));
    await screenshots(page, "pairing-form-labels");
    // Connecting out with no address: the error names the field as the form does, and marks it.
    await field("mode").locator("select").selectOption('"connect"');
    await form.locator("input[name=id]").fill("monitor-out");
    await form.getByRole("button", { name: zh("pairing.save") }).click();
    await expect.poll(() => text(page, "#notice"), { timeout: SEEN_MS }).toContain("地址");
    expect(await text(page, "#notice")).not.toContain("options.host");
    expect(await field("host").locator("input").getAttribute("aria-invalid")).toBe("true");
    // And in English.
    await page.click("#lang");
    await page.getByRole("button", { name: en("pairing.manual") }).click();
    await form.locator("select[name=driver]").selectOption("hl7-pcd01");
    expect(await field("port").locator("span").innerText()).toBe("TCP port");
    expect(CJK.test(await form.innerText())).toBe(false);
    await expect.poll(() => setup.innerText(), { timeout: SEEN_MS }).toContain("port 2575");
    await screenshots(page, "pairing-form-labels-en");
  });

  it("a device's last error is said in the crew's words, with whether someone must act, beside the gateway's own", async () => {
    const port = await freePort(); // nothing listens there: the monitor's server is off
    const { page } = await gatewayAndPage({
      id: "gw-web-lasterror",
      devices: `{ id: monitor, driver: hl7-pcd01, name: 监护仪, options: { mode: connect, host: 127.0.0.1, port: ${port} } }`,
    });
    await signIn(page, "#/devices");
    const card = page.locator("article.device[data-device=monitor]");
    await expect
      .poll(() => card.innerText(), { timeout: SEEN_MS })
      .toContain(`${zh("err.VG_TCP_REFUSED")}; ${zh("devices.next.retry")} (127.0.0.1:${port}: connect ECONNREFUSED`);
    await page.click("#lang");
    await expect
      .poll(() => card.innerText(), { timeout: SEEN_MS })
      .toContain(`${en("err.VG_TCP_REFUSED")}; ${en("devices.next.retry")}`);
    // The monitor's server comes on: once connected, the old error is history, not advice.
    const sockets: Socket[] = [];
    const server = createServer((s) => void sockets.push(s)).listen(port, "127.0.0.1");
    cleanup.push(() => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    });
    await expect
      .poll(() => card.innerText(), { timeout: SEEN_MS })
      .toContain(`${en("err.VG_TCP_REFUSED")}; ${en("devices.recovered")}`);
    expect(await card.innerText()).not.toContain(en("devices.next.retry"));
  });

  it("a device named with markup shows its name as text, and no script runs", async () => {
    const evil = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>`;
    const { page } = await gatewayAndPage({
      id: "gw-web-xss",
      devices: `{ id: evil, driver: hl7-pcd01, name: '${evil}', options: { port: ${await freePort()}, host: 127.0.0.1 } }`,
    });
    await signIn(page, "#/devices");
    const card = page.locator("article.device[data-device=evil]");
    await card.waitFor();
    expect(await card.locator("h2").innerText()).toContain(evil);
    expect(await card.locator("img, script").count()).toBe(0);
    expect(await page.evaluate("window.__xss")).toBeUndefined();
    await screenshots(page, "devices-xss");
  });
});

// The page as a tired crew uses it in a moving ambulance, and a technician with no manual (issue 19).
describe.skipIf(!hasChromium)("the page in a moving ambulance", { timeout: 90_000 }, () => {
  it("first medical contact: a second tap or a scanner's Enter never overwrites it; a correction is confirmed and audited", async () => {
    const { page, gw } = await gatewayAndPage({ id: "gw-web-fmc" });
    await signIn(page, "#/cases");
    await page.click("#open-case");
    await page.locator("#fmc-timer").waitFor();
    const id = decodeURIComponent(page.url().split("#/case/")[1]!);
    const fmc = () => gw.cases.get(id)?.nodes.fmc;
    await page.click("#tap-fmc");
    await page.locator("#fmc-timer.ok").waitFor();
    const first = fmc();
    expect(first).toBeDefined();

    expect(await text(page, "#fmc-timer .timer-units")).toBe(zh("cases.clockUnits"));

    // Tapped again, later: the page says how to correct it; nothing changes, and nothing under the
    // finger moves when the notice comes.
    const where = await page.locator("#tap-fmc").boundingBox();
    await page.click("#tap-fmc");
    await expect
      .poll(() => text(page, "#notice"), { timeout: SEEN_MS })
      .toContain(zh("cases.correctHow", { node: zh("node.fmc") }));
    expect(await page.locator("#tap-fmc").boundingBox()).toEqual(where);
    expect(fmc()).toBe(first);

    // A barcode scanner's burst while the button has the focus: the keys go to the patient id, and
    // its Enter saves it instead of pressing the button.
    await page.focus("#tap-fmc");
    await page.keyboard.type("P20261207-0099", { delay: 5 });
    await page.keyboard.press("Enter");
    await expect.poll(() => text(page, ".patient-now"), { timeout: SEEN_MS }).toContain("P20261207-0099");
    expect(fmc()).toBe(first);

    // A correction asks first; declined, nothing changes; confirmed, the clock counts from it.
    const earlier = await page.evaluate(() => {
      const d = new Date(Date.now() - 240_000);
      return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
    });
    await page.fill("#fmc-at", earlier);
    let asked = "";
    page.once("dialog", (d) => {
      asked = d.message();
      void d.dismiss();
    });
    await page.click("#tap-fmc");
    await expect.poll(() => asked, { timeout: SEEN_MS }).toContain(zh("node.fmc"));
    expect(fmc()).toBe(first);
    page.once("dialog", (d) => void d.accept());
    await page.click("#tap-fmc");
    await expect.poll(fmc, { timeout: SEEN_MS }).not.toBe(first);
    await expect
      .poll(async () => Number((await text(page, "#fmc-timer .timer-value")).split(":")[0]), { timeout: SEEN_MS })
      .toBeGreaterThanOrEqual(3);
    const audit = (await (await page.request.get("/api/audit")).json()) as {
      rows: { action: string; detail?: Record<string, unknown> }[];
    };
    expect(audit.rows.find((r) => r.action === "case.node.correct")?.detail).toMatchObject({
      node: "fmc",
      before: first,
    });
    await screenshots(page, "case-fmc-corrected");
    // The cases page leads back to the open case instead of offering a second one.
    await page.goto("/#/cases");
    await page.locator("#go-to-case").waitFor();
    expect(await text(page, "#go-to-case")).toContain(id);
    expect(await page.locator("#open-case").isHidden()).toBe(true);
  });

  it(
    "a reading that comes during a Wi-Fi gap shows when the page is back, without a reload",
    { timeout: 90_000 },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "vg-web-gap-"));
      cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
      const drop = join(dir, "cart");
      mkdirSync(drop);
      const { page, config, gw, link } = await gatewayAndPage(
        {
          id: "gw-web-gap",
          uplink: "embedded",
          devices: `{ id: cart, driver: ecg-cart, options: { dir: "${drop}", stableMs: 100, scanMs: 50 } }`,
        },
        { wifi: true },
      );
      const center = await connectEmbeddedCenter(config);
      cleanup.push(() => center.close());
      // The crew's tablet, held upright; its vibrations recorded.
      await page.setViewportSize(VIEWPORTS.tablet);
      await page.addInitScript(
        "window.__vibrations = []; navigator.vibrate = (p) => { window.__vibrations.push(p); return true; };",
      );
      await signIn(page, "#/cases");
      await page.click("#open-case");
      await page.locator("#fmc-timer").waitFor();
      const id = decodeURIComponent(page.url().split("#/case/")[1]!);
      await page.click("#tap-fmc");
      copyFileSync(join(ROOT, "test/fixtures/ecg/twelve-lead-implicit-vr.dcm"), join(drop, "ECG_0001.dcm"));
      await page.locator("#ecg img.ecg-img").waitFor({ timeout: SEEN_MS });
      await center.waitFor(() => center.events.some((e) => e.kind === "ecg12"), 20_000, "the ECG at the center");
      const ecg = center.events.find((e) => e.kind === "ecg12")!;
      await page.locator("#live.up").waitFor();

      // The tablet's Wi-Fi drops; meanwhile the center stores the ECG and its cardiologist reads it.
      link!.drop();
      await page.locator("#live.down").waitFor({ timeout: SEEN_MS });
      // Said across the page within seconds, not only in the header's small pill.
      await page.locator("#offline").waitFor({ timeout: SEEN_MS });
      expect(await text(page, "#offline")).toBe(zh("live.lost"));
      await center.client.publishAsync(`vitalgate/v1/${config.gateway.id}/receipt`, JSON.stringify({ ids: [ecg.id] }), {
        qos: 1,
      });
      await center.client.publishAsync(
        `vitalgate/v1/${config.gateway.id}/report`,
        JSON.stringify({ eventId: ecg.id, reader: "王医生", at: new Date().toISOString(), conclusion: "STEMI" }),
        { qos: 1 },
      );
      await expect.poll(() => gw.cases.get(id)?.ecg?.report?.conclusion, { timeout: SEEN_MS }).toBe("STEMI");
      expect(await page.locator("#report .report-conclusion").count()).toBe(0);

      // Back in coverage: the stream reconnects and the page fetches what it missed.
      link!.restore();
      await page.locator("#live.up").waitFor({ timeout: SEEN_MS });
      await page.locator("#report .report-conclusion").waitFor({ timeout: SEEN_MS });
      expect(await text(page, "#report .report-conclusion")).toBe("STEMI");
      await page.locator("#ecg .badge.received").waitFor({ timeout: SEEN_MS });
      expect(await page.locator("#offline").isHidden()).toBe(true);
      // Announced: the tablet vibrated (a STEMI's long pattern), and the reading and "received" are in view.
      expect(await page.evaluate("window.__vibrations")).toEqual([[400, 150, 400, 150, 400]]);
      const inView = async (selector: string) => {
        const box = (await page.locator(selector).boundingBox())!;
        return box.y >= 0 && box.y < VIEWPORTS.tablet.height;
      };
      await expect.poll(() => inView("#report .report-conclusion"), { timeout: SEEN_MS }).toBe(true);
      expect(
        await page
          .locator("#ecg")
          .boundingBox()
          .then((b) => b!.y),
      ).toBeLessThan(
        await page
          .locator(".card.patient")
          .boundingBox()
          .then((b) => b!.y),
      );
      await screenshots(page, "case-reading-after-gap");
    },
  );

  /** A gateway with an ecg-cart on a folder under the temp root, and the page on a case just opened, first medical contact tapped. */
  async function caseWithCart(gatewayId: string) {
    const dir = mkdtempSync(join(tmpdir(), "vg-web-cart-"));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const drop = join(dir, "cart");
    mkdirSync(drop);
    const { page, gw } = await gatewayAndPage({
      id: gatewayId,
      devices: `{ id: cart, driver: ecg-cart, name: 心电图机, options: { dir: "${drop}", stableMs: 100, scanMs: 50 } }`,
    });
    await page.setViewportSize(VIEWPORTS.tablet);
    await signIn(page, "#/cases");
    await page.click("#open-case");
    await page.locator("#fmc-timer").waitFor();
    await page.click("#tap-fmc");
    return { page, gw, drop, id: decodeURIComponent(page.url().split("#/case/")[1]!) };
  }

  it("an ECG whose cart gave no acquisition time is labelled with its arrival at the gateway, not as acquired then", async () => {
    const { page, gw, drop, id } = await caseWithCart("gw-web-arrived");
    // The fixture was acquired weeks ago by a cart whose clock is not known: its time cannot be placed.
    copyFileSync(join(ROOT, "test/fixtures/ecg/twelve-lead-implicit-vr.dcm"), join(drop, "ECG_0001.dcm"));
    await page.locator("#ecg img.ecg-img").waitFor({ timeout: SEEN_MS });
    expect(gw.cases.get(id)?.ecg?.tFrom).toBe("recv");
    const [pre, post] = zh("cases.arrived", { at: "|" }).split("|") as [string, string];
    const label = await text(page, "#ecg .acquired");
    expect(label.startsWith(pre) && label.endsWith(post), label).toBe(true);
    expect(label).not.toContain(zh("cases.acquired", { at: "|" }).split("|")[0]!.trim());
  });

  it("a damaged ECG file and one sent again are told on the case page in words, with what to do", async () => {
    const { page, drop } = await caseWithCart("gw-web-rejected");
    // Copied off the cart before it finished writing: cut inside the waveform data.
    const whole = readFileSync(join(ROOT, "test/fixtures/ecg/twelve-lead-implicit-vr.dcm"));
    writeFileSync(join(drop, "ECG_0001.dcm"), whole.subarray(0, Math.floor(whole.length * 0.7)));
    await expect.poll(() => existsSync(join(drop, "rejected", "ECG_0001.dcm")), { timeout: SEEN_MS }).toBe(true);
    await expect
      .poll(() => text(page, "#notice"), { timeout: SEEN_MS })
      .toContain(zh("cases.ecgUnreadable", { reason: zh("cases.ecgTruncated") }));
    expect(await page.locator("#notice").getAttribute("class")).toContain("error");
    await screenshots(page, "case-ecg-unreadable");

    // Sent again whole, it is drawn; sent a third time, the crew learns it had come.
    copyFileSync(join(ROOT, "test/fixtures/ecg/twelve-lead-implicit-vr.dcm"), join(drop, "ECG_0002.dcm"));
    await page.locator("#ecg img.ecg-img").waitFor({ timeout: SEEN_MS });
    copyFileSync(join(ROOT, "test/fixtures/ecg/twelve-lead-implicit-vr.dcm"), join(drop, "ECG_0003.dcm"));
    await expect.poll(() => text(page, "#notice"), { timeout: SEEN_MS }).toContain(zh("cases.ecgAgain"));
    expect(existsSync(join(drop, "done", "ECG_0003.dcm"))).toBe(true);
  });

  it("a monitor that stops sending is shown stale within seconds, its values greyed with their age", async () => {
    const hl7Port = await freePort();
    const { page } = await gatewayAndPage({
      id: "gw-web-stale",
      devices: `{ id: monitor, driver: hl7-pcd01, options: { mode: listen, host: 127.0.0.1, port: ${hl7Port} } }`,
    });
    await signIn(page, "#/devices");
    const card = page.locator("article.device[data-device=monitor]");
    await card.waitFor();
    const message = readFileSync(join(ROOT, "test/fixtures/hl7/pcd01-basic.hl7"), "utf8").replace(/\r?\n/g, "\r");
    const monitor = await MllpSender.connect(hl7Port);
    cleanup.push(() => monitor.close());
    // Once a second, as a monitor sends, for long enough that the page learns its rate.
    for (let i = 1; i <= 5; i++) {
      expect((await monitor.send(message.replace("MSG0001", `MSG100${i}`))).code).toBe("AA");
      if (i < 5) await new Promise((r) => setTimeout(r, 1000));
    }
    await expect
      .poll(() => card.locator(".dev-state").innerText(), { timeout: SEEN_MS })
      .toContain(zh("devstate.connected"));
    expect(await card.getAttribute("class")).not.toContain("stale");
    const stoppedAt = performance.now();
    // It stops (the cable is pulled at the monitor; the TCP connection stays up).
    await card
      .locator(".dev-state", { hasText: zh("devices.staleFor", { d: "" }).trim() })
      .waitFor({ timeout: 15_000 });
    expect(performance.now() - stoppedAt).toBeLessThan(12_000);
    expect(await card.getAttribute("class")).toContain("stale");
    expect(await card.getAttribute("class")).toContain("tone-warn");
    expect(await card.locator(".value[data-code=MDC_ECG_HEART_RATE] .v-age").innerText()).not.toBe("");
    expect(
      await card.locator(".value[data-code=MDC_ECG_HEART_RATE] .v-num").evaluate("(el) => getComputedStyle(el).color"),
    ).not.toBe("rgb(77, 255, 136)");
    await screenshots(page, "devices-stale");
    // Data again: fresh at once.
    expect((await monitor.send(message.replace("MSG0001", "MSG2001"))).code).toBe("AA");
    await expect.poll(() => card.getAttribute("class"), { timeout: SEEN_MS }).not.toContain("stale");
  });

  it.skipIf(!hasSocat)(
    "a probe that takes longer than the page's refresh still shows what it found",
    { timeout: 90_000 },
    async () => {
      const cable = nullModem();
      await cable.plugIn();
      cleanup.push(() => cable.unplug());
      const { page } = await gatewayAndPage({
        id: "gw-web-slowprobe",
        pairing: `{ listen: [], serialPaths: ["${cable.gatewayPath}"], probeMs: 2000 }`,
      });
      await signIn(page, "#/pairing");
      const port = page.locator(".card.port", { has: page.locator("h2", { hasText: cable.gatewayPath }) });
      await port.waitFor();
      const started = performance.now();
      await port.getByRole("button", { name: zh("pairing.probe") }).click();
      // Nothing talks on this port: every driver at every speed is tried, 2 s each, past several refreshes.
      await port.locator(".probe-best").waitFor({ timeout: 80_000 });
      expect(performance.now() - started).toBeGreaterThan(5000);
      expect(await port.locator(".probe-best").innerText()).toContain(zh("pairing.nothingFound"));
      expect(await port.getByRole("button", { name: zh("pairing.probe") }).isEnabled()).toBe(true);
    },
  );

  it("every page at phone, tablet and laptop size: tap targets of 44 px or more, a short header on the phone, and the status says when no center is set", async () => {
    const hl7Port = await freePort();
    const { page } = await gatewayAndPage({
      id: "gw-web-sizes",
      uplink: "embedded",
      devices: `{ id: monitor, driver: hl7-pcd01, options: { mode: listen, host: 127.0.0.1, port: ${hl7Port} } }`,
      pairing: "{ listen: [] }",
    });
    await signIn(page, "#/status");
    // Connected to the box's own broker is not connected to a center: amber, and said so.
    await page.locator("#card-uplink.tone-warn").waitFor({ timeout: SEEN_MS });
    expect(await text(page, "#card-uplink")).toContain(zh("uplink.noCenter"));
    await page.request.post("/api/cases", {
      data: {},
      headers: {
        "x-csrf-token": (await page.evaluate(
          "fetch('/api/session').then((r) => r.json()).then((s) => s.csrf)",
        )) as string,
        origin: new URL(page.url()).origin,
      },
    });
    const caseId = ((await (await page.request.get("/api/cases?state=open")).json()) as { id: string }[])[0]!.id;
    for (const hash of ["#/status", "#/devices", "#/pairing", "#/cases", `#/case/${caseId}`, "#/audit", "#/users"]) {
      await page.goto(`/${hash}`);
      await page.locator(".page-head h1").waitFor();
      await page.waitForLoadState("networkidle");
      for (const [size, viewport] of Object.entries(VIEWPORTS)) {
        await page.setViewportSize(viewport);
        const small =
          await page.evaluate(`[...document.querySelectorAll("button, select, input:not([type=checkbox]), .nav a, a.button, a.case-row")]
          .filter((el) => el.offsetParent !== null)
          .map((el) => [el.id || el.className || el.tagName, Math.round(el.getBoundingClientRect().height)])
          .filter(([, h]) => h < 44)`);
        expect(small, `${hash} at ${size}: controls under 44 px`).toEqual([]);
        if (size === "phone")
          expect(
            (await page.locator("header.top").boundingBox())!.height,
            `${hash}: the phone's header`,
          ).toBeLessThanOrEqual(viewport.height * 0.2);
      }
      await page.setViewportSize(VIEWPORTS.laptop);
    }
  });
});
