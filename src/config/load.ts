import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import type { z } from 'zod';
import type { MatchKey } from '../identity/keys.js';
import { ConfigError, formatPath, type ConfigIssue } from './errors.js';
import { expandEnv, type IssueAt } from './env.js';
import { configSchema, type RawConfig } from './schema.js';
import { resolveAlerts } from './alerts.js';
import { checkSemantics } from './semantics.js';
import { DEFAULT_CONNECTION, type AudienceConfig, type Config, type ConnectionConfig, type MetaConfig, type SourceConfig, type SyncConfig } from './types.js';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Reads, expands (`${VAR}`), validates and resolves a config file. Relative paths (state database,
 * DuckDB files, model files) are resolved against the config file's folder.
 * @throws ConfigError listing every problem found, each with its config path (and line).
 */
export function loadConfig(path: string, env: Env = process.env): Config {
  const configPath = resolve(path);
  let text: string;
  try {
    text = readFileSync(configPath, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
    throw new ConfigError(configPath, [
      { path: '', message: `cannot read the config file (${reason}): pass its path with -c or create audience-sync.yml` },
    ]);
  }
  return parseConfig(text, configPath, env);
}

/** Like `loadConfig`, for a config already in memory; `configPath` anchors relative paths. */
export function parseConfig(text: string, configPath: string, env: Env = process.env): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      configPath,
      doc.errors.map((e) => {
        const { line, col } = lines.linePos(e.pos[0]);
        return { path: '', message: `YAML syntax error: ${e.message.split('\n')[0] ?? e.message}`, line, column: col };
      }),
    );
  }

  let plain: unknown;
  try {
    plain = doc.toJS() ?? {};
  } catch (err) {
    // e.g. an alias bomb: the yaml library refuses to expand it.
    throw new ConfigError(configPath, [{ path: '', message: `YAML cannot be read: ${(err as Error).message}; remove the anchors/aliases that repeat content` }]);
  }
  const found: IssueAt[] = [];
  const expanded = expandEnv(plain, env, found);
  const parsed = configSchema.safeParse(expanded);
  if (!parsed.success) found.push(...parsed.error.issues.flatMap(fromZodIssue));
  found.push(...checkSemantics(expanded));

  const baseDir = dirname(configPath);
  const config = parsed.success ? resolveConfig(parsed.data, configPath, baseDir, found) : undefined;

  if (found.length > 0 || !config) {
    throw new ConfigError(configPath, locate(dedupe(found), doc, lines));
  }
  return config;
}

function fromZodIssue(issue: z.core.$ZodIssue): IssueAt[] {
  const at = issue.path as PropertyKey[];
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => {
      const keyAt = [...at, key];
      return { at: keyAt, path: formatPath(keyAt), message: 'unknown setting: check its spelling and where it is placed' };
    });
  }
  let message = issue.message;
  const missing = /^Invalid input: expected (\w+), received undefined$/.exec(message);
  if (missing) message = `is required (a ${missing[1]})`;
  else
    message = message
      .replace(/^Invalid input: expected (\w+), received (\w+)$/, 'must be a $1, not a $2')
      .replace(/^Invalid option: expected one of (.*)$/, 'must be one of $1');
  return [{ at, path: formatPath(at), message }];
}

function dedupe(issues: IssueAt[]): IssueAt[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.path}\u0000${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Adds the line of the nearest YAML node to each issue and orders them as they appear in the file. */
function locate(issues: IssueAt[], doc: Document, lines: LineCounter): ConfigIssue[] {
  const located = issues.map((issue, order) => {
    let line: number | undefined;
    for (let depth = issue.at.length; depth >= 0 && line === undefined; depth--) {
      const node: unknown = depth === 0 ? doc.contents : doc.getIn(issue.at.slice(0, depth), true);
      if (isNode(node) && node.range) line = lines.linePos(node.range[0]).line;
    }
    return { issue: { path: issue.path, message: issue.message, ...(line === undefined ? {} : { line }) }, order };
  });
  located.sort((a, b) => (a.issue.line ?? 0) - (b.issue.line ?? 0) || a.order - b.order);
  return located.map((l) => l.issue);
}

function resolveConfig(raw: RawConfig, configPath: string, baseDir: string, issues: IssueAt[]): Config {
  const sources: Record<string, SourceConfig> = {};
  for (const [name, source] of Object.entries(raw.sources)) sources[name] = resolveSource(source, baseDir);
  const meta = raw.meta && resolveMeta(raw.meta);
  const connections: Record<string, ConnectionConfig> = {};
  if (meta) connections[DEFAULT_CONNECTION] = { name: DEFAULT_CONNECTION, at: 'meta', ...meta };
  for (const [name, c] of Object.entries(raw.connections ?? {})) {
    // A `connections.default` beside a `meta:` block is reported by checkSemantics.
    if (!(name in connections)) connections[name] = { name, at: `connections.${name}`, ...resolveMeta(c) };
  }
  return {
    version: 1,
    configPath,
    baseDir,
    state: { url: resolveStateUrl(raw.state.url, baseDir) },
    ...(meta ? { meta: { ...meta, adAccountId: meta.adAccountId ?? '' } } : {}),
    connections,
    sources,
    syncs: raw.syncs.map((sync, i) => resolveSync(sync, i, baseDir, issues, connections)),
    ...(raw.server === undefined ? {} : { server: raw.server }),
    ...(raw.fleet === undefined ? {} : { fleet: raw.fleet }),
    ...(raw.alerts === undefined ? {} : { alerts: resolveAlerts(raw.alerts) }),
  };
}

type RawConnection = NonNullable<RawConfig['connections']>[string];

function resolveMeta(c: RawConnection): Omit<MetaConfig, 'adAccountId'> & { adAccountId?: string } {
  return {
    accessToken: c.accessToken ?? '',
    ...(c.adAccountId === undefined ? {} : { adAccountId: c.adAccountId }),
    apiVersion: c.apiVersion,
    graphUrl: c.graphUrl,
    ...(c.appSecret === undefined ? {} : { appSecret: c.appSecret }),
    ...(c.appId === undefined ? {} : { appId: c.appId }),
  };
}

function resolveSync(sync: RawConfig['syncs'][number], index: number, baseDir: string, issues: IssueAt[], connections: Readonly<Record<string, ConnectionConfig>>): SyncConfig {
  let model = sync.model ?? '';
  let modelFile: string | undefined;
  if (sync.modelFile !== undefined && sync.model === undefined) {
    modelFile = resolve(baseDir, sync.modelFile);
    const at = ['syncs', index, 'modelFile'];
    try {
      model = readFileSync(modelFile, 'utf8');
      if (model.trim() === '') issues.push({ at, path: formatPath(at), message: `${modelFile} is empty: put the model's SQL in it` });
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (err as Error).message;
      issues.push({ at, path: formatPath(at), message: `cannot read ${modelFile} (${reason}); paths are relative to the config file's folder` });
    }
  }
  const audience: AudienceConfig = sync.audience.create
    ? {
        create: {
          name: sync.audience.create.name,
          valueBased: sync.audience.create.valueBased,
          ...(sync.audience.create.description === undefined ? {} : { description: sync.audience.create.description }),
        },
      }
    : { id: sync.audience.id ?? '' };
  return {
    name: sync.name,
    source: sync.source,
    // An unknown connection or a missing ad account is reported by checkSemantics.
    connection: sync.connection ?? DEFAULT_CONNECTION,
    adAccountId: sync.adAccountId ?? connections[sync.connection ?? DEFAULT_CONNECTION]?.adAccountId ?? '',
    model,
    ...(modelFile === undefined ? {} : { modelFile }),
    primaryKey: sync.primaryKey,
    audience,
    mode: sync.mode,
    mapping: sync.mapping as Partial<Record<MatchKey, string>>,
    hashing: sync.hashing,
    dateFormat: sync.dateFormat,
    ...(sync.defaultPhoneCountry === undefined ? {} : { defaultPhoneCountry: sync.defaultPhoneCountry }),
    ...(sync.defaultLookalikeValue === undefined ? {} : { defaultLookalikeValue: sync.defaultLookalikeValue }),
    ...(sync.schedule === undefined ? {} : { schedule: sync.schedule }),
    maxAttempts: sync.maxAttempts,
    maxRemovalShare: sync.maxRemovalShare,
    minCoverageRatio: sync.minCoverageRatio,
    batchRows: sync.batchRows,
    changeDetection: sync.changeDetection,
  };
}

/** Relative file paths of a source resolved against the config's folder. */
function resolveSource(source: RawConfig['sources'][string], baseDir: string): SourceConfig {
  switch (source.type) {
    case 'duckdb':
      return {
        type: 'duckdb',
        path: source.path === ':memory:' ? ':memory:' : resolve(baseDir, source.path),
        ...(source.memoryLimit === undefined ? {} : { memoryLimit: source.memoryLimit }),
        ...(source.stateSchema === undefined ? {} : { stateSchema: source.stateSchema }),
      };
    case 'postgres':
    case 'redshift':
      return { type: source.type, url: source.url, ...(source.stateSchema === undefined ? {} : { stateSchema: source.stateSchema }) };
    case 'mysql': {
      if (source.ssl === undefined) return { type: 'mysql', url: source.url };
      const { ca, cert, key, rejectUnauthorized } = source.ssl;
      return {
        type: 'mysql',
        url: source.url,
        ssl: {
          ...(ca === undefined ? {} : { ca: resolve(baseDir, ca) }),
          ...(cert === undefined ? {} : { cert: resolve(baseDir, cert) }),
          ...(key === undefined ? {} : { key: resolve(baseDir, key) }),
          ...(rejectUnauthorized === undefined ? {} : { rejectUnauthorized }),
        },
      };
    }
    case 'bigquery':
      return {
        type: 'bigquery',
        projectId: source.projectId,
        ...(source.location === undefined ? {} : { location: source.location }),
        ...(source.dataset === undefined ? {} : { dataset: source.dataset }),
        ...(source.keyFile === undefined ? {} : { keyFile: resolve(baseDir, source.keyFile) }),
        ...(source.apiEndpoint === undefined ? {} : { apiEndpoint: source.apiEndpoint }),
        ...(source.stateSchema === undefined ? {} : { stateSchema: source.stateSchema }),
      };
    case 'snowflake':
      return { ...source, ...(source.privateKeyFile === undefined ? {} : { privateKeyFile: resolve(baseDir, source.privateKeyFile) }) };
    case 'databricks':
      return { ...source };
  }
}

/** `sqlite://rel/path.db` → `sqlite:///abs/rel/path.db`; memory and postgres URLs unchanged. */
export function resolveStateUrl(url: string, baseDir: string): string {
  if (url === 'sqlite::memory:' || url === 'sqlite://:memory:') return 'sqlite::memory:';
  if (!url.startsWith('sqlite://')) return url;
  const path = url.slice('sqlite://'.length);
  return `sqlite://${isAbsolute(path) ? path : resolve(baseDir, path)}`;
}
