// What a run does when Meta refuses: account-level failures stop the run without charging any record
// an attempt; refusals of a batch's rows (or of single rows, named in invalid_entry_samples) do.
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_AD_ACCOUNT, DEFAULT_TOKEN, type RunningEmulator } from '../../src/emulator/index.js';
import { openStateStore, type StoredRecord } from '../../src/state/index.js';
import { STATE_KINDS, stateWorlds } from '../support/state-kinds.js';
import { createWorld, customers, type Customer, type World } from '../support/world.js';

let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});
const ids = (rows: Customer[]) => rows.map((r) => String(r.user_id)).sort();
const pkHash = (id: string) => createHash('sha256').update(id).digest('hex');

interface AccountFailure {
  name: string;
  brk(e: RunningEmulator): void;
  fix(e: RunningEmulator): void;
  /** The fix the run's error must name. */
  says: RegExp;
}

const FULL_SCOPES = ['ads_management', 'ads_read', 'business_management'];
const ACCOUNT_FAILURES: AccountFailure[] = [
  {
    name: 'an expired token',
    brk: (e) => e.control.setTokenState(DEFAULT_TOKEN, 'expired'),
    fix: (e) => e.control.setTokenState(DEFAULT_TOKEN, 'valid'),
    says: /access token rejected.*Re-authorize: the token expired; create a new access token/,
  },
  {
    name: 'Custom Audience terms not accepted',
    brk: (e) => e.control.setTos(DEFAULT_AD_ACCOUNT, false),
    fix: (e) => e.control.setTos(DEFAULT_AD_ACCOUNT, true),
    says: new RegExp(`Accept Meta's Custom Audience Terms of Service at https://business\\.facebook\\.com/ads/manage/customaudiences/tos/\\?act=${DEFAULT_AD_ACCOUNT}`),
  },
  {
    name: 'a token without ads_management',
    brk: (e) => e.control.setScopes(DEFAULT_TOKEN, ['ads_read']),
    fix: (e) => e.control.setScopes(DEFAULT_TOKEN, FULL_SCOPES),
    says: /permission denied.*ads_management/,
  },
  {
    name: 'Meta answering uploads with 5xx pages',
    brk: (e) => e.control.setFaults({ rate: 1, kinds: ['html5xx'], paths: '/users$' }),
    fix: (e) => e.control.setFaults({ rate: 0, kinds: [] }),
    says: /temporary Meta failure.*retry later/,
  },
  {
    name: 'throttling',
    brk: (e) => e.control.setFaults({ rate: 1, kinds: ['throttle'], paths: '/users$' }),
    fix: (e) => e.control.setFaults({ rate: 0, kinds: [] }),
    says: /rate limit/i,
  },
];

describe('upload batches', () => {
  it('are cut by their exact size: long EXTERN_IDs that would make 10,000 rows too big for one request', async () => {
    world = await createWorld({ mapping: { EXTERN_ID: 'user_id', EMAIL: 'email' } });
    // ~1 KB per row: 10,000 rows are ~10.6 MB, over the 8 MiB a request may carry.
    const model = customers(10_000).map((c) => ({ ...c, user_id: `${String(c.user_id)}-${'x'.repeat(1000)}` }));
    await world.setCustomers(model);
    world.emulator.control.setFlags({ maxBodyBytes: 8 * 1024 * 1024 });
    const r = await world.run();
    expect(r.error).toBeUndefined();
    expect(r.status).toBe('success');
    expect(r.counts.delivered).toBe(10_000);
    const uploads = world.emulator.control.requestLog().filter((e) => e.path.endsWith('/users'));
    expect(uploads.map((e) => e.status)).toEqual([200, 200]);
    expect(uploads.reduce((n, e) => n + (e.rows ?? 0), 0)).toBe(10_000);
    expect(world.emulator.control.members(world.audienceId)).toHaveLength(10_000);
  });
});

describe.each(STATE_KINDS)('delivery failures with %s state', (kind) => {
  const stores = stateWorlds(kind, 'delivery');
  const createWorldWithState = stores.createWorld;
  async function records(w: World): Promise<StoredRecord[]> {
    const state = await openStateStore(stores.stateUrlOf(w));
    try {
      return await state.listRecords('loyalty');
    } finally {
      await state.close();
    }
  }
  async function runHistory(w: World) {
    const state = await openStateStore(stores.stateUrlOf(w));
    try {
      return await state.listRuns({ sync: 'loyalty', limit: 100 });
    } finally {
      await state.close();
    }
  }

  it('an expired token fails 7 runs in a row without using up any record\'s attempts; once fixed, everyone is sent', async () => {
    world = await createWorldWithState({ sync: { maxAttempts: 5 } });
    const model = customers(30);
    await world.setCustomers(model);
    const [expired] = ACCOUNT_FAILURES;
    // The token expires on the first upload: that run stops in delivery; the next six stop at the
    // start-of-run check. None of them may spend an attempt.
    world.emulator.control.setFaults({ rate: 1, kinds: ['token_expiry'], paths: '/users$' });
    for (let run = 1; run <= 7; run++) {
      const r = await world.run();
      if (run === 1) world.emulator.control.setFaults({ rate: 0, kinds: [] });
      expect(r.status).toBe('failed');
      // The batch that went out is known (Meta might hold it), still pending, with every attempt left.
      const state = await records(world);
      expect(state).toHaveLength(30);
      for (const rec of state) expect(rec).toMatchObject({ status: 'pending', attempts: 0, lastError: null, hasCells: true });
      expect(r.counts.failed).toBe(0);
      expect(r.error).toMatch(expired!.says);
      if (run === 1) expect(r.error).toMatch(/30 of 30 rows to add were left for the next run/);
      else expect(r.error).toMatch(/could not be checked before reading the model/);
    }
    expect(world.memberIds()).toEqual([]);

    expired!.fix(world.emulator);
    const fixed = await world.run();
    expect(fixed.error).toBeUndefined();
    expect(fixed.status).toBe('success');
    expect(fixed.counts).toMatchObject({ retried: 30, delivered: 30, failed: 0 });
    expect(world.memberIds()).toEqual(ids(model));
    expect((await records(world)).every((r) => r.status === 'synced' && r.attempts === 0)).toBe(true);
    expect((await runHistory(world)).map((r) => r.status)).toEqual(['success', ...Array<string>(7).fill('failed')]);
  });

  it.each(ACCOUNT_FAILURES.slice(1))('$name stops the run as failed, names the fix and charges no attempt', async (failure) => {
    world = await createWorldWithState({ sync: { maxAttempts: 2 } });
    const model = customers(20);
    await world.setCustomers(model);
    failure.brk(world.emulator);
    for (let run = 1; run <= 3; run++) {
      const r = await world.run();
      expect(r.status).toBe('failed');
      expect(r.error).toMatch(failure.says);
      expect(r.errorSamples).toEqual([]);
      for (const rec of await records(world)) expect(rec).toMatchObject({ status: 'pending', attempts: 0 });
    }
    failure.fix(world.emulator);
    const fixed = await world.run();
    expect(fixed.status).toBe('success');
    expect(world.memberIds()).toEqual(ids(model));
  });

  it('a removal stopped by an account-level failure spends no attempt and keeps the cells to remove', async () => {
    world = await createWorldWithState({ sync: { maxAttempts: 2 } });
    await world.setCustomers(customers(20));
    expect((await world.run()).status).toBe('success');
    await world.setCustomers(customers(18));
    // Uploads fail as if the token were revoked while the start-of-run check still passes.
    world.emulator.control.setFaults({ rate: 1, kinds: ['throttle'], paths: '/users$' });
    for (let run = 1; run <= 3; run++) {
      const r = await world.run();
      expect(r.status).toBe('failed');
      expect(r.error).toMatch(/rate limit.*2 of 2 rows to remove were left/is);
    }
    world.emulator.control.setFaults({ rate: 0, kinds: [] });
    const departed = (await records(world)).filter((r) => r.pk === pkHash('u18') || r.pk === pkHash('u19'));
    expect(departed).toHaveLength(2);
    // Pending, not synced: the removal may have reached Meta (a person coming back must be added again).
    for (const rec of departed) expect(rec).toMatchObject({ status: 'pending', attempts: 0, lastError: null, hasCells: true });
    expect((await world.run()).status).toBe('success');
    expect(world.memberIds()).toEqual(ids(customers(18)));
  });

  it('a batch whose rows Meta refuses spends one attempt per run; the records are failed at maxAttempts', async () => {
    world = await createWorldWithState({ sync: { maxAttempts: 2, batchRows: 10 } });
    await world.setCustomers(customers(20));
    // Meta refuses any request of more than 5 rows (code 100): the batch's rows are at fault.
    world.emulator.control.setFlags({ maxRows: 5 });
    const first = await world.run();
    expect(first.status).toBe('partial');
    expect(first.counts).toMatchObject({ failed: 20, delivered: 0 });
    expect(first.errorSamples[0]?.reason).toMatch(/Too many rows/);
    for (const rec of await records(world)) expect(rec).toMatchObject({ status: 'pending', attempts: 1, lastError: expect.stringMatching(/Too many rows/) });
    const second = await world.run();
    expect(second.status).toBe('partial');
    for (const rec of await records(world)) expect(rec).toMatchObject({ status: 'failed', attempts: 2 });
    // Out of attempts: no longer sent, and reported as failed.
    world.emulator.control.setFlags({ maxRows: 10_000 });
    world.emulator.control.clearRequestLog();
    const third = await world.run();
    expect(third.status).toBe('partial');
    expect(third.counts).toMatchObject({ failed: 20, delivered: 0 });
    // The run says why, for each record it no longer sends.
    expect(third.errorSamples).toHaveLength(20);
    expect(third.errorSamples[0]?.reason).toMatch(/^not sent any more: Meta refused it 2 times \(maxAttempts 2\), last: .*Too many rows.*New data for this record, a higher maxAttempts or `audience-sync retry loyalty` sends it again\.$/);
    expect(world.emulator.control.requestLog().filter((e) => e.path.endsWith('/users'))).toHaveLength(0);
  });

  it('rows Meta reports in invalid_entry_samples are charged an attempt and named in the run, by key hash and EXTERN_ID only', async () => {
    world = await createWorldWithState({ sync: { batchRows: 7 } });
    const model = customers(30);
    await world.setCustomers(model);
    const refused = ['u3', 'u12', 'u29'];
    world.emulator.control.setFlags({ invalidCells: refused });
    for (const shape of ['object', 'array'] as const) {
      world.emulator.control.setFlags({ invalidSamplesShape: shape });
      const r = await world.run();
      expect(r.status).toBe('partial');
      expect(r.counts).toMatchObject({ numInvalidEntries: 3, failed: 3 });
      const reason = 'Meta found this row invalid: EXTERN_ID: not a valid value';
      expect(r.errorSamples.map((s) => [s.externId, s.pkHash, s.reason]).sort()).toEqual(refused.map((id) => [id, pkHash(id), reason]).sort());
      const byPk = new Map((await records(world)).map((rec) => [rec.pk, rec]));
      for (const c of model) {
        const rec = byPk.get(pkHash(String(c.user_id)));
        if (refused.includes(String(c.user_id))) expect(rec).toMatchObject({ status: 'pending', attempts: shape === 'object' ? 1 : 2, lastError: reason });
        else expect(rec).toMatchObject({ status: 'synced', attempts: 0, lastError: null });
      }
      // Only the refused rows go out again.
      expect(r.counts.delivered).toBe(shape === 'object' ? 27 : 0);
    }
    const [latest] = await runHistory(world);
    expect(latest?.errorSamples).toHaveLength(3);
    for (const s of latest!.errorSamples) expect(Object.keys(s).sort()).toEqual(['identifiers', 'pk', 'reason']);
    const history = JSON.stringify(await runHistory(world));
    for (const c of model) expect(history).not.toContain(String(c.email).trim().toLowerCase());
    for (const m of world.emulator.control.members(world.audienceId)) expect(history).not.toContain(String(m.EMAIL));

    world.emulator.control.setFlags({ invalidCells: [] });
    const clean = await world.run();
    expect(clean.status).toBe('success');
    expect(clean.counts.retried).toBe(3);
    expect(world.memberIds()).toEqual(ids(model));
  });
});
