/**
 * One sync, stage by stage: lock, prepare (scan, list, learn, plan), the
 * guards, then — unless this is a dry run — execute and record, and for a
 * push the manifest commit. `plan()` and dry runs stop after the guards.
 *
 * Around it, the generations protocol (`generations.ts`): a push holds the
 * push lease while it changes the bucket and commits the manifest at the
 * end; a pull that meets a push waits for its commit, and runs again when a
 * push changed the bucket under it, so it returns one whole version.
 */
import { evaluateGuards } from '../core/guards.js';
import { MANIFEST_NAME, type ManifestEntry, type PushChanges } from '../core/manifest.js';
import { normalizePathPatterns, orderByPriority, type PathTracker } from '../core/priority.js';
import { apply, noOutcomes, type Outcomes } from '../core/record.js';
import { ConfigError, GuardError, SyncAbortedError, escapeForLog, messageOf } from '../errors.js';
import type { SyncCallOptions } from '../options.js';
import type { LockHandle } from '../state/WorkspaceLock.js';
import type { LocalFile } from '../core/model.js';
import type { FailedFile, SyncResult } from '../types.js';
import type { ServerChecks } from './capabilities.js';
import { callSettings, type SyncCall, type SyncContext } from './context.js';
import { execute } from './execute.js';
import type { PushSession } from './generations.js';
import { pullRepository, pushRepository } from './git.js';
import { lockWorkspace } from './lock.js';
import { prepare, type Prepared } from './prepare.js';
import { finish, newResult, notePlan } from './result.js';
import { combineSignals } from './signals.js';

/** A pull that met pushes this many times in a row reports the last round as it is. */
const MAX_PULL_ROUNDS = 4;

/** What a sync needs from the instance running it. */
export interface SyncEnv {
  readonly ctx: SyncContext;
  readonly checks: ServerChecks;
  /** Aborted by `destroy()`. */
  readonly lifetime: AbortSignal;
  /** After a sync that completed: the instance has synced (see the facade). */
  readonly onSynced: (direction: 'pull' | 'push', result: SyncResult) => void;
}

export async function runSync(
  env: SyncEnv,
  direction: 'pull' | 'push',
  options: SyncCallOptions,
  paths?: PathTracker,
): Promise<SyncResult> {
  const { ctx } = env;
  const started = Date.now();
  const limits = callSettings(ctx.options, options); // checks the call's options first
  const priority = options.priority === undefined ? [] : normalizePathPatterns(options.priority, 'priority');
  const changedPaths = options.changedPaths === undefined ? undefined : normalizePathPatterns(options.changedPaths, 'changedPaths');
  if (changedPaths !== undefined && direction !== 'push') throw new ConfigError('`changedPaths` applies to push() only');
  const { signal, timedOut, dispose } = combineSignals(options.signal, ctx.options.timeoutMs, env.lifetime);
  const call: SyncCall = { direction, dryRun: options.dryRun === true, ...limits, signal, started, changedPaths };
  const until = started + ctx.options.waitForPushMs;
  let result = newResult(direction, call.dryRun);
  let root: string | undefined;
  let lock: LockHandle | undefined;
  let failure: unknown;
  try {
    lock = await lockWorkspace(ctx, call);
    for (let round = 1; ; round++) {
      const prepared = await prepare(ctx, call);
      root = prepared.root;
      if (prepared.pull?.status === 'push-in-progress' && !call.dryRun) {
        ctx.options.logger.info(`${ctx.location}: a push is in progress; waiting for it to commit before pulling`);
        await ctx.generations.waitForPush(signal, until);
        continue;
      }
      const { plan, scan, treeSize, listed } = prepared;
      result.hashedFiles = prepared.hashed;
      plan.transfers = orderByPriority(plan.transfers, priority);
      const verdict = evaluateGuards(plan, { location: ctx.location, treeSize, listed }, limits);
      notePlan(result, plan, scan, verdict, ctx.options.logger);
      if (call.dryRun) return finish(result, started, ctx.location, ctx.options.logger);
      if (verdict !== undefined) throw new GuardError(verdict.code, verdict.message, verdict.details);
      const tracker = round === 1 ? paths : undefined;
      const conflicting = new Set(plan.bothChanged.map((b) => b.path)); // settled by the conflict policy: waited for like downloads
      tracker?.planned({
        downloads: [...plan.transfers.map((t) => t.path), ...conflicting],
        deletions: plan.deletions.map((d) => d.path),
        unchanged: [...plan.unchanged.map((u) => u.path), ...plan.kept.map((k) => k.path).filter((p) => !conflicting.has(p))],
        failures: result.failedFiles,
      });
      if (lock?.lost.aborted) throw lock.lost.reason; // another process took the workspace over: change nothing
      await env.checks.require(plan, signal);
      await env.checks.sockets();
      if (root === undefined) throw new Error('internal: only a dry-run pull has no workspace');
      await ctx.state.ensureIdentity(ctx.store, direction, listed, signal);
      if (direction === 'push') {
        await executePush(ctx, call, { ...prepared, root }, result, until);
      } else {
        const outcomes = noOutcomes();
        try {
          await execute(ctx, call, { ...prepared, root }, result, outcomes, tracker === undefined ? paths : firstRound(tracker));
        } finally {
          ctx.state.commit(apply(ctx.state.snapshot, plan, outcomes, started)); // record: even after an abort
        }
        if (signal?.aborted) throw signal.reason;
        if (await pullSawOneVersion(ctx, prepared, result, signal)) break;
        if (round >= MAX_PULL_ROUNDS) {
          result.failedFiles.push(changedDuringPull(ctx.location));
          break;
        }
        ctx.options.logger.info(`${ctx.location}: the bucket changed during the pull (a push); pulling again once it has committed`);
        await ctx.generations.waitForPush(signal, until);
        result = nextRound(direction, result);
        continue;
      }
      break;
    }
    if (signal?.aborted) throw signal.reason;
    // git: 'bundle': the repository after the files (a restore lays .git under the pulled working tree)
    if (root !== undefined) await (direction === 'push' ? pushRepository : pullRepository)(ctx, call, root, result);
    if (signal?.aborted) throw signal.reason;
    env.onSynced(direction, result);
    return finish(result, started, ctx.location, ctx.options.logger);
  } catch (error) {
    failure = error;
    if (!signal?.aborted) throw error;
    result.duration = Date.now() - started;
    throw new SyncAbortedError(result, env.lifetime.aborted ? 'destroyed' : timedOut() ? 'timeout' : 'aborted', signal.reason);
  } finally {
    dispose();
    try {
      const manifest = ctx.generations.cached;
      if (manifest !== undefined) ctx.state.learnRemote({ manifest });
      if (!call.dryRun && root !== undefined) await ctx.state.save(root);
    } finally {
      await lock?.release();
      paths?.end(failure);
    }
  }
}

/**
 * A push that changes the bucket: under the push lease, execute, record,
 * then commit the next manifest with what was done (also after failures:
 * the manifest describes the bucket). Changes an abort or a failed commit
 * left out are committed by this instance's next push.
 */
async function executePush(ctx: SyncContext, call: SyncCall, prepared: Prepared & { root: string }, result: SyncResult, until: number): Promise<void> {
  const { plan } = prepared;
  const { signal } = call;
  const writes = plan.transfers.length + plan.deletions.length > 0 || ctx.generations.uncommitted;
  const session: PushSession | undefined = writes ? await ctx.generations.beginPush(signal, until) : undefined;
  const outcomes = noOutcomes();
  try {
    try {
      await execute(ctx, call, prepared, result, outcomes);
    } finally {
      ctx.state.commit(apply(ctx.state.snapshot, plan, outcomes, call.started)); // record: even after an abort
      // what reached the bucket, committed below, or by this instance's next push when this one stops here
      if (writes) ctx.generations.remember(pushChanges(ctx, outcomes, prepared.scan.files));
    }
    if (!writes || signal?.aborted || !ctx.generations.uncommitted) return; // nothing changed in the bucket: nothing to commit
    try {
      const overlap = await ctx.generations.commit(NO_CHANGES, session?.token, ctx.state.snapshot, signal);
      if (overlap.length > 0) {
        ctx.options.logger.warn(
          `${ctx.location}: another push committed changes to ${overlap.length} path(s) this push also changed (${overlap.slice(0, 5).map(escapeForLog).join(', ')}); ` +
            'the manifest records what the bucket holds there now.',
        );
      }
    } catch (error) {
      if (signal?.aborted) throw error;
      result.failedFiles.push({
        path: MANIFEST_NAME,
        error: `The push's changes are in the bucket, but the manifest could not be committed: ${messageOf(error)}. The next push commits them.`,
        code: 'MANIFEST_NOT_COMMITTED',
      });
    }
  } finally {
    await session?.release();
  }
}

const NO_CHANGES: PushChanges = { put: new Map(), removed: new Set() };

/** What a push's outcomes mean for the manifest (permission bits as scanned). */
function pushChanges(ctx: SyncContext, outcomes: Outcomes, scanned: ReadonlyMap<string, LocalFile>): PushChanges {
  const put = new Map<string, ManifestEntry>();
  for (const { path, entry } of outcomes.transferred) {
    if (entry.etag === undefined) {
      ctx.options.logger.debug(`No ETag known for ${escapeForLog(path)}: left out of the manifest`);
      continue;
    }
    put.set(path, { size: entry.size, etag: entry.etag, md5: entry.md5, mtimeMs: entry.mtimeMs, mode: scanned.get(path)?.mode });
  }
  return { put, removed: new Set(outcomes.deleted) };
}

/**
 * Whether what the pull acted on was one version of the bucket: no object
 * was replaced while it was downloaded (a 412 on its `If-Match`), and no
 * push started or committed since the listing (unless the listing was
 * exactly the committed manifest).
 */
async function pullSawOneVersion(ctx: SyncContext, prepared: Prepared, result: SyncResult, signal: AbortSignal | undefined): Promise<boolean> {
  if (result.failedFiles.some((f) => f.code === 'PRECONDITION_FAILED')) return false;
  if (prepared.pull === undefined) return true;
  try {
    return await ctx.generations.unchangedSince(prepared.pull, signal);
  } catch (error) {
    if (signal?.aborted) throw error;
    ctx.options.logger.debug(`Could not check for pushes after the pull: ${messageOf(error)}`);
    return true;
  }
}

/** The result of the next round, carrying what earlier rounds did. */
function nextRound(direction: 'pull' | 'push', prev: SyncResult): SyncResult {
  const next = newResult(direction, false);
  next.downloadedFiles = prev.downloadedFiles;
  next.deletedFiles = prev.deletedFiles;
  next.bytesTransferred = prev.bytesTransferred;
  next.movedAside.push(...prev.movedAside);
  return next;
}

/**
 * `waitForPaths()` in the first round: a file replaced during its download
 * is not a failure yet — the next round fetches it and settles it (later
 * rounds use the tracker itself; their plan adds nothing to it).
 */
function firstRound(tracker: PathTracker): PathTracker {
  const settled = (path: string, failure?: FailedFile): void => {
    if (failure?.code !== 'PRECONDITION_FAILED') tracker.settled(path, failure);
  };
  return new Proxy(tracker, {
    get: (target, key) => {
      if (key === 'settled') return settled;
      const value: unknown = Reflect.get(target, key);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function changedDuringPull(location: string): FailedFile {
  return {
    path: '',
    error: `${location} kept changing during the pull (pushes by other processes); the workspace may hold a mix of versions. Pull again.`,
    code: 'CHANGED_DURING_PULL',
  };
}
