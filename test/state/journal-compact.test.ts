import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openStateStore, type StateStore } from '../../src/state/index.js';

const sizeOf = (path: string) => statSync(path).size + (() => { try { return statSync(`${path}-wal`).size; } catch { return 0; } })();

describe('the journal of warehouse change detection on SQLite', () => {
  let dir: string | undefined;
  let store: StateStore | undefined;
  afterEach(async () => {
    await store?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('gives the space of a flushed journal back: the state file does not stay at the size of the largest journal', async () => {
    dir = mkdtempSync(join(tmpdir(), 'audience-sync-journal-'));
    const path = join(dir, 'state.db');
    store = await openStateStore(`sqlite://${path}`);
    const cells = ['a'.repeat(64), 'b'.repeat(64), 'c'.repeat(64)];
    for (let b = 0; b < 10; b++) {
      const upsert = Array.from({ length: 10_000 }, (_, i) => ({ pk: `${b}`.padStart(4, '0') + String(i).padStart(60, '0'), fingerprint: 'f'.repeat(32), cells, status: 'synced' as const, attempts: 0, lastError: null }));
      await store.writeJournal('big', { upsert });
    }
    const { entries, lastSeq } = await store.journalSize('big');
    expect(entries).toBe(100_000);
    const full = sizeOf(path);
    expect(full).toBeGreaterThan(30 * 2 ** 20);
    await store.clearJournal('big', lastSeq);
    expect((await store.journalSize('big')).entries).toBe(0);
    expect(sizeOf(path)).toBeLessThan(full / 10);
  });
});
