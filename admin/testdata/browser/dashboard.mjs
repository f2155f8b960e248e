// Loads the Shoal admin dashboard in headless Chromium and reports what it
// shows, for admin.TestDashboardInBrowser:
//
//   node dashboard.mjs URL SCREENSHOT
//
// It waits until the page has drawn a non-zero incoming message rate (the
// test publishes meanwhile), saves a screenshot, and prints one JSON line:
// the figures on the page, whether the charts have ink, and any errors the
// page logged.
import { chromium } from 'playwright-core';

const [url, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(url);
  const first = await page.textContent('#connected');
  await page.waitForFunction(() => Number(document.getElementById('inrate').textContent) > 0, null, { timeout: 20000 });
  await page.waitForTimeout(1200); // another sample, so the charts have a line
  const read = (id) => page.textContent('#' + id);
  // Pixels of a series' colour (the axis and labels are grey): a chart
  // with data has some.
  const inked = await page.evaluate(() => [...document.querySelectorAll('canvas')].map((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      const [r, g, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
      if (a > 0 && Math.max(Math.abs(r - g), Math.abs(g - b), Math.abs(r - b)) > 40) n++;
    }
    return n;
  }));
  await page.screenshot({ path: shot, fullPage: true });
  console.log(JSON.stringify({
    status: await read('status'),
    connectedFirst: first,
    connected: await read('connected'),
    inrate: await read('inrate'),
    outrate: await read('outrate'),
    subscriptions: await read('subscriptions'),
    inked,
    errors,
  }));
} finally {
  await browser.close();
}
