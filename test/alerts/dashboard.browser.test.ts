// Undelivered alerts on the dashboard, in a real browser (Debian's chromium through playwright-core):
// the overview lists them with their time, destination and reason, and links to the run.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_TOKEN } from '../../src/emulator/index.js';
import { openBrowser, type Browser } from '../support/browser.js';
import { refusedUrl } from '../support/receiver.js';
import { serveWorld, type ServedWorld } from '../server/helpers.js';

describe('undelivered alerts on the dashboard, in chromium', () => {
  let s: ServedWorld;
  let browser: Browser | undefined;
  let runId: number;

  beforeAll(async () => {
    s = await serveWorld({
      rows: 5,
      alerts: { chat: { type: 'slack', url: await refusedUrl('/services/T0/B0/secret-key'), when: { failed: true } } },
      server: { alerts: { delivery: { attempts: 2, backoffMs: 10, timeoutMs: 1_000 } } },
    });
    s.world.emulator.control.setTokenState(DEFAULT_TOKEN, 'expired');
    runId = (await s.waitForRun((await s.api('POST', '/api/syncs/loyalty/runs')).body.runId)).id;
    for (let i = 0; i < 200 && (await s.api('GET', '/api/alerts?status=undelivered')).body.alerts.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    browser = await openBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  it('lists the alert with its time, destination and reason, and its title opens the run', async () => {
    const page = browser!.page;
    await page.goto(s.server.url);
    const panel = page.locator('section.undelivered-alerts');
    await expect(panel.locator('strong').first().textContent()).resolves.toBe('An alert was not delivered.');
    const cells = await panel.locator('tbody tr').first().locator('td').allTextContents();
    expect(cells[0]).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
    expect(cells.slice(1)).toEqual(['chat', `Sync loyalty failed (run #${runId})`, expect.stringMatching(/refused the connection \(ECONNREFUSED\): is the receiver running\? \(after 2 tries\)$/)]);
    expect(await page.locator('main').textContent()).not.toContain('secret-key');
    await page.screenshot({ path: join(tmpdir(), 'audience-sync-undelivered-alerts.png'), fullPage: true });

    await panel.locator('tbody tr a').first().click();
    await page.waitForURL(`${s.server.url}/runs/${runId}`);
    expect(await page.locator('h1').textContent()).toContain(`Run ${runId} of loyalty`);
  });
});
