// Tiny local servers for stall tests (test/integration/stall.test.ts):
//
//   const silent = await startSilentServer();   // accepts, reads, never answers
//   const drip = await startDripServer({ body, chunk: 1024, intervalMs: 100 });
//                                                // answers GETs slowly but steadily,
//                                                // reads PUT bodies slowly, answers them
//   client endpoint: silent.endpoint / drip.endpoint (path style)
//   await silent.close();                       // destroys every socket it holds
//
// For bodies that stall after the headers between the library and a real
// server, use test/helpers/fault-proxy.ts (fault `stall`) in front of s3rver.
import { createHash } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';

export interface SilentServer {
  readonly endpoint: string;
  /** TCP connections accepted so far. */
  connections(): number;
  /** HTTP requests seen (request lines received) so far. */
  requests(): number;
  /** Request bytes received so far. */
  bytes(): number;
  close(): Promise<void>;
}

/**
 * A server that accepts connections and reads everything sent to it (so an
 * upload is "accepted" by the kernel) but never answers a byte: a stalled peer.
 * With `read: false` it reads nothing either (an upload fills the TCP window
 * and stops).
 */
export async function startSilentServer(options: { read?: boolean } = {}): Promise<SilentServer> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  let requests = 0;
  let bytes = 0;
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    if (options.read === false) {
      socket.pause();
      return;
    }
    socket.on('data', (data: Buffer) => {
      bytes += data.length;
      requests += data.toString('latin1').match(/^(GET|PUT|POST|HEAD|DELETE) \S+ HTTP\/1\.1\r$/gm)?.length ?? 0;
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    connections: () => connections,
    requests: () => requests,
    bytes: () => bytes,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface DripServer {
  readonly endpoint: string;
  /** Requests seen, by method. */
  requests(method: string): number;
  /** Bodies of the PUTs received, by object key. */
  readonly stored: Map<string, Buffer>;
  close(): Promise<void>;
}

export interface DripOptions {
  /** What every GET of an object returns. */
  body: Buffer;
  /** Bytes sent (GET) or read (PUT) per tick. */
  chunk: number;
  /** Time between ticks. */
  intervalMs: number;
}

/**
 * An S3-ish server that is slow but never silent for long: a GET answers the
 * headers at once, then `chunk` bytes every `intervalMs`; a PUT body is read
 * `chunk` bytes every `intervalMs` (the client's upload is throttled by TCP
 * backpressure), then answered 200 with the body's MD5 as its ETag.
 */
export async function startDripServer(options: DripOptions): Promise<DripServer> {
  const counts = new Map<string, number>();
  const stored = new Map<string, Buffer>();
  const timers = new Set<NodeJS.Timeout>();
  const later = (fn: () => void): void => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, options.intervalMs);
    timers.add(t);
  };
  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    counts.set(method, (counts.get(method) ?? 0) + 1);
    const key = decodeURIComponent((req.url ?? '/').split('?')[0]!.split('/').slice(2).join('/'));
    const etag = (data: Buffer): string => `"${createHash('md5').update(data).digest('hex')}"`;
    if (method === 'GET') {
      const body = options.body;
      res.writeHead(200, { 'content-length': body.length, etag: etag(body), 'content-type': 'application/octet-stream', 'last-modified': new Date(0).toUTCString() });
      res.flushHeaders();
      let sent = 0;
      const tick = (): void => {
        if (res.destroyed) return;
        const part = body.subarray(sent, sent + options.chunk);
        sent += part.length;
        if (sent >= body.length) {
          res.end(part);
          return;
        }
        res.write(part);
        later(tick);
      };
      later(tick);
      return;
    }
    if (method === 'PUT') {
      const parts: Buffer[] = [];
      let pending = 0;
      req.on('data', (data: Buffer) => {
        parts.push(data);
        pending += data.length;
        if (pending >= options.chunk) {
          pending = 0;
          req.pause();
          later(() => req.resume());
        }
      });
      req.on('end', () => {
        const data = Buffer.concat(parts);
        stored.set(key, data);
        res.writeHead(200, { etag: etag(data), 'content-length': 0 });
        res.end();
      });
      return;
    }
    res.writeHead(501, { 'content-length': 0 });
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests: (method) => counts.get(method) ?? 0,
    stored,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
