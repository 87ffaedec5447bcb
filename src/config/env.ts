// `${VAR}` expansion over the parsed YAML tree (not the text, so a value can never break the YAML).
import type { ConfigIssue } from './errors.js';
import { formatPath } from './errors.js';

const REFERENCE = /\$(\$)?\{([^}]*)\}/g;
const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export type IssueAt = Omit<ConfigIssue, 'line'> & { readonly at: readonly PropertyKey[] };

/**
 * Replaces `${NAME}` in every string value with the environment variable `NAME`; `$${...}` stays a
 * literal `${...}`. Unset variables and malformed references are reported with the config path that
 * uses them. Values are never echoed (they may be secrets).
 */
export function expandEnv(
  value: unknown,
  env: Readonly<Record<string, string | undefined>>,
  issues: IssueAt[],
  at: readonly PropertyKey[] = [],
): unknown {
  if (typeof value === 'string') return expandString(value, env, issues, at);
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, env, issues, [...at, i]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = expandEnv(v, env, issues, [...at, k]);
    return out;
  }
  return value;
}

function expandString(
  text: string,
  env: Readonly<Record<string, string | undefined>>,
  issues: IssueAt[],
  at: readonly PropertyKey[],
): string {
  return text.replace(REFERENCE, (_match, escaped: string | undefined, name: string) => {
    if (escaped) return `\${${name}}`;
    const path = formatPath(at);
    if (!VAR_NAME.test(name)) {
      issues.push({ at, path, message: `"\${${name}}" is not a valid variable reference: use \${NAME} with letters, digits and _ (write $\${...} for a literal \${...})` });
      return '';
    }
    const found = env[name];
    if (found === undefined) {
      issues.push({ at, path, message: `environment variable ${name} is not set: export it before running audience-sync` });
      return '';
    }
    return found;
  });
}
