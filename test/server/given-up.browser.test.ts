// Records given up and run timings on the dashboard, in a real browser (Debian's chromium, headless,
// through playwright-core): see them on the overview and the sync page, retry them with the button,
// and see a run's time per phase and its samples' EXTERN_IDs.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBrowser, type Browser } from '../support/browser.js';
import { serveWorld, type ServedWorld } from './helpers.js';

describe('given-up records on the dashboard, in chromium', () => {
  let s: ServedWorld;
  let browser: Browser | undefined;
  let page: Page;
  let refusedRun: number;

  beforeAll(async () => {
    s = await serveWorld({ rows: 25, world: { sync: { maxAttempts: 1, batchRows: 5 } } });
    // Meta finds 5 rows invalid: with maxAttempts 1 those records are given up.
    s.world.emulator.control.setFlags({ invalidCells: ['u0', 'u1', 'u2', 'u3', 'u4'] });
    refusedRun = (await s.api('POST', '/api/syncs/loyalty/runs')).body.runId;
    await s.waitForRun(refusedRun);
    s.world.emulator.control.setFlags({ invalidCells: [] });

    browser = await openBrowser();
    page = browser.page;
  });

  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  it('shows them on the overview and the sync page, and "Retry given-up records" queues them again', async () => {
    await page.goto(s.server.url);
    await page.click('.given-up a:has-text("5 given up")');
    await page.waitForURL(`${s.server.url}/syncs/loyalty#given-up`);
    await expect(page.locator('[data-given-up]').textContent()).resolves.toBe('5');
    const section = (await page.locator('main').textContent()) ?? '';
    expect(section).toContain('5 records used up their 1 attempt and are no longer sent');
    const samples = page.locator('table.samples tbody tr');
    expect(await samples.count()).toBe(5);
    expect(await samples.first().locator('td').nth(1).textContent()).toMatch(/^u\d+$/);
    expect(section).not.toMatch(/example\.com/i);
    await page.screenshot({ path: join(tmpdir(), 'audience-sync-given-up.png'), fullPage: true });

    await page.click('button:has-text("Retry given-up records")');
    await page.waitForURL(`${s.server.url}/syncs/loyalty`);
    expect(await page.locator('.flash[role=status]').textContent()).toBe('5 given-up records are back in the queue: the next run sends them.');
    await expect(page.locator('[data-given-up]').textContent()).resolves.toBe('0');
    expect(await page.locator('#given-up').count()).toBe(0);
    expect((await s.api('GET', '/api/syncs/loyalty')).body.givenUp.count).toBe(0);
  });

  it("shows a run's time per phase and its error samples with EXTERN_ID", async () => {
    await page.goto(`${s.server.url}/runs/${refusedRun}`);
    const phases = page.locator('table.timings th');
    expect(await phases.allTextContents()).toEqual(['read model', 'plan', 'remove', 'add', 'commit']);
    expect(await page.locator('table.timings td[data-phase=addMs]').textContent()).toMatch(/^\d+(\.\d)? (ms|s)$/);
    const header = await page.locator('table.samples th').allTextContents();
    expect(header.slice(0, 3)).toEqual(['Primary key (SHA-256)', 'EXTERN_ID', 'Reason']);
    expect(await page.locator('table.samples tbody tr').first().locator('td').nth(1).textContent()).toMatch(/^u\d+$/);
    expect(await page.locator('main').textContent()).toContain(`audience-sync locate loyalty --run ${refusedRun}`);
    await page.screenshot({ path: join(tmpdir(), 'audience-sync-run-timings.png'), fullPage: true });
  });
});
