// The state folder vanishing while it is made: another sync of the workspace
// removes the library folder when it releases a lock that was all it held
// (src/pipeline/lock.ts), so `mkdir(…, { recursive: true })` can meet it
// half-way (EEXIST, then gone before its check: ENOENT). Seen in CI with two
// CLI processes on one workspace. Made deterministic here: `mkdir` answers
// ENOENT twice, as it would in that race, then works.
import { describe, expect, it, vi } from 'vitest';

const state = vi.hoisted(() => ({ failures: 0, calls: 0 }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...actual,
    mkdir: async (...args: Parameters<typeof actual.mkdir>) => {
      state.calls++;
      if (state.failures > 0) {
        state.failures--;
        throw Object.assign(new Error(`ENOENT: no such file or directory, mkdir '${String(args[0])}'`), { code: 'ENOENT' });
      }
      return actual.mkdir(...args);
    },
  };
});

const { WorkspaceLock } = await import('../../src/state/WorkspaceLock.js');
const { tempDir } = await import('../helpers/sync-fixture.js');

describe('WorkspaceLock: the state folder removed while it is made', () => {
  it('ENOENT from mkdir (the folder removed half-way by another sync) is retried, and the lock is taken', { timeout: 5_000 }, async () => {
    const dir = await tempDir();
    state.failures = 2;
    state.calls = 0;
    const held = await new WorkspaceLock(dir).acquire();
    expect(held).toBeDefined();
    expect(state.calls).toBe(3);
    await held?.release();
  });
});
