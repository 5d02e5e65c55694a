import { setTimeout as sleep } from 'node:timers/promises';
import { IntegrityError, StorageError } from '../errors.js';

/** Attempts per file transfer (the first try included). */
export const TRANSFER_ATTEMPTS = 3;
const BASE_DELAY_MS = 100;
const MAX_DELAY_MS = 2_000;

const TRANSIENT_CODES = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);

/** Whether a failed transfer is worth trying again. */
export function isTransient(error: unknown): boolean {
  if (error instanceof StorageError) return error.retryable;
  if (error instanceof IntegrityError) return true; // a truncated or damaged body
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && TRANSIENT_CODES.has(code);
}

/**
 * Run a whole transfer again (a fresh request, a re-opened file) after a
 * transient failure, with exponential backoff and full jitter. The SDK's own
 * retries do not cover stream bodies or a body that fails after the headers.
 */
export async function withRetries<T>(
  fn: () => Promise<T>,
  signal?: AbortSignal,
  attempts: number = TRANSFER_ATTEMPTS,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= attempts || !isTransient(error) || signal?.aborted) throw error;
      const delay = Math.random() * Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (attempt - 1));
      await sleep(delay, undefined, signal ? { signal } : {});
    }
  }
}
