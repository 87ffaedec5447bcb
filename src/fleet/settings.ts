// What the fleet needs from a config: PostgreSQL state (the queue and the concurrency cap live there)
// and the fleet section with its defaults.
import {
  DEFAULT_JOB_TIMEOUT_SECONDS,
  DEFAULT_MAX_CONCURRENT_PER_AD_ACCOUNT,
  DEFAULT_POLL_INTERVAL_SECONDS,
  type Config,
  type FleetConfig,
} from '../config/index.js';
import { parseStateUrl } from '../state/index.js';

export class FleetSetupError extends Error {
  override readonly name = 'FleetSetupError';
}

export interface FleetSettings extends FleetConfig {
  /** The state store's PostgreSQL URL: pg-boss keeps its queue in the same database. */
  readonly databaseUrl: string;
  /** Each sync's ad account (digits): the cap of that account applies to its runs. */
  readonly adAccounts: Readonly<Record<string, string>>;
}

/**
 * The fleet settings of a config.
 * @throws FleetSetupError when the state is not in PostgreSQL: workers on several machines can only
 * share a queue, locks and run history through a database server.
 */
export function fleetSettings(config: Config): FleetSettings {
  const location = parseStateUrl(config.state.url);
  if (location.kind !== 'postgres') {
    throw new FleetSetupError(
      `the worker fleet needs PostgreSQL state, but state.url in ${config.configPath} points at SQLite: ` +
        'set state.url to a postgres:// URL (e.g. "${AUDIENCE_SYNC_STATE_URL}") shared by the scheduler and every worker',
    );
  }
  return {
    databaseUrl: location.url,
    adAccounts: Object.fromEntries(config.syncs.map((s) => [s.name, s.adAccountId])),
    maxConcurrentPerAdAccount: config.fleet?.maxConcurrentPerAdAccount ?? DEFAULT_MAX_CONCURRENT_PER_AD_ACCOUNT,
    jobTimeoutSeconds: config.fleet?.jobTimeoutSeconds ?? DEFAULT_JOB_TIMEOUT_SECONDS,
    pollIntervalSeconds: config.fleet?.pollIntervalSeconds ?? DEFAULT_POLL_INTERVAL_SECONDS,
  };
}
