// The source conformance suite: every test runs against every backend (backends.ts), on the same
// fixture tables (fixtures.ts), expecting the same rows, order and types.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it as vitestIt } from 'vitest';
import { openSource, REDACTED, SourceError, type Row, type Source, type StreamOptions } from '../../../src/sources/index.js';
import { BACKENDS } from './backends.js';
import { FIXTURE_TABLES, KEY_VALUES, TYPED_ROWS, USER_ROWS, WIDE_COLUMN_NAMES, WIDE_ROWS, wideValue } from './fixtures.js';
import { renderFixtures, sqlString, type BackendInstance, type FailureHook } from './harness.js';

const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
const HOOKS: readonly FailureHook[] = ['expiredCredential', 'revokeGrant', 'midStreamFailure', 'runningStatements'];

/**
 * The name a config would write for a column the warehouse returns: its lower-case form when the
 * source's `findColumn` finds the column by it (Snowflake returns `select id` as ID), else as it is.
 */
function configName(source: Source, column: string, columns: readonly string[]): string {
  const lower = column.toLowerCase();
  return lower !== column && source.findColumn(lower, columns) === column ? lower : column;
}

function named(source: Source, row: Row): Row {
  const keys = Object.keys(row);
  return Object.fromEntries(keys.map((k) => [configName(source, k, keys), row[k]]));
}

/** Every row of a read, keyed by the names a config would write; no chunk is empty or above `chunkRows`. */
async function readAll(source: Source, sql: string, opts: StreamOptions = {}): Promise<{ rows: Row[]; chunks: number }> {
  const rows: Row[] = [];
  let chunks = 0;
  for await (const chunk of source.stream(sql, opts)) {
    expect(chunk.length).toBeGreaterThan(0);
    if (opts.chunkRows !== undefined) expect(chunk.length).toBeLessThanOrEqual(opts.chunkRows);
    chunks++;
    for (const row of chunk) rows.push(named(source, row));
  }
  return { rows, chunks };
}

/** The model's column names as a config would write them. */
async function columnNames(source: Source, sql: string): Promise<string[]> {
  const names = (await source.columns(sql)).map((c) => c.name);
  return names.map((n) => configName(source, n, names));
}

async function eventually(read: () => Promise<number>, want: number): Promise<number> {
  const deadline = Date.now() + 10_000;
  let value = await read();
  while (value !== want && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    value = await read();
  }
  return value;
}

const withoutPk = (rows: Row[]) => rows.map(({ __pk: _pk, ...rest }) => rest);

describe.each(BACKENDS)('source conformance: $name', (backend) => {
  let instance: BackendInstance;
  let source: Source;
  let notStarted: unknown;

  beforeAll(async () => {
    try {
      instance = await backend.start();
      await instance.exec(renderFixtures(FIXTURE_TABLES, instance.fixtures));
      source = await openSource(instance.config, { name: 'warehouse' });
    } catch (err) {
      notStarted = err;
    }
  }, 180_000);

  /** A test that fails, rather than being skipped, when the backend could not start (a missing binary). */
  const it = (name: string, fn: () => Promise<unknown> | void) =>
    vitestIt(name, async () => {
      if (notStarted !== undefined) throw new Error(`${backend.name} did not start: ${notStarted instanceof Error ? notStarted.message : String(notStarted)}`, { cause: notStarted });
      await fn();
    });

  afterAll(async () => {
    await source?.close();
    await instance?.stop();
  }, 60_000);

  it('offers every failure hook or says why it cannot', () => {
    for (const hook of HOOKS) {
      if (instance[hook] === undefined) expect(instance.notApplicable?.[hook], `${backend.name} has no ${hook} and does not say why`).toMatch(/\w/);
    }
    expect(source.type).toBe(instance.config.type);
  });

  it('maps the types to plain JS: exact big ids, dates, timestamps with and without zone, booleans, nested JSON and arrays', async () => {
    const { rows } = await readAll(source, 'select * from typed', { orderByKey: 'id' });
    expect(withoutPk(rows)).toEqual(TYPED_ROWS);
  });

  it('describes the columns without reading rows', async () => {
    const columns = await source.columns('select * from typed');
    expect(await columnNames(source, 'select * from typed')).toEqual(FIXTURE_TABLES[0]!.columns.map((c) => c.name));
    const have = columns.map((c) => c.name);
    for (const [name, type] of Object.entries(instance.typeNames)) expect(columns.find((c) => c.name === source.findColumn(name, have))?.type, name).toBe(type);
    // Reading a row of this model fails (the scalar subquery returns many rows); describing it must not.
    const boom = 'select user_id, (select k from key_values) as boom from users';
    expect(await columnNames(source, boom)).toEqual(['user_id', 'boom']);
    await expect(readAll(source, boom)).rejects.toThrow(SourceError);
  });

  it('reads an empty model as no rows, with its columns', async () => {
    const empty = 'select user_id, email from users where user_id < 0';
    expect(await readAll(source, empty)).toEqual({ rows: [], chunks: 0 });
    expect(await readAll(source, empty, { orderByKey: 'user_id', keyForm: 'sha256', columns: ['email'] })).toEqual({ rows: [], chunks: 0 });
    expect(await columnNames(source, empty)).toEqual(['user_id', 'email']);
  });

  it('keeps null and duplicate keys, in UTF-8 byte order of the key text, nulls last', async () => {
    const { rows } = await readAll(source, 'select k from key_values', { orderByKey: 'k', chunkRows: 4 });
    const keyed = KEY_VALUES.filter((k): k is string => k !== null).sort(byBytes);
    expect(rows.map((r) => r.__pk)).toEqual([...keyed, null]);
    expect(rows.map((r) => r.k)).toEqual([...keyed, null]);
  });

  it('orders by the SHA-256 hex of the key text with keyForm sha256', async () => {
    const { rows } = await readAll(source, 'select k from key_values', { orderByKey: 'k', keyForm: 'sha256', chunkRows: 5 });
    const hashed = KEY_VALUES.filter((k): k is string => k !== null)
      .map((k) => ({ k, pk: sha256(k) }))
      .sort((a, b) => byBytes(a.pk, b.pk));
    expect(rows).toEqual([...hashed.map(({ k, pk }) => ({ k, __pk: pk })), { k: null, __pk: null }]);
  });

  it('reads wide rows', async () => {
    const { rows } = await readAll(source, 'select * from wide', { orderByKey: 'c000', chunkRows: 7 });
    expect(rows).toHaveLength(WIDE_ROWS);
    expect(Object.keys(rows[0]!)).toEqual([...WIDE_COLUMN_NAMES, '__pk']);
    const expected = Array.from({ length: WIDE_ROWS }, (_, r) => r).sort((a, b) => byBytes(wideValue(a, 0), wideValue(b, 0)));
    expect(rows.map((row) => row.c149)).toEqual(expected.map((r) => wideValue(r, 149)));
    expect(await columnNames(source, 'select * from wide')).toEqual(WIDE_COLUMN_NAMES);
  });

  it('streams 12,345 rows across pages in key order, projected, in chunks of at most chunkRows', async () => {
    const text = await readAll(source, 'select * from users', { orderByKey: 'user_id', columns: ['email'], chunkRows: 1_000 });
    expect(text.rows).toHaveLength(USER_ROWS);
    expect(text.chunks).toBe(Math.ceil(USER_ROWS / 1_000));
    expect(Object.keys(text.rows[0]!)).toEqual(['email', '__pk']);
    const pks = text.rows.map((r) => r.__pk as string);
    expect(pks.slice(0, 4)).toEqual(['0', '1', '10', '100']);
    for (let i = 1; i < pks.length; i++) if (byBytes(pks[i - 1]!, pks[i]!) >= 0) throw new Error(`out of order at ${i}: ${pks[i - 1]} then ${pks[i]}`);
    expect(text.rows.every((r) => r.email === `user${r.__pk as string}@example.com`)).toBe(true);

    const hashed = await readAll(source, 'select * from users', { orderByKey: 'user_id', keyForm: 'sha256', columns: ['user_id'], chunkRows: 999 });
    expect(hashed.rows).toHaveLength(USER_ROWS);
    const hashes = hashed.rows.map((r) => r.__pk as string);
    for (let i = 1; i < hashes.length; i++) if (hashes[i - 1]! >= hashes[i]!) throw new Error(`out of order at ${i}`);
    expect(hashed.rows.every((r) => r.__pk === sha256(String(r.user_id)))).toBe(true);

    const unordered = await readAll(source, 'select user_id from users', { chunkRows: 5_000 });
    expect(new Set(unordered.rows.map((r) => r.user_id)).size).toBe(USER_ROWS);
  });

  it('reads a model that ends with semicolons and comments, and refuses an empty one', async () => {
    const quoted = (instance.modelString ?? sqlString)("a'b");
    const { rows } = await readAll(source, `select count(*) as n, ';' as s, ${quoted} as q from users where email <> '--' ; ;\n-- done; really\n/* end; */`);
    expect(rows).toEqual([{ n: USER_ROWS, s: ';', q: "a'b" }]);
    await expect(readAll(source, ' ; -- nothing')).rejects.toThrow(/the model is empty/);
  });

  it('fails a read that breaks mid-stream with SourceError, never as a shorter model', async () => {
    const failure = instance.midStreamFailure!;
    const strike = 'strike' in failure ? failure.strike : undefined;
    const own = await openSource(instance.config, { name: 'warehouse' });
    let seen = 0;
    try {
      const reading = (async () => {
        for await (const chunk of own.stream(failure.model ?? 'select * from users', { chunkRows: 500 })) {
          seen += chunk.length;
          if (seen === chunk.length) await strike?.();
        }
      })();
      await expect(reading).rejects.toThrow(/source "warehouse": /);
      await expect(reading).rejects.toThrow(SourceError);
      if (strike) expect(seen).toBeGreaterThan(0);
      if (failure.model === undefined) expect(seen).toBeLessThan(USER_ROWS);
    } finally {
      await own.close();
      if ('heal' in failure) await failure.heal?.();
    }
  });

  it('stops the statement when the reader stops early, and reads again', async () => {
    let chunks = 0;
    for await (const chunk of source.stream('select * from users', { orderByKey: 'user_id', chunkRows: 100 })) {
      expect(chunk).toHaveLength(100);
      if (++chunks === 2) break;
    }
    if (instance.runningStatements) expect(await eventually(() => instance.runningStatements!(), 0)).toBe(0);
    const { rows } = await readAll(source, 'select user_id from users', { orderByKey: 'user_id', keyForm: 'sha256' });
    expect(rows).toHaveLength(USER_ROWS);
  });

  it('closing the source mid-read stops the statement and fails the read (what a shutdown does)', async () => {
    const own = await openSource(instance.config, { name: 'warehouse' });
    const reader = own.stream('select * from users', { orderByKey: 'user_id', chunkRows: 100 })[Symbol.asyncIterator]();
    expect((await reader.next()).value).toHaveLength(100);
    await own.close();
    await expect(reader.next()).rejects.toThrow(/source "warehouse": .*closed/);
    if (instance.runningStatements) expect(await eventually(() => instance.runningStatements!(), 0)).toBe(0);
  });

  it('refuses an expired credential with SourceError, reading nothing', async () => {
    if (!instance.expiredCredential) return expect(instance.notApplicable?.expiredCredential).toBeDefined();
    const config = await instance.expiredCredential();
    const error = await (async () => {
      const expired = await openSource(config, { name: 'warehouse' });
      try {
        return await readAll(expired, 'select * from users');
      } finally {
        await expired.close();
      }
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SourceError);
    expect((error as Error).message).toMatch(/source "warehouse": .*(expired|password|credential|token)/i);
    expect((error as Error).message).not.toContain('old-secret');
  });

  it('says which grant is missing when the user may not read a table', async () => {
    if (!instance.revokeGrant) return expect(instance.notApplicable?.revokeGrant).toBeDefined();
    await instance.revokeGrant('secret');
    // The table, then the grant in the warehouse's terms: GRANT SELECT ON … TO …, or BigQuery's IAM role on its dataset.
    const grant = /source "warehouse": .*secret.*grant \S+ on .+ to \S/i;
    await expect(source.columns('select * from secret')).rejects.toThrow(grant);
    await expect(readAll(source, 'select email from secret', { orderByKey: 'email', keyForm: 'sha256' })).rejects.toThrow(grant);
    // doctor says the same, as a failed check rather than an error.
    const checks = await source.doctor('select * from secret');
    expect(checks[0]).toMatchObject({ subject: 'sign-in', status: 'ok' });
    expect(checks.find((c) => c.status === 'fail')?.message).toMatch(grant);
    // The source stays usable.
    expect((await readAll(source, 'select * from key_values')).rows).toHaveLength(KEY_VALUES.length);
  });

  it('fails on a SQL error with the warehouse\'s text, and stays usable', async () => {
    await expect(readAll(source, 'select * from no_such_table')).rejects.toThrow(/source "warehouse": .*no_such_table/i);
    await expect(source.columns('selec 1')).rejects.toThrow(SourceError);
    await expect(readAll(source, 'select * from users', { columns: ['missing_column'] })).rejects.toThrow(/missing_column/i);
    expect((await readAll(source, 'select * from key_values')).rows).toHaveLength(KEY_VALUES.length);
  });

  it('doctor signs in, says to what, and counts or estimates the model\'s rows without reading them', async () => {
    const checks = await source.doctor('select * from users');
    expect(checks[0]).toMatchObject({ subject: 'sign-in', status: 'ok', message: expect.stringMatching(/\w/) });
    expect(checks.filter((c) => c.status !== 'ok')).toEqual([]);
    const estimate = checks.find((c) => c.subject === 'rows')?.rows;
    expect(estimate?.rows).toBeGreaterThan(0);
    if (!estimate?.estimated) expect(estimate?.rows).toBe(USER_ROWS);
  });

  it('an error quoting a row value is redacted', async () => {
    const error = await readAll(source, instance.valueError).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SourceError);
    const message = (error as Error).message;
    expect(message).toMatch(/^source "warehouse": /);
    expect(message).toContain(REDACTED);
    expect(message).not.toMatch(/user7@example\.com|user7\b/);
    // doctor's checks quote the warehouse too.
    expect(JSON.stringify(await source.doctor(instance.valueError))).not.toMatch(/user7@example\.com|user7\b/);
  });
});
