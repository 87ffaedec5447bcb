/**
 * JSON parsing that keeps big integers exact. Meta returns ids as strings, but an id sent as a bare
 * number above 2^53 (e.g. 23851234567890123) would silently become a different float under JSON.parse.
 * Node 20 has no reviver source-text access, so integer literals that are not safe integers are quoted
 * before parsing; everything else parses as usual.
 */
export function parseGraphJson(text: string): unknown {
  if (!/\d{16}/.test(text)) return JSON.parse(text);
  return JSON.parse(quoteUnsafeIntegers(text));
}

/** Wraps every integer literal outside a string whose value is not a safe integer in double quotes. */
function quoteUnsafeIntegers(text: string): string {
  let out = '';
  let copiedUpTo = 0;
  let i = 0;
  while (i < text.length) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22 /* " */) {
      i = skipString(text, i);
      continue;
    }
    if (ch === 0x2d /* - */ || isDigit(ch)) {
      const start = i;
      i++;
      while (i < text.length && isDigit(text.charCodeAt(i))) i++;
      const next = text.charCodeAt(i);
      const isInteger = next !== 0x2e /* . */ && next !== 0x65 /* e */ && next !== 0x45 /* E */;
      const literal = text.slice(start, i);
      if (isInteger && !Number.isSafeInteger(Number(literal))) {
        out += text.slice(copiedUpTo, start) + '"' + literal + '"';
        copiedUpTo = i;
      }
      while (i < text.length && /[0-9.eE+-]/.test(text.charAt(i))) i++;
      continue;
    }
    i++;
  }
  return out + text.slice(copiedUpTo);
}

function isDigit(ch: number): boolean {
  return ch >= 0x30 && ch <= 0x39;
}

/** Index just past the closing quote of the string starting at `start`. */
function skipString(text: string, start: number): number {
  let i = start + 1;
  while (i < text.length) {
    const ch = text.charCodeAt(i);
    if (ch === 0x5c /* \ */) i += 2;
    else if (ch === 0x22) return i + 1;
    else i++;
  }
  return i;
}

/** An id Meta may send as a string or a (safe) number, as a string; undefined for anything else. */
export function idString(value: unknown): string | undefined {
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  return undefined;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
