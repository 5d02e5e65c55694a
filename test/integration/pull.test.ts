// pull(): what is downloaded, kept and deleted locally, observed on disk and
// through the commands the library's client sends.
import { mkdir, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';

import { recordCommands } from '../helpers/commands.js';
import { putObjects } from '../helpers/s3.js';
import { fixture, listEntries, recoveredFiles, tempDir } from '../helpers/sync-fixture.js';
import { readTree, writeTree } from '../helpers/tree.js';

const sortKeys = (keys: string[]) => [...keys].sort();
const tree = (files: Record<string, string>) =>
  Object.fromEntries(
    Object.entries(files)
      .sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
      .map(([k, v]) => [k, Buffer.from(v)]),
  );

describe('pull', () => {
  it('after remote changes, pull downloads only new and changed objects and deletes what was deleted remotely', async () => {
    const f = await fixture();
    const src = await tempDir();
    await writeTree(src, {
      'keep.txt': 'keep',
      'change.txt': 'short',
      'samesize.txt': 'AAAA',
      'gone.txt': 'gone',
      'd/gone2.txt': 'gone2',
      'd/keep.txt': 'dkeep',
      'e/only.txt': 'only',
    });
    expect((await f.sync({ workspaceDir: src }).push()).uploadedFiles).toBe(7);

    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws });
    expect((await sync.pull()).downloadedFiles).toBe(7);

    // Another client changes the bucket (plain PutObject: no library metadata).
    await putObjects(f.other, f.bucket, {
      'ws/change.txt': 'much longer now',
      'ws/samesize.txt': 'BBBB',
      'ws/new.txt': 'new',
      'ws/d/new/n.txt': 'nested new',
    });
    for (const key of ['ws/gone.txt', 'ws/d/gone2.txt', 'ws/e/only.txt']) {
      await f.other.send(new DeleteObjectCommand({ Bucket: f.bucket, Key: key }));
    }

    const log = recordCommands(f.client);
    const result = await sync.pull();
    expect(result.success).toBe(true);
    expect(result.failedFiles).toEqual([]);
    expect(sortKeys(log.keys('GetObjectCommand'))).toEqual([
      'ws/change.txt',
      'ws/d/new/n.txt',
      'ws/new.txt',
      'ws/samesize.txt',
    ]);
    expect(result.downloadedFiles).toBe(4);
    expect(result.deletedFiles).toBe(3);
    expect(result.skippedFiles).toEqual([]);
    expect(await readTree(ws)).toEqual(
      tree({
        'change.txt': 'much longer now',
        'd/keep.txt': 'dkeep',
        'd/new/n.txt': 'nested new',
        'keep.txt': 'keep',
        'new.txt': 'new',
        'samesize.txt': 'BBBB',
      }),
    );
    // The directory emptied by the deletions is removed; non-empty ones stay.
    expect(await listEntries(ws)).not.toContain('e/');
    expect(await listEntries(ws)).toContain('d/');

    // Nothing left to do.
    log.reset();
    expect(await sync.pull()).toMatchObject({ success: true, downloadedFiles: 0, deletedFiles: 0 });
    expect(log.count('GetObjectCommand')).toBe(0);
  });

  it("downloaded files get the uploaded mtime (metadata, else LastModified); a following push uploads nothing", async () => {
    const f = await fixture();
    const src = await tempDir();
    await writeTree(src, { 'a.txt': 'a', 'sub/b.json': '{}' });
    const old = new Date('2020-02-02T02:02:02.123Z');
    await utimes(path.join(src, 'a.txt'), old, old);
    expect((await f.sync({ workspaceDir: src }).push()).success).toBe(true);
    await putObjects(f.other, f.bucket, { 'ws/planted.txt': 'no metadata' });

    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws });
    expect((await sync.pull()).downloadedFiles).toBe(3);

    for (const rel of ['a.txt', 'sub/b.json']) {
      const head = await f.other.send(new HeadObjectCommand({ Bucket: f.bucket, Key: `ws/${rel}` }));
      const st = await stat(path.join(ws, rel));
      expect(Math.round(st.mtimeMs), rel).toBe(Math.round(Number(head.Metadata?.mtime) * 1000));
    }
    expect(Math.round((await stat(path.join(ws, 'a.txt'))).mtimeMs)).toBe(old.getTime());
    const planted = await f.other.send(new HeadObjectCommand({ Bucket: f.bucket, Key: 'ws/planted.txt' }));
    expect((await stat(path.join(ws, 'planted.txt'))).mtimeMs).toBe(planted.LastModified?.getTime());

    const log = recordCommands(f.client);
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 0, deletedFiles: 0 });
    expect(log.count('PutObjectCommand')).toBe(0);
  });

  it('an instance that synced before keeps files created or modified locally (skippedFiles) instead of deleting/overwriting them', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, {
      'mod-local.txt': 'v1',
      'mod-local-del-remote.txt': 'v1',
      'mod-both.txt': 'v1',
      'del-remote.txt': 'v1',
      'mod-remote.txt': 'v1',
    });
    const sync = f.sync({ workspaceDir: ws });
    expect((await sync.push()).uploadedFiles).toBe(5);

    // Local work since the sync.
    await writeTree(ws, {
      'mod-local.txt': 'local v2',
      'mod-local-del-remote.txt': 'local v2',
      'mod-both.txt': 'local v2',
      'created-local.txt': 'mine',
      'created-both.txt': 'mine too',
    });
    // Remote changes since the sync.
    await putObjects(f.other, f.bucket, {
      'ws/mod-both.txt': 'remote v2',
      'ws/mod-remote.txt': 'remote v2',
      'ws/created-both.txt': 'theirs',
    });
    for (const key of ['ws/mod-local-del-remote.txt', 'ws/del-remote.txt']) {
      await f.other.send(new DeleteObjectCommand({ Bucket: f.bucket, Key: key }));
    }

    const result = await sync.pull();
    // changed (or created) on both sides: conflicts, kept in place and reported (policy 'fail', the default);
    // they hold no deletion back
    expect(result.success).toBe(false);
    expect(result.conflicts.map((c) => [c.path, c.action, c.resolution]).sort()).toEqual([
      ['created-both.txt', 'download', 'reported'],
      ['mod-both.txt', 'download', 'reported'],
    ]);
    expect(result.failedFiles.map((f) => [f.path, f.code]).sort()).toEqual([
      ['created-both.txt', 'CONFLICT'],
      ['mod-both.txt', 'CONFLICT'],
    ]);
    expect(result.downloadedFiles).toBe(1);
    expect(result.deletedFiles).toBe(1);
    expect([...result.skippedFiles].sort((a, b) => a.path.localeCompare(b.path))).toEqual([
      { path: 'created-both.txt', reason: 'created-locally' },
      { path: 'created-local.txt', reason: 'created-locally' },
      { path: 'mod-both.txt', reason: 'modified-locally' },
      { path: 'mod-local-del-remote.txt', reason: 'modified-locally' },
      { path: 'mod-local.txt', reason: 'modified-locally' },
    ]);
    expect(await readTree(ws)).toEqual(
      tree({
        'created-both.txt': 'mine too',
        'created-local.txt': 'mine',
        'mod-both.txt': 'local v2',
        'mod-local-del-remote.txt': 'local v2',
        'mod-local.txt': 'local v2',
        'mod-remote.txt': 'remote v2',
      }),
    );
  });

  it('a file only touched locally (same bytes) is still deleted when deleted remotely', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'touched.txt': 'same', 'other.txt': 'x' });
    const sync = f.sync({ workspaceDir: ws });
    await sync.push();
    const later = new Date(Date.now() + 60_000);
    await utimes(path.join(ws, 'touched.txt'), later, later);
    await f.other.send(new DeleteObjectCommand({ Bucket: f.bucket, Key: 'ws/touched.txt' }));
    const result = await sync.pull();
    expect(result).toMatchObject({ success: true, deletedFiles: 1, skippedFiles: [] });
    expect(Object.keys(await readTree(ws))).toEqual(['other.txt']);
  });

  it('a file deleted locally is restored by the next pull of the same instance', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'a', 'b.txt': 'b' });
    const sync = f.sync({ workspaceDir: ws });
    await sync.push();
    await unlink(path.join(ws, 'a.txt'));
    const result = await sync.pull();
    expect(result).toMatchObject({ success: true, downloadedFiles: 1, deletedFiles: 0 });
    expect(await readTree(ws)).toEqual(tree({ 'a.txt': 'a', 'b.txt': 'b' }));
  });

  it("a fresh instance's pull mirrors the bucket: local-only and differing files are moved into the recovery area, never destroyed", async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, { 'ws/a.txt': 'remote a', 'ws/d/b.txt': 'remote b' });
    const ws = await tempDir();
    await writeTree(ws, {
      'a.txt': 'local a, different',
      'd/b.txt': 'remote b',
      'local-only.txt': 'x',
      'only/dir/file.txt': 'y',
    });
    const log = recordCommands(f.client);
    const result = await f.sync({ workspaceDir: ws }).pull();
    expect(result).toMatchObject({ success: true, downloadedFiles: 1, deletedFiles: 2, failedFiles: [], skippedFiles: [] });
    expect(log.keys('GetObjectCommand')).toEqual(['ws/a.txt']); // d/b.txt is identical: not downloaded
    expect(await readTree(ws)).toEqual(tree({ 'a.txt': 'remote a', 'd/b.txt': 'remote b' }));
    expect(await listEntries(ws)).toEqual(['a.txt', 'd/', 'd/b.txt']);
    // Nothing proves the local-only and differing files were ever in the bucket: moved aside, byte for byte.
    expect(result.movedAside.map((m) => [m.path, m.reason]).sort()).toEqual([
      ['a.txt', 'differs-from-remote'],
      ['local-only.txt', 'not-in-remote'],
      ['only/dir/file.txt', 'not-in-remote'],
    ]);
    expect(await recoveredFiles(ws)).toEqual(tree({ 'a.txt': 'local a, different', 'local-only.txt': 'x', 'only/dir/file.txt': 'y' }));
    for (const m of result.movedAside) expect(m.movedTo.endsWith(`/${m.path}`) && m.movedTo.includes('/.s3-workspace-sync/recovered/')).toBe(true);
  });

  it('a fresh instance pulling into a workspace that already matches downloads nothing', async () => {
    const f = await fixture();
    const files = { 'a.txt': 'a', 'x/y/z.bin': 'zzz', 'empty': '' };
    const src = await tempDir();
    await writeTree(src, files);
    await f.sync({ workspaceDir: src }).push();
    const ws = await tempDir();
    await writeTree(ws, files);
    const log = recordCommands(f.client);
    const result = await f.sync({ workspaceDir: ws }).pull();
    expect(result).toMatchObject({ success: true, downloadedFiles: 0, deletedFiles: 0, bytesTransferred: 0 });
    expect(log.count('GetObjectCommand')).toBe(0);
  });

  it('pull removes leftover temporary download files and never uploads them', async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, { 'ws/a.txt': 'a' });
    const ws = await tempDir();
    await mkdir(path.join(ws, 'sub'));
    await writeFile(path.join(ws, '.abc123.s3ws-tmp'), 'partial');
    await writeFile(path.join(ws, 'sub', '.def456.s3ws-tmp'), 'partial');
    const sync = f.sync({ workspaceDir: ws });
    const pushed = await sync.push();
    expect(pushed.uploadedFiles).toBe(0);
    const result = await sync.pull();
    expect(result.success).toBe(true);
    expect(await listEntries(ws)).not.toContain('.abc123.s3ws-tmp');
    expect(await listEntries(ws)).not.toContain('sub/.def456.s3ws-tmp');
    expect(Object.keys(await readTree(ws))).toEqual(['a.txt']);
  });
});
