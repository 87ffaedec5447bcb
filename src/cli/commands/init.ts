/** `audience-sync init`: writes a commented audience-sync.yml and an example model. */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { createInterface, type Interface } from 'node:readline/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { CliError } from '../exit-codes.js';
import { DEFAULT_CONNECTION } from '../../config/index.js';
import { DATE_FORMAT_EXAMPLES, DATE_FORMATS, isDateFormat, type DateFormat } from '../../identity/index.js';
import { adAccountId as parseAdAccount, connectionName as parseConnectionName } from '../options.js';
import { stateSchemaGrant } from '../../sources/snapshot.js';
import { withConfigOption } from '../workspace.js';

export interface InitAnswers {
  /** Digits, without act_. */
  adAccountId: string;
  /** A named connection (written under `connections:`); absent or "default": the `meta:` block. */
  connection?: string;
  source: InitSource;
  audience: { id: string } | { create: string };
  syncName: string;
  /** Path of the model file, relative to the config's folder. */
  modelFile: string;
  /**
   * The model's date-of-birth column, mapped to DOBY, DOBM and DOBD; `dateFormat` when it holds text (a DATE or
   * TIMESTAMP column needs none).
   */
  birthDate?: { column: string; dateFormat?: DateFormat };
  /** warehouse: the warehouse finds the changes against a snapshot it keeps in `audience_sync` (not MySQL). */
  changeDetection?: 'local' | 'warehouse';
}

export type InitSource =
  | { type: 'duckdb'; path: string }
  | { type: 'postgres' | 'redshift'; url: string }
  | { type: 'mysql'; url: string; ca?: string }
  | { type: 'bigquery'; projectId: string; location?: string; keyFile?: string }
  | { type: 'snowflake'; account: string; user: string; warehouse: string; database: string; schema: string; role: string }
  | { type: 'databricks'; host: string; warehouseId: string; catalog: string; schema: string };
type SourceType = InitSource['type'];
const SOURCE_TYPES: readonly SourceType[] = ['duckdb', 'postgres', 'redshift', 'mysql', 'bigquery', 'snowflake', 'databricks'];

/** What init asks for a warehouse read through a URL, and the comments it writes next to it. */
const URL_SOURCES = {
  postgres: { ask: 'PostgreSQL URL', fallback: '${DATABASE_URL}', shape: 'postgres://user:password@host:5432/database' },
  mysql: { ask: 'MySQL or MariaDB URL', fallback: '${MYSQL_URL}', shape: 'mysql://user:password@host:3306/database' },
  redshift: { ask: 'Redshift URL', fallback: '${REDSHIFT_URL}', shape: 'postgres://user:password@cluster.region.redshift.amazonaws.com:5439/dev?sslmode=verify-full' },
} as const;

interface InitOptions {
  config: string;
  yes?: boolean;
  force?: boolean;
  source?: SourceType;
  path?: string;
  url?: string;
  projectId?: string;
  location?: string;
  keyFile?: string;
  ca?: string;
  adAccount?: string;
  connection?: string;
  audienceId?: string;
  createAudience?: string;
  syncName?: string;
  birthDateColumn?: string;
  dateFormat?: DateFormat | 'date';
  changeDetection?: 'local' | 'warehouse';
}

const DEFAULTS = { duckdbPath: './warehouse.duckdb', audienceName: 'audience-sync: customers', syncName: 'customers' };

export function register(program: Command): void {
  withConfigOption(
    program
      .command('init')
      .description('write a commented audience-sync.yml and an example model (asks on a terminal, or takes the flags below)')
      .option('-y, --yes', 'do not ask: use the flags and the defaults')
      .option('--force', 'overwrite existing files')
      .option('--source <type>', `warehouse type: ${SOURCE_TYPES.join(', ')}`, parseSourceType)
      .option('--path <file>', `DuckDB database file (default ${DEFAULTS.duckdbPath})`)
      .option('--url <url>', `PostgreSQL, MySQL or Redshift URL; keep passwords in the environment (default "\${DATABASE_URL}", "\${MYSQL_URL}", "\${REDSHIFT_URL}")`)
      .option('--ca <file>', 'MySQL: CA certificate file to check the server\'s TLS certificate against (turns TLS on)')
      .option('--project-id <id>', 'BigQuery: the Google Cloud project the query jobs run in', parseProjectId)
      .option('--location <location>', 'BigQuery: location of the datasets (e.g. EU, europe-west2); needed outside the US and EU multi-regions')
      .option('--key-file <file>', 'BigQuery: service-account key file (default: Application Default Credentials)')
      .option('--ad-account <id>', 'ad account id, e.g. act_1234567890', parseAdAccount)
      .option('--connection <name>', 'name of the Meta connection (its token is read from META_ACCESS_TOKEN_<NAME>); default: the meta: block', parseConnectionName)
      .option('--audience-id <id>', 'sync into this existing audience', parseAudienceId)
      .option('--create-audience <name>', 'create an audience with this name on the first run')
      .option('--sync-name <name>', `name of the sync (default ${DEFAULTS.syncName})`, parseSyncName)
      .option('--birth-date-column <column>', 'model column holding the date of birth (mapped to DOBY, DOBM and DOBD)', parseColumn)
      .option('--date-format <format>', `with --birth-date-column: "date" for a DATE or TIMESTAMP column, else how its text is written: ${DATE_FORMAT_CHOICES}`, parseDateFormat)
      .option('--change-detection <where>', 'local (default): compare the model with audience-sync\'s own state; warehouse: the warehouse compares it with a snapshot table in the schema audience_sync (for large models; not MySQL)', parseChangeDetection),
  ).action(async (opts: InitOptions) => {
    if (opts.audienceId !== undefined && opts.createAudience !== undefined) throw new CliError('pass either --audience-id or --create-audience, not both');
    const configPath = resolve(opts.config);
    const answers = await collectAnswers(opts);
    const modelPath = resolve(dirname(configPath), answers.modelFile);
    const existing = [configPath, modelPath].filter((p) => existsSync(p));
    if (existing.length > 0 && !opts.force) throw new CliError(`${existing.join(' and ')} already exist${existing.length === 1 ? 's' : ''}: pass --force to overwrite`);
    mkdirSync(dirname(modelPath), { recursive: true });
    writeFileSync(configPath, renderInitConfig(answers));
    writeFileSync(modelPath, renderExampleModel(answers));
    const shown = relative(process.cwd(), configPath) || configPath;
    console.log(
      [
        `wrote ${shown} and ${relative(process.cwd(), modelPath) || modelPath}`,
        ...(answers.changeDetection === 'warehouse' ? warehouseNote(answers.source.type) : []),
        'next:',
        `  export ${tokenVariable(answers.connection)}=...          # a token with ads_management (never put it in the file)`,
        `  audience-sync doctor -c ${shown}       # token, ad account, terms, model`,
        `  audience-sync plan ${answers.syncName} -c ${shown}   # dry run: what would be sent`,
        `  audience-sync sync ${answers.syncName} -c ${shown}`,
      ].join('\n'),
    );
  });
}

/**
 * The answers from the flags, asking on a terminal for what they leave out. `io` replaces the terminal (tests
 * answer through a stream).
 */
export async function collectAnswers(opts: InitOptions, io?: { input: NodeJS.ReadableStream; output: NodeJS.WritableStream }): Promise<InitAnswers> {
  const interactive = io !== undefined || (!opts.yes && process.stdin.isTTY === true);
  const rl = interactive ? createInterface(io ?? { input: process.stdin, output: process.stderr }) : undefined;
  try {
    const ask = async (question: string, fallback: string, parse: (v: string) => string = (v) => v): Promise<string> => {
      if (!rl) return fallback;
      for (;;) {
        const answer = (await rl.question(`${question}${fallback ? ` [${fallback}]` : ''}: `)).trim() || fallback;
        try {
          return parse(answer);
        } catch (e) {
          (io?.output ?? process.stderr).write(`  ${e instanceof Error ? e.message : String(e)}\n`);
        }
      }
    };
    const adAccountId = opts.adAccount ?? (rl ? await ask('Meta ad account id (act_...)', '', parseAdAccount) : undefined);
    if (adAccountId === undefined) throw new CliError('pass --ad-account act_... (init asks for it only on a terminal)');
    const source = await askSourceSettings(opts.source ?? (await askSource(rl, ask)), opts, ask, rl !== undefined);
    const audience = await chooseAudience(opts, rl, ask);
    const syncName = opts.syncName ?? DEFAULTS.syncName;
    const birthDate = await chooseBirthDate(opts, rl, ask);
    const changeDetection = await chooseChangeDetection(opts, source.type, rl, ask);
    // Asked last, so answering the questions before it stays the same whatever this one is.
    const connection = opts.connection ?? (await ask('Name of the Meta connection ("default" writes the meta: block; another name, e.g. a client, writes connections:)', DEFAULT_CONNECTION, parseConnectionName));
    return {
      adAccountId,
      ...(connection === DEFAULT_CONNECTION ? {} : { connection }),
      source,
      audience,
      syncName,
      modelFile: `models/${syncName}.sql`,
      ...(birthDate ? { birthDate } : {}),
      ...(changeDetection === 'warehouse' ? { changeDetection } : {}),
    };
  } finally {
    rl?.close();
  }
}

type Ask = (question: string, fallback: string, parse?: (v: string) => string) => Promise<string>;

async function askSource(rl: Interface | undefined, ask: Ask): Promise<SourceType> {
  if (!rl) return 'duckdb';
  return parseSourceType(await ask(`Warehouse type (${SOURCE_TYPES.join(', ')})`, 'duckdb', parseSourceType));
}

/** The fields of each warehouse type: a flag wins, else a question on a terminal, else the default. Secrets are never asked for: the config reads them from the environment. */
async function askSourceSettings(type: SourceType, opts: InitOptions, ask: Ask, interactive: boolean): Promise<InitSource> {
  switch (type) {
    case 'duckdb':
      return { type, path: opts.path ?? (await ask('DuckDB database file (":memory:" for a model that reads CSV or Parquet files)', DEFAULTS.duckdbPath)) };
    case 'postgres':
    case 'redshift':
    case 'mysql': {
      const { ask: what, fallback, shape } = URL_SOURCES[type];
      const url = opts.url ?? (await ask(`${what}, ${shape} (use \${VAR} to read it from the environment)`, fallback));
      if (type !== 'mysql') return { type, url };
      const ca = opts.ca ?? (await ask('CA certificate file for TLS (leave empty for none)', ''));
      return ca === '' ? { type, url } : { type, url, ca };
    }
    case 'bigquery': {
      const projectId = opts.projectId ?? (interactive ? await ask('Google Cloud project ID the query jobs run in', '', parseProjectId) : undefined);
      if (projectId === undefined) throw new CliError('pass --project-id with --source bigquery (init asks for it only on a terminal)');
      const location = opts.location ?? (await ask('Location of the datasets (e.g. EU, europe-west2; empty for the US and EU multi-regions)', ''));
      const keyFile = opts.keyFile ?? (await ask('Service-account key file (empty: Application Default Credentials)', ''));
      return { type, projectId, ...(location ? { location } : {}), ...(keyFile ? { keyFile } : {}) };
    }
    case 'snowflake':
      return {
        type,
        account: await ask('Snowflake account identifier (ORGNAME-ACCOUNTNAME)', 'myorg-myaccount'),
        user: await ask('Snowflake user (signs in with a key pair)', 'AUDIENCE_SYNC'),
        warehouse: await ask('Warehouse', 'COMPUTE_WH'),
        database: await ask('Database', 'ANALYTICS'),
        schema: await ask('Schema', 'PUBLIC'),
        role: await ask('Role', 'AUDIENCE_SYNC_READER'),
      };
    case 'databricks':
      return {
        type,
        host: await ask('Databricks workspace host', 'dbc-a1b2345c-d6e7.cloud.databricks.com'),
        warehouseId: await ask('SQL warehouse ID (SQL Warehouses → Connection details)', '1234567890abcdef'),
        catalog: await ask('Catalog', 'main'),
        schema: await ask('Schema', 'default'),
      };
  }
}

async function chooseAudience(opts: InitOptions, rl: Interface | undefined, ask: Ask): Promise<InitAnswers['audience']> {
  if (opts.audienceId !== undefined) return { id: opts.audienceId };
  if (opts.createAudience !== undefined) return { create: opts.createAudience };
  if (!rl) return { create: DEFAULTS.audienceName };
  const id = await ask('Existing audience id (leave empty to create a new audience on the first run)', '', (v) => (v === '' ? v : parseAudienceId(v)));
  if (id !== '') return { id };
  return { create: await ask('Name of the new audience', DEFAULTS.audienceName) };
}

/** Asked last (on a terminal); MySQL cannot keep a snapshot, so it is not asked there. */
async function chooseChangeDetection(opts: InitOptions, type: SourceType, rl: Interface | undefined, ask: Ask): Promise<'local' | 'warehouse'> {
  if (opts.changeDetection === 'warehouse' && type === 'mysql') throw new CliError('MySQL sources do not support --change-detection warehouse: leave it out (local)');
  if (opts.changeDetection !== undefined || !rl || type === 'mysql') return opts.changeDetection ?? 'local';
  return parseChangeDetection(
    await ask('Change detection: "local" (compare the model with audience-sync\'s own state here) or "warehouse" (the warehouse compares it with a snapshot table audience-sync keeps in the schema audience_sync: for millions of rows; needs CREATE in that schema)', 'local', parseChangeDetection),
  );
}

function parseChangeDetection(value: string): 'local' | 'warehouse' {
  const v = value.trim().toLowerCase();
  if (v === 'local' || v === 'warehouse') return v;
  throw new InvalidArgumentError('expected local or warehouse');
}

/** Printed when warehouse change detection was picked: what it keeps in the warehouse and the grant it needs. */
function warehouseNote(type: SourceType): string[] {
  return [
    'warehouse change detection: audience-sync keeps a snapshot table per sync (key hashes, fingerprints, the hashed cells sent to Meta)',
    `  in the schema audience_sync of your warehouse (sources.warehouse.stateSchema); ${stateSchemaGrant(type, 'audience_sync')}.`,
    '  `audience-sync doctor` checks it; docs/warehouse-change-detection.md explains it.',
  ];
}

const DATE_FORMAT_CHOICES = DATE_FORMATS.map((f) => `${f} (${DATE_FORMAT_EXAMPLES[f]})`).join(', ');

/**
 * The date-of-birth column and, when it holds text, its format. A text date is never guessed: 03/07/1985 is
 * March 7 in mdy and July 3 in dmy, so the format is asked for (or must be passed with --date-format).
 */
async function chooseBirthDate(opts: InitOptions, rl: Interface | undefined, ask: Ask): Promise<InitAnswers['birthDate']> {
  if (opts.dateFormat !== undefined && opts.birthDateColumn === undefined) throw new CliError('--date-format goes with --birth-date-column (the column it describes)');
  const column = opts.birthDateColumn ?? (rl ? await ask('Date-of-birth column in the model (leave empty if none)', '', (v) => (v === '' ? v : parseColumn(v))) : '');
  if (column === '') return undefined;
  let format = opts.dateFormat;
  if (format === undefined) {
    if (!rl) throw new CliError(`pass --date-format with --birth-date-column: "date" for a DATE or TIMESTAMP column, else how ${column} writes dates: ${DATE_FORMAT_CHOICES}`);
    format = parseDateFormat(
      await ask(`Is ${column} a DATE/TIMESTAMP column ("date"), or text? For text, how is March 7, 1985 written: ${DATE_FORMAT_CHOICES}`, 'date', parseDateFormat),
    );
  }
  return format === 'date' ? { column } : { column, dateFormat: format };
}

function parseDateFormat(value: string): DateFormat | 'date' {
  const v = value.trim().toLowerCase();
  if (v === 'date' || isDateFormat(v)) return v;
  throw new InvalidArgumentError(`expected "date" (a DATE or TIMESTAMP column) or one of ${DATE_FORMATS.join(', ')}`);
}

function parseColumn(value: string): string {
  const v = value.trim();
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(v)) throw new InvalidArgumentError('expected a column name (letters, digits and "_")');
  return v;
}

function parseSourceType(value: string): SourceType {
  const v = value.trim().toLowerCase();
  const type = SOURCE_TYPES.find((t) => t === v);
  if (type === undefined) throw new InvalidArgumentError(`expected ${SOURCE_TYPES.join(', ')}`);
  return type;
}

function parseProjectId(value: string): string {
  const v = value.trim();
  if (!/^[a-z0-9][a-z0-9.:-]*[a-z0-9]$/i.test(v)) throw new InvalidArgumentError('expected a Google Cloud project ID such as my-project');
  return v;
}

function parseAudienceId(value: string): string {
  const v = value.trim();
  if (!/^\d+$/.test(v)) throw new InvalidArgumentError('expected an audience id (digits; `audience-sync audiences list` shows them)');
  return v;
}

function parseSyncName(value: string): string {
  if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(value)) throw new InvalidArgumentError('expected a slug: lower-case letters, digits, "-" or "_"');
  return value;
}

/** YAML double-quoted string (JSON strings are valid YAML). */
const q = (s: string) => JSON.stringify(s);

/** The variable a connection's token is read from: META_ACCESS_TOKEN, or META_ACCESS_TOKEN_<NAME> for a named one. */
export function tokenVariable(connection: string | undefined): string {
  return connection === undefined || connection === DEFAULT_CONNECTION ? 'META_ACCESS_TOKEN' : `META_ACCESS_TOKEN_${connection.toUpperCase().replace(/-/g, '_')}`;
}

/** The `meta:` block, or a named connection under `connections:`, with its settings commented. */
function renderConnection(a: InitAnswers): string[] {
  const named = a.connection !== undefined && a.connection !== DEFAULT_CONNECTION;
  const pad = named ? '    ' : '  ';
  const settings = [
    `accessToken: "\${${tokenVariable(a.connection)}}"   # a token with ads_management; never write the token itself here`,
    `adAccountId: ${q(`act_${a.adAccountId}`)}`,
    'apiVersion: v25.0                     # `audience-sync doctor` warns before it expires',
    '# appSecret: "${META_APP_SECRET}"     # set it if your app requires appsecret_proof',
    '# graphUrl: "http://127.0.0.1:4010"   # point at `audience-sync emulator` for a dry run',
  ].map((line) => pad + line);
  if (!named) return ['meta:', ...settings];
  return [
    '# Meta connections by name, each with its own token; a sync names its own (connection:).',
    'connections:',
    `  ${a.connection}:`,
    ...settings,
  ];
}

/** The config `init` writes: every setting a first sync needs, each with a comment saying what it does. */
export function renderInitConfig(a: InitAnswers): string {
  const warehouse = a.changeDetection === 'warehouse';
  const source = ['  warehouse:', `    type: ${a.source.type}`, ...renderSourceSettings(a.source, warehouse)];
  const audience =
    'id' in a.audience
      ? [`    audience: { id: ${q(a.audience.id)} }     # an existing customer-list audience (quoted: ids are too long for YAML numbers)`]
      : [
          `    audience:                          # created on the first run; its id is kept in the state store`,
          `      create: { name: ${q(a.audience.create)}, valueBased: false }`,
          `    # audience: { id: "23851234567890123" }   # or sync into an existing audience`,
        ];
  return [
    '# audience-sync configuration. Reference: README.md "Configuration reference".',
    '# ${VAR} is read from the environment when the file is loaded.',
    'version: 1',
    '',
    '# audience-sync\'s own state (what was sent, run history). SQLite by default; postgres:// works too.',
    'state:',
    '  url: "sqlite://.audience-sync/state.db"',
    '',
    ...renderConnection(a),
    '',
    '# Warehouses, by name.',
    'sources:',
    ...source,
    '',
    'syncs:',
    `  - name: ${a.syncName}`,
    '    source: warehouse',
    ...(a.connection !== undefined && a.connection !== DEFAULT_CONNECTION ? [`    connection: ${a.connection}             # whose token this sync uses`] : []),
    `    modelFile: ${q(a.modelFile)}    # the SQL whose rows are the audience (or inline: model: "select ...")`,
    '    primaryKey: user_id                # one row per key; null and duplicate keys are rejected',
    ...audience,
    '    mode: mirror                       # mirror: add and remove | upsert: only add | delete: only remove | replace: rebuild each run',
    '    defaultPhoneCountry: US            # for phone numbers written without +country code',
    '    hashing: auto                      # auto: we normalize and hash; pre-hashed: columns hold SHA-256 already',
    ...dateFormatLines(a.birthDate),
    '    # Meta match key: model column. More identifiers mean more matched people.',
    '    mapping:',
    '      EXTERN_ID: user_id               # your id, sent as is; lets removals work without PII',
    '      EMAIL: email',
    '      PHONE: phone',
    '      FN: first_name',
    '      LN: last_name',
    '      COUNTRY: country',
    ...(a.birthDate ? ['DOBY', 'DOBM', 'DOBD'].map((key) => `      ${key}: ${a.birthDate!.column}`) : []),
    '      # ZIP: zip',
    '      # CT: city',
    '      # ST: state',
    ...(a.birthDate ? [] : ['      # DOBY: birth_year']),
    '      # GEN: gender',
    '      # MADID: mobile_ad_id            # not hashed',
    '      # LOOKALIKE_VALUE: lifetime_value # value-based audiences only',
    '    # schedule: "0 */6 * * *"          # cron, for `audience-sync serve`',
    '    # maxRemovalShare: 0.5             # refuse runs that would remove more than half the audience',
    "    # minCoverageRatio: 0.5            # refuse runs where a key's share of usable values halves",
    ...(warehouse
      ? ['    changeDetection: warehouse         # the warehouse finds the changed rows against its snapshot (sources.warehouse.stateSchema); only those leave it']
      : a.source.type === 'mysql'
        ? []
        : ['    # changeDetection: warehouse       # for millions of rows: the warehouse finds the changes (set stateSchema on the source first)']),
    '',
  ].join('\n');
}

/** A source's settings, with the grants its user needs as a comment (and the stateSchema with warehouse change detection). */
function renderSourceSettings(s: InitSource, warehouse: boolean): string[] {
  if (!warehouse) return sourceSettings(s);
  const grants: Record<Exclude<SourceType, 'mysql'>, string> = {
    duckdb: '# audience-sync creates it; the file is then opened read-write',
    postgres: '# CREATE SCHEMA audience_sync; GRANT USAGE, CREATE ON SCHEMA audience_sync TO audience_sync;',
    redshift: '# CREATE SCHEMA audience_sync; GRANT USAGE, CREATE ON SCHEMA audience_sync TO audience_sync;',
    bigquery: '# a dataset: create it in the location above and grant roles/bigquery.dataEditor on it',
    snowflake: '# GRANT USAGE, CREATE TABLE ON SCHEMA <database>.AUDIENCE_SYNC TO ROLE <role>;',
    databricks: '# GRANT USE SCHEMA, CREATE TABLE, SELECT, MODIFY ON SCHEMA <catalog>.audience_sync TO <principal>;',
  };
  const grant = s.type === 'mysql' ? '' : grants[s.type];
  return [...sourceSettings(s).map((line) => line.replace('opened read-only', 'opened read-write (the snapshot lives here)')), `    stateSchema: "audience_sync"       ${grant}`];
}

function sourceSettings(s: InitSource): string[] {
  switch (s.type) {
    case 'duckdb':
      return [`    path: ${q(s.path)}             # relative to this file; opened read-only`];
    case 'postgres':
      return [
        `    url: ${q(s.url)}             # read it from the environment: it holds a password`,
        '    # the user needs: GRANT USAGE ON SCHEMA public TO audience_sync; GRANT SELECT ON public.customers TO audience_sync;',
      ];
    case 'redshift':
      return [
        `    url: ${q(s.url)}             # ${URL_SOURCES.redshift.shape}; from the environment`,
        '    # the user needs: GRANT USAGE ON SCHEMA public TO audience_sync; GRANT SELECT ON public.customers TO audience_sync;',
      ];
    case 'mysql':
      return [
        `    url: ${q(s.url)}             # ${URL_SOURCES.mysql.shape}; from the environment`,
        s.ca === undefined ? '    # ssl: { ca: "./ca.pem" }          # TLS, checking the server\'s certificate against this CA' : `    ssl: { ca: ${q(s.ca)} }          # TLS, checking the server's certificate against this CA (relative to this file)`,
        "    # the user needs: GRANT SELECT ON shop.customers TO 'audience_sync'@'%';",
      ];
    case 'bigquery':
      return [
        `    projectId: ${q(s.projectId)}         # query jobs run (and are billed) here: grant roles/bigquery.jobUser on it`,
        s.location ? `    location: ${q(s.location)}           # where the model's datasets live` : '    # location: "europe-west2"           # needed for datasets outside the US and EU multi-regions',
        s.keyFile
          ? `    keyFile: ${q(s.keyFile)}             # service-account key, relative to this file; keep it out of version control`
          : '    # keyFile: "service-account.json"    # without it: GOOGLE_APPLICATION_CREDENTIALS, gcloud auth application-default login, or the metadata server',
        '    # dataset: "crm"                     # where the model\'s unqualified table names resolve',
        '    # The credentials also need roles/bigquery.dataViewer on the datasets the model reads.',
      ];
    case 'snowflake':
      return [
        `    account: ${q(s.account)}`,
        `    user: ${q(s.user)}`,
        '    privateKeyFile: "rsa_key.p8"       # key-pair sign-in; give the user its public key: ALTER USER … SET RSA_PUBLIC_KEY=\'…\'',
        '    # privateKeyPassphrase: "${SNOWFLAKE_KEY_PASSPHRASE}"   # if the key is encrypted',
        '    # token: "${SNOWFLAKE_TOKEN}"       # or a programmatic access token instead of the key',
        `    warehouse: ${q(s.warehouse)}`,
        `    database: ${q(s.database)}`,
        `    schema: ${q(s.schema)}`,
        `    role: ${q(s.role)}                 # needs USAGE on the warehouse, database and schema, and SELECT on the model's tables`,
      ];
    case 'databricks':
      return [
        `    host: ${q(s.host)}`,
        `    warehouseId: ${q(s.warehouseId)}`,
        '    token: "${DATABRICKS_TOKEN}"        # a personal access token; or a service principal (OAuth):',
        '    # clientId: "${DATABRICKS_CLIENT_ID}"',
        '    # clientSecret: "${DATABRICKS_CLIENT_SECRET}"',
        `    catalog: ${q(s.catalog)}`,
        `    schema: ${q(s.schema)}                # needs CAN USE on the warehouse, USE CATALOG/SCHEMA and SELECT on the model's tables`,
      ];
  }
}

/** The config's dateFormat line: set for a text date-of-birth column, a comment otherwise. */
function dateFormatLines(birthDate: InitAnswers['birthDate']): string[] {
  if (!birthDate) return ['    # dateFormat: iso                  # how a date-of-birth column holding text writes dates: iso, mdy, dmy, ymd or yyyymmdd'];
  if (!birthDate.dateFormat) return [`    # dateFormat: iso                  # ${birthDate.column} is a DATE/TIMESTAMP column: read as a date, whatever this says`];
  const example = DATE_FORMAT_EXAMPLES[birthDate.dateFormat];
  return [`    dateFormat: ${birthDate.dateFormat.padEnd(23)}# ${birthDate.column} holds text like ${example} (March 7, 1985)`];
}

export function renderExampleModel(a?: Pick<InitAnswers, 'birthDate'> & { source?: { type: SourceType } }): string {
  const sourceType = a?.source?.type ?? 'duckdb';
  return [
    '-- The rows of this query are the audience: one row per person, keyed by user_id.',
    '-- Columns are mapped to Meta match keys in audience-sync.yml (mapping:). Values can be raw:',
    '-- audience-sync trims, lower-cases, formats phones to E.164 and hashes them before sending.',
    'select',
    '  user_id,',
    '  email,',
    '  phone,',
    '  first_name,',
    '  last_name,',
    ...(a?.birthDate ? [`  ${a.birthDate.column},`] : []),
    '  country',
    ...(sourceType === 'bigquery' ? ['from crm.customers                   -- BigQuery names tables dataset.table (or project.dataset.table)'] : ['from customers']),
    "-- where marketing_opt_in            -- only people who agreed to this use of their data",
    '',
  ].join('\n');
}

