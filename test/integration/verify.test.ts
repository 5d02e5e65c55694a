// verify() against the local S3 server (s3rver) through the real SDK and
// S3ObjectStore: what it reports, and that it sends no request that changes
// the bucket and leaves the workspace as it was.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectCommand, UploadPartCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';

import type { S3WorkspaceSync } from '../../src/index.js';
import type { SyncContext } from '../../src/pipeline/context.js';
import { verify } from '../../src/pipeline/verify.js';
import { recordCommands, type CommandLog } from '../helpers/commands.js';
import { listAllKeys, putObjects } from '../helpers/s3.js';
import { fixture, listEntries, md5Hex, tempDir } from '../helpers/sync-fixture.js';
import { readTree, writeTree } from '../helpers/tree.js';

/** The facade's own context (no facade method yet): exactly what a `sync.verify()` would hand the stage. */
const ctxOf = (sync: S3WorkspaceSync): SyncContext => sync['ctx'];
// as S3WorkspaceSync.verify() runs it: the store looks at the client again (the command recorders added since)
const check = (sync: S3WorkspaceSync, signal?: AbortSignal) => {
  ctxOf(sync).store.startOperation?.();
  return verify(ctxOf(sync), signal === undefined ? {} : { signal });
};
const WRITES = ['PutObjectCommand', 'DeleteObjectCommand', 'DeleteObjectsCommand', 'CreateMultipartUploadCommand', 'UploadPartCommand', 'CompleteMultipartUploadCommand', 'AbortMultipartUploadCommand', 'CopyObjectCommand'];
const writes = (log: CommandLog): number => WRITES.reduce((n, name) => n + log.count(name), 0);

describe('verify() on the local S3 server', () => {
  it('a pushed tree is ok, on the instance that pushed it and on a fresh one; only a listing is sent when the snapshot proves everything', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'alpha', 'd/b.txt': 'beta', 'd/e/c.bin': Buffer.from([1, 2, 3]) });
    const sync = f.sync({ workspaceDir: ws });
    expect((await sync.push()).success).toBe(true);

    const log = recordCommands(f.client);
    expect(await check(sync)).toEqual({ ok: true, checked: 3, missingLocally: [], missingRemotely: [], different: [], unknown: [], skipped: [{ path: '.s3-workspace-sync/manifest.json', reason: 'ignored' }, { path: '.s3-workspace-sync/workspace-id', reason: 'ignored' }], manifest: { generation: 1, committedAt: expect.any(String), ok: true, missing: [], extra: [], different: [] } });
    expect(log.calls.map((c) => c.name)).toEqual(['ListObjectsV2Command']);

    expect(await check(f.sync({ workspaceDir: ws, persistState: false }))).toMatchObject({ ok: true, checked: 3 });
    expect(writes(log)).toBe(0);
  });

  it('reports a same-size local edit as different, and files only on one side as missing', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'same-size.txt': 'AAAA', 'keep.txt': 'keep', 'gone-remotely.txt': 'g' });
    const sync = f.sync({ workspaceDir: ws });
    await sync.push();
    await writeFile(path.join(ws, 'same-size.txt'), 'BBBB');
    await writeTree(ws, { 'new/local.txt': 'only here' });
    await putObjects(f.other, f.bucket, { 'ws/from-another-writer.txt': 'only there' });
    await f.other.send(new DeleteObjectCommand({ Bucket: f.bucket, Key: 'ws/gone-remotely.txt' }));

    const report = await check(sync);
    expect(report).toEqual({
      ok: false,
      checked: 5,
      missingLocally: [{ path: 'from-another-writer.txt', key: 'ws/from-another-writer.txt' }],
      missingRemotely: [{ path: 'gone-remotely.txt' }, { path: 'new/local.txt' }],
      different: [{ path: 'same-size.txt', key: 'ws/same-size.txt', localMd5: md5Hex('BBBB'), remoteMd5: md5Hex('AAAA'), localSize: 4, remoteSize: 4 }],
      unknown: [],
      skipped: [{ path: '.s3-workspace-sync/manifest.json', reason: 'ignored' }, { path: '.s3-workspace-sync/workspace-id', reason: 'ignored' }],
      // the manifest of the push does not know the other writer's upload, and names the object deleted since
      manifest: { generation: 1, committedAt: expect.any(String), ok: false, missing: ['from-another-writer.txt'], extra: ['gone-remotely.txt'], different: [] },
    });
  });

  it('ignored paths and the library folder are not compared (the remote ones are skipped); an invalid key is skipped', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'a', 'debug.log': 'local log', 'node_modules/m/index.js': 'm', '.s3-workspace-sync/junk': 'library folder' });
    const sync = f.sync({ workspaceDir: ws });
    await sync.push();
    await putObjects(f.other, f.bucket, { 'ws/remote.log': 'remote log', 'ws/.s3-workspace-sync/scratch': 'x', 'ws/back\\slash.txt': 'a backslash' });
    const report = await check(sync);
    expect(report).toMatchObject({ ok: true, checked: 1, missingLocally: [], missingRemotely: [], different: [], unknown: [] });
    expect([...report.skipped].sort((x, y) => (x.path < y.path ? -1 : 1))).toEqual([
      { path: '.s3-workspace-sync/manifest.json', reason: 'ignored' },
      { path: '.s3-workspace-sync/scratch', reason: 'ignored' },
      { path: '.s3-workspace-sync/workspace-id', reason: 'ignored' },
      { path: 'remote.log', reason: 'ignored' },
      { path: 'ws/back\\slash.txt', reason: 'invalid-key: contains a backslash' },
    ]);
  });

  // s3rver gives a multipart object the plain MD5 of its bytes as ETag (S3: md5-of-part-md5s-N, covered on
  // the in-memory store in test/pipeline/verify.test.ts): here this checks the SDK path end to end.
  it("another tool's multipart upload with the same bytes is not different", { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    const body = Buffer.alloc(6000, 9);
    await writeTree(ws, { 'big.bin': body });
    const { UploadId } = await f.other.send(new CreateMultipartUploadCommand({ Bucket: f.bucket, Key: 'ws/big.bin' }));
    const parts = [];
    for (const [i, chunk] of [body.subarray(0, 3000), body.subarray(3000)].entries()) {
      const { ETag } = await f.other.send(new UploadPartCommand({ Bucket: f.bucket, Key: 'ws/big.bin', UploadId, PartNumber: i + 1, Body: chunk }));
      parts.push({ ETag, PartNumber: i + 1 });
    }
    await f.other.send(new CompleteMultipartUploadCommand({ Bucket: f.bucket, Key: 'ws/big.bin', UploadId, MultipartUpload: { Parts: parts } }));
    const report = await check(f.sync({ workspaceDir: ws, persistState: false }));
    expect(report).toMatchObject({ ok: true, checked: 1, different: [], unknown: [] });
  });

  it('writes nothing: no write request, the bucket and the workspace unchanged, no state folder, a missing workspace not created', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'alpha', 'edited.txt': 'AAAA', 'sub/local.txt': 'l' });
    await putObjects(f.other, f.bucket, { 'ws/a.txt': 'alpha', 'ws/edited.txt': 'BBBB', 'ws/r/deep.txt': 'r', 'ws/.syncignore': '*.tmp\n' });
    const keys = await listAllKeys(f.other, f.bucket, undefined, { includeLibrary: true });
    const entries = await listEntries(ws, { includeState: true });
    const bytes = await readTree(ws, { includeState: true });
    const log = recordCommands(f.client);
    const report = await check(f.sync({ workspaceDir: ws })); // default persistState: the state is looked for, never written
    expect(report).toMatchObject({
      ok: false,
      missingLocally: [{ path: '.syncignore' }, { path: 'r/deep.txt' }],
      missingRemotely: [{ path: 'sub/local.txt' }],
      different: [{ path: 'edited.txt' }],
    });
    expect(writes(log)).toBe(0);
    expect(await listAllKeys(f.other, f.bucket, undefined, { includeLibrary: true })).toEqual(keys);
    expect(await listEntries(ws, { includeState: true })).toEqual(entries);
    expect(await readTree(ws, { includeState: true })).toEqual(bytes);
    expect(keys.some((k) => k.includes('.s3-workspace-sync'))).toBe(false); // no identity object created

    const missing = path.join(ws, 'not-there');
    const cold = await check(f.sync({ workspaceDir: missing }));
    expect(cold.missingLocally.map((m) => m.path)).toEqual(['.syncignore', 'a.txt', 'edited.txt', 'r/deep.txt']);
    expect(await listEntries(ws, { includeState: true })).toEqual(entries);
    expect(writes(log)).toBe(0);
  });

  it('aborting rejects: before the call, and while the listing is being sent', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'a' });
    await putObjects(f.other, f.bucket, { 'ws/a.txt': 'a' });
    const sync = f.sync({ workspaceDir: ws });
    const before = new AbortController();
    before.abort(new Error('stop before'));
    await expect(check(sync, before.signal)).rejects.toThrow();

    const during = new AbortController();
    recordCommands(f.client, (name) => {
      if (name === 'ListObjectsV2Command') during.abort(new Error('stop during'));
    });
    await expect(check(sync, during.signal)).rejects.toThrow();
    expect(during.signal.aborted).toBe(true);
  });
});
