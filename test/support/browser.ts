// A real browser for the web page's tests and bench: Debian's chromium driven by playwright-core
// (never a downloaded browser), headless, a fresh profile per launch. Pages fail loudly: a script
// error or a Content-Security-Policy refusal on the page fails the test that made it.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { ROOT } from "./processes.ts";

export const CHROMIUM = "/usr/bin/chromium";
export const hasChromium = existsSync(CHROMIUM);

/** Sizes the page must work at: a small phone and a laptop. */
/** A phone, a tablet held upright (the crew's) and a laptop (the technician's). */
export const VIEWPORTS = {
  phone: { width: 360, height: 740 },
  tablet: { width: 800, height: 1280 },
  laptop: { width: 1280, height: 800 },
} as const;

export const SCREENSHOTS = join(ROOT, "test-results/screenshots");

/** The page's dictionaries (web/strings.js, a browser module: loaded as it is, typed here). */
export const STRINGS = (
  (await import(pathToFileURL(join(ROOT, "web/strings.js")).href)) as {
    STRINGS: Record<"zh-CN" | "en", Record<string, string>>;
  }
).STRINGS;

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    // playwright-core gives each launch a fresh temporary profile (user data dir) of its own.
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export interface WatchedPage {
  context: BrowserContext;
  page: Page;
  /** Script errors and console errors (CSP refusals among them) seen on the page so far. */
  problems: string[];
}

/** A fresh context (its own cookies and localStorage) at laptop size, in a zh-CN browser, its problems recorded. */
export async function openPage(browser: Browser, baseUrl: string): Promise<WatchedPage> {
  // A browser set up as the crews' are: Chinese (24-hour time fields, Chinese validation messages), China's time.
  const context = await browser.newContext({
    baseURL: baseUrl,
    viewport: VIEWPORTS.laptop,
    locale: "zh-CN",
    timezoneId: "Asia/Shanghai",
  });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("console", (m) => {
    // A 4xx answer the page expects (a wrong password) logs "Failed to load resource"; those are the test's to judge.
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) problems.push(`console: ${m.text()}`);
  });
  return { context, page, problems };
}

/** Screenshots of what the page shows now, phone-sized and laptop-sized, as test-results/screenshots/<name>-<size>.png. */
export async function screenshots(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const before = page.viewportSize();
  // From the top: a full-page picture of a scrolled page shows the sticky header in its middle.
  await page.evaluate("window.scrollTo(0, 0)");
  for (const [size, viewport] of Object.entries(VIEWPORTS)) {
    await page.setViewportSize(viewport);
    // Let the layout (and the waveform canvas, sized from its box) settle at the new size.
    await page.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))");
    await page.screenshot({ path: join(SCREENSHOTS, `${name}-${size}.png`), fullPage: true });
  }
  if (before) await page.setViewportSize(before);
}
