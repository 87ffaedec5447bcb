/**
 * Membership uploads: /users add and remove, /usersreplace, act_/usersofanyaudience
 * (docs/graph-api.md: uploads, sessions, replace). Payloads are validated first, then the session rules decide whether the
 * batch lands; only then is membership touched, so a refused batch changes nothing.
 */
import { requireScope } from '../auth.js';
import { errors } from '../errors.js';
import { generatedSessionId } from '../ids.js';
import { countMatched } from '../matching.js';
import { invalidSamples, parseJsonParam, validatePayload, type ValidatedPayload } from '../payload.js';
import type { AudienceRecord } from '../store/audiences.js';
import { Membership } from '../store/membership.js';
import { isExpired, type UploadOp, type UploadSessionRecord } from '../store/sessions.js';
import { nowSeconds, type GraphContext, type GraphResult } from './context.js';
import { accountOrThrow, audienceOrThrow, requireNotFlagged, requireTos } from './guards.js';

interface SessionParam {
  sessionId: string;
  batchSeq: number;
  last: boolean;
}

const SUBCODE = {
  inProgress: 1870145,
  firstSeqNotOne: 1870147,
  partialFailure: 1870148,
  tooLarge: 1870144,
  expired: 1870158,
  finished: 1870159,
} as const;

/** POST {audience}/users (op 'add') and DELETE {audience}/users (op 'remove'). */
export function uploadUsers(audienceId: string, op: 'add' | 'remove') {
  return (ctx: GraphContext): GraphResult => {
    const audience = writableAudience(ctx, audienceId);
    if (audience.replace && ctx.flags.rejectUsersDuringReplace) {
      throw errors.failedUpdate('A replace is in progress for this audience; wait until it finishes', SUBCODE.inProgress);
    }
    const payload = validatedPayload(ctx, audience.isValueBased);
    if (op === 'add') checkDataSource(audience, payload);

    const param = sessionParam(ctx, false);
    const session = param ? continueUsersSession(ctx, audience, op, param) : undefined;
    const counted = !session || !param || !session.seqs.has(param.batchSeq);
    applyRows(audience.members, payload, op);
    if (op === 'add') audience.dataSource ??= payload.subtype;
    touch(audience, ctx);

    const sessionId = param?.sessionId ?? generatedSessionId();
    let numReceived = payload.received;
    if (session && param) {
      if (counted) countBatch(session, payload, param, ctx);
      numReceived = session.numReceived;
    }
    return { body: uploadResponse(audience.id, sessionId, numReceived, payload, ctx), rows: payload.received };
  };
}

/** POST {audience}/usersreplace: seq 1 starts the run, the last flag swaps membership in one step. */
export function replaceUsers(audienceId: string) {
  return (ctx: GraphContext): GraphResult => {
    const audience = writableAudience(ctx, audienceId);
    const payload = validatedPayload(ctx, audience.isValueBased);
    const param = sessionParam(ctx, true);
    if (!param) throw errors.invalidParameter('The parameter session is required for usersreplace');
    const existing = ctx.store.sessions.get(audience.accountId, param.sessionId);
    if (existing && (existing.audienceId !== audience.id || existing.op !== 'replace')) throw sessionReused(param.sessionId);

    let session: UploadSessionRecord;
    if (param.batchSeq === 1) {
      if (existing) throw closedOrRunning(existing);
      checkReplaceCanStart(ctx, audience, payload);
      session = ctx.store.sessions.open({ accountId: audience.accountId, sessionId: param.sessionId, audienceId: audience.id, op: 'replace', now: ctx.now });
      audience.replace = { sessionId: param.sessionId, startedAt: ctx.now, staging: new Membership() };
      audience.operationStatus = 414;
    } else {
      if (!existing) {
        throw errors.failedUpdate('The first batch of a replace session must have batch_seq 1; start again with batch_seq 1', SUBCODE.firstSeqNotOne);
      }
      if (existing.stage !== 'open' || !audience.replace || audience.replace.sessionId !== existing.sessionId) throw closedOrRunning(existing);
      checkDataSource(audience, payload);
      session = existing;
    }

    const run = audience.replace;
    if (!run) throw errors.unknown('Replace session lost its staging area');
    if (audience.failNextReplace) {
      audience.failNextReplace = false;
      session.stage = 'failed';
      delete audience.replace;
      audience.operationStatus = 415;
      throw errors.failedUpdate('Something went wrong while replacing the audience; run the whole replace again with a new session_id', SUBCODE.partialFailure);
    }
    const counted = !session.seqs.has(param.batchSeq);
    applyRows(run.staging, payload, 'add');
    if (counted) countBatch(session, payload, param, ctx);
    audience.dataSource ??= payload.subtype;
    if (param.last) {
      audience.members = run.staging;
      delete audience.replace;
      audience.operationStatus = 200;
      touch(audience, ctx);
    }
    return { body: uploadResponse(audience.id, param.sessionId, session.numReceived, payload, ctx), rows: payload.received };
  };
}

/** DELETE act_{id}/usersofanyaudience: removes the rows from every customer-list audience of the account. */
export function removeFromAllAudiences(accountId: string) {
  return (ctx: GraphContext): GraphResult => {
    requireScope(ctx.token, 'write', 'update custom audiences');
    requireTos(accountOrThrow(ctx.store, accountId, ctx.method));
    const payload = validatedPayload(ctx, false);
    for (const listed of ctx.store.liveAudiences(accountId)) {
      const audience = audienceOrThrow(ctx.store, listed.id, ctx.method, ctx.now, ctx.flags);
      if (audience.subtype !== 'CUSTOM' || audience.operationStatus === 471) continue;
      applyRows(audience.members, payload, 'remove');
      if (audience.replace) applyRows(audience.replace.staging, payload, 'remove');
      touch(audience, ctx);
    }
    const sessionId = sessionParam(ctx, false)?.sessionId ?? generatedSessionId();
    return {
      body: {
        account_id: accountId,
        session_id: sessionId,
        num_received: payload.received,
        num_invalid_entries: payload.invalid.length,
        invalid_entry_samples: invalidSamples(payload.invalid, ctx.flags.invalidSamplesShape),
      },
      rows: payload.received,
    };
  };
}

function writableAudience(ctx: GraphContext, audienceId: string): AudienceRecord {
  requireScope(ctx.token, 'write', 'update custom audiences');
  const audience = audienceOrThrow(ctx.store, audienceId, ctx.method, ctx.now, ctx.flags);
  requireTos(accountOrThrow(ctx.store, audience.accountId, ctx.method));
  requireNotFlagged(audience);
  return audience;
}

function validatedPayload(ctx: GraphContext, isValueBased: boolean): ValidatedPayload {
  return validatePayload(ctx.params.get('payload'), { isValueBased, flags: ctx.flags });
}

function applyRows(members: Membership, payload: ValidatedPayload, op: UploadOp): void {
  const { schema, rows } = payload;
  if (op === 'remove') for (const row of rows) members.remove(schema, row);
  else for (const row of rows) members.upsert(schema, row);
}

/** §6.12: the first upload fixes data_source.sub_type; another family is refused. */
function checkDataSource(audience: AudienceRecord, payload: ValidatedPayload): void {
  if (audience.dataSource === undefined || audience.dataSource === payload.subtype) return;
  throw errors.failedUpdate(
    `This audience was created from data source FILE_IMPORTED.${audience.dataSource}, which does not support data source FILE_IMPORTED.${payload.subtype}. Upload with the same schema as the first upload.`,
  );
}

function checkReplaceCanStart(ctx: GraphContext, audience: AudienceRecord, payload: ValidatedPayload): void {
  if (audience.subtype !== 'CUSTOM') throw errors.failedUpdate('Only customer list (CUSTOM) audiences can be replaced');
  if (audience.replace || audience.operationStatus === 414 || audience.operationStatus === 441) {
    throw errors.failedUpdate('Audience update in progress; wait until its operation_status is 200, then start the replace', SUBCODE.inProgress);
  }
  if (audience.members.size >= ctx.flags.replaceMaxMembers) {
    throw errors.failedUpdate(`Audiences with ${ctx.flags.replaceMaxMembers} or more people cannot be replaced; add and remove users instead`, SUBCODE.tooLarge);
  }
  if (audience.isValueBased !== payload.hasLookalikeValue) {
    throw errors.failedUpdate(
      audience.isValueBased
        ? 'This value-based audience must be replaced with a schema that includes LOOKALIKE_VALUE'
        : 'A replace cannot turn this audience into a value-based one',
    );
  }
  checkDataSource(audience, payload);
}

function closedOrRunning(session: UploadSessionRecord) {
  switch (session.stage) {
    case 'finished':
      return errors.failedUpdate('This replace session already finished (its last batch was flagged); use /users to add more', SUBCODE.finished);
    case 'timed_out':
      return errors.failedUpdate('This replace session ran past 90 minutes; send the rest with /users once the replace has finished', SUBCODE.expired);
    case 'failed':
      return errors.failedUpdate('This replace session failed; run the whole replace again with a new session_id', SUBCODE.partialFailure);
    case 'open':
      return errors.failedUpdate('Audience update in progress: batch_seq 1 of this replace session was already received; do not resend it', SUBCODE.inProgress);
  }
}

function sessionReused(sessionId: string) {
  return errors.invalidParameter(`session_id ${sessionId} is already used by another upload in this ad account; use a new session_id`);
}

/** /users sessions: duplicates of a received batch are re-applied harmlessly; new batches after the end are refused. */
function continueUsersSession(ctx: GraphContext, audience: AudienceRecord, op: UploadOp, param: SessionParam): UploadSessionRecord {
  const existing = ctx.store.sessions.get(audience.accountId, param.sessionId);
  if (!existing) {
    return ctx.store.sessions.open({ accountId: audience.accountId, sessionId: param.sessionId, audienceId: audience.id, op, now: ctx.now });
  }
  if (existing.audienceId !== audience.id || existing.op !== op) throw sessionReused(param.sessionId);
  if (existing.stage === 'timed_out' || isExpired(existing, ctx.now, ctx.flags.sessionWindowMs)) {
    existing.stage = 'timed_out';
    throw errors.failedUpdate('This upload session ran past 90 minutes and no longer takes batches; start a new session', SUBCODE.expired);
  }
  if (existing.stage === 'finished' && !existing.seqs.has(param.batchSeq)) {
    throw errors.failedUpdate('This upload session already received its last batch; start a new session', SUBCODE.finished);
  }
  return existing;
}

function countBatch(session: UploadSessionRecord, payload: ValidatedPayload, param: SessionParam, ctx: GraphContext): void {
  session.seqs.add(param.batchSeq);
  session.numReceived += payload.received;
  session.numInvalid += payload.invalid.length;
  session.numMatched += countMatched(payload.schema, payload.rows, ctx.flags);
  session.lastBatchAt = ctx.now;
  if (param.last) session.stage = 'finished';
}

function sessionParam(ctx: GraphContext, required: boolean): SessionParam | undefined {
  const raw = parseJsonParam(ctx.params.get('session'), 'session');
  if (raw === undefined || raw === null || raw === '') {
    if (required) throw errors.invalidParameter('The parameter session is required');
    return undefined;
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) throw errors.invalidParameter('param session must be a JSON object');
  const { session_id, batch_seq, last_batch_flag } = raw as Record<string, unknown>;
  const sessionId = typeof session_id === 'number' && Number.isSafeInteger(session_id) ? String(session_id) : session_id;
  if (typeof sessionId !== 'string' || !/^[0-9]+$/.test(sessionId)) {
    throw errors.invalidParameter('session.session_id is required and must be a positive integer');
  }
  const seq = batch_seq === undefined ? 1 : typeof batch_seq === 'string' && /^\d+$/.test(batch_seq) ? Number(batch_seq) : batch_seq;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) {
    throw errors.invalidParameter('session.batch_seq must be an integer of 1 or more');
  }
  const last = last_batch_flag === true || last_batch_flag === 'true';
  return { sessionId, batchSeq: seq, last };
}

function uploadResponse(audienceId: string, sessionId: string, numReceived: number, payload: ValidatedPayload, ctx: GraphContext) {
  return {
    audience_id: audienceId,
    session_id: sessionId,
    num_received: numReceived,
    num_invalid_entries: payload.invalid.length,
    invalid_entry_samples: invalidSamples(payload.invalid, ctx.flags.invalidSamplesShape),
  };
}

function touch(audience: AudienceRecord, ctx: GraphContext): void {
  audience.timeUpdated = nowSeconds(ctx);
  audience.timeContentUpdated = audience.timeUpdated;
}
