// The operations console in real Chromium, on the internal listener: the
// parts' health and the sale's figures, then a short load run started from
// the page — its lines as they come, its verdict, its report — and the
// console absent from the public gateway.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as e2e from './lib.mjs';

let browser;
before(async () => (browser = await e2e.launch()));
after(async () => browser?.close());

test('the console is not on the public gateway', async () => {
  for (const path of ['/console', '/console/console.js', '/internal/console/overview']) {
    const r = await fetch(e2e.SHOP + path, { signal: AbortSignal.timeout(5000) });
    assert.equal(r.status, 404, path);
  }
});

test('the console shows health and figures, runs a short load and shows its verdict and report', async () => {
  const page = await e2e.pageFor(browser, null);
  await page.goto(`${e2e.INTERNAL}/console`);
  await page.waitForSelector('#health td:has-text("gateway")');
  const health = await page.textContent('#health');
  for (const part of ['gateway', 'reservation', 'payment', 'internal']) {
    assert.match(health, new RegExp(`${part} \\(http://127\\.0\\.0\\.1:\\d+\\)up`), health);
  }
  await page.waitForSelector('#events td:has-text("Stadium Final")');
  await e2e.shot(page, 'console-desktop');

  await page.selectOption('#run-scenario', 'purchase');
  await page.fill('#run-amount', '5');
  await page.fill('#run-duration', '3');
  await page.click('#run-start');
  await page.waitForSelector('#run-state[data-state=running]');
  // A line of the run while it runs (progress every second).
  await page.waitForFunction(() => /load: /.test(document.querySelector('.lines')?.textContent || ''), null, { timeout: 30000 });
  await e2e.shot(page, 'console-run-running');
  await page.waitForSelector('#run-state:not([data-state=running])', { timeout: 150000 });
  const state = await page.getAttribute('#run-state', 'data-state');
  const verdict = await page.textContent('#run-verdict');
  assert.ok(['passed', 'failed'].includes(state), `the run ended ${state}`);
  assert.match(verdict, state === 'passed' ? /^SLO gate: PASS/ : /^SLO gate: FAIL/);
  await page.waitForSelector('#recent td:has-text("load: purchase, 5 users, 3 s")');
  await e2e.shot(page, 'console-run-done');

  const [report] = await Promise.all([page.context().waitForEvent('page'), page.click('#run-report')]);
  await report.waitForLoadState();
  const text = await report.textContent('body');
  assert.match(text, state === 'passed' ? /PASS/ : /FAIL/);
  await e2e.shot(report, 'console-run-report');

  const phone = await e2e.pageFor(browser, null, e2e.PHONE);
  await phone.goto(`${e2e.INTERNAL}/console`);
  await phone.waitForSelector('#recent td');
  await e2e.shot(phone, 'console-phone');
  assert.deepEqual([...page.errors, ...phone.errors], []);
});
