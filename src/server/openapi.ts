/** The OpenAPI 3.1 description of the JSON API and the system routes, served at /openapi.json. */

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown, description: string) => ({ description, content: { 'application/json': { schema } } });
const error = (description: string) => json(ref('Error'), description);
const syncName = { name: 'name', in: 'path', required: true, description: 'The sync name from the config.', schema: { type: 'string' } };
const adAccountQuery = { name: 'adAccount', in: 'query', description: 'An ad account id (act_123 or 123).', schema: { type: 'string', pattern: '^(act_)?\\d+$' } };
const connectionQuery = { name: 'connection', in: 'query', description: 'A connection name from the config.', schema: { type: 'string' } };
const count = { type: 'integer', minimum: 0 };
const nullable = (schema: Record<string, unknown>) => ({ anyOf: [schema, { type: 'null' }] });

export function openApiDocument(version: string): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'audience-sync',
      version,
      description:
        'Runs, status and audiences of an audience-sync service. When the service has an admin token (AUDIENCE_SYNC_ADMIN_TOKEN), send it as `Authorization: Bearer <token>`. ' +
        'POST requests without a Bearer token must be application/json (or have no body) and come from the same origin. Responses hold ids, counts, statuses and hashes only.',
    },
    components: {
      securitySchemes: { adminToken: { type: 'http', scheme: 'bearer', description: 'The value of AUDIENCE_SYNC_ADMIN_TOKEN.' } },
      schemas: {
        Error: { type: 'object', required: ['error'], properties: { error: { type: 'string', description: 'What happened and what to do.' } } },
        Run: {
          type: 'object',
          required: ['id', 'sync', 'trigger', 'status', 'startedAt', 'counts', 'errorSamples'],
          properties: {
            id: { type: 'integer' },
            sync: { type: 'string' },
            trigger: { type: 'string', description: 'schedule, schedule:catch-up, api, dashboard, cli, ...' },
            status: { enum: ['running', 'success', 'partial', 'failed'] },
            startedAt: { type: 'string', format: 'date-time' },
            finishedAt: nullable({ type: 'string', format: 'date-time' }),
            durationMs: nullable({ type: 'integer' }),
            counts: {
              type: 'object',
              description: 'The engine counters: extracted, added, updated, deleted, unchanged, retried, rejected, rejectedByReason, delivered, failed, removedFromAudience, numInvalidEntries, modelCoverage (usable rows per match key over the whole model), ..., and timings. A run refused by a safeguard sent nothing: its added, updated and deleted are 0 and `planned` holds what it would have done.',
              properties: { timings: ref('RunTimings') },
              additionalProperties: true,
            },
            error: nullable({ type: 'string' }),
            errorSamples: { type: 'array', items: ref('Sample') },
            match: nullable(ref('RunMatch')),
          },
        },
        RunMatch: {
          type: 'object',
          description: "Meta's counts for the rows a run sent (added or replaced), read from its upload sessions once Meta has processed them. Null until then.",
          properties: {
            runId: { type: 'integer' },
            received: { ...count, description: 'Rows Meta received.' },
            matched: { ...count, description: 'Of those, rows Meta matched to people.' },
            invalid: { ...count, description: 'Rows Meta found invalid.' },
            rate: { type: 'number', description: 'matched ÷ received.' },
          },
        },
        RunTimings: {
          type: 'object',
          description: 'Milliseconds per phase of a finished run; the phases do not overlap. Absent on runs recorded before timings were kept.',
          properties: {
            readModelMs: { ...count, description: 'Waiting for the warehouse to return the model.' },
            planMs: { ...count, description: 'Diff against the state, identity normalization and hashing, safeguards.' },
            removeMs: { ...count, description: 'Sending removals to Meta.' },
            addMs: { ...count, description: 'Sending adds (or the replace upload) to Meta.' },
            commitMs: { ...count, description: 'Writing our own state.' },
          },
        },
        Sample: {
          type: 'object',
          required: ['pkHash', 'reason'],
          properties: {
            pkHash: { type: 'string', description: 'SHA-256 of the primary key (`audience-sync locate` prints the key on a terminal).' },
            externId: { type: 'string', description: 'EXTERN_ID, when the mapping has one.' },
            reason: { type: 'string' },
            attempts: count,
          },
        },
        GivenUp: {
          type: 'object',
          description: 'Records that used up their attempts: runs no longer send them until they are retried (POST /api/syncs/{name}/retry) or their data changes.',
          required: ['count', 'maxAttempts', 'reasons', 'samples'],
          properties: {
            count,
            maxAttempts: count,
            reasons: { type: 'array', items: { type: 'object', properties: { reason: { type: 'string' }, count } } },
            samples: { type: 'array', items: ref('Sample') },
          },
        },
        Sync: {
          type: 'object',
          properties: {
            name: { type: 'string' },
            mode: { enum: ['upsert', 'delete', 'mirror', 'replace'] },
            source: { type: 'string' },
            connection: { type: 'string', description: 'The Meta connection whose token the sync uses.' },
            adAccountId: { type: 'string', description: "The ad account of the sync's audience (digits)." },
            schedule: nullable({ type: 'string' }),
            audienceId: nullable({ type: 'string' }),
            status: { enum: ['running', 'success', 'partial', 'failed', 'never'] },
            lastRun: nullable(ref('Run')),
            nextRunAt: nullable({ type: 'string', format: 'date-time' }),
            records: { type: 'object', properties: { synced: count, pending: count, failed: count, total: count } },
            givenUp: ref('GivenUp'),
            match: {
              type: 'object',
              description: "Meta's match rate: the latest run Meta reported counts for, against the median of the 10 before it.",
              properties: {
                latest: nullable(ref('RunMatch')),
                usualRate: nullable({ type: 'number' }),
                low: { type: 'boolean', description: 'The latest rate is below 0.7 × the usual one.' },
                causes: { type: 'array', items: { type: 'string' }, description: 'Likely causes when low, in plain words.' },
                warning: nullable({ type: 'string' }),
              },
            },
          },
        },
        Connection: {
          type: 'object',
          properties: {
            name: { type: 'string', description: 'The connection name ("default" for the meta: block).' },
            tokenSource: { enum: ['connected', 'config', 'none'] },
            connectEnabled: { type: 'boolean' },
            connectedAt: nullable({ type: 'string', format: 'date-time' }),
            expiresAt: nullable({ type: 'string', format: 'date-time' }),
            daysLeft: nullable({ type: 'integer' }),
            expiringSoon: { type: 'boolean', description: 'Expires within 7 days (or has expired).' },
            adAccounts: { type: 'array', items: { type: 'string' }, description: 'Ad accounts (digits) the connection is used with.' },
            syncs: { type: 'array', items: { type: 'string' }, description: 'Syncs that use the connection.' },
          },
        },
        ConnectionReport: {
          description: "A connection with its token checked against Meta now (one call per connection; never the token).",
          allOf: [
            ref('Connection'),
            {
              type: 'object',
              properties: {
                state: { enum: ['ok', 'expired', 'invalid', 'missing', 'unknown'], description: 'ok: Meta accepts the token; invalid: refused for another reason (revoked, password changed); unknown: Meta could not be asked.' },
                valid: { type: 'boolean' },
                error: { type: 'string', description: 'Why the token is not ok, and what to do.' },
                userId: { type: 'string', description: 'The Meta user or system user the token belongs to.' },
              },
            },
          ],
        },
        AudienceHealth: {
          type: 'object',
          properties: {
            audienceId: { type: 'string' },
            name: nullable({ type: 'string' }),
            sizeLower: nullable(count),
            sizeUpper: nullable(count),
            operationStatus: nullable({ type: 'object', properties: { code: { type: 'integer' }, description: { type: 'string' } } }),
            deliveryStatus: nullable({ type: 'object', properties: { code: { type: 'integer' }, description: { type: 'string' } } }),
            updatedAt: nullable({ type: 'string', format: 'date-time' }),
            error: { type: 'string' },
          },
        },
        TestRecord: {
          type: 'object',
          properties: {
            sync: { type: 'string' },
            audienceId: { type: 'string' },
            schema: { type: 'array', items: { type: 'string' } },
            cells: { type: 'array', items: { type: ['string', 'number'] }, description: 'Hashed values (EXTERN_ID and MADID as given).' },
            dropped: { type: 'array', items: { type: 'object', properties: { key: { type: 'string' }, reason: { type: 'string' } } } },
            numReceived: count,
            numInvalidEntries: count,
            invalidEntrySamples: { type: 'array', items: { type: 'string' } },
          },
        },
        Audience: {
          type: 'object',
          description: 'A custom audience as the Graph client reads it (id, name, size bounds, statuses, ...), with the ad account and connection it was read through.',
          properties: { connection: { type: 'string' }, adAccountId: { type: 'string' } },
          additionalProperties: true,
        },
        Alert: {
          type: 'object',
          description: 'An alert sent to a destination of the config\'s `alerts:` section when an incident started (firing) or ended (resolved). Never holds the destination\'s URL.',
          properties: {
            id: { type: 'integer' },
            destination: { type: 'string', description: 'The destination\'s name in the config.' },
            sync: nullable({ type: 'string' }),
            connection: nullable({ type: 'string', description: 'For a token alert: the Meta connection.' }),
            condition: { enum: ['failed', 'partial', 'refused', 'givenUp', 'missedSchedule', 'tokenExpiry', 'matchCoverageDrop'] },
            kind: { enum: ['firing', 'resolved'] },
            title: { type: 'string' },
            runId: nullable({ type: 'integer' }),
            createdAt: { type: 'string', format: 'date-time' },
            status: { enum: ['delivered', 'sending', 'undelivered'], description: 'undelivered: every try failed, or the process sending it stopped before it was delivered.' },
            attempts: count,
            error: nullable({ type: 'string', description: 'Why it was not delivered.' }),
            finishedAt: nullable({ type: 'string', format: 'date-time' }),
          },
        },
      },
    },
    security: [{ adminToken: [] }, {}],
    paths: {
      '/api/syncs': {
        get: {
          summary: 'Every sync (or those of one ad account) with its status, last run, next run and audience id',
          parameters: [adAccountQuery],
          responses: { 200: json({ type: 'object', properties: { syncs: { type: 'array', items: ref('Sync') } } }, 'The syncs'), 400: error('Not an ad account id') },
        },
      },
      '/api/syncs/{name}': { get: { summary: 'One sync', parameters: [syncName], responses: { 200: json(ref('Sync'), 'The sync'), 404: error('No such sync') } } },
      '/api/syncs/{name}/runs': {
        get: {
          summary: "A sync's runs, newest first",
          parameters: [syncName, { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 } }],
          responses: { 200: json({ type: 'object', properties: { runs: { type: 'array', items: ref('Run') } } }, 'The runs'), 404: error('No such sync') },
        },
        post: {
          summary: 'Start a run now',
          parameters: [syncName],
          requestBody: { required: false, content: { 'application/json': { schema: { type: 'object', properties: { force: { type: 'boolean', description: 'Skip the safeguards (empty model, identifier coverage drop, too many removals).' } } } } } },
          responses: {
            202: json(
              { type: 'object', properties: { sync: { type: 'string' }, runId: nullable({ type: 'integer' }), state: { enum: ['running', 'queued', 'finished'] } } },
              'Started (runId null while queued behind another run on the same warehouse)',
            ),
            404: error('No such sync'),
            409: error('The sync is already running'),
            422: error("The sync's model does not fit its mapping"),
          },
        },
      },
      '/api/syncs/{name}/retry': {
        post: {
          summary: 'Put the records that used up their attempts back in the queue: the next run sends them again',
          parameters: [syncName],
          responses: {
            200: json({ type: 'object', properties: { sync: { type: 'string' }, requeued: { ...count, description: 'Records put back in the queue.' } } }, 'Done'),
            404: error('No such sync'),
          },
        },
      },
      '/api/syncs/{name}/health': {
        get: {
          summary: "The audience's size bounds and statuses as Meta reports them, and the token's expiry",
          parameters: [syncName],
          responses: { 200: json({ type: 'object', properties: { audience: nullable(ref('AudienceHealth')), token: ref('Connection') } }, 'Health'), 404: error('No such sync') },
        },
      },
      '/api/syncs/{name}/test-record': {
        post: {
          summary: "Send one model row (the first, or the one with this primary key) to the sync's audience",
          parameters: [syncName],
          requestBody: { required: false, content: { 'application/json': { schema: { type: 'object', properties: { primaryKey: { type: 'string' } } } } } },
          responses: { 200: json(ref('TestRecord'), 'What was sent (hashed) and what Meta answered'), 404: error('No such sync'), 422: error('No such row, or it cannot be sent'), 502: error('Meta refused it') },
        },
      },
      '/api/runs/{id}': {
        get: {
          summary: 'One run with its counts and error samples',
          parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'integer' } }],
          responses: { 200: json(ref('Run'), 'The run'), 404: error('No such run') },
        },
      },
      '/api/audiences': {
        get: {
          summary: 'The custom audiences of every ad account the config uses, or of the one named',
          parameters: [connectionQuery, adAccountQuery],
          responses: { 200: json({ type: 'object', properties: { audiences: { type: 'array', items: ref('Audience') } } }, 'The audiences'), 400: error('Unknown connection'), 502: error('Meta refused') },
        },
        post: {
          summary: 'Create a customer-list custom audience (in the ad account named, or the only one the config uses)',
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['name'],
                  properties: { name: { type: 'string' }, description: { type: 'string' }, valueBased: { type: 'boolean' }, connection: { type: 'string' }, adAccountId: { type: 'string', description: 'act_123 or 123' } },
                },
              },
            },
          },
          responses: {
            201: json({ type: 'object', properties: { id: { type: 'string' }, connection: { type: 'string' }, adAccountId: { type: 'string' } } }, 'Created'),
            400: error('Bad input, or several ad accounts and none named'),
            502: error('Meta refused'),
          },
        },
      },
      '/api/alerts': {
        get: {
          summary: 'Alerts sent to the destinations of the config (newest first); status=undelivered lists those that did not reach theirs',
          parameters: [
            { name: 'status', in: 'query', schema: { enum: ['all', 'undelivered'], default: 'all' } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 50 } },
          ],
          responses: { 200: json({ type: 'object', properties: { alerts: { type: 'array', items: ref('Alert') } } }, 'The alerts'), 400: error('Bad status or limit') },
        },
      },
      '/api/connection': { get: { summary: 'Where the default connection\'s Meta token comes from and when it expires (never the token)', responses: { 200: json(ref('Connection'), 'The connection') } } },
      '/api/connections': {
        get: {
          summary: "Every Meta connection with its token's state (ok, expired, invalid, missing), checked against Meta now, its expiry when known, and the ad accounts and syncs that use it",
          responses: { 200: json({ type: 'object', properties: { connections: { type: 'array', items: ref('ConnectionReport') } } }, 'The connections') },
        },
      },
      '/healthz': { get: { summary: 'Liveness: the service is up and its state store answers; configError says why an edited config file is not in use', security: [{}], responses: { 200: json({ type: 'object' }, 'Healthy'), 503: json({ type: 'object' }, 'The state store does not answer') } } },
      '/metrics': { get: { summary: 'Prometheus metrics (text format 0.0.4); with an admin token set it needs the token, unless server.publicMetrics is true', security: [{ adminToken: [] }, {}], responses: { 200: { description: 'Metrics', content: { 'text/plain': { schema: { type: 'string' } } } } } } },
      '/openapi.json': { get: { summary: 'This document', security: [{}], responses: { 200: json({ type: 'object' }, 'OpenAPI 3.1') } } },
    },
  };
}
