// The warm-container flow: one instance lives across invocations. It pulls,
// the agent edits, creates and deletes files, a push FAILS, and the next
// invocation pulls on the same instance before pushing again. The unpushed
// work (created and modified files) must survive that pull, be reported
// (keptLocal and skippedFiles), and be persisted by the next successful
// push, without clobbering what another writer changed meanwhile.
//
// Failure modes (table):
//  - the bucket refuses the credentials: the client's credential provider
//    starts returning an access key the server does not know (s3rver answers
//    403 InvalidAccessKeyId, as S3 does for a revoked key);
//  - every PutObject fails (503 SlowDown injected by a command middleware);
//  - only the uploads of the new files fail (the modified file gets through).
import { unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { describe, expect, it, onTestFinished } from 'vitest';

import { S3WorkspaceSync, silentLogger, StorageError, type SyncResult } from '../../src/index.js';
import { recordCommands } from '../helpers/commands.js';
import { getObjectBytes, listAllKeys, putObjects, s3Endpoint, TEST_CREDENTIALS, TEST_REGION } from '../helpers/s3.js';
import { fixture, tempDir } from '../helpers/sync-fixture.js';
import { readTree } from '../helpers/tree.js';

type Mode = 'credentials-refused' | 'all-puts-fail' | 'new-file-puts-fail';

const REMOTE_V1 = { 'ws/a.txt': 'a v1', 'ws/b.txt': 'b v1', 'ws/c.txt': 'c v1', 'ws/dir/d.txt': 'd v1' };
const AGENT = { 'a.txt': 'a edited by the agent', 'new.txt': 'created by the agent', 'dir/new2.txt': 'also created by the agent' };

const tree = (files: Record<string, string>): Record<string, Buffer> =>
  Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)]));

describe('warm container: pull, edit, failed push, pull, push', () => {
  it.each<[string, Mode]>([
    ['the bucket refuses the credentials (403 InvalidAccessKeyId)', 'credentials-refused'],
    ['every PutObject fails (503 SlowDown)', 'all-puts-fail'],
    ['only the new files fail to upload (the modified one gets through)', 'new-file-puts-fail'],
  ])('%s: the unpushed work survives the pull, is reported, and the next push persists it', { timeout: 30_000 }, async (_label, mode) => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, REMOTE_V1);
    const ws = await tempDir('s3ws-warm-');

    // A client whose credentials can be revoked: the provider is asked again
    // for every request (the identity says it expires now).
    let revoked = false;
    const client = new S3Client({
      endpoint: s3Endpoint(),
      region: TEST_REGION,
      forcePathStyle: true,
      credentials: async () => ({
        ...(revoked ? { accessKeyId: 'REVOKED', secretAccessKey: 'REVOKED' } : TEST_CREDENTIALS),
        expiration: new Date(Date.now()),
      }),
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    onTestFinished(() => client.destroy());
    let failPuts: ((key: string) => boolean) | undefined;
    const log = recordCommands(client, (name, input) => {
      if (name === 'PutObjectCommand' && failPuts?.(String(input.Key))) {
        throw new S3ServiceException({ name: 'SlowDown', $fault: 'server', $metadata: { httpStatusCode: 503 }, message: 'Please reduce your request rate.' });
      }
    });
    const sync = new S3WorkspaceSync({ bucket: f.bucket, prefix: 'ws/', workspaceDir: ws, s3Client: client, logger: silentLogger });

    // 1. Cold start.
    expect(await sync.pull()).toMatchObject({ success: true, downloadedFiles: 4, failedFiles: [] });

    // 2. The agent works: edits a.txt, creates two files, deletes c.txt.
    for (const [rel, body] of Object.entries(AGENT)) await writeFile(path.join(ws, rel), body);
    await unlink(path.join(ws, 'c.txt'));
    const localWork = await readTree(ws);

    // 3. The push fails.
    if (mode === 'credentials-refused') revoked = true;
    if (mode === 'all-puts-fail') failPuts = () => true;
    // the workspace's new files only (not a.txt, not the library's lease and manifest)
    if (mode === 'new-file-puts-fail') failPuts = (key) => key !== 'ws/a.txt' && !key.includes('.s3-workspace-sync/');
    log.reset();
    let failed: SyncResult | undefined;
    let rejected: unknown;
    try {
      failed = await sync.push();
    } catch (error) {
      rejected = error;
    }
    revoked = false;
    failPuts = undefined;
    if (rejected !== undefined) {
      // A whole-push failure must be a typed StorageError.
      expect(rejected).toBeInstanceOf(StorageError);
    } else {
      const r = failed as SyncResult;
      expect(r.success).toBe(false);
      const expectFailed = mode === 'new-file-puts-fail' ? ['dir/new2.txt', 'new.txt'] : ['a.txt', 'dir/new2.txt', 'new.txt'];
      expect(r.failedFiles.map((x) => x.path).sort()).toEqual(expectFailed);
      for (const x of r.failedFiles) expect(x.code, x.path).toMatch(mode === 'credentials-refused' ? /^(INVALID_CREDENTIALS|ACCESS_DENIED)$/ : /^THROTTLED$/);
      expect(r.deletedFiles).toBe(0);
      expect(r.skippedFiles).toContainEqual({ path: 'c.txt', reason: 'not-deleted: a transfer failed in this sync' });
    }
    console.log(
      `[warm-container] ${mode}: failed push ${
        rejected !== undefined
          ? `rejected ${(rejected as Error).name} ${(rejected as { code?: string }).code}`
          : `resolved, failedFiles ${(failed as SyncResult).failedFiles.map((x) => `${x.path}:${x.code}`).join(', ')}`
      }`,
    );
    expect(log.count('DeleteObjectsCommand')).toBe(0);
    const afterFailedPush = await listAllKeys(f.other, f.bucket);
    expect(afterFailedPush).toEqual(['ws/a.txt', 'ws/b.txt', 'ws/c.txt', 'ws/dir/d.txt']);
    expect((await getObjectBytes(f.other, f.bucket, 'ws/a.txt')).toString()).toBe(mode === 'new-file-puts-fail' ? AGENT['a.txt'] : 'a v1');

    // 4. Meanwhile, another writer changes b.txt and adds remote.txt.
    await putObjects(f.other, f.bucket, { 'ws/b.txt': 'b v2 from another writer', 'ws/remote.txt': 'added remotely' });

    // 5. Next invocation: pull on the same instance.
    const pulled = await sync.pull();
    expect(pulled.failedFiles).toEqual([]);
    expect(pulled.success).toBe(true);
    const kept = mode === 'new-file-puts-fail'
      ? [
          { path: 'dir/new2.txt', reason: 'created-locally' },
          { path: 'new.txt', reason: 'created-locally' },
        ]
      : [
          { path: 'a.txt', reason: 'modified-locally' },
          { path: 'dir/new2.txt', reason: 'created-locally' },
          { path: 'new.txt', reason: 'created-locally' },
        ];
    const byPath = (x: { path: string }, y: { path: string }) => (x.path < y.path ? -1 : 1);
    expect([...pulled.keptLocal].sort(byPath)).toEqual(kept);
    for (const k of kept) expect(pulled.skippedFiles).toContainEqual(k);
    expect(pulled.deletedFiles).toBe(0);
    const afterPull = await readTree(ws);
    for (const rel of Object.keys(AGENT)) expect(afterPull[rel]?.equals(localWork[rel]!), `${rel}: the agent's work survives`).toBe(true);
    expect(afterPull['b.txt']?.toString()).toBe('b v2 from another writer');
    expect(afterPull['remote.txt']?.toString()).toBe('added remotely');
    // c.txt's deletion was never pushed: the bucket still has it, so pull restores it (documented).
    expect(afterPull['c.txt']?.toString()).toBe('c v1');

    // 6. The push succeeds now and persists the unpushed work.
    log.reset();
    const pushed = await sync.push();
    expect(pushed).toMatchObject({ success: true, failedFiles: [], deletedFiles: 0 });
    expect(log.keys('PutObjectCommand').sort()).toEqual(
      (mode === 'new-file-puts-fail' ? ['ws/dir/new2.txt', 'ws/new.txt'] : ['ws/a.txt', 'ws/dir/new2.txt', 'ws/new.txt']).sort(),
    );
    const expected = {
      'a.txt': AGENT['a.txt'],
      'b.txt': 'b v2 from another writer',
      'c.txt': 'c v1',
      'dir/d.txt': 'd v1',
      'dir/new2.txt': AGENT['dir/new2.txt'],
      'new.txt': AGENT['new.txt'],
      'remote.txt': 'added remotely',
    };
    for (const [rel, body] of Object.entries(expected)) expect((await getObjectBytes(f.other, f.bucket, `ws/${rel}`)).toString(), rel).toBe(body);
    expect(await listAllKeys(f.other, f.bucket)).toEqual(Object.keys(expected).map((k) => `ws/${k}`).sort());

    // 7. A new container restores exactly that.
    const fresh = await tempDir('s3ws-warm-fresh-');
    expect(await f.sync({ workspaceDir: fresh }).pull()).toMatchObject({ success: true, failedFiles: [] });
    expect(await readTree(fresh)).toEqual(tree(expected));
    expect(await readTree(ws)).toEqual(tree(expected));
  });
});
