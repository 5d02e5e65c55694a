// The whole pipeline (facade → prepare → compare → plan → execute → record) on
// real temp directories against the strict in-memory store: fast, exact
// request counts, and faults a real server will not give. The real-server
// integration tests (test/integration) stay the reference for S3 semantics.
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { S3WorkspaceSync, WorkspaceLockedError, silentLogger } from '../../src/index.js';
import { s3LikeError, MemoryObjectStore, type MemoryObjectStoreOptions } from '../../src/storage/MemoryObjectStore.js';
import { tempDir } from '../helpers/sync-fixture.js';

const PREFIX = 'ws/';
const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
const own = (keys: string[]): string[] => keys.filter((k) => !k.includes('.s3-workspace-sync/'));

async function setup(options: MemoryObjectStoreOptions = {}, files: Record<string, string> = {}) {
  const store = new MemoryObjectStore({ minPartSize: 1024, ...options });
  const ws = await tempDir();
  for (const [p, body] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(ws, p)), { recursive: true });
    await writeFile(path.join(ws, p), body);
  }
  const make = (extra: Record<string, unknown> = {}): S3WorkspaceSync => {
    const sync = new S3WorkspaceSync({ bucket: 'mem', prefix: PREFIX, workspaceDir: ws, logger: silentLogger, persistState: false, ...extra }, { store: () => store });
    onTestFinished(() => sync.destroy());
    return sync;
  };
  return { store, ws, make };
}

describe('whole pipeline on the in-memory store', () => {
  it('push then pull into a fresh workspace round-trips the bytes, metadata MD5 included', { timeout: 10_000 }, async () => {
    const { store, make } = await setup({}, { 'a.txt': 'alpha', 'src/b.ts': 'export const b = 2;\n' });
    const pushed = await make().push();
    expect(pushed).toMatchObject({ success: true, uploadedFiles: 2 });
    expect(own(store.keys(PREFIX))).toEqual(['ws/a.txt', 'ws/src/b.ts']);
    expect(store.inspect('ws/a.txt')?.metadata.md5chksum).toBe(Buffer.from('2c1743a391305fbf367df8e4f069f9f9', 'hex').toString('base64'));

    const other = await tempDir();
    const sync = new S3WorkspaceSync({ bucket: 'mem', prefix: PREFIX, workspaceDir: other, logger: silentLogger, persistState: false }, { store: () => store });
    onTestFinished(() => sync.destroy());
    const pulled = await sync.pull();
    expect(pulled).toMatchObject({ success: true, downloadedFiles: 2 });
    expect(await readFile(path.join(other, 'src/b.ts'), 'utf8')).toBe('export const b = 2;\n');
  });

  it('request counts: a warm no-op push makes no request; a no-op pull makes one listing and nothing else', { timeout: 10_000 }, async () => {
    const { store, make } = await setup({}, { 'a.txt': 'alpha', 'b.txt': 'beta' });
    const sync = make();
    await sync.push();
    store.resetRequestCounts();
    expect((await sync.push()).uploadedFiles).toBe(0);
    expect(store.requestCount()).toBe(0);
    const pulled = await sync.pull();
    expect(pulled).toMatchObject({ success: true, downloadedFiles: 0, deletedFiles: 0 });
    expect(store.requestCounts()).toMatchObject({ list: 1, head: 0, get: 0, put: 0 });
    expect(store.requestCount()).toBe(1);
  });

  it('a bucket with default SSE-KMS: a fresh instance downloads and uploads only what really differs (the compare module, not the ETag, decides)', { timeout: 10_000 }, async () => {
    const { store, ws, make } = await setup({ bucketEncryption: 'aws:kms' }, { 'same.txt': 'same', 'diff.txt': 'local!' });
    store.seedObject('ws/same.txt', 'same', { md5: true });
    store.seedObject('ws/diff.txt', 'remote', { md5: true });
    expect(store.inspect('ws/same.txt')?.etag).not.toBe('');
    const pulled = await make().pull();
    expect(pulled).toMatchObject({ success: true, downloadedFiles: 1 });
    expect(pulled.plan.transfers.map((t) => t.path)).toEqual(['diff.txt']);
    expect(await readFile(path.join(ws, 'diff.txt'), 'utf8')).toBe('remote');
    // a fresh push over the same bucket uploads nothing
    store.resetRequestCounts();
    const pushed = await make().push();
    expect(pushed).toMatchObject({ success: true, uploadedFiles: 0 });
    expect(own(store.keys(PREFIX))).toEqual(['ws/diff.txt', 'ws/same.txt']);
    expect(store.requestCount('put')).toBe(0);
  });

  it('a failed upload holds back every deletion of the push (and the snapshot keeps the object)', { timeout: 10_000 }, async () => {
    const { store, ws, make } = await setup({}, { 'keep.txt': 'k', 'doomed.txt': 'd' });
    const sync = make({ maxAttempts: 1 });
    await sync.push();
    await rm(path.join(ws, 'doomed.txt'));
    await writeFile(path.join(ws, 'keep.txt'), 'k2');
    store.failNext('put', s3LikeError('AccessDenied', 403), 1, { key: 'ws/keep.txt' });
    const failed = await sync.push();
    expect(failed.success).toBe(false);
    expect(failed.failedFiles.map((f) => f.path)).toEqual(['keep.txt']);
    expect(failed.deletedFiles).toBe(0);
    expect(own(store.keys(PREFIX))).toEqual(['ws/doomed.txt', 'ws/keep.txt']);
    // the next push completes both
    const again = await sync.push();
    expect(again).toMatchObject({ success: true, uploadedFiles: 1, deletedFiles: 1 });
    expect(own(store.keys(PREFIX))).toEqual(['ws/keep.txt']);
    expect(store.bodyOf('ws/keep.txt')?.toString()).toBe('k2');
  });

  it("another tool's multipart object without an MD5: a same-content local file is proven equal by its multipart ETag (no download)", { timeout: 10_000 }, async () => {
    const body = Buffer.alloc(5000, 7);
    const { store, ws, make } = await setup({}, {});
    await writeFile(path.join(ws, 'big.bin'), body);
    store.seedObject('ws/big.bin', body, { partSize: 2048 });
    expect(store.inspect('ws/big.bin')?.etag).toMatch(/-3$/);
    const pulled = await make().pull();
    expect(pulled).toMatchObject({ success: true, downloadedFiles: 0 });
    expect(pulled.plan.unchangedFiles).toBe(1);
    expect(store.requestCount('get')).toBe(0);
    expect(store.requestCount('firstPartSize')).toBe(1);
  });
});

describe('one sync of a workspace at a time (the workspace lock)', () => {
  it('a second instance waits for the first sync of the same workspace, or rejects with WorkspaceLockedError after lockWaitMs', { timeout: 15_000 }, async () => {
    const { store, ws, make } = await setup({}, {});
    store.seedObject('ws/a.txt', 'alpha', { md5: true });
    store.setDelay('get', 600);
    const first = make().pull();
    await new Promise((r) => setTimeout(r, 150)); // the first pull holds the lock, its GET is under way
    const impatient = await make({ lockWaitMs: 50 })
      .push()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(impatient).toBeInstanceOf(WorkspaceLockedError);
    expect(impatient).toMatchObject({ code: 'WORKSPACE_LOCKED', holder: { pid: process.pid } });
    const patient = make({ lockWaitMs: 10_000 }).push();
    expect((await first).success).toBe(true);
    expect((await patient).success).toBe(true);
    // both released: no lock file, and (no state kept) no library folder left behind
    expect(await readdir(ws)).toEqual(['a.txt']);
  });

  it('a dry run takes no lock: plan() answers while a sync runs', { timeout: 15_000 }, async () => {
    const { store, make } = await setup({}, {});
    store.seedObject('ws/a.txt', 'alpha', { md5: true });
    store.setDelay('get', 600);
    const running = make().pull();
    await new Promise((r) => setTimeout(r, 150));
    const plan = await make({ lockWaitMs: 0 }).plan('push');
    expect(plan.direction).toBe('push');
    expect((await running).success).toBe(true);
  });
});

describe('several writers: every write a push makes is conditional (the store enforces If-Match / If-None-Match)', () => {
  /** Two instances on one prefix, each with its own workspace, both synced with the bucket. */
  async function twoWriters(files: Record<string, string>) {
    const store = new MemoryObjectStore({ minPartSize: 1024 });
    for (const [p, body] of Object.entries(files)) store.seedObject(`ws/${p}`, body, { md5: true });
    const writer = async (extra: Record<string, unknown> = {}) => {
      const ws = await tempDir();
      const sync = new S3WorkspaceSync({ bucket: 'mem', prefix: PREFIX, workspaceDir: ws, logger: silentLogger, persistState: false, ...extra }, { store: () => store });
      onTestFinished(() => sync.destroy());
      expect((await sync.pull()).success).toBe(true);
      return { ws, sync, write: (p: string, body: string) => writeFile(path.join(ws, p), body) };
    };
    return { store, a: await writer(), b: await writer(), writer };
  }

  it("B edits a file A changed since B last saw it: B's push is a conflict, A's edit stays in the bucket", { timeout: 10_000 }, async () => {
    const { store, a, b } = await twoWriters({ 'notes.md': 'v1', 'other.md': 'o1' });
    await a.write('notes.md', 'A was here');
    expect((await a.sync.push()).success).toBe(true);
    await b.write('notes.md', 'B was here');
    await b.write('other.md', 'o2');
    const pushed = await b.sync.push();
    expect(pushed.success).toBe(false);
    expect(pushed.conflicts).toEqual([
      { path: 'notes.md', key: 'ws/notes.md', action: 'upload', expectedEtag: md5('v1'), currentEtag: md5('A was here'), resolution: 'reported' },
    ]);
    expect(pushed.failedFiles).toEqual([expect.objectContaining({ path: 'notes.md', code: 'CONFLICT' })]);
    expect(pushed.uploadedFiles).toBe(1); // the rest of the push goes on
    expect(store.bodyOf('ws/notes.md')?.toString()).toBe('A was here');
    expect(store.bodyOf('ws/other.md')?.toString()).toBe('o2');
    expect(await readFile(path.join(b.ws, 'notes.md'), 'utf8')).toBe('B was here'); // B's work is untouched too
    // B chooses to keep its version: replaced exactly A's version
    const kept = await b.sync.push({ conflictPolicy: 'keep-local' });
    expect(kept.success).toBe(true);
    expect(kept.conflicts).toEqual([expect.objectContaining({ path: 'notes.md', currentEtag: md5('A was here'), resolution: 'kept-local' })]);
    expect(store.bodyOf('ws/notes.md')?.toString()).toBe('B was here');
  });

  it('both create the same new path: the second push is a conflict, not an overwrite', { timeout: 10_000 }, async () => {
    const { store, a, b } = await twoWriters({ 'keep.md': 'k' });
    await a.write('new.md', 'from A');
    expect((await a.sync.push()).success).toBe(true);
    await b.write('new.md', 'from B');
    const pushed = await b.sync.push();
    expect(pushed.success).toBe(false);
    expect(pushed.conflicts).toEqual([expect.objectContaining({ path: 'new.md', expectedEtag: null, currentEtag: md5('from A') })]);
    expect(store.bodyOf('ws/new.md')?.toString()).toBe('from A');
  });

  it('B deletes a file A has just changed: the deletion is a conflict, A\'s file stays', { timeout: 10_000 }, async () => {
    const { store, a, b } = await twoWriters({ 'doc.md': 'v1', 'keep.md': 'k' });
    await a.write('doc.md', 'v2 by A');
    expect((await a.sync.push()).success).toBe(true);
    await rm(path.join(b.ws, 'doc.md'));
    const pushed = await b.sync.push();
    expect(pushed.success).toBe(false);
    expect(pushed.deletedFiles).toBe(0);
    expect(pushed.conflicts).toEqual([expect.objectContaining({ path: 'doc.md', action: 'delete', expectedEtag: md5('v1') })]);
    expect(store.bodyOf('ws/doc.md')?.toString()).toBe('v2 by A');
  });

  it('a fresh instance over a stale copy: differing files are conflicts, known before anything is sent', { timeout: 10_000 }, async () => {
    const { store, writer } = await twoWriters({ 'a.md': 'newer remote work', 'b.md': 'same' });
    const stale = await tempDir();
    await writeFile(path.join(stale, 'a.md'), 'stale copy');
    await writeFile(path.join(stale, 'b.md'), 'same');
    await writeFile(path.join(stale, 'c.md'), 'brand new');
    const sync = new S3WorkspaceSync({ bucket: 'mem', prefix: PREFIX, workspaceDir: stale, logger: silentLogger, persistState: false }, { store: () => store });
    onTestFinished(() => sync.destroy());
    store.resetRequestCounts();
    const plan = await sync.plan('push');
    expect(plan.conflicts.map((c) => c.path)).toEqual(['a.md']);
    const pushed = await sync.push();
    expect(pushed.success).toBe(false);
    expect(pushed.uploadedFiles).toBe(1); // c.md
    expect(store.bodyOf('ws/a.md')?.toString()).toBe('newer remote work');
    expect(store.bodyOf('ws/c.md')?.toString()).toBe('brand new');
    void writer;
  });

  it('a write whose answer was lost, retried: meeting its own bytes is not a conflict', { timeout: 10_000 }, async () => {
    const { store, a } = await twoWriters({ 'x.md': 'v1' });
    await a.write('x.md', 'v2');
    // the PUT is applied, then its answer is lost (a retryable error the SDK could not replay): the transfer retries
    store.failNext('put', s3LikeError('InternalError', 500, { replayable: false }), 1, { after: true, key: 'ws/x.md' });
    const pushed = await a.sync.push();
    expect(pushed).toMatchObject({ success: true, uploadedFiles: 1, conflicts: [] });
    expect(store.bodyOf('ws/x.md')?.toString()).toBe('v2');
    // and the snapshot knows the object: the next push is a no-op
    store.resetRequestCounts();
    expect((await a.sync.push()).uploadedFiles).toBe(0);
    expect(store.requestCount('put')).toBe(0);
  });
});

describe('checkConditionalWrites() on a store that enforces them', () => {
  it("answers 'enforced' with 2 PUTs and 1 delete, leaves no scratch object, and asks once per instance", { timeout: 10_000 }, async () => {
    const { store, make } = await setup({}, { 'a.txt': 'a' });
    const sync = make({ requireConditionalWrites: true });
    expect(await sync.checkConditionalWrites()).toBe('enforced');
    expect(store.requestCounts()).toMatchObject({ put: 2, deleteMany: 1 });
    expect(store.keys()).toEqual([]);
    store.resetRequestCounts();
    expect(await sync.checkConditionalWrites()).toBe('enforced');
    expect(store.requestCount()).toBe(0);
    // requireConditionalWrites: the push goes ahead
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 1 });
  });
});

describe('verify() through the facade', () => {
  it('reports differences, changes nothing, and runs in turn with syncs', { timeout: 10_000 }, async () => {
    const { store, ws, make } = await setup({}, { 'a.txt': 'alpha', 'b.txt': 'beta' });
    const sync = make();
    await sync.push();
    expect(await sync.verify()).toMatchObject({ ok: true, checked: 2 });
    await writeFile(path.join(ws, 'a.txt'), 'ALPHA');
    store.seedObject('ws/c.txt', 'remote only', { md5: true });
    store.resetRequestCounts();
    const report = await sync.verify();
    expect(report.ok).toBe(false);
    expect(report.different.map((d) => d.path)).toEqual(['a.txt']);
    expect(report.missingLocally).toEqual([{ path: 'c.txt', key: 'ws/c.txt' }]);
    expect(store.requestCounts()).toMatchObject({ put: 0, deleteMany: 0, get: 0 });
    expect(await readFile(path.join(ws, 'a.txt'), 'utf8')).toBe('ALPHA');
  });
});

describe('a new process with the saved state asks the bucket nothing it already knows', () => {
  it('the manifest last seen and the conditional-write answer come from the state file: a small-change push is N writes + 3', { timeout: 10_000 }, async () => {
    const { store, ws, make } = await setup({}, { 'a.txt': 'alpha', 'b.txt': 'beta', 'c.txt': 'gamma' });
    const first = make({ persistState: true });
    expect(await first.push()).toMatchObject({ success: true, uploadedFiles: 3 });
    first.destroy();

    // "a new process": a new instance over the same workspace and state folder (the store answers per instance: no process-wide cache)
    await writeFile(path.join(ws, 'a.txt'), 'alpha 2');
    await rm(path.join(ws, 'b.txt'));
    store.resetRequestCounts();
    const second = make({ persistState: true });
    expect(await second.push()).toMatchObject({ success: true, uploadedFiles: 1, deletedFiles: 1 });
    // a.txt (PUT If-Match), b.txt (DeleteObjects), the lease (PUT, then DeleteObjects), the manifest (PUT); the HEAD
    // checks the workspace identity a loaded state is bound to. No probe, no GET of the manifest.
    expect(store.requestCounts()).toMatchObject({ put: 3, deleteMany: 2, head: 1, get: 0, list: 0 });
    expect(store.requestCount()).toBe(6);
    second.destroy();

    // and a no-op pull of a third one: one listing (the manifest it lists is the one remembered, and the listing is exactly it)
    store.resetRequestCounts();
    const third = make({ persistState: true });
    expect(await third.pull()).toMatchObject({ success: true, downloadedFiles: 0, deletedFiles: 0 });
    expect(store.requestCounts()).toMatchObject({ list: 1, get: 0 });
    expect(store.requestCount()).toBe(1);
  });

  it('a remembered manifest whose bytes do not match its ETag is not trusted (it is read again)', { timeout: 10_000 }, async () => {
    const { store, ws, make } = await setup({}, { 'a.txt': 'alpha' });
    const first = make({ persistState: true });
    await first.push();
    first.destroy();
    const stateDir = path.join(ws, '.s3-workspace-sync');
    const [file] = (await readdir(stateDir)).filter((n) => /^state-[0-9a-f]+\.json$/.test(n));
    // the manifest's bytes are kept beside the state file, which records their MD5: forge both, consistently
    const kept = path.join(stateDir, `${file!}.manifest`);
    const body = await readFile(kept, 'utf8');
    expect(body).toContain('"a.txt"');
    const forged = body.replace('"a.txt"', '"forged.txt"');
    await writeFile(kept, forged);
    const doc = JSON.parse(await readFile(path.join(stateDir, file!), 'utf8')) as { remote: { manifest: { md5: string } } };
    doc.remote.manifest.md5 = createHash('md5').update(forged).digest('hex');
    await writeFile(path.join(stateDir, file!), JSON.stringify(doc));

    await writeFile(path.join(ws, 'b.txt'), 'beta');
    store.resetRequestCounts();
    const second = make({ persistState: true });
    expect(await second.push()).toMatchObject({ success: true, uploadedFiles: 1 });
    expect(store.requestCount('get')).toBe(1); // the manifest, read again
    const committed = JSON.parse(store.bodyOf('ws/.s3-workspace-sync/manifest.json')!.toString()) as { files: Record<string, unknown> };
    expect(Object.keys(committed.files).sort()).toEqual(['a.txt', 'b.txt']);
  });
});

describe('the manifest after an aborted push', () => {
  it("files an aborted push uploaded are committed by the instance's next push, even one with nothing else to do", { timeout: 10_000 }, async () => {
    const files = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`f${i}.txt`, `file ${i}`]));
    const { store, make } = await setup({}, files);
    const sync = make({ uploadConcurrency: 1 });
    const stop = new AbortController();
    store.setDelay('put', 20); // each upload takes a while: the abort lands between uploads
    sync.on('progress', (p) => {
      if (p.phase === 'upload' && p.current >= 2) stop.abort();
    });
    await expect(sync.push({ signal: stop.signal })).rejects.toMatchObject({ name: 'AbortError' });
    const uploaded = own(store.keys(PREFIX));
    expect(uploaded.length).toBeGreaterThanOrEqual(2); // (uploads in flight when the abort came may land too)
    expect(store.inspect('ws/.s3-workspace-sync/manifest.json')).toBeUndefined(); // nothing committed by the aborted push

    sync.removeAllListeners('progress');
    store.setDelay('put', undefined);
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 6 - uploaded.length });
    const manifest = JSON.parse(store.bodyOf('ws/.s3-workspace-sync/manifest.json')!.toString()) as { files: Record<string, [number, string]> };
    expect(Object.keys(manifest.files).sort()).toEqual(Object.keys(files).sort());
    for (const [p, entry] of Object.entries(manifest.files)) expect(entry[1]).toBe(store.inspect(`ws/${p}`)!.etag);
  });
});

describe('waitForPaths and a path changed on both sides', () => {
  async function bothChanged(policy: 'fail' | 'keep-remote') {
    const { store, ws, make } = await setup({}, { 'notes.md': 'v1', 'other.md': 'o1' });
    const sync = make({ conflictPolicy: policy });
    await sync.push();
    await writeFile(path.join(ws, 'notes.md'), 'mine');
    store.seedObject(`${PREFIX}notes.md`, 'theirs', { md5: true });
    return { ws, sync };
  }

  it("'fail': waiting for the path rejects (it is a conflict), and the local file is kept", { timeout: 10_000 }, async () => {
    const { ws, sync } = await bothChanged('fail');
    sync.startBackgroundPull();
    await expect(sync.waitForPaths(['notes.md'])).rejects.toMatchObject({ name: 'IncompletePathsError' });
    await expect(sync.waitForPull()).rejects.toMatchObject({ code: 'INCOMPLETE' });
    expect(await readFile(path.join(ws, 'notes.md'), 'utf8')).toBe('mine');
  });

  it("'keep-remote': waiting for the path resolves once the remote version is in place", { timeout: 10_000 }, async () => {
    const { ws, sync } = await bothChanged('keep-remote');
    sync.startBackgroundPull();
    await sync.waitForPaths(['notes.md']);
    expect(await readFile(path.join(ws, 'notes.md'), 'utf8')).toBe('theirs');
    expect((await sync.waitForPull()).conflicts).toEqual([expect.objectContaining({ path: 'notes.md', resolution: 'kept-remote' })]);
  });
});
