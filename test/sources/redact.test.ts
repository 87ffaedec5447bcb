// Warehouse errors quote the row value that failed. Every source error must reach the user with its
// values redacted and its names (columns, the source, the model's identifiers) still readable.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSource, redactSourceMessage, SourceError, type Source } from '../../src/sources/index.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';

/** Values a model may fail on, with the parts of each that must never show. */
const VALUES: ReadonlyArray<{ value: string; secrets: string[] }> = [
  { value: ' ANA.Lopez@Example.COM ', secrets: ['ana.lopez', 'example.com'] },
  { value: '+1 (555) 123-4567', secrets: ['555', '123-4567'] },
  { value: 'Quillonia', secrets: ['quillonia'] },
  { value: "O'Brien", secrets: ['brien'] },
  { value: "Zephyrine' Brannoch", secrets: ['zephyrine', 'brannoch'] },
  { value: 'say "Thaddeon" twice', secrets: ['thaddeon', 'twice'] },
  { value: 'Keturah\nVasquine', secrets: ['keturah', 'vasquine'] },
];

/** Models that fail on the value of row `id`, per warehouse. */
const DUCKDB_FAILURES = [
  'select id, cast(value as integer) as v from people where id = $id',
  'select id, cast(value as date) as v from people where id = $id',
  'select id, cast(value as decimal(4,1)) as v from people where id = $id',
  'select id, cast(value as integer[]) as v from people where id = $id',
  `select id, strptime(value, '%Y-%m-%d') as v from people where id = $id`,
  `select id, json_extract(value, '$.a') as v from people where id = $id`,
];
const POSTGRES_FAILURES = [
  'select id, cast(value as integer) as v from people where id = $id',
  'select id, value::date as v from people where id = $id',
  'select id, value::jsonb as v from people where id = $id',
  'select id, value::int[] as v from people where id = $id',
  `select id, to_date(value, 'YYYY-MM-DD') as v from people where id = $id`,
  'select id, value::uuid as v from people where id = $id',
];

/** Reads the model the way a run does and returns the error it fails with. */
async function failure(source: Source, sql: string): Promise<SourceError> {
  try {
    for await (const _ of source.stream(sql, { orderByKey: 'id', keyForm: 'sha256', columns: ['id', 'v'] })) {
      // reading to the end
    }
  } catch (e) {
    expect(e).toBeInstanceOf(SourceError);
    expect((e as Error).cause).toBeUndefined();
    return e as SourceError;
  }
  throw new Error(`the model did not fail: ${sql}`);
}

function expectRedacted(message: string, secrets: readonly string[], context: string): void {
  for (const secret of secrets) expect(message.toLowerCase(), `${context}\n${message}`).not.toContain(secret);
}

async function expectEveryFailureRedacted(source: Source, failures: readonly string[]): Promise<string[]> {
  const messages: string[] = [];
  for (const [i, { secrets }] of VALUES.entries()) {
    for (const model of failures) {
      const sql = model.replace('$id', String(i));
      const error = await failure(source, sql);
      expectRedacted(error.message, secrets, sql);
      expectRedacted(String(error.stack), secrets, `${sql} (stack)`);
      messages.push(error.message);
    }
  }
  return messages;
}

describe('DuckDB errors', () => {
  let dir: string;
  let source: Source;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'as-redact-duckdb-'));
    const instance = await DuckDBInstance.create(join(dir, 'warehouse.duckdb'));
    const db = await instance.connect();
    await db.run('create table people (id integer, value varchar)');
    const appender = await db.createAppender('people');
    for (const [i, { value }] of VALUES.entries()) {
      appender.appendInteger(i);
      appender.appendVarchar(value);
      appender.endRow();
    }
    appender.closeSync();
    db.closeSync();
    instance.closeSync();
    source = await openSource({ type: 'duckdb', path: 'warehouse.duckdb' }, { baseDir: dir, name: 'warehouse' });
  });

  afterAll(async () => {
    await source?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('redact every value a failing cast, parse or conversion quotes', async () => {
    const messages = await expectEveryFailureRedacted(source, DUCKDB_FAILURES);
    expect(messages[0]).toMatch(/^source "warehouse": DuckDB could not run the model: Conversion Error: Could not convert string '<redacted>' to INT32/);
    // The model's own SQL, quoted back by DuckDB, stays readable.
    expect(messages[0]).toContain('cast(value as integer)');
  });

  it('keep the names a model got wrong', async () => {
    const error = await failure(source, 'select id, valeu as v from people');
    expect(error.message).toContain('Referenced column "valeu" not found');
    const columns = await source.columns('select "Valeu" from people').catch((e: unknown) => e as Error);
    expect((columns as Error).message).toContain('"Valeu"');
  });

  it('redact the value an error() call prints bare when it is an e-mail address', async () => {
    const error = await failure(source, 'select id, error(value) as v from people where id = 0');
    expect(error.message).toBe('source "warehouse": DuckDB could not run the model: Invalid Input Error:  <redacted> ');
  });
});

describe('PostgreSQL errors', () => {
  let server: TestPostgres;
  let source: Source;

  beforeAll(async () => {
    server = await startPostgres();
    const admin = new pg.Client(server.url);
    await admin.connect();
    await admin.query('create table people (id integer, value text)');
    for (const [i, { value }] of VALUES.entries()) await admin.query('insert into people values ($1, $2)', [i, value]);
    await admin.end();
    source = await openSource({ type: 'postgres', url: server.url }, { name: 'crm' });
  });

  afterAll(async () => {
    await source?.close();
    await server?.stop();
  });

  it('redact every value a failing cast or parse quotes, in the message and its DETAIL', async () => {
    const messages = await expectEveryFailureRedacted(source, POSTGRES_FAILURES);
    expect(messages[0]).toBe('source "crm": PostgreSQL failed while reading the model: invalid input syntax for type integer: "<redacted>"');
    expect(messages.find((m) => m.includes('DETAIL'))).toMatch(/DETAIL: Token "<redacted>" is invalid/);
    expect(messages.find((m) => m.includes('malformed array'))).toContain('DETAIL: Array value must start with "<redacted>" or dimension information.');
  });

  it('keep the names a model got wrong, with PostgreSQL\'s hint', async () => {
    const error = await failure(source, 'select id, valeu as v from people');
    expect(error.message).toContain('column "valeu" does not exist');
    // The hint names a column the model does not: not known, so redacted like any other quote.
    expect(error.message).toContain('\nHINT: Perhaps you meant to reference the column "<redacted>"');
    const known = await failure(source, 'select id, people.valeu as v, value from people');
    expect(known.message).toContain('HINT: Perhaps you meant to reference the column "people.value"');
  });
});

describe('redactSourceMessage', () => {
  it("redacts PostgreSQL's unquoted key and row values", () => {
    const text = 'duplicate key value violates unique constraint "people_email_key"\nDETAIL: Key (email)=(ana@example.com) already exists.';
    expect(redactSourceMessage(text, ['people_email_key', 'email'])).toBe(
      'duplicate key value violates unique constraint "people_email_key"\nDETAIL: Key (email)=(<redacted>) already exists.',
    );
    expect(redactSourceMessage('Failing row contains (7, Quillonia, null).')).toBe('Failing row contains (<redacted>).');
  });

  it("redacts BigQuery's unquoted value to the end of its line", () => {
    expect(redactSourceMessage('BigQuery rejected the model: Bad int64 value: Ana Quillonia\nat [1:8]')).toBe('BigQuery rejected the model: Bad int64 value: <redacted>\nat [1:8]');
    expect(redactSourceMessage('Could not cast literal "Ana" to type DATE')).toBe('Could not cast literal "<redacted>" to type DATE');
  });

  it('keeps a known name only when no quote of a value is still open after it', () => {
    expect(redactSourceMessage('column "email": value "x" ok', ['email'])).toBe('column "email": value "<redacted>" ok');
    expect(redactSourceMessage('bad value: "email" Thaddeon"', ['email'])).toBe('bad value: "<redacted>"');
    expect(redactSourceMessage('bad value: "[" Thaddeon "]"')).toBe('bad value: "<redacted>"');
    expect(redactSourceMessage('bad value: "" Thaddeon ""')).toBe('bad value: "<redacted>"');
  });

  it('is idempotent', () => {
    const once = redactSourceMessage(`Could not convert string 'O' Brien' to INT32 can't`);
    expect(once).toBe(`Could not convert string '<redacted>' to INT32 can't`);
    expect(redactSourceMessage(once)).toBe(once);
  });
});
