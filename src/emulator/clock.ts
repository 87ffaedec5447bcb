/** The emulator's notion of "now": an injected clock, or a built-in one that tests can move forward. */
export interface EmulatorClock {
  now(): number;
  /** Moves the built-in clock forward; throws for an injected clock, which the caller controls. */
  advance(ms: number): void;
}

export function createClock(injected?: { now(): number }, startTime?: number): EmulatorClock {
  if (injected) {
    return {
      now: () => injected.now(),
      advance: () => {
        throw new Error('advanceClock only works with the built-in clock; move your injected clock instead.');
      },
    };
  }
  // Frozen at startTime when given (fully manual); otherwise real time plus the accumulated offset.
  let offset = 0;
  const base = startTime;
  return {
    now: () => (base ?? Date.now()) + offset,
    advance: (ms: number) => {
      if (!Number.isFinite(ms) || ms < 0) throw new Error(`advanceClock needs a non-negative number of ms, got ${ms}`);
      offset += ms;
    },
  };
}
