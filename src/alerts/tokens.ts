/**
 * The token-expiry condition's view of each Meta connection, from the same check the dashboard and
 * `GET /api/connections` show: valid when Meta answers `/me` with the connection's token, and its
 * expiry when it is a token "Connect with Facebook" stored (Meta reports one then). A token from the
 * environment has no known expiry: it is reported when Meta stops accepting it.
 */
import { connectionStatus, type ConnectionStatus } from '../app/connections.js';
import type { Workspace } from '../app/workspace.js';
import type { TokenStatus } from './types.js';

/** Connections Meta could not be asked about are left out: an outage says nothing about a token. */
export function tokenStatusOf(statuses: readonly ConnectionStatus[]): TokenStatus[] {
  return statuses
    .filter((s) => s.state !== 'unknown')
    .map((s) => ({
      connection: s.name,
      valid: s.valid,
      ...(s.expiresAt ? { expiresAt: new Date(s.expiresAt) } : {}),
      ...(!s.valid && s.error ? { reason: s.error } : {}),
    }));
}

/** Every connection of the workspace's config, checked against Meta now (one `/me` per connection). */
export async function workspaceTokenStatus(ws: Workspace): Promise<TokenStatus[]> {
  return tokenStatusOf(await connectionStatus(ws));
}
