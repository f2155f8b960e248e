// Loads the Shoal admin dashboard in headless Chromium and reports what it
// shows, for admin.TestDashboardInBrowser:
//
//   node dashboard.mjs BASE_URL TOKEN SCREENSHOT [cluster]
//
// It prints one JSON line per phase, for the test to read as it goes:
//
//   {"phase":"loaded", ...}  the 401 page met without the token, then the
//                            dashboard reached through its form, read at
//                            once: what the first answer drew (the history
//                            the server already held), the charts' axes and
//                            legends, the tiles. The test starts sending
//                            new samples when it reads this line.
//   {"phase":"done", ...}    the charts once a new sample was appended, how
//                            much of each chart is inked, whether an old
//                            /dashboard#token=... address still signs in,
//                            any errors the pages logged, and the cluster
//                            panel (hidden on a single node).
//
// With "cluster" (admin.TestDashboardClusterInBrowser) it stops after
// "loaded": once the page has the cluster's nodes it prints
//
//   {"phase":"cluster", ...} the cluster panel and any errors the page
//                            logged,
//
// and saves its screenshot at SCREENSHOT.
//
// It saves a screenshot of the dashboard at SCREENSHOT and one of the 401
// page beside it (-401.png).
import { chromium } from 'playwright-core';

const [base, token, shot, mode] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});
const errors = [];
const watch = (page) => {
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    // The 401 page's own load is the browser's "failed to load resource".
    if (m.type() === 'error' && !/status of 401/.test(m.text())) errors.push(m.text());
  });
};

// charts reads every chart: its samples, axes, legend and last values.
const charts = (page) => page.evaluate(() => Object.fromEntries(Object.entries(window.shoal.charts).map(([id, u]) => [id, {
  samples: u.data[0].length,
  t0: u.data[0][0],
  xLabel: u.axes[0].label,
  xTime: u.scales.x.time,
  yLabel: u.axes[1].label,
  legend: [...u.root.querySelectorAll('.u-legend .u-label')].map((e) => e.textContent),
  last: u.data.slice(1).map((col) => col[col.length - 1]),
}])));

// cluster reads the cluster panel: whether it shows, its rows, and the
// last /api/cluster answer the page had.
const cluster = (page) => page.evaluate(() => ({
  visible: !document.getElementById('cluster').hidden,
  answer: window.shoal.cluster,
  note: document.getElementById('cluster-note').textContent,
  traffic: document.getElementById('cluster-traffic').textContent,
  rows: [...document.querySelectorAll('#cluster-nodes tr')].map((tr) => [...tr.cells].map((td) => td.textContent)),
}));

const tiles = async (page) => {
  const out = {};
  for (const id of ['connected', 'sessions', 'subscriptions', 'inrate', 'outrate', 'queued', 'drops', 'retained-user', 'retained-sys', 'status']) {
    out[id] = await page.textContent('#' + id);
  }
  return out;
};

try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
  watch(page);

  // Without the token: the 401 page.
  const resp = await page.goto(base + '/dashboard');
  const unauthorized = { status: resp.status(), text: await page.textContent('body') };
  await page.screenshot({ path: shot.replace(/\.png$/, '') + '-401.png' });

  // Its form signs in and lands on the dashboard.
  await page.fill('#token', token);
  await Promise.all([
    page.waitForResponse((r) => r.url() === base + '/dashboard' && r.status() === 200),
    page.click('button[type=submit]'),
  ]);
  await page.waitForFunction(() => window.shoal && window.shoal.first !== null, null, { timeout: 15000 });
  const first = await page.evaluate(() => window.shoal.first);
  const initial = await charts(page);
  console.log(JSON.stringify({ phase: 'loaded', unauthorized, first, charts: initial, tiles: await tiles(page) }));
  if (mode === 'cluster') {
    await page.waitForFunction(() => document.querySelectorAll('#cluster-nodes tr').length > 0, null, { timeout: 15000 });
    await page.screenshot({ path: shot, fullPage: true });
    console.log(JSON.stringify({ phase: 'cluster', cluster: await cluster(page), errors }));
  } else {
    await live(page, initial);
  }
} finally {
  await browser.close();
}

// live reads the page as new samples come, then an old address's sign-in,
// and prints the "done" line.
async function live(page, initial) {
  // The test now sends samples: one more is appended without a reload.
  await page.waitForFunction((n) => window.shoal.charts.msgs.data[0].length > n, initial.msgs.samples, { timeout: 20000 });
  await page.waitForTimeout(300); // let the canvas paint
  // Pixels of a series' colour (axes, grid and text are grey or black): a
  // chart with data has some.
  const inked = await page.evaluate(() => Object.fromEntries(Object.entries(window.shoal.charts).map(([id, u]) => {
    const c = u.ctx.canvas, d = u.ctx.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) {
      const [r, g, b, a] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
      if (a > 0 && Math.max(Math.abs(r - g), Math.abs(g - b), Math.abs(r - b)) > 40) n++;
    }
    return [id, n];
  })));
  const after = await charts(page);
  const afterTiles = await tiles(page);
  await page.screenshot({ path: shot, fullPage: true });

  // An address of the old form, in a fresh browser context: the 401 page
  // takes the token out of it and signs in.
  const ctx = await browser.newContext();
  const old = await ctx.newPage();
  watch(old);
  await old.goto(base + '/dashboard#token=' + encodeURIComponent(token));
  await old.waitForFunction(() => window.shoal && window.shoal.first !== null, null, { timeout: 15000 });
  const fragment = { url: old.url(), samples: await old.evaluate(() => window.shoal.charts.msgs.data[0].length) };
  await ctx.close();

  console.log(JSON.stringify({ phase: 'done', charts: after, tiles: afterTiles, inked, fragment, errors, cluster: await cluster(page) }));
}
