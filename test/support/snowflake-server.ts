// A strict local Snowflake SQL API v2 server for tests (shared with the bench; see its header for the documentation it follows).
export { startSnowflakeServer, type SnowflakeServer, type SnowflakeServerOptions } from '../../src/devtools/snowflake-server.js';
