import type { SyncConflict } from './core/model.js';
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

/**
 * Key of the brand every {@link SyncError} carries: a frozen array of its class
 * ids from the base down, e.g. `['SyncError', 'StorageError']`. A registered
 * symbol, so the ESM build, the CommonJS build and any other copy of the
 * library loaded in the same process all read the same property.
 */
const BRAND = Symbol.for('s3-workspace-sync/SyncError');

/**
 * The stable id of each library error class, set by a static block in the
 * class itself. Kept apart from `constructor.name` so that a bundler that
 * renames classes cannot make two copies of the library disagree.
 */
const CLASS_IDS = new WeakMap<object, string>();

/** The library class id of a constructor, or undefined for any other class (a user's subclass). */
function classIdOf(ctor: unknown): string | undefined {
  return typeof ctor === 'function' ? CLASS_IDS.get(ctor) : undefined;
}

/** The brand of a value: its class-id chain, when it is a SyncError from any copy of the library. */
function brandOf(value: unknown): readonly string[] | undefined {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return undefined;
  let brand: unknown;
  try {
    brand = (value as { [BRAND]?: unknown })[BRAND];
  } catch {
    return undefined; // a hostile proxy or getter
  }
  return Array.isArray(brand) && brand.every((id) => typeof id === 'string') ? (brand as string[]) : undefined;
}

/**
 * Base class of every error raised by s3-workspace-sync.
 *
 * `instanceof` works across copies of the library: an error thrown by the
 * CommonJS build is `instanceof` the ESM build's classes too (and the other
 * way round), because each error carries a brand listing its classes, which
 * `SyncError[Symbol.hasInstance]` (inherited by every subclass) also checks.
 * `err instanceof StorageError` is true for a StorageError from either build,
 * false for a ConfigError from either. A class of your own that extends one of
 * these is matched the ordinary way (prototype chain) only.
 *
 * @example
 * try {
 *   await sync.push();
 * } catch (err) {
 *   if (err instanceof StorageError && err.retryable) scheduleRetry();
 *   else if (isSyncError(err)) console.error(err.code, err.details);
 *   else throw err;
 * }
 */
export class SyncError extends Error {
  static {
    CLASS_IDS.set(this, 'SyncError');
  }

  /**
   * `value instanceof ThisClass`: the ordinary prototype check, or, for the
   * library's own classes, the brand of an error made by another copy of the
   * library (its ESM or CommonJS build).
   */
  static override [Symbol.hasInstance]<T>(this: abstract new (...args: never[]) => T, value: unknown): value is T {
    if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
    const id = classIdOf(this);
    return id !== undefined && brandOf(value)?.includes(id) === true;
  }

  /** Stable, machine-readable code, e.g. `ACCESS_DENIED`, `INVALID_PATH`. */
  readonly code: string;
  /** Structured, log-safe details. */
  readonly details: Record<string, unknown>;

  constructor(code: string, message: string, options: SyncErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details ?? {};
    // The class chain from SyncError down to new.target; a class that is not
    // the library's (a user's subclass) is listed by its name.
    const chain: string[] = [];
    for (let ctor: unknown = new.target; typeof ctor === 'function'; ctor = Object.getPrototypeOf(ctor)) {
      chain.unshift(classIdOf(ctor) ?? (ctor as { name: string }).name);
      if (ctor === SyncError) break;
    }
    // Not enumerable: kept out of logs, inspection and JSON.
    Object.defineProperty(this, BRAND, { value: Object.freeze(chain), enumerable: false, writable: false, configurable: false });
  }
}

/**
 * Whether `value` is a {@link SyncError} (of any subclass) from any copy of the
 * library: its ESM or CommonJS build, or another installed version that brands
 * its errors the same way. Same as `value instanceof SyncError`, as a function.
 *
 * @example
 * if (isSyncError(err)) console.error(err.code, err.details);
 */
export function isSyncError(value: unknown): value is SyncError {
  return value instanceof SyncError;
}

/** Invalid options passed to `new S3WorkspaceSync()`. Code: `CONFIG`. */
export class ConfigError extends SyncError {
  static {
    CLASS_IDS.set(this, 'ConfigError');
  }

  constructor(message: string, options: SyncErrorOptions = {}) {
    super('CONFIG', message, options);
  }
}

/**
 * A storage path (a workspace-relative path or the part of an object key after
 * the prefix) that is unsafe to use as a local path. Code: `INVALID_PATH`.
 */
export class PathValidationError extends SyncError {
  static {
    CLASS_IDS.set(this, 'PathValidationError');
  }

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

/**
 * Codes carried by {@link StorageError}.
 *
 * The conditional-request answers (see `ObjectStore`):
 * - `PRECONDITION_FAILED` (412): an `If-Match` ETag that differs, or
 *   `If-None-Match: *` on a key that exists (a write), or an `If-Match` that
 *   differs on a GET/HEAD. Not retryable: re-read first.
 * - `NOT_FOUND` (404) also answers `If-Match` on a write or a delete of a key
 *   that does not exist (S3's NoSuchKey).
 * - `CONFLICT` (409, S3's `ConditionalRequestConflict`): another conditional
 *   write to the same key was in progress. Not retryable as is: re-read the
 *   ETag, then decide again (for a multipart upload: start a new one).
 * - `NOT_MODIFIED` (304): a GET/HEAD whose `If-None-Match` ETag still matches
 *   (nothing changed). Not an error for the caller, but reported as one so
 *   that no body is ever mistaken for new content. Not retryable.
 */
export type StorageErrorCode =
  | 'BUCKET_NOT_FOUND'
  | 'NOT_FOUND'
  | 'ACCESS_DENIED'
  | 'INVALID_CREDENTIALS'
  | 'THROTTLED'
  | 'NETWORK'
  | 'PRECONDITION_FAILED'
  | 'CONFLICT'
  | 'NOT_MODIFIED'
  | 'STORAGE';

/**
 * A request to the object store failed. `retryable` tells whether trying again
 * later can help (throttling, 5xx, network) or not (access denied, missing bucket).
 */
export class StorageError extends SyncError {
  static {
    CLASS_IDS.set(this, 'StorageError');
  }

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

  /**
   * `options.cause` is stored as {@link sanitizeCause} returns it: an SDK
   * error becomes a copy without its raw response, credential fields or
   * signatures (same prototype, `name`, `$metadata` and `Code`).
   */
  constructor(
    code: StorageErrorCode,
    message: string,
    options: SyncErrorOptions & { statusCode?: number | undefined; retryable?: boolean; retriedBySdk?: boolean } = {},
  ) {
    super(code, message, options.cause === undefined ? options : { ...options, cause: sanitizeCause(options.cause) });
    this.statusCode = options.statusCode;
    this.retryable = options.retryable ?? false;
    this.retriedBySdk = options.retriedBySdk ?? false;
  }
}

/** A local filesystem operation failed. `code` is the errno code when there is one. */
export class LocalFileError extends SyncError {
  static {
    CLASS_IDS.set(this, 'LocalFileError');
  }

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
  static {
    CLASS_IDS.set(this, 'IntegrityError');
  }

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
 * Per file (never thrown by `pull()`/`push()`; it lands in `failedFiles`):
 * another writer changed the object since this instance last saw it, so the
 * push neither overwrote nor deleted it. Code: `CONFLICT`.
 */
export class ConflictError extends SyncError {
  static {
    CLASS_IDS.set(this, 'ConflictError');
  }

  readonly path: string;
  /** What was met (see `SyncResult.conflicts`). */
  readonly conflict: SyncConflict;

  constructor(conflict: SyncConflict, options: SyncErrorOptions = {}) {
    const now = conflict.currentEtag === null ? 'has no object there now' : conflict.currentEtag === undefined ? 'has changed' : `now holds version ${conflict.currentEtag}`;
    // `null`: no version to compare with -- no object when this instance looked, or (a push
    // without saved state) an object it has no record of syncing: either way not its own
    const saw =
      conflict.expectedEtag !== null ? `last saw version ${conflict.expectedEtag}`
      : conflict.action === 'upload' ? 'has no version of it on record (no object when it looked, or no saved state to compare with)'
      : 'saw no object';
    const what = conflict.action === 'upload' ? 'uploaded' : conflict.action === 'download' ? 'downloaded over the local changes' : 'deleted';
    const message =
      `Conflict: "${escapeForLog(conflict.path)}" was not ${what}: this instance ${saw}; ` +
      `the bucket ${now} (another writer). Nothing was changed; sync again with conflictPolicy ` +
      "'keep-local', 'keep-remote' or 'keep-both' to resolve it (the version replaced is saved, never lost).";
    super('CONFLICT', message, { ...options, details: { path: escapeForLog(conflict.path), expectedEtag: conflict.expectedEtag, currentEtag: conflict.currentEtag ?? 'unknown' } });
    this.path = conflict.path;
    this.conflict = conflict;
  }
}

/**
 * `waitForPull()` rejects with this when the pull finished but some files
 * failed: the workspace is not completely restored. `result` has the details.
 * Code: `INCOMPLETE`.
 */
export class IncompleteSyncError extends SyncError {
  static {
    CLASS_IDS.set(this, 'IncompleteSyncError');
  }

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
  static {
    CLASS_IDS.set(this, 'IncompletePathsError');
  }

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
  static {
    CLASS_IDS.set(this, 'GuardError');
  }

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
  static {
    CLASS_IDS.set(this, 'SyncAbortedError');
  }

  readonly result: import('./types.js').SyncResult;

  constructor(result: import('./types.js').SyncResult, reason: 'aborted' | 'timeout' | 'destroyed', cause?: unknown) {
    const done = result.downloadedFiles + result.uploadedFiles + result.deletedFiles;
    const how = reason === 'timeout' ? 'timed out' : reason === 'destroyed' ? 'was stopped by destroy()' : 'was aborted';
    super(
      reason === 'timeout' ? 'TIMEOUT' : reason === 'destroyed' ? 'DESTROYED' : 'ABORTED',
      `Sync ${how} after ${done} file operation(s) completed; a later sync finishes the job`,
      { cause, details: { completed: done } },
    );
    this.name = 'AbortError';
    this.result = result;
  }
}

/** Who holds a workspace lock, as its lock file says (`undefined` where the file does not say: a garbage or unreadable lock). */
export interface WorkspaceLockHolder {
  /** Process id of the holder, on its host. */
  readonly pid: number | undefined;
  /** `os.hostname()` of the holder. */
  readonly host: string | undefined;
  /** When the holder took the lock (ISO 8601). */
  readonly startedAt: string | undefined;
}

/**
 * Another process holds the workspace's lock (`<workspaceDir>/.s3-workspace-sync/lock`)
 * and did not release it within the time waited for it, or a lock this process
 * held was taken over (see `LockHandle.lost`). `holder` says who holds it,
 * `lockPath` where it is. Code: `WORKSPACE_LOCKED`.
 *
 * @example
 * if (err instanceof WorkspaceLockedError) console.error(`busy: pid ${err.holder.pid} on ${err.holder.host}`);
 */
export class WorkspaceLockedError extends SyncError {
  static {
    CLASS_IDS.set(this, 'WorkspaceLockedError');
  }

  declare readonly code: 'WORKSPACE_LOCKED';
  /** The holder, as its lock file says (fields escaped for logs). */
  readonly holder: WorkspaceLockHolder;
  /** Absolute path of the lock file (the workspace's real path). */
  readonly lockPath: string;

  constructor(lockPath: string, holder: WorkspaceLockHolder, options: SyncErrorOptions & { message?: string; waitedMs?: number } = {}) {
    const shown: WorkspaceLockHolder = {
      pid: holder.pid,
      host: holder.host === undefined ? undefined : escapeForLog(holder.host),
      startedAt: holder.startedAt === undefined ? undefined : escapeForLog(holder.startedAt),
    };
    const who =
      shown.pid === undefined && shown.host === undefined
        ? 'an unknown holder (its lock file is unreadable, or still being written)'
        : `pid ${shown.pid ?? '?'} on ${shown.host ?? '?'} since ${shown.startedAt ?? '?'}`;
    const waited = options.waitedMs === undefined ? '' : ` (waited ${Math.round(options.waitedMs)} ms)`;
    const message = options.message ?? `The workspace is being synced by another process: ${who}; lock ${escapeForLog(lockPath)}${waited}`;
    super('WORKSPACE_LOCKED', message, {
      ...(options.cause === undefined ? {} : { cause: options.cause }),
      details: {
        lockPath: escapeForLog(lockPath),
        holder: shown,
        ...(options.waitedMs === undefined ? {} : { waitedMs: Math.round(options.waitedMs) }),
        ...options.details,
      },
    });
    this.holder = shown;
    this.lockPath = lockPath;
  }
}

/**
 * Fields that S3-compatible servers echo in error bodies (and the SDK copies
 * onto the exception) holding the access key id or what was signed. Any
 * provider's key id is redacted by its field name, not only by the AWS
 * `AKIA…`/`ASIA…` shape: s3rver's is `S3RVER`, R2's and MinIO's are arbitrary.
 */
const SIGNING_FIELDS = 'AWSAccessKeyId|aws_access_key_id|access_?key_?id|SignatureProvided|StringToSign(?:Bytes)?|CanonicalRequest(?:Bytes)?';

const SECRET_PATTERNS: Array<[RegExp, string | ((match: string, ...groups: string[]) => string)]> = [
  // <AWSAccessKeyId>S3RVER</AWSAccessKeyId>, <StringToSign>…</StringToSign> (XML error bodies)
  [new RegExp(`<(${SIGNING_FIELDS})>[\\s\\S]*?</\\1\\s*>`, 'gi'), '<$1>[redacted]</$1>'],
  // AWSAccessKeyId: 'S3RVER', "AWSAccessKeyId":"S3RVER", accessKeyId=minio (inspected or serialised objects)
  [
    new RegExp(`\\b(${SIGNING_FIELDS})(["']?\\s*[:=]\\s*)("(?:\\\\.|[^"\\\\])*"|'(?:\\\\.|[^'\\\\])*'|[^\\s"',;&<>}\\]]+)`, 'gi'),
    (_m, field: string, sep: string, value: string) => {
      const quote = value.startsWith('"') || value.startsWith("'") ? value[0] : '';
      return `${field}${sep}${quote}[redacted]${quote}`;
    },
  ],
  [/(X-Amz-(?:Signature|Credential|Security-Token))=[^&\s"'<]+/gi, '$1=[redacted]'],
  [/(Signature|Credential|SignedHeaders)=[^,&\s"'<]+/g, '$1=[redacted]'],
  [/(Authorization|x-amz-security-token)(["']?\s*[:=]\s*["']?)[^"'\n,}]+/gi, '$1$2[redacted]'],
  [/\b(?:AKIA|ASIA)[A-Z0-9]{16}\b/g, '[redacted-access-key]'],
  [/(aws_secret_access_key|secretAccessKey|SecretAccessKey)(["']?\s*[:=]\s*["']?)[^"'\s,}]+/gi, '$1$2[redacted]'],
];

/**
 * A conditional write or delete refused because its condition no longer
 * holds: 412 (`If-Match` / `If-None-Match`), or 409 (a conditional write
 * racing another on the same key).
 */
export function isConditionRefused(error: unknown): boolean {
  return error instanceof StorageError && (error.code === 'PRECONDITION_FAILED' || error.code === 'CONFLICT');
}

/**
 * Remove anything that looks like a credential, signature or Authorization
 * header from a message (errors from servers and proxies sometimes echo them):
 * AWS-shaped access key ids anywhere, and any provider's key id, signature,
 * string-to-sign or canonical request where a field names it
 * (`<AWSAccessKeyId>…</AWSAccessKeyId>`, `AWSAccessKeyId: "…"`, `accessKeyId=…`).
 */
export function redactSecrets(message: string): string {
  let out = message;
  for (const [pattern, replacement] of SECRET_PATTERNS) {
    // (two overloads of String#replace: one for a string, one for a function)
    out = typeof replacement === 'string' ? out.replace(pattern, replacement) : out.replace(pattern, replacement);
  }
  return out;
}

/**
 * Properties whose values are credentials or signatures. A cause never keeps
 * them, and their values are scrubbed from whatever it keeps (message, stack,
 * other fields), whatever their shape.
 */
const SECRET_PROPERTY =
  /^(?:AWSAccessKeyId|aws_?access_?key_?id|access_?key_?id|SignatureProvided|Signature|StringToSign(?:Bytes)?|CanonicalRequest(?:Bytes)?|aws_?secret_?access_?key|secret_?access_?key|(?:aws_?)?session_?token|security_?token|x-amz-security-token|authorization|x-amz-credential|x-amz-signature|credentials?|password|token)$/i;

/**
 * What a sanitized cause keeps: the fields that say what failed, none that
 * can hold a credential. Strings among them are redacted too.
 */
const KEPT_PROPERTIES = [
  '$fault',
  'Code',
  'code',
  'RequestId',
  'HostId',
  'BucketName',
  'Bucket',
  'Key',
  'Resource',
  'Region',
  'Endpoint',
  'Condition',
  'errno',
  'syscall',
  'address',
  'port',
  'statusCode',
  'status',
] as const;
const KEPT_METADATA = ['httpStatusCode', 'requestId', 'extendedRequestId', 'cfId', 'attempts', 'totalRetryDelay'] as const;

const sanitized = new WeakSet<object>();

/** Shortest value scrubbed literally (shorter ones would garble messages). */
const MIN_SCRUBBED_LENGTH = 3;
const MAX_CAUSE_DEPTH = 4;

/**
 * A copy of an error (typically an SDK exception) that is safe to keep as
 * `cause`, log, inspect or serialise: its `name`, redacted `message` and
 * `stack` frames, `$metadata` (HTTP status, request ids, attempts), `$fault`,
 * `$retryable`, `Code`, network fields (`code`, `errno`, `syscall`) and its
 * own sanitized `cause` / `errors`. Dropped: `$response` (headers and body),
 * `$responseBodyText`, and every field the server echoed from the signing
 * process (`AWSAccessKeyId`, `SignatureProvided`, `StringToSign*`,
 * `CanonicalRequest*`); their values are also scrubbed from what is kept. The
 * copy keeps the original's prototype, so `instanceof NoSuchKey` still holds.
 * A {@link SyncError} is returned as is (its causes were sanitized when it was
 * made), a string is redacted, any other non-object value is returned as is.
 *
 * @example
 * const cause = sanitizeCause(sdkError);
 * cause.name;                        // 'InvalidAccessKeyId'
 * cause.$metadata.httpStatusCode;    // 403
 * cause.AWSAccessKeyId;              // undefined
 */
export function sanitizeCause<T>(error: T): T;
export function sanitizeCause(error: unknown): unknown {
  return sanitizeValue(error, [], 0);
}

function sanitizeValue(value: unknown, inherited: readonly string[], depth: number): unknown {
  if (typeof value === 'string') return scrub(value, inherited);
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof SyncError || sanitized.has(value)) return value;
  if (depth > MAX_CAUSE_DEPTH) return undefined;

  const source = value as Record<string, unknown>;
  const secrets = [...inherited, ...secretValuesOf(source)];
  const read = (key: string): unknown => {
    try {
      return source[key];
    } catch {
      return undefined;
    }
  };
  const name = typeof read('name') === 'string' ? (read('name') as string) : 'Error';
  const message = scrub(typeof read('message') === 'string' ? (read('message') as string) : String(read('message') ?? ''), secrets);

  const copy = new Error(message) as Error & Record<string, unknown>;
  if (value instanceof Error) {
    try {
      Object.setPrototypeOf(copy, Object.getPrototypeOf(value));
    } catch {
      // a frozen or exotic prototype: a plain Error with the same name will do
    }
  }
  // Own data properties, not assignments: an inherited getter-only `name` (DOMException) would throw.
  const own = (key: string, v: unknown, enumerable = false): void => {
    Object.defineProperty(copy, key, { value: v, writable: true, configurable: true, enumerable });
  };
  own('name', name, true);
  const stack = read('stack');
  const frames = typeof stack === 'string' ? stack.split('\n').filter((line) => /^\s+at /.test(line)) : [];
  own('stack', scrub([`${name}: ${message}`, ...frames].join('\n'), secrets));
  if (Object.getOwnPropertyDescriptor(copy, 'message') === undefined) own('message', message);

  for (const key of KEPT_PROPERTIES) {
    const v = read(key);
    if (typeof v === 'string') own(key, scrub(v, secrets), true);
    else if (typeof v === 'number' || typeof v === 'boolean') own(key, v, true);
  }
  const metadata = read('$metadata');
  if (typeof metadata === 'object' && metadata !== null) {
    const kept: Record<string, unknown> = {};
    for (const key of KEPT_METADATA) {
      const v = (metadata as Record<string, unknown>)[key];
      if (typeof v === 'string') kept[key] = scrub(v, secrets);
      else if (typeof v === 'number') kept[key] = v;
    }
    own('$metadata', kept, true);
  }
  const retryable = read('$retryable');
  if (typeof retryable === 'object' && retryable !== null) {
    own('$retryable', { throttling: (retryable as { throttling?: unknown }).throttling === true }, true);
  }
  const cause = read('cause');
  if (cause !== undefined) {
    Object.defineProperty(copy, 'cause', { value: sanitizeValue(cause, secrets, depth + 1), writable: true, configurable: true });
  }
  const errors = read('errors');
  if (Array.isArray(errors)) own('errors', errors.slice(0, 16).map((e) => sanitizeValue(e, secrets, depth + 1)), true);
  sanitized.add(copy);
  return copy;
}

/** Values of credential-bearing properties of an error and of its `$response` headers. */
function secretValuesOf(source: Record<string, unknown>): string[] {
  const out: string[] = [];
  const collect = (holder: unknown): void => {
    if (typeof holder !== 'object' || holder === null) return;
    let names: string[];
    try {
      names = Object.getOwnPropertyNames(holder);
    } catch {
      return;
    }
    for (const key of names) {
      if (!SECRET_PROPERTY.test(key)) continue;
      let v: unknown;
      try {
        v = (holder as Record<string, unknown>)[key];
      } catch {
        continue;
      }
      if (typeof v === 'string' && v.length >= MIN_SCRUBBED_LENGTH) out.push(v);
      else if (Array.isArray(v)) for (const item of v) if (typeof item === 'string' && item.length >= MIN_SCRUBBED_LENGTH) out.push(item);
    }
  };
  collect(source);
  try {
    const response = source.$response as { headers?: unknown } | undefined;
    collect(response?.headers);
  } catch {
    // an exotic $response: nothing to collect
  }
  // Longest first, so that a value containing another is removed whole.
  return out.sort((a, b) => b.length - a.length);
}

function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join('[redacted]');
  return redactSecrets(out);
}

/**
 * Codes carried by {@link GitError}:
 * - `GIT_UNAVAILABLE`: no `git` executable (not installed, not on `PATH`, or
 *   the configured binary path does not exist or cannot run).
 * - `GIT_FAILED`: a `git` command exited with an error; `details.args`,
 *   `details.exitCode` and `details.stderr` (redacted, shortened) say which.
 * - `GIT_TIMEOUT`: a `git` command ran longer than its timeout and was killed.
 * - `GIT_ABORTED`: the caller's `AbortSignal` fired (`name` is `'AbortError'`).
 * - `GIT_EXISTS`: a restore found a `.git` already in the workspace; nothing
 *   was changed.
 * - `GIT_NOT_A_REPOSITORY`: the workspace has no `.git/` directory holding a
 *   repository.
 * - `GIT_UNSUPPORTED`: a layout this module does not carry: `.git` is a file
 *   (a linked worktree or a submodule checkout) or a symlink, or a reftable
 *   repository.
 * - `GIT_INVALID_SIDECAR`: the sidecar JSON is malformed, of another schema
 *   version, or names something unsafe (a hook path with `/`, a bad ref name).
 * - `GIT_BUNDLE_MISMATCH`: the bundle file is not the one the sidecar
 *   describes (size or SHA-256 differ), or is missing when one is required.
 */
export type GitErrorCode =
  | 'GIT_UNAVAILABLE'
  | 'GIT_FAILED'
  | 'GIT_TIMEOUT'
  | 'GIT_ABORTED'
  | 'GIT_EXISTS'
  | 'GIT_NOT_A_REPOSITORY'
  | 'GIT_UNSUPPORTED'
  | 'GIT_INVALID_SIDECAR'
  | 'GIT_BUNDLE_MISMATCH';

/**
 * A git repository could not be bundled, restored or inspected. Extends
 * {@link SyncError}, so `isSyncError(err)` holds and `code`/`details` are
 * there; `code` says how to react (see {@link GitErrorCode}). With
 * `git: 'bundle'` a sync reports it as one `failedFiles` entry at path
 * `.git/` (its code) and goes on: the files are synced whatever happens to
 * the repository. A missing `git` is only a warning in the log.
 *
 * @example
 * try {
 *   await restoreRepository(dir, bundle, sidecar);
 * } catch (err) {
 *   if (err instanceof GitError && err.code === 'GIT_EXISTS') return; // leave the user's .git alone
 *   throw err;
 * }
 */
export class GitError extends SyncError {
  static {
    CLASS_IDS.set(this, 'GitError');
  }

  declare readonly code: GitErrorCode;

  constructor(code: GitErrorCode, message: string, options: SyncErrorOptions = {}) {
    super(code, escapeForLog(redactSecrets(message)), options);
    if (code === 'GIT_ABORTED') this.name = 'AbortError';
  }
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

/**
 * Error codes of a connection that broke while a request or its body was
 * under way (reset, broken pipe, timed out, stream closed early): a fresh
 * request may well succeed.
 */
export const BROKEN_CONNECTION_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);

/** Every network error code: a broken connection, or one that could not be made (refused, name not resolved). */
export const NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([...BROKEN_CONNECTION_CODES, 'ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);
