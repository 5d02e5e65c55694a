// Where worker threads cannot start (a restricted runtime), the pool hashes
// on the calling thread: same digests, no error.
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';

vi.mock('node:worker_threads', () => ({
  Worker: class {
    constructor() {
      throw new Error('worker threads are not available here');
    }
  },
}));

const { HashPool } = await import('../../src/local/HashPool.js');

describe('HashPool without worker threads', () => {
  it('falls back to hashing in-thread with the same results', async () => {
    const pool = new HashPool(2);
    expect(pool.offThread).toBe(true); // nothing tried yet
    const data = randomBytes(300_001);
    const s = pool.stream([100_000]);
    await s.update(data.subarray(0, 123_456));
    await s.update(data.subarray(123_456));
    const d = await s.digest();
    expect(d.md5).toBe(createHash('md5').update(data).digest('hex'));
    expect(d.etags).toHaveLength(1);
    expect(pool.offThread).toBe(false);
    expect(await pool.md5(data)).toBe(d.md5);
  });
});
