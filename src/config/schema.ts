// The shape of `audience-sync.yml` after `${VAR}` expansion. Field-local rules live here; rules
// that relate fields to each other (source references, unique names, mapping vs audience) live in
// `semantics.ts` so they run even when some unrelated field is malformed.
import { z } from 'zod';
import countries from 'i18n-iso-countries';
import { Cron } from 'croner';
import { DATE_FORMATS } from '../identity/dob.js';
import { CHANGE_DETECTIONS, HASHING_MODES, SYNC_MODES } from './types.js';
import { alertsSchema } from './alerts.js';

export const DEFAULT_STATE_URL = 'sqlite://.audience-sync/state.db';
export const DEFAULT_API_VERSION = 'v25.0';
export const DEFAULT_GRAPH_URL = 'https://graph.facebook.com';
export const DEFAULT_MAX_ATTEMPTS = 5;
export const DEFAULT_MAX_REMOVAL_SHARE = 0.5;
export const DEFAULT_MIN_COVERAGE_RATIO = 0.5;
export const DEFAULT_MAX_CONCURRENT_PER_AD_ACCOUNT = 2;
export const DEFAULT_JOB_TIMEOUT_SECONDS = 3600;
export const MAX_JOB_TIMEOUT_SECONDS = 23 * 3600;
export const DEFAULT_POLL_INTERVAL_SECONDS = 2;
/** Meta accepts at most 10,000 users per request. */
export const MAX_BATCH_ROWS = 10_000;

const SYNC_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** A string that must not come from a YAML number, which would lose digits. */
function quotedDigits(what: string, pattern: RegExp, example: string) {
  return z
    .string({
      error: (issue) =>
        typeof issue.input === 'number'
          ? `write the ${what} as a quoted string (e.g. "${example}"): YAML reads unquoted digits as a number and loses precision beyond 15 digits`
          : issue.input === undefined
            ? `the ${what} is required`
            : `the ${what} must be a string`,
    })
    .trim()
    .regex(pattern, `must be the ${what}'s digits (e.g. "${example}")`);
}

function isValidCron(pattern: string): boolean {
  try {
    new Cron(pattern, { paused: true }).stop();
    return true;
  } catch {
    return false;
  }
}

const nonEmpty = (what: string) => z.string().trim().min(1, `${what} must not be empty`);

/** The schema (dataset) warehouse change detection may write its snapshot tables to. */
const warehouseStateSchema = z
  .string()
  .trim()
  .regex(/^[A-Za-z_][A-Za-z0-9_$-]{0,127}$/, 'must be a schema (dataset) name such as "audience_sync": letters, digits, "_", "$" or "-"')
  .optional()
  .describe('Schema (dataset) audience-sync may create and write its snapshot tables in, for syncs with changeDetection: warehouse (e.g. "audience_sync"); see docs/warehouse-change-detection.md.');

export const stateSchema = z
  .strictObject({
    url: z
      .string()
      .trim()
      .regex(
        /^(sqlite:|postgres(ql)?:\/\/)/,
        'must start with sqlite:// (e.g. "sqlite://.audience-sync/state.db"), be "sqlite::memory:", or be a postgres:// URL',
      )
      .default(DEFAULT_STATE_URL)
      .describe('Where audience-sync keeps its own state. Relative sqlite paths are resolved against the config file folder.'),
  })
  .describe('State store settings.');

const accessTokenSchema = z
  .string({ error: 'is required: set it to "${META_ACCESS_TOKEN}" and export that variable' })
  .trim()
  .min(1, 'is empty: set a Meta access token with ads_management permission')
  .optional()
  .describe('Meta access token with ads_management permission. Read it from the environment: "${META_ACCESS_TOKEN}". Optional with appId: "Connect with Facebook" in `audience-sync serve` stores one.');

/** The settings of one Meta connection after its token and ad account: the `meta:` block, or an entry of `connections:`. */
const connectionFields = {
  apiVersion: z
    .string()
    .regex(/^v\d+\.\d+$/, 'must look like v25.0')
    .default(DEFAULT_API_VERSION)
    .describe('Graph API version.'),
  graphUrl: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://graph.facebook.com' })
    .transform((v) => v.replace(/\/+$/, ''))
    .default(DEFAULT_GRAPH_URL)
    .describe('Graph API base URL (point it at the emulator for tests).'),
  appSecret: z
    .string()
    .trim()
    .min(1, 'is empty: remove it or set the app secret')
    .optional()
    .describe('App secret; when set, requests carry appsecret_proof.'),
  appId: quotedDigits('app id', /^\d+$/, '1234567890')
    .optional()
    .describe('Meta app ID for "Connect with Facebook" in `audience-sync serve` (needs appSecret).'),
};

const adAccountIdSchema = quotedDigits('ad account id', /^(act_)?\d+$/, 'act_1234567890').transform((v) => v.replace(/^act_/, ''));

function checkConnection(ctx: z.core.ParsePayload<{ accessToken?: string | undefined; appId?: string | undefined; appSecret?: string | undefined }>): void {
  const c = ctx.value;
  if (c.accessToken === undefined && c.appId === undefined) {
    ctx.issues.push({ code: 'custom', input: c, path: ['accessToken'], message: 'is required: set it to "${META_ACCESS_TOKEN}" and export that variable (or set appId and appSecret to connect with Facebook from `audience-sync serve`)' });
  }
  if (c.appId !== undefined && c.appSecret === undefined) {
    ctx.issues.push({ code: 'custom', input: c, path: ['appSecret'], message: 'is required with appId: "Connect with Facebook" exchanges the login code with the app secret; set it to "${META_APP_SECRET}"' });
  }
}

export const metaSchema = z
  .strictObject({
    accessToken: accessTokenSchema,
    adAccountId: adAccountIdSchema.describe('Ad account that owns the audiences, with or without the act_ prefix.'),
    ...connectionFields,
  })
  .check(checkConnection)
  .describe('Meta (Facebook) Marketing API settings: the connection named "default", which syncs naming no connection use (required unless the config has connections:).');

export const CONNECTION_NAME = SYNC_NAME;

export const connectionSchema = z
  .strictObject({
    accessToken: accessTokenSchema,
    adAccountId: adAccountIdSchema.optional().describe("Ad account of this connection's syncs that name none."),
    ...connectionFields,
  })
  .check(checkConnection)
  .describe('One Meta connection: its own token (and app), used by the syncs that name it.');

export const serverSchema = z
  .strictObject({
    host: nonEmpty('server.host').optional().describe('Address `audience-sync serve` binds (default 127.0.0.1); other than loopback it needs AUDIENCE_SYNC_ADMIN_TOKEN.'),
    port: z.int().min(0, 'must be a port number (0–65535)').max(65535, 'must be a port number (0–65535)').optional().describe('Port of `audience-sync serve` (default 8080).'),
    publicUrl: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://sync.example.com' })
      .transform((v) => v.replace(/\/+$/, ''))
      .optional()
      .describe('URL people reach the dashboard at, when behind a proxy; the Facebook login redirect goes back to it, and alerts link to the run pages under it.'),
    publicMetrics: z.boolean().optional().describe('Serve /metrics without the admin token even when AUDIENCE_SYNC_ADMIN_TOKEN is set (by default a scraper sends it as a bearer token).'),
  })
  .describe('Settings of the always-on service (`audience-sync serve`).');

export const fleetSchema = z
  .strictObject({
    maxConcurrentPerAdAccount: z
      .int()
      .min(1, 'must be at least 1')
      .default(DEFAULT_MAX_CONCURRENT_PER_AD_ACCOUNT)
      .describe('Syncs of one ad account running at once across all workers (keeps the fleet inside Meta\'s rate limits).'),
    jobTimeoutSeconds: z
      .int()
      .min(10, 'must be at least 10 seconds')
      .max(MAX_JOB_TIMEOUT_SECONDS, `must be at most ${MAX_JOB_TIMEOUT_SECONDS} (23 hours)`)
      .default(DEFAULT_JOB_TIMEOUT_SECONDS)
      .describe('A run taking longer is presumed lost (its worker died) and its job is retried by another worker; set it above your longest run.'),
    pollIntervalSeconds: z
      .number()
      .min(0.5, 'must be at least 0.5 seconds')
      .default(DEFAULT_POLL_INTERVAL_SECONDS)
      .describe('How often an idle worker looks for a due run.'),
  })
  .describe('Worker fleet settings (`audience-sync worker` and `serve --scheduler-only`; needs PostgreSQL state).');

export const duckdbSourceSchema = z
  .strictObject({
    type: z.literal('duckdb'),
    stateSchema: warehouseStateSchema,
    path: nonEmpty('the DuckDB path').describe('Database file, relative to the config file folder, or ":memory:" for a model that only reads files (read_csv, read_parquet; relative file names are found in the config file folder).'),
    memoryLimit: z
      .string()
      .trim()
      .regex(/^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i, 'must be a size such as "256MB" or "2GB"')
      .optional()
      .describe("Memory DuckDB may use to run the model (default 96MB); beyond it, sorting spills to the run's private folder under .audience-sync/tmp."),
  })
  .describe('An embedded DuckDB database (opened read-only, or read-write when a sync uses changeDetection: warehouse).');

export const postgresSourceSchema = z
  .strictObject({
    type: z.literal('postgres'),
    stateSchema: warehouseStateSchema,
    url: z
      .string()
      .trim()
      .regex(/^postgres(ql)?:\/\/\S+$/, 'must be a postgres:// URL, e.g. "${CRM_DATABASE_URL}"')
      .describe('Connection URL; read it from the environment, it usually holds a password.'),
  })
  .describe('A PostgreSQL database, read through a server-side cursor.');

export const bigquerySourceSchema = z
  .strictObject({
    type: z.literal('bigquery'),
    stateSchema: warehouseStateSchema,
    projectId: z
      .string({ error: 'is required: the Google Cloud project the query jobs run (and are billed) in, e.g. "my-project"' })
      .trim()
      .regex(/^[a-z0-9][a-z0-9.:-]*[a-z0-9]$/i, 'must be a Google Cloud project ID such as "my-project"')
      .describe('Project the query jobs run (and are billed) in; the model names its tables as dataset.table or project.dataset.table.'),
    location: nonEmpty('location')
      .optional()
      .describe('Location of the model\'s datasets, e.g. "EU" or "europe-west2"; needed for datasets outside the US and EU multi-regions.'),
    dataset: nonEmpty('dataset')
      .optional()
      .describe('Dataset the model\'s unqualified table names resolve in (like a default schema); without it, the model names its tables as dataset.table.'),
    keyFile: nonEmpty('keyFile')
      .optional()
      .describe('Service-account key file (JSON), relative to the config file folder. Without it: GOOGLE_APPLICATION_CREDENTIALS, `gcloud auth application-default login`, or the metadata server on Google Cloud.'),
    apiEndpoint: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL such as https://bigquery.googleapis.com' })
      .transform((v) => v.replace(/\/+$/, ''))
      .optional()
      .describe('BigQuery API root (default https://bigquery.googleapis.com); for private endpoints and tests.'),
  })
  .describe('A Google BigQuery project, read through the BigQuery REST API.');

const httpsUrl = (example: string) =>
  z
    .string()
    .trim()
    .regex(/^https?:\/\/[^\s/]+(:\d+)?\/?$/, `must be a base URL such as "${example}" (scheme, host and port only)`);

export const snowflakeSourceSchema = z
  .strictObject({
    type: z.literal('snowflake'),
    stateSchema: warehouseStateSchema,
    account: nonEmpty('account')
      .regex(/^[A-Za-z0-9_.-]+$/, 'must be an account identifier such as "myorg-myaccount" (or a locator such as "xy12345.us-east-1")')
      .describe('Account identifier: ORGNAME-ACCOUNTNAME, or the account locator with its region (xy12345.us-east-1).'),
    user: nonEmpty('user').describe('User to sign in as (a service user with a key pair is best).'),
    privateKeyFile: nonEmpty('privateKeyFile').optional().describe("PEM file of the user's private key (PKCS#8), relative to the config file folder."),
    privateKey: nonEmpty('privateKey').optional().describe('The private key PEM itself; read it from the environment: "${SNOWFLAKE_PRIVATE_KEY}".'),
    privateKeyPassphrase: z.string().optional().describe('Passphrase of an encrypted private key: "${SNOWFLAKE_PRIVATE_KEY_PASSPHRASE}".'),
    token: nonEmpty('token').optional().describe('A programmatic access token or an OAuth access token, instead of a key pair: "${SNOWFLAKE_TOKEN}".'),
    tokenType: z
      .enum(['PROGRAMMATIC_ACCESS_TOKEN', 'OAUTH'])
      .default('PROGRAMMATIC_ACCESS_TOKEN')
      .describe('What `token` is: PROGRAMMATIC_ACCESS_TOKEN or OAUTH.'),
    warehouse: nonEmpty('warehouse').optional().describe("Warehouse that runs the model (default: the user's DEFAULT_WAREHOUSE). Case-sensitive, as SHOW WAREHOUSES prints it."),
    database: nonEmpty('database').optional().describe("Database unqualified names resolve in (default: the user's DEFAULT_NAMESPACE)."),
    schema: nonEmpty('schema').optional().describe('Schema unqualified names resolve in.'),
    role: nonEmpty('role').optional().describe("Role to run the model as (default: the user's DEFAULT_ROLE)."),
    statementTimeoutSeconds: z.int().min(1, 'must be at least 1 second').optional().describe("Cancel the model's statement after this long (default: the account's STATEMENT_TIMEOUT_IN_SECONDS)."),
    url: httpsUrl('https://myorg-myaccount.snowflakecomputing.com').optional().describe('Base URL of the SQL API (default: https://<account>.snowflakecomputing.com).'),
  })
  .refine((s) => [s.privateKeyFile, s.privateKey, s.token].filter((v) => v !== undefined).length === 1, {
    message: 'set exactly one of privateKeyFile, privateKey (key-pair authentication) or token (programmatic access or OAuth token)',
  })
  .describe('A Snowflake account, read through the SQL API v2 with key-pair (JWT) or token authentication.');

export const databricksSourceSchema = z
  .strictObject({
    type: z.literal('databricks'),
    stateSchema: warehouseStateSchema,
    host: nonEmpty('host')
      .regex(/^(https:\/\/)?[A-Za-z0-9.-]+\/?$/, 'must be the workspace host name, e.g. "dbc-a1b2345c-d6e7.cloud.databricks.com"')
      .describe('Workspace host name, e.g. dbc-a1b2345c-d6e7.cloud.databricks.com.'),
    warehouseId: nonEmpty('warehouseId').describe('ID of the SQL warehouse that runs the model (SQL Warehouses → Connection details).'),
    token: nonEmpty('token').optional().describe('Personal access token: "${DATABRICKS_TOKEN}".'),
    clientId: nonEmpty('clientId').optional().describe("OAuth client ID of a service principal (machine-to-machine), with clientSecret."),
    clientSecret: nonEmpty('clientSecret').optional().describe('OAuth secret of the service principal: "${DATABRICKS_CLIENT_SECRET}".'),
    catalog: nonEmpty('catalog').optional().describe('Catalog unqualified names resolve in (like USE CATALOG).'),
    schema: nonEmpty('schema').optional().describe('Schema unqualified names resolve in (like USE SCHEMA).'),
    disposition: z
      .enum(['EXTERNAL_LINKS', 'INLINE'])
      .default('EXTERNAL_LINKS')
      .describe('EXTERNAL_LINKS reads results from cloud storage links (any size); INLINE reads them from the workspace (at most 25 MiB per model, for workspaces that block storage links).'),
    url: httpsUrl('https://dbc-a1b2345c-d6e7.cloud.databricks.com').optional().describe('Base URL of the workspace API (default: https://<host>).'),
  })
  .refine((s) => (s.token !== undefined) !== (s.clientId !== undefined || s.clientSecret !== undefined) && (s.clientId === undefined) === (s.clientSecret === undefined), {
    message: 'set either token (a personal access token) or both clientId and clientSecret (OAuth for a service principal)',
  })
  .describe('A Databricks SQL warehouse, read through the SQL Statement Execution API 2.0.');

const tlsFile = (what: string) => nonEmpty(`ssl.${what}`).describe(`${what === 'ca' ? 'CA certificate' : what === 'cert' ? 'Client certificate' : 'Client key'} file (PEM), relative to the config file folder.`);

export const mysqlSourceSchema = z
  .strictObject({
    type: z.literal('mysql'),
    url: z
      .string()
      .trim()
      .regex(/^(mysql|mariadb):\/\/\S+$/, 'must be a mysql:// URL, e.g. "${MYSQL_URL}" holding mysql://user:password@host:3306/database')
      .describe('Connection URL mysql://user:password@host:3306/database; read it from the environment, it holds a password. `?ssl-mode=REQUIRED`, `VERIFY_CA` or `VERIFY_IDENTITY` turns on TLS.'),
    ssl: z
      .strictObject({
        ca: tlsFile('ca').optional(),
        cert: tlsFile('cert').optional(),
        key: tlsFile('key').optional(),
        rejectUnauthorized: z.boolean().optional().describe('Refuse a server whose certificate is not trusted or does not name its host (default true).'),
      })
      .optional()
      .describe('TLS to the server (checks its certificate and host name unless rejectUnauthorized is false).'),
  })
  .describe('A MySQL 8 or MariaDB 10.6+ database, read as one streamed query.');

export const redshiftSourceSchema = z
  .strictObject({
    type: z.literal('redshift'),
    stateSchema: warehouseStateSchema,
    url: z
      .string()
      .trim()
      .regex(/^postgres(ql)?:\/\/\S+$/, 'must be a postgres:// URL, e.g. "${REDSHIFT_URL}" holding postgres://user:password@cluster.region.redshift.amazonaws.com:5439/dev?sslmode=verify-full')
      .refine((url) => /[?&]sslmode=/.test(url), 'must say how to use TLS: add ?sslmode=verify-full (sslmode=disable only inside a private network)')
      .describe('Connection URL postgres://user:password@host:5439/database?sslmode=verify-full; read it from the environment, it holds a password.'),
  })
  .describe('An Amazon Redshift cluster or Serverless workgroup, read over the PostgreSQL protocol through a cursor.');

export const sourceSchema = z.discriminatedUnion(
  'type',
  [duckdbSourceSchema, postgresSourceSchema, redshiftSourceSchema, mysqlSourceSchema, bigquerySourceSchema, snowflakeSourceSchema, databricksSourceSchema],
  { error: 'type must be "duckdb", "postgres", "redshift", "mysql", "bigquery", "snowflake" or "databricks"' },
);

export const audienceSchema = z
  .strictObject({
    id: quotedDigits('audience id', /^\d+$/, '23851234567890123').optional().describe('ID of an existing custom audience.'),
    create: z
      .strictObject({
        name: nonEmpty('the audience name').describe('Name of the audience to create.'),
        description: z.string().optional().describe('Description of the audience to create.'),
        valueBased: z.boolean().default(false).describe('Create a value-based audience (needs LOOKALIKE_VALUE).'),
      })
      .optional()
      .describe('Create the audience on the first run and remember its ID in the state store.'),
  })
  .refine((a) => (a.id === undefined) !== (a.create === undefined), {
    message: 'set exactly one of audience.id (an existing audience) or audience.create (a new one)',
  })
  .describe('The custom audience to keep in step: { id: "..." } or { create: { name: ... } }.');

export const syncSchema = z
  .strictObject({
    name: z
      .string()
      .regex(SYNC_NAME, 'must be a slug: lower-case letters, digits, "-" or "_", starting with a letter or digit')
      .describe('Unique name of the sync (used on the command line and in the state store).'),
    source: nonEmpty('source').describe('Name of an entry under sources.'),
    connection: z
      .string()
      .regex(CONNECTION_NAME, 'must be the name of an entry under connections (a slug), or "default" for the meta: block')
      .optional()
      .describe('Meta connection whose token the sync uses (default: the meta: block, or connections.default).'),
    adAccountId: adAccountIdSchema.optional().describe("Ad account of the sync's audience (default: its connection's adAccountId)."),
    model: nonEmpty('model').optional().describe('SQL query whose rows are the audience.'),
    modelFile: nonEmpty('modelFile').optional().describe('File holding the SQL query, relative to the config file folder.'),
    primaryKey: nonEmpty('primaryKey').describe('Column that identifies a row of the model.'),
    audience: audienceSchema,
    mode: z.enum(SYNC_MODES).default('mirror').describe('upsert: only add; delete: only remove the people deleted from the model; mirror: add and remove; replace: rebuild every run.'),
    mapping: z
      .record(z.string(), nonEmpty('the column name'))
      .describe('Meta match key (EMAIL, PHONE, EXTERN_ID, ...) to model column.'),
    hashing: z.enum(HASHING_MODES).default('auto').describe('auto: hash plain values, pass hashes; pre-hashed: every hashed key must already be a SHA-256 hex digest.'),
    dateFormat: z
      .enum(DATE_FORMATS, { error: `must be one of ${DATE_FORMATS.join(', ')}` })
      .default('iso')
      .describe('How DOBY, DOBM and DOBD read dates written as text: iso (1985-03-07), mdy (03/07/1985), dmy (07/03/1985), ymd (1985/03/07) or yyyymmdd (19850307). DATE and TIMESTAMP columns are read as dates whatever it says.'),
    defaultPhoneCountry: z
      .string()
      .trim()
      .toUpperCase()
      .refine((c) => /^[A-Z]{2}$/.test(c) && countries.isValid(c), 'must be an ISO 3166-1 alpha-2 country code such as US or GB')
      .optional()
      .describe('Region used to read phone numbers without a country code.'),
    defaultLookalikeValue: z
      .number()
      .nonnegative('must be a number ≥ 0')
      .optional()
      .describe('LOOKALIKE_VALUE used when a row has none (value-based audiences).'),
    schedule: z
      .string()
      .trim()
      .refine(isValidCron, 'is not a valid cron expression (e.g. "*/30 * * * *")')
      .optional()
      .describe('Cron expression for scheduled runs.'),
    maxAttempts: z.int().min(1, 'must be at least 1').default(DEFAULT_MAX_ATTEMPTS).describe('Deliveries of a record before it is reported as failed.'),
    maxRemovalShare: z
      .number()
      .min(0, 'must be between 0 and 1')
      .max(1, 'must be between 0 and 1')
      .default(DEFAULT_MAX_REMOVAL_SHARE)
      .describe('Refuse a run that would remove more than this share of the audience (override with --force).'),
    minCoverageRatio: z
      .number()
      .min(0, 'must be between 0 and 1')
      .max(1, 'must be between 0 and 1')
      .default(DEFAULT_MIN_COVERAGE_RATIO)
      .describe(
        "Refuse a run when, for a mapped key, the share of the model's rows with a usable value falls below this fraction of its share at the last successful run (override with --force; 0 turns the check off).",
      ),
    batchRows: z
      .int()
      .min(1, 'must be at least 1')
      .max(MAX_BATCH_ROWS, `must be at most ${MAX_BATCH_ROWS} (Meta's limit per request)`)
      .default(MAX_BATCH_ROWS)
      .describe('Users per request to Meta.'),
    changeDetection: z
      .enum(CHANGE_DETECTIONS)
      .default('local')
      .describe("local: every run reads the whole model and compares it with audience-sync's own state; warehouse: the warehouse compares the model with a snapshot table in the source's stateSchema, and only changed rows leave it (not for MySQL)."),
  })
  .describe('One model kept in step with one audience.');

export const configSchema = z
  .strictObject({
    version: z.literal(1, 'must be 1 (the only config version this release reads)'),
    state: stateSchema.default({ url: DEFAULT_STATE_URL }),
    meta: metaSchema.optional(),
    connections: z
      .record(z.string(), connectionSchema)
      .optional()
      .describe('Named Meta connections, each with its own token; syncs name theirs with `connection:`.'),
    sources: z.record(z.string(), sourceSchema).describe('Warehouses, by name.'),
    syncs: z.array(syncSchema).min(1, 'add at least one sync').describe('The syncs to run.'),
    server: serverSchema.optional(),
    fleet: fleetSchema.optional(),
    alerts: alertsSchema.optional(),
  })
  .describe('audience-sync configuration (audience-sync.yml).');

/** The config as written, after `${VAR}` expansion and defaults. */
export type RawConfig = z.output<typeof configSchema>;
