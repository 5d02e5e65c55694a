import { setTimeout as sleep } from 'node:timers/promises';
import { BROKEN_CONNECTION_CODES, IntegrityError, StorageError } from '../errors.js';

import { DEFAULT_MAX_ATTEMPTS, backoffMs } from '../core/backoff.js';

export { DEFAULT_MAX_ATTEMPTS, backoffMs };

/**
 * Whether a failed transfer is worth running again as a whole. Requests the
 * SDK could replay were already retried by its own strategy (standard mode,
 * `maxAttempts`): retrying them again would multiply the attempts and the load
 * on a throttling server. What the SDK cannot retry is retried here: stream
 * bodies (uploads over 8 MiB), bodies that fail or stall after the headers
 * (including a stall detected by the library: `stallTimeoutMs`), and bodies
 * whose bytes do not match (IntegrityError). A request that stalled before
 * its response was sent again by S3ObjectStore already (`retriedBySdk`).
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof StorageError) return error.retryable && !error.retriedBySdk;
  if (error instanceof IntegrityError) return true; // a truncated or damaged body
  const e = error as { code?: unknown; name?: unknown } | null;
  if (e?.name === 'TimeoutError') return true; // a socket that stalled mid-body
  return typeof e?.code === 'string' && BROKEN_CONNECTION_CODES.has(e.code);
}

/**
 * Run a whole transfer again (a fresh request, a re-opened file) after a
 * transient failure, with exponential backoff and full jitter. The SDK's own
 * retries do not cover stream bodies or a body that fails after the headers.
 */
export async function withRetries<T>(
  fn: () => Promise<T>,
  signal?: AbortSignal,
  attempts: number = DEFAULT_MAX_ATTEMPTS,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= attempts || !isTransient(error) || signal?.aborted) throw error;
      await sleep(backoffMs(attempt), undefined, signal ? { signal } : {});
    }
  }
}
