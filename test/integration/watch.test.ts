// Watch mode end to end: the real tree watcher on real temp directories, real
// pushes to the run's local S3 server (and, for exact request counts, the
// strict in-memory store). Waits poll with a deadline; no fixed sleeps decide.
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { S3WorkspaceSync, silentLogger, type SyncWatcher, type WatchPushInfo } from '../../src/index.js';
import { MemoryObjectStore } from '../../src/storage/MemoryObjectStore.js';
import { getObjectBytes, listAllKeys } from '../helpers/s3.js';
import { fixture, tempDir } from '../helpers/sync-fixture.js';

async function waitFor(what: string, check: () => Promise<boolean> | boolean, deadlineMs = 20_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function write(ws: string, rel: string, body: string): Promise<void> {
  await mkdir(path.dirname(path.join(ws, rel)), { recursive: true });
  await writeFile(path.join(ws, rel), body);
}

/** Watch with short timings; closed (without flushing twice) when the test ends. Counts pushes in flight. */
async function watching(sync: S3WorkspaceSync, options: Parameters<S3WorkspaceSync['watch']>[0] = {}) {
  const w = await sync.watch({ debounceMs: 150, maxDelayMs: 1000, reconcileMs: 0, ...options });
  onTestFinished(async () => {
    await w.close();
    sync.destroy();
  });
  let inFlight = 0;
  let maxInFlight = 0;
  const ends: Array<WatchPushInfo & { at: number; success: boolean }> = [];
  const errors: unknown[] = [];
  w.on('push-start', () => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
  });
  w.on('push-end', (info) => {
    inFlight--;
    ends.push({ reason: info.reason, paths: info.paths, at: Date.now(), success: info.result.success });
  });
  w.on('error', (e) => {
    inFlight--;
    errors.push(e);
  });
  return { w, ends, errors, maxInFlight: () => maxInFlight };
}

describe('watch mode on the local S3 server', () => {
  it('a burst of 1,000 files in new directories reaches the bucket in a few pushes, one at a time', { timeout: 60_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws });
    const { ends, errors, maxInFlight } = await watching(sync);
    const expected: string[] = [];
    for (let d = 0; d < 10; d++) {
      for (let i = 0; i < 100; i++) {
        const rel = `burst/d${d}/sub/f${i}.txt`;
        expected.push(`ws/${rel}`);
        await write(ws, rel, `file ${d}/${i}`);
      }
    }
    expected.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    await waitFor('the burst in the bucket', async () => (await listAllKeys(f.client, f.bucket, 'ws/')).length === expected.length, 45_000);
    expect(await listAllKeys(f.client, f.bucket, 'ws/')).toEqual(expected);
    expect((await getObjectBytes(f.client, f.bucket, 'ws/burst/d7/sub/f42.txt')).toString()).toBe('file 7/42');
    expect(errors).toEqual([]);
    expect(maxInFlight()).toBe(1);
    expect(ends.length).toBeLessThan(20);
    expect(ends.every((e) => e.success && e.paths !== 'all')).toBe(true);
  });

  it('a trickle: under continuous writes a push runs at least every maxDelayMs', { timeout: 60_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws });
    const { ends } = await watching(sync, { debounceMs: 400, maxDelayMs: 800 });
    const started = Date.now();
    for (let i = 0; i < 25; i++) {
      await write(ws, `trickle/${i}.txt`, `t${i}`);
      await new Promise((r) => setTimeout(r, 100)); // never quiet for 400 ms
    }
    const endedWriting = Date.now();
    // pushes ran while the writes went on, each because the max delay passed
    const during = ends.filter((e) => e.at < endedWriting);
    expect(during.length).toBeGreaterThanOrEqual(1);
    expect(during.every((e) => e.reason === 'max-delay')).toBe(true);
    expect(during[0]!.at - started).toBeLessThan(2_500 + 800);
    await waitFor('the trickle in the bucket', async () => (await listAllKeys(f.client, f.bucket, 'ws/trickle/')).length === 25);
  });

  it('an editor-style save by rename pushes the new content, never the temp file', { timeout: 30_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await write(ws, 'notes.md', 'v1');
    const sync = f.sync({ workspaceDir: ws });
    const { w } = await watching(sync, { initial: 'push' });
    expect(w.initial?.uploadedFiles).toBe(1);
    await writeFile(path.join(ws, '.notes.md.swp'), 'v2');
    await rename(path.join(ws, '.notes.md.swp'), path.join(ws, 'notes.md'));
    await waitFor('v2 in the bucket', async () => (await getObjectBytes(f.client, f.bucket, 'ws/notes.md')).toString() === 'v2');
    expect(await listAllKeys(f.client, f.bucket, 'ws/')).toEqual(['ws/notes.md']);
  });

  it('close() pushes what was written just before it, and nothing after', { timeout: 30_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws });
    onTestFinished(() => sync.destroy());
    const w = await sync.watch({ debounceMs: 60_000, maxDelayMs: 60_000, reconcileMs: 0 });
    await write(ws, 'deep/last.txt', 'written right before close');
    await rm(path.join(ws, 'deep/never.txt'), { force: true });
    const result = await w.close();
    expect(result?.success).toBe(true);
    expect(await listAllKeys(f.client, f.bucket, 'ws/')).toEqual(['ws/deep/last.txt']);
    await write(ws, 'after.txt', 'after close');
    await new Promise((r) => setTimeout(r, 300));
    expect(await listAllKeys(f.client, f.bucket, 'ws/')).toEqual(['ws/deep/last.txt']);
    // the instance can watch again
    const again = await sync.watch({ initial: 'none', reconcileMs: 0 });
    expect((await again.close({ full: true }))?.success).toBe(true);
    expect(await listAllKeys(f.client, f.bucket, 'ws/')).toEqual(['ws/after.txt', 'ws/deep/last.txt']);
  });

  it('deletions: a deleted file and a deleted directory are deleted from the bucket', { timeout: 30_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await write(ws, 'keep.txt', 'k');
    await write(ws, 'old.txt', 'o');
    await write(ws, 'tree/a/b.txt', 'b');
    await write(ws, 'tree/c.txt', 'c');
    const sync = f.sync({ workspaceDir: ws });
    await watching(sync, { initial: 'push' });
    await rm(path.join(ws, 'old.txt'));
    await rm(path.join(ws, 'tree'), { recursive: true });
    await waitFor('the deletions', async () => (await listAllKeys(f.client, f.bucket, 'ws/')).join() === 'ws/keep.txt');
  });

  it('ignore rules hold: ignored files never reach the bucket; a change of .syncignore applies at once', { timeout: 30_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await write(ws, '.syncignore', 'scratch/\n*.log\n');
    const sync = f.sync({ workspaceDir: ws });
    const { w } = await watching(sync, { initial: 'push' });
    await write(ws, 'scratch/big.bin', 'ignored');
    await write(ws, 'run.log', 'ignored');
    await write(ws, 'node_modules/pkg/index.js', 'ignored by default');
    await write(ws, 'kept.txt', 'synced');
    await waitFor('kept.txt', async () => (await listAllKeys(f.client, f.bucket, 'ws/')).includes('ws/kept.txt'));
    await w.flush();
    expect(await listAllKeys(f.client, f.bucket, 'ws/')).toEqual(['ws/.syncignore', 'ws/kept.txt']);
    // scratch/ is no longer ignored: a full push takes it, and the restarted watcher sees what is written there next
    await writeFile(path.join(ws, '.syncignore'), '*.log\n');
    await waitFor('scratch/big.bin', async () => (await listAllKeys(f.client, f.bucket, 'ws/')).includes('ws/scratch/big.bin'));
    await write(ws, 'scratch/later.txt', 'seen by the new watch');
    await waitFor('scratch/later.txt', async () => (await listAllKeys(f.client, f.bucket, 'ws/')).includes('ws/scratch/later.txt'));
    expect(await listAllKeys(f.client, f.bucket, 'ws/')).not.toContain('ws/run.log');
  });
});

describe('watch mode on the in-memory store (exact requests)', () => {
  async function memory(files = 0) {
    const store = new MemoryObjectStore({ minPartSize: 1024 });
    const ws = await tempDir();
    for (let i = 0; i < files; i++) await write(ws, `d${i % 20}/f${i}.txt`, `body ${i}`);
    const sync = new S3WorkspaceSync({ bucket: 'mem', prefix: 'ws/', workspaceDir: ws, logger: silentLogger }, { store: () => store });
    return { store, ws, sync };
  }

  it('a change in a 2,000-file workspace: the push lists nothing and uploads the one file', { timeout: 30_000 }, async () => {
    const { store, ws, sync } = await memory(2000);
    const { w } = await watching(sync, { initial: 'push' });
    expect(w.initial?.uploadedFiles).toBe(2000);
    store.resetRequestCounts();
    await write(ws, 'd3/f3.txt', 'changed');
    let pushed: SyncWatcher extends unknown ? Awaited<ReturnType<SyncWatcher['flush']>> : never;
    await waitFor('the push', async () => store.requestCounts().put > 0);
    pushed = await w.flush(); // anything still pending (nothing, normally)
    expect(pushed === undefined || pushed.uploadedFiles === 0).toBe(true);
    const counts = store.requestCounts();
    expect(counts.list).toBe(0);
    expect(counts.get).toBe(0);
    expect(store.inspect('ws/d3/f3.txt')?.body.toString()).toBe('changed');
    // the object, and the manifest with the push lease around it: nothing per unchanged file
    expect(counts.put).toBeLessThanOrEqual(3);
    expect(counts.head).toBe(0);
  });

  it('a write during a push is picked up by the next push', { timeout: 30_000 }, async () => {
    const { store, ws, sync } = await memory();
    store.setDelay('put', 300);
    const { w, maxInFlight } = await watching(sync, { initial: 'none' });
    let wrote = false;
    w.on('push-start', () => {
      if (wrote) return;
      wrote = true;
      void write(ws, 'during.txt', 'written while the first push ran');
    });
    await write(ws, 'first.txt', 'first');
    await waitFor('during.txt', () => store.inspect('ws/during.txt') !== undefined);
    expect(store.inspect('ws/first.txt')?.body.toString()).toBe('first');
    expect(maxInFlight()).toBe(1);
  });
});
