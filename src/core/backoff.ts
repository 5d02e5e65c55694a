/**
 * How hard and how often to try again: the default number of attempts, and
 * the delay between them. Shared by the store (a request) and the transfers
 * (a whole file).
 */

/** Attempts per request and per file transfer (the first try included): `maxAttempts`'s default. */
export const DEFAULT_MAX_ATTEMPTS = 3;
const BASE_DELAY_MS = 100;
const MAX_DELAY_MS = 2_000;

/**
 * Delay before attempt `attempt + 1`: exponential backoff with full jitter
 * (up to 100 ms, 200 ms, 400 ms… capped at 2 s). Also used by S3ObjectStore
 * to send a request again after a stall.
 */
export function backoffMs(attempt: number): number {
  return Math.random() * Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (attempt - 1));
}
