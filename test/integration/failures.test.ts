// Per-file failures do not abort a sync (and block deletions); whole-operation
// failures reject with typed errors.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { DeleteObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it, onTestFinished } from 'vitest';

import { LocalFileError, S3WorkspaceSync, StorageError, silentLogger } from '../../src/index.js';
import { recordCommands } from '../helpers/commands.js';
import { listAllKeys, putObjects, TEST_CREDENTIALS, TEST_REGION } from '../helpers/s3.js';
import { fixture, listEntries, tempDir } from '../helpers/sync-fixture.js';
import { readTree, writeTree } from '../helpers/tree.js';

const isRoot = process.getuid?.() === 0;

describe('per-file failures', () => {
  it('a local directory where a remote file should go fails that file (the sides cannot match); the rest of the pull goes on', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'b.txt': 'b' });
    const sync = f.sync({ workspaceDir: ws });
    await sync.push();
    await writeTree(ws, { 'a/mine.txt': 'local work' });
    await putObjects(f.other, f.bucket, { 'ws/a': 'remote file named a', 'ws/c.txt': 'c' });

    const result = await sync.pull();
    expect(result.downloadedFiles).toBe(1);
    expect(result.skippedFiles).toContainEqual({ path: 'a/mine.txt', reason: 'created-locally' });
    expect(result.failedFiles).toEqual([expect.objectContaining({ path: 'a', code: 'EISDIR' })]);
    expect(result.failedFiles[0]?.error).toMatch(/directory-exists-locally/);
    expect(result.success).toBe(false);
    expect(await readTree(ws)).toEqual({
      'a/mine.txt': Buffer.from('local work'),
      'b.txt': Buffer.from('b'),
      'c.txt': Buffer.from('c'),
    });
  });

  it('remote keys x and x/inner.txt (file/directory conflict): x is skipped, the local file x is kept, nothing is written through it', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { x: 'a local file named x' });
    const sync = f.sync({ workspaceDir: ws });
    await sync.push();
    await putObjects(f.other, f.bucket, { 'ws/x/inner.txt': 'inner', 'ws/ok.txt': 'ok' });
    // Now the bucket has both ws/x and ws/x/inner.txt: x cannot be both locally.
    for (let round = 0; round < 2; round++) {
      const result = await sync.pull();
      expect(result.failedFiles).toEqual([]);
      expect(result.skippedFiles).toEqual(
        expect.arrayContaining([
          { path: 'x', reason: 'file-directory-conflict: other keys use this path as a directory' },
          { path: 'x/inner.txt', reason: 'parent-is-not-a-directory-locally' },
          { path: 'x', reason: 'not-deleted: the key exists remotely but cannot be synced' },
        ]),
      );
      // The local x still matches the object ws/x: it is not deleted, and nothing is written through it.
      expect(await readTree(ws)).toEqual({ 'ok.txt': Buffer.from('ok'), x: Buffer.from('a local file named x') });
      expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/ok.txt', 'ws/x', 'ws/x/inner.txt']);
    }
  });

  it('an object that vanishes between listing and GET fails that file only, and then nothing is deleted locally', async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, { 'ws/a.txt': 'a', 'ws/vanish.txt': 'v', 'ws/c.txt': 'c' });
    const ws = await tempDir();
    await writeTree(ws, { 'local-only.txt': 'a fresh pull would delete this' });
    recordCommands(f.client, async (name, input) => {
      if (name === 'GetObjectCommand' && input.Key === 'ws/vanish.txt') {
        await f.other.send(new DeleteObjectCommand({ Bucket: f.bucket, Key: 'ws/vanish.txt' }));
      }
    });
    const sync = f.sync({ workspaceDir: ws });
    const result = await sync.pull();
    expect(result.success).toBe(false);
    expect(result.downloadedFiles).toBe(2);
    expect(result.deletedFiles).toBe(0);
    expect(result.failedFiles).toEqual([
      expect.objectContaining({ path: 'vanish.txt', code: 'NOT_FOUND', error: expect.stringMatching(/not found/i) }),
    ]);
    expect(result.errors).toHaveLength(1);
    expect(result.skippedFiles).toContainEqual({ path: 'local-only.txt', reason: 'not-deleted: a transfer failed in this sync' });
    expect(Object.keys(await readTree(ws))).toEqual(['a.txt', 'c.txt', 'local-only.txt']);
    expect((await listEntries(ws)).filter((e) => e.endsWith('.s3ws-tmp'))).toEqual([]);
    expect(sync.isPullComplete()).toBe(false);

    // The held-back mirror deletions are not forgotten: the instance is still
    // "fresh", so the next clean pull mirrors the bucket.
    const next = await sync.pull();
    expect(next).toMatchObject({ success: true, downloadedFiles: 0, deletedFiles: 1, failedFiles: [] });
    expect(Object.keys(await readTree(ws))).toEqual(['a.txt', 'c.txt']);
    expect(sync.isPullComplete()).toBe(true);
  });

  // chmod 000 does not stop root from reading a file, so these three are skipped
  // when the suite runs as root. To run them there, use an unprivileged user:
  //   runuser -u nobody -- env HOME=/tmp node node_modules/vitest/vitest.mjs run --configLoader runner test/integration/failures.test.ts
  it.skipIf(isRoot)('an unreadable new file (chmod 000) fails alone on push; the other files are uploaded', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'ok.txt': 'ok', 'locked.txt': 'locked' });
    await chmod(path.join(ws, 'locked.txt'), 0o000);
    onTestFinished(() => chmod(path.join(ws, 'locked.txt'), 0o644));
    const result = await f.sync({ workspaceDir: ws }).push();
    expect(result.success).toBe(false);
    expect(result.uploadedFiles).toBe(1);
    expect(result.failedFiles).toEqual([expect.objectContaining({ path: 'locked.txt', code: 'EACCES', error: expect.stringContaining('EACCES') })]);
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/ok.txt']);
  });

  // Regression test: an unreadable file that had to be hashed was once only
  // skipped (success: true although the modified file was not uploaded);
  // unreadable entries are failures since 5fa2bce.
  it.skipIf(isRoot)('an unreadable modified file (chmod 000) makes push fail, not succeed', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'ok.txt': 'ok', 'locked.txt': 'v1' });
    const sync = f.sync({ workspaceDir: ws });
    await sync.push();
    await writeFile(path.join(ws, 'locked.txt'), 'v2 unsaved work');
    await chmod(path.join(ws, 'locked.txt'), 0o000);
    onTestFinished(() => chmod(path.join(ws, 'locked.txt'), 0o644));
    const result = await sync.push();
    expect(result.uploadedFiles).toBe(0);
    expect(result.deletedFiles).toBe(0);
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/locked.txt', 'ws/ok.txt']);
    expect(result.failedFiles).toEqual([expect.objectContaining({ path: 'locked.txt', code: 'EACCES' })]);
    expect(result.success).toBe(false);
  });

  // Regression test: the objects of the files under an unreadable directory
  // were once deleted by push (only the directory itself was "blocked");
  // fixed in 5fa2bce, where unreadable entries also fail the sync.
  it.skipIf(isRoot)('an unreadable directory (chmod 000): push fails and does not delete the objects of its files', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'ok.txt': 'ok', 'd/x.txt': 'x', 'd/y.txt': 'y' });
    const sync = f.sync({ workspaceDir: ws });
    expect((await sync.push()).uploadedFiles).toBe(3);
    await chmod(path.join(ws, 'd'), 0o000);
    onTestFinished(() => chmod(path.join(ws, 'd'), 0o755));
    const result = await sync.push();
    expect(result.success).toBe(false);
    expect(result.failedFiles).toEqual([expect.objectContaining({ path: 'd', code: 'EACCES' })]);
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/d/x.txt', 'ws/d/y.txt', 'ws/ok.txt']);
    expect(result.deletedFiles).toBe(0);
  });
});

describe('whole-operation failures', () => {
  it('pull and push on a missing bucket reject with StorageError BUCKET_NOT_FOUND', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'a' });
    const sync = f.sync({ workspaceDir: ws, bucket: `t-missing-${randomBytes(6).toString('hex')}` });
    for (const op of [() => sync.pull(), () => sync.push()]) {
      const error = await op().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect(error).toMatchObject({ code: 'BUCKET_NOT_FOUND', retryable: false, statusCode: 404 });
    }
    // The failed pull deleted nothing.
    expect(await readTree(ws)).toEqual({ 'a.txt': Buffer.from('a') });
  });

  it('a workspace path that is a regular file rejects with LocalFileError (push: ENOTDIR; pull: the mkdir errno)', async () => {
    const f = await fixture();
    const file = path.join(await tempDir(), 'not-a-dir');
    await writeFile(file, 'x');
    const pushError = await f.sync({ workspaceDir: file }).push().catch((e: unknown) => e);
    expect(pushError).toBeInstanceOf(LocalFileError);
    expect((pushError as LocalFileError).code).toBe('ENOTDIR');
    const log = recordCommands(f.client);
    const pullError = await f.sync({ workspaceDir: file }).pull().catch((e: unknown) => e);
    expect(pullError).toBeInstanceOf(LocalFileError);
    // pull() first runs mkdir -p, which answers EEXIST for a file.
    expect(['ENOTDIR', 'EEXIST']).toContain((pullError as LocalFileError).code);
    expect(log.calls).toEqual([]); // rejected before any request
    expect(await readFile(file, 'utf8')).toBe('x');
  });

  it('an unreachable endpoint rejects with StorageError NETWORK', async () => {
    const ws = await tempDir();
    await mkdir(ws, { recursive: true });
    const client = new S3Client({
      endpoint: 'http://127.0.0.1:1',
      region: TEST_REGION,
      forcePathStyle: true,
      credentials: { ...TEST_CREDENTIALS },
      maxAttempts: 1,
    });
    onTestFinished(() => client.destroy());
    const sync = new S3WorkspaceSync({ bucket: 'b-unreachable', prefix: 'p', workspaceDir: ws, s3Client: client, logger: silentLogger });
    const error = await sync.pull().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'NETWORK', retryable: true });
  });
});
