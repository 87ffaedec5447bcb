/** Public surface of the Graph API emulator (see README.md beside this file). */
export { startEmulator, type RunningEmulator } from './server.js';
export type { EmulatorControl, AudienceSummary } from './control.js';
export {
  DEFAULT_TOKEN,
  DEFAULT_AD_ACCOUNT,
  DEFAULT_FLAGS,
  DEFAULT_RATE_LIMIT,
  type EmulatorOptions,
  type EmulatorFlags,
  type FaultConfig,
  type FaultKind,
  type RateLimitConfig,
  type RateLimitKind,
  type TokenSeed,
  type TokenState,
  type AdAccountSeed,
} from './options.js';
export type { RateLimitUpdate } from './ratelimit.js';
export type { RequestLogEntry } from './request-log.js';
export type { CellValue } from './store/membership.js';
export { appsecretProof } from './auth.js';
