// Where the browser tests find chromium, and whether they may skip without it: on a developer's
// machine they skip; CI (`.ci/run` sets AUDIENCE_SYNC_REQUIRE_BROWSER=1) must fail instead, so a
// missing browser can never pass as a green run.
import { existsSync } from 'node:fs';

export const REQUIRE_BROWSER_ENV = 'AUDIENCE_SYNC_REQUIRE_BROWSER';

/** Debian's chromium; AUDIENCE_SYNC_CHROMIUM points elsewhere. */
export function chromiumPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.AUDIENCE_SYNC_CHROMIUM || '/usr/bin/chromium';
}

/**
 * True when chromium is there; false (skip) when it is not and the browser is optional.
 * @throws Error when it is missing and AUDIENCE_SYNC_REQUIRE_BROWSER=1.
 */
export function browserAvailable(env: NodeJS.ProcessEnv = process.env): boolean {
  const path = chromiumPath(env);
  if (existsSync(path)) return true;
  if (env[REQUIRE_BROWSER_ENV] === '1') {
    throw new Error(`chromium is missing at ${path} and ${REQUIRE_BROWSER_ENV}=1: the dashboard's browser tests cannot run. Install it (apt-get install chromium) or point AUDIENCE_SYNC_CHROMIUM at it`);
  }
  return false;
}
