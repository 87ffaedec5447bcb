// The backends the conformance suite runs against (see harness.ts for how to add one).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import type mysql from 'mysql2/promise';
import pg from 'pg';
import { startBigQueryServer } from '../../support/bigquery-server.js';
import { startDatabricksServer, type DatabricksServer } from '../../support/databricks-server.js';
import { startMariaDb } from '../../support/mariadb.js';
import { startPostgres } from '../../support/postgres.js';
import { createRedshiftStandin } from '../../support/redshift.js';
import { startSnowflakeServer, type SnowflakeServer } from '../../support/snowflake-server.js';
import type { SourceConfig } from '../../../src/config/index.js';
import { DUCKDB_FIXTURES, POSTGRES_FIXTURES, standardLiteral, type BackendInstance, type FixtureDialect, type SourceBackend } from './harness.js';

export const duckdb: SourceBackend = {
  name: 'duckdb',
  async start() {
    const dir = mkdtempSync(join(tmpdir(), 'as-conformance-duckdb-'));
    const path = join(dir, 'warehouse.duckdb');
    return {
      config: { type: 'duckdb', path },
      // A writer of its own: the harness loads the fixtures before any source opens the file read-only.
      async exec(statements) {
        const instance = await DuckDBInstance.create(path);
        const db = await instance.connect();
        try {
          for (const s of statements) await db.run(s);
        } finally {
          db.closeSync();
          instance.closeSync();
        }
      },
      fixtures: DUCKDB_FIXTURES,
      typeNames: {
        id: 'INTEGER',
        big: 'BIGINT',
        small_big: 'BIGINT',
        huge: 'DECIMAL(38,0)',
        amount: 'DECIMAL(10,2)',
        name: 'VARCHAR',
        birth: 'DATE',
        seen: 'TIMESTAMP',
        seen_tz: 'TIMESTAMP WITH TIME ZONE',
        active: 'BOOLEAN',
        doc: 'JSON',
        tags: 'INTEGER[]',
      },
      valueError: `select user_id, cast(email as integer) as n from users where user_id = 7`,
      // A cast that fails on a row far into an unordered (truly streamed) result.
      midStreamFailure: { model: `select user_id, cast(case when user_id = 12000 then 'x' else '1' end as integer) as v from users` },
      notApplicable: {
        expiredCredential: 'an embedded database file has no credentials',
        revokeGrant: 'an embedded database file has no grants',
        runningStatements: 'DuckDB runs in-process: a stopped read leaves nothing running elsewhere',
      },
      async stop() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

/** PostgreSQL, or Redshift's stand-in (test/support/redshift.ts): a reader role that can SELECT what the admin creates. */
async function postgresBackend(redshift: boolean): Promise<BackendInstance> {
  const server = await startPostgres();
  const database = redshift ? 'standin' : 'postgres';
  let admin: pg.Client;
  try {
    admin = redshift ? await createRedshiftStandin(server.url, database) : new pg.Client(server.url);
    if (!redshift) await admin.connect();
  } catch (err) {
    await server.stop();
    throw err;
  }
  await admin.query(`
    CREATE ROLE reader LOGIN;
    DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'password_login') THEN CREATE ROLE password_login NOLOGIN; END IF; END $$;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO reader;
  `);
  const url = (user: string) => `postgres://${user}@127.0.0.1:${server.port}/${database}${redshift ? '?sslmode=disable' : ''}`;
  const type = redshift ? 'redshift' : 'postgres';
  // Sessions of the reader doing something: running a statement, or holding a cursor's transaction open.
  const busy = `FROM pg_stat_activity WHERE usename = 'reader' AND state <> 'idle' AND pid <> pg_backend_pid()`;
  return {
    config: { type, url: url('reader') },
    async exec(statements) {
      for (const s of statements) await admin.query(s);
    },
    fixtures: POSTGRES_FIXTURES,
    typeNames: {
      id: 'integer',
      big: 'bigint',
      small_big: 'bigint',
      huge: 'numeric(38,0)',
      amount: 'numeric(10,2)',
      name: 'text',
      birth: 'date',
      seen: 'timestamp without time zone',
      seen_tz: 'timestamp with time zone',
      active: 'boolean',
      doc: 'jsonb',
      tags: 'integer[]',
    },
    valueError: `select user_id, cast(email as integer) as n from users where user_id = 7`,
    async expiredCredential() {
      await admin.query(`CREATE ROLE expired_reader LOGIN PASSWORD 'old-secret' VALID UNTIL '2000-01-01' IN ROLE password_login`);
      await admin.query('GRANT SELECT ON users TO expired_reader');
      return { type, url: url('expired_reader:old-secret') };
    },
    async revokeGrant(table) {
      await admin.query(`REVOKE SELECT ON ${POSTGRES_FIXTURES.quote(table)} FROM reader`);
    },
    midStreamFailure: {
      async strike() {
        await admin.query(`SELECT pg_terminate_backend(pid) ${busy}`);
      },
    },
    async runningStatements() {
      const { rows } = await admin.query<{ n: number }>(`SELECT count(*)::int AS n ${busy}`);
      return rows[0]!.n;
    },
    async stop() {
      await admin.end().catch(() => {});
      await server.stop();
    },
  };
}

export const postgres: SourceBackend = { name: 'postgres', start: () => postgresBackend(false) };
export const redshift: SourceBackend = { name: 'redshift (PostgreSQL stand-in)', start: () => postgresBackend(true) };

const mysqlString = (text: string) => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;

/** `YYYY-MM-DD hh:mm:ss.fff` in UTC (the source's session time zone) of a timestamp with an offset. */
const utcText = (text: string) => new Date(text.replace(' ', 'T')).toISOString().replace('T', ' ').replace('Z', '');

const MARIADB_FIXTURES: FixtureDialect = {
  quote: (name) => `\`${name.replace(/`/g, '``')}\``,
  types: {
    int: 'INT',
    bigint: 'BIGINT',
    decimal: 'DECIMAL(38,0)',
    money: 'DECIMAL(10,2)',
    text: 'TEXT',
    boolean: 'BOOLEAN',
    date: 'DATE',
    timestamp: 'DATETIME(6)',
    timestamptz: 'TIMESTAMP(6) NULL',
    json: 'JSON',
    intArray: 'JSON', // no arrays in MySQL
  },
  literal(value, type) {
    if (value === null || typeof value === 'boolean' || typeof value === 'number') return standardLiteral(value, type);
    if (type === 'json' || type === 'intArray') return mysqlString(JSON.stringify(value));
    if (type === 'timestamptz') return mysqlString(utcText(String(value)));
    if (type === 'text' || type === 'date' || type === 'timestamp') return mysqlString(String(value));
    return standardLiteral(value, type);
  },
  // A realistic collation (case-insensitive, pads spaces): the source must still order by bytes.
  tableOptions: 'DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci',
};

export const mariadb: SourceBackend = {
  name: 'mariadb',
  async start() {
    const server = await startMariaDb();
    let admin: mysql.Connection | undefined;
    try {
      const root = await server.admin();
      await root.query(`CREATE DATABASE conformance CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci; CREATE USER reader@'%' IDENTIFIED BY 'reader-secret'`);
      await root.end();
      admin = await server.admin('conformance');
    } catch (err) {
      await server.stop();
      throw err;
    }
    const db = admin;
    const url = (user: string) => `mysql://${user}@127.0.0.1:${server.port}/conformance`;
    const readerQueries = `FROM information_schema.processlist WHERE user = 'reader' AND command = 'Query'`;
    return {
      config: { type: 'mysql', url: url('reader:reader-secret') },
      async exec(statements) {
        for (const s of statements) await db.query(s);
        // Table by table (not conformance.*), so one grant can be taken away.
        const [tables] = await db.query<mysql.RowDataPacket[]>(`SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'conformance'`);
        for (const { t } of tables) await db.query(`GRANT SELECT ON conformance.${MARIADB_FIXTURES.quote(String(t))} TO reader@'%'`);
        await db.query(
          "CREATE FUNCTION strict_integer(v TEXT) RETURNS BIGINT DETERMINISTIC BEGIN DECLARE msg TEXT DEFAULT CONCAT('Incorrect integer value: ''', v, ''''); IF v NOT REGEXP '^-?[0-9]+$' THEN SIGNAL SQLSTATE '22007' SET MESSAGE_TEXT = msg; END IF; RETURN CAST(v AS SIGNED); END",
        );
        await db.query(`GRANT EXECUTE ON FUNCTION conformance.strict_integer TO reader@'%'`);
      },
      fixtures: MARIADB_FIXTURES,
      typeNames: {
        id: 'INT',
        big: 'BIGINT',
        small_big: 'BIGINT',
        huge: 'DECIMAL(38,0)',
        amount: 'DECIMAL(10,2)',
        name: 'TEXT',
        birth: 'DATE',
        seen: 'DATETIME',
        seen_tz: 'TIMESTAMP',
        active: 'TINYINT(1)',
        doc: 'JSON',
        tags: 'JSON',
      },
      // MySQL makes a failed CAST a warning; a function the model calls fails quoting the value instead.
      valueError: 'select user_id, strict_integer(email) as n from users where user_id = 7',
      async expiredCredential() {
        await db.query(`CREATE USER expired_reader@'%' IDENTIFIED BY 'old-secret' PASSWORD EXPIRE; GRANT SELECT ON conformance.users TO expired_reader@'%'`);
        return { type: 'mysql', url: url('expired_reader:old-secret') };
      },
      async revokeGrant(table) {
        await db.query(`REVOKE SELECT ON conformance.${MARIADB_FIXTURES.quote(table)} FROM reader@'%'`);
      },
      midStreamFailure: {
        // More rows than the sockets' buffers hold, so the server is still sending when it is killed.
        model: 'select a.user_id, b.email from users a cross join users b',
        async strike() {
          const [rows] = await db.query<mysql.RowDataPacket[]>(`SELECT id ${readerQueries}`);
          for (const { id } of rows) await db.query(`KILL CONNECTION ${Number(id)}`);
        },
      },
      async runningStatements() {
        const [rows] = await db.query<mysql.RowDataPacket[]>(`SELECT count(*) AS n ${readerQueries}`);
        return Number(rows[0]!.n);
      },
      async stop() {
        await db.end().catch(() => {});
        await server.stop();
      },
    };
  },
};

/** A string literal as GoogleSQL and Spark SQL write one: '' is no quote there (BigQuery refuses it, Databricks reads 'a''b' as 'ab'). */
const backslashString = (text: string) => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** What the DuckDB-backed test servers of the HTTP warehouses share. */
interface ApiServer {
  exec(sql: string): Promise<void>;
  expireCredential(): void;
  revokeGrant(table: string): void;
  failMidStream(afterPages: number | undefined): void;
  running(): number;
  stop(): Promise<void>;
}

/**
 * A warehouse behind its test server: the fixtures go into the server's DuckDB; an expired
 * credential is a second server whose credential has expired (expiring the first one's would fail
 * every later test); a mid-stream failure cuts the connection of every later page until healed.
 */
async function apiBackend<S extends ApiServer>(start: () => Promise<S>, config: (server: S) => SourceConfig, typeNames: BackendInstance['typeNames'], modelString?: (text: string) => string): Promise<BackendInstance> {
  const server = await start();
  const others: S[] = [];
  return {
    config: config(server),
    ...(modelString ? { modelString } : {}),
    async exec(statements) {
      for (const s of statements) await server.exec(s);
    },
    fixtures: DUCKDB_FIXTURES,
    typeNames,
    valueError: 'select user_id, cast(email as integer) as n from users where user_id = 7',
    async expiredCredential() {
      const other = await start();
      others.push(other);
      other.expireCredential();
      return config(other);
    },
    async revokeGrant(table) {
      server.revokeGrant(table);
    },
    midStreamFailure: {
      async strike() {
        server.failMidStream(0);
      },
      async heal() {
        server.failMidStream(undefined);
      },
    },
    async runningStatements() {
      return server.running();
    },
    async stop() {
      await Promise.all([server, ...others].map((s) => s.stop()));
    },
  };
}

export const snowflake: SourceBackend = {
  name: 'snowflake (SQL API v2 test server)',
  start: () =>
    apiBackend(
      // Pages of 1,000 rows; TIMESTAMPTZ read back as Snowflake's TIMESTAMP_TZ.
      () => startSnowflakeServer({ rowsPerPartition: 1_000, columnTypes: { SEEN_TZ: 'TIMESTAMP_TZ' } }),
      (server: SnowflakeServer) => server.sourceConfig(),
      // Keyed by the config's names: findColumn finds Snowflake's ID for id.
      { id: 'NUMBER(38,0)', big: 'NUMBER(38,0)', huge: 'NUMBER(38,0)', amount: 'NUMBER(10,2)', name: 'VARCHAR', birth: 'DATE', seen: 'TIMESTAMP_NTZ', seen_tz: 'TIMESTAMP_TZ', active: 'BOOLEAN', doc: 'VARIANT', tags: 'ARRAY' },
    ),
};

export const databricks: SourceBackend = {
  name: 'databricks (Statement Execution API test server)',
  start: () =>
    apiBackend(() => startDatabricksServer({ rowsPerChunk: 1_000 }), (server: DatabricksServer) => server.sourceConfig(), {
      id: 'INT',
      big: 'BIGINT',
      huge: 'DECIMAL(38,0)',
      amount: 'DECIMAL(10,2)',
      name: 'STRING',
      birth: 'DATE',
      seen: 'TIMESTAMP_NTZ',
      seen_tz: 'TIMESTAMP',
      active: 'BOOLEAN',
      doc: 'VARIANT',
      tags: 'ARRAY<INTEGER>',
    }, backslashString),
};

/** BigQuery behind its test server: the fixtures in one dataset, the default dataset of the source's queries. */
export const bigquery: SourceBackend = {
  name: 'bigquery (REST API v2 test server)',
  async start() {
    const server = await startBigQueryServer();
    const dir = mkdtempSync(join(tmpdir(), 'as-conformance-bigquery-'));
    const keyFile = (name: string) => {
      const key = server.serviceAccount(name);
      const path = join(dir, `${name}.json`);
      writeFileSync(path, JSON.stringify(key));
      return { path, principal: key.client_email };
    };
    const config = (path: string): SourceConfig => ({ type: 'bigquery', projectId: server.projectId, apiEndpoint: server.url, keyFile: path, dataset: 'conformance' });
    try {
      await server.createDataset('conformance');
    } catch (err) {
      await server.close();
      throw err;
    }
    return {
      config: config(keyFile('reader').path),
      modelString: backslashString,
      async exec(statements) {
        for (const s of statements) await server.sql(`USE "${server.projectId}".conformance; ${s}`);
      },
      fixtures: DUCKDB_FIXTURES,
      typeNames: { id: 'INT64', big: 'INT64', huge: 'BIGNUMERIC', amount: 'NUMERIC', name: 'STRING', birth: 'DATE', seen: 'DATETIME', seen_tz: 'TIMESTAMP', active: 'BOOL', doc: 'JSON', tags: 'ARRAY<INT64>' },
      valueError: 'select user_id, cast(email as int64) as n from users where user_id = 7',
      async expiredCredential() {
        const expired = keyFile('expired');
        server.revokeCredential(expired.principal);
        return config(expired.path);
      },
      async revokeGrant(table) {
        server.revokeRead('*', `conformance.${table}`);
      },
      midStreamFailure: {
        async strike() {
          server.failPages({ after: 1, error: 'reset' });
        },
        async heal() {
          server.failPages({ after: 0, times: 0 });
        },
      },
      async runningStatements() {
        return server.running();
      },
      async stop() {
        await server.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

export const BACKENDS: readonly SourceBackend[] = [duckdb, postgres, redshift, mariadb, bigquery, snowflake, databricks];
