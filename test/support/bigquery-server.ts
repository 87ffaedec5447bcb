// A local BigQuery for tests: node:http on 127.0.0.1 speaking the BigQuery REST API v2, with an
// in-memory DuckDB running the (translated) GoogleSQL, and the OAuth 2.0 token endpoint a
// service-account key file names in its `token_uri`.
//
// It follows, as read in December 2026:
// - BigQuery API v2 discovery document, revision 20260922 (QueryRequest, QueryResponse,
//   GetQueryResultsResponse, Job, JobReference, JobStatus, ErrorProto, TableSchema, TableRow,
//   DataFormatOptions, JobCancelResponse).
// - https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/query,
//   .../jobs/getQueryResults, .../jobs/get and .../jobs/cancel (paths, parameters, `location`
//   required for jobs outside the US and EU multi-regions, `requestId` idempotency,
//   `jobComplete: false` after `timeoutMs`, `useLegacySql` defaulting to true).
// - https://cloud.google.com/bigquery/docs/paging-results (pageToken, maxResults, 10 MB pages).
// - https://cloud.google.com/bigquery/docs/error-messages (reasons and their HTTP codes) and
//   https://cloud.google.com/apis/design/errors (the envelope `{error: {code, message, errors, status}}`).
// - https://developers.google.com/identity/protocols/oauth2/service-account#httprest (the RS256
//   JWT grant: `iss`, `scope`, `aud` = token URL, `iat`, `exp` at most one hour later) and RFC 6749
//   §6 (the refresh_token grant of authorized-user files).
// - https://cloud.google.com/compute/docs/access/authenticate-workloads#applications (the metadata
//   server's token endpoint, `Metadata-Flavor: Google`).
// - DDL and DML as query jobs (jobs.query, QueryResponse.numDmlAffectedRows and dmlStats
//   {insertedRowCount, deletedRowCount, updatedRowCount}; JobStatistics2.statementType and
//   ddlOperationPerformed CREATE | SKIP | DROP), without schema or rows; CREATE SCHEMA makes a dataset
//   (in its OPTIONS(location), else the request's location, else US).
// - https://cloud.google.com/bigquery/docs/reference/standard-sql/dml-syntax (DELETE needs WHERE:
//   "DELETE must have a WHERE clause") and .../lexical (string literals: backslash escapes \a \b \f \n
//   \r \t \v \\ \? \" \' \` \ooo \xhh \uhhhh \Uhhhhhhhh, any other is an error; no line break inside
//   '...'; literals separated by whitespace are one, '' is an error).
// - https://cloud.google.com/bigquery/quotas (a query of at most 1,024K characters).
// Emulated from observed answers: a write without roles/bigquery.dataEditor fails 403 accessDenied
// "Permission bigquery.tables.updateData denied on table p:d.t" (tables.create on a dataset,
// datasets.create on the project): refuseWrites. Rows and bytes sent are counted for the benches.
// QueryRequest.defaultDataset resolves unqualified table names after FROM/JOIN in that dataset.
// A request the real service would reject is rejected here, with the service's status and reason;
// a valid request using a feature this server does not implement gets 501, never a silent default.
import { generateKeyPairSync, randomBytes, verify, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { statementKind, TrafficMeter, writeTarget, type StatementKind, type Transferred, type WriteTarget } from '../../src/devtools/sql-api-kit.js';
import {
  DuckDBBlobValue,
  DuckDBDateValue,
  DuckDBDecimalValue,
  DuckDBInstance,
  DuckDBListValue,
  DuckDBStructValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  DuckDBTimeValue,
  DuckDBTypeId,
  type DuckDBConnection,
  type DuckDBListType,
  type DuckDBStructType,
  type DuckDBType,
  type DuckDBValue,
} from '@duckdb/node-api';

export const BIGQUERY_SCOPE = 'https://www.googleapis.com/auth/bigquery';
export const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const PAGE_BYTES = 10 * 1024 * 1024;
const MULTI_REGIONS = new Set(['US', 'EU']);
/** Tokens Google issues live an hour. */
const TOKEN_LIFETIME_S = 3599;

export interface ServiceAccountKeyFile {
  type: 'service_account';
  project_id: string;
  private_key_id: string;
  private_key: string;
  client_email: string;
  client_id: string;
  auth_uri: string;
  token_uri: string;
}

export interface AuthorizedUserFile {
  type: 'authorized_user';
  client_id: string;
  client_secret: string;
  refresh_token: string;
  token_uri: string;
}

export interface ErrorProto {
  reason: string;
  message: string;
}

/** What a request was, for assertions: the API method and its parameters. */
export interface LoggedRequest {
  method: 'jobs.query' | 'jobs.getQueryResults' | 'jobs.get' | 'jobs.cancel' | 'token' | 'metadata.token' | 'unknown';
  path: string;
  query: Record<string, string>;
  body?: unknown;
}

export interface JobInfo {
  jobId: string;
  location: string;
  state: 'RUNNING' | 'DONE';
  query: string;
  principal: string;
  errorResult?: ErrorProto;
  cancelRequested: boolean;
  pagesServed: number;
}

export interface BigQueryServerOptions {
  projectId?: string;
  /** Longest a request waits for a running job (real: up to timeoutMs, about 10 s by default). */
  maxWaitMs?: number;
}

export interface PageFailure {
  /** Pages of a job served before the failures start (the first page, from jobs.query, counts). */
  after: number;
  /** How many requests fail (default: all of them). */
  times?: number;
  /** `reset` drops the connection; otherwise an error answer (default 503 backendError). */
  error?: 'reset' | { status: number; reason: string; message: string };
}

interface Dataset {
  location: string;
}

interface AccessToken {
  principal: string;
  scopes: string[];
  expiresAt: number;
}

interface Job {
  jobId: string;
  location: string;
  principal: string;
  query: string;
  state: 'RUNNING' | 'DONE';
  errorResult?: ErrorProto;
  errorStatus?: number;
  table?: string;
  fields?: FieldSchema[];
  types?: DuckDBType[];
  totalRows?: number;
  bytes: number;
  created: number;
  ended?: number;
  cancelRequested: boolean;
  pagesServed: number;
  settled: Promise<void>;
  pageTokenSalt: string;
  /** JobStatistics2.statementType: SELECT, INSERT, DELETE, CREATE_TABLE, CREATE_SCHEMA, DROP_TABLE, ... */
  statementType: string;
  /** Rows a DML statement changed (numDmlAffectedRows, dmlStats). */
  dmlAffected?: number;
  /** JobStatistics2.ddlOperationPerformed: CREATE, SKIP, DROP, REPLACE. */
  ddlOperation?: string;
}

interface FieldSchema {
  name: string;
  type: string;
  mode: 'NULLABLE' | 'REPEATED';
  fields?: FieldSchema[];
}

/** An answer of the API that is an error: sent as Google's error envelope. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly extra: Record<string, string> = {},
  ) {
    super(message);
  }
}

const STATUS_NAME: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ALREADY_EXISTS',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  501: 'UNIMPLEMENTED',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

/** HTTP status of a failed job's error, by reason (error-messages page). */
const REASON_STATUS: Record<string, number> = {
  accessDenied: 403,
  backendError: 500,
  internalError: 500,
  invalid: 400,
  invalidQuery: 400,
  notFound: 404,
  quotaExceeded: 403,
  rateLimitExceeded: 403,
  resourcesExceeded: 400,
  responseTooLarge: 403,
  stopped: 400,
  timeout: 400,
};

export async function startBigQueryServer(opts: BigQueryServerOptions = {}): Promise<BigQueryServer> {
  const server = new BigQueryServer(opts);
  await server.start();
  return server;
}

export class BigQueryServer {
  readonly projectId: string;
  url = '';
  /** Every request received, in order. */
  readonly requests: LoggedRequest[] = [];

  private readonly maxWaitMs: number;
  private http: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private instance!: DuckDBInstance;
  private admin!: DuckDBConnection;
  private readonly datasets = new Map<string, Dataset>();
  private readonly serviceAccounts = new Map<string, { keyId: string; publicKey: KeyObject; revoked: boolean }>();
  private readonly users = new Map<string, { clientSecret: string; refreshToken: string; principal: string; revoked: boolean }>();
  private readonly tokens = new Map<string, AccessToken>();
  private readonly jobs = new Map<string, Job>();
  private readonly requestIds = new Map<string, { jobId: string; query: string; at: number }>();
  private readonly jobUsers = new Set<string>();
  private readonly jobUserRevoked = new Set<string>();
  private readonly readRevoked = new Set<string>();
  /** Datasets the principals may read but not write (no roles/bigquery.dataEditor). */
  private readonly readOnlyDatasets = new Set<string>();
  private traffic: TrafficMeter | undefined;
  private readonly served = { statements: 0, rows: 0 };
  private pageFailure: (PageFailure & { left: number }) | undefined;
  private heldJobs: { release: () => void; promise: Promise<void> } | undefined;
  private failingJobs: ErrorProto | undefined;
  private endEarlyAfter: number | undefined;
  private jobCounter = 0;
  private readonly jobWaiters: Array<(job: JobInfo) => void> = [];
  readonly metadataPrincipal: string;

  constructor(opts: BigQueryServerOptions) {
    this.projectId = opts.projectId ?? 'audience-test';
    this.maxWaitMs = opts.maxWaitMs ?? 200;
    this.metadataPrincipal = `runtime@${this.projectId}.iam.gserviceaccount.com`;
    this.jobUsers.add(this.metadataPrincipal);
  }

  /** The OAuth token endpoint key files name as their token_uri. */
  get tokenUri(): string {
    return `${this.url}/token`;
  }

  /** host:port, for GCE_METADATA_HOST. */
  get metadataHost(): string {
    return this.url.replace(/^http:\/\//, '');
  }

  async start(): Promise<void> {
    this.instance = await DuckDBInstance.create(':memory:');
    this.admin = await this.instance.connect();
    await this.admin.run(`ATTACH ':memory:' AS ${dq(this.projectId)}`);
    await this.admin.run('CREATE SCHEMA memory._jobs');
    // GoogleSQL functions the sources emit, in DuckDB: SHA256 gives BYTES, TO_HEX lower-case hex.
    await this.admin.run(`CREATE MACRO ${dq(this.projectId)}.main.bq_sha256(s) AS unhex(sha256(s))`);
    await this.admin.run(`CREATE MACRO ${dq(this.projectId)}.main.bq_md5(s) AS unhex(md5(s))`);
    await this.admin.run(`CREATE MACRO ${dq(this.projectId)}.main.bq_to_hex(b) AS lower(hex(b))`);
    this.http = createServer((req, res) => void this.handle(req, res));
    this.traffic = new TrafficMeter(this.http);
    this.http.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.http!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    this.heldJobs?.release();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.http ? this.http.close(() => resolve()) : resolve()));
    await Promise.allSettled([...this.jobs.values()].map((j) => j.settled));
    this.admin.closeSync();
    this.instance.closeSync();
  }

  // ---- data ---------------------------------------------------------------------------------------

  /** A dataset (a DuckDB schema of the project's catalog) in a location (default US). */
  async createDataset(name: string, opts: { location?: string } = {}): Promise<void> {
    await this.admin.run(`CREATE SCHEMA ${dq(this.projectId)}.${dq(name)}`);
    this.datasets.set(name, { location: opts.location ?? 'US' });
  }

  /** Runs DuckDB SQL with the project as the default catalog: `create table crm.customers ...`. */
  async sql(text: string): Promise<void> {
    const c = await this.connect();
    try {
      await c.run(text);
    } finally {
      c.closeSync();
    }
  }

  // ---- principals ---------------------------------------------------------------------------------

  /** A service account with a new RSA key; it may run jobs and read every dataset until revoked. */
  serviceAccount(name = 'audience-sync'): ServiceAccountKeyFile {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const email = `${name}@${this.projectId}.iam.gserviceaccount.com`;
    const keyId = randomBytes(20).toString('hex');
    this.serviceAccounts.set(email, { keyId, publicKey, revoked: false });
    this.jobUsers.add(email);
    return {
      type: 'service_account',
      project_id: this.projectId,
      private_key_id: keyId,
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      client_email: email,
      client_id: String(100_000_000_000 + this.serviceAccounts.size),
      auth_uri: 'https://accounts.google.com/o/oauth2/auth',
      token_uri: this.tokenUri,
    };
  }

  /** A user's application-default credentials (`gcloud auth application-default login`). */
  authorizedUser(email = 'analyst@example.com'): AuthorizedUserFile {
    const clientId = `${randomBytes(6).toString('hex')}.apps.googleusercontent.com`;
    const user = { clientSecret: randomBytes(12).toString('hex'), refreshToken: `1//${randomBytes(24).toString('base64url')}`, principal: email, revoked: false };
    this.users.set(clientId, user);
    this.jobUsers.add(email);
    return { type: 'authorized_user', client_id: clientId, client_secret: user.clientSecret, refresh_token: user.refreshToken, token_uri: this.tokenUri };
  }

  // ---- control hooks ------------------------------------------------------------------------------

  /** Every access token issued so far (to `principal`, or to anyone) is now expired: the next call gets 401. */
  expireAccessTokens(principal?: string): void {
    for (const t of this.tokens.values()) if (principal === undefined || t.principal === principal) t.expiresAt = 0;
  }

  /** The principal's key (or refresh token) is deleted: the token endpoint refuses it from now on. */
  revokeCredential(principal: string): void {
    const sa = this.serviceAccounts.get(principal);
    if (sa) sa.revoked = true;
    for (const u of this.users.values()) if (u.principal === principal) u.revoked = true;
    this.expireAccessTokens(principal);
  }

  /** Removes roles/bigquery.jobUser (bigquery.jobs.create on the project) from `principal`. */
  revokeJobUser(principal: string): void {
    this.jobUserRevoked.add(principal);
  }

  /** Removes read access (roles/bigquery.dataViewer) to `dataset` or `dataset.table` from `principal` ('*': everyone). */
  revokeRead(principal: string, target: string): void {
    this.readRevoked.add(`${principal}|${target}`);
  }

  /** Principals lose write access (roles/bigquery.dataEditor) to `dataset`: DDL and DML there fail with accessDenied; `false` gives it back. */
  refuseWrites(dataset: string, refuse = true): void {
    if (refuse) this.readOnlyDatasets.add(dataset);
    else this.readOnlyDatasets.delete(dataset);
  }

  /** Jobs run, result rows served and bytes sent and received since the start or the last reset. */
  transferred(): Transferred {
    return { ...this.served, ...this.traffic!.read() };
  }

  resetTransferred(): void {
    this.served.statements = 0;
    this.served.rows = 0;
    this.traffic!.reset();
  }

  /** getQueryResults requests of a job fail once it has served `after` pages. */
  failPages(failure: PageFailure): void {
    this.pageFailure = { ...failure, left: failure.times ?? Infinity };
  }

  /** New jobs stay RUNNING until `releaseJobs()` (or until cancelled). */
  holdJobs(): void {
    let release!: () => void;
    const promise = new Promise<void>((r) => (release = r));
    this.heldJobs = { release, promise };
  }

  releaseJobs(): void {
    this.heldJobs?.release();
    this.heldJobs = undefined;
  }

  /** Page `after` (counting from 1) of every job comes without its pageToken, as if the result ended there. */
  endPagesEarly(after: number | undefined): void {
    this.endEarlyAfter = after;
  }

  /** Jobs started from now on end with this error (e.g. `{reason: 'timeout', ...}`) instead of results. */
  failJobs(error: ErrorProto | undefined): void {
    this.failingJobs = error;
  }

  /** Jobs still running (a stopped read leaves none). */
  running(): number {
    return [...this.jobs.values()].filter((j) => j.state === 'RUNNING').length;
  }

  /** Undoes every hook and revocation. */
  reset(): void {
    this.pageFailure = undefined;
    this.releaseJobs();
    this.failingJobs = undefined;
    this.endEarlyAfter = undefined;
    this.jobUserRevoked.clear();
    this.readRevoked.clear();
    this.readOnlyDatasets.clear();
    for (const sa of this.serviceAccounts.values()) sa.revoked = false;
    for (const u of this.users.values()) u.revoked = false;
    this.requests.length = 0;
  }

  /** How many requests of this API method were received. */
  count(method: LoggedRequest['method']): number {
    return this.requests.filter((r) => r.method === method).length;
  }

  jobList(): JobInfo[] {
    return [...this.jobs.values()].map((j) => this.jobInfo(j));
  }

  /** Resolves with the next job created. */
  nextJob(): Promise<JobInfo> {
    return new Promise((resolve) => this.jobWaiters.push(resolve));
  }

  // ---- HTTP ---------------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const query = Object.fromEntries(url.searchParams);
    const logged: LoggedRequest = { method: 'unknown', path: url.pathname, query };
    this.requests.push(logged);
    try {
      const raw = await readBody(req);
      if (url.pathname === '/token') {
        logged.method = 'token';
        return send(res, 200, await this.token(req, raw));
      }
      if (url.pathname === '/computeMetadata/v1/instance/service-accounts/default/token') {
        logged.method = 'metadata.token';
        if (req.headers['metadata-flavor'] !== 'Google') return send(res, 403, 'Missing Metadata-Flavor:Google header.', 'text/plain');
        return send(res, 200, this.issue(this.metadataPrincipal, [CLOUD_PLATFORM_SCOPE]));
      }
      const m = /^\/bigquery\/v2\/projects\/([^/]+)\/(queries|jobs)(?:\/([^/]+))?(\/cancel)?$/.exec(url.pathname);
      if (!m) return send(res, 404, '<!DOCTYPE html><title>Error 404 (Not Found)</title>', 'text/html');
      const [, project, collection, jobId, cancel] = m;
      const route =
        collection === 'queries' && !jobId && req.method === 'POST'
          ? 'jobs.query'
          : collection === 'queries' && jobId && req.method === 'GET'
            ? 'jobs.getQueryResults'
            : collection === 'jobs' && jobId && !cancel && req.method === 'GET'
              ? 'jobs.get'
              : collection === 'jobs' && jobId && cancel && req.method === 'POST'
                ? 'jobs.cancel'
                : undefined;
      if (!route) return send(res, 404, '<!DOCTYPE html><title>Error 404 (Not Found)</title>', 'text/html');
      logged.method = route;
      const token = this.authenticate(req);
      const projectId = decodeURIComponent(project!);
      switch (route) {
        case 'jobs.query': {
          const body = parseJsonBody(req, raw);
          logged.body = body;
          return send(res, 200, await this.jobsQuery(projectId, token, body));
        }
        case 'jobs.getQueryResults':
          checkParams(query, ['pageToken', 'maxResults', 'startIndex', 'timeoutMs', 'location', 'formatOptions.useInt64Timestamp', 'formatOptions.timestampOutputFormat', 'prettyPrint', 'alt', 'fields']);
          return await this.getQueryResults(res, projectId, token, decodeURIComponent(jobId!), query);
        case 'jobs.get':
          checkParams(query, ['location', 'prettyPrint', 'alt', 'fields']);
          return send(res, 200, this.jobResource(this.findJob(projectId, token, decodeURIComponent(jobId!), query.location)));
        case 'jobs.cancel': {
          checkParams(query, ['location', 'prettyPrint', 'alt', 'fields']);
          if (raw.length > 0) throw new HttpError(400, 'invalid', 'jobs.cancel takes no request body.');
          const job = this.findJob(projectId, token, decodeURIComponent(jobId!), query.location);
          job.cancelRequested = true;
          if (job.state === 'RUNNING') this.finish(job, { reason: 'stopped', message: 'Job execution was cancelled: User requested cancellation' }, 400);
          return send(res, 200, { kind: 'bigquery#jobCancelResponse', job: this.jobResource(job) });
        }
      }
    } catch (err) {
      if (err instanceof ResetConnection) {
        req.socket.destroy();
        return;
      }
      if (err instanceof OAuthError) return send(res, err.status, { error: err.code, error_description: err.message });
      const e = err instanceof HttpError ? err : new HttpError(500, 'internalError', `test server: ${err instanceof Error ? err.message : String(err)}`);
      if (e.status === 401) res.setHeader('www-authenticate', 'Bearer realm="https://accounts.google.com/", error="invalid_token"');
      return send(res, e.status, { error: { code: e.status, message: e.message, errors: [{ message: e.reason === 'authError' ? 'Invalid Credentials' : e.message, domain: 'global', reason: e.reason, ...e.extra }], status: STATUS_NAME[e.status] ?? 'UNKNOWN' } });
    }
  }

  // ---- OAuth --------------------------------------------------------------------------------------

  private async token(req: IncomingMessage, raw: Buffer): Promise<unknown> {
    if (req.method !== 'POST') throw new OAuthError(405, 'invalid_request', 'The token endpoint takes POST requests.');
    if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
      throw new OAuthError(400, 'invalid_request', 'Content-Type must be application/x-www-form-urlencoded.');
    }
    const form = new URLSearchParams(raw.toString('utf8'));
    const grant = form.get('grant_type');
    if (grant === JWT_BEARER) return this.jwtGrant(form.get('assertion') ?? '');
    if (grant === 'refresh_token') {
      const user = this.users.get(form.get('client_id') ?? '');
      if (!user || user.clientSecret !== form.get('client_secret')) throw new OAuthError(401, 'invalid_client', 'The OAuth client was not found.');
      if (user.revoked || user.refreshToken !== form.get('refresh_token')) throw new OAuthError(400, 'invalid_grant', 'Token has been expired or revoked.');
      return { ...this.issue(user.principal, [CLOUD_PLATFORM_SCOPE]), scope: CLOUD_PLATFORM_SCOPE };
    }
    throw new OAuthError(400, 'unsupported_grant_type', `Invalid grant_type: ${grant ?? ''}`);
  }

  /** RFC 7523 assertion from a service account, checked as Google does. */
  private jwtGrant(assertion: string): unknown {
    const parts = assertion.split('.');
    if (parts.length !== 3) throw new OAuthError(400, 'invalid_grant', 'Invalid JWT: not a compact JWS.');
    let header: Record<string, unknown>;
    let claims: Record<string, unknown>;
    try {
      header = JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
      claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new OAuthError(400, 'invalid_grant', 'Invalid JWT: header or claims are not JSON.');
    }
    if (header.alg !== 'RS256') throw new OAuthError(400, 'invalid_grant', `Invalid JWT: alg must be RS256, got ${String(header.alg)}.`);
    const sa = typeof claims.iss === 'string' ? this.serviceAccounts.get(claims.iss) : undefined;
    if (!sa) throw new OAuthError(400, 'invalid_grant', 'Invalid grant: account not found');
    if (header.kid !== undefined && header.kid !== sa.keyId) throw new OAuthError(400, 'invalid_grant', 'Invalid JWT Signature.');
    const signed = verify('RSA-SHA256', Buffer.from(`${parts[0]}.${parts[1]}`), sa.publicKey, Buffer.from(parts[2]!, 'base64url'));
    if (!signed || sa.revoked) throw new OAuthError(400, 'invalid_grant', 'Invalid JWT Signature.');
    if (claims.aud !== this.tokenUri) throw new OAuthError(400, 'invalid_grant', `Invalid JWT: Failed audience check. The right audience is ${this.tokenUri}`);
    const now = Math.floor(Date.now() / 1000);
    const iat = Number(claims.iat);
    const exp = Number(claims.exp);
    if (!Number.isInteger(iat) || !Number.isInteger(exp) || exp <= now || iat > now + 60 || exp - iat > 3600 || exp <= iat) {
      throw new OAuthError(400, 'invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.');
    }
    if (typeof claims.scope !== 'string' || claims.scope.trim() === '') throw new OAuthError(400, 'invalid_scope', 'Empty or missing scope not allowed.');
    return this.issue(claims.iss as string, claims.scope.split(/\s+/));
  }

  private issue(principal: string, scopes: string[]): { access_token: string; expires_in: number; token_type: 'Bearer' } {
    const token = `ya29.${randomBytes(32).toString('base64url')}`;
    this.tokens.set(token, { principal, scopes, expiresAt: Date.now() + TOKEN_LIFETIME_S * 1000 });
    return { access_token: token, expires_in: TOKEN_LIFETIME_S, token_type: 'Bearer' };
  }

  private authenticate(req: IncomingMessage): AccessToken {
    const header = req.headers.authorization;
    if (!header) {
      throw new HttpError(401, 'required', 'Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.', { location: 'Authorization', locationType: 'header' });
    }
    const token = /^Bearer (\S+)$/.exec(header)?.[1];
    const issued = token === undefined ? undefined : this.tokens.get(token);
    if (!issued || issued.expiresAt <= Date.now()) {
      throw new HttpError(401, 'authError', 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.', { location: 'Authorization', locationType: 'header' });
    }
    if (!issued.scopes.some((s) => s === BIGQUERY_SCOPE || s === CLOUD_PLATFORM_SCOPE)) {
      throw new HttpError(403, 'insufficientPermissions', 'Request had insufficient authentication scopes.');
    }
    return issued;
  }

  // ---- jobs ---------------------------------------------------------------------------------------

  private async jobsQuery(projectId: string, token: AccessToken, body: Record<string, unknown>): Promise<unknown> {
    const request = validateQueryRequest(body);
    this.mayCreateJobs(projectId, token.principal);
    if (request.defaultDataset && request.defaultDataset.projectId !== this.projectId) throw new HttpError(404, 'notFound', `Not found: Dataset ${request.defaultDataset.projectId}:${request.defaultDataset.datasetId}`);
    if (request.defaultDataset && !this.datasets.has(request.defaultDataset.datasetId)) throw new HttpError(404, 'notFound', `Not found: Dataset ${this.projectId}:${request.defaultDataset.datasetId}`);
    if (request.query.length > MAX_QUERY_CHARS) throw new HttpError(400, 'invalid', 'The query is too large. The maximum standard SQL query length is 1024.00K characters, including comments and white space characters.');
    const sql = translate(request.query, this.projectId, (name) => this.datasets.has(name), request.defaultDataset?.datasetId);
    const kind = statementKind(sql.text);
    const target = kind.kind === 'query' ? undefined : writeTarget(sql.text);
    if (kind.kind !== 'query' && target?.object === 'schema') return this.createDatasetJob(projectId, token.principal, request, kind, target);
    const location = this.locationOf(sql.tables, token.principal, request.location);
    if (kind.kind !== 'query') await this.mayWrite(kind, target, sql.text);
    if (request.dryRun) {
      const described = await this.describe(sql.text);
      return { kind: 'bigquery#queryResponse', schema: { fields: described.fields }, jobReference: { projectId, location }, totalBytesProcessed: String(await this.bytesOf(sql.tables)), jobComplete: true, cacheHit: false };
    }
    const previous = request.requestId ? this.requestIds.get(request.requestId) : undefined;
    let job: Job;
    if (previous && previous.query === request.query && Date.now() - previous.at < 15 * 60_000) {
      job = this.jobs.get(previous.jobId)!;
    } else {
      job = await this.createJob(token.principal, request.query, sql, location, kind);
      if (request.requestId) this.requestIds.set(request.requestId, { jobId: job.jobId, query: request.query, at: Date.now() });
    }
    await this.waitFor(job, request.timeoutMs);
    return this.resultsResponse('bigquery#queryResponse', job, { maxResults: request.maxResults, int64Timestamp: request.int64Timestamp });
  }

  private async getQueryResults(res: ServerResponse, projectId: string, token: AccessToken, jobId: string, query: Record<string, string>): Promise<void> {
    const job = this.findJob(projectId, token, jobId, query.location);
    const maxResults = query.maxResults === undefined ? undefined : uint32(query.maxResults, 'maxResults');
    const timeoutMs = query.timeoutMs === undefined ? 10_000 : uint32(query.timeoutMs, 'timeoutMs');
    const startIndex = query.startIndex === undefined ? undefined : uint32(query.startIndex, 'startIndex');
    const int64 = query['formatOptions.useInt64Timestamp'];
    if (int64 !== undefined && int64 !== 'true' && int64 !== 'false') throw new HttpError(400, 'invalid', `Invalid value for formatOptions.useInt64Timestamp: "${int64}"`);
    await this.waitFor(job, timeoutMs);
    let offset = startIndex ?? 0;
    if (query.pageToken !== undefined) {
      const decoded = decodePageToken(query.pageToken);
      if (!decoded || decoded.jobId !== job.jobId || decoded.salt !== job.pageTokenSalt) throw new HttpError(400, 'invalid', 'Invalid page token.');
      offset = decoded.offset;
    }
    if (!job.errorResult) {
      // Polls of a running job count too: with `after: 0` they fail while the job runs.
      const failure = this.pageFailure;
      if (failure && job.pagesServed >= failure.after && failure.left > 0) {
        failure.left--;
        if (failure.error === 'reset') throw new ResetConnection();
        const e = failure.error ?? { status: 503, reason: 'backendError', message: 'Error encountered during execution. Retrying may solve the problem.' };
        throw new HttpError(e.status, e.reason, e.message);
      }
    }
    send(res, 200, await this.resultsResponse('bigquery#getQueryResultsResponse', job, { maxResults, offset, int64Timestamp: int64 === 'true' }));
  }

  private mayCreateJobs(projectId: string, principal: string): void {
    if (projectId !== this.projectId || !this.jobUsers.has(principal) || this.jobUserRevoked.has(principal)) {
      throw new HttpError(403, 'accessDenied', `Access Denied: Project ${projectId}: User does not have bigquery.jobs.create permission in project ${projectId}.`);
    }
  }

  /** The location the job runs in: its datasets', which must all be readable and in one place. */
  private locationOf(tables: TableRef[], principal: string, requested: string | undefined): string {
    const locations = new Set<string>();
    for (const t of tables) {
      const ds = t.project === this.projectId ? this.datasets.get(t.dataset) : undefined;
      const where = requested ?? 'US';
      if (!ds || (requested !== undefined && ds.location.toUpperCase() !== requested.toUpperCase())) {
        throw new HttpError(404, 'notFound', `Not found: Dataset ${t.project}:${t.dataset} was not found in location ${ds ? where : (requested ?? 'US')}`);
      }
      if (this.readRevoked.has(`${principal}|${t.dataset}`) || this.readRevoked.has(`*|${t.dataset}`) || this.readRevoked.has(`${principal}|${t.dataset}.${t.table}`) || this.readRevoked.has(`*|${t.dataset}.${t.table}`)) {
        const name = `${t.project}:${t.dataset}.${t.table}`;
        throw new HttpError(403, 'accessDenied', `Access Denied: Table ${name}: User does not have permission to query table ${name}, or perhaps it does not exist.`);
      }
      locations.add(ds.location);
    }
    if (locations.size > 1) throw new HttpError(400, 'invalid', `Cannot query over tables in different locations: ${[...locations].join(', ')}`);
    return [...locations][0] ?? requested ?? 'US';
  }

  /** Refuses what the real service refuses of a DDL or DML statement: DELETE without WHERE, a write where the principal may only read. */
  private async mayWrite(kind: Exclude<StatementKind, { kind: 'query' }>, target: WriteTarget | undefined, text: string): Promise<void> {
    if (kind.verb === 'DELETE' && !/\bWHERE\b/i.test(withoutLiterals(text))) throw new HttpError(400, 'invalidQuery', 'DELETE must have a WHERE clause at [1:1]');
    if (target === undefined) return;
    const [project, dataset, table] = target.path.length === 3 ? target.path : [this.projectId, ...target.path];
    if (dataset === undefined || !this.readOnlyDatasets.has(dataset)) return;
    if (kind.verb === 'CREATE') {
      if (target.conditional && (await this.tableExists(project!, dataset, table!))) return;
      throw new HttpError(403, 'accessDenied', `Access Denied: Dataset ${project}:${dataset}: Permission bigquery.tables.create denied on dataset ${project}:${dataset} (or it may not exist).`);
    }
    const permission = kind.verb === 'DROP' ? 'bigquery.tables.delete' : 'bigquery.tables.updateData';
    throw new HttpError(403, 'accessDenied', `Access Denied: Table ${project}:${dataset}.${table}: Permission ${permission} denied on table ${project}:${dataset}.${table} (or it may not exist).`);
  }

  private async tableExists(project: string, dataset: string, table: string): Promise<boolean> {
    const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;
    const r = await this.admin.runAndReadAll(`SELECT count(*) FROM duckdb_tables() WHERE database_name = ${literal(project)} AND schema_name = ${literal(dataset)} AND lower(table_name) = lower(${literal(table)})`);
    return Number(r.getRows()[0]?.[0] ?? 0) > 0;
  }

  /** CREATE SCHEMA (a dataset) as a query job: in the location its OPTIONS or the request name (default US). */
  private async createDatasetJob(projectId: string, principal: string, request: QueryRequest, kind: Exclude<StatementKind, { kind: 'query' }>, target: WriteTarget): Promise<unknown> {
    const [project, dataset] = target.path.length === 2 ? target.path : [projectId, target.path[0]!];
    if (kind.verb !== 'CREATE') throw new HttpError(501, 'notImplemented', `The test server does not implement ${kind.verb} SCHEMA.`);
    if (project !== this.projectId) throw new HttpError(403, 'accessDenied', `Access Denied: Project ${project!}: User does not have bigquery.datasets.create permission in project ${project!}.`);
    const exists = this.datasets.has(dataset!);
    if (exists && !target.conditional) throw new HttpError(409, 'duplicate', `Already Exists: Dataset ${project}:${dataset}`);
    if (!exists && this.readOnlyDatasets.has(dataset!)) throw new HttpError(403, 'accessDenied', `Access Denied: Project ${project}: User does not have bigquery.datasets.create permission in project ${project}.`);
    const location = /\blocation\s*=\s*["']([\w-]+)["']/i.exec(request.query)?.[1] ?? request.location ?? 'US';
    if (!request.dryRun && !exists) await this.createDataset(dataset!, { location });
    if (request.dryRun) return { kind: 'bigquery#queryResponse', jobReference: { projectId, location }, totalBytesProcessed: '0', jobComplete: true, cacheHit: false };
    const job = this.newJob(principal, request.query, location, 'CREATE_SCHEMA');
    job.ddlOperation = exists ? 'SKIP' : 'CREATE';
    job.state = 'DONE';
    job.ended = Date.now();
    return this.resultsResponse('bigquery#queryResponse', job, { maxResults: request.maxResults, int64Timestamp: request.int64Timestamp });
  }

  private newJob(principal: string, query: string, location: string, statementType: string, bytes = 0): Job {
    const jobId = `job_${randomBytes(12).toString('base64url').replace(/[^A-Za-z0-9_]/g, '_')}`;
    const job: Job = { jobId, location, principal, query, state: 'RUNNING', bytes, created: Date.now(), cancelRequested: false, pagesServed: 0, settled: Promise.resolve(), pageTokenSalt: randomBytes(6).toString('hex'), statementType };
    this.jobs.set(jobId, job);
    this.served.statements++;
    for (const w of this.jobWaiters.splice(0)) w(this.jobInfo(job));
    return job;
  }

  /** Runs a DML or DDL statement of a job: DML's changed rows become numDmlAffectedRows, DDL's outcome ddlOperationPerformed. */
  private async runWrite(c: DuckDBConnection, job: Job, sql: Translated, kind: Exclude<StatementKind, { kind: 'query' }>): Promise<void> {
    if (kind.kind === 'dml') {
      const r = await c.runAndReadAll(sql.text);
      job.dmlAffected = Number(r.getRows()[0]?.[0] ?? 0);
      return;
    }
    const target = writeTarget(sql.text);
    const [project, dataset, table] = target && target.path.length === 3 ? target.path : [this.projectId, ...(target?.path ?? [])];
    const existed = target !== undefined && dataset !== undefined && table !== undefined && (await this.tableExists(project!, dataset, table));
    await c.run(sql.text);
    job.ddlOperation = kind.verb === 'DROP' ? (existed ? 'DROP' : 'SKIP') : kind.verb === 'CREATE' ? (existed ? 'SKIP' : 'CREATE') : 'ALTER';
  }

  private async createJob(principal: string, query: string, sql: Translated, location: string, kind: StatementKind): Promise<Job> {
    const job = this.newJob(principal, query, location, statementTypeOf(kind, sql.text), await this.bytesOf(sql.tables));
    const held = this.heldJobs?.promise;
    const failing = this.failingJobs;
    job.settled = (async () => {
      const table = `memory._jobs.${dq(`r${++this.jobCounter}`)}`;
      const c = await this.connect();
      try {
        if (kind.kind !== 'query') {
          await this.runWrite(c, job, sql, kind);
          job.state = 'DONE';
          job.ended = Date.now();
          return;
        }
        await c.run(`CREATE TABLE ${table} AS ${sql.text}`);
        const described = await c.runAndReadAll(`SELECT * FROM ${table} LIMIT 0`);
        const count = await c.runAndReadAll(`SELECT count(*) FROM ${table}`);
        if (held) await Promise.race([held, until(() => job.state === 'DONE')]);
        if (job.state === 'DONE') return; // cancelled while running
        if (failing) return this.finish(job, failing, REASON_STATUS[failing.reason] ?? 400);
        job.table = table;
        job.types = described.columnTypes();
        job.fields = described.columnNames().map((name, i) => fieldSchema(name, job.types![i]!));
        job.totalRows = Number(count.getRows()[0]![0]);
        job.state = 'DONE';
        job.ended = Date.now();
      } catch (err) {
        this.finish(job, duckDbError(err), 400);
      } finally {
        c.closeSync();
      }
    })();
    return job;
  }

  private finish(job: Job, error: ErrorProto, status: number): void {
    if (job.state === 'DONE') return;
    job.state = 'DONE';
    job.errorResult = error;
    job.errorStatus = status;
    job.ended = Date.now();
  }

  /** Waits until the job is done or the request's wait is over. */
  private async waitFor(job: Job, timeoutMs: number): Promise<void> {
    const wait = Math.min(timeoutMs, this.maxWaitMs);
    await Promise.race([job.settled, until(() => job.state === 'DONE'), new Promise((r) => setTimeout(r, wait))]);
  }

  private findJob(projectId: string, token: AccessToken, jobId: string, location: string | undefined): Job {
    const job = projectId === this.projectId ? this.jobs.get(jobId) : undefined;
    // Jobs outside the US and EU multi-regions are only found with their location.
    const located = job && (location === undefined ? MULTI_REGIONS.has(job.location) : location.toUpperCase() === job.location.toUpperCase());
    if (!job || !located) throw new HttpError(404, 'notFound', `Not found: Job ${projectId}:${location ?? 'US'}.${jobId}`);
    if (job.principal !== token.principal) throw new HttpError(403, 'accessDenied', `Access Denied: Job ${projectId}:${job.location}.${jobId}: User does not have bigquery.jobs.get permission for job ${projectId}:${job.location}.${jobId}.`);
    return job;
  }

  private async resultsResponse(kind: string, job: Job, opts: { maxResults: number | undefined; offset?: number; int64Timestamp: boolean }): Promise<unknown> {
    const jobReference = { projectId: this.projectId, jobId: job.jobId, location: job.location };
    if (job.state !== 'DONE') return { kind, jobReference, jobComplete: false };
    if (job.errorResult) throw new HttpError(job.errorStatus ?? 400, job.errorResult.reason, job.errorResult.message);
    if (job.statementType !== 'SELECT') {
      // DML and DDL: no schema and no rows; DML says how many rows it changed.
      job.pagesServed++;
      return { kind, etag: `"${randomBytes(8).toString('base64')}"`, jobReference, totalBytesProcessed: String(job.bytes), jobComplete: true, cacheHit: false, ...this.dmlFields(job) };
    }
    const offset = opts.offset ?? 0;
    const total = job.totalRows ?? 0;
    const limit = Math.min(opts.maxResults ?? 100_000, Math.max(0, total - offset));
    const rows: unknown[] = [];
    let bytes = 0;
    if (limit > 0) {
      const c = await this.connect();
      try {
        const page = await c.runAndReadAll(`SELECT * FROM ${job.table} WHERE rowid >= ${offset} AND rowid < ${offset + limit} ORDER BY rowid`);
        for (const values of page.getRows()) {
          const row = { f: values.map((v, i) => cell(v, job.types![i]!, opts.int64Timestamp)) };
          bytes += JSON.stringify(row).length;
          if (rows.length > 0 && bytes > PAGE_BYTES) break;
          rows.push(row);
        }
      } finally {
        c.closeSync();
      }
    }
    job.pagesServed++;
    this.served.rows += rows.length;
    const next = offset + rows.length;
    const more = next < total && job.pagesServed !== this.endEarlyAfter;
    return {
      kind,
      etag: `"${randomBytes(8).toString('base64')}"`,
      schema: { fields: job.fields },
      jobReference,
      totalRows: String(total),
      ...(rows.length > 0 ? { rows } : {}),
      ...(more ? { pageToken: encodePageToken(job, next) } : {}),
      totalBytesProcessed: String(job.bytes),
      jobComplete: true,
      cacheHit: false,
    };
  }

  /** numDmlAffectedRows and dmlStats of a DML job (QueryResponse, GetQueryResultsResponse, JobStatistics2). */
  private dmlFields(job: Job): Record<string, unknown> {
    if (job.dmlAffected === undefined) return {};
    const count = String(job.dmlAffected);
    const stat = job.statementType === 'DELETE' ? 'deletedRowCount' : job.statementType === 'UPDATE' ? 'updatedRowCount' : 'insertedRowCount';
    return { numDmlAffectedRows: count, dmlStats: { [stat]: count } };
  }

  private jobResource(job: Job): unknown {
    const reference = { projectId: this.projectId, jobId: job.jobId, location: job.location };
    return {
      kind: 'bigquery#job',
      etag: `"${randomBytes(8).toString('base64')}"`,
      id: `${this.projectId}:${job.location}.${job.jobId}`,
      selfLink: `${this.url}/bigquery/v2/projects/${this.projectId}/jobs/${job.jobId}?location=${job.location}`,
      user_email: job.principal,
      jobReference: reference,
      configuration: { jobType: 'QUERY', query: { query: job.query, useLegacySql: false, priority: 'INTERACTIVE' } },
      status: { state: job.state, ...(job.errorResult ? { errorResult: job.errorResult, errors: [job.errorResult] } : {}) },
      statistics: {
        creationTime: String(job.created),
        startTime: String(job.created),
        ...(job.ended ? { endTime: String(job.ended) } : {}),
        totalBytesProcessed: String(job.bytes),
        query: { totalBytesProcessed: String(job.bytes), statementType: job.statementType, ...this.dmlFields(job), ...(job.ddlOperation ? { ddlOperationPerformed: job.ddlOperation } : {}) },
      },
    };
  }

  private jobInfo(job: Job): JobInfo {
    return {
      jobId: job.jobId,
      location: job.location,
      state: job.state,
      query: job.query,
      principal: job.principal,
      ...(job.errorResult ? { errorResult: job.errorResult } : {}),
      cancelRequested: job.cancelRequested,
      pagesServed: job.pagesServed,
    };
  }

  private async describe(text: string): Promise<{ fields: FieldSchema[] }> {
    const c = await this.connect();
    try {
      const described = await c.runAndReadAll(`SELECT * FROM (${text}) LIMIT 0`);
      const types = described.columnTypes();
      return { fields: described.columnNames().map((name, i) => fieldSchema(name, types[i]!)) };
    } catch (err) {
      const e = duckDbError(err);
      throw new HttpError(400, e.reason, e.message);
    } finally {
      c.closeSync();
    }
  }

  /** Bytes a query reads, estimated as 8 per cell of the tables it names. */
  private async bytesOf(tables: TableRef[]): Promise<number> {
    let bytes = 0;
    const c = await this.connect();
    for (const t of tables) {
      const r = await c.runAndReadAll(`SELECT count(*) * (SELECT count(*) FROM information_schema.columns WHERE table_catalog = '${t.project.replace(/'/g, "''")}' AND table_schema = '${t.dataset.replace(/'/g, "''")}' AND table_name = '${t.table.replace(/'/g, "''")}') * 8 FROM ${dq(t.project)}.${dq(t.dataset)}.${dq(t.table)}`).catch(() => undefined);
      bytes += Number(r?.getRows()[0]?.[0] ?? 0);
    }
    c.closeSync();
    return bytes;
  }

  private async connect(): Promise<DuckDBConnection> {
    const c = await this.instance.connect();
    await c.run(`USE ${dq(this.projectId)}`);
    return c;
  }
}

/** The statementType BigQuery reports for a statement. */
function statementTypeOf(kind: StatementKind, text: string): string {
  if (kind.kind === 'query') return 'SELECT';
  if (kind.kind === 'dml') return kind.verb;
  const target = writeTarget(text);
  return `${kind.verb}_${target?.object === 'schema' ? 'SCHEMA' : 'TABLE'}`;
}

/** SQL text (DuckDB's dialect) without its string literals, for keyword checks. */
function withoutLiterals(text: string): string {
  return text.replace(/'(?:[^']|'')*'/g, "''");
}

/** GoogleSQL's limit on the text of a query (unresolved). */
const MAX_QUERY_CHARS = 1024 * 1024;

// ---- request checks -------------------------------------------------------------------------------

class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

class ResetConnection extends Error {}

/** QueryRequest fields the real service accepts; those that change results and are not implemented here answer 501. */
const QUERY_FIELDS = new Set([
  'arrowSerializationOptions', 'connectionProperties', 'continuous', 'createSession', 'defaultDataset', 'destinationEncryptionConfiguration', 'dryRun',
  'formatOptions', 'jobCreationMode', 'jobTimeoutMs', 'kind', 'labels', 'location', 'maxResults', 'maxSlots', 'maximumBytesBilled', 'parameterMode',
  'preserveNulls', 'query', 'queryParameters', 'queryResultsFormat', 'requestId', 'reservation', 'secureContext', 'timeoutMs', 'useLegacySql',
  'useQueryCache', 'writeIncrementalResults',
]);
const NOT_IMPLEMENTED = ['arrowSerializationOptions', 'connectionProperties', 'continuous', 'createSession', 'jobCreationMode', 'parameterMode', 'queryParameters', 'queryResultsFormat', 'writeIncrementalResults'];

interface QueryRequest {
  query: string;
  /** DatasetReference: where unqualified table names resolve. */
  defaultDataset: { projectId: string; datasetId: string } | undefined;
  dryRun: boolean;
  location: string | undefined;
  maxResults: number | undefined;
  timeoutMs: number;
  requestId: string | undefined;
  int64Timestamp: boolean;
}

function validateQueryRequest(body: Record<string, unknown>): QueryRequest {
  for (const key of Object.keys(body)) {
    if (!QUERY_FIELDS.has(key)) throw new HttpError(400, 'invalid', `Invalid JSON payload received. Unknown name "${key}": Cannot find field.`);
  }
  for (const key of NOT_IMPLEMENTED) if (body[key] !== undefined) throw new HttpError(501, 'notImplemented', `The test server does not implement QueryRequest.${key}.`);
  if (typeof body.query !== 'string' || body.query.trim() === '') throw new HttpError(400, 'invalid', 'Required parameter is missing: query');
  if (body.useLegacySql !== false) {
    // The real service would read the query as legacy SQL (the default), where `backquoted` names are an error.
    throw new HttpError(400, 'invalidQuery', 'useLegacySql defaults to true: the query was read as legacy SQL. Set useLegacySql to false for GoogleSQL (the only dialect this test server runs).');
  }
  for (const key of ['dryRun', 'useQueryCache', 'preserveNulls'] as const) {
    if (body[key] !== undefined && typeof body[key] !== 'boolean') throw new HttpError(400, 'invalid', `Invalid value at '${key}' (TYPE_BOOL), ${JSON.stringify(body[key])}`);
  }
  if (body.requestId !== undefined && (typeof body.requestId !== 'string' || !/^[\x20-\x7e]{1,36}$/.test(body.requestId))) {
    throw new HttpError(400, 'invalid', 'requestId must be at most 36 ASCII characters.');
  }
  if (body.labels !== undefined) {
    if (typeof body.labels !== 'object' || body.labels === null || Array.isArray(body.labels)) throw new HttpError(400, 'invalid', "Invalid value at 'labels'");
    for (const [k, v] of Object.entries(body.labels)) {
      if (!/^[a-z][a-z0-9_-]{0,62}$/.test(k) || typeof v !== 'string' || !/^[a-z0-9_-]{0,63}$/.test(v)) throw new HttpError(400, 'invalid', `Label ${k}:${String(v)} is not valid: keys and values are lowercase letters, digits, _ and -, up to 63 characters.`);
    }
  }
  let int64Timestamp = false;
  if (body.formatOptions !== undefined) {
    const f = body.formatOptions as Record<string, unknown>;
    if (typeof f !== 'object' || f === null) throw new HttpError(400, 'invalid', "Invalid value at 'formatOptions'");
    for (const k of Object.keys(f)) if (k !== 'useInt64Timestamp' && k !== 'timestampOutputFormat') throw new HttpError(400, 'invalid', `Invalid JSON payload received. Unknown name "${k}" at 'format_options': Cannot find field.`);
    if (f.useInt64Timestamp !== undefined && typeof f.useInt64Timestamp !== 'boolean') throw new HttpError(400, 'invalid', "Invalid value at 'format_options.use_int64_timestamp' (TYPE_BOOL)");
    if (f.timestampOutputFormat !== undefined) throw new HttpError(501, 'notImplemented', 'The test server does not implement formatOptions.timestampOutputFormat.');
    int64Timestamp = f.useInt64Timestamp === true;
  }
  let defaultDataset: QueryRequest['defaultDataset'];
  if (body.defaultDataset !== undefined) {
    const d = body.defaultDataset as Record<string, unknown>;
    if (typeof d !== 'object' || d === null || typeof d.datasetId !== 'string' || d.datasetId === '') throw new HttpError(400, 'invalid', 'Required parameter is missing: defaultDataset.datasetId');
    for (const k of Object.keys(d)) if (k !== 'datasetId' && k !== 'projectId') throw new HttpError(400, 'invalid', `Invalid JSON payload received. Unknown name "${k}" at 'default_dataset': Cannot find field.`);
    defaultDataset = { datasetId: d.datasetId, projectId: typeof d.projectId === 'string' ? d.projectId : '' };
  }
  const number = (key: string) => (body[key] === undefined ? undefined : uint32(body[key], key));
  return {
    query: body.query,
    defaultDataset,
    dryRun: body.dryRun === true,
    location: typeof body.location === 'string' ? body.location : undefined,
    maxResults: number('maxResults'),
    timeoutMs: number('timeoutMs') ?? 10_000,
    requestId: body.requestId as string | undefined,
    int64Timestamp,
  };
}

function uint32(value: unknown, name: string): number {
  const n = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new HttpError(400, 'invalid', `Invalid value at '${name}' (TYPE_UINT32), ${JSON.stringify(value)}`);
  return n;
}

function checkParams(query: Record<string, string>, allowed: string[]): void {
  for (const key of Object.keys(query)) {
    if (!allowed.includes(key)) throw new HttpError(400, 'invalid', `Invalid JSON payload received. Unknown name "${key}": Cannot bind query parameter. Field '${key}' could not be found in request message.`);
  }
}

function parseJsonBody(req: IncomingMessage, raw: Buffer): Record<string, unknown> {
  if (!(req.headers['content-type'] ?? '').startsWith('application/json')) throw new HttpError(400, 'invalid', 'Invalid JSON payload: Content-Type must be application/json.');
  try {
    const body = JSON.parse(raw.toString('utf8')) as unknown;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('not an object');
    return body as Record<string, unknown>;
  } catch {
    throw new HttpError(400, 'parseError', 'Invalid JSON payload received.');
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json; charset=UTF-8'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function encodePageToken(job: Job, offset: number): string {
  return Buffer.from(`${job.jobId}|${offset}|${job.pageTokenSalt}`).toString('base64url');
}

function decodePageToken(token: string): { jobId: string; offset: number; salt: string } | undefined {
  const [jobId, offset, salt] = Buffer.from(token, 'base64url').toString('utf8').split('|');
  if (!jobId || !offset || !salt || !/^\d+$/.test(offset)) return undefined;
  return { jobId, offset: Number(offset), salt };
}

/** Resolves once `done()` holds (checked every 10 ms). */
function until(done: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = () => (done() ? resolve() : setTimeout(check, 10).unref());
    check();
  });
}

/** DuckDB's error as BigQuery would word it. */
function duckDbError(err: unknown): ErrorProto {
  const text = (err instanceof Error ? err.message : String(err)).split('\n')[0]!;
  const table = /Table with name (\S+) does not exist/.exec(text);
  if (table) return { reason: 'invalidQuery', message: `Table "${table[1]}" must be qualified with a dataset (e.g. dataset.table).` };
  const column = /Referenced column "?([^"\s]+)"? not found/.exec(text);
  if (column) return { reason: 'invalidQuery', message: `Unrecognized name: ${column[1]} at [1:1]` };
  const cast = /Could not convert string '(.*)' to (INT64|BIGINT|DOUBLE|DATE)/.exec(text);
  if (cast) return { reason: 'invalidQuery', message: `Bad ${cast[2] === 'DOUBLE' ? 'double' : cast[2] === 'DATE' ? 'date' : 'int64'} value: ${cast[1]}` };
  if (/^Parser Error/.test(text)) return { reason: 'invalidQuery', message: `Syntax error: ${text.replace(/^Parser Error:\s*/, '')}` };
  return { reason: 'invalidQuery', message: text.replace(/^\w+ Error:\s*/, '') };
}

// ---- GoogleSQL to DuckDB --------------------------------------------------------------------------

interface TableRef {
  project: string;
  dataset: string;
  table: string;
}

interface Translated {
  text: string;
  tables: TableRef[];
}

const FUNCTIONS: Record<string, string> = { SHA256: 'bq_sha256', MD5: 'bq_md5', TO_HEX: 'bq_to_hex' };
const CAST_TYPES: Record<string, string> = {
  STRING: 'VARCHAR',
  INT64: 'BIGINT',
  FLOAT64: 'DOUBLE',
  BOOL: 'BOOLEAN',
  BYTES: 'BLOB',
  NUMERIC: 'DECIMAL(38,9)',
  BIGNUMERIC: 'DECIMAL(38,9)',
  DATETIME: 'TIMESTAMP',
  TIMESTAMP: 'TIMESTAMPTZ',
};

const dq = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * The GoogleSQL the sources send, in DuckDB's dialect: backquoted paths become quoted names, `#`
 * comments `--`, "strings" 'strings', SHA256/TO_HEX the macros above, and cast types DuckDB's.
 * Names of the form dataset.table or project.dataset.table are collected for access checks.
 */
export function translate(sql: string, projectId: string, isDataset: (name: string) => boolean, defaultDataset?: string): Translated {
  type Token = { kind: 'word' | 'name' | 'other'; text: string; parts?: string[]; literal?: string };
  const tokens: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    const rest = sql.slice(i);
    if (/\s/.test(ch)) {
      const m = /^\s+/.exec(rest)![0];
      tokens.push({ kind: 'other', text: m });
      i += m.length;
    } else if (rest.startsWith('--') || ch === '#') {
      const end = sql.indexOf('\n', i);
      const text = sql.slice(i, end === -1 ? sql.length : end);
      tokens.push({ kind: 'other', text: `--${text.replace(/^(--|#)/, '')}` });
      i += text.length;
    } else if (rest.startsWith('/*')) {
      const end = sql.indexOf('*/', i + 2);
      const text = sql.slice(i, end === -1 ? sql.length : end + 2);
      tokens.push({ kind: 'other', text });
      i += text.length;
    } else if (ch === "'" || ch === '"') {
      const triple = rest.startsWith(ch.repeat(3));
      const quote = triple ? ch.repeat(3) : ch;
      let j = i + quote.length;
      let value = '';
      while (j < sql.length && !sql.startsWith(quote, j)) {
        // Only triple-quoted strings may hold a line break as it is.
        if (sql[j] === '\n' && !triple) throw new HttpError(400, 'invalidQuery', 'Syntax error: Unclosed string literal');
        if (sql[j] === '\\' && j + 1 < sql.length) {
          const escape = googleSqlEscape(sql, j + 1);
          value += escape.text;
          j += 1 + escape.length;
        } else {
          value += sql[j];
          j++;
        }
      }
      if (j >= sql.length) throw new HttpError(400, 'invalidQuery', 'Syntax error: Unclosed string literal');
      i = j + quote.length;
      if (sql[i] === "'" || sql[i] === '"') throw new HttpError(400, 'invalidQuery', 'Syntax error: concatenated string literals must be separated by whitespace or comments');
      // Literals separated by whitespace are one string.
      let k = tokens.length;
      while (k > 0 && tokens[k - 1]!.kind === 'other' && /^\s+$/.test(tokens[k - 1]!.text)) k--;
      const previous = tokens[k - 1]?.literal;
      if (previous !== undefined) {
        tokens.length = k - 1;
        value = previous + value;
      }
      tokens.push({ kind: 'other', text: `'${value.replace(/'/g, "''")}'`, literal: value });
    } else if (ch === '`') {
      let j = i + 1;
      let value = '';
      while (j < sql.length && sql[j] !== '`') {
        if (sql[j] === '\\' && j + 1 < sql.length) {
          value += sql[j + 1];
          j += 2;
        } else {
          value += sql[j];
          j++;
        }
      }
      if (j >= sql.length) throw new HttpError(400, 'invalidQuery', 'Syntax error: Unclosed identifier literal');
      tokens.push({ kind: 'name', text: '', parts: value.split('.') });
      i = j + 1;
    } else if (/[A-Za-z_]/.test(ch)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(rest)![0];
      tokens.push({ kind: 'word', text: m, parts: [m] });
      i += m.length;
    } else {
      tokens.push({ kind: 'other', text: ch });
      i++;
    }
  }

  // Paths: names joined by dots, e.g. crm.customers or `p.crm.customers` or `p`.crm.`customers`.
  const tables: TableRef[] = [];
  const out: string[] = [];
  const significant = (from: number, step: 1 | -1) => {
    for (let k = from; k >= 0 && k < tokens.length; k += step) if (!/^\s*$/.test(tokens[k]!.text) || tokens[k]!.kind !== 'other') return tokens[k];
    return undefined;
  };
  let castDepth: number[] = [];
  let depth = 0;
  for (let k = 0; k < tokens.length; k++) {
    const t = tokens[k]!;
    if (t.kind === 'other') {
      if (t.text === '(') depth++;
      if (t.text === ')') {
        castDepth = castDepth.filter((d) => d !== depth);
        depth--;
      }
      out.push(t.text);
      continue;
    }
    // Gather a dotted path starting here.
    const parts = [...t.parts!];
    let end = k;
    while (tokens[end + 1]?.text === '.' && (tokens[end + 2]?.kind === 'word' || tokens[end + 2]?.kind === 'name')) {
      parts.push(...tokens[end + 2]!.parts!);
      end += 2;
    }
    const upper = t.text.toUpperCase();
    const next = significant(end + 1, 1);
    const previous = significant(k - 1, -1);
    if (parts.length === 1 && t.kind === 'word') {
      if (next?.text === '(' && (upper === 'CAST' || upper === 'SAFE_CAST')) {
        castDepth.push(depth + 1);
        out.push(upper === 'SAFE_CAST' ? 'TRY_CAST' : 'CAST');
        continue;
      }
      if (next?.text === '(' && FUNCTIONS[upper]) {
        out.push(FUNCTIONS[upper]);
        continue;
      }
      if (previous?.kind === 'word' && previous.text.toUpperCase() === 'AS' && castDepth.includes(depth) && CAST_TYPES[upper]) {
        out.push(CAST_TYPES[upper]);
        continue;
      }
    }
    // project.dataset.table, or dataset.table: after FROM/JOIN or naming a dataset (not alias.column).
    const afterFrom = previous?.kind === 'word' && /^(FROM|JOIN)$/i.test(previous.text);
    if (parts.length === 3) tables.push({ project: parts[0]!, dataset: parts[1]!, table: parts[2]! });
    else if (parts.length === 2 && (afterFrom || isDataset(parts[0]!))) tables.push({ project: projectId, dataset: parts[0]!, table: parts[1]! });
    else if (parts.length === 1 && afterFrom && defaultDataset !== undefined) {
      // QueryRequest.defaultDataset: an unqualified table after FROM/JOIN is in that dataset.
      tables.push({ project: projectId, dataset: defaultDataset, table: parts[0]! });
      out.push(`${dq(defaultDataset)}.${dq(parts[0]!)}`);
      k = end;
      continue;
    }
    out.push(parts.map((p) => (t.kind === 'word' && parts.length === 1 ? p : dq(p))).join('.'));
    k = end;
  }
  return { text: out.join(''), tables };
}

/** One GoogleSQL escape after a backslash: the text it stands for and the characters it took. */
function googleSqlEscape(sql: string, at: number): { text: string; length: number } {
  const ch = sql[at]!;
  const simple: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '?': '?', '"': '"', "'": "'", '`': '`' };
  if (ch in simple) return { text: simple[ch]!, length: 1 };
  const hex = (digits: number, from: number) => (new RegExp(`^[0-9a-fA-F]{${digits}}$`).test(sql.slice(from, from + digits)) ? parseInt(sql.slice(from, from + digits), 16) : undefined);
  const code = ch === 'x' || ch === 'X' ? hex(2, at + 1) : ch === 'u' ? hex(4, at + 1) : ch === 'U' ? hex(8, at + 1) : /^[0-7]{3}$/.test(sql.slice(at, at + 3)) ? parseInt(sql.slice(at, at + 3), 8) : undefined;
  const length = ch === 'x' || ch === 'X' ? 3 : ch === 'u' ? 5 : ch === 'U' ? 9 : 3;
  if (code === undefined || code > 0x10ffff) throw new HttpError(400, 'invalidQuery', `Syntax error: Illegal escape sequence: \\${ch}`);
  return { text: String.fromCodePoint(code), length };
}

// ---- DuckDB values as BigQuery's REST JSON ---------------------------------------------------------

function fieldSchema(name: string, type: DuckDBType): FieldSchema {
  if (type.typeId === DuckDBTypeId.LIST || type.typeId === DuckDBTypeId.ARRAY) {
    const inner = fieldSchema(name, (type as DuckDBListType).valueType);
    return { ...inner, mode: 'REPEATED' };
  }
  if (type.typeId === DuckDBTypeId.STRUCT) {
    const s = type as DuckDBStructType;
    return { name, type: 'RECORD', mode: 'NULLABLE', fields: s.entryNames.map((n, i) => fieldSchema(n, s.entryTypes[i]!)) };
  }
  return { name, type: scalarType(type), mode: 'NULLABLE' };
}

function scalarType(type: DuckDBType): string {
  switch (type.typeId) {
    case DuckDBTypeId.BOOLEAN:
      return 'BOOLEAN';
    case DuckDBTypeId.TINYINT:
    case DuckDBTypeId.SMALLINT:
    case DuckDBTypeId.INTEGER:
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.UTINYINT:
    case DuckDBTypeId.USMALLINT:
    case DuckDBTypeId.UINTEGER:
    case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.HUGEINT:
      return 'INTEGER';
    case DuckDBTypeId.FLOAT:
    case DuckDBTypeId.DOUBLE:
      return 'FLOAT';
    case DuckDBTypeId.DECIMAL: {
      const d = type as unknown as { width: number; scale: number };
      return d.scale <= 9 && d.width - d.scale <= 29 ? 'NUMERIC' : 'BIGNUMERIC';
    }
    case DuckDBTypeId.BLOB:
      return 'BYTES';
    case DuckDBTypeId.DATE:
      return 'DATE';
    case DuckDBTypeId.TIMESTAMP:
    case DuckDBTypeId.TIMESTAMP_MS:
    case DuckDBTypeId.TIMESTAMP_S:
      return 'DATETIME';
    case DuckDBTypeId.TIMESTAMP_TZ:
      return 'TIMESTAMP';
    case DuckDBTypeId.TIME:
      return 'TIME';
    case DuckDBTypeId.VARCHAR:
      return type.alias === 'JSON' ? 'JSON' : 'STRING';
    default:
      return 'STRING';
  }
}

const pad = (n: number | bigint, width = 2) => String(n).padStart(width, '0');

/** Civil date-time of epoch microseconds: `YYYY-MM-DDTHH:MM:SS[.ffffff]`. */
function civil(micros: bigint): string {
  const ms = Number(micros / 1000n - (micros % 1000n < 0n ? 1n : 0n));
  const d = new Date(ms);
  const frac = ((micros % 1_000_000n) + 1_000_000n) % 1_000_000n;
  const base = `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  return frac === 0n ? base : `${base}.${pad(frac, 6)}`;
}

/** TIMESTAMP as float seconds, the default output (e.g. "1.7040672455E9"). */
function floatSeconds(micros: bigint): string {
  const seconds = Number(micros) / 1e6;
  if (seconds === 0) return '0.0';
  const exponent = Math.floor(Math.log10(Math.abs(seconds)));
  const mantissa = seconds / 10 ** exponent;
  return `${String(mantissa).includes('.') ? mantissa : `${mantissa}.0`}E${exponent}`;
}

function scalarValue(v: DuckDBValue, type: DuckDBType, int64Timestamp: boolean): unknown {
  switch (type.typeId) {
    case DuckDBTypeId.BOOLEAN:
      return v ? 'true' : 'false';
    case DuckDBTypeId.DECIMAL: {
      const text = (v as DuckDBDecimalValue).toString();
      return text.includes('.') ? text.replace(/0+$/, '').replace(/\.$/, '') : text;
    }
    case DuckDBTypeId.BLOB:
      return Buffer.from((v as DuckDBBlobValue).bytes).toString('base64');
    case DuckDBTypeId.DATE:
      return (v as DuckDBDateValue).toString();
    case DuckDBTypeId.TIMESTAMP:
      return civil((v as DuckDBTimestampValue).micros);
    case DuckDBTypeId.TIMESTAMP_TZ: {
      const micros = (v as DuckDBTimestampTZValue).micros;
      return int64Timestamp ? micros.toString() : floatSeconds(micros);
    }
    case DuckDBTypeId.TIME:
      return (v as DuckDBTimeValue).toString();
    default:
      return String(v);
  }
}

/** `{v: ...}`: scalars as strings, RECORD as `{f: [...]}`, REPEATED as `[{v}]`. */
function cell(v: DuckDBValue, type: DuckDBType, int64Timestamp: boolean): { v: unknown } {
  if (v === null) return { v: null };
  if (type.typeId === DuckDBTypeId.LIST || type.typeId === DuckDBTypeId.ARRAY) {
    const inner = (type as DuckDBListType).valueType;
    return { v: (v as DuckDBListValue).items.map((item) => cell(item, inner, int64Timestamp)) };
  }
  if (type.typeId === DuckDBTypeId.STRUCT) {
    const s = type as DuckDBStructType;
    const entries = (v as DuckDBStructValue).entries;
    return { v: { f: s.entryNames.map((n, i) => cell(entries[n] ?? null, s.entryTypes[i]!, int64Timestamp)) } };
  }
  return { v: scalarValue(v, type, int64Timestamp) };
}
