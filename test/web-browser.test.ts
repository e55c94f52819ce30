// The web page in a real browser (issue 6): Debian's chromium driven by playwright-core against a
// real gateway in this process (test/support/rig.ts) serving web/ and its API on a free port. Each
// flow is its own test, on its own gateway: first-run setup and login; the audit trail, intact and
// then tampered with; English and back.
// Every page is photographed phone- and laptop-sized into test-results/screenshots/.
import Database from "better-sqlite3";
import type { Browser, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { localDbPath } from "../src/local-db.ts";
import { hasChromium, launchChromium, openPage, screenshots, STRINGS } from "./support/browser.ts";
import { startGateway, type RigOptions } from "./support/rig.ts";

if (!hasChromium) console.warn("skipping the browser tests: /usr/bin/chromium is not installed (apt-get install chromium)");

/** A word of the page, as the test expects to read it; a key the dictionary lacks fails the test here. */
function word(lang: "zh-CN" | "en", key: string, params: Record<string, string> = {}): string {
  const s = STRINGS[lang][key];
  if (s === undefined) throw new Error(`no ${lang} text for ${key}`);
  return s.replace(/\{(\w+)\}/g, (_, n: string) => params[n] ?? "");
}
const zh = (key: string, params?: Record<string, string>) => word("zh-CN", key, params);
const en = (key: string) => word("en", key);
const PASSWORD = "correct horse battery";
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

/** A gateway as `o` says, and a fresh browser context on its page; the page's script errors are checked at the end. */
async function gatewayAndPage(o: Partial<RigOptions> & { id: string }) {
  const { gw, config, log } = await startGateway({ devices: "  []", ...o }, cleanup);
  const base = `http://127.0.0.1:${config.web.port}`;
  const { context, page, problems } = await openPage(browser, base);
  page.setDefaultTimeout(SEEN_MS);
  cleanup.push(() => {
    expect(problems, "script errors or CSP refusals on the page").toEqual([]);
    return context.close();
  });
  return { gw, config, log, base, page };
}

/** The first admin created from the box (no setup code from loopback), then the page opened logged in. */
async function signIn(page: Page, hash = "#/status"): Promise<void> {
  const res = await page.request.post("/api/setup", { data: { username: "admin", password: PASSWORD } });
  expect(res.status(), await res.text()).toBe(200);
  await page.goto(`/${hash}`);
  await page.locator("#nav").waitFor();
}

const text = (page: Page, selector: string) => page.locator(selector).innerText();

describe.skipIf(!hasChromium)("the web page in chromium", () => {
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
      expect(body.split("\n").filter((l) => CJK.test(l)), hash).toEqual([]);
    }
    await screenshots(page, "users-en");
    await page.click("#lang");
    await expect.poll(() => text(page, "#nav"), { timeout: SEEN_MS }).toContain(zh("nav.status"));
  });
});
