// The watch session's scheduling (src/pipeline/watch.ts), with a fake change
// source, fake pushes and fake timers: when pushes run, what they are told,
// one at a time, retries, flush and close. The real watcher and real pushes
// are in test/integration/watch.test.ts.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { silentLogger } from '../../src/logger.js';
import type { SyncCallOptions } from '../../src/options.js';
import { MAX_PENDING_PATHS, resolveWatchOptions, WatchSession, type ChangeSourceOptions, type WatchOptions } from '../../src/pipeline/watch.js';
import type { SyncResult } from '../../src/types.js';

function result(success = true): SyncResult {
  return { success, uploadedFiles: 0, downloadedFiles: 0, deletedFiles: 0, failedFiles: [] } as unknown as SyncResult;
}

interface Call {
  options: SyncCallOptions;
  at: number;
  finish: (r: SyncResult | Error) => void;
}

function harness(options: WatchOptions = {}) {
  const calls: Call[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  /** false: pushes wait for finish(); true: they resolve at once with success. */
  let auto = true;
  const sources: Array<{ opts: ChangeSourceOptions; closed: boolean }> = [];
  let closedCalls = 0;
  const push = (o: SyncCallOptions): Promise<SyncResult> =>
    new Promise<SyncResult>((resolve, reject) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const finish = (r: SyncResult | Error): void => {
        inFlight--;
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      calls.push({ options: o, at: Date.now(), finish });
      if (auto) finish(result());
    });
  const session = new WatchSession(
    {
      push,
      pull: async () => result(),
      watch: async (opts) => {
        const s = { opts, closed: false };
        sources.push(s);
        return { close: () => void (s.closed = true) };
      },
      logger: silentLogger,
      closed: () => void closedCalls++,
    },
    resolveWatchOptions({ debounceMs: 1000, maxDelayMs: 5000, reconcileMs: 0, ...options }),
  );
  const change = (...paths: string[]): void => sources[sources.length - 1]!.opts.onChange(paths);
  return {
    session,
    calls,
    sources,
    change,
    manual: () => void (auto = false),
    maxInFlight: () => maxInFlight,
    closedCalls: () => closedCalls,
  };
}

beforeEach(() => {
  // setImmediate stays real: flush() lets queued file-system events arrive with it
  vi.useFakeTimers({ now: 1_000_000, toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('watch session', () => {
  it('pushes the paths it saw once they have been quiet for debounceMs, with changedPaths', { timeout: 5_000 }, async () => {
    const h = harness();
    const starts: unknown[] = [];
    h.session.on('push-start', (i) => starts.push(i));
    await h.session.start();
    h.change('a.txt');
    await vi.advanceTimersByTimeAsync(500);
    h.change('dir/b.txt', 'a.txt');
    await vi.advanceTimersByTimeAsync(900);
    expect(h.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(200);
    expect(h.calls).toHaveLength(1);
    expect(h.calls[0]!.options.changedPaths).toEqual(['a.txt', 'dir/b.txt']);
    expect(starts).toEqual([{ reason: 'quiet', paths: 2 }]);
    expect(h.session.pendingPaths).toBe(0);
  });

  it('under continuous writes, pushes at least every maxDelayMs', { timeout: 5_000 }, async () => {
    const h = harness();
    await h.session.start();
    const t0 = Date.now();
    for (let i = 0; i < 40; i++) {
      h.change(`f${i}`);
      await vi.advanceTimersByTimeAsync(300);
    }
    // 12 s of writes every 300 ms: never quiet, so a push 5 s after the first write, and 5 s after the first write after it
    expect(h.calls.map((c) => c.at - t0)).toEqual([5000, 10_100]);
    expect(h.calls[0]!.options.changedPaths).toHaveLength(17);
  });

  it('one push at a time: changes during a push wait for the next one', { timeout: 5_000 }, async () => {
    const h = harness();
    h.manual();
    await h.session.start();
    h.change('a');
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.calls).toHaveLength(1);
    h.change('b');
    await vi.advanceTimersByTimeAsync(10_000); // quiet and max delay both passed: still one push running
    expect(h.calls).toHaveLength(1);
    h.calls[0]!.finish(result());
    await vi.advanceTimersByTimeAsync(0);
    expect(h.calls).toHaveLength(2); // overdue: runs as soon as the first ends
    expect(h.calls[1]!.options.changedPaths).toEqual(['b']);
    h.calls[1]!.finish(result());
    expect(h.maxInFlight()).toBe(1);
  });

  it('a push that fails keeps its paths and tries again with backoff; an error event says why', { timeout: 5_000 }, async () => {
    const h = harness();
    h.manual();
    const errors: unknown[] = [];
    const reasons: string[] = [];
    h.session.on('error', (e) => errors.push(e));
    h.session.on('push-start', (i) => reasons.push(i.reason));
    await h.session.start();
    h.change('a');
    await vi.advanceTimersByTimeAsync(1000);
    h.calls[0]!.finish(new Error('bucket unreachable'));
    await vi.advanceTimersByTimeAsync(0);
    expect(errors).toHaveLength(1);
    expect(h.session.pendingPaths).toBe(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(h.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.calls).toHaveLength(2);
    expect(h.calls[1]!.options.changedPaths).toEqual(['a']);
    // a result with failed files is retried too, after 2 s this time
    h.calls[1]!.finish(result(false));
    await vi.advanceTimersByTimeAsync(1999);
    expect(h.calls).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(h.calls).toHaveLength(3);
    h.calls[2]!.finish(result());
    await vi.advanceTimersByTimeAsync(0);
    expect(reasons).toEqual(['quiet', 'retry', 'retry']);
    expect(h.session.pendingPaths).toBe(0);
  });

  it('flush pushes what is pending now and resolves with the result; nothing pending: undefined', { timeout: 5_000 }, async () => {
    const h = harness();
    await h.session.start();
    expect(await h.session.flush()).toBeUndefined();
    h.change('x');
    const flushed = await h.session.flush();
    expect(flushed?.success).toBe(true);
    expect(h.calls).toHaveLength(1);
    expect(h.calls[0]!.options.changedPaths).toEqual(['x']);
    // a full flush looks at everything
    await h.session.flush({ full: true });
    expect(h.calls[1]!.options.changedPaths).toBeUndefined();
  });

  it('flush waits for a running push, then pushes what came during it', { timeout: 5_000 }, async () => {
    const h = harness();
    h.manual();
    await h.session.start();
    h.change('a');
    await vi.advanceTimersByTimeAsync(1000);
    h.change('b');
    const flushing = h.session.flush();
    await vi.advanceTimersByTimeAsync(0);
    expect(h.calls).toHaveLength(1);
    h.calls[0]!.finish(result());
    await vi.advanceTimersByTimeAsync(0);
    expect(h.calls).toHaveLength(2);
    h.calls[1]!.finish(result());
    expect((await flushing)?.success).toBe(true);
    expect(h.calls[1]!.options.changedPaths).toEqual(['b']);
  });

  it('close stops the watcher, pushes what is pending, and ignores later changes', { timeout: 5_000 }, async () => {
    const h = harness();
    const reasons: string[] = [];
    h.session.on('push-start', (i) => reasons.push(i.reason));
    await h.session.start();
    h.change('last-words.txt');
    const opts = h.sources[0]!.opts;
    const closing = h.session.close();
    expect(h.sources[0]!.closed).toBe(true);
    expect((await closing)?.success).toBe(true);
    expect(h.calls[0]!.options.changedPaths).toEqual(['last-words.txt']);
    expect(reasons).toEqual(['close']);
    expect(h.closedCalls()).toBe(1);
    opts.onChange(['after.txt']);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(h.calls).toHaveLength(1);
    expect(h.session.close()).toBe(closing);
  });

  it('a change of .syncignore makes the push full and restarts the watcher (the rules changed)', { timeout: 5_000 }, async () => {
    const h = harness();
    await h.session.start();
    h.change('.syncignore', 'a');
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.calls[0]!.options.changedPaths).toBeUndefined();
    expect(h.sources).toHaveLength(2);
    expect(h.sources[0]!.closed).toBe(true);
    expect(h.sources[1]!.closed).toBe(false);
  });

  it('a path that is not a valid workspace path makes the push full instead of failing', { timeout: 5_000 }, async () => {
    const h = harness();
    await h.session.start();
    h.change('ok.txt', 'bad\\name');
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.calls[0]!.options.changedPaths).toBeUndefined();
  });

  it('degraded: an event, a warning, and full pushes at least every maxDelayMs even without events', { timeout: 5_000 }, async () => {
    const h = harness({ reconcileMs: 60_000 });
    const degraded: unknown[] = [];
    h.session.on('degraded', (r) => degraded.push(r));
    await h.session.start();
    h.sources[0]!.opts.onDegraded({ code: 'ENOSPC', message: 'inotify watch limit reached' });
    expect(h.session.degraded).toBe(true);
    expect(degraded).toEqual([{ code: 'ENOSPC', message: 'inotify watch limit reached' }]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.calls).toHaveLength(1);
    expect(h.calls[0]!.options.changedPaths).toBeUndefined();
    await vi.advanceTimersByTimeAsync(5000 + 1000);
    expect(h.calls).toHaveLength(2);
    expect(h.calls[1]!.options.changedPaths).toBeUndefined();
  });

  it('reconciliation: a full push every reconcileMs', { timeout: 5_000 }, async () => {
    const h = harness({ reconcileMs: 30_000 });
    await h.session.start();
    await vi.advanceTimersByTimeAsync(29_999);
    expect(h.calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1 + 5000);
    expect(h.calls).toHaveLength(1);
    expect(h.calls[0]!.options.changedPaths).toBeUndefined();
  });

  it('the initial sync runs after the watcher started; a failed initial sync stops the watcher', { timeout: 5_000 }, async () => {
    const order: string[] = [];
    let source: { closed: boolean } | undefined;
    const session = new WatchSession(
      {
        push: async () => result(),
        pull: async () => {
          order.push('pull');
          throw new Error('listing refused');
        },
        watch: async () => {
          order.push('watch');
          source = { closed: false };
          const s = source;
          return { close: () => void (s.closed = true) };
        },
        logger: silentLogger,
        closed: () => order.push('closed'),
      },
      resolveWatchOptions({}),
    );
    await expect(session.start()).rejects.toThrow('listing refused');
    expect(order).toEqual(['watch', 'pull', 'closed']);
    expect(source?.closed).toBe(true);
  });

  it('passes syncOptions to every push; refuses bad options', { timeout: 5_000 }, async () => {
    const h = harness({ syncOptions: { maxDeletes: 3 } });
    await h.session.start();
    h.change('a');
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.calls[0]!.options).toMatchObject({ maxDeletes: 3, changedPaths: ['a'] });
    expect(() => resolveWatchOptions({ debounceMs: -1 })).toThrow(ConfigError);
    expect(() => resolveWatchOptions({ debounceMs: 5000, maxDelayMs: 1000 })).toThrow(/maxDelayMs/);
    expect(() => resolveWatchOptions({ initial: 'both' as never })).toThrow(ConfigError);
    expect(() => resolveWatchOptions({ debounce: 5 } as never)).toThrow(/Unknown watch\(\) option "debounce"/);
    expect(() => resolveWatchOptions({ syncOptions: { changedPaths: ['x'] } as never })).toThrow(ConfigError);
    expect(resolveWatchOptions({ debounceMs: 20_000 }).maxDelayMs).toBe(20_000);
  });
  it('more than MAX_PENDING_PATHS paths pending become one full push (memory stays bounded)', { timeout: 5_000 }, async () => {
    const h = harness();
    await h.session.start();
    h.change(...Array.from({ length: MAX_PENDING_PATHS }, (_, i) => `f${i}`));
    expect(h.session.pendingPaths).toBe(MAX_PENDING_PATHS);
    h.change('one-more');
    expect(h.session.pendingPaths).toBe(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(h.calls).toHaveLength(1);
    expect(h.calls[0]!.options.changedPaths).toBeUndefined();
  });
});
