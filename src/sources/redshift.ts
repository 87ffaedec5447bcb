// Amazon Redshift speaks the PostgreSQL wire protocol (read with `pg`, as PostgreSQL is), with its own
// SQL dialect: what differs is spelled here, the rest is shared with postgres.ts.
import { openWire, qualifiedTables, type WireDialect } from './postgres.js';
import { quoteIdent } from './sql.js';
import type { Source } from './types.js';
import { jsonValue } from './values.js';

/** Redshift's VARCHAR holds at most 65535 bytes; a bare VARCHAR would be VARCHAR(256) and cut longer keys. */
const keyText = (col: string) => `CAST(${col} AS VARCHAR(65535))`;

/** SUPER (semi-structured values) arrives as JSON text. */
const SUPER_OID = 4000;

export const REDSHIFT_DIALECT: WireDialect = {
  type: 'redshift',
  product: 'Redshift',
  sql: {
    quote: quoteIdent,
    keyText,
    // No pgcrypto/sha256() on Redshift: SHA2 hashes the UTF-8 bytes and returns lowercase hex.
    keySha256: (col) => `SHA2(${keyText(col)}, 256)`,
    // No COLLATE "C" on Redshift: the key's UTF-8 bytes as VARBYTE compare byte by byte. Hex digests
    // compare the same in any collation.
    orderByKey: (pk, key, form) => (form === 'text' ? `TO_VARBYTE(${key}, 'utf8') NULLS LAST` : `${pk} NULLS LAST`),
    ...qualifiedTables,
    textType: 'VARCHAR(65535)',
    integerType: 'BIGINT',
    // MD5 hashes the UTF-8 bytes and returns lowercase hex.
    md5Hex: (text) => `MD5(${text})`,
    valueText: keyText,
  },
  // Every Redshift transaction is serializable (one snapshot); READ ONLY keeps the model from writing.
  begin: 'BEGIN READ ONLY',
  // Redshift's DECLARE takes no SCROLL options.
  declareCursor: (cursor, query) => `DECLARE ${cursor} CURSOR FOR ${query}`,
  // A single-node cluster refuses FETCH FORWARD counts above 1000.
  maxFetch: 1000,
  parsers: { [SUPER_OID]: jsonValue },
  serverInfo: (version) => /Redshift [\d.]+/.exec(version)?.[0] ?? version,
};

/**
 * An Amazon Redshift cluster or Serverless workgroup. Redshift materializes a cursor's result on its
 * leader node at the first FETCH; rows then come 1000 per FETCH.
 */
export function openRedshift(url: string, label: string): Promise<Source> {
  return openWire(url, label, REDSHIFT_DIALECT);
}
