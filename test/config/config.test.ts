import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, configSchema, loadConfig, type ConfigIssue } from '../../src/config/index.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'as-config-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const TOKEN = 'EAAB-secret-token-value';
const env = { META_ACCESS_TOKEN: TOKEN, CRM_DATABASE_URL: 'postgres://u:hunter2@127.0.0.1:5432/crm' };

function write(text: string, name = 'audience-sync.yml'): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function issuesOf(path: string, e: Record<string, string | undefined> = env): ConfigIssue[] {
  try {
    loadConfig(path, e);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).issues];
  }
  throw new Error('expected a ConfigError');
}

const VALID = `
version: 1
meta: { accessToken: "\${META_ACCESS_TOKEN}", adAccountId: "act_123" }
sources:
  warehouse: { type: duckdb, path: ./warehouse.duckdb, memoryLimit: 1GB }
  crm: { type: postgres, url: "\${CRM_DATABASE_URL}" }
syncs:
  - name: loyalty
    source: warehouse
    model: "select * from customers"
    primaryKey: user_id
    audience: { id: "23851234567890123" }
    defaultPhoneCountry: us
    mapping: { EXTERN_ID: user_id, EMAIL: email, PHONE: phone }
    schedule: "*/30 * * * *"
  - name: crm-buyers
    source: crm
    modelFile: models/buyers.sql
    primaryKey: id
    audience: { create: { name: Buyers, valueBased: true } }
    mode: upsert
    mapping: { EMAIL: email, LOOKALIKE_VALUE: ltv }
`;

describe('loadConfig', () => {
  it('reads a valid config, applies defaults and resolves paths', () => {
    mkdirSync(join(dir, 'models'));
    writeFileSync(join(dir, 'models', 'buyers.sql'), 'select id, email, ltv from buyers\n');
    const config = loadConfig(write(VALID), env);
    expect(config.state.url).toBe(`sqlite://${join(dir, '.audience-sync/state.db')}`);
    expect(config.meta).toEqual({ accessToken: TOKEN, adAccountId: '123', apiVersion: 'v25.0', graphUrl: 'https://graph.facebook.com' });
    expect(config.sources.warehouse).toEqual({ type: 'duckdb', path: join(dir, 'warehouse.duckdb'), memoryLimit: '1GB' });
    expect(config.sources.crm).toEqual({ type: 'postgres', url: env.CRM_DATABASE_URL });
    const [loyalty, buyers] = config.syncs;
    expect(loyalty).toMatchObject({
      name: 'loyalty',
      mode: 'mirror',
      hashing: 'auto',
      maxAttempts: 5,
      maxRemovalShare: 0.5,
      batchRows: 10_000,
      defaultPhoneCountry: 'US',
      audience: { id: '23851234567890123' },
    });
    expect(buyers?.model).toBe('select id, email, ltv from buyers\n');
    expect(buyers?.modelFile).toBe(join(dir, 'models', 'buyers.sql'));
    expect(buyers?.audience).toEqual({ create: { name: 'Buyers', valueBased: true } });
  });

  it('keeps an absolute sqlite path, memory state and $${...} escapes', () => {
    const config = loadConfig(
      write(`version: 1
state: { url: "sqlite:///var/lib/as/state.db" }
meta: { accessToken: "tok-$\${NOT_A_VAR}", adAccountId: "987", graphUrl: "http://127.0.0.1:4000/" }
sources: { w: { type: duckdb, path: ":memory:" } }
syncs: [{ name: a, source: w, model: "select 1 as id", primaryKey: id, audience: { id: "1" }, mapping: { EXTERN_ID: id } }]
`),
      {},
    );
    expect(config.state.url).toBe('sqlite:///var/lib/as/state.db');
    expect(config.meta?.accessToken).toBe('tok-${NOT_A_VAR}');
    expect(config.meta?.graphUrl).toBe('http://127.0.0.1:4000');
    expect(config.sources.w).toEqual({ type: 'duckdb', path: ':memory:' });
  });

  it('reads a bigquery source: keyFile relative to the config folder, optional location and endpoint', () => {
    const config = loadConfig(
      write(`version: 1
meta: { accessToken: "t", adAccountId: "987" }
sources:
  bq: { type: bigquery, projectId: my-project, keyFile: keys/sa.json, location: EU, apiEndpoint: "http://127.0.0.1:9050/" }
  adc: { type: bigquery, projectId: "example.com:legacy-project" }
syncs: [{ name: a, source: bq, model: "select 1 as id", primaryKey: id, audience: { id: "1" }, mapping: { EXTERN_ID: id } }]
`),
      {},
    );
    expect(config.sources.bq).toEqual({ type: 'bigquery', projectId: 'my-project', keyFile: join(dir, 'keys', 'sa.json'), location: 'EU', apiEndpoint: 'http://127.0.0.1:9050' });
    expect(config.sources.adc).toEqual({ type: 'bigquery', projectId: 'example.com:legacy-project' });
    const issues = issuesOf(
      write(`version: 1
meta: { accessToken: "t", adAccountId: "987" }
sources:
  bq: { type: bigquery, keyFile: "", apiEndpoint: "bigquery.googleapis.com" }
syncs: [{ name: a, source: bq, model: "select 1 as id", primaryKey: id, audience: { id: "1" }, mapping: { EXTERN_ID: id } }]
`),
      {},
    );
    expect(issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
      expect.stringMatching(/^sources\.bq\.projectId: is required: the Google Cloud project/),
      expect.stringMatching(/^sources\.bq\.keyFile: keyFile must not be empty/),
      expect.stringMatching(/^sources\.bq\.apiEndpoint: must be an http\(s\) URL/),
    ]);
  });

  it('names an unset environment variable and where it is used', () => {
    const issues = issuesOf(write(VALID.replace('models/buyers.sql', 'models/x.sql')), { CRM_DATABASE_URL: env.CRM_DATABASE_URL });
    expect(issues).toContainEqual(
      expect.objectContaining({ path: 'meta.accessToken', message: expect.stringContaining('META_ACCESS_TOKEN is not set') }),
    );
  });

  it('collects every problem, each with its path and line, and never prints secrets', () => {
    const path = write(`version: 2
meta: { accessToken: "\${META_ACCESS_TOKEN}", adAccountId: 12345678901234567, apiVersion: "25" }
sources:
  crm: { type: postgres, url: "mysql://u:hunter2@x/db" }
  lake: { type: oracle }
  duck: { type: duckdb, path: w.duckdb, memoryLimit: lots }
syncs:
  - name: Bad Name
    source: nowhere
    model: "select 1"
    modelFile: x.sql
    primaryKey: id
    audience: { id: 23851234567890123 }
    mode: sideways
    mapping: { email: email, LOOKALIKE_VALUE: v }
    schedule: "every day"
    batchRows: 20000
    maxRemovalShare: 2
    colour: blue
  - name: dup
    source: crm
    model: "select 1"
    primaryKey: id
    audience: { create: { name: x } }
    mapping: { LOOKALIKE_VALUE: v }
  - name: dup
    source: crm
    primaryKey: id
    audience: { id: "1", create: { name: y } }
    mapping: { EMAIL: e }
`);
    let error: ConfigError | undefined;
    try {
      loadConfig(path, env);
    } catch (err) {
      error = err as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const byPath = new Map(error!.issues.map((i) => [i.path, i]));
    const expected: Array<[string, RegExp]> = [
      ['version', /must be 1/],
      ['meta.adAccountId', /quoted string/],
      ['meta.apiVersion', /v25\.0/],
      ['sources.crm.url', /postgres:\/\//],
      ['sources.lake.type', /duckdb.*postgres/],
      ['sources.duck.memoryLimit', /256MB/],
      ['syncs[0].name', /slug/],
      ['syncs[0].source', /unknown source "nowhere"/],
      ['syncs[0]', /exactly one of model/],
      ['syncs[0].audience.id', /quoted string/],
      ['syncs[0].mode', /must be one of .*upsert/],
      ['syncs[0].mapping.email', /did you mean EMAIL/],
      ['syncs[0].schedule', /cron/],
      ['syncs[0].batchRows', /10000/],
      ['syncs[0].maxRemovalShare', /between 0 and 1/],
      ['syncs[0].colour', /unknown setting/],
      ['syncs[1].mapping', /at least one identifier/],
      ['syncs[1].mapping.LOOKALIKE_VALUE', /value-based/],
      ['syncs[2].name', /duplicate sync name "dup"/],
      ['syncs[2].audience', /exactly one of audience.id/],
    ];
    for (const [p, re] of expected) {
      expect(byPath.get(p)?.message, p).toMatch(re);
    }
    expect(byPath.get('syncs[0].mapping.email')?.line).toBe(15);
    expect(byPath.get('version')?.line).toBe(1);
    const lines = error!.issues.map((i) => i.line ?? 0);
    expect(lines).toEqual([...lines].sort((a, b) => a - b));
    expect(error!.message).not.toContain('hunter2');
    expect(error!.message).not.toContain(TOKEN);
    expect(error!.message).toContain('syncs[0].mapping.email (line 15)');
  });

  it('reads MySQL and Redshift sources: secrets from the environment, TLS files next to the config, sslmode required', () => {
    const e = { ...env, MYSQL_URL: 'mysql://reader:s3cret@db.example.com:3306/shop', REDSHIFT_URL: 'postgres://reader:s3cret@r.example.com:5439/dev?sslmode=verify-full' };
    const config = (sources: string) => `version: 1
meta: { accessToken: t, adAccountId: "1" }
sources:
${sources}
syncs: [{ name: a, source: w, model: "select 1", primaryKey: id, audience: { id: "1" }, mapping: { EMAIL: e } }]
`;
    const loaded = loadConfig(write(config('  w: { type: mysql, url: "${MYSQL_URL}", ssl: { ca: certs/ca.pem, rejectUnauthorized: true } }\n  r: { type: redshift, url: "${REDSHIFT_URL}" }')), e);
    expect(loaded.sources.w).toEqual({ type: 'mysql', url: e.MYSQL_URL, ssl: { ca: join(dir, 'certs', 'ca.pem'), rejectUnauthorized: true } });
    expect(loaded.sources.r).toEqual({ type: 'redshift', url: e.REDSHIFT_URL });

    const issues = issuesOf(
      write(config('  w: { type: mysql, url: "postgres://x@h/db", ssl: { ca: "", verify: yes } }\n  r: { type: redshift, url: "postgres://reader:s3cret@r.example.com:5439/dev" }')),
      e,
    );
    const byPath = new Map(issues.map((i) => [i.path, i.message]));
    expect(byPath.get('sources.w.url')).toMatch(/mysql:\/\//);
    expect(byPath.get('sources.w.ssl.ca')).toMatch(/must not be empty/);
    expect(byPath.get('sources.w.ssl.verify')).toMatch(/unknown setting/);
    expect(byPath.get('sources.r.url')).toMatch(/sslmode=verify-full/);
    expect(JSON.stringify(issues)).not.toContain('s3cret');
  });

  it('reports a missing model file, YAML syntax errors and a missing config file', () => {
    expect(issuesOf(write(VALID))).toContainEqual(
      expect.objectContaining({ path: 'syncs[1].modelFile', message: expect.stringContaining('file not found') }),
    );
    const syntax = issuesOf(write('version: 1\nmeta: { accessToken: x\n'));
    expect(syntax[0]?.message).toMatch(/YAML syntax error/);
    expect(syntax[0]).toMatchObject({ line: 3, column: 1 });
    const tab = issuesOf(write('version: 1\nmeta:\n\tadAccountId: "1"\n'));
    expect(tab[0]).toMatchObject({ message: expect.stringMatching(/YAML syntax error: Tabs are not allowed/), line: 3, column: 1 });
    expect(issuesOf(join(dir, 'missing.yml'))[0]?.message).toMatch(/cannot read the config file \(file not found\)/);
  });

  it('requires a value for value-based audiences', () => {
    const issues = issuesOf(
      write(`version: 1
meta: { accessToken: t, adAccountId: "1" }
sources: { w: { type: duckdb, path: w.duckdb } }
syncs: [{ name: a, source: w, model: "select 1", primaryKey: id, audience: { create: { name: A, valueBased: true } }, mapping: { EMAIL: e } }]
`),
    );
    expect(issues).toEqual([expect.objectContaining({ path: 'syncs[0].mapping', message: expect.stringMatching(/LOOKALIKE_VALUE/) })]);
  });

  it('reads changeDetection (default local) and the source stateSchema warehouse change detection needs', () => {
    const base = (sources: string, syncs: string) => `version: 1
meta: { accessToken: "t", adAccountId: "987" }
sources:
${sources}
syncs:
${syncs}
`;
    const sync = (name: string, source: string, extra = '') =>
      `  - { name: ${name}, source: ${source}, model: "select 1 as id", primaryKey: id, audience: { id: "1" }, mapping: { EXTERN_ID: id }${extra} }`;
    const config = loadConfig(
      write(base('  w: { type: duckdb, path: w.duckdb, stateSchema: audience_sync }\n  pg: { type: postgres, url: "postgres://u@h/db", stateSchema: as_state }', [sync('a', 'w', ', changeDetection: warehouse'), sync('b', 'pg')].join('\n'))),
      {},
    );
    expect(config.syncs.map((s) => s.changeDetection)).toEqual(['warehouse', 'local']);
    expect(config.sources.w).toMatchObject({ stateSchema: 'audience_sync' });
    expect(config.sources.pg).toEqual({ type: 'postgres', url: 'postgres://u@h/db', stateSchema: 'as_state' });

    const issues = issuesOf(
      write(
        base(
          '  w: { type: duckdb, path: w.duckdb }\n  my: { type: mysql, url: "mysql://u@h/db" }\n  pg: { type: postgres, url: "postgres://u@h/db", stateSchema: "bad name" }\n  ok: { type: postgres, url: "postgres://u@h/db", stateSchema: s }',
          [sync('a', 'w', ', changeDetection: warehouse'), sync('b', 'my', ', changeDetection: warehouse'), sync('c', 'pg', ', changeDetection: sometimes'), sync('d-1', 'ok', ', changeDetection: warehouse'), sync('d_1', 'ok', ', changeDetection: warehouse'), sync('d-1_stage', 'ok', ', changeDetection: warehouse')].join('\n'),
        ),
      ),
      {},
    );
    expect(issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
      expect.stringMatching(/^sources\.pg\.stateSchema: must be a schema \(dataset\) name/),
      expect.stringMatching(/^syncs\[0\]\.changeDetection: warehouse change detection keeps a snapshot table in the warehouse: set sources\.w\.stateSchema/),
      expect.stringMatching(/^syncs\[1\]\.changeDetection: MySQL sources do not support warehouse change detection/),
      expect.stringMatching(/^syncs\[2\]\.changeDetection: must be one of "local"\|"warehouse"/),
      expect.stringMatching(/^syncs\[4\]\.name: syncs "d-1" and "d_1" would share the table s\.audience_sync_d_1 in the warehouse/),
      expect.stringMatching(/^syncs\[5\]\.name: syncs "d-1" and "d-1_stage" would share the table s\.audience_sync_d_1_stage/),
    ]);
  });

  it('exports a schema whose fields carry descriptions', () => {
    const json = JSON.stringify(z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }));
    expect(json).toContain('Meta match key (EMAIL');
    expect(configSchema.shape.syncs.description).toBe('The syncs to run.');
  });
});
