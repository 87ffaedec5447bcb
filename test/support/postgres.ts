// A real, throw-away PostgreSQL server for tests (the implementation is shared with the chaos run).
export { startPostgres, type TestPostgres } from '../../src/devtools/postgres.js';
