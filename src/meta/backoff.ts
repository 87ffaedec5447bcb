export interface BackoffPolicy {
  baseDelayMs: number;
  maxDelayMs: number;
}

/**
 * Exponential backoff with full jitter: a uniform wait in [0, min(max, base * 2^(attempt-1))].
 * Full jitter spreads many clients retrying the same outage instead of synchronising them.
 * `attempt` is 1 for the first retry.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

/**
 * How long to wait after a throttle: Meta's own estimate (usage headers, else Retry-After) plus up to 10%
 * jitter so parallel syncs don't all come back in the same second; our backoff when Meta gives no hint.
 */
export function throttleDelay(
  hint: { regainAccessMs: number | null; retryAfterMs: number | null },
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const estimate = hint.regainAccessMs ?? hint.retryAfterMs;
  if (estimate !== null && estimate > 0) return Math.ceil(estimate + random() * estimate * 0.1);
  // No hint: back off harder than for a transient error; throttles last for minutes, not seconds.
  const floor = policy.baseDelayMs * 4;
  return floor + backoffDelay(attempt, { baseDelayMs: floor, maxDelayMs: policy.maxDelayMs }, random);
}
