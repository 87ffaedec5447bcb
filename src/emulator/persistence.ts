/** File-backed mode: the store is loaded from a JSON file at start and written back (atomically) on save. */
import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import type { EmulatorStore, StoreSnapshot } from './store/store.js';

export async function loadDataFile(store: EmulatorStore, path: string): Promise<boolean> {
  if (!existsSync(path)) return false;
  let snapshot: StoreSnapshot;
  try {
    snapshot = JSON.parse(await readFile(path, 'utf8')) as StoreSnapshot;
  } catch (e) {
    throw new Error(`Emulator data file ${path} is not valid JSON (${e instanceof Error ? e.message : String(e)}); fix or delete it.`, { cause: e });
  }
  store.restore(snapshot);
  return true;
}

export async function saveDataFile(store: EmulatorStore, path: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(store.snapshot()));
  await rename(tmp, path);
}
