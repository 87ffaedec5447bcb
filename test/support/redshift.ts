// Redshift for tests: a real PostgreSQL database standing in for Redshift. Redshift speaks the
// PostgreSQL wire protocol; what the source must do differently is SQL, so the stand-in defines
// the Redshift functions the source uses and takes away the PostgreSQL one Redshift lacks, and SQL
// that only PostgreSQL understands fails here as it would on Redshift:
// - SHA2(text, 256): the lowercase hex SHA-256 of the text's UTF-8 bytes, as Redshift's SHA2.
// - TO_VARBYTE(text, 'utf8'): the text's UTF-8 bytes, which compare byte by byte, as Redshift's
//   VARBYTE does.
// - sha256(bytea) (PostgreSQL's, not Redshift's) may not be called by ordinary users.
// What the stand-in cannot check (no COLLATE "C", no NO SCROLL cursors, FETCH of at most 1000
// rows on a single-node cluster) is checked on the SQL the source sends (test/sources/redshift.test.ts).
import pg from 'pg';

export const REDSHIFT_STANDIN_SQL = `
  CREATE FUNCTION sha2(text, integer) RETURNS text LANGUAGE sql IMMUTABLE STRICT SECURITY DEFINER
    AS $$ SELECT CASE WHEN $2 = 256 THEN encode(sha256(convert_to($1, 'UTF8')), 'hex') END $$;
  CREATE FUNCTION to_varbyte(text, text) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT
    AS $$ SELECT CASE WHEN lower($2) = 'utf8' THEN convert_to($1, 'UTF8') END $$;
  REVOKE EXECUTE ON FUNCTION sha256(bytea) FROM PUBLIC;
`;

/**
 * Creates the stand-in database `name` on a test PostgreSQL server (superuser URL to its
 * `postgres` database) and returns an admin connection to it.
 */
export async function createRedshiftStandin(serverUrl: string, name: string): Promise<pg.Client> {
  const root = new pg.Client(serverUrl);
  await root.connect();
  try {
    await root.query(`CREATE DATABASE ${name}`);
  } finally {
    await root.end();
  }
  const admin = new pg.Client(serverUrl.replace(/\/postgres$/, `/${name}`));
  await admin.connect();
  await admin.query(REDSHIFT_STANDIN_SQL);
  return admin;
}
