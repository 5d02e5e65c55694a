// Faults on the fast transport (src/storage/fast-path.ts): what goes wrong on
// the fast path is sent again through the SDK (a 503, a reset before the
// headers), and what goes wrong after the headers is the body's failure, as
// on the SDK path (a stall is detected, an abort stops it).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import type { Readable } from 'node:stream';

import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

import { StorageError } from '../../src/errors.js';
import { S3ObjectStore } from '../../src/storage/S3ObjectStore.js';
import { quietLogger } from '../contract/object-store-contract.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { TEST_CREDENTIALS, TEST_REGION, createTestBucket, s3Endpoint } from '../helpers/s3.js';
import { startStrictS3, type StrictS3 } from '../helpers/strict-s3.js';

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const put = (key: string, body: Buffer) => ({ key, body, size: body.length, md5: md5(body), contentType: 'application/octet-stream', mtimeMs: 1_700_000_000_000 });

async function read(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

let strict: StrictS3;
let n = 0;
beforeAll(async () => {
  strict = await startStrictS3();
});
afterAll(async () => {
  await strict.close();
});

function strictStore(options: { stallTimeoutMs?: number } = {}) {
  const bucket = `ff-${++n}`;
  strict.state.createBucket(bucket);
  const client = new S3Client({
    endpoint: strict.endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    logger: quietLogger,
  });
  onTestFinished(() => {
    strict.state.clearFaults();
    client.destroy();
  });
  const fast: string[] = [];
  const store = new S3ObjectStore(client, bucket, { transport: 'auto', ownsClient: true, onFastRequest: (op) => fast.push(op), ...options });
  return { bucket, store, fast, client };
}

describe('fast transport: faults', () => {
  it('a 503 on the fast path is sent again through the SDK and succeeds (GET and PUT)', { timeout: 10_000 }, async () => {
    const { bucket, store, fast } = strictStore();
    strict.state.putObject(bucket, 'a', 'content');
    strict.state.failNext({ op: 'GetObject', bucket }, { status: 503, code: 'SlowDown' });
    expect((await read((await store.get('a')).body)).toString()).toBe('content');
    strict.state.failNext({ op: 'PutObject', bucket }, { status: 503, code: 'SlowDown' });
    await store.put(put('b', Buffer.from('new')));
    expect(strict.state.getObject(bucket, 'b')?.body.toString()).toBe('new');
    expect(strict.state.count((r) => r.bucket === bucket && r.op === 'GetObject')).toBe(2);
    expect(strict.state.count((r) => r.bucket === bucket && r.op === 'PutObject')).toBe(2);
    expect(fast).toEqual([]); // both answered by the SDK's attempt
  });

  it('a socket reset before the headers is sent again through the SDK and succeeds', { timeout: 10_000 }, async () => {
    const { bucket, store } = strictStore();
    strict.state.putObject(bucket, 'a', 'content');
    strict.state.failNext({ op: 'GetObject', bucket }, { reset: true });
    expect((await read((await store.get('a')).body)).toString()).toBe('content');
    strict.state.failNext({ op: 'PutObject', bucket }, { reset: true });
    await store.put(put('b', Buffer.from('new')));
    expect(strict.state.getObject(bucket, 'b')?.body.toString()).toBe('new');
  });

  it('a reset before the headers counts as the first attempt: 1 fast + 2 SDK requests for maxAttempts 3, and a dead key fails after 3 in all, as on the SDK path', { timeout: 10_000 }, async () => {
    const { bucket, store, fast } = strictStore();
    strict.state.putObject(bucket, 'a', 'content');
    strict.state.failNext({ op: 'GetObject', bucket, times: 2 }, { reset: true });
    expect((await read((await store.get('a')).body)).toString()).toBe('content');
    expect(strict.state.count((r) => r.bucket === bucket && r.op === 'GetObject')).toBe(3);
    expect(fast).toEqual([]); // the third request, the SDK's second attempt, answered it

    strict.state.resetRequests();
    strict.state.failAlways({ op: 'PutObject', bucket }, { reset: true });
    const error = await store.put(put('b', Buffer.from('new'))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'NETWORK', retryable: true });
    expect(strict.state.count((r) => r.bucket === bucket && r.op === 'PutObject')).toBe(3); // the client's maxAttempts (3), fast one included
    expect(strict.state.getObject(bucket, 'b')).toBeUndefined();
  });

  it('a 412, a 409 and a 404 come out exactly as through the SDK (PRECONDITION_FAILED, CONFLICT, NOT_FOUND), each in one request; a 304 too', { timeout: 10_000 }, async () => {
    const { bucket, store, client } = strictStore();
    strict.state.putObject(bucket, 'a', 'content');
    const etag = md5(Buffer.from('content'));
    const viaSdk = new S3ObjectStore(client, bucket, { transport: 'sdk' });
    const calls = [
      () => s.get('a', undefined, { ifMatch: 'f'.repeat(32) }),
      () => s.put({ ...put('a', Buffer.from('x')), ifNoneMatch: true }),
      () => s.put({ ...put('a', Buffer.from('x')), ifMatch: 'f'.repeat(32) }),
      () => s.put({ ...put('nope', Buffer.from('x')), ifMatch: 'f'.repeat(32) }),
      () => s.get('missing'),
      () => s.getRange('missing', 0, 3),
      () => {
        strict.state.conflictNext({ bucket, key: 'a' });
        return s.put({ ...put('a', Buffer.from('x')), ifMatch: etag });
      },
    ];
    let s: S3ObjectStore = store;
    for (const call of calls) {
      s = store;
      strict.state.resetRequests();
      const fast = await call().catch((e: unknown) => e);
      expect(strict.state.count(() => true)).toBe(1);
      s = viaSdk;
      const sdk = await call().catch((e: unknown) => e);
      expect(fast).toBeInstanceOf(StorageError);
      const pick = (e: unknown) => {
        const se = e as StorageError & { cause: Record<string, unknown> };
        return { code: se.code, statusCode: se.statusCode, retryable: se.retryable, message: se.message, name: se.cause.name, fault: se.cause.$fault, Code: se.cause.Code };
      };
      expect(pick(fast)).toEqual(pick(sdk));
    }
    expect(strict.state.getObject(bucket, 'a')?.body.toString()).toBe('content');
    expect(strict.state.getObject(bucket, 'nope')).toBeUndefined();
    strict.state.resetRequests();
    const e = await store.get('a', undefined, { ifNoneMatch: etag }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(StorageError);
    expect(e).toMatchObject({ code: 'NOT_MODIFIED', statusCode: 304, cause: { name: 'Unknown' } });
    expect(strict.state.count('GetObject')).toBe(1);
  });

  it('an abort before the headers rejects as on the SDK path (aborted, nothing sent again); an abort mid-body destroys the body', { timeout: 10_000 }, async () => {
    const { bucket, store } = strictStore();
    strict.state.putObject(bucket, 'a', Buffer.alloc(2 * 1024 * 1024, 1));
    strict.state.failNext({ op: 'GetObject', bucket }, { delayMs: 2000 });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('stop')), 100);
    const started = Date.now();
    await expect(store.get('a', controller.signal)).rejects.toMatchObject({ name: 'StorageError', code: 'STORAGE', message: expect.stringContaining('aborted') });
    expect(Date.now() - started).toBeLessThan(1500);

    const mid = new AbortController();
    const got = await store.get('a', mid.signal);
    const reading = read(got.body);
    mid.abort(new Error('stop'));
    await expect(reading).rejects.toThrow();
    expect(got.body.destroyed).toBe(true);
  });
});

describe('fast transport: a stalled body', () => {
  it('is detected by the store\'s watchdog (NETWORK, stalled: body), and by the client\'s socket timeout for the library\'s client', { timeout: 15_000 }, async () => {
    const proxy = await startFaultProxy({ upstream: s3Endpoint(), seed: 1, stallMs: 5000 });
    onTestFinished(() => proxy.close());
    const client = new S3Client({
      endpoint: proxy.endpoint,
      region: TEST_REGION,
      forcePathStyle: true,
      credentials: { ...TEST_CREDENTIALS },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { socketTimeout: 400 },
      logger: quietLogger,
    });
    onTestFinished(() => client.destroy());
    const bucket = await createTestBucket(client);
    const body = Buffer.alloc(256 * 1024, 7);
    const fast: string[] = [];
    const watched = new S3ObjectStore(client, bucket, { transport: 'auto', ownsClient: true, stallTimeoutMs: 400, onFastRequest: (op) => fast.push(op) });
    await watched.put(put('big', body));

    proxy.addRule({ method: 'GET', key: 'big', fault: 'stall', times: 1 });
    const started = Date.now();
    const e = await read((await watched.get('big')).body).catch((x: unknown) => x);
    expect(e).toMatchObject({ name: 'StorageError', code: 'NETWORK', retryable: true, details: { stalled: 'body' } });
    expect(Date.now() - started).toBeLessThan(3000);

    // The library's own client: no watchdog of the store's, the handler's socket timeout.
    const owned = new S3ObjectStore(client, bucket, { transport: 'auto', ownsClient: true, clientDetectsStalls: true, onFastRequest: (op) => fast.push(op) });
    proxy.addRule({ method: 'GET', key: 'big', fault: 'stall', times: 1 });
    const e2 = await read((await owned.get('big')).body).catch((x: unknown) => x);
    expect(e2).toMatchObject({ name: 'TimeoutError', message: expect.stringContaining('400 ms of inactivity') });
    expect(fast).toEqual(['put', 'get', 'get']);
    expect(proxy.stats().faults.stall).toBe(2);
  });
});

describe('fast transport: an endpoint that never accepts the connection', () => {
  it("the fast attempt honours the handler's connectionTimeout and counts as the first attempt: NETWORK \"could not connect within 0.3 s\" after 3 attempts in all", { timeout: 15_000 }, async () => {
    // a listener whose process never accepts: once its backlog is full, connection
    // attempts get no answer at all (SYNs dropped), like a firewalled host
    const silent = spawn(process.execPath, ['-e', "const s = require('net').createServer().listen(0, '127.0.0.1', 1, () => { console.log(s.address().port); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); });"], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const fillers: Socket[] = [];
    onTestFinished(() => {
      for (const s of fillers) s.destroy();
      silent.kill('SIGKILL');
    });
    const port = Number(await new Promise<string>((resolve) => silent.stdout.setEncoding('utf8').once('data', resolve)));
    for (let i = 0; i < 4; i++) fillers.push(connect(port, '127.0.0.1').on('error', () => {}));
    await new Promise((r) => setTimeout(r, 200));
    const client = new S3Client({
      endpoint: `http://127.0.0.1:${port}`,
      region: TEST_REGION,
      forcePathStyle: true,
      credentials: { ...TEST_CREDENTIALS },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: 3,
      // a socket timeout far above the connection timeout: only the latter ends an attempt in time
      requestHandler: { connectionTimeout: 300, socketTimeout: 10_000 },
      logger: quietLogger,
    });
    onTestFinished(() => client.destroy());
    const fast: string[] = [];
    const store = new S3ObjectStore(client, 'bkt', { transport: 'auto', ownsClient: true, clientDetectsStalls: true, maxAttempts: 3, onFastRequest: (op) => fast.push(op) });
    const started = Date.now();
    const e = await store.get('a').catch((x: unknown) => x);
    const ms = Date.now() - started;
    expect(e).toBeInstanceOf(StorageError);
    expect(e).toMatchObject({ code: 'NETWORK', retryable: true, message: expect.stringContaining('could not connect within 0.3 s') });
    // 3 attempts of 0.3 s and the SDK's backoff (up to 0.1 s, then 0.2 s), not a 4th nor a 10 s socket timeout
    expect(ms).toBeGreaterThanOrEqual(3 * 300 - 20);
    expect(ms).toBeLessThan(3 * 300 + 300 + 1_500);
    expect(fast).toEqual([]);
  });
});
