import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { PassThrough } from 'node:stream';
import { collectAnswers, renderInitConfig, type InitSource } from '../../src/cli/commands/init.js';
import { runCli } from './run-cli.js';

describe('audience-sync init', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'audience-sync-init-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const env = {
    ...process.env,
    META_ACCESS_TOKEN: 'token-from-env',
    DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/crm',
    DATABRICKS_TOKEN: 'dapi-from-env',
    MYSQL_URL: 'mysql://u:p@127.0.0.1:3306/shop',
    REDSHIFT_URL: 'postgres://u:p@example.redshift.amazonaws.com:5439/dev?sslmode=verify-full',
  };
  const init = (...args: string[]) => runCli(['init', ...args], { cwd: dir, env });

  it('writes a commented DuckDB config and a model that load as they are', async () => {
    const r = await init('--yes', '--ad-account', 'act_1234567890', '--create-audience', 'Loyal customers');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('wrote audience-sync.yml and models/customers.sql');
    const text = readFileSync(join(dir, 'audience-sync.yml'), 'utf8');
    expect(text).toMatch(/^# audience-sync configuration/);
    expect(text).toContain('accessToken: "${META_ACCESS_TOKEN}"');
    expect(text).not.toContain('token-from-env');
    const config = loadConfig(join(dir, 'audience-sync.yml'), env);
    expect(config.meta?.adAccountId).toBe('1234567890');
    expect(config.sources.warehouse).toEqual({ type: 'duckdb', path: join(dir, 'warehouse.duckdb') });
    const [sync] = config.syncs;
    expect(sync).toMatchObject({ name: 'customers', mode: 'mirror', primaryKey: 'user_id', audience: { create: { name: 'Loyal customers', valueBased: false } } });
    expect(sync?.model).toContain('from customers');
    expect(sync?.mapping).toMatchObject({ EXTERN_ID: 'user_id', EMAIL: 'email', PHONE: 'phone' });
  });

  it('writes a named connection (its own token variable) that the sync names, from --connection or the last question', async () => {
    const r = await init('--yes', '--ad-account', 'act_77', '--connection', 'client-b');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('export META_ACCESS_TOKEN_CLIENT_B=...');
    const text = readFileSync(join(dir, 'audience-sync.yml'), 'utf8');
    expect(text).not.toMatch(/^meta:/m);
    expect(text).toMatch(/^connections:\n {2}client-b:\n {4}accessToken: "\$\{META_ACCESS_TOKEN_CLIENT_B\}"/m);
    const config = loadConfig(join(dir, 'audience-sync.yml'), { ...env, META_ACCESS_TOKEN_CLIENT_B: 'b-token' });
    expect(config.connections['client-b']).toMatchObject({ accessToken: 'b-token', adAccountId: '77' });
    expect(config.syncs[0]).toMatchObject({ connection: 'client-b', adAccountId: '77' });
    expect((await init('--yes', '--force', '--ad-account', '1', '--connection', 'Not A Slug')).stderr).toContain('expected a connection name');

    // On a terminal it is the last question; the default keeps the meta: block.
    const input = new PassThrough();
    const output = new PassThrough();
    // The answers: ad account, source, path, audience, name, date of birth, change detection, connection.
    const answers = ['act_42', 'duckdb', '', '', 'Loyal', '', '', 'client-c'];
    output.setEncoding('utf8').on('data', (chunk: string) => {
      if (/: $/.test(chunk)) input.write(`${answers.shift() ?? ''}\n`);
    });
    expect(await collectAnswers({ config: 'audience-sync.yml' }, { input, output })).toMatchObject({ adAccountId: '42', connection: 'client-c' });
    const defaults = await collectAnswers({ config: 'audience-sync.yml', yes: true, adAccount: '1' });
    expect(defaults.connection).toBeUndefined();
  });

  it('writes a postgres config syncing into an existing audience', async () => {
    const r = await init('--yes', '--source', 'postgres', '--ad-account', '42', '--audience-id', '23851234567890123', '--sync-name', 'crm-leads', '-c', 'conf/sync.yml');
    expect(r.code).toBe(0);
    const config = loadConfig(join(dir, 'conf', 'sync.yml'), env);
    expect(config.sources.warehouse).toEqual({ type: 'postgres', url: env.DATABASE_URL });
    expect(config.syncs[0]).toMatchObject({ name: 'crm-leads', audience: { id: '23851234567890123' }, modelFile: join(dir, 'conf', 'models', 'crm-leads.sql') });
  });

  it('writes a BigQuery config from flags, and asks for the project id it cannot guess', async () => {
    const r = await init('--yes', '--source', 'bigquery', '--project-id', 'my-project', '--location', 'EU', '--key-file', 'sa.json', '--ad-account', '42');
    expect(r.code).toBe(0);
    const config = loadConfig(join(dir, 'audience-sync.yml'), env);
    expect(config.sources.warehouse).toEqual({ type: 'bigquery', projectId: 'my-project', location: 'EU', keyFile: join(dir, 'sa.json') });
    const text = readFileSync(join(dir, 'audience-sync.yml'), 'utf8');
    expect(text).toContain('roles/bigquery.jobUser');
    expect(text).toContain('roles/bigquery.dataViewer');
    expect(config.syncs[0]?.model).toContain('from crm.customers');
    const missing = await init('--yes', '--force', '--source', 'bigquery', '--ad-account', '42');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('pass --project-id with --source bigquery');
  });

  it('writes MySQL and Redshift configs, with the grants to ask for', async () => {
    const mysql = await init('--yes', '--source', 'mysql', '--ca', 'certs/ca.pem', '--ad-account', '42');
    expect(mysql.code).toBe(0);
    const text = readFileSync(join(dir, 'audience-sync.yml'), 'utf8');
    expect(text).toContain('url: "${MYSQL_URL}"');
    expect(text).toContain("GRANT SELECT ON shop.customers TO 'audience_sync'@'%'");
    expect(loadConfig(join(dir, 'audience-sync.yml'), env).sources.warehouse).toEqual({ type: 'mysql', url: env.MYSQL_URL, ssl: { ca: join(dir, 'certs', 'ca.pem') } });

    const redshift = await init('--yes', '--force', '--source', 'redshift', '--ad-account', '42');
    expect(redshift.code).toBe(0);
    expect(readFileSync(join(dir, 'audience-sync.yml'), 'utf8')).toContain('GRANT USAGE ON SCHEMA public TO audience_sync');
    expect(loadConfig(join(dir, 'audience-sync.yml'), env).sources.warehouse).toEqual({ type: 'redshift', url: env.REDSHIFT_URL });

    const unknown = await init('--yes', '--force', '--source', 'oracle', '--ad-account', '42');
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('expected duckdb, postgres, redshift, mysql, bigquery');
  });

  it('explains warehouse change detection when it is picked: stateSchema, the grant to give, what is kept there', async () => {
    const r = await init('--yes', '--source', 'postgres', '--ad-account', '42', '--change-detection', 'warehouse');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('warehouse change detection: audience-sync keeps a snapshot table per sync');
    expect(r.stdout).toContain('GRANT USAGE, CREATE ON SCHEMA audience_sync TO');
    const text = readFileSync(join(dir, 'audience-sync.yml'), 'utf8');
    expect(text).toContain('stateSchema: "audience_sync"       # CREATE SCHEMA audience_sync; GRANT USAGE, CREATE ON SCHEMA audience_sync TO audience_sync;');
    const config = loadConfig(join(dir, 'audience-sync.yml'), env);
    expect(config.sources.warehouse).toEqual({ type: 'postgres', url: env.DATABASE_URL, stateSchema: 'audience_sync' });
    expect(config.syncs[0]?.changeDetection).toBe('warehouse');

    // The default stays local, with the setting shown as a comment; MySQL cannot do it.
    expect((await init('--yes', '--force', '--ad-account', '42')).code).toBe(0);
    expect(loadConfig(join(dir, 'audience-sync.yml'), env).syncs[0]?.changeDetection).toBe('local');
    expect(readFileSync(join(dir, 'audience-sync.yml'), 'utf8')).toContain('# changeDetection: warehouse');
    const mysql = await init('--yes', '--force', '--source', 'mysql', '--ad-account', '42', '--change-detection', 'warehouse');
    expect(mysql.code).toBe(2);
    expect(mysql.stderr).toContain('MySQL sources do not support --change-detection warehouse');
  });

  it('refuses to overwrite without --force, and to guess the ad account', async () => {
    writeFileSync(join(dir, 'audience-sync.yml'), 'mine\n');
    const refused = await init('--yes', '--ad-account', '1');
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('already exists: pass --force to overwrite');
    expect(readFileSync(join(dir, 'audience-sync.yml'), 'utf8')).toBe('mine\n');
    expect((await init('--yes', '--ad-account', '1', '--force')).code).toBe(0);

    const noAccount = await init('--yes', '--force');
    expect(noAccount.code).toBe(2);
    expect(noAccount.stderr).toContain('pass --ad-account act_...');
    const badAccount = await init('--yes', '--ad-account', 'abc');
    expect(badAccount.code).not.toBe(0);
    expect(badAccount.stderr).toContain('expected an ad account id');
  });

  it('renders configs that load for every choice of source and audience', () => {
    mkdirSync(join(dir, 'models'));
    writeFileSync(join(dir, 'models', 's1.sql'), 'select 1');
    const sources: InitSource[] = [
      { type: 'duckdb', path: 'data/w.duckdb' },
      { type: 'postgres', url: '${DATABASE_URL}' },
      { type: 'mysql', url: '${MYSQL_URL}' },
      { type: 'mysql', url: '${MYSQL_URL}', ca: 'ca.pem' },
      { type: 'redshift', url: '${REDSHIFT_URL}' },
      { type: 'bigquery', projectId: 'p-1' },
      { type: 'snowflake', account: 'myorg-myaccount', user: 'AUDIENCE_SYNC', warehouse: 'COMPUTE_WH', database: 'ANALYTICS', schema: 'PUBLIC', role: 'READER' },
      { type: 'databricks', host: 'dbc-a1b2345c-d6e7.cloud.databricks.com', warehouseId: '1234567890abcdef', catalog: 'main', schema: 'default' },
    ];
    for (const source of sources) {
      for (const [audience, changeDetection] of [[{ id: '123' }, 'local'], [{ create: 'a "quoted" name: with colon' }, source.type === 'mysql' ? 'local' : 'warehouse']] as const) {
        const path = join(dir, 'render.yml');
        writeFileSync(path, renderInitConfig({ adAccountId: '99', source, audience, syncName: 's1', modelFile: 'models/s1.sql', changeDetection }));
        const config = loadConfig(path, env);
        expect(config.syncs[0]?.changeDetection).toBe(changeDetection);
        expect(config.syncs[0]?.audience).toEqual('id' in audience ? audience : { create: { name: audience.create, valueBased: false } });
        if (source.type === 'snowflake') expect(config.sources.warehouse).toMatchObject({ ...source, privateKeyFile: join(dir, 'rsa_key.p8') });
        if (source.type === 'databricks') expect(config.sources.warehouse).toMatchObject({ ...source, token: env.DATABRICKS_TOKEN, disposition: 'EXTERNAL_LINKS' });
      }
    }
  });

  it('maps a date-of-birth column and writes its dateFormat when it holds text', async () => {
    const r = await init('--yes', '--ad-account', '1', '--birth-date-column', 'birth_date', '--date-format', 'mdy');
    expect(r.code).toBe(0);
    const text = readFileSync(join(dir, 'audience-sync.yml'), 'utf8');
    expect(text).toMatch(/^ {4}dateFormat: mdy {20}# birth_date holds text like 03\/07\/1985 \(March 7, 1985\)$/m);
    const [sync] = loadConfig(join(dir, 'audience-sync.yml'), env).syncs;
    expect(sync).toMatchObject({ dateFormat: 'mdy', mapping: { DOBY: 'birth_date', DOBM: 'birth_date', DOBD: 'birth_date' } });
    expect(readFileSync(join(dir, 'models', 'customers.sql'), 'utf8')).toContain('  birth_date,');

    // A DATE column needs no format: the default stays, and the comment says why.
    expect((await init('--yes', '--force', '--ad-account', '1', '--birth-date-column', 'dob', '--date-format', 'date')).code).toBe(0);
    const dated = loadConfig(join(dir, 'audience-sync.yml'), env).syncs[0];
    expect(dated).toMatchObject({ dateFormat: 'iso', mapping: { DOBY: 'dob' } });
    expect(readFileSync(join(dir, 'audience-sync.yml'), 'utf8')).toContain('# dateFormat: iso                  # dob is a DATE/TIMESTAMP column');
  });

  it('never guesses a text date format: without a terminal it must be passed', async () => {
    const r = await init('--yes', '--ad-account', '1', '--birth-date-column', 'birth_date');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('pass --date-format with --birth-date-column: "date" for a DATE or TIMESTAMP column, else how birth_date writes dates: iso (1985-03-07), mdy (03/07/1985)');
    const bad = await init('--yes', '--ad-account', '1', '--birth-date-column', 'birth_date', '--date-format', 'dd/mm/yyyy');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('expected "date" (a DATE or TIMESTAMP column) or one of iso, mdy, dmy, ymd, yyyymmdd');
  });

  it('on a terminal, asks for the format when the date-of-birth column holds text', async () => {
    /** Answers each prompt as it appears (readline drops lines typed before a question). */
    const converse = async (answers: string[]) => {
      const input = new PassThrough();
      const output = new PassThrough();
      const prompts: string[] = [];
      output.setEncoding('utf8').on('data', (chunk: string) => {
        prompts.push(chunk);
        if (/: $/.test(chunk)) input.write(`${answers.shift() ?? ''}\n`);
      });
      const answersGiven = await collectAnswers({ config: 'audience-sync.yml' }, { input, output });
      return { answers: answersGiven, prompts: prompts.join('') };
    };
    // ad account, warehouse type, DuckDB file, audience id (empty: create), audience name, DOB column, its format.
    const text = await converse(['act_42', 'duckdb', '', '', 'Loyal', 'birth_date', 'dd.mm.yyyy', 'dmy']);
    expect(text.answers.birthDate).toEqual({ column: 'birth_date', dateFormat: 'dmy' });
    expect(text.prompts).toContain('Is birth_date a DATE/TIMESTAMP column ("date"), or text? For text, how is March 7, 1985 written: iso (1985-03-07), mdy (03/07/1985), dmy (07/03/1985)');
    expect(text.prompts).toContain('expected "date" (a DATE or TIMESTAMP column) or one of'); // the bad answer was asked again

    const dated = await converse(['act_42', 'duckdb', '', '', 'Loyal', 'born_on', '']);
    expect(dated.answers.birthDate).toEqual({ column: 'born_on' });
    const none = await converse(['act_42', 'duckdb', '', '', 'Loyal', '']);
    expect(none.answers.birthDate).toBeUndefined();
    expect(none.prompts).not.toContain('DATE/TIMESTAMP');
    // The last question: where changes are found (local unless asked otherwise).
    expect(none.answers.changeDetection).toBeUndefined();
    expect(none.prompts).toContain('Change detection: "local"');
    const warehouse = await converse(['act_42', 'duckdb', '', '', 'Loyal', '', 'warehouse']);
    expect(warehouse.answers.changeDetection).toBe('warehouse');
  });
});
