/**
 * s3-workspace-sync/utils: the parts of the public API that do not need the
 * AWS SDK. Importing this entry never loads `@aws-sdk/*` (nor the sync engine),
 * so it works where `@aws-sdk/client-s3` is not installed and costs a fraction
 * of the main entry's import time: validate keys, filter paths, guess content
 * types, hash files, and recognise the library's errors.
 *
 * Everything here is also exported by the main entry (`s3-workspace-sync`);
 * the classes are the same ones in ESM, and match across builds with
 * `instanceof` (see {@link SyncError}).
 *
 * Keep this file's imports free of `@aws-sdk/*`, `./options.js` and
 * `./S3WorkspaceSync.js`: test/integration/package-exports.test.ts fails if
 * loading the built entry loads any `@aws-sdk/` module.
 *
 * @example
 * import { validateStoragePath, SyncIgnoreFilter } from 's3-workspace-sync/utils';
 * validateStoragePath('reports/2026/q1.csv'); // throws PathValidationError if unsafe
 */
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
export type { SyncLogger } from './types.js';
export { guessContentType } from './core/content-type.js';
export { validateStoragePath, normalizePrefix } from './core/paths.js';
export {
  SyncIgnoreFilter,
  DEFAULT_IGNORE_PATTERNS,
  RESERVED_IGNORE_PATTERNS,
  type SyncIgnoreFilterOptions,
} from './SyncIgnoreFilter.js';
export { calculateFileHash } from './local/hash.js';
export { createDefaultLogger, silentLogger } from './logger.js';
