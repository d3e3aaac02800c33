// Helpers of the shop's end-to-end tests: the system under test (started
// by system/cli/tests/web.rs, which passes SHOP_URL and INTERNAL_URL),
// Chromium, customers, events, and where screenshots and figures go.
// Every browser resolves no host name but 127.0.0.1: nothing leaves the
// machine.

import { chromium } from 'playwright-core';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';

export const SHOP = need('SHOP_URL');
export const INTERNAL = need('INTERNAL_URL');
export const OUT = process.env.WEB_E2E_OUT || 'target/tmp/web-e2e';
mkdirSync(OUT, { recursive: true });

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through system/cli/tests/web.rs (cargo nextest run -p ticketing-cli --test web)`);
  return v;
}

export const DESKTOP = { width: 1280, height: 900 };
export const PHONE = { width: 375, height: 812 };

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1', '--disable-background-networking', '--no-first-run'],
    timeout: 30000,
  });
}

let counter = 0;
const run = Date.now().toString(36);

/** A fresh name for this run (events and accounts). */
export function fresh(prefix) {
  counter += 1;
  return `${prefix}-${run}-${counter}`;
}

async function call(base, method, path, body, headers = {}) {
  const r = await fetch(base + path, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10000),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}
export const shopApi = (method, path, body, headers) => call(SHOP, method, path, body, headers);
export const internalApi = (method, path, body, headers) => call(INTERNAL, method, path, body, headers);

/** A new event of rows × cols seats (optionally behind a waiting room). */
export async function newEvent({ rows = 5, cols = 10, waitingRoom } = {}) {
  const eventId = fresh('e2e');
  await internalApi('POST', '/internal/events', {
    eventId,
    title: `E2E ${eventId}`,
    startsAt: '2030-01-01T20:00:00Z',
    rows,
    cols,
    ...(waitingRoom ? { waitingRoom } : {}),
  });
  return eventId;
}

/** A new customer account, logged in: `{email, password, session}`. */
export async function newCustomer() {
  const email = `${fresh('buyer')}@example.org`;
  const password = 'e2e-password-1';
  await shopApi('POST', '/api/users', { email, password });
  const s = await shopApi('POST', '/api/sessions', { email, password });
  return { email, password, session: { ...s, email } };
}

/** A browser page already logged in as `customer` (its session in localStorage). */
export async function pageFor(browser, customer, viewport = DESKTOP) {
  const context = await browser.newContext({ viewport });
  if (customer) {
    await context.addInitScript((s) => {
      if (!localStorage.getItem('ticketing.session')) localStorage.setItem('ticketing.session', s);
    }, JSON.stringify(customer.session));
  }
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(e.message));
  return page;
}

/** Opens the event's seat map and waits until its stream is live. */
export async function openEvent(page, eventId, query = '') {
  await page.goto(`${SHOP}/#/events/${eventId}${query}`);
  await page.waitForSelector('#stream-state.live', { timeout: 15000 });
}

/** Clicks seat `seatId` on the page's map (its canvas, where it is drawn). */
export async function clickSeat(page, seatId) {
  const c = await page.evaluate((id) => window.__shop.seatmap.cellCenter(id), seatId);
  await page.mouse.click(c.x, c.y);
}

/** Waits until the page's map shows `seatId` as `status`; returns when it was drawn (ms). */
export async function painted(page, seatId, status, timeoutMs = 5000) {
  const handle = await page.waitForFunction(
    ([id, st]) => window.__shop.seatmap.paints.findLast((p) => p.seatId === id && p.status === st)?.paintedAtMs,
    [seatId, status],
    { timeout: timeoutMs, polling: 20 },
  );
  return handle.jsonValue();
}

export async function shot(page, name) {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: true });
}

export function writeFigure(name, value) {
  writeFileSync(join(OUT, `${name}.json`), JSON.stringify(value, null, 2));
}

export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/**
 * A loopback TCP proxy to the shop whose connections the test can cut:
 * `cut()` drops every open connection and refuses new ones until `mend()`.
 */
export async function cuttableProxy() {
  const target = new URL(SHOP);
  const sockets = new Set();
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) return client.destroy();
    const upstream = net.connect(Number(target.port), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    cut() {
      refusing = true;
      for (const s of sockets) s.destroy();
    },
    mend() {
      refusing = false;
    },
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
