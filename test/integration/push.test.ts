// push(): what is uploaded and deleted, observed on the local S3 server and
// through the commands the library's client sends.
import { cp, mkdir, rm, unlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { LocalFileError } from '../../src/index.js';
import { recordCommands } from '../helpers/commands.js';
import { getObjectBytes, listAllKeys, putObjects } from '../helpers/s3.js';
import { fixture, tempDir } from '../helpers/sync-fixture.js';
import { readTree, writeTree } from '../helpers/tree.js';

const sortKeys = (keys: string[]) => [...keys].sort();

describe('push', () => {
  it('a second push with no changes sends no PutObject and no DeleteObjects', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'a', 'd/b.txt': 'b', 'd/e/c.bin': Buffer.from([1, 2, 3]) });
    const sync = f.sync({ workspaceDir: ws });
    const first = await sync.push();
    expect(first.uploadedFiles).toBe(3);

    const log = recordCommands(f.client);
    const second = await sync.push();
    expect(second).toMatchObject({ success: true, uploadedFiles: 0, deletedFiles: 0, bytesTransferred: 0, failedFiles: [] });
    expect(log.count('PutObjectCommand')).toBe(0);
    expect(log.count('DeleteObjectsCommand')).toBe(0);
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/a.txt', 'ws/d/b.txt', 'ws/d/e/c.bin']);
  });

  it('after local modify/add/delete, push uploads exactly the changed and new files and deletes exactly the removed ones', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, {
      'keep.txt': 'keep',
      'change.txt': 'before',
      'touched.txt': 'same content',
      'gone.txt': 'gone',
      'dir/gone2.txt': 'gone2',
      'dir/keep2.txt': 'keep2',
      'whole/a.txt': 'wa',
      'whole/sub/b.txt': 'wb',
    });
    const sync = f.sync({ workspaceDir: ws });
    expect((await sync.push()).uploadedFiles).toBe(8);
    // Another writer adds an object this instance never saw: it must survive.
    await putObjects(f.other, f.bucket, { 'ws/foreign.txt': 'not mine' });

    await writeFile(path.join(ws, 'change.txt'), 'AFTER!'); // same size, other bytes
    const later = new Date(Date.now() + 60_000);
    await utimes(path.join(ws, 'touched.txt'), later, later); // stat changes, content does not
    await unlink(path.join(ws, 'gone.txt'));
    await unlink(path.join(ws, 'dir/gone2.txt'));
    await rm(path.join(ws, 'whole'), { recursive: true });
    await writeTree(ws, { 'new.txt': 'new', 'dir/new2/n.txt': 'new2' });

    const log = recordCommands(f.client);
    const result = await sync.push();
    expect(result.success).toBe(true);
    expect(result.failedFiles).toEqual([]);
    expect(sortKeys(log.keys('PutObjectCommand'))).toEqual(['ws/change.txt', 'ws/dir/new2/n.txt', 'ws/new.txt']);
    expect(result.uploadedFiles).toBe(3);
    expect(result.deletedFiles).toBe(4);
    expect(result.bytesTransferred).toBe('AFTER!'.length + 'new'.length + 'new2'.length);

    expect(await listAllKeys(f.other, f.bucket)).toEqual([
      'ws/change.txt',
      'ws/dir/keep2.txt',
      'ws/dir/new2/n.txt',
      'ws/foreign.txt',
      'ws/keep.txt',
      'ws/new.txt',
      'ws/touched.txt',
    ]);
    expect((await getObjectBytes(f.other, f.bucket, 'ws/change.txt')).toString()).toBe('AFTER!');
    expect((await getObjectBytes(f.other, f.bucket, 'ws/new.txt')).toString()).toBe('new');
    expect((await getObjectBytes(f.other, f.bucket, 'ws/dir/new2/n.txt')).toString()).toBe('new2');
    expect((await getObjectBytes(f.other, f.bucket, 'ws/foreign.txt')).toString()).toBe('not mine');

    // And the state is stable: one more push does nothing.
    log.reset();
    expect(await sync.push()).toMatchObject({ uploadedFiles: 0, deletedFiles: 0, success: true });
    expect(log.count('PutObjectCommand') + log.count('DeleteObjectsCommand')).toBe(0);
  });

  it('files on both sides of the synchronous small-file limit (256 KiB) upload byte-identical with md5chksum', async () => {
    const f = await fixture();
    const ws = await tempDir();
    const sizes = [0, 1, 256 * 1024 - 1, 256 * 1024, 256 * 1024 + 1, 1024 * 1024];
    const files = Object.fromEntries(sizes.map((n, i) => [`f${i}.bin`, Buffer.alloc(n, i + 1)]));
    await writeTree(ws, files);
    expect(await f.sync({ workspaceDir: ws }).push()).toMatchObject({ success: true, uploadedFiles: sizes.length });
    for (const [name, body] of Object.entries(files)) expect((await getObjectBytes(f.other, f.bucket, `ws/${name}`)).equals(body)).toBe(true);
  });

  it('a fresh instance with no prior sync uploads but deletes nothing', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await putObjects(f.other, f.bucket, { 'ws/extra.txt': 'remote only', 'ws/sub/extra2.txt': 'remote only 2' });
    await writeTree(ws, { 'a.txt': 'a', 'sub/b.txt': 'b' });

    const log = recordCommands(f.client);
    const result = await f.sync({ workspaceDir: ws }).push();
    expect(result).toMatchObject({ success: true, uploadedFiles: 2, deletedFiles: 0 });
    expect(log.count('DeleteObjectsCommand')).toBe(0);
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/a.txt', 'ws/extra.txt', 'ws/sub/b.txt', 'ws/sub/extra2.txt']);
    expect((await getObjectBytes(f.other, f.bucket, 'ws/extra.txt')).toString()).toBe('remote only');
  });

  it('a fresh instance pushing over a bucket that already holds identical files uploads nothing (compares MD5s)', async () => {
    const f = await fixture();
    const ws1 = await tempDir();
    await writeTree(ws1, {
      'same.txt': 'identical',
      'deep/same.bin': Buffer.from([0, 1, 2, 3]),
      'samesize.txt': 'AAAA',
      'bigger.txt': 'x',
    });
    expect((await f.sync({ workspaceDir: ws1 }).push()).uploadedFiles).toBe(4);

    // A copy of the workspace (new inodes, new mtimes), unchanged.
    const ws2 = await tempDir();
    await cp(ws1, ws2, { recursive: true });
    const log = recordCommands(f.client);
    const unchanged = await f.sync({ workspaceDir: ws2 }).push();
    expect(unchanged).toMatchObject({ success: true, uploadedFiles: 0, deletedFiles: 0 });
    expect(log.count('PutObjectCommand')).toBe(0);
    expect(log.count('ListObjectsV2Command')).toBe(1);

    // Same size but different bytes, and a different size: both uploaded.
    await writeFile(path.join(ws2, 'samesize.txt'), 'BBBB');
    await writeFile(path.join(ws2, 'bigger.txt'), 'xyz');
    log.reset();
    const changed = await f.sync({ workspaceDir: ws2 }).push();
    expect(changed).toMatchObject({ success: true, uploadedFiles: 2, deletedFiles: 0 });
    expect(sortKeys(log.keys('PutObjectCommand'))).toEqual(['ws/bigger.txt', 'ws/samesize.txt']);
    expect((await getObjectBytes(f.other, f.bucket, 'ws/samesize.txt')).toString()).toBe('BBBB');
  });

  it('a failed upload does not abort the push, and then nothing is deleted; the next push finishes the job', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'a1', 'b.txt': 'b1', 'c.txt': 'c1' });
    let failA = false;
    const sync = f.sync({
      workspaceDir: ws,
      contentTypeResolver: (p) => {
        if (failA && p === 'a.txt') throw new Error('resolver refused a.txt');
        return 'text/plain';
      },
    });
    expect((await sync.push()).uploadedFiles).toBe(3);

    await writeFile(path.join(ws, 'a.txt'), 'a2');
    await writeFile(path.join(ws, 'b.txt'), 'b2');
    await unlink(path.join(ws, 'c.txt'));
    failA = true;
    const failed = await sync.push();
    expect(failed.success).toBe(false);
    expect(failed.uploadedFiles).toBe(1);
    expect(failed.deletedFiles).toBe(0);
    expect(failed.failedFiles).toEqual([expect.objectContaining({ path: 'a.txt', error: expect.stringContaining('resolver refused a.txt') })]);
    expect(failed.errors).toHaveLength(1);
    expect(failed.skippedFiles).toContainEqual({ path: 'c.txt', reason: 'not-deleted: a transfer failed in this sync' });
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/a.txt', 'ws/b.txt', 'ws/c.txt']);
    expect((await getObjectBytes(f.other, f.bucket, 'ws/a.txt')).toString()).toBe('a1');
    expect((await getObjectBytes(f.other, f.bucket, 'ws/b.txt')).toString()).toBe('b2');

    failA = false;
    const log = recordCommands(f.client);
    const retried = await sync.push();
    expect(retried).toMatchObject({ success: true, uploadedFiles: 1, deletedFiles: 1 });
    expect(log.keys('PutObjectCommand')).toEqual(['ws/a.txt']);
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/a.txt', 'ws/b.txt']);
    expect((await getObjectBytes(f.other, f.bucket, 'ws/a.txt')).toString()).toBe('a2');
  });

  it('a server error on one PutObject fails only that file, after the SDK retried it (the library adds no extra round)', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'ok.txt': 'ok', 'bad.txt': 'bad' });
    // Thrown inside the SDK's retry loop (deserialize step), like a real 500 answer.
    let attempts = 0;
    f.client.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { Key?: string };
        if (context.commandName === 'PutObjectCommand' && input.Key === 'ws/bad.txt') {
          attempts++;
          throw Object.assign(new Error('We encountered an internal error. Please try again.'), {
            name: 'InternalError',
            $fault: 'server',
            $metadata: { httpStatusCode: 500 },
          });
        }
        return next(args);
      },
      { step: 'deserialize', name: 'fail-bad-put' },
    );
    const result = await f.sync({ workspaceDir: ws }).push();
    expect(result.success).toBe(false);
    expect(result.uploadedFiles).toBe(1);
    expect(result.failedFiles.map((x) => x.path)).toEqual(['bad.txt']);
    expect(result.failedFiles[0]?.error).toMatch(/server error 500/);
    // A 5xx is retryable: the SDK's standard strategy tried 3 times in all; a
    // buffered body is replayable, so the library does not multiply that.
    expect(attempts).toBe(3);
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/ok.txt']);
  });

  it('a synced file replaced by a directory: the old object is deleted and the new files uploaded', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { x: 'was a file', 'y.txt': 'y' });
    const sync = f.sync({ workspaceDir: ws });
    expect((await sync.push()).uploadedFiles).toBe(2);
    await unlink(path.join(ws, 'x'));
    await mkdir(path.join(ws, 'x'));
    await writeFile(path.join(ws, 'x', 'inner.txt'), 'inner');
    const result = await sync.push();
    expect(result).toMatchObject({ success: true, uploadedFiles: 1, deletedFiles: 1 });
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/x/inner.txt', 'ws/y.txt']);
  });

  it('local names that cannot be object keys (newline, backslash): never uploaded, the push fails them (success: false), never deleted by pull', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'ok.txt': 'ok' });
    await writeFile(path.join(ws, 'new\nline.txt'), 'x');
    await writeFile(path.join(ws, 'back\\slash.txt'), 'y');
    const sync = f.sync({ workspaceDir: ws });
    const result = await sync.push();
    // success means persisted: these two are not in the bucket
    expect(result).toMatchObject({ success: false, uploadedFiles: 1 });
    expect(result.failedFiles).toContainEqual({ path: 'new\nline.txt', code: 'INVALID_NAME', error: expect.stringMatching(/it is not in the bucket/) });
    expect(result.failedFiles).toContainEqual({ path: 'back\\slash.txt', code: 'INVALID_NAME', error: expect.stringMatching(/invalid-name/) });
    expect(await listAllKeys(f.other, f.bucket)).toEqual(['ws/ok.txt']);
    // A fresh instance mirrors the bucket, but these files are out of its reach.
    const pulled = await f.sync({ workspaceDir: ws }).pull();
    expect(pulled).toMatchObject({ success: true, deletedFiles: 0 });
    expect(Object.keys(await readTree(ws)).sort()).toEqual(['back\\slash.txt', 'new\nline.txt', 'ok.txt']);
  });

  it('push of a workspace that does not exist rejects with LocalFileError and does not create it', async () => {
    const f = await fixture();
    const missing = path.join(await tempDir(), 'nope');
    const error = await f.sync({ workspaceDir: missing }).push().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LocalFileError);
    expect((error as { code: string }).code).toBe('ENOENT');
    expect(await listAllKeys(f.other, f.bucket)).toEqual([]);
  });
});
