// The generations module's own I/O (pipeline/generations.ts) on the strict
// in-memory store: the commit race and its rebase, where the bucket decides
// overlapping paths. The protocol end to end is in
// test/integration/generations.test.ts.
import { describe, expect, it } from 'vitest';

import { decodeManifest, type ManifestEntry } from '../../src/core/manifest.js';
import { resolveOptions } from '../../src/options.js';
import { DEFAULT_LEASE_TIMING, Generations } from '../../src/pipeline/generations.js';
import { silentLogger } from '../../src/index.js';
import { MemoryObjectStore } from '../../src/storage/MemoryObjectStore.js';

const PREFIX = 'ws/';
const MANIFEST = `${PREFIX}.s3-workspace-sync/manifest.json`;

function parts(store: MemoryObjectStore) {
  const options = resolveOptions({ bucket: 'mem', prefix: PREFIX, workspaceDir: '/tmp/unused', logger: silentLogger });
  return { store, options, location: 's3://mem/ws/' };
}

const entry = (store: MemoryObjectStore, key: string): ManifestEntry => {
  const o = store.inspect(PREFIX + key)!;
  return { size: o.body.length, etag: o.etag };
};
const put = (path: string, e: ManifestEntry) => ({ put: new Map([[path, e]]), removed: new Set<string>() });

describe('commit race', () => {
  it('a commit based on an old manifest rebases: the other commit stays, ours is added, an overlap is decided by the bucket', { timeout: 10_000 }, async () => {
    const store = new MemoryObjectStore();
    store.seedObject(`${PREFIX}x.txt`, 'x1', { md5: true });
    store.seedObject(`${PREFIX}y.txt`, 'y1', { md5: true });
    const a = new Generations(parts(store));
    const b = new Generations(parts(store));
    // both start from generation 1
    await a.commit(put('x.txt', entry(store, 'x.txt')), undefined, new Map(), undefined);
    await b.read(undefined);
    expect(decodeManifest(store.bodyOf(MANIFEST)!).generation).toBe(1);

    // A commits x2 (generation 2); B, still on generation 1, changed y and x (x again later: the bucket has B's x3)
    store.seedObject(`${PREFIX}x.txt`, 'x2 by A', { md5: true });
    const x2 = entry(store, 'x.txt');
    await a.commit(put('x.txt', x2), undefined, new Map(), undefined);
    store.seedObject(`${PREFIX}y.txt`, 'y2 by B', { md5: true });
    store.seedObject(`${PREFIX}x.txt`, 'x3 by B', { md5: true });
    const y2 = entry(store, 'y.txt');
    const x3 = entry(store, 'x.txt');
    const overlap = await b.commit({ put: new Map([['y.txt', y2], ['x.txt', x3]]), removed: new Set() }, undefined, new Map(), undefined);

    expect(overlap).toEqual(['x.txt']);
    const m = decodeManifest(store.bodyOf(MANIFEST)!);
    expect(m.generation).toBe(3);
    expect(m.files.get('y.txt')?.etag).toBe(y2.etag);
    expect(m.files.get('x.txt')?.etag).toBe(x3.etag); // what the bucket holds (looked up), not A's x2
    expect(store.requestCount('head')).toBeGreaterThanOrEqual(1);
  });

  it('a commit whose base is gone (the manifest was deleted) creates it again from a listing', { timeout: 10_000 }, async () => {
    const store = new MemoryObjectStore();
    store.seedObject(`${PREFIX}a.txt`, 'a', { md5: true });
    const g = new Generations(parts(store));
    await g.commit(put('a.txt', entry(store, 'a.txt')), undefined, new Map(), undefined);
    store.seedObject(`${PREFIX}b.txt`, 'b', { md5: true });
    await store.deleteMany([MANIFEST]);
    await g.commit(put('b.txt', entry(store, 'b.txt')), undefined, new Map(), undefined);
    expect([...decodeManifest(store.bodyOf(MANIFEST)!).files.keys()]).toEqual(['a.txt', 'b.txt']);
  });
});

describe('lease timing', () => {
  it('as README states: renewed every 10 s, expired 30 s after the last renewal (readers poll every 0.5 s)', () => {
    expect(DEFAULT_LEASE_TIMING).toEqual({ leaseMs: 30_000, renewMs: 10_000, pollMs: 500 });
  });
});
