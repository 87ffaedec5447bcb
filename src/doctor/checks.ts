// The doctor's judgements: pure functions from what Meta and the state store reported to a check
// result that says what is wrong and how to fix it. The runner (run.ts) gathers the inputs.
import { givenUpSentence, type GivenUpReport } from '../app/given-up.js';
import type { AdAccount, AudienceInfo, Permission } from '../meta/index.js';
import { TOS_URL } from '../meta/index.js';
import { lowMatchSentence, type MatchHealth } from '../engine/index.js';

export type CheckStatus = 'ok' | 'warn' | 'fail' | 'skip';

export interface Check {
  /** What was checked: `token`, `api version`, `sync loyalty: audience`, … */
  subject: string;
  status: CheckStatus;
  /** What was found. */
  message: string;
  /** What to do about it (for warn and fail). */
  fix?: string;
}

const ok = (subject: string, message: string): Check => ({ subject, status: 'ok', message });
const fail = (subject: string, message: string, fix: string): Check => ({ subject, status: 'fail', message, fix });
const warn = (subject: string, message: string, fix: string): Check => ({ subject, status: 'warn', message, fix });

/**
 * Marketing API expiry dates (docs/graph-api.md, "API versions"). Where the published dates disagree (v24) the earlier one is
 * used. Versions not listed are newer than this table and counted as current.
 */
export const API_VERSION_EXPIRY: Readonly<Record<string, string>> = {
  'v22.0': '2026-02-19',
  'v23.0': '2026-06-09',
  'v24.0': '2026-10-06',
  'v25.0': '2027-02-23',
};
export const API_VERSION_WARN_DAYS = 30;
const DAY_MS = 86_400_000;

/** `at`: where the connection is written (`meta` or `connections.<name>`), for the fix. */
export function checkApiVersion(version: string, now: Date, latest = 'v25.0', at = 'meta'): Check {
  const subject = 'api version';
  const expiry = API_VERSION_EXPIRY[version];
  const major = Number(/^v(\d+)\./.exec(version)?.[1] ?? NaN);
  const oldest = Math.min(...Object.keys(API_VERSION_EXPIRY).map((v) => Number(v.slice(1, -2))));
  if (expiry === undefined) {
    if (major < oldest) return fail(subject, `${version} is retired: Meta answers it with error 2635 or upgrades it silently`, `set ${at}.apiVersion to ${latest}`);
    return ok(subject, `${version} (no known expiry date)`);
  }
  const days = Math.floor((Date.parse(`${expiry}T00:00:00Z`) - now.getTime()) / DAY_MS);
  if (days < 0) return fail(subject, `${version} expired on ${expiry}: Meta answers it with error 2635 or upgrades it silently`, `set ${at}.apiVersion to ${latest}`);
  if (days <= API_VERSION_WARN_DAYS) return warn(subject, `${version} expires on ${expiry}, in ${days} day${days === 1 ? '' : 's'}`, `set ${at}.apiVersion to ${latest} before then`);
  return ok(subject, `${version}, supported until ${expiry}`);
}

export function checkPermissions(permissions: readonly Permission[], at = 'meta'): Check {
  const subject = 'permission ads_management';
  const entry = permissions.find((p) => p.permission === 'ads_management');
  if (entry?.status === 'granted') return ok(subject, 'granted');
  const readOnly = permissions.some((p) => p.permission === 'ads_read' && p.status === 'granted');
  return fail(
    subject,
    entry ? `the token's ads_management permission is ${entry.status}` : `the token was not granted ads_management${readOnly ? ' (only ads_read: it can read audiences but not change them)' : ''}`,
    `create a new token with ads_management granted (a system user token in Business Manager, or re-authorize the app) and update ${at}.accessToken`,
  );
}

const ACCOUNT_STATUS: Readonly<Record<number, string>> = { 1: 'active', 2: 'disabled', 3: 'unsettled', 7: 'pending risk review', 9: 'in grace period', 100: 'pending closure', 101: 'closed' };

/** `setting`: where the ad account id is written, for the fix. */
export function checkAdAccount(accounts: readonly AdAccount[], adAccountId: string, setting = 'meta.adAccountId'): Check {
  const subject = 'ad account';
  const account = accounts.find((a) => a.accountId === adAccountId);
  if (!account) {
    return fail(
      subject,
      `act_${adAccountId} is not among the ${accounts.length} ad account${accounts.length === 1 ? '' : 's'} this token can use`,
      `check ${setting}, or give the token's user (or system user) a role on the ad account in Business Manager`,
    );
  }
  if (account.accountStatus !== undefined && account.accountStatus !== 1) {
    const label = ACCOUNT_STATUS[account.accountStatus] ?? `status ${account.accountStatus}`;
    return fail(subject, `act_${adAccountId} is ${label} (account_status ${account.accountStatus})`, 'resolve the account\'s status in Business Manager (billing, review); audiences of an inactive account cannot be updated');
  }
  return ok(subject, `act_${adAccountId}${account.name ? ` (${account.name})` : ''} is active`);
}

export function checkTos(accepted: boolean, adAccountId: string): Check {
  const subject = 'custom audience terms';
  if (accepted) return ok(subject, 'accepted for this ad account');
  return fail(
    subject,
    `Meta's Custom Audience Terms of Service are not accepted for act_${adAccountId}: every upload is refused`,
    `open ${TOS_URL}${adAccountId} as a real user of the business (not a system user) and accept them`,
  );
}

/** An audience a sync delivers to, as Meta reports it, against what the sync will send. */
export function checkAudience(subject: string, a: AudienceInfo, expect: { valueBased: boolean }): Check[] {
  const checks: Check[] = [];
  if (a.subtype !== undefined && a.subtype !== 'CUSTOM') {
    checks.push(fail(subject, `audience ${a.id} is a ${a.subtype} audience: only customer-list (CUSTOM) audiences take uploads`, 'point audience.id at a customer-list audience, or use audience.create'));
  }
  const op = a.operationStatus;
  if (op?.code === 471 || (a.fieldsViolatingIntegrityPolicy?.length ?? 0) > 0) {
    const fields = a.fieldsViolatingIntegrityPolicy?.length ? ` (fields: ${a.fieldsViolatingIntegrityPolicy.join(', ')})` : '';
    checks.push(fail(subject, `audience ${a.id} is flagged for violating Meta's integrity policy${fields}: uploads are blocked`, 'have a human review the audience in Ads Manager; sync into a new audience if the flag stays'));
  } else if (op && [100, 411, 412, 415, 450, 470, 500].includes(op.code)) {
    checks.push(warn(subject, `audience ${a.id} operation status ${op.code}: ${op.description}`, operationFix(op.code)));
  }
  if (a.isValueBased !== undefined && a.isValueBased !== expect.valueBased) {
    checks.push(
      fail(
        subject,
        a.isValueBased ? `audience ${a.id} is value-based but the mapping has no LOOKALIKE_VALUE` : `the mapping sends LOOKALIKE_VALUE but audience ${a.id} is not value-based`,
        a.isValueBased ? 'map a LOOKALIKE_VALUE column (or set defaultLookalikeValue)' : 'remove LOOKALIKE_VALUE from the mapping, or sync into a value-based audience (audience.create.valueBased: true)',
      ),
    );
  }
  if (checks.length > 0) return checks;
  const size = a.approximateCountLowerBound === undefined || a.approximateCountLowerBound < 0 ? 'size not computed yet' : `about ${a.approximateCountLowerBound.toLocaleString('en-US')} people`;
  const delivery = a.deliveryStatus;
  if (delivery && delivery.code >= 300) {
    const text = `audience ${a.id}: ${size}; delivery status ${delivery.code}: ${delivery.description}`;
    return [delivery.code === 300
      ? warn(subject, text, 'ads cannot use it until it matches more people (about 1,000); add rows or identifiers (EMAIL, PHONE) to the model')
      : fail(subject, text, 'open the audience in Ads Manager to see why Meta will not deliver to it')];
  }
  return [ok(subject, `audience ${a.id}${a.name ? ` "${a.name}"` : ''}: ${size}, operation status ${op ? `${op.code} ${op.description}` : 'unknown'}`)];
}

function operationFix(code: number): string {
  switch (code) {
    case 411:
      return 'few rows matched Meta users: map more identifiers (EMAIL, PHONE, names, ZIP, COUNTRY) and check the coverage in `audience-sync plan`';
    case 412:
      return 'many rows were invalid: check `audience-sync plan` for drop reasons, and hashing: pre-hashed columns must hold lowercase SHA-256 of normalized values';
    case 415:
      return 'the last replace failed: run the sync again (a replace starts over)';
    default:
      return 'see the status in Ads Manager';
  }
}

/** The match-key schema a sync's mapping produces now against the one its audience was filled with. */
export function checkSchema(subject: string, current: string, stored: string | null): Check {
  if (stored === null) return ok(subject, `[${current}] (no run has delivered yet)`);
  if (stored === current) return ok(subject, `[${current}], unchanged since the last run`);
  return fail(
    subject,
    `the mapping now sends [${current}] but the audience was filled with [${stored}]: every record would be re-sent and Meta may refuse the new schema (error 2650)`,
    'revert the mapping, or sync into a new audience (audience.create) and run `audience-sync reset <sync>`',
  );
}

/** One check per problem `Workspace.checkSync` found, or one ok check. */
export function checkModel(subject: string, issues: ReadonlyArray<{ path: string; message: string }>): Check[] {
  if (issues.length === 0) return [ok(subject, 'every mapped column and the primary key are in the model')];
  return issues.map((i) =>
    fail(
      subject,
      `${i.path}: ${i.message}`,
      /\bGRANT\b/.test(i.message) ? 'ask the warehouse admin for the grant named above; `audience-sync doctor` checks again' : 'fix the model or the mapping; `audience-sync validate` checks again',
    ),
  );
}

/** Records that used up their attempts: the audience is missing them (or still holds them) until they are retried. */
export function checkGivenUp(subject: string, sync: string, g: GivenUpReport): Check {
  if (g.count === 0) return ok(subject, 'no record has used up its attempts');
  const top = g.reasons[0];
  return fail(
    subject,
    `${givenUpSentence(g)}${top ? `; most often: ${top.reason} (${top.count.toLocaleString('en-US')})` : ''}`,
    `\`audience-sync plan ${sync}\` shows them; fix the cause, then \`audience-sync retry ${sync}\` puts them back in the queue`,
  );
}

/** Meta's match rate of the latest processed run against the sync's usual rate. */
export function checkMatchRate(subject: string, h: MatchHealth): Check {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const low = lowMatchSentence(h);
  if (low) return warn(subject, low, `likely causes: ${h.causes.join('; ')}`);
  if (!h.latest) return ok(subject, 'Meta has not reported match counts for any run yet');
  const latest = `run #${h.latest.runId}: Meta matched ${pct(h.latest.rate)} of the rows sent`;
  return ok(subject, h.usualRate === null ? latest : `${latest}; usually ${pct(h.usualRate)}`);
}

export interface DoctorReport {
  ok: boolean;
  checks: Check[];
}

export function doctorReport(checks: Check[]): DoctorReport {
  return { ok: checks.every((c) => c.status !== 'fail'), checks };
}
