// Large files against the real local server (s3rver): multipart uploads and
// ranged downloads with the smallest legal thresholds, so the files stay small.
// (s3rver gives multipart objects a plain-MD5 ETag and has no
// AbortMultipartUpload; strict multipart semantics are tested against the
// strict double in test/large/strict-multipart.test.ts.)
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { isLibrary, recordCommands } from '../helpers/commands.js';
import { damageRangeFrom, getObjectBytes } from '../helpers/s3.js';
import { fixture, md5Base64, tempDir } from '../helpers/sync-fixture.js';

const MiB = 1024 * 1024;
const large = { multipartThreshold: 5 * MiB, partSize: 5 * MiB, partConcurrency: 4 };

describe('large files (s3rver)', () => {
  it('a file above the threshold round-trips byte for byte via multipart upload and ranged download', async () => {
    const f = await fixture();
    const ws = await tempDir();
    const data = randomBytes(12 * MiB + 3);
    await writeFile(path.join(ws, 'model.bin'), data);
    const log = recordCommands(f.client);
    const pusher = f.sync({ workspaceDir: ws, ...large });
    const pushed = await pusher.push();
    expect(pushed).toMatchObject({ success: true, uploadedFiles: 1, bytesTransferred: data.length });
    expect(log.count('CreateMultipartUploadCommand')).toBe(1);
    expect(log.count('UploadPartCommand')).toBe(3);
    expect(log.count('CompleteMultipartUploadCommand')).toBe(1);
    expect(log.keys('PutObjectCommand')).toEqual([]); // no single PUT for the workspace's file (the library's own objects aside)
    expect((await getObjectBytes(f.other, f.bucket, 'ws/model.bin')).equals(data)).toBe(true);
    const head = await f.other.send(new HeadObjectCommand({ Bucket: f.bucket, Key: 'ws/model.bin' }));
    // read once: no whole-file MD5 before the upload, so no md5chksum; the part size says which multipart ETag to compute
    expect(head.Metadata?.md5chksum).toBeUndefined();
    expect(head.Metadata?.partsize).toBe(String(5 * MiB));
    expect(head.Metadata?.mtime).toMatch(/^\d+\.\d{3}$/);

    log.reset();
    const dest = await tempDir();
    const puller = f.sync({ workspaceDir: dest, ...large });
    const pulled = await puller.pull();
    expect(pulled).toMatchObject({ success: true, downloadedFiles: 1, bytesTransferred: data.length });
    const ranges = log.calls.filter((c) => c.name === 'GetObjectCommand' && !isLibrary(c)).map((c) => c.input.Range);
    expect(ranges).toEqual([`bytes=0-${5 * MiB - 1}`, `bytes=${5 * MiB}-${10 * MiB - 1}`, `bytes=${10 * MiB}-${12 * MiB + 2}`]);
    expect((await readFile(path.join(dest, 'model.bin'))).equals(data)).toBe(true);
    log.reset();
    expect(await puller.pull()).toMatchObject({ downloadedFiles: 0 });
    expect(await puller.push()).toMatchObject({ uploadedFiles: 0 });
    expect(log.count('GetObjectCommand') + log.count('UploadPartCommand') + log.count('PutObjectCommand')).toBe(0);
  });

  it.each([
    ['exactly one part', 5 * MiB],
    ['a part + 1 byte', 5 * MiB + 1],
    ['exactly two parts', 10 * MiB],
  ])('ranged download reassembles %s correctly', async (_name, size) => {
    const f = await fixture();
    const ws = await tempDir();
    const data = randomBytes(size);
    await writeFile(path.join(ws, 'f.bin'), data);
    await f.sync({ workspaceDir: ws, ...large }).push();
    const dest = await tempDir();
    const log = recordCommands(f.client);
    expect(await f.sync({ workspaceDir: dest, ...large }).pull()).toMatchObject({ success: true, downloadedFiles: 1 });
    expect(log.count('GetObjectCommand')).toBe(Math.ceil(size / (5 * MiB)));
    expect((await readFile(path.join(dest, 'f.bin'))).equals(data)).toBe(true);
  });

  it('a ranged download whose range comes back damaged is retried, and a persistent fault leaves the old file intact', async () => {
    const f = await fixture();
    const ws = await tempDir();
    const data = randomBytes(11 * MiB);
    await writeFile(path.join(ws, 'f.bin'), data);
    await f.sync({ workspaceDir: ws, ...large }).push();
    const dest = await tempDir();
    await writeFile(path.join(dest, 'f.bin'), 'old content');
    // Damage the second range's bytes on every attempt (the whole-file MD5 catches it; each attempt re-downloads).
    const damaged = damageRangeFrom(f.client, 5 * MiB, 100, 0xff);
    const result = await f.sync({ workspaceDir: dest, ...large, overwriteLocalChanges: true }).pull();
    expect(result.success).toBe(false);
    expect(result.failedFiles).toEqual([expect.objectContaining({ path: 'f.bin', code: 'INTEGRITY' })]);
    expect(damaged.count).toBe(3); // maxAttempts: the whole download was tried three times
    expect(await readFile(path.join(dest, 'f.bin'), 'utf8')).toBe('old content');
    expect((await readFile(path.join(dest, 'f.bin'))).length).toBe(11);
  });

  it('prehashMultipart stores the whole-file MD5 as md5chksum (one extra read of the file)', async () => {
    const f = await fixture();
    const ws = await tempDir();
    const data = randomBytes(11 * MiB);
    await writeFile(path.join(ws, 'f.bin'), data);
    expect(await f.sync({ workspaceDir: ws, ...large, prehashMultipart: true }).push()).toMatchObject({ success: true, uploadedFiles: 1 });
    const head = await f.other.send(new HeadObjectCommand({ Bucket: f.bucket, Key: 'ws/f.bin' }));
    expect(head.Metadata?.md5chksum).toBe(md5Base64(data));
    const dest = await tempDir();
    expect(await f.sync({ workspaceDir: dest, ...large }).pull()).toMatchObject({ success: true, downloadedFiles: 1 });
    expect((await readFile(path.join(dest, 'f.bin'))).equals(data)).toBe(true);
  });

  it.each([0, 1])('hashThreads %i: push and pull of a multipart file give the same bytes and a state that needs no re-hash', async (hashThreads) => {
    const f = await fixture();
    const ws = await tempDir();
    const data = randomBytes(16 * MiB + 5);
    await writeFile(path.join(ws, 'f.bin'), data);
    const pusher = f.sync({ workspaceDir: ws, ...large, hashThreads });
    expect(await pusher.push()).toMatchObject({ success: true, uploadedFiles: 1 });
    const dest = await tempDir();
    const puller = f.sync({ workspaceDir: dest, ...large, hashThreads });
    expect(await puller.pull()).toMatchObject({ success: true, downloadedFiles: 1 });
    expect((await readFile(path.join(dest, 'f.bin'))).equals(data)).toBe(true);
    // both recorded the file's real MD5: a new instance finds nothing to do without hashing
    const again = f.sync({ workspaceDir: dest, ...large, hashThreads });
    expect(await again.pull()).toMatchObject({ success: true, downloadedFiles: 0 });
    expect(await f.sync({ workspaceDir: ws, ...large, hashThreads }).push()).toMatchObject({ success: true, uploadedFiles: 0 });
  });
});
