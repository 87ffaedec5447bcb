// The `alerts:` section: where alerts go (a generic JSON webhook or a Slack incoming webhook) and
// which conditions each destination wants. Kept apart from schema.ts so the section stays one block.
import { z } from 'zod';

const DESTINATION_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** Conditions a destination can ask for; the two with a threshold are set by a number. */
export const ALERT_FLAGS = ['failed', 'partial', 'refused', 'givenUp', 'missedSchedule'] as const;
export type AlertFlag = (typeof ALERT_FLAGS)[number];

const flag = (description: string) => z.boolean().default(false).describe(description);

export const alertWhenSchema = z
  .strictObject({
    failed: flag('A run failed (the model, the warehouse, Meta or the state store stopped it). A run refused by a safeguard is `refused`, not `failed`.'),
    partial: flag('A run finished partial: some batches or records were not delivered.'),
    refused: flag('A safeguard refused a run (empty model, identifier coverage drop, too many removals): it sent nothing.'),
    givenUp: flag('The sync has records given up (more than 0): they used up maxAttempts and are no longer sent.'),
    missedSchedule: flag('A scheduled sync did not start a run within twice its schedule interval (at least 1 minute) after a due tick.'),
    tokenExpiresWithinDays: z
      .number()
      .min(0, 'must be a number of days ≥ 0')
      .optional()
      .describe("The Meta token expires within this many days, or Meta no longer accepts it."),
    matchCoverageDrop: z
      .number()
      .gt(0, 'must be a number of percentage points above 0, e.g. 20')
      .max(100, 'must be at most 100 percentage points')
      .optional()
      .describe("A mapped key's identifier coverage (share of the model's rows with a usable value), or Meta's match rate, fell more than this many percentage points below its median over the sync's earlier runs."),
  })
  .check((ctx) => {
    const w = ctx.value;
    if (!ALERT_FLAGS.some((f) => w[f]) && w.tokenExpiresWithinDays === undefined && w.matchCoverageDrop === undefined) {
      ctx.issues.push({
        code: 'custom',
        input: w,
        path: [],
        message: `turn on at least one condition: ${ALERT_FLAGS.join(', ')} (true), tokenExpiresWithinDays or matchCoverageDrop (a number)`,
      });
    }
  })
  .describe('The conditions this destination is alerted about; each incident is sent once, and once more when it is over.');

export const alertDestinationSchema = z
  .strictObject({
    type: z.enum(['webhook', 'slack'], { error: 'type must be "webhook" (a JSON POST) or "slack" (a Slack incoming webhook)' }).describe('webhook: a JSON POST of the alert; slack: a Slack incoming-webhook message (text and blocks).'),
    // The URL is a secret (a Slack webhook's path is its key): no message ever quotes it.
    url: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL; read it from the environment, e.g. "${SLACK_WEBHOOK_URL}"' })
      .describe('Where alerts are POSTed. A Slack webhook URL is a secret: read it from the environment ("${SLACK_WEBHOOK_URL}"); it is never logged or shown.'),
    syncs: z
      .array(z.string().trim().min(1, 'must be a sync name'))
      .min(1, 'list at least one sync, or remove syncs to alert about every sync')
      .optional()
      .describe('Only these syncs (default: every sync). Token alerts concern the connection these syncs use.'),
    when: alertWhenSchema,
  })
  .describe('One alert destination.');

export const alertsSchema = z
  .record(z.string(), alertDestinationSchema)
  .describe('Alert destinations, by name (the name keys each incident in the state store: renaming one starts its incidents afresh).');

export type RawAlerts = z.output<typeof alertsSchema>;

/** One destination, resolved: its name, how to send, and what it wants. */
export interface AlertDestination {
  readonly name: string;
  readonly type: 'webhook' | 'slack';
  /** A secret: never log or show it (see `describeDestination`). */
  readonly url: string;
  /** Only these syncs; undefined: every sync. */
  readonly syncs?: readonly string[];
  readonly when: Readonly<Record<AlertFlag, boolean>> & {
    readonly tokenExpiresWithinDays?: number;
    readonly matchCoverageDrop?: number;
  };
}

export function resolveAlerts(raw: RawAlerts): AlertDestination[] {
  return Object.entries(raw).map(([name, d]) => ({ name, type: d.type, url: d.url, ...(d.syncs ? { syncs: d.syncs } : {}), when: d.when }));
}

/**
 * Rules the schema cannot check on its own, run even when a destination is malformed elsewhere:
 * destination names are slugs, and `alerts.<name>.syncs` names syncs of the config.
 */
export function checkAlerts(raw: unknown, syncNames: readonly string[]): Array<{ at: PropertyKey[]; message: string }> {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return [];
  const found: Array<{ at: PropertyKey[]; message: string }> = [];
  for (const [name, dest] of Object.entries(raw as Record<string, unknown>)) {
    if (!DESTINATION_NAME.test(name)) {
      found.push({ at: ['alerts', name], message: 'a destination name must be a slug: lower-case letters, digits, "-" or "_", starting with a letter or digit' });
    }
    const syncs = dest !== null && typeof dest === 'object' ? (dest as { syncs?: unknown }).syncs : undefined;
    if (!Array.isArray(syncs)) continue;
    syncs.forEach((s: unknown, i) => {
      if (typeof s === 'string' && s.trim() !== '' && !syncNames.includes(s.trim())) {
        found.push({ at: ['alerts', name, 'syncs', i], message: `unknown sync "${s}": name a sync of this config (${syncNames.join(', ') || 'none defined'})` });
      }
    });
  }
  return found;
}
