/** Starts the emulator: one HTTP server on 127.0.0.1 serving the Graph API and the /_emulator control surface. */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClock } from './clock.js';
import { createControl, type EmulatorControl } from './control.js';
import { htmlErrorPage } from './errors.js';
import { FaultInjector } from './faults.js';
import { handleControl } from './http/control-handler.js';
import { handleGraph } from './http/graph-handler.js';
import { handleOAuth } from './graph/oauth.js';
import { sendHtml } from './http/respond.js';
import { DEFAULT_AD_ACCOUNTS, DEFAULT_FLAGS, DEFAULT_TOKENS, type EmulatorOptions } from './options.js';
import { loadDataFile, saveDataFile } from './persistence.js';
import { RateLimiter } from './ratelimit.js';
import { RequestLog } from './request-log.js';
import type { EmulatorRuntime } from './runtime.js';
import { EmulatorStore } from './store/store.js';

export interface RunningEmulator {
  /** e.g. 'http://127.0.0.1:41234': the client's base URL (it appends /v25.0/...). */
  url: string;
  port: number;
  control: EmulatorControl;
  /** Stops accepting requests, ends open connections and saves the data file (if any). */
  close(): Promise<void>;
}

/** Headroom so our own URL-length check (not Node's 16 KB header limit) decides on long URLs. */
const MAX_HEADER_BYTES = 1024 * 1024;

export async function startEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const seeds = {
    tokens: options.tokens ?? DEFAULT_TOKENS,
    adAccounts: options.adAccounts ?? DEFAULT_AD_ACCOUNTS,
    flags: options.flags ?? {},
    rateLimit: options.rateLimit ?? {},
    appSecret: options.appSecret,
  };
  const rt: EmulatorRuntime = {
    store: new EmulatorStore(seeds),
    flags: { ...DEFAULT_FLAGS, ...seeds.flags },
    clock: createClock(options.clock, options.startTime),
    limiter: new RateLimiter(seeds.rateLimit),
    faults: new FaultInjector(options.faults),
    log: new RequestLog(),
    appSecret: options.appSecret,
  };
  const dataFile = options.dataFile;
  if (dataFile !== undefined) await loadDataFile(rt.store, dataFile);
  const save = async () => {
    if (dataFile !== undefined) await saveDataFile(rt.store, dataFile);
  };
  const control = createControl(rt, seeds, save);

  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES, keepAliveTimeout: 30_000 }, (req, res) => {
    dispatch(rt, control, req, res).catch((e: unknown) => {
      console.error('emulator: request failed', e);
      if (!res.headersSent) sendHtml(res, 500, htmlErrorPage(500, 'Internal Server Error'));
      else res.destroy();
    });
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    control,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await save();
      })();
      return closing;
    },
  };
}

async function dispatch(rt: EmulatorRuntime, control: EmulatorControl, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const rawUrl = req.url ?? '/';
  const url = new URL(rawUrl, 'http://emulator.local');
  if (url.pathname === '/_emulator' || url.pathname.startsWith('/_emulator/')) return handleControl(control, req, res, url);
  if (await handleOAuth(rt, req, res, url)) return;

  const entry = rt.log.begin((req.method ?? 'GET').toUpperCase(), url.pathname.slice(0, 500));
  if (rawUrl.length > rt.flags.maxUrlLength) {
    // Meta's front end answers over-long URLs with an HTML page, not a Graph error.
    res.once('close', () => rt.log.finish(entry, 414));
    sendHtml(res, 414, htmlErrorPage(414, 'Request-URI Too Long'), { Connection: 'close' });
    req.resume();
    return;
  }
  await handleGraph(rt, req, res, url, entry);
}
