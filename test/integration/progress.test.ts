// `progress` events: phase, monotonic counts, a final event per phase that
// agrees with the result, a cleanup phase for deletions, and listeners that
// throw do not break a sync.
import { unlink } from 'node:fs/promises';
import path from 'node:path';

import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';

import type { SyncProgress } from '../../src/index.js';
import { listAllKeys } from '../helpers/s3.js';
import { fixture, tempDir } from '../helpers/sync-fixture.js';
import { expectSameTree, writeTree } from '../helpers/tree.js';

const N = 12;
const files = (): Record<string, string> =>
  Object.fromEntries(Array.from({ length: N }, (_, i) => [`d${i % 3}/f${i}.txt`, 'x'.repeat(i + 1)]));
const totalBytes = Array.from({ length: N }, (_, i) => i + 1).reduce((a, b) => a + b, 0);

/** Check the events of one phase and return its last event. */
function checkPhase(events: SyncProgress[], phase: SyncProgress['phase'], total: number): SyncProgress {
  const mine = events.filter((e) => e.phase === phase);
  expect(mine.length, `${phase} events`).toBeGreaterThan(0);
  for (let i = 0; i < mine.length; i++) {
    const e = mine[i]!;
    expect(e.total).toBe(total);
    expect(e.current).toBeGreaterThanOrEqual(0); // byte progress can come before the first file finishes
    expect(e.current).toBeLessThanOrEqual(total);
    expect(e.percentage).toBe(Math.round((e.current / total) * 100));
    if (i > 0) {
      expect(e.current).toBeGreaterThanOrEqual(mine[i - 1]!.current);
      expect(e.transferredBytes).toBeGreaterThanOrEqual(mine[i - 1]!.transferredBytes);
    }
  }
  const last = mine[mine.length - 1]!;
  expect(last).toMatchObject({ current: total, total, percentage: 100 });
  return last;
}

describe('progress events', () => {
  it('push: upload phase ends at current === total === N, 100 %, bytes match the result; no cleanup without deletions', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, files());
    const sync = f.sync({ workspaceDir: ws });
    const events: SyncProgress[] = [];
    sync.on('progress', (p) => events.push({ ...p }));
    const result = await sync.push();
    expect(result.uploadedFiles).toBe(N);

    // the plan phase (here: nothing to hash) comes first, then only upload events
    expect(events[0]).toMatchObject({ phase: 'plan', percentage: 100 });
    expect(events.slice(1).every((e) => e.phase === 'upload')).toBe(true);
    const last = checkPhase(events, 'upload', N);
    expect(last.totalBytes).toBe(totalBytes);
    expect(last.transferredBytes).toBe(result.bytesTransferred);
    expect(result.bytesTransferred).toBe(totalBytes);
    expect(Object.keys(files())).toContain(last.currentFile);
  });

  it('pull: download phase ends at current === total === N, 100 %, bytes match the result', async () => {
    const f = await fixture();
    const src = await tempDir();
    await writeTree(src, files());
    await f.sync({ workspaceDir: src }).push();

    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws });
    const events: SyncProgress[] = [];
    sync.on('progress', (p) => events.push({ ...p }));
    const result = await sync.pull();
    expect(result.downloadedFiles).toBe(N);
    expect(events[0]).toMatchObject({ phase: 'plan', percentage: 100 });
    expect(events.slice(1).every((e) => e.phase === 'download')).toBe(true);
    const last = checkPhase(events, 'download', N);
    expect(last.totalBytes).toBe(totalBytes);
    expect(last.transferredBytes).toBe(result.bytesTransferred);
    expect(result.bytesTransferred).toBe(totalBytes);
  });

  it('a cleanup phase follows when a push deletes objects', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, files());
    const sync = f.sync({ workspaceDir: ws });
    await sync.push();
    await unlink(path.join(ws, 'd0/f0.txt'));
    await unlink(path.join(ws, 'd1/f1.txt'));
    await writeTree(ws, { 'new.txt': 'n' });

    const events: SyncProgress[] = [];
    sync.on('progress', (p) => events.push({ ...p }));
    const result = await sync.push();
    expect(result).toMatchObject({ uploadedFiles: 1, deletedFiles: 2 });
    checkPhase(events, 'upload', 1);
    const cleanup = checkPhase(events, 'cleanup', 2);
    expect(['d0/f0.txt', 'd1/f1.txt']).toContain(cleanup.currentFile);
    // Deletions run after the uploads.
    expect(events.findIndex((e) => e.phase === 'cleanup')).toBeGreaterThan(events.findLastIndex((e) => e.phase === 'upload'));
  });

  it('a cleanup phase follows when a pull deletes local files', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, files());
    const sync = f.sync({ workspaceDir: ws });
    await sync.push();
    for (const key of ['ws/d0/f0.txt', 'ws/d0/f3.txt', 'ws/d2/f2.txt']) {
      await f.other.send(new DeleteObjectCommand({ Bucket: f.bucket, Key: key }));
    }
    const events: SyncProgress[] = [];
    sync.on('progress', (p) => events.push({ ...p }));
    const result = await sync.pull();
    expect(result).toMatchObject({ downloadedFiles: 0, deletedFiles: 3 });
    // Nothing was downloaded: any download event is an empty phase's final one.
    for (const e of events.filter((x) => x.phase === 'download')) expect(e).toMatchObject({ current: 0, total: 0, percentage: 100 });
    expect(events.filter((e) => e.phase === 'upload')).toEqual([]);
    checkPhase(events, 'cleanup', 3);
  });

  it('a sync with nothing to transfer still ends with one final event of its phase (total 0, 100 %)', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, files());
    const sync = f.sync({ workspaceDir: ws });
    await sync.push();
    const events: SyncProgress[] = [];
    sync.on('progress', (p) => events.push({ ...p }));
    expect(await sync.push()).toMatchObject({ uploadedFiles: 0, deletedFiles: 0 });
    // (the files were written a moment ago, so the plan phase re-hashes them: see "racy" in README)
    expect(events[events.length - 2]).toMatchObject({ phase: 'plan', percentage: 100 });
    expect(events.filter((e) => e.phase !== 'plan')).toEqual([
      { phase: 'upload', current: 0, total: 0, percentage: 100, transferredBytes: 0, totalBytes: 0 },
    ]);
    events.length = 0;
    expect(await sync.pull()).toMatchObject({ downloadedFiles: 0, deletedFiles: 0 });
    expect(events[events.length - 2]).toMatchObject({ phase: 'plan', percentage: 100 });
    expect(events.filter((e) => e.phase !== 'plan')).toEqual([
      { phase: 'download', current: 0, total: 0, percentage: 100, transferredBytes: 0, totalBytes: 0 },
    ]);
  });

  it('the plan phase counts the files and bytes hashed', async () => {
    const f = await fixture();
    const src = await tempDir();
    await writeTree(src, files());
    await f.sync({ workspaceDir: src }).push();
    const ws = await tempDir();
    await writeTree(ws, files()); // same bytes, no state: every same-size file is hashed
    const sync = f.sync({ workspaceDir: ws });
    const events: SyncProgress[] = [];
    sync.on('progress', (p) => events.push({ ...p }));
    const result = await sync.pull();
    expect(result).toMatchObject({ hashedFiles: N, downloadedFiles: 0 });
    const plan = checkPhase(events, 'plan', N);
    expect(plan).toMatchObject({ transferredBytes: totalBytes, totalBytes });
    expect(events.findLastIndex((e) => e.phase === 'plan')).toBeLessThan(events.findIndex((e) => e.phase === 'download'));
  });

  it('bytes move while a large file transfers: events before the file is done', { timeout: 30_000 }, async () => {
    const f = await fixture();
    const MiB = 1024 * 1024;
    const src = await tempDir();
    await writeTree(src, { 'big.bin': Buffer.alloc(12 * MiB, 7) });
    const large = { multipartThreshold: 5 * MiB, partSize: 5 * MiB, partConcurrency: 1 };
    await f.sync({ workspaceDir: src, ...large }).push();
    // Slow each ranged GET down, so the download takes several progress intervals.
    f.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'GetObjectCommand') await new Promise((r) => setTimeout(r, 250));
        return next(args);
      },
      { step: 'initialize', name: 'slow-gets' },
    );
    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws, ...large });
    const events: SyncProgress[] = [];
    sync.on('progress', (p) => events.push({ ...p }));
    expect(await sync.pull()).toMatchObject({ success: true, downloadedFiles: 1 });
    const during = events.filter((e) => e.phase === 'download' && e.current === 0 && e.transferredBytes > 0);
    expect(during.length).toBeGreaterThanOrEqual(1);
    expect(during.some((e) => e.transferredBytes < 12 * MiB)).toBe(true);
    expect(during.every((e) => e.transferredBytes <= 12 * MiB && e.totalBytes === 12 * MiB)).toBe(true);
    // …and each names the file and its own progress
    for (const e of during) expect(e).toMatchObject({ currentFile: 'big.bin', currentFileSize: 12 * MiB });
    expect(during.some((e) => (e.currentFileBytes ?? 0) > 0 && (e.currentFileBytes ?? 0) < 12 * MiB)).toBe(true);
    checkPhase(events, 'download', 1);
  });

  it('a listener that throws does not break push or pull', async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, files());
    const sync = f.sync({ workspaceDir: ws });
    let calls = 0;
    sync.on('progress', () => {
      calls++;
      throw new Error('listener bug');
    });
    const pushed = await sync.push();
    expect(pushed).toMatchObject({ success: true, uploadedFiles: N, failedFiles: [], errors: [] });
    expect(await listAllKeys(f.other, f.bucket)).toHaveLength(N);

    const dest = await tempDir();
    const other = f.sync({ workspaceDir: dest });
    other.on('progress', () => {
      calls++;
      throw new Error('listener bug');
    });
    const pulled = await other.pull();
    expect(pulled).toMatchObject({ success: true, downloadedFiles: N, failedFiles: [], errors: [] });
    await expectSameTree(ws, dest);
    expect(calls).toBeGreaterThanOrEqual(2);
  });
});
