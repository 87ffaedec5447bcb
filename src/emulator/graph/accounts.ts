/** Token, account and ToS endpoints (docs/graph-api.md, "Endpoints"). */
import { canUseAccount, requireScope } from '../auth.js';
import { errors } from '../errors.js';
import type { AccountRecord } from '../store/store.js';
import type { GraphContext, GraphResult } from './context.js';
import { accountOrThrow } from './guards.js';
import { paginate } from './paging.js';
import { fieldsParam } from './params.js';

const ACCOUNT_FIELDS = ['id', 'account_id', 'name', 'account_status', 'tos_accepted', 'user_tos_accepted'] as const;
const USER_FIELDS = ['id', 'name'] as const;

export function me(ctx: GraphContext): GraphResult {
  const fields = fieldsParam(ctx.params);
  const wanted = fields.length === 0 ? USER_FIELDS : fields;
  const body: Record<string, unknown> = {};
  for (const f of wanted) {
    if (f === 'id') body.id = ctx.token.userId;
    else if (f === 'name') body.name = ctx.token.userName;
    else throw errors.nonexistingField(f, 'User');
  }
  body.id = ctx.token.userId;
  return { body };
}

export function myAdAccounts(ctx: GraphContext): GraphResult {
  requireScope(ctx.token, 'read', 'list ad accounts');
  const fields = fieldsParam(ctx.params);
  const accounts = [...ctx.store.accounts.values()].filter((a) => canUseAccount(ctx.token, a.id)).map((a) => accountView(a, fields.length === 0 ? ['id', 'account_id'] : fields));
  return { body: paginate(accounts, ctx.params, ctx.flags, ctx.selfUrl) };
}

export function myPermissions(ctx: GraphContext): GraphResult {
  return { body: { data: ctx.token.scopes.map((permission) => ({ permission, status: 'granted' })) } };
}

export function adAccount(accountId: string) {
  return (ctx: GraphContext): GraphResult => {
    requireScope(ctx.token, 'read', 'read this ad account');
    const account = accountOrThrow(ctx.store, accountId, ctx.method);
    return { body: accountView(account, fieldsParam(ctx.params)) };
  };
}

/** POST act_{id}/customaudiencestos: the API edge that records acceptance (normally done in the UI). */
export function acceptTos(accountId: string) {
  return (ctx: GraphContext): GraphResult => {
    requireScope(ctx.token, 'write', 'accept the Custom Audience terms');
    const account = accountOrThrow(ctx.store, accountId, ctx.method);
    if (ctx.params.get('tos_id') === undefined) throw errors.invalidParameter('The parameter tos_id is required');
    account.tosAccepted = true;
    return { body: { success: true } };
  };
}

function accountView(a: AccountRecord, fields: readonly string[]): Record<string, unknown> {
  const view: Record<string, unknown> = { id: `act_${a.id}` };
  for (const f of fields) {
    if (!(ACCOUNT_FIELDS as readonly string[]).includes(f)) throw errors.nonexistingField(f, 'AdAccount');
    if (f === 'account_id') view.account_id = a.id;
    else if (f === 'name') view.name = a.name;
    else if (f === 'account_status') view.account_status = a.status;
    else if (f === 'tos_accepted' || f === 'user_tos_accepted') view[f] = a.tosAccepted ? { custom_audience_tos: 1 } : {};
  }
  return view;
}
