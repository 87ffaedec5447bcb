// The dashboard in chromium while the config file is broken: a banner says the service runs on its
// last good config and where the file is broken; it goes away once the file is fixed.
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBrowser, type Browser } from '../support/browser.js';
import { serveWorld, type ServedWorld } from './helpers.js';

describe('dashboard with a broken config file', () => {
  let s: ServedWorld;
  let browser: Browser;
  beforeAll(async () => {
    s = await serveWorld({ rows: 5, server: { configCheckMs: 50 } });
    browser = await openBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  const configError = async (): Promise<string | null> => (await s.api('GET', '/healthz')).body.configError;
  async function waitFor(done: (error: string | null) => boolean): Promise<void> {
    for (let i = 0; i < 200 && !done(await configError()); i++) await new Promise((r) => setTimeout(r, 50));
  }

  it('shows the error on every page until the file is fixed', async () => {
    const { page } = browser;
    await page.goto(s.server.url);
    expect(await page.locator('.config-error').count()).toBe(0);

    const good = readFileSync(s.world.configPath, 'utf8');
    writeFileSync(s.world.configPath, `${good}syncs: [oops\n`);
    await waitFor((e) => e !== null);
    for (const path of ['/', '/syncs/loyalty']) {
      await page.goto(`${s.server.url}${path}`);
      const banner = page.locator('.config-error[role=alert]');
      expect(await banner.count()).toBe(1);
      const text = (await banner.textContent()) ?? '';
      expect(text).toContain('The config file cannot be used.');
      expect(text).toContain('keeps running with the last good config');
      expect(text).toMatch(/line \d+, column \d+/);
      // The last good config still drives the page.
      expect(await page.locator('h1').first().textContent()).toMatch(/Syncs|loyalty/);
    }

    writeFileSync(s.world.configPath, good);
    await waitFor((e) => e === null);
    await page.goto(s.server.url);
    expect(await page.locator('.config-error').count()).toBe(0);
  });
});
