// Tables of the state store and their migrations, defined in code and portable between SQLite and
// PostgreSQL. Times are epoch milliseconds (bigint on PostgreSQL, which pg returns as strings).
import { sql, type Generated, type Kysely, type Migration, type MigrationProvider } from 'kysely';

export interface SyncsTable {
  name: string;
  audience_id: string | null;
  schema_signature: string | null;
  created_at: number | string;
  updated_at: number | string;
}

export interface RecordsTable {
  sync: string;
  pk: string;
  fingerprint: string;
  cells: string | null;
  status: string;
  attempts: number;
  last_error: string | null;
  updated_at: number | string;
}

export interface RunsTable {
  id: Generated<number>;
  sync: string;
  trigger: string;
  status: string;
  started_at: number | string;
  finished_at: number | string | null;
  counts: string;
  error: string | null;
  error_samples: string;
}

export interface LocksTable {
  sync: string;
  holder: string;
  acquired_at: number | string;
  expires_at: number | string;
}

export interface KvTable {
  key: string;
  value: string;
  updated_at: number | string;
}

/** Warehouse change detection: record writes not yet applied to the sync's snapshot in its warehouse. */
export interface JournalTable {
  sync: string;
  pk: string;
  /** upsert or delete */
  op: string;
  fingerprint: string | null;
  cells: string | null;
  status: string | null;
  attempts: number | null;
  last_error: string | null;
  /** Rises with every batch of a sync: a flush forgets only the entries up to the newest one it carried. */
  seq: number | string;
}

/** One alert incident per (destination, subject, condition): whether it is going on, since when. */
export interface AlertIncidentsTable {
  destination: string;
  /** The sync's name, or `connection:<name>` for a token's expiry. */
  subject: string;
  condition: string;
  state: string;
  since: number | string;
  run_id: number | null;
  updated_at: number | string;
}

/** Every alert an incident's change called for, and whether it reached its destination. */
export interface AlertDeliveriesTable {
  id: Generated<number>;
  destination: string;
  subject: string;
  condition: string;
  kind: string;
  title: string;
  run_id: number | null;
  created_at: number | string;
  status: string;
  attempts: number;
  error: string | null;
  finished_at: number | string | null;
}

export interface StateDb {
  syncs: SyncsTable;
  records: RecordsTable;
  journal: JournalTable;
  runs: RunsTable;
  locks: LocksTable;
  kv: KvTable;
  alert_incidents: AlertIncidentsTable;
  alert_deliveries: AlertDeliveriesTable;
}

export type Dialect = 'sqlite' | 'postgres';

function migrations(dialect: Dialect): Record<string, Migration> {
  return {
    '0001_initial': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('syncs')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('audience_id', 'text')
          .addColumn('schema_signature', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();

        // pk must sort in byte order: SQLite's default BINARY collation does; PostgreSQL needs "C".
        await db.schema
          .createTable('records')
          .addColumn('sync', 'text', (c) => c.notNull())
          .addColumn('pk', 'text', (c) => (dialect === 'postgres' ? c.notNull().modifyFront(sql`collate "C"`) : c.notNull()))
          .addColumn('fingerprint', 'text', (c) => c.notNull())
          .addColumn('cells', 'text')
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('pending_op', 'text')
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('last_error', 'text')
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('records_pk', ['sync', 'pk'])
          // SQLite: store rows clustered by (sync, pk) so the ordered stream reads pages sequentially.
          .$call((t) => (dialect === 'sqlite' ? t.modifyEnd(sql`without rowid`) : t))
          .execute();
        await db.schema.createIndex('records_status').on('records').columns(['sync', 'status']).execute();

        await db.schema
          .createTable('runs')
          .addColumn('id', dialect === 'postgres' ? 'serial' : 'integer', (c) =>
            dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
          )
          .addColumn('sync', 'text', (c) => c.notNull())
          .addColumn('trigger', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('started_at', 'bigint', (c) => c.notNull())
          .addColumn('finished_at', 'bigint')
          .addColumn('counts', 'text', (c) => c.notNull())
          .addColumn('error', 'text')
          .addColumn('error_samples', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('runs_sync').on('runs').columns(['sync', 'id']).execute();

        await db.schema
          .createTable('locks')
          .addColumn('sync', 'text', (c) => c.primaryKey())
          .addColumn('holder', 'text', (c) => c.notNull())
          .addColumn('acquired_at', 'bigint', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();

        await db.schema
          .createTable('kv')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
      },
    },

    // Runs stopped by the token, permissions, terms, throttling or an outage used to charge every
    // record of the batch in flight an attempt, until records were marked failed and never sent
    // again. Only Meta refusing a batch's rows (invalid parameter, code 100) counts now: give back
    // the attempts of every record whose last error was anything else.
    '0002_give_back_account_level_attempts': {
      async up(db: Kysely<unknown>) {
        await sql`
          update records set attempts = 0, status = 'pending', last_error = null
          where status in ('pending', 'failed') and last_error is not null
            and not (last_error like ${'%(invalid request): %'} and last_error like ${'%[code 100,%'})
        `.execute(db);
      },
    },

    // Never written with anything but null.
    '0003_drop_pending_op': {
      async up(db: Kysely<unknown>) {
        await db.schema.alterTable('records').dropColumn('pending_op').execute();
      },
    },

    // Syncs with warehouse change detection keep their records in the warehouse; writes wait here
    // (at most a bounded number) until they are applied there.
    '0004_journal': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('journal')
          .addColumn('sync', 'text', (c) => c.notNull())
          .addColumn('pk', 'text', (c) => (dialect === 'postgres' ? c.notNull().modifyFront(sql`collate "C"`) : c.notNull()))
          .addColumn('op', 'text', (c) => c.notNull())
          .addColumn('fingerprint', 'text')
          .addColumn('cells', 'text')
          .addColumn('status', 'text')
          .addColumn('attempts', 'integer')
          .addColumn('last_error', 'text')
          .addColumn('seq', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('journal_pk', ['sync', 'pk'])
          .execute();
        await db.schema.createIndex('journal_seq').on('journal').columns(['sync', 'seq']).execute();
      },
    },

    // Alerts: the incident state that makes one alert per incident (claimed atomically, so workers
    // sharing the state never send it twice), and the alerts sent. New tables only: independent of
    // any other migration.
    '0005_alerts': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('alert_incidents')
          .addColumn('destination', 'text', (c) => c.notNull())
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('condition', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('since', 'bigint', (c) => c.notNull())
          .addColumn('run_id', 'integer')
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('alert_incidents_pk', ['destination', 'subject', 'condition'])
          .execute();
        await db.schema
          .createTable('alert_deliveries')
          .addColumn('id', dialect === 'postgres' ? 'serial' : 'integer', (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
          .addColumn('destination', 'text', (c) => c.notNull())
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('condition', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('title', 'text', (c) => c.notNull())
          .addColumn('run_id', 'integer')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('error', 'text')
          .addColumn('finished_at', 'bigint')
          .execute();
        await db.schema.createIndex('alert_deliveries_status').on('alert_deliveries').columns(['status', 'id']).execute();
      },
    },
  };
}

export function migrationProvider(dialect: Dialect): MigrationProvider {
  return { getMigrations: async () => migrations(dialect) };
}
