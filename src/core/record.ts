/**
 * The record stage, pure: what the snapshot becomes after a sync. Only what
 * is now identical on both sides enters it: files that were transferred,
 * files the plan found identical; paths whose deletion ran leave it. Nothing
 * that failed or did not run changes it, so a crash or an abort leaves a
 * snapshot that never claims more than is true.
 */
import { isRacy } from './compare.js';
import type { Snapshot, SnapshotEntry } from './model.js';
import type { Plan } from './plan.js';

/** What the execute stage did, as it happened. */
export interface Outcomes {
  /** Files transferred, with their stat and MD5 now on both sides. */
  readonly transferred: Array<{ path: string; entry: SnapshotEntry }>;
  /** Paths whose deletion ran (the file or the object is gone). */
  readonly deleted: string[];
}

export function noOutcomes(): Outcomes {
  return { transferred: [], deleted: [] };
}

/**
 * The snapshot after a sync: `snapshot` with the plan's unchanged files and
 * the transferred files recorded, and deleted paths removed. `statFloor` is a
 * time no later than the stats were taken (the start of the sync): entries
 * modified within the filesystem's timestamp granularity of it are marked
 * racy (their stat proves nothing next time; see `isRacy`). An entry already
 * racy (the file changed while it was uploaded) stays racy.
 *
 * Returns `undefined` when nothing changes (no copy of a large snapshot for a
 * no-op sync), otherwise a new map; `snapshot` itself is never modified.
 */
export function apply(snapshot: ReadonlyMap<string, SnapshotEntry>, plan: Plan, outcomes: Outcomes, statFloor: number): Snapshot | undefined {
  const updates = new Map<string, SnapshotEntry | null>();
  const put = (path: string, entry: SnapshotEntry): void => {
    const racy = entry.racy === true || isRacy(entry.mtimeMs, statFloor, entry.ctimeMs);
    const prev = updates.get(path) ?? snapshot.get(path);
    if (prev != null && sameEntry(prev, entry) && (prev.racy === true) === racy) return;
    // entries are never modified once made: one with the right racy flag is recorded as it is (no copy per file)
    if ((entry.racy === true) === racy) {
      updates.set(path, entry);
      return;
    }
    const next: SnapshotEntry = { size: entry.size, mtimeMs: entry.mtimeMs, ctimeMs: entry.ctimeMs, ino: entry.ino, md5: entry.md5 };
    if (entry.etag !== undefined) next.etag = entry.etag;
    if (racy) next.racy = true;
    updates.set(path, next);
  };
  for (const u of plan.unchanged) {
    const { local } = u;
    const entry: SnapshotEntry = { size: local.size, mtimeMs: local.mtimeMs, ctimeMs: local.ctimeMs, ino: local.ino, md5: u.md5 };
    if (u.etag !== undefined) entry.etag = u.etag;
    put(u.path, entry);
  }
  for (const t of outcomes.transferred) put(t.path, t.entry);
  for (const path of outcomes.deleted) if (snapshot.has(path) || updates.has(path)) updates.set(path, null);
  if (updates.size === 0) return undefined;
  const next = new Map(snapshot);
  for (const [path, entry] of updates) {
    if (entry === null) next.delete(path);
    else next.set(path, entry);
  }
  return next;
}

function sameEntry(a: SnapshotEntry, b: SnapshotEntry): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino && a.md5 === b.md5 && a.etag === b.etag;
}
