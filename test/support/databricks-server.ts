// A strict local Databricks SQL Statement Execution API 2.0 server for tests (shared with the bench; see its header for the documentation it follows).
export { startDatabricksServer, type DatabricksServer, type DatabricksServerOptions } from '../../src/devtools/databricks-server.js';
