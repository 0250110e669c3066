// The dashboard end to end in headless Chromium: a tenant logs in, creates a container from the
// busybox template with a parameter, sees it running with live charts, runs a command in the
// console, snapshots, rolls back and deletes; a second tenant sees none of it; a failed create
// names its field and leaves nothing. Screenshots of each page go to $SHOTS (default
// tests/dashboard/screenshots).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { browser, repo, startDaemon } from './common.mjs';

const shots = process.env.SHOTS || path.join(repo, 'tests/dashboard/screenshots');
fs.mkdirSync(shots, { recursive: true });
let step = 0;
async function shot(page, name) {
  step += 1;
  await page.screenshot({ path: path.join(shots, `${String(step).padStart(2, '0')}-${name}.png`), fullPage: true });
}

function log(msg) { process.stdout.write(`dashboard: ${msg}\n`); }

// A tenant with an owner and the owner's token.
async function tenant(d, name, quota) {
  await d.api('POST', '/v1/tenants', { name, quota });
  await d.api('POST', '/v1/users', { name: `${name}-owner`, tenant: name, role: 'tenant-owner' });
  const t = await d.api('POST', '/v1/tokens', { user: `${name}-owner` });
  return t.secret;
}

async function login(page, base, token) {
  await page.goto(`${base}/`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Containers' }).waitFor();
}

// What the container prints for `cat FILE`, through the API as the tenant.
async function exec(d, token, id, cmd) {
  const r = await d.api('POST', `/v1/containers/${id}/exec`, { command: ['sh', '-c', cmd] }, token);
  return r.stdout;
}

const d = await startDaemon();
const b = await browser();
let failed = false;
try {
  log('building the busybox template');
  await d.api('POST', '/v1/templates/build', { name: 'busybox' });
  const acme = await tenant(d, 'acme', { containers: 5 });
  const globex = await tenant(d, 'globex', { containers: 5 });

  // Login: a wrong token is refused next to its field.
  const ctx = await b.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  page.on('pageerror', (e) => { failed = true; log(`page error: ${e.message}`); });
  await page.goto(`${d.base}/`);
  await page.getByLabel('API token').fill('condo_not_a_token');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator('#token-error', { hasText: 'not valid' }).waitFor();
  await shot(page, 'login-refused');
  await login(page, d.base, acme);
  await page.locator('[data-usage="containers"]').waitFor();
  await shot(page, 'containers-empty');

  // A create that fails names its field and leaves nothing behind.
  await page.getByRole('link', { name: 'New container' }).first().click();
  await page.getByRole('heading', { name: 'New container' }).waitFor();
  await page.getByLabel('Name', { exact: false }).first().fill('bad name!');
  await page.getByRole('button', { name: 'Create and start' }).click();
  await page.locator('#name-error:not(:empty)').waitFor();
  assert.equal(await page.getByLabel('Name', { exact: false }).first().getAttribute('aria-invalid'), 'true');
  await shot(page, 'create-error');
  assert.equal((await d.api('GET', '/v1/containers?all=true', undefined, acme)).length, 0, 'a failed create left a container');

  // Create from the template with a parameter.
  await page.getByLabel('Name', { exact: false }).first().fill('site');
  await page.getByLabel('greeting', { exact: false }).fill('Hello from Acme');
  await page.getByRole('button', { name: 'Create and start' }).click();
  await page.locator('h1 .state.running').waitFor({ timeout: 30000 });
  const id = page.url().split('#/c/')[1].split('/')[0];
  assert.match(await exec(d, acme, id, 'wget -q -O - http://127.0.0.1/'), /Hello from Acme/);
  log(`container ${id} runs`);

  // Live charts: several samples arrive from the stats stream.
  await page.waitForFunction(() => Number(document.querySelector('[data-chart="cpu"]')?.dataset.samples || 0) >= 3, null, { timeout: 20000 });
  await page.waitForFunction(() => Number(document.querySelector('[data-chart="memory"]')?.dataset.samples || 0) >= 3);
  await shot(page, 'container-overview');

  // Logs follow.
  await page.getByRole('link', { name: 'Logs' }).click();
  // A new line while the page follows: the template's init reports a service that ended (and
  // starts it again).
  assert.doesNotMatch(await page.locator('#log').innerText(), /exited with status/);
  await exec(d, acme, id, 'killall httpd');
  await page.locator('#log', { hasText: 'service web exited with status' }).waitFor({ timeout: 15000 });
  await shot(page, 'container-logs');

  // The console: a real terminal over the WebSocket.
  await page.getByRole('link', { name: 'Console' }).click();
  await page.locator('#terminal .xterm').waitFor();
  await page.getByText('Connected').waitFor({ timeout: 15000 });
  await page.keyboard.type('echo console-$((6*7)) > /console-proof; cat /console-proof\n');
  await page.locator('#terminal', { hasText: 'console-42' }).waitFor({ timeout: 15000 });
  assert.equal((await exec(d, acme, id, 'cat /console-proof')).trim(), 'console-42');
  await shot(page, 'container-console');

  // Snapshot, change a file, roll back: the change is gone.
  await page.getByRole('link', { name: 'Snapshots' }).click();
  await page.getByLabel('Snapshot name').fill('before');
  await page.getByRole('button', { name: 'Take snapshot' }).click();
  await page.locator('tr[data-snapshot="before"]').waitFor();
  await exec(d, acme, id, 'echo after > /changed-later');
  page.once('dialog', (dlg) => dlg.accept());
  await page.getByRole('button', { name: 'Roll back to before' }).click();
  await page.getByText('before: rollback done').waitFor({ timeout: 30000 });
  assert.equal((await d.api('GET', `/v1/containers/${id}`, undefined, acme)).state, 'running');
  assert.equal((await exec(d, acme, id, 'test -e /changed-later && echo yes || echo no')).trim(), 'no');
  assert.equal((await exec(d, acme, id, 'cat /console-proof')).trim(), 'console-42');
  await shot(page, 'container-snapshots');

  // A second tenant sees none of it, also at the container's own address.
  const ctx2 = await b.newContext({ viewport: { width: 390, height: 800 } });
  const page2 = await ctx2.newPage();
  await login(page2, d.base, globex);
  assert.equal(await page2.locator('#containers tr').count(), 0, 'tenant globex sees acme\'s containers');
  await shot(page2, 'other-tenant-narrow');
  await page2.goto(`${d.base}/ui/#/c/${id}`);
  await page2.getByRole('alert').filter({ hasText: 'does not exist' }).waitFor();
  await shot(page2, 'other-tenant-denied');
  await ctx2.close();

  // Delete from the list.
  await page.goto(`${d.base}/ui/#/`);
  await page.locator(`#containers tr[data-id="${id}"]`).waitFor();
  await shot(page, 'containers-running');
  page.once('dialog', (dlg) => dlg.accept());
  await page.getByRole('button', { name: 'Delete site' }).click();
  await page.locator(`#containers tr[data-id="${id}"]`).waitFor({ state: 'detached', timeout: 30000 });
  assert.equal((await d.api('GET', '/v1/containers?all=true')).length, 0);

  // The admin's view: tenants with usage, and the audit log of what acme did.
  await ctx.clearCookies();
  await login(page, d.base, d.token);
  await page.getByRole('link', { name: 'Administration' }).click();
  await page.getByRole('link', { name: 'Tenants' }).click();
  await page.locator('tr[data-tenant="acme"]').waitFor();
  await shot(page, 'admin-tenants');
  const denied = await d.api('GET', '/v1/audit?result=denied');
  assert.ok(denied.some((r) => r.resource === '/ui/session'), 'the refused login is not in the audit log');
  await page.getByRole('link', { name: 'Audit log' }).click();
  await page.getByRole('cell', { name: 'acme-owner' }).first().waitFor();
  await shot(page, 'admin-audit');
  await page.getByRole('link', { name: 'Templates' }).click();
  await page.getByRole('cell', { name: 'busybox' }).first().waitFor();
  await shot(page, 'admin-templates');
  await ctx.close();
  assert.equal(failed, false, 'the page reported errors');
  log('all checks passed');
} catch (e) {
  failed = true;
  log(`FAILED: ${e.stack || e}`);
  log(`daemon log:\n${fs.readFileSync(path.join(d.root, 'condod.log'), 'utf8').split('\n').slice(-30).join('\n')}`);
} finally {
  await b.close();
  await d.stop();
}
process.exit(failed ? 1 : 0);
