/** Reading typed values out of Graph params, which arrive as strings (form, query) or JSON values. */
import { errors } from '../errors.js';

export function stringParam(params: ReadonlyMap<string, unknown>, name: string): string | undefined {
  const v = params.get(name);
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw errors.invalidParameter(`param ${name} must be a string`);
}

export function boolParam(params: ReadonlyMap<string, unknown>, name: string): boolean | undefined {
  const v = params.get(name);
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === '1' || v === 1) return true;
  if (v === 'false' || v === '0' || v === 0) return false;
  throw errors.invalidParameter(`param ${name} must be a boolean`);
}

export function intParam(params: ReadonlyMap<string, unknown>, name: string): number | undefined {
  const v = params.get(name);
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw errors.invalidParameter(`param ${name} must be an integer`);
  return n;
}

/** `fields=a,b{c},d` → ['a','b','d'] (sub-field selections are ignored). */
export function fieldsParam(params: ReadonlyMap<string, unknown>): string[] {
  const raw = stringParam(params, 'fields');
  if (raw === undefined) return [];
  let depth = 0;
  let plain = '';
  for (const ch of raw) {
    if (ch === '{') depth++;
    else if (ch === '}') depth = Math.max(0, depth - 1);
    else if (depth === 0) plain += ch;
  }
  return plain
    .split(',')
    .map((f) => f.trim())
    .filter((f) => f !== '');
}
