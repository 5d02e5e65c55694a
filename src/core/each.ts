/**
 * Run `fn` on every item with at most `concurrency` calls in flight, started
 * in order. Memory stays proportional to `concurrency`, not to the number of
 * items: a sync of 100,000 files does not hold 100,000 queued closures and
 * promises at once (as `Promise.all(items.map((i) => limit(() => fn(i))))`
 * does).
 *
 * A call that throws stops new calls from starting; the calls in flight are
 * awaited, then the first error is thrown. Nothing runs after this returns.
 */
export async function eachLimited<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  let first: unknown;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (error) {
        if (!failed) first = error;
        failed = true;
      }
    }
  };
  const width = Math.max(1, Math.min(Math.floor(concurrency) || 1, items.length));
  const workers: Array<Promise<void>> = [];
  for (let i = 0; i < width; i++) workers.push(worker());
  await Promise.all(workers);
  if (failed) throw first;
}
