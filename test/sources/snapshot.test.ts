// The snapshot of warehouse change detection on DuckDB, PostgreSQL and Redshift (its PostgreSQL
// stand-in): its tables, writes that replay to the same table after a kill, given-up records, the
// doctor's probe, fingerprints (hashes of the key and values where the engine hashes rows cheaply,
// elsewhere an MD5 of the values' unambiguous encoding), and the change sets built on them.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSource, type Source } from '../../src/sources/index.js';
import { fingerprintSql, signatureDigest, WarehouseSnapshot, type SnapshotWrite } from '../../src/sources/snapshot.js';
import { bucketTable, hashing, matchCheckSql } from '../../src/sources/snapshot-match.js';
import { duckdb, postgres, redshift } from './conformance/backends.js';
import type { BackendInstance, SourceBackend } from './conformance/harness.js';

const upsert = (pk: string, o: Partial<Extract<SnapshotWrite, { op: 'upsert' }>> = {}): SnapshotWrite => ({
  op: 'upsert',
  pk,
  fingerprint: `fp-${pk}`,
  cellsText: JSON.stringify([pk, 'a'.repeat(64)]),
  filledMask: 3,
  status: 'synced',
  attempts: 0,
  lastError: null,
  ...o,
});

/** Values whose encodings would collide without the length prefixes, and text beyond ASCII. */
const FINGERPRINT_ROWS: Array<[number, string | null, string | null]> = [
  [1, 'ab', null],
  [2, 'a', 'b'],
  [3, '', null],
  [4, null, ''],
  [5, '1:x', 'y'],
  [6, '1', 'x:y'],
  [7, 'Zoë 🙂', ' spaced '],
  [8, null, null],
];

describe.each([duckdb, postgres, redshift] as SourceBackend[])('the snapshot on $name', (backend) => {
  let instance: BackendInstance;
  let source: Source;
  beforeAll(async () => {
    instance = await backend.start();
    const sql = (v: string | null) => (v === null ? 'NULL' : `'${v}'`);
    await instance.exec([
      `CREATE TABLE fp_values (id INTEGER, k INTEGER, a ${instance.fixtures.types.text}, b ${instance.fixtures.types.text})`,
      // Every row under the same key k: the fingerprints differ by the values alone.
      `INSERT INTO fp_values VALUES ${FINGERPRINT_ROWS.map(([id, a, b]) => `(${id}, 1000, ${sql(a)}, ${sql(b)})`).join(', ')}`,
      // The reader may create the state schema (PostgreSQL, Redshift).
      ...(backend === duckdb ? [] : [`GRANT CREATE ON DATABASE ${backend === redshift ? 'standin' : 'postgres'} TO reader`]),
    ]);
    source = await openSource(instance.config, { name: 'warehouse', writable: true });
  }, 120_000);
  afterAll(async () => {
    await source?.close();
    await instance?.stop();
  });

  it('creates its tables (again without harm), applies writes, and replaying them gives the same table', async () => {
    const snapshot = new WarehouseSnapshot(source, 'audience_sync', 'snap-test');
    expect(snapshot.name).toBe('audience_sync.audience_sync_snap_test');
    await snapshot.prepare();
    await snapshot.prepare();
    const records = async () => {
      const all = [];
      for await (const chunk of snapshot.records()) all.push(...chunk);
      return all.map((r) => ({ pk: r.pk, fingerprint: r.fingerprint, cells: r.cells, mask: r.filledMask(), status: r.status, attempts: r.attempts, lastError: r.lastError })).sort((x, y) => x.pk.localeCompare(y.pk));
    };
    expect(await snapshot.apply(() => [[upsert('a'), upsert('b'), upsert('c', { status: 'pending', attempts: 2, lastError: "Meta refused it: 'x'", cellsText: null, filledMask: 0 })]])).toBe(3);
    const first = await records();
    expect(first).toEqual([
      { pk: 'a', fingerprint: 'fp-a', cells: ['a', 'a'.repeat(64)], mask: 3, status: 'synced', attempts: 0, lastError: null },
      { pk: 'b', fingerprint: 'fp-b', cells: ['b', 'a'.repeat(64)], mask: 3, status: 'synced', attempts: 0, lastError: null },
      { pk: 'c', fingerprint: 'fp-c', cells: null, mask: 0, status: 'pending', attempts: 2, lastError: "Meta refused it: 'x'" },
    ]);
    expect(await snapshot.count()).toBe(3);

    // A batch of writes (later ones replacing records, a delete) applied twice, as a kill mid-way would replay it.
    const writes = () => [[upsert('b', { fingerprint: 'fp-b2' }), { op: 'delete', pk: 'c' } as SnapshotWrite], [upsert('d')]];
    await snapshot.apply(writes);
    const second = await records();
    await snapshot.apply(writes);
    expect(await records()).toEqual(second);
    expect(second.map((r) => `${r.pk}:${r.fingerprint}`)).toEqual(['a:fp-a', 'b:fp-b2', 'd:fp-d']);

    // Killed after the old records were deleted, before the new rows were in: the replay restores them.
    const ops = source.snapshot!;
    await ops.execute(`DELETE FROM ${snapshot.table} WHERE ${ops.dialect.quote('pk_hash')} IN ('b', 'd')`);
    await snapshot.apply(writes);
    expect(await records()).toEqual(second);
  });

  it('counts given-up records by reason, samples them by key hash, and puts them back in the queue', async () => {
    const snapshot = new WarehouseSnapshot(source, 'audience_sync', 'given-up');
    await snapshot.prepare();
    await snapshot.apply(() => [
      [
        upsert('k3', { status: 'failed', attempts: 5, lastError: 'invalid' }),
        upsert('k1', { status: 'failed', attempts: 5, lastError: 'invalid' }),
        upsert('k2', { status: 'failed', attempts: 6, lastError: 'other' }),
        upsert('k4', { status: 'failed', attempts: 2, lastError: 'invalid' }),
        upsert('k5', { status: 'pending', attempts: 5, lastError: 'invalid' }),
      ],
    ]);
    const { byReason, samples } = await snapshot.givenUp(5, 2);
    expect(byReason.sort((a, b) => String(a.reason).localeCompare(String(b.reason)))).toEqual([
      { reason: 'invalid', count: 2 },
      { reason: 'other', count: 1 },
    ]);
    expect(samples.map((s) => s.pk)).toEqual(['k1', 'k2']);
    expect(await snapshot.requeueGivenUp(5)).toBe(3);
    expect((await snapshot.givenUp(5, 5)).byReason).toEqual([]);
    const after = new Map<string, { status: string; attempts: number; lastError: string | null }>();
    for await (const chunk of snapshot.records()) for (const r of chunk) after.set(r.pk, { status: r.status, attempts: r.attempts, lastError: r.lastError });
    expect(after.get('k1')).toEqual({ status: 'pending', attempts: 0, lastError: 'invalid' });
    expect(after.get('k4')).toEqual({ status: 'failed', attempts: 2, lastError: 'invalid' });
  });

  it("doctor's probe leaves nothing behind; drop removes both tables", async () => {
    const snapshot = new WarehouseSnapshot(source, 'audience_sync', 'probe');
    await snapshot.checkWrite();
    await snapshot.drop();
    await expect(snapshot.count()).rejects.toThrow();
    await snapshot.checkWrite();
    expect(await snapshot.count()).toBe(0);
  });

  it('redacts what a failed write quotes back', async () => {
    const snapshot = new WarehouseSnapshot(source, 'audience_sync', 'redact');
    await snapshot.prepare();
    const failed = await source.snapshot!.insertRows(snapshot.stage, ['pk_hash', 'attempts'], [['k', 'alice@example.com']]).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(failed?.message).toMatch(/<redacted>/);
    expect(failed?.message).not.toContain('alice');
  });

  it('fingerprints the model in SQL: unambiguous values, NULL apart from empty text, the key part of it where the dialect hashes rows', async () => {
    const d = source.snapshot!.dialect;
    const digest = signatureDigest('a signature');
    const read = async (key: string) => {
      const got = new Map<number, string>();
      for await (const chunk of source.stream(`SELECT id AS ${d.quote('id')}, ${fingerprintSql(d, digest, key, ['a', 'b'])} AS ${d.quote('fp')} FROM fp_values`)) {
        for (const r of chunk) got.set(Number(r.id), String(r.fp));
      }
      return got;
    };
    const got = await read('k');
    expect(got.size).toBe(FINGERPRINT_ROWS.length);
    expect(new Set(got.values()).size).toBe(FINGERPRINT_ROWS.length);
    const byId = await read('id');
    if (d.rowHash) {
      // Two 64-bit hashes of the key and the values (DuckDB, PostgreSQL: md5() of every row costs far more).
      for (const fp of got.values()) expect(fp).toMatch(/^h-?\d+:-?\d+$/);
      for (const [id, fp] of byId) expect(fp).not.toBe(got.get(id));
    } else {
      // The MD5 of the digest and the length-prefixed values (lengths in characters), as computed here.
      const encoded = (v: string | null) => (v === null ? 'n' : `${[...v].length}:${v}`);
      for (const [id, a, b] of FINGERPRINT_ROWS) expect(got.get(id)).toBe(createHash('md5').update(digest + encoded(a) + encoded(b)).digest('hex'));
      expect(byId).toEqual(got);
    }
  });
});

describe('a journal application in slices of the key space (DuckDB bounds the entries of a transaction)', () => {
  it('gives the snapshot one application gives, and a kill between slices leaves the rest to the next', () =>
    withDuckDbSource(true, async (source) => {
      // Three entries a transaction here (DuckDB's own bound is 100,000).
      const ops = source.snapshot!;
      let failAfter = Infinity;
      const slicing: Source = {
        ...source,
        snapshot: {
          ...ops,
          dialect: { ...ops.dialect, applySliceEntries: 3 },
          execute: async (sql, opts) => {
            if (/^BEGIN/.test(sql) && failAfter-- <= 0) throw new Error('killed between slices');
            return ops.execute(sql, opts);
          },
        },
      };
      const key = (i: number) => createHash('sha256').update(`key ${i}`).digest('hex');
      const entries = (seq: number) => Array.from({ length: 12 }, (_, i): SnapshotWrite => (i % 5 === 4 && seq > 1 ? { op: 'delete', pk: key(i) } : upsert(key(i), { fingerprint: `fp-${i}-${seq}` })));
      const contents = async (snapshot: WarehouseSnapshot) => {
        const all: string[] = [];
        for await (const chunk of snapshot.records()) all.push(...chunk.map((r) => `${r.pk}:${r.fingerprint}`));
        return all.sort();
      };
      const whole = new WarehouseSnapshot(source, 'audience_sync', 'whole');
      const sliced = new WarehouseSnapshot(slicing, 'audience_sync', 'sliced');
      for (const snapshot of [whole, sliced]) {
        await snapshot.prepare();
        await snapshot.appendJournal(entries(1), 1);
        await snapshot.applyJournal(1);
        await snapshot.appendJournal(entries(2), 2);
        await snapshot.appendJournal(entries(3).slice(0, 6), 3);
      }
      await whole.applyJournal(3);
      failAfter = 2;
      await expect(sliced.applyJournal(3)).rejects.toThrow(/killed between slices/);
      const left = (await sliced.journalSize()).entries;
      expect(left).toBeGreaterThan(0);
      expect(left).toBeLessThan(18);
      failAfter = Infinity;
      await sliced.applyJournal(3);
      expect(await contents(sliced)).toEqual(await contents(whole));
      expect((await contents(whole)).length).toBe(10);
      expect((await sliced.journalSize()).entries).toBe(0);
    }));
});

/** A source on a new DuckDB file (writable or not) for `fn`, closed and removed after. */
async function withDuckDbSource(writable: boolean, fn: (source: Source) => Promise<void>): Promise<void> {
  const instance = await duckdb.start();
  try {
    await instance.exec(['CREATE TABLE t (id INTEGER)']);
    const source = await openSource(instance.config, { name: 'warehouse', writable });
    try {
      await fn(source);
    } finally {
      await source.close();
    }
  } finally {
    await instance.stop();
  }
}

/** The change set of `model` against the snapshot, counted: changed rows, model rows, snapshot records. */
async function countChanges(snapshot: WarehouseSnapshot, model: string): Promise<{ rows: number; modelRows: number; records: number }> {
  const counted = { rows: 0, modelRows: 0, records: 0 };
  for await (const chunk of snapshot.changes(model, { primaryKey: 'id', columns: ['a'], signature: 's' })) {
    for (const item of chunk) {
      if (item.kind === 'row') counted.rows++;
      if (item.kind === 'model') counted.modelRows += item.rows;
      if (item.kind === 'snapshot') counted.records += item.count;
    }
  }
  return counted;
}

describe('a DuckDB change set', () => {
  it('of several MB comes out whole with its counts, in slices where DuckDB runs out of memory (it failed the run)', () =>
    withDuckDbSource(true, async (source) => {
      const ops = source.snapshot!;
      const snapshot = new WarehouseSnapshot(source, 'audience_sync', 'big');
      await snapshot.prepare();
      // 300,000 model rows; the snapshot holds every other one (with another fingerprint) and 100,000 departed keys.
      await ops.execute(`CREATE TABLE big_model AS SELECT i AS id, CAST(i AS VARCHAR) || '-' || repeat('x', 100) AS a FROM range(1, 300001) AS t(i)`);
      await ops.execute(`INSERT INTO ${snapshot.table} SELECT ${ops.dialect.keySha256('id')}, 'old', '["x"]', 1, 'synced', 0, NULL FROM big_model WHERE id % 2 = 0`);
      await ops.execute(`INSERT INTO ${snapshot.table} SELECT 'gone-' || CAST(i AS VARCHAR), 'old', '["x"]', 1, 'synced', 0, NULL FROM range(100000) AS t(i)`);
      // Written to the file, as a warehouse's tables are (unwritten, they would fill the memory limit).
      await ops.execute('CHECKPOINT');
      expect(await countChanges(snapshot, 'SELECT * FROM big_model')).toEqual({ rows: 400_000, modelRows: 300_000, records: 250_000 });
    }), 60_000);

  it('of 1% of 1M rows comes out (a streamed UNION ALL of it and the counts never answered once it outgrew the result buffer)', () =>
    withDuckDbSource(true, async (source) => {
      const ops = source.snapshot!;
      const d = ops.dialect;
      const snapshot = new WarehouseSnapshot(source, 'audience_sync', 'one-percent');
      await snapshot.prepare();
      await ops.execute(`CREATE TABLE model AS SELECT i AS id, 'person' || CAST(i AS VARCHAR) || '@example.com' AS a FROM range(1, 1000001) AS t(i)`);
      // The snapshot holds every row as synced; 1% of them with another fingerprint.
      const fingerprint = fingerprintSql(d, signatureDigest('s'), 'id', ['a']);
      await ops.execute(`INSERT INTO ${snapshot.table} SELECT ${d.keySha256('id')}, CASE WHEN id % 100 = 0 THEN 'old' ELSE ${fingerprint} END, '["x"]', 1, 'synced', 0, NULL FROM model`);
      await ops.execute('CHECKPOINT');
      expect(await countChanges(snapshot, 'SELECT * FROM model')).toEqual({ rows: 10_000, modelRows: 1_000_000, records: 1_000_000 });
    }), 30_000);
});

describe('a PostgreSQL change set (fingerprints matched in buckets)', () => {
  let instance: BackendInstance;
  let source: Source;
  beforeAll(async () => {
    instance = await postgres.start();
    await instance.exec([`CREATE TABLE people AS SELECT i AS id, 'person' || i || '@example.com' AS a FROM generate_series(1, 20000) AS t(i)`, 'GRANT CREATE ON DATABASE postgres TO reader']);
    source = await openSource(instance.config, { name: 'warehouse', writable: true });
  }, 120_000);
  afterAll(async () => {
    await source?.close();
    await instance?.stop();
  });

  /** The keys that came out, by what came with them, and the counts. */
  async function changesOf(snapshot: WarehouseSnapshot) {
    const out = { added: new Set<string>(), changed: new Set<string>(), departed: new Set<string>(), modelRows: 0, nullKeys: 0, records: 0 };
    for await (const chunk of snapshot.changes('SELECT * FROM people', { primaryKey: 'id', columns: ['a'], signature: 's' })) {
      for (const item of chunk) {
        if (item.kind === 'row') (item.row && item.stored ? out.changed : item.row ? out.added : out.departed).add(item.pkHash);
        if (item.kind === 'model') [out.modelRows, out.nullKeys] = [out.modelRows + item.rows, out.nullKeys + item.nullKeys];
        if (item.kind === 'snapshot') out.records += item.count;
      }
    }
    return out;
  }

  it('keeps its bucket table equal to the snapshot summed, through applications of the journal (deletes, replacements, unsynced records, other fingerprints)', async () => {
    const d = source.snapshot!.dialect;
    if (!hashing(d)) throw new Error('PostgreSQL hashes rows');
    const snapshot = new WarehouseSnapshot(source, 'audience_sync', 'kept');
    await snapshot.prepare();
    const write = (i: number, o: Partial<Extract<SnapshotWrite, { op: 'upsert' }>> = {}) => upsert(`k${i}`, { fingerprint: `h${i * 4099}:${-i}`, ...o });
    const summed = () => matchCheckSql(d, 'SELECT 1 AS id', snapshot.table, { primaryKey: 'id', columns: [], digest: 'd' }).records;
    const rows = async (sql: string) => {
      const got: string[] = [];
      for await (const chunk of source.stream(sql)) for (const r of chunk) got.push([r.b, r.status, r.has_cells, r.filled_mask, r.n, r.x].map(String).join(' '));
      return got.sort();
    };
    await snapshot.appendJournal([write(1), write(2), write(3, { status: 'pending' }), write(4, { cellsText: null }), write(7)], 1);
    await snapshot.appendJournal([write(2, { fingerprint: 'h20:-20', filledMask: 1 }), { op: 'delete', pk: 'k1' }, write(5, { fingerprint: 'ab'.repeat(32) })], 2);
    await snapshot.applyJournal(2);
    await snapshot.appendJournal([write(3), write(6), { op: 'delete', pk: 'k7' }], 3);
    // Applied on the second connection while later entries are appended on the first (as a run's delivery goes on).
    expect(snapshot.appliesAside).toBe(true);
    await Promise.all([snapshot.applyJournal(3, { aside: true }), snapshot.appendJournal([write(8, { status: 'failed', attempts: 3 }), write(9, { status: 'failed', attempts: 1 })], 4)]);
    expect(await snapshot.count()).toBe(5);
    expect((await snapshot.journalSize()).entries).toBe(2);
    await snapshot.applyJournal(4);
    expect(await snapshot.count()).toBe(7);
    // The table of the records each application replaced (found in parallel, then deleted by row id) went with its transaction.
    expect(await rows(`SELECT 0 AS b, '' AS status, 0 AS has_cells, 0 AS filled_mask, COUNT(*) AS n, 0 AS x FROM pg_tables WHERE tablename LIKE '%_replaced'`)).toEqual(['0  0 0 0 0']);
    const kept = await rows(bucketTable.read(d, snapshot.buckets));
    expect(kept).toEqual(await rows(summed()));
    expect(kept.length).toBeGreaterThan(3);
    // Status counts come from the bucket table while it is whole, and equal the snapshot's.
    const byStatus = (counts: Array<{ status: string; count: number }>) => Object.fromEntries(counts.map((c) => [c.status, c.count]));
    expect(byStatus(await snapshot.statusCounts())).toEqual({ synced: 5, failed: 2 });
    await source.snapshot!.execute(`UPDATE ${snapshot.buckets} SET n = n + 5 WHERE status = 'synced'`);
    expect(byStatus(await snapshot.statusCounts()).synced).toBeGreaterThan(5);
    await source.snapshot!.execute(bucketTable.invalidate(snapshot.buckets));
    expect(byStatus(await snapshot.statusCounts())).toEqual({ synced: 5, failed: 2 });
  });

  it('brings out the new, changed, departed, unsynced and local-fingerprinted keys (each once, with its record), whether a few buckets differ or most', async () => {
    const ops = source.snapshot!;
    const d = ops.dialect;
    const snapshot = new WarehouseSnapshot(source, 'audience_sync', 'match');
    await snapshot.prepare();
    // The snapshot holds every person as Meta acknowledged them.
    await ops.execute(`INSERT INTO ${snapshot.table} SELECT ${d.keySha256('id')}, ${fingerprintSql(d, signatureDigest('s'), 'id', ['a'])}, '["x"]', 1, 'synced', 0, NULL FROM people`);
    // Written by hand, not by an application: the bucket table no longer holds the snapshot, and says so.
    const byHand = () => ops.execute(`DELETE FROM ${snapshot.buckets} WHERE TRUE`);
    await byHand();
    expect(await changesOf(snapshot)).toMatchObject({ added: new Set(), changed: new Set(), departed: new Set(), modelRows: 20_000, records: 20_000 });

    const key = async (id: number) => {
      for await (const chunk of source.stream(`SELECT ${d.keySha256(String(id))} AS k`)) return String(chunk[0]!.k);
      throw new Error('no key');
    };
    await instance.exec([
      `UPDATE people SET a = 'moved-' || id WHERE id IN (11, 12, 13)`,
      'DELETE FROM people WHERE id IN (21, 22)',
      `INSERT INTO people VALUES (20001, 'new@example.com'), (20002, NULL), (NULL, 'no-key@example.com')`,
    ]);
    // A record still pending, and one moved from local state (its fingerprint is a local one).
    await ops.execute(`UPDATE ${snapshot.table} SET status = 'pending' WHERE pk_hash = '${await key(31)}'`);
    await ops.execute(`UPDATE ${snapshot.table} SET fingerprint = '${'ab'.repeat(32)}' WHERE pk_hash = '${await key(32)}'`);
    await byHand();
    const few = await changesOf(snapshot);
    // The match's join was written to a temporary table of the session (its scans run in parallel there), then read.
    for await (const chunk of source.stream('SELECT COUNT(*) AS n FROM pg_temp.audience_sync_matched')) expect(Number(chunk[0]!.n)).toBe(12);
    expect(few).toEqual({
      added: new Set([await key(20001), await key(20002)]),
      changed: new Set([await key(11), await key(12), await key(13), await key(31), await key(32)]),
      departed: new Set([await key(21), await key(22)]),
      modelRows: 20_001,
      nullKeys: 1,
      records: 20_000,
    });

    // Every row changed (a bulk update): every bucket differs, and each key still comes out once, paired.
    await instance.exec([`UPDATE people SET a = a || '.bulk'`]);
    const bulk = await changesOf(snapshot);
    expect(bulk.changed.size + bulk.added.size + bulk.departed.size).toBe(20_002);
    expect([bulk.added.size, bulk.departed.size]).toEqual([2, 2]);
  }, 60_000);
});

describe('DuckDB opened read-only', () => {
  it('reads a snapshot but refuses to write one, saying why', () =>
    withDuckDbSource(false, async (source) => {
      await expect(new WarehouseSnapshot(source, 'audience_sync', 's').prepare()).rejects.toThrow(/open read-only \(no sync on this source has changeDetection: warehouse\)/);
    }));
});

