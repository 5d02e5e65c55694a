/**
 * What a server does with the conditional requests the library relies on,
 * learnt by trying: S3-compatible servers differ (AWS S3 enforces
 * `If-None-Match: *` on PUT, R2 and MinIO document it; s3rver and fauxqs
 * ignore it and overwrite). See `WriteCondition` in ObjectStore.ts.
 */
import { createHash, randomBytes } from 'node:crypto';

import { STATE_DIR_NAME } from '../core/names.js';
import { isConditionRefused } from '../errors.js';
import type { ObjectStore } from './ObjectStore.js';

/**
 * Whether the server enforces conditional writes:
 * - `enforced`: a create (`If-None-Match: *`) of a key that exists was
 *   refused (412; or 409 ConditionalRequestConflict, which only a server
 *   that evaluates conditions answers);
 * - `ignored`: it was accepted and overwrote the object (s3rver, fauxqs):
 *   conditional writes cannot detect a concurrent writer there;
 * - `unknown`: the probe could not tell (access denied, network error, a
 *   first create that was refused…).
 */
export type ConditionalWriteSupport = 'enforced' | 'ignored' | 'unknown';

/** A probe's answer, with the error that made it `unknown`. */
export interface ConditionalWriteProbe {
  support: ConditionalWriteSupport;
  /** The scratch key used (deleted again, best effort). */
  key: string;
  /** Why the answer is `unknown`: the request that failed (a {@link StorageError} from a store). */
  error?: unknown;
}

/** Name of the scratch objects, under the library's own folder of the prefix. */
export const PROBE_NAME_PREFIX = `${STATE_DIR_NAME}/probe-`;

const PROBE_BODY = Buffer.from('s3-workspace-sync: conditional-write probe (safe to delete)\n', 'utf8');
const PROBE_MD5 = createHash('md5').update(PROBE_BODY).digest('hex');

/**
 * Find out whether the store's server enforces conditional writes, on a
 * scratch key `<prefix>.s3-workspace-sync/probe-<random>` (the library's own
 * folder, never synced): PUT it with `If-None-Match: *` (must succeed), PUT it
 * again with `If-None-Match: *` (refused: `enforced`; accepted: `ignored`),
 * then delete it.
 *
 * Cost: exactly 2 PUTs (of 60 bytes) and 1 DeleteObjects, whatever happens:
 * the scratch key is always deleted (best effort: a failed delete is
 * ignored), even when a PUT failed or `signal` was aborted (the delete is sent
 * without the signal). Needs `s3:PutObject` and `s3:DeleteObject` on the
 * prefix.
 *
 * Any other failure (access denied, network, throttling, a refused first PUT)
 * gives `unknown` and is not thrown; `error` says what it was.
 *
 * @throws the request's error when `signal` was aborted (after the cleanup).
 */
export async function probeConditionalWritesDetailed(store: ObjectStore, prefix: string, signal?: AbortSignal): Promise<ConditionalWriteProbe> {
  const key = `${prefix}${PROBE_NAME_PREFIX}${randomBytes(8).toString('hex')}`;
  const put = () =>
    store.put({
      key,
      body: PROBE_BODY,
      size: PROBE_BODY.length,
      md5: PROBE_MD5,
      contentType: 'text/plain; charset=utf-8',
      mtimeMs: Date.now(),
      ifNoneMatch: true,
      signal,
    });
  try {
    try {
      await put();
    } catch (error) {
      if (signal?.aborted) throw error;
      return { support: 'unknown', key, error };
    }
    try {
      await put();
      return { support: 'ignored', key };
    } catch (error) {
      if (signal?.aborted) throw error;
      if (isConditionRefused(error)) return { support: 'enforced', key };
      return { support: 'unknown', key, error };
    }
  } finally {
    try {
      await store.deleteMany([key]);
    } catch {
      // best effort: a scratch object left behind is harmless (and named so)
    }
  }
}

/**
 * {@link probeConditionalWritesDetailed}, the answer only: `enforced`,
 * `ignored` or `unknown`. 2 PUTs + 1 delete.
 *
 * @example
 * const support = await cachedProbe(probeCacheKey(await endpointLabel(client), bucket), () => probeConditionalWrites(store, prefix));
 * if (support !== 'enforced') logger.warn('this server does not enforce conditional writes: concurrent writers cannot be detected');
 */
export async function probeConditionalWrites(store: ObjectStore, prefix: string, signal?: AbortSignal): Promise<ConditionalWriteSupport> {
  return (await probeConditionalWritesDetailed(store, prefix, signal)).support;
}

const probes = new Map<string, Promise<ConditionalWriteSupport>>();

/** The cache key of a server and bucket: `endpointLabel(client)` (storage/endpoint.ts) and the bucket name. */
export function probeCacheKey(endpoint: string, bucket: string): string {
  return `${endpoint}\n${bucket}`;
}

/**
 * The probe's answer for `key` (see {@link probeCacheKey}), probing at most
 * once per process: concurrent callers share the probe in flight, later ones
 * get its answer. An `unknown` answer, or a probe that threw (aborted), is not
 * kept: the next caller probes again.
 */
export function cachedProbe(key: string, probe: () => Promise<ConditionalWriteSupport>): Promise<ConditionalWriteSupport> {
  const known = probes.get(key);
  if (known !== undefined) return known;
  const pending = probe().then(
    (support) => {
      if (support === 'unknown' && probes.get(key) === pending) probes.delete(key);
      return support;
    },
    (error: unknown) => {
      if (probes.get(key) === pending) probes.delete(key);
      throw error;
    },
  );
  probes.set(key, pending);
  return pending;
}

/** Forget every cached probe answer (tests; a server reconfigured in a long-lived process). */
export function clearProbeCache(): void {
  probes.clear();
}
