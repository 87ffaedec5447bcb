/**
 * Each run (and plan) of a workspace works in a private folder of its own under
 * `.audience-sync/tmp` next to the config: its plan spools and the warehouse's spill files (raw model
 * rows) go there, and two runs never share one. The folder is 0700 and removed when the run ends; a
 * run killed before that leaves it behind, and the next run on the same host removes it once the
 * process named in it is gone.
 */
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { processAlive } from '../engine/run.js';

/** `-` separates the parts of a folder's name, so the host name goes without it. */
const HOST = hostname().replace(/[^A-Za-z0-9.]/g, '_');
const RUN_FOLDER = /^run-([A-Za-z0-9._]+)-(\d+)-[A-Za-z0-9]{6}$/;
/** Plan spools of older versions, written straight into the folder: `<kind>-<pid>-<ms>-<random>.jsonl`. */
const LOOSE_SPOOL = /^(?:remove|add|replace|state|forget)-(\d+)-\d+-[a-z0-9]+\.jsonl$/;

/** Runs `fn` with a new private folder under `root`, removed afterwards; first sweeps what killed runs left. */
export async function withRunFolder<T>(root: string, fn: (folder: string) => Promise<T>): Promise<T> {
  await mkdir(root, { recursive: true, mode: 0o700 });
  await sweepRunFolders(root);
  // mkdtemp makes the folder 0700 whatever the umask.
  const folder = await mkdtemp(join(root, `run-${HOST}-${process.pid}-`));
  try {
    return await fn(folder);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

/** Removes the folders and loose spools of this host's runs whose process is gone; returns their names. */
export async function sweepRunFolders(root: string): Promise<string[]> {
  const swept: string[] = [];
  for (const entry of await readdir(root, { withFileTypes: true }).catch(() => [])) {
    const run = entry.isDirectory() ? RUN_FOLDER.exec(entry.name) : null;
    const spool = entry.isFile() ? LOOSE_SPOOL.exec(entry.name) : null;
    const pid = run && run[1] === HOST ? run[2] : spool?.[1];
    if (pid === undefined || processAlive(Number(pid))) continue;
    await rm(join(root, entry.name), { recursive: true, force: true });
    swept.push(entry.name);
  }
  return swept;
}
