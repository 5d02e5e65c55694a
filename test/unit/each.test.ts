import { describe, expect, it } from 'vitest';
import { eachLimited } from '../../src/core/each.js';

const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('eachLimited', () => {
  it('calls fn once per item, in order of start, never more than `concurrency` at once', { timeout: 5_000 }, async () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const started: number[] = [];
    let inFlight = 0;
    let peak = 0;
    await eachLimited(items, 4, async (i) => {
      started.push(i);
      inFlight++;
      peak = Math.max(peak, inFlight);
      await tick(i % 3);
      inFlight--;
    });
    expect(started).toEqual(items);
    expect(peak).toBe(4);
  });

  it('an empty list and a concurrency above the length both work', { timeout: 5_000 }, async () => {
    let calls = 0;
    await eachLimited([], 8, async () => void calls++);
    await eachLimited([1, 2], 100, async () => void calls++);
    expect(calls).toBe(2);
  });

  it('after a failure no new call starts; the calls in flight finish before the first error is thrown', { timeout: 5_000 }, async () => {
    const finished: number[] = [];
    const started: number[] = [];
    const run = eachLimited([0, 1, 2, 3, 4, 5, 6, 7], 2, async (i) => {
      started.push(i);
      await tick(i === 1 ? 5 : 20);
      if (i === 1) throw new Error('one');
      if (i === 2) throw new Error('two');
      finished.push(i);
    });
    await expect(run).rejects.toThrow('one');
    // 1 failed while 0 was in flight: 0 finished, nothing after 1 started
    expect(started).toEqual([0, 1]);
    expect(finished).toEqual([0]);
    await tick(50);
    expect(started).toEqual([0, 1]); // nothing ran after it returned
  });
});
