import { join } from 'node:path';
import { loadConfig, type Config, type SyncConfig } from '../config/index.js';
import { checkModelColumns, runSync, planSync, type EngineEvent, type RunSummary, type SyncPlan, type SyncSpec } from '../engine/index.js';
import { GraphClient, type GraphClientEvent } from '../meta/index.js';
import { openSource, type Source } from '../sources/index.js';
import { openStateStore, type StateStore } from '../state/index.js';
import { engineSource, engineStore } from './adapters.js';
import { withConnectedToken } from './tokens.js';

/**
 * The composition root: one config file's state store, warehouses and Graph API client, and the
 * calls the CLI and the server make on them. Everything is opened lazily and closed by `close()`.
 */
export class Workspace {
  private readonly sources = new Map<string, Promise<Source>>();
  private statePromise: Promise<StateStore> | undefined;
  private graphClient: GraphClient | undefined;

  constructor(
    readonly config: Config,
    private readonly options: { onGraphEvent?: (e: GraphClientEvent) => void; graph?: GraphClient } = {},
  ) {}

  /** Loads the config; a token stored by "Connect with Facebook" stands in for a missing or older config token. */
  static async open(configPath: string, env: NodeJS.ProcessEnv = process.env): Promise<Workspace> {
    return new Workspace(await withConnectedToken(loadConfig(configPath, env), env));
  }

  state(): Promise<StateStore> {
    this.statePromise ??= openStateStore(this.config.state.url);
    return this.statePromise;
  }

  graph(): GraphClient {
    if (this.options.graph) return this.options.graph;
    const m = this.config.meta;
    this.graphClient ??= new GraphClient({
      accessToken: m.accessToken,
      graphUrl: m.graphUrl,
      apiVersion: m.apiVersion,
      ...(m.appSecret ? { appSecret: m.appSecret } : {}),
      ...(this.options.onGraphEvent ? { onEvent: this.options.onGraphEvent } : {}),
    });
    return this.graphClient;
  }

  source(name: string): Promise<Source> {
    let s = this.sources.get(name);
    if (!s) {
      const config = this.config.sources[name];
      if (!config) throw new Error(`no source named "${name}" in ${this.config.configPath}`);
      s = openSource(config, { baseDir: this.config.baseDir, name });
      // Let a failed open be retried on the next call.
      s.catch(() => this.sources.delete(name));
      this.sources.set(name, s);
    }
    return s;
  }

  sync(name: string): SyncConfig {
    const sync = this.config.syncs.find((s) => s.name === name);
    if (!sync) {
      const known = this.config.syncs.map((s) => s.name).join(', ') || 'none';
      throw new Error(`no sync named "${name}" in ${this.config.configPath} (syncs: ${known})`);
    }
    return sync;
  }

  /**
   * Opens the sync's warehouse and checks its model against the mapping without reading rows.
   * Returns the problems, each with the config path at fault.
   */
  async checkSync(name: string): Promise<Array<{ path: string; message: string }>> {
    const index = this.config.syncs.findIndex((s) => s.name === name);
    const sync = this.sync(name);
    const at = (p: string) => `syncs[${index}]${p ? `.${p}` : ''} (${sync.name})`;
    let columns: string[];
    let source: Source;
    try {
      source = await this.source(sync.source);
      columns = (await source.columns(sync.model)).map((c) => c.name);
    } catch (e) {
      return [{ path: at(sync.modelFile ? 'modelFile' : 'model'), message: e instanceof Error ? e.message : String(e) }];
    }
    return checkModelColumns(toSyncSpec(sync), columns, source.findColumn?.bind(source)).map((i) => ({ path: at(i.path), message: i.message }));
  }

  /** Throws a ModelCheckError listing every problem when the model does not fit the sync. */
  async assertSyncRunnable(name: string): Promise<void> {
    const issues = await this.checkSync(name);
    if (issues.length > 0) throw new ModelCheckError(issues);
  }

  async run(name: string, opts: { force?: boolean; trigger?: string; onEvent?: (e: EngineEvent) => void } = {}): Promise<RunSummary> {
    const sync = this.sync(name);
    await this.assertSyncRunnable(name);
    const [source, state] = await Promise.all([this.source(sync.source), this.state()]);
    return runSync(
      toSyncSpec(sync),
      {
        source: engineSource(source),
        store: engineStore(state),
        graph: this.graph(),
        adAccountId: this.config.meta.adAccountId,
        workDir: this.workDir(),
        ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
      },
      { ...(opts.force !== undefined ? { force: opts.force } : {}), trigger: opts.trigger ?? 'cli' },
    );
  }

  async plan(name: string): Promise<SyncPlan> {
    const sync = this.sync(name);
    await this.assertSyncRunnable(name);
    const [source, state] = await Promise.all([this.source(sync.source), this.state()]);
    return planSync(toSyncSpec(sync), { source: engineSource(source), store: engineStore(state), workDir: this.workDir() });
  }

  async close(): Promise<void> {
    const sources = [...this.sources.values()];
    this.sources.clear();
    await Promise.allSettled(sources.map(async (s) => (await s).close()));
    if (this.statePromise) await (await this.statePromise).close();
    this.statePromise = undefined;
  }

  private workDir(): string {
    return join(this.config.baseDir, '.audience-sync', 'tmp');
  }
}

export function toSyncSpec(sync: SyncConfig): SyncSpec {
  return {
    name: sync.name,
    model: sync.model,
    primaryKey: sync.primaryKey,
    mode: sync.mode,
    mapping: sync.mapping,
    identity: {
      hashing: sync.hashing,
      ...(sync.defaultPhoneCountry ? { defaultPhoneCountry: sync.defaultPhoneCountry } : {}),
      ...(sync.defaultLookalikeValue !== undefined ? { defaultLookalikeValue: sync.defaultLookalikeValue } : {}),
      valueBased: 'create' in sync.audience ? sync.audience.create.valueBased : sync.mapping.LOOKALIKE_VALUE !== undefined,
    },
    audience: sync.audience,
    maxAttempts: sync.maxAttempts,
    maxRemovalShare: sync.maxRemovalShare,
    batchRows: sync.batchRows,
  };
}

export class ModelCheckError extends Error {
  override readonly name = 'ModelCheckError';
  constructor(readonly issues: ReadonlyArray<{ path: string; message: string }>) {
    super(issues.map((i) => `${i.path}: ${i.message}`).join('\n'));
  }
}
