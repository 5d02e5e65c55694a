// verify(): the workspace against the bucket, on real temp directories and
// the strict in-memory store (exact request counts, SSE-KMS, another tool's
// multipart objects). It must report every difference and change nothing.
import { createHash } from 'node:crypto';
import { rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { S3WorkspaceSync, silentLogger } from '../../src/index.js';
import type { SyncContext } from '../../src/pipeline/context.js';
import { verify } from '../../src/pipeline/verify.js';
import { MemoryObjectStore, type MemoryObjectStoreOptions, type MemoryOperation } from '../../src/storage/MemoryObjectStore.js';
import { listEntries, tempDir } from '../helpers/sync-fixture.js';
import { readTree, writeTree } from '../helpers/tree.js';

const PREFIX = 'ws/';
const md5 = (s: string | Buffer): string => createHash('md5').update(s).digest('hex');
const WRITES: MemoryOperation[] = ['put', 'deleteMany', 'createMultipart', 'uploadPart', 'completeMultipart', 'abortMultipart'];

async function setup(options: MemoryObjectStoreOptions = {}, files: Record<string, string | Buffer> = {}) {
  const store = new MemoryObjectStore({ minPartSize: 1024, ...options });
  const ws = await tempDir();
  await writeTree(ws, files);
  const make = (extra: Record<string, unknown> = {}): S3WorkspaceSync => {
    const sync = new S3WorkspaceSync({ bucket: 'mem', prefix: PREFIX, workspaceDir: ws, logger: silentLogger, ...extra }, { store: () => store });
    onTestFinished(() => sync.destroy());
    return sync;
  };
  return { store, ws, make };
}

/** The facade's own context (no facade method yet): exactly what a `sync.verify()` would hand the stage. */
const ctxOf = (sync: S3WorkspaceSync): SyncContext => sync['ctx'];
const check = (sync: S3WorkspaceSync, signal?: AbortSignal) => verify(ctxOf(sync), signal === undefined ? {} : { signal });
const writes = (store: MemoryObjectStore): number => WRITES.reduce((n, op) => n + store.requestCount(op), 0);
const paths = (list: Array<{ path: string }>): string[] => list.map((e) => e.path);

describe('verify() on the in-memory store', () => {
  it('an in-sync tree is ok: on the instance that pushed it (stat rule: no hash, no HEAD) and on a fresh one without state', { timeout: 10_000 }, async () => {
    const { store, make } = await setup({}, { 'a.txt': 'alpha', 'src/b.ts': 'export const b = 2;\n', 'empty.txt': '' });
    const sync = make();
    expect((await sync.push()).success).toBe(true);
    store.resetRequestCounts();
    const warm = await check(sync);
    expect(warm).toEqual({ ok: true, checked: 3, missingLocally: [], missingRemotely: [], different: [], unknown: [], skipped: [{ path: '.s3-workspace-sync/manifest.json', reason: 'ignored' }, { path: '.s3-workspace-sync/workspace-id', reason: 'ignored' }], manifest: { generation: 1, committedAt: expect.any(String), ok: true, missing: [], extra: [], different: [] } });
    expect(store.requestCounts()).toMatchObject({ list: 1, head: 0, get: 0 });
    expect(store.requestCount()).toBe(1);

    const fresh = await check(make({ persistState: false }));
    expect(fresh).toMatchObject({ ok: true, checked: 3, missingLocally: [], missingRemotely: [], different: [], unknown: [] });
  });

  it('a file edited locally with the same size is different (hashed, both MD5s reported); a size change too', { timeout: 10_000 }, async () => {
    const { store, ws, make } = await setup({}, { 'same-size.txt': 'AAAA', 'grown.txt': 'abc', 'kept.txt': 'kept' });
    const sync = make();
    await sync.push();
    await writeFile(path.join(ws, 'same-size.txt'), 'BBBB');
    await writeFile(path.join(ws, 'grown.txt'), 'abcdef');
    store.resetRequestCounts();
    const report = await check(sync);
    expect(report.ok).toBe(false);
    expect(report.checked).toBe(3);
    expect(report.different).toEqual([
      // the objects are the versions this instance synced: the snapshot proves their MD5s
      { path: 'grown.txt', key: 'ws/grown.txt', localMd5: md5('abcdef'), remoteMd5: md5('abc'), localSize: 6, remoteSize: 3 },
      { path: 'same-size.txt', key: 'ws/same-size.txt', localMd5: md5('BBBB'), remoteMd5: md5('AAAA'), localSize: 4, remoteSize: 4 },
    ]);
    expect(report.unknown).toEqual([]);
    // no HEAD: the snapshot recorded these ETags with their MD5s
    expect(store.requestCounts()).toMatchObject({ list: 1, head: 0, get: 0 });
  });

  it('a file only local and an object only remote are listed as such', { timeout: 10_000 }, async () => {
    const { store, make } = await setup({}, { 'both.txt': 'both', 'local-only.txt': 'mine', 'dir/local-only-2.txt': 'mine too' });
    store.seedObject('ws/both.txt', 'both', { md5: true });
    store.seedObject('ws/remote-only.txt', 'theirs');
    store.seedObject('ws/deep/remote-only-2.txt', 'theirs too');
    const report = await check(make({ persistState: false }));
    expect(report).toMatchObject({
      ok: false,
      checked: 5,
      missingLocally: [
        { path: 'deep/remote-only-2.txt', key: 'ws/deep/remote-only-2.txt' },
        { path: 'remote-only.txt', key: 'ws/remote-only.txt' },
      ],
      missingRemotely: [{ path: 'dir/local-only-2.txt' }, { path: 'local-only.txt' }],
      different: [],
      unknown: [],
    });
  });

  it('SSE-KMS objects without a metadata MD5 are unknown (same bytes or not), never different or equal by guess; a size difference is still different', { timeout: 10_000 }, async () => {
    const { store, make } = await setup({ bucketEncryption: 'aws:kms' }, { 'same.txt': 'same', 'diff.txt': 'mine', 'short.txt': 'longer locally', 'with-md5.txt': 'proven' });
    store.seedObject('ws/same.txt', 'same', { md5: false });
    store.seedObject('ws/diff.txt', 'them', { md5: false });
    store.seedObject('ws/short.txt', 'short', { md5: false });
    store.seedObject('ws/with-md5.txt', 'proven', { md5: true });
    const report = await check(make({ persistState: false }));
    expect(report.ok).toBe(false);
    expect(report.checked).toBe(4);
    expect(paths(report.unknown)).toEqual(['diff.txt', 'same.txt']);
    for (const u of report.unknown) expect(u.reason).toMatch(/^no-md5: .*aws:kms/);
    expect(report.different).toEqual([{ path: 'short.txt', key: 'ws/short.txt', localMd5: md5('longer locally'), localSize: 14, remoteSize: 5 }]);
    expect(report.missingLocally).toEqual([]);
    expect(report.missingRemotely).toEqual([]);
  });

  it('SSE-KMS with equal size and recorded mtime is still unknown: the last-resort rule of a sync is not used', { timeout: 10_000 }, async () => {
    const { store, ws, make } = await setup({ bucketEncryption: 'aws:kms' }, { 'same-time.txt': 'xxxx' });
    const { mtimeMs } = await stat(path.join(ws, 'same-time.txt'));
    store.seedObject('ws/same-time.txt', 'yyyy', { md5: false, mtimeMs });
    // a pull would take it as unchanged (size + mtime); verify must not
    const report = await check(make({ persistState: false }));
    expect(report.different).toEqual([]);
    expect(report.unknown).toEqual([{ path: 'same-time.txt', key: 'ws/same-time.txt', reason: expect.stringMatching(/^no-md5/) }]);
  });

  it('a tree this library pushed to an SSE-KMS bucket verifies ok from a fresh instance (its metadata MD5 decides)', { timeout: 10_000 }, async () => {
    const { make } = await setup({ bucketEncryption: 'aws:kms' }, { 'a.txt': 'alpha', 'b/c.txt': 'gamma' });
    await make({ persistState: false }).push();
    expect(await check(make({ persistState: false }))).toMatchObject({ ok: true, checked: 2 });
  });

  it("the saved state proves what a sync left identical: another tool's SSE-KMS object, pulled, verifies ok from a new process (unknown without state)", { timeout: 10_000 }, async () => {
    const { store, make } = await setup({ bucketEncryption: 'aws:kms' }, {});
    // with mtime metadata: the download restores that (past) mtime, so the snapshot entry is not racy
    store.seedObject('ws/foreign.txt', 'no md5 anywhere', { md5: false, mtimeMs: Date.now() - 3_600_000 });
    expect((await make().pull()).downloadedFiles).toBe(1); // verified while downloading; the snapshot records MD5 and ETag
    store.resetRequestCounts();
    expect(await check(make())).toMatchObject({ ok: true, checked: 1, unknown: [] }); // a new instance loads the state file
    expect(store.requestCounts()).toMatchObject({ list: 1, head: 0, get: 0 });
    // without state: equal size and recorded mtime would satisfy a pull (last resort), not verify
    const stateless = await check(make({ persistState: false }));
    expect(stateless.unknown).toEqual([{ path: 'foreign.txt', key: 'ws/foreign.txt', reason: expect.stringMatching(/^no-md5/) }]);
    expect((await make({ persistState: false }).pull()).downloadedFiles).toBe(0);
  });

  // Was a library bug: a file downloaded from an object without mtime metadata gets a fresh mtime,
  // so its snapshot entry is racy and the stat rule never applies; nothing else told the object's
  // MD5 (SSE-KMS, no md5chksum), so verify() said `unknown` and every later pull downloaded it
  // again. compare.ts now gives an object whose ETag is the snapshot's the snapshot's MD5.
  it("another tool's SSE-KMS object without mtime metadata, just pulled, verifies ok, and the next pull downloads nothing", { timeout: 10_000 }, async () => {
    const { store, make } = await setup({ bucketEncryption: 'aws:kms' }, {});
    store.seedObject('ws/foreign.txt', 'no md5, no mtime', { md5: false });
    const sync = make();
    expect((await sync.pull()).downloadedFiles).toBe(1);
    await new Promise((r) => setTimeout(r, 250));
    expect(await check(sync)).toMatchObject({ ok: true, unknown: [] });
    store.resetRequestCounts();
    expect((await sync.pull()).downloadedFiles).toBe(0);
    expect(store.requestCount('get')).toBe(0);
  });

  // Was a library bug: loading the state unlinked `state-<id>.json.<hex>.tmp` files, also without
  // the workspace lock (verify(), dry runs), where such a file may be another process's save in
  // progress. Only a sync holding the lock cleans them up now (StateFile.load's `cleanup`).
  it('loading the state removes nothing from the state folder (a leftover or in-progress save temp file stays)', { timeout: 10_000 }, async () => {
    const { ws, make } = await setup({}, { 'a.txt': 'a' });
    await make().push();
    const id = createHash('sha256').update(`mem\0${PREFIX}`).digest('hex').slice(0, 16);
    const temp = path.join(ws, '.s3-workspace-sync', `state-${id}.json.0123456789ab.tmp`);
    await writeFile(temp, '{"half": "written"');
    await check(make());
    await expect(stat(temp)).resolves.toBeDefined();
  });

  it('ignored files, the library folder and invalid keys are not compared; the remote ones are listed as skipped', { timeout: 10_000 }, async () => {
    const { store, ws, make } = await setup({}, { 'a.txt': 'a', 'debug.log': 'local log', 'node_modules/x/index.js': 'x', '.env': 'SECRET=1' });
    const sync = make();
    await sync.push(); // creates the identity object and the local state folder
    await writeTree(ws, { '.s3-workspace-sync/junk.txt': 'the library folder, locally' });
    store.seedObject('ws/debug.log', 'a remote log');
    store.seedObject('ws/node_modules/y/index.js', 'y');
    store.seedObject('ws/.s3-workspace-sync/other-tool-scratch', 'reserved');
    store.seedObject('ws/bad\\name.txt', 'backslash');
    store.seedObject('ws/folder/', '');
    const report = await check(sync);
    expect(report).toMatchObject({ ok: true, checked: 1, missingLocally: [], missingRemotely: [], different: [], unknown: [] });
    expect([...report.skipped].sort((x, y) => (x.path < y.path ? -1 : 1))).toEqual([
      { path: '.s3-workspace-sync/manifest.json', reason: 'ignored' },
      { path: '.s3-workspace-sync/other-tool-scratch', reason: 'ignored' },
      { path: '.s3-workspace-sync/workspace-id', reason: 'ignored' },
      { path: 'debug.log', reason: 'ignored' },
      { path: 'node_modules/y/index.js', reason: 'ignored' },
      { path: 'ws/bad\\name.txt', reason: 'invalid-key: contains a backslash' },
      { path: 'ws/folder/', reason: 'directory-marker' },
    ]);
  });

  it("another tool's multipart object without an MD5: equal when the local file reproduces its ETag, unknown when it does not", { timeout: 10_000 }, async () => {
    const body = Buffer.alloc(5000, 7);
    const other = Buffer.from(body);
    other[4000] = 8;
    const { store, make } = await setup({}, { 'big.bin': body, 'edited.bin': other });
    store.seedObject('ws/big.bin', body, { partSize: 2048 });
    store.seedObject('ws/edited.bin', body, { partSize: 2048 });
    expect(store.inspect('ws/big.bin')?.etag).toMatch(/-3$/);
    const report = await check(make({ persistState: false }));
    expect(report.checked).toBe(2);
    expect(report.different).toEqual([]);
    expect(report.unknown).toEqual([{ path: 'edited.bin', key: 'ws/edited.bin', reason: expect.stringMatching(/^multipart-etag-mismatch: .*2048/) }]);
    expect(store.requestCounts()).toMatchObject({ head: 2, firstPartSize: 2, get: 0, getRange: 0 });
  });

  it('writes nothing: no request that changes the bucket, the workspace byte-identical, no state folder, no directory created', { timeout: 10_000 }, async () => {
    const { store, ws, make } = await setup({}, { 'a.txt': 'alpha', 'edited.txt': 'AAAA', 'sub/local-only.txt': 'l' });
    store.seedObject('ws/a.txt', 'alpha', { md5: true });
    store.seedObject('ws/edited.txt', 'BBBB');
    store.seedObject('ws/remote-only/deep/file.txt', 'r');
    store.seedObject('ws/.syncignore', '*.tmp\n'); // the bucket's ignore rules are read (GET), never written locally
    const entries = await listEntries(ws, { includeState: true });
    const bytes = await readTree(ws, { includeState: true });
    const keys = store.keys();
    // the default persistState: the state is looked for in <workspace>/.s3-workspace-sync, never created
    const report = await check(make());
    expect(report).toMatchObject({
      ok: false,
      missingLocally: [{ path: '.syncignore' }, { path: 'remote-only/deep/file.txt' }],
      missingRemotely: [{ path: 'sub/local-only.txt' }],
      different: [{ path: 'edited.txt' }],
    });
    expect(writes(store)).toBe(0);
    expect(store.keys()).toEqual(keys);
    expect(await listEntries(ws, { includeState: true })).toEqual(entries);
    expect(await readTree(ws, { includeState: true })).toEqual(bytes);
    expect(entries.some((e) => e.startsWith('.s3-workspace-sync'))).toBe(false);
  });

  it('a missing workspace is empty: every object is missing locally, and the directory is not created', { timeout: 10_000 }, async () => {
    const { store, ws, make } = await setup({}, {});
    await rm(ws, { recursive: true });
    store.seedObject('ws/a.txt', 'a', { md5: true });
    store.seedObject('ws/b/c.txt', 'c');
    const report = await check(make());
    expect(report).toEqual({
      ok: false,
      checked: 2,
      missingLocally: [
        { path: 'a.txt', key: 'ws/a.txt' },
        { path: 'b/c.txt', key: 'ws/b/c.txt' },
      ],
      missingRemotely: [],
      different: [],
      unknown: [],
      skipped: [],
      manifest: null,
    });
    await expect(stat(ws)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(writes(store)).toBe(0);
  });

  it('an empty prefix and an empty workspace are ok (0 checked)', { timeout: 10_000 }, async () => {
    const { make } = await setup({}, {});
    expect(await check(make())).toEqual({ ok: true, checked: 0, missingLocally: [], missingRemotely: [], different: [], unknown: [], skipped: [], manifest: null });
  });

  it('a symlink where the bucket has a file cannot be compared: unknown, and the link is skipped', { timeout: 10_000 }, async () => {
    const { store, ws, make } = await setup({}, { 'target.txt': 'x' });
    await symlink('target.txt', path.join(ws, 'link.txt'));
    store.seedObject('ws/target.txt', 'x', { md5: true });
    store.seedObject('ws/link.txt', 'x', { md5: true });
    const report = await check(make({ persistState: false }));
    expect(report.unknown).toEqual([{ path: 'link.txt', key: 'ws/link.txt', reason: expect.stringMatching(/^local-not-comparable: "link.txt" is symlink/) }]);
    expect(report.skipped).toEqual([{ path: 'link.txt', reason: 'symlink' }]);
    expect(report.missingLocally).toEqual([]);
  });

  it('a key that other keys use as a directory cannot be compared with the local file at its path: unknown, not missing', { timeout: 10_000 }, async () => {
    const { store, make } = await setup({}, { a: 'file a' });
    store.seedObject('ws/a', 'file a', { md5: true });
    store.seedObject('ws/a/b.txt', 'b');
    const report = await check(make({ persistState: false }));
    expect(report.unknown).toEqual([{ path: 'a', key: 'ws/a', reason: expect.stringMatching(/^remote-not-comparable/) }]);
    expect(report.missingRemotely).toEqual([]);
    expect(report.missingLocally).toEqual([{ path: 'a/b.txt', key: 'ws/a/b.txt' }]);
    expect(report.skipped).toContainEqual({ path: 'a', reason: 'file-directory-conflict: other keys use this path as a directory' });
  });

  it('a HEAD that fails leaves the object unknown ("unconfirmed"), not different', { timeout: 10_000 }, async () => {
    const { store, make } = await setup({ bucketEncryption: 'aws:kms' }, { 'a.txt': 'mine' });
    store.seedObject('ws/a.txt', 'them', { md5: true });
    store.failNext('head', new Error('network down'), 10);
    const report = await check(make({ persistState: false, maxAttempts: 1 }));
    expect(report.different).toEqual([]);
    expect(report.unknown).toEqual([{ path: 'a.txt', key: 'ws/a.txt', reason: expect.stringMatching(/^unconfirmed/) }]);
  });

  it('aborting rejects: a signal aborted before the call, and one that fires during the listing', { timeout: 10_000 }, async () => {
    const { store, make } = await setup({}, { 'a.txt': 'a' });
    store.seedObject('ws/a.txt', 'a', { md5: true });
    const sync = make();
    const before = new AbortController();
    before.abort(new Error('stop before'));
    await expect(check(sync, before.signal)).rejects.toThrow('stop before');
    expect(store.requestCount()).toBe(0);

    store.setDelay('list', 2_000);
    const during = new AbortController();
    const started = Date.now();
    setTimeout(() => during.abort(new Error('stop during')), 50);
    await expect(check(sync, during.signal)).rejects.toThrow('stop during');
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(writes(store)).toBe(0);
  });

  it('a workspace path that is a file rejects with a LocalFileError (ENOTDIR)', { timeout: 10_000 }, async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'not-a-dir');
    await writeFile(file, 'x');
    const store = new MemoryObjectStore();
    const sync = new S3WorkspaceSync({ bucket: 'mem', prefix: PREFIX, workspaceDir: file, logger: silentLogger }, { store: () => store });
    onTestFinished(() => sync.destroy());
    await expect(check(sync)).rejects.toMatchObject({ name: 'LocalFileError', code: 'ENOTDIR' });
  });
});
