/** The live parts of one emulator instance, shared by the Graph pipeline and the control surface. */
import type { EmulatorClock } from './clock.js';
import type { FaultInjector } from './faults.js';
import type { EmulatorFlags } from './options.js';
import type { RateLimiter } from './ratelimit.js';
import type { RequestLog } from './request-log.js';
import type { EmulatorStore } from './store/store.js';

export interface EmulatorRuntime {
  store: EmulatorStore;
  flags: EmulatorFlags;
  clock: EmulatorClock;
  limiter: RateLimiter;
  faults: FaultInjector;
  log: RequestLog;
  /** When set, appsecret_proof is required. */
  appSecret: string | undefined;
}
