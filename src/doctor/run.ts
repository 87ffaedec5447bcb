// Gathers what the doctor judges: token, permissions, ad account, ToS and each sync's audience from
// the Graph API; schema signatures from the state store; model columns from the warehouse.
import { adAccountsOf, syncsOf } from '../app/connections.js';
import { toSyncSpec, type Workspace } from '../app/workspace.js';
import type { ConnectionConfig } from '../config/index.js';
import { matchHealth } from '../engine/index.js';
import { createRecordEncoder } from '../identity/index.js';
import { MetaApiError, type GraphClient } from '../meta/index.js';
import { SourceError, type SourceCheck } from '../sources/index.js';
import type { StateStore } from '../state/index.js';
import {
  checkAdAccount,
  checkApiVersion,
  checkAudience,
  checkGivenUp,
  checkMatchRate,
  checkModel,
  checkPermissions,
  checkSchema,
  checkTos,
  doctorReport,
  type Check,
  type DoctorReport,
} from './checks.js';

const reason = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Runs every check; never throws for what it checks (a failure becomes a failed check). */
export async function runDoctor(ws: Workspace, opts: { now?: Date } = {}): Promise<DoctorReport> {
  const { config } = ws;
  const checks: Check[] = [];
  // Each connection's token is checked once, with each ad account it is used with.
  const graphs = new Map<string, GraphClient | undefined>();
  for (const connection of Object.values(config.connections)) graphs.set(connection.name, await checkConnection(ws, connection, checks, opts.now ?? new Date()));

  const metaCheck = async (connection: string, subject: string, fn: (g: GraphClient) => Promise<Check | Check[]>): Promise<void> => {
    const graph = graphs.get(connection);
    if (!graph) {
      checks.push({ subject, status: 'skip', message: `not checked: the token${Object.keys(config.connections).length > 1 ? ` of connection ${connection}` : ''} does not work` });
      return;
    }
    try {
      const result = await fn(graph);
      checks.push(...(Array.isArray(result) ? result : [result]));
    } catch (e) {
      checks.push({ subject, status: 'fail', message: reason(e), fix: e instanceof MetaApiError ? e.userAction : 'see the message; run again with AUDIENCE_SYNC_DEBUG=1 for details' });
    }
  };

  let state: StateStore | undefined;
  try {
    state = await ws.state();
  } catch (e) {
    checks.push({ subject: 'state store', status: 'fail', message: reason(e), fix: 'check state.url in the config and that its folder (or database) is writable' });
  }

  // What each warehouse says of each model (Source.doctor): its sign-in is shown once per source,
  // before the syncs, from the first sync that reads it.
  const found = new Map<string, SourceCheck[]>();
  const reachable = new Set<string>();
  const sourceDoctor = async (sourceName: string, model: string): Promise<SourceCheck[]> => {
    try {
      return await (await ws.source(sourceName)).doctor(model);
    } catch (e) {
      return [{ subject: 'sign-in', status: 'fail', message: reason(e) }];
    }
  };
  for (const name of new Set(ws.config.syncs.map((s) => s.source))) {
    const first = ws.config.syncs.find((s) => s.source === name)!;
    const result = await sourceDoctor(name, first.model);
    found.set(first.name, result);
    const signIn = result.find((c) => c.subject === 'sign-in');
    if (signIn?.status === 'fail') {
      checks.push({ subject: `source ${name}`, status: 'fail', message: signIn.message, fix: signIn.fix ?? `check sources.${name} in the config (url, credentials, TLS) and that the warehouse is reachable from here` });
    } else {
      checks.push({ subject: `source ${name}`, status: 'ok', message: signIn?.message ?? 'connected' });
      reachable.add(name);
    }
  }

  for (const sync of ws.config.syncs) {
    const at = (what: string) => `sync ${sync.name}: ${what}`;
    const spec = toSyncSpec(sync);
    const saved = state ? await state.getSync(sync.name).catch(() => undefined) : undefined;
    const audienceId = 'id' in sync.audience ? sync.audience.id : (saved?.audienceId ?? null);

    if (audienceId === null) {
      const name = 'create' in sync.audience ? sync.audience.create.name : '';
      checks.push({ subject: at('audience'), status: 'ok', message: `"${name}" is created by the first run` });
    } else {
      await metaCheck(sync.connection, at('audience'), async (g) => {
        try {
          return checkAudience(at('audience'), await g.getAudience(audienceId), { valueBased: spec.identity.valueBased === true });
        } catch (e) {
          if (!(e instanceof MetaApiError) || e.kind !== 'not_found') throw e;
          return {
            subject: at('audience'),
            status: 'fail',
            message: `audience ${audienceId} does not exist or this token cannot see it`,
            fix: 'id' in sync.audience
              ? 'check audience.id (`audience-sync audiences list` shows the account\'s audiences), or share the audience with this ad account'
              : `the audience this sync created is gone: run \`audience-sync reset ${sync.name} --forget-audience\` (or set audience.id) so the next run creates a new one`,
          };
        }
      });
    }

    try {
      const schema = createRecordEncoder(spec.mapping, spec.identity).schema.join(',');
      checks.push(checkSchema(at('schema'), schema, saved?.schemaSignature ?? null));
    } catch (e) {
      checks.push({ subject: at('schema'), status: 'fail', message: reason(e), fix: 'fix the mapping; `audience-sync validate` checks again' });
    }

    if (state) {
      try {
        checks.push(checkGivenUp(at('records given up'), sync.name, await ws.givenUp(sync.name)));
      } catch (e) {
        checks.push({ subject: at('records given up'), status: 'fail', message: reason(e), fix: 'check state.url in the config and that the state store answers' });
      }
      await state
        .listRuns({ sync: sync.name, limit: 20 })
        .then((runs) => checks.push(checkMatchRate(at('match rate'), matchHealth(runs))))
        .catch((e: unknown) => checks.push({ subject: at('match rate'), status: 'fail', message: reason(e), fix: 'check state.url in the config and that the state store answers' }));
    }

    if (!reachable.has(sync.source)) {
      checks.push({ subject: at('model'), status: 'skip', message: `not checked: source ${sync.source} cannot be reached` });
      continue;
    }
    let runnable = false;
    try {
      const issues = await ws.checkSync(sync.name);
      runnable = issues.length === 0;
      checks.push(...checkModel(at('model'), issues));
    } catch (e) {
      checks.push({ subject: at('model'), status: 'fail', message: reason(e), fix: 'check the source settings and that the warehouse is reachable' });
    }
    if (sync.changeDetection === 'warehouse') checks.push(await checkStateSchema(ws, sync.name, at('state schema')));
    // A model that cannot run already failed above, with the same message.
    if (!runnable) continue;
    const model = found.get(sync.name) ?? (await sourceDoctor(sync.source, sync.model));
    for (const c of model) if (c.subject !== 'sign-in') checks.push({ subject: at(c.subject), status: c.status, message: c.message, ...(c.fix === undefined ? {} : { fix: c.fix }) });
  }
  return doctorReport(checks);
}

/**
 * The checks of one connection: API version, token (with the syncs that use it), permission, and each
 * ad account it is used with. A config with only a `meta:` block keeps the plain subjects (`token`,
 * `ad account`); with several connections each subject names its connection (and account).
 * Returns the connection's client when its token works.
 */
async function checkConnection(ws: Workspace, connection: ConnectionConfig, checks: Check[], now: Date): Promise<GraphClient | undefined> {
  const { config } = ws;
  const several = Object.keys(config.connections).length > 1;
  const subject = (what: string) => (several ? `connection ${connection.name}: ${what}` : what);
  const named = (c: Check): Check => ({ ...c, subject: subject(c.subject) });
  checks.push(named(checkApiVersion(connection.apiVersion, now, undefined, connection.at)));

  const syncs = syncsOf(config, connection.name);
  const usedBy = syncs.length === 0 ? 'used by no sync' : `used by sync${syncs.length === 1 ? '' : 's'} ${syncs.join(', ')}`;
  let graph: GraphClient | undefined;
  try {
    graph = ws.graph(connection.name);
    const me = await graph.me();
    checks.push({ subject: subject('token'), status: 'ok', message: `valid (Meta user or system user ${me.id}); ${usedBy}` });
  } catch (e) {
    checks.push({ subject: subject('token'), status: 'fail', message: `${reason(e)} (${usedBy})`, fix: tokenFix(e, connection) });
    graph = undefined;
  }
  const accounts = adAccountsOf(config, connection.name);
  const skip = (what: string) => checks.push({ subject: subject(what), status: 'skip', message: 'not checked: the token does not work' });
  if (!graph) {
    skip('permission ads_management');
    for (const account of accounts) for (const what of ['ad account', 'custom audience terms']) skip(accounts.length > 1 ? `${what} act_${account}` : what);
    return undefined;
  }
  const g = graph;
  const attempt = async (what: string, fn: () => Promise<Check>): Promise<void> => {
    try {
      checks.push(named({ ...(await fn()), subject: what }));
    } catch (e) {
      checks.push({ subject: subject(what), status: 'fail', message: reason(e), fix: e instanceof MetaApiError ? e.userAction : 'see the message; run again with AUDIENCE_SYNC_DEBUG=1 for details' });
    }
  };
  await attempt('permission ads_management', async () => checkPermissions(await g.permissions(), connection.at));
  const visible = accounts.length > 0 ? g.adAccounts() : Promise.resolve([]);
  visible.catch(() => undefined);
  for (const account of accounts) {
    const suffix = accounts.length > 1 ? ` act_${account}` : '';
    const users = config.syncs.filter((s) => s.connection === connection.name && s.adAccountId === account).map((s) => s.name);
    const setting = several && users.length > 0 ? `the adAccountId of sync ${users.join(', ')} (or ${connection.at}.adAccountId)` : `${connection.at}.adAccountId`;
    await attempt(`ad account${suffix}`, async () => {
      const check = checkAdAccount(await visible, account, setting);
      return users.length > 0 && check.status === 'ok' && several ? { ...check, message: `${check.message}; syncs ${users.join(', ')}` } : check;
    });
    await attempt(`custom audience terms${suffix}`, async () => checkTos(await g.customAudienceTosAccepted(account), account));
  }
  return graph;
}

/** Warehouse change detection needs to create and write its snapshot tables in the source's stateSchema. */
async function checkStateSchema(ws: Workspace, sync: string, subject: string): Promise<Check> {
  try {
    const { table, records } = await ws.checkSnapshotAccess(sync);
    return { subject, status: 'ok', message: `audience-sync can create, write and read its snapshot ${table} (${records.toLocaleString('en-US')} records)` };
  } catch (e) {
    const fix = e instanceof SourceError && e.fix !== undefined ? e.fix : 'see the message; docs/warehouse-change-detection.md lists the grants per warehouse';
    return { subject, status: 'fail', message: reason(e), fix };
  }
}

function tokenFix(e: unknown, connection: ConnectionConfig): string {
  if (e instanceof MetaApiError) return e.userAction;
  return `set ${connection.at}.accessToken to "\${META_ACCESS_TOKEN}" and export a token with ads_management`;
}
