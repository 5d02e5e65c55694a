/**
 * Error classes. Every error the library throws or reports is a {@link SyncError}
 * with a stable `code`; subclasses group errors by how a caller should react.
 *
 * Fatal errors (bucket missing, access denied, bad options) reject `pull()` /
 * `push()`. Per-file errors land in `SyncResult.failedFiles` and the run goes on.
 */

/** Options accepted by every {@link SyncError} constructor. */
export interface SyncErrorOptions {
  cause?: unknown;
  /** Structured, log-safe details (never credentials). */
  details?: Record<string, unknown>;
}

/** Base class of every error raised by s3-workspace-sync. */
export class SyncError extends Error {
  /** Stable, machine-readable code, e.g. `ACCESS_DENIED`, `INVALID_PATH`. */
  readonly code: string;
  /** Structured, log-safe details. */
  readonly details: Record<string, unknown>;

  constructor(code: string, message: string, options: SyncErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details ?? {};
  }
}

/** Invalid options passed to `new S3WorkspaceSync()`. Code: `CONFIG`. */
export class ConfigError extends SyncError {
  constructor(message: string, options: SyncErrorOptions = {}) {
    super('CONFIG', message, options);
  }
}

/**
 * A storage path (a workspace-relative path or the part of an object key after
 * the prefix) that is unsafe to use as a local path. Code: `INVALID_PATH`.
 */
export class PathValidationError extends SyncError {
  /** The offending path, with control characters escaped. */
  readonly path: string;
  /** Why the path was refused, e.g. `contains a '..' segment`. */
  readonly reason: string;

  constructor(path: string, reason: string) {
    const shown = escapeForLog(path);
    super('INVALID_PATH', `Invalid storage path "${shown}": ${reason}`, { details: { path: shown, reason } });
    this.path = shown;
    this.reason = reason;
  }
}

/** Codes carried by {@link StorageError}. */
export type StorageErrorCode =
  | 'BUCKET_NOT_FOUND'
  | 'NOT_FOUND'
  | 'ACCESS_DENIED'
  | 'INVALID_CREDENTIALS'
  | 'THROTTLED'
  | 'NETWORK'
  | 'PRECONDITION_FAILED'
  | 'STORAGE';

/**
 * A request to the object store failed. `retryable` tells whether trying again
 * later can help (throttling, 5xx, network) or not (access denied, missing bucket).
 */
export class StorageError extends SyncError {
  declare readonly code: StorageErrorCode;
  /** HTTP status of the failed request, when there was one. */
  readonly statusCode: number | undefined;
  /** Whether a later attempt may succeed. */
  readonly retryable: boolean;
  /**
   * Whether the SDK's own retry strategy already retried this request (a
   * request whose body it can replay). The library retries a whole transfer
   * only where the SDK cannot: stream bodies, and bodies that fail mid-way.
   */
  readonly retriedBySdk: boolean;

  constructor(
    code: StorageErrorCode,
    message: string,
    options: SyncErrorOptions & { statusCode?: number | undefined; retryable?: boolean; retriedBySdk?: boolean } = {},
  ) {
    super(code, message, options);
    this.statusCode = options.statusCode;
    this.retryable = options.retryable ?? false;
    this.retriedBySdk = options.retriedBySdk ?? false;
  }
}

/** A local filesystem operation failed. `code` is the errno code when there is one. */
export class LocalFileError extends SyncError {
  /** Workspace-relative path concerned. */
  readonly path: string;

  constructor(code: string, path: string, message: string, options: SyncErrorOptions = {}) {
    super(code, message, { ...options, details: { path: escapeForLog(path), ...options.details } });
    this.path = path;
  }
}

/**
 * Bytes did not match what was expected (a download whose MD5 or length differs
 * from the object's, or an upload whose ETag differs from the MD5 sent).
 * Code: `INTEGRITY`.
 */
export class IntegrityError extends SyncError {
  readonly path: string;
  readonly expected: string;
  readonly actual: string;

  constructor(path: string, expected: string, actual: string, message: string) {
    super('INTEGRITY', message, { details: { path: escapeForLog(path), expected, actual } });
    this.path = path;
    this.expected = expected;
    this.actual = actual;
  }
}

/**
 * `waitForPull()` rejects with this when the pull finished but some files
 * failed: the workspace is not completely restored. `result` has the details.
 * Code: `INCOMPLETE`.
 */
export class IncompleteSyncError extends SyncError {
  readonly result: import('./types.js').SyncResult;

  constructor(result: import('./types.js').SyncResult) {
    const n = result.failedFiles.length;
    const first = result.failedFiles[0];
    super(
      'INCOMPLETE',
      `Pull finished with ${n} failed file(s)` +
        (first ? `; first: ${escapeForLog(first.path)}: ${first.error}` : result.errors[0] ? `; ${result.errors[0]}` : ''),
      { details: { failed: n } },
    );
    this.result = result;
  }
}

/**
 * `waitForPaths()` (or `waitForPull({ paths })`): a file under the paths
 * waited for failed, or the pull ended before they were complete. The pull
 * may go on for the other files. Code: `INCOMPLETE`.
 */
export class IncompletePathsError extends SyncError {
  readonly paths: string[];
  readonly failedFiles: import('./types.js').FailedFile[];

  constructor(paths: string[], failedFiles: import('./types.js').FailedFile[]) {
    const first = failedFiles[0];
    super(
      'INCOMPLETE',
      `The paths ${paths.map((p) => escapeForLog(p)).join(', ')} are not completely restored: ${failedFiles.length} file(s) failed` +
        (first ? `; first: ${escapeForLog(first.path)}: ${first.error}` : ''),
      { details: { failed: failedFiles.length } },
    );
    this.paths = paths;
    this.failedFiles = failedFiles;
  }
}

/** Codes carried by {@link GuardError}. */
export type GuardCode = 'MAX_DELETES' | 'MAX_TOTAL_BYTES' | 'EMPTY_REMOTE';

/**
 * A safety guard refused a sync before anything was changed. The message says
 * what would have happened and which option overrides the guard; `details`
 * has the figures (`wouldDelete`, `treeSize`, `wouldTransferBytes`, `limit`, `option`).
 */
export class GuardError extends SyncError {
  declare readonly code: GuardCode;

  constructor(code: GuardCode, message: string, details: Record<string, unknown>) {
    super(code, message, { details });
  }
}

/**
 * A sync stopped early because its `signal` was aborted or its `timeoutMs`
 * passed. `name` is `'AbortError'`. `result` says what completed: finished
 * transfers are in place (and recorded), unfinished ones left no file behind,
 * deletions did not run. A later sync finishes the job.
 */
export class SyncAbortedError extends SyncError {
  readonly result: import('./types.js').SyncResult;

  constructor(result: import('./types.js').SyncResult, reason: 'aborted' | 'timeout', cause?: unknown) {
    const done = result.downloadedFiles + result.uploadedFiles + result.deletedFiles;
    super(
      reason === 'timeout' ? 'TIMEOUT' : 'ABORTED',
      `Sync ${reason === 'timeout' ? 'timed out' : 'was aborted'} after ${done} file operation(s) completed; a later sync finishes the job`,
      { cause, details: { completed: done } },
    );
    this.name = 'AbortError';
    this.result = result;
  }
}

const SECRET_PATTERNS: Array<[RegExp, string]> = [
  [/(X-Amz-(?:Signature|Credential|Security-Token))=[^&\s"'<]+/gi, '$1=[redacted]'],
  [/(Signature|Credential|SignedHeaders)=[^,&\s"'<]+/g, '$1=[redacted]'],
  [/(Authorization|x-amz-security-token)(["']?\s*[:=]\s*["']?)[^"'\n,}]+/gi, '$1$2[redacted]'],
  [/\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, '[redacted-access-key]'],
  [/(aws_secret_access_key|secretAccessKey|SecretAccessKey)(["']?\s*[:=]\s*["']?)[^"'\s,}]+/gi, '$1$2[redacted]'],
];

/**
 * Remove anything that looks like a credential, signature or Authorization
 * header from a message (errors from servers and proxies sometimes echo them).
 */
export function redactSecrets(message: string): string {
  let out = message;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** Escape control characters so a hostile key cannot forge log lines. */
export function escapeForLog(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Message of any thrown value, for result lists and logs: secrets redacted, control characters escaped. */
export function messageOf(error: unknown): string {
  const raw = error instanceof Error ? error.message : String(error);
  return escapeForLog(redactSecrets(raw));
}
