/** Reading a request body with a size cap, and turning query + body into one param map (docs/graph-api.md, "Transport"). */
import type { IncomingMessage } from 'node:http';
import { errors } from '../errors.js';

export type BodyRead = { ok: true; body: Buffer } | { ok: false; bytes: number };

/** Reads the whole body; past `maxBytes` it keeps draining (so the client can read our answer) but drops the data. */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<BodyRead> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes <= maxBytes) chunks.push(chunk);
    else chunks.length = 0;
  }
  return bytes > maxBytes ? { ok: false, bytes } : { ok: true, body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks) };
}

/**
 * Query params first, body params on top. Form and multipart values stay strings (object params are JSON
 * strings there); a JSON body keeps its values as they are (objects, or JSON strings, both accepted).
 */
export async function graphParams(url: URL, contentType: string | undefined, body: Buffer): Promise<Map<string, unknown>> {
  const params = new Map<string, unknown>(url.searchParams);
  if (body.length === 0) return params;
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === 'application/json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8')) as unknown;
    } catch {
      throw errors.invalidParameter('The request body is not valid JSON');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw errors.invalidParameter('A JSON request body must be an object of parameters');
    }
    for (const [k, v] of Object.entries(parsed)) params.set(k, v);
  } else if (type === 'multipart/form-data') {
    let form: FormData;
    try {
      form = await new Request('http://emulator.local/', { method: 'POST', headers: { 'content-type': contentType ?? '' }, body }).formData();
    } catch {
      throw errors.invalidParameter('The multipart request body could not be parsed');
    }
    for (const [k, v] of form.entries()) params.set(k, typeof v === 'string' ? v : await v.text());
  } else {
    // form-urlencoded, and what SDKs send without a content type.
    for (const [k, v] of new URLSearchParams(body.toString('utf8'))) params.set(k, v);
  }
  return params;
}
