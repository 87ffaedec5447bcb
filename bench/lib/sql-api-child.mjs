// Runs one of the local warehouse API servers (from the build) in its own process, so a bench's CPU
// time counts the client only. Talks to its parent over IPC:
//   → { type: 'ready', url, config }   ← { type: 'last-statement' } → { type: 'statement', sql }
import { startSnowflakeServer } from '../../dist/devtools/snowflake-server.js';
import { startDatabricksServer } from '../../dist/devtools/databricks-server.js';

const [vendor, rowsText, pageRowsText] = process.argv.slice(2);
const rows = Number(rowsText);
const pageRows = Number(pageRowsText);
const server =
  vendor === 'snowflake'
    ? await startSnowflakeServer({ auth: 'pat', rowsPerPartition: pageRows })
    : await startDatabricksServer({ rowsPerChunk: pageRows });
await server.exec(`create table customers as
  select i as user_id, 'user' || i || '@example.com' as email, '+1555' || lpad(i::varchar, 7, '0') as phone,
         'Name' || (i % 1000) as first_name, 'US' as country, (i % 500) * 1.5 as value
  from range(${rows}) t(i)`);
const lastStatement = () => (vendor === 'snowflake' ? server.statements.at(-1) : server.submissions.at(-1)?.statement);
process.on('message', (m) => {
  if (m?.type === 'last-statement') process.send({ type: 'statement', sql: lastStatement() });
});
process.on('disconnect', () => void server.stop().then(() => process.exit(0)));
process.send({ type: 'ready', url: server.url, config: server.sourceConfig() });
