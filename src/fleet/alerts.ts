/**
 * Alerts in the fleet: each worker checks the syncs it ran, and every fleet process checks the
 * schedules, so a scheduler or the workers being down is noticed by the others. They share the
 * PostgreSQL state, where each incident's change is claimed once: no alert is sent twice.
 */
import { pino, type Logger } from 'pino';
import { AlertCenter, workspaceTokenStatus, type DeliveryOptions } from '../alerts/index.js';
import { Workspace } from '../app/workspace.js';
import type { Config } from '../config/index.js';
import { openStateStore, type StateStore } from '../state/index.js';

export interface FleetAlertOptions {
  /** Where alert outcomes are logged (default: nowhere). */
  readonly logger?: Logger;
  /** How often schedules are checked (default 1 min; 0: never). */
  readonly checkMs?: number;
  /** How often the token is checked (default 1 h; 0: never). Only the scheduler checks it: one /me per fleet, not per worker. */
  readonly tokenCheckMs?: number;
  readonly delivery?: DeliveryOptions;
}

export interface FleetAlerts {
  readonly center: AlertCenter;
  close(): Promise<void>;
}

/**
 * Starts the config's alerts for a fleet process on `state` (or a store of its own on `databaseUrl`);
 * undefined when the config has no destination.
 */
export async function startFleetAlerts(config: Config, from: { state: StateStore } | { databaseUrl: string }, options: FleetAlertOptions & { checkTokens: boolean }): Promise<FleetAlerts | undefined> {
  if ((config.alerts?.length ?? 0) === 0) return undefined;
  const own = 'databaseUrl' in from ? await openStateStore(from.databaseUrl) : undefined;
  const state = own ?? (from as { state: StateStore }).state;
  // Each connection's token, checked as the dashboard checks it (the fleet runs on the config's tokens).
  const tokens = options.checkTokens ? new Workspace(config) : undefined;
  const center = new AlertCenter({
    config: () => config,
    state: async () => state,
    log: options.logger ?? pino({ level: 'silent' }),
    ...(tokens ? { tokenStatus: () => workspaceTokenStatus(tokens) } : {}),
    ...(options.delivery ? { delivery: options.delivery } : {}),
  });
  void center.checkSchedules();
  if (tokens) void center.checkTokens();
  center.watch({ scheduleMs: options.checkMs ?? 60_000, tokenMs: tokens ? (options.tokenCheckMs ?? 3_600_000) : 0 });
  return {
    center,
    async close() {
      await center.close();
      await tokens?.close();
      await own?.close();
    },
  };
}
