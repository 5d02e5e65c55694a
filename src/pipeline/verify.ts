/**
 * `verify()`: compare the workspace with the bucket prefix and report every
 * difference, changing nothing on either side.
 *
 * It is the prepare stage without a plan: it lists the prefix, scans the
 * workspace with the ignore rules and learns what `core/compare` asks for
 * (HEADs, hashes) with the prepare stage's own helpers, then asks
 * `core/compare` — and nothing else — whether each file and object hold the
 * same bytes. Unlike a sync, it is exact:
 * - every local file with an object at its path is hashed unless its stat
 *   matches the snapshot (then the recorded MD5 holds: the stat rule);
 * - compare's last resort (equal size and recorded mtime) is never used, and
 *   an object whose MD5 cannot be known (SSE-KMS or SSE-C without metadata
 *   MD5, another tool's multipart object whose ETag the local file's does not
 *   reproduce, a HEAD that failed) is reported as `unknown`, not guessed.
 *
 * It writes nothing: no lock, no state save, no workspace identity object, no
 * temp file, no directory (a missing workspace is an empty one).
 */
import { etagPartSizes, resolveRemotes, sameContent, localMd5Of, statMatches, unchangedSinceSync, type CompareInput, type Learned, type Needs } from '../core/compare.js';
import { multipartPartCount } from '../core/md5.js';
import type { VerifyReport } from '../core/model.js';
import type { ListedObject, LocalFile, RemoteObject, SkippedFile } from '../core/model.js';
import { libraryFolder, WORKSPACE_ID_NAME } from '../core/names.js';
import { parentDirs } from '../core/paths.js';
import { classifyRemote, pullNeeds } from '../core/plan.js';
import { PlanningProgress } from '../events.js';
import type { ScanResult } from '../local/scanner.js';
import { splitIdentity } from '../state/remote-identity.js';
import type { SyncContext } from './context.js';
import { emptyScan, learn, listAll, loadFilter, scan, workspaceRoot } from './prepare.js';

export type { VerifyReport };

/**
 * Compare the workspace and the bucket prefix; change nothing.
 *
 * Requests: the listing (one per 1,000 objects), a GET of the bucket's
 * `.syncignore` when the workspace has none, and HEADs where compare asks
 * for them (objects without a usable ETag whose local file has the same size;
 * a listed ETag that disagrees with a local file of the same size). Never a
 * PUT, a DELETE or a multipart request.
 *
 * Rejects with the signal's reason when `signal` fires, with a
 * `LocalFileError` when the workspace path is not a readable directory, and
 * with a `StorageError` when the listing fails.
 */
export async function verify(ctx: SyncContext, options: { signal?: AbortSignal | undefined } = {}): Promise<VerifyReport> {
  const { signal } = options;
  const { prefix } = ctx.options;
  signal?.throwIfAborted();
  // a missing workspace is not created: undefined stands for "missing, so empty"
  const root = await workspaceRoot(ctx, false, true);
  if (root !== undefined) await ctx.state.load(root);
  const all = await listAll(ctx, signal);
  const { id, own } = splitIdentity(all, prefix);
  // the library's own folder is listed as skipped (ignored), as before; the manifest check leaves it out
  const listed = own;
  const area = libraryFolder(prefix);
  // a snapshot made against another bucket (re-created, wiped prefix) is dropped, as a sync drops it
  ctx.state.verify(id);
  const filter = await loadFilter(ctx, root, listed, signal);
  const scanned = root === undefined ? emptyScan() : await scan(ctx, root, filter, signal);
  const classified = classifyRemote(listed, prefix, (p) => filter.ignores(p));
  const base: CompareInput = { local: scanned.files, remote: classified.remote, snapshot: ctx.state.snapshot, hasSnapshot: ctx.state.hasSnapshot };
  const planning = new PlanningProgress(ctx.emit);
  const { learned, scan: readable } = await learn(ctx, root, base, scanned, verifyNeeds(base), signal, planning);
  planning.done();
  signal?.throwIfAborted();

  const skipped: SkippedFile[] = [...classified.skipped, ...readable.skipped];
  if (id !== null) skipped.push({ path: WORKSPACE_ID_NAME, reason: 'ignored' });
  const out = report(base, readable, exact(learned), skipped, { prefix, remoteBlocked: classified.conflicts });
  out.manifest = await compareManifest(ctx, all, listed.filter((o) => !o.key.startsWith(area)), signal);
  return out;
}

/**
 * The committed manifest against the bucket as listed: paths it misses
 * (objects other tools wrote, or a push whose commit failed), paths it names
 * that are gone, and paths whose ETag differs. `null`: the prefix has no
 * manifest (or an unreadable one). One GET (a 304 when this instance has
 * seen this version).
 */
async function compareManifest(ctx: SyncContext, all: ListedObject[], listed: ListedObject[], signal: AbortSignal | undefined): Promise<VerifyReport['manifest']> {
  const known = ctx.generations.area(all).manifest;
  if (known === undefined) return null;
  const seen = await ctx.generations.read(signal, known.etag);
  const manifest = seen?.manifest;
  if (manifest === undefined) return null;
  const { prefix } = ctx.options;
  const out = { generation: manifest.generation, committedAt: manifest.committedAt, ok: false, missing: [] as string[], extra: [] as string[], different: [] as string[] };
  const inBucket = new Set<string>();
  for (const o of listed) {
    const path = o.key.slice(prefix.length);
    inBucket.add(path);
    const entry = manifest.files.get(path);
    if (entry === undefined) out.missing.push(path);
    else if (entry.etag !== o.etag) out.different.push(path);
  }
  for (const path of manifest.files.keys()) if (!inBucket.has(path)) out.extra.push(path);
  for (const list of [out.missing, out.extra, out.different]) list.sort();
  out.ok = out.missing.length + out.extra.length + out.different.length === 0;
  return out;
}

/**
 * What to learn for an exact answer: compare's own pull needs (HEAD the
 * objects whose MD5 the listing does not give, when a local file of the same
 * size needs comparing), and a hash of every local file with an object at its
 * path unless its stat matches the snapshot — or the object changed since
 * the sync and its MD5 is not listed (a multipart ETag is then computed from
 * the file).
 */
function verifyNeeds(input: CompareInput): Needs {
  const { head } = pullNeeds(input);
  const hash: string[] = [];
  for (const [path, local] of input.local) {
    const remote = input.remote.get(path);
    if (remote === undefined) continue;
    const snap = input.snapshot.get(path);
    if (!statMatches(local, snap) || (remote.md5 === undefined && !unchangedSinceSync(local, snap, remote))) hash.push(path);
  }
  return { hash, head };
}

/**
 * What was learnt, without the recorded mtimes of objects: compare's last
 * resort (same size and same recorded mtime count as equal) then never
 * applies, so an object's MD5 is known only from its metadata, a confirmed
 * ETag, or a multipart ETag the local file reproduces.
 */
function exact(learned: Learned): Learned {
  const heads = new Map([...learned.heads].map(([path, facts]) => [path, { ...facts, mtimeMs: undefined }]));
  return { ...learned, heads };
}

function report(
  base: CompareInput,
  readable: ScanResult,
  learned: Learned,
  skipped: SkippedFile[],
  remoteSide: { prefix: string; remoteBlocked: ReadonlySet<string> },
): VerifyReport {
  const local = readable.files;
  const remote = resolveRemotes({ ...base, local }, learned);
  const notComparable = new Map(readable.skipped.map((s) => [s.path, s.reason]));
  const out: VerifyReport = { ok: false, checked: 0, missingLocally: [], missingRemotely: [], different: [], unknown: [], skipped, manifest: null };
  const paths = new Set<string>([...local.keys(), ...remote.keys()]);

  for (const path of paths) {
    const file = local.get(path);
    const listed = base.remote.get(path);
    const obj = remote.get(path);
    if (obj === undefined || listed === undefined) {
      // the key exists but other keys use it as a directory (classifyRemote skipped it): not comparable
      if (remoteSide.remoteBlocked.has(path)) out.unknown.push({ path, key: remoteSide.prefix + path, reason: 'remote-not-comparable: other keys use this path as a directory' });
      else out.missingRemotely.push({ path });
      continue;
    }
    if (file === undefined) {
      const blocker = [path, ...parentDirs(path)].find((p) => notComparable.has(p));
      if (blocker === undefined) out.missingLocally.push({ path, key: obj.key });
      else out.unknown.push({ path, key: obj.key, reason: `local-not-comparable: "${blocker}" is ${notComparable.get(blocker) ?? 'not a file'}` });
      continue;
    }
    const verdict = compareOne(file, base, listed, obj, learned);
    if (verdict.kind === 'same') continue;
    if (verdict.kind === 'unknown') {
      out.unknown.push({ path, key: obj.key, reason: verdict.reason });
      continue;
    }
    const d: VerifyReport['different'][number] = { path, key: obj.key, localSize: file.size, remoteSize: obj.size };
    if (verdict.localMd5 !== undefined) d.localMd5 = verdict.localMd5;
    if (verdict.remoteMd5 !== undefined) d.remoteMd5 = verdict.remoteMd5;
    out.different.push(d);
  }

  out.checked = paths.size;
  const byPath = (a: { path: string }, b: { path: string }): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  out.missingLocally.sort(byPath);
  out.missingRemotely.sort(byPath);
  out.different.sort(byPath);
  out.unknown.sort(byPath);
  out.ok = out.missingLocally.length + out.missingRemotely.length + out.different.length + out.unknown.length === 0;
  return out;
}

type Verdict = { kind: 'same' } | { kind: 'different'; localMd5?: string | undefined; remoteMd5?: string | undefined } | { kind: 'unknown'; reason: string };

/** One file against one object, through `core/compare` only. */
function compareOne(file: LocalFile, base: CompareInput, listed: RemoteObject, obj: RemoteObject, learned: Learned): Verdict {
  const snap = base.snapshot.get(file.path);
  // both exactly as the last sync left them (identical then)
  if (unchangedSinceSync(file, snap, listed)) return { kind: 'same' };
  const localMd5 = localMd5Of(file, snap, learned.localMd5);
  if (sameContent(file, localMd5, obj)) return { kind: 'same' };
  // an MD5 read off a listed ETag and never confirmed by a HEAD proves nothing
  const remoteMd5 = obj.md5FromEtag === true ? undefined : obj.md5;
  if (file.size !== obj.size) return { kind: 'different', localMd5, remoteMd5 };
  if (localMd5 !== undefined && remoteMd5 !== undefined) return { kind: 'different', localMd5, remoteMd5 };
  if (localMd5 === undefined) return { kind: 'unknown', reason: 'local-not-comparable: the file could not be hashed' };
  const facts = learned.heads.get(file.path);
  const headed = facts !== undefined && facts.etag === obj.etag;
  if (!headed) return { kind: 'unknown', reason: 'unconfirmed: the HEAD that tells the object\'s MD5 failed, or the object changed during the verify' };
  if (multipartPartCount(obj.etag) !== undefined) {
    const sizes = etagPartSizes(listed, facts);
    return {
      kind: 'unknown',
      reason:
        `multipart-etag-mismatch: the object has no MD5 metadata and its ETag is not reproduced by the local file's ` +
        `multipart ETag with part size(s) ${sizes.join(', ') || 'unknown'} (different content, or another part layout)`,
    };
  }
  return { kind: 'unknown', reason: `no-md5: the object has no MD5 metadata and its ETag is not an MD5${facts.serverSideEncryption ? ` (${facts.serverSideEncryption})` : ''}` };
}
