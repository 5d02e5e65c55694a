// A fault-injecting HTTP proxy between an S3Client and the run's local s3rver.
//
//   const proxy = await startFaultProxy({ upstream: s3Endpoint(), seed: 42, rates: { status503: 0.05 } });
//   const client = new S3Client({ endpoint: proxy.endpoint, forcePathStyle: true, ... });
//   ...
//   proxy.stats();   // requests seen, faults injected by type
//   await proxy.close();
//
// Every request is forwarded as is (method, path and query, headers, streamed
// body) except for two headers: `Authorization` is dropped (s3rver accepts
// unsigned requests but refuses any access key id other than its own, so the
// test client can use distinctive fake credentials) and `Host` becomes the
// upstream's. Responses stream back unchanged unless a fault was drawn.
//
// Faults (per request, at most one):
//  - status503     answer 503 SlowDown (S3-style XML) without forwarding
//  - status500     answer 500 InternalError without forwarding
//  - resetMidBody  GET: forward, send part of the body, then reset the socket (RST).
//                  Other methods: reset before answering -- either before
//                  forwarding (the upstream never sees the request) or after the
//                  upstream answered (e.g. a PUT that was stored, but the client
//                  never hears so)
//  - truncate      object GET: send the headers with the upstream Content-Length but
//                  only part of the body, then end the socket cleanly (FIN)
//  - shortBody     object GET: a complete, well-formed response whose Content-Length
//                  and body are both cut short (only an MD5 check can notice)
//  - stall         object GET: send part of the body, then go silent for `stallMs`
//                  (longer than the client's socketTimeout), then drop the socket
//  - flipByte      object GET: the whole body, with one byte inverted
// The body faults apply only to GETs of an object answered 200 with a non-empty
// Content-Length (or 206, a ranged GET, for a rule with `ranges: true`); drawn
// for anything else, they inject nothing (and count nothing).
//
// Determinism: the fault of a request is drawn from a PRNG seeded with
// hash(seed, method, url without the bucket, n), where n counts earlier
// requests with the same method and url. Concurrency therefore does not change
// which request of a key gets which fault: a run is reproducible from its seed,
// up to timing (a socket timeout under load, a keep-alive race) that changes
// how often a url is requested.
//
// `addRule()` forces a fault on matching requests (`times` of them, or all),
// ahead of the random rates: for focused tests ("the first GET of a.txt gets a 503").
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { finished } from 'node:stream/promises';

export const FAULT_TYPES = ['status503', 'status500', 'resetMidBody', 'truncate', 'shortBody', 'stall', 'flipByte'] as const;
export type FaultType = (typeof FAULT_TYPES)[number];
export type FaultRates = Partial<Record<FaultType, number>>;

/** Faults that need a response body to cut or damage: object GETs only. */
const BODY_FAULTS: ReadonlySet<FaultType> = new Set(['truncate', 'shortBody', 'stall', 'flipByte']);

export interface FaultRule {
  /** HTTP method to match (e.g. `GET`); any when omitted. */
  method?: string;
  /** Object key to match (the path after the bucket, decoded); any request when omitted. */
  key?: string | RegExp;
  fault: FaultType;
  /** How many matching requests get the fault; all of them when omitted. */
  times?: number;
  /** Body faults also apply to ranged GETs (206 Partial Content). Default false. */
  ranges?: boolean;
}

export interface FaultEvent {
  fault: FaultType;
  method: string;
  /** Object key, or undefined for bucket-level requests (listing, DeleteObjects). */
  key: string | undefined;
  /** resetMidBody on a request other than GET: whether the upstream saw the request. */
  when?: 'before-forwarding' | 'after-upstream-answered';
}

export interface FaultProxyStats {
  requests: number;
  byMethod: Record<string, number>;
  /** Faults actually injected, by type. */
  faults: Record<FaultType, number>;
  /** Total of `faults`. */
  totalFaults: number;
  /** Upstream failures the proxy did not cause (answered 502): should stay 0. */
  upstreamErrors: number;
  /** What they were (method, path, error), the first 10. */
  upstreamErrorDetails: string[];
  /** Every injected fault, in order. */
  events: FaultEvent[];
}

export interface FaultProxyOptions {
  /** Base URL of the real server, e.g. http://127.0.0.1:41577 */
  upstream: string;
  seed: number;
  rates?: FaultRates;
  /** How long a `stall` stays silent before dropping the socket. Default 3,000 ms. */
  stallMs?: number;
}

export interface FaultProxy {
  /** Point the S3Client's `endpoint` here (with `forcePathStyle: true`). */
  readonly endpoint: string;
  readonly seed: number;
  stats(): FaultProxyStats;
  resetStats(): void;
  setRates(rates: FaultRates): void;
  addRule(rule: FaultRule): void;
  clearRules(): void;
  close(): Promise<void>;
}

/** mulberry32: a small, fast, seedable PRNG returning floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hashSeed(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32LE(0);
}

/** `/bucket/some/key?query` → `some/key`; undefined for bucket-level requests. */
function objectKey(url: string): string | undefined {
  const path = url.split('?')[0] ?? '';
  const slash = path.indexOf('/', 1);
  if (slash < 0 || slash === path.length - 1) return undefined;
  try {
    return decodeURIComponent(path.slice(slash + 1));
  } catch {
    return path.slice(slash + 1);
  }
}

function errorXml(code: string, message: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${message}</Message>` +
    `<RequestId>FAULTPROXY${Date.now()}</RequestId><HostId>fault-proxy</HostId></Error>`
  );
}

function sendError(res: http.ServerResponse, status: number, code: string, message: string): void {
  const body = errorXml(code, message);
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const upstream = new URL(options.upstream);
  const seed = options.seed >>> 0;
  const stallMs = options.stallMs ?? 3_000;
  let rates: FaultRates = { ...options.rates };
  let rules: FaultRule[] = [];
  const seen = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let stats = emptyStats();

  function emptyStats(): FaultProxyStats {
    const faults = Object.fromEntries(FAULT_TYPES.map((t) => [t, 0])) as Record<FaultType, number>;
    return { requests: 0, byMethod: {}, faults, totalFaults: 0, upstreamErrors: 0, upstreamErrorDetails: [], events: [] };
  }

  function count(fault: FaultType, method: string, key: string | undefined, when?: FaultEvent['when']): void {
    stats.faults[fault]++;
    stats.totalFaults++;
    stats.events.push(when === undefined ? { fault, method, key } : { fault, method, key, when });
  }

  /** The fault for this request (rules first, then the rates), and the PRNG for its parameters. */
  function draw(method: string, url: string, key: string | undefined): { fault: FaultType | undefined; rand: () => number; ranges?: boolean } {
    const id = `${method} ${url.replace(/^\/[^/?]*/, '')}`; // without the bucket: test buckets have random names
    const n = seen.get(id) ?? 0;
    seen.set(id, n + 1);
    const rand = mulberry32(hashSeed(`${seed}|${id}|${n}`));
    const roll = rand();
    for (const rule of rules) {
      if (rule.method !== undefined && rule.method !== method) continue;
      if (rule.key !== undefined) {
        if (key === undefined) continue;
        if (typeof rule.key === 'string' ? rule.key !== key : !rule.key.test(key)) continue;
      }
      if (rule.times !== undefined) {
        if (rule.times <= 0) continue;
        rule.times--;
      }
      return { fault: rule.fault, rand, ranges: rule.ranges === true };
    }
    const objectGet = method === 'GET' && key !== undefined;
    let acc = 0;
    for (const type of FAULT_TYPES) {
      if (BODY_FAULTS.has(type) && !objectGet) continue;
      acc += rates[type] ?? 0;
      if (roll < acc) return { fault: type, rand };
    }
    return { fault: undefined, rand };
  }

  function later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const key = objectKey(url);
    stats.requests++;
    stats.byMethod[method] = (stats.byMethod[method] ?? 0) + 1;
    const { fault, rand, ranges } = draw(method, url, key);
    const socket = req.socket;

    if (fault === 'status503' || fault === 'status500') {
      count(fault, method, key);
      req.resume(); // consume a PUT's body so the connection stays usable
      await finished(req).catch(() => undefined);
      if (fault === 'status503') sendError(res, 503, 'SlowDown', 'Please reduce your request rate.');
      else sendError(res, 500, 'InternalError', 'We encountered an internal error. Please try again.');
      return;
    }
    const resetEarly = fault === 'resetMidBody' && method !== 'GET' && rand() < 0.5;
    if (resetEarly) {
      count('resetMidBody', method, key, 'before-forwarding');
      socket.resetAndDestroy();
      return;
    }

    const headers = { ...req.headers, host: upstream.host };
    delete headers.authorization;
    // A request without a body that fails on a kept-alive upstream socket before any answer
    // (the server closed it as it was reused) is sent once more on a new one, as HTTP clients do.
    const bodiless = method === 'GET' || method === 'HEAD';
    const send = (retry: boolean): http.ClientRequest => {
      const up = http.request({ host: upstream.hostname, port: upstream.port, method, path: url, headers, agent: retry ? undefined : agent });
      if (bodiless) up.end();
      else req.pipe(up);
      up.on('error', (e: NodeJS.ErrnoException) => {
        if (res.headersSent || socket.destroyed || res.destroyed) {
          res.destroy();
          return;
        }
        if (!retry && bodiless && up.reusedSocket) {
          current = send(true);
          return;
        }
        stats.upstreamErrors++;
        if (stats.upstreamErrorDetails.length < 10) stats.upstreamErrorDetails.push(`${method} ${url}: ${e.code ?? ''} ${e.message}${up.reusedSocket ? ' (reused socket)' : ''}`);
        sendError(res, 502, 'BadGateway', 'fault-proxy: the upstream request failed');
      });
      up.on('response', (upRes) => respond(upRes));
      return up;
    };
    let current = send(false);
    res.on('close', () => {
      if (!res.writableFinished) current.destroy(); // the client went away (or we dropped it)
    });
    const respond = (upRes: http.IncomingMessage): void => {
      const status = upRes.statusCode ?? 502;
      const length = Number(upRes.headers['content-length']);
      if (fault === 'resetMidBody' && method !== 'GET') {
        // The upstream did the work; the client never hears of it.
        count('resetMidBody', method, key, 'after-upstream-answered');
        upRes.resume();
        upRes.on('end', () => socket.resetAndDestroy());
        return;
      }
      const bodyFault = fault === 'resetMidBody' || (fault !== undefined && BODY_FAULTS.has(fault) && key !== undefined);
      if (!bodyFault || method !== 'GET' || !(status === 200 || (ranges === true && status === 206)) || !(length > 0)) {
        res.writeHead(status, upRes.headers);
        upRes.pipe(res);
        return;
      }
      count(fault, method, key);
      const cut = fault === 'flipByte' ? undefined : Math.floor(rand() * length); // 0 … length-1 bytes get through
      const flipAt = fault === 'flipByte' ? Math.floor(rand() * length) : -1;
      const outHeaders = { ...upRes.headers };
      if (fault === 'shortBody') outHeaders['content-length'] = String(cut);
      res.writeHead(status, outHeaders);
      res.flushHeaders();

      let sent = 0;
      let stopped = false;
      upRes.on('data', (chunk: Buffer) => {
        if (stopped) return;
        let out = chunk;
        if (flipAt >= sent && flipAt < sent + chunk.length) {
          out = Buffer.from(chunk);
          out[flipAt - sent] = (out[flipAt - sent] ?? 0) ^ 0xff;
        }
        if (cut !== undefined && sent + out.length >= cut) {
          stopped = true;
          upRes.destroy();
          afterCut(fault, out.subarray(0, cut - sent));
          return;
        }
        sent += out.length;
        if (!res.write(out)) {
          upRes.pause();
          res.once('drain', () => upRes.resume());
        }
      });
      upRes.on('end', () => {
        if (!stopped) res.end();
      });
      upRes.on('error', () => {
        if (!stopped) res.destroy();
      });

      function afterCut(kind: FaultType, part: Buffer): void {
        if (kind === 'shortBody') {
          res.end(part);
          return;
        }
        const act = (): void => {
          if (kind === 'resetMidBody') socket.resetAndDestroy();
          else if (kind === 'truncate') socket.end();
          else later(stallMs, () => socket.destroy()); // stall
        };
        if (part.length > 0) res.write(part, act);
        else setImmediate(act);
      }
    };
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.keepAliveTimeout = 30_000;
  server.on('clientError', (_err, socket: Socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    seed,
    stats: () => structuredClone(stats),
    resetStats: () => {
      stats = emptyStats();
    },
    setRates: (next) => {
      rates = { ...next };
    },
    addRule: (rule) => {
      if (BODY_FAULTS.has(rule.fault) && rule.method !== undefined && rule.method !== 'GET') {
        throw new Error(`fault-proxy: ${rule.fault} applies to GET responses only`);
      }
      rules.push({ ...rule });
    },
    clearRules: () => {
      rules = [];
    },
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
