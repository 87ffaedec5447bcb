/** What a Graph API handler gets to work with, and what it returns. */
import type { EmulatorFlags } from '../options.js';
import type { EmulatorStore, TokenRecord } from '../store/store.js';

export type GraphMethod = 'GET' | 'POST' | 'DELETE';

export interface GraphContext {
  store: EmulatorStore;
  flags: EmulatorFlags;
  /** Emulator clock, ms. */
  now: number;
  token: TokenRecord;
  params: ReadonlyMap<string, unknown>;
  method: GraphMethod;
  /** This request's absolute URL (auth params removed), the base of paging `next`/`previous` links. */
  selfUrl: URL;
}

export interface GraphResult {
  body: unknown;
  /** Rows carried by an upload, for the request log. */
  rows?: number;
}

/** A resolved endpoint: who it concerns (for rate limits and the log) and how to run it. */
export interface GraphRoute {
  accountId?: string;
  audienceId?: string;
  handle(ctx: GraphContext): GraphResult;
}

export function nowSeconds(ctx: { now: number }): number {
  return Math.floor(ctx.now / 1000);
}
