/** `audience-sync audiences list | show | create | delete | lookalike`: the ad account's audiences. */
import { createInterface } from 'node:readline/promises';
import { InvalidArgumentError, type Command } from 'commander';
import { accountTargets, describeTargets, UnknownConnectionError, type AccountTarget } from '../../app/connections.js';
import type { Workspace } from '../../app/workspace.js';
import type { AudienceInfo, GraphClient } from '../../meta/index.js';
import { CliError, EXIT } from '../exit-codes.js';
import { adAccountId, connectionName } from '../options.js';
import { withConfigOption, withWorkspace } from '../workspace.js';

interface Common {
  config: string;
  json?: boolean;
  /** Which connection's token to use. */
  connection?: string;
  /** Digits (act_ removed by the option parser). */
  adAccount?: string;
}

/** Opens the config only for its connections: the warehouses are never touched. */
function withTargets<T>(opts: Common, fn: (ws: Workspace, targets: AccountTarget[]) => Promise<T>): Promise<T> {
  return withWorkspace(opts.config, (ws) => {
    let targets: AccountTarget[];
    try {
      targets = accountTargets(ws.config, { ...(opts.connection !== undefined ? { connection: opts.connection } : {}), ...(opts.adAccount !== undefined ? { adAccountId: opts.adAccount } : {}) });
    } catch (e) {
      if (e instanceof UnknownConnectionError) throw new CliError(`${e.message} (pass --connection and --ad-account)`);
      throw e;
    }
    return fn(ws, targets);
  });
}

/** One ad account to work on: the one given, or the only one the config uses. */
function withGraph<T>(opts: Common, fn: (graph: GraphClient, adAccountId: string) => Promise<T>): Promise<T> {
  return withTargets(opts, (ws, targets) => {
    const [target, ...others] = targets;
    if (!target || others.length > 0) throw new CliError(`the config uses several ad accounts: pass --ad-account (and --connection when two connections reach it) to pick one of ${describeTargets(targets)}`);
    return fn(ws.graph(target.connection), target.adAccountId);
  });
}

/** The connection whose token reads an audience: the one given, or the only one the accounts in use go through. */
function withConnectionGraph<T>(opts: Common, fn: (graph: GraphClient) => Promise<T>): Promise<T> {
  return withTargets(opts, (ws, targets) => {
    const connections = [...new Set(targets.map((t) => t.connection))];
    if (connections.length > 1) throw new CliError(`the config has several connections: pass --connection (one of ${connections.join(', ')}) to say whose token to use`);
    return fn(ws.graph(connections[0]));
  });
}

const sub = (parent: Command, name: string, description: string) =>
  withConfigOption(
    parent
      .command(name)
      .description(description)
      .option('--json', 'print JSON on stdout')
      .option('--connection <name>', 'the Meta connection whose token to use (default: the one the ad account is used with)', connectionName)
      .option('--ad-account <id>', 'ad account, e.g. act_1234567890 (default: the one the config uses)', adAccountId),
  );

export function register(program: Command): void {
  const audiences = program.command('audiences').description("list, inspect, create and delete the ad accounts' custom audiences");

  sub(audiences, 'list', 'every audience (all pages) of each ad account the config uses, or of the one given').action(async (opts: Common) => {
    await withTargets(opts, async (ws, targets) => {
      const lists = [];
      for (const t of targets) lists.push({ ...t, audiences: await ws.graph(t.connection).listAudiences(t.adAccountId) });
      const [only] = lists;
      // One account prints as it always did; several are labelled with their account and connection.
      if (only && lists.length === 1) console.log(opts.json ? JSON.stringify(only.audiences, null, 2) : formatAudienceTable(only.audiences, only.adAccountId));
      else if (opts.json) console.log(JSON.stringify(lists, null, 2));
      else console.log(lists.map((l) => `act_${l.adAccountId} (connection ${l.connection})\n${formatAudienceTable(l.audiences, l.adAccountId)}`).join('\n\n'));
    });
  });

  sub(audiences, 'show', 'one audience: size, statuses, data source')
    .argument('<id>', 'audience id')
    .action(async (id: string, opts: Common) => {
      await withConnectionGraph(opts, async (graph) => {
        const a = await graph.getAudience(audienceIdArg(id));
        console.log(opts.json ? JSON.stringify(a, null, 2) : formatAudience(a));
      });
    });

  sub(audiences, 'create', 'create a customer-list audience')
    .requiredOption('--name <name>', 'audience name (unique names make retries safe)')
    .option('--description <text>', 'audience description')
    .option('--value-based', 'value-based audience: syncs must map LOOKALIKE_VALUE')
    .action(async (opts: Common & { name: string; description?: string; valueBased?: boolean }) => {
      await withGraph(opts, async (graph, account) => {
        const { id } = await graph.createCustomAudience(account, {
          name: opts.name,
          ...(opts.description !== undefined ? { description: opts.description } : {}),
          ...(opts.valueBased ? { valueBased: true } : {}),
        });
        if (opts.json) console.log(JSON.stringify({ id, name: opts.name, valueBased: opts.valueBased === true }));
        else console.log(`created audience ${id} "${opts.name}"${opts.valueBased ? ' (value-based)' : ''}\nuse it in a sync with: audience: { id: "${id}" }`);
      });
    });

  sub(audiences, 'delete', 'delete an audience (permanent: ads using it stop)')
    .argument('<id>', 'audience id')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(async (id: string, opts: Common & { yes?: boolean }) => {
      const audienceId = audienceIdArg(id);
      if (!opts.yes) await confirm(`Delete audience ${audienceId}? Ads using it stop delivering. Type "yes" to delete: `);
      await withConnectionGraph(opts, async (graph) => {
        await graph.deleteAudience(audienceId);
        console.log(opts.json ? JSON.stringify({ id: audienceId, deleted: true }) : `deleted audience ${audienceId}`);
      });
    });

  sub(audiences, 'lookalike', 'create a lookalike of an audience (it needs people in it)')
    .requiredOption('--from <id>', 'origin audience id')
    .requiredOption('--country <code>', 'two-letter country code, e.g. US', parseCountry)
    .option('--ratio <share>', 'share of the country, 0.01 (1%, most similar) to 0.20', parseRatio, 0.01)
    .option('--name <name>', 'name of the lookalike (default: derived from the origin, country and ratio)')
    .action(async (opts: Common & { from: string; country: string; ratio: number; name?: string }) => {
      const origin = audienceIdArg(opts.from);
      await withGraph(opts, async (graph, account) => {
        const name = opts.name ?? `Lookalike (${opts.country}, ${Math.round(opts.ratio * 100)}%) of ${origin}`;
        const { id } = await graph.createLookalike(account, { name, originAudienceId: origin, country: opts.country, ratio: opts.ratio });
        if (opts.json) console.log(JSON.stringify({ id, name, originAudienceId: origin, country: opts.country, ratio: opts.ratio }));
        else console.log(`created lookalike audience ${id} "${name}" from ${origin}\nMeta fills it over the next hours; the origin cannot be deleted while the lookalike exists`);
      });
    });
}

function audienceIdArg(id: string): string {
  const trimmed = id.trim();
  if (!/^\d+$/.test(trimmed)) throw new CliError(`"${id}" is not an audience id: audience ids are digits (see \`audience-sync audiences list\`)`);
  return trimmed;
}

function parseCountry(value: string): string {
  const c = value.trim().toUpperCase();
  if (!/^[A-Z]{2}$/.test(c)) throw new InvalidArgumentError('expected a two-letter country code such as US');
  return c;
}

function parseRatio(value: string): number {
  const n = Number(value);
  if (!(n >= 0.01 && n <= 0.2)) throw new InvalidArgumentError('expected a number from 0.01 to 0.20 (1% to 20% of the country)');
  return n;
}

async function confirm(question: string): Promise<void> {
  if (!process.stdin.isTTY) throw new CliError('not deleting without confirmation: pass --yes to delete from a script');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = (await rl.question(question)).trim().toLowerCase();
    if (answer !== 'yes' && answer !== 'y') throw new CliError('not deleted', EXIT.failed);
  } finally {
    rl.close();
  }
}

const n = (x: number) => x.toLocaleString('en-US');

function sizeOf(a: AudienceInfo): string {
  const lo = a.approximateCountLowerBound;
  const hi = a.approximateCountUpperBound;
  if (lo === undefined || lo < 0) return 'unknown';
  return hi === undefined || hi === lo ? n(lo) : `${n(lo)}–${n(hi)}`;
}

export function formatAudienceTable(list: readonly AudienceInfo[], account: string): string {
  if (list.length === 0) return `no audiences in act_${account} (create one with \`audience-sync audiences create --name ...\`)`;
  const rows = list.map((a) => [a.id, a.subtype ?? '', sizeOf(a), a.operationStatus ? String(a.operationStatus.code) : '', a.name ?? '']);
  const head = ['ID', 'TYPE', 'SIZE', 'STATUS', 'NAME'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  return [line(head), ...rows.map(line), `${list.length} audience${list.length === 1 ? '' : 's'} in act_${account}`].join('\n');
}

export function formatAudience(a: AudienceInfo): string {
  const status = (s: AudienceInfo['operationStatus']) => (s ? `${s.code} ${s.description}` : 'unknown');
  const time = (t: number | undefined) => (t === undefined || t <= 0 ? 'never' : new Date(t * 1000).toISOString());
  const lines = [
    `audience ${a.id}${a.name ? ` "${a.name}"` : ''}`,
    `  type              ${a.subtype ?? 'unknown'}${a.isValueBased ? ' (value-based)' : ''}`,
    `  size              ${sizeOf(a)}`,
    `  operation status  ${status(a.operationStatus)}`,
    `  delivery status   ${status(a.deliveryStatus)}`,
  ];
  if (a.description) lines.push(`  description       ${a.description}`);
  if (a.dataSource?.type) lines.push(`  data source       ${a.dataSource.type}${a.dataSource.subType ? `.${a.dataSource.subType}` : ''}`);
  if (a.fieldsViolatingIntegrityPolicy?.length) lines.push(`  flagged fields    ${a.fieldsViolatingIntegrityPolicy.join(', ')}`);
  lines.push(`  created           ${time(a.timeCreated)}`, `  content updated   ${time(a.timeContentUpdated)}`);
  return lines.join('\n');
}
