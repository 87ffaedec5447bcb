/**
 * The Graph API request pipeline: URL and body limits → params → fault injection → version → auth →
 * route → rate limit → handler → usage headers. Errors always leave as Meta's JSON envelope, except the
 * HTML pages and dropped connections that Meta's front end produces (and faults imitate).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { authenticate, canUseAccount, credentialsOf, requireScope } from '../auth.js';
import { errors, GraphError, htmlErrorPage } from '../errors.js';
import type { FaultDecision } from '../faults.js';
import type { GraphMethod } from '../graph/context.js';
import { graphSegments, resolveRoute } from '../graph/router.js';
import type { RequestLogEntry } from '../request-log.js';
import type { EmulatorRuntime } from '../runtime.js';
import { graphParams, readBody } from './body.js';
import { sendHtml, sendJson } from './respond.js';

interface Outcome {
  status: number;
  body: unknown;
  headers: Record<string, string>;
  accountId?: string;
  error?: GraphError;
}

const AUTH_PARAMS = ['access_token', 'appsecret_proof', 'appsecret_time'];
const THROTTLE_FAULT_MINUTES = 2;

export async function handleGraph(rt: EmulatorRuntime, req: IncomingMessage, res: ServerResponse, url: URL, entry: RequestLogEntry): Promise<void> {
  const arrived = performance.now();
  const fault = rt.faults.decide(url.pathname);
  if (fault) entry.fault = fault.kind;
  if (fault?.kind === 'latency') await sleep(fault.latencyMs);

  const read = await readBody(req, rt.flags.maxBodyBytes);
  if (!read.ok) {
    const message = `Request body of ${read.bytes} bytes is larger than the ${rt.flags.maxBodyBytes} bytes allowed; send smaller batches`;
    if (rt.flags.oversizeBody === 'html') return finishHtml(rt, res, entry, 500, 'Internal Server Error');
    return finish(rt, res, entry, errorOutcome(errors.unknown(message)));
  }

  let outcome: Outcome;
  try {
    const params = await graphParams(url, req.headers['content-type'], read.body);
    const method = effectiveMethod(req.method ?? 'GET', params);
    entry.method = method;
    const creds = credentialsOf(req.headers.authorization, params);
    if (fault?.kind === 'token_expiry' && creds.token !== undefined) {
      const token = rt.store.tokens.get(creds.token);
      if (token) token.state = 'expired';
    }
    if (fault?.phase === 'before' && isTerminalFault(fault)) return respondFault(rt, req, res, entry, fault);
    outcome = runGraph(rt, { url, host: req.headers.host, method, params, creds, throttleFault: fault?.kind === 'throttle' }, entry);
  } catch (e) {
    outcome = errorOutcome(asGraphError(e));
  }
  await paceUpload(rt, url, arrived);
  if (fault?.phase === 'after') return respondFault(rt, req, res, entry, fault);
  finish(rt, res, entry, outcome);
}

const UPLOAD_PATH = /\/users(replace)?$/;

/** Holds an upload's answer until `uploadLatencyMs` after it arrived: Meta, not the emulator, sets the pace. */
async function paceUpload(rt: EmulatorRuntime, url: URL, arrived: number): Promise<void> {
  const wait = arrived + rt.flags.uploadLatencyMs - performance.now();
  if (wait > 0 && UPLOAD_PATH.test(url.pathname)) await sleep(wait);
}

interface GraphCall {
  url: URL;
  host: string | undefined;
  method: GraphMethod;
  params: Map<string, unknown>;
  creds: ReturnType<typeof credentialsOf>;
  throttleFault: boolean;
}

function runGraph(rt: EmulatorRuntime, call: GraphCall, entry: RequestLogEntry): Outcome {
  const now = rt.clock.now();
  let accountId: string | undefined;
  try {
    const segments = graphSegments(call.url.pathname, rt.flags);
    const token = authenticate(rt.store, call.creds, rt.appSecret, now);
    const route = resolveRoute(segments, call.method, (id) => rt.store.audiences.get(id)?.accountId);
    accountId = route.accountId;
    // An account (or audience) of another business looks, to this token, like one that does not exist.
    if (accountId !== undefined && !canUseAccount(token, accountId)) throw errors.unsupported(call.method, route.audienceId ?? `act_${accountId}`);
    if (route.accountId !== undefined) entry.adAccountId = route.accountId;
    if (route.audienceId !== undefined) entry.audienceId = route.audienceId;
    if (call.throttleFault) {
      requireScope(token, 'read', 'call the Marketing API');
      throw errors.throttled(rt.limiter.settings().kind, THROTTLE_FAULT_MINUTES, rt.limiter.headers(accountId, now, THROTTLE_FAULT_MINUTES));
    }
    rt.limiter.admit(accountId, now);
    const result = route.handle({ store: rt.store, flags: rt.flags, now, token, params: call.params, method: call.method, selfUrl: selfUrl(call) });
    if (result.rows !== undefined) entry.rows = result.rows;
    return { status: 200, body: result.body, headers: {}, ...(accountId === undefined ? {} : { accountId }) };
  } catch (e) {
    if (entry.rows === undefined) {
      const rows = rowsOf(call.params);
      if (rows !== undefined) entry.rows = rows;
    }
    return { ...errorOutcome(asGraphError(e)), ...(accountId === undefined ? {} : { accountId }) };
  }
}

function finish(rt: EmulatorRuntime, res: ServerResponse, entry: RequestLogEntry, outcome: Outcome): void {
  const headers = { ...rt.limiter.headers(outcome.accountId, rt.clock.now()), ...outcome.headers, 'facebook-api-version': 'v25.0' };
  if (outcome.error) {
    entry.errorCode = outcome.error.code;
    if (outcome.error.subcode !== undefined) entry.errorSubcode = outcome.error.subcode;
  }
  res.once('close', () => rt.log.finish(entry, outcome.status));
  sendJson(res, outcome.status, outcome.body, headers);
}

function finishHtml(rt: EmulatorRuntime, res: ServerResponse, entry: RequestLogEntry, status: number, title: string): void {
  res.once('close', () => rt.log.finish(entry, status));
  sendHtml(res, status, htmlErrorPage(status, title), { Connection: 'close' });
}

function respondFault(rt: EmulatorRuntime, req: IncomingMessage, res: ServerResponse, entry: RequestLogEntry, fault: FaultDecision): void {
  switch (fault.kind) {
    case 'drop':
      rt.log.finish(entry, 0);
      req.socket.destroy();
      return;
    case 'html5xx':
      return finishHtml(rt, res, entry, 502, 'Bad Gateway');
    case 'unknown':
      return finish(rt, res, entry, errorOutcome(errors.unknown()));
    default:
      return finish(rt, res, entry, errorOutcome(errors.transient()));
  }
}

/** Faults that replace the answer (latency and token expiry only change how the request runs). */
function isTerminalFault(fault: FaultDecision): boolean {
  return fault.kind === 'transient' || fault.kind === 'unknown' || fault.kind === 'html5xx' || fault.kind === 'drop';
}

function errorOutcome(error: GraphError): Outcome {
  return { status: error.httpStatus, body: error.envelope(), headers: error.headers, error };
}

function asGraphError(e: unknown): GraphError {
  if (e instanceof GraphError) return e;
  console.error('emulator: internal error', e);
  return errors.unknown(`Emulator internal error: ${e instanceof Error ? e.message : String(e)}`);
}

function effectiveMethod(httpMethod: string, params: Map<string, unknown>): GraphMethod {
  const override = params.get('method');
  if (typeof override === 'string' && ['GET', 'POST', 'DELETE'].includes(override.toUpperCase())) {
    return override.toUpperCase() as GraphMethod;
  }
  const m = httpMethod.toUpperCase();
  return m === 'DELETE' ? 'DELETE' : m === 'POST' ? 'POST' : 'GET';
}

function selfUrl(call: GraphCall): URL {
  const url = new URL(call.url.pathname + call.url.search, `http://${call.host ?? '127.0.0.1'}`);
  for (const p of AUTH_PARAMS) url.searchParams.delete(p);
  return url;
}

/** Row count of a refused upload, for the log (best effort, never throws). */
function rowsOf(params: Map<string, unknown>): number | undefined {
  let payload = params.get('payload');
  if (payload === undefined) return undefined;
  if (typeof payload === 'string') {
    try {
      payload = JSON.parse(payload) as unknown;
    } catch {
      return undefined;
    }
  }
  const data = (payload as { data?: unknown } | null)?.data;
  return Array.isArray(data) ? data.length : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
