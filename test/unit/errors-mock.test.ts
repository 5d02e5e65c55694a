// What a real server will not give: hostile listings, error responses, damaged
// bodies and lying ETags, with the exact SDK calls checked through
// aws-sdk-client-mock. Mocked GetObject bodies are plain Readables (the library
// only pipes `Body` as a Node stream; no sdkStreamMixin is needed).
import { mkdir, readFile, rm, unlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';

import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it, onTestFinished } from 'vitest';

import { S3WorkspaceSync, StorageError, silentLogger, type SyncResult } from '../../src/index.js';
import { MANIFEST_NAME } from '../../src/core/manifest.js';
import { STATE_DIR_NAME } from '../../src/core/names.js';
import { listEntries, md5Base64, md5Hex, tempDir } from '../helpers/sync-fixture.js';
import { readTree, writeTree } from '../helpers/tree.js';

const BUCKET = 'mock-bucket';

function setup(workspaceDir: string) {
  const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  const s3 = mockClient(client);
  onTestFinished(() => {
    s3.restore();
    client.destroy();
  });
  // the library's manifest: none yet (a test's own GetObject answers are for the workspace's objects)
  s3.on(GetObjectCommand, { Key: `prefix/${MANIFEST_NAME}` }).rejects(awsError('NoSuchKey', 404));
  const sync = new S3WorkspaceSync({ bucket: BUCKET, prefix: 'prefix/', workspaceDir, s3Client: client, logger: silentLogger });
  return { s3, sync };
}

function listing(objects: Record<string, string | number>) {
  return {
    IsTruncated: false,
    KeyCount: Object.keys(objects).length,
    Contents: Object.entries(objects).map(([Key, body]) => ({
      Key,
      Size: typeof body === 'number' ? body : Buffer.byteLength(body),
      ETag: `"${md5Hex(typeof body === 'number' ? 'x'.repeat(body) : body)}"`,
      LastModified: new Date('2024-01-01T00:00:00Z'),
    })),
  };
}

function getResponse(body: Buffer | string, extra: Record<string, unknown> = {}) {
  const buf = Buffer.from(body);
  return {
    Body: Readable.from([buf]),
    ContentLength: buf.length,
    ETag: `"${md5Hex(buf)}"`,
    LastModified: new Date('2024-01-01T00:00:00Z'),
    ...extra,
  };
}

function awsError(name: string, status: number, message = name) {
  return new S3ServiceException({ name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status }, message });
}

const tempFiles = async (dir: string) => (await listEntries(dir)).filter((e) => e.endsWith('.s3ws-tmp'));

describe('hostile listings', () => {
  it('pull writes only the valid key inside the workspace; every hostile key is skipped with a reason', async () => {
    const parent = await tempDir();
    const ws = path.join(parent, 'ws');
    await mkdir(ws);
    await writeFile(path.join(parent, 'sentinel.txt'), 'untouched');
    const hostile = [
      'prefix/../../etc/passwd',
      'prefix/a/../../x',
      'prefix/..',
      'prefix/./x',
      'prefix//abs',
      'prefix/a\\b',
      'prefix/..\\..\\x',
      'prefix/nul\u0000x',
      'prefix/line\nbreak',
      'prefix/%2e%2e/x',
      'prefix/%2E%2e',
      'prefix/C:/x',
      `prefix/${'s'.repeat(300)}`,
      'prefix/a//b',
    ];
    const { s3, sync } = setup(ws);
    s3.on(ListObjectsV2Command).resolves(
      listing({
        ...Object.fromEntries(hostile.map((k) => [k, 'PWNED'])),
        'prefix/dir/': 0,
        'prefix/': 0,
        'prefi/outside.txt': 'PWNED',
        'prefix/ok.txt': 'ok',
      }),
    );
    // Any GET would be answered: a path the library wrongly accepted would be written.
    s3.on(GetObjectCommand).callsFake((input: { Key: string }) => getResponse(input.Key === 'prefix/ok.txt' ? 'ok' : 'PWNED'));
    s3.on(HeadObjectCommand).rejects(awsError('NotFound', 404));

    const result = await sync.pull();
    expect(result.success).toBe(true);
    expect(result.downloadedFiles).toBe(1);
    expect(s3.commandCalls(GetObjectCommand).map((c) => c.args[0].input.Key)).toEqual(['prefix/ok.txt']);
    expect(await listEntries(parent)).toEqual(['sentinel.txt', 'ws/', 'ws/ok.txt']);
    expect(await readFile(path.join(parent, 'sentinel.txt'), 'utf8')).toBe('untouched');
    expect(await readTree(ws)).toEqual({ 'ok.txt': Buffer.from('ok') });

    for (const key of hostile) {
      const entry = result.skippedFiles.find((s) => s.path === key);
      expect(entry, JSON.stringify(key)).toBeDefined();
      expect(entry?.reason, JSON.stringify(key)).toMatch(/^invalid-key/);
    }
    expect(result.skippedFiles).toContainEqual({ path: 'prefix/dir/', reason: 'directory-marker' });
    expect(result.skippedFiles).toContainEqual({ path: 'prefix/', reason: 'directory-marker' });
    expect(result.skippedFiles).toContainEqual({ path: 'prefi/outside.txt', reason: 'outside-prefix' });
  });

  it('pagination: the continuation token is passed on; a truncated page without a token, or a repeated token, rejects', async () => {
    const ws = await tempDir();
    const { s3, sync } = setup(ws);
    s3.on(ListObjectsV2Command)
      .resolvesOnce({ ...listing({ 'prefix/a.txt': 'a' }), IsTruncated: true, NextContinuationToken: 't1' })
      .resolvesOnce({ ...listing({ 'prefix/b.txt': 'b' }), IsTruncated: false });
    s3.on(GetObjectCommand).callsFake((input: { Key: string }) => getResponse(input.Key.endsWith('a.txt') ? 'a' : 'b'));
    expect(await sync.pull()).toMatchObject({ success: true, downloadedFiles: 2 });
    expect(s3.commandCalls(ListObjectsV2Command).map((c) => c.args[0].input)).toEqual([
      { Bucket: BUCKET, Prefix: 'prefix/', ContinuationToken: undefined },
      { Bucket: BUCKET, Prefix: 'prefix/', ContinuationToken: 't1' },
      // no manifest in the prefix: the library's folder is listed again after the pull (did a push run meanwhile?)
      { Bucket: BUCKET, Prefix: `prefix/${STATE_DIR_NAME}/`, ContinuationToken: undefined },
    ]);

    s3.reset();
    s3.on(ListObjectsV2Command).resolves({ ...listing({}), IsTruncated: true });
    await expect(sync.pull()).rejects.toMatchObject({ name: 'StorageError', code: 'STORAGE', message: expect.stringMatching(/continuation token/) });

    s3.reset();
    s3.on(ListObjectsV2Command).resolves({ ...listing({}), IsTruncated: true, NextContinuationToken: 'same' });
    await expect(sync.pull()).rejects.toMatchObject({ name: 'StorageError', code: 'STORAGE', message: expect.stringMatching(/same continuation token/) });
    expect(s3.commandCalls(ListObjectsV2Command)).toHaveLength(2);
    expect(await readTree(ws)).toEqual({ 'a.txt': Buffer.from('a'), 'b.txt': Buffer.from('b') });
  });
});

describe('error mapping', () => {
  it.each([
    ['AccessDenied', 403, 'ACCESS_DENIED', false],
    ['NoSuchBucket', 404, 'BUCKET_NOT_FOUND', false],
    ['InvalidAccessKeyId', 403, 'INVALID_CREDENTIALS', false],
    ['SignatureDoesNotMatch', 403, 'INVALID_CREDENTIALS', false],
    ['SlowDown', 503, 'THROTTLED', true],
    ['InternalError', 500, 'STORAGE', true],
  ] as const)('%s (%i) on ListObjectsV2 rejects pull and push with StorageError %s', async (name, status, code, retryable) => {
    const ws = await tempDir();
    await writeTree(ws, { 'local.txt': 'must survive' });
    const { s3, sync } = setup(ws);
    s3.on(ListObjectsV2Command).rejects(awsError(name, status));
    for (const op of [() => sync.pull(), () => sync.push()]) {
      const error = await op().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect(error).toMatchObject({ code, retryable, statusCode: status });
      expect((error as Error).message).toContain(`s3://${BUCKET}/prefix/`);
      expect((error as Error).cause).toBeInstanceOf(S3ServiceException);
    }
    expect(s3.commandCalls(GetObjectCommand)).toHaveLength(0);
    expect(s3.commandCalls(PutObjectCommand)).toHaveLength(0);
    expect(await readTree(ws)).toEqual({ 'local.txt': Buffer.from('must survive') });
  });
});

describe('damaged downloads', () => {
  const GOOD = '0123456789';

  async function pullDamaged(respond: (attempt: number) => unknown): Promise<{ result: SyncResult; ws: string; gets: number }> {
    const ws = await tempDir();
    await writeTree(ws, { 'f.txt': 'old content!', 'sub/keep.txt': 'k' });
    const { s3, sync } = setup(ws);
    s3.on(ListObjectsV2Command).resolves(listing({ 'prefix/f.txt': GOOD, 'prefix/sub/keep.txt': 'k' }));
    let attempt = 0;
    s3.on(GetObjectCommand).callsFake(() => respond(++attempt));
    const result = await sync.pull();
    return { result, ws, gets: s3.commandCalls(GetObjectCommand).length };
  }

  it.each([
    ['truncated body (Content-Length 10, 5 bytes sent)', () => getResponse(GOOD.slice(0, 5), { ContentLength: 10, ETag: `"${md5Hex(GOOD)}"` }), /truncated/],
    ['a flipped byte versus the ETag MD5', () => getResponse('0123X56789', { ETag: `"${md5Hex(GOOD)}"` }), /corrupt/],
    [
      'a flipped byte versus the md5chksum metadata (multipart ETag)',
      () => getResponse('0123X56789', { ETag: '"0123456789abcdef0123456789abcdef-2"', Metadata: { md5chksum: md5Base64(GOOD) } }),
      /corrupt/,
    ],
  ])('%s: the file fails after 3 attempts, the old content survives, no temp file remains', async (_label, respond, message) => {
    const { result, ws, gets } = await pullDamaged(respond);
    expect(result.success).toBe(false);
    expect(result.failedFiles).toEqual([expect.objectContaining({ path: 'f.txt', code: 'INTEGRITY', error: expect.stringMatching(message) })]);
    expect(gets).toBe(3);
    expect(await readFile(path.join(ws, 'f.txt'), 'utf8')).toBe('old content!');
    expect(await tempFiles(ws)).toEqual([]);
    expect(result.bytesTransferred).toBe(0);
  });

  it('a body that fails mid-stream (ECONNRESET) is retried and the file is then written', async () => {
    const { result, ws, gets } = await pullDamaged((attempt) => {
      if (attempt > 1) return getResponse(GOOD);
      const body = new Readable({
        read() {
          this.push(Buffer.from('01234'));
          this.destroy(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
        },
      });
      return { ...getResponse(GOOD), Body: body };
    });
    expect(result).toMatchObject({ success: true, downloadedFiles: 1, failedFiles: [], bytesTransferred: GOOD.length });
    expect(gets).toBe(2);
    expect(await readFile(path.join(ws, 'f.txt'), 'utf8')).toBe(GOOD);
    expect(await tempFiles(ws)).toEqual([]);
  });

  it('NoSuchKey on GET fails the file without retrying', async () => {
    const { result, gets, ws } = await pullDamaged(() => {
      throw awsError('NoSuchKey', 404);
    });
    expect(result.success).toBe(false);
    expect(result.failedFiles.map((x) => x.path)).toEqual(['f.txt']);
    expect(gets).toBe(1);
    expect(await readFile(path.join(ws, 'f.txt'), 'utf8')).toBe('old content!');
  });
});

describe('uploads', () => {
  it('PutObject is sent with Content-MD5, length, type and md5chksum/mtime metadata', async () => {
    const ws = await tempDir();
    await writeTree(ws, { 'data/x.json': '{"x":1}' });
    const { s3, sync } = setup(ws);
    s3.on(ListObjectsV2Command).resolves(listing({}));
    s3.on(PutObjectCommand).resolves({ ETag: `"${md5Hex('{"x":1}')}"` });
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 1 });
    const [call] = s3.commandCalls(PutObjectCommand, { Key: 'prefix/data/x.json' });
    const input = call!.args[0].input;
    expect(input).toMatchObject({
      Bucket: BUCKET,
      Key: 'prefix/data/x.json',
      ContentLength: 7,
      ContentMD5: md5Base64('{"x":1}'),
      ContentType: 'application/json; charset=utf-8',
      Metadata: { md5chksum: md5Base64('{"x":1}'), mtime: expect.stringMatching(/^\d+\.\d{3}$/) },
    });
    expect(Buffer.from(input.Body as Buffer).toString()).toBe('{"x":1}');
  });

  it('a PutObject answered with an ETag other than the MD5 sent fails the file with an IntegrityError naming WHEN_REQUIRED', async () => {
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'hello', 'b.txt': 'fine' });
    const { s3, sync } = setup(ws);
    s3.on(ListObjectsV2Command).resolves(listing({}));
    s3.on(PutObjectCommand).callsFake((input: { Key: string; Body: Buffer }) => ({
      ETag: input.Key === 'prefix/a.txt' ? '"00000000000000000000000000000000"' : `"${md5Hex(input.Body)}"`,
    }));
    const result = await sync.push();
    expect(result.success).toBe(false);
    expect(result.uploadedFiles).toBe(1);
    expect(result.failedFiles).toEqual([expect.objectContaining({ path: 'a.txt', code: 'INTEGRITY', error: expect.stringContaining('WHEN_REQUIRED') })]);
    expect(result.failedFiles[0]?.error).toMatch(/stored with ETag 0{32} but MD5 [0-9a-f]{32} was sent/);
    expect(s3.commandCalls(PutObjectCommand, { Key: 'prefix/a.txt' })).toHaveLength(3);
  });

  it('a file rewritten while its PUT is in flight (same size, mtime put back) is uploaded again by the next push', async () => {
    const ws = await tempDir();
    const file = path.join(ws, 'a.txt');
    await writeFile(file, 'v1');
    const old = new Date(Date.now() - 3_600_000);
    await utimes(file, old, old);
    const { s3, sync } = setup(ws);
    s3.on(ListObjectsV2Command).resolves(listing({}));
    const sent: string[] = [];
    s3.on(PutObjectCommand).callsFake(async (input: { Key: string; Body: Buffer }) => {
      if (input.Key.includes(`/${STATE_DIR_NAME}/`)) return { ETag: `"${md5Hex(input.Body)}"` }; // the library's own objects (identity, lease, manifest)
      sent.push(Buffer.from(input.Body).toString());
      if (sent.length === 1) {
        await writeFile(file, 'v2'); // the agent edits the file meanwhile
        await utimes(file, old, old);
      }
      return { ETag: `"${md5Hex(input.Body)}"` };
    });
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 1 });
    const again = await sync.push();
    expect(again).toMatchObject({ success: true, uploadedFiles: 1, hashedFiles: 1 });
    expect(sent).toEqual(['v1', 'v2']);
    expect(await sync.push()).toMatchObject({ uploadedFiles: 0 });
  });

  it('an SSE-KMS object whose ETag is not an MD5 is accepted', async () => {
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'hello' });
    const { s3, sync } = setup(ws);
    s3.on(ListObjectsV2Command).resolves(listing({}));
    s3.on(PutObjectCommand).resolves({ ETag: '"ffffffffffffffffffffffffffffffff"', ServerSideEncryption: 'aws:kms' });
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 1, failedFiles: [] });
  });
});

describe('remote deletions', () => {
  async function syncedInstance() {
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'a', 'b.txt': 'b', 'c.txt': 'c' });
    const ctx = setup(ws);
    ctx.s3.on(ListObjectsV2Command).resolves(listing({}));
    ctx.s3.on(PutObjectCommand).callsFake((input: { Body: Buffer }) => ({ ETag: `"${md5Hex(input.Body)}"` }));
    expect(await ctx.sync.push()).toMatchObject({ success: true, uploadedFiles: 3 });
    await unlink(path.join(ws, 'a.txt'));
    await unlink(path.join(ws, 'b.txt'));
    return { ...ctx, ws };
  }

  /** The keys of each DeleteObjects sent for the workspace (not for the library's own folder: its push lease, the probe's scratch key). */
  const deletedKeys = (calls: { args: [DeleteObjectsCommand] }[]) =>
    calls.map((c) => (c.args[0].input.Delete?.Objects ?? []).map((o) => String(o.Key)).sort()).filter((keys) => !keys.every(isLibraryKey));
  const isLibraryKey = (key: string) => key.includes(`/${STATE_DIR_NAME}/`);
  /** DeleteObjects answers for the workspace's keys; the library's own deletes succeed. */
  const onDeletes = (s3: ReturnType<typeof setup>['s3'], answer: () => object) =>
    s3.on(DeleteObjectsCommand).callsFake((input: { Delete?: { Objects?: Array<{ Key?: string }> } }) =>
      (input.Delete?.Objects ?? []).every((o) => isLibraryKey(String(o.Key))) ? {} : answer(),
    );

  it('DeleteObjects per-key Errors land in failedFiles; the next push deletes only those again', async () => {
    const { s3, sync } = await syncedInstance();
    onDeletes(s3, () => ({
      Deleted: [{ Key: 'prefix/b.txt' }],
      Errors: [{ Key: 'prefix/a.txt', Code: 'AccessDenied', Message: 'Access Denied' }],
    }));
    const result = await sync.push();
    expect(result.success).toBe(false);
    expect(result.deletedFiles).toBe(1);
    expect(result.failedFiles).toEqual([
      expect.objectContaining({ path: 'a.txt', code: 'DELETE_FAILED', error: expect.stringContaining('AccessDenied') }),
    ]);
    expect(deletedKeys(s3.commandCalls(DeleteObjectsCommand))).toEqual([['prefix/a.txt', 'prefix/b.txt']]);

    onDeletes(s3, () => ({ Deleted: [{ Key: 'prefix/a.txt' }] }));
    const retried = await sync.push();
    expect(retried).toMatchObject({ success: true, deletedFiles: 1, failedFiles: [] });
    expect(deletedKeys(s3.commandCalls(DeleteObjectsCommand))).toEqual([
      ['prefix/a.txt', 'prefix/b.txt'],
      ['prefix/a.txt'],
    ]);
  });

  it('deletions are sent in batches of at most 1,000 keys', async () => {
    const ws = await tempDir();
    const files = Object.fromEntries(Array.from({ length: 1203 }, (_, i) => [`d/f${i}.txt`, `${i}`]));
    await writeTree(ws, files);
    const { s3, sync } = setup(ws);
    s3.on(ListObjectsV2Command).resolves(listing({}));
    s3.on(PutObjectCommand).callsFake((input: { Body: Buffer }) => ({ ETag: `"${md5Hex(input.Body)}"` }));
    onDeletes(s3, () => ({}));
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 1203 });
    await rm(path.join(ws, 'd'), { recursive: true });
    // Deleting the whole tree needs the deletion guard lifted for this call.
    await expect(sync.push()).rejects.toMatchObject({ name: 'GuardError', code: 'MAX_DELETES' });
    expect(deletedKeys(s3.commandCalls(DeleteObjectsCommand))).toHaveLength(0);
    const result = await sync.push({ maxDeletes: Infinity });
    expect(result).toMatchObject({ success: true, deletedFiles: 1203 });
    const batches = deletedKeys(s3.commandCalls(DeleteObjectsCommand));
    expect(batches.map((b) => b.length)).toEqual([1000, 203]);
    expect(new Set(batches.flat())).toEqual(new Set(Object.keys(files).map((k) => `prefix/${k}`)));
  });

  it('a DeleteObjects request failing with a server error fails every key of the batch', async () => {
    const { s3, sync } = await syncedInstance();
    onDeletes(s3, () => {
      throw awsError('InternalError', 500);
    });
    const result = await sync.push();
    expect(result.success).toBe(false);
    expect(result.deletedFiles).toBe(0);
    expect(result.failedFiles.map((x) => x.path).sort()).toEqual(['a.txt', 'b.txt']);
  });
});
