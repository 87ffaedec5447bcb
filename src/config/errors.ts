/** One problem in a config file, located by its path (e.g. `syncs[0].mapping.EMAIL`). */
export interface ConfigIssue {
  readonly path: string;
  readonly message: string;
  /** 1-based line in the config file, when known. */
  readonly line?: number;
  /** 1-based column of a YAML syntax error. */
  readonly column?: number;
}

/** The config file cannot be used; `issues` lists every problem found, not only the first. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly file: string,
    readonly issues: readonly ConfigIssue[],
  ) {
    super(
      `${file} is not a valid audience-sync config (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n` +
        issues.map((i) => `  - ${formatIssue(i)}`).join('\n'),
    );
  }
}

export function formatIssue(issue: ConfigIssue): string {
  const where = issue.path === '' ? '(top level)' : issue.path;
  const at = issue.line === undefined ? '' : issue.column === undefined ? ` (line ${issue.line})` : ` (line ${issue.line}, column ${issue.column})`;
  return `${where}${at}: ${issue.message}`;
}

/** `['syncs', 0, 'mapping', 'EMAIL']` → `syncs[0].mapping.EMAIL`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}
