/**
 * The Graph client the service's Workspace uses, with a token that can change while the service runs
 * ("Connect with Facebook" stores a new one). Every call goes to the client for the current token;
 * upload sessions already open keep the client they were opened with.
 */
import { GraphClient, type GraphClientEvent } from '../meta/index.js';
import type { MetaConfig } from '../config/index.js';

export class GraphSwitch {
  private current: GraphClient | undefined;
  private token: string | undefined;
  private tokenSource: 'connected' | 'config' | 'none' = 'none';
  /** Hand this to the Workspace: it forwards to the client for the current token. */
  readonly client: GraphClient;

  constructor(
    private meta: MetaConfig,
    private readonly onEvent?: (e: GraphClientEvent) => void,
  ) {
    if (meta.accessToken) this.use(meta.accessToken, 'config');
    this.client = new Proxy(Object.create(GraphClient.prototype) as GraphClient, {
      get: (_target, prop) => {
        const client = this.active();
        const value: unknown = Reflect.get(client, prop, client);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(client) : value;
      },
    });
  }

  /** Where the current token came from. */
  get source(): 'connected' | 'config' | 'none' {
    return this.tokenSource;
  }

  use(accessToken: string, source: 'connected' | 'config'): void {
    this.current = clientFor(this.meta, accessToken, this.onEvent);
    this.token = accessToken;
    this.tokenSource = source;
  }

  /** The config's meta section changed: a connected token stays in use, else the config's token. */
  reconfigure(meta: MetaConfig): void {
    if (JSON.stringify(meta) === JSON.stringify(this.meta)) return;
    this.meta = meta;
    if (this.tokenSource === 'connected' && this.token !== undefined) this.use(this.token, 'connected');
    else if (meta.accessToken) this.use(meta.accessToken, 'config');
    else {
      this.current = undefined;
      this.token = undefined;
      this.tokenSource = 'none';
    }
  }

  private active(): GraphClient {
    if (!this.current) {
      throw new Error('no Meta access token: set meta.accessToken in the config, or open the dashboard and use "Connect with Facebook"');
    }
    return this.current;
  }
}

export function clientFor(meta: MetaConfig, accessToken: string, onEvent?: (e: GraphClientEvent) => void): GraphClient {
  return new GraphClient({
    accessToken,
    graphUrl: meta.graphUrl,
    apiVersion: meta.apiVersion,
    ...(meta.appSecret ? { appSecret: meta.appSecret } : {}),
    ...(onEvent ? { onEvent } : {}),
  });
}
