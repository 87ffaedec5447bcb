import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request as it crossed the wire (authorization header left out). */
export interface TappedRequest {
  method: string;
  /** Path plus query string. */
  url: string;
  contentType: string | undefined;
  body: string;
}

/**
 * A recording pass-through proxy on 127.0.0.1: forwards every request to `upstream` unchanged and keeps
 * what was sent, so tests can check request bodies and URLs the emulator's own log leaves out.
 */
export async function startWiretap(upstream: string): Promise<{ url: string; requests: TappedRequest[]; close(): Promise<void> }> {
  const requests: TappedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method ?? '', url: req.url ?? '', contentType: req.headers['content-type'], body: body.toString('utf8') });
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (typeof v === 'string' && !['host', 'content-length', 'connection'].includes(k)) headers[k] = v;
      }
      fetch(`${upstream}${req.url ?? ''}`, { method: req.method, headers, body: body.length > 0 ? body : undefined })
        .then(async (up) => {
          const text = Buffer.from(await up.arrayBuffer());
          const out: Record<string, string> = {};
          up.headers.forEach((v, k) => {
            if (!['content-length', 'connection', 'keep-alive', 'transfer-encoding', 'content-encoding'].includes(k)) out[k] = v;
          });
          res.writeHead(up.status, out).end(text);
        })
        .catch(() => res.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
