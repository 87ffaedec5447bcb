// Rules that relate fields to each other. They read the expanded YAML defensively (it may be
// malformed elsewhere) so their findings are reported together with the schema's.
import { IDENTIFIER_KEYS, MATCH_KEYS, isMatchKey } from '../identity/keys.js';
import { formatPath } from './errors.js';
import type { IssueAt } from './env.js';
import { checkAlerts } from './alerts.js';
import { CONNECTION_NAME } from './schema.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

export function checkSemantics(raw: unknown): IssueAt[] {
  const issues: IssueAt[] = [];
  const add = (at: PropertyKey[], message: string) => issues.push({ at, path: formatPath(at), message });
  if (!isObj(raw)) return issues;
  const connections = checkConnections(raw, add);
  if (!Array.isArray(raw.syncs)) return issues;

  const sourceNames = isObj(raw.sources) ? Object.keys(raw.sources) : [];
  const firstIndexByName = new Map<string, number>();

  raw.syncs.forEach((sync: unknown, i) => {
    if (!isObj(sync)) return;
    const at = ['syncs', i];

    if (typeof sync.name === 'string') {
      const first = firstIndexByName.get(sync.name);
      if (first === undefined) firstIndexByName.set(sync.name, i);
      else add([...at, 'name'], `duplicate sync name "${sync.name}" (already used by syncs[${first}]): sync names must be unique`);
    }

    if (typeof sync.source === 'string' && sync.source.trim() !== '' && !sourceNames.includes(sync.source)) {
      const known = sourceNames.length > 0 ? `defined: ${sourceNames.join(', ')}` : 'no sources are defined';
      add([...at, 'source'], `unknown source "${sync.source}": define it under sources (${known})`);
    }

    if ((sync.model === undefined) === (sync.modelFile === undefined)) {
      add(at, 'set exactly one of model (the SQL) or modelFile (a file holding it)');
    }

    checkMapping(sync, at, add);
    checkSyncConnection(sync, at, connections, add);
  });
  for (const { at, message } of checkAlerts(raw.alerts, [...firstIndexByName.keys()])) add(at, message);
  checkWarehouseChangeDetection(raw.syncs, isObj(raw.sources) ? raw.sources : {}, add);
  return issues;
}

/**
 * `changeDetection: warehouse` needs a source that can hold a snapshot (not MySQL) and the schema it
 * may write; two syncs must not share a snapshot table (names differing only by "-" and "_" would).
 */
function checkWarehouseChangeDetection(syncs: unknown[], sources: Obj, add: (at: PropertyKey[], message: string) => void): void {
  const tables = new Map<string, string>();
  syncs.forEach((sync: unknown, i) => {
    if (!isObj(sync) || sync.changeDetection !== 'warehouse' || typeof sync.source !== 'string') return;
    const source = sources[sync.source];
    if (!isObj(source)) return;
    const at = ['syncs', i, 'changeDetection'];
    if (source.type === 'mysql') {
      add(at, `MySQL sources do not support warehouse change detection (source "${sync.source}"): use changeDetection: local`);
      return;
    }
    if (typeof source.stateSchema !== 'string' || source.stateSchema.trim() === '') {
      add(at, `warehouse change detection keeps a snapshot table in the warehouse: set sources.${sync.source}.stateSchema to a schema audience-sync may create tables in (e.g. audience_sync), or use changeDetection: local`);
      return;
    }
    if (typeof sync.name !== 'string') return;
    // Each sync has a snapshot table and a stage table: none may be another's.
    const table = snapshotTableName(sync.name);
    for (const name of [table, `${table}_stage`]) {
      const other = tables.get(`${sync.source}\u0000${name}`);
      if (other !== undefined && other !== sync.name) {
        add([...at.slice(0, 2), 'name'], `syncs "${other}" and "${sync.name}" would share the table ${source.stateSchema}.${name} in the warehouse: rename one of them`);
        return;
      }
    }
    for (const name of [table, `${table}_stage`]) tables.set(`${sync.source}\u0000${name}`, sync.name);
  });
}

/** The snapshot table of a sync in its source's stateSchema (the stage table adds `_stage`). */
export function snapshotTableName(sync: string): string {
  return `audience_sync_${sync.toLowerCase().replace(/[^a-z0-9_]/g, '_')}`;
}

type Add = (at: PropertyKey[], message: string) => void;

/** Connection name → where it is written and its ad account (undefined when it has none). */
type Connections = Map<string, { at: string; adAccountId: unknown }>;

const DEFAULT = 'default';

/** The `meta:` block is the connection named "default": it cannot be defined twice. */
function checkConnections(raw: Obj, add: Add): Connections {
  const found: Connections = new Map();
  const named = isObj(raw.connections) ? raw.connections : undefined;
  if (raw.meta === undefined && named === undefined) {
    add(['meta'], 'is required: set meta.accessToken and meta.adAccountId (or name several connections under connections:)');
  }
  if (isObj(raw.meta)) found.set(DEFAULT, { at: 'meta', adAccountId: raw.meta.adAccountId });
  for (const [name, c] of Object.entries(named ?? {})) {
    if (!CONNECTION_NAME.test(name)) {
      add(['connections', name], `"${name}" is not a connection name: use a slug (lower-case letters, digits, "-" or "_", starting with a letter or digit)`);
      continue;
    }
    if (name === DEFAULT && isObj(raw.meta)) {
      add(['connections', name], 'clashes with the meta: block, which is the connection named "default": keep one of them (move these settings into meta:, or give this connection another name)');
      continue;
    }
    found.set(name, { at: `connections.${name}`, adAccountId: isObj(c) ? c.adAccountId : undefined });
  }
  return found;
}

function checkSyncConnection(sync: Obj, at: PropertyKey[], connections: Connections, add: Add): void {
  if (connections.size === 0) return; // reported once, at meta
  const name = typeof sync.connection === 'string' ? sync.connection : DEFAULT;
  const known = [...connections].map(([n, c]) => (c.at === 'meta' ? `${n} (the meta: block)` : n)).join(', ');
  const connection = connections.get(name);
  if (!connection) {
    if (sync.connection === undefined) add([...at, 'connection'], `is required: there is no default connection (no meta: block or connections.default); name one of: ${known}`);
    else add([...at, 'connection'], `unknown connection "${name}": define it under connections (defined: ${known})`);
    return;
  }
  if (sync.adAccountId === undefined && connection.adAccountId === undefined) {
    add([...at, 'adAccountId'], `is required: the sync names no ad account and its connection "${name}" has none (${connection.at}.adAccountId); set adAccountId: "act_..." on the sync or on the connection`);
  }
}

function checkMapping(sync: Obj, at: PropertyKey[], add: (at: PropertyKey[], message: string) => void): void {
  if (!isObj(sync.mapping)) return;
  const keys = Object.keys(sync.mapping);
  for (const key of keys) {
    if (isMatchKey(key)) continue;
    const upper = key.toUpperCase();
    const hint = isMatchKey(upper) ? `did you mean ${upper}? Match keys are upper case` : `use one of ${MATCH_KEYS.join(', ')}`;
    add([...at, 'mapping', key], `"${key}" is not a Meta match key: ${hint}`);
  }
  if (!keys.some((k) => (IDENTIFIER_KEYS as readonly string[]).includes(k))) {
    add([...at, 'mapping'], `map at least one identifier key (${IDENTIFIER_KEYS.join(', ')}) to a column`);
  }

  const create = isObj(sync.audience) && isObj(sync.audience.create) ? sync.audience.create : undefined;
  const valueBased = create?.valueBased === true;
  const mapsValue = keys.includes('LOOKALIKE_VALUE');
  if (create && !valueBased && mapsValue) {
    add([...at, 'mapping', 'LOOKALIKE_VALUE'], 'LOOKALIKE_VALUE only applies to value-based audiences: set audience.create.valueBased: true or remove it');
  }
  if (create && !valueBased && sync.defaultLookalikeValue !== undefined) {
    add([...at, 'defaultLookalikeValue'], 'only applies to value-based audiences: set audience.create.valueBased: true or remove it');
  }
  if (valueBased && !mapsValue && sync.defaultLookalikeValue === undefined) {
    add([...at, 'mapping'], 'a value-based audience needs a value: map LOOKALIKE_VALUE to a column or set defaultLookalikeValue');
  }
}
