import { BatchBuilder, MAX_ROWS_PER_REQUEST } from './batches.js';
import { MetaApiError, tosAction, type TokenOwner } from './errors.js';
import { newSessionId, normalizeAdAccountId, assertAudienceId } from './ids.js';
import { idString, isRecord } from './json.js';
import {
  asRecord,
  AUDIENCE_FIELDS,
  MAX_INVALID_SAMPLES,
  requireId,
  SESSION_FIELDS,
  toAdAccount,
  toAudienceInfo,
  toPermission,
  toSessionReport,
  unexpectedResponse,
} from './responses.js';
import { openSession } from './sessions.js';
import { GraphTransport, type GraphRequest } from './transport.js';
import type {
  AdAccount,
  AudienceInfo,
  Cell,
  GraphClientEvent,
  NewAudience,
  NewLookalike,
  Permission,
  UploadBatchResult,
  UploadOp,
  UploadSession,
  UploadSessionReport,
  UploadSummary,
} from './types.js';

export interface GraphClientOptions {
  accessToken: string;
  /** Default https://graph.facebook.com; point it at the emulator for tests and dry runs. */
  graphUrl?: string;
  /** Default v25.0. */
  apiVersion?: string;
  /** When set, every request carries appsecret_proof. */
  appSecret?: string;
  /** The connection the token belongs to, named in re-authorize messages (leave it out for a lone `meta:` block). */
  connection?: TokenOwner;
  /** Transient faults: exponential backoff with full jitter. */
  retry?: { maxAttempts?: number; baseDelayMs?: number; maxDelayMs?: number; maxThrottleWaits?: number };
  /** Longest single throttle wait accepted before failing with a `throttled` error. Default 15 min. */
  maxThrottleWaitMs?: number;
  /** Default 120 s. */
  requestTimeoutMs?: number;
  /** Rows per upload request; default and ceiling 10,000. */
  batchRows?: number;
  /** Byte budget per upload request body. Default 8 MB. */
  maxBatchBytes?: number;
  sleep?: (ms: number) => Promise<void>;
  onEvent?: (e: GraphClientEvent) => void;
  /** Source of randomness for jitter (tests make it deterministic). */
  random?: () => number;
}

export const DEFAULT_GRAPH_URL = 'https://graph.facebook.com';
export const DEFAULT_API_VERSION = 'v25.0';
const DEFAULT_MAX_BATCH_BYTES = 8 * 1024 * 1024;
/** What the start-of-run check reads: the owning ad account, name and description to report, and the size bounds to record. */
const CHECK_FIELDS = ['id', 'account_id', 'name', 'description', 'approximate_count_lower_bound', 'approximate_count_upper_bound'] as const;
const LIST_PAGE_SIZE = 20; // Meta's recommendation; larger pages can fail with code 1
const MAX_PAGES = 100_000;

/** Typed client for the customer-list Custom Audience parts of Meta's Marketing API. */
export class GraphClient {
  private readonly transport: GraphTransport;
  private readonly batchRows: number;
  private readonly maxBatchBytes: number;
  private readonly onEvent: (e: GraphClientEvent) => void;
  /** Which ad account owns an audience, learned from reads; used to give ToS errors their link. */
  private readonly audienceAccounts = new Map<string, string>();

  constructor(options: GraphClientOptions) {
    if (!options.accessToken) throw new Error('GraphClient needs an accessToken: set one in the connection configuration.');
    const apiVersion = options.apiVersion ?? DEFAULT_API_VERSION;
    if (!/^v\d+\.\d+$/.test(apiVersion)) throw new Error(`apiVersion "${apiVersion}" is not valid: use the form v25.0.`);
    this.batchRows = Math.min(MAX_ROWS_PER_REQUEST, Math.max(1, Math.floor(options.batchRows ?? MAX_ROWS_PER_REQUEST)));
    this.maxBatchBytes = options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
    this.onEvent = options.onEvent ?? (() => {});
    this.transport = new GraphTransport({
      accessToken: options.accessToken,
      graphUrl: options.graphUrl ?? DEFAULT_GRAPH_URL,
      apiVersion,
      appSecret: options.appSecret,
      ...(options.connection ? { connection: options.connection } : {}),
      retry: {
        maxAttempts: options.retry?.maxAttempts ?? 5,
        baseDelayMs: options.retry?.baseDelayMs ?? 500,
        maxDelayMs: options.retry?.maxDelayMs ?? 30_000,
        maxThrottleWaits: options.retry?.maxThrottleWaits ?? 8,
      },
      maxThrottleWaitMs: options.maxThrottleWaitMs ?? 15 * 60_000,
      requestTimeoutMs: options.requestTimeoutMs ?? 120_000,
      sleep: options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
      onEvent: this.onEvent,
      random: options.random ?? Math.random,
    });
  }

  // ---- token, accounts, permissions --------------------------------------------------------------

  async me(): Promise<{ id: string; name?: string }> {
    const r = asRecord(await this.transport.request({ method: 'GET', path: 'me', query: { fields: 'id,name' } }), 'a user');
    const me: { id: string; name?: string } = { id: requireId(r.id, 'a user with an id') };
    if (typeof r.name === 'string') me.name = r.name;
    return me;
  }

  async adAccounts(): Promise<AdAccount[]> {
    const rows = await this.collect({ method: 'GET', path: 'me/adaccounts', query: { fields: 'id,account_id,name,account_status', limit: 50 } });
    return rows.map(toAdAccount);
  }

  async permissions(): Promise<Permission[]> {
    return (await this.collect({ method: 'GET', path: 'me/permissions', query: { limit: 100 } })).map(toPermission);
  }

  async customAudienceTosAccepted(adAccountId: string): Promise<boolean> {
    const account = normalizeAdAccountId(adAccountId);
    const r = asRecord(
      await this.transport.request({ method: 'GET', path: `act_${account}`, query: { fields: 'tos_accepted' }, context: { adAccountId: account } }),
      'an ad account',
    );
    const tos = isRecord(r.tos_accepted) ? r.tos_accepted.custom_audience_tos : undefined;
    return tos === 1 || tos === true || tos === '1';
  }

  // ---- audiences ---------------------------------------------------------------------------------

  /**
   * Creates a customer-list audience. Creation is not idempotent, so after an ambiguous failure (the
   * request may have gone through) the account is searched for an audience with this name before trying
   * again: give audiences unique names.
   */
  async createCustomAudience(adAccountId: string, a: NewAudience): Promise<{ id: string }> {
    const account = normalizeAdAccountId(adAccountId);
    const body: Record<string, unknown> = {
      name: a.name,
      subtype: 'CUSTOM',
      customer_file_source: a.customerFileSource ?? 'USER_PROVIDED_ONLY',
    };
    if (a.description !== undefined) body.description = a.description;
    if (a.valueBased !== undefined) body.is_value_based = a.valueBased;
    return this.createAudienceOnce(account, a.name, body);
  }

  /** POST act_{id}/customaudiences, retried; after an ambiguous failure an audience of this name counts as created. */
  private async createAudienceOnce(account: string, name: string, body: Record<string, unknown>): Promise<{ id: string }> {
    const req: GraphRequest = { method: 'POST', path: `act_${account}/customaudiences`, body, context: { adAccountId: account } };
    const id = await this.transport.withRetries(req, async () => {
      try {
        return requireId(asRecord(await this.transport.attempt(req), 'a created audience').id, 'a created audience id');
      } catch (err) {
        if (err instanceof MetaApiError && err.ambiguous) {
          const existing = (await this.listAudiences(account)).find((x) => x.name === name);
          if (existing) return existing.id;
        }
        throw err;
      }
    });
    this.audienceAccounts.set(id, account);
    return { id };
  }

  /**
   * Creates a lookalike of a customer-list audience. Like `createCustomAudience`, an ambiguous failure is
   * settled by looking for an audience of this name before trying again.
   */
  async createLookalike(adAccountId: string, l: NewLookalike): Promise<{ id: string }> {
    const account = normalizeAdAccountId(adAccountId);
    const origin = assertAudienceId(l.originAudienceId);
    if (!/^[A-Z]{2}$/.test(l.country)) throw new Error(`lookalike country "${l.country}" is not a two-letter country code such as US`);
    if (!(l.ratio >= 0.01 && l.ratio <= 0.2)) throw new Error(`lookalike ratio ${l.ratio} is out of range: use 0.01 (1% of the country) to 0.20`);
    const body: Record<string, unknown> = {
      name: l.name,
      subtype: 'LOOKALIKE',
      origin_audience_id: origin,
      // Meta reads lookalike_spec as a JSON-encoded string parameter.
      lookalike_spec: JSON.stringify({ country: l.country, ratio: l.ratio, type: l.type ?? 'similarity' }),
    };
    if (l.description !== undefined) body.description = l.description;
    return this.createAudienceOnce(account, l.name, body);
  }

  async getAudience(audienceId: string, fields: readonly string[] = AUDIENCE_FIELDS): Promise<AudienceInfo> {
    const id = assertAudienceId(audienceId);
    try {
      const info = toAudienceInfo(await this.transport.request({ method: 'GET', path: id, query: { fields: fields.join(',') } }));
      if (info.accountId) this.audienceAccounts.set(id, info.accountId);
      return info;
    } catch (err) {
      throw await this.explain(err, id);
    }
  }

  /**
   * One cheap request that proves the token, the ad account and the audience together: reads the
   * audience with the ad account that owns it, and fails when that is not `adAccountId`.
   */
  async checkAudience(adAccountId: string, audienceId: string): Promise<AudienceInfo> {
    const account = normalizeAdAccountId(adAccountId);
    const info = await this.getAudience(audienceId, CHECK_FIELDS);
    if (info.accountId === undefined) throw unexpectedResponse('an audience with its account_id');
    if (info.accountId !== account) {
      throw new MetaApiError(
        {
          kind: 'permission',
          retryable: false,
          ambiguous: false,
          detail: `audience ${info.id} belongs to ad account act_${info.accountId}, not to act_${account}`,
          userAction: `Use an audience of act_${account}, or set the ad account to act_${info.accountId}.`,
        },
        'Audience check failed',
      );
    }
    return info;
  }

  /** Every customer-list audience of the ad account, following cursor pages until there is no `next`. */
  async listAudiences(adAccountId: string): Promise<AudienceInfo[]> {
    const account = normalizeAdAccountId(adAccountId);
    const rows = await this.collect({
      method: 'GET',
      path: `act_${account}/customaudiences`,
      query: { fields: AUDIENCE_FIELDS.join(','), limit: LIST_PAGE_SIZE },
      context: { adAccountId: account },
    });
    const audiences = rows.map(toAudienceInfo);
    for (const a of audiences) this.audienceAccounts.set(a.id, account);
    return audiences;
  }

  /** The audience's upload sessions with Meta's counts (received, matched, invalid), following every page. */
  async uploadSessions(audienceId: string): Promise<UploadSessionReport[]> {
    const id = assertAudienceId(audienceId);
    try {
      const rows = await this.collect({ method: 'GET', path: `${id}/sessions`, query: { fields: SESSION_FIELDS.join(','), limit: LIST_PAGE_SIZE } });
      return rows.map(toSessionReport);
    } catch (err) {
      throw await this.explain(err, id);
    }
  }

  /** Deletes the audience. A retry that finds it already gone (after an ambiguous failure) counts as done. */
  async deleteAudience(audienceId: string): Promise<void> {
    const id = assertAudienceId(audienceId);
    const req: GraphRequest = { method: 'DELETE', path: id };
    let uncertain = false;
    try {
      const r = await this.transport.withRetries(req, async () => {
        try {
          return asRecord(await this.transport.attempt(req), 'a delete result');
        } catch (err) {
          if (err instanceof MetaApiError && err.ambiguous) uncertain = true;
          throw err;
        }
      });
      if (r.success !== true) throw unexpectedResponse('a successful delete');
    } catch (err) {
      if (uncertain && err instanceof MetaApiError && err.kind === 'not_found') return;
      throw await this.explain(err, id);
    }
    this.audienceAccounts.delete(id);
  }

  // ---- uploads -----------------------------------------------------------------------------------

  /** A session for sending pre-split batches one at a time (the engine commits its state after each). */
  openUploadSession(op: UploadOp, audienceId: string, schema: readonly string[], opts: { estimatedTotal?: number } = {}): UploadSession {
    const id = assertAudienceId(audienceId);
    return openSession({
      transport: this.transport,
      op,
      audienceId: id,
      schema: [...schema],
      estimatedTotal: opts.estimatedTotal,
      limits: { maxRows: this.batchRows, maxBytes: this.maxBatchBytes - envelopeBytes(schema) },
      newSessionId: () => newSessionId(),
      onEvent: this.onEvent,
      explain: (err) => this.explain(err, id),
    });
  }

  /**
   * Sends any number of rows in one session, split into batches within batchRows and maxBatchBytes.
   * The last batch carries last_batch_flag, so one batch is held back until the next row shows up.
   */
  async upload(
    op: UploadOp,
    audienceId: string,
    schema: readonly string[],
    rows: Iterable<Cell[]> | AsyncIterable<Cell[]>,
    opts: { estimatedTotal?: number; onBatch?: (r: UploadBatchResult, batch: Cell[][]) => void | Promise<void> } = {},
  ): Promise<UploadSummary> {
    const session = this.openUploadSession(op, audienceId, schema, { estimatedTotal: opts.estimatedTotal });
    const builder = new BatchBuilder(session.limits, (row: Cell[]) => row);
    const summary: UploadSummary = { batches: 0, rows: 0, numInvalidEntries: 0, invalidEntrySamples: [] };
    let held: Cell[][] | undefined;

    const send = async (batch: Cell[][], last: boolean): Promise<void> => {
      const r = await session.send(batch, { last });
      summary.batches++;
      summary.rows += r.rows;
      summary.numInvalidEntries += r.numInvalidEntries;
      for (const s of r.invalidEntrySamples) {
        if (summary.invalidEntrySamples.length < MAX_INVALID_SAMPLES) summary.invalidEntrySamples.push(s);
      }
      await opts.onBatch?.(r, batch);
    };
    const completed = async (full: Cell[][]): Promise<void> => {
      if (held) await send(held, false);
      held = full;
    };

    if (Symbol.asyncIterator in rows) {
      for await (const row of rows) {
        const full = builder.add(row);
        if (full) await completed(full);
      }
    } else {
      for (const row of rows) {
        const full = builder.add(row);
        if (full) await completed(full);
      }
    }
    const rest = builder.flush();
    if (rest) await completed(rest);
    if (held) await send(held, true);
    else if (op === 'replace') {
      throw new MetaApiError(
        {
          kind: 'invalid_request',
          retryable: false,
          ambiguous: false,
          detail: 'a replace needs at least one row; Meta cannot replace an audience with nothing',
          userAction: 'To empty the audience, remove its members instead of replacing them.',
        },
        `Replace of audience ${audienceId} not sent`,
      );
    }
    return summary;
  }

  // ---- helpers -----------------------------------------------------------------------------------

  /** All `data` rows of a paged edge. Stops only when a page has no `next` (pages may be empty). */
  private async collect(req: GraphRequest): Promise<unknown[]> {
    const rows: unknown[] = [];
    const seen = new Set<string>();
    let after: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const r = asRecord(await this.transport.request({ ...req, query: { ...req.query, after } }), 'a list page');
      if (!Array.isArray(r.data)) throw unexpectedResponse('a list page with data');
      rows.push(...r.data);
      const cursor = nextCursor(r.paging);
      if (cursor === null) return rows;
      if (seen.has(cursor)) throw unexpectedResponse('a list whose cursor moves forward');
      seen.add(cursor);
      after = cursor;
    }
    throw unexpectedResponse(`a list of fewer than ${MAX_PAGES} pages`);
  }

  /** Adds the ad account's ToS link to a ToS error raised on an audience path. */
  private async explain(err: unknown, audienceId: string): Promise<unknown> {
    if (!(err instanceof MetaApiError) || err.kind !== 'tos') return err;
    let account = this.audienceAccounts.get(audienceId);
    if (account === undefined) {
      try {
        const r = asRecord(await this.transport.attempt({ method: 'GET', path: audienceId, query: { fields: 'account_id' } }), 'an audience');
        account = idString(r.account_id);
      } catch {
        account = undefined; // the lookup is best effort; the error without a concrete link still says what to do
      }
    }
    return account ? err.withUserAction(tosAction(account)) : err;
  }
}

/**
 * The cursor for the next page, or null on the last page. The `next` URL is not followed as is: it
 * points at graph.facebook.com even behind a proxy and may carry the access token.
 */
function nextCursor(paging: unknown): string | null {
  if (!isRecord(paging) || typeof paging.next !== 'string' || paging.next === '') return null;
  let fromUrl: string | null;
  try {
    fromUrl = new URL(paging.next).searchParams.get('after');
  } catch {
    fromUrl = null;
  }
  const cursors = isRecord(paging.cursors) ? paging.cursors : {};
  const cursor = fromUrl ?? (typeof cursors.after === 'string' ? cursors.after : null);
  if (cursor === null || cursor === '') throw unexpectedResponse('a page whose next link carries an after cursor');
  return cursor;
}

/** Bytes of an upload body besides the rows: schema, session fields, method override, slack. */
function envelopeBytes(schema: readonly string[]): number {
  return JSON.stringify(schema).length + 512;
}
