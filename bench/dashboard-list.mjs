// How long the dashboard takes to show the container list at 1,000 containers, in headless
// Chromium: from the route change to the rows laid out, fetch of the list included.
//   node bench/dashboard-list.mjs [COUNT] [ROUNDS]
// Needs the debug binaries (cargo build -p condod -p condo-monitor) and tests/dashboard's
// node_modules (npm ci there).
import { browser, startDaemon } from '../tests/dashboard/common.mjs';

const count = Number(process.argv[2] || 1000);
const rounds = Number(process.argv[3] || 15);

const d = await startDaemon();
const b = await browser();
try {
  await d.api('POST', '/v1/templates/build', { name: 'busybox' });
  const t0 = Date.now();
  for (let i = 0; i < count; i += 8) {
    await Promise.all(Array.from({ length: Math.min(8, count - i) }, (_, k) =>
      d.api('POST', '/v1/containers', { name: `c${i + k}`, template: 'busybox' })));
  }
  console.log(`made ${count} containers in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const page = await (await b.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  await page.goto(`${d.base}/`);
  await page.getByLabel('API token').fill(d.token);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForFunction((n) => document.getElementById('main').dataset.rendered === String(n), count);
  const api = [];
  const render = [];
  for (let r = 0; r < rounds; r++) {
    // The list's API call alone, then the whole view (call, rows, layout).
    api.push(await page.evaluate(async () => {
      const t = performance.now();
      await (await fetch('/v1/containers?all=true', { credentials: 'same-origin' })).json();
      return performance.now() - t;
    }));
    render.push(await page.evaluate((n) => new Promise((resolve) => {
      const main = document.getElementById('main');
      main.dataset.rendered = '';
      const t = performance.now();
      const obs = new MutationObserver(() => {
        if (main.dataset.rendered !== String(n)) return;
        obs.disconnect();
        main.getBoundingClientRect();
        requestAnimationFrame(() => setTimeout(() => resolve(performance.now() - t), 0));
      });
      obs.observe(main, { attributes: true, attributeFilter: ['data-rendered'] });
      window.dispatchEvent(new HashChangeEvent('hashchange'));
    }), count));
  }
  const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  console.log(`list API through the browser (ms): ${api.map((v) => v.toFixed(1)).join(' ')}`);
  console.log(`list view rendered (ms):           ${render.map((v) => v.toFixed(1)).join(' ')}`);
  console.log(`median: API ${median(api).toFixed(1)} ms, view ${median(render).toFixed(1)} ms at ${count} containers (target <= 300 ms)`);
} finally {
  await b.close();
  await d.stop();
}
