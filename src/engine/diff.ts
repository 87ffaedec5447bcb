import type { EncodedRecord } from '../identity/index.js';
import type { Cell, ChangeKind, RecordWrite, StoredRecord, SyncMode } from './types.js';

/** How one key is classified, and the encoding when the row had to be encoded. */
export interface Classified {
  change: ChangeKind;
  fingerprint?: string;
  encoded?: EncodedRecord;
}

export interface ClassifyContext {
  fingerprint(row: Record<string, unknown>): string;
  encode(row: Record<string, unknown>): EncodedRecord;
  maxAttempts: number;
}

/**
 * Decides how a key moved since the last committed state. Only rows whose fingerprint moved (or
 * that are due a retry, or new) are encoded; an unchanged row costs one fingerprint.
 */
export function classify(row: Record<string, unknown> | undefined, stored: StoredRecord | undefined, ctx: ClassifyContext): Classified {
  if (row === undefined) {
    if (stored === undefined) throw new Error('classify needs a row or a stored record');
    if (stored.status === 'failed' && stored.attempts >= ctx.maxAttempts) return { change: 'failed' };
    return { change: 'deleted' };
  }
  const fingerprint = ctx.fingerprint(row);
  if (stored !== undefined && stored.fingerprint === fingerprint) {
    if (stored.status === 'synced') return { change: 'unchanged', fingerprint };
    if (stored.status === 'failed' && stored.attempts >= ctx.maxAttempts) return { change: 'failed', fingerprint };
  }
  const encoded = ctx.encode(row);
  if (encoded.rejected) return { change: 'rejected', fingerprint, encoded };
  if (stored === undefined) return { change: 'added', fingerprint, encoded };
  if (stored.fingerprint === fingerprint) return { change: 'retry', fingerprint, encoded };
  // The raw values moved but normalize to what Meta already has (e.g. only letter case changed).
  if (stored.status === 'synced' && stored.cells !== null && cellsEqual(stored.cells, encoded.cells)) {
    return { change: 'unchanged', fingerprint, encoded };
  }
  return { change: 'updated', fingerprint, encoded };
}

/**
 * One row to send (added, removed or replaced), as spooled to disk: its cells, and the state to
 * commit once Meta has it (`ok`) or once its batch is refused (`f`).
 */
export interface Delivery {
  k: string;
  c: readonly Cell[];
  fp: string;
  /** synced: remember these cells; forget: drop the record; clear: no cells in the audience any more. */
  ok: 'synced' | 'forget' | 'clear';
  /** Attempts already spent on this data (kept by `clear`). */
  pa: number;
  /** The record after a refused batch; absent when a failure changes nothing (replace). */
  f?: FailureBase;
}

export interface FailureBase {
  fingerprint: string;
  cells: readonly Cell[] | null;
  priorAttempts: number;
}

/** What to do for one key: at most one removal (sent first), one add/replace row, and state-only writes. */
export interface RecordPlan {
  remove?: Delivery;
  deliver?: Delivery;
  /** Written at once: no delivery needed. */
  write?: RecordWrite;
  /** Written after a whole replace succeeded (keys that left the model). */
  afterReplace?: RecordWrite;
}

export function successWrite(d: Delivery): RecordWrite {
  switch (d.ok) {
    case 'synced':
      return { op: 'upsert', pk: d.k, fingerprint: d.fp, cells: d.c, status: 'synced', attempts: 0, lastError: null };
    case 'forget':
      return { op: 'delete', pk: d.k };
    case 'clear':
      return { op: 'upsert', pk: d.k, fingerprint: d.fp, cells: null, status: 'pending', attempts: d.pa, lastError: null };
  }
}

/**
 * Written just before a batch goes out. An add: from then on Meta may hold these cells even if the
 * answer is lost or the process dies, so our state must know them to remove the record later. A
 * removal of a changed identifier (`clear`): from then on Meta may no longer hold the record, so it
 * must not stay `synced`, or a model going back to the old values would find it unchanged and never
 * add it again. The same holds for a departure: a person who comes back before our state recorded
 * their removal would otherwise look unchanged and stay out of the audience.
 */
export function intentWrite(d: Delivery): RecordWrite | undefined {
  if (!d.f) return undefined;
  return { op: 'upsert', pk: d.k, fingerprint: d.f.fingerprint, cells: d.c, status: 'pending', attempts: d.f.priorAttempts, lastError: null };
}

/** The state write for a record whose batch Meta refused: pending until it runs out of attempts. */
export function failureWrite(pkHash: string, base: FailureBase, error: string, maxAttempts: number): RecordWrite {
  const attempts = base.priorAttempts + 1;
  return { op: 'upsert', pk: pkHash, fingerprint: base.fingerprint, cells: base.cells, status: attempts >= maxAttempts ? 'failed' : 'pending', attempts, lastError: error };
}

/**
 * Maps a classified key to deliveries and state writes for the sync's mode:
 * upsert adds and never removes; delete removes departed records and never adds (it only tracks
 * what it would have to remove); mirror does both; replace re-sends every usable row.
 */
export function planRecord(
  mode: SyncMode,
  pkHash: string,
  c: Classified,
  stored: StoredRecord | undefined,
  opts: { staleRemoval: boolean },
): RecordPlan {
  const priorAttempts = (fingerprint: string) => (stored?.fingerprint === fingerprint ? stored.attempts : 0);
  const synced = (fingerprint: string, cells: readonly Cell[] | null): RecordWrite => ({
    op: 'upsert', pk: pkHash, fingerprint, cells, status: 'synced', attempts: 0, lastError: null,
  });
  const forget: RecordWrite = { op: 'delete', pk: pkHash };
  const removal = (s: StoredRecord): Delivery => ({
    k: pkHash, c: s.cells!, fp: s.fingerprint, ok: 'forget', pa: s.attempts,
    f: { fingerprint: s.fingerprint, cells: s.cells, priorAttempts: s.attempts },
  });

  switch (c.change) {
    case 'unchanged': {
      if (mode === 'replace' && stored?.cells) {
        return { deliver: { k: pkHash, c: stored.cells, fp: c.fingerprint ?? stored.fingerprint, ok: 'synced', pa: 0 } };
      }
      // Same cells but new raw values: remember the new fingerprint so the row is not encoded again.
      if (stored && c.fingerprint && stored.fingerprint !== c.fingerprint) return { write: synced(c.fingerprint, stored.cells) };
      return {};
    }
    case 'failed':
      return {};
    case 'added':
    case 'updated':
    case 'retry': {
      const fp = c.fingerprint!;
      const cells = c.encoded!.cells;
      if (mode === 'delete') return { write: synced(fp, cells) };
      const stale = mode === 'mirror' && opts.staleRemoval && stored?.cells != null && hasStaleIdentifier(stored.cells, cells);
      const plan: RecordPlan = {
        deliver: {
          k: pkHash, c: cells, fp, ok: 'synced', pa: 0,
          // After a stale removal the old cells are gone from the audience, so a failed add leaves none.
          f: mode === 'replace' ? undefined : { fingerprint: fp, cells: stale ? null : (stored?.cells ?? null), priorAttempts: priorAttempts(fp) },
        },
      };
      if (stale && stored) {
        // An identifier changed: take the old one out first, or the person stays matched by it.
        plan.remove = { ...removal(stored), ok: 'clear' };
      }
      return plan;
    }
    case 'rejected':
    case 'deleted': {
      if (stored === undefined) return {};
      if (mode === 'replace') return { afterReplace: forget };
      if (mode === 'upsert') return {};
      if (stored.cells === null) return c.change === 'deleted' ? { write: forget } : {};
      return { remove: removal(stored) };
    }
  }
}

function cellsEqual(a: readonly Cell[], b: readonly Cell[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True when the old cells hold an identifier that the new ones no longer carry (numbers are lookalike values, not identifiers). */
export function hasStaleIdentifier(previous: readonly Cell[], next: readonly Cell[]): boolean {
  if (previous.length !== next.length) return false;
  for (let i = 0; i < previous.length; i++) {
    const old = previous[i];
    if (typeof old === 'string' && old !== '' && old !== next[i]) return true;
  }
  return false;
}
