/**
 * The lean request path for GetObject and single-request PutObject: the
 * client's own signer (SigV4, its credential provider, its clock offset)
 * over the client's own keep-alive agent, without the SDK's middleware
 * pipeline (about 1 ms of CPU less per request, see bench/transport.ts).
 *
 * It is a hybrid, never a replacement: {@link FastPath.open} resolves the
 * bucket's endpoint once with the client's own endpoint provider and says no
 * (`undefined`) whenever it is not sure to send exactly what the SDK would —
 * a client carrying middleware of its user's, a stubbed `send()`, another
 * request handler than the SDK's `NodeHttpHandler`, an ARN, S3 Express,
 * accelerate or dual-stack endpoints, anything signed other than with plain
 * SigV4 for `s3`. Callers answer what the SDK never retries themselves (a
 * 304; 404, 409 and 412 with the SDK's own error, see {@link errorAnswer}) and
 * send every other answer that is not a success through `client.send()`
 * again, so the SDK's retries, typed errors, clock-skew correction and
 * redirects apply as before; a failure before the response headers is handed
 * to the SDK's retry as its first attempt (see {@link failedInTransit}).
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { createHash } from 'node:crypto';
import { S3Client, S3ServiceException } from '@aws-sdk/client-s3';

/** `transport` option: `'auto'` uses the fast path where it is safe, `'sdk'` always `client.send()`. */
export type Transport = 'auto' | 'sdk';

/** What {@link FastPath.request} sends. */
export interface FastRequest {
  method: 'GET' | 'PUT';
  /** The object's key; `''` with {@link query}: the bucket itself (a listing). */
  key: string;
  /** Query parameters (names and values as they are; encoded here, as the signer encodes them). */
  query?: Record<string, string> | undefined;
  /** Lower-case header names; `host`, `x-amz-date`, `authorization` and `x-amz-content-sha256` are added. */
  headers: Record<string, string>;
  body?: Buffer | undefined;
  /** Destroys the request (before or after the headers) with its reason. */
  signal?: AbortSignal | undefined;
  /** Another way to destroy it (before or after the headers): a watch that calls back with the reason (a {@link StallWatch}). */
  watch?: { onAbort(abort: (reason: unknown) => void): void } | undefined;
  /** Socket idle timeout (ms), as the SDK's `socketTimeout`: the request is destroyed with a `TimeoutError`. 0: none. */
  socketTimeoutMs?: number | undefined;
}

interface Signer {
  sign(request: unknown, options: { signingDate: Date; signingRegion: string; signingService: string }): Promise<{ headers: Record<string, string> }>;
}

interface Route {
  protocol: 'http:' | 'https:';
  hostname: string;
  port: number | undefined;
  /** `host` header. */
  host: string;
  /** Path before the key, without a trailing `/` (`/bucket` path-style, `` virtual-host). */
  base: string;
  signingRegion: string;
  signingName: string;
  agent: http.Agent;
  signer: Signer;
  /** The handler's socket idle timeout (ms), 0 for none. */
  socketTimeoutMs: number;
  /** The handler's `connectionTimeout` (ms), 0 for none. */
  connectTimeoutMs: number;
  /** Which operations the fast path may send (see the checksum settings in {@link FastPath.open}). */
  ops: { get: boolean; put: boolean };
  /** PUT bodies of this many bytes or more get `Expect: 100-continue` from the SDK: not sent here. */
  expectContinueFrom: number;
}

type Provider<T> = T | (() => T | Promise<T>);

/** The middleware a stock S3Client carries (names and steps), computed once. */
let stockMiddleware: Set<string> | undefined;
let stockSend: unknown;

function stock(): { middleware: Set<string>; send: unknown } {
  if (stockMiddleware === undefined) {
    const reference = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    stockMiddleware = new Set(reference.middlewareStack.identify());
    stockSend = reference.send;
    reference.destroy();
  }
  return { middleware: stockMiddleware, send: stockSend };
}

/** Whether a client's `send()` is the SDK's own (not replaced, not a stub such as aws-sdk-client-mock's). */
function sendsItself(client: S3Client): boolean {
  const send = client.send as unknown as { restore?: unknown; isSinonProxy?: unknown };
  return client.send === stock().send && send.restore === undefined && send.isSinonProxy === undefined;
}

/** Whether a client carries only the middleware a stock S3Client has, and its own `send()` (not a stub). */
export function isStockClient(client: S3Client): boolean {
  const ref = stock();
  return sendsItself(client) && client.middlewareStack.identify().every((name) => ref.middleware.has(name));
}

async function value<T>(p: Provider<T> | undefined): Promise<T | undefined> {
  return typeof p === 'function' ? await (p as () => T | Promise<T>)() : p;
}

/** A key as the SDK puts it in a path: each segment URL-encoded as RFC 3986 says (`/` kept). */
export function encodeKey(key: string): string {
  return key.split('/').map(encodeComponent).join('/');
}

/** One path segment or query name or value, URL-encoded as RFC 3986 says (what SigV4 signs). */
function encodeComponent(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The fast path of one client and bucket (see the module's comment). */
export class FastPath {
  /** Set when an answer says the route is wrong (a redirect): every later request goes through the SDK. */
  private disabled = false;

  private constructor(
    private readonly client: S3Client,
    private readonly route: Route,
  ) {}

  /**
   * The fast path for `bucket` over `client`, or `undefined` where it would
   * not send what the SDK sends. `trusted`: the library built the client
   * (its middleware is stock by construction; its `send()` is still checked:
   * a test may stub it on the class). Never throws.
   */
  static async open(client: S3Client, bucket: string, trusted: boolean): Promise<FastPath | undefined> {
    try {
      if (trusted ? !sendsItself(client) : !isStockClient(client)) return undefined;
      if (bucket.startsWith('arn:')) return undefined;
      const config = client.config as unknown as Record<string, unknown>;
      const handler = config.requestHandler as { constructor?: { name?: string }; configProvider?: Promise<Record<string, unknown>> } | undefined;
      if (handler?.constructor?.name !== 'NodeHttpHandler' || handler.configProvider === undefined) return undefined;
      const [accelerate, dualStack, fips, pathStyle, region] = await Promise.all([
        value(config.useAccelerateEndpoint as Provider<boolean>),
        value(config.useDualstackEndpoint as Provider<boolean>),
        value(config.useFipsEndpoint as Provider<boolean>),
        value(config.forcePathStyle as Provider<boolean>),
        value(config.region as Provider<string>),
      ]);
      if (accelerate === true || dualStack === true || typeof region !== 'string') return undefined;
      // With 'WHEN_SUPPORTED' (the SDK's default) the SDK sends a CRC32 with each PutObject and
      // validates the checksums GetObject answers with: the fast path does neither, so it is used
      // only for what the client would send without them.
      const [requestChecksums, responseChecksums] = await Promise.all([
        value(config.requestChecksumCalculation as Provider<string>),
        value(config.responseChecksumValidation as Provider<string>),
      ]);
      const ops = { get: responseChecksums === 'WHEN_REQUIRED', put: requestChecksums === 'WHEN_REQUIRED' };
      // The SDK sends `Expect: 100-continue` with a body of this many bytes or more (default 2 MiB):
      // such PUTs stay on the SDK (a refusal then costs no upload; and their CPU is the body's anyway).
      const expect = config.expectContinueHeader;
      const expectContinueFrom = expect === false ? Infinity : typeof expect === 'number' ? expect : 0;
      if (!ops.get && !ops.put) return undefined;
      let endpoint: string | undefined;
      if (config.isCustomEndpoint === true && typeof config.endpoint === 'function') {
        const ep = (await (config.endpoint as () => Promise<{ protocol?: string; hostname?: string; port?: number; path?: string }>)()) ?? {};
        endpoint = `${ep.protocol ?? 'https:'}//${ep.hostname ?? ''}${ep.port !== undefined ? `:${ep.port}` : ''}${ep.path ?? ''}`;
      }
      const provider = config.endpointProvider as (params: Record<string, unknown>) => {
        url: URL;
        properties?: { backend?: string; authSchemes?: Array<{ name?: string; signingName?: string; signingRegion?: string }> };
        headers?: Record<string, unknown>;
      };
      const resolved = provider({
        Bucket: bucket,
        Region: region,
        UseFIPS: fips === true,
        UseDualStack: false,
        Accelerate: false,
        ForcePathStyle: pathStyle === true,
        UseGlobalEndpoint: (await value(config.useGlobalEndpoint as Provider<boolean>)) === true,
        DisableMultiRegionAccessPoints: (await value(config.disableMultiregionAccessPoints as Provider<boolean>)) === true,
        UseArnRegion: (await value(config.useArnRegion as Provider<boolean>)) === true,
        ...(endpoint !== undefined ? { Endpoint: endpoint } : {}),
      });
      const scheme = resolved.properties?.authSchemes?.[0];
      if (resolved.properties?.backend !== undefined || Object.keys(resolved.headers ?? {}).length > 0) return undefined;
      if (scheme?.name !== 'sigv4' || scheme.signingName !== 's3') return undefined;
      const url = new URL(String(resolved.url));
      if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.search !== '' || url.username !== '') return undefined;
      const resolvedHandler = await handler.configProvider;
      const agent =
        url.protocol === 'https:' ? resolvedHandler.httpsAgent
        : typeof resolvedHandler.httpAgentProvider === 'function' ? await (resolvedHandler.httpAgentProvider as () => Promise<unknown>)()
        : resolvedHandler.httpAgent;
      if (!(agent instanceof (url.protocol === 'https:' ? https.Agent : http.Agent))) return undefined;
      const signerOf = config.signer as (scheme: unknown) => Promise<Signer>;
      const signer = await signerOf({ ...scheme, properties: {} });
      if (typeof signer?.sign !== 'function') return undefined;
      const socketTimeout = resolvedHandler.socketTimeout ?? resolvedHandler.requestTimeout;
      const connectTimeout = resolvedHandler.connectionTimeout;
      return new FastPath(client, {
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: url.port === '' ? undefined : Number(url.port),
        host: url.host,
        base: url.pathname.replace(/\/+$/, ''),
        signingRegion: scheme.signingRegion ?? region,
        signingName: scheme.signingName,
        agent: agent as http.Agent,
        signer,
        socketTimeoutMs: typeof socketTimeout === 'number' && socketTimeout > 0 ? socketTimeout : 0,
        connectTimeoutMs: typeof connectTimeout === 'number' && connectTimeout > 0 ? connectTimeout : 0,
        ops,
        expectContinueFrom,
      });
    } catch {
      return undefined;
    }
  }

  /** Whether `op` requests go this way (a redirect turns the fast path off for good). */
  usable(op: 'get' | 'put'): boolean {
    return !this.disabled && this.route.ops[op];
  }

  /** Whether a PUT of `bytes` goes this way (the SDK would send a larger one with `Expect: 100-continue`). */
  puts(bytes: number): boolean {
    return bytes < this.route.expectContinueFrom;
  }

  /** Where a request for `key` goes (for diagnostics and tests). */
  url(key: string): string {
    const r = this.route;
    return `${r.protocol}//${r.host}${r.base}/${encodeKey(key)}`;
  }

  /** The handler's socket idle timeout (ms; 0: none). */
  get socketTimeoutMs(): number {
    return this.route.socketTimeoutMs;
  }

  /**
   * Send one request; resolves with the response once its headers arrived
   * (any status: the caller decides), rejects on any failure before them.
   * A 301/307 (a bucket in another region) turns the fast path off.
   */
  async request(req: FastRequest): Promise<IncomingMessage> {
    const r = this.route;
    const config = this.client.config as unknown as { systemClockOffset?: number; disableClockSkewCorrection?: () => Promise<boolean> };
    const offset = (await config.disableClockSkewCorrection?.()) === true ? 0 : (config.systemClockOffset ?? 0);
    const path = `${r.base}/${encodeKey(req.key)}`;
    const query = req.query ?? {};
    const search = Object.keys(query)
      .map((k) => `${encodeComponent(k)}=${encodeComponent(query[k] as string)}`)
      .join('&');
    // `x-amz-date` and `authorization` are present (empty) before signing, and the signer
    // replaces them. Why: the signer copies the headers with a spread and adds these two;
    // on Node 20 (V8 11.3) that gives every request's headers a hidden class of its own,
    // allocated in old space, which only a full GC frees (about 0.9 KB per request in a
    // sampling heap profile of a 100,000-file pull). Present already, they are not added.
    // Neither changes the signature: x-amz-date is set before the canonical request is
    // made, and authorization is never signed.
    const headers: Record<string, string> = Object.assign({}, req.headers, { host: r.host, 'x-amz-date': '', authorization: '' });
    if (req.body !== undefined) headers['content-length'] = String(req.body.length);
    const signed = await r.signer.sign(
      { method: req.method, protocol: r.protocol, hostname: r.hostname, port: r.port, path, query, headers, body: req.body },
      { signingDate: new Date(Date.now() + offset), signingRegion: r.signingRegion, signingService: r.signingName },
    );
    req.signal?.throwIfAborted();
    const options: http.RequestOptions = { method: req.method, hostname: r.hostname, port: r.port, path: search === '' ? path : `${path}?${search}`, headers: signed.headers, agent: r.agent };
    const res = await send(r.protocol === 'https:', options, req, r.connectTimeoutMs);
    if (res.statusCode === 301 || res.statusCode === 307) this.disabled = true;
    return res;
  }
}

/** Failures of requests that were sent (the network's, not an abort's nor the signer's): see {@link failedInTransit}. */
const inTransit = new WeakSet<object>();

/**
 * Whether {@link FastPath.request} rejected with this because the request
 * failed on its way (a refused or reset connection, a socket or connection
 * timeout), as the SDK's handler would have failed: the SDK may take it as
 * its own first attempt. Not for aborts (the caller's or a watch's) nor for a
 * failure to sign.
 */
export function failedInTransit(error: unknown): boolean {
  return typeof error === 'object' && error !== null && inTransit.has(error);
}

/** A `TimeoutError` (the name the SDK's retry takes as transient). */
function timeoutError(message: string): Error {
  return Object.assign(new Error(message), { name: 'TimeoutError' });
}

/**
 * One request over node:http(s): resolves with the response once its headers
 * arrived; the caller's signal and the watch then follow the body.
 * `connectTimeoutMs`: as the SDK handler's `connectionTimeout` (a new
 * connection that is not established in time fails with a `TimeoutError`).
 */
function send(tls: boolean, options: http.RequestOptions, req: FastRequest, connectTimeoutMs: number): Promise<IncomingMessage> {
  const { signal, socketTimeoutMs } = req;
  return new Promise<IncomingMessage>((resolve, reject) => {
    const outgoing = tls ? https.request(options) : http.request(options);
    let response: IncomingMessage | undefined;
    if (connectTimeoutMs > 0) {
      // Only a socket that is still connecting is timed (a kept-alive one costs no timer).
      outgoing.once('socket', (socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(() => {
          // the SDK handler's words: the store's messages read them the same way
          outgoing.destroy(timeoutError(`fast path: the request socket did not establish a connection with the server within the configured timeout of ${connectTimeoutMs} ms.`));
        }, connectTimeoutMs);
        const clear = (): void => clearTimeout(timer);
        socket.once('connect', clear);
        outgoing.once('close', clear);
      });
    }
    const onAbort = (): void => {
      outgoing.destroy(abortError(signal?.reason));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    req.watch?.onAbort((reason) => {
      const error = abortError(reason);
      if (response !== undefined) response.destroy(error);
      outgoing.destroy(error);
    });
    if (socketTimeoutMs !== undefined && socketTimeoutMs > 0) {
      const ms = socketTimeoutMs;
      outgoing.setTimeout(ms, () => {
        const error = timeoutError(`fast path: the request socket timed out after ${ms} ms of inactivity (configured by client requestHandler).`);
        response?.destroy(error); // a body in progress fails with it (not with the reset that follows)
        outgoing.destroy(error);
      });
    }
    outgoing.once('error', (error) => {
      signal?.removeEventListener('abort', onAbort);
      if (error.name !== 'AbortError') inTransit.add(error);
      reject(error);
    });
    outgoing.once('response', (res) => {
      response = res;
      // the signal now follows the body: an abort destroys it (and the socket)
      if (signal !== undefined) {
        signal.removeEventListener('abort', onAbort);
        followBody(res, signal);
      }
      // errors after the response are the body's; the request's own are no longer interesting
      outgoing.on('error', ignore);
      resolve(res);
    });
    outgoing.end(req.body);
  });
}

function followBody(res: IncomingMessage, signal: AbortSignal): void {
  const onBodyAbort = (): void => {
    res.destroy(abortError(signal.reason));
  };
  signal.addEventListener('abort', onBodyAbort, { once: true });
  res.once('close', () => signal.removeEventListener('abort', onBodyAbort));
}

function ignore(): void {}

/** An `AbortError` carrying the signal's reason (what the SDK's handler throws). */
function abortError(reason: unknown): Error {
  const error = new Error('Request aborted', { cause: reason });
  error.name = 'AbortError';
  return error;
}

/**
 * The error the SDK makes of a 304 answer to a conditional GET (no body, so
 * no S3 code): an `S3ServiceException` named `Unknown`, "UnknownError",
 * with the status and request ids in `$metadata`. A 304 is final for the SDK
 * too (never retried), so the fast path answers it without a second request.
 */
export function notModifiedError(res: IncomingMessage): S3ServiceException {
  const h = res.headers;
  return new S3ServiceException({
    name: 'Unknown',
    $fault: 'client',
    message: 'UnknownError',
    $metadata: {
      httpStatusCode: res.statusCode ?? 304,
      requestId: header(h['x-amz-request-id']),
      extendedRequestId: header(h['x-amz-id-2']),
      cfId: header(h['x-amz-cf-id']),
      attempts: 1,
      totalRetryDelay: 0,
    } as S3ServiceException['$metadata'], // the SDK too keeps absent ids as undefined properties
  });
}

/**
 * Answers the SDK never retries and that the fast path therefore answers
 * itself (sending them again would cost a request and, for a conditional
 * write, change nothing or race): 404 (NoSuchKey, NoSuchBucket), 409
 * (ConditionalRequestConflict) and 412 (PreconditionFailed). Everything else
 * that is not a success (403s may be clock skew, 400s expired credentials,
 * 5xx are retried) goes through the SDK.
 */
export const FINAL_ERROR_STATUSES: ReadonlySet<number> = new Set([404, 409, 412]);

/** The largest error body read on the fast path (S3's are a few hundred bytes). */
const MAX_ERROR_BODY = 64 * 1024;

/**
 * A whole (small) response body as text: `undefined` when it grows past
 * `max` bytes (the response is destroyed); rejects when the body fails.
 * `touch` is called for every chunk (progress for a stall watch); the
 * response's watch or socket timeout bounds the wait.
 */
export async function readSmallBody(res: IncomingMessage, max: number, touch?: () => void): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    touch?.();
    bytes += chunk.length;
    if (bytes > max) {
      res.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The body of an error answer, as text; `undefined` if it is larger than
 * S3's ever are or fails (the caller then sends the request through the SDK).
 */
export async function readErrorBody(res: IncomingMessage, touch?: () => void): Promise<string | undefined> {
  return readSmallBody(res, MAX_ERROR_BODY, touch).catch(() => undefined);
}

const XML_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function xmlText(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|apos|#x[0-9a-fA-F]+|#[0-9]+);/g, (_, e: string) =>
    e.startsWith('#x') ? String.fromCodePoint(parseInt(e.slice(2), 16)) : e.startsWith('#') ? String.fromCodePoint(Number(e.slice(1))) : (XML_ENTITIES[e] as string),
  );
}

/**
 * The error the SDK makes of an S3 error answer it has no model for (its
 * default: an `S3ServiceException` named after the body's `Code`, `$fault`
 * `client`, the body's `Message`, the status and request ids in `$metadata`,
 * and the body's other top-level elements as properties). `undefined` when
 * the body is not an S3 `<Error>` document (the caller then asks the SDK).
 */
export function errorAnswer(res: IncomingMessage, body: string): S3ServiceException | undefined {
  const doc = /<Error>([\s\S]*)<\/Error>/.exec(body);
  if (doc === null) return undefined;
  const fields: Record<string, string> = {};
  for (const m of (doc[1] as string).matchAll(/<([A-Za-z][A-Za-z0-9]*)>([^<]*)<\/\1>/g)) fields[m[1] as string] = xmlText(m[2] as string);
  const code = fields.Code;
  if (code === undefined || code === '') return undefined;
  const h = res.headers;
  const error = new S3ServiceException({
    name: code,
    $fault: 'client',
    message: fields.Message ?? code,
    $metadata: {
      httpStatusCode: res.statusCode,
      requestId: header(h['x-amz-request-id']),
      extendedRequestId: header(h['x-amz-id-2']),
      cfId: header(h['x-amz-cf-id']),
      attempts: 1,
      totalRetryDelay: 0,
    } as S3ServiceException['$metadata'],
  });
  for (const [k, v] of Object.entries(fields)) if (!(k in error)) (error as unknown as Record<string, string>)[k] = v;
  return error;
}

/** One header's value (the first of a repeated one). */
export function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * SSE-C headers as the SDK sends them: the key base64-encoded (a key given
 * as the base64 of 32 bytes is kept as is, as the SDK decides), and its MD5.
 */
export function sseCustomerHeaders(ssec: { SSECustomerAlgorithm?: string; SSECustomerKey?: string }): Record<string, string> {
  if (ssec.SSECustomerAlgorithm === undefined || ssec.SSECustomerKey === undefined) return {};
  const k = ssec.SSECustomerKey;
  const raw = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(k) && Buffer.from(k, 'base64').length === 32 ? Buffer.from(k, 'base64') : Buffer.from(k, 'utf8');
  return {
    'x-amz-server-side-encryption-customer-algorithm': ssec.SSECustomerAlgorithm,
    'x-amz-server-side-encryption-customer-key': raw.toString('base64'),
    'x-amz-server-side-encryption-customer-key-md5': createHash('md5').update(raw).digest('base64'),
  };
}
