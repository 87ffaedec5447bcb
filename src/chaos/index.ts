export { runChaos, type ChaosOptions, type ChaosReport, type RunOutcomeKind, type Violation } from './run.js';
export { formatChaosReport } from './report.js';
export { planStep, FAULT_KINDS, type ChaosFaultKind, type FaultPlan, type KillPlan, type StepPlan, type Via } from './schedule.js';
export { createRng, type Rng } from './random.js';
export { Population, CHAOS_COLUMNS, type ChaosRow, type ChurnPlan, type ExpectedMember } from './population.js';
export { findPii, type PiiHit } from './pii.js';
export {
  CHECK_NAMES,
  checkMemory,
  checkMirror,
  checkRetryBudget,
  checkStateComplete,
  checkTrackedMembers,
  pkHash,
  type CheckName,
  type Member,
  type RecordView,
} from './invariants.js';
