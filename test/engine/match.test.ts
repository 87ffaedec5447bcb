// Meta's match counts: a run remembers its upload sessions, and a later run records received, matched
// and invalid on it, only once Meta has processed them, and asks Meta only while a run waits for them.
import { afterEach, describe, expect, it } from 'vitest';
import { matchHealth } from '../../src/engine/index.js';
import { openStateStore } from '../../src/state/index.js';
import { STATE_KINDS, stateWorlds } from '../support/state-kinds.js';
import { customers, type World } from '../support/world.js';

const sessionReads = (w: World) => w.emulator.control.requestLog().filter((e) => e.method === 'GET' && e.path.endsWith('/sessions'));

describe.each(STATE_KINDS)("Meta's match counts with %s state", (kind) => {
  const stores = stateWorlds(kind, 'match');
  let world: World | undefined;
  afterEach(async () => {
    await world?.close();
    world = undefined;
  });

  it('are picked up by the next run once processed, never waited for', async () => {
    const w = (world = await stores.createWorld());
    // Emails always match, phones never: the 20 people without an email match no one.
    w.emulator.control.setFlags({ sessionProcessingMs: 60_000, matchRates: { EMAIL: 1, PHONE: 0 } });
    await w.setCustomers(customers(100).map((c, i) => (i < 20 ? { ...c, email: null } : c)));
    const first = await w.run();
    expect(first.status).toBe('success');
    expect(first.counts.uploadSessions).toHaveLength(1);
    expect(first.counts.audienceSize).toEqual({ lower: 0, upper: 0 }); // read by the start-of-run check, before the upload

    // Still processing: the next run looks, records nothing and goes on.
    const second = await w.run();
    expect(second.status).toBe('success');
    expect(second.counts.uploadSessions).toBeUndefined(); // nothing changed, nothing sent
    expect(sessionReads(w)).toHaveLength(1);
    const state = await openStateStore(stores.stateUrlOf(w));
    try {
      expect((await state.getRun(first.runId!))?.counts.metaMatch).toBeUndefined();

      w.emulator.control.advanceClock(60_000);
      await w.run();
      expect((await state.getRun(first.runId!))?.counts.metaMatch).toMatchObject({ received: 100, matched: 80, invalid: 0, rate: 0.8 });
      expect(sessionReads(w)).toHaveLength(2);

      // Nothing waits any more: the start of the next run stays one request.
      w.emulator.control.clearRequestLog();
      const fourth = await w.run();
      expect(sessionReads(w)).toHaveLength(0);
      expect(fourth.counts.audienceSize).toEqual({ lower: 100, upper: 100 });
    } finally {
      await state.close();
    }
  });

  it('a rate well below usual names phones without a country and the key whose coverage dropped', async () => {
    const w = (world = await stores.createWorld({ mapping: { EXTERN_ID: 'user_id', EMAIL: 'email', PHONE: 'phone' }, sync: { defaultPhoneCountry: undefined } }));
    // Phones always match, emails never.
    w.emulator.control.setFlags({ matchRates: { EMAIL: 0, PHONE: 1 } });
    await w.setCustomers(customers(40));
    await w.run();
    await w.setCustomers(customers(80));
    await w.run();
    // New people whose phones have no country code: they cannot be read without a country.
    await w.setCustomers([...customers(80), ...customers(40, 80).map((c) => ({ ...c, phone: c.phone!.replace('+1 ', '') }))]);
    await w.run();
    await w.run();
    const state = await openStateStore(stores.stateUrlOf(w));
    try {
      const health = matchHealth(await state.listRuns({ sync: 'loyalty' }));
      expect(health).toMatchObject({ latest: { runId: 3, received: 40, matched: 0, rate: 0 }, usualRate: 1, low: true });
      expect(health.causes).toEqual(
        expect.arrayContaining([
          "PHONE is filled in for 67% of the model's rows, down from 100%: check the column it is mapped from",
          '40 phone numbers had no country and could not be sent: map COUNTRY or set defaultPhoneCountry',
        ]),
      );
    } finally {
      await state.close();
    }
  });
});
