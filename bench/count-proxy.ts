/**
 * A request-counting proxy in front of the local S3 server, so every tool in
 * `npm run bench` is counted the same way: at the wire, retries included.
 *
 * It forwards TCP, not HTTP: each client connection gets its own upstream
 * connection (so keep-alive on the client side is keep-alive to s3rver), bytes
 * are piped unchanged both ways (Host header, signatures, `Expect: 100-continue`
 * all pass through as the client sent them), and the client→server stream is
 * parsed just enough to count requests: the request line and headers, then the
 * body skipped by Content-Length or by chunked framing. Responses are not
 * parsed at all. A first version proxied at the HTTP level (node:http server +
 * http.request) and cost ~0.7 ms of CPU per request — over 1.5 s for a
 * 2,000-file push on a 2-core machine that also runs the client and s3rver;
 * this costs a small fraction of that (see `proxyCpuMs` in results.json).
 *
 * Requests are classified from method and path (path-style addressing):
 * LIST (GET on a bucket), GET, HEAD, PUT, PART (PUT with partNumber), POST
 * (multipart create/complete), DELETES (POST ?delete), DELETE.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface ProxyCounts {
  total: number;
  byClass: Record<string, number>;
  /** Client bytes the parser could not make sense of (the count may be off; should stay 0). */
  parseErrors: number;
}

export interface CountingProxy {
  endpoint: string;
  /** Counts since the last reset. */
  counts(): ProxyCounts;
  reset(): void;
  /** Open client connections. */
  connections(): number;
  stop(): Promise<void>;
}

export function classify(method: string, url: string): string {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const query = q === -1 ? '' : url.slice(q + 1);
  const segments = path.split('/').filter(Boolean);
  if (method === 'GET' && segments.length <= 1) return 'LIST';
  if (method === 'PUT' && /(^|&)partNumber=/.test(query)) return 'PART';
  if (method === 'POST' && /(^|&)delete(=|&|$)/.test(query)) return 'DELETES';
  return method;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');
const MAX_HEAD = 64 * 1024;

/**
 * Follows one connection's client→server byte stream and calls `onRequest`
 * for every request head. States: reading a head; skipping `remaining` body
 * bytes; reading a chunk-size line; skipping chunk data (+ its CRLF); reading
 * trailers after the last chunk.
 */
class RequestStream {
  private state: 'head' | 'body' | 'chunk-size' | 'chunk-data' | 'trailers' | 'broken' = 'head';
  private pending: Buffer = Buffer.alloc(0);
  private remaining = 0;

  constructor(
    private readonly onRequest: (method: string, url: string) => void,
    private readonly onError: () => void,
  ) {}

  feed(chunk: Buffer): void {
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    while (buf.length > 0 && this.state !== 'broken') {
      switch (this.state) {
        case 'body':
        case 'chunk-data': {
          const n = Math.min(this.remaining, buf.length);
          this.remaining -= n;
          buf = buf.subarray(n);
          if (this.remaining === 0) this.state = this.state === 'body' ? 'head' : 'chunk-size';
          break;
        }
        case 'head': {
          const end = buf.indexOf(CRLFCRLF);
          if (end === -1) return this.keep(buf);
          this.head(buf.subarray(0, end).toString('latin1'));
          buf = buf.subarray(end + 4);
          break;
        }
        case 'chunk-size': {
          const end = buf.indexOf(CRLF);
          if (end === -1) return this.keep(buf);
          const line = buf.subarray(0, end).toString('latin1').trim();
          buf = buf.subarray(end + 2);
          if (line === '') continue; // the CRLF that ends the previous chunk's data
          const size = parseInt(line.split(';')[0]!, 16);
          if (!Number.isFinite(size) || size < 0) return this.fail();
          if (size === 0) this.state = 'trailers';
          else {
            this.remaining = size;
            this.state = 'chunk-data';
          }
          break;
        }
        case 'trailers': {
          // Either an immediate CRLF (no trailers) or trailer lines ending in CRLFCRLF.
          if (buf.length < 2) return this.keep(buf);
          if (buf[0] === 13 && buf[1] === 10) {
            buf = buf.subarray(2);
            this.state = 'head';
            break;
          }
          const end = buf.indexOf(CRLFCRLF);
          if (end === -1) return this.keep(buf);
          buf = buf.subarray(end + 4);
          this.state = 'head';
          break;
        }
      }
    }
  }

  private keep(buf: Buffer): void {
    if (buf.length > MAX_HEAD) return this.fail();
    this.pending = Buffer.from(buf); // copy: the socket may reuse its buffer
  }

  private fail(): void {
    this.state = 'broken';
    this.pending = Buffer.alloc(0);
    this.onError();
  }

  private head(text: string): void {
    const lines = text.split('\r\n');
    // Tolerate stray CRLFs between requests (RFC 9112 §2.2).
    while (lines[0] === '') lines.shift();
    const [method, url] = (lines[0] ?? '').split(' ');
    if (!method || !url) return this.fail();
    this.onRequest(method, url);
    let length = 0;
    let chunked = false;
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon === -1) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') length = Number(value);
      else if (name === 'transfer-encoding' && /chunked/i.test(value)) chunked = true;
    }
    if (chunked) this.state = 'chunk-size';
    else if (length > 0) {
      this.remaining = length;
      this.state = 'body';
    } else if (!Number.isFinite(length) || length < 0) this.fail();
  }
}

export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const upstreamUrl = new URL(target);
  const port = Number(upstreamUrl.port);
  const host = upstreamUrl.hostname;
  let counts: ProxyCounts = { total: 0, byClass: {}, parseErrors: 0 };
  const sockets = new Set<Socket>();
  let clients = 0;

  const server = createServer((client) => {
    clients++;
    const upstream = connect(port, host);
    sockets.add(client);
    sockets.add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const parser = new RequestStream(
      (method, url) => {
        const cls = classify(method, url);
        counts.total++;
        counts.byClass[cls] = (counts.byClass[cls] ?? 0) + 1;
      },
      () => counts.parseErrors++,
    );
    client.on('data', (chunk: Buffer) => {
      parser.feed(chunk);
      if (!upstream.write(chunk)) client.pause();
    });
    upstream.on('drain', () => client.resume());
    client.on('end', () => upstream.end());
    upstream.pipe(client);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', () => {
      clients--;
      sockets.delete(client);
      upstream.destroy();
    });
    upstream.on('close', () => {
      sockets.delete(upstream);
      // Let the client read what is left, then close (half-close semantics).
      if (!client.destroyed) client.end();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy: no TCP address');

  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    counts: () => ({ ...counts, byClass: { ...counts.byClass } }),
    reset: () => {
      counts = { total: 0, byClass: {}, parseErrors: 0 };
    },
    connections: () => clients,
    stop: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
