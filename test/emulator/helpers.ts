import { createHash } from 'node:crypto';
import { DEFAULT_AD_ACCOUNT, DEFAULT_TOKEN, startEmulator, type EmulatorOptions, type RunningEmulator } from '../../src/emulator/index.js';

export const ACT = `act_${DEFAULT_AD_ACCOUNT}`;
export const V = 'v25.0';

export interface GraphReply {
  status: number;
  headers: Headers;
  body: Record<string, unknown> & { error?: GraphErrorBody };
  text: string;
}

export interface GraphErrorBody {
  message: string;
  type: string;
  code: number;
  error_subcode?: number;
  is_transient: boolean;
  error_user_title?: string;
  error_user_msg?: string;
  fbtrace_id: string;
}

export const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

export class GraphTestClient {
  constructor(
    readonly emu: RunningEmulator,
    public token: string = DEFAULT_TOKEN,
  ) {}

  async request(method: string, path: string, init: { query?: Record<string, string>; json?: unknown; form?: Record<string, string>; headers?: Record<string, string>; auth?: 'bearer' | 'param' | 'none' } = {}): Promise<GraphReply> {
    const url = new URL(`${this.emu.url}/${V}/${path}`);
    for (const [k, v] of Object.entries(init.query ?? {})) url.searchParams.set(k, v);
    const headers: Record<string, string> = { ...init.headers };
    const auth = init.auth ?? 'bearer';
    if (auth === 'bearer') headers.Authorization = `Bearer ${this.token}`;
    else if (auth === 'param') url.searchParams.set('access_token', this.token);
    let body: string | undefined;
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    } else if (init.form !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    }
    const res = await fetch(url, { method, headers, ...(body === undefined ? {} : { body }) });
    const text = await res.text();
    let parsed: GraphReply['body'] = {};
    try {
      parsed = JSON.parse(text) as GraphReply['body'];
    } catch {
      // HTML pages stay in `text`.
    }
    return { status: res.status, headers: res.headers, body: parsed, text };
  }

  get(path: string, query: Record<string, string> = {}) {
    return this.request('GET', path, { query });
  }

  post(path: string, json: unknown) {
    return this.request('POST', path, { json });
  }

  async createAudience(extra: Record<string, unknown> = {}): Promise<string> {
    const r = await this.post(`${ACT}/customaudiences`, { name: 'Test audience', subtype: 'CUSTOM', customer_file_source: 'USER_PROVIDED_ONLY', ...extra });
    if (r.status !== 200) throw new Error(`create failed: ${r.text}`);
    return r.body.id as string;
  }

  users(audienceId: string, payload: unknown, session?: unknown) {
    return this.post(`${audienceId}/users`, { payload, ...(session === undefined ? {} : { session }) });
  }

  removeUsers(audienceId: string, payload: unknown, session?: unknown) {
    return this.request('DELETE', `${audienceId}/users`, { json: { payload, ...(session === undefined ? {} : { session }) } });
  }

  replace(audienceId: string, payload: unknown, session: unknown) {
    return this.post(`${audienceId}/usersreplace`, { payload, session });
  }
}

export async function withEmulator(options: EmulatorOptions = {}): Promise<{ emu: RunningEmulator; graph: GraphTestClient }> {
  const emu = await startEmulator(options);
  return { emu, graph: new GraphTestClient(emu) };
}

/** A multi-key payload with EXTERN_ID + EMAIL for the given ids. */
export function people(ids: readonly string[], schema: string[] = ['EXTERN_ID', 'EMAIL']) {
  return {
    schema,
    is_raw: true,
    data: ids.map((id) => schema.map((k) => (k === 'EXTERN_ID' ? id : k === 'EMAIL' ? sha(`${id}@example.com`) : ''))),
  };
}

export function expectError(r: GraphReply): GraphErrorBody {
  if (!r.body.error) throw new Error(`expected an error, got ${r.status} ${r.text}`);
  return r.body.error;
}
