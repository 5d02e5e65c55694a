/**
 * The execute stage: carry out a plan. Transfers first (bounded, abortable,
 * retried: `transfer/transfers.ts`), then deletions — and no deletion at all
 * when a transfer failed or the sync was aborted. A pull writes through the
 * workspace writer (temp file, verify, no-replace commit) and moves files it
 * cannot prove were synced into the recovery area instead of destroying them.
 *
 * What happened is collected in `outcomes` as it happens (the record stage
 * turns it into the next snapshot, even after an abort) and in `result`.
 */
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import pLimit from 'p-limit';
import type { PathTracker } from '../core/priority.js';
import type { Plan } from '../core/plan.js';
import type { Outcomes } from '../core/record.js';
import { ConflictError, escapeForLog, messageOf } from '../errors.js';
import { ProgressTracker } from '../events.js';
import { RecoveryArea } from '../local/RecoveryArea.js';
import { WorkspaceWriter } from '../local/WorkspaceWriter.js';
import { BufferPool } from '../transfer/multipart.js';
import {
  PendingConflict,
  runDownloads,
  runLocalDeletes,
  runRemoteDeletes,
  runUploads,
  type ExecuteHooks,
  type LargeFileSettings,
} from '../transfer/transfers.js';
import type { SyncResult } from '../types.js';
import type { SyncCall, SyncContext } from './context.js';
import type { Prepared } from './prepare.js';
import { ConflictArea, resolveConflicts, type Resolver, type Unresolved } from './resolve.js';
import { addConflict, bothChangedConflict, settleFailure, UNSTORABLE } from './result.js';

/** One sync's execution: what it writes to, and what it reports to. */
interface Run {
  readonly ctx: SyncContext;
  readonly call: SyncCall;
  readonly result: SyncResult;
  readonly outcomes: Outcomes;
  /** `waitForPaths()`'s tracker, for a background pull. */
  readonly paths: PathTracker | undefined;
  /** Conflicts met by transfers and deletions that the policy settles in the resolve stage. */
  readonly pending: Unresolved[];
}

/** Execute a prepared plan (not a dry run). */
export async function execute(
  ctx: SyncContext,
  call: SyncCall,
  prepared: Prepared & { root: string },
  result: SyncResult,
  outcomes: Outcomes,
  paths?: PathTracker,
): Promise<void> {
  const run: Run = { ctx, call, result, outcomes, paths, pending: [] };
  if (call.direction === 'pull') await executePull(run, prepared);
  else await executePush(run, prepared);
}

async function executePull(run: Run, { root, plan, scan }: Prepared & { root: string }): Promise<void> {
  const { ctx, call, result, outcomes, paths } = run;
  await removeTempFiles(ctx, root, scan.tempFiles);
  const recovery = new RecoveryArea(root);
  const writer = new WorkspaceWriter(root, recovery);
  try {
    const downloads = new ProgressTracker('download', plan.transfers.length, plan.transferBytes, ctx.emit);
    await runDownloads(
      plan.transfers,
      {
        store: ctx.store,
        writer,
        concurrency: ctx.options.downloadConcurrency,
        large: largeFiles(ctx),
        attempts: ctx.options.maxAttempts,
        signal: call.signal,
      },
      transferHooks(run, downloads, 'download'),
    );
    downloads.finishEmpty();
    await runDeletions(run, plan, (d, hooks) => runLocalDeletes(d, writer, hooks, call.signal));
    // files changed on both sides (kept in place so far): the policy decides, after the deletions (a conflict holds none back)
    const resolver: Resolver = { ctx, call, result, outcomes, root, area: new ConflictArea(ctx.options.prefix), writer, large: largeFiles(ctx), syncIo: scan.fastFs, paths };
    await resolveConflicts(
      resolver,
      plan.bothChanged.map((b) => ({ conflict: bothChangedConflict('pull', b), current: { etag: b.remote.etag, size: b.remote.size, md5: b.remote.md5 } })),
    );
  } finally {
    await recovery.settle(); // confirms and removes the proven files it holds
    reportMovedAside(ctx, recovery, result);
  }
}

async function executePush(run: Run, { root, plan, scan }: Prepared & { root: string }): Promise<void> {
  const { ctx, call, result, outcomes, pending } = run;
  await sweepStaleUploads(ctx, call.signal);
  const area = new ConflictArea(ctx.options.prefix);
  const uploads = new ProgressTracker('upload', plan.transfers.length, plan.transferBytes, ctx.emit);
  await runUploads(
    plan.transfers,
    {
      store: ctx.store,
      root,
      concurrency: ctx.options.uploadConcurrency,
      large: largeFiles(ctx),
      attempts: ctx.options.maxAttempts,
      contentType: ctx.options.contentTypeResolver,
      uploadParams: ctx.options.uploadParams,
      syncIo: scan.fastFs,
      conflictPolicy: call.conflictPolicy,
      conflictKey: (path) => area.keyFor(path),
      signal: call.signal,
    },
    transferHooks(run, uploads, 'upload'),
  );
  uploads.finishEmpty();
  // keep-remote / keep-both: the remote version comes into the workspace (replaced files go into the recovery area)
  const recovery = new RecoveryArea(root);
  const resolver: Resolver = { ctx, call, result, outcomes, root, area, writer: new WorkspaceWriter(root, recovery), large: largeFiles(ctx), syncIo: scan.fastFs };
  try {
    const fromPlan = plan.bothChanged.map((b) => ({ conflict: bothChangedConflict('push', b), current: { etag: b.remote.etag, size: b.remote.size, md5: b.remote.md5 } }));
    await resolveConflicts(resolver, [...fromPlan, ...pending.splice(0)]);
    await runDeletions(run, plan, (d, hooks) => runRemoteDeletes(d, ctx.store, call.signal, hooks, call.conflictPolicy));
    await resolveConflicts(resolver, pending.splice(0));
  } finally {
    await recovery.settle();
    reportMovedAside(ctx, recovery, result);
  }
}

/**
 * The delete policy: deletions run after transfers, and not at all when a
 * transfer failed or the sync was aborted. Files that cannot be stored at all
 * (invalid names, too large) fail the sync but hold back no deletion.
 */
async function runDeletions(
  run: Run,
  plan: Plan,
  execute: (deletions: Plan['deletions'], hooks: { onDeleted(path: string): void; onFailed(path: string, error: unknown): void }) => Promise<void>,
): Promise<void> {
  const { ctx, call, result, outcomes, paths } = run;
  if (plan.deletions.length === 0 || call.signal?.aborted) return;
  if (result.failedFiles.some((f) => f.code === undefined || !UNSTORABLE.has(f.code))) {
    for (const d of plan.deletions) result.skippedFiles.push({ path: d.path, reason: 'not-deleted: a transfer failed in this sync' });
    return;
  }
  const tracker = new ProgressTracker('cleanup', plan.deletions.length, 0, ctx.emit);
  await execute(plan.deletions, {
    onDeleted: (path) => {
      outcomes.deleted.push(path);
      result.deletedFiles++;
      tracker.fileDone(path);
      paths?.settled(path);
    },
    onFailed: (path, error) => {
      if (call.signal?.aborted) return;
      settle(run, path, error);
      tracker.fileDone(path);
    },
  });
}

function transferHooks(run: Run, tracker: ProgressTracker, kind: 'download' | 'upload'): ExecuteHooks {
  const { call, result, outcomes, paths } = run;
  return {
    onBytes: (n, path, size) => tracker.addBytes(n, { path, size }),
    onDone: (done) => {
      outcomes.transferred.push({ path: done.path, entry: done.entry });
      if (done.conflict !== undefined) result.conflicts.push(done.conflict);
      result.bytesTransferred += done.bytes;
      if (kind === 'download') result.downloadedFiles++;
      else result.uploadedFiles++;
      tracker.fileDone(done.path);
      paths?.settled(done.path);
    },
    onFailed: (path, error) => {
      if (call.signal?.aborted) return; // stopped by the abort, not a failure: a later sync finishes it
      settle(run, path, error);
      tracker.fileDone(path);
    },
  };
}

/** A file whose transfer or deletion did not happen: a conflict with another writer, or a failure. */
function settle(run: Run, path: string, error: unknown): void {
  if (error instanceof PendingConflict) {
    const c = error.current;
    run.pending.push({ conflict: error.conflict, current: c === null || c === undefined ? c : { etag: c.etag, size: c.size, md5: c.md5 } });
    return;
  }
  if (error instanceof ConflictError) {
    addConflict(run.result, error.conflict);
    run.paths?.settled(path, run.result.failedFiles[run.result.failedFiles.length - 1]);
  } else settleFailure(run.result, path, error, run.paths);
}

/** Large-file settings of one sync: one part limiter shared by all its large files. */
function largeFiles(ctx: SyncContext): LargeFileSettings {
  const { multipartThreshold, partSize, partConcurrency, prehashMultipart } = ctx.options;
  return {
    threshold: multipartThreshold,
    partSize,
    partLimit: pLimit(partConcurrency),
    buffers: new BufferPool(partSize),
    // One large download at a time (one file saturates the link); ranges
    // buffered ≤ rangesPerFile + 1, so memory stays ≤ partConcurrency × partSize.
    rangesPerFile: Math.max(1, Math.min(partConcurrency - 1, 4)),
    largeDownloadLimit: pLimit(1),
    hashes: ctx.hashPool(),
    prehash: prehashMultipart,
  };
}

/**
 * Abort this prefix's multipart uploads older than `abortStaleUploadsAfterHours`
 * (left by crashed processes). Best effort: failures are logged, never fatal.
 */
async function sweepStaleUploads(ctx: SyncContext, signal: AbortSignal | undefined): Promise<void> {
  const { abortStaleUploadsAfterHours: hours, prefix, logger } = ctx.options;
  if (hours === undefined) return;
  const cutoff = Date.now() - hours * 3_600_000;
  try {
    const pending = await ctx.store.listMultipartUploads(prefix, signal);
    for (const upload of pending) {
      if (upload.initiatedMs === undefined || upload.initiatedMs > cutoff) continue;
      signal?.throwIfAborted();
      await ctx.store.abortMultipart(upload.key, upload.uploadId);
      logger.info(`Aborted stale multipart upload ${upload.uploadId} of ${escapeForLog(upload.key)}`);
    }
  } catch (error) {
    if (signal?.aborted) throw error;
    logger.warn(`Could not sweep stale multipart uploads under ${ctx.location}: ${messageOf(error)}`);
  }
}

/** Downloads a crash left half-written (the scan found them; they are never synced). */
async function removeTempFiles(ctx: SyncContext, root: string, tempFiles: readonly string[]): Promise<void> {
  for (const rel of tempFiles) {
    await unlink(join(root, rel)).catch(() => undefined);
    ctx.options.logger.debug(`Removed leftover temporary file ${escapeForLog(rel)}`);
  }
}

/** Files the pull moved into the recovery area: in the result and, once, in the log. */
function reportMovedAside(ctx: SyncContext, recovery: RecoveryArea, result: SyncResult): void {
  if (recovery.moved.length === 0) return;
  result.movedAside.push(...recovery.moved);
  const shown = recovery.moved.slice(0, 5).map((m) => escapeForLog(m.path));
  const more = recovery.moved.length > shown.length ? ` and ${recovery.moved.length - shown.length} more` : '';
  ctx.options.logger.warn(
    `Moved ${recovery.moved.length} local file(s) that could not be proven to be in the bucket into ${recovery.dir} ` +
      `before replacing or deleting them: ${shown.join(', ')}${more}. Nothing was lost; delete that folder once you have checked it.`,
  );
}
