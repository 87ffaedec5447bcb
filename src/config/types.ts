import type { DateFormat } from '../identity/dob.js';
import type { MatchKey } from '../identity/keys.js';
import type { AlertDestination } from './alerts.js';

/** How a sync reconciles the audience with its model. */
export type SyncMode = 'upsert' | 'delete' | 'mirror' | 'replace';
export const SYNC_MODES = ['upsert', 'delete', 'mirror', 'replace'] as const satisfies readonly SyncMode[];

/** Where a sync's changes are found: by comparing with our own state (`local`) or inside the warehouse (`warehouse`). */
export type ChangeDetection = 'local' | 'warehouse';
export const CHANGE_DETECTIONS = ['local', 'warehouse'] as const satisfies readonly ChangeDetection[];

/** `auto` hashes plain values and passes hashes through; `pre-hashed` rejects plain values. */
export type HashingMode = 'auto' | 'pre-hashed';
export const HASHING_MODES = ['auto', 'pre-hashed'] as const satisfies readonly HashingMode[];

export type DuckDbSourceConfig = {
  readonly type: 'duckdb';
  /** Absolute path of the database file, or `:memory:`. */
  readonly path: string;
  /** DuckDB memory_limit, e.g. `256MB`. */
  readonly memoryLimit?: string;
  readonly stateSchema?: string;
};

export type PostgresSourceConfig = {
  readonly type: 'postgres';
  /** Connection URL (may hold a password: never print it). */
  readonly url: string;
  /** Schema warehouse change detection writes its snapshot tables to. */
  readonly stateSchema?: string;
};

export type MySqlSourceConfig = {
  readonly type: 'mysql';
  /** `mysql://` URL (may hold a password: never print it). */
  readonly url: string;
  /** TLS; file paths absolute. */
  readonly ssl?: { readonly ca?: string; readonly cert?: string; readonly key?: string; readonly rejectUnauthorized?: boolean };
};

export type RedshiftSourceConfig = {
  readonly type: 'redshift';
  /** `postgres://` URL with sslmode (may hold a password: never print it). */
  readonly url: string;
  /** Schema warehouse change detection writes its snapshot tables to. */
  readonly stateSchema?: string;
};

export type BigQuerySourceConfig = {
  readonly type: 'bigquery';
  readonly projectId: string;
  readonly location?: string;
  readonly dataset?: string;
  /** Absolute path of a service-account key file; absent: Application Default Credentials. */
  readonly keyFile?: string;
  readonly apiEndpoint?: string;
  readonly stateSchema?: string;
};

export type SnowflakeSourceConfig = {
  readonly type: 'snowflake';
  readonly account: string;
  readonly user: string;
  /** Absolute path of the private key PEM. */
  readonly privateKeyFile?: string;
  readonly privateKey?: string;
  readonly privateKeyPassphrase?: string;
  readonly token?: string;
  readonly tokenType?: 'PROGRAMMATIC_ACCESS_TOKEN' | 'OAUTH';
  readonly warehouse?: string;
  readonly database?: string;
  readonly schema?: string;
  readonly role?: string;
  readonly statementTimeoutSeconds?: number;
  readonly url?: string;
  readonly stateSchema?: string;
};

export type DatabricksSourceConfig = {
  readonly type: 'databricks';
  readonly host: string;
  readonly warehouseId: string;
  readonly token?: string;
  readonly clientId?: string;
  readonly clientSecret?: string;
  readonly catalog?: string;
  readonly schema?: string;
  readonly disposition?: 'EXTERNAL_LINKS' | 'INLINE';
  readonly url?: string;
  readonly stateSchema?: string;
};

export type SourceConfig =
  | DuckDbSourceConfig
  | PostgresSourceConfig
  | RedshiftSourceConfig
  | MySqlSourceConfig
  | BigQuerySourceConfig
  | SnowflakeSourceConfig
  | DatabricksSourceConfig;

/** An existing audience (`{ id }`) or one the first run creates (`{ create }`). */
export type AudienceConfig =
  | { readonly id: string }
  | {
      readonly create: {
        readonly name: string;
        readonly description?: string;
        readonly valueBased: boolean;
      };
    };

export interface SyncConfig {
  readonly name: string;
  /** Name of an entry of `Config.sources`. */
  readonly source: string;
  /** Name of an entry of `Config.connections`: whose token the sync's Graph calls use. */
  readonly connection: string;
  /** Digits only (`act_` removed): the sync's own, else its connection's. */
  readonly adAccountId: string;
  /** The model's SQL (read from `modelFile` when that was used). */
  readonly model: string;
  /** Absolute path of the file the model came from, when it came from one. */
  readonly modelFile?: string;
  readonly primaryKey: string;
  readonly audience: AudienceConfig;
  readonly mode: SyncMode;
  /** Match key → model column. */
  readonly mapping: Readonly<Partial<Record<MatchKey, string>>>;
  readonly hashing: HashingMode;
  /** How dates of birth written as text are read. */
  readonly dateFormat: DateFormat;
  /** ISO 3166-1 alpha-2, upper case. */
  readonly defaultPhoneCountry?: string;
  readonly defaultLookalikeValue?: number;
  /** Cron expression (5–7 fields, as croner reads them). */
  readonly schedule?: string;
  readonly maxAttempts: number;
  readonly maxRemovalShare: number;
  readonly minCoverageRatio: number;
  readonly batchRows: number;
  readonly changeDetection: ChangeDetection;
}

export interface MetaConfig {
  /** Empty when the config has none: the token stored by "Connect with Facebook" is used instead. */
  readonly accessToken: string;
  /** Digits only (`act_` removed). */
  readonly adAccountId: string;
  readonly apiVersion: string;
  /** Without a trailing slash. */
  readonly graphUrl: string;
  readonly appSecret?: string;
  /** Meta app for "Connect with Facebook" (always set together with appSecret). */
  readonly appId?: string;
}

/** The connection the `meta:` block is, and that syncs naming none use. */
export const DEFAULT_CONNECTION = 'default';

/** One Meta connection: the `meta:` block (named `default`) or an entry of `connections:`. */
export interface ConnectionConfig extends Omit<MetaConfig, 'adAccountId'> {
  readonly name: string;
  /** Where it is written, for messages: `meta` or `connections.<name>`. */
  readonly at: string;
  /** Digits only: the ad account of the connection's syncs that name none. */
  readonly adAccountId?: string;
}

/** `audience-sync serve` settings; command-line flags override them. */
export interface ServerConfig {
  readonly host?: string;
  readonly port?: number;
  /** Without a trailing slash. */
  readonly publicUrl?: string;
  /** /metrics needs no admin token. */
  readonly publicMetrics?: boolean;
}

/** Worker fleet settings, defaults applied. */
export interface FleetConfig {
  readonly maxConcurrentPerAdAccount: number;
  readonly jobTimeoutSeconds: number;
  readonly pollIntervalSeconds: number;
}

export interface Config {
  readonly version: 1;
  /** Absolute path of the config file. */
  readonly configPath: string;
  /** Folder relative paths in the config are resolved against. */
  readonly baseDir: string;
  /** `sqlite:///abs/path.db`, `sqlite::memory:` or a `postgres://` URL. */
  readonly state: { readonly url: string };
  /** The `meta:` block as written (it is also `connections.default`); absent when the config has only `connections:`. */
  readonly meta?: MetaConfig;
  /** Every Meta connection by name, the `meta:` block included as `default`. */
  readonly connections: Readonly<Record<string, ConnectionConfig>>;
  readonly sources: Readonly<Record<string, SourceConfig>>;
  readonly syncs: readonly SyncConfig[];
  readonly server?: ServerConfig;
  /** Present when the config has a `fleet` section. */
  readonly fleet?: FleetConfig;
  /** Alert destinations (`alerts:`); absent or empty: no alerts. */
  readonly alerts?: readonly AlertDestination[];
}
