// Opens a page that speaks MQTT over WebSocket with MQTT.js's browser
// bundle, in headless Chromium, for broker.TestMQTTOverWebSocketInBrowser:
//
//   node mqttws.mjs PAGE_URL
//
// The page (served by the Go test) connects to the broker, subscribes,
// answers the first message it receives and sets window.result. This
// script waits for that, then prints one JSON line: the result, the page's
// log and any errors it logged.
import { chromium } from 'playwright-core';

const [url] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(url);
  await page.waitForFunction(() => window.result !== null, null, { timeout: 30000 });
  console.log(JSON.stringify({
    result: await page.evaluate(() => window.result),
    log: await page.textContent('#log'),
    errors,
  }));
} finally {
  await browser.close();
}
