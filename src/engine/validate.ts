import { MATCH_KEYS } from '../identity/index.js';
import type { SyncSpec } from './types.js';

export interface ModelIssue {
  /** Config path at fault, relative to the sync (e.g. `mapping.EMAIL`). */
  path: string;
  message: string;
}

/**
 * Checks the model's columns against the sync's primary key and mapping, before any row is read.
 * `find` is the warehouse's rule for matching a configured name (default: exactly), the same rule its
 * reads use, so `user_id` passes where Snowflake names the column USER_ID.
 */
export function checkModelColumns(spec: SyncSpec, columns: readonly string[], find?: (name: string, columns: readonly string[]) => string | undefined): ModelIssue[] {
  const exact = new Set(columns);
  const have = { has: (name: string) => (find ? find(name, columns) !== undefined : exact.has(name)) };
  const list = columns.length > 12 ? `${columns.slice(0, 12).join(', ')}, …` : columns.join(', ');
  const issues: ModelIssue[] = [];
  const missing = (path: string, column: string, what: string) => {
    // Warehouses that fold unquoted names (Redshift to lower case, Snowflake to upper case) return
    // `userid` for `select UserId`: name the column as the warehouse returns it.
    const folded = columns.find((c) => c.toLowerCase() === column.toLowerCase());
    const fix = folded === undefined ? 'fix the column name or the model' : `the warehouse returns it as "${folded}": write "${folded}" here`;
    issues.push({ path, message: `${what} column "${column}" is not in the model's result (columns: ${list}); ${fix}` });
  };
  if (!have.has(spec.primaryKey)) missing('primaryKey', spec.primaryKey, 'primary key');
  for (const key of MATCH_KEYS) {
    const column = spec.mapping[key];
    if (column !== undefined && !have.has(column)) missing(`mapping.${key}`, column, `${key}`);
  }
  return issues;
}
