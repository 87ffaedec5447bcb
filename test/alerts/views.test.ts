// The dashboard's panel of undelivered alerts, rendered on the server.
import { describe, expect, it } from 'vitest';
import type { AlertView } from '../../src/server/index.js';
import { overviewPage, undeliveredPanel } from '../../src/server/views/pages.js';

const alert = (over: Partial<AlertView> = {}): AlertView => ({
  id: 4,
  destination: 'ops',
  sync: 'loyalty',
  connection: null,
  condition: 'failed',
  kind: 'firing',
  title: 'Sync loyalty failed (run #7)',
  runId: 7,
  createdAt: '2026-01-01T10:00:00.000Z',
  status: 'undelivered',
  attempts: 4,
  error: 'http://127.0.0.1:9 refused the connection (ECONNREFUSED): is the receiver running? (after 4 tries)',
  finishedAt: '2026-01-01T10:00:20.000Z',
  ...over,
});

describe('undelivered alerts panel', () => {
  it('lists each with its time, destination, title (linked to its run) and reason, escaped', () => {
    const text = String(undeliveredPanel([alert(), alert({ id: 5, runId: null, kind: 'resolved', condition: 'tokenExpiry', sync: null, connection: 'default', title: 'Token <b>ok</b>', error: '<img src=x>' })]));
    expect(text).toContain('<strong>2 alerts were not delivered.</strong>');
    expect(text).toContain('<tr data-alert-id="4"><td>2026-01-01 10:00:00 UTC</td><td>ops</td><td><a href="/runs/7">Sync loyalty failed (run #7)</a></td><td>http://127.0.0.1:9 refused the connection');
    expect(text).toContain('<td>resolved: Token &lt;b&gt;ok&lt;/b&gt;</td><td>&lt;img src=x&gt;</td>');
  });

  it('is absent when every alert was delivered', () => {
    expect(undeliveredPanel([])).toBe('');
    const page = overviewPage({ session: undefined, loginRequired: false }, { syncs: [], sizes: new Map(), connections: [], adAccounts: [], adAccount: null }).text;
    expect(page).not.toContain('undelivered-alerts');
  });
});
