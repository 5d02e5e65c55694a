import { describe, expect, it } from 'vitest';

import { matchesPath, normalizePathPatterns, orderByPriority, PathTracker } from '../../src/core/priority.js';
import { ConfigError, IncompletePathsError } from '../../src/index.js';

describe('priority paths', () => {
  it('a pattern matches the path itself and everything under it, never a sibling sharing its prefix', () => {
    expect(matchesPath('config', 'config')).toBe(true);
    expect(matchesPath('config/a.json', 'config')).toBe(true);
    expect(matchesPath('configuration.json', 'config')).toBe(false);
    expect(matchesPath('a/config/x', 'config')).toBe(false);
  });

  it('normalises a trailing slash and refuses unsafe or non-string entries', () => {
    expect(normalizePathPatterns(['config/', '.agents', 'a/b/'], 'priority')).toEqual(['config', '.agents', 'a/b']);
    for (const bad of [['../x'], ['/abs'], [''], ['a//b'], [42], 'config/']) {
      expect(() => normalizePathPatterns(bad, 'priority')).toThrow(ConfigError);
    }
  });

  it('orders by the first matching pattern, stable within each group', () => {
    const items = ['z', 'b/1', 'a/1', 'b/2', 'c', 'a/2'].map((path) => ({ path }));
    expect(orderByPriority(items, ['a', 'b']).map((i) => i.path)).toEqual(['a/1', 'a/2', 'b/1', 'b/2', 'z', 'c']);
    expect(orderByPriority(items, []).map((i) => i.path)).toEqual(['z', 'b/1', 'a/1', 'b/2', 'c', 'a/2']);
  });
});

describe('PathTracker', () => {
  it('a waiter registered before the plan resolves when its last action settles, not before', async () => {
    const t = new PathTracker();
    let resolved = false;
    const p = t.waitFor(['cfg']).then((r) => ((resolved = true), r));
    t.planned({ downloads: ['cfg/a', 'cfg/b', 'other'], deletions: ['cfg/old'], unchanged: ['cfg/same'] });
    t.settled('cfg/a');
    t.settled('other');
    t.settled('cfg/old');
    await Promise.resolve();
    expect(resolved).toBe(false);
    t.settled('cfg/b');
    expect(await p).toEqual({ paths: ['cfg'], downloaded: 2, deleted: 1, unchanged: 1 });
  });

  it('a failure under the paths rejects at once; a failure elsewhere does not', async () => {
    const t = new PathTracker();
    t.planned({ downloads: ['cfg/a', 'x'], deletions: [], unchanged: [] });
    const mine = t.waitFor(['cfg']);
    const theirs = t.waitFor(['x']);
    t.settled('cfg/a', { path: 'cfg/a', error: 'boom' });
    await expect(mine).rejects.toBeInstanceOf(IncompletePathsError);
    t.settled('x');
    await expect(theirs).resolves.toMatchObject({ downloaded: 1 });
  });

  it('the pull ending with actions still pending (deletions skipped) rejects; ending by an error rejects with it', async () => {
    const t = new PathTracker();
    t.planned({ downloads: [], deletions: ['cfg/old'], unchanged: [] });
    const w = t.waitFor(['cfg']);
    t.end();
    await expect(w).rejects.toBeInstanceOf(IncompletePathsError);

    const u = new PathTracker();
    const early = u.waitFor(['cfg']);
    const boom = new Error('listing refused');
    u.end(boom);
    await expect(early).rejects.toBe(boom);
  });

  it('paths with nothing planned resolve as soon as the plan is known', async () => {
    const t = new PathTracker();
    const w = t.waitFor(['nothing-here']);
    t.planned({ downloads: ['a'], deletions: [], unchanged: [] });
    await expect(w).resolves.toEqual({ paths: ['nothing-here'], downloaded: 0, deleted: 0, unchanged: 0 });
  });
});
