/** The control surface over HTTP, under /_emulator (routes listed in src/emulator/README.md). JSON in, JSON out. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EmulatorControl } from '../control.js';
import type { AdAccountSeed, EmulatorFlags, FaultConfig, TokenSeed, TokenState } from '../options.js';
import type { RateLimitUpdate } from '../ratelimit.js';
import { readBody } from './body.js';
import { sendJson } from './respond.js';

type Json = Record<string, unknown>;
type ControlRoute = (control: EmulatorControl, body: Json, url: URL, match: string[]) => unknown | Promise<unknown>;

const ok = { ok: true };

const ROUTES: Array<[method: string, pattern: RegExp, route: ControlRoute]> = [
  ['GET', /^\/audiences$/, (c) => c.audiences()],
  ['GET', /^\/audiences\/(\d+)$/, (c, _b, _u, [id]) => c.audience(id as string) ?? notFound(`No audience ${id}`)],
  ['GET', /^\/audiences\/(\d+)\/members$/, (c, _b, _u, [id]) => ({ data: c.members(id as string) })],
  ['POST', /^\/audiences\/(\d+)\/status$/, (c, b, _u, [id]) => (c.setAudienceStatus(id as string, num(b.code, 'code'), b.fields as string[] | undefined), ok)],
  ['POST', /^\/audiences\/(\d+)\/lookalikes$/, (c, b, _u, [id]) => (c.setLookalikeDependency(id as string, b.dependent !== false), ok)],
  ['POST', /^\/audiences\/(\d+)\/fail-next-replace$/, (c, _b, _u, [id]) => (c.failNextReplace(id as string), ok)],
  ['POST', /^\/ad-accounts$/, (c, b) => (c.addAdAccount(b as unknown as AdAccountSeed), ok)],
  ['POST', /^\/tos$/, (c, b) => (c.setTos(str(b.adAccountId, 'adAccountId'), b.accepted !== false), ok)],
  ['POST', /^\/tokens$/, (c, b) => (c.addToken(b as unknown as TokenSeed), ok)],
  ['POST', /^\/tokens\/state$/, (c, b) => (c.setTokenState(str(b.token, 'token'), str(b.state, 'state') as TokenState), ok)],
  ['POST', /^\/tokens\/scopes$/, (c, b) => (c.setScopes(str(b.token, 'token'), b.scopes as string[]), ok)],
  ['POST', /^\/app-secret$/, (c, b) => (c.setAppSecret(typeof b.secret === 'string' ? b.secret : undefined), ok)],
  ['GET', /^\/faults$/, (c) => c.faults()],
  ['POST', /^\/faults$/, (c, b) => (c.setFaults(b as unknown as FaultConfig), ok)],
  ['GET', /^\/rate-limit$/, (c) => c.rateLimit()],
  ['POST', /^\/rate-limit$/, (c, b) => (c.setRateLimit(b as RateLimitUpdate), ok)],
  ['GET', /^\/flags$/, (c) => c.flags()],
  ['POST', /^\/flags$/, (c, b) => (c.setFlags(b as Partial<EmulatorFlags>), ok)],
  ['GET', /^\/clock$/, (c) => ({ now: c.now() })],
  ['POST', /^\/clock\/advance$/, (c, b) => (c.advanceClock(num(b.ms, 'ms')), { now: c.now() })],
  ['GET', /^\/requests$/, (c) => ({ data: c.requestLog() })],
  ['DELETE', /^\/requests$/, (c) => (c.clearRequestLog(), ok)],
  ['GET', /^\/concurrency$/, (c, _b, u) => ({ peak: c.peakConcurrency(u.searchParams.get('adAccountId') ?? undefined) })],
  ['POST', /^\/reset$/, (c) => (c.reset(), ok)],
  ['POST', /^\/save$/, async (c) => (await c.save(), ok)],
];

class NotFound extends Error {}

export async function handleControl(control: EmulatorControl, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const path = url.pathname.slice('/_emulator'.length);
  const method = (req.method ?? 'GET').toUpperCase();
  try {
    const read = await readBody(req, 10 * 1024 * 1024);
    if (!read.ok) throw new Error('Control request body too large');
    const text = read.body.toString('utf8').trim();
    const body = text === '' ? {} : (JSON.parse(text) as Json);
    for (const [m, pattern, route] of ROUTES) {
      const match = pattern.exec(path);
      if (m !== method || !match) continue;
      sendJson(res, 200, await route(control, body, url, match.slice(1)));
      return;
    }
    throw new NotFound(`No control route ${method} /_emulator${path}; see src/emulator/README.md`);
  } catch (e) {
    sendJson(res, e instanceof NotFound ? 404 : 400, { error: e instanceof Error ? e.message : String(e) });
  }
}

function notFound(message: string): never {
  throw new NotFound(message);
}

function num(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`'${name}' must be a number`);
  return v;
}

function str(v: unknown, name: string): string {
  if (typeof v !== 'string' || v === '') throw new Error(`'${name}' must be a non-empty string`);
  return v;
}
