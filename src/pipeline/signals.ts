import { setMaxListeners } from 'node:events';
import { softSignal } from '../storage/ObjectStore.js';

/**
 * The user's signal combined with the instance's `timeoutMs` and its
 * lifetime (`destroy()`). `timedOut()` tells whether the timeout fired;
 * `dispose()` clears the timer.
 */
export function combineSignals(
  user: AbortSignal | undefined,
  timeoutMs: number | undefined,
  lifetime: AbortSignal,
): { signal: AbortSignal; timedOut: () => boolean; dispose: () => void } {
  // Without a signal of the caller's or a timeout, only destroy() can stop the sync: a soft signal (see softSignal).
  if (user === undefined && timeoutMs === undefined) return { signal: softSignal(lifetime), timedOut: () => false, dispose: () => undefined };
  const own = user === undefined ? [lifetime] : [user, lifetime];
  if (timeoutMs === undefined) return { signal: unlimited(AbortSignal.any(own)), timedOut: () => false, dispose: () => undefined };
  const timer = new AbortController();
  let fired = false;
  const handle = setTimeout(() => {
    fired = true;
    timer.abort(new DOMException(`The sync exceeded timeoutMs (${timeoutMs} ms)`, 'TimeoutError'));
  }, timeoutMs);
  handle.unref?.();
  return {
    signal: unlimited(AbortSignal.any([...own, timer.signal])),
    timedOut: () => fired && !(user?.aborted ?? false),
    dispose: () => clearTimeout(handle),
  };
}

/**
 * Every request in flight listens to the sync's signal (downloadConcurrency
 * of them at once, 50 by default): not a leak, so no MaxListenersExceededWarning.
 */
export function unlimited(signal: AbortSignal): AbortSignal {
  setMaxListeners(0, signal);
  return signal;
}
