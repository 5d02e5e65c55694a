// Stall detection (stallTimeoutMs): a silent peer never hangs a sync, whatever
// client the library is given.
//
// Most tests use README's R2/MinIO client as is -- a plain S3Client with no
// socket timeout, where the store's own watchdog (src/storage/stall.ts) is the
// only thing between a stalled server and a hang -- with a 300 ms stall
// timeout passed to S3ObjectStore. Pull-level tests give an S3WorkspaceSync
// such a store (see withStore), through the facade's internal store seam.
// The last block checks the other path: a client with its own socket
// idle timeout (as the client the library builds) and `clientDetectsStalls`.
//
// Servers: a local TCP server that accepts and never answers, a slow-but-steady
// HTTP server (test/helpers/stall-servers.ts), and the fault proxy (stall
// fault: part of a body, then silence) in front of s3rver.
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it, onTestFinished } from 'vitest';

import { S3WorkspaceSync, StorageError, SyncAbortedError, silentLogger, type S3WorkspaceSyncOptions } from '../../src/index.js';
import { S3ObjectStore } from '../../src/storage/S3ObjectStore.js';
import { startFaultProxy } from '../helpers/fault-proxy.js';
import { createTestBucket, putObjects, s3Endpoint, TEST_CREDENTIALS, TEST_REGION } from '../helpers/s3.js';
import { startDripServer, startSilentServer } from '../helpers/stall-servers.js';
import { listEntries, tempDir, testClient } from '../helpers/sync-fixture.js';

const STALL_MS = 300;
const ATTEMPTS = 3;
/** Backoff between attempts: full jitter up to 100 ms, then 200 ms. */
const MAX_BACKOFF_MS = 300;
/** Generous slack for a loaded CI machine (process start-up of the SDK, its first request). */
const SLACK_MS = 1_500;

/** README's R2/MinIO client, as the README shows it: no socket timeout of any kind. */
function readmeClient(endpoint: string): S3Client {
  const client = new S3Client({
    region: TEST_REGION,
    endpoint,
    forcePathStyle: true,
    credentials: { ...TEST_CREDENTIALS },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  onTestFinished(() => client.destroy());
  return client;
}

function store(client: S3Client, bucket: string, stallTimeoutMs = STALL_MS): S3ObjectStore {
  return new S3ObjectStore(client, bucket, { stallTimeoutMs, maxAttempts: ATTEMPTS });
}

/**
 * An S3WorkspaceSync whose store has a 300 ms stall timeout, given through
 * the facade's internal store seam; test/integration/stall-option.test.ts
 * does the same through the `stallTimeoutMs` option.
 */
function withStore(options: S3WorkspaceSyncOptions, s: S3ObjectStore): S3WorkspaceSync {
  return new S3WorkspaceSync(options, { store: () => s });
}

async function silent(options: { read?: boolean } = {}): Promise<Awaited<ReturnType<typeof startSilentServer>>> {
  const server = await startSilentServer(options);
  onTestFinished(() => server.close());
  return server;
}

/** Time `p` and return its rejection. */
async function rejection(p: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const t0 = performance.now();
  try {
    await p;
  } catch (error) {
    return { error, ms: performance.now() - t0 };
  }
  throw new Error('expected a rejection');
}

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');

describe('a server that never answers (README client, no socket timeout)', () => {
  it('listing fails with StorageError NETWORK "no data for 0.3 s" after 3 attempts, within the bound', { timeout: 15_000 }, async () => {
    const server = await silent();
    const s = store(readmeClient(server.endpoint), 'bkt');
    const { error, ms } = await rejection((async () => {
      for await (const _page of s.list('ws/')) void _page;
    })());
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'NETWORK', retryable: true, retriedBySdk: true, details: { stalled: 'response', attempts: 3 } });
    expect((error as Error).message).toMatch(/no data for 0\.3 s waiting for the response/);
    expect(server.requests()).toBe(ATTEMPTS);
    expect(ms).toBeGreaterThanOrEqual(ATTEMPTS * STALL_MS - 5);
    expect(ms).toBeLessThan(ATTEMPTS * STALL_MS + MAX_BACKOFF_MS + SLACK_MS);
  });

  it('pull() rejects with StorageError NETWORK (the listing), and no temp file appears', { timeout: 15_000 }, async () => {
    const server = await silent();
    const dir = await tempDir();
    await writeFile(path.join(dir, 'keep.txt'), 'local');
    const client = readmeClient(server.endpoint);
    const sync = withStore({ bucket: 'bkt', prefix: 'ws/', workspaceDir: dir, s3Client: client, logger: silentLogger, persistState: false }, store(client, 'bkt'));
    const { error, ms } = await rejection(sync.pull());
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'NETWORK', retryable: true });
    expect((error as Error).message).toMatch(/no data for 0\.3 s/);
    expect(ms).toBeLessThan(ATTEMPTS * STALL_MS + MAX_BACKOFF_MS + SLACK_MS);
    expect(await listEntries(dir)).toEqual(['keep.txt']);
    expect(await readFile(path.join(dir, 'keep.txt'), 'utf8')).toBe('local');
  });

  it('HEAD and GET fail the same way', { timeout: 15_000 }, async () => {
    const server = await silent();
    const s = store(readmeClient(server.endpoint), 'bkt');
    for (const call of [() => s.head('ws/a.txt'), () => s.get('ws/a.txt'), () => s.getRange('ws/a.txt', 0, 9)]) {
      const { error, ms } = await rejection(call());
      expect(error).toMatchObject({ code: 'NETWORK', retryable: true, details: { stalled: 'response' } });
      expect(ms).toBeLessThan(ATTEMPTS * STALL_MS + MAX_BACKOFF_MS + SLACK_MS);
    }
    expect(server.requests()).toBe(3 * ATTEMPTS);
  });

  it("transport 'auto': a stalled fast attempt of a listing, a GET or a PUT is abandoned and counts as the first of the 3 attempts; the SDK sends the rest and fails typed", { timeout: 15_000 }, async () => {
    const server = await silent();
    const s = new S3ObjectStore(readmeClient(server.endpoint), 'bkt', { stallTimeoutMs: STALL_MS, maxAttempts: ATTEMPTS, transport: 'auto' });
    const body = Buffer.from('hello');
    const calls = [
      async () => {
        for await (const _page of s.list('ws/')) void _page;
      },
      () => s.get('ws/a.txt'),
      () => s.put({ key: 'ws/a.txt', body, size: body.length, md5: md5(body), contentType: 'text/plain', mtimeMs: 1_700_000_000_000 }),
    ];
    for (const call of calls) {
      const before = server.requests();
      const { error, ms } = await rejection(call());
      expect(error).toMatchObject({ code: 'NETWORK', retryable: true, details: { stalled: expect.stringMatching(/^(response|upload)$/), attempts: ATTEMPTS } });
      expect(server.requests() - before).toBe(ATTEMPTS); // the fast attempt, then the SDK's second and third
      expect(ms).toBeGreaterThanOrEqual(ATTEMPTS * STALL_MS - 5);
      expect(ms).toBeLessThan(ATTEMPTS * STALL_MS + MAX_BACKOFF_MS + SLACK_MS);
    }
  });

  it("transport 'auto' with maxAttempts 1: a stalled fast attempt is the only one", { timeout: 15_000 }, async () => {
    const server = await silent();
    const s = new S3ObjectStore(readmeClient(server.endpoint), 'bkt', { stallTimeoutMs: STALL_MS, maxAttempts: 1, transport: 'auto' });
    const { error, ms } = await rejection(s.get('ws/a.txt'));
    expect(error).toMatchObject({ code: 'NETWORK', retryable: true, details: { stalled: 'response', attempts: 1 } });
    expect(server.requests()).toBe(1);
    expect(ms).toBeLessThan(STALL_MS + SLACK_MS);
  });

  it('an upload (Buffer body) fails typed within the bound; so does a multipart part', { timeout: 15_000 }, async () => {
    const server = await silent();
    const s = store(readmeClient(server.endpoint), 'bkt');
    const body = randomBytes(4096);
    const { error, ms } = await rejection(s.put({ key: 'ws/a.bin', body, size: body.length, md5: md5(body), contentType: 'application/octet-stream', mtimeMs: Date.now() }));
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'NETWORK', retryable: true, retriedBySdk: true, details: { stalled: 'upload', attempts: 3 } });
    // 4 KiB adds 4096 / 256 KiB/s = 16 ms to each attempt's allowance
    expect((error as Error).message).toMatch(/no data for 0\.3 s while sending the request body or waiting for the response/);
    expect(ms).toBeLessThan(ATTEMPTS * (STALL_MS + 16) + MAX_BACKOFF_MS + SLACK_MS);
    expect(server.bytes()).toBeGreaterThan(3 * body.length); // the body was accepted every time: the answer never came

    const part = await rejection(s.uploadPart('ws/big.bin', 'upload-1', 1, body, md5(body)));
    expect(part.error).toMatchObject({ code: 'NETWORK', retryable: true, details: { stalled: 'upload' } });
    expect(part.ms).toBeLessThan(ATTEMPTS * (STALL_MS + 16) + MAX_BACKOFF_MS + SLACK_MS);
  });

  it('a streamed upload whose server never answers fails after one attempt, for the transfer to retry', { timeout: 15_000 }, async () => {
    const server = await silent({ read: false });
    const s = store(readmeClient(server.endpoint), 'bkt');
    // (at most 2 MiB, so the SDK sends no `Expect: 100-continue`, which waits up to 6 s before the body)
    const data = randomBytes(1024 * 1024);
    let opened = 0;
    const { error, ms } = await rejection(
      s.put({
        key: 'ws/big.bin',
        body: () => {
          opened++;
          return Readable.from((function* () {
            for (let i = 0; i < data.length; i += 64 * 1024) yield data.subarray(i, i + 64 * 1024);
          })());
        },
        size: data.length,
        md5: md5(data),
        contentType: 'application/octet-stream',
        mtimeMs: Date.now(),
      }),
    );
    expect(error).toBeInstanceOf(StorageError);
    // not retried in the store (a stream cannot be replayed): withRetries() re-opens the file
    expect(error).toMatchObject({ code: 'NETWORK', retryable: true, retriedBySdk: false, details: { stalled: 'upload' } });
    expect(opened).toBe(1);
    // allowance: 300 ms + 1 MiB of possibly unsent bytes at 256 KiB/s = 4.3 s of silence
    expect((error as Error).message).toMatch(/no data for 4\.3 s while sending the request body or waiting for the response/);
    expect(ms).toBeGreaterThanOrEqual(4_300 - 5);
    expect(ms).toBeLessThan(4_300 + SLACK_MS);
  });

  for (const [label, stallTimeoutMs] of [['with the watchdog', STALL_MS], ['without it (stallTimeoutMs 0)', 0]] as const) {
    it(`a streamed upload whose source fails (a file that got shorter) fails at once with that error, ${label}`, { timeout: 15_000 }, async () => {
      const server = await silent();
      const s = store(readmeClient(server.endpoint), 'bkt', stallTimeoutMs);
      let n = 0;
      const shorter = new Error('"big.bin" got shorter while being uploaded');
      const { error, ms } = await rejection(
        s.put({
          key: 'ws/big.bin',
          body: () =>
            new Readable({
              read() {
                if (n++ < 1) this.push(Buffer.alloc(1024 * 1024));
                else this.destroy(shorter);
              },
            }),
          size: 1536 * 1024, // at most 2 MiB: no `Expect: 100-continue` wait before the body
          md5: md5(Buffer.alloc(1536 * 1024)),
          contentType: 'application/octet-stream',
          mtimeMs: Date.now(),
        }),
      );
      // (without the watch, the SDK's pipe() left the request waiting for ever and the error unhandled)
      expect(error).toBe(shorter);
      expect(ms).toBeLessThan(SLACK_MS);
    });
  }

  it("the sync's own signal still aborts: an AbortError-based result, not a stall", { timeout: 15_000 }, async () => {
    const server = await silent();
    const client = readmeClient(server.endpoint);
    const s = store(client, 'bkt', 10_000);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100).unref();
    const { error, ms } = await rejection(s.head('ws/a.txt', ac.signal));
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'STORAGE' });
    expect((error as Error).message).toMatch(/was aborted/);
    expect(ms).toBeLessThan(2_000);

    const dir = await tempDir();
    const sync = withStore({ bucket: 'bkt', prefix: 'ws/', workspaceDir: dir, s3Client: client, logger: silentLogger, persistState: false }, s);
    const { error: aborted } = await rejection(sync.pull({ signal: AbortSignal.timeout(200) }));
    expect(aborted).toBeInstanceOf(SyncAbortedError);
    expect(aborted).toMatchObject({ name: 'AbortError', code: 'ABORTED' });
  });
});

/** A bucket on s3rver with `objects`, a fault proxy in front of it, and a README client on the proxy. */
async function proxied(objects: Record<string, Buffer | string>): Promise<{
  bucket: string;
  direct: S3Client;
  client: S3Client;
  proxy: Awaited<ReturnType<typeof startFaultProxy>>;
}> {
  const direct = testClient();
  const bucket = await createTestBucket(direct);
  await putObjects(direct, bucket, objects);
  // silent for 20 s once stalled: far longer than the 300 ms the library waits
  const proxy = await startFaultProxy({ upstream: s3Endpoint(), seed: 7, stallMs: 20_000 });
  onTestFinished(() => proxy.close());
  return { bucket, direct, client: readmeClient(proxy.endpoint), proxy };
}

function syncFor(bucket: string, client: S3Client, dir: string, s: S3ObjectStore, extra: Record<string, unknown> = {}): S3WorkspaceSync {
  return withStore({ bucket, prefix: 'ws/', workspaceDir: dir, s3Client: client, logger: silentLogger, ...extra }, s);
}

describe('a response body that stalls after the headers (fault proxy, README client)', () => {
  it('the download fails after 3 attempts with a typed error; no temp file, the old file intact', { timeout: 20_000 }, async () => {
    const v1 = randomBytes(2 * 1024 * 1024); // above SMALL_DOWNLOAD_MAX: streamed to a temp file
    const v2 = randomBytes(2 * 1024 * 1024);
    const { bucket, direct, client, proxy } = await proxied({ 'ws/a.bin': v1, 'ws/b.txt': 'bee' });
    const dir = await tempDir();
    const sync = syncFor(bucket, client, dir, store(client, bucket));
    expect((await sync.pull()).success).toBe(true);
    await putObjects(direct, bucket, { 'ws/a.bin': v2 });
    proxy.addRule({ method: 'GET', key: 'ws/a.bin', fault: 'stall' });
    proxy.resetStats();

    const t0 = performance.now();
    const result = await sync.pull();
    const ms = performance.now() - t0;
    expect(result.success).toBe(false);
    expect(result.failedFiles).toHaveLength(1);
    expect(result.failedFiles[0]).toMatchObject({ path: 'a.bin', code: 'NETWORK' });
    expect(result.failedFiles[0]!.error).toMatch(/no data for 0\.3 s while reading the response body/);
    expect(proxy.stats().faults.stall).toBe(ATTEMPTS);
    expect(ms).toBeLessThan(ATTEMPTS * STALL_MS + MAX_BACKOFF_MS + 2 * SLACK_MS);
    expect(md5(await readFile(path.join(dir, 'a.bin')))).toBe(md5(v1));
    expect(await listEntries(dir)).toEqual(['a.bin', 'b.txt']);
  });

  it('a body that stalls once, then flows: the download succeeds on the retry', { timeout: 20_000 }, async () => {
    const data = randomBytes(2 * 1024 * 1024);
    const { bucket, client, proxy } = await proxied({ 'ws/a.bin': data, 'ws/small.txt': 'small' });
    proxy.addRule({ method: 'GET', key: 'ws/a.bin', fault: 'stall', times: 1 });
    proxy.addRule({ method: 'GET', key: 'ws/small.txt', fault: 'stall', times: 1 }); // read whole in memory
    const dir = await tempDir();
    const result = await syncFor(bucket, client, dir, store(client, bucket)).pull();
    expect(result.failedFiles).toEqual([]);
    expect(result.success).toBe(true);
    expect(proxy.stats().faults.stall).toBe(2);
    expect(md5(await readFile(path.join(dir, 'a.bin')))).toBe(md5(data));
    expect(await readFile(path.join(dir, 'small.txt'), 'utf8')).toBe('small');
    expect(await listEntries(dir)).toEqual(['a.bin', 'small.txt']);
  });

  it('a range of a large download that stalls once is fetched again', { timeout: 30_000 }, async () => {
    const MiB = 1024 * 1024;
    const data = randomBytes(12 * MiB);
    const { bucket, client, proxy } = await proxied({ 'ws/big.bin': data });
    proxy.addRule({ method: 'GET', key: 'ws/big.bin', fault: 'stall', times: 1, ranges: true });
    const dir = await tempDir();
    const sync = syncFor(bucket, client, dir, store(client, bucket), { multipartThreshold: 5 * MiB, partSize: 5 * MiB });
    const result = await sync.pull();
    expect(result.failedFiles).toEqual([]);
    expect(proxy.stats().faults.stall).toBe(1);
    // the listing, 3 ranges, the stalled one again, and the listing of the library's folder that
    // checks no push ran meanwhile (the bucket has no manifest: see pipeline/generations.ts)
    expect(proxy.stats().byMethod.GET).toBe(1 + 3 + 1 + 1);
    expect(md5(await readFile(path.join(dir, 'big.bin')))).toBe(md5(data));
  });
});

describe('slow but steady is not a stall', () => {
  it('a body that takes 1.6 s in 16 chunks is read whole with a 300 ms stall timeout', { timeout: 15_000 }, async () => {
    const body = randomBytes(64 * 1024);
    const drip = await startDripServer({ body, chunk: 4096, intervalMs: 100 });
    onTestFinished(() => drip.close());
    const s = store(readmeClient(drip.endpoint), 'bkt');
    const t0 = performance.now();
    const got = await s.get('ws/slow.bin');
    const chunks: Buffer[] = [];
    for await (const chunk of got.body) chunks.push(chunk as Buffer);
    expect(performance.now() - t0).toBeGreaterThan(1_400);
    expect(md5(Buffer.concat(chunks))).toBe(md5(body));
  });

  it('a reader slower than the stall timeout is not a stall (data waiting for the reader)', { timeout: 15_000 }, async () => {
    const direct = testClient();
    const bucket = await createTestBucket(direct);
    const body = randomBytes(512 * 1024);
    await putObjects(direct, bucket, { 'ws/a.bin': body });
    const s = store(readmeClient(s3Endpoint()), bucket);
    const got = await s.get('ws/a.bin');
    const chunks: Buffer[] = [];
    for await (const chunk of got.body) {
      chunks.push(chunk as Buffer);
      if (chunks.length === 1) await sleep(4 * STALL_MS); // the disk is slow, say
    }
    expect(md5(Buffer.concat(chunks))).toBe(md5(body));
  });

  it('an upload slower than the stall timeout but above 256 KiB/s is not cut', { timeout: 15_000 }, async () => {
    const drip = await startDripServer({ body: Buffer.alloc(0), chunk: 32 * 1024, intervalMs: 50 }); // reads ≤ 640 KiB/s
    onTestFinished(() => drip.close());
    const s = store(readmeClient(drip.endpoint), 'bkt');
    const body = randomBytes(1024 * 1024); // about 0.8-1.6 s at that rate; allowed 0.3 + 4 s of silence
    const t0 = performance.now();
    const put = await s.put({ key: 'ws/up.bin', body, size: body.length, md5: md5(body), contentType: 'application/octet-stream', mtimeMs: Date.now() });
    expect(performance.now() - t0).toBeGreaterThan(2 * STALL_MS);
    expect(put.etag).toBe(md5(body));
    expect(drip.requests('PUT')).toBe(1);
    expect(md5(drip.stored.get('ws/up.bin')!)).toBe(md5(body));
  });
});

/**
 * The other path: a client that times out idle sockets itself, as the client
 * the library builds does with `socketTimeout: stallTimeoutMs`; the store adds
 * no watchdog (`clientDetectsStalls`) and the SDK retries the stalled requests.
 */
describe('a client with its own socket idle timeout (clientDetectsStalls)', () => {
  function ownLikeClient(endpoint: string): S3Client {
    const client = new S3Client({
      region: TEST_REGION,
      endpoint,
      forcePathStyle: true,
      credentials: { ...TEST_CREDENTIALS },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: ATTEMPTS,
      requestHandler: { connectionTimeout: STALL_MS, socketTimeout: STALL_MS },
    });
    onTestFinished(() => client.destroy());
    return client;
  }
  const ownStore = (client: S3Client, bucket: string): S3ObjectStore =>
    new S3ObjectStore(client, bucket, { stallTimeoutMs: STALL_MS, maxAttempts: ATTEMPTS, clientDetectsStalls: true });

  it('a silent server: the listing fails NETWORK "no data for 0.3 s" after the SDK\'s 3 attempts', { timeout: 15_000 }, async () => {
    const server = await silent();
    const s = ownStore(ownLikeClient(server.endpoint), 'bkt');
    const { error, ms } = await rejection((async () => {
      for await (const _page of s.list('ws/')) void _page;
    })());
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'NETWORK', retryable: true, retriedBySdk: true });
    expect((error as Error).message).toMatch(/no data for 0\.3 s \(socket idle timeout\)/);
    expect(server.requests()).toBe(ATTEMPTS);
    expect(ms).toBeLessThan(ATTEMPTS * STALL_MS + MAX_BACKOFF_MS + SLACK_MS);
  });

  it('a stalled body: the download fails after 3 attempts with the same words', { timeout: 20_000 }, async () => {
    const { bucket, proxy } = await proxied({ 'ws/a.bin': randomBytes(2 * 1024 * 1024) });
    proxy.addRule({ method: 'GET', key: 'ws/a.bin', fault: 'stall' });
    const client = ownLikeClient(proxy.endpoint);
    const dir = await tempDir();
    const result = await syncFor(bucket, client, dir, ownStore(client, bucket)).pull();
    expect(result.failedFiles).toHaveLength(1);
    expect(result.failedFiles[0]).toMatchObject({ path: 'a.bin', code: 'NETWORK' });
    expect(result.failedFiles[0]!.error).toMatch(/no data for 0\.3 s \(socket idle timeout\) while reading the response body/);
    expect(proxy.stats().faults.stall).toBe(ATTEMPTS);
    expect(await listEntries(dir)).toEqual([]);
  });
});

describe('no watchdog keeps the process alive', () => {
  it('a process that stalled, succeeded, abandoned a body and aborted a request under 60 s stall timeouts exits on its own', { timeout: 30_000 }, async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/stall-child.ts'], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let doneAt: number | undefined;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (doneAt === undefined && stdout.includes('"done":true')) doneAt = performance.now();
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const deadline = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const exit = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    clearTimeout(deadline);
    const exitedAt = performance.now();
    expect(exit, `stderr: ${stderr}`).toBe(0);
    expect(JSON.parse(stdout.trim())).toEqual({ done: true, codes: ['NETWORK', 'STORAGE'] });
    expect(exitedAt - doneAt!).toBeLessThan(2_000); // nothing left running once everything was closed
  });
});
