// Drives the wshub dashboard in Debian's headless Chromium (playwright-core,
// no downloaded browser), one JSON command a line on stdin, one JSON report a
// line on stdout ({"ok": …} or {"error": "…"}).
//   node dashboard.mjs URL
import readline from "node:readline";
import { chromium } from "playwright-core";

const [url] = process.argv.slice(2);
const out = (report) => process.stdout.write(JSON.stringify(report) + "\n");
const TIMEOUT = 10_000;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
const errors = [];
page.on("pageerror", (error) => errors.push(String(error)));
await page.goto(url);
out({ ok: "opened" });

const commands = {
  // Waits until the element's text is exactly `text`.
  async waitText({ selector, text }) {
    await page.waitForFunction(
      ([s, t]) => document.querySelector(s)?.textContent.trim() === t,
      [selector, text],
      { timeout: TIMEOUT },
    );
    return { ok: text };
  },
  // Waits until a visible log line for `topic` contains `contains`.
  async waitLog({ topic, contains, dir }) {
    const selector = `#log li${dir ? "." + dir : ""}[data-topic="${topic}"]`;
    await page.locator(selector, { hasText: contains }).first().waitFor({ timeout: TIMEOUT });
    return { ok: topic };
  },
  async count({ selector }) {
    return { ok: await page.locator(selector).count() };
  },
  async visible({ selector }) {
    return { ok: await page.locator(selector).isVisible() };
  },
  async fill({ selector, value }) {
    await page.fill(selector, value, { timeout: TIMEOUT });
    return { ok: selector };
  },
  async click({ selector }) {
    await page.click(selector, { timeout: TIMEOUT });
    return { ok: selector };
  },
  // Fills the dispatch form and submits it.
  async send({ type, id, payload }) {
    await page.fill("#send-type", type);
    await page.fill("#send-id", id);
    await page.fill("#send-payload", payload);
    await page.click("#send-button");
    return { ok: "sent" };
  },
  async screenshot({ path }) {
    await page.screenshot({ path, fullPage: true });
    return { ok: path };
  },
  async errors() {
    return { ok: errors };
  },
  async close() {
    await browser.close();
    out({ ok: "closed" });
    process.exit(0);
  },
};

const input = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
input.on("line", (line) => {
  queue = queue.then(async () => {
    try {
      const command = JSON.parse(line);
      const run = commands[command.cmd];
      if (!run) throw new Error(`unknown command ${command.cmd}`);
      out(await run(command));
    } catch (error) {
      out({ error: String(error && error.message || error) });
    }
  });
});
input.on("close", () => queue.then(() => browser.close()).then(() => process.exit(0)));
