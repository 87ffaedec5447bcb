// The change set where hashing a row costs far more than reading it (PostgreSQL: md5() and sha256()
// cost about 1 µs a call, a 10M-row rerun spent 80 s in them). There a fingerprint is two 64-bit
// hashes of the key and the values (SnapshotDialect.rowHash), so equal fingerprints mean the same key
// with the same values, and the change set is found without hashing any key:
// 1. the check: model rows and snapshot records are counted into BUCKETS buckets by fingerprint, with
//    an XOR of their fingerprints; a bucket whose counts or XORs differ holds a change. Records that
//    are not synced, or whose fingerprint is of another form (moved from local state), count in
//    bucket -1, always looked at. It is one aggregate over each table, run whole so the warehouse
//    plans it in parallel; a no-change rerun ends here.
// 2. the match, over the differing buckets: model rows with no synced record of their fingerprint,
//    and records with no model row of theirs, are the changes; only their keys are hashed. They come
//    out ordered by key hash, so a changed row's new values and its old record arrive side by side.
import { createHash } from 'node:crypto';
import { modelAsSubquery } from './sql.js';
import type { Row, SnapshotDialect } from './types.js';

/** A dialect with a cheap row hash. */
export type HashingDialect = SnapshotDialect & Required<Pick<SnapshotDialect, 'rowHash' | 'rowId' | 'rowIdIn'>>;

export const hashing = (d: SnapshotDialect): d is HashingDialect => d.rowHash !== undefined && d.rowId !== undefined && d.rowIdIn !== undefined;

/** Buckets of the check: a few thousand rows to compare, a few thousand model rows per bucket at 10M. */
export const BUCKETS = 4096;
/** The bucket of records that are always looked at. */
const ALWAYS = -1;

/** The fingerprint's two hashes, over the key's and the values' text forms (seeds from the signature digest). */
export function fingerprintHashes(d: HashingDialect, digest: string, columns: readonly string[]): { a: string; b: string } {
  const texts = columns.map((c) => d.valueText(d.quote(c)));
  const seeds = (part: string) => texts.map((_, i) => [seed(digest, part, i, 'hash'), seed(digest, part, i, 'null')] as const);
  return { a: d.rowHash(texts, seeds('a')), b: d.rowHash(texts, seeds('b')) };
}

/** A signed 64-bit seed from the digest: a rules or mapping change moves every fingerprint. */
function seed(digest: string, part: string, index: number, use: string): bigint {
  return createHash('sha256').update(`${digest}:${part}:${index}:${use}`).digest().readBigInt64BE(0);
}

/** The fingerprint's text (`h<a>:<b>`), as the snapshot keeps it. */
export function fingerprintText(d: SnapshotDialect, a: string, b: string): string {
  return `'h' || CAST(${a} AS ${d.textType}) || ':' || CAST(${b} AS ${d.textType})`;
}

/** A kept fingerprint's two hashes, when it is of this form (records from local state are not). */
function keptHashes(d: SnapshotDialect, fingerprint: string): { a: string; b: string; ours: string } {
  const body = `SUBSTR(${fingerprint}, 2)`;
  return {
    a: `CAST(SPLIT_PART(${body}, ':', 1) AS ${d.integerType})`,
    b: `CAST(SPLIT_PART(${body}, ':', 2) AS ${d.integerType})`,
    ours: `${fingerprint} LIKE 'h%'`,
  };
}

export interface MatchOptions {
  primaryKey: string;
  columns: readonly string[];
  digest: string;
}

/** Records (fingerprint, status, has_cells 0/1, filled_mask) as rows of the check's record side, each counted `sign`. */
function recordBuckets(d: HashingDialect, relation: string, sign: number): string {
  const q = d.quote;
  const kept = keptHashes(d, q('fingerprint'));
  const settled = `${q('status')} = 'synced' AND ${q('has_cells')} = 1 AND ${kept.ours}`;
  return (
    `SELECT CASE WHEN ${settled} THEN ${kept.a} & ${BUCKETS - 1} ELSE ${ALWAYS} END AS ${q('b')}, ${q('status')}, ${q('has_cells')}, ${q('filled_mask')},` +
    ` ${sign} AS ${q('n')}, CASE WHEN ${settled} THEN ${kept.b} ELSE 0 END AS ${q('x')} FROM ${relation}`
  );
}

/** The check's record side summed by bucket and by what the counts tell apart. */
const summed = (d: SnapshotDialect, rows: string) => {
  const q = d.quote;
  return `SELECT ${q('b')}, ${q('status')}, ${q('has_cells')}, ${q('filled_mask')}, SUM(${q('n')}) AS ${q('n')}, BIT_XOR(${q('x')}) AS ${q('x')} FROM (${rows}) AS ${q('r')} GROUP BY 1, 2, 3, 4`;
};

/** The snapshot's records as the check reads them: fingerprint, status, has_cells, filled_mask. */
const snapshotRecords = (d: SnapshotDialect, snapshot: string) => {
  const q = d.quote;
  return `(SELECT ${q('fingerprint')}, ${q('status')}, CASE WHEN ${q('cells')} IS NULL THEN 0 ELSE 1 END AS ${q('has_cells')}, ${q('filled_mask')} FROM ${snapshot}) AS ${q('s')}`;
};

/**
 * Statement 1, the check, as two aggregates (each a scan the warehouse may split among workers):
 * model rows by bucket (`b` NULL for rows without a key), and records by bucket and by what the
 * counts tell apart. checkResult compares them.
 */
export function matchCheckSql(d: HashingDialect, model: string, snapshot: string, p: MatchOptions): { rows: string; records: string } {
  const q = d.quote;
  const pk = q(p.primaryKey);
  const { a, b } = fingerprintHashes(d, p.digest, [p.primaryKey, ...p.columns]);
  return {
    rows: `SELECT CASE WHEN ${pk} IS NULL THEN NULL ELSE (${a}) & ${BUCKETS - 1} END AS ${q('b')}, COUNT(*) AS ${q('n')}, BIT_XOR(CASE WHEN ${pk} IS NULL THEN 0 ELSE ${b} END) AS ${q('x')} FROM ${modelAsSubquery(model, d)} GROUP BY 1`,
    records: summed(d, recordBuckets(d, snapshotRecords(d, snapshot), 1)),
  };
}

/**
 * The check's record side kept in a table of its own (`<snapshot>_buckets`, a few thousand rows)
 * where scanning the snapshot costs the most of a no-change rerun (PostgreSQL: 6.5 s of 11 s at 10M
 * records). Each application of the journal adds, in its transaction, what it took out of the
 * snapshot (counted -1) and put in (+1); XOR undoes itself. A row with b = VALID says the table
 * holds the whole snapshot: any other write to the snapshot removes it, and the next check sums the
 * snapshot again.
 */
export const bucketTable = {
  create: (d: SnapshotDialect, table: string) =>
    `CREATE TABLE IF NOT EXISTS ${table} (${['b', 'status', 'has_cells', 'filled_mask', 'n', 'x'].map((c) => `${d.quote(c)} ${c === 'status' ? d.textType : d.integerType}`).join(', ')})`,
  /** Marks the table whole for an empty snapshot (a new one). */
  startEmpty: (d: SnapshotDialect, table: string, snapshot: string) =>
    `INSERT INTO ${table} (${d.quote('b')}, ${d.quote('n')}, ${d.quote('x')}) SELECT ${VALID}, 0, 0 WHERE NOT EXISTS (SELECT 1 FROM ${table}) AND NOT EXISTS (SELECT 1 FROM ${snapshot})`,
  invalidate: (table: string) => `DELETE FROM ${table} WHERE TRUE`,
  /** Whether the table is whole (a row `n`). */
  whole: (d: SnapshotDialect, table: string) => `SELECT COUNT(*) AS ${d.quote('n')} FROM ${table} WHERE ${d.quote('b')} = ${VALID}`,
  /** Statements (one transaction) that sum the snapshot into the table again. */
  rebuild: (d: HashingDialect, table: string, snapshot: string) => [
    `DELETE FROM ${table} WHERE TRUE`,
    `INSERT INTO ${table} ${summed(d, recordBuckets(d, snapshotRecords(d, snapshot), 1))}`,
    `INSERT INTO ${table} (${d.quote('b')}, ${d.quote('n')}, ${d.quote('x')}) VALUES (${VALID}, 0, 0)`,
  ],
  /** The check's record side, read from the table. */
  read: (d: SnapshotDialect, table: string) => {
    const q = d.quote;
    return `SELECT ${q('b')}, ${q('status')}, ${q('has_cells')}, ${q('filled_mask')}, SUM(${q('n')}) AS ${q('n')}, BIT_XOR(${q('x')}) AS ${q('x')} FROM ${table} WHERE ${q('b')} <> ${VALID} GROUP BY 1, 2, 3, 4 HAVING SUM(${q('n')}) <> 0`;
  },
  /**
   * The statement (PostgreSQL: data-modifying WITH) that replaces records by the journal's newest
   * entries (`remove`: the condition of the records to delete; `add`: the rows to insert, in
   * SNAPSHOT_COLUMNS order) and adds to the table what that changed, while the table is whole.
   */
  apply: (d: HashingDialect, table: string, snapshot: string, remove: string, add: { columns: string; rows: string }) => {
    const q = d.quote;
    const returned = `RETURNING ${q('fingerprint')}, ${q('status')}, CASE WHEN ${q('cells')} IS NULL THEN 0 ELSE 1 END AS ${q('has_cells')}, ${q('filled_mask')}`;
    return (
      `WITH ${q('gone')} AS (DELETE FROM ${snapshot} WHERE ${remove} ${returned}),` +
      ` ${q('came')} AS (INSERT INTO ${snapshot} (${add.columns}) ${add.rows} ${returned})` +
      ` INSERT INTO ${table} ${summed(d, `${recordBuckets(d, q('gone'), -1)} UNION ALL ${recordBuckets(d, q('came'), 1)}`)}` +
      ` HAVING EXISTS (SELECT 1 FROM ${table} WHERE ${q('b')} = ${VALID})`
    );
  },
  /** Records by status (`status`, `n`), while the table is whole. */
  statusCounts: (d: SnapshotDialect, table: string) => {
    const q = d.quote;
    return `SELECT ${q('status')} AS ${q('status')}, SUM(${q('n')}) AS ${q('n')} FROM ${table} WHERE ${q('b')} <> ${VALID} GROUP BY ${q('status')} HAVING SUM(${q('n')}) <> 0`;
  },
  /** Sums the table's rows (applications add a few thousand each). */
  compact: (d: SnapshotDialect, table: string) => {
    const q = d.quote;
    return `WITH ${q('old')} AS (DELETE FROM ${table} WHERE TRUE RETURNING *) INSERT INTO ${table} SELECT ${q('b')}, ${q('status')}, ${q('has_cells')}, ${q('filled_mask')}, SUM(${q('n')}), BIT_XOR(${q('x')}) FROM ${q('old')} GROUP BY 1, 2, 3, 4 HAVING SUM(${q('n')}) <> 0 OR ${q('b')} = ${VALID}`;
  },
};
/** The bucket table's row saying it holds the whole snapshot. */
const VALID = -2;

/**
 * The check's answer: the buckets whose model rows and records differ in count or XOR (ALWAYS among
 * them when records must be looked at whatever their bucket), and the counts of the model and the
 * snapshot as changeSetSql's counts statement gives them (rows of kinds `m` and `s`).
 */
export function checkResult(rows: readonly Row[], records: readonly Row[]): { buckets: number[]; counts: Row[] } {
  const int = (v: unknown) => BigInt(typeof v === 'number' ? v : String(v ?? 0));
  const model = new Map<number, { n: bigint; x: bigint }>();
  let modelRows = 0n;
  let nullKeys = 0n;
  for (const r of rows) {
    modelRows += int(r.n);
    if (r.b === null || r.b === undefined) nullKeys += int(r.n);
    else model.set(Number(r.b), { n: int(r.n), x: int(r.x) });
  }
  const snapshot = new Map<number, { n: bigint; x: bigint }>();
  const counts: Row[] = [{ kind: 'm', n: Number(modelRows), n2: Number(nullKeys) }];
  for (const r of records) {
    const b = Number(r.b);
    const held = snapshot.get(b) ?? { n: 0n, x: 0n };
    snapshot.set(b, { n: held.n + int(r.n), x: held.x ^ int(r.x) });
    counts.push({ kind: 's', s_status: r.status, n2: Number(r.has_cells), s_mask: Number(r.filled_mask ?? 0), n: Number(r.n) });
  }
  const buckets = [...new Set([...model.keys(), ...snapshot.keys()])].filter((b) => {
    const [m, s] = [model.get(b), snapshot.get(b)];
    return m?.n !== s?.n || m?.x !== s?.x;
  });
  return { buckets, counts: mergeCounts(counts) };
}

/** Snapshot counts of the same status, cells and mask (one per bucket) as one row each. */
function mergeCounts(counts: Row[]): Row[] {
  const merged = new Map<string, Row>();
  for (const c of counts) {
    const key = c.kind === 'm' ? 'm' : `${String(c.s_status)}|${String(c.n2)}|${String(c.s_mask)}`;
    const held = merged.get(key);
    if (held) held.n = Number(held.n) + Number(c.n);
    else merged.set(key, { ...c });
  }
  return [...merged.values()];
}

/**
 * Statement 2: the changes in `buckets` (all of them when undefined or `everyBucket`; records always looked at only when they hold ALWAYS), as rows of two parts ordered by
 * key hash: `r`, a model row with no synced record of its fingerprint (its mapped values as m0..mN and
 * its fingerprint); `s`, a record with no model row of its fingerprint, or one always looked at.
 * mergeMatched puts a key's two parts together. `unmatched` is the join that finds them (model rows
 * and record row ids), `changes(j)` reads them from its result `j`: a CTE, or a table the join was
 * written to where a cursor would keep the warehouse from running the join's scans in parallel.
 */
export function matchChangedSql(
  d: HashingDialect,
  model: string,
  snapshot: string,
  p: MatchOptions & { buckets?: readonly number[]; everyBucket?: boolean },
): { unmatched: string; changes: (j: string) => string; whole: string } {
  const q = d.quote;
  const T = d.textType;
  const I = d.integerType;
  const pk = q(p.primaryKey);
  const { a, b } = fingerprintHashes(d, p.digest, [p.primaryKey, ...p.columns]);
  const kept = keptHashes(d, q('fingerprint'));
  const settled = `${q('status')} = 'synced' AND ${q('cells')} IS NOT NULL AND ${kept.ours}`;
  const modelColumns = p.columns.map((_, i) => `m${i}`);
  const inBuckets = (hash: string) => {
    const wanted = (p.buckets ?? []).filter((n) => n !== ALWAYS);
    return p.buckets === undefined || p.everyBucket ? 'TRUE' : wanted.length === 0 ? 'FALSE' : `(${hash}) & ${BUCKETS - 1} IN (${wanted.join(', ')})`;
  };
  const always = p.buckets === undefined || p.buckets.includes(ALWAYS);
  // OFFSET 0 keeps the hashes computed once per row, below the bucket filter and the join.
  const hashed = `SELECT ${pk} AS ${q('m_key')}, ${p.columns.map((c, i) => `${q(c)} AS ${q(modelColumns[i]!)}`).join(', ')}, ${a} AS ${q('m_a')}, ${b} AS ${q('m_b')} FROM ${modelAsSubquery(model, d)} WHERE ${pk} IS NOT NULL OFFSET 0`;
  const rows = `SELECT * FROM (${hashed}) AS ${q('h')} WHERE ${inBuckets(q('m_a'))}`;
  // CASE: a fingerprint of another form is not read as numbers (AND does not say which side runs first).
  const keptA = `CASE WHEN ${kept.ours} THEN ${kept.a} END`;
  // The records by their row id (not their 64-character key hash), joined on the fingerprint's two numbers
  // (not its text): a narrower hash table to build (DuckDB, 10M rows: 309 MB RSS at a 128MB limit, where
  // the text ran out of memory).
  const records = `SELECT ${d.rowId} AS ${q('s_row')}, ${keptA} AS ${q('s_a')}, CASE WHEN ${kept.ours} THEN ${kept.b} END AS ${q('s_b')} FROM ${snapshot} WHERE ${settled} AND ${inBuckets(keptA)}`;
  const [m, s] = [(c: string) => `${q('m')}.${q(c)}`, (c: string) => `${q('s')}.${q(c)}`];
  const unmatched =
    `SELECT ${q('m')}.*, ${s('s_row')} FROM (${rows}) AS ${q('m')} FULL OUTER JOIN (${records}) AS ${q('s')} ON ${s('s_a')} = ${m('m_a')} AND ${s('s_b')} = ${m('m_b')}` +
    ` WHERE ${m('m_a')} IS NULL OR ${s('s_row')} IS NULL`;
  const changes = (from: string) => {
    const nulls = (names: readonly string[], type?: string) => names.map((n) => `${type ? `CAST(NULL AS ${type})` : 'NULL'} AS ${q(n)}`);
    const j = (c: string) => `${q('j')}.${q(c)}`;
    const rowPart =
      `SELECT ${[`${d.keySha256(j('m_key'))} AS ${q('pk_hash')}`, `'r' AS ${q('part')}`, ...modelColumns.map((c) => `${j(c)} AS ${q(c)}`), `${fingerprintText(d, j('m_a'), j('m_b'))} AS ${q('m_fp')}`, ...nulls(['s_fp', 's_cells'], T), ...nulls(['s_mask'], I), ...nulls(['s_status'], T), ...nulls(['s_attempts'], I), ...nulls(['s_error'], T)].join(', ')}` +
      ` FROM ${from} AS ${q('j')} WHERE ${j('s_row')} IS NULL`;
    const record = `SELECT ${[`${q('pk_hash')}`, `'s' AS ${q('part')}`, ...nulls(modelColumns), ...nulls(['m_fp'], T), `${q('fingerprint')} AS ${q('s_fp')}`, `${q('cells')} AS ${q('s_cells')}`, `${q('filled_mask')} AS ${q('s_mask')}`, `${q('status')} AS ${q('s_status')}`, `${q('attempts')} AS ${q('s_attempts')}`, `${q('last_error')} AS ${q('s_error')}`].join(', ')} FROM ${snapshot}`;
    // Apart, not OR-ed: with an OR, PostgreSQL compared every record's ctid with each of the 10,000 (26 s at 1M records).
    const recordParts = [
      `${record} WHERE ${d.rowIdIn(`SELECT ${j('s_row')} FROM ${from} AS ${q('j')} WHERE ${j('s_row')} IS NOT NULL`)}`,
      ...(always ? [`${record} WHERE NOT (${settled})`] : []),
    ];
    return `${[rowPart, ...recordParts].join('\nUNION ALL\n')}\nORDER BY 1, 2`;
  };
  return { unmatched, changes, whole: `WITH ${q('j')} AS MATERIALIZED (${unmatched})\n${changes(q('j'))}` };
}

/**
 * The match's rows as change rows (those of changeSetSql's `c` kind): a key's row part and record
 * part, which arrive one after the other, become one row.
 */
export async function* mergeMatched(chunks: AsyncIterable<Row[]>): AsyncGenerator<Row[]> {
  let held: Row | undefined;
  for await (const chunk of chunks) {
    const out: Row[] = [];
    for (const r of chunk) {
      if (held !== undefined && held.pk_hash === r.pk_hash && held.part === 'r' && r.part === 's') {
        out.push(changeRow(held, r));
        held = undefined;
        continue;
      }
      if (held !== undefined) out.push(changeRow(held));
      held = r;
    }
    if (out.length > 0) yield out;
  }
  if (held !== undefined) yield [changeRow(held)];
}

function changeRow(first: Row, record?: Row): Row {
  const row: Row = { ...first, kind: 'c' };
  if (record) for (const c of ['s_fp', 's_cells', 's_mask', 's_status', 's_attempts', 's_error']) row[c] = record[c];
  delete row.part;
  return row;
}
