import type { AlertFlag } from '../config/index.js';

/** What an alert is about. */
export type AlertCondition = AlertFlag | 'tokenExpiry' | 'matchCoverageDrop';

/**
 * A connection's token as the token-expiry condition sees it. Today there is one connection (the
 * `meta:` block, named `default`); a per-connection status plugs in here.
 */
export interface TokenStatus {
  readonly connection: string;
  /** When the token stops working; undefined when it does not expire or nobody knows. */
  readonly expiresAt?: Date;
  /** Whether Meta accepts it now. */
  readonly valid: boolean;
  /** Why it is not valid, in Meta's words (never the token). */
  readonly reason?: string;
}

/** The alert as every destination gets it; Slack's message is made from it. */
export interface AlertMessage {
  /** `firing` when an incident starts, `resolved` when it is over, `test` from `audience-sync alerts test`. */
  readonly kind: 'firing' | 'resolved' | 'test';
  readonly condition: AlertCondition | 'test';
  /** The destination's name in the config. */
  readonly destination: string;
  readonly title: string;
  /** The detail: a run's (redacted) error, the most common reason records were given up, ... */
  readonly reason: string | null;
  readonly sync: string | null;
  readonly connection: string | null;
  readonly run: {
    readonly id: number;
    readonly status: string;
    readonly trigger: string;
    readonly startedAt: string;
    readonly finishedAt: string | null;
    /** The run's dashboard page, when the dashboard's address is known. */
    readonly url: string | null;
  } | null;
  /** Numeric run counters (extracted, added, removed, failed, ...). */
  readonly counts: Readonly<Record<string, number>> | null;
  /** The sync's dashboard page (or the dashboard), when its address is known. */
  readonly dashboardUrl: string | null;
  readonly at: string;
}
