// Several writers, end to end over HTTP: S3WorkspaceSync instances on one
// prefix, each with its own workspace and its own real S3Client (so the real
// SDK and S3ObjectStore run), against ONE strict S3 double
// (test/helpers/strict-s3.ts) that enforces conditional writes as AWS does:
// If-Match / If-None-Match on PutObject and CompleteMultipartUpload, If-Match
// per key in DeleteObjects, 409 ConditionalRequestConflict on demand.
// The same scenarios on the in-memory store: test/pipeline/memory-pipeline.test.ts
// ('several writers'). The last test runs scenario 1 on s3rver, which ignores
// conditional writes: there the last writer wins (a server gap, documented in
// the README's "Several writers" limits, not a library bug).
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

import { S3WorkspaceSync, silentLogger, type S3WorkspaceSyncOptions } from '../../src/index.js';
import { isLibrary, recordCommands } from '../helpers/commands.js';
import { createTestBucket, getObjectBytes, putObjects } from '../helpers/s3.js';
import { startStrictS3, type RequestRecord, type StrictS3 } from '../helpers/strict-s3.js';
import { tempDir, testClient } from '../helpers/sync-fixture.js';

const PREFIX = 'ws/';
const MiB = 1024 * 1024;
const md5 = (data: string | Buffer): string => createHash('md5').update(data).digest('hex');

/** The SDK warns on the console about an aborted stream upload (the aborted multipart of scenario 5). */
const quietSdkLogger = { trace: () => {}, debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

let s3: StrictS3;
let bucketSeq = 0;

beforeAll(async () => {
  // The double's default minPartSize (5 MiB, as S3): the library never makes smaller parts anyway.
  s3 = await startStrictS3();
});
afterAll(async () => {
  await s3.close();
});
afterEach(() => {
  // A crash inside the double is a bug in the double, never an S3 answer.
  expect(s3.state.internalErrors).toEqual([]);
  s3.state.clearFaults();
});

/** A real S3Client pointed at the strict double (as the strict contract test builds it), destroyed when the test ends. */
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

interface Writer {
  ws: string;
  client: S3Client;
  sync: S3WorkspaceSync;
  write(rel: string, body: string | Buffer): Promise<void>;
  read(rel: string): Promise<Buffer>;
}

/** A new bucket on the double, seeded with `files` (under PREFIX). */
function strictBucket(files: Record<string, string | Buffer> = {}): string {
  const bucket = `writers-${++bucketSeq}`;
  s3.state.createBucket(bucket);
  for (const [rel, body] of Object.entries(files)) s3.state.putObject(bucket, PREFIX + rel, body);
  return bucket;
}

/** An instance on `bucket` with its own temp workspace and its own client (not pulled yet). */
async function writer(bucket: string, client: S3Client, extra: Partial<S3WorkspaceSyncOptions> = {}): Promise<Writer> {
  const ws = await tempDir('s3ws-writer-');
  const sync = new S3WorkspaceSync({ bucket, prefix: PREFIX, workspaceDir: ws, s3Client: client, logger: silentLogger, persistState: false, ...extra });
  onTestFinished(() => sync.destroy());
  return {
    ws,
    client,
    sync,
    write: (rel, body) => writeFile(path.join(ws, rel), body),
    read: (rel) => readFile(path.join(ws, rel)),
  };
}

/** Two instances (A and B) on one prefix of a fresh bucket seeded with `files`, both pulled. */
async function twoWriters(files: Record<string, string | Buffer>, extra: Partial<S3WorkspaceSyncOptions> = {}) {
  const bucket = strictBucket(files);
  const a = await writer(bucket, strictClient(), extra);
  const b = await writer(bucket, strictClient(), extra);
  expect(await a.sync.pull()).toMatchObject({ success: true, downloadedFiles: Object.keys(files).length });
  expect(await b.sync.pull()).toMatchObject({ success: true, downloadedFiles: Object.keys(files).length });
  return { bucket, a, b };
}

/** The bytes the double holds at `rel`, read through the real SDK (GetObject). */
async function remoteBytes(client: S3Client, bucket: string, rel: string): Promise<Buffer> {
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: PREFIX + rel }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

const etagOf = (bucket: string, rel: string): string | undefined => s3.state.getObject(bucket, PREFIX + rel)?.etag;

/** Requests the double saw for one bucket after request number `from` (see lastSeq). */
function requestsSince(bucket: string, from: number): RequestRecord[] {
  return s3.state.requests.filter((r) => r.seq > from && r.bucket === bucket);
}
const lastSeq = (): number => s3.state.requests.at(-1)?.seq ?? 0;

describe('several writers over HTTP: real SDK, S3ObjectStore, the strict S3 double (conditional writes enforced)', () => {
  it("1. A and B edit notes.md: B's push is a conflict (A's bytes stay, B's other change lands); keep-local then replaces exactly A's version", { timeout: 20_000 }, async () => {
    const { bucket, a, b } = await twoWriters({ 'notes.md': 'v1', 'other.md': 'o1' });
    const v1 = etagOf(bucket, 'notes.md');
    expect(v1).toBe(md5('v1'));

    await a.write('notes.md', 'A was here');
    expect(await a.sync.push()).toMatchObject({ success: true, uploadedFiles: 1, conflicts: [] });
    const aEtag = etagOf(bucket, 'notes.md');
    expect(aEtag).toBe(md5('A was here'));

    await b.write('notes.md', 'B was here');
    await b.write('other.md', 'o2 by B');
    const pushed = await b.sync.push();
    expect(pushed.success).toBe(false);
    expect(pushed.conflicts).toEqual([
      { path: 'notes.md', key: 'ws/notes.md', action: 'upload', expectedEtag: v1, currentEtag: aEtag, resolution: 'reported' },
    ]);
    expect(pushed.failedFiles).toEqual([expect.objectContaining({ path: 'notes.md', code: 'CONFLICT' })]);
    expect(pushed.uploadedFiles).toBe(1); // other.md: the rest of the push goes on
    expect((await remoteBytes(b.client, bucket, 'notes.md')).toString()).toBe('A was here');
    expect((await remoteBytes(b.client, bucket, 'other.md')).toString()).toBe('o2 by B');
    expect((await b.read('notes.md')).toString()).toBe('B was here'); // B's work untouched
    expect((await a.read('notes.md')).toString()).toBe('A was here');

    // B decides its version wins: uploaded If-Match A's version, and reported as kept-local.
    const from = lastSeq();
    const kept = await b.sync.push({ conflictPolicy: 'keep-local' });
    expect(kept.success).toBe(true);
    expect(kept.failedFiles).toEqual([]);
    expect(kept.conflicts).toEqual([
      { path: 'notes.md', key: 'ws/notes.md', action: 'upload', expectedEtag: v1, currentEtag: aEtag, resolution: 'kept-local', remoteSavedTo: expect.stringMatching(/^ws\/\.s3-workspace-sync\/conflicts\/\d{8}T\d{6}Z-[0-9a-f]{6}\/notes\.md$/) },
    ]);
    expect((await remoteBytes(b.client, bucket, 'notes.md')).toString()).toBe('B was here');
    // A's version was saved before it was replaced (a server-side copy of exactly A's version)
    expect(s3.state.getObject(bucket, kept.conflicts[0]!.remoteSavedTo!)?.body.toString()).toBe('A was here');
    // the winning PUT was conditional on exactly A's version
    const puts = requestsSince(bucket, from).filter((r) => r.op === 'PutObject' && r.key === 'ws/notes.md' && r.status === 200);
    expect(puts).toHaveLength(1);
    expect(puts[0]!.headers['if-match']).toBe(`"${aEtag}"`);
  });

  it("1b. three writers: under keep-local, a third writer's version landing between B's HEAD and B's retry is still a conflict, never overwritten", { timeout: 20_000 }, async () => {
    const { bucket, a, b } = await twoWriters({ 'notes.md': 'v1' });
    await a.write('notes.md', 'A was here');
    expect(await a.sync.push()).toMatchObject({ success: true, uploadedFiles: 1 });
    const aEtag = etagOf(bucket, 'notes.md');
    // The third writer is another tool (a backend with the plain SDK): a writer using this library
    // would wait for B's push lease instead (test/integration/generations.test.ts).
    const other = strictClient();

    // B's client: just before B's keep-local retry (PutObject If-Match A's version) is sent, the other tool writes.
    let cWrote = false;
    recordCommands(b.client, async (name, input) => {
      if (name === 'PutObjectCommand' && input.IfMatch === `"${aEtag}"` && !cWrote) {
        cWrote = true;
        await other.send(new PutObjectCommand({ Bucket: bucket, Key: `${PREFIX}notes.md`, Body: 'C was here' }));
      }
    });
    await b.write('notes.md', 'B was here');
    const pushed = await b.sync.push({ conflictPolicy: 'keep-local' });
    expect(cWrote).toBe(true);
    expect(pushed.success).toBe(false);
    expect(pushed.conflicts).toEqual([
      expect.objectContaining({ path: 'notes.md', action: 'upload', expectedEtag: md5('v1'), resolution: 'reported' }),
    ]);
    expect(pushed.failedFiles).toEqual([expect.objectContaining({ path: 'notes.md', code: 'CONFLICT' })]);
    expect((await remoteBytes(b.client, bucket, 'notes.md')).toString()).toBe('C was here');
    expect((await b.read('notes.md')).toString()).toBe('B was here');
  });

  it('2. both create the same new path: the second push is a conflict with expectedEtag null, not an overwrite', { timeout: 20_000 }, async () => {
    const { bucket, a, b } = await twoWriters({ 'keep.md': 'k' });
    await a.write('new.md', 'from A');
    expect(await a.sync.push()).toMatchObject({ success: true, uploadedFiles: 1 });
    await b.write('new.md', 'from B');
    const pushed = await b.sync.push();
    expect(pushed.success).toBe(false);
    expect(pushed.uploadedFiles).toBe(0);
    expect(pushed.conflicts).toEqual([
      { path: 'new.md', key: 'ws/new.md', action: 'upload', expectedEtag: null, currentEtag: md5('from A'), resolution: 'reported' },
    ]);
    expect(pushed.failedFiles).toEqual([expect.objectContaining({ path: 'new.md', code: 'CONFLICT' })]);
    expect((await remoteBytes(b.client, bucket, 'new.md')).toString()).toBe('from A');
    expect((await b.read('new.md')).toString()).toBe('from B');
    // B's PUT carried If-None-Match: * and the double refused it (412)
    const refused = s3.state.requests.filter((r) => r.bucket === bucket && r.op === 'PutObject' && r.key === 'ws/new.md' && r.status === 412);
    expect(refused.map((r) => r.headers['if-none-match'])).toEqual(['*']);
  });

  it("3. B deletes a file A has just changed: a deletion conflict, A's file stays in the bucket, deletedFiles 0", { timeout: 20_000 }, async () => {
    const { bucket, a, b } = await twoWriters({ 'doc.md': 'v1', 'keep.md': 'k' });
    await a.write('doc.md', 'v2 by A');
    expect(await a.sync.push()).toMatchObject({ success: true, uploadedFiles: 1 });
    await rm(path.join(b.ws, 'doc.md'));
    const pushed = await b.sync.push();
    expect(pushed.success).toBe(false);
    expect(pushed.deletedFiles).toBe(0);
    expect(pushed.conflicts).toEqual([
      expect.objectContaining({ path: 'doc.md', key: 'ws/doc.md', action: 'delete', expectedEtag: md5('v1'), resolution: 'reported' }),
    ]);
    expect(pushed.failedFiles).toEqual([expect.objectContaining({ path: 'doc.md', code: 'CONFLICT' })]);
    expect((await remoteBytes(b.client, bucket, 'doc.md')).toString()).toBe('v2 by A');
    expect(s3.state.keys(bucket, PREFIX).filter((k) => !k.includes('.s3-workspace-sync/'))).toEqual(['ws/doc.md', 'ws/keep.md']);
  });

  it('4. a fresh instance (never pulled) over a stale copy: plan() names the differing file before anything is sent; push reports it and still uploads new files', { timeout: 20_000 }, async () => {
    const bucket = strictBucket({ 'a.md': 'newer remote work', 'b.md': 'same' });
    const stale = await writer(bucket, strictClient());
    await stale.write('a.md', 'stale copy');
    await stale.write('b.md', 'same');
    await stale.write('c.md', 'brand new');

    const beforePlan = lastSeq();
    const plan = await stale.sync.plan('push');
    expect(plan.conflicts).toEqual([
      expect.objectContaining({ path: 'a.md', key: 'ws/a.md', action: 'upload', expectedEtag: null, currentEtag: md5('newer remote work') }),
    ]);
    expect(plan.transfers.map((t) => t.path)).toEqual(['c.md']);
    // a plan writes nothing
    expect(requestsSince(bucket, beforePlan).filter((r) => r.method !== 'GET' && r.method !== 'HEAD')).toEqual([]);

    const beforePush = lastSeq();
    const pushed = await stale.sync.push();
    expect(pushed.success).toBe(false);
    expect(pushed.conflicts).toEqual([expect.objectContaining({ path: 'a.md', expectedEtag: null, currentEtag: md5('newer remote work'), resolution: 'reported' })]);
    expect(pushed.failedFiles).toEqual([expect.objectContaining({ path: 'a.md', code: 'CONFLICT' })]);
    expect(pushed.uploadedFiles).toBe(1);
    // nothing was ever sent for a.md: the conflict came from the listing
    const sent = requestsSince(bucket, beforePlan);
    expect(sent.filter((r) => r.key === 'ws/a.md' && r.method !== 'GET' && r.method !== 'HEAD')).toEqual([]);
    expect(requestsSince(bucket, beforePush).filter((r) => r.op === 'PutObject').map((r) => r.key)).not.toContain('ws/a.md');
    expect((await remoteBytes(stale.client, bucket, 'a.md')).toString()).toBe('newer remote work');
    expect((await remoteBytes(stale.client, bucket, 'c.md')).toString()).toBe('brand new');
    expect((await stale.read('a.md')).toString()).toBe('stale copy');
  });

  it("5. a large file edited by both: the second push's CompleteMultipartUpload fails its If-Match -> conflict, the upload is aborted, the first writer's bytes stay", { timeout: 30_000 }, async () => {
    const size = 11 * MiB; // 3 parts of 5 MiB (5 + 5 + 1)
    const v1 = Buffer.alloc(size, 1);
    const byA = Buffer.alloc(size, 2);
    const byB = Buffer.alloc(size, 3);
    const { bucket, a, b } = await twoWriters({ 'big.bin': v1, 'small.md': 's' }, { multipartThreshold: 5 * MiB, partSize: 5 * MiB });
    expect(etagOf(bucket, 'big.bin')).toBe(md5(v1));

    await a.write('big.bin', byA);
    expect(await a.sync.push()).toMatchObject({ success: true, uploadedFiles: 1 });
    const aEtag = etagOf(bucket, 'big.bin');
    expect(aEtag).toMatch(/^[0-9a-f]{32}-3$/); // a real multipart ETag

    await b.write('big.bin', byB);
    const from = lastSeq();
    const pushed = await b.sync.push();
    expect(pushed.success).toBe(false);
    expect(pushed.conflicts).toEqual([
      { path: 'big.bin', key: 'ws/big.bin', action: 'upload', expectedEtag: md5(v1), currentEtag: aEtag, resolution: 'reported' },
    ]);
    expect(pushed.failedFiles).toEqual([expect.objectContaining({ path: 'big.bin', code: 'CONFLICT' })]);
    const sent = requestsSince(bucket, from);
    const completes = sent.filter((r) => r.op === 'CompleteMultipartUpload');
    expect(completes.map((r) => [r.status, r.headers['if-match']])).toEqual([[412, `"${md5(v1)}"`]]);
    expect(sent.filter((r) => r.op === 'AbortMultipartUpload' && r.status === 204)).toHaveLength(1);
    expect(s3.state.uploads(bucket)).toEqual([]); // no multipart upload left open
    expect(s3.state.getObject(bucket, 'ws/big.bin')?.body.equals(byA)).toBe(true);
    expect((await b.read('big.bin')).equals(byB)).toBe(true);
  });

  it('6. a 409 ConditionalRequestConflict on the write is a conflict (code CONFLICT): nothing overwritten', { timeout: 20_000 }, async () => {
    const { bucket, a } = await twoWriters({ 'notes.md': 'v1', 'other.md': 'o1' });
    await a.write('notes.md', 'A was here');
    await a.write('other.md', 'o2');
    const rule = s3.state.conflictNext({ bucket, key: 'ws/notes.md' });
    const pushed = await a.sync.push();
    expect(rule.fired).toBe(1);
    expect(pushed.success).toBe(false);
    expect(pushed.conflicts).toEqual([
      expect.objectContaining({ path: 'notes.md', key: 'ws/notes.md', action: 'upload', expectedEtag: md5('v1'), resolution: 'reported' }),
    ]);
    expect(pushed.failedFiles).toEqual([expect.objectContaining({ path: 'notes.md', code: 'CONFLICT' })]);
    expect(pushed.uploadedFiles).toBe(1);
    const put = s3.state.requests.filter((r) => r.bucket === bucket && r.op === 'PutObject' && r.key === 'ws/notes.md');
    expect(put.map((r) => [r.status, r.errorCode])).toEqual([[409, 'ConditionalRequestConflict']]);
    expect((await remoteBytes(a.client, bucket, 'notes.md')).toString()).toBe('v1');
    expect((await remoteBytes(a.client, bucket, 'other.md')).toString()).toBe('o2');
    // once the other write is over, the next push goes through
    expect(await a.sync.push()).toMatchObject({ success: true, uploadedFiles: 1, conflicts: [] });
    expect((await remoteBytes(a.client, bucket, 'notes.md')).toString()).toBe('A was here');
  });

  it('7. cost: a warm small-change push makes one conditional write per change and no request for unchanged files', { timeout: 20_000 }, async () => {
    const files: Record<string, string> = { 'mod.md': 'm1', 'gone.md': 'g1' };
    for (let i = 0; i < 10; i++) files[`same/${i}.md`] = `unchanged ${i}`;
    const bucket = strictBucket(files);
    const client = strictClient();
    const log = recordCommands(client);
    const w = await writer(bucket, client);
    expect(await w.sync.pull()).toMatchObject({ success: true, downloadedFiles: 12 });

    await w.write('mod.md', 'm2');
    await w.write('new.md', 'n1');
    await rm(path.join(w.ws, 'gone.md'));
    // warm: the instance already knows the server enforces conditional writes (the probe, 2 PUTs + 1 delete,
    // runs once per process and bucket before the first writing push: test/integration/conditional-warning.test.ts)
    expect(await w.sync.checkConditionalWrites()).toBe('enforced');
    log.reset();
    const from = lastSeq();
    const pushed = await w.sync.push();
    expect(pushed).toMatchObject({ success: true, uploadedFiles: 2, deletedFiles: 1, conflicts: [], failedFiles: [] });

    const sent = requestsSince(bucket, from);
    // for the workspace: 2 PUTs and 1 DeleteObjects, no HEAD; for the library's folder: the push lease (PUT,
    // then its release) and the first manifest of this prefix, built from one listing of the prefix (a prefix
    // that has a manifest costs no listing: see the request cost test in generations.test.ts)
    const sentNames = log.calls.map((c) => `${c.name} ${String(c.input.Key ?? c.input.Prefix ?? '')}`);
    expect(sentNames[0]).toBe('PutObjectCommand ws/.s3-workspace-sync/push-lease.json'); // before any change
    expect(sentNames.slice(1, 3).sort()).toEqual(['PutObjectCommand ws/mod.md', 'PutObjectCommand ws/new.md']);
    expect(sentNames.slice(3)).toEqual([
      'DeleteObjectsCommand ', // gone.md (deletions run after the uploads)
      'ListObjectsV2Command ws/',
      'PutObjectCommand ws/.s3-workspace-sync/manifest.json',
      'DeleteObjectsCommand ', // the lease's release
    ]);
    expect(log.calls.filter((c) => !isLibrary(c) && c.name !== 'ListObjectsV2Command').map((c) => c.name).sort()).toEqual(['DeleteObjectsCommand', 'PutObjectCommand', 'PutObjectCommand']);

    const putOf = (key: string) => sent.find((r) => r.op === 'PutObject' && r.key === key)!;
    expect(putOf('ws/mod.md').headers['if-match']).toBe(`"${md5('m1')}"`);
    expect(putOf('ws/mod.md').headers['if-none-match']).toBeUndefined();
    expect(putOf('ws/new.md').headers['if-none-match']).toBe('*');
    expect(putOf('ws/new.md').headers['if-match']).toBeUndefined();
    const del = log.calls.find((c) => c.name === 'DeleteObjectsCommand')!.input as { Delete: { Objects: { Key: string; ETag?: string }[] } };
    expect(del.Delete.Objects).toEqual([{ Key: 'ws/gone.md', ETag: `"${md5('g1')}"` }]);
    // nothing at all for the unchanged files
    expect(sent.filter((r) => r.key?.startsWith('ws/same/'))).toEqual([]);
    expect(s3.state.keys(bucket, PREFIX).filter((k) => !k.includes('.s3-workspace-sync/'))).toEqual([
      'ws/mod.md',
      'ws/new.md',
      ...Array.from({ length: 10 }, (_, i) => `ws/same/${i}.md`),
    ]);

    // and a no-op push right after makes no request at all
    const idle = lastSeq();
    expect(await w.sync.push()).toMatchObject({ success: true, uploadedFiles: 0, deletedFiles: 0 });
    expect(requestsSince(bucket, idle)).toEqual([]);
  });
});

describe('several writers on s3rver (the shared local server of the suite)', () => {
  it("s3rver ignores conditional writes: A and B edit notes.md, B's push succeeds and B's bytes replace A's (last writer wins; a server gap, not a library bug)", { timeout: 20_000 }, async () => {
    const seedClient = testClient();
    const bucket = await createTestBucket(seedClient);
    await putObjects(seedClient, bucket, { 'ws/notes.md': 'v1', 'ws/other.md': 'o1' });
    const a = await writer(bucket, testClient());
    const b = await writer(bucket, testClient());
    expect(await a.sync.pull()).toMatchObject({ success: true, downloadedFiles: 2 });
    expect(await b.sync.pull()).toMatchObject({ success: true, downloadedFiles: 2 });

    await a.write('notes.md', 'A was here');
    expect(await a.sync.push()).toMatchObject({ success: true, uploadedFiles: 1 });
    await b.write('notes.md', 'B was here');
    await b.write('other.md', 'o2 by B');
    const pushed = await b.sync.push();
    // On S3 (and the strict double, test 1 above) this is a conflict. s3rver
    // answers the stale If-Match with 200 and stores the bytes.
    expect(pushed).toMatchObject({ success: true, uploadedFiles: 2, conflicts: [], failedFiles: [] });
    expect((await getObjectBytes(seedClient, bucket, 'ws/notes.md')).toString()).toBe('B was here');
    expect((await getObjectBytes(seedClient, bucket, 'ws/other.md')).toString()).toBe('o2 by B');
  });
});
