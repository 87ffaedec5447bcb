// Where the browser tests find chromium, and whether they may skip without it: on a developer's
// machine they skip; CI (`.ci/run` sets AUDIENCE_SYNC_REQUIRE_BROWSER=1) must fail instead, so a
// missing browser can never pass as a green run.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

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

export interface Browser {
  page: Page;
  close(): Promise<void>;
}

/** Headless chromium with a throw-away profile and one page. */
export async function openBrowser(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'audience-sync-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath(),
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1200, height: 900 },
    });
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    page,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
