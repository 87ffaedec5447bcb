// Meta's match rate on the dashboard, in a real browser: the rate per run in the history, the charts of
// sent vs. matched and of the audience size, and the warning when the latest rate is well below usual.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBrowser, type Browser } from '../support/browser.js';
import { customers } from '../support/world.js';
import { serveWorld, type ServedWorld } from './helpers.js';

describe("Meta's match rate on the dashboard, in chromium", () => {
  let s: ServedWorld;
  let browser: Browser;

  beforeAll(async () => {
    s = await serveWorld({ rows: 50, server: { matchCheckMs: 0 } });
    // Emails match 80% of the time, phones never: people who come with a phone only match no one.
    s.world.emulator.control.setFlags({ matchRates: { EMAIL: 0.8, PHONE: 0 } });
    const run = async () => s.waitForRun((await s.api('POST', '/api/syncs/loyalty/runs')).body.runId);
    await run();
    await s.world.setCustomers(customers(100));
    await run();
    await s.world.setCustomers([...customers(100), ...customers(50, 100).map((c) => ({ ...c, email: null }))]);
    await run();
    await run(); // picks up the third run's counts
    browser = await openBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  it('shows the rate per run, the two charts and the low-rate warning with its likely causes', async () => {
    const { page } = browser;
    await page.goto(`${s.server.url}/syncs/loyalty`);
    const rate = (id: number) => page.locator(`tr[data-run-id="${id}"] [data-match-rate]`).textContent();
    await expect(rate(3)).resolves.toBe('0.0%');
    expect(await rate(1)).toMatch(/^[6-9]\d\.\d%$/);
    await expect(rate(4)).resolves.toBe('—');

    const warning = (await page.locator('[data-match-warning]').textContent()) ?? '';
    expect(warning).toMatch(/Meta matched 0\.0% of the rows run #3 sent \(0 of 50\), well below the sync's usual/);
    expect(warning).toContain("EMAIL is filled in for 67% of the model's rows, down from 100%");

    const matched = page.locator('svg[aria-label="Rows sent and rows Meta matched per run"]');
    await expect(matched.locator('circle title').allTextContents()).resolves.toEqual(expect.arrayContaining([expect.stringMatching(/^run 3 .*: 50 sent$/), expect.stringMatching(/^run 3 .*: 0 matched by Meta$/)]));
    const size = page.locator(`svg[aria-label="The audience's approximate size at the start of each run"]`);
    await expect(size.locator('circle title').allTextContents()).resolves.toEqual(expect.arrayContaining([expect.stringMatching(/^run 4 .*: 150 size \(upper\)$/)]));
  });
});
