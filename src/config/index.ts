export { loadConfig, parseConfig, resolveStateUrl } from './load.js';
export { ConfigError, formatIssue, type ConfigIssue } from './errors.js';
export {
  configSchema,
  DEFAULT_API_VERSION,
  DEFAULT_GRAPH_URL,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_MAX_REMOVAL_SHARE,
  DEFAULT_STATE_URL,
  MAX_BATCH_ROWS,
  DEFAULT_MAX_CONCURRENT_PER_AD_ACCOUNT,
  DEFAULT_JOB_TIMEOUT_SECONDS,
  DEFAULT_POLL_INTERVAL_SECONDS,
} from './schema.js';
export type {
  AudienceConfig,
  ChangeDetection,
  BigQuerySourceConfig,
  Config,
  ConnectionConfig,
  DuckDbSourceConfig,
  FleetConfig,
  HashingMode,
  MetaConfig,
  MySqlSourceConfig,
  PostgresSourceConfig,
  RedshiftSourceConfig,
  SnowflakeSourceConfig,
  DatabricksSourceConfig,
  ServerConfig,
  SourceConfig,
  SyncConfig,
  SyncMode,
} from './types.js';
export { CHANGE_DETECTIONS, DEFAULT_CONNECTION, HASHING_MODES, SYNC_MODES } from './types.js';
export { ALERT_FLAGS, type AlertDestination, type AlertFlag } from './alerts.js';
export { snapshotTableName } from './semantics.js';
