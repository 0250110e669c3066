// What the dashboard's tests and benchmark share: a condod of their own on a loopback port,
// the API through its admin token, and a headless Chromium.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const target = process.env.CARGO_TARGET_DIR || path.join(repo, 'target');
export const bin = (name) => process.env[`CONDO_${name.toUpperCase().replace('-', '_')}_BIN`]
  || path.join(target, 'debug', name);

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

// Starts condod with its state in a fresh directory; `stop()` ends it and removes what it made.
export async function startDaemon() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'condo-dash-'));
  const port = await freePort();
  const log = fs.openSync(path.join(root, 'condod.log'), 'a');
  const child = spawn(bin('condod'), [
    // Plain HTTP on loopback (the mode for a TLS proxy in front): Node's fetch takes no CA of
    // its own, and the dashboard is the same page over either.
    '--root', root, '--listen', `http://127.0.0.1:${port}`,
    '--monitor', bin('condo-monitor'), '--templates', path.join(repo, 'templates'),
  ], { stdio: ['ignore', log, log] });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try { if ((await fetch(`${base}/health`)).ok) break; } catch { /* not yet */ }
    if (child.exitCode !== null || i > 200) {
      throw new Error(`condod did not start:\n${fs.readFileSync(path.join(root, 'condod.log'), 'utf8')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const token = fs.readFileSync(path.join(root, 'admin.token'), 'utf8').trim();
  const api = async (method, p, body, tok = token) => {
    const r = await fetch(base + p, {
      method,
      headers: { Authorization: `Bearer ${tok}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    const data = text ? JSON.parse(text.split('\n').filter(Boolean).pop()) : null;
    if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${text}`);
    return data;
  };
  const stop = async () => {
    try {
      for (const c of await api('GET', '/v1/containers?all=true')) {
        await api('DELETE', `/v1/containers/${c.id}?force=true`).catch(() => {});
      }
    } catch { /* the daemon is gone */ }
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    fs.rmSync(root, { recursive: true, force: true });
  };
  return { root, base, token, api, stop };
}

export async function browser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}
