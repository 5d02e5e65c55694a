/**
 * The prepare stage: everything a sync must read before it can decide. It
 * scans the workspace, lists the prefix (or relies on the snapshot), loads
 * the ignore rules and the state, then learns what `core/compare` asks for —
 * objects to HEAD, files to hash — and hands the planner one immutable input.
 * It changes nothing, except creating a missing workspace directory before a
 * real pull.
 */
import { mkdir, realpath, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { eachLimited } from '../core/each.js';
import {
  etagPartSizes,
  needsFirstPartSize,
  pullNeeds,
  pushNeeds,
  resolveRemotes,
  toConfirm,
  type CompareInput,
  type Learned,
  type ObjectFacts,
} from '../core/compare.js';
import type { ListedObject, RemoteObject, SkippedFile } from '../core/model.js';
import { LEASE_NAME, MANIFEST_NAME } from '../core/manifest.js';
import { libraryFolder, SYNCIGNORE_FILE } from '../core/names.js';
import { classifyRemote, planPull, planPush, type Plan, type PlanInput } from '../core/plan.js';
import { LocalFileError, SyncError, escapeForLog, messageOf } from '../errors.js';
import { PlanningProgress } from '../events.js';
import { calculateFileHash, hashFileWithEtags, hashSmallFileSync } from '../local/hash.js';
import { scanPaths, scanWorkspace, topmost, type ScanResult } from '../local/scanner.js';
import { splitIdentity } from '../state/remote-identity.js';
import { SyncIgnoreFilter } from '../SyncIgnoreFilter.js';
import type { SyncCall, SyncContext } from './context.js';
import { readBody, type PullView } from './generations.js';

/** Files hashed at once while planning (hashing is CPU-bound; a few overlap the reads). */
const HASH_CONCURRENCY = 4;
/** Files up to this size are hashed with one synchronous read when the filesystem is fast. */
const SYNC_HASH_MAX = 256 * 1024;
/** Small files hashed between two looks at the event loop while a listing is in flight. */
const EARLY_HASH_BATCH = 8;
/** Objects HEADed at once while planning. */
const HEAD_CONCURRENCY = 16;
/** A remote `.syncignore` larger than this is not used for ignore rules. */
const MAX_SYNCIGNORE_BYTES = 1024 * 1024;

/** What the prepare stage hands on: the plan and what it was made from. */
export interface Prepared {
  /** The workspace's real path; `undefined` in a dry-run pull of a missing workspace. */
  readonly root: string | undefined;
  readonly plan: Plan;
  /** The scan, without the files that could not be hashed (those are in `skipped`). */
  readonly scan: ScanResult;
  /** Files whose content was read to compute their MD5 while planning. */
  readonly hashed: number;
  /** Files in the tree deletions come from (guards). */
  readonly treeSize: number;
  /** Objects listed, when a listing ran. */
  readonly listed: number | undefined;
  /** Pull: what the listing says about pushes of other processes (see `generations.ts`). */
  readonly pull?: PullView | undefined;
}

/** Scan, list, learn, plan: a pull or a push, as `call.direction` says. */
export async function prepare(ctx: SyncContext, call: SyncCall): Promise<Prepared> {
  const planning = new PlanningProgress(ctx.emit);
  const prepared = call.direction === 'pull' ? await preparePull(ctx, call, planning) : await preparePush(ctx, call, planning);
  planning.done();
  return prepared;
}

async function preparePull(ctx: SyncContext, call: SyncCall, planning: PlanningProgress): Promise<Prepared> {
  const { signal } = call;
  const root = await workspaceRoot(ctx, !call.dryRun, call.dryRun);
  if (root !== undefined) await ctx.state.load(root, !call.dryRun);
  ctx.generations.adopt(ctx.state.remote.manifest);
  // The workspace is scanned while the prefix is listed (mostly the server's time), with the
  // workspace's own ignore rules: the rules the pull uses unless the workspace has no
  // .syncignore and the bucket has one, and then it is scanned again with those.
  const local = root === undefined ? undefined : await localFilter(ctx, root);
  const early = root === undefined || local === undefined ? undefined : earlyScan(ctx, root, local, signal);
  let listing: Awaited<ReturnType<typeof listedRemote>>;
  try {
    listing = await listedRemote(ctx, root, signal, local);
  } catch (error) {
    early?.stop();
    throw error;
  }
  const { view, listed, filter, remote, remoteSkipped, conflicts } = listing;
  if (filter !== local) early?.stop(); // not the pull's rules: its result (or failure) is not the pull's
  const scanned = root === undefined ? emptyScan() : filter === local && early !== undefined ? await early.result : await scan(ctx, root, filter, signal);
  const base = compareInput(ctx, scanned, remote);
  const { learned, scan: readable } = await learn(ctx, root, base, scanned, pullNeeds(base), signal, planning);
  const plan = planPull({
    ...planInput(ctx, readable, filter, base, learned),
    remoteBlocked: conflicts,
    overwriteLocalChanges: call.overwriteLocalChanges,
  });
  plan.skipped.unshift(...remoteSkipped);
  return { root, plan, scan: readable, treeSize: readable.files.size, listed, hashed: learned.localMd5.size, pull: view };
}

/**
 * A scan started before it is known to be wanted (see preparePull): it
 * follows the sync's signal, and `stop()` abandons it. Its failure is
 * reported only by awaiting `result`.
 */
function earlyScan(ctx: SyncContext, root: string, filter: SyncIgnoreFilter, signal: AbortSignal | undefined): { result: Promise<ScanResult>; stop: () => void } {
  const own = new AbortController();
  const follow = (): void => own.abort(signal?.reason);
  if (signal?.aborted) follow();
  else signal?.addEventListener('abort', follow, { once: true });
  const result = scan(ctx, root, filter, own.signal);
  result
    .finally(() => signal?.removeEventListener('abort', follow))
    .catch(() => undefined);
  return { result, stop: () => own.abort(new Error('scan not needed')) };
}

/**
 * List the prefix and classify its objects for a pull. A function of its
 * own so that the listing (one object per key) is garbage once classified,
 * not held through the scan and the planning (100,000 keys: some 15 MB).
 */
async function listedRemote(ctx: SyncContext, root: string | undefined, signal: AbortSignal | undefined, local: SyncIgnoreFilter | undefined) {
  const { prefix } = ctx.options;
  const { all, view } = await listForPull(ctx, signal);
  // the library's own objects (identity, manifest, lease) are not part of the workspace
  const { id, own } = splitIdentity(all, prefix);
  if (view !== undefined || id !== null) ctx.state.verify(id);
  const listed = withoutGenerations(own, prefix);
  const filter = await loadFilter(ctx, root, listed, signal, local);
  const { remote, skipped: remoteSkipped, conflicts } = classifyRemote(listed, prefix, (p) => filter.ignores(p));
  return { view, listed: listed.length, filter, remote, remoteSkipped, conflicts };
}

/**
 * The objects a pull works from: the listing of the prefix, and what it
 * says about pushes in progress; or, with `trustManifest`, the committed
 * manifest's objects (one conditional GET; no view: what the manifest names
 * is one generation, and a replaced object fails its `If-Match` download).
 */
async function listForPull(ctx: SyncContext, signal: AbortSignal | undefined): Promise<{ all: ListedObject[]; view: PullView | undefined }> {
  if (ctx.options.trustManifest) {
    try {
      const fromManifest = await ctx.generations.listFromManifest(signal);
      if (fromManifest !== undefined) return { all: fromManifest, view: undefined };
      ctx.options.logger.debug(`${ctx.location} has no manifest yet: listing it`);
    } catch (error) {
      if (signal?.aborted) throw error;
      ctx.options.logger.warn(`Could not read the manifest of ${ctx.location} (${messageOf(error)}): listing it instead`);
    }
  }
  const all = await listAll(ctx, signal);
  return { all, view: await ctx.generations.pullView(all, outsideLibrary(all, ctx.options.prefix), signal) };
}

/** The objects of a listing outside the library's own folder of the prefix (what a manifest can name). */
function outsideLibrary<T extends { key: string }>(listed: T[], prefix: string): T[] {
  const area = libraryFolder(prefix);
  return listed.some((o) => o.key.startsWith(area)) ? listed.filter((o) => !o.key.startsWith(area)) : listed;
}

/**
 * A listing without the manifest and the push lease: like the identity
 * object, they are the library's bookkeeping, not reported as skipped.
 * Anything else in the library's folder (saved conflict versions, another
 * tool's objects) is listed, and skipped as ignored.
 */
function withoutGenerations<T extends { key: string }>(listed: T[], prefix: string): T[] {
  const keys = new Set([prefix + MANIFEST_NAME, prefix + LEASE_NAME]);
  return listed.some((o) => keys.has(o.key)) ? listed.filter((o) => !keys.has(o.key)) : listed;
}

async function preparePush(ctx: SyncContext, call: SyncCall, planning: PlanningProgress): Promise<Prepared> {
  const { prefix } = ctx.options;
  const { signal } = call;
  const root = (await workspaceRoot(ctx, false)) as string;
  await ctx.state.load(root, !call.dryRun);
  ctx.generations.adopt(ctx.state.remote.manifest);
  await ctx.state.verifyBeforePush(ctx.store, signal);
  const filter = await localFilter(ctx, root);
  const scope = pushScope(ctx, call);
  // No snapshot: list once so identical objects are not uploaded again. The listing starts
  // before the scan, and small files are hashed while it is in flight (mostly the server's time).
  const listing = ctx.state.hasSnapshot ? undefined : settled(listAll(ctx, signal));
  const scanned = scope === undefined ? await scan(ctx, root, filter, signal) : await scanScope(ctx, root, filter, scope, signal);
  const early = listing === undefined ? undefined : await hashWhileWaiting(root, scanned, listing, signal);
  let remote = new Map<string, RemoteObject>();
  let listed: number | undefined;
  ctx.generations.listedBeforePush(undefined);
  if (listing !== undefined) {
    const { id, own: all } = splitIdentity(await listing.promise, prefix);
    ctx.state.verify(id);
    ctx.generations.listedBeforePush(all); // a first manifest starts from it
    const own = withoutGenerations(all, prefix);
    listed = own.length;
    remote = classifyRemote(own, prefix, (p) => filter.ignores(p)).remote;
  }
  const base = compareInput(ctx, scanned, remote, scope === undefined ? undefined : snapshotIn(ctx.state.snapshot, scope));
  const { learned, scan: readable } = await learn(ctx, root, base, scanned, pushNeeds(base), signal, planning, early);
  const plan = planPush({ ...planInput(ctx, readable, filter, base, learned), conflictPolicy: call.conflictPolicy });
  return { root, plan, scan: readable, treeSize: ctx.state.snapshot.size, listed, hashed: learned.localMd5.size };
}

function compareInput(ctx: SyncContext, scanned: ScanResult, remote: Map<string, RemoteObject>, snapshot = ctx.state.snapshot): CompareInput {
  return { local: scanned.files, remote, snapshot, hasSnapshot: ctx.state.hasSnapshot };
}

/**
 * The paths a targeted push looks at (`changedPaths`), or `undefined` for
 * the whole workspace: without a snapshot (nothing vouches for the rest),
 * or when the ignore rules themselves may have changed.
 */
function pushScope(ctx: SyncContext, call: SyncCall): string[] | undefined {
  const paths = call.changedPaths;
  if (paths === undefined) return undefined;
  if (!ctx.state.hasSnapshot) {
    ctx.options.logger.debug(`${ctx.location}: no snapshot yet, so changedPaths cannot be trusted alone: looking at the whole workspace`);
    return undefined;
  }
  if (paths.some((p) => p === SYNCIGNORE_FILE)) return undefined;
  return topmost(paths);
}

async function scanScope(ctx: SyncContext, root: string, filter: SyncIgnoreFilter, scope: string[], signal: AbortSignal | undefined): Promise<ScanResult> {
  try {
    return await scanPaths(root, filter, scope, signal);
  } catch (error) {
    if (signal?.aborted) throw error;
    throw localError(error, '', `Cannot read workspace directory "${ctx.options.workspaceDir}"`);
  }
}

/**
 * The snapshot's entries under the scope: all a targeted push compares (and
 * may delete). The rest is taken as unchanged, and stays in the snapshot.
 */
export function snapshotIn<T>(snapshot: ReadonlyMap<string, T>, scope: readonly string[]): Map<string, T> {
  const out = new Map<string, T>();
  const roots = new Set(scope);
  // few paths (the usual case): look them up, then walk only for directory roots
  for (const path of scope) {
    const entry = snapshot.get(path);
    if (entry !== undefined) out.set(path, entry);
  }
  for (const [path, entry] of snapshot) {
    for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) {
      if (roots.has(path.slice(0, i))) {
        out.set(path, entry);
        break;
      }
    }
  }
  return out;
}

function planInput(ctx: SyncContext, readable: ScanResult, filter: SyncIgnoreFilter, base: CompareInput, learned: Learned): PlanInput {
  const local = readable.files;
  return {
    prefix: ctx.options.prefix,
    local,
    localDirs: readable.dirs,
    remote: resolveRemotes({ ...base, local }, learned),
    snapshot: base.snapshot,
    hasSnapshot: base.hasSnapshot,
    localMd5: learned.localMd5,
    localBlocked: new Set(readable.skipped.map((s) => s.path)),
    isIgnored: (p) => filter.ignores(p),
  };
}

/**
 * Learn what equality needs, in the order it needs it: HEAD the objects whose
 * MD5 the listing does not give (and, for another tool's multipart objects,
 * their part size), hash the files whose MD5 decides (computing multipart
 * ETags in the same pass where they can prove equality), then HEAD the
 * objects whose ETag-as-MD5 disagrees with a file of the same size (it may
 * not be an MD5: SSE-KMS). A file that cannot be read leaves the scan: it is
 * reported (or, when it vanished, simply gone).
 */
export async function learn(
  ctx: SyncContext,
  root: string | undefined,
  base: CompareInput,
  scanned: ScanResult,
  needs: { hash: string[]; head: string[] },
  signal: AbortSignal | undefined,
  planning: PlanningProgress,
  early?: ReadonlyMap<string, string>,
): Promise<{ learned: Learned; scan: ScanResult }> {
  const heads = await headEach(ctx, base.remote, needs.head, signal, true);
  const hashing =
    root === undefined ?
      { localMd5: new Map<string, string>(), localEtags: new Map<string, string[]>(), unreadable: [], gone: [] }
    : await hashFiles(root, base, heads, needs.hash, signal, planning, scanned.fastFs, early);
  const scan = hashing.unreadable.length + hashing.gone.length === 0 ? scanned : withoutUnreadable(scanned, hashing.unreadable, hashing.gone);
  let learned: Learned = { localMd5: hashing.localMd5, localEtags: hashing.localEtags, heads };
  const confirm = toConfirm({ ...base, local: scan.files }, learned);
  if (confirm.length > 0) {
    const more = await headEach(ctx, base.remote, confirm, signal, false);
    learned = { ...learned, heads: new Map([...heads, ...more]) };
  }
  return { learned, scan };
}

/** Hash the given files (with multipart ETags where {@link etagPartSizes} asks for them). */
async function hashFiles(
  root: string,
  base: CompareInput,
  heads: ReadonlyMap<string, ObjectFacts>,
  paths: string[],
  signal: AbortSignal | undefined,
  planning: PlanningProgress,
  syncIo: boolean,
  early: ReadonlyMap<string, string> | undefined,
): Promise<{ localMd5: Map<string, string>; localEtags: Map<string, string[]>; unreadable: SkippedFile[]; gone: string[] }> {
  const localMd5 = new Map<string, string>();
  const localEtags = new Map<string, string[]>();
  const unreadable: SkippedFile[] = [];
  const gone: string[] = [];
  planning.hashing(paths.map((p) => base.local.get(p)?.size ?? 0));
  await eachLimited(paths, HASH_CONCURRENCY, async (path) => {
    try {
      signal?.throwIfAborted();
      const partSizes = etagPartSizes(base.remote.get(path), heads.get(path));
      const known = partSizes.length === 0 ? early?.get(path) : undefined;
      if (known !== undefined) {
        localMd5.set(path, known); // hashed while the listing was in flight
      } else if (partSizes.length === 0) {
        // small files on a fast filesystem: one synchronous read each (the scan measured the filesystem)
        const small = syncIo && (base.local.get(path)?.size ?? Infinity) <= SYNC_HASH_MAX ? hashSmallFileSync(join(root, path), SYNC_HASH_MAX) : undefined;
        localMd5.set(path, small ?? (await calculateFileHash(join(root, path), signal)));
      } else {
        const { md5, etags } = await hashFileWithEtags(join(root, path), partSizes, signal);
        localMd5.set(path, md5);
        localEtags.set(path, etags);
      }
    } catch (error) {
      if (signal?.aborted) throw error;
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      // vanished since the scan: simply gone; otherwise a failure to report
      if (code === 'ENOENT') gone.push(path);
      else unreadable.push({ path, reason: `unreadable: ${code}` });
    } finally {
      planning.hashed(path, base.local.get(path)?.size ?? 0);
    }
  });
  return { localMd5, localEtags, unreadable, gone };
}

/** A promise and whether it has settled (read synchronously). */
export interface Settled<T> {
  readonly promise: Promise<T>;
  done: boolean;
}

export function settled<T>(promise: Promise<T>): Settled<T> {
  const s: Settled<T> = { promise, done: false };
  promise.then(
    () => (s.done = true),
    () => (s.done = true), // the rejection is the caller's, when it awaits the promise
  );
  return s;
}

/**
 * The MD5 of small files of the scan (one synchronous read each, on a fast
 * filesystem), hashed in scan order for as long as `listing` has not settled:
 * time a push without a snapshot would otherwise spend waiting for the
 * server. Such a push needs every file's MD5 (to compare it with an ETag, or
 * to upload the file). A file that changes afterwards is no different from
 * one that changes after the hashing that would have followed the listing:
 * its upload is refused by its Content-MD5, or the next push sees it.
 * Yields to the event loop between batches, so the listing's pages are read
 * (and the next one asked for) while this runs.
 */
export async function hashWhileWaiting(root: string, scanned: ScanResult, listing: Settled<unknown>, signal: AbortSignal | undefined): Promise<Map<string, string>> {
  const md5 = new Map<string, string>();
  if (!scanned.fastFs) return md5;
  let batch = 0;
  for (const [path, file] of scanned.files) {
    if (listing.done || signal?.aborted) break;
    if (file.size > SYNC_HASH_MAX) continue;
    try {
      const h = hashSmallFileSync(join(root, path), SYNC_HASH_MAX);
      if (h !== undefined) md5.set(path, h);
    } catch {
      // hashed again (and reported) after the listing
    }
    if (++batch === EARLY_HASH_BATCH) {
      batch = 0;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
  return md5;
}

function withoutUnreadable(scanned: ScanResult, unreadable: SkippedFile[], gone: string[]): ScanResult {
  const files = new Map(scanned.files);
  for (const p of gone) files.delete(p);
  for (const s of unreadable) files.delete(s.path);
  return { ...scanned, files, skipped: [...scanned.skipped, ...unreadable] };
}

/**
 * HEAD the objects at `paths` (at most {@link HEAD_CONCURRENCY} at once).
 * Facts about an object replaced since the listing (another ETag) are
 * dropped: it simply differs. A failed HEAD teaches nothing. With
 * `partSizes`, a multipart object's part size is read from part 1 when
 * nothing else tells it.
 */
async function headEach(
  ctx: SyncContext,
  remote: ReadonlyMap<string, RemoteObject>,
  paths: string[],
  signal: AbortSignal | undefined,
  partSizes: boolean,
): Promise<Map<string, ObjectFacts>> {
  const out = new Map<string, ObjectFacts>();
  await eachLimited(paths, HEAD_CONCURRENCY, async (path) => {
    const obj = remote.get(path);
    if (obj === undefined) return;
    try {
      signal?.throwIfAborted();
      const info = await ctx.store.head(obj.key, signal);
      if (info.etag !== obj.etag) return;
      const facts: ObjectFacts = {
        etag: info.etag,
        md5: info.md5,
        mtimeMs: info.mtimeMs,
        partSize: info.partSize,
        serverSideEncryption: info.serverSideEncryption,
      };
      if (partSizes && needsFirstPartSize(obj, facts)) facts.partSize = await ctx.store.firstPartSize(obj.key, signal).catch(() => undefined);
      out.set(path, facts);
    } catch (error) {
      if (signal?.aborted) throw error;
      ctx.options.logger.debug(`HEAD ${escapeForLog(obj.key)} failed: ${messageOf(error)}`);
    }
  });
  return out;
}

export async function listAll(ctx: SyncContext, signal: AbortSignal | undefined): Promise<ListedObject[]> {
  const all: ListedObject[] = [];
  for await (const page of ctx.store.list(ctx.options.prefix, signal)) all.push(...page);
  return all;
}

/**
 * The workspace's real path. `create`: make it when missing (pull). A pull
 * dry run does not create it: `undefined` stands for "missing, so empty".
 */
export async function workspaceRoot(ctx: SyncContext, create: boolean, dryRunPull = false): Promise<string | undefined> {
  const dir = ctx.options.workspaceDir;
  try {
    if (create) await mkdir(dir, { recursive: true });
    else if (dryRunPull && !(await stat(dir).then(() => true, () => false))) return undefined;
    const real = await realpath(dir);
    const st = await stat(real);
    if (!st.isDirectory()) throw new LocalFileError('ENOTDIR', dir, `Workspace "${dir}" is not a directory`);
    return real;
  } catch (error) {
    if (error instanceof SyncError) throw error;
    let code = (error as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'EEXIST') code = 'ENOTDIR'; // mkdir over a regular file
    throw new LocalFileError(code, dir, `Workspace directory "${dir}" is not usable: ${messageOf(error)}`, { cause: error });
  }
}

async function localFilter(ctx: SyncContext, root: string): Promise<SyncIgnoreFilter> {
  try {
    return await SyncIgnoreFilter.fromWorkspace(root, ctx.options.ignorePatterns);
  } catch (error) {
    throw localError(error, SYNCIGNORE_FILE, `Cannot read ${SYNCIGNORE_FILE}`);
  }
}

/**
 * Ignore rules: the workspace's `.syncignore`, or — on a first pull into a
 * workspace that has none — the bucket's copy, so a cold start honours them.
 * `known`: the workspace's rules, read already; returned as is when they apply.
 */
export async function loadFilter(
  ctx: SyncContext,
  root: string | undefined,
  listed: ListedObject[],
  signal: AbortSignal | undefined,
  known?: SyncIgnoreFilter,
): Promise<SyncIgnoreFilter> {
  const { ignorePatterns: patterns, workspaceDir, prefix, logger } = ctx.options;
  const local = known ?? (root === undefined ? new SyncIgnoreFilter({ patterns }) : await localFilter(ctx, root));
  const exists = await stat(join(root ?? workspaceDir, SYNCIGNORE_FILE)).then(
    () => true,
    () => false,
  );
  const key = prefix + SYNCIGNORE_FILE;
  const obj = listed.find((o) => o.key === key);
  if (exists || obj === undefined || obj.size > MAX_SYNCIGNORE_BYTES) return local;
  try {
    const got = await ctx.store.get(key, signal);
    return new SyncIgnoreFilter({ syncignore: (await readBody(got.body)).toString('utf8'), patterns });
  } catch (error) {
    if (signal?.aborted) throw error;
    logger.warn(`Could not read the bucket's ${SYNCIGNORE_FILE}: ${messageOf(error)}`);
    return local;
  }
}

/**
 * Walk the workspace. Entries that cannot be read (EACCES) are failures, not
 * skips: their changes cannot be synced, so the sync must not report success
 * (and, having failed, deletes nothing).
 */
export async function scan(ctx: SyncContext, root: string, filter: SyncIgnoreFilter, signal: AbortSignal | undefined): Promise<ScanResult> {
  try {
    return await scanWorkspace(root, filter, signal);
  } catch (error) {
    if (signal?.aborted) throw error;
    throw localError(error, '', `Cannot read workspace directory "${ctx.options.workspaceDir}"`);
  }
}

function localError(error: unknown, path: string, what: string): LocalFileError {
  if (error instanceof LocalFileError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
  return new LocalFileError(code, path, `${what}: ${messageOf(error)}`, { cause: error });
}

export function emptyScan(): ScanResult {
  return { files: new Map(), dirs: new Set(), skipped: [], tempFiles: [], fastFs: true };
}
