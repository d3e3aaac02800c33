// The operations console (internal listener only): what every part last
// answered, refreshed every 2 s.

import { h, fill } from './dom.js';

const main = document.getElementById('main');
const REFRESH_MS = 2000;
const TIMEOUT_MS = 5000;

async function get(path) {
  const abort = new AbortController();
  const t = setTimeout(() => abort.abort(), TIMEOUT_MS);
  try {
    const r = await fetch(path, { signal: abort.signal, cache: 'no-store' });
    const text = await r.text();
    if (!r.ok) throw new Error(`${r.status} ${text.slice(0, 120)}`);
    return r.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text;
  } finally {
    clearTimeout(t);
  }
}

function section(title, id, ...body) {
  return h('section', { id, 'aria-label': title }, h('h2', {}, title), ...body);
}

function table(rows) {
  return h('table', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c)))));
}

async function refresh() {
  const [health, ledger] = await Promise.allSettled([get('/health'), get('/internal/ledger/stats')]);
  const parts = [];
  parts.push(
    section(
      'Health',
      'health',
      table([[h('span', { class: health.status === 'fulfilled' ? 'ok' : 'bad' }, 'internal listener'), health.status === 'fulfilled' ? String(health.value).trim() : String(health.reason)]]),
    ),
  );
  if (ledger.status === 'fulfilled') {
    const l = ledger.value;
    parts.push(
      section(
        'Ledger and settlement',
        'ledger',
        table([
          ['captured', (l.capturedCents / 100).toFixed(2)],
          ['refunded', (l.refundedCents / 100).toFixed(2)],
          ['unsettled entries', l.unsettledEntries],
        ]),
      ),
    );
  } else {
    parts.push(section('Ledger and settlement', 'ledger', h('p', { class: 'bad' }, String(ledger.reason))));
  }
  fill(main, parts);
  document.getElementById('updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
}

refresh();
setInterval(refresh, REFRESH_MS);
