import { setMaxListeners } from 'node:events';
import { mkdir, realpath, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { EventEmitter } from 'eventemitter3';
import pLimit from 'p-limit';
import {
  classifyRemote,
  etagsToConfirm,
  isRacy,
  planPull,
  planPush,
  pullNeeds,
  pushNeeds,
  type ListedObject,
  type PlanInput,
  type RemoteObject,
  type Plan,
  type Snapshot,
  type SnapshotEntry,
} from './core/plan.js';
import { evaluateGuards, type GuardLimits, type GuardVerdict } from './core/guards.js';
import { normalizePathPatterns, orderByPriority, PathTracker, type PathsReady } from './core/priority.js';
import {
  ConfigError,
  GuardError,
  IncompleteSyncError,
  LocalFileError,
  SyncAbortedError,
  SyncError,
  escapeForLog,
  messageOf,
} from './errors.js';
import { ProgressTracker, type SyncEvents } from './events.js';
import { calculateFileHash, hashFileWithEtags } from './local/hash.js';
import { multipartPartCount, partSizesFor } from './core/multipart.js';
import { scanWorkspace, type ScanResult } from './local/scanner.js';
import { WorkspaceWriter } from './local/WorkspaceWriter.js';
import {
  clientMaxSockets,
  resolveOptions,
  validateGuards,
  type ResolvedOptions,
  type S3WorkspaceSyncOptions,
  type SyncCallOptions,
} from './options.js';
import { etagIsNotMd5, softSignal, type ObjectInfo, type ObjectStore } from './storage/ObjectStore.js';
import { S3ObjectStore } from './storage/S3ObjectStore.js';
import { StateFile, type StateOrigin } from './state/StateFile.js';
import { createRemoteId, readRemoteId, splitIdentity } from './state/remote-identity.js';
import { endpointLabel } from './storage/endpoint.js';
import { RecoveryArea } from './local/RecoveryArea.js';
import { CHANGED_DURING_SYNC } from './local/WorkspaceWriter.js';
import { SYNCIGNORE_FILE, SyncIgnoreFilter } from './SyncIgnoreFilter.js';
import {
  runDownloads,
  runLocalDeletes,
  runRemoteDeletes,
  runUploads,
  type ExecuteHooks,
  type LargeFileSettings,
} from './transfer/execute.js';
import { BufferPool } from './transfer/multipart.js';
import { HashPool } from './local/HashPool.js';
import type { FailedFile, SyncPlan, SyncProgress, SyncResult } from './types.js';

/** Files hashed at once while planning (hashing is CPU-bound; a few overlap the reads). */
const HASH_CONCURRENCY = 4;
/** Objects whose MD5 is read from metadata (HEAD) at once while planning. */
const HEAD_CONCURRENCY = 16;
/** A remote `.syncignore` larger than this is not used for ignore rules. */
const MAX_SYNCIGNORE_BYTES = 1024 * 1024;

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
  private readonly store: ObjectStore;
  /** Per path: what was identical on both sides at the last sync. */
  private readonly snapshot: Snapshot = new Map();
  private hasSnapshot = false;
  /** The persisted snapshot (`undefined`: memory only). */
  private readonly stateFile: StateFile | undefined;
  private stateLoaded = false;
  /** The snapshot changed since it was loaded or saved. */
  private stateDirty = false;
  private queue: Promise<unknown> = Promise.resolve();
  private background: Promise<SyncResult> | undefined;
  /** What the background pull has restored so far, per path (for `waitForPaths()`). */
  private backgroundPaths: PathTracker | undefined;
  private pullComplete = false;
  private socketsChecked = false;
  /** Where the state comes from and goes to (resolved on first use: the endpoint needs the client). */
  private origin: StateOrigin | undefined;
  /**
   * ETag of the bucket's workspace identity object as this instance last saw
   * it (`null`: none), `undefined` until first looked at.
   */
  private remoteId: string | null | undefined;
  /** The identity recorded in a state file just loaded, not yet compared with the bucket's. */
  private unverifiedRemoteId: string | null | undefined;
  /** Creating the identity object failed once (e.g. read-only credentials): not tried again. */
  private remoteIdRefused = false;

  /** @throws {ConfigError} when an option is missing or invalid. */
  constructor(options: S3WorkspaceSyncOptions) {
    super();
    this.options = resolveOptions(options);
    this.store = new S3ObjectStore(this.options.client, this.options.bucket, {
      expectedBucketOwner: this.options.expectedBucketOwner,
      stallTimeoutMs: this.options.stallTimeoutMs,
      maxAttempts: this.options.maxAttempts,
      // the library's own client times idle sockets out after stallTimeoutMs (see options.ts)
      clientDetectsStalls: this.options.ownsClient,
      sseCustomer: this.options.sseCustomer,
    });
    const { stateDir, bucket, prefix, logger } = this.options;
    this.stateFile = stateDir === undefined ? undefined : new StateFile(stateDir, bucket, prefix, logger);
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
    this.lifetime.abort(destroyedError());
    if (this.options.ownsClient) this.options.client.destroy();
    void this.hashPool?.close();
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.destroyed) return Promise.reject(destroyedError());
    const guarded = (): Promise<T> => (this.destroyed ? Promise.reject(destroyedError()) : fn());
    const run = this.queue.then(guarded, guarded);
    this.queue = run.catch(() => undefined);
    return run;
  }

  // ---------------------------------------------------------------- one sync

  /**
   * The one code path of every sync: scan and list, plan, check the guards,
   * then (unless this is a dry run) execute and record. `plan()` and dry runs
   * stop after the guards.
   */
  private async run(direction: 'pull' | 'push', call: SyncCallOptions, paths?: PathTracker): Promise<SyncResult> {
    const started = Date.now();
    let ended: unknown;
    try {
      return await this.runTracked(direction, call, started, paths);
    } catch (error) {
      ended = error;
      throw error;
    } finally {
      paths?.end(ended);
    }
  }

  private async runTracked(direction: 'pull' | 'push', call: SyncCallOptions, started: number, paths: PathTracker | undefined): Promise<SyncResult> {
    const limits = this.limits(call);
    const priority = call.priority === undefined ? [] : normalizePathPatterns(call.priority, 'priority');
    const dryRun = call.dryRun === true;
    const { signal, timedOut, dispose } = combineSignals(call.signal, this.options.timeoutMs, this.lifetimeSignal);
    const result = newResult(direction, dryRun);
    let root: string | undefined;
    let listed: number | undefined;
    try {
      const planning = new PlanningProgress(this.emitter());
      const prepared = direction === 'pull' ? await this.preparePull(dryRun, limits, signal, planning) : await this.preparePush(signal, planning);
      planning.done();
      const { plan, scan, treeSize } = prepared;
      listed = prepared.listed;
      root = prepared.root;
      result.hashedFiles = prepared.hashed;
      plan.transfers = orderByPriority(plan.transfers, priority);
      this.recordPlan(plan, scan, result);
      const verdict = evaluateGuards(plan, { location: this.location(), treeSize, listed }, limits);
      result.plan = toReport(plan, result, verdict);
      if (dryRun) return this.finish(result, started);
      if (verdict !== undefined) throw new GuardError(verdict.code, verdict.message, verdict.details);
      paths?.planned({
        downloads: plan.transfers.map((t) => t.path),
        deletions: plan.deletions.map((d) => d.path),
        unchanged: [...plan.unchanged.map((u) => u.path), ...plan.kept.map((k) => k.path)],
        failures: result.failedFiles,
      });

      await this.checkSockets();
      if (root === undefined) throw new Error('internal: only a dry-run pull has no workspace');
      await this.ensureRemoteId(direction, listed, signal);
      if (direction === 'pull') await this.executePull(root, plan, scan, result, started, signal, paths);
      else await this.executePush(root, plan, scan, result, started, signal);
      if (signal?.aborted) throw signal.reason;
      this.markSynced(direction, result);
      return this.finish(result, started);
    } catch (error) {
      if (signal?.aborted) {
        result.duration = Date.now() - started;
        const why = this.lifetime.signal.aborted ? 'destroyed' : timedOut() ? 'timeout' : 'aborted';
        throw new SyncAbortedError(result, why, signal.reason);
      }
      throw error;
    } finally {
      dispose();
      if (!dryRun && root !== undefined) await this.saveState(root);
    }
  }

  private limits(call: SyncCallOptions): GuardLimits & { overwriteLocalChanges: boolean } {
    const overrides = validateGuards(call);
    return {
      maxDeletes: overrides.maxDeletes ?? this.options.maxDeletes,
      maxTotalBytes: overrides.maxTotalBytes ?? this.options.maxTotalBytes,
      allowEmptyRemote: call.allowEmptyRemote ?? this.options.allowEmptyRemote,
      overwriteLocalChanges: call.overwriteLocalChanges ?? this.options.overwriteLocalChanges,
    };
  }

  /** Scan, list, hash what must be hashed, plan. Changes nothing (a dry run does not even create the workspace). */
  private async preparePull(
    dryRun: boolean,
    limits: { overwriteLocalChanges: boolean },
    signal: AbortSignal | undefined,
    planning: PlanningProgress,
  ): Promise<Prepared> {
    const { prefix } = this.options;
    const root = await this.prepareRoot(!dryRun, dryRun);
    if (root !== undefined) await this.loadState(root);
    // the library's identity object is not part of the workspace
    const { id, own: listed } = splitIdentity(await this.listAll(signal), prefix);
    this.checkRemoteId(id);
    const filter = await this.loadFilter(root, listed, signal);
    const scan = root === undefined ? emptyScan() : await this.scan(root, filter, signal);
    const { remote, skipped: remoteSkipped, conflicts } = classifyRemote(listed, prefix, (p) => filter.ignores(p));
    const input = { ...this.planInput(scan, remote, (p) => filter.ignores(p)), remoteBlocked: conflicts };
    const needs = pullNeeds(input);
    await this.fillRemoteMd5(remote, needs.head, signal);
    const localMd5 = root === undefined ? new Map<string, string>() : await this.hashLocal(root, scan, needs.hash, remote, signal, planning);
    await this.confirmEtags(remote, etagsToConfirm({ ...input, localMd5 }), signal);
    const plan = planPull({
      ...input,
      localMd5,
      localBlocked: blockedPaths(scan),
      overwriteLocalChanges: limits.overwriteLocalChanges,
    });
    plan.skipped.unshift(...remoteSkipped);
    return { root, plan, scan, treeSize: scan.files.size, listed: listed.length, hashed: localMd5.size };
  }

  private async preparePush(signal: AbortSignal | undefined, planning: PlanningProgress): Promise<Prepared> {
    const { prefix } = this.options;
    const root = (await this.prepareRoot(false)) as string;
    await this.loadState(root);
    if (this.hasSnapshot && (this.unverifiedRemoteId !== undefined || this.remoteId === undefined)) {
      // A snapshot not yet checked against this bucket (loaded from disk): one HEAD.
      this.checkRemoteId(await readRemoteId(this.store, prefix, signal));
    }
    const filter = await this.localFilter(root);
    const scan = await this.scan(root, filter, signal);
    let remote = new Map<string, RemoteObject>();
    let listed: number | undefined;
    if (!this.hasSnapshot) {
      // No snapshot: list once so identical objects are not uploaded again.
      const { id, own } = splitIdentity(await this.listAll(signal), prefix);
      this.checkRemoteId(id);
      listed = own.length;
      remote = classifyRemote(own, prefix, (p) => filter.ignores(p)).remote;
    }
    const input = this.planInput(scan, remote, (p) => filter.ignores(p));
    const needs = pushNeeds(input);
    await this.fillRemoteMd5(remote, needs.head, signal);
    const localMd5 = await this.hashLocal(root, scan, needs.hash, remote, signal, planning);
    await this.confirmEtags(remote, etagsToConfirm({ ...input, localMd5 }), signal);
    const plan = planPush({ ...input, localMd5, localBlocked: blockedPaths(scan) });
    return { root, plan, scan, treeSize: this.snapshot.size, listed, hashed: localMd5.size };
  }

  private async executePull(
    root: string,
    plan: Plan,
    scan: ScanResult,
    result: SyncResult,
    statFloor: number,
    signal: AbortSignal | undefined,
    paths: PathTracker | undefined,
  ): Promise<void> {
    await this.removeTempFiles(root, scan);
    const recovery = new RecoveryArea(root);
    const writer = new WorkspaceWriter(root, recovery);
    try {
      await this.executePullWith(writer, plan, result, statFloor, signal, paths);
    } finally {
      await recovery.settle(); // confirms and removes the proven files it holds
      this.reportMovedAside(recovery, result);
    }
  }

  private async executePullWith(
    writer: WorkspaceWriter,
    plan: Plan,
    result: SyncResult,
    statFloor: number,
    signal: AbortSignal | undefined,
    paths: PathTracker | undefined,
  ): Promise<void> {
    const downloads = new ProgressTracker('download', plan.transfers.length, plan.transferBytes, this.emitter());
    await runDownloads(
      plan.transfers,
      {
        store: this.store,
        writer,
        concurrency: this.options.downloadConcurrency,
        large: this.largeFiles(),
        attempts: this.options.maxAttempts,
        signal,
      },
      this.transferHooks(result, downloads, 'download', statFloor, signal, paths),
    );
    downloads.finishEmpty();
    this.refreshUnchanged(plan, statFloor);
    await this.runDeletions(plan, result, signal, (d, hooks) => runLocalDeletes(d, writer, hooks, signal), paths);
  }

  /**
   * Abort this prefix's multipart uploads older than `abortStaleUploadsAfterHours`
   * (left by crashed processes). Best effort: failures are logged, never fatal.
   */
  private async sweepStaleUploads(signal: AbortSignal | undefined): Promise<void> {
    const hours = this.options.abortStaleUploadsAfterHours;
    if (hours === undefined) return;
    const cutoff = Date.now() - hours * 3_600_000;
    try {
      const pending = await this.store.listMultipartUploads(this.options.prefix, signal);
      for (const upload of pending) {
        if (upload.initiatedMs === undefined || upload.initiatedMs > cutoff) continue;
        signal?.throwIfAborted();
        await this.store.abortMultipart(upload.key, upload.uploadId);
        this.options.logger.info(`Aborted stale multipart upload ${upload.uploadId} of ${escapeForLog(upload.key)}`);
      }
    } catch (error) {
      if (signal?.aborted) throw error;
      this.options.logger.warn(`Could not sweep stale multipart uploads under ${this.location()}: ${messageOf(error)}`);
    }
  }

  private async executePush(
    root: string,
    plan: Plan,
    scan: ScanResult,
    result: SyncResult,
    statFloor: number,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    await this.sweepStaleUploads(signal);
    const uploads = new ProgressTracker('upload', plan.transfers.length, plan.transferBytes, this.emitter());
    await runUploads(
      plan.transfers,
      {
        store: this.store,
        root,
        concurrency: this.options.uploadConcurrency,
        large: this.largeFiles(),
        attempts: this.options.maxAttempts,
        contentType: this.options.contentTypeResolver,
        uploadParams: this.options.uploadParams,
        syncIo: scan.fastFs,
        signal,
      },
      this.transferHooks(result, uploads, 'upload', statFloor, signal),
    );
    uploads.finishEmpty();
    this.refreshUnchanged(plan, statFloor);
    await this.runDeletions(plan, result, signal, (d, hooks) => runRemoteDeletes(d, this.store, signal, hooks));
  }

  /**
   * After a push, or a pull in which no file failed, the instance has synced.
   * Otherwise a fresh instance stays fresh: the next pull still mirrors the
   * bucket instead of mistaking stale local files for unpushed work.
   */
  private markSynced(direction: 'pull' | 'push', result: SyncResult): void {
    if (direction === 'pull') this.lastCompletePull = result.failedFiles.length === 0 ? result : undefined;
    if (direction === 'pull' && result.failedFiles.length > 0) return;
    if (!this.hasSnapshot) this.stateDirty = true;
    this.hasSnapshot = true;
    if (direction === 'pull') this.pullComplete = true;
  }

  // ---------------------------------------------------------------- state

  /**
   * Once per instance, before its first sync: take over the persisted
   * snapshot, when there is one to trust for this workspace and origin. Its
   * remote identity is checked against the bucket before it is used (see
   * {@link checkRemoteId}).
   */
  private async loadState(root: string): Promise<void> {
    if (this.stateLoaded || this.stateFile === undefined) return;
    this.stateLoaded = true;
    const loaded = await this.stateFile.load(root, await this.stateOrigin());
    if (loaded === undefined) return;
    for (const [path, entry] of loaded.snapshot) this.snapshot.set(path, entry);
    this.hasSnapshot = loaded.synced;
    this.unverifiedRemoteId = loaded.remoteId;
    this.options.logger.debug(`Loaded the sync state of ${loaded.snapshot.size} file(s) from ${this.stateFile.path}`);
  }

  private async saveState(root: string): Promise<void> {
    if (this.stateFile === undefined || !this.stateDirty) return;
    this.stateDirty = false;
    await this.stateFile.save(root, await this.stateOrigin(), {
      synced: this.hasSnapshot,
      snapshot: this.snapshot,
      remoteId: this.remoteId ?? null,
    });
  }

  private async stateOrigin(): Promise<StateOrigin> {
    this.origin ??= {
      endpoint: await endpointLabel(this.options.client),
      bucket: this.options.bucket,
      prefix: this.options.prefix,
      owner: this.options.expectedBucketOwner ?? null,
    };
    return this.origin;
  }

  /**
   * Compare the bucket's workspace identity (`current`: its ETag, or `null`)
   * with what the snapshot was made against: the identity recorded in a state
   * file just loaded, or the one this instance saw before. When they differ —
   * a re-created bucket, another server, a wiped prefix — the snapshot proves
   * nothing about this bucket: it is dropped, as if there were no state.
   */
  private checkRemoteId(current: string | null): void {
    const loaded = this.unverifiedRemoteId;
    this.unverifiedRemoteId = undefined;
    const known = loaded !== undefined ? loaded : this.remoteId;
    // One seen for the first time in this process (no state loaded, or none recorded and none yet) is adopted.
    const mismatch = loaded !== undefined ? loaded !== current : known !== undefined && known !== null && known !== current;
    this.remoteId = current;
    if (!mismatch || (this.snapshot.size === 0 && !this.hasSnapshot)) return;
    this.options.logger.warn(
      `Not trusting the sync state for ${this.location()}: the bucket's workspace identity ` +
        `(${escapeForLog(this.options.prefix)}${'.s3-workspace-sync/workspace-id'}) is ${current === null ? 'missing' : 'different'} ` +
        '(a re-created bucket, another server, or a wiped prefix). Files will be re-hashed; a pull moves local files it cannot ' +
        'prove were synced into the recovery area, and a push compares with a listing and deletes nothing.',
    );
    this.snapshot.clear();
    this.hasSnapshot = false;
    this.stateDirty = true;
  }

  /**
   * Give the remote workspace an identity when it has none: always on push;
   * on pull only when the prefix holds something (a mistyped prefix stays
   * empty). Best effort: without it, states are bound to endpoint, bucket and
   * prefix only.
   */
  private async ensureRemoteId(direction: 'pull' | 'push', listed: number | undefined, signal: AbortSignal | undefined): Promise<void> {
    if (this.remoteId !== null || this.remoteIdRefused) return;
    if (direction === 'pull' && (listed ?? 0) === 0) return;
    try {
      this.remoteId = await createRemoteId(this.store, this.options.prefix, signal);
      this.stateDirty = true;
    } catch (error) {
      if (signal?.aborted) throw error;
      // Not again in this instance (read-only credentials would refuse it on every pull).
      this.remoteIdRefused = true;
      const log = direction === 'push' ? this.options.logger.warn : this.options.logger.debug;
      log.call(this.options.logger, `Could not create the workspace identity object under ${this.location()}: ${messageOf(error)}`);
    }
  }

  /** Files the pull moved into the recovery area: in the result and, once, in the log. */
  private reportMovedAside(recovery: RecoveryArea, result: SyncResult): void {
    if (recovery.moved.length === 0) return;
    result.movedAside.push(...recovery.moved);
    const shown = recovery.moved.slice(0, 5).map((m) => escapeForLog(m.path));
    const more = recovery.moved.length > shown.length ? ` and ${recovery.moved.length - shown.length} more` : '';
    this.options.logger.warn(
      `Moved ${recovery.moved.length} local file(s) that could not be proven to be in the bucket into ${recovery.dir} ` +
        `before replacing or deleting them: ${shown.join(', ')}${more}. Nothing was lost; delete that folder once you have checked it.`,
    );
  }

  /**
   * Record what is now identical on both sides; `statFloor` is a time no later
   * than the stat was taken. An entry already marked racy (the file changed
   * while it was uploaded) stays racy.
   */
  private record(path: string, entry: SnapshotEntry, statFloor: number): void {
    const racy = entry.racy === true || isRacy(entry.mtimeMs, statFloor, entry.ctimeMs);
    const prev = this.snapshot.get(path);
    if (prev !== undefined && sameEntry(prev, entry) && (prev.racy === true) === racy) return;
    const next: SnapshotEntry = { size: entry.size, mtimeMs: entry.mtimeMs, ctimeMs: entry.ctimeMs, ino: entry.ino, md5: entry.md5 };
    if (entry.etag !== undefined) next.etag = entry.etag;
    if (racy) next.racy = true;
    this.snapshot.set(path, next);
    this.stateDirty = true;
  }

  /** MD5 worker threads for large files, started on first use. */
  private hashPool: HashPool | undefined;

  private forget(path: string): void {
    if (this.snapshot.delete(path)) this.stateDirty = true;
  }

  /** Large-file settings of one sync: one part limiter shared by all its large files. */
  private largeFiles(): LargeFileSettings {
    const { multipartThreshold, partSize, partConcurrency } = this.options;
    return {
      threshold: multipartThreshold,
      partSize,
      partLimit: pLimit(partConcurrency),
      buffers: new BufferPool(partSize),
      // One large download at a time (one file saturates the link); ranges
      // buffered ≤ rangesPerFile + 1, so memory stays ≤ partConcurrency × partSize.
      rangesPerFile: Math.max(1, Math.min(partConcurrency - 1, 4)),
      largeDownloadLimit: pLimit(1),
      hashes: (this.hashPool ??= new HashPool(this.options.hashThreads)),
      prehash: this.options.prehashMultipart,
    };
  }

  private location(): string {
    return `s3://${this.options.bucket}/${escapeForLog(this.options.prefix)}`;
  }

  // ---------------------------------------------------------------- steps

  /**
   * The workspace's real path. `create`: make it when missing (pull). A pull
   * dry run does not create it: `undefined` stands for "missing, so empty".
   */
  private async prepareRoot(create: boolean, dryRunPull = false): Promise<string | undefined> {
    const dir = this.options.workspaceDir;
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

  private async localFilter(root: string): Promise<SyncIgnoreFilter> {
    try {
      return await SyncIgnoreFilter.fromWorkspace(root, this.options.ignorePatterns);
    } catch (error) {
      throw localError(error, SYNCIGNORE_FILE, `Cannot read ${SYNCIGNORE_FILE}`);
    }
  }

  /**
   * Walk the workspace. Entries that cannot be read (EACCES) are failures, not
   * skips: their changes cannot be synced, so the sync must not report success
   * (and, having failed, deletes nothing).
   */
  private async scan(root: string, filter: SyncIgnoreFilter, signal: AbortSignal | undefined): Promise<ScanResult> {
    try {
      return await scanWorkspace(root, filter, signal);
    } catch (error) {
      if (signal?.aborted) throw error;
      throw localError(error, '', `Cannot read workspace directory "${this.options.workspaceDir}"`);
    }
  }

  private async listAll(signal: AbortSignal | undefined): Promise<ListedObject[]> {
    const all: ListedObject[] = [];
    for await (const page of this.store.list(this.options.prefix, signal)) all.push(...page);
    return all;
  }

  /**
   * Ignore rules: the workspace's `.syncignore`, or — on a first pull into a
   * workspace that has none — the bucket's copy, so a cold start honours them.
   */
  private async loadFilter(root: string | undefined, listed: ListedObject[], signal: AbortSignal | undefined): Promise<SyncIgnoreFilter> {
    const local = root === undefined ? new SyncIgnoreFilter({ patterns: this.options.ignorePatterns }) : await this.localFilter(root);
    const exists = await stat(join(root ?? this.options.workspaceDir, SYNCIGNORE_FILE)).then(
      () => true,
      () => false,
    );
    const key = this.options.prefix + SYNCIGNORE_FILE;
    const obj = listed.find((o) => o.key === key);
    if (exists || obj === undefined || obj.size > MAX_SYNCIGNORE_BYTES) return local;
    try {
      const got = await this.store.get(key, signal);
      const chunks: Buffer[] = [];
      for await (const chunk of got.body) chunks.push(chunk as Buffer);
      return new SyncIgnoreFilter({ syncignore: Buffer.concat(chunks).toString('utf8'), patterns: this.options.ignorePatterns });
    } catch (error) {
      if (signal?.aborted) throw error;
      this.options.logger.warn(`Could not read the bucket's ${SYNCIGNORE_FILE}: ${messageOf(error)}`);
      return local;
    }
  }

  private async removeTempFiles(root: string, scan: ScanResult): Promise<void> {
    for (const rel of scan.tempFiles) {
      await unlink(join(root, rel)).catch(() => undefined);
      this.options.logger.debug(`Removed leftover temporary file ${escapeForLog(rel)}`);
    }
  }

  private planInput(scan: ScanResult, remote: Map<string, RemoteObject>, isIgnored: (p: string) => boolean): Omit<PlanInput, 'localMd5'> {
    return {
      prefix: this.options.prefix,
      local: scan.files,
      localDirs: scan.dirs,
      remote,
      snapshot: this.snapshot,
      hasSnapshot: this.hasSnapshot,
      isIgnored,
    };
  }

  /**
   * Hash the given files; a file that cannot be read is dropped from the scan
   * and reported. For an object whose MD5 is still unknown (a multipart object
   * another tool wrote, without `md5chksum`), the same pass computes the local
   * file's multipart ETags for the likely part sizes: a match proves the
   * contents equal, and the object's MD5 becomes known. When no part size can
   * be derived, equal size and equal recorded mtime decide instead.
   */
  private async hashLocal(
    root: string,
    scan: ScanResult,
    paths: string[],
    remote: Map<string, RemoteObject>,
    signal: AbortSignal | undefined,
    planning: PlanningProgress,
  ): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    const limit = pLimit(HASH_CONCURRENCY);
    planning.hashing(paths.map((p) => scan.files.get(p)?.size ?? 0));
    await Promise.all(
      paths.map((path) =>
        limit(async () => {
          const size = scan.files.get(path)?.size ?? 0; // (a file that cannot be read leaves the scan below)
          try {
            signal?.throwIfAborted();
            const obj = remote.get(path);
            const parts = obj !== undefined && obj.md5 === undefined ? multipartPartCount(obj.etag) : undefined;
            const candidates = obj !== undefined && parts !== undefined ? partSizesFor(obj.size, parts, obj.partSize) : [];
            if (obj === undefined || obj.md5 !== undefined || candidates.length === 0) {
              const md5 = await calculateFileHash(join(root, path), signal);
              out.set(path, md5);
              const local = scan.files.get(path);
              if (obj !== undefined && obj.md5 === undefined && local !== undefined && sameSizeAndMtime(local, obj)) obj.md5 = md5;
              return;
            }
            const { md5, etags } = await hashFileWithEtags(join(root, path), candidates, signal);
            out.set(path, md5);
            if (etags.includes(obj.etag)) obj.md5 = md5;
          } catch (error) {
            if (signal?.aborted) throw error;
            const code = (error as NodeJS.ErrnoException).code ?? 'error';
            scan.files.delete(path);
            // vanished since the scan: simply gone; otherwise a failure to report
            if (code !== 'ENOENT') scan.skipped.push({ path, reason: `unreadable: ${code}` });
          } finally {
            planning.hashed(path, size);
          }
        }),
      ),
    );
    return out;
  }

  /**
   * For objects whose ETag-as-MD5 disagrees with a local file of the same
   * size: read the metadata. Its MD5, when stored, decides; an SSE-KMS or
   * SSE-C object without one has no known MD5 (its ETag is not one).
   * Otherwise the ETag was an MD5 and the file really differs.
   */
  private confirmEtags(remote: Map<string, RemoteObject>, paths: string[], signal: AbortSignal | undefined): Promise<void> {
    return this.headEach(remote, paths, signal, (obj, info) => {
      if (info.md5 !== undefined) obj.md5 = info.md5;
      else if (etagIsNotMd5(info.serverSideEncryption)) obj.md5 = undefined;
      obj.md5FromEtag = false;
    });
  }

  /** Read MD5s from metadata for objects whose ETag is not one (multipart, SSE-KMS). */
  private fillRemoteMd5(remote: Map<string, RemoteObject>, paths: string[], signal: AbortSignal | undefined): Promise<void> {
    return this.headEach(remote, paths, signal, async (obj, info) => {
      if (info.md5 !== undefined) obj.md5 = info.md5;
      obj.mtimeMs = info.mtimeMs;
      // a multipart object without an MD5: which part size made its ETag (ours say; others' part 1 tells)
      if (info.md5 === undefined && multipartPartCount(obj.etag) !== undefined) {
        obj.partSize = info.partSize ?? (await this.store.firstPartSize(obj.key, signal).catch(() => undefined));
      }
    });
  }

  /**
   * HEAD the objects at `paths` (at most {@link HEAD_CONCURRENCY} at once) and
   * apply what each says, unless it was replaced since the listing (another
   * ETag: then it simply differs). A failed HEAD leaves the object as listed.
   */
  private async headEach(
    remote: Map<string, RemoteObject>,
    paths: string[],
    signal: AbortSignal | undefined,
    apply: (obj: RemoteObject, info: ObjectInfo) => void | Promise<void>,
  ): Promise<void> {
    const limit = pLimit(HEAD_CONCURRENCY);
    await Promise.all(
      paths.map((path) =>
        limit(async () => {
          const obj = remote.get(path);
          if (obj === undefined) return;
          try {
            signal?.throwIfAborted();
            const info = await this.store.head(obj.key, signal);
            if (info.etag === obj.etag) await apply(obj, info);
          } catch (error) {
            if (signal?.aborted) throw error;
            this.options.logger.debug(`HEAD ${escapeForLog(obj.key)} failed: ${messageOf(error)}`);
          }
        }),
      ),
    );
  }

  private recordPlan(plan: Plan, scan: ScanResult, result: SyncResult): void {
    for (const s of scan.skipped) {
      if (s.reason.startsWith('unreadable')) {
        const code = s.reason.split(': ')[1] ?? 'EACCES';
        addFailure(result, s.path, new LocalFileError(code, s.path, `Cannot read "${s.path}" (${code}); its changes are not synced`));
      } else if (plan.direction === 'push' && s.reason.startsWith('invalid-name')) {
        // Not in the bucket and never will be: the push did not persist the workspace.
        addFailure(result, s.path, new LocalFileError('INVALID_NAME', s.path, `Cannot store "${s.path}" as an object (${s.reason}); it is not in the bucket`));
      } else {
        result.skippedFiles.push(s);
      }
    }
    result.skippedFiles.push(...plan.skipped, ...plan.kept);
    result.keptLocal.push(...plan.kept);
    for (const b of plan.blocked) {
      if (plan.direction === 'push') {
        addFailure(result, b.path, new LocalFileError(b.code, b.path, `Cannot store "${b.path}" as an object (${b.reason}); it is not in the bucket`));
      } else {
        addFailure(result, b.path, new LocalFileError(b.code, b.path, `Cannot write "${b.path}": ${b.reason}`));
      }
    }
    this.options.logger.debug(
      `Plan ${plan.direction}: ${plan.transfers.length} transfers (${plan.transferBytes} bytes), ` +
        `${plan.deletions.length} deletions, ${plan.unchanged.length} unchanged, ${plan.kept.length} kept`,
    );
  }

  private transferHooks(
    result: SyncResult,
    tracker: ProgressTracker,
    kind: 'download' | 'upload',
    statFloor: number,
    signal: AbortSignal | undefined,
    paths?: PathTracker,
  ): ExecuteHooks {
    return {
      onBytes: (n, path, size) => tracker.addBytes(n, { path, size }),
      onDone: (done) => {
        this.record(done.path, done.entry, statFloor);
        result.bytesTransferred += done.bytes;
        if (kind === 'download') result.downloadedFiles++;
        else result.uploadedFiles++;
        tracker.fileDone(done.path);
        paths?.settled(done.path);
      },
      onFailed: (path, error) => {
        if (signal?.aborted) return; // stopped by the abort, not a failure: a later sync finishes it
        settleFailure(result, path, error, paths);
        tracker.fileDone(path);
      },
    };
  }

  private refreshUnchanged(plan: Plan, statFloor: number): void {
    for (const u of plan.unchanged) {
      const { local } = u;
      const entry: SnapshotEntry = { size: local.size, mtimeMs: local.mtimeMs, ctimeMs: local.ctimeMs, ino: local.ino, md5: u.md5 };
      if (u.etag !== undefined) entry.etag = u.etag;
      this.record(u.path, entry, statFloor);
    }
  }

  /** Deletions run after transfers, and not at all when a transfer failed or the sync was aborted. */
  private async runDeletions(
    plan: Plan,
    result: SyncResult,
    signal: AbortSignal | undefined,
    run: (
      deletions: Plan['deletions'],
      hooks: { onDeleted(path: string): void; onFailed(path: string, error: unknown): void },
    ) => Promise<void>,
    paths?: PathTracker,
  ): Promise<void> {
    if (plan.deletions.length === 0 || signal?.aborted) return;
    // Files that cannot be stored at all (invalid names, too large) fail the sync but do not hold back other deletions.
    if (result.failedFiles.some((f) => f.code === undefined || !UNSTORABLE.has(f.code))) {
      for (const d of plan.deletions) result.skippedFiles.push({ path: d.path, reason: 'not-deleted: a transfer failed in this sync' });
      return;
    }
    const tracker = new ProgressTracker('cleanup', plan.deletions.length, 0, this.emitter());
    await run(plan.deletions, {
      onDeleted: (path) => {
        this.forget(path);
        result.deletedFiles++;
        tracker.fileDone(path);
        paths?.settled(path);
      },
      onFailed: (path, error) => {
        if (signal?.aborted) return;
        settleFailure(result, path, error, paths);
        tracker.fileDone(path);
      },
    });
  }

  private finish(result: SyncResult, started: number): SyncResult {
    result.duration = Date.now() - started;
    result.success = result.failedFiles.length === 0 && result.errors.length === 0;
    const op = result.plan.direction;
    const moved = op === 'pull' ? `${result.downloadedFiles} downloaded` : `${result.uploadedFiles} uploaded`;
    const line = result.dryRun
      ? `${op} (dry run) ${this.location()}: would transfer ${result.plan.transfers.length} file(s) ` +
        `(${result.plan.transferBytes} bytes), delete ${result.plan.deletions.length}` +
        (result.plan.refusedBy ? `; refused by ${result.plan.refusedBy.code}` : '')
      : `${op} ${this.location()}: ${moved}, ${result.deletedFiles} deleted, ` +
        `${result.skippedFiles.length} skipped, ${result.failedFiles.length} failed, ${result.bytesTransferred} bytes in ${result.duration} ms`;
    if (result.success) this.options.logger.info(line);
    else this.options.logger.warn(line);
    return result;
  }

  private emitter(): (p: SyncProgress) => void {
    return (progress) => {
      try {
        this.emit('progress', progress);
      } catch (error) {
        this.options.logger.warn(`A progress listener threw: ${messageOf(error)}`);
      }
    };
  }

  /** Warn once when a user-supplied client cannot open as many sockets as transfers run. */
  private async checkSockets(): Promise<void> {
    const concurrency = Math.max(this.options.downloadConcurrency, this.options.uploadConcurrency);
    if (this.socketsChecked || this.options.ownsClient) return;
    this.socketsChecked = true;
    const config = this.options.client.config as { endpoint?: () => Promise<{ protocol?: string }> };
    let protocol = 'https:';
    try {
      if (typeof config.endpoint === 'function') protocol = (await config.endpoint()).protocol ?? 'https:';
    } catch {
      // no custom endpoint: AWS, https
    }
    const max = await clientMaxSockets(this.options.client, protocol === 'http:' ? 'http:' : 'https:');
    if (max !== undefined && max < concurrency) {
      this.options.logger.warn(
        `The S3 client allows ${max} sockets but up to ${concurrency} transfers run at once; ` +
          'give its requestHandler an agent with maxSockets >= the concurrency, or lower the concurrency.',
      );
    }
  }
}

function localError(error: unknown, path: string, what: string): LocalFileError {
  if (error instanceof LocalFileError) return error;
  const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
  return new LocalFileError(code, path, `${what}: ${messageOf(error)}`, { cause: error });
}

function newResult(direction: 'pull' | 'push', dryRun: boolean): SyncResult {
  return {
    success: false,
    downloadedFiles: 0,
    uploadedFiles: 0,
    deletedFiles: 0,
    skippedFiles: [],
    failedFiles: [],
    errors: [],
    bytesTransferred: 0,
    duration: 0,
    hashedFiles: 0,
    keptLocal: [],
    movedAside: [],
    dryRun,
    plan: {
      direction,
      transfers: [],
      deletions: [],
      skipped: [],
      keptLocal: [],
      failures: [],
      unchangedFiles: 0,
      transferBytes: 0,
    },
  };
}

/**
 * The `plan` phase's progress: throttled events while files are hashed
 * (files and bytes), and one at 100% when the plan is known.
 */
class PlanningProgress {
  private tracker: ProgressTracker;

  constructor(private readonly emit: (p: SyncProgress) => void) {
    this.tracker = new ProgressTracker('plan', 0, 0, emit);
  }

  /** Hashing starts: these are the sizes of the files to read. */
  hashing(sizes: number[]): void {
    if (sizes.length === 0) return;
    this.tracker = new ProgressTracker('plan', sizes.length, sizes.reduce((a, b) => a + b, 0), this.emit);
  }

  hashed(path: string, bytes: number): void {
    this.tracker.addBytes(bytes);
    this.tracker.fileDone(path);
  }

  /** The plan is known (an event at 100%, unless hashing just sent it). */
  done(): void {
    this.tracker.finishEmpty();
  }
}

/** What both directions hand from planning to execution. */
interface Prepared {
  /** The workspace's real path; `undefined` in a dry-run pull of a missing workspace. */
  root: string | undefined;
  /** Files whose content was read to compute their MD5 while planning. */
  hashed: number;
  plan: Plan;
  scan: ScanResult;
  /** Files in the tree deletions come from (guards). */
  treeSize: number;
  /** Objects listed, when a listing ran. */
  listed: number | undefined;
}

/** The last-resort equality for an object whose content hash cannot be known: same size, same recorded mtime. */
function sameSizeAndMtime(local: { size: number; mtimeMs: number }, obj: RemoteObject): boolean {
  return obj.mtimeMs !== undefined && local.size === obj.size && Math.abs(local.mtimeMs - obj.mtimeMs) < 1;
}

function sameEntry(a: SnapshotEntry, b: SnapshotEntry): boolean {
  return (
    a.size === b.size &&
    a.mtimeMs === b.mtimeMs &&
    a.ctimeMs === b.ctimeMs &&
    a.ino === b.ino &&
    a.md5 === b.md5 &&
    a.etag === b.etag
  );
}

function emptyScan(): ScanResult {
  return { files: new Map(), dirs: new Set(), skipped: [], tempFiles: [], fastFs: true };
}

/** The public view of a plan (computed before anything changed). */
function toReport(plan: Plan, result: SyncResult, verdict: GuardVerdict | undefined): SyncPlan {
  const report: SyncPlan = {
    direction: plan.direction,
    transfers: plan.transfers.map((t) => ({
      path: t.path,
      key: t.key,
      size: t.size,
      reason: t.reason,
      movesAside: t.local !== undefined && t.provenMd5 === undefined,
    })),
    deletions: plan.deletions.map((d) => ({ path: d.path, key: d.key, reason: d.reason, movesAside: d.local !== undefined && d.provenMd5 === undefined })),
    skipped: [...result.skippedFiles],
    keptLocal: [...plan.kept],
    failures: [...result.failedFiles],
    unchangedFiles: plan.unchanged.length,
    transferBytes: plan.transferBytes,
  };
  if (verdict !== undefined) report.refusedBy = { code: verdict.code, message: verdict.message };
  return report;
}

/**
 * The user's signal combined with the instance's `timeoutMs`. `timedOut()`
 * tells which one fired; `dispose()` clears the timer.
 */
function combineSignals(
  user: AbortSignal | undefined,
  timeoutMs: number | undefined,
  lifetime: AbortSignal,
): { signal: AbortSignal; timedOut: () => boolean; dispose: () => void } {
  // Without a signal of the caller's or a timeout, only destroy() can stop the sync: a soft signal (see softSignal).
  if (user === undefined && timeoutMs === undefined) return { signal: softSignal(lifetime), timedOut: () => false, dispose: () => undefined };
  const own = user === undefined ? [lifetime] : [user, lifetime];
  if (timeoutMs === undefined) return { signal: unlimited(AbortSignal.any(own)), timedOut: () => false, dispose: () => undefined };
  const timer = new AbortController();
  let fired = false;
  const handle = setTimeout(() => {
    fired = true;
    timer.abort(new DOMException(`The sync exceeded timeoutMs (${timeoutMs} ms)`, 'TimeoutError'));
  }, timeoutMs);
  handle.unref?.();
  return {
    signal: unlimited(AbortSignal.any([...own, timer.signal])),
    timedOut: () => fired && !(user?.aborted ?? false),
    dispose: () => clearTimeout(handle),
  };
}

/**
 * Every request in flight listens to the sync's signal (downloadConcurrency
 * of them at once, 50 by default): not a leak, so no MaxListenersExceededWarning.
 */
function unlimited(signal: AbortSignal): AbortSignal {
  setMaxListeners(0, signal);
  return signal;
}

function destroyedError(): SyncError {
  return new SyncError('DESTROYED', 'This S3WorkspaceSync instance was destroyed (destroy() was called); create a new one');
}

/** Failure codes of files a push cannot store as objects. */
const UNSTORABLE = new Set(['INVALID_NAME', 'TOO_LARGE']);

/**
 * A file whose transfer or deletion did not happen: a failure, or — when the
 * local file changed during the sync — a file kept in place. Recorded in the
 * result and settled for `waitForPaths()`.
 */
function settleFailure(result: SyncResult, path: string, error: unknown, paths: PathTracker | undefined): void {
  if (error instanceof LocalFileError && error.code === CHANGED_DURING_SYNC) {
    const kept = { path, reason: 'changed-during-sync' };
    result.keptLocal.push(kept);
    result.skippedFiles.push(kept);
    paths?.settled(path);
    return;
  }
  const failed = addFailure(result, path, error); // not inside `paths?.…(…)`: that would skip it without a tracker
  paths?.settled(path, failed);
}

function addFailure(result: SyncResult, path: string, error: unknown): FailedFile {
  const message = messageOf(error);
  const code = (error as { code?: unknown } | null)?.code;
  const failed: FailedFile = typeof code === 'string' ? { path, error: message, code } : { path, error: message };
  result.failedFiles.push(failed);
  result.errors.push(`${escapeForLog(path)}: ${message}`);
  return failed;
}

/** Local paths that exist but are not synced files: never deleted remotely, never overwritten. */
function blockedPaths(scan: ScanResult): Set<string> {
  return new Set(scan.skipped.map((s) => s.path));
}

