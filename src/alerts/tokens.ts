/**
 * The token-expiry condition's view of today's single Meta connection (the `meta:` block), named
 * `default`: valid when Meta answers `/me` with it, and its expiry when it is the token "Connect
 * with Facebook" stored (Meta reports one then). A token from the environment has no known expiry:
 * it is reported when Meta stops accepting it.
 */
import { connectionInfo } from '../app/tokens.js';
import { MetaApiError, type GraphClient } from '../meta/index.js';
import type { StateStore } from '../state/index.js';
import type { TokenStatus } from './types.js';

export const DEFAULT_CONNECTION = 'default';

/**
 * @param connected whether `graph` uses the token "Connect with Facebook" stored (its expiry is known).
 * @throws whatever stops Meta from answering other than a rejected token (network, outage): nothing is known then.
 */
export async function metaTokenStatus(graph: Pick<GraphClient, 'me'>, state: StateStore, connected: boolean): Promise<TokenStatus[]> {
  const info = connected ? await connectionInfo(state) : undefined;
  const expiresAt = info?.expiresAt ? { expiresAt: new Date(info.expiresAt) } : {};
  try {
    await graph.me();
  } catch (e) {
    if (e instanceof MetaApiError && e.kind === 'auth') return [{ connection: DEFAULT_CONNECTION, valid: false, reason: e.message, ...expiresAt }];
    throw e;
  }
  return [{ connection: DEFAULT_CONNECTION, valid: true, ...expiresAt }];
}
