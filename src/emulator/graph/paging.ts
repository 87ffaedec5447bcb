/** Cursor paging of list edges (docs/graph-api.md, "Endpoints"): opaque cursors, `next` only while more remains. */
import { errors } from '../errors.js';
import type { EmulatorFlags } from '../options.js';
import { intParam, stringParam } from './params.js';

export interface Page<T> {
  data: T[];
  paging?: { cursors: { before?: string; after?: string }; next?: string; previous?: string };
}

export function paginate<T>(
  items: readonly T[],
  params: ReadonlyMap<string, unknown>,
  flags: Pick<EmulatorFlags, 'defaultPageSize' | 'listLimitCeiling' | 'emptyFirstPage'>,
  selfUrl: URL,
): Page<T> {
  const limit = intParam(params, 'limit') ?? flags.defaultPageSize;
  if (limit < 1) throw errors.invalidParameter('param limit must be a positive integer');
  if (limit > flags.listLimitCeiling) throw errors.reduceData();
  const after = stringParam(params, 'after');
  const before = stringParam(params, 'before');

  if (after === undefined && before === undefined && flags.emptyFirstPage) {
    // Meta can return an empty page that still has more behind it; the client must follow `next` regardless.
    return { data: [], paging: { cursors: { after: encodeCursor(-1) }, next: link(selfUrl, 'after', encodeCursor(-1)) } };
  }
  let start = 0;
  let end: number;
  if (after !== undefined) {
    start = decodeCursor(after) + 1;
    end = Math.min(items.length, start + limit);
  } else if (before !== undefined) {
    end = Math.min(items.length, decodeCursor(before));
    start = Math.max(0, end - limit);
  } else {
    end = Math.min(items.length, limit);
  }
  const data = items.slice(start, Math.max(start, end));
  if (data.length === 0) return { data: [] };
  const cursors = { before: encodeCursor(start), after: encodeCursor(start + data.length - 1) };
  return {
    data,
    paging: {
      cursors,
      ...(start + data.length < items.length ? { next: link(selfUrl, 'after', cursors.after) } : {}),
      ...(start > 0 ? { previous: link(selfUrl, 'before', cursors.before) } : {}),
    },
  };
}

function link(selfUrl: URL, direction: 'after' | 'before', cursor: string): string {
  const url = new URL(selfUrl);
  url.searchParams.delete('after');
  url.searchParams.delete('before');
  url.searchParams.set(direction, cursor);
  return url.toString();
}

function encodeCursor(index: number): string {
  return Buffer.from(`emu:${index}`).toString('base64url');
}

function decodeCursor(cursor: string): number {
  const m = /^emu:(-?\d+)$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw errors.invalidParameter('Invalid cursor: pass back the after/before value from a previous page unchanged');
  return Number(m[1]);
}
