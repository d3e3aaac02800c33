// The operations console (internal listener only): every part's health,
// the sale's figures and the money, refreshed every 2 s; and the harness —
// start a bounded load run against this system or a simulation sweep, see
// its lines as they come, stop it, open its report. Where internal routes
// need the service credential, the page asks for it once (kept for this
// tab only) and sends it as x-service-token.

import { h, fill } from './dom.js';

const REFRESH_MS = 2000;
const RUN_POLL_MS = 1000;
const TIMEOUT_MS = 8000;
const TOKEN_KEY = 'ticketing.console.token';
const $ = (id) => document.getElementById(id);

async function call(method, path, body) {
  const headers = {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers['x-service-token'] = token;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(TIMEOUT_MS),
    cache: 'no-store',
  });
  const text = await r.text();
  const parsed = text && r.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text;
  if (r.status === 401) askToken();
  if (!r.ok) throw new Error(parsed?.message || `${r.status} ${String(text).slice(0, 120)}`);
  return parsed;
}

function askToken() {
  const t = prompt('This system needs its service credential (internal.token) for the console:');
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
}

const money = (c) => (c / 100).toFixed(2);
const table = (head, rows) =>
  h('table', {}, h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))), h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
const mark = (ok, text) => h('span', { class: ok ? 'ok' : 'bad' }, text);

const or = (v) => (v === null || v === undefined ? 'unreadable' : v);

function renderOverview(o) {
  fill(
    $('health'),
    h('h2', {}, 'Health'),
    table(
      ['part', 'state', 'last answer', 'ms'],
      o.parts.map((p) => [p.name, p.status === 'down' ? mark(false, 'down') : mark(true, p.status), p.answered, p.latencyMs ?? '—']),
    ),
  );
  const statuses = Object.entries(o.ordersByStatus);
  fill(
    $('sale'),
    h('h2', {}, 'The sale'),
    table(
      ['figure', 'value'],
      [
        ['seats held now', o.heldSeats],
        ['outbox backlog', or(o.outboxBacklog)],
        ['valid tickets', or(o.validTickets)],
        ...statuses.map(([s, n]) => [`orders ${s}`, n]),
      ],
    ),
    h('h3', {}, 'Consumer lag'),
    o.consumerLag.length ? table(['topic', 'group', 'lag'], o.consumerLag.map((l) => [l.topic, l.group, l.lag])) : h('p', {}, 'No consumer has reported yet.'),
  );
  const l = o.ledger;
  fill(
    $('money'),
    h('h2', {}, 'Ledger and settlement'),
    table(
      ['figure', 'value'],
      [
        ['captured', l ? money(l.capturedCents) : 'unreadable'],
        ['refunded', l ? money(l.refundedCents) : 'unreadable'],
        ['entries not yet settled', l ? l.unsettledEntries : 'unreadable'],
        ['settlement batches', or(o.settlementBatches)],
        ['last batch closed', o.lastSettlementAtMs ? new Date(o.lastSettlementAtMs).toLocaleTimeString() : '—'],
      ],
    ),
  );
  fill(
    $('events'),
    h('h2', {}, 'Events and waiting rooms'),
    table(
      ['event', 'available', 'held', 'sold', 'waiting', 'active', 'admitted/s'],
      o.events.map((e) => [
        e.title,
        `${e.availableCount} / ${e.seatCount}`,
        e.heldCount,
        e.soldCount,
        e.room?.waiting ?? '—',
        e.room ? `${e.room.active} of ${e.room.activeMax}` : '—',
        e.room ? e.room.admittedPerS.toFixed(1) : '—',
      ]),
    ),
  );
  $('overview-error').textContent = o.problems.length ? `Not read: ${o.problems.join('; ')}` : '';
  $('updated').textContent = `updated ${new Date(o.atMs).toLocaleTimeString()}`;
}

async function refresh() {
  try {
    renderOverview(await call('GET', '/internal/console/overview'));
  } catch (e) {
    $('overview-error').textContent = `Could not read the figures: ${e.message}`;
  }
}

function runForm() {
  const kind = h('select', { id: 'run-kind' }, h('option', { value: 'load' }, 'load run'), h('option', { value: 'sim' }, 'simulation sweep'));
  const scenario = h('select', { id: 'run-scenario' }, ['mix', 'rush', 'purchase', 'browse', 'onsale'].map((s) => h('option', { value: s }, s)));
  const model = h('select', { id: 'run-model' }, h('option', { value: 'users' }, 'users (closed model)'), h('option', { value: 'rate' }, 'arrivals per second (open model)'));
  const amount = h('input', { id: 'run-amount', type: 'number', min: 1, max: 2000, value: 20 });
  const duration = h('input', { id: 'run-duration', type: 'number', min: 1, max: 300, value: 10 });
  const plan = h('input', { id: 'run-plan', value: 'none' });
  const seeds = h('input', { id: 'run-seeds', type: 'number', min: 1, max: 10, value: 1 });
  const loadFields = h('div', { class: 'fields' }, field('Scenario', scenario), field('Load as', model), field('How many', amount), field('Seconds', duration));
  const simFields = h('div', { class: 'fields', hidden: true }, field('Fault plan (or all)', plan), field('Seeds', seeds));
  kind.addEventListener('change', () => {
    loadFields.hidden = kind.value !== 'load';
    simFields.hidden = kind.value !== 'sim';
  });
  const start = async () => {
    const spec =
      kind.value === 'load'
        ? { kind: 'load', scenario: scenario.value, durationS: Number(duration.value), ...(model.value === 'users' ? { users: Number(amount.value) } : { arrivalRate: Number(amount.value) }) }
        : { kind: 'sim', plan: plan.value.trim(), seeds: Number(seeds.value) };
    try {
      $('run-error').textContent = '';
      const run = await call('POST', '/internal/console/runs', spec);
      follow(run.id);
    } catch (e) {
      $('run-error').textContent = `Not started: ${e.message}`;
    }
  };
  return h('form', { onsubmit: (e) => (e.preventDefault(), start()) }, field('Run', kind), loadFields, simFields, h('button', { type: 'submit', id: 'run-start' }, 'Start'), h('p', { id: 'run-error', role: 'alert', class: 'bad-text' }));
}

function field(label, input) {
  return h('label', {}, label, ' ', input);
}

let following = null;
async function follow(id) {
  following = id;
  while (following === id) {
    try {
      const run = await call('GET', `/internal/console/runs/${id}`);
      renderRun(run);
      if (run.state !== 'running') {
        following = null;
        listRuns();
        return;
      }
    } catch (e) {
      $('run-error').textContent = e.message;
    }
    await new Promise((r) => setTimeout(r, RUN_POLL_MS));
  }
}

function renderRun(run) {
  const lines = run.lines.slice(-30).join('\n');
  fill(
    $('current'),
    h('h3', {}, `${run.id}: `, h('span', { id: 'run-state', dataset: { state: run.state }, class: run.state === 'passed' ? 'ok' : run.state === 'running' ? '' : 'bad' }, run.state)),
    run.verdict ? h('p', { id: 'run-verdict' }, run.verdict) : null,
    run.state === 'running' ? h('button', { type: 'button', id: 'run-stop', onclick: () => call('POST', `/internal/console/runs/${run.id}/stop`).catch((e) => ($('run-error').textContent = e.message)) }, 'Stop') : null,
    run.report ? h('p', {}, h('a', { href: `/internal/console/runs/${run.id}/report`, id: 'run-report', target: '_blank' }, 'Open the report')) : null,
    h('pre', { class: 'lines', 'aria-live': 'off' }, lines),
  );
}

async function listRuns() {
  try {
    const runs = await call('GET', '/internal/console/runs');
    fill(
      $('recent'),
      runs.length
        ? table(
            ['run', 'what', 'state', 'verdict', 'report'],
            runs.map((r) => [r.id, describe(r.spec), r.state, r.verdict ?? '—', r.report ? h('a', { href: `/internal/console/runs/${r.id}/report`, target: '_blank' }, 'report') : '—']),
          )
        : h('p', {}, 'No runs yet.'),
    );
    const running = runs.find((r) => r.state === 'running');
    if (running && following !== running.id) follow(running.id);
  } catch (e) {
    $('run-error').textContent = e.message;
  }
}

function describe(s) {
  if (s.kind === 'sim') return `sim: plan ${s.plan}, ${s.seeds} seed(s)`;
  return `load: ${s.scenario}, ${s.users ? `${s.users} users` : `${s.arrivalRate}/s`}, ${s.durationS} s`;
}

fill(
  document.getElementById('main'),
  h('p', { id: 'overview-error', role: 'alert', class: 'bad-text wide' }),
  h('section', { id: 'health', 'aria-label': 'Health' }, h('h2', {}, 'Health'), h('p', {}, 'Reading…')),
  h('section', { id: 'sale', 'aria-label': 'The sale' }),
  h('section', { id: 'money', 'aria-label': 'Ledger and settlement' }),
  h('section', { id: 'events', 'aria-label': 'Events and waiting rooms', class: 'wide' }),
  h('section', { id: 'runs', 'aria-label': 'Harness runs', class: 'wide' }, h('h2', {}, 'Run the harness'), h('p', { class: 'hint' }, 'One run at a time, against this system; load runs up to 300 s, sweeps up to 10 seeds.'), runForm(), h('div', { id: 'current' }), h('h3', {}, 'Recent runs'), h('div', { id: 'recent' })),
);
refresh();
listRuns();
setInterval(refresh, REFRESH_MS);
