// Where the browser tests find chromium. They never skip: a missing browser fails them with a message
// that says how to install it, so it can never pass as a green run.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Debian's chromium; AUDIENCE_SYNC_CHROMIUM points elsewhere. */
export function chromiumPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.AUDIENCE_SYNC_CHROMIUM || '/usr/bin/chromium';
}

export interface Browser {
  page: Page;
  close(): Promise<void>;
}

/** Headless chromium with a throw-away profile and one page. */
export async function openBrowser(): Promise<Browser> {
  const path = chromiumPath();
  if (!existsSync(path)) {
    throw new Error(`chromium is missing at ${path}: the dashboard's browser tests cannot run. Install it (apt-get install chromium; .ci/run does) or point AUDIENCE_SYNC_CHROMIUM at it`);
  }
  const profile = mkdtempSync(join(tmpdir(), 'audience-sync-chromium-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: path,
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
