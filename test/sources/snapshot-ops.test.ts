// What warehouse change detection asks of each warehouse (`Source.snapshot`), the same tests on every
// backend: its tables made and dropped, rows written (awkward strings, many rows) and read back, the
// stage-and-merge sequence replayed after a kill anywhere, one fingerprint query whose fingerprints and
// key hashes are the same on every engine, and a refused write naming the grant to give.
//
// A backend is a line of SNAPSHOT_BACKENDS: DuckDB, PostgreSQL and Redshift join it once their sources
// offer `snapshot`; a backend without a hook (an embedded file has no grants) says why in notApplicable.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it as vitestIt } from 'vitest';
import type { SourceConfig } from '../../src/config/index.js';
import type { Transferred } from '../../src/devtools/sql-api-kit.js';
import { openSource, SourceError, type Row, type Source } from '../../src/sources/index.js';
import type { SnapshotDialect, SnapshotOps } from '../../src/sources/types.js';
import { startBigQueryServer } from '../support/bigquery-server.js';
import { startDatabricksServer } from '../support/databricks-server.js';
import { startSnowflakeServer } from '../support/snowflake-server.js';

interface SnapshotInstance {
  /** A source entry signed in as a user who may create the state schema and write it. */
  readonly config: SourceConfig;
  /** From now on the user may read `schema` but not create it or write in it, as without the grant. */
  refuseWrites?(schema: string): Promise<void>;
  /** What the refused write's fix says to grant, for a schema that exists (`table`) and one to create (`schema`). */
  readonly grants?: { readonly table: RegExp; readonly schema: RegExp };
  /** Statements, result rows and bytes the warehouse sent since the last reset (the test servers count them). */
  transferred?(): Transferred;
  resetTransferred?(): void;
  readonly notApplicable?: Partial<Record<'refuseWrites' | 'transferred', string>>;
  stop(): Promise<void>;
}

interface SnapshotBackend {
  readonly name: string;
  /** Brings the warehouse up; throws when it cannot (the suite fails, never skips). */
  start(): Promise<SnapshotInstance>;
}

const snowflake: SnapshotBackend = {
  name: 'snowflake (SQL API v2 test server)',
  async start() {
    const server = await startSnowflakeServer();
    return {
      config: server.sourceConfig(),
      refuseWrites: async (schema) => server.refuseWrites(schema),
      grants: {
        table: /; GRANT USAGE, CREATE TABLE ON SCHEMA ANALYTICS\.AS_REFUSED TO ROLE ANALYST; GRANT SELECT, INSERT, DELETE ON ALL TABLES IN SCHEMA ANALYTICS\.AS_REFUSED TO ROLE ANALYST$/,
        schema: /; GRANT CREATE SCHEMA ON DATABASE ANALYTICS TO ROLE ANALYST, or have an admin create schema ANALYTICS\.AS_NEW and GRANT USAGE, CREATE TABLE ON SCHEMA ANALYTICS\.AS_NEW TO ROLE ANALYST/,
      },
      transferred: () => server.transferred(),
      resetTransferred: () => server.resetTransferred(),
      stop: () => server.stop(),
    };
  },
};

const bigquery: SnapshotBackend = {
  name: 'bigquery (REST API v2 test server)',
  async start() {
    const server = await startBigQueryServer();
    const dir = mkdtempSync(join(tmpdir(), 'as-snapshot-bigquery-'));
    const key = server.serviceAccount('writer');
    const keyFile = join(dir, 'key.json');
    writeFileSync(keyFile, JSON.stringify(key));
    const who = key.client_email.replace(/\./g, '\\.');
    return {
      config: { type: 'bigquery', projectId: server.projectId, apiEndpoint: server.url, keyFile },
      refuseWrites: async (dataset) => server.refuseWrites(dataset),
      grants: {
        table: new RegExp(`; grant roles/bigquery\\.dataEditor on dataset audience-test:as_refused to ${who}$`),
        schema: new RegExp(`; create dataset audience-test:as_new \\(bq mk --dataset audience-test:as_new\\) and grant roles/bigquery\\.dataEditor on it to ${who}, or grant roles/bigquery\\.dataEditor on project audience-test to ${who}$`),
      },
      transferred: () => server.transferred(),
      resetTransferred: () => server.resetTransferred(),
      async stop() {
        await server.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

const databricks: SnapshotBackend = {
  name: 'databricks (Statement Execution API test server)',
  async start() {
    const server = await startDatabricksServer();
    return {
      config: server.sourceConfig(),
      refuseWrites: async (schema) => server.refuseWrites(schema),
      grants: {
        table: /; ask for GRANT USE SCHEMA, CREATE TABLE, MODIFY, SELECT ON SCHEMA workspace\.as_refused TO `your user`$/,
        schema: /; ask for GRANT USE CATALOG, CREATE SCHEMA ON CATALOG workspace TO `your user`, or have an admin create schema workspace\.as_new and GRANT USE SCHEMA, CREATE TABLE, MODIFY, SELECT ON SCHEMA workspace\.as_new TO `your user`$/,
      },
      transferred: () => server.transferred(),
      resetTransferred: () => server.resetTransferred(),
      stop: () => server.stop(),
    };
  },
};

const SNAPSHOT_BACKENDS: readonly SnapshotBackend[] = [snowflake, bigquery, databricks];

const SCHEMA = 'audience_sync';
const md5 = (text: string) => createHash('md5').update(text, 'utf8').digest('hex');
const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** Strings that break naive escaping somewhere: quotes, backslashes, comment and statement marks, control characters, unicode. */
const AWKWARD = [
  "O'Brien",
  "'",
  "''",
  "x'; DROP TABLE t; --",
  'back\\slash',
  "\\'",
  'ends with \\',
  '\\n is not a line break',
  '\\%_',
  'line 1\nline 2',
  'crlf\r\n',
  'tab\there',
  'bell\u0001',
  '"double" `back` $$dollar$$',
  '/* not a comment */ -- nor this',
  'é',
  '日本語',
  '😀',
  '',
  null,
];

interface Stage {
  readonly pk: string;
  readonly fingerprint: string;
  readonly op?: 'upsert' | 'delete';
}

const SNAP_COLUMNS = ['pk_hash', 'fingerprint', 'cells', 'filled_mask', 'status', 'attempts', 'last_error'] as const;
const snapRow = (r: Stage) => [r.pk, r.fingerprint, r.op === 'delete' ? null : `["${r.fingerprint}"]`, 3, 'synced', 0, null];

/**
 * The fingerprint of a row's columns: md5 hex of the signature, then each value as `v<length>:<text>`
 * (NULL as `n`), joined by `|`; only ||, COALESCE, CAST, LENGTH and the dialect's functions.
 */
function fingerprintSql(d: SnapshotDialect, signature: string, columns: readonly string[]): string {
  const encoded = columns.map((c) => `COALESCE('v' || CAST(LENGTH(${d.valueText(c)}) AS ${d.textType}) || ':' || ${d.valueText(c)}, 'n')`);
  return d.md5Hex([`'${signature}'`, ...encoded].join(` || '|' || `));
}

/** The same fingerprint in JS: LENGTH counts characters (code points), not UTF-16 units. */
function fingerprintJs(signature: string, values: ReadonlyArray<string | null>): string {
  return md5([signature, ...values.map((v) => (v === null ? 'n' : `v${[...v].length}:${v}`))].join('|'));
}

describe.each(SNAPSHOT_BACKENDS)('warehouse change detection: $name', (backend) => {
  let instance: SnapshotInstance;
  let source: Source;
  let ops: SnapshotOps;
  let d: SnapshotDialect;
  let notStarted: unknown;

  beforeAll(async () => {
    try {
      instance = await backend.start();
      source = await openSource(instance.config, { name: 'warehouse' });
      if (!source.snapshot) throw new Error(`the ${source.type} source offers no snapshot operations`);
      ops = source.snapshot;
      d = ops.dialect;
      const create = d.createSchema(SCHEMA);
      if (create !== undefined) await ops.execute(create);
    } catch (err) {
      notStarted = err;
    }
  }, 180_000);

  afterAll(async () => {
    await source?.close();
    await instance?.stop();
  }, 60_000);

  /** A test that fails, rather than being skipped, when the backend could not start. */
  const it = (name: string, fn: () => Promise<unknown> | void, timeout?: number) =>
    vitestIt(
      name,
      async () => {
        if (notStarted !== undefined) throw new Error(`${backend.name} did not start: ${notStarted instanceof Error ? notStarted.message : String(notStarted)}`, { cause: notStarted });
        await fn();
      },
      timeout,
    );

  const q = (name: string) => d.quote(name);
  const table = (name: string) => d.table(SCHEMA, name);

  async function readAll(sql: string): Promise<Row[]> {
    const rows: Row[] = [];
    for await (const chunk of source.stream(sql)) rows.push(...chunk);
    return rows;
  }

  async function createTable(name: string, columns: Readonly<Record<string, 'text' | 'integer'>>): Promise<string> {
    const t = table(name);
    const spec = Object.entries(columns).map(([c, type]) => `${q(c)} ${type === 'text' ? d.textType : d.integerType}`);
    await ops.execute(`DROP TABLE IF EXISTS ${t}`);
    await ops.execute(`CREATE TABLE IF NOT EXISTS ${t} (${spec.join(', ')})`);
    return t;
  }

  const snapSpec = { pk_hash: 'text', fingerprint: 'text', cells: 'text', filled_mask: 'integer', status: 'text', attempts: 'integer', last_error: 'text' } as const;

  async function snapshotRows(t: string): Promise<Array<[string, string, string | null]>> {
    const rows = await readAll(`SELECT ${q('pk_hash')} AS ${q('pk_hash')}, ${q('fingerprint')} AS ${q('fingerprint')}, ${q('cells')} AS ${q('cells')} FROM ${t}`);
    return rows.map((r) => [r.pk_hash as string, r.fingerprint as string, r.cells as string | null] as [string, string, string | null]).sort((a, b) => a[0].localeCompare(b[0]));
  }

  it('creates the schema and its tables idempotently, and drops them', async () => {
    const create = d.createSchema(SCHEMA);
    if (create !== undefined) await ops.execute(create);
    const t = await createTable('made', snapSpec);
    await ops.execute(`CREATE TABLE IF NOT EXISTS ${t} (${q('pk_hash')} ${d.textType})`);
    expect(await readAll(`SELECT COUNT(*) AS ${q('n')} FROM ${t}`)).toEqual([{ n: 0 }]);
    await ops.execute(`DROP TABLE IF EXISTS ${t}`);
    await ops.execute(`DROP TABLE IF EXISTS ${t}`);
    await expect(readAll(`SELECT COUNT(*) AS ${q('n')} FROM ${t}`)).rejects.toThrow(SourceError);
  });

  it('writes awkward strings, empty strings and NULLs and reads them back unchanged', async () => {
    const t = await createTable('awkward', { k: 'text', s: 'text', n: 'integer' });
    const rows = AWKWARD.map((s, i) => [`k${String(i).padStart(2, '0')}`, s, i % 3 === 0 ? null : i * 1_000_000_007]);
    await ops.insertRows(t, ['k', 's', 'n'], rows);
    const back = await readAll(`SELECT ${q('k')} AS ${q('k')}, ${q('s')} AS ${q('s')}, ${q('n')} AS ${q('n')} FROM ${t} ORDER BY ${q('k')}`);
    expect(back.sort((a, b) => String(a.k).localeCompare(String(b.k)))).toEqual(rows.map(([k, s, n]) => ({ k, s, n })));
    // '' and NULL stay apart.
    const empty = await readAll(`SELECT ${q('k')} AS ${q('k')} FROM ${t} WHERE ${q('s')} = ''`);
    expect(empty).toEqual([{ k: `k${String(AWKWARD.indexOf('')).padStart(2, '0')}` }]);
  });

  it('writes 10,000 rows of one call in several statements of a bounded size, and 20,000 small ones', async () => {
    const t = await createTable('many', snapSpec);
    const rows = Array.from({ length: 10_000 }, (_, i) => snapRow({ pk: sha256(`key ${i}`), fingerprint: md5(`value ${i}`) }).map((v, c) => (c === 6 ? `error of row ${i}: ${'x'.repeat(80)}` : v)));
    instance.resetTransferred?.();
    await ops.insertRows(t, SNAP_COLUMNS, rows);
    const sent = instance.transferred?.();
    if (sent) {
      // About 2.3 MB of VALUES, at most 1 MB a statement.
      expect(sent.statements).toBeGreaterThanOrEqual(3);
      expect(sent.bytesIn).toBeGreaterThan(2_000_000);
    }
    expect(await readAll(`SELECT COUNT(*) AS ${q('n')}, COUNT(DISTINCT ${q('pk_hash')}) AS ${q('keys')} FROM ${t}`)).toEqual([{ n: 10_000, keys: 10_000 }]);
    // Small rows: a statement's row count is bounded too (Snowflake takes at most 16,384 rows a VALUES clause).
    const small = await createTable('small', { n: 'integer' });
    await ops.insertRows(small, ['n'], Array.from({ length: 20_000 }, (_, i) => [i]));
    expect(await readAll(`SELECT COUNT(*) AS ${q('n')}, SUM(${q('n')}) AS ${q('total')} FROM ${small}`)).toEqual([{ n: 20_000, total: (19_999 * 20_000) / 2 }]);
  }, 120_000);

  it('applies staged writes (delete the staged keys, insert the upserts) and gives the same table when replayed after a kill anywhere', async () => {
    const snap = await createTable('snap', snapSpec);
    const stage = await createTable('snap_stage', { ...snapSpec, op: 'text' });
    const seed: Stage[] = [
      { pk: sha256('a'), fingerprint: md5('a1') },
      { pk: sha256('b'), fingerprint: md5('b1') },
      { pk: sha256('c'), fingerprint: md5('c1') },
    ];
    const staged: Stage[] = [
      { pk: sha256('b'), fingerprint: md5('b2'), op: 'upsert' },
      { pk: sha256('d'), fingerprint: md5('d1'), op: 'upsert' },
      { pk: sha256('c'), fingerprint: md5('c1'), op: 'delete' },
    ];
    const columns = SNAP_COLUMNS.map(q).join(', ');
    const steps: Array<() => Promise<void>> = [
      () => ops.execute(`DELETE FROM ${stage} WHERE TRUE`),
      () => ops.insertRows(stage, [...SNAP_COLUMNS, 'op'], staged.map((r) => [...snapRow(r), r.op!])),
      () => ops.execute(`DELETE FROM ${snap} WHERE ${q('pk_hash')} IN (SELECT ${q('pk_hash')} FROM ${stage})`),
      () => ops.execute(`INSERT INTO ${snap} (${columns}) SELECT ${columns} FROM ${stage} WHERE ${q('op')} = 'upsert'`),
      () => ops.execute(`DELETE FROM ${stage} WHERE TRUE`),
    ];
    const expected = [seed[0]!, staged[0]!, staged[1]!].map((r) => [r.pk, r.fingerprint, `["${r.fingerprint}"]`]).sort((a, b) => a[0]!.localeCompare(b[0]!));
    for (let killedAfter = 0; killedAfter <= steps.length; killedAfter++) {
      await ops.execute(`DELETE FROM ${snap} WHERE TRUE`);
      await ops.execute(`DELETE FROM ${stage} WHERE TRUE`);
      await ops.insertRows(snap, SNAP_COLUMNS, seed.map(snapRow));
      for (const step of steps.slice(0, killedAfter)) await step();
      for (const step of steps) await step();
      expect(await snapshotRows(snap), `killed after step ${killedAfter}`).toEqual(expected);
      expect(await readAll(`SELECT COUNT(*) AS ${q('n')} FROM ${stage}`)).toEqual([{ n: 0 }]);
    }
  }, 120_000);

  it('computes the same fingerprints and key hashes as every other engine (FULL OUTER JOIN, a CTE used twice, UNION ALL, GROUP BY)', async () => {
    const values = await createTable('fp_values', { k: 'text', s: 'text', n: 'integer', d: 'text' });
    // Key, text, integer, date (as text; the model casts it).
    const model: Array<[string, string | null, number | null, string | null]> = [
      ['a', 'a', 12, '2024-01-02'],
      ['empty', '', 0, null],
      ['null', null, null, null],
      ['é', 'é', -7, '1999-12-31'],
      ['twelve', '12', 12, '2024-02-29'],
      ['emoji', '😀', 9_007_199_254_740_991, '2024-01-02'],
    ];
    await ops.insertRows(values, ['k', 's', 'n', 'd'], model);
    const signature = 'a1b2c3';
    const fp = (row: (typeof model)[number]) => fingerprintJs(signature, [row[1], row[2] === null ? null : String(row[2]), row[3]]);

    // The snapshot: 'a' unchanged, 'twelve' changed, 'gone' departed; the others are new.
    const snap = await createTable('fp_snap', snapSpec);
    await ops.insertRows(snap, SNAP_COLUMNS, [
      snapRow({ pk: sha256('a'), fingerprint: fp(model[0]!) }),
      snapRow({ pk: sha256('twelve'), fingerprint: fingerprintJs(signature, ['12', '13', '2024-02-29']) }),
      snapRow({ pk: sha256('gone'), fingerprint: md5('gone') }),
    ]);

    const [pk, fpCol, op, m, s] = ['pk_hash', 'fingerprint', 'op', 'm', 's'].map(q) as [string, string, string, string, string];
    const typed = `SELECT ${q('k')}, ${q('s')}, ${q('n')}, CAST(${q('d')} AS DATE) AS ${q('d')} FROM ${values}`;
    const sql = `
      WITH model AS (
        SELECT ${d.keySha256(q('k'))} AS ${pk}, ${fingerprintSql(d, signature, [q('s'), q('n'), q('d')])} AS ${fpCol}
        FROM (${typed}) ${q('typed')}
      ),
      joined AS (
        SELECT COALESCE(${m}.${pk}, ${s}.${pk}) AS ${pk}, ${m}.${fpCol} AS ${fpCol},
          CASE WHEN ${s}.${pk} IS NULL THEN 'add' WHEN ${m}.${pk} IS NULL THEN 'remove' WHEN ${m}.${fpCol} <> ${s}.${fpCol} THEN 'change' ELSE 'same' END AS ${op}
        FROM model ${m} FULL OUTER JOIN (SELECT ${pk}, ${fpCol} FROM ${snap}) ${s} ON ${m}.${pk} = ${s}.${pk}
      )
      SELECT ${pk} AS ${pk}, ${fpCol} AS ${fpCol}, ${op} AS ${op} FROM joined
      UNION ALL
      SELECT ${op}, CAST(COUNT(*) AS ${d.textType}), 'count' FROM joined GROUP BY ${op}
      UNION ALL
      SELECT 'model', CAST(SUM(CASE WHEN ${fpCol} IS NULL THEN 0 ELSE 1 END) AS ${d.textType}), 'count' FROM model
      ORDER BY 3, 1`;
    const rows = (await readAll(sql)).map((r) => [r.pk_hash, r.fingerprint, r.op]);

    const ops_ = new Map([['a', 'same'], ['twelve', 'change']]);
    const perKey = model.map((row) => [sha256(row[0]), fp(row), ops_.get(row[0]) ?? 'add']);
    const expected = [
      ...perKey,
      [sha256('gone'), null, 'remove'],
      ['add', '4', 'count'],
      ['change', '1', 'count'],
      ['remove', '1', 'count'],
      ['same', '1', 'count'],
      ['model', '6', 'count'],
    ];
    const order = (a: unknown[], b: unknown[]) => `${String(a[2])} ${String(a[0])}`.localeCompare(`${String(b[2])} ${String(b[0])}`);
    expect(rows.sort(order)).toEqual(expected.sort(order));
    // The fingerprints are not all alike: NULL, '' and 'n' differ, and so do 12 and '12' in other columns.
    expect(new Set(perKey.map((r) => r[1])).size).toBe(model.length);
  });

  it('counts the rows and bytes a read takes out of the warehouse, and writes add no rows', async () => {
    if (!instance.transferred || !instance.resetTransferred) return expect(instance.notApplicable?.transferred).toMatch(/\w/);
    const t = await createTable('counted', { k: 'text' });
    await ops.insertRows(t, ['k'], [['x'], ['y'], ['z']]);
    instance.resetTransferred();
    const rows = await readAll(`SELECT ${q('k')} AS ${q('k')} FROM ${t}`);
    const read = instance.transferred();
    expect(rows).toHaveLength(3);
    expect(read.rows).toBe(3);
    expect(read.statements).toBeGreaterThanOrEqual(1);
    expect(read.bytesOut).toBeGreaterThan(100);
    await ops.insertRows(t, ['k'], [['w']]);
    const after = instance.transferred();
    expect(after.rows).toBe(3);
    expect(after.bytesIn).toBeGreaterThan(read.bytesIn);
    instance.resetTransferred();
    expect(instance.transferred()).toMatchObject({ statements: 0, rows: 0 });
  });

  it('keeps row values out of a failed write\'s message, and writes only integers as numbers', async () => {
    const t = await createTable('typed_write', { n: 'integer' });
    const err = await ops.insertRows(t, ['n'], [['ana.smith@example.com']]).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect((err as Error).message).toMatch(/could not write the state schema/);
    expect((err as Error).message).not.toMatch(/ana|smith|example/);
    await expect(ops.insertRows(t, ['n'], [[1.5]])).rejects.toThrow(/cannot write 1\.5 to the state schema: only integers are written/);
  });

  it('names the grant to give when the user may not create the state schema or write in it', async () => {
    if (!instance.refuseWrites || !instance.grants) return expect(instance.notApplicable?.refuseWrites).toMatch(/\w/);
    // A schema the user may not create.
    await instance.refuseWrites('as_new');
    const createNew = d.createSchema('as_new');
    if (createNew !== undefined) {
      const err = await ops.execute(createNew).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(SourceError);
      expect((err as SourceError).message).toMatch(instance.grants.schema);
      expect((err as SourceError).fix).toBeDefined();
    }
    // A schema that exists, where the user may no longer create tables or write.
    const createRefused = d.createSchema('as_refused');
    if (createRefused !== undefined) await ops.execute(createRefused);
    const t = d.table('as_refused', 'audience_sync_refused');
    await ops.execute(`CREATE TABLE IF NOT EXISTS ${t} (${q('pk_hash')} ${d.textType})`);
    await instance.refuseWrites('as_refused');
    // Making what exists already changes nothing, and is allowed.
    if (createRefused !== undefined) await ops.execute(createRefused);
    const refusals = [
      () => ops.execute(`CREATE TABLE IF NOT EXISTS ${d.table('as_refused', 'audience_sync_other')} (${q('pk_hash')} ${d.textType})`),
      () => ops.insertRows(t, ['pk_hash'], [["O'Brien@example.com"]]),
      () => ops.execute(`DELETE FROM ${t} WHERE TRUE`),
    ];
    for (const refusal of refusals) {
      const err = await refusal().then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(SourceError);
      expect((err as SourceError).message).toMatch(/could not write the state schema/);
      expect((err as SourceError).message).toMatch(instance.grants.table);
      expect((err as SourceError).message).not.toMatch(/O'Brien|example\.com/);
    }
  });
});
