/**
 * Several Meta connections in one config: each has its own token (and app secret), its own Graph
 * client, and the syncs that name it. Tokens never cross connections: a client is made from one
 * connection's settings only.
 */
import { DEFAULT_CONNECTION, type Config, type ConnectionConfig } from '../config/index.js';
import { GraphClient, MetaApiError, type GraphClientEvent, type TokenOwner } from '../meta/index.js';
import { connectionInfo } from './tokens.js';
import type { TokenSource, Workspace } from './workspace.js';

/** A connection name the config does not have (a usage error). */
export class UnknownConnectionError extends Error {
  override readonly name = 'UnknownConnectionError';
}

/** The connection, or an error listing the config's connections. */
export function connectionOf(config: Pick<Config, 'connections' | 'configPath'>, name: string = DEFAULT_CONNECTION): ConnectionConfig {
  const connection = config.connections[name];
  if (connection) return connection;
  const known = Object.keys(config.connections).join(', ') || 'none';
  const hint = name === DEFAULT_CONNECTION ? ' (there is no meta: block or connections.default: name a connection)' : '';
  throw new UnknownConnectionError(`no Meta connection named "${name}" in ${config.configPath}${hint} (connections: ${known})`);
}

/**
 * Who owns a connection's token, for re-authorize messages. A config with only a `meta:` block keeps
 * the messages it always had; with several connections each message names its own.
 */
export function tokenOwner(config: Pick<Config, 'connections'>, connection: Pick<ConnectionConfig, 'name' | 'at'>): TokenOwner | undefined {
  if (connection.at === 'meta' && Object.keys(config.connections).length === 1) return undefined;
  return { name: connection.name, tokenSetting: `${connection.at}.accessToken` };
}

/** A Graph client with this connection's token (or the one given), app secret, URL and version. */
export function graphClientFor(
  config: Pick<Config, 'connections'>,
  connection: ConnectionConfig,
  opts: { accessToken?: string; onEvent?: (e: GraphClientEvent) => void } = {},
): GraphClient {
  const owner = tokenOwner(config, connection);
  return new GraphClient({
    accessToken: opts.accessToken ?? connection.accessToken,
    graphUrl: connection.graphUrl,
    apiVersion: connection.apiVersion,
    ...(connection.appSecret ? { appSecret: connection.appSecret } : {}),
    ...(owner ? { connection: owner } : {}),
    ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
  });
}

/** The names of the syncs that use a connection, in config order. */
export function syncsOf(config: Pick<Config, 'syncs'>, connection: string): string[] {
  return config.syncs.filter((s) => s.connection === connection).map((s) => s.name);
}

/** The ad accounts a connection is used with: its syncs' and its own default, digits, in config order. */
export function adAccountsOf(config: Pick<Config, 'syncs' | 'connections'>, connection: string): string[] {
  const own = config.connections[connection]?.adAccountId;
  const accounts = config.syncs.filter((s) => s.connection === connection).map((s) => s.adAccountId);
  return [...new Set([...accounts, ...(own ? [own] : [])])].filter((a) => a !== '');
}

/** An ad account reached through one connection's token. */
export interface AccountTarget {
  connection: string;
  /** Digits. */
  adAccountId: string;
}

/**
 * The ad accounts a command works on: the ones the config uses (its syncs' and its connections'
 * own), narrowed to the connection and account given. An account no sync uses is reached through the
 * connection given, else the default one (or the only one).
 * @throws UnknownConnectionError for an unknown connection, or when no account is left to work on.
 */
export function accountTargets(config: Pick<Config, 'syncs' | 'connections' | 'configPath'>, given: { connection?: string; adAccountId?: string } = {}): AccountTarget[] {
  if (given.connection !== undefined) connectionOf(config, given.connection);
  const seen = new Set<string>();
  const all: AccountTarget[] = [];
  const add = (connection: string, adAccountId: string | undefined) => {
    if (!adAccountId || seen.has(`${connection}/${adAccountId}`)) return;
    seen.add(`${connection}/${adAccountId}`);
    all.push({ connection, adAccountId });
  };
  for (const s of config.syncs) add(s.connection, s.adAccountId);
  for (const c of Object.values(config.connections)) add(c.name, c.adAccountId);
  const picked = all.filter((t) => (given.connection === undefined || t.connection === given.connection) && (given.adAccountId === undefined || t.adAccountId === given.adAccountId));
  if (picked.length > 0) return picked;
  const names = Object.keys(config.connections);
  if (given.adAccountId !== undefined) {
    const connection = given.connection ?? (names.includes(DEFAULT_CONNECTION) ? DEFAULT_CONNECTION : names.length === 1 ? names[0] : undefined);
    if (connection !== undefined) return [{ connection, adAccountId: given.adAccountId }];
    throw new UnknownConnectionError(`act_${given.adAccountId} is not used by any sync of ${config.configPath}: name the connection whose token reaches it (connections: ${names.join(', ')})`);
  }
  throw new UnknownConnectionError(`connection "${given.connection ?? DEFAULT_CONNECTION}" is used with no ad account in ${config.configPath}: name the ad account`);
}

/** `act_1 (connection a), act_2 (connection b)`. */
export function describeTargets(targets: readonly AccountTarget[]): string {
  return targets.map((t) => `act_${t.adAccountId} (connection ${t.connection})`).join(', ');
}

/** What a token looks like to Meta now. */
export type TokenState = 'ok' | 'expired' | 'invalid' | 'missing' | 'unknown';

export interface ConnectionStatus {
  name: string;
  /** Where the token comes from: "Connect with Facebook", the config, or nowhere yet. */
  tokenSource: TokenSource;
  /** `ok`: Meta accepts it; `expired`; `invalid`: refused for another reason (revoked, password changed); `missing`; `unknown`: Meta could not be asked. */
  state: TokenState;
  valid: boolean;
  /** ISO time the token expires, when known (a connected token's expiry); null when it does not expire or is not known. */
  expiresAt: string | null;
  /** Why the token is not `ok`, and what to do (never the token). */
  error?: string;
  /** Meta user (or system user) id the token belongs to, when Meta answered. */
  userId?: string;
  adAccounts: string[];
  syncs: string[];
}

/**
 * Each connection's token state, asked of Meta with one `/me` call per connection (the token itself
 * is never returned). A token that "Connect with Facebook" stored reports its expiry.
 */
export async function connectionStatus(ws: Workspace): Promise<ConnectionStatus[]> {
  const { config } = ws;
  const state = await ws.state();
  return Promise.all(
    Object.values(config.connections).map(async (c): Promise<ConnectionStatus> => {
      const base = { name: c.name, adAccounts: adAccountsOf(config, c.name), syncs: syncsOf(config, c.name) };
      const stored = c.appId !== undefined ? await connectionInfo(state, c.name) : undefined;
      const tokenSource = ws.tokenSource(c.name);
      const expiresAt = tokenSource === 'connected' ? (stored?.expiresAt ?? null) : null;
      let graph;
      try {
        graph = ws.graph(c.name);
      } catch (e) {
        // No token, or a stored one the key cannot open: the error says what to do.
        return { ...base, tokenSource, state: 'missing', valid: false, expiresAt, error: e instanceof Error ? e.message : String(e) };
      }
      try {
        const me = await graph.me();
        return { ...base, tokenSource, state: 'ok', valid: true, expiresAt, userId: me.id };
      } catch (e) {
        const error = e instanceof Error ? e.message : String(e);
        if (!(e instanceof MetaApiError) || e.kind !== 'auth') return { ...base, tokenSource, state: 'unknown', valid: false, expiresAt, error };
        return { ...base, tokenSource, state: e.subcode === 463 ? 'expired' : 'invalid', valid: false, expiresAt, error };
      }
    }),
  );
}
