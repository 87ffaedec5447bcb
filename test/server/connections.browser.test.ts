// The dashboard of a service with two Meta connections, in a real browser: each sync shows its ad
// account and connection, the list filters by ad account (a plain GET form), and "Connect with
// Facebook" stores the token it gets under the connection it was clicked for.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Workspace } from '../../src/app/workspace.js';
import { connectedTokenKey } from '../../src/app/tokens.js';
import { startServer, type RunningServer } from '../../src/server/index.js';
import { openBrowser, type Browser } from '../support/browser.js';
import { ACME, GLOBEX, twoBusinesses, type TwoBusinesses } from '../support/two-businesses.js';
import { customers } from '../support/world.js';
import { SECRET_KEY } from './helpers.js';

describe('dashboard with two connections in chromium', () => {
  let b: TwoBusinesses;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    b = await twoBusinesses({ connection: { appId: '555000111' } });
    await b.setCustomers(customers(5));
    env = { ...b.env, AUDIENCE_SYNC_SECRET_KEY: SECRET_KEY };
    server = await startServer({ config: b.configPath, env, port: 0, logLevel: 'silent', configCheckMs: 0, matchCheckMs: 0 });
    browser = await openBrowser();
    page = browser.page;
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await b?.close();
  });

  const shownSyncs = () => page.locator('tbody tr[data-sync]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-sync')));

  it('shows each sync with its ad account and connection, and filters the list by ad account', async () => {
    await page.goto(server.url);
    expect(await shownSyncs()).toEqual(['acme-loyal', 'acme-recent', 'globex-loyal', 'globex-recent']);
    const globexRow = page.locator('tr[data-sync="globex-loyal"]');
    expect(await globexRow.textContent()).toContain(`act_${GLOBEX.account}`);
    await expect(globexRow.locator('[data-connection]').textContent()).resolves.toBe('globex');

    await page.selectOption('form[data-ad-account-filter] select[name=adAccount]', GLOBEX.account);
    await page.click('form[data-ad-account-filter] button:has-text("Filter")');
    await page.waitForURL(`${server.url}/?adAccount=${GLOBEX.account}`);
    expect(await shownSyncs()).toEqual(['globex-loyal', 'globex-recent']);
    // The select keeps the account chosen, and the filter is a link one can share.
    expect(await page.locator('select[name=adAccount]').inputValue()).toBe(GLOBEX.account);
    await page.goto(`${server.url}/?adAccount=act_${ACME.account}`);
    expect(await shownSyncs()).toEqual(['acme-loyal', 'acme-recent']);

    await page.selectOption('select[name=adAccount]', '');
    await page.click('form[data-ad-account-filter] button:has-text("Filter")');
    await page.waitForURL((u) => u.searchParams.get('adAccount') === '');
    expect(await shownSyncs()).toHaveLength(4);
  });

  it('"Connect with Facebook" on one connection stores its token under that connection only', async () => {
    b.emulator.control.setTokenState(GLOBEX.token, 'expired');
    await page.goto(server.url);
    const panels = page.locator('[data-connection-panel]');
    expect(await panels.evaluateAll((p) => p.map((x) => x.getAttribute('data-connection-panel')))).toEqual(['acme', 'globex']);
    await page.click('[data-connection-panel="globex"] a:has-text("Connect with Facebook")');
    await page.waitForURL((u) => u.pathname.endsWith('/dialog/oauth'));
    await page.click('button:has-text("Allow")');
    await page.waitForURL(`${server.url}/`);
    expect(await page.locator('.flash[role=status]').textContent()).toContain('Meta account connected (connection globex)');
    expect(await page.locator('[data-connection-panel="globex"]').textContent()).toContain('Meta account connected');
    expect(await page.locator('[data-connection-panel="acme"]').textContent()).toContain('Using the access token from the config file');

    const state = await server.context.ws.state();
    expect(await state.getValue(connectedTokenKey('globex'))).toBeDefined();
    expect(await state.getValue(connectedTokenKey('acme'))).toBeUndefined();
    expect(await state.getValue(connectedTokenKey())).toBeUndefined();

    // The expired config token of globex no longer matters: its syncs run with the connected one.
    const run = await fetch(`${server.url}/api/syncs/globex-loyal/runs`, { method: 'POST' });
    const runId = ((await run.json()) as { runId: number }).runId;
    for (let i = 0; i < 200; i++) {
      const r = (await (await fetch(`${server.url}/api/runs/${runId}`)).json()) as { status: string };
      if (r.status !== 'running') {
        expect(r.status).toBe('success');
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(b.members('globex-loyal')).toHaveLength(5);
    const connections = ((await (await fetch(`${server.url}/api/connections`)).json()) as { connections: Array<{ name: string; tokenSource: string; state: string; expiresAt: string | null }> }).connections;
    expect(connections.map((c) => [c.name, c.tokenSource, c.state])).toEqual([
      ['acme', 'config', 'ok'],
      ['globex', 'connected', 'ok'],
    ]);
    expect(connections[1]?.expiresAt).toMatch(/^\d{4}-\d\d-\d\dT/);

    // A CLI opening the same state uses the stored token for globex only.
    const ws = await Workspace.open(b.configPath, env);
    try {
      expect([ws.tokenSource('acme'), ws.tokenSource('globex')]).toEqual(['config', 'connected']);
    } finally {
      await ws.close();
    }
  });
});
