import type { AudienceRef, EngineGraph } from './ports.js';
import type { SyncSpec } from './types.js';

/**
 * The mark in the description of every audience a sync creates, so that a run that finds no state
 * for the sync (a new or lost state database) can recognise the audience. It names the sync only.
 */
export function audienceMarker(sync: string): string {
  return `[audience-sync:${sync}]`;
}

/**
 * The start-of-run check, before the model is read: one request proves the token, the ad account
 * and the audience. Returns the audience to deliver to, or undefined when `audience.create` has yet
 * to create it, which only happens once the model was read. With no state for the sync at all, the
 * ad account's audiences are listed instead, to adopt the one this sync created earlier; an
 * ambiguous find is refused rather than answered with a second audience of the same name.
 */
export async function checkAudience(
  spec: SyncSpec,
  graph: EngineGraph,
  adAccountId: string,
  /** The sync's state: undefined when the state store has never seen it; audienceId null after `reset --forget-audience`. */
  info: { audienceId: string | null } | undefined,
  warn: (message: string) => void,
  /** Called with what the check read of a known audience (its size bounds, for the run history). */
  seen?: (audience: AudienceRef) => void,
): Promise<string | undefined> {
  const configured = 'id' in spec.audience ? spec.audience.id : undefined;
  const known = configured ?? info?.audienceId ?? undefined;
  if (known !== undefined) {
    try {
      seen?.(await graph.checkAudience(adAccountId, known));
    } catch (e) {
      const origin = configured !== undefined ? `audience ${known} (audience.id of sync "${spec.name}")` : `audience ${known}, which an earlier run of sync "${spec.name}" created,`;
      const forget = configured === undefined && (e as { kind?: unknown }).kind === 'not_found'
        ? ` If it was deleted, run \`audience-sync reset ${spec.name} --forget-audience --yes\` and the next run creates a new one.`
        : '';
      throw new Error(`the ${origin} could not be checked before reading the model: ${e instanceof Error ? e.message : String(e)}${forget}`, { cause: e });
    }
    return known;
  }
  if (!('create' in spec.audience)) throw new Error('unreachable: an audience without id or create');
  // Listing the ad account proves the token and the ad account when there is no audience yet.
  const audiences = await graph.listAudiences(adAccountId);
  // The state forgot the audience on purpose (reset --forget-audience): a new one is wanted.
  if (info !== undefined) return undefined;
  return adoptOwnAudience(spec.name, spec.audience.create.name, audiences, warn);
}

function adoptOwnAudience(sync: string, name: string, audiences: readonly AudienceRef[], warn: (message: string) => void): string | undefined {
  const marker = audienceMarker(sync);
  const ours = audiences.filter((a) => a.description?.includes(marker));
  const sameName = audiences.filter((a) => a.name === name);
  const list = (as: readonly AudienceRef[]) => as.map((a) => `${a.id} "${a.name ?? ''}"`).join(', ');
  const mine = ours.filter((a) => a.name === name);
  if (mine.length === 1) {
    warn(`the state store has no record of sync "${sync}": using audience ${mine[0]!.id} "${name}", which an earlier run of this sync created (records that left the model since the state was lost are not removed from it)`);
    return mine[0]!.id;
  }
  if (mine.length > 1) {
    throw new Error(`the state store has no record of sync "${sync}" and ${mine.length} audiences named "${name}" were created by it (${list(mine)}); nothing was created or sent. Set audience.id of sync "${sync}" to the one to keep.`);
  }
  if (sameName.length > 0) {
    throw new Error(`an audience named "${name}" already exists (${list(sameName)}) but was not created by sync "${sync}" as far as the state store knows; nothing was created or sent. To sync into it, set audience.id of sync "${sync}" to its id; for a new audience, change audience.create.name.`);
  }
  if (ours.length > 0) warn(`audiences created earlier by sync "${sync}" under other names are left alone: ${list(ours)}`);
  return undefined;
}

/** Creates the sync's audience, marked as created by this sync. */
export async function createAudience(spec: SyncSpec, graph: EngineGraph, adAccountId: string): Promise<string> {
  if (!('create' in spec.audience)) throw new Error('unreachable: only audience.create creates an audience');
  const { name, description, valueBased } = spec.audience.create;
  const marker = audienceMarker(spec.name);
  const created = await graph.createCustomAudience(adAccountId, {
    name,
    description: description ? `${description} ${marker}` : marker,
    ...(valueBased !== undefined ? { valueBased } : {}),
  });
  return created.id;
}
