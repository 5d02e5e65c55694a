import { describe, expect, it } from 'vitest';
import { evaluateGuards, type GuardLimits } from '../../src/core/guards.js';
import type { Plan } from '../../src/core/plan.js';

function plan(direction: 'pull' | 'push', deletes: number, bytes = 0): Plan {
  return {
    direction,
    transfers: bytes > 0 ? [{ path: 'big', key: 'p/big', size: bytes, reason: 'new' }] : [],
    deletions: Array.from({ length: deletes }, (_, i) => ({ path: `f${i}`, key: `p/f${i}`, reason: 'deleted-locally' as const })),
    skipped: [],
    kept: [],
    blocked: [],
    unchanged: [],
    conflicts: [],
    bothChanged: [],
    transferBytes: bytes,
  };
}
const none: GuardLimits = { maxDeletes: undefined, maxTotalBytes: Infinity, allowEmptyRemote: false };
const at = { location: 's3://b/p/' };

describe('evaluateGuards', () => {
  it.each([
    // [deletes, tree, maxDeletes, refused]
    [5, 10, undefined, false], // trees of 10 or fewer files are not guarded by default
    [10, 10, undefined, false],
    [6, 11, undefined, true], // more than 50% of 11
    [5, 11, undefined, false],
    [50, 100, undefined, false],
    [51, 100, undefined, true],
    [3, 100, 2, true], // count
    [2, 100, 2, false],
    [0, 100, 0, false],
    [1, 100, 0, true],
    [11, 100, 0.1, true], // fraction
    [10, 100, 0.1, false],
    [1000, 1000, Infinity, false],
  ] as Array<[number, number, number | undefined, boolean]>)('%i deletions of %i with maxDeletes=%s → refused=%s', (deletes, tree, maxDeletes, refused) => {
    const verdict = evaluateGuards(plan('push', deletes), { ...at, treeSize: tree }, { ...none, maxDeletes });
    expect(verdict?.code === 'MAX_DELETES').toBe(refused);
    if (refused) {
      expect(verdict?.message).toContain(`would delete ${deletes} of ${tree} objects`);
      expect(verdict?.message).toContain('Nothing was changed');
      expect(verdict?.message).toContain('maxDeletes');
      expect(verdict?.details).toMatchObject({ wouldDelete: deletes, treeSize: tree, option: 'maxDeletes' });
    }
  });

  it('refuses a pull that would mirror an empty listing, naming the override', () => {
    const verdict = evaluateGuards(plan('pull', 3), { ...at, treeSize: 3, listed: 0 }, none);
    expect(verdict).toMatchObject({ code: 'EMPTY_REMOTE', details: { wouldDelete: 3, option: 'allowEmptyRemote' } });
    expect(verdict?.message).toMatch(/listing of s3:\/\/b\/p\/ is empty.*delete all 3 local file\(s\).*prefix right.*allowEmptyRemote: true/);
    expect(evaluateGuards(plan('pull', 3), { ...at, treeSize: 3, listed: 0 }, { ...none, allowEmptyRemote: true })).toBeUndefined();
    // an empty listing with nothing to delete is fine (a new workspace)
    expect(evaluateGuards(plan('pull', 0), { ...at, treeSize: 0, listed: 0 }, none)).toBeUndefined();
    // the empty-listing guard is about pull only
    expect(evaluateGuards(plan('push', 3), { ...at, treeSize: 3, listed: 0 }, none)).toBeUndefined();
  });

  it('refuses a sync that would transfer more than maxTotalBytes', () => {
    const verdict = evaluateGuards(plan('pull', 0, 2048), { ...at, treeSize: 0 }, { ...none, maxTotalBytes: 1024 });
    expect(verdict).toMatchObject({ code: 'MAX_TOTAL_BYTES', details: { wouldTransferBytes: 2048, limit: 1024 } });
    expect(verdict?.message).toContain('maxTotalBytes');
    expect(evaluateGuards(plan('pull', 0, 1024), { ...at, treeSize: 0 }, { ...none, maxTotalBytes: 1024 })).toBeUndefined();
  });
});
