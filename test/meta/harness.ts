import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { DEFAULT_AD_ACCOUNT, DEFAULT_TOKEN, startEmulator, type EmulatorOptions, type RunningEmulator } from '../../src/emulator/index.js';
import { GraphClient, type GraphClientEvent, type GraphClientOptions } from '../../src/meta/index.js';

export const ACCOUNT = DEFAULT_AD_ACCOUNT;
export const TOKEN = DEFAULT_TOKEN;
export const SCHEMA = ['EXTERN_ID', 'EMAIL', 'PHONE'] as const;

export const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

/** A person row for SCHEMA: unique EXTERN_ID, EMAIL and PHONE hashes. */
export const person = (i: number): string[] => [`crm-${i}`, sha(`user${i}@example.com`), sha(`1555000${i}`)];

function startTestEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  return startEmulator({ port: 0, ...options });
}

/**
 * One emulator for a test file, reset after each test. Call it at the file's top level; the getter it
 * returns gives the running emulator inside tests.
 */
export function useTestEmulator(): () => RunningEmulator {
  let emulator: RunningEmulator | undefined;
  beforeAll(async () => {
    emulator = await startTestEmulator();
  });
  afterAll(async () => {
    await emulator?.close();
  });
  afterEach(() => {
    emulator?.control.reset();
  });
  return () => {
    if (!emulator) throw new Error('the test emulator is not running: call useTestEmulator() at the top level of the file');
    return emulator;
  };
}

/**
 * A client against the emulator whose sleeps take no real time: each wait is recorded and moves the
 * emulator clock forward instead, so throttles expire as they would after a real wait.
 */
export function testClient(emu: RunningEmulator, overrides: Partial<GraphClientOptions> = {}) {
  const waits: number[] = [];
  const events: GraphClientEvent[] = [];
  const client = new GraphClient({
    accessToken: TOKEN,
    graphUrl: emu.url,
    retry: { maxAttempts: 6, baseDelayMs: 10, maxDelayMs: 100 },
    requestTimeoutMs: 10_000,
    sleep: async (ms) => {
      waits.push(ms);
      emu.control.advanceClock(ms);
    },
    onEvent: (e) => events.push(e),
    ...overrides,
  });
  return { client, waits, events };
}

/** The emulator's members of an audience, as the set of their EXTERN_IDs. */
export function memberIds(emu: RunningEmulator, audienceId: string): Set<string> {
  return new Set(emu.control.members(audienceId).map((m) => String(m.EXTERN_ID)));
}
