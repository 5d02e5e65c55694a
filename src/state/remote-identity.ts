/**
 * The identity of a remote workspace: a small object the library keeps in its
 * own folder of the prefix (`<prefix>.s3-workspace-sync/workspace-id`), with
 * random content written once. Its ETag changes whenever the object is
 * re-created — a new bucket with the same name, another server, a prefix
 * wiped and refilled — so a state file records it and is trusted only while
 * the bucket still shows the same one.
 *
 * The object is in the library's reserved folder: never downloaded, never
 * deleted by a push, invisible to the ignore rules.
 */
import { createHash, randomUUID } from 'node:crypto';
import { StorageError } from '../errors.js';
import type { ObjectStore } from '../storage/ObjectStore.js';
import { WORKSPACE_ID_NAME } from '../core/names.js';

/** Key of the identity object, relative to the prefix. */
export { WORKSPACE_ID_NAME };

/** Full key of the identity object of `prefix`. */
export function workspaceIdKey(prefix: string): string {
  return prefix + WORKSPACE_ID_NAME;
}

/**
 * Split a listing of `prefix` into the identity object's ETag (`null`: none)
 * and the workspace's own objects (everything else).
 */
export function splitIdentity<T extends { key: string; etag: string }>(listed: readonly T[], prefix: string): { id: string | null; own: T[] } {
  const key = workspaceIdKey(prefix);
  let id: string | null = null;
  const own: T[] = [];
  for (const o of listed) {
    if (o.key === key) id = o.etag;
    else own.push(o);
  }
  return { id, own };
}

/** The identity object's ETag, or `null` when the prefix has none. Other errors propagate. */
export async function readRemoteId(store: ObjectStore, prefix: string, signal?: AbortSignal): Promise<string | null> {
  try {
    return (await store.head(workspaceIdKey(prefix), signal)).etag;
  } catch (error) {
    if (error instanceof StorageError && error.code === 'NOT_FOUND') return null;
    throw error;
  }
}

/**
 * Create the identity object (only if none exists: `If-None-Match: *`) and
 * return its ETag. When another writer created one first, that one is read
 * and returned.
 */
export async function createRemoteId(store: ObjectStore, prefix: string, signal?: AbortSignal): Promise<string> {
  const body = Buffer.from(
    `${JSON.stringify({ format: 's3-workspace-sync/workspace-id', id: randomUUID(), createdAt: new Date().toISOString() })}\n`,
  );
  try {
    const put = await store.put({
      key: workspaceIdKey(prefix),
      body,
      size: body.length,
      md5: createHash('md5').update(body).digest('hex'),
      contentType: 'application/json',
      mtimeMs: Date.now(),
      ifNoneMatch: true,
      signal,
    });
    return put.etag;
  } catch (error) {
    if (error instanceof StorageError && (error.code === 'PRECONDITION_FAILED' || error.statusCode === 409)) {
      const existing = await readRemoteId(store, prefix, signal);
      if (existing !== null) return existing;
    }
    throw error;
  }
}
