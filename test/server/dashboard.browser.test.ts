// The dashboard in a real browser (Debian's chromium, headless, through playwright-core): run a sync
// from the page, see the run with its counts, connect a Meta account through the emulator's OAuth dialog.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveConnectedToken } from '../../src/app/tokens.js';
import { openBrowser, type Browser } from '../support/browser.js';
import { customers } from '../support/world.js';
import { SECRET_KEY, serveWorld, type ServedWorld } from './helpers.js';

const APP_ID = '777000111';

describe('dashboard in chromium', () => {
  let s: ServedWorld;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    s = await serveWorld({ rows: 25, meta: { appId: APP_ID, appSecret: 'app-secret-for-tests' } });
    browser = await openBrowser();
    page = browser.page;
  });

  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  it('shows the syncs table', async () => {
    await page.goto(s.server.url);
    await expect(page.locator('h1').first().textContent()).resolves.toBe('Syncs');
    const row = page.locator('tbody tr', { hasText: 'loyalty' });
    await expect(row.locator('.badge').textContent()).resolves.toBe('never');
    expect(await row.textContent()).toContain(s.world.audienceId);
  });

  it('"Run now" starts a run that appears in the history with its counts', async () => {
    await page.click('a[href="/syncs/loyalty"]');
    await page.click('button:has-text("Run now")');
    await page.waitForURL(`${s.server.url}/syncs/loyalty`);
    const flash = await page.locator('.flash[role=status]').textContent();
    const runId = Number(/Run #(\d+) started/.exec(flash ?? '')?.[1]);
    expect(runId).toBeGreaterThan(0);
    await s.waitForRun(runId);
    await page.reload();
    const row = page.locator(`tr[data-run-id="${runId}"]`);
    await expect(row.locator('.badge').textContent()).resolves.toBe('success');
    await expect(row.locator('td[data-count=added]').textContent()).resolves.toBe('25');
    expect(await page.locator('svg.chart circle').count()).toBeGreaterThan(0);

    await page.click(`a[href="/runs/${runId}"]`);
    expect(await page.locator('h1').textContent()).toContain(`Run ${runId}`);
  });

  it('"Send test record" shows what was sent, hashed', async () => {
    await page.goto(`${s.server.url}/syncs/loyalty`);
    await page.fill('input[name=primaryKey]', 'u5');
    await page.click('button:has-text("Send test record")');
    const text = (await page.locator('main').textContent()) ?? '';
    expect(text).toContain('Test record sent');
    expect(text).toMatch(/[0-9a-f]{64}/);
    expect(text).not.toMatch(/example\.com/i);
  });

  it('connects a Meta account through the OAuth dialog and shows the token expiry', async () => {
    await page.goto(s.server.url);
    await page.click('a:has-text("Connect with Facebook")');
    await page.waitForURL((u) => u.pathname.endsWith('/dialog/oauth'));
    expect(page.url().startsWith(s.world.emulator.url)).toBe(true);
    await page.click('button:has-text("Allow")');
    await page.waitForURL(`${s.server.url}/`);
    expect(await page.locator('.flash[role=status]').textContent()).toContain('Meta account connected');
    const expiry = (await page.locator('[data-token-expiry]').textContent()) ?? '';
    const expected = new Date(Date.now() + 60 * 86_400_000).toISOString().slice(0, 10);
    expect(expiry).toContain(expected);
    expect((await s.api('GET', '/api/connection')).body).toMatchObject({ tokenSource: 'connected', expiringSoon: false });

    // Runs now use the connected token: the config's token no longer works.
    s.world.emulator.control.setTokenState(String(s.world.env.META_ACCESS_TOKEN), 'expired');
    const run = await s.api('POST', '/api/syncs/loyalty/runs', { body: { force: true } });
    expect((await s.waitForRun(run.body.runId)).status).toBe('success');

    await page.goto(s.server.url);
    await page.screenshot({ path: join(tmpdir(), 'audience-sync-dashboard.png'), fullPage: true });
    await page.goto(`${s.server.url}/syncs/loyalty`);
    await page.screenshot({ path: join(tmpdir(), 'audience-sync-sync-page.png'), fullPage: true });
  });

  it('warns 7 days before the connected token expires', async () => {
    const state = await s.server.context.ws.state();
    await saveConnectedToken(state, Buffer.from(SECRET_KEY, 'hex'), { accessToken: 'EAAsoon', expiresAt: new Date(Date.now() + 3 * 86_400_000), userId: null });
    await page.goto(s.server.url);
    const banner = (await page.locator('.flash.warn').textContent()) ?? '';
    expect(banner).toContain('expires within 7 days');
    expect(await page.content()).not.toContain('EAAsoon');
  });

  /** Clicks "Run now" (with "skip safeguards" ticked or not) and waits for the run to finish. */
  async function runFromDashboard(skipSafeguards: boolean): Promise<number> {
    await page.goto(`${s.server.url}/syncs/loyalty`);
    if (skipSafeguards) await page.check('input[name=force]');
    await page.click('button:has-text("Run now")');
    await page.waitForURL(`${s.server.url}/syncs/loyalty`);
    const runId = Number(/Run #(\d+) started/.exec((await page.locator('.flash[role=status]').textContent()) ?? '')?.[1]);
    await s.waitForRun(runId);
    await page.reload();
    return runId;
  }

  it('a refused run shows 0 removed and says to tick "skip safeguards", which then runs it', async () => {
    await s.world.setCustomers(customers(5));
    const refused = await runFromDashboard(false);
    const row = page.locator(`tr[data-run-id="${refused}"]`);
    await expect(row.locator('.badge').textContent()).resolves.toBe('failed');
    await expect(row.locator('td.num').nth(3).textContent()).resolves.toBe('0'); // Removed
    await expect(row.locator('[data-refused]').textContent()).resolves.toBe('refused · planned +0 / −20');
    expect(await page.locator(`svg.chart circle title:text("run ${refused} ")`).allTextContents()).toEqual(
      expect.arrayContaining([expect.stringMatching(/: 0 added$/), expect.stringMatching(/: 0 removed$/)]),
    );
    await page.click(`a[href="/runs/${refused}"]`);
    expect(await page.locator('pre').textContent()).toMatch(/would remove 20 of 25 records .*run it again from the dashboard with "skip safeguards" ticked/);
    expect(await page.locator('p[data-refused]').textContent()).toContain('nobody was added or removed');
    expect(s.world.memberIds()).toHaveLength(25);
    const api = (await s.api('GET', `/api/runs/${refused}`)).body;
    expect(api.counts).toMatchObject({ added: 0, deleted: 0, removedFromAudience: 0, planned: { deleted: 20, toRemove: 20 } });

    const forced = await runFromDashboard(true);
    await expect(page.locator(`tr[data-run-id="${forced}"] .badge`).textContent()).resolves.toBe('success');
    await expect(page.locator(`tr[data-run-id="${forced}"] td.num`).nth(3).textContent()).resolves.toBe('20');
    expect(s.world.memberIds()).toHaveLength(5);
  });
});
