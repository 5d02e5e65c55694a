// The conditional-write probe (src/storage/capabilities.ts) that a push runs
// before its first write to a bucket (once per process and bucket; per
// instance with a store passed in): 2 PUTs and 1 DeleteObjects of a scratch
// key `<prefix>.s3-workspace-sync/probe-<16 hex>`. Tests about what a push
// does to the workspace's objects tell its requests apart with these.
import { cachedProbe, PROBE_NAME_PREFIX, probeCacheKey, type ConditionalWriteSupport } from '../../src/storage/capabilities.js';

const PROBE_KEY = new RegExp(`(^|/)${PROBE_NAME_PREFIX.replace(/[.]/g, '\\.')}[0-9a-f]{16}$`);

/** Whether `key` is a probe's scratch key. */
export function isProbeKey(key: unknown): boolean {
  return typeof key === 'string' && PROBE_KEY.test(key);
}

/** Whether an SDK command input (PutObject, DeleteObject, DeleteObjects…) is about probe scratch keys only. */
export function isProbeInput(input: unknown): boolean {
  const { Key, Delete } = (input ?? {}) as { Key?: unknown; Delete?: { Objects?: Array<{ Key?: unknown }> } };
  if (Key !== undefined) return isProbeKey(Key);
  const objects = Delete?.Objects;
  return Array.isArray(objects) && objects.length > 0 && objects.every((o) => isProbeKey(o.Key));
}

/**
 * Record `support` as the probe's answer for an endpoint and bucket in this
 * process (test files run in their own process), so that no push there
 * probes: for tests that count the exact requests of a mocked client
 * (aws-sdk-client-mock: the endpoint is `'aws'`), whatever test of the file
 * runs first. See `cachedProbe` and `probeCacheKey`.
 *
 * @example
 * beforeAll(() => assumeConditionalWrites('aws', 'mock-bucket', 'enforced'));
 */
export async function assumeConditionalWrites(endpoint: string, bucket: string, support: ConditionalWriteSupport): Promise<void> {
  await cachedProbe(probeCacheKey(endpoint, bucket), () => Promise.resolve(support));
}
