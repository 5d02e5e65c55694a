// A push without a snapshot lists the prefix, and hashes small files while
// that listing is in flight (src/pipeline/prepare.ts, hashWhileWaiting): the
// helper on real files, and whole pushes behind a slow listing, whose
// outcome must be the same as with an instant one.
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it, onTestFinished } from 'vitest';

import { S3WorkspaceSync, silentLogger } from '../../src/index.js';
import type { LocalFile } from '../../src/core/model.js';
import { hashWhileWaiting, settled } from '../../src/pipeline/prepare.js';
import type { ScanResult } from '../../src/local/scanner.js';
import { MemoryObjectStore } from '../../src/storage/MemoryObjectStore.js';

const md5 = (b: Buffer | string): string => createHash('md5').update(b).digest('hex');

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 's3ws-early-'));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A scan of `files` (path → content) written under `root`. */
async function scanOf(root: string, files: Record<string, Buffer | string>, fastFs = true): Promise<ScanResult> {
  const map = new Map<string, LocalFile>();
  let ino = 1;
  for (const [path, body] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), body);
    map.set(path, { path, size: Buffer.byteLength(body), mtimeMs: 1, ctimeMs: 1, ino: ino++ });
  }
  return { files: map, dirs: new Set(), skipped: [], tempFiles: [], fastFs };
}

describe('hashWhileWaiting: small files hashed while a listing is in flight', () => {
  it('hashes every small file (correct MD5s) while the listing is pending, and skips files over 256 KiB', { timeout: 10_000 }, async () => {
    const root = await tempDir();
    const big = Buffer.alloc(256 * 1024 + 1, 7);
    const scan = await scanOf(root, { 'a.txt': 'alpha', 'd/b.txt': 'beta', 'big.bin': big, 'empty': '' });
    const never = settled(new Promise<never>(() => undefined));
    const got = await hashWhileWaiting(root, scan, never, undefined);
    expect(got).toEqual(new Map([['a.txt', md5('alpha')], ['d/b.txt', md5('beta')], ['empty', md5('')]]));
  });

  it('stops as soon as the listing settles (it yields to the event loop between batches), and does nothing once it has', { timeout: 10_000 }, async () => {
    const root = await tempDir();
    const files: Record<string, string> = {};
    for (let i = 0; i < 400; i++) files[`f${String(i).padStart(3, '0')}`] = `content ${i}`;
    const scan = await scanOf(root, files);
    // settles after a few turns of the event loop: only the first batches are hashed
    const soon = settled(new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve))));
    const partial = await hashWhileWaiting(root, scan, soon, undefined);
    expect(partial.size).toBeGreaterThan(0);
    expect(partial.size).toBeLessThan(400);
    // in scan order: the first N paths
    expect([...partial.keys()]).toEqual(Object.keys(files).slice(0, partial.size));
    for (const [p, h] of partial) expect(h).toBe(md5(files[p] as string));

    const done = settled(Promise.resolve());
    await done.promise;
    await new Promise((r) => setImmediate(r));
    expect(done.done).toBe(true);
    expect((await hashWhileWaiting(root, scan, done, undefined)).size).toBe(0);
    // a rejected listing counts as settled too (its error is the caller's, when it awaits it)
    const failed = settled(Promise.reject(new Error('listing failed')));
    await failed.promise.catch(() => undefined);
    expect(failed.done).toBe(true);
    await expect(failed.promise).rejects.toThrow('listing failed');
  });

  it('on a slow filesystem (no synchronous reads) and after an abort: nothing; a file gone since the scan is left for later', { timeout: 10_000 }, async () => {
    const root = await tempDir();
    const never = settled(new Promise<never>(() => undefined));
    expect((await hashWhileWaiting(root, await scanOf(root, { 'a.txt': 'alpha' }, false), never, undefined)).size).toBe(0);
    const aborted = AbortSignal.abort();
    expect((await hashWhileWaiting(root, await scanOf(root, { 'a.txt': 'alpha' }), never, aborted)).size).toBe(0);
    const scan = await scanOf(root, { 'gone.txt': 'x', 'kept.txt': 'y' });
    await rm(join(root, 'gone.txt'));
    expect(await hashWhileWaiting(root, scan, never, undefined)).toEqual(new Map([['kept.txt', md5('y')]]));
  });
});

describe('a push without a snapshot behind a slow listing', () => {
  it('keeps what is equal; what differs (same size, other bytes) is a conflict by default, uploaded under keep-local', { timeout: 20_000 }, async () => {
    const store = new MemoryObjectStore();
    const first = await tempDir();
    const files: Record<string, string> = {};
    for (let i = 0; i < 60; i++) files[`dir${i % 4}/file${i}.txt`] = `file number ${i}\n`;
    for (const [p, c] of Object.entries(files)) {
      await mkdir(join(first, p, '..'), { recursive: true });
      await writeFile(join(first, p), c);
    }
    const a = new S3WorkspaceSync({ bucket: 'mem', prefix: 'ws/', workspaceDir: first, logger: silentLogger, persistState: false }, { store: () => store });
    expect((await a.push()).uploadedFiles).toBe(60);

    // another container restores the files by other means; no state; two files differ (same size)
    const second = await tempDir();
    for (const [p, c] of Object.entries(files)) {
      await mkdir(join(second, p, '..'), { recursive: true });
      await writeFile(join(second, p), c);
    }
    await writeFile(join(second, 'dir1/file5.txt'), 'FILE NUMBER 5\n');
    await writeFile(join(second, 'dir2/file58.txt'), 'FILE NUMBER 58\n');
    store.setDelay('list', 300); // the listing takes a while: files are hashed meanwhile
    const b = new S3WorkspaceSync({ bucket: 'mem', prefix: 'ws/', workspaceDir: second, logger: silentLogger, persistState: false }, { store: () => store });
    // without a snapshot, other content in the bucket is a conflict (README, conflictPolicy): reported, nothing sent
    const reported = await b.push();
    expect(reported.hashedFiles).toBe(60);
    expect(reported.conflicts.map((c) => c.path).sort()).toEqual(['dir1/file5.txt', 'dir2/file58.txt']);
    expect(reported.uploadedFiles).toBe(0);
    const c = new S3WorkspaceSync({ bucket: 'mem', prefix: 'ws/', workspaceDir: second, logger: silentLogger, persistState: false }, { store: () => store });
    const r = await c.push({ conflictPolicy: 'keep-local' });
    expect(r.failedFiles).toEqual([]);
    expect(r.success).toBe(true);
    expect(r.hashedFiles).toBe(60);
    expect(r.uploadedFiles).toBe(2);
    expect(r.deletedFiles).toBe(0);
    expect(r.plan?.unchangedFiles).toBe(58);
    const got = await store.get('ws/dir1/file5.txt');
    const chunks: Buffer[] = [];
    for await (const c of got.body as AsyncIterable<Buffer>) chunks.push(c);
    expect(Buffer.concat(chunks).toString()).toBe('FILE NUMBER 5\n');
  });
});
