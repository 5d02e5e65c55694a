/**
 * s3-workspace-sync: keep a local workspace directory and an S3 prefix in step.
 * Explicit named exports only; everything here is public API.
 */
export { S3WorkspaceSync } from './S3WorkspaceSync.js';
export type { S3WorkspaceSyncOptions, SyncCallOptions } from './options.js';
export { DEFAULT_DOWNLOAD_CONCURRENCY, DEFAULT_UPLOAD_CONCURRENCY, DEFAULT_MAX_ATTEMPTS, DEFAULT_LOCK_WAIT_MS, DEFAULT_WAIT_FOR_PUSH_MS } from './options.js';
export { DEFAULT_STALL_TIMEOUT_MS } from './storage/stall.js';
export type { UploadParams, UploadParamsOption } from './upload-params.js';
export type { SyncEvents } from './events.js';
export type { SyncWatcher, WatchEvents, WatchOptions, WatchPushInfo, WatchPushReason } from './pipeline/watch.js';
export type {
  SyncResult,
  SyncProgress,
  SkippedFile,
  FailedFile,
  SyncLogger,
  SyncPlan,
  PlannedTransfer,
  PlannedDeletion,
  MovedAside,
  MovedAsideReason,
  SyncConflict,
  ConflictPolicy,
  VerifyReport,
} from './types.js';
export type { ConditionalWriteSupport } from './storage/capabilities.js';
export {
  SyncError,
  ConfigError,
  PathValidationError,
  StorageError,
  LocalFileError,
  IntegrityError,
  IncompleteSyncError,
  IncompletePathsError,
  GuardError,
  SyncAbortedError,
  WorkspaceLockedError,
  isSyncError,
  redactSecrets,
  type GuardCode,
  type StorageErrorCode,
  type SyncErrorOptions,
  type WorkspaceLockHolder,
} from './errors.js';
export { guessContentType } from './core/content-type.js';
export type { PathsReady } from './core/priority.js';
export { validateStoragePath, normalizePrefix } from './core/paths.js';
export {
  SyncIgnoreFilter,
  DEFAULT_IGNORE_PATTERNS,
  RESERVED_IGNORE_PATTERNS,
  type SyncIgnoreFilterOptions,
} from './SyncIgnoreFilter.js';
export { calculateFileHash } from './local/hash.js';
export { createDefaultLogger, silentLogger } from './logger.js';
