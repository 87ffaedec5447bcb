/**
 * Compares two keys in the UTF-8 byte order the state store and the sources sort by (SQLite BINARY,
 * PostgreSQL COLLATE "C", DuckDB's default), i.e. code point order: the same as
 * `Buffer.compare(Buffer.from(a), Buffer.from(b))` without allocating. JavaScript's own `<` compares
 * UTF-16 code units, which differs for characters above U+FFFF versus U+E000–U+FFFF.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (D800–DFFF) encode code points above FFFF: move them above E000–FFFF.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x < y ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}
