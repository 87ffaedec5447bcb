// Runs one of the local warehouse API servers in its own process, so a bench's CPU time counts the
// client only: Snowflake's and Databricks' from the build, BigQuery's from test/support (transpiled).
// Talks to its parent over IPC:
//   → { type: 'ready', config }   ← { type: 'last-statement' } → { type: 'statement', sql }
//   ← { type: 'transferred', reset? } → { type: 'transferred', figures: { statements, rows, bytesOut, bytesIn } }
//     (what the server sent since the last reset: a run's rows and bytes out of the warehouse; reset starts again)
//   ← { type: 'exec', sql } → { type: 'executed' }   (DuckDB SQL run on the server's data directly: a bench changing the model)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDatabricksServer } from '../../dist/devtools/databricks-server.js';
import { startSnowflakeServer } from '../../dist/devtools/snowflake-server.js';
import { transpiledModule } from './ts-module.mjs';

const [vendor, rowsText, pageRowsText] = process.argv.slice(2);
const rows = Number(rowsText);
const pageRows = Number(pageRowsText);
const table = (name) => `create table ${name} as
  select i as user_id, 'user' || i || '@example.com' as email, '+1555' || lpad(i::varchar, 7, '0') as phone,
         'Name' || (i % 1000) as first_name, 'US' as country, (i % 500) * 1.5 as value
  from range(${rows}) t(i)`;

/** { config, lastStatement(), stop() } of the vendor's server holding `customers`. */
async function start() {
  if (vendor === 'bigquery') {
    const { startBigQueryServer } = await import(transpiledModule('test/support/bigquery-server.ts'));
    const server = await startBigQueryServer({ maxWaitMs: 10_000 });
    await server.createDataset('crm');
    await server.sql(table('crm.customers'));
    const dir = mkdtempSync(join(tmpdir(), 'audience-sync-bench-'));
    const keyFile = join(dir, 'key.json');
    writeFileSync(keyFile, JSON.stringify(server.serviceAccount()));
    return {
      config: { type: 'bigquery', projectId: server.projectId, apiEndpoint: server.url, keyFile, dataset: 'crm' },
      lastStatement: () => server.requests.filter((r) => r.method === 'jobs.query').at(-1)?.body?.query,
      transferred: () => server.transferred(),
      resetTransferred: () => server.resetTransferred(),
      exec: (sql) => server.sql(sql),
      stop: async () => {
        await server.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const server = vendor === 'snowflake' ? await startSnowflakeServer({ auth: 'pat', rowsPerPartition: pageRows }) : await startDatabricksServer({ rowsPerChunk: pageRows });
  await server.exec(table('customers'));
  return {
    config: server.sourceConfig(),
    lastStatement: () => (vendor === 'snowflake' ? server.statements.at(-1) : server.submissions.at(-1)?.statement),
    transferred: () => server.transferred(),
    resetTransferred: () => server.resetTransferred(),
    exec: (sql) => server.exec(sql),
    stop: () => server.stop(),
  };
}

const server = await start();
process.on('message', (m) => {
  if (m?.type === 'last-statement') process.send({ type: 'statement', sql: server.lastStatement() });
  if (m?.type === 'transferred') {
    process.send({ type: 'transferred', figures: server.transferred() });
    if (m.reset) server.resetTransferred();
  }
  if (m?.type === 'exec') {
    void Promise.resolve(server.exec(m.sql)).then(
      () => process.send({ type: 'executed' }),
      (e) => process.send({ type: 'executed', error: String(e?.message ?? e) }),
    );
  }
});
process.on('disconnect', () => void server.stop().then(() => process.exit(0)));
process.send({ type: 'ready', config: server.config });
