// Multipart semantics against the strict S3 double (real multipart ETags,
// AbortMultipartUpload, ListMultipartUploads, undersized parts refused):
// every failure path aborts the upload, the original error is kept, stale
// uploads are swept, and other tools' multipart objects are recognised.
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ListMultipartUploadsCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { S3WorkspaceSync, SyncAbortedError, silentLogger, type SyncLogger } from '../../src/index.js';
import { startStrictS3, type StrictS3 } from '../helpers/strict-s3.js';
import { damageRangeFrom } from '../helpers/s3.js';
import { tempDir } from '../helpers/sync-fixture.js';

const MiB = 1024 * 1024;
const large = { multipartThreshold: 5 * MiB, partSize: 5 * MiB, partConcurrency: 4 };
let server: StrictS3;
let clock = Date.now();

beforeAll(async () => {
  server = await startStrictS3({ now: () => new Date(clock) });
});
afterAll(async () => {
  await server.close();
});

let n = 0;
function setup(extra: Record<string, unknown> = {}) {
  const bucket = `strict-${++n}`;
  server.state.createBucket(bucket);
  server.state.clearFaults();
  const client = new S3Client({
    endpoint: server.endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  onTestFinished(() => client.destroy());
  const sync = (workspaceDir: string, more: Record<string, unknown> = {}) =>
    new S3WorkspaceSync({ bucket, prefix: 'ws/', workspaceDir, s3Client: client, logger: silentLogger, ...large, ...extra, ...more });
  const pending = async () => (await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))).Uploads ?? [];
  return { bucket, client, sync, pending };
}

/** A fresh instance (no state) holding the same bytes recognises them: no GetObject of the file (only of the library's manifest). */
async function expectRecognised(sync: (ws: string, more?: Record<string, unknown>) => S3WorkspaceSync, name: string, data: Buffer): Promise<void> {
  const copy = await tempDir();
  await writeFile(path.join(copy, name), data);
  const fileGets = (): number => server.state.count((r) => r.op === 'GetObject' && r.key?.includes('/.s3-workspace-sync/') !== true);
  const gets = fileGets();
  expect(await sync(copy, { persistState: false }).pull()).toMatchObject({ success: true, downloadedFiles: 0 });
  expect(fileGets()).toBe(gets);
}

function multipartEtagOf(data: Buffer, partSize: number): string {
  const digests: Buffer[] = [];
  for (let o = 0; o < data.length; o += partSize) digests.push(createHash('md5').update(data.subarray(o, o + partSize)).digest());
  return `${createHash('md5').update(Buffer.concat(digests)).digest('hex')}-${digests.length}`;
}

describe('multipart uploads (strict double)', () => {
  it('round-trips reading the file once; the object has S3’s multipart ETag and its part size in metadata', async () => {
    const { bucket, sync } = setup();
    const ws = await tempDir();
    const data = randomBytes(11 * MiB + 7);
    await writeFile(path.join(ws, 'big.bin'), data);
    const result = await sync(ws).push();
    expect(result).toMatchObject({ success: true, uploadedFiles: 1 });
    const stored = server.state.getObject(bucket, 'ws/big.bin');
    expect(stored?.etag.replace(/"/g, '')).toBe(multipartEtagOf(data, 5 * MiB));
    expect(Buffer.from(stored!.body).equals(data)).toBe(true);
    expect(stored?.metadata.md5chksum).toBeUndefined();
    expect(stored?.metadata.partsize).toBe(String(5 * MiB));
    const dest = await tempDir();
    expect(await sync(dest).pull()).toMatchObject({ success: true, downloadedFiles: 1 });
    expect((await readFile(path.join(dest, 'big.bin'))).equals(data)).toBe(true);
    // a fresh instance (no state) holding the same bytes recognises them by the multipart ETag
    await expectRecognised(sync, 'big.bin', data);
  });

  it('an unusual part size is found from the partsize metadata: download verified, identical copy not downloaded', async () => {
    // 7 MiB parts of 14 MiB + 1 byte: 3 parts, but the size-derived guesses (5 MiB, 14 MiB / 3) are not 7 MiB
    const { bucket, sync } = setup({ partSize: 7 * MiB });
    const ws = await tempDir();
    const data = randomBytes(14 * MiB + 1);
    await writeFile(path.join(ws, 'odd.bin'), data);
    expect(await sync(ws).push()).toMatchObject({ success: true, uploadedFiles: 1 });
    expect(server.state.getObject(bucket, 'ws/odd.bin')?.etag.replace(/"/g, '')).toBe(multipartEtagOf(data, 7 * MiB));
    const dest = await tempDir();
    expect(await sync(dest).pull()).toMatchObject({ success: true, downloadedFiles: 1 });
    expect((await readFile(path.join(dest, 'odd.bin'))).equals(data)).toBe(true);
    await expectRecognised(sync, 'odd.bin', data);
  });

  it('a damaged range of an object without md5chksum fails on its multipart ETag; the old file survives', async () => {
    const { client, sync } = setup();
    const ws = await tempDir();
    const data = randomBytes(11 * MiB);
    await writeFile(path.join(ws, 'big.bin'), data);
    expect(await sync(ws).push()).toMatchObject({ success: true, uploadedFiles: 1 });
    const dest = await tempDir();
    await writeFile(path.join(dest, 'big.bin'), 'old content');
    const damaged = damageRangeFrom(client, 5 * MiB, 7, 0x01);
    const result = await sync(dest, { overwriteLocalChanges: true }).pull();
    expect(result.success).toBe(false);
    expect(result.failedFiles).toEqual([expect.objectContaining({ path: 'big.bin', code: 'INTEGRITY' })]);
    expect(result.failedFiles[0]?.error).toMatch(/multipart ETag/);
    expect(damaged.count).toBe(3);
    expect(await readFile(path.join(dest, 'big.bin'), 'utf8')).toBe('old content');
  });

  it('prehashMultipart stores md5chksum as well', async () => {
    const { bucket, sync } = setup({ prehashMultipart: true });
    const ws = await tempDir();
    const data = randomBytes(11 * MiB + 7);
    await writeFile(path.join(ws, 'big.bin'), data);
    expect(await sync(ws).push()).toMatchObject({ success: true, uploadedFiles: 1 });
    const stored = server.state.getObject(bucket, 'ws/big.bin');
    expect(stored?.metadata.md5chksum).toBe(createHash('md5').update(data).digest('base64'));
    expect(stored?.etag.replace(/"/g, '')).toBe(multipartEtagOf(data, 5 * MiB));
  });

  it('a part that keeps failing fails the file, and the upload is aborted on the server before push() returns', async () => {
    const { sync, pending } = setup();
    const ws = await tempDir();
    await writeFile(path.join(ws, 'big.bin'), randomBytes(12 * MiB));
    await writeFile(path.join(ws, 'small.txt'), 'fine');
    server.state.failAlways({ op: 'UploadPart', partNumber: 2 }, { status: 500, code: 'InternalError' });
    const result = await sync(ws).push();
    expect(result.success).toBe(false);
    expect(result.uploadedFiles).toBe(1);
    expect(result.failedFiles).toEqual([expect.objectContaining({ path: 'big.bin', code: 'STORAGE' })]);
    expect(result.failedFiles[0]?.error).toMatch(/server error 500/);
    expect(server.state.count('AbortMultipartUpload')).toBeGreaterThanOrEqual(1);
    expect(await pending()).toEqual([]);
  });

  it('a failing abort keeps the original error and names the upload id', async () => {
    const { sync, pending } = setup();
    const ws = await tempDir();
    await writeFile(path.join(ws, 'big.bin'), randomBytes(12 * MiB));
    server.state.failAlways({ op: 'UploadPart', partNumber: 3 }, { status: 500, code: 'InternalError' });
    server.state.failAlways('AbortMultipartUpload', { status: 403, code: 'AccessDenied' });
    const result = await sync(ws).push();
    const left = await pending();
    expect(left).toHaveLength(1);
    const failure = result.failedFiles[0];
    expect(failure?.path).toBe('big.bin');
    expect(failure?.error).toMatch(/server error 500/); // the original error first
    expect(failure?.error).toContain(`aborting multipart upload ${left[0]?.UploadId}`);
    expect(failure?.error).toMatch(/access denied/);
  });

  it('an abort signal during the parts aborts the multipart upload', async () => {
    const { sync, pending } = setup();
    const ws = await tempDir();
    await writeFile(path.join(ws, 'big.bin'), randomBytes(20 * MiB));
    const controller = new AbortController();
    server.state.failAlways({ op: 'UploadPart', partNumber: 2 }, { delayMs: 300 });
    // Abort once part 2 is in flight (held by the server), whatever the machine's speed.
    const poll = setInterval(() => {
      if (server.state.count((r) => r.op === 'UploadPart' && r.partNumber === 2) > 0) {
        clearInterval(poll);
        controller.abort();
      }
    }, 5);
    onTestFinished(() => clearInterval(poll));
    const err = await sync(ws, { partConcurrency: 1 }).push({ signal: controller.signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SyncAbortedError);
    expect(await pending()).toEqual([]);
  });

  it('abortStaleUploadsAfterHours aborts old uploads under the prefix, and leaves recent ones and other prefixes alone', async () => {
    const { bucket, client, sync, pending } = setup({ abortStaleUploadsAfterHours: 24 });
    const { CreateMultipartUploadCommand } = await import('@aws-sdk/client-s3');
    clock = Date.now() - 48 * 3_600_000;
    const old = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'ws/crashed.bin' }));
    const otherPrefix = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'other/crashed.bin' }));
    clock = Date.now();
    const recent = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'ws/in-progress.bin' }));
    const ws = await tempDir();
    await writeFile(path.join(ws, 'a.txt'), 'a');
    expect((await sync(ws).push()).success).toBe(true);
    const ids = (await pending()).map((u) => u.UploadId).sort();
    expect(ids).toEqual([otherPrefix.UploadId, recent.UploadId].sort());
    expect(ids).not.toContain(old.UploadId);
  });
});

describe('multipart objects written by other tools (strict double)', () => {
  it('an identical local file is recognised by its multipart ETag: no download; a different one is downloaded and verified', async () => {
    const { bucket, client, sync } = setup();
    const data = randomBytes(13 * MiB);
    const upload = new Upload({ client, params: { Bucket: bucket, Key: 'ws/other.bin', Body: data }, partSize: 5 * MiB, queueSize: 2 });
    await upload.done();
    expect(server.state.getObject(bucket, 'ws/other.bin')?.metadata.md5chksum).toBeUndefined();
    const ws = await tempDir();
    await writeFile(path.join(ws, 'other.bin'), data);
    server.state.resetRequests();
    const same = await sync(ws).pull();
    expect(same).toMatchObject({ success: true, downloadedFiles: 0 });
    expect(server.state.count('GetObject')).toBe(0);

    const dest = await tempDir();
    const log: string[] = [];
    const logger: SyncLogger = { ...silentLogger, warn: (m: string) => log.push(m) };
    const fresh = await sync(dest, { logger }).pull();
    expect(fresh).toMatchObject({ success: true, downloadedFiles: 1 });
    expect((await readFile(path.join(dest, 'other.bin'))).equals(data)).toBe(true);
  });

  it('a part size no guess finds (7 MiB parts of 14 MiB + 1) is asked of the server: verified download, identical copy recognised', async () => {
    const { bucket, client, sync } = setup();
    const data = randomBytes(14 * MiB + 1);
    await new Upload({ client, params: { Bucket: bucket, Key: 'ws/odd.bin', Body: data }, partSize: 7 * MiB, queueSize: 2 }).done();
    expect(server.state.getObject(bucket, 'ws/odd.bin')?.etag.replace(/"/g, '')).toBe(multipartEtagOf(data, 7 * MiB));
    const dest = await tempDir();
    server.state.resetRequests();
    expect(await sync(dest).pull()).toMatchObject({ success: true, downloadedFiles: 1 });
    expect((await readFile(path.join(dest, 'odd.bin'))).equals(data)).toBe(true);
    expect(server.state.count('HeadObject')).toBe(1); // part 1's size, asked once the guesses failed

    const copy = await tempDir();
    await writeFile(path.join(copy, 'odd.bin'), data);
    server.state.resetRequests();
    expect(await sync(copy).pull()).toMatchObject({ success: true, downloadedFiles: 0 });
    expect(server.state.count('GetObject')).toBe(0);
  });

  it('a damaged range of such an object (no MD5 anywhere) is caught by the multipart ETag and the old file survives', async () => {
    const { bucket, client, sync } = setup();
    const data = randomBytes(11 * MiB);
    await new Upload({ client, params: { Bucket: bucket, Key: 'ws/other.bin', Body: data }, partSize: 5 * MiB }).done();
    const ws = await tempDir();
    await writeFile(path.join(ws, 'other.bin'), 'old');
    server.state.failAlways({ op: 'GetObject', key: 'ws/other.bin' }, { corruptBody: true });
    const result = await sync(ws, { overwriteLocalChanges: true }).pull();
    expect(result.failedFiles).toEqual([expect.objectContaining({ path: 'other.bin', code: 'INTEGRITY' })]);
    expect(await readFile(path.join(ws, 'other.bin'), 'utf8')).toBe('old');
  });
});
