/**
 * Finds the model rows behind error samples, which hold only the SHA-256 of a primary key: the
 * model is read again (its key column only), each key hashed the way a run hashes it, and the keys
 * whose hash matches are returned to be printed. They are never written anywhere.
 */
import { PK_FIELD } from '../sources/index.js';
import type { Workspace } from './workspace.js';

export interface LocatedKey {
  /** The primary key's text form, as the model returns it now. */
  key: string;
  /** Rows with this key (more than 1 for a duplicate key). */
  rows: number;
}

/** The keys of the sync's model whose SHA-256 is in `hashes`, by hash; hashes no row has are absent. */
export async function locateKeys(ws: Workspace, syncName: string, hashes: ReadonlySet<string>): Promise<Map<string, LocatedKey>> {
  const found = new Map<string, LocatedKey>();
  if (hashes.size === 0) return found;
  const sync = ws.sync(syncName);
  const source = await ws.source(sync.source);
  const last = [...hashes].sort().at(-1)!;
  // Rows come ordered by the key's hash: past the largest hash wanted there is nothing more to find.
  outer: for await (const chunk of source.stream(sync.model, { columns: [sync.primaryKey], orderByKey: sync.primaryKey, keyForm: 'sha256' })) {
    for (const row of chunk) {
      const hash = row[PK_FIELD];
      if (typeof hash !== 'string' || hash > last) break outer;
      if (!hashes.has(hash)) continue;
      const seen = found.get(hash);
      if (seen) seen.rows++;
      else found.set(hash, { key: String(row[sync.primaryKey]), rows: 1 });
    }
  }
  return found;
}
