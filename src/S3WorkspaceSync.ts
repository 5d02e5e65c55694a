import { EventEmitter } from 'eventemitter3';
import { normalizePathPatterns, PathTracker, type PathsReady } from './core/priority.js';
import { ConfigError, IncompleteSyncError, SyncError, escapeForLog, messageOf } from './errors.js';
import type { SyncEvents } from './events.js';
import { HashPool } from './local/HashPool.js';
import {
  resolveOptions,
  type ResolvedOptions,
  type S3WorkspaceSyncOptions,
  type SyncCallOptions,
} from './options.js';
import { ServerChecks } from './pipeline/capabilities.js';
import { defaultStore, type SyncContext, type SyncParts } from './pipeline/context.js';
import { Generations } from './pipeline/generations.js';
import { GIT_PATH } from './pipeline/git.js';
import { runSync } from './pipeline/sync.js';
import { verify } from './pipeline/verify.js';
import { resolveWatchOptions, watchWorkspace, WatchSession, type SyncWatcher, type WatchOptions } from './pipeline/watch.js';
import { workspaceRoot } from './pipeline/prepare.js';
import { unlimited } from './pipeline/signals.js';
import { StateFile, type StateOrigin } from './state/StateFile.js';
import { WorkspaceState } from './state/WorkspaceState.js';
import type { ConditionalWriteSupport } from './storage/capabilities.js';
import { endpointLabel } from './storage/endpoint.js';
import type { SyncPlan, SyncResult, VerifyReport } from './types.js';

/**
 * Keeps a local workspace directory and an S3 prefix in step.
 *
 * - `pull()` restores the workspace from the bucket, downloading only what differs.
 * - `push()` uploads only what changed since the last sync and deletes the
 *   objects of files deleted locally (only objects this instance synced).
 * - `startBackgroundPull()` / `waitForPull()` let start-up work overlap the restore.
 *
 * Operations on one instance run one at a time, in call order.
 *
 * @example
 * const sync = new S3WorkspaceSync({ bucket: 'my-bucket', prefix: 'users/u1/', workspaceDir: '/tmp/ws' });
 * await sync.pull();
 * // ... work on /tmp/ws ...
 * const result = await sync.push();
 */
export class S3WorkspaceSync extends EventEmitter<SyncEvents> {
  private readonly options: ResolvedOptions;
  /** What every stage of a sync works with (store, state, progress). */
  private readonly ctx: SyncContext;
  private queue: Promise<unknown> = Promise.resolve();
  private background: Promise<SyncResult> | undefined;
  /** What the background pull has restored so far, per path (for `waitForPaths()`). */
  private backgroundPaths: PathTracker | undefined;
  private pullComplete = false;
  /** MD5 worker threads for large files, started on first use. */
  private hashPool: HashPool | undefined;
  /** The client's socket limit, the server's conditional writes: checked once. */
  private readonly checks: ServerChecks;

  /** @throws {ConfigError} when an option is missing or invalid. */
  constructor(options: S3WorkspaceSyncOptions);
  /** @internal With the parts a test (or a later transport) puts in. */
  constructor(options: S3WorkspaceSyncOptions, parts: SyncParts);
  constructor(options: S3WorkspaceSyncOptions, parts: SyncParts = {}) {
    super();
    const o = (this.options = resolveOptions(options));
    const location = `s3://${o.bucket}/${escapeForLog(o.prefix)}`;
    const stateFile = o.stateDir === undefined ? undefined : new StateFile(o.stateDir, o.bucket, o.prefix, o.logger);
    const origin = async (): Promise<StateOrigin> => ({ endpoint: await endpointLabel(o.client), bucket: o.bucket, prefix: o.prefix, owner: o.expectedBucketOwner ?? null });
    const store = (parts.store ?? defaultStore)(o);
    this.ctx = {
      options: o,
      store,
      generations: new Generations({ store, options: o, location }, parts.leaseTiming),
      state: new WorkspaceState(stateFile, origin, o.prefix, location, o.logger),
      emit: (progress) => {
        try {
          this.emit('progress', progress);
        } catch (error) {
          o.logger.warn(`A progress listener threw: ${messageOf(error)}`);
        }
      },
      hashPool: () => (this.hashPool ??= new HashPool(o.hashThreads)),
      location,
    };
    this.checks = new ServerChecks(this.ctx, parts.store === undefined);
  }

  /**
   * Whether the bucket's server enforces conditional writes (`If-Match`,
   * `If-None-Match`), which a push relies on to detect other writers:
   * `'enforced'` (AWS S3, R2, MinIO), `'ignored'` (some S3-compatible servers,
   * s3rver: pushes there are last-writer-wins), or `'unknown'` (the check
   * failed, e.g. no write permission). Costs 2 PUTs and 1 delete of a scratch
   * object in `<prefix>.s3-workspace-sync/`, once per process and bucket.
   */
  checkConditionalWrites(options: { signal?: AbortSignal } = {}): Promise<ConditionalWriteSupport> {
    return this.destroyed ? Promise.reject(destroyedError()) : this.checks.support(options.signal);
  }

  /** Absolute path of the workspace directory. */
  getWorkspacePath(): string {
    return this.options.workspaceDir;
  }

  /**
   * Make the workspace match the bucket prefix. Downloads new and changed
   * objects (temp file, verified, renamed into place), then deletes local
   * files that no longer exist remotely — except files created or modified
   * locally since this instance's last sync, which are kept and reported in
   * `skippedFiles` (a fresh instance mirrors the bucket). Nothing is deleted
   * if any download failed.
   *
   * @throws {GuardError} when a guard refuses the plan (nothing was changed).
   * @throws {SyncAbortedError} when `signal` fired or `timeoutMs` passed.
   * @throws {StorageError} when the listing fails (bucket missing, access denied…).
   * @throws {LocalFileError} when the workspace directory cannot be created or read.
   */
  pull(options: SyncCallOptions = {}): Promise<SyncResult> {
    return this.exclusive(() => this.run('pull', options));
  }

  /** Set once `destroy()` was called: every later call rejects. */
  private destroyed = false;
  /** Aborted by `destroy()`: stops whatever sync is running. */
  private readonly lifetime = new AbortController();
  /** Every sync listens to it: not a leak. */
  private readonly lifetimeSignal = unlimited(this.lifetime.signal);
  /** The last `pull()` that completed without a failed file (what `waitForPull()` answers when no background pull was started since). */
  private lastCompletePull: SyncResult | undefined;

  /**
   * Upload new and changed files, and delete the objects of files deleted
   * locally since this instance's last sync. Without a previous sync nothing
   * is deleted. Nothing is deleted if any upload failed.
   *
   * @throws {GuardError} when a guard refuses the plan (nothing was changed).
   * @throws {SyncAbortedError} when `signal` fired or `timeoutMs` passed.
   * @throws {StorageError} when the bucket cannot be used.
   * @throws {LocalFileError} when the workspace directory cannot be read.
   */
  push(options: SyncCallOptions = {}): Promise<SyncResult> {
    return this.exclusive(() => this.run('push', options));
  }

  /**
   * The exact actions a `pull()` or `push()` would take now — transfers,
   * deletions, skips with reasons, byte totals, and the guard that would
   * refuse it — without changing anything (it lists and hashes, like the sync
   * itself). Same as `(await pull({ ...options, dryRun: true })).plan`.
   */
  async plan(direction: 'pull' | 'push', options: Omit<SyncCallOptions, 'dryRun'> = {}): Promise<SyncPlan> {
    if (direction !== 'pull' && direction !== 'push') throw new ConfigError("plan() takes 'pull' or 'push'");
    const result = await this.exclusive(() => this.run(direction, { ...options, dryRun: true }));
    return result.plan;
  }

  /**
   * Start a pull without waiting for it. Idempotent: while a background pull
   * runs or after one succeeded, calling again does nothing. A failure is
   * delivered to every `waitForPull()` that was waiting for that attempt and
   * never becomes an unhandled rejection; after it, the next
   * `startBackgroundPull()` or `waitForPull()` starts a new attempt.
   * `options` are `pull()`'s (a `signal`, guard overrides), dry run excepted.
   */
  startBackgroundPull(options: Omit<SyncCallOptions, 'dryRun'> = {}): void {
    if (this.background !== undefined || this.destroyed) return;
    const tracker = new PathTracker();
    const run = this.exclusive(() => this.run('pull', { ...options, dryRun: false }, tracker)).then((result) => {
      if (!result.success) throw new IncompleteSyncError(result);
      return result;
    });
    this.background = run;
    this.backgroundPaths = tracker;
    run.catch((error: unknown) => {
      if (this.background === run) {
        this.background = undefined;
        this.backgroundPaths = undefined;
      }
      this.options.logger.warn(`Background pull failed: ${messageOf(error)}`);
    });
  }

  /**
   * Resolve when the background pull has finished successfully (starting one
   * if none was started). Rejects with the pull's error, or with an
   * {@link IncompleteSyncError} when some files failed: a workspace that is not
   * completely restored is never reported as ready.
   *
   * With `{ paths }`, the same as {@link waitForPaths}.
   */
  waitForPull(): Promise<SyncResult>;
  waitForPull(options: { paths: readonly string[] }): Promise<PathsReady>;
  waitForPull(options?: { paths?: readonly string[] | undefined }): Promise<SyncResult | PathsReady> {
    if (options?.paths !== undefined) return this.waitForPaths(options.paths);
    if (this.destroyed) return Promise.reject(destroyedError());
    // A pull() that already restored the workspace completely answers (no second pull).
    if (this.background === undefined && this.lastCompletePull !== undefined) return Promise.resolve(this.lastCompletePull);
    if (this.background === undefined) this.startBackgroundPull();
    return this.background as Promise<SyncResult>;
  }

  /**
   * Resolve as soon as the background pull (started if none runs) has
   * restored everything under `paths` — files (`'AGENTS.md'`) or directories
   * (`'config/'`): every planned download there succeeded and every planned
   * deletion ran — while the rest of the pull goes on. Pair it with
   * `startBackgroundPull({ priority: paths })` so those files go first.
   *
   * Rejects with an {@link IncompletePathsError} as soon as a file under
   * `paths` fails (or when the pull ends without them complete), and with the
   * pull's own error when it fails as a whole (listing refused, guard,
   * abort). Never resolves for paths that were not restored.
   */
  waitForPaths(paths: readonly string[]): Promise<PathsReady> {
    let patterns: string[];
    try {
      patterns = normalizePathPatterns(paths, 'paths');
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.destroyed) return Promise.reject(destroyedError());
    if (this.background === undefined) this.startBackgroundPull();
    return (this.backgroundPaths as PathTracker).waitFor(patterns, [...paths]);
  }

  /**
   * Compare the workspace and the bucket, file by file, and report every
   * difference (`missingLocally`, `missingRemotely`, `different`, and
   * `unknown` where equality cannot be known without a download) — changing
   * nothing: no transfer, no state save, no lock. Hashes every local file
   * whose stat the snapshot does not vouch for. Queued like a sync.
   */
  verify(options: { signal?: AbortSignal } = {}): Promise<VerifyReport> {
    return this.exclusive(() => verify(this.ctx, options));
  }

  /**
   * Watch mode: push local changes as they happen. Starts watching the
   * workspace, runs the initial sync (`initial`: `'pull'` by default, or
   * `'push'`, or `'none'`), then pushes what changed once no change was seen
   * for `debounceMs` (default 1 s), and at least every `maxDelayMs` (default
   * 10 s) under continuous writes. Each push looks only at the paths the
   * watcher reported (`push({ changedPaths })`); a full push every
   * `reconcileMs` (default 5 min) catches what a watcher can miss. Pushes go
   * through this instance's queue, one at a time. Resolves once watching
   * and the initial sync are done; rejects (watching nothing) when the
   * initial sync fails as a whole. Call `close()` on the handle before the
   * process exits: it pushes what is pending. One watch per instance.
   *
   * @throws {ConfigError} for invalid options.
   * @throws {SyncError} `WATCH_ACTIVE` when this instance is already watching.
   */
  async watch(options: WatchOptions = {}): Promise<SyncWatcher> {
    if (this.destroyed) throw destroyedError();
    const o = resolveWatchOptions(options);
    if (this.watching !== undefined) throw new SyncError('WATCH_ACTIVE', 'This instance is already watching its workspace; close() that watcher first');
    const session: WatchSession = new WatchSession(
      {
        push: (call) => this.push(call),
        pull: (call) => this.pull(call),
        watch: async (source) => {
          const root = (await workspaceRoot(this.ctx, o.initial === 'pull')) as string;
          return watchWorkspace(root, this.options.ignorePatterns, source, this.options.git === 'bundle');
        },
        logger: this.options.logger,
        closed: () => {
          if (this.watching === session) this.watching = undefined;
        },
      },
      o,
    );
    this.watching = session;
    await session.start();
    return session;
  }

  /** The running watch session, if any. */
  private watching: WatchSession | undefined;

  /** `true` once a pull (background or not) has completed without failed files. */
  isPullComplete(): boolean {
    return this.pullComplete;
  }

  /**
   * End the instance: a running sync stops as if its `signal` fired (it
   * rejects with `SyncAbortedError`, code `DESTROYED`; finished files are in
   * place, nothing half-written), queued and later calls reject with a
   * `SyncError` of code `DESTROYED`, the MD5 worker threads end, and the
   * sockets of the client the library built are closed (a client you passed
   * in is left open). Idempotent.
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.watching?.abandon();
    this.lifetime.abort(destroyedError());
    if (this.options.ownsClient) this.options.client.destroy();
    void this.hashPool?.close();
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.destroyed) return Promise.reject(destroyedError());
    const guarded = (): Promise<T> => {
      if (this.destroyed) return Promise.reject(destroyedError());
      this.ctx.store.startOperation?.();
      return fn();
    };
    const run = this.queue.then(guarded, guarded);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** One sync (see `pipeline/sync.ts`). */
  private run(direction: 'pull' | 'push', options: SyncCallOptions, paths?: PathTracker): Promise<SyncResult> {
    const env = { ctx: this.ctx, checks: this.checks, lifetime: this.lifetimeSignal, onSynced: this.markSynced.bind(this) };
    return runSync(env, direction, options, paths);
  }

  /**
   * After a push, or a pull in which no file failed, the instance has synced.
   * Otherwise a fresh instance stays fresh: the next pull still mirrors the
   * bucket instead of mistaking stale local files for unpushed work.
   */
  private markSynced(direction: 'pull' | 'push', result: SyncResult): void {
    // the files: a repository failure (git: 'bundle') does not make the files' sync incomplete
    const complete = result.failedFiles.every((f) => f.path === GIT_PATH);
    if (direction === 'pull') this.lastCompletePull = complete ? result : undefined;
    if (direction === 'pull' && !complete) return;
    this.ctx.state.markSynced();
    if (direction === 'pull') this.pullComplete = true;
  }
}

function destroyedError(): SyncError {
  return new SyncError('DESTROYED', 'This S3WorkspaceSync instance was destroyed (destroy() was called); create a new one');
}
