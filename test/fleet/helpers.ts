// Helpers for tests that need PostgreSQL databases and emulator audiences of their own.
import pg from 'pg';
import { DEFAULT_AD_ACCOUNT, DEFAULT_TOKEN } from '../../src/emulator/index.js';

/** Creates an empty database on the server; returns its URL. */
export async function createDatabase(serverUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(`create database ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A new custom audience of the emulator's default ad account; its id. */
export async function createAudience(emulatorUrl: string, name: string): Promise<string> {
  const res = await fetch(`${emulatorUrl}/v25.0/act_${DEFAULT_AD_ACCOUNT}/customaudiences`, {
    method: 'POST',
    headers: { authorization: `Bearer ${DEFAULT_TOKEN}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ name, subtype: 'CUSTOM', customer_file_source: 'USER_PROVIDED_ONLY' }),
  });
  if (!res.ok) throw new Error(`creating audience "${name}" failed: HTTP ${res.status} ${await res.text()}`);
  return ((await res.json()) as { id: string }).id;
}

/** Polls `check` every 100 ms until it holds; fails with `describe()` after `timeoutMs`. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, describe: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
