// startBackgroundPull() / waitForPull() / isPullComplete().
import { randomBytes } from 'node:crypto';

import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it, onTestFinished, vi } from 'vitest';

import { IncompleteSyncError, StorageError } from '../../src/index.js';
import { recordCommands } from '../helpers/commands.js';
import { createTestBucket, listAllKeys, putObjects } from '../helpers/s3.js';
import { fixture, tempDir } from '../helpers/sync-fixture.js';
import { readTree, writeTree } from '../helpers/tree.js';

const REMOTE = { 'ws/a.txt': 'a', 'ws/d/b.txt': 'b', 'ws/d/e/c.txt': 'c' };
const missingBucket = () => `t-missing-${randomBytes(6).toString('hex')}`;

/** Resolve after pending promise reactions and the unhandled-rejection check have run. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('background pull', () => {
  it('startBackgroundPull() twice starts one pull; waitForPull() resolves with files on disk; isPullComplete flips', async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, REMOTE);
    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws });
    const log = recordCommands(f.client);

    sync.startBackgroundPull();
    sync.startBackgroundPull();
    expect(sync.isPullComplete()).toBe(false);
    const result = await sync.waitForPull();
    expect(result).toMatchObject({ success: true, downloadedFiles: 3 });
    expect(await readTree(ws)).toEqual({
      'a.txt': Buffer.from('a'),
      'd/b.txt': Buffer.from('b'),
      'd/e/c.txt': Buffer.from('c'),
    });
    expect(sync.isPullComplete()).toBe(true);
    expect(log.count('ListObjectsV2Command')).toBe(1);
    expect(log.count('GetObjectCommand')).toBe(3);

    // After a successful background pull, neither call starts another one.
    sync.startBackgroundPull();
    expect(await sync.waitForPull()).toBe(result);
    await settle();
    expect(log.count('ListObjectsV2Command')).toBe(1);
  });

  it('waitForPull() without startBackgroundPull() starts the pull itself', async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, REMOTE);
    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws });
    expect(sync.isPullComplete()).toBe(false);
    expect(await sync.waitForPull()).toMatchObject({ success: true, downloadedFiles: 3 });
    expect(sync.isPullComplete()).toBe(true);
    expect(Object.keys(await readTree(ws))).toHaveLength(3);
  });

  it('isPullComplete() also turns true after a plain pull() without failed files', async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, REMOTE);
    const sync = f.sync({ workspaceDir: await tempDir() });
    expect(sync.isPullComplete()).toBe(false);
    await sync.push(); // a push is not a pull
    expect(sync.isPullComplete()).toBe(false);
    expect(await sync.pull()).toMatchObject({ success: true, downloadedFiles: 3 });
    expect(sync.isPullComplete()).toBe(true);
  });

  it('operations queue behind the background pull (a push right after start runs after the pull)', async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, REMOTE);
    const ws = await tempDir();
    await writeTree(ws, { 'local-only.txt': 'a fresh pull deletes me' });
    const sync = f.sync({ workspaceDir: ws });
    sync.startBackgroundPull();
    const pushed = await sync.push(); // had it run first, it would have uploaded local-only.txt
    expect(pushed).toMatchObject({ success: true, uploadedFiles: 0, deletedFiles: 0 });
    expect(sync.isPullComplete()).toBe(true);
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/a.txt', 'ws/d/b.txt', 'ws/d/e/c.txt']);
    expect(Object.keys(await readTree(ws))).toEqual(['a.txt', 'd/b.txt', 'd/e/c.txt']);
  });

  it('waitForPull() rejects with StorageError BUCKET_NOT_FOUND for a missing bucket; a later call starts a new attempt', async () => {
    const f = await fixture();
    const bucket = missingBucket();
    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws, bucket });
    sync.startBackgroundPull();
    const error = await sync.waitForPull().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'BUCKET_NOT_FOUND', retryable: false });
    expect(sync.isPullComplete()).toBe(false);

    // The bucket appears: the next waitForPull() tries again and succeeds.
    await createTestBucket(f.other, bucket);
    await putObjects(f.other, bucket, { 'ws/late.txt': 'late' });
    expect(await sync.waitForPull()).toMatchObject({ success: true, downloadedFiles: 1 });
    expect(sync.isPullComplete()).toBe(true);
    expect(Object.keys(await readTree(ws))).toEqual(['late.txt']);
  });

  it('a failed background pull that nobody waits for is not an unhandled rejection', async () => {
    const spy = vi.fn();
    process.on('unhandledRejection', spy);
    onTestFinished(() => {
      process.off('unhandledRejection', spy);
    });
    const f = await fixture();
    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws, bucket: missingBucket() });
    const log = recordCommands(f.client);
    sync.startBackgroundPull();
    // pull() queues behind the background pull: when it settles, so has the background one.
    const after = await sync.pull().catch((e: unknown) => e);
    expect(after).toMatchObject({ code: 'BUCKET_NOT_FOUND' });
    expect(log.count('ListObjectsV2Command')).toBe(2);
    await settle();
    await settle();
    expect(spy).not.toHaveBeenCalled();
    expect(sync.isPullComplete()).toBe(false);
  });

  it('waitForPull() rejects with IncompleteSyncError when a file fails, and isPullComplete() stays false', async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, { ...REMOTE, 'ws/vanishing.txt': 'v' });
    const ws = await tempDir();
    let vanish = true;
    // The object disappears between the listing and its GET: the server answers 404.
    recordCommands(f.client, async (name, input) => {
      if (vanish && name === 'GetObjectCommand' && input.Key === 'ws/vanishing.txt') {
        await f.other.send(new DeleteObjectCommand({ Bucket: f.bucket, Key: 'ws/vanishing.txt' }));
      }
    });
    const sync = f.sync({ workspaceDir: ws });
    const error = await sync.waitForPull().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IncompleteSyncError);
    const incomplete = error as IncompleteSyncError;
    expect(incomplete.code).toBe('INCOMPLETE');
    expect(incomplete.result.success).toBe(false);
    expect(incomplete.result.downloadedFiles).toBe(3);
    expect(incomplete.result.failedFiles.map((x) => x.path)).toEqual(['vanishing.txt']);
    expect(incomplete.message).toContain('vanishing.txt');
    expect(sync.isPullComplete()).toBe(false);
    expect(Object.keys(await readTree(ws))).toEqual(['a.txt', 'd/b.txt', 'd/e/c.txt']);

    vanish = false;
    expect(await sync.waitForPull()).toMatchObject({ success: true, downloadedFiles: 0 });
    expect(sync.isPullComplete()).toBe(true);
  });
});
