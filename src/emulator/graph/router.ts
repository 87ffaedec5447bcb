/** Maps `/{version}/{path}` to an endpoint (docs/graph-api.md, "Endpoints"). Anything else is 100/33, like Meta. */
import { errors } from '../errors.js';
import type { EmulatorFlags } from '../options.js';
import { acceptTos, adAccount, me, myAdAccounts, myPermissions } from './accounts.js';
import { audienceSessions, createAudience, deleteAudience, listAudiences, readAudience, updateAudience } from './audiences.js';
import type { GraphContext, GraphMethod, GraphResult, GraphRoute } from './context.js';
import { removeFromAllAudiences, replaceUsers, uploadUsers } from './users.js';

const VERSION = /^v\d+\.\d+$/;
const ACCOUNT = /^act_(\d+)$/;
const OBJECT_ID = /^\d+$/;

type Handler = (ctx: GraphContext) => GraphResult;
type MethodTable = Partial<Record<GraphMethod, Handler>>;

/** Splits off the version segment (optional, as on graph.facebook.com) and refuses configured expired versions. */
export function graphSegments(pathname: string, flags: Pick<EmulatorFlags, 'rejectedVersions'>): string[] {
  let segments: string[];
  try {
    segments = pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
  } catch {
    throw errors.unsupported('get', pathname);
  }
  const [first] = segments;
  if (first !== undefined && VERSION.test(first)) {
    if (flags.rejectedVersions.includes(first)) throw errors.deprecatedVersion(first);
    return segments.slice(1);
  }
  return segments;
}

/** Which audience an audience-scoped path concerns, so the caller can rate-limit by its ad account. */
export function resolveRoute(segments: readonly string[], method: GraphMethod, accountOfAudience: (id: string) => string | undefined): GraphRoute {
  const [node, edge, ...rest] = segments;
  const unsupported = () => errors.unsupported(method, node ?? '');
  if (node === undefined || rest.length > 0) throw unsupported();

  const pick = (table: MethodTable, scope: { accountId?: string; audienceId?: string } = {}): GraphRoute => {
    const handle = table[method];
    if (!handle) throw unsupported();
    return { ...scope, handle };
  };

  if (node === 'me') {
    if (edge === undefined) return pick({ GET: me });
    if (edge === 'adaccounts') return pick({ GET: myAdAccounts });
    if (edge === 'permissions') return pick({ GET: myPermissions });
    throw unsupported();
  }

  const account = ACCOUNT.exec(node)?.[1];
  if (account !== undefined) {
    const scope = { accountId: account };
    if (edge === undefined) return pick({ GET: adAccount(account) }, scope);
    if (edge === 'customaudiences') return pick({ GET: listAudiences(account), POST: createAudience(account) }, scope);
    if (edge === 'customaudiencestos') return pick({ POST: acceptTos(account) }, scope);
    if (edge === 'usersofanyaudience') return pick({ DELETE: removeFromAllAudiences(account) }, scope);
    throw unsupported();
  }

  if (OBJECT_ID.test(node)) {
    const accountId = accountOfAudience(node);
    if (accountId === undefined) throw unsupported();
    const scope = { accountId, audienceId: node };
    if (edge === undefined) return pick({ GET: readAudience(node), POST: updateAudience(node), DELETE: deleteAudience(node) }, scope);
    if (edge === 'users') return pick({ POST: uploadUsers(node, 'add'), DELETE: uploadUsers(node, 'remove') }, scope);
    if (edge === 'usersreplace') return pick({ POST: replaceUsers(node) }, scope);
    if (edge === 'sessions') return pick({ GET: audienceSessions(node) }, scope);
  }
  throw unsupported();
}
