/**
 * Records that used up their attempts ("given up"): a run no longer sends them until their data
 * changes or someone puts them back in the queue (`audience-sync retry`, the dashboard, the API).
 * What is shown of them is what a run's error samples show: the key's SHA-256, EXTERN_ID when it is
 * mapped, and the last error. Never a raw key or raw personal data.
 */
import type { StateStore } from '../state/index.js';

export interface GivenUpSample {
  /** SHA-256 of the primary key (`audience-sync locate <sync> --given-up` prints the key itself). */
  pkHash: string;
  externId?: string;
  reason: string;
  attempts: number;
}

export interface GivenUpReport {
  count: number;
  /** The sync's maxAttempts: a record is given up once this many sends of the same data failed. */
  maxAttempts: number;
  /** Counts by last error, most frequent first. */
  reasons: Array<{ reason: string; count: number }>;
  samples: GivenUpSample[];
}

export const GIVEN_UP_SAMPLES = 5;

/**
 * `records`: where the sync's records are, our state store (the default) or, with warehouse change
 * detection, its snapshot in the warehouse.
 */
export async function readGivenUp(
  state: StateStore,
  sync: { name: string; maxAttempts: number },
  currentSchema: readonly string[],
  sampleSize = GIVEN_UP_SAMPLES,
  records: Pick<StateStore, 'givenUp'> = state,
): Promise<GivenUpReport> {
  const [givenUp, info] = await Promise.all([records.givenUp(sync.name, { maxAttempts: sync.maxAttempts, sampleSize }), state.getSync(sync.name)]);
  // A record's cells were sent in the schema of the last run, which is the current one unless the
  // mapping changed since (then the next run re-sends every record anyway).
  const schema = info?.schemaSignature ? info.schemaSignature.split(',') : currentSchema;
  const externIdIndex = schema.indexOf('EXTERN_ID');
  return {
    count: givenUp.count,
    maxAttempts: sync.maxAttempts,
    reasons: givenUp.byReason.map((r) => ({ reason: r.reason, count: r.count })),
    samples: givenUp.samples.map((r) => {
      const externId = externIdIndex >= 0 ? r.cells?.[externIdIndex] : undefined;
      return {
        pkHash: r.pk,
        ...(typeof externId === 'string' && externId !== '' ? { externId } : {}),
        reason: r.lastError ?? 'no reason was recorded',
        attempts: r.attempts,
      };
    }),
  };
}

/** "3 records used up their 5 attempts and are no longer sent", for doctor and the CLI. */
export function givenUpSentence(g: Pick<GivenUpReport, 'count' | 'maxAttempts'>): string {
  const one = g.count === 1;
  return `${g.count.toLocaleString('en-US')} record${one ? '' : 's'} used up ${one ? 'its' : 'their'} ${g.maxAttempts} attempt${g.maxAttempts === 1 ? '' : 's'} and ${one ? 'is' : 'are'} no longer sent`;
}
