import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  appSecretProof,
  backoffDelay,
  classifyGraphError,
  MetaApiError,
  normalizeAdAccountId,
  parseGraphJson,
  parseUsageHeaders,
  planBatches,
  throttleDelay,
  type Cell,
} from '../../src/meta/index.js';
import { rowJsonBytes } from '../../src/meta/batches.js';
import { newSessionId } from '../../src/meta/ids.js';
import { invalidEntriesOf, normalizeInvalidSamples, toSessionReport } from '../../src/meta/responses.js';

const graphError = (code: number, extra: Record<string, unknown> = {}) => ({
  error: { message: `(#${code}) something`, type: 'OAuthException', code, fbtrace_id: 'AbC123', ...extra },
});

describe('appSecretProof', () => {
  it('matches the vectors of docs/graph-api.md', () => {
    expect(appSecretProof('EAAtesttoken123', 'appsecret123')).toBe('2ebb24d32ce521989c437b05afd52c634dac1de78e7c6d2ea6b3a60f2e2323b9');
    expect(appSecretProof('EAAtesttoken123', 'appsecret123', 1700000000)).toBe(
      '76e7334fe715b865275c0fa603910d5e4855707278762b6eae8feb203c7e7496',
    );
  });
});

describe('classifyGraphError', () => {
  const cases: Array<[string, number, unknown, string, boolean]> = [
    ['unknown error (1)', 500, graphError(1), 'transient', true],
    ['service unavailable (2)', 503, graphError(2, { is_transient: true }), 'transient', true],
    ['unknown code flagged transient', 400, graphError(9999, { is_transient: true }), 'transient', true],
    ['app limit (4) as 403', 403, graphError(4), 'throttled', true],
    ['account limit 17/2446079', 400, graphError(17, { error_subcode: 2446079 }), 'throttled', true],
    ['613/1487742', 400, graphError(613, { error_subcode: 1487742 }), 'throttled', true],
    ['abuse 613', 400, graphError(613), 'throttled', true],
    ['BUC 80003', 400, graphError(80003), 'throttled', true],
    ['BUC 80004', 400, graphError(80004), 'throttled', true],
    ['expired token 190/463', 400, graphError(190, { error_subcode: 463 }), 'auth', false],
    ['unknown token 190', 400, graphError(190), 'auth', false],
    ['session invalid 102', 400, graphError(102), 'auth', false],
    ['permission 10', 403, graphError(10), 'permission', false],
    ['permission 200', 403, graphError(200), 'permission', false],
    ['ToS 200/1870090', 403, graphError(200, { error_subcode: 1870090 }), 'tos', false],
    ['legacy ToS 2655', 403, graphError(2655), 'tos', false],
    ['missing ads_management 294', 400, graphError(294), 'permission', false],
    ['not found 100/33', 400, graphError(100, { error_subcode: 33 }), 'not_found', false],
    ['flagged 100/1713230', 400, graphError(100, { error_subcode: 1713230 }), 'flagged', false],
    ['bad schema 100', 400, graphError(100, { message: '(#100) Raw PII type is invalid' }), 'invalid_request', false],
    ['appsecret missing', 400, graphError(100, { type: 'GraphMethodException', message: 'API calls from the server require an appsecret_proof argument' }), 'auth', false],
    ['too many params 105', 400, graphError(105), 'invalid_request', false],
    ['abusive 368', 400, graphError(368), 'abusive', false],
    ['deprecated 2635', 400, graphError(2635), 'deprecated_version', false],
    ['replace busy 2650/1870145', 400, graphError(2650, { error_subcode: 1870145 }), 'replace_in_progress', true],
    ['replace partial 2650/1870148', 400, graphError(2650, { error_subcode: 1870148 }), 'replace_failed', true],
    ['replace expired 2650/1870158', 400, graphError(2650, { error_subcode: 1870158 }), 'replace_failed', false],
    ['replace done 2650/1870159', 400, graphError(2650, { error_subcode: 1870159 }), 'replace_failed', false],
    ['replace too big 2650/1870144', 400, graphError(2650, { error_subcode: 1870144 }), 'replace_failed', false],
    ['bad first seq 2650/1870147', 400, graphError(2650, { error_subcode: 1870147 }), 'invalid_request', false],
    ['data source mismatch 2650', 400, graphError(2650), 'invalid_request', false],
    ['lookalike dependency 2656', 400, graphError(2656), 'invalid_request', false],
    ['HTML 502 page', 502, '<html>Bad gateway</html>', 'transient', true],
    ['empty 503', 503, undefined, 'transient', true],
    ['bare 429', 429, undefined, 'throttled', true],
    ['HTML 404', 404, '<html>nope</html>', 'unknown', false],
    ['unknown 4xx code', 400, graphError(424242), 'unknown', false],
  ];
  it.each(cases)('%s', (_name, status, body, kind, retryable) => {
    const c = classifyGraphError(status, body);
    expect(c.kind).toBe(kind);
    expect(c.retryable).toBe(retryable);
    expect(c.userAction.length).toBeGreaterThan(10);
  });

  it('ignores HTTP status for Graph errors: a throttle on 400 is a throttle, a 400 is not ambiguous', () => {
    expect(classifyGraphError(400, graphError(80003)).ambiguous).toBe(false);
    expect(classifyGraphError(500, graphError(1)).ambiguous).toBe(true);
    expect(classifyGraphError(403, graphError(190, { error_subcode: 463 })).kind).toBe('auth');
  });

  it('puts the ToS link for the ad account in the user action', () => {
    const c = classifyGraphError(403, graphError(200, { error_subcode: 1870090 }), undefined, { adAccountId: 'act_42' });
    expect(c.userAction).toContain('https://business.facebook.com/ads/manage/customaudiences/tos/?act=42');
  });

  it('says how to fix auth errors, naming the reason', () => {
    expect(classifyGraphError(400, graphError(190, { error_subcode: 463 })).userAction).toMatch(/Re-authorize: the token expired/);
    expect(classifyGraphError(400, graphError(294)).userAction).toMatch(/ads_management/);
  });

  it('reads the wait from usage headers on throttles', () => {
    const headers = new Headers({
      'X-Business-Use-Case-Usage': JSON.stringify({ '1': [{ type: 'custom_audience', call_count: 100, estimated_time_to_regain_access: 3 }] }),
      'Retry-After': '30',
    });
    const c = classifyGraphError(400, graphError(80003), headers);
    expect(c.regainAccessMs).toBe(180_000);
    expect(c.retryAfterMs).toBe(30_000);
  });

  it('builds an error whose message carries code, subcode, trace id and the action', () => {
    const err = new MetaApiError(classifyGraphError(400, graphError(100, { error_subcode: 33 })), 'GET 123 failed');
    expect(err.message).toMatch(/GET 123 failed \(object not found\).*code 100, subcode 33, HTTP 400, fbtrace_id AbC123.*re-create/);
    expect(err).toBeInstanceOf(Error);
  });
});

describe('parseUsageHeaders', () => {
  it('takes the maximum over every BUC entry and header, regain time in minutes', () => {
    const headers = new Headers({
      'x-business-use-case-usage': JSON.stringify({
        '111': [
          { type: 'custom_audience', call_count: 40, total_cputime: 20, total_time: 10, estimated_time_to_regain_access: 0 },
          { type: 'ads_management', call_count: 12, total_cputime: 101, total_time: 5, estimated_time_to_regain_access: 7 },
        ],
        '222': [{ type: 'custom_audience', call_count: 3, estimated_time_to_regain_access: 2 }],
      }),
      'x-app-usage': JSON.stringify({ call_count: 28, total_cputime: 25, total_time: 25 }),
      'x-ad-account-usage': JSON.stringify({ acc_id_util_pct: 9.67 }),
    });
    expect(parseUsageHeaders(headers)).toEqual({ maxUsagePct: 101, regainAccessMs: 7 * 60_000, retryAfterMs: null });
  });

  it('treats missing or malformed headers as no usage', () => {
    expect(parseUsageHeaders(new Headers())).toEqual({ maxUsagePct: 0, regainAccessMs: null, retryAfterMs: null });
    expect(parseUsageHeaders(new Headers({ 'x-app-usage': '{not json', 'x-business-use-case-usage': '[]' })).maxUsagePct).toBe(0);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(parseUsageHeaders(new Headers({ 'retry-after': '12' })).retryAfterMs).toBe(12_000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    const h = new Headers({ 'retry-after': 'Thu, 01 Jan 2026 00:01:00 GMT' });
    expect(parseUsageHeaders(h, () => now).retryAfterMs).toBe(60_000);
  });
});

describe('backoff', () => {
  const policy = { baseDelayMs: 100, maxDelayMs: 1000 };
  it('grows exponentially with full jitter and is capped', () => {
    expect(backoffDelay(1, policy, () => 0.999)).toBe(99);
    expect(backoffDelay(3, policy, () => 0.5)).toBe(200);
    expect(backoffDelay(20, policy, () => 0.999)).toBe(999);
    expect(backoffDelay(4, policy, () => 0)).toBe(0);
  });
  it('waits at least as long as Meta says on throttles, plus at most 10%', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000_000 }), fc.double({ min: 0, max: 0.9999, noNaN: true }), (ms, r) => {
        const d = throttleDelay({ regainAccessMs: ms, retryAfterMs: 5 }, 1, policy, () => r);
        return d >= ms && d <= Math.ceil(ms * 1.1);
      }),
      { numRuns: 200 },
    );
    expect(throttleDelay({ regainAccessMs: null, retryAfterMs: 2000 }, 1, policy, () => 0)).toBe(2000);
    expect(throttleDelay({ regainAccessMs: null, retryAfterMs: null }, 1, policy, () => 0)).toBe(400);
  });
});

describe('planBatches', () => {
  const hash = (i: number) => i.toString(16).padStart(64, '0');
  it('splits by row count (never above 10,000) and keeps order', () => {
    const rows: Cell[][] = Array.from({ length: 25_000 }, (_, i) => [hash(i)]);
    const batches = planBatches(rows, { maxRows: 10_000, maxBytes: 1e12 });
    expect(batches.map((b) => b.length)).toEqual([10_000, 10_000, 5_000]);
    expect(batches.flat()).toEqual(rows);
    expect(planBatches(rows, { maxRows: 50_000, maxBytes: 1e12 })[0]).toHaveLength(10_000);
  });

  it('never exceeds the byte budget unless one row alone does', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.oneof(fc.string({ maxLength: 40 }), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })), { minLength: 1, maxLength: 4 }), { maxLength: 60 }),
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 10, max: 400 }),
        (rows, maxRows, maxBytes) => {
          const batches = planBatches(rows, { maxRows, maxBytes });
          expect(batches.flat()).toEqual(rows);
          for (const b of batches) {
            expect(b.length).toBeGreaterThan(0);
            expect(b.length).toBeLessThanOrEqual(maxRows);
            if (b.length > 1) expect(Buffer.byteLength(JSON.stringify(b))).toBeLessThanOrEqual(maxBytes);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('sizes rows exactly as JSON.stringify would', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }))), (row) => {
        expect(rowJsonBytes(row)).toBe(Buffer.byteLength(JSON.stringify(row)));
      }),
      { numRuns: 200 },
    );
  });
});

describe('parseGraphJson', () => {
  it('keeps ids above 2^53 exact', () => {
    const body = parseGraphJson('{"id":23851234567890123,"n":-98765432109876543,"ok":12,"f":1.5e300,"s":"x 23851234567890123"}') as Record<string, unknown>;
    expect(body.id).toBe('23851234567890123');
    expect(body.n).toBe('-98765432109876543');
    expect(body.ok).toBe(12);
    expect(body.f).toBe(1.5e300);
    expect(body.s).toBe('x 23851234567890123');
  });
  it('leaves strings with escaped quotes alone', () => {
    const text = '{"a":"he said \\"12345678901234567890\\"","b":[12345678901234567890,1]}';
    expect(parseGraphJson(text)).toEqual({ a: 'he said "12345678901234567890"', b: ['12345678901234567890', 1] });
  });
  it('agrees with JSON.parse whenever no unsafe integer occurs', () => {
    fc.assert(
      fc.property(fc.json(), (text) => {
        const plain: unknown = JSON.parse(text);
        const hasUnsafe = /-?\d{16,}/.test(text);
        if (!hasUnsafe) expect(parseGraphJson(text)).toEqual(plain);
      }),
      { numRuns: 200 },
    );
  });
});

describe('ids and samples', () => {
  it('accepts ad account ids with or without act_, rejects others with advice', () => {
    expect(normalizeAdAccountId('act_123')).toBe('123');
    expect(normalizeAdAccountId('123')).toBe('123');
    expect(() => normalizeAdAccountId('act_12a')).toThrow(/with or without the act_ prefix/);
  });
  it('issues unique safe-integer session ids', () => {
    const ids = Array.from({ length: 2000 }, () => newSessionId());
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(Number.isSafeInteger(Number(id))).toBe(true);
  });
  it('normalizes invalid_entry_samples given as an object or an array', () => {
    expect(normalizeInvalidSamples({})).toEqual([]);
    expect(normalizeInvalidSamples(['a', 'b'])).toEqual(['a', 'b']);
    expect(normalizeInvalidSamples({ abc: 'bad hash', def: '' })).toEqual(['abc: bad hash', 'def']);
    expect(normalizeInvalidSamples(Array.from({ length: 150 }, (_, i) => String(i)))).toHaveLength(100);
    expect(normalizeInvalidSamples(null)).toEqual([]);
  });
  it('reads the row each invalid_entry_samples entry names, and leaves out entries that name none', () => {
    expect(invalidEntriesOf({ 'row 0': 'EMAIL: bad', 'row 12': '', ['9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08']: 'bad hash' })).toEqual([
      { row: 0, reason: 'EMAIL: bad' },
      { row: 12, reason: 'no reason given' },
    ]);
    expect(invalidEntriesOf(['row 7: PHONE: bad: really', 'garbage', 3])).toEqual([{ row: 7, reason: 'PHONE: bad: really' }]);
    expect(invalidEntriesOf({})).toEqual([]);
    expect(invalidEntriesOf(undefined)).toEqual([]);
  });
});

describe('toSessionReport', () => {
  it("reads Meta's numeric strings, and a progress written as a plain string", () => {
    const row = { session_id: '1767225600123456', stage: 'finished', num_received: '120', num_matched: '84', num_invalid_entries: '2', start_time: '1767225600', end_time: '1767225660' };
    expect(toSessionReport({ ...row, progress: '100' })).toEqual({
      sessionId: '1767225600123456', stage: 'finished', progress: 100, numReceived: 120, numMatched: 84, numInvalidEntries: 2, startTime: 1767225600, endTime: 1767225660, processed: true,
    });
    expect(toSessionReport({ ...row, progress: '100%' }).processed).toBe(true);
    expect(toSessionReport({ ...row, progress: '40' }).processed).toBe(false);
    expect(toSessionReport({ session_id: 7, progress: 'unknown' })).toMatchObject({ sessionId: '7', progress: 0, numMatched: 0, processed: false });
  });
});
