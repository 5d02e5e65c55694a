// The conflict policies end to end on the strict in-memory store (fast): each
// policy × {edit/edit, create/create, delete/edit, edit/delete} on push, each
// policy on pull's changed-both-sides case (test/helpers/conflict-scenarios.ts),
// plus what only a fake can arrange: a third writer between the save and the
// overwrite, an object too large to copy.
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';

import { S3WorkspaceSync, silentLogger } from '../../src/index.js';
import { MemoryObjectStore } from '../../src/storage/MemoryObjectStore.js';
import { saveRemoteVersion } from '../../src/transfer/transfers.js';
import { describeConflictPolicies, PREFIX, type PolicyEnv } from '../helpers/conflict-scenarios.js';
import { tempDir } from '../helpers/sync-fixture.js';

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

function memoryEnv(store: MemoryObjectStore): PolicyEnv {
  return {
    writer: async () => {
      const ws = await tempDir();
      const sync = new S3WorkspaceSync({ bucket: 'mem', prefix: PREFIX, workspaceDir: ws, logger: silentLogger, persistState: false }, { store: () => store });
      onTestFinished(() => sync.destroy());
      return { ws, sync };
    },
    bodyOf: async (key) => store.bodyOf(key),
    keys: async (prefix) => store.keys(prefix),
  };
}

describeConflictPolicies('the in-memory store', async (files) => {
  const store = new MemoryObjectStore({ minPartSize: 1024 });
  for (const [rel, body] of Object.entries(files)) store.seedObject(PREFIX + rel, body, { md5: true });
  return memoryEnv(store);
});

describe('conflict policies: what only a fake arranges', () => {
  async function two() {
    const store = new MemoryObjectStore({ minPartSize: 1024 });
    store.seedObject('ws/notes.md', 'v1', { md5: true });
    const env = memoryEnv(store);
    const a = await env.writer();
    const b = await env.writer();
    await a.sync.pull();
    await b.sync.pull();
    return { store, a, b };
  }

  it('keep-local under a third writer: the copy\'s condition fails (C replaced A\'s version after B\'s HEAD): reported, nothing lost', { timeout: 10_000 }, async () => {
    const { store, a, b } = await two();
    await writeFile(path.join(a.ws, 'notes.md'), 'A was here');
    expect((await a.sync.push()).success).toBe(true);
    await writeFile(path.join(b.ws, 'notes.md'), 'B was here');
    // C writes between B's HEAD (which names A's version) and B's copy of it
    const head = store.head.bind(store);
    let c = 0;
    store.head = async (key, signal, condition) => {
      const info = await head(key, signal, condition);
      if (key === 'ws/notes.md' && c++ === 0) store.seedObject('ws/notes.md', 'C was here', { md5: true });
      return info;
    };
    const pushed = await b.sync.push({ conflictPolicy: 'keep-local' });
    expect(pushed.success).toBe(false);
    expect(pushed.conflicts).toEqual([expect.objectContaining({ path: 'notes.md', resolution: 'reported', expectedEtag: md5('v1') })]);
    expect(pushed.conflicts[0]!.remoteSavedTo).toBeUndefined();
    expect(pushed.failedFiles).toEqual([expect.objectContaining({ path: 'notes.md', code: 'CONFLICT' })]);
    // C's bytes at the path, B's on B's disk, and no request overwrote anything
    expect(store.bodyOf('ws/notes.md')?.toString()).toBe('C was here');
    expect(await readFile(path.join(b.ws, 'notes.md'), 'utf8')).toBe('B was here');
    expect(store.keys('ws/.s3-workspace-sync/conflicts/')).toEqual([]);
    expect(store.requestCount('copy')).toBe(1);
  });

  it('keep-local under a third writer after the save: the overwrite\'s If-Match fails; reported, the saved copy stays', { timeout: 10_000 }, async () => {
    const { store, a, b } = await two();
    await writeFile(path.join(a.ws, 'notes.md'), 'A was here');
    expect((await a.sync.push()).success).toBe(true);
    await writeFile(path.join(b.ws, 'notes.md'), 'B was here');
    const copy = store.copy.bind(store);
    store.copy = async (source, dest, options) => {
      const out = await copy(source, dest, options);
      store.seedObject('ws/notes.md', 'C was here', { md5: true });
      return out;
    };
    const pushed = await b.sync.push({ conflictPolicy: 'keep-local' });
    expect(pushed.success).toBe(false);
    expect(pushed.conflicts).toEqual([expect.objectContaining({ path: 'notes.md', resolution: 'reported', remoteSavedTo: expect.stringContaining('conflicts/') })]);
    expect(store.bodyOf('ws/notes.md')?.toString()).toBe('C was here');
    expect(store.bodyOf(pushed.conflicts[0]!.remoteSavedTo!)?.toString()).toBe('A was here');
    expect(await readFile(path.join(b.ws, 'notes.md'), 'utf8')).toBe('B was here');
  });

  it('a fresh instance under keep-local saves the version it never saw before replacing it', { timeout: 10_000 }, async () => {
    const store = new MemoryObjectStore();
    store.seedObject('ws/a.md', 'newer remote work', { md5: true });
    const ws = await tempDir();
    await writeFile(path.join(ws, 'a.md'), 'stale copy');
    const sync = new S3WorkspaceSync({ bucket: 'mem', prefix: PREFIX, workspaceDir: ws, logger: silentLogger, persistState: false, conflictPolicy: 'keep-local' }, { store: () => store });
    onTestFinished(() => sync.destroy());
    const pushed = await sync.push();
    expect(pushed.success).toBe(true);
    expect(pushed.conflicts).toEqual([
      expect.objectContaining({ path: 'a.md', expectedEtag: null, currentEtag: md5('newer remote work'), resolution: 'kept-local', remoteSavedTo: expect.stringContaining('ws/.s3-workspace-sync/conflicts/') }),
    ]);
    expect(store.bodyOf('ws/a.md')?.toString()).toBe('stale copy');
    expect(store.bodyOf(pushed.conflicts[0]!.remoteSavedTo!)?.toString()).toBe('newer remote work');
  });

  it('an object over 5 GiB cannot be saved with one copy: not replaced, reported', { timeout: 10_000 }, async () => {
    const store = new MemoryObjectStore();
    store.seedObject('ws/big.bin', 'x');
    const out = await saveRemoteVersion(store, 'ws/big.bin', { etag: md5('x'), size: 5 * 1024 ** 3 + 1 }, 'ws/.s3-workspace-sync/conflicts/s/big.bin', undefined);
    expect(out.savedTo).toBeUndefined();
    expect(out.changed).toBeUndefined();
    expect(String(out.error)).toMatch(/5 GiB/);
    expect(store.requestCount('copy')).toBe(0);
    // a version that changed meanwhile
    expect(await saveRemoteVersion(store, 'ws/big.bin', { etag: md5('y'), size: 1 }, 'ws/k', undefined)).toMatchObject({ changed: true });
  });
});
