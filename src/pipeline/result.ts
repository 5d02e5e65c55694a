/**
 * The result of a sync, as the user sees it: built from the plan (before
 * anything changes), filled in by the execute stage, and closed with a log
 * line. `success` means every file is in step: no failure of any kind.
 */
import type { GuardVerdict } from '../core/guards.js';
import type { FailedFile, SyncConflict } from '../core/model.js';
import type { BothChanged, Plan } from '../core/plan.js';
import type { PathTracker } from '../core/priority.js';
import { ConflictError, LocalFileError, escapeForLog, messageOf } from '../errors.js';
import type { ScanResult } from '../local/scanner.js';
import { CHANGED_DURING_SYNC } from '../local/WorkspaceWriter.js';
import type { SyncLogger, SyncPlan, SyncResult } from '../types.js';

/** Failure codes of files a push cannot store as objects: they fail the sync but hold back no deletion. */
export const UNSTORABLE = new Set(['INVALID_NAME', 'TOO_LARGE']);

export function newResult(direction: 'pull' | 'push', dryRun: boolean): SyncResult {
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
    conflicts: [],
    dryRun,
    plan: { direction, transfers: [], deletions: [], skipped: [], keptLocal: [], failures: [], conflicts: [], unchangedFiles: 0, transferBytes: 0 },
  };
}

/**
 * What the plan already settles: skipped and kept files, and the files that
 * cannot be synced at all (unreadable, or — on push — not storable as an
 * object), which are failures. Then the public view of the plan.
 */
export function notePlan(result: SyncResult, plan: Plan, scan: ScanResult, verdict: GuardVerdict | undefined, logger: SyncLogger): void {
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
    const message =
      plan.direction === 'push' ? `Cannot store "${b.path}" as an object (${b.reason}); it is not in the bucket` : `Cannot write "${b.path}": ${b.reason}`;
    addFailure(result, b.path, new LocalFileError(b.code, b.path, message));
  }
  for (const c of plan.conflicts) addConflict(result, c);
  logger.debug(
    `Plan ${plan.direction}: ${plan.transfers.length} transfers (${plan.transferBytes} bytes), ` +
      `${plan.deletions.length} deletions, ${plan.unchanged.length} unchanged, ${plan.kept.length} kept`,
  );
  result.plan = toReport(plan, result, verdict);
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
    // paths both sides changed: what a sync reports with the default policy (the call's policy decides when it runs)
    conflicts: [...plan.conflicts, ...plan.bothChanged.map((b) => bothChangedConflict(plan.direction, b))],
    unchangedFiles: plan.unchanged.length,
    transferBytes: plan.transferBytes,
  };
  if (verdict !== undefined) report.refusedBy = { code: verdict.code, message: verdict.message };
  return report;
}

/** Close the result: duration, `success`, one log line. */
export function finish(result: SyncResult, started: number, location: string, logger: SyncLogger): SyncResult {
  result.duration = Date.now() - started;
  result.success = result.failedFiles.length === 0 && result.errors.length === 0;
  const op = result.plan.direction;
  const moved = op === 'pull' ? `${result.downloadedFiles} downloaded` : `${result.uploadedFiles} uploaded`;
  const line = result.dryRun
    ? `${op} (dry run) ${location}: would transfer ${result.plan.transfers.length} file(s) ` +
      `(${result.plan.transferBytes} bytes), delete ${result.plan.deletions.length}` +
      (result.plan.refusedBy ? `; refused by ${result.plan.refusedBy.code}` : '')
    : `${op} ${location}: ${moved}, ${result.deletedFiles} deleted, ` +
      `${result.skippedFiles.length} skipped, ${result.failedFiles.length} failed, ${result.bytesTransferred} bytes in ${result.duration} ms`;
  if (result.success) logger.info(line);
  else logger.warn(line);
  return result;
}

/**
 * A file whose transfer or deletion did not happen: a failure, or — when the
 * local file changed during the sync — a file kept in place. Recorded in the
 * result and settled for `waitForPaths()`.
 */
export function settleFailure(result: SyncResult, path: string, error: unknown, paths: PathTracker | undefined): void {
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

export function addFailure(result: SyncResult, path: string, error: unknown): FailedFile {
  const message = messageOf(error);
  const code = (error as { code?: unknown } | null)?.code;
  const failed: FailedFile = typeof code === 'string' ? { path, error: message, code } : { path, error: message };
  result.failedFiles.push(failed);
  result.errors.push(`${escapeForLog(path)}: ${message}`);
  return failed;
}

/**
 * A conflict: in `result.conflicts`, and — unless a policy resolved it —
 * a failure with code `CONFLICT`: the two sides do not agree.
 */
export function addConflict(result: SyncResult, conflict: SyncConflict): FailedFile | undefined {
  result.conflicts.push(conflict);
  return conflict.resolution === 'reported' ? addFailure(result, conflict.path, new ConflictError(conflict)) : undefined;
}

/** The conflict a path changed on both sides is, before a policy acts (`reported`). */
export function bothChangedConflict(direction: 'pull' | 'push', b: BothChanged): SyncConflict {
  return {
    path: b.path,
    key: b.key,
    action: direction === 'pull' ? 'download' : 'upload',
    expectedEtag: b.expectedEtag,
    currentEtag: b.remote.etag,
    resolution: 'reported',
  };
}
