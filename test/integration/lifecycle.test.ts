// The instance's life cycle: destroy() stops what runs and ends the instance;
// waitForPull() after a complete pull() does not pull again; waitForPaths()
// reports the paths as they were given.
import { readdir } from 'node:fs/promises';

import { describe, expect, it } from 'vitest';

import { SyncAbortedError, SyncError } from '../../src/index.js';
import { recordCommands } from '../helpers/commands.js';
import { putObjects } from '../helpers/s3.js';
import { fixture, listEntries, tempDir } from '../helpers/sync-fixture.js';

describe('destroy()', () => {
  it('stops a running pull (SyncAbortedError DESTROYED, nothing half-written); every later call rejects with DESTROYED', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const objects = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`ws/f${String(i).padStart(2, '0')}.txt`, `file ${i}`]));
    await putObjects(f.other, f.bucket, objects);
    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws, downloadConcurrency: 2 });
    let gets = 0;
    recordCommands(f.client, (name) => {
      if (name === 'GetObjectCommand' && ++gets === 5) sync.destroy();
    });
    const error = await sync.pull().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SyncAbortedError);
    expect(error).toMatchObject({ code: 'DESTROYED', name: 'AbortError' });
    const done = (error as SyncAbortedError).result.downloadedFiles;
    expect(done).toBeLessThan(30);
    // what finished is complete, nothing else is there (no temporary files)
    const entries = await listEntries(ws);
    expect(entries.filter((e) => e.endsWith('.s3ws-tmp'))).toEqual([]);
    expect(entries.length).toBe(done);

    const requestsBefore = gets;
    for (const call of [() => sync.pull(), () => sync.push(), () => sync.plan('pull'), () => sync.waitForPull(), () => sync.waitForPaths(['a'])]) {
      await expect(call()).rejects.toMatchObject({ code: 'DESTROYED' });
      await expect(call()).rejects.toBeInstanceOf(SyncError);
    }
    sync.startBackgroundPull(); // a no-op
    sync.destroy(); // idempotent
    expect(gets).toBe(requestsBefore);
  });

  it('a sync queued behind the running one rejects too', { timeout: 20_000 }, async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, { 'ws/a.txt': 'a', 'ws/b.txt': 'b' });
    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws, downloadConcurrency: 1 });
    recordCommands(f.client, (name) => {
      if (name === 'GetObjectCommand') sync.destroy();
    });
    const first = sync.pull();
    const queued = sync.push();
    await expect(first).rejects.toMatchObject({ code: 'DESTROYED' });
    await expect(queued).rejects.toMatchObject({ code: 'DESTROYED' });
  });
});

describe('waitForPull() and waitForPaths()', () => {
  it('waitForPull() after a complete pull() answers with that pull, without pulling again', { timeout: 20_000 }, async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, { 'ws/a.txt': 'a' });
    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws });
    const pulled = await sync.pull();
    const log = recordCommands(f.client);
    expect(await sync.waitForPull()).toBe(pulled);
    expect(log.calls).toEqual([]);
    expect(await readdir(ws)).toContain('a.txt');
  });

  it('waitForPaths() reports the paths as given (a trailing slash kept)', { timeout: 20_000 }, async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, { 'ws/.agents/a.md': 'a', 'ws/AGENTS.md': 'x' });
    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws });
    sync.startBackgroundPull({ priority: ['.agents/'] });
    const ready = await sync.waitForPaths(['.agents/', 'AGENTS.md']);
    expect(ready).toMatchObject({ paths: ['.agents/', 'AGENTS.md'], downloaded: 2 });
    await sync.waitForPull();
  });
});
