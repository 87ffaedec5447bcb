/** Audience endpoints: create, list, read, update, delete, sessions (docs/graph-api.md, "Endpoints"). */
import { requireScope } from '../auth.js';
import { errors } from '../errors.js';
import { audienceField, isAudienceField, type AudienceRecord } from '../store/audiences.js';
import type { UploadSessionRecord } from '../store/sessions.js';
import { nowSeconds, type GraphContext, type GraphResult } from './context.js';
import { accountOrThrow, audienceOrThrow, requireTos } from './guards.js';
import { paginate } from './paging.js';
import { boolParam, fieldsParam, intParam, stringParam } from './params.js';

const CUSTOMER_FILE_SOURCES = ['USER_PROVIDED_ONLY', 'PARTNER_PROVIDED_ONLY', 'BOTH_USER_AND_PARTNER_PROVIDED'];
const SUBTYPES = ['CUSTOM', 'WEBSITE', 'APP', 'OFFLINE_CONVERSION', 'CLAIM', 'PARTNER', 'VIDEO', 'LOOKALIKE', 'ENGAGEMENT'];

export function createAudience(accountId: string) {
  return (ctx: GraphContext): GraphResult => {
    requireScope(ctx.token, 'write', 'create custom audiences');
    const account = accountOrThrow(ctx.store, accountId, ctx.method);
    requireTos(account);
    const name = stringParam(ctx.params, 'name');
    if (name === undefined || name.trim() === '') throw errors.invalidParameter('The parameter name is required');
    const subtype = stringParam(ctx.params, 'subtype') ?? 'CUSTOM';
    if (!SUBTYPES.includes(subtype)) throw errors.invalidParameter(`param subtype must be one of ${SUBTYPES.join(', ')}`);
    if (subtype === 'LOOKALIKE') return createLookalike(ctx, accountId, name);
    const source = stringParam(ctx.params, 'customer_file_source');
    if (source !== undefined && !CUSTOMER_FILE_SOURCES.includes(source)) {
      throw errors.invalidParameter(`param customer_file_source must be one of ${CUSTOMER_FILE_SOURCES.join(', ')}`);
    }
    const retentionDays = intParam(ctx.params, 'retention_days');
    if (retentionDays !== undefined && (retentionDays < 1 || retentionDays > 180)) {
      throw errors.invalidParameter('param retention_days must be between 1 and 180');
    }
    const existing = ctx.store.liveAudiences(accountId).filter((a) => a.subtype === 'CUSTOM').length;
    if (subtype === 'CUSTOM' && existing >= ctx.flags.audienceCap) {
      throw errors.invalidParameter(
        `This ad account already has ${existing} customer list audiences, the most allowed is ${ctx.flags.audienceCap}. Delete audiences you no longer use and try again.`,
      );
    }
    const description = stringParam(ctx.params, 'description');
    const isValueBased = boolParam(ctx.params, 'is_value_based');
    const audience = ctx.store.createAudience({
      accountId,
      name,
      subtype,
      nowSeconds: nowSeconds(ctx),
      ...(description === undefined ? {} : { description }),
      ...(source === undefined ? {} : { customerFileSource: source }),
      ...(isValueBased === undefined ? {} : { isValueBased }),
      ...(retentionDays === undefined ? {} : { retentionDays }),
    });
    return { body: { id: audience.id } };
  };
}

const LOOKALIKE_TYPES = ['similarity', 'reach', 'custom_ratio'];

/**
 * A lookalike of a customer-list audience of the same account: `origin_audience_id` must name a live
 * audience with members, `lookalike_spec` is JSON `{"country":"US","ratio":0.01,"type":"similarity"}`
 * (ratio 0.01–0.20). The origin then has a dependent lookalike, so deleting it gives 2656.
 */
function createLookalike(ctx: GraphContext, accountId: string, name: string): GraphResult {
  const originId = stringParam(ctx.params, 'origin_audience_id');
  if (originId === undefined || originId.trim() === '') throw errors.invalidParameter('The parameter origin_audience_id is required for a lookalike audience');
  const spec = lookalikeSpecParam(ctx.params.get('lookalike_spec'));
  const origin = ctx.store.audiences.get(originId.trim());
  if (!origin || origin.deleted || origin.accountId !== accountId) {
    throw errors.invalidParameter(`The origin audience ${originId} does not exist in ad account act_${accountId}`);
  }
  if (origin.members.size === 0) {
    throw errors.invalidParameter(`The origin audience ${originId} has no people yet: upload users to it before creating a lookalike`);
  }
  const description = stringParam(ctx.params, 'description');
  const audience = ctx.store.createAudience({
    accountId,
    name,
    subtype: 'LOOKALIKE',
    nowSeconds: nowSeconds(ctx),
    description: description ?? `Lookalike (${spec.country}, ${Math.round(spec.ratio * 100)}%) of ${origin.id}`,
  });
  origin.hasLookalikes = true;
  return { body: { id: audience.id } };
}

function lookalikeSpecParam(raw: unknown): { country: string; ratio: number; type: string } {
  let spec: unknown = raw;
  if (typeof raw === 'string') {
    try {
      spec = JSON.parse(raw);
    } catch {
      throw errors.invalidParameter('param lookalike_spec must be a JSON object');
    }
  }
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    throw errors.invalidParameter('The parameter lookalike_spec is required for a lookalike audience');
  }
  const { country, ratio, type = 'similarity' } = spec as Record<string, unknown>;
  if (typeof country !== 'string' || !/^[A-Z]{2}$/.test(country)) throw errors.invalidParameter('lookalike_spec.country must be a two-letter country code such as US');
  if (typeof ratio !== 'number' || !(ratio >= 0.01 && ratio <= 0.2)) throw errors.invalidParameter('lookalike_spec.ratio must be a number from 0.01 to 0.20');
  if (typeof type !== 'string' || !LOOKALIKE_TYPES.includes(type)) throw errors.invalidParameter(`lookalike_spec.type must be one of ${LOOKALIKE_TYPES.join(', ')}`);
  return { country, ratio, type };
}

export function listAudiences(accountId: string) {
  return (ctx: GraphContext): GraphResult => {
    requireScope(ctx.token, 'read', 'list custom audiences');
    accountOrThrow(ctx.store, accountId, ctx.method);
    const fields = audienceFields(ctx);
    const views = ctx.store
      .liveAudiences(accountId)
      .map((a) => audienceOrThrow(ctx.store, a.id, ctx.method, ctx.now, ctx.flags))
      .map((a) => audienceView(a, fields, ctx));
    return { body: paginate(views, ctx.params, ctx.flags, ctx.selfUrl) };
  };
}

export function readAudience(audienceId: string) {
  return (ctx: GraphContext): GraphResult => {
    requireScope(ctx.token, 'read', 'read custom audiences');
    const audience = audienceOrThrow(ctx.store, audienceId, ctx.method, ctx.now, ctx.flags);
    return { body: audienceView(audience, audienceFields(ctx), ctx) };
  };
}

export function updateAudience(audienceId: string) {
  return (ctx: GraphContext): GraphResult => {
    requireScope(ctx.token, 'write', 'update custom audiences');
    const audience = audienceOrThrow(ctx.store, audienceId, ctx.method, ctx.now, ctx.flags);
    requireTos(accountOrThrow(ctx.store, audience.accountId, ctx.method));
    const name = stringParam(ctx.params, 'name');
    const description = stringParam(ctx.params, 'description');
    if (name !== undefined) {
      if (name.trim() === '') throw errors.invalidParameter('param name must not be empty');
      audience.name = name;
    }
    if (description !== undefined) audience.description = description;
    audience.timeUpdated = nowSeconds(ctx);
    return { body: { success: true } };
  };
}

export function deleteAudience(audienceId: string) {
  return (ctx: GraphContext): GraphResult => {
    requireScope(ctx.token, 'write', 'delete custom audiences');
    const audience = audienceOrThrow(ctx.store, audienceId, ctx.method, ctx.now, ctx.flags);
    requireTos(accountOrThrow(ctx.store, audience.accountId, ctx.method));
    if (audience.hasLookalikes) throw errors.cannotDeleteWithLookalikes();
    audience.deleted = true;
    audience.deleteTime = nowSeconds(ctx);
    delete audience.replace;
    return { body: { success: true } };
  };
}

/**
 * GET {audience}/sessions: the upload sessions seen for this audience, all numbers as strings as Meta sends them.
 * A session whose last batch arrived is `processing` for `sessionProcessingMs` (progress climbing, nothing matched
 * yet), then `finished` at progress 100 with its match count.
 */
export function audienceSessions(audienceId: string) {
  return (ctx: GraphContext): GraphResult => {
    requireScope(ctx.token, 'read', 'read custom audiences');
    const audience = audienceOrThrow(ctx.store, audienceId, ctx.method, ctx.now, ctx.flags);
    const sessions = ctx.store.sessions.forAudience(audience.id).map((s) => {
      const { stage, progress } = sessionStage(s, ctx.now, ctx.flags.sessionProcessingMs);
      return {
        session_id: s.sessionId,
        stage,
        progress: String(progress),
        num_received: String(s.numReceived),
        num_matched: String(progress === 100 ? s.numMatched : 0),
        num_invalid_entries: String(s.numInvalid),
        start_time: String(Math.floor(s.startedAt / 1000)),
        end_time: s.stage === 'open' ? '0' : String(Math.floor(s.lastBatchAt / 1000)),
      };
    });
    return { body: paginate(sessions, ctx.params, ctx.flags, ctx.selfUrl) };
  };
}

function sessionStage(s: UploadSessionRecord, now: number, processingMs: number): { stage: string; progress: number } {
  if (s.stage === 'open') return { stage: 'uploading', progress: 0 };
  if (s.stage === 'failed') return { stage: 'failed', progress: 100 };
  const elapsed = now - s.lastBatchAt;
  if (elapsed < processingMs) return { stage: 'processing', progress: Math.min(99, Math.floor((elapsed / processingMs) * 100)) };
  return { stage: s.stage === 'timed_out' ? 'timed_out' : 'finished', progress: 100 };
}

function audienceFields(ctx: GraphContext): string[] {
  const fields = fieldsParam(ctx.params);
  const unknown = fields.find((f) => !isAudienceField(f));
  if (unknown !== undefined) throw errors.nonexistingField(unknown, 'CustomAudience');
  return fields;
}

/** `id` plus only the requested fields (a Graph node read returns nothing else). */
function audienceView(a: AudienceRecord, fields: readonly string[], ctx: GraphContext): Record<string, unknown> {
  const view: Record<string, unknown> = { id: a.id };
  for (const f of fields) {
    if (!isAudienceField(f)) continue;
    const value = audienceField(a, f, ctx.flags.deliveryThreshold);
    if (value !== undefined) view[f] = value;
  }
  return view;
}
