// Generations end to end over HTTP (real SDK, S3ObjectStore) against the
// strict S3 double, which enforces conditional writes and reads as AWS does:
// the committed manifest, the push lease, pulls that see one whole version
// while a push runs, a crashed pusher's lease, a lost commit race, the
// trustManifest pull, and what each costs in requests.
import { createHash } from 'node:crypto';
import { chmod, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

import { S3WorkspaceSync, SyncError, silentLogger, type S3WorkspaceSyncOptions, type SyncLogger } from '../../src/index.js';
import { decodeManifest, encodeLease, type Manifest } from '../../src/core/manifest.js';
import type { LeaseTiming } from '../../src/pipeline/generations.js';
import { recordCommands } from '../helpers/commands.js';
import { startStrictS3, type RequestRecord, type StrictS3 } from '../helpers/strict-s3.js';
import { tempDir } from '../helpers/sync-fixture.js';

const PREFIX = 'ws/';
const MANIFEST_KEY = `${PREFIX}.s3-workspace-sync/manifest.json`;
const LEASE_KEY = `${PREFIX}.s3-workspace-sync/push-lease.json`;
const quietSdkLogger = { trace: () => {}, debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };
/** Short lease timings so that expiry and polling fit in a test. */
const FAST: LeaseTiming = { leaseMs: 400, renewMs: 100, pollMs: 20 };

let s3: StrictS3;
let bucketSeq = 0;

beforeAll(async () => {
  s3 = await startStrictS3();
});
afterAll(async () => {
  await s3.close();
});
afterEach(() => {
  expect(s3.state.internalErrors).toEqual([]);
  s3.state.clearFaults();
});

function strictClient(): S3Client {
  const client = new S3Client({
    endpoint: s3.endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    logger: quietSdkLogger,
  });
  onTestFinished(() => client.destroy());
  return client;
}

function bucketWith(files: Record<string, string> = {}): string {
  const bucket = `gens-${++bucketSeq}`;
  s3.state.createBucket(bucket);
  for (const [rel, body] of Object.entries(files)) s3.state.putObject(bucket, PREFIX + rel, body);
  return bucket;
}

interface Instance {
  ws: string;
  client: S3Client;
  sync: S3WorkspaceSync;
  lines: string[];
}

async function instance(bucket: string, extra: Partial<S3WorkspaceSyncOptions> = {}, timing: LeaseTiming = FAST): Promise<Instance> {
  const ws = await tempDir('s3ws-gens-');
  const client = strictClient();
  const lines: string[] = [];
  const logger: SyncLogger = { ...silentLogger, info: (m: string) => lines.push(`info ${m}`), warn: (m: string) => lines.push(`warn ${m}`) };
  const sync = new S3WorkspaceSync({ bucket, prefix: PREFIX, workspaceDir: ws, s3Client: client, logger, persistState: false, ...extra }, { leaseTiming: timing });
  onTestFinished(() => sync.destroy());
  return { ws, client, sync, lines };
}

function committed(bucket: string): Manifest {
  const obj = s3.state.getObject(bucket, MANIFEST_KEY);
  expect(obj, 'a manifest was committed').toBeDefined();
  return decodeManifest(obj!.body);
}

async function readWs(ws: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(ws)).sort()) {
    if (name.startsWith('.s3-workspace-sync')) continue;
    out[name] = (await readFile(path.join(ws, name))).toString();
  }
  return out;
}

const lastSeq = (): number => s3.state.requests.at(-1)?.seq ?? 0;
const since = (bucket: string, from: number): RequestRecord[] => s3.state.requests.filter((r) => r.seq > from && r.bucket === bucket);

/** Plant a lease held by a process that is not running (as a crash leaves it). */
function plantLease(bucket: string, expiresInMs: number): void {
  const body = encodeLease({
    token: 'crashed',
    writer: { host: 'gone-host', pid: 4242, instance: 'gone' },
    baseGeneration: 1,
    startedAt: new Date().toISOString(),
    expiresAt: Date.now() + expiresInMs,
  });
  s3.state.putObject(bucket, LEASE_KEY, body);
}

describe('the committed manifest', () => {
  it('a push commits every path with size, MD5, ETag, mtime and mode, one generation per push that changes something, and releases its lease', { timeout: 20_000 }, async () => {
    const bucket = bucketWith();
    const a = await instance(bucket);
    await writeFile(path.join(a.ws, 'a.txt'), 'alpha');
    await writeFile(path.join(a.ws, 'b.txt'), 'beta');
    await chmod(path.join(a.ws, 'b.txt'), 0o755);
    expect(await a.sync.push()).toMatchObject({ success: true, uploadedFiles: 2 });
    const g1 = committed(bucket);
    expect(g1.generation).toBe(1);
    expect([...g1.files.keys()]).toEqual(['a.txt', 'b.txt']);
    const a1 = g1.files.get('a.txt')!;
    expect(a1).toMatchObject({ size: 5, etag: s3.state.getObject(bucket, `${PREFIX}a.txt`)!.etag, md5: '2c1743a391305fbf367df8e4f069f9f9' });
    expect(typeof a1.mtimeMs).toBe('number');
    expect(a1.mode).toBe(0o666 & ~process.umask()); // writeFile's default
    expect(g1.files.get('b.txt')!.mode).toBe(0o755);
    expect(g1.lease).toEqual(expect.any(String));
    expect(s3.state.getObject(bucket, LEASE_KEY)).toBeUndefined(); // released

    // a no-op push commits nothing
    expect(await a.sync.push()).toMatchObject({ success: true, uploadedFiles: 0 });
    expect(committed(bucket).generation).toBe(1);

    await rm(path.join(a.ws, 'b.txt'));
    await writeFile(path.join(a.ws, 'c.txt'), 'gamma');
    expect(await a.sync.push()).toMatchObject({ success: true, uploadedFiles: 1, deletedFiles: 1 });
    const g2 = committed(bucket);
    expect(g2.generation).toBe(2);
    expect([...g2.files.keys()]).toEqual(['a.txt', 'c.txt']);
    expect(g2.files.get('a.txt')).toEqual(a1);
  });

  it('a commit that loses the race (another push committed first) rebases: both pushes are in the manifest', { timeout: 20_000 }, async () => {
    const bucket = bucketWith({ 'x.txt': 'x1', 'y.txt': 'y1' });
    const a = await instance(bucket);
    const b = await instance(bucket);
    await a.sync.pull();
    await b.sync.pull();
    await writeFile(path.join(a.ws, 'x.txt'), 'x2 by A');
    expect(await a.sync.push()).toMatchObject({ success: true, uploadedFiles: 1 });
    const first = committed(bucket);
    // B has not seen A's commit: its commit (If-None-Match: *, or If-Match its old ETag) fails, then it rebases
    await writeFile(path.join(b.ws, 'y.txt'), 'y2 by B');
    const from = lastSeq();
    expect(await b.sync.push()).toMatchObject({ success: true, uploadedFiles: 1, conflicts: [] });
    const manifestPuts = since(bucket, from).filter((r) => r.op === 'PutObject' && r.key === MANIFEST_KEY);
    expect(manifestPuts.map((r) => r.status)).toEqual([412, 200]);
    const rebased = committed(bucket);
    expect(rebased.generation).toBe(first.generation + 1);
    expect(rebased.files.get('x.txt')!.etag).toBe(s3.state.getObject(bucket, `${PREFIX}x.txt`)!.etag);
    expect(rebased.files.get('y.txt')!.etag).toBe(s3.state.getObject(bucket, `${PREFIX}y.txt`)!.etag);
    expect(rebased.files.get('x.txt')!.etag).not.toBe(first.files.get('y.txt')!.etag);
  });

  it('a commit that fails (server error) is reported as MANIFEST_NOT_COMMITTED; the next push commits those changes', { timeout: 20_000 }, async () => {
    const bucket = bucketWith();
    const a = await instance(bucket, { maxAttempts: 1 });
    await writeFile(path.join(a.ws, 'a.txt'), 'alpha');
    s3.state.failAlways({ op: 'PutObject', key: MANIFEST_KEY }, { status: 403, code: 'AccessDenied' });
    const first = await a.sync.push();
    expect(first).toMatchObject({ success: false, uploadedFiles: 1 });
    expect(first.failedFiles).toEqual([expect.objectContaining({ code: 'MANIFEST_NOT_COMMITTED' })]);
    expect(s3.state.getObject(bucket, `${PREFIX}a.txt`)).toBeDefined(); // the file itself is in the bucket
    expect(s3.state.getObject(bucket, LEASE_KEY)).toBeUndefined(); // and the lease released
    s3.state.clearFaults();
    // nothing else to push: the uncommitted changes alone make it commit
    expect(await a.sync.push()).toMatchObject({ success: true, uploadedFiles: 0, failedFiles: [] });
    expect([...committed(bucket).files.keys()]).toEqual(['a.txt']);
  });
});

describe('verify() and the manifest', () => {
  it('reports objects the manifest misses (another tool), names that are gone, and replaced objects; ok stays about the workspace', { timeout: 20_000 }, async () => {
    const bucket = bucketWith();
    const a = await instance(bucket);
    for (const n of ['keep.txt', 'gone.txt', 'replaced.txt']) await writeFile(path.join(a.ws, n), `v1 ${n}`);
    await a.sync.push();
    expect((await a.sync.verify()).manifest).toMatchObject({ generation: 1, ok: true, missing: [], extra: [], different: [] });
    s3.state.putObject(bucket, `${PREFIX}backend.txt`, 'from the backend');
    s3.state.deleteObject(bucket, `${PREFIX}gone.txt`);
    s3.state.putObject(bucket, `${PREFIX}replaced.txt`, 'v2 replaced.txt');
    const report = await a.sync.verify();
    expect(report.manifest).toEqual({ generation: 1, committedAt: expect.any(String), ok: false, missing: ['backend.txt'], extra: ['gone.txt'], different: ['replaced.txt'] });
    expect(report.ok).toBe(false); // the workspace differs from the bucket too
    expect(report.missingLocally.map((m) => m.path)).toEqual(['backend.txt']);
  });
});

describe('pulls see one whole version', () => {
  it('pulls running while a slow push replaces 12 files each return all-old or all-new, never a mix', { timeout: 60_000 }, async () => {
    const names = Array.from({ length: 12 }, (_, i) => `f${String(i).padStart(2, '0')}.txt`);
    const bucket = bucketWith();
    const a = await instance(bucket, { uploadConcurrency: 2 });
    for (const n of names) await writeFile(path.join(a.ws, n), `v1 ${n}`);
    expect(await a.sync.push()).toMatchObject({ success: true, uploadedFiles: 12 });

    for (const n of names) await writeFile(path.join(a.ws, n), `v2 ${n} (longer)`);
    // each upload of a workspace file takes 100 ms: the push runs ~600 ms, longer than the lease (400 ms): it is renewed
    s3.state.failAlways({ op: 'PutObject', key: /^ws\/f\d+\.txt$/ }, { delayMs: 100 });
    const readers = await Promise.all([instance(bucket), instance(bucket)]);
    let pushing = true;
    const push = a.sync.push().finally(() => {
      pushing = false;
    });
    const seen: string[] = [];
    const loops = readers.map(async (r, i) => {
      // the second reader starts mid-push
      if (i === 1) await new Promise((res) => setTimeout(res, 120));
      do {
        const result = await r.sync.pull();
        if (!result.success) continue;
        const tree = await readWs(r.ws);
        const versions = new Set(Object.values(tree).map((body) => body.slice(0, 2)));
        seen.push([...versions].join('+'));
        expect(Object.keys(tree)).toEqual(names);
        expect(versions.size, `one version per successful pull, got ${JSON.stringify(tree)}`).toBe(1);
      } while (pushing);
    });
    expect(await push).toMatchObject({ success: true, uploadedFiles: 12 });
    await Promise.all(loops);
    expect(seen.length).toBeGreaterThan(0);
    // at least one pull met the push and waited for its commit
    expect(readers.some((r) => r.lines.some((l) => l.includes('a push is in progress') || l.includes('changed during the pull')))).toBe(true);
    // and after the push, every reader holds the new generation
    for (const r of readers) {
      expect(await r.sync.pull()).toMatchObject({ success: true });
      expect(new Set(Object.values(await readWs(r.ws)).map((b) => b.slice(0, 2)))).toEqual(new Set(['v2']));
    }
  });

  it('an object replaced during its download (412 on If-Match) makes the pull run again: it returns the new bytes', { timeout: 20_000 }, async () => {
    const bucket = bucketWith({ 'a.txt': 'a1', 'b.txt': 'b1' });
    const r = await instance(bucket);
    let replaced = false;
    recordCommands(r.client, (name, input) => {
      if (name === 'GetObjectCommand' && input.Key === `${PREFIX}b.txt` && !replaced) {
        replaced = true;
        s3.state.putObject(bucket, `${PREFIX}b.txt`, 'b2 (replaced)'); // another tool, mid-pull
      }
    });
    const from = lastSeq();
    const result = await r.sync.pull();
    expect(result).toMatchObject({ success: true, failedFiles: [] });
    expect(await readWs(r.ws)).toEqual({ 'a.txt': 'a1', 'b.txt': 'b2 (replaced)' });
    const gets = since(bucket, from).filter((x) => x.op === 'GetObject' && x.key === `${PREFIX}b.txt`);
    expect(gets.map((x) => x.status)).toEqual([412, 200]);
    expect(gets[0]!.headers['if-match']).toBe(`"${createHash('md5').update('b1').digest('hex')}"`); // the version listed
  });

  it('a bucket that changes under every round: after 4 rounds the pull reports CHANGED_DURING_PULL (success false), nothing mixed silently', { timeout: 20_000 }, async () => {
    const bucket = bucketWith({ 'a.txt': 'a1', 'b.txt': 'b1' });
    const r = await instance(bucket);
    let n = 0;
    recordCommands(r.client, (name, input) => {
      // another tool replaces b.txt just before every download of it
      if (name === 'GetObjectCommand' && input.Key === `${PREFIX}b.txt`) s3.state.putObject(bucket, `${PREFIX}b.txt`, `b${++n + 1}`);
    });
    const result = await r.sync.pull();
    expect(result.success).toBe(false);
    expect(result.failedFiles.map((f) => f.code).sort()).toEqual(['CHANGED_DURING_PULL', 'PRECONDITION_FAILED']);
    expect(n).toBe(4); // one download attempt of b.txt per round
    expect((await readWs(r.ws))['a.txt']).toBe('a1');
    expect((await readWs(r.ws))['b.txt']).toBeUndefined(); // never a version the pull did not verify
  });

  it("a crashed pusher's lease: a pull waits until it expires, then pulls; a push takes it over (with a warning)", { timeout: 20_000 }, async () => {
    const bucket = bucketWith({ 'a.txt': 'a1' });
    plantLease(bucket, 500);
    const r = await instance(bucket);
    const t0 = Date.now();
    const from = lastSeq();
    expect(await r.sync.pull()).toMatchObject({ success: true, downloadedFiles: 1 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
    // waiting costs one listing of the library's folder per poll (every 20 ms here); the lease itself is read
    // only when the pull lists it, when the wait begins, at its expiry, and when the pull lists again: 4 times
    const during = since(bucket, from);
    expect(during.filter((x) => x.op === 'ListObjectsV2' && x.query.prefix === `${PREFIX}.s3-workspace-sync/`).length).toBeGreaterThanOrEqual(5);
    expect(during.filter((x) => x.op === 'GetObject' && x.key === LEASE_KEY).length).toBeLessThanOrEqual(4);
    expect(r.lines.some((l) => l.includes('a push is in progress'))).toBe(true);

    plantLease(bucket, 300);
    const w = await instance(bucket);
    await writeFile(path.join(w.ws, 'new.txt'), 'n');
    expect(await w.sync.push()).toMatchObject({ success: true, uploadedFiles: 1 });
    expect(w.lines.some((l) => l.startsWith('warn Took over an expired push lease of gone-host (pid 4242)'))).toBe(true);
    expect(s3.state.getObject(bucket, LEASE_KEY)).toBeUndefined();
  });

  it('a live lease past waitForPushMs: the pull rejects with PUSH_IN_PROGRESS and changes nothing', { timeout: 20_000 }, async () => {
    const bucket = bucketWith({ 'a.txt': 'a1' });
    plantLease(bucket, 60_000);
    const r = await instance(bucket, { waitForPushMs: 150 });
    await writeFile(path.join(r.ws, 'local.txt'), 'mine');
    const error = await r.sync.pull().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SyncError);
    expect(error).toMatchObject({ code: 'PUSH_IN_PROGRESS', message: expect.stringContaining('gone-host (pid 4242') });
    expect(await readWs(r.ws)).toEqual({ 'local.txt': 'mine' });
    // a push waits the same way, and changes nothing either
    const pushed = await r.sync.push().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(pushed).toMatchObject({ code: 'PUSH_IN_PROGRESS' });
    expect(s3.state.getObject(bucket, `${PREFIX}local.txt`)).toBeUndefined();
  });
});

describe('trustManifest and request cost', () => {
  it('trustManifest: a no-op pull is one conditional GET (304); committed changes arrive; uploads by other tools are not seen until committed', { timeout: 20_000 }, async () => {
    const bucket = bucketWith();
    const a = await instance(bucket);
    await writeFile(path.join(a.ws, 'a.txt'), 'a1');
    await a.sync.push();
    const r = await instance(bucket, { trustManifest: true });
    expect(await r.sync.pull()).toMatchObject({ success: true, downloadedFiles: 1 });

    let from = lastSeq();
    expect(await r.sync.pull()).toMatchObject({ success: true, downloadedFiles: 0 });
    const idle = since(bucket, from);
    expect(idle.map((x) => [x.op, x.key, x.status])).toEqual([['GetObject', MANIFEST_KEY, 304]]);

    await writeFile(path.join(a.ws, 'b.txt'), 'b1');
    await a.sync.push();
    s3.state.putObject(bucket, `${PREFIX}other-tool.txt`, 'not committed');
    from = lastSeq();
    expect(await r.sync.pull()).toMatchObject({ success: true, downloadedFiles: 1 });
    expect(since(bucket, from).filter((x) => x.op === 'ListObjectsV2')).toEqual([]);
    expect(await readWs(r.ws)).toEqual({ 'a.txt': 'a1', 'b.txt': 'b1' });
    // the default pull lists, and sees it
    const d = await instance(bucket);
    await d.sync.pull();
    expect(await readWs(d.ws)).toEqual({ 'a.txt': 'a1', 'b.txt': 'b1', 'other-tool.txt': 'not committed' });
  });

  it("trustManifest: the manifest's MD5s recognise identical files without a HEAD, multipart objects included", { timeout: 30_000 }, async () => {
    const bucket = bucketWith();
    const big = Buffer.alloc(11 * 1024 * 1024, 7);
    const a = await instance(bucket, { multipartThreshold: 5 * 1024 * 1024, partSize: 5 * 1024 * 1024 });
    await writeFile(path.join(a.ws, 'big.bin'), big);
    await writeFile(path.join(a.ws, 'small.txt'), 'small');
    expect(await a.sync.push()).toMatchObject({ success: true, uploadedFiles: 2 });
    expect(s3.state.getObject(bucket, `${PREFIX}big.bin`)!.etag).toMatch(/-3$/); // a multipart ETag: not an MD5

    // a fresh instance whose workspace already holds the same bytes
    const r = await instance(bucket, { trustManifest: true, multipartThreshold: 5 * 1024 * 1024 });
    await writeFile(path.join(r.ws, 'big.bin'), big);
    await writeFile(path.join(r.ws, 'small.txt'), 'small');
    const from = lastSeq();
    expect(await r.sync.pull()).toMatchObject({ success: true, downloadedFiles: 0, deletedFiles: 0 });
    expect(since(bucket, from).map((x) => `${x.op} ${x.key}`)).toEqual([`GetObject ${MANIFEST_KEY}`]);
  });

  it('cost (W1-style, warm): a small-change push = one conditional write per change + 3 (lease, manifest, lease release); a no-op pull = 1 LIST; a no-op push = 0', { timeout: 20_000 }, async () => {
    const files: Record<string, string> = { 'mod.md': 'm1', 'gone.md': 'g1' };
    for (let i = 0; i < 10; i++) files[`same${i}.md`] = `unchanged ${i}`;
    const bucket = bucketWith(files);
    const w = await instance(bucket);
    expect(await w.sync.pull()).toMatchObject({ success: true, downloadedFiles: 12 });
    expect(await w.sync.checkConditionalWrites()).toBe('enforced'); // the once-per-process probe, out of the count
    await writeFile(path.join(w.ws, 'warmup.md'), 'w'); // the first push also writes the first manifest (it lists once)
    await w.sync.push();

    await writeFile(path.join(w.ws, 'mod.md'), 'm2');
    await writeFile(path.join(w.ws, 'new.md'), 'n1');
    await rm(path.join(w.ws, 'gone.md'));
    let from = lastSeq();
    expect(await w.sync.push()).toMatchObject({ success: true, uploadedFiles: 2, deletedFiles: 1 });
    const sent = since(bucket, from).map((x) => `${x.op} ${x.key ?? ''}`.trim());
    expect(sent.sort()).toEqual(
      [
        `PutObject ${LEASE_KEY}`,
        'PutObject ws/mod.md',
        'PutObject ws/new.md',
        'DeleteObjects',
        `PutObject ${MANIFEST_KEY}`,
        'DeleteObjects',
      ].sort(),
    );

    from = lastSeq();
    expect(await w.sync.push()).toMatchObject({ success: true, uploadedFiles: 0 });
    expect(since(bucket, from)).toEqual([]);

    from = lastSeq();
    expect(await w.sync.pull()).toMatchObject({ success: true, downloadedFiles: 0, deletedFiles: 0 });
    expect(since(bucket, from).map((x) => x.op)).toEqual(['ListObjectsV2']);

    // another tool's upload: the listing is not the manifest, so one more listing (of the library's folder) checks for pushes
    s3.state.putObject(bucket, `${PREFIX}from-backend.txt`, 'b');
    from = lastSeq();
    expect(await w.sync.pull()).toMatchObject({ success: true, downloadedFiles: 1 });
    expect(since(bucket, from).map((x) => x.op)).toEqual(['ListObjectsV2', 'GetObject', 'ListObjectsV2']);
  });
});

describe("transport: 'auto' (the default) through the facade", () => {
  it("downloads and small uploads skip the SDK (no SDK user-agent on the wire); the pushes stay conditional and the pull verifies the same bytes; 'sdk' sends them through the SDK", { timeout: 20_000 }, async () => {
    const sdkAgent = (r: RequestRecord): boolean => JSON.stringify(r.headers).includes('aws-sdk-js');
    const bucket = bucketWith();
    const a = await instance(bucket); // the default
    await writeFile(path.join(a.ws, 'a.txt'), 'alpha');
    await writeFile(path.join(a.ws, 'b.txt'), 'beta');
    let from = lastSeq();
    expect(await a.sync.push()).toMatchObject({ success: true, uploadedFiles: 2 });
    const puts = since(bucket, from).filter((r) => r.op === 'PutObject' && !r.key!.includes('.s3-workspace-sync/'));
    expect(puts).toHaveLength(2);
    expect(puts.filter(sdkAgent)).toEqual([]);
    expect(puts.every((r) => r.headers['if-none-match'] === '*')).toBe(true); // still conditional

    const r = await instance(bucket, { transport: 'auto' });
    from = lastSeq();
    expect(await r.sync.pull()).toMatchObject({ success: true, downloadedFiles: 2 });
    const gets = since(bucket, from).filter((x) => x.op === 'GetObject' && !x.key!.includes('.s3-workspace-sync/'));
    expect(gets).toHaveLength(2);
    expect(gets.filter(sdkAgent)).toEqual([]);
    expect(await readWs(r.ws)).toEqual({ 'a.txt': 'alpha', 'b.txt': 'beta' });

    // middleware added to the client afterwards is seen from the next operation on: the GETs go through the SDK
    const seen: string[] = [];
    r.client.middlewareStack.add((next, context) => (args) => (seen.push(String(context.commandName)), next(args)), { step: 'initialize', name: 'addedLater' });
    await writeFile(path.join(a.ws, 'a.txt'), 'alpha 2');
    expect(await a.sync.push()).toMatchObject({ success: true, uploadedFiles: 1 });
    from = lastSeq();
    expect(await r.sync.pull()).toMatchObject({ success: true, downloadedFiles: 1 });
    const later = since(bucket, from).filter((x) => x.op === 'GetObject' && !x.key!.includes('.s3-workspace-sync/'));
    expect(later).toHaveLength(1);
    expect(later.every(sdkAgent)).toBe(true);
    expect(seen).toContain('GetObjectCommand');

    // 'sdk' goes through the SDK
    const d = await instance(bucket, { transport: 'sdk' });
    from = lastSeq();
    await d.sync.pull();
    expect(since(bucket, from).filter((x) => x.op === 'GetObject' && !x.key!.includes('.s3-workspace-sync/')).every(sdkAgent)).toBe(true);
  });
});
