import type { ConflictPolicy, DeletionReason, FailedFile, MovedAside, SkippedFile, SyncConflict, TransferReason, VerifyReport } from './core/model.js';

export type { MovedAside, MovedAsideReason } from './core/model.js';
export type { ConflictPolicy, DeletionReason, FailedFile, SkippedFile, SyncConflict, TransferReason, VerifyReport };

/** One file a sync would transfer. */
export interface PlannedTransfer {
  /** Workspace-relative POSIX path. */
  path: string;
  /** Object key. */
  key: string;
  size: number;
  /** `new`, `changed`, or (pull) `missing-locally`. */
  reason: TransferReason;
  /**
   * Pull: the local file this download replaces cannot be proven to be in the
   * bucket, so it is moved into the recovery area first (see `movedAside`).
   */
  movesAside: boolean;
}

/** One local file (pull) or object (push) a sync would delete. */
export interface PlannedDeletion {
  path: string;
  key: string;
  /** `not-in-remote` (fresh pull mirrors), `deleted-remotely` (pull), `deleted-locally` (push). */
  reason: DeletionReason;
  /** Pull: the file cannot be proven to be in the bucket, so it is moved into the recovery area instead of deleted. */
  movesAside: boolean;
}

/**
 * The exact actions a sync takes, computed before anything changes: what
 * `plan()` returns, and `result.plan` of every `pull()` / `push()`.
 */
export interface SyncPlan {
  direction: 'pull' | 'push';
  /** Downloads (pull) or uploads (push). */
  transfers: PlannedTransfer[];
  deletions: PlannedDeletion[];
  /** Files left alone, with reasons. */
  skipped: SkippedFile[];
  /** Pull: local files kept because they changed locally since the last sync (possible unpushed work). */
  keptLocal: SkippedFile[];
  /** Files that cannot be synced (e.g. a local directory where the bucket has a file): failures if executed. */
  failures: FailedFile[];
  /**
   * Push: paths where the bucket holds a version this instance never saw (a
   * fresh instance over other content), known before anything is sent. More
   * can appear while the push runs (`SyncResult.conflicts`).
   */
  conflicts: SyncConflict[];
  /** Files already identical on both sides. */
  unchangedFiles: number;
  /** Sum of the transfers' sizes. */
  transferBytes: number;
  /** The guard that refuses this plan, when one does (executing it throws a `GuardError` with this code and message). */
  refusedBy?: { code: 'MAX_DELETES' | 'MAX_TOTAL_BYTES' | 'EMPTY_REMOTE'; message: string };
}

/** Outcome of `pull()` or `push()`. */
export interface SyncResult {
  /** `true` when no file failed and no error occurred. */
  success: boolean;
  /** Files written to the workspace (pull). */
  downloadedFiles: number;
  /** Objects written to the bucket (push). */
  uploadedFiles: number;
  /** Local files (pull) or objects (push) deleted. */
  deletedFiles: number;
  /** Files left alone, each with a reason. */
  skippedFiles: SkippedFile[];
  /** Files whose transfer or deletion failed. */
  failedFiles: FailedFile[];
  /** Human-readable messages for every failure. */
  errors: string[];
  /** Bytes downloaded or uploaded. */
  bytesTransferred: number;
  /** Wall time in milliseconds. */
  duration: number;
  /**
   * Local files whose content was read to compute their MD5 while planning
   * (files new to the snapshot, changed since it, or racy). Files hashed while
   * they were uploaded are not counted.
   */
  hashedFiles: number;
  /**
   * Pull: local files kept in place (not overwritten, not deleted): changed
   * locally since the last sync (`modified-locally`, `created-locally`), or
   * while this pull ran (`changed-during-sync`). Also listed in `skippedFiles`.
   */
  keptLocal: SkippedFile[];
  /**
   * Pull: local files that could not be proven to be in the bucket (no state,
   * a state that cannot be trusted, a file the state does not cover), moved
   * into the recovery area (`<workspace>/.s3-workspace-sync/recovered/<time>/`)
   * before the pull replaced or deleted them. Nothing in it is ever deleted
   * by the library.
   */
  movedAside: MovedAside[];
  /**
   * Push: paths where another writer changed the bucket since this instance
   * last saw it (or, for a fresh instance, where the bucket has other
   * content). Under the default `conflictPolicy: 'fail'` neither side is
   * changed, and each is also a failure (code `CONFLICT`), so `success` is
   * `false`. See "Several writers" in README.
   */
  conflicts: SyncConflict[];
  /** `true` when this was a dry run: nothing was changed, `plan` says what would have been. */
  dryRun: boolean;
  /** The plan this sync computed and followed. */
  plan: SyncPlan;
}

/** Payload of the `progress` event. */
export interface SyncProgress {
  /**
   * `plan` (scanning, listing and hashing before anything moves: `current` /
   * `total` count the files hashed, the bytes the bytes hashed), `download`
   * (pull), `upload` (push), `cleanup` (deletions, either direction).
   */
  phase: 'plan' | 'download' | 'upload' | 'cleanup';
  /** Files finished in this phase so far (succeeded or failed). */
  current: number;
  /** Files this phase will process, known from the plan. */
  total: number;
  /** `round(current / total * 100)`; 100 when `total` is 0. */
  percentage: number;
  /** The file that just finished or, in a byte event, the file whose bytes just moved. */
  currentFile?: string;
  /** Byte events only: bytes of `currentFile` moved so far (it has not finished yet). */
  currentFileBytes?: number;
  /** Byte events only: the size of `currentFile`. */
  currentFileSize?: number;
  /** Bytes moved so far in this phase. */
  transferredBytes: number;
  /** Bytes this phase will move, known from the plan. */
  totalBytes: number;
}

/** Logger interface; pass pino, winston, console or your own. */
export interface SyncLogger {
  debug(message: string, ...args: unknown[]): void;
  info(message: string, ...args: unknown[]): void;
  warn(message: string, ...args: unknown[]): void;
  error(message: string, ...args: unknown[]): void;
}
