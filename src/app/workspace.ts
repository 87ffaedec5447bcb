import { join } from 'node:path';
import { DEFAULT_CONNECTION, loadConfig, type Config, type SourceConfig, type SyncConfig } from '../config/index.js';
import { checkModelColumns, pickUpMatches, runSync, planSync, type EngineEvent, type RunSummary, type SyncPlan, type SyncSpec } from '../engine/index.js';
import { createRecordEncoder } from '../identity/index.js';
import { GraphClient, type GraphClientEvent } from '../meta/index.js';
import { openSource, type Source } from '../sources/index.js';
import { openStateStore, type RecordCounts, type StateStore } from '../state/index.js';
import { engineGraph, engineSource, engineStore } from './adapters.js';
import { GIVEN_UP_SAMPLES, readGivenUp, type GivenUpReport } from './given-up.js';
import { forgetWarehouseState, readSnapshotSummary, recordedWarehouseState, refreshSnapshotSummary, snapshotGivenUp, summaryGivenUp, syncAdapters, withSyncLock } from './warehouse-state.js';
import { WarehouseSnapshot } from '../sources/snapshot.js';
import { withRunFolder } from './run-folder.js';
import { connectionOf, graphClientFor } from './connections.js';
import { connectedTokens } from './tokens.js';

/** Where a connection's token comes from: "Connect with Facebook", the config, or nowhere yet. */
export type TokenSource = 'connected' | 'config' | 'none';

/**
 * The composition root: one config file's state store, warehouses and Graph API client, and the
 * calls the CLI and the server make on them. Everything is opened lazily and closed by `close()`.
 */
export class Workspace {
  /** Open warehouses by name, with the settings they were opened with. */
  private readonly sources = new Map<string, { settings: string; source: Promise<Source> }>();
  /** Warehouses whose settings a reconfigure() changed: closed once nothing reads from them. */
  private readonly retired: Array<Promise<Source>> = [];
  private reads = 0;
  private statePromise: Promise<StateStore> | undefined;
  /** One Graph client per connection, made again when its settings or token change. */
  private readonly graphClients = new Map<string, { key: string; client: GraphClient }>();
  /** Tokens stored by "Connect with Facebook", by connection: they win over the config's. */
  private readonly connected = new Map<string, string>();
  /** Why a connection's stored token cannot be used (and it has no config token): said when it is needed. */
  private readonly unusable = new Map<string, Error>();

  /** `graph`: one client for every connection (tests). */
  constructor(
    private current: Config,
    private readonly options: { onGraphEvent?: (e: GraphClientEvent) => void; graph?: GraphClient; warehouse?: { flushRows?: number } } = {},
  ) {}

  /**
   * How many record writes of a warehouse-change-detection run wait in the local journal before they are
   * applied to the snapshot: AUDIENCE_SYNC_SNAPSHOT_FLUSH_ROWS when set (fewer keeps the local state
   * smaller, at the cost of more statements in the warehouse), else FLUSH_ROWS.
   */
  private get warehouseOptions(): { flushRows?: number } {
    if (this.options.warehouse) return this.options.warehouse;
    const n = Number(process.env.AUDIENCE_SYNC_SNAPSHOT_FLUSH_ROWS);
    return Number.isSafeInteger(n) && n > 0 ? { flushRows: n } : {};
  }

  get config(): Config {
    return this.current;
  }

  /**
   * Swaps in a re-read config (`serve` follows edits of the config and model files). A warehouse
   * whose settings changed is opened anew on its next use; runs already going keep theirs.
   * @throws Error when the state store would change: it stays open for the workspace's lifetime.
   */
  reconfigure(next: Config): void {
    if (next.state.url !== this.current.state.url) throw new Error('the state store of an open workspace cannot change');
    for (const [name, entry] of this.sources) {
      if (next.sources[name] !== undefined && sourceSettings(next, name) === entry.settings) continue;
      this.sources.delete(name);
      this.retired.push(entry.source);
    }
    this.current = next;
    if (this.reads === 0) void this.closeRetired();
  }

  /** Work that reads warehouses: a warehouse retired by reconfigure() is closed only once none is going on. */
  async reading<T>(fn: () => Promise<T>): Promise<T> {
    this.reads++;
    try {
      return await fn();
    } finally {
      if (--this.reads === 0) await this.closeRetired();
    }
  }

  /** Loads the config; a token stored by "Connect with Facebook" stands in for a missing or older config token. */
  static async open(configPath: string, env: NodeJS.ProcessEnv = process.env): Promise<Workspace> {
    const config = loadConfig(configPath, env);
    const ws = new Workspace(config);
    for (const [name, token] of await connectedTokens(config, env)) {
      if (typeof token === 'string') ws.useToken(name, token);
      else ws.unusable.set(name, token);
    }
    return ws;
  }

  /** Uses this token, stored by "Connect with Facebook", for the connection's calls from now on. */
  useToken(connection: string, accessToken: string): void {
    this.connected.set(connection, accessToken);
    this.unusable.delete(connection);
  }

  tokenSource(connection: string = DEFAULT_CONNECTION): TokenSource {
    if (this.options.graph) return 'config';
    if (this.connected.has(connection)) return 'connected';
    return connectionOf(this.config, connection).accessToken ? 'config' : 'none';
  }

  state(): Promise<StateStore> {
    this.statePromise ??= openStateStore(this.config.state.url);
    return this.statePromise;
  }

  /**
   * The Graph client of a connection (by default the one syncs naming none use), with that
   * connection's own token and app secret.
   * @throws UnknownConnectionError for a name the config does not have; Error when it has no token yet.
   */
  graph(connection: string = DEFAULT_CONNECTION): GraphClient {
    if (this.options.graph) return this.options.graph;
    const c = connectionOf(this.config, connection);
    const accessToken = this.connected.get(c.name) ?? c.accessToken;
    const unusable = this.unusable.get(c.name);
    if (!accessToken && unusable) throw unusable;
    if (!accessToken) {
      throw new Error(`no Meta access token for connection "${c.name}": set ${c.at}.accessToken in the config${c.appId ? `, or open the dashboard and use "Connect with Facebook" for "${c.name}"` : ''}`);
    }
    const key = JSON.stringify([c, accessToken, Object.keys(this.config.connections).length]);
    let entry = this.graphClients.get(c.name);
    if (entry?.key !== key) {
      entry = { key, client: graphClientFor(this.config, c, { accessToken, ...(this.options.onGraphEvent ? { onEvent: this.options.onGraphEvent } : {}) }) };
      this.graphClients.set(c.name, entry);
    }
    return entry.client;
  }

  source(name: string): Promise<Source> {
    let entry = this.sources.get(name);
    if (!entry) {
      const config = this.config.sources[name];
      if (!config) throw new Error(`no source named "${name}" in ${this.config.configPath}`);
      const opened = { settings: sourceSettings(this.config, name), source: this.openSourceNamed(name, config) };
      // Let a failed open be retried on the next call.
      opened.source.catch(() => {
        if (this.sources.get(name) === opened) this.sources.delete(name);
      });
      this.sources.set(name, opened);
      entry = opened;
    }
    return entry.source;
  }

  private async openSourceNamed(name: string, config: SourceConfig): Promise<Source> {
    const writable = keepsSnapshots(this.config, name) || (config.type === 'duckdb' && (await this.snapshotsRecordedOn(name)));
    return openSource(config, { baseDir: this.config.baseDir, name, ...(writable ? { writable } : {}) });
  }

  /**
   * True when a sync on the source has its records in a snapshot there although the config now says
   * local: its run moves them back and drops the tables, so DuckDB must open the file read-write.
   * Known only once the state store is open (runs open it first).
   */
  private async snapshotsRecordedOn(source: string): Promise<boolean> {
    if (!this.statePromise) return false;
    const state = await this.statePromise;
    for (const s of this.config.syncs) if (s.source === source && (await recordedWarehouseState(state, s.name))) return true;
    return false;
  }

  sync(name: string): SyncConfig {
    const sync = this.config.syncs.find((s) => s.name === name);
    if (!sync) {
      const known = this.config.syncs.map((s) => s.name).join(', ') || 'none';
      throw new UnknownSyncError(`no sync named "${name}" in ${this.config.configPath} (syncs: ${known})`);
    }
    return sync;
  }

  /**
   * Opens the sync's warehouse and checks its model against the mapping without reading rows.
   * Returns the problems, each with the config path at fault.
   */
  checkSync(name: string): Promise<Array<{ path: string; message: string }>> {
    return this.reading(() => this.checkModel(name));
  }

  private async checkModel(name: string): Promise<Array<{ path: string; message: string }>> {
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
    return checkModelColumns(toSyncSpec(sync), columns, (name, have) => source.findColumn(name, have)).map((i) => ({ path: at(i.path), message: i.message }));
  }

  /** Throws a ModelCheckError listing every problem when the model does not fit the sync. */
  async assertSyncRunnable(name: string): Promise<void> {
    const issues = await this.checkSync(name);
    if (issues.length > 0) throw new ModelCheckError(issues);
  }

  run(name: string, opts: { force?: boolean; trigger?: string; onEvent?: (e: EngineEvent) => void } = {}): Promise<RunSummary> {
    return this.reading(() => this.runNow(name, opts));
  }

  private async runNow(name: string, opts: { force?: boolean; trigger?: string; onEvent?: (e: EngineEvent) => void }): Promise<RunSummary> {
    const sync = this.sync(name);
    // The state first: where the sync's records are decides how its source is opened.
    await this.state();
    await this.assertSyncRunnable(name);
    const [source, state] = await Promise.all([this.source(sync.source), this.state()]);
    return this.inRunFolder(source, async (folder) =>
      runSync(
        toSyncSpec(sync),
        {
          ...(await syncAdapters(sync, this.stateSchemaOf(sync), source, state, { source: engineSource(source, folder), store: engineStore(state) }, this.warehouseOptions)),
          graph: engineGraph(this.graph(sync.connection)),
          adAccountId: sync.adAccountId,
          workDir: folder,
          ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
        },
        { ...(opts.force !== undefined ? { force: opts.force } : {}), trigger: opts.trigger ?? 'cli' },
      ),
    );
  }

  /** Records Meta's match counts on the sync's earlier runs that Meta has finished processing; returns their ids. */
  async pickUpMatches(name: string): Promise<number[]> {
    const sync = this.sync(name);
    return pickUpMatches(name, engineGraph(this.graph(sync.connection)), engineStore(await this.state()));
  }

  plan(name: string): Promise<SyncPlan & { givenUp: GivenUpReport }> {
    return this.reading(() => this.planNow(name));
  }

  private async planNow(name: string): Promise<SyncPlan & { givenUp: GivenUpReport }> {
    const sync = this.sync(name);
    await this.assertSyncRunnable(name);
    const [source, state] = await Promise.all([this.source(sync.source), this.state()]);
    const plan = await this.inRunFolder(source, async (folder) => {
      const adapters = await syncAdapters(sync, this.stateSchemaOf(sync), source, state, { source: engineSource(source, folder), store: engineStore(state) }, { forPlan: true });
      return planSync(toSyncSpec(sync), { ...adapters, workDir: folder });
    });
    return { ...plan, givenUp: await this.givenUp(name) };
  }

  /** The sync's records that used up their attempts: count, reasons, a few samples (hashes and EXTERN_IDs only). */
  async givenUp(name: string, sampleSize?: number): Promise<GivenUpReport> {
    const sync = this.sync(name);
    const schema = this.encoderSchema(sync);
    const state = await this.state();
    const recorded = await recordedWarehouseState(state, name);
    if (!recorded) return readGivenUp(state, sync, schema, sampleSize);
    return this.reading(async () => readGivenUp(state, sync, schema, sampleSize, snapshotGivenUp(new WarehouseSnapshot(await this.source(sync.source), recorded.schema, name))));
  }

  /**
   * The sync's records by status and those given up, for the dashboard and the API. With warehouse
   * change detection they are what the last run or retry read from the snapshot (a page view does
   * not query the warehouse).
   */
  async recordSummary(name: string): Promise<{ records: RecordCounts; givenUp: GivenUpReport }> {
    const sync = this.sync(name);
    const state = await this.state();
    if (!(await recordedWarehouseState(state, name))) {
      const [records, givenUp] = await Promise.all([state.countRecords(name), this.givenUp(name)]);
      return { records, givenUp };
    }
    const summary = await readSnapshotSummary(state, name);
    const givenUp = await readGivenUp(state, sync, this.encoderSchema(sync), GIVEN_UP_SAMPLES, summaryGivenUp(summary));
    return { records: summary?.records ?? { synced: 0, pending: 0, failed: 0, total: 0 }, givenUp };
  }

  /** The match keys of the sync's cells, in order (none when the mapping is refused: validate and doctor say why). */
  private encoderSchema(sync: SyncConfig): readonly string[] {
    try {
      const spec = toSyncSpec(sync);
      return createRecordEncoder(spec.mapping, spec.identity).schema;
    } catch {
      return [];
    }
  }

  /** Puts the sync's given-up records back in the queue (the next run sends them); returns how many. */
  async retryGivenUp(name: string): Promise<number> {
    const sync = this.sync(name);
    const state = await this.state();
    const recorded = await recordedWarehouseState(state, name);
    if (!recorded) return state.requeueGivenUp(sync.name, { maxAttempts: sync.maxAttempts });
    // The snapshot is written through its stage table, which a run of the sync may be using: hold the sync's lock.
    return this.reading(async () => {
      const snapshot = new WarehouseSnapshot(await this.source(sync.source), recorded.schema, name);
      return withSyncLock(state, name, async () => {
        const requeued = await snapshot.requeueGivenUp(sync.maxAttempts);
        await refreshSnapshotSummary(state, snapshot, sync.maxAttempts, GIVEN_UP_SAMPLES);
        return requeued;
      });
    });
  }

  /**
   * Forgets what the sync has sent (its records, here or in its warehouse snapshot, and its schema
   * signature), so the next run treats every row as new. Its runs stay; its audience too unless `forgetAudience`.
   */
  async resetSync(name: string, opts: { forgetAudience?: boolean } = {}): Promise<void> {
    const sync = this.sync(name);
    const state = await this.state();
    const recorded = await recordedWarehouseState(state, name);
    if (recorded) {
      await this.reading(async () => {
        const snapshot = new WarehouseSnapshot(await this.source(sync.source), recorded.schema, name);
        await withSyncLock(state, name, () => snapshot.drop());
      });
      await forgetWarehouseState(state, name);
    }
    await state.resetSync(name, opts);
  }

  /**
   * What `doctor` checks of a sync with warehouse change detection: its snapshot tables can be created
   * in the state schema, a table there written and dropped, and the snapshot read. Throws a
   * SourceError whose `fix` names the grant to give.
   */
  async checkSnapshotAccess(name: string): Promise<{ table: string; records: number }> {
    const sync = this.sync(name);
    const schema = this.stateSchemaOf(sync);
    if (sync.changeDetection !== 'warehouse' || schema === undefined) throw new Error(`sync "${name}" does not use warehouse change detection`);
    await this.state();
    return this.reading(async () => {
      const snapshot = new WarehouseSnapshot(await this.source(sync.source), schema, name);
      await snapshot.checkWrite();
      return { table: snapshot.name, records: await snapshot.count() };
    });
  }

  /** The schema the sync's source lets warehouse change detection write to, if any. */
  private stateSchemaOf(sync: SyncConfig): string | undefined {
    const source = this.config.sources[sync.source];
    return source && 'stateSchema' in source ? source.stateSchema : undefined;
  }

  async close(): Promise<void> {
    const sources = [...this.sources.values()].map((e) => e.source);
    this.sources.clear();
    await Promise.allSettled(sources.map(async (s) => (await s).close()));
    await this.closeRetired();
    if (this.statePromise) await (await this.statePromise).close();
    this.statePromise = undefined;
  }

  private async closeRetired(): Promise<void> {
    const retired = this.retired.splice(0);
    await Promise.allSettled(retired.map(async (s) => (await s).close()));
  }

  /** A private folder for one run's spools and spill files (see run-folder.ts). */
  private inRunFolder<T>(source: Source, fn: (folder: string) => Promise<T>): Promise<T> {
    return withRunFolder(join(this.config.baseDir, '.audience-sync', 'tmp'), async (folder) => {
      try {
        return await fn(folder);
      } finally {
        // Closes the DuckDB instance spilling into the folder before the folder goes.
        await source.release().catch(() => undefined);
      }
    });
  }
}

/** True when a sync on the source keeps its snapshot there: DuckDB then opens its file read-write. */
function keepsSnapshots(config: Config, source: string): boolean {
  return config.syncs.some((s) => s.source === source && s.changeDetection === 'warehouse');
}

/** What a source was opened with: a change of it (or of whether it is written to) opens it anew. */
function sourceSettings(config: Config, name: string): string {
  return JSON.stringify({ config: config.sources[name], writable: keepsSnapshots(config, name) });
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
      dateFormat: sync.dateFormat,
      ...(sync.defaultPhoneCountry ? { defaultPhoneCountry: sync.defaultPhoneCountry } : {}),
      ...(sync.defaultLookalikeValue !== undefined ? { defaultLookalikeValue: sync.defaultLookalikeValue } : {}),
      valueBased: 'create' in sync.audience ? sync.audience.create.valueBased : sync.mapping.LOOKALIKE_VALUE !== undefined,
    },
    audience: sync.audience,
    maxAttempts: sync.maxAttempts,
    maxRemovalShare: sync.maxRemovalShare,
    minCoverageRatio: sync.minCoverageRatio,
    batchRows: sync.batchRows,
    changeDetection: sync.changeDetection,
  };
}

/** A sync name the config does not have (a usage error: exit code 2). */
export class UnknownSyncError extends Error {
  override readonly name = 'UnknownSyncError';
}

export class ModelCheckError extends Error {
  override readonly name = 'ModelCheckError';
  constructor(readonly issues: ReadonlyArray<{ path: string; message: string }>) {
    super(issues.map((i) => `${i.path}: ${i.message}`).join('\n'));
  }
}
