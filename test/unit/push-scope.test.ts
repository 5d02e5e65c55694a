// The pieces of a targeted push's scope: which paths are looked at, and which
// snapshot entries they cover.
import { describe, expect, it } from 'vitest';
import { topmost } from '../../src/local/scanner.js';
import { snapshotIn } from '../../src/pipeline/prepare.js';

describe('topmost', () => {
  it('drops paths under another named path and duplicates; the root stands for everything', { timeout: 5_000 }, () => {
    expect(topmost(['a/b', 'a', 'c/d', 'c/d/e', 'c/d', 'cd'])).toEqual(['a', 'c/d', 'cd']);
    expect(topmost(['x', ''])).toEqual(['']);
    expect(topmost([])).toEqual([]);
  });
});

describe('snapshotIn', () => {
  const snapshot = new Map(['a', 'a/b', 'a/b/c', 'ab', 'ab/c', 'x/y/z', 'x/yz'].map((p) => [p, p.length]));
  it('keeps the named paths and everything under them, nothing that only shares a name prefix', { timeout: 5_000 }, () => {
    expect([...snapshotIn(snapshot, ['a']).keys()].sort()).toEqual(['a', 'a/b', 'a/b/c']);
    expect([...snapshotIn(snapshot, ['x/y']).keys()].sort()).toEqual(['x/y/z']);
    expect([...snapshotIn(snapshot, ['ab/c', 'missing']).keys()]).toEqual(['ab/c']);
    expect(snapshotIn(snapshot, []).size).toBe(0);
  });
});
