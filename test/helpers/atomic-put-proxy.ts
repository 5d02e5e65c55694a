// An HTTP proxy in front of the local S3 server that makes request bodies
// all-or-nothing, as S3 does: a request is forwarded only once its whole body
// (Content-Length bytes) has arrived. A client that dies in the middle of a
// PUT leaves the bucket untouched.
//
// Why: s3rver 3.7.1 is NOT atomic. Its filesystem store opens (truncates) the
// object file when the PUT starts and writes the body as it arrives; when the
// client disconnects mid-body the partial bytes stay there as the object
// (under the previous metadata for an existing key; a new key appears with
// the partial content). Measured here: a 1,000,000-byte PUT cut after
// 100,000 bytes leaves a 100,000-byte object. Real S3 discards an incomplete
// upload. test/faults/crash.test.ts SIGKILLs clients mid-PUT, so without this
// proxy a server quirk would look like a torn upload by the library.
//
// With `verifyContentMd5`, it also does what S3 does and s3rver does not: a
// request whose Content-MD5 header is not the MD5 of its body is answered
// 400 BadDigest and never reaches the server. Every forwarded or refused
// request with a body is logged (`requests`) with the MD5 of what arrived.
//
// The proxy keeps the Host header (SigV4 signs it), drops hop-by-hop headers
// and `Expect` (unsigned), and answers `100 Continue` itself. A body that was
// complete is forwarded even if the client is gone by then (S3 commits such a
// PUT too); `idle()` resolves when no forwarded request is in flight, so a
// test can wait for those before it inspects the bucket.
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxiedRequest {
  method: string;
  /** Path and query, as sent (URL-encoded). */
  url: string;
  /** Base64 MD5 of the body that arrived. */
  bodyMd5: string;
  /** The Content-MD5 header, if any. */
  contentMd5: string | undefined;
  /** Whether it was refused with 400 BadDigest (verifyContentMd5). */
  badDigest: boolean;
}

export interface AtomicPutProxyOptions {
  /** Refuse, like S3, a request whose Content-MD5 is not the MD5 of its body (400 BadDigest). */
  verifyContentMd5?: boolean;
}

export interface AtomicPutProxy {
  /** Base URL for an S3 client (`forcePathStyle: true`). */
  endpoint: string;
  /** Requests dropped because the client disconnected before the body was complete. */
  readonly dropped: number;
  /** Requests forwarded to the server. */
  readonly forwarded: number;
  /** Complete requests that carried a body (PUT, POST), in arrival order. */
  readonly requests: ProxiedRequest[];
  /** Resolves when no request is being forwarded. */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'expect', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection'];

const BAD_DIGEST =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>BadDigest</Code>' +
  '<Message>The Content-MD5 you specified did not match what we received.</Message></Error>';

export async function startAtomicPutProxy(upstream: string, options: AtomicPutProxyOptions = {}): Promise<AtomicPutProxy> {
  const target = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let inFlight = 0;
  let dropped = 0;
  let forwarded = 0;
  const requests: ProxiedRequest[] = [];
  let waiters: Array<() => void> = [];
  const settle = (): void => {
    if (--inFlight === 0) {
      const w = waiters;
      waiters = [];
      for (const resolve of w) resolve();
    }
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
    });
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    req.on('end', () => {
      const declared = req.headers['content-length'];
      if (declared !== undefined && Number(declared) !== received) {
        dropped++;
        res.destroy();
        return;
      }
      const body = Buffer.concat(chunks);
      const header = req.headers['content-md5'];
      const contentMd5 = Array.isArray(header) ? header.join(',') : header;
      if (body.length > 0 || req.method === 'PUT') {
        const bodyMd5 = createHash('md5').update(body).digest('base64');
        const badDigest = options.verifyContentMd5 === true && contentMd5 !== undefined && contentMd5 !== bodyMd5;
        requests.push({ method: req.method ?? '?', url: req.url ?? '', bodyMd5, contentMd5, badDigest });
        if (badDigest) {
          res.writeHead(400, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(BAD_DIGEST) });
          res.end(BAD_DIGEST);
          return;
        }
      }
      const headers: http.OutgoingHttpHeaders = { ...req.headers };
      for (const h of HOP_BY_HOP) delete headers[h];
      headers['content-length'] = String(body.length);
      inFlight++;
      forwarded++;
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        settle();
      };
      const up = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent },
        (upRes) => {
          res.on('close', () => upRes.destroy());
          // The client may have gone (killed) before the answer came: a response
          // piped into a closed socket would pause for ever and idle() never resolve.
          if (res.destroyed || res.closed) upRes.destroy();
          upRes.on('error', finish);
          upRes.on('end', finish);
          upRes.on('close', finish);
          if (!res.destroyed) res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          upRes.pipe(res);
        },
      );
      up.on('error', () => {
        finish();
        res.destroy();
      });
      up.on('close', finish); // covers an upstream request destroyed before any answer
      // Never destroy `up` because the client went away: a complete request is
      // committed whole, like S3 does (cutting it would leave s3rver a partial object).
      up.end(body);
    });
    req.on('close', () => {
      if (!req.complete) {
        dropped++;
        chunks.length = 0;
      }
    });
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get dropped() {
      return dropped;
    },
    get forwarded() {
      return forwarded;
    },
    requests,
    idle: () => (inFlight === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve))),
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
