// What `doctor` checks in a warehouse, the same way for every source: each source says how it signs
// in and how it counts (or estimates) a model's rows; the checks, their wording and what a failure
// looks like are made here once.
import { errorText } from './sql.js';
import { SourceError, type RowEstimate, type SourceCheck } from './types.js';

/** How a source answers `doctor`'s questions. */
export interface DoctorProbe {
  /**
   * Signs in (or checks the session): resolves with who signed in to what (server and version, role,
   * warehouse); throws `SourceError` naming the setting or the grant at fault.
   */
  signIn(): Promise<string>;
  /** The model's rows, counted or estimated without reading them; throws when the model cannot run (a missing grant). */
  rows(sql: string): Promise<RowEstimate>;
  /** What else the warehouse can say about the model (BigQuery: a dry run and the bytes a run reads). */
  more?(sql: string): Promise<SourceCheck[]>;
}

const DEFAULT_FIX = "see the message: fix the source's settings, or ask the warehouse admin for the grant it names";

/** A failed check from what was thrown; its `fix` when the error carries one. */
export function failedCheck(subject: string, err: unknown): SourceCheck {
  return { subject, status: 'fail', message: errorText(err), fix: err instanceof SourceError && err.fix !== undefined ? err.fix : DEFAULT_FIX };
}

/**
 * `sign-in` (stops here when it fails), what else the source checks, then `rows` (its `rows` field
 * holds the count or estimate). Never throws for what it checks: a failure is a failed check.
 */
export async function doctorChecks(sql: string, probe: DoctorProbe): Promise<SourceCheck[]> {
  const checks: SourceCheck[] = [];
  try {
    checks.push({ subject: 'sign-in', status: 'ok', message: await probe.signIn() });
  } catch (err) {
    return [failedCheck('sign-in', err)];
  }
  if (probe.more) {
    const more = await probe.more(sql).catch((err: unknown) => [failedCheck('model', err)]);
    checks.push(...more);
    if (more.some((c) => c.status === 'fail')) return checks;
  }
  try {
    checks.push(rowsCheck(await probe.rows(sql)));
  } catch (err) {
    checks.push(failedCheck('rows', err));
  }
  return checks;
}

function rowsCheck(estimate: RowEstimate): SourceCheck {
  const n = `${estimate.rows.toLocaleString('en-US')} row${estimate.rows === 1 ? '' : 's'}`;
  if (estimate.rows === 0 && !estimate.estimated) {
    return { subject: 'rows', status: 'warn', message: 'the model returns no rows', fix: 'check its filters: a run of an empty model adds nobody, and is refused while the audience has members', rows: estimate };
  }
  return { subject: 'rows', status: 'ok', message: estimate.estimated ? `the model returns about ${n} (the warehouse's estimate)` : `the model returns ${n}`, rows: estimate };
}
