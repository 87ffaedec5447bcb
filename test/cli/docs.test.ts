import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { configSchema, loadConfig } from '../../src/config/index.js';
import { END, START, renderConfigReference, withReference } from '../../scripts/config-reference.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const readme = readFileSync(`${root}README.md`, 'utf8');

describe('README', () => {
  it('carries the configuration reference generated from the current schema', () => {
    expect(readme).toContain(START);
    expect(readme).toContain(END);
    // Fails when a setting or its description changed: run `npm run build && node scripts/config-reference.mjs`.
    expect(withReference(readme, renderConfigReference(configSchema))).toBe(readme);
  });

  it('the reference names every setting with its default', () => {
    const reference = renderConfigReference(configSchema);
    for (const setting of ['meta.adAccountId', 'meta.graphUrl', 'sources.<name>.path', 'syncs[].mapping', 'syncs[].audience.create.valueBased', 'syncs[].maxRemovalShare']) {
      expect(reference).toContain(`\`${setting}\``);
    }
    expect(reference).toMatch(/`syncs\[\]\.mode` \| `upsert` \\\| `delete` \\\| `mirror` \\\| `replace` \| `"mirror"`/);
    expect(reference).toContain('`"https://graph.facebook.com"`');
  });

  it('says how to install the CLI for use outside the clone, and the package makes that work', () => {
    expect(readme).toContain('npm ci && npm pack');
    expect(readme).toContain('npm install -g ./audience-sync-*.tgz');
    const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { name: string; bin: Record<string, string>; files: string[]; scripts: Record<string, string> };
    expect(pkg.name).toBe('audience-sync');
    expect(pkg.bin['audience-sync']).toBe('dist/cli/main.js');
    expect(pkg.files).toContain('dist');
    // `npm pack` runs prepare: the tarball carries a fresh build.
    expect(pkg.scripts.prepare).toMatch(/tsc -p tsconfig\.build\.json/);
  });

  it('explains AUDIENCE_SYNC_SECRET_KEY and AUDIENCE_SYNC_ADMIN_TOKEN: what they are for and how to make them', () => {
    const section = readme.slice(readme.indexOf('## Running the service'), readme.indexOf('## Exit codes'));
    expect(section).toMatch(/\*\*`AUDIENCE_SYNC_SECRET_KEY`\*\* encrypts .* Meta token that "Connect with\s+Facebook"/s);
    expect(section).toContain('`openssl rand -hex 32`');
    expect(section).toMatch(/\*\*`AUDIENCE_SYNC_ADMIN_TOKEN`\*\* guards the service/);
    expect(section).toContain('`openssl rand -hex 24`');
  });

  it('documents the exit codes the CLI uses', () => {
    for (const line of ['| 0 | success', '| 1 |', '| 2 | usage or config error', '| 3 | busy']) expect(readme).toContain(line);
  });
});

describe('examples/', () => {
  const env = {
    META_ACCESS_TOKEN: 'example-token',
    META_APP_SECRET: 'example-secret',
    CRM_DATABASE_URL: 'postgres://reader:secret@127.0.0.1:5432/crm',
    AUDIENCE_SYNC_STATE_URL: 'postgres://sync:secret@127.0.0.1:5432/audience_sync',
    SHOP_DATABASE_URL: 'mysql://audience_sync:secret@db.example.com:3306/shop',
    REDSHIFT_URL: 'postgres://audience_sync:secret@cluster.abc123.eu-west-1.redshift.amazonaws.com:5439/dev?sslmode=verify-full',
  };
  const files = readdirSync(`${root}examples`).filter((f) => f.endsWith('.yml'));

  it('has the common cases', () => {
    expect(files.sort()).toEqual(['csv-files.yml', 'duckdb-mirror.yml', 'mysql.yml', 'postgres-upsert.yml', 'redshift.yml', 'replace.yml', 'value-based.yml']);
  });

  it.each(files)('%s loads with loadConfig', (file) => {
    const config = loadConfig(`${root}examples/${file}`, env);
    expect(config.syncs.length).toBeGreaterThan(0);
    expect(readme).toContain(`examples/${file}`);
  });

  it('each example shows what its name says', () => {
    const load = (f: string) => loadConfig(`${root}examples/${f}`, env).syncs[0]!;
    expect(load('duckdb-mirror.yml')).toMatchObject({ mode: 'mirror' });
    expect(load('postgres-upsert.yml')).toMatchObject({ mode: 'upsert', audience: { create: { name: 'Newsletter sign-ups' } } });
    expect(load('value-based.yml')).toMatchObject({ audience: { create: { valueBased: true } }, mapping: { LOOKALIKE_VALUE: 'revenue_12m' } });
    expect(load('replace.yml')).toMatchObject({ mode: 'replace', hashing: 'pre-hashed' });
    const sources = (f: string) => Object.values(loadConfig(`${root}examples/${f}`, env).sources);
    expect(sources('csv-files.yml')).toEqual([{ type: 'duckdb', path: ':memory:' }]);
    expect(load('csv-files.yml').model).toContain("read_csv('exports/customers.csv'");
    expect(sources('mysql.yml')).toEqual([{ type: 'mysql', url: env.SHOP_DATABASE_URL, ssl: { ca: `${root}examples/certs/shop-ca.pem` } }]);
    expect(sources('redshift.yml')).toEqual([{ type: 'redshift', url: env.REDSHIFT_URL }]);
  });
});
