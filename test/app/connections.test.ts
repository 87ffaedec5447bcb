// Two Meta connections against two businesses in one emulator, one of whose tokens expires: its
// syncs fail with a re-authorize message naming that connection, the other's keep syncing, run after
// run, through the CLI and through `serve`'s scheduler. Tokens never mix: each token reaches only its
// own business's ad account, and each app requires a proof made with its own secret.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunSummary } from '../../src/engine/index.js';
import { startServer, type RunningServer } from '../../src/server/index.js';
import type { RunRecord } from '../../src/state/index.js';
import { runCli } from '../cli/run-cli.js';
import { ACME, GLOBEX, twoBusinesses, type TwoBusinesses } from '../support/two-businesses.js';
import { customers } from '../support/world.js';

const ids = (n: number, from = 0) =>
  customers(n, from)
    .map((c) => String(c.user_id))
    .sort();
const reauthorizeGlobex = /Re-authorize connection "globex": the token expired; .*put it where connections\.globex\.accessToken reads it, or connect "globex" again/;

describe('two connections, one expired token (built CLI)', () => {
  let b: TwoBusinesses;
  beforeAll(async () => {
    b = await twoBusinesses();
  });
  afterAll(() => b?.close());
  const cli = (...args: string[]) => runCli([...args, '-c', b.configPath], { env: b.env });

  it("runs each sync with its own connection's token and ad account", async () => {
    await b.setCustomers(customers(10));
    const r = await cli('sync', '--all', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as RunSummary[]).map((s) => s.status)).toEqual(['success', 'success', 'success', 'success']);
    for (const name of [...b.syncs.acme, ...b.syncs.globex]) expect(b.members(name)).toEqual(ids(10));
    // Each business's calls went to its own account only (the other account would have refused its token).
    const log = b.emulator.control.requestLog();
    expect(log.filter((e) => e.adAccountId === ACME.account).length).toBeGreaterThan(0);
    expect(log.filter((e) => e.adAccountId === GLOBEX.account).length).toBeGreaterThan(0);
    expect(log.filter((e) => e.status !== 200)).toEqual([]);
  });

  it("fails the expired connection's syncs with a re-authorize naming it, while the other connection keeps syncing, run after run", async () => {
    b.emulator.control.setTokenState(GLOBEX.token, 'expired');
    for (let round = 1; round <= 3; round++) {
      await b.setCustomers(customers(10 + round * 5));
      const r = await cli('sync', '--all', '--json');
      expect(r.code).toBe(1);
      const summaries = JSON.parse(r.stdout) as RunSummary[];
      for (const s of summaries.filter((x) => b.syncs.acme.includes(x.sync))) {
        expect(s.status, `${s.sync} in round ${round}: ${s.error}`).toBe('success');
        expect(b.members(s.sync)).toEqual(ids(10 + round * 5));
      }
      for (const s of summaries.filter((x) => b.syncs.globex.includes(x.sync))) {
        expect(s.status).toBe('failed');
        expect(s.error).toMatch(reauthorizeGlobex);
        expect(s.error).not.toMatch(/acme/);
        expect(b.members(s.sync)).toEqual(ids(10));
      }
      expect(r.stdout + r.stderr).not.toContain(ACME.token);
      expect(r.stdout + r.stderr).not.toContain(GLOBEX.token);
    }
  });

  it("doctor checks each connection's token once, says which syncs use it, and checks each ad account", async () => {
    const r = await cli('doctor');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/✓ connection acme: token: valid \(Meta user or system user \d+\); used by syncs acme-loyal, acme-recent/);
    expect(r.stdout).toMatch(/✗ connection globex: token: .*access token rejected.*\(used by syncs globex-loyal, globex-recent\)/);
    expect(r.stdout).toMatch(/fix: Re-authorize connection "globex": the token expired/);
    expect(r.stdout).toContain(`✓ connection acme: ad account: act_${ACME.account} (Acme) is active; syncs acme-loyal, acme-recent`);
    expect(r.stdout).toContain('✓ connection acme: custom audience terms');
    expect(r.stdout).toContain('- connection globex: ad account: not checked: the token does not work');
    expect(r.stdout).toContain('- sync globex-loyal: audience: not checked: the token of connection globex does not work');
    expect(r.stdout).toMatch(/[✓!] sync acme-loyal: audience: audience \d+: about 25 people/);
    expect(r.stdout.match(/connection acme: token/g)).toHaveLength(1);
    expect(r.stdout.match(/connection globex: token/g)).toHaveLength(1);
    expect(r.stdout).not.toContain(ACME.token);
  });

  it('audiences list shows every ad account in use, labelled; --connection and --ad-account pick one', async () => {
    b.emulator.control.setTokenState(GLOBEX.token, 'valid');
    try {
      const all = await cli('audiences', 'list');
      expect(all.code).toBe(0);
      expect(all.stdout).toContain(`act_${ACME.account} (connection acme)`);
      expect(all.stdout).toContain(`act_${GLOBEX.account} (connection globex)`);
      expect(all.stdout).toContain(`2 audiences in act_${ACME.account}`);
      const json = JSON.parse((await cli('audiences', 'list', '--json')).stdout) as Array<{ connection: string; adAccountId: string; audiences: Array<{ name: string }> }>;
      expect(json.map((l) => [l.connection, l.adAccountId, l.audiences.map((a) => a.name).sort()])).toEqual([
        ['acme', ACME.account, ['acme-loyal', 'acme-recent']],
        ['globex', GLOBEX.account, ['globex-loyal', 'globex-recent']],
      ]);

      const one = await cli('audiences', 'list', '--connection', 'globex', '--json');
      expect((JSON.parse(one.stdout) as Array<{ name: string }>).map((a) => a.name).sort()).toEqual(['globex-loyal', 'globex-recent']);
      const byAccount = await cli('audiences', 'list', '--ad-account', `act_${ACME.account}`);
      expect(byAccount.stdout).toMatch(/^ID\s+TYPE/);
      expect(byAccount.stdout).toContain(`2 audiences in act_${ACME.account}`);

      const ambiguous = await cli('audiences', 'create', '--name', 'new');
      expect(ambiguous.code).toBe(2);
      expect(ambiguous.stderr).toContain(`pass --ad-account (and --connection when two connections reach it) to pick one of act_${ACME.account} (connection acme), act_${GLOBEX.account} (connection globex)`);
      const created = await cli('audiences', 'create', '--name', 'new', '--connection', 'globex', '--json');
      expect(created.code).toBe(0);
      expect(b.emulator.control.audience((JSON.parse(created.stdout) as { id: string }).id)?.accountId).toBe(GLOBEX.account);
      const unknown = await cli('audiences', 'list', '--connection', 'initech');
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toMatch(/no Meta connection named "initech" in .*audience-sync\.yml \(connections: acme, globex\)/);
    } finally {
      b.emulator.control.setTokenState(GLOBEX.token, 'expired');
    }
  });
});

describe("two connections, one expired token (serve's scheduler)", () => {
  let b: TwoBusinesses;
  let server: RunningServer;
  beforeAll(async () => {
    b = await twoBusinesses({ sync: { schedule: '* * * * * *' } });
    await b.setCustomers(customers(8));
    b.emulator.control.setTokenState(GLOBEX.token, 'expired');
    server = await startServer({ config: b.configPath, env: b.env, port: 0, logLevel: 'silent', configCheckMs: 0, matchCheckMs: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await b?.close();
  });

  const api = async (path: string) => {
    const res = await fetch(`${server.url}${path}`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('keeps running the working connection\'s syncs on schedule while the expired one\'s fail, tick after tick', async () => {
    const state = await server.context.ws.state();
    const runsOf = (sync: string) => state.listRuns({ sync, limit: 100 });
    const deadline = Date.now() + 30_000;
    let runs: Record<string, RunRecord[]> = {};
    const all = [...b.syncs.acme, ...b.syncs.globex];
    for (;;) {
      runs = Object.fromEntries(await Promise.all(all.map(async (s) => [s, (await runsOf(s)).filter((r) => r.finishedAt !== null)] as const)));
      if (all.every((s) => (runs[s]?.length ?? 0) >= 3)) break;
      if (Date.now() > deadline) throw new Error(`too few scheduled runs: ${JSON.stringify(Object.fromEntries(all.map((s) => [s, runs[s]?.length ?? 0])))}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const s of b.syncs.acme) {
      expect(runs[s]!.every((r) => r.status === 'success')).toBe(true);
      expect(runs[s]!.every((r) => r.trigger.startsWith('schedule'))).toBe(true);
      expect(b.members(s)).toEqual(ids(8));
    }
    for (const s of b.syncs.globex) {
      for (const r of runs[s]!) {
        expect(r.status).toBe('failed');
        expect(r.error).toMatch(reauthorizeGlobex);
      }
      expect(b.members(s)).toEqual([]);
    }
  });

  it('serves each sync with its connection and ad account, and each connection with its token state', async () => {
    const syncs = (await api('/api/syncs')).body.syncs as Array<{ name: string; connection: string; adAccountId: string }>;
    expect(syncs.map((s) => [s.name, s.connection, s.adAccountId])).toEqual([
      ['acme-loyal', 'acme', ACME.account],
      ['acme-recent', 'acme', ACME.account],
      ['globex-loyal', 'globex', GLOBEX.account],
      ['globex-recent', 'globex', GLOBEX.account],
    ]);
    const filtered = (await api(`/api/syncs?adAccount=act_${GLOBEX.account}`)).body.syncs as Array<{ name: string }>;
    expect(filtered.map((s) => s.name)).toEqual(['globex-loyal', 'globex-recent']);
    expect((await api('/api/syncs?adAccount=nope')).status).toBe(400);

    const { connections } = (await api('/api/connections')).body as { connections: Array<Record<string, unknown>> };
    expect(connections).toEqual([
      expect.objectContaining({ name: 'acme', state: 'ok', valid: true, tokenSource: 'config', adAccounts: [ACME.account], syncs: ['acme-loyal', 'acme-recent'] }),
      expect.objectContaining({ name: 'globex', state: 'expired', valid: false, tokenSource: 'config', adAccounts: [GLOBEX.account], syncs: ['globex-loyal', 'globex-recent'], error: expect.stringMatching(reauthorizeGlobex) }),
    ]);
    expect(JSON.stringify(connections)).not.toContain(ACME.token);

    const audiences = (await api(`/api/audiences?connection=acme`)).body.audiences as Array<{ name: string; adAccountId: string; connection: string }>;
    expect(audiences.map((a) => [a.name, a.adAccountId, a.connection]).sort()).toEqual([
      ['acme-loyal', ACME.account, 'acme'],
      ['acme-recent', ACME.account, 'acme'],
    ]);
    expect((await api('/api/audiences?connection=initech')).status).toBe(400);
  });
});
