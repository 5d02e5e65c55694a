// Fault injection: pulls and pushes through test/helpers/fault-proxy.ts, an
// HTTP proxy in front of the run's s3rver that answers 503/500, resets,
// truncates, stalls and corrupts responses.
//
// First one focused test per fault type, then a randomised run of many syncs
// whose safety invariants are checked after every sync (see checkPush /
// checkPull) and summed up in a table at the end.
//
// Longer soak (same file, more rounds, any seed):
//   FAULT_ROUNDS=200 FAULT_SEED=12345 npx vitest run test/faults/fault-injection.test.ts
// FAULT_RATE_SCALE multiplies every fault rate (default 1).
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, unlink } from 'node:fs/promises';
import path from 'node:path';

import { DeleteObjectCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it, onTestFailed, onTestFinished } from 'vitest';

import { S3WorkspaceSync, SyncError, type SyncLogger, type SyncResult } from '../../src/index.js';
import { SMALL_DOWNLOAD_MAX } from '../../src/transfer/transfers.js';
import type { ResolvedOptions } from '../../src/options.js';
import type { Transport } from '../../src/storage/fast-path.js';
import { S3ObjectStore } from '../../src/storage/S3ObjectStore.js';
import { recordCommands } from '../helpers/commands.js';
import { FAULT_TYPES, mulberry32, startFaultProxy, type FaultProxy, type FaultRates, type FaultType } from '../helpers/fault-proxy.js';
import { createTestBucket, listAllKeys, putObjects, s3Endpoint, TEST_REGION } from '../helpers/s3.js';
import { listEntries, tempDir, testClient } from '../helpers/sync-fixture.js';
import { readTree, writeTree } from '../helpers/tree.js';

// Distinctive fake credentials: the proxy drops the Authorization header (s3rver
// only knows its own key id), and these strings must never reach a log line.
const FAKE_ACCESS_KEY_ID = 'AKIAFAULTPROXY7Q3Z9X';
const FAKE_SECRET = 'fAuLtPr0xy/s3cr3t+K3y/DoNotLog/8c1f2e4a7b';
const SOCKET_TIMEOUT_MS = 1_000;
const STALL_MS = 3_000;
const SYNC_DEADLINE_MS = 30_000;
const PREFIX = 'ws/';
const TEMP_SUFFIX = '.s3ws-tmp';

// ------------------------------------------------------------------ helpers

function faultyClient(endpoint: string): S3Client {
  const client = new S3Client({
    endpoint,
    region: TEST_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: FAKE_ACCESS_KEY_ID, secretAccessKey: FAKE_SECRET },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // socketTimeout covers the body too (a stalled body fails); requestTimeout
    // would stop at the response headers, and only warn without throwOnRequestTimeout.
    requestHandler: {
      connectionTimeout: 2_000,
      socketTimeout: SOCKET_TIMEOUT_MS,
      httpAgent: { keepAlive: true, maxSockets: 32 },
    },
  });
  onTestFinished(() => client.destroy());
  return client;
}

interface RecordingLogger extends SyncLogger {
  lines: string[];
}

function recordingLogger(): RecordingLogger {
  const lines: string[] = [];
  const rec =
    (level: string) =>
    (message: string, ...args: unknown[]) => {
      lines.push(`${level} ${message} ${args.map((a) => (a instanceof Error ? `${a.message} ${a.stack}` : JSON.stringify(a))).join(' ')}`);
    };
  return { lines, debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') };
}

const SECRET_PATTERNS: (string | RegExp)[] = [FAKE_SECRET, FAKE_ACCESS_KEY_ID, /authorization/i, /signature=/i, /x-amz-signature/i];

function secretLines(lines: string[]): string[] {
  return lines.filter((line) => SECRET_PATTERNS.some((p) => (typeof p === 'string' ? line.includes(p) : p.test(line))));
}

type Outcome =
  | { kind: 'ok'; result: SyncResult; ms: number }
  | { kind: 'rejected'; error: unknown; ms: number }
  | { kind: 'hang'; ms: number };

/** Run a sync with a deadline: a sync that does not settle in time is a hang. */
async function settle(run: Promise<SyncResult>, deadlineMs = SYNC_DEADLINE_MS): Promise<Outcome> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<'hang'>((resolve) => {
    timer = setTimeout(() => resolve('hang'), deadlineMs);
  });
  try {
    const r = await Promise.race([run, hang]);
    if (r === 'hang') return { kind: 'hang', ms: Date.now() - started };
    return { kind: 'ok', result: r, ms: Date.now() - started };
  } catch (error) {
    return { kind: 'rejected', error, ms: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

async function okResult(run: Promise<SyncResult>, deadlineMs = SYNC_DEADLINE_MS): Promise<SyncResult & { ms: number }> {
  const outcome = await settle(run, deadlineMs);
  if (outcome.kind === 'hang') throw new Error(`sync did not settle within ${deadlineMs} ms`);
  if (outcome.kind === 'rejected') throw outcome.error;
  return { ...outcome.result, ms: outcome.ms };
}

const md5b64 = (b: Buffer) => createHash('md5').update(b).digest('base64');
const same = (a: Buffer | undefined, b: Buffer | undefined) => a !== undefined && b !== undefined && a.equals(b);

/**
 * Every object under the prefix, read directly from s3rver: bytes and `md5chksum`
 * metadata. s3rver can answer a PUT before the data is on disk (rare short read
 * right after it), so an object whose bytes do not match its md5chksum is read
 * again a few times before the caller sees it.
 */
async function readBucket(client: S3Client, bucket: string): Promise<Map<string, { bytes: Buffer; md5chksum: string | undefined }>> {
  const out = new Map<string, { bytes: Buffer; md5chksum: string | undefined }>();
  const keys = await listAllKeys(client, bucket, PREFIX);
  await Promise.all(
    keys.map(async (key) => {
      for (let attempt = 1; ; attempt++) {
        const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const bytes = Buffer.from(await got.Body!.transformToByteArray());
        const md5chksum = got.Metadata?.md5chksum;
        if (md5chksum === undefined || md5chksum === md5b64(bytes) || attempt === 3) {
          out.set(key.slice(PREFIX.length), { bytes, md5chksum });
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }),
  );
  return out;
}

async function tempFilesUnder(root: string): Promise<string[]> {
  return (await listEntries(root)).filter((e) => e.endsWith(TEMP_SUFFIX));
}

interface FocusedSetup {
  proxy: FaultProxy;
  client: S3Client;
  direct: S3Client;
  bucket: string;
  ws: string;
  logger: RecordingLogger;
  sync(workspaceDir?: string): S3WorkspaceSync;
}

async function focused(seed = 1): Promise<FocusedSetup> {
  const proxy = await startFaultProxy({ upstream: s3Endpoint(), seed, stallMs: STALL_MS });
  onTestFinished(() => proxy.close());
  const client = faultyClient(proxy.endpoint);
  const direct = testClient();
  const bucket = await createTestBucket(direct);
  const ws = await tempDir('s3ws-fault-');
  const logger = recordingLogger();
  onTestFinished(() => {
    expect(secretLines(logger.lines)).toEqual([]);
  });
  return {
    proxy,
    client,
    direct,
    bucket,
    ws,
    logger,
    sync: (workspaceDir = ws) =>
      // writers are fresh instances that push over existing objects on purpose: keep-local (a conflict otherwise)
      new S3WorkspaceSync({ bucket, prefix: PREFIX, workspaceDir, s3Client: client, logger, downloadConcurrency: 8, uploadConcurrency: 8, conflictPolicy: 'keep-local' }),
  };
}

const big = (n: number, tag: string) => {
  const b = Buffer.alloc(n);
  const rand = mulberry32(n ^ tag.length);
  for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
  b.write(tag, 0);
  return b;
};

// ------------------------------------------------------------------ focused tests

describe('one fault at a time', () => {
  it('status503: one SlowDown on a GET is retried by the SDK, transparently', async () => {
    const t = await focused();
    await putObjects(t.direct, t.bucket, { 'ws/a.txt': 'a', 'ws/b.txt': 'b' });
    t.proxy.addRule({ method: 'GET', key: 'ws/a.txt', fault: 'status503', times: 1 });
    const log = recordCommands(t.client);
    const result = await okResult(t.sync().pull());
    expect(result.success).toBe(true);
    expect(await readTree(t.ws)).toEqual({ 'a.txt': Buffer.from('a'), 'b.txt': Buffer.from('b') });
    expect(t.proxy.stats().faults.status503).toBe(1);
    expect(log.keys('GetObjectCommand').filter((k) => k === 'ws/a.txt')).toHaveLength(1); // one send, retried inside the SDK
    // list + a (twice) + b + the listing of the library's folder after the pull (no manifest: did a push run meanwhile?)
    expect(t.proxy.stats().byMethod.GET).toBe(5);
  });

  it('status500 on every GET of one key: that file fails with a typed, retryable error after retries; its old content stays, the rest syncs, nothing is deleted', async () => {
    const t = await focused();
    await putObjects(t.direct, t.bucket, { 'ws/a.txt': 'a v1', 'ws/b.txt': 'b v1', 'ws/gone.txt': 'gone' });
    const sync = t.sync();
    expect((await okResult(sync.pull())).success).toBe(true);
    await putObjects(t.direct, t.bucket, { 'ws/a.txt': 'a v2', 'ws/b.txt': 'b v2 longer' });
    await t.direct.send(new DeleteObjectCommand({ Bucket: t.bucket, Key: 'ws/gone.txt' }));

    t.proxy.addRule({ method: 'GET', key: 'ws/a.txt', fault: 'status500' });
    const log = recordCommands(t.client);
    const result = await okResult(sync.pull());
    expect(result.success).toBe(false);
    expect(result.failedFiles).toEqual([expect.objectContaining({ path: 'a.txt', code: 'STORAGE' })]);
    expect(result.skippedFiles).toContainEqual({ path: 'gone.txt', reason: 'not-deleted: a transfer failed in this sync' });
    expect(await readTree(t.ws)).toEqual({
      'a.txt': Buffer.from('a v1'),
      'b.txt': Buffer.from('b v2 longer'),
      'gone.txt': Buffer.from('gone'),
    });
    expect(await tempFilesUnder(t.ws)).toEqual([]);
    // Retried: every send of a.txt made the SDK's 3 attempts (how many sends the
    // library makes on top is its retry policy's business).
    const sends = log.keys('GetObjectCommand').filter((k) => k === 'ws/a.txt').length;
    expect(sends).toBeGreaterThanOrEqual(1);
    expect(t.proxy.stats().faults.status500).toBe(3 * sends);

    t.proxy.clearRules();
    const again = await okResult(sync.pull());
    expect(again.success).toBe(true);
    expect(await readTree(t.ws)).toEqual({ 'a.txt': Buffer.from('a v2'), 'b.txt': Buffer.from('b v2 longer') });
  });

  it('resetMidBody: a download reset mid-body is retried by the library and ends correct; a PUT reset before its answer is retried and the object ends complete', async () => {
    const t = await focused();
    const body = big(1024 * 1024, 'reset');
    await putObjects(t.direct, t.bucket, { 'ws/big.bin': body, 'ws/small.txt': 's' });
    t.proxy.addRule({ method: 'GET', key: 'ws/big.bin', fault: 'resetMidBody', times: 1 });
    const log = recordCommands(t.client);
    const sync = t.sync();
    const result = await okResult(sync.pull());
    expect(result.success).toBe(true);
    expect(t.proxy.stats().faults.resetMidBody).toBe(1);
    expect(log.keys('GetObjectCommand').filter((k) => k === 'ws/big.bin')).toHaveLength(2); // the SDK had resolved: the library retried
    expect((await readTree(t.ws))['big.bin']?.equals(body)).toBe(true);
    expect(await tempFilesUnder(t.ws)).toEqual([]);

    // PUTs: the first two PUTs of each key are reset before the answer, some
    // before forwarding, some after the upstream stored the object.
    const edited = big(300 * 1024, 'edited');
    await writeTree(t.ws, { 'big.bin': edited, 'small.txt': 'small edited', 'new.txt': 'new' });
    for (const key of ['ws/big.bin', 'ws/small.txt', 'ws/new.txt']) t.proxy.addRule({ method: 'PUT', key, fault: 'resetMidBody', times: 2 });
    const pushed = await okResult(sync.push());
    expect(pushed.failedFiles).toEqual([]);
    expect(pushed.success).toBe(true);
    const putResets = t.proxy.stats().events.filter((e) => e.method === 'PUT');
    expect(putResets).toHaveLength(6);
    expect(new Set(putResets.map((e) => e.when))).toEqual(new Set(['before-forwarding', 'after-upstream-answered']));
    const bucket = await readBucket(t.direct, t.bucket);
    expect(bucket.get('big.bin')?.bytes.equals(edited)).toBe(true);
    expect(bucket.get('big.bin')?.md5chksum).toBe(md5b64(edited));
    expect(bucket.get('small.txt')?.bytes.toString()).toBe('small edited');
    expect(bucket.get('new.txt')?.bytes.toString()).toBe('new');
  });

  it('truncate: a body cut short under the full Content-Length is detected and retried; the file ends correct', async () => {
    const t = await focused();
    const body = big(500 * 1024, 'truncate');
    await putObjects(t.direct, t.bucket, { 'ws/t.bin': body });
    t.proxy.addRule({ method: 'GET', key: 'ws/t.bin', fault: 'truncate', times: 2 });
    const log = recordCommands(t.client);
    const result = await okResult(t.sync().pull());
    expect(result.success).toBe(true);
    expect(t.proxy.stats().faults.truncate).toBe(2);
    expect(log.keys('GetObjectCommand')).toEqual(['ws/t.bin', 'ws/t.bin', 'ws/t.bin']);
    expect((await readTree(t.ws))['t.bin']?.equals(body)).toBe(true);
  });

  // Bodies up to SMALL_DOWNLOAD_MAX are read whole then written; larger ones are streamed to disk: both paths.
  it.each([
    ['read whole', 200 * 1024],
    ['streamed', SMALL_DOWNLOAD_MAX + 200 * 1024],
  ])('shortBody (%s): a short body with a matching Content-Length is caught by the MD5 check (IntegrityError), retried, and when it persists reported with the old content intact', async (_, size) => {
    const t = await focused();
    const v1 = big(size, 'short v1');
    const v2 = big(size + 7, 'short v2');
    const sync = t.sync();
    await writeTree(t.ws, { 's.bin': v1 });
    expect((await okResult(sync.push())).success).toBe(true); // objects carry md5chksum
    const writer = t.sync(await tempDir('s3ws-fault-writer-'));
    await writeTree(writer.getWorkspacePath(), { 's.bin': v2 });
    expect((await okResult(writer.push())).success).toBe(true);

    t.proxy.addRule({ method: 'GET', key: 'ws/s.bin', fault: 'shortBody', times: 1 });
    const once = await okResult(t.sync(await tempDir('s3ws-fault-cold-')).pull());
    expect(once.success).toBe(true);
    expect(t.proxy.stats().faults.shortBody).toBe(1);

    t.proxy.addRule({ method: 'GET', key: 'ws/s.bin', fault: 'shortBody' });
    const result = await okResult(sync.pull());
    expect(result.success).toBe(false);
    expect(result.failedFiles).toEqual([expect.objectContaining({ path: 's.bin', code: 'INTEGRITY' })]);
    expect((await readTree(t.ws))['s.bin']?.equals(v1)).toBe(true);
    expect(await tempFilesUnder(t.ws)).toEqual([]);
  });

  it.each([
    ['read whole', 256 * 1024],
    ['streamed', SMALL_DOWNLOAD_MAX + 256 * 1024],
  ])('flipByte (%s): a corrupted byte is caught by the MD5 check and the download retried; the file ends correct', async (_, size) => {
    const t = await focused();
    const body = big(size, 'flip');
    await writeTree(t.ws, { 'f.bin': body, 'g.txt': 'g' });
    expect((await okResult(t.sync().push())).success).toBe(true);
    const cold = await tempDir('s3ws-fault-cold-');
    t.proxy.addRule({ method: 'GET', key: 'ws/f.bin', fault: 'flipByte', times: 2 });
    const log = recordCommands(t.client);
    const result = await okResult(t.sync(cold).pull());
    expect(result.success).toBe(true);
    expect(t.proxy.stats().faults.flipByte).toBe(2);
    expect(log.keys('GetObjectCommand').filter((k) => k === 'ws/f.bin')).toHaveLength(3);
    expect((await readTree(cold))['f.bin']?.equals(body)).toBe(true);
  });

  it('stall: a body that stops mid-way fails on the socket timeout and is retried; the file ends correct (README: "a stalled transfer fails (and is retried)")', async () => {
    const t = await focused();
    const body = big(1024 * 1024, 'stall');
    await putObjects(t.direct, t.bucket, { 'ws/st.bin': body, 'ws/other.txt': 'o' });
    t.proxy.addRule({ method: 'GET', key: 'ws/st.bin', fault: 'stall', times: 1 });
    const log = recordCommands(t.client);
    const result = await okResult(t.sync().pull(), 15_000);
    expect(t.proxy.stats().faults.stall).toBe(1);
    expect(result.failedFiles).toEqual([]);
    expect(result.success).toBe(true);
    expect(result.ms).toBeLessThan(STALL_MS); // the socket timeout ended it, not the proxy dropping the socket
    expect(log.keys('GetObjectCommand').filter((k) => k === 'ws/st.bin')).toEqual(['ws/st.bin', 'ws/st.bin']);
    expect((await readTree(t.ws))['st.bin']?.equals(body)).toBe(true);
  });

  it('stall on every GET of one key: the pull ends within the deadline instead of hanging, that file fails, its old content stays', async () => {
    const t = await focused();
    const v1 = Buffer.from('old local content');
    const sync = t.sync();
    await writeTree(t.ws, { 'st.bin': v1, 'other.txt': 'o1' });
    expect((await okResult(sync.push())).success).toBe(true);
    await putObjects(t.direct, t.bucket, { 'ws/st.bin': big(1024 * 1024, 'stall v2'), 'ws/other.txt': 'o2' });
    t.proxy.addRule({ method: 'GET', key: 'ws/st.bin', fault: 'stall' });
    const result = await okResult(sync.pull(), 20_000);
    const stalls = t.proxy.stats().faults.stall;
    expect(stalls).toBeGreaterThanOrEqual(1);
    expect(result.ms).toBeLessThan(stalls * (SOCKET_TIMEOUT_MS + 2_500)); // each attempt ends on the socket timeout (+ backoff)
    expect(result.success).toBe(false);
    expect(result.failedFiles.map((f) => f.path)).toEqual(['st.bin']);
    expect(await readTree(t.ws)).toEqual({ 'other.txt': Buffer.from('o2'), 'st.bin': v1 });
    expect(await tempFilesUnder(t.ws)).toEqual([]);
  });

  // Regression: a body that stalls mid-way used to be reported without a
  // `code` (the socket timeout's plain TimeoutError). Body failures are now
  // mapped to a typed, retryable StorageError NETWORK naming the key.
  it('stall on every GET of one key: the failure is typed (code NETWORK), like a timeout before the headers', async () => {
    const t = await focused();
    await putObjects(t.direct, t.bucket, { 'ws/st.bin': big(64 * 1024, 'stall typed') });
    t.proxy.addRule({ method: 'GET', key: 'ws/st.bin', fault: 'stall' });
    const result = await okResult(t.sync().pull(), 20_000);
    expect(result.failedFiles).toHaveLength(1);
    expect(['NETWORK', 'ETIMEDOUT']).toContain(result.failedFiles[0]?.code);
  });
});

// ------------------------------------------------------------------ randomised run

const ROUNDS = Number(process.env.FAULT_ROUNDS ?? 20);
// npm test is deterministic (a fixed seed); `npm run soak` draws a new one (FAULT_SEED=random).
const SEED =
  process.env.FAULT_SEED === 'random' ? randomBytes(4).readUInt32LE(0) : process.env.FAULT_SEED !== undefined ? Number(process.env.FAULT_SEED) >>> 0 : 1994025400;
const RATE_SCALE = Number(process.env.FAULT_RATE_SCALE ?? 1);
const RATES: FaultRates = {
  status503: 0.03,
  status500: 0.03,
  resetMidBody: 0.03,
  truncate: 0.02,
  shortBody: 0.015,
  stall: 0.004,
  flipByte: 0.015,
};
const DIRS = ['', 'src', 'src/lib', 'docs', 'data', 'data/deep/er', 'ünï cødé'];
const BIG_SIZES = [200 * 1024, 700 * 1024, 1200 * 1024, 2 * 1024 * 1024];
const SMALL_FILES = 60;

function randomBytesFrom(rand: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i + 4 <= n; i += 4) b.writeUInt32LE(Math.floor(rand() * 2 ** 32), i);
  for (let i = n - (n % 4); i < n; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

type Files = Map<string, Buffer>;
type BucketState = Map<string, { bytes: Buffer; md5chksum: string | undefined }>;

// Checked after every sync (checkPush / checkPull):
//  - bytes lost: size of content that existed before a sync and is gone after
//    it without being replaced by the other side's version or legitimately deleted
//  - unintended deletions: a local file whose object exists, or an object whose
//    file exists, deleted
//  - deleted although a transfer failed: any deletion in a sync with a failed
//    transfer (or a rejected sync)
//  - files outside the workspace: new entries in the workspaces' parent directory
//  - partial/corrupt files at final paths: a local file equal to neither its
//    version before the pull nor the object's
//  - incomplete/corrupt objects: an object whose bytes do not match its
//    md5chksum, or equal neither its version before the push nor the file's
//  - success reported but sides differ / differences not reported: a successful
//    sync leaves both sides equal; a failed one names every path that differs
//    in failedFiles or skippedFiles
//  - push changed the workspace / pull changed the bucket
//  - hangs: a sync that did not settle within SYNC_DEADLINE_MS
//  - secrets in logs: logger lines, result errors and rejection messages/stacks
//    containing the credentials, `Authorization`, `Signature=` or `X-Amz-Signature`
const MUST_BE_ZERO = [
  'bytes lost',
  'unintended deletions',
  'deleted although a transfer failed',
  'files outside the workspace',
  'partial/corrupt files at final paths',
  'incomplete/corrupt objects in the bucket',
  'temp files after a successful pull',
  'success reported but sides differ',
  'differences not reported',
  'push changed the workspace',
  'pull changed the bucket',
  'hangs',
  'secrets in logs',
] as const;
type Violation = (typeof MUST_BE_ZERO)[number];

class Tally {
  readonly zero = new Map<Violation, number>(MUST_BE_ZERO.map((v) => [v, 0]));
  readonly details: string[] = [];
  syncs = 0;
  succeeded = 0;
  transparent = 0;
  withFailedFiles = 0;
  rejectedTyped = 0;
  rejectedUntyped = 0;
  failedFiles = 0;
  failedTyped = 0;
  failedByCode = new Map<string, number>();
  readonly failedExample = new Map<string, string>();
  leftoverTempAfterFailure = 0;
  readonly rejections: string[] = [];
  slowest = 0;

  violation(kind: Violation, detail: string, amount = 1): void {
    this.zero.set(kind, (this.zero.get(kind) ?? 0) + amount);
    if (this.details.length < 40) this.details.push(`${kind}: ${detail}`);
  }
}

// Both transports (see the `transport` option): the default ('auto', the fast path), then
// every request through the SDK over the same faults, in fewer rounds.
const SDK_ROUNDS = Number(process.env.FAULT_SDK_ROUNDS ?? Math.max(4, Math.round(ROUNDS / 5)));
const TRANSPORT_RUNS: Array<[Transport, number]> = [
  ['auto', ROUNDS],
  ['sdk', SDK_ROUNDS],
];

describe.each(TRANSPORT_RUNS)('many random faults (transport %s)', (transport, ROUNDS) => {
  it(
    `${ROUNDS} rounds of edits, push, incremental pull and cold pull through the fault proxy keep every safety invariant, then converge`,
    async () => {
      const started = Date.now();
      onTestFailed(() => {
        console.log(`fault-injection seed: FAULT_SEED=${SEED} FAULT_ROUNDS=${ROUNDS}`);
      });
      const rand = mulberry32(SEED);
      const rates = Object.fromEntries(Object.entries(RATES).map(([k, v]) => [k, v * RATE_SCALE])) as FaultRates;
      const proxy = await startFaultProxy({ upstream: s3Endpoint(), seed: SEED, stallMs: STALL_MS });
      onTestFinished(() => proxy.close());
      const client = faultyClient(proxy.endpoint);
      const direct = testClient();
      const bucket = await createTestBucket(direct);
      const parent = await tempDir('s3ws-faults-');
      const src = path.join(parent, 'src');
      const mirror = path.join(parent, 'mirror');
      const cold = path.join(parent, 'cold');
      await mkdir(src);
      const logger = recordingLogger();
      const extraLines: string[] = []; // result.errors, failure messages, rejections
      // 'auto': the store the library builds, on the fast transport (the client here is a stock one)
      const fastAnswered = { n: 0 };
      const parts =
        transport === 'auto'
          ? { store: (o: ResolvedOptions) => new S3ObjectStore(o.client, o.bucket, { stallTimeoutMs: o.stallTimeoutMs, maxAttempts: o.maxAttempts, transport, onFastRequest: () => fastAnswered.n++ }) }
          : {};
      const make = (workspaceDir: string) =>
        new S3WorkspaceSync(
          {
            bucket,
            prefix: PREFIX,
            workspaceDir,
            s3Client: client,
            logger,
            downloadConcurrency: 16,
            uploadConcurrency: 8,
            transport,
          },
          parts,
        );
      const pusher = make(src);
      const puller = make(mirror);
      const t = new Tally();

      // ---- the source workspace (model + disk)
      const model: Files = new Map();
      let nextId = 0;
      const smallContent = (): Buffer => {
        const n = rand() < 0.05 ? 0 : Math.floor(rand() * 4096) + 1;
        return rand() < 0.5 ? randomBytesFrom(rand, n) : Buffer.from(randomBytesFrom(rand, n).toString('base64').slice(0, n));
      };
      const newPath = (): string => {
        const dir = DIRS[Math.floor(rand() * DIRS.length)]!;
        const name = `f${nextId++}${rand() < 0.2 ? ' copy' : ''}.${rand() < 0.5 ? 'txt' : 'bin'}`;
        return dir ? `${dir}/${name}` : name;
      };
      const put = async (p: string, bytes: Buffer) => {
        model.set(p, bytes);
        await writeTree(src, { [p]: bytes });
      };
      for (let i = 0; i < SMALL_FILES; i++) await put(newPath(), smallContent());
      for (const [i, size] of BIG_SIZES.entries()) await put(`data/big-${i}.bin`, randomBytesFrom(rand, size));

      const mutate = async () => {
        const ops = 3 + Math.floor(rand() * 8);
        for (let i = 0; i < ops; i++) {
          const r = rand();
          const paths = [...model.keys()].sort();
          const pick = () => paths[Math.floor(rand() * paths.length)]!;
          if (r < 0.45 && paths.length > 0) {
            const p = pick();
            const size = model.get(p)!.length;
            await put(p, size > 64 * 1024 ? randomBytesFrom(rand, size + Math.floor(rand() * 1000) - 500) : smallContent());
          } else if (r < 0.75 || paths.length < 10) {
            await put(newPath(), smallContent());
          } else {
            const p = pick();
            if (p.startsWith('data/big-')) continue; // keep the big files around
            model.delete(p);
            await unlink(path.join(src, ...p.split('/')));
          }
        }
      };

      // ---- checks
      const scanSecrets = (lines: string[], where: string) => {
        const bad = secretLines(lines);
        if (bad.length > 0) t.violation('secrets in logs', `${where}: ${bad[0]}`, bad.length);
      };
      const outcomeInfo = (outcome: Outcome, faultsBefore: number, where: string) => {
        t.syncs++;
        t.slowest = Math.max(t.slowest, outcome.ms);
        if (outcome.kind === 'hang') {
          t.violation('hangs', `${where} did not settle within ${SYNC_DEADLINE_MS} ms`);
          return;
        }
        if (outcome.kind === 'rejected') {
          if (outcome.error instanceof SyncError) t.rejectedTyped++;
          else t.rejectedUntyped++;
          const e = outcome.error as Error;
          if (t.rejections.length < 5) t.rejections.push(`${where}: ${(e as { code?: string }).code ?? e?.name}: ${e?.message?.slice(0, 120)}`);
          extraLines.push(`${e?.message} ${e?.stack}`);
          return;
        }
        const r = outcome.result;
        extraLines.push(...r.errors, ...r.failedFiles.map((f) => f.error));
        if (r.success) {
          t.succeeded++;
          if (proxy.stats().totalFaults > faultsBefore) t.transparent++;
        } else t.withFailedFiles++;
        for (const f of r.failedFiles) {
          t.failedFiles++;
          if (f.code !== undefined) t.failedTyped++;
          const code = f.code ?? `(no code) ${f.error.slice(0, 60)}`;
          t.failedByCode.set(code, (t.failedByCode.get(code) ?? 0) + 1);
          if (!t.failedExample.has(code)) t.failedExample.set(code, `${where}: ${f.path}: ${f.error.slice(0, 140)}`);
        }
      };
      const checkParent = async (where: string, expected: string[]) => {
        const entries = (await readdir(parent)).sort();
        const extra = entries.filter((e) => !expected.includes(e));
        if (extra.length > 0) t.violation('files outside the workspace', `${where}: ${extra.join(', ')}`, extra.length);
      };
      const reported = (outcome: Outcome) => {
        const r = outcome.kind === 'ok' ? outcome.result : undefined;
        return {
          result: r,
          paths: new Set([...(r?.failedFiles ?? []), ...(r?.skippedFiles ?? [])].map((f) => f.path)),
          // a rejection counts as a failed sync: nothing it did may be a deletion
          transferFailed: r === undefined || r.failedFiles.some((f) => f.code !== 'DELETE_FAILED'),
        };
      };

      const checkPush = async (where: string, outcome: Outcome, before: BucketState, ws: Files): Promise<BucketState> => {
        const after = await readBucket(direct, bucket);
        const { result, paths, transferFailed } = reported(outcome);
        for (const [p, obj] of after) {
          const old = before.get(p)?.bytes;
          const cur = ws.get(p);
          const md5ok = obj.md5chksum === md5b64(obj.bytes); // every object here was written by the library
          if (!md5ok || !(same(old, obj.bytes) || same(cur, obj.bytes))) {
            t.violation('incomplete/corrupt objects in the bucket', `${where}: ${p} (${obj.bytes.length} bytes, md5chksum ${md5ok ? 'ok' : 'missing or wrong'})`);
            if (old !== undefined && !old.equals(obj.bytes)) t.violation('bytes lost', `${where}: ${p}`, old.length);
          }
        }
        for (const [p, old] of before) {
          if (after.has(p)) continue;
          if (ws.has(p)) {
            t.violation('unintended deletions', `${where}: object ${p} deleted, its file exists`);
            t.violation('bytes lost', `${where}: ${p}`, old.bytes.length);
          } else if (transferFailed) t.violation('deleted although a transfer failed', `${where}: object ${p}`);
        }
        const differing = [...new Set([...after.keys(), ...ws.keys()])].filter((p) => !same(after.get(p)?.bytes, ws.get(p)));
        if (result?.success && differing.length > 0) t.violation('success reported but sides differ', `${where}: ${differing.slice(0, 5).join(', ')}`);
        if (result && !result.success) {
          for (const p of differing) if (!paths.has(p)) t.violation('differences not reported', `${where}: ${p}`);
        }
        // push never writes locally
        const local = await readTree(src);
        const changed = [...new Set([...Object.keys(local), ...ws.keys()])].filter((p) => !same(local[p], ws.get(p)));
        if (changed.length > 0) t.violation('push changed the workspace', `${where}: ${changed.slice(0, 5).join(', ')}`);
        return after;
      };

      const checkPull = async (where: string, outcome: Outcome, dir: string, before: Files, remote: BucketState) => {
        const { result, paths, transferFailed } = reported(outcome);
        const tree = await readTree(dir).catch(() => ({}) as Record<string, Buffer>);
        const after: Files = new Map();
        const temps: string[] = [];
        for (const [p, bytes] of Object.entries(tree)) {
          if (p.endsWith(TEMP_SUFFIX)) temps.push(p);
          else after.set(p, bytes);
        }
        if (temps.length > 0) {
          if (result?.success) t.violation('temp files after a successful pull', `${where}: ${temps.join(', ')}`, temps.length);
          else t.leftoverTempAfterFailure += temps.length;
        }
        for (const [p, bytes] of after) {
          if (!(same(before.get(p), bytes) || same(remote.get(p)?.bytes, bytes))) {
            t.violation('partial/corrupt files at final paths', `${where}: ${p} (${bytes.length} bytes)`);
            const old = before.get(p);
            if (old !== undefined) t.violation('bytes lost', `${where}: ${p}`, old.length);
          }
        }
        for (const [p, old] of before) {
          if (after.has(p)) continue;
          if (remote.has(p)) {
            t.violation('unintended deletions', `${where}: local ${p} deleted, the object exists`);
            t.violation('bytes lost', `${where}: ${p}`, old.length);
          } else if (transferFailed) t.violation('deleted although a transfer failed', `${where}: local ${p}`);
        }
        const differing = [...new Set([...after.keys(), ...remote.keys()])].filter((p) => !same(after.get(p), remote.get(p)?.bytes));
        if (result?.success && differing.length > 0) t.violation('success reported but sides differ', `${where}: ${differing.slice(0, 5).join(', ')}`);
        if (result && !result.success) {
          for (const p of differing) if (!paths.has(p)) t.violation('differences not reported', `${where}: ${p}`);
        }
        // pull never writes remotely
        const keys = await listAllKeys(direct, bucket, PREFIX);
        const expectedKeys = [...remote.keys()].map((p) => PREFIX + p).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
        if (JSON.stringify(keys) !== JSON.stringify(expectedKeys)) t.violation('pull changed the bucket', where);
      };

      const filesOf = async (dir: string): Promise<Files> => {
        const tree = await readTree(dir).catch(() => ({}) as Record<string, Buffer>);
        return new Map(Object.entries(tree).filter(([p]) => !p.endsWith(TEMP_SUFFIX)));
      };

      const runRound = async (label: string): Promise<boolean> => {
        // push
        const before = await readBucket(direct, bucket);
        const ws = new Map(model);
        let faults = proxy.stats().totalFaults;
        const pushed = await settle(pusher.push());
        outcomeInfo(pushed, faults, `${label} push`);
        if (pushed.kind === 'hang') return false;
        const remote = await checkPush(`${label} push`, pushed, before, ws);
        await checkParent(`${label} push`, ['src', 'mirror']);

        // incremental pull (an instance that keeps syncing the same mirror)
        const mirrorBefore = await filesOf(mirror);
        faults = proxy.stats().totalFaults;
        const pulled = await settle(puller.pull());
        outcomeInfo(pulled, faults, `${label} pull`);
        if (pulled.kind === 'hang') return false;
        await checkPull(`${label} pull`, pulled, mirror, mirrorBefore, remote);
        await checkParent(`${label} pull`, ['src', 'mirror']);

        // cold pull (a fresh instance into an empty directory)
        faults = proxy.stats().totalFaults;
        const coldPulled = await settle(make(cold).pull());
        outcomeInfo(coldPulled, faults, `${label} cold pull`);
        if (coldPulled.kind === 'hang') return false;
        await checkPull(`${label} cold pull`, coldPulled, cold, new Map(), remote);
        await checkParent(`${label} cold pull`, ['src', 'mirror', 'cold']);
        await rm(cold, { recursive: true, force: true });
        return true;
      };

      // ---- rounds under faults
      proxy.setRates(rates);
      let completed = 0;
      for (let round = 0; round < ROUNDS; round++) {
        if (round > 0) await mutate();
        if (!(await runRound(`round ${round}`))) break;
        completed++;
      }
      const faultStats = proxy.stats();

      // ---- fault-free convergence
      proxy.setRates({});
      let converged = false;
      if (completed === ROUNDS) {
        const final = await okResult(pusher.push());
        const finalPull = await okResult(puller.pull());
        const finalCold = await okResult(make(cold).pull());
        const bucketFiles = new Map([...(await readBucket(direct, bucket))].map(([p, o]) => [p, o.bytes]));
        const sameAsModel = (files: Files) =>
          files.size === model.size && [...model].every(([p, bytes]) => files.get(p)?.equals(bytes) === true);
        converged =
          final.success &&
          finalPull.success &&
          finalCold.success &&
          sameAsModel(bucketFiles) &&
          sameAsModel(await filesOf(mirror)) &&
          sameAsModel(await filesOf(cold)) &&
          (await tempFilesUnder(mirror)).length === 0 &&
          (await tempFilesUnder(cold)).length === 0;
        extraLines.push(...final.errors, ...finalPull.errors, ...finalCold.errors);
      }
      scanSecrets(logger.lines, 'logger');
      scanSecrets(extraLines, 'results and errors');

      // ---- summary
      const row = (label: string, value: number | string) => `  ${label.padEnd(52)} ${String(value).padStart(8)}`;
      const lines = [
        `fault injection (transport ${transport}): FAULT_SEED=${SEED} FAULT_ROUNDS=${ROUNDS} (completed ${completed}), rate scale ${RATE_SCALE}, ${((Date.now() - started) / 1000).toFixed(1)} s`,
        ...(transport === 'auto' ? [row('answered by the fast path', fastAnswered.n)] : []),
        row('requests through the proxy', faultStats.requests),
        ...Object.entries(faultStats.byMethod).map(([m, n]) => row(`  ${m}`, n)),
        row('faults injected', faultStats.totalFaults),
        ...FAULT_TYPES.map((type: FaultType) => row(`  ${type}`, faultStats.faults[type])),
        row('proxy upstream errors (not injected)', faultStats.upstreamErrors),
        ...faultStats.upstreamErrorDetails.map((d) => `    ${d}`),
        row('syncs', t.syncs),
        row('  succeeded', t.succeeded),
        row('  succeeded transparently despite faults', t.transparent),
        row('  finished with failed files', t.withFailedFiles),
        row('  rejected with a typed SyncError', t.rejectedTyped),
        row('  rejected with an untyped error', t.rejectedUntyped),
        ...t.rejections.map((r) => `      ${r}`),
        row('  slowest sync (ms)', t.slowest),
        row('files reported failed', t.failedFiles),
        row('  with a typed code', t.failedTyped),
        ...[...t.failedByCode].sort().flatMap(([code, n]) => [row(`    ${code}`, n), `        e.g. ${t.failedExample.get(code)}`]),
        row('temp files left by failed pulls (removed next pull)', t.leftoverTempAfterFailure),
        row('fault-free final sync converged', converged ? 'yes' : 'NO'),
        'must be zero:',
        ...MUST_BE_ZERO.map((v) => row(`  ${v}`, t.zero.get(v) ?? 0)),
        ...(t.details.length > 0 ? ['violations:', ...t.details.map((d) => `  ${d}`)] : []),
      ];
      console.log(lines.join('\n'));

      expect(Object.fromEntries(t.zero)).toEqual(Object.fromEntries(MUST_BE_ZERO.map((v) => [v, 0])));
      expect(completed).toBe(ROUNDS);
      expect(converged).toBe(true);
      expect(faultStats.upstreamErrors).toBe(0);
      expect(faultStats.totalFaults).toBeGreaterThan(0);
      if (transport === 'auto') expect(fastAnswered.n).toBeGreaterThan(0);
    },
    Math.max(115_000, ROUNDS * 10_000),
  );
});
