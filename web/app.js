// Condo's dashboard: one page over condod's REST API, with the session cookie the daemon set at
// login. Every change carries the session's CSRF token. No framework: views build their DOM
// from small helpers, and long lists are rendered in one pass.
'use strict';

const state = { session: null, stop: [] };

// ---- helpers -------------------------------------------------------------------------------

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  }[c]));
}

// el('button', {class: 'x', onclick: f}, 'text', child...)
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const main = () => document.getElementById('main');

function notice(text, isError) {
  const n = document.getElementById('notice');
  n.replaceChildren(text ? el('span', { class: isError ? 'error' : '' }, text) : '');
  if (text && !isError) setTimeout(() => { if (n.textContent === text) n.replaceChildren(); }, 4000);
}

function bytes(n) {
  if (!n) return '0 B';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(n < 10 && i ? 1 : 0)} ${u[i]}`;
}

function when(t) {
  if (!t) return '';
  const d = typeof t === 'number' ? new Date(t * 1000) : new Date(t);
  return isNaN(d) ? String(t) : d.toLocaleString();
}

class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && state.session) headers['X-Condo-CSRF'] = state.session.csrf;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 401 && state.session) {
    state.session = null;
    location.hash = '#/login';
  }
  const text = await r.text();
  let data = null;
  if (text) { try { data = JSON.parse(text); } catch { data = { message: text }; } }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

// Calls `each` with every JSON line of a streamed answer until it ends or `signal` aborts.
async function stream(path, each, signal, init) {
  const r = await fetch(path, { credentials: 'same-origin', signal, ...(init || {}) });
  if (!r.ok) {
    let body = null;
    try { body = await r.json(); } catch { /* not JSON */ }
    throw new ApiError(r.status, body);
  }
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.trim()) each(JSON.parse(line));
    }
  }
}

// Work a view started (streams, sockets, timers), stopped when the view changes.
function onLeave(f) { state.stop.push(f); }
function leave() {
  for (const f of state.stop.splice(0)) { try { f(); } catch { /* already gone */ } }
}
function aborter() {
  const a = new AbortController();
  onLeave(() => a.abort());
  return a.signal;
}

function stateBadge(s) { return el('span', { class: `state ${s}` }, s); }

function isAdmin() { return state.session?.principal.role === 'admin'; }
function mayChange() { return state.session && state.session.principal.role !== 'read-only'; }

// ---- login ---------------------------------------------------------------------------------

async function loadSession() {
  try {
    const r = await fetch('/ui/session', { credentials: 'same-origin' });
    state.session = r.ok ? await r.json() : null;
  } catch { state.session = null; }
  paintHeader();
}

function paintHeader() {
  const s = state.session;
  document.getElementById('nav').hidden = !s;
  document.getElementById('who').hidden = !s;
  document.getElementById('nav-admin').hidden = !isAdmin();
  if (s) {
    document.getElementById('who-name').textContent =
      `${s.principal.id} · ${s.principal.tenant} · ${s.principal.role}`;
  }
}

function viewLogin() {
  const input = el('input', {
    id: 'token', name: 'token', type: 'password', autocomplete: 'current-password',
    required: true, 'aria-describedby': 'token-error',
  });
  const err = el('div', { id: 'token-error', class: 'field-error', role: 'alert' });
  const form = el('form', { class: 'panel login', 'aria-labelledby': 'login-title' },
    el('h1', { id: 'login-title' }, 'Log in to Condo'),
    el('div', { class: 'field' },
      el('label', { for: 'token' }, 'API token ', el('span', { class: 'hint' }, '(from your administrator or `condo token create`)')),
      input, err),
    el('button', { type: 'submit' }, 'Log in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    input.removeAttribute('aria-invalid');
    try {
      state.session = await api('POST', '/ui/session', { token: input.value });
      paintHeader();
      location.hash = '#/';
    } catch (e) {
      err.textContent = e.message;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    }
  });
  main().replaceChildren(form);
  input.focus();
}

document.getElementById('logout').addEventListener('click', async () => {
  try { await api('DELETE', '/ui/session'); } catch { /* gone already */ }
  state.session = null;
  paintHeader();
  location.hash = '#/login';
});

// ---- containers ----------------------------------------------------------------------------

function source(c) {
  const cfg = c.config || {};
  if (cfg.template) return `template ${cfg.template}`;
  if (cfg.image) return cfg.image;
  return cfg.rootfs ? 'host directory' : '';
}

// Published ports as [label, href or null].
function ports(c) {
  const out = [];
  for (const p of (c.config && (c.config.ports || c.config.publish)) || []) {
    const s = typeof p === 'string' ? p : `${p.host_ip ? p.host_ip + ':' : ''}${p.host_port}:${p.container_port}/${p.protocol || 'tcp'}`;
    const m = /^(?:(\[[^\]]+\]|[\d.]+):)?(\d+):(\d+)(?:\/(tcp|udp))?$/.exec(s);
    if (m && (m[4] || 'tcp') === 'tcp') {
      const host = m[1] && m[1] !== '0.0.0.0' ? m[1] : location.hostname;
      out.push([s, `http://${host}:${m[2]}/`]);
    } else out.push([s, null]);
  }
  return out;
}

function rowActions(c) {
  const a = [];
  const live = c.state === 'running' || c.state === 'paused';
  if (!live) a.push(['start', 'Start']);
  if (live) a.push(['stop', 'Stop'], ['restart', 'Restart']);
  a.push(['delete', 'Delete']);
  return a;
}

function containerRows(list) {
  // One string for the whole table: a thousand rows render in one layout pass.
  const change = mayChange();
  return list.map((c) => {
    const portLinks = ports(c).map(([t, href]) => href
      ? `<a href="${esc(href)}" target="_blank" rel="noopener">${esc(t)}</a>` : esc(t)).join(' ');
    const acts = change ? rowActions(c).map(([v, t]) =>
      `<button type="button" class="${v === 'delete' ? 'danger' : 'quiet'}" data-act="${v}" data-id="${esc(c.id)}" aria-label="${esc(t)} ${esc(c.name)}">${t}</button>`).join('') : '';
    const health = c.health ? ` <span class="state ${esc(c.health.status)}">${esc(c.health.status)}</span>` : '';
    return `<tr data-id="${esc(c.id)}">
<td data-label="Name"><a href="#/c/${esc(c.id)}">${esc(c.name)}</a>${isAdmin() && c.tenant !== 'default' ? ` <span class="muted">(${esc(c.tenant)})</span>` : ''}</td>
<td data-label="State"><span class="state ${esc(c.state)}">${esc(c.state)}</span>${health}</td>
<td data-label="From">${esc(source(c))}</td>
<td data-label="Ports">${portLinks}</td>
<td data-label="Created">${esc(when(c.created_at))}</td>
<td><div class="actions">${acts}</div></td></tr>`;
  }).join('');
}

async function act(id, verb, name) {
  try {
    if (verb === 'delete') {
      if (!confirm(`Delete container ${name}? Its data and snapshots go with it.`)) return false;
      await api('DELETE', `/v1/containers/${encodeURIComponent(id)}?force=true`);
    } else {
      await api('POST', `/v1/containers/${encodeURIComponent(id)}/${verb}`);
    }
    notice(`${name}: ${verb} done`);
    return true;
  } catch (e) {
    notice(`${name}: ${e.message}`, true);
    return false;
  }
}

async function viewContainers() {
  const tbody = el('tbody', { id: 'containers' });
  const count = el('span', { class: 'muted', id: 'count' });
  const usage = el('div', { id: 'usage' });
  main().replaceChildren(
    el('div', { class: 'row spread' },
      el('h1', {}, 'Containers'),
      mayChange() ? el('a', { class: 'button', href: '#/new' }, 'New container') : null),
    usage,
    el('p', {}, count),
    el('table', { class: 'list', 'aria-describedby': 'count' },
      el('thead', {}, el('tr', {},
        ['Name', 'State', 'From', 'Ports', 'Created', 'Actions'].map((h) => el('th', { scope: 'col' }, h)))),
      tbody));
  let byId = new Map();
  const paint = (list) => {
    byId = new Map(list.map((c) => [c.id, c]));
    tbody.innerHTML = containerRows(list);
    count.textContent = list.length === 1 ? '1 container' : `${list.length} containers`;
    main().dataset.rendered = String(list.length);
  };
  tbody.addEventListener('click', async (ev) => {
    const b = ev.target.closest('button[data-act]');
    if (!b) return;
    const c = byId.get(b.dataset.id);
    b.disabled = true;
    await act(b.dataset.id, b.dataset.act, c ? c.name : b.dataset.id);
    b.disabled = false;
    refresh();
  });
  let pending = null;
  const refresh = () => {
    if (pending) return;
    pending = setTimeout(async () => {
      pending = null;
      try { paint(await api('GET', '/v1/containers?all=true')); } catch (e) { notice(e.message, true); }
    }, 250);
  };
  onLeave(() => clearTimeout(pending));
  paint(await api('GET', '/v1/containers?all=true'));
  paintUsage(usage);
  // Live state: any container event repaints the list.
  stream('/v1/events', (ev) => { if (ev.kind === 'container') refresh(); }, aborter())
    .catch(() => { /* the view changed, or the daemon went away */ });
}

// The tenant's use against its quota.
async function paintUsage(box) {
  let t;
  try { t = await api('GET', `/v1/tenants/${encodeURIComponent(state.session.principal.tenant)}`); } catch { return; }
  box.replaceChildren(el('section', { class: 'panel', 'aria-label': 'Usage against the quota' },
    el('h2', {}, `Usage of ${t.name}`), el('div', { class: 'grid2' }, usageMeters(t))));
}

const QUOTAS = [
  ['containers', 'Containers', String], ['memory', 'Memory', bytes], ['cpus', 'CPUs', String],
  ['disk', 'Disk', bytes], ['networks', 'Networks', String],
];

function usageMeters(t) {
  const rows = [];
  for (const [key, label, fmt] of QUOTAS) {
    const used = t.usage?.[key];
    const limit = t.quota?.[key];
    if (used === undefined) continue;
    const pct = limit ? Math.min(100, (100 * used) / limit) : 0;
    rows.push(el('div', { class: 'field', 'data-usage': key },
      el('div', { class: 'row spread' }, el('span', {}, label),
        el('span', { class: 'muted' }, limit ? `${fmt(used)} of ${fmt(limit)}` : `${fmt(used)} (no limit)`)),
      el('div', { class: `meter${limit && pct >= 100 ? ' full' : ''}`, role: 'meter', 'aria-label': `${label} used`,
        'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': String(Math.round(pct)) },
      el('span', { style: `width:${pct}%` }))));
  }
  return rows;
}

// ---- create --------------------------------------------------------------------------------

function field(id, label, input, hint) {
  input.id = id;
  input.setAttribute('aria-describedby', `${id}-error`);
  return el('div', { class: 'field' },
    el('label', { for: id }, label, hint ? el('span', { class: 'hint' }, ` ${hint}`) : null),
    input,
    el('div', { class: 'field-error', id: `${id}-error` }));
}

function paramInput(name, p) {
  const kind = p.kind;
  let input;
  if (kind === 'bool') {
    input = el('select', { name: `params.${name}` },
      el('option', { value: '' }, '(default)'), el('option', { value: 'true' }, 'yes'), el('option', { value: 'false' }, 'no'));
    if (p.default) input.value = p.default;
  } else {
    input = el('input', {
      name: `params.${name}`,
      type: p.secret || kind === 'password' ? 'password' : (kind === 'int' || kind === 'integer' ? 'number' : 'text'),
      required: p.required, placeholder: p.default || '', autocomplete: 'off',
    });
  }
  input.dataset.field = `params.${name}`;
  const label = name.replace(/_/g, ' ');
  return field(`param-${name}`, label + (p.required ? ' *' : ''), input, p.description || (p.secret ? '(secret)' : ''));
}

async function viewNew() {
  const [templates, images, networks] = await Promise.all([
    api('GET', '/v1/templates').catch(() => []),
    api('GET', '/v1/images').catch(() => []),
    api('GET', '/v1/networks').catch(() => []),
  ]);
  const from = el('select', { name: 'from', 'data-field': 'template' },
    templates.map((t) => el('option', { value: `template:${t.name}:${t.version}` }, `Template ${t.name} ${t.version} — ${t.description}`)),
    images.map((i) => el('option', { value: `image:${i.name}` }, `Image ${i.name}`)));
  const params = el('fieldset', { class: 'panel' }, el('legend', {}, 'Parameters'));
  const name = el('input', { name: 'name', 'data-field': 'name', autocomplete: 'off', pattern: '[A-Za-z0-9][A-Za-z0-9_.-]*' });
  const command = el('input', { name: 'command', 'data-field': 'command', placeholder: 'the image\'s default' });
  const memory = el('input', { name: 'memory', type: 'number', min: '4', 'data-field': 'limits.memory' });
  const cpus = el('input', { name: 'cpus', type: 'number', step: '0.1', min: '0.01', 'data-field': 'limits.cpus' });
  const pids = el('input', { name: 'pids', type: 'number', min: '1', 'data-field': 'limits.pids' });
  const network = el('select', { name: 'network', 'data-field': 'network' },
    el('option', { value: '' }, 'none (loopback only)'),
    networks.map((n) => el('option', { value: n.name }, `${n.name} (${n.subnet})`)));
  if (networks.length === 1) network.value = networks[0].name;
  const publish = el('input', { name: 'ports', 'data-field': 'ports', placeholder: '8080:80' });
  const restart = el('select', { name: 'restart', 'data-field': 'restart' },
    ['no', 'on-failure', 'always', 'unless-stopped'].map((r) => el('option', { value: r }, r)));
  restart.value = 'unless-stopped';
  const formError = el('div', { class: 'form-error', role: 'alert' });
  const submit = el('button', { type: 'submit' }, 'Create and start');
  const commandField = field('command', 'Command', command, '(words separated by spaces)');
  const paint = () => {
    const v = from.value || '';
    const t = templates.find((t) => v === `template:${t.name}:${t.version}`);
    params.replaceChildren(el('legend', {}, 'Parameters'));
    params.hidden = !t || !Object.keys(t.parameters).length;
    if (t) for (const [n, p] of Object.entries(t.parameters)) params.append(paramInput(n, p));
    commandField.hidden = !!t;
    if (t && t.expose.length && !publish.value) publish.placeholder = `8080:${t.expose[0]}`;
  };
  from.addEventListener('change', paint);
  const form = el('form', { 'aria-labelledby': 'new-title', novalidate: true },
    el('h1', { id: 'new-title' }, 'New container'),
    formError,
    el('div', { class: 'panel' },
      field('from', 'From', from),
      field('name', 'Name', name, '(letters, digits, _ . -; made up when empty)'),
      commandField),
    params,
    el('fieldset', { class: 'panel' }, el('legend', {}, 'Resources and networking'),
      el('div', { class: 'grid2' },
        field('memory', 'Memory (MiB)', memory),
        field('cpus', 'CPUs', cpus),
        field('pids', 'Processes', pids),
        field('restart', 'Restart policy', restart),
        field('network', 'Network', network),
        field('ports', 'Published ports', publish, '(HOST:CONTAINER, comma separated)'))),
    submit);
  if (!templates.length && !images.length) {
    formError.textContent = 'No template or image yet: an administrator builds templates under Administration.';
    submit.disabled = true;
  }
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    formError.textContent = '';
    const body = { restart: { policy: restart.value }, limits: {} };
    const [kind, ...rest] = from.value.split(':');
    if (kind === 'template') body.template = rest.join(':');
    else body.image = rest.join(':');
    if (name.value.trim()) body.name = name.value.trim();
    if (kind !== 'template' && command.value.trim()) body.command = command.value.trim().split(/\s+/);
    if (memory.value) body.limits.memory = Math.round(Number(memory.value) * 1024 * 1024);
    if (cpus.value) body.limits.cpus = Number(cpus.value);
    if (pids.value) body.limits.pids = Number(pids.value);
    if (network.value) body.network = network.value;
    if (publish.value.trim()) body.ports = publish.value.split(',').map((s) => s.trim()).filter(Boolean);
    const p = {};
    for (const i of params.querySelectorAll('[data-field^="params."]')) {
      if (i.value !== '') p[i.dataset.field.slice(7)] = i.value;
    }
    if (Object.keys(p).length) body.params = p;
    submit.disabled = true;
    submit.textContent = 'Creating…';
    let made = null;
    try {
      made = await api('POST', '/v1/containers', body);
      submit.textContent = 'Starting…';
      await api('POST', `/v1/containers/${encodeURIComponent(made.id)}/start`);
      notice(`${made.name} is running`);
      location.hash = `#/c/${made.id}`;
    } catch (e) {
      // A container that was made but did not start goes again: nothing half-created stays.
      if (made) await api('DELETE', `/v1/containers/${encodeURIComponent(made.id)}?force=true`).catch(() => {});
      showError(form, formError, e);
    } finally {
      submit.disabled = false;
      submit.textContent = 'Create and start';
    }
  });
  main().replaceChildren(form);
  paint();
  from.focus();
}

function clearErrors(form) {
  for (const e of form.querySelectorAll('.field-error')) e.textContent = '';
  for (const e of form.querySelectorAll('[aria-invalid]')) e.removeAttribute('aria-invalid');
}

// Puts an API error next to the field it names (`params.site_name`, `limits.memory`…), else at
// the top of the form.
function showError(form, top, e) {
  const f = e.body && e.body.field;
  let input = null;
  if (f) {
    input = form.querySelector(`[data-field="${CSS.escape(f)}"]`);
    for (let g = f; !input && g.includes('.'); ) {
      g = g.slice(0, g.lastIndexOf('.'));
      input = form.querySelector(`[data-field="${CSS.escape(g)}"]`);
    }
    if (!input && f === 'params') input = form.querySelector('[data-field^="params."]');
  }
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    const box = document.getElementById(`${input.id}-error`);
    if (box) box.textContent = e.message;
    input.focus();
  } else {
    top.textContent = e.message;
    top.scrollIntoView({ block: 'nearest' });
  }
}

// ---- one container -------------------------------------------------------------------------

async function viewContainer(id, tab) {
  const c = await api('GET', `/v1/containers/${encodeURIComponent(id)}`);
  const tabs = [['overview', 'Overview'], ['logs', 'Logs'], ['console', 'Console'], ['snapshots', 'Snapshots']];
  const buttons = el('div', { class: 'actions' });
  if (mayChange()) {
    const live = c.state === 'running' || c.state === 'paused';
    const verbs = live
      ? [['stop', 'Stop'], ['restart', 'Restart'], [c.state === 'paused' ? 'resume' : 'pause', c.state === 'paused' ? 'Resume' : 'Pause'], ['delete', 'Delete']]
      : [['start', 'Start'], ['delete', 'Delete']];
    for (const [v, t] of verbs) {
      buttons.append(el('button', {
        type: 'button', class: v === 'delete' ? 'danger' : '',
        onclick: async (ev) => {
          ev.target.disabled = true;
          const ok = await act(c.id, v, c.name);
          if (ok && v === 'delete') { location.hash = '#/'; return; }
          route();
        },
      }, t));
    }
  }
  const body = el('section', { 'aria-live': 'off' });
  main().replaceChildren(
    el('div', { class: 'row spread' },
      el('h1', {}, c.name, ' ', stateBadge(c.state), c.health ? [' ', stateBadge(c.health.status)] : null),
      buttons),
    el('nav', { class: 'tabs', 'aria-label': 'Container' },
      tabs.map(([t, label]) => el('a', { href: `#/c/${c.id}/${t}`, 'aria-current': t === tab ? 'page' : false }, label))),
    body);
  if (tab === 'logs') return tabLogs(c, body);
  if (tab === 'console') return tabConsole(c, body);
  if (tab === 'snapshots') return tabSnapshots(c, body);
  return tabOverview(c, body);
}

function tabOverview(c, body) {
  const cfg = c.config || {};
  const lim = cfg.limits || {};
  const facts = [
    ['Id', el('span', { class: 'mono' }, c.id)],
    ['From', source(c)],
    ['Command', (cfg.command || []).join(' ') || '(default)'],
    ['Created', when(c.created_at)],
    ['Started', when(c.started_at)],
    ['Exit code', c.exit_code ?? ''],
    ['Restart policy', cfg.restart ? cfg.restart.policy : 'no'],
    ['Restarts', c.restart_count],
    ['Memory limit', lim.memory ? bytes(lim.memory) : 'none'],
    ['CPU limit', lim.cpus ? `${lim.cpus} CPUs` : 'none'],
    ['Network', cfg.network ? `${cfg.network}${c.endpoint ? ` · ${c.endpoint.ipv4 || c.endpoint.address || ''}` : ''}` : 'none'],
    ['Ports', ports(c).map(([t, href]) => href ? el('a', { href, target: '_blank', rel: 'noopener' }, t) : t)],
  ];
  if (cfg.params && Object.keys(cfg.params).length) {
    facts.push(['Parameters', Object.keys(cfg.params).join(', ')]);
  }
  const rebase = el('div');
  if (cfg.template && mayChange()) rebaseForm(c, rebase);
  const cpu = chart('CPU', (v) => `${v.toFixed(1)} %`);
  const mem = chart('Memory', bytes);
  body.replaceChildren(
    el('div', { class: 'charts' }, cpu.node, mem.node),
    el('div', { class: 'panel' }, el('dl', { class: 'facts' }, facts.map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]))),
    rebase);
  if (c.state !== 'running') {
    cpu.empty('not running');
    mem.empty('not running');
    return;
  }
  stream(`/v1/containers/${encodeURIComponent(c.id)}/stats?stream=true`, (s) => {
    cpu.push(s.cpu_percent);
    mem.push(s.memory_bytes, s.memory_limit);
  }, aborter()).catch(() => {});
}

// Moving a template's instance onto another build of its template.
async function rebaseForm(c, box) {
  const [name, version] = c.config.template.split(':');
  const builds = (await api('GET', '/v1/templates').catch(() => []))
    .filter((t) => t.name === name && t.version !== version);
  if (!builds.length) return;
  const to = el('select', { 'data-field': 'template' },
    builds.map((t) => el('option', { value: `${t.name}:${t.version}` }, `${t.name} ${t.version}`)));
  const err = el('div', { class: 'form-error', role: 'alert' });
  const button = el('button', { type: 'submit' }, 'Rebase');
  const form = el('form', { class: 'panel', 'aria-label': 'Rebase' },
    el('h2', {}, 'Rebase'),
    el('p', { class: 'muted' }, `Runs on ${name} ${version || ''}. A rebase keeps the template's volumes and parameters, takes a snapshot first, and goes back by itself if the new build does not become healthy.`),
    err, field('rebase-to', 'Move to', to), button);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    err.textContent = '';
    button.disabled = true;
    button.textContent = 'Rebasing…';
    try {
      await api('POST', `/v1/containers/${encodeURIComponent(c.id)}/rebase`, { template: to.value });
      notice(`${c.name} now runs ${to.value}`);
      route();
    } catch (e) {
      showError(form, err, e);
    } finally {
      button.disabled = false;
      button.textContent = 'Rebase';
    }
  });
  box.replaceChildren(form);
}

// A line chart of the last minute of samples, drawn on a canvas.
function chart(title, fmt) {
  const canvas = el('canvas', { role: 'img', 'aria-label': `${title} over the last minute` });
  const now = el('span', { class: 'now' }, '…');
  const node = el('div', { class: 'panel chart', 'data-chart': title.toLowerCase() },
    el('div', { class: 'row spread' }, el('strong', {}, title), now), canvas);
  const points = [];
  let limit = 0;
  const draw = () => {
    const w = canvas.clientWidth || 300;
    const hgt = canvas.clientHeight || 140;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = w * dpr;
    canvas.height = hgt * dpr;
    const g = canvas.getContext('2d');
    g.scale(dpr, dpr);
    g.clearRect(0, 0, w, hgt);
    const top = Math.max(limit, ...points, 1) * 1.1;
    g.strokeStyle = '#d9dde3';
    g.beginPath();
    for (let i = 1; i < 4; i++) { g.moveTo(0, (hgt * i) / 4); g.lineTo(w, (hgt * i) / 4); }
    g.stroke();
    if (limit) {
      g.strokeStyle = '#c0262d';
      g.setLineDash([4, 4]);
      g.beginPath();
      g.moveTo(0, hgt - (limit / top) * hgt);
      g.lineTo(w, hgt - (limit / top) * hgt);
      g.stroke();
      g.setLineDash([]);
    }
    g.strokeStyle = '#1d4e89';
    g.lineWidth = 2;
    g.beginPath();
    points.forEach((v, i) => {
      const x = (w * i) / 59;
      const y = hgt - (v / top) * hgt;
      if (i) g.lineTo(x, y); else g.moveTo(x, y);
    });
    g.stroke();
  };
  return {
    node,
    push(v, lim) {
      points.push(v);
      if (points.length > 60) points.shift();
      limit = lim || 0;
      now.textContent = lim ? `${fmt(v)} of ${fmt(lim)}` : fmt(v);
      node.dataset.samples = String(points.length);
      draw();
    },
    empty(text) { now.textContent = text; },
  };
}

function tabLogs(c, body) {
  const pre = el('pre', { class: 'logs', tabindex: '0', 'aria-label': 'Log', id: 'log' });
  const follow = el('input', { type: 'checkbox', id: 'follow', checked: true });
  body.replaceChildren(el('div', { class: 'row' }, follow, el('label', { for: 'follow' }, 'Keep to the newest line')), pre);
  stream(`/v1/containers/${encodeURIComponent(c.id)}/logs?follow=true&tail=500&timestamps=true`, (l) => {
    const line = el('span', { class: l.stream }, `${l.line}\n`);
    line.title = l.time;
    pre.append(line);
    while (pre.childNodes.length > 5000) pre.firstChild.remove();
    if (follow.checked) pre.scrollTop = pre.scrollHeight;
  }, aborter()).catch((e) => { if (e.name !== 'AbortError') notice(e.message, true); });
}

function tabConsole(c, body) {
  if (c.state !== 'running') {
    body.replaceChildren(el('p', { class: 'muted' }, 'The console needs a running container.'));
    return;
  }
  const box = el('div', { class: 'terminal', id: 'terminal' });
  const status = el('p', { class: 'muted', role: 'status' }, 'Connecting…');
  const shell = el('input', { id: 'shell', value: '/bin/sh' });
  const again = el('button', { type: 'button', class: 'quiet' }, 'Reconnect');
  body.replaceChildren(el('div', { class: 'row' }, el('label', { for: 'shell' }, 'Program'), shell, again), status, box);
  const term = new window.Terminal({ cursorBlink: true, fontSize: 14, convertEol: false });
  const fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(box);
  fit.fit();
  let ws = null;
  const enc = new TextEncoder();
  const frame = (kind, payload) => {
    const f = new Uint8Array(5 + payload.length);
    f[0] = kind;
    new DataView(f.buffer).setUint32(1, payload.length);
    f.set(payload, 5);
    return f;
  };
  const resize = () => {
    if (!ws || ws.readyState !== 1) return;
    const p = new Uint8Array(4);
    new DataView(p.buffer).setUint16(0, term.rows);
    new DataView(p.buffer).setUint16(2, term.cols);
    ws.send(frame(1, p));
  };
  const connect = () => {
    if (ws) ws.close();
    term.reset();
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    ws = new WebSocket(`${proto}://${location.host}/v1/containers/${encodeURIComponent(c.id)}/console?csrf=${encodeURIComponent(state.session.csrf)}`);
    ws.binaryType = 'arraybuffer';
    let buf = new Uint8Array(0);
    ws.onopen = () => {
      ws.send(JSON.stringify({ command: shell.value.trim().split(/\s+/), tty: true, size: [term.rows, term.cols] }));
      status.textContent = 'Connected';
      term.focus();
    };
    ws.onmessage = (m) => {
      if (typeof m.data === 'string') {
        try { status.textContent = JSON.parse(m.data).message; } catch { status.textContent = m.data; }
        return;
      }
      const more = new Uint8Array(m.data);
      const all = new Uint8Array(buf.length + more.length);
      all.set(buf);
      all.set(more, buf.length);
      let at = 0;
      while (all.length - at >= 5) {
        const len = new DataView(all.buffer, at + 1, 4).getUint32(0);
        if (all.length - at < 5 + len) break;
        const kind = all[at];
        const payload = all.subarray(at + 5, at + 5 + len);
        if (kind === 1) term.write(payload.slice());
        else if (kind === 2) status.textContent = new TextDecoder().decode(payload);
        else if (kind === 3) status.textContent = `The program ended with code ${new DataView(payload.buffer, payload.byteOffset, 4).getInt32(0)}`;
        at += 5 + len;
      }
      buf = all.slice(at);
    };
    ws.onclose = () => { if (status.textContent === 'Connected') status.textContent = 'Disconnected'; };
  };
  term.onData((d) => { if (ws && ws.readyState === 1) ws.send(frame(0, enc.encode(d))); });
  term.onResize(resize);
  const onWin = () => fit.fit();
  window.addEventListener('resize', onWin);
  again.addEventListener('click', connect);
  onLeave(() => { window.removeEventListener('resize', onWin); if (ws) ws.close(); term.dispose(); });
  connect();
}

// Runs `f` with the container stopped, starting it again afterwards if it was running.
async function whileStopped(c, f) {
  const id = encodeURIComponent(c.id);
  const wasRunning = c.state === 'running';
  if (wasRunning) await api('POST', `/v1/containers/${id}/stop`);
  try {
    return await f();
  } finally {
    if (wasRunning) await api('POST', `/v1/containers/${id}/start`);
  }
}

async function tabSnapshots(c, body) {
  const list = el('tbody');
  const name = el('input', { id: 'snap-name', 'data-field': 'name', pattern: '[A-Za-z0-9][A-Za-z0-9_.-]*', required: true });
  const err = el('div', { class: 'form-error', role: 'alert' });
  const form = el('form', { class: 'panel', 'aria-label': 'Take a snapshot' },
    err, field('snap-name', 'Snapshot name', name), el('button', { type: 'submit' }, 'Take snapshot'));
  const base = `/v1/containers/${encodeURIComponent(c.id)}/snapshots`;
  const paint = async () => {
    const snaps = await api('GET', base);
    list.replaceChildren(...snaps.map((s) => el('tr', { 'data-snapshot': s.name },
      el('td', { 'data-label': 'Name' }, s.name),
      el('td', { 'data-label': 'Taken' }, when(s.created)),
      el('td', { 'data-label': 'Size' }, bytes(s.size)),
      el('td', {}, mayChange() ? el('div', { class: 'actions' },
        el('button', { type: 'button', class: 'quiet', 'aria-label': `Roll back to ${s.name}`, onclick: () => snapAct(s, 'rollback') }, 'Roll back'),
        el('button', { type: 'button', class: 'quiet', 'aria-label': `Clone ${s.name}`, onclick: () => snapAct(s, 'clone') }, 'Clone'),
        el('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${s.name}`, onclick: () => snapAct(s, 'delete') }, 'Delete')) : null))));
    if (!snaps.length) list.replaceChildren(el('tr', {}, el('td', { colspan: '4', class: 'muted' }, 'No snapshot yet.')));
  };
  const snapAct = async (s, verb) => {
    const path = `${base}/${encodeURIComponent(s.name)}`;
    try {
      if (verb === 'delete') {
        if (!confirm(`Delete snapshot ${s.name}?`)) return;
        await api('DELETE', path);
      } else if (verb === 'rollback') {
        const also = c.state === 'running' ? ' It stops for the rollback and starts again.' : '';
        if (!confirm(`Roll ${c.name} back to ${s.name}? What it wrote since is lost.${also}`)) return;
        await whileStopped(c, () => api('POST', `${path}/rollback`));
      } else {
        const n = prompt('Name of the new container', `${c.name}-${s.name}`);
        if (!n) return;
        const made = await api('POST', `${path}/clone`, { name: n });
        notice(`${made.name || n} made from ${s.name}`);
      }
      if (verb !== 'clone') notice(`${s.name}: ${verb} done`);
      await paint();
    } catch (e) { notice(e.message, true); }
  };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    err.textContent = '';
    try {
      await api('POST', base, { name: name.value.trim() });
      notice(`snapshot ${name.value.trim()} taken`);
      name.value = '';
      await paint();
    } catch (e) { showError(form, err, e); }
  });
  body.replaceChildren(mayChange() ? form : '',
    el('table', { class: 'list', 'aria-label': 'Snapshots' },
      el('thead', {}, el('tr', {}, ['Name', 'Taken', 'Size', 'Actions'].map((h) => el('th', { scope: 'col' }, h)))), list));
  await paint();
}

// ---- administration ------------------------------------------------------------------------

async function viewAdmin(tab) {
  const tabs = [['host', 'Host'], ['templates', 'Templates'], ['tenants', 'Tenants'], ['audit', 'Audit log']];
  const body = el('section');
  main().replaceChildren(el('h1', {}, 'Administration'),
    el('nav', { class: 'tabs', 'aria-label': 'Administration' },
      tabs.map(([t, l]) => el('a', { href: `#/admin/${t}`, 'aria-current': t === tab ? 'page' : false }, l))),
    body);
  if (tab === 'templates') return adminTemplates(body);
  if (tab === 'tenants') return adminTenants(body);
  if (tab === 'audit') return adminAudit(body);
  return adminHost(body);
}

async function adminHost(body) {
  const i = await api('GET', '/v1/system/info');
  body.replaceChildren(el('div', { class: 'panel' }, el('dl', { class: 'facts' },
    [['Host', i.hostname], ['Kernel', i.kernel], ['cgroups', i.cgroup], ['CPUs', i.cpus],
      ['Memory', bytes(i.memory_bytes)], ['Containers', `${i.containers.total} (${i.containers.running} running)`],
      ['Condo', i.version], ['State in', i.root], ['Up for', `${Math.round(i.uptime_seconds / 60)} min`]]
      .map(([k, v]) => [el('dt', {}, k), el('dd', {}, String(v))]))));
}

async function adminTemplates(body) {
  const list = el('tbody');
  const name = el('input', { id: 'tpl-name', 'data-field': 'name', placeholder: 'busybox', required: true });
  const log = el('pre', { class: 'logs', id: 'build-log', hidden: true, tabindex: '0', 'aria-label': 'Build log' });
  const err = el('div', { class: 'form-error', role: 'alert' });
  const button = el('button', { type: 'submit' }, 'Build');
  const form = el('form', { class: 'panel', 'aria-label': 'Build a template' },
    err, field('tpl-name', 'Template from the library', name), button);
  const paint = async () => {
    const ts = await api('GET', '/v1/templates');
    list.replaceChildren(...ts.map((t) => el('tr', {},
      el('td', { 'data-label': 'Name' }, t.name), el('td', { 'data-label': 'Version' }, t.version),
      el('td', { 'data-label': 'Description' }, t.description), el('td', { 'data-label': 'Built' }, when(t.built)))));
  };
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    err.textContent = '';
    log.hidden = false;
    log.textContent = '';
    button.disabled = true;
    try {
      await stream('/v1/templates/build?stream=true', (e) => {
        if (e.log) log.append(`${e.log}\n`);
        if (e.built) log.append(`built ${e.built.template.name} ${e.built.template.version}: ${e.built.steps} steps, ${e.built.cached} from cache, ${e.built.seconds.toFixed(1)} s\n`);
        if (e.error) throw new ApiError(400, e.error);
        log.scrollTop = log.scrollHeight;
      }, aborter(), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Condo-CSRF': state.session.csrf },
        body: JSON.stringify({ name: name.value.trim() }),
      });
      await paint();
    } catch (e) { showError(form, err, e); } finally { button.disabled = false; }
  });
  body.replaceChildren(form, log,
    el('table', { class: 'list', 'aria-label': 'Templates' },
      el('thead', {}, el('tr', {}, ['Name', 'Version', 'Description', 'Built'].map((h) => el('th', { scope: 'col' }, h)))), list));
  await paint();
}

function table(label, heads, rows) {
  return el('table', { class: 'list', 'aria-label': label },
    el('thead', {}, el('tr', {}, heads.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: String(heads.length), class: 'muted' }, 'None.'))));
}

// A form whose API errors land next to the field they name.
function apiForm(label, fields, button, send) {
  const err = el('div', { class: 'form-error', role: 'alert' });
  const form = el('form', { class: 'panel', 'aria-label': label }, el('h2', {}, label), err, fields, el('button', { type: 'submit' }, button));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    err.textContent = '';
    try { await send(); } catch (e) { showError(form, err, e); }
  });
  return form;
}

async function adminTenants(body) {
  const [tenants, users, tokens] = await Promise.all([
    api('GET', '/v1/tenants'), api('GET', '/v1/users'), api('GET', '/v1/tokens')]);
  const tName = el('input', { 'data-field': 'name', required: true, autocomplete: 'off' });
  const qFields = QUOTAS.slice(0, 3).map(([key, label]) => [key, label,
    el('input', { type: 'number', min: '0', step: key === 'cpus' ? '0.1' : '1', 'data-field': `quota.${key}` })]);
  const newTenant = apiForm('New tenant', el('div', { class: 'grid2' },
    field('tenant-name', 'Name', tName),
    qFields.map(([key, label, input]) => field(`quota-${key}`, `${label} quota${key === 'memory' ? ' (MiB)' : ''}`, input))),
  'Create tenant', async () => {
    const quota = {};
    for (const [key, , input] of qFields) {
      if (input.value !== '') quota[key] = key === 'memory' ? Math.round(Number(input.value) * 1048576) : Number(input.value);
    }
    await api('POST', '/v1/tenants', { name: tName.value.trim(), quota });
    notice(`tenant ${tName.value.trim()} created`);
    adminTenants(body);
  });
  const uName = el('input', { 'data-field': 'name', required: true, autocomplete: 'off' });
  const uTenant = el('select', { 'data-field': 'tenant' }, tenants.map((t) => el('option', { value: t.name }, t.name)));
  const uRole = el('select', { 'data-field': 'role' }, ['tenant-owner', 'operator', 'read-only', 'admin'].map((r) => el('option', { value: r }, r)));
  const newUser = apiForm('New user', el('div', { class: 'grid2' },
    field('user-name', 'Name', uName), field('user-tenant', 'Tenant', uTenant), field('user-role', 'Role', uRole)),
  'Create user', async () => {
    await api('POST', '/v1/users', { name: uName.value.trim(), tenant: uTenant.value, role: uRole.value });
    notice(`user ${uName.value.trim()} created`);
    adminTenants(body);
  });
  const kUser = el('select', { 'data-field': 'user' }, users.map((u) => el('option', { value: u.name }, `${u.name} (${u.tenant}, ${u.role})`)));
  const kDays = el('input', { type: 'number', min: '1', 'data-field': 'expires_in' });
  const secret = el('output', { class: 'mono', id: 'token-secret' });
  const newToken = apiForm('New token', el('div', { class: 'grid2' },
    field('token-user', 'User', kUser), field('token-days', 'Expires in (days)', kDays, '(never when empty)')),
  'Create token', async () => {
    const body2 = { user: kUser.value };
    if (kDays.value) body2.expires_in = Number(kDays.value) * 86400;
    const made = await api('POST', '/v1/tokens', body2);
    secret.textContent = made.secret;
    notice('token created: copy it now, it is shown only once');
  });
  newToken.append(el('p', {}, 'Secret: ', secret));
  const revoke = async (t) => {
    if (!confirm(`Revoke token ${t.name}?`)) return;
    try { await api('DELETE', `/v1/tokens/${encodeURIComponent(t.id)}`); notice('token revoked'); adminTenants(body); } catch (e) { notice(e.message, true); }
  };
  body.replaceChildren(
    el('h2', {}, 'Tenants'),
    table('Tenants', ['Tenant', 'Usage', 'Created'], tenants.map((t) => el('tr', { 'data-tenant': t.name },
      el('td', { 'data-label': 'Tenant' }, t.name),
      el('td', { 'data-label': 'Usage' }, el('div', { class: 'grid2' }, usageMeters(t))),
      el('td', { 'data-label': 'Created' }, when(t.created_at))))),
    el('h2', {}, 'Users'),
    table('Users', ['User', 'Tenant', 'Role', 'Created'], users.map((u) => el('tr', {},
      el('td', { 'data-label': 'User' }, u.name), el('td', { 'data-label': 'Tenant' }, u.tenant),
      el('td', { 'data-label': 'Role' }, u.role), el('td', { 'data-label': 'Created' }, when(u.created_at))))),
    el('h2', {}, 'Tokens'),
    table('Tokens', ['Token', 'User', 'Tenant', 'Expires', 'State', ''], tokens.map((t) => el('tr', {},
      el('td', { 'data-label': 'Token' }, t.name), el('td', { 'data-label': 'User' }, t.user || ''),
      el('td', { 'data-label': 'Tenant' }, t.tenant), el('td', { 'data-label': 'Expires' }, t.expires_at ? when(t.expires_at) : 'never'),
      el('td', { 'data-label': 'State' }, t.revoked_at ? `revoked ${when(t.revoked_at)}` : 'live'),
      el('td', {}, t.revoked_at || t.id === 'admin' ? '' : el('button', { type: 'button', class: 'danger', onclick: () => revoke(t), 'aria-label': `Revoke ${t.name}` }, 'Revoke'))))),
    newTenant, newUser, newToken);
}

async function adminAudit(body) {
  const tenant = el('input', { id: 'audit-tenant', placeholder: 'any' });
  const principal = el('input', { id: 'audit-principal', placeholder: 'any' });
  const result = el('select', { id: 'audit-result' }, ['', 'ok', 'denied', 'error'].map((r) => el('option', { value: r }, r || 'any')));
  const out = el('div');
  const load = async () => {
    const q = new URLSearchParams();
    if (tenant.value.trim()) q.set('tenant', tenant.value.trim());
    if (principal.value.trim()) q.set('principal', principal.value.trim());
    if (result.value) q.set('result', result.value);
    q.set('limit', '200');
    try {
      const rows = await api('GET', `/v1/audit?${q}`);
      out.replaceChildren(table('Audit log', ['Time', 'Principal', 'Tenant', 'Request', 'Status', 'Result'], rows.map((r) => el('tr', {},
        el('td', { 'data-label': 'Time' }, when(r.time)), el('td', { 'data-label': 'Principal' }, r.principal),
        el('td', { 'data-label': 'Tenant' }, r.tenant), el('td', { 'data-label': 'Request', class: 'mono' }, `${r.method} ${r.resource}`),
        el('td', { 'data-label': 'Status' }, String(r.status)),
        el('td', { 'data-label': 'Result', title: r.message || '' }, r.result)))));
    } catch (e) { out.replaceChildren(el('p', { class: 'form-error' }, e.message)); }
  };
  const form = el('form', { class: 'panel row', 'aria-label': 'Filter the audit log' },
    el('label', { for: 'audit-tenant' }, 'Tenant'), tenant,
    el('label', { for: 'audit-principal' }, 'Principal'), principal,
    el('label', { for: 'audit-result' }, 'Result'), result,
    el('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
  body.replaceChildren(form, out);
  await load();
}

// ---- routing -------------------------------------------------------------------------------

async function route() {
  leave();
  const hash = location.hash || '#/';
  if (!state.session && hash !== '#/login') { location.hash = '#/login'; return; }
  for (const a of document.querySelectorAll('#nav a')) {
    a.setAttribute('aria-current', a.getAttribute('href') === hash || (a.getAttribute('href') === '#/' && hash.startsWith('#/c/')) ? 'page' : 'false');
  }
  const parts = hash.slice(2).split('/');
  try {
    if (hash === '#/login') viewLogin();
    else if (parts[0] === 'new') await viewNew();
    else if (parts[0] === 'c' && parts[1]) await viewContainer(decodeURIComponent(parts[1]), parts[2] || 'overview');
    else if (parts[0] === 'admin' && isAdmin()) await viewAdmin(parts[1] || 'host');
    else await viewContainers();
  } catch (e) {
    main().replaceChildren(el('p', { class: 'form-error', role: 'alert' }, e.message));
  }
  document.title = `Condo · ${main().querySelector('h1')?.textContent || ''}`;
}

window.addEventListener('hashchange', () => { route(); main().focus(); });
loadSession().then(route);
