import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { join, resolve, sep } from 'node:path';
import { availableParallelism } from 'node:os';
import { S3Client } from '@aws-sdk/client-s3';
import { normalizePrefix } from './core/paths.js';
import { ConfigError, escapeForLog, type PathValidationError } from './errors.js';
import { closestName, describeValue, MAX_SHOWN } from './option-checks.js';
import { DEFAULT_STALL_TIMEOUT_MS } from './storage/stall.js';
import { checkUploadParams, type CheckedUploadParams, type UploadParamsOption } from './upload-params.js';
import { createDefaultLogger } from './logger.js';
import type { ConflictPolicy, SyncLogger } from './types.js';
import { guessContentType } from './core/content-type.js';
import { STATE_DIR_NAME } from './core/names.js';
import { MAX_PART_SIZE, MIN_PART_SIZE } from './core/multipart.js';
import { DEFAULT_MAX_ATTEMPTS } from './core/backoff.js';

export { DEFAULT_MAX_ATTEMPTS };

/**
 * Options of `new S3WorkspaceSync(options)`. All are checked when the
 * instance is created (see {@link resolveOptions}): a missing required option,
 * a value of the wrong type or out of range, or an unknown key throws a
 * `ConfigError`. A key whose value is `undefined` counts as absent.
 */
export interface S3WorkspaceSyncOptions {
  /**
   * Bucket name. Required. 3–63 letters, digits, dots, hyphens or
   * underscores, starting and ending with a letter or digit; or an ARN
   * (`arn:…`, e.g. an access point), used as it is. An S3 URL
   * (`s3://bucket/prefix`) or `bucket/prefix` is refused with the
   * `bucket` and `prefix` to write instead.
   */
  bucket: string;
  /**
   * Key prefix the workspace maps to, e.g. `users/u1/workspace/`. Normalised to
   * end in `/` (so `users/u1` never touches `users/u10/…`); `''` is the bucket root.
   */
  prefix: string;
  /** Local directory of the workspace. Created by `pull()` when missing. Required. */
  workspaceDir: string;
  /** Region of the client the library builds. Default: `process.env.AWS_REGION` or `us-east-1`. */
  region?: string | undefined;
  /**
   * A pre-built client (custom endpoint, credentials, R2, MinIO…). When omitted
   * the library builds one with keep-alive sockets sized to the concurrency.
   */
  s3Client?: S3Client | undefined;
  /** Parallel downloads during `pull()`. Default 50. Sockets used ≤ this number; memory ≤ this × 1 MiB (small bodies are verified in memory). */
  downloadConcurrency?: number | undefined;
  /** Parallel uploads during `push()`. Default 10. Memory ≤ this × 8 MiB for buffered small files. */
  uploadConcurrency?: number | undefined;
  /** Diagnostics sink. Default: console, `info` and above. */
  logger?: SyncLogger | undefined;
  /** Extra gitignore-style patterns, applied after the workspace's `.syncignore`. */
  ignorePatterns?: readonly string[] | undefined;
  /** Content-Type for an uploaded file (gets the workspace-relative path). Default: {@link guessContentType}. */
  contentTypeResolver?: ((filename: string) => string) | undefined;
  /**
   * Deletion guard. An integer ≥ 0 is a count, a number between 0 and 1 a
   * fraction of the tree (local synced files for pull, synced objects for
   * push); a sync that would delete more is refused with a `GuardError` before
   * anything changes. `Infinity` disables it. Default: refuse to delete more
   * than 50% of a tree of more than 10 files.
   */
  maxDeletes?: number | undefined;
  /** Refuse (with a `GuardError`, before anything changes) a sync that would transfer more bytes. Default: no limit. */
  maxTotalBytes?: number | undefined;
  /**
   * Let `pull()` mirror an empty listing, deleting every local synced file.
   * Default `false`: an empty listing while local files would be deleted is
   * refused (`GuardError` `EMPTY_REMOTE`) — the classic mistyped-prefix wipe.
   */
  allowEmptyRemote?: boolean | undefined;
  /**
   * Remote wins: `pull()` overwrites and deletes files created or modified
   * locally since this instance's last sync. Default `false`: they are kept and
   * reported in `keptLocal` (possible unpushed work).
   */
  overwriteLocalChanges?: boolean | undefined;
  /**
   * What a sync does where both sides changed a path since this instance
   * last synced it (push: another writer changed the bucket since this
   * instance last saw it, or, for an instance without a snapshot, the bucket
   * has other content at a path; pull: a file modified locally whose object
   * changed too). Nothing is ever lost: a version about to be replaced is
   * saved first.
   * - `'fail'` (default): report the conflict in `result.conflicts` (and
   *   `failedFiles`, code `CONFLICT`), change neither side.
   * - `'keep-local'`: the local file wins; the other writer's version is saved
   *   into `<prefix>.s3-workspace-sync/conflicts/` (a server-side copy), then
   *   replaced on condition that it is still the version just seen. A pull
   *   keeps the file in place for the next push.
   * - `'keep-remote'`: the bucket's version wins; the local bytes are saved
   *   into the conflicts area and the local file is moved into the recovery
   *   area, then the remote version is downloaded in its place.
   * - `'keep-both'`: the remote version stays at the path; the local file is
   *   renamed to a conflict copy (`notes (conflict 2026-12-06 054103 host).md`)
   *   that a push uploads as a new object.
   * Every write a push makes is conditional (`If-Match` / `If-None-Match`),
   * where the server enforces it.
   */
  conflictPolicy?: ConflictPolicy | undefined;
  /** Attempts per request and per file transfer, the first included. Default 3. */
  maxAttempts?: number | undefined;
  /** Abort a sync that runs longer than this (ms), as if its `signal` fired. Default: none. */
  timeoutMs?: number | undefined;
  /** Sent as `ExpectedBucketOwner` (account id) on every request: S3 refuses with 403 if the bucket belongs to another account. */
  expectedBucketOwner?: string | undefined;
  /**
   * Files at or above this size are uploaded in parts (multipart upload) and
   * downloaded as parallel ranged GETs. Default 16 MiB; at least 5 MiB.
   */
  multipartThreshold?: number | undefined;
  /**
   * Part (and range) size. Default 8 MiB, at least 5 MiB; grown automatically
   * so a file never needs more than 10,000 parts.
   */
  partSize?: number | undefined;
  /**
   * Parts and ranges in flight at once across the whole sync. Memory for large
   * files ≤ partConcurrency × partSize (default 8 × 8 MiB = 64 MiB). Default 8.
   */
  partConcurrency?: number | undefined;
  /**
   * When set, each push first aborts this prefix's multipart uploads started
   * more than this many hours ago (left by crashed processes; their parts are
   * billed). Best effort: a server without ListMultipartUploads is skipped.
   * Prefer the bucket lifecycle rule `AbortIncompleteMultipartUpload`.
   */
  abortStaleUploadsAfterHours?: number | undefined;
  /**
   * Worker threads computing the MD5s of large files (at or above
   * `multipartThreshold`) while they transfer, so hashing never stalls the
   * network. Default: one less than the CPUs available, between 1 and 4.
   * `0` hashes on the calling thread. Each thread costs ~10 MB of memory
   * while in use and ends after 10 s idle.
   */
  hashThreads?: number | undefined;
  /**
   * Read each file once more before its multipart upload to store its whole
   * MD5 as `md5chksum` metadata (rclone does this by default; its
   * `--s3-disable-checksum` turns it off). Default `false`: a large file is
   * read once, and the object is identified by its multipart ETag and
   * `partsize` metadata, which this library checks on every download.
   */
  prehashMultipart?: boolean | undefined;
  /**
   * Keep the sync state (per file: size, mtime, ctime, inode, MD5, ETag) in a
   * file, so a new process on the same workspace (a Lambda cold start on a warm
   * `/tmp`, a restarted container) re-hashes only files whose stat changed and
   * pushes without listing the bucket. Default `true`; `false` keeps it in
   * memory only (every new instance starts fresh and mirrors the bucket).
   */
  persistState?: boolean | undefined;
  /**
   * Directory of the state file. Default `<workspaceDir>/.s3-workspace-sync`,
   * which is never synced. Elsewhere inside the workspace it is refused
   * (it would be uploaded); outside it, the file is still bound to this
   * workspace directory (real path and inode) and ignored for any other.
   */
  stateDir?: string | undefined;
  /**
   * S3 settings for every object a push writes — SSE-KMS key, storage class,
   * `Cache-Control`, ACL, tags, metadata… — fixed, or per file from a function
   * (`({ path, size }) => params | undefined`). Applied to single-request and
   * multipart uploads alike. Default: none (the bucket's defaults apply).
   * @see UploadParams
   */
  uploadParams?: UploadParamsOption | undefined;
  /**
   * SSE-C: a 256-bit key (32 characters, or its base64) the objects are
   * encrypted with on the server. Sent with every upload, download and HEAD
   * (the SDK adds its MD5); objects written without it cannot be read with it,
   * and the other way round. Keep it out of logs: the library never prints it.
   */
  sseCustomerKey?: string | undefined;
  /**
   * A request that moves no data for this long (ms) is abandoned and tried
   * again; after `maxAttempts` stalled attempts the file fails (a listing:
   * the sync rejects) with `StorageError` `NETWORK`. An idle timeout, reset by
   * every chunk, never a limit on a transfer's total time. Works with any
   * `s3Client`, even one built without timeouts. `0`: no watchdog of the
   * library's own (only for a client with its own socket timeout). Default
   * 20000 (`DEFAULT_STALL_TIMEOUT_MS`); 0 or 100–3,600,000.
   */
  stallTimeoutMs?: number | undefined;
  /**
   * How long a `pull()` or `push()` waits (ms) while another process — or
   * another instance — syncs the same workspace directory, before it rejects
   * with `WorkspaceLockedError` (code `WORKSPACE_LOCKED`). Syncs of one
   * workspace take an advisory lock, `<workspaceDir>/.s3-workspace-sync/lock`,
   * so two never run at once; a lock left by a crashed process is taken over
   * (at once on the same machine, after 60 s without heartbeat otherwise).
   * `0`: do not wait. Dry runs and `plan()` take no lock. Default 60000
   * (`DEFAULT_LOCK_WAIT_MS`); 0 to 2,147,483,647.
   */
  lockWaitMs?: number | undefined;
  /**
   * Refuse to push (a `SyncError` of code `CONDITIONAL_WRITES_UNSUPPORTED`,
   * before anything is written) unless the server is shown to enforce
   * conditional writes, without which another writer's changes can be
   * overwritten unseen. Checked once per process and bucket, by the first
   * push that writes: 2 PUTs and 1 delete of a scratch object in
   * `<prefix>.s3-workspace-sync/`. Default `false`. See
   * `checkConditionalWrites()`.
   */
  requireConditionalWrites?: boolean | undefined;
  /**
   * How long a sync waits (ms) for another process's push to the same prefix
   * to commit, before it rejects with a `SyncError` of code
   * `PUSH_IN_PROGRESS` (nothing changed). A pull that meets a push in
   * progress waits for its commit so that it returns one whole version, not
   * a mix; a push waits for the other push's lease. A lease its holder
   * stopped renewing (a crashed process) expires after 30 s. `0`: do not
   * wait. Default 60000 (`DEFAULT_WAIT_FOR_PUSH_MS`); 0 to 2,147,483,647.
   */
  waitForPushMs?: number | undefined;
  /**
   * Pull from the committed manifest (`<prefix>.s3-workspace-sync/manifest.json`)
   * instead of listing the prefix: one conditional GET (a 304 when nothing
   * was committed since this instance last looked) instead of one LIST per
   * 1,000 objects. Only objects committed by pushes of this library are
   * seen: files that other tools upload into the prefix are not, until a
   * push of this library commits them. Without a manifest the pull lists, as
   * usual. Default `false`.
   */
  trustManifest?: boolean | undefined;
  /**
   * How GetObject (whole and ranged), ListObjectsV2 and single-request
   * PutObject of files sent from memory (under 2 MiB, below the SDK's
   * `Expect: 100-continue` threshold) reach the server.
   * - `'auto'` (default): through a lean path — the client's own signer, credentials,
   *   clock offset, endpoint resolution and keep-alive agent, without the
   *   SDK's middleware pipeline (about 1 ms less CPU per request here) —
   *   where that sends exactly what the SDK would: the client the library
   *   builds, or your own client when it carries only the SDK's stock
   *   middleware and its stock HTTP handler, on a plain endpoint (no ARN,
   *   S3 Express, accelerate or dual-stack). Elsewhere, and for every answer
   *   but a success, a 304 or (to a download or an upload) a 404, 409 or 412
   *   (given back as the SDK's own error), the request goes through
   *   `client.send()` as with `'sdk'`, so the SDK's retries, typed errors,
   *   clock-skew correction and redirects apply; a failure on the way or a
   *   stall counts as the request's first attempt. Listing pages are read by a small XML reader. HEAD, deletes,
   *   copies and multipart uploads always use the SDK.
   * - `'sdk'`: every request through `client.send()`.
   */
  transport?: 'auto' | 'sdk' | undefined;
  /**
   * Keep the workspace's git repository (`<workspaceDir>/.git/`) too, as one
   * `git bundle` plus a sidecar JSON under `<prefix>.s3-workspace-sync/git/`.
   * - `'off'` (default): `.git/` is ignored, as it always was.
   * - `'bundle'`: a push saves the repository when its refs, index, config or
   *   hooks changed since the last bundle this workspace wrote (two `git`
   *   commands when nothing changed); a pull into a workspace without `.git`
   *   restores it, under the pulled files, so uncommitted changes survive. A
   *   `.git` that is already there is never replaced.
   * Needs `git` on the machine (see `gitBinary`); without it a warning is
   * logged and the files are synced as usual. See README, "Git repositories".
   */
  git?: 'bundle' | 'off' | undefined;
  /**
   * The `git` executable used when `git` is `'bundle'`: a name looked up on
   * `PATH`, or a path. Default `'git'`.
   */
  gitBinary?: string | undefined;
}

/**
 * Per-call options of `pull()`, `push()` and `plan()`. The guard options
 * override the instance's for this call. Checked like the constructor's
 * options (unknown keys included) before the call makes any request: a bad
 * one rejects the call with a `ConfigError`.
 */
export interface SyncCallOptions {
  /** Abort the sync: in-flight transfers stop, no partial file remains, the promise rejects with `SyncAbortedError`. */
  signal?: AbortSignal | undefined;
  /** Compute and return the plan (`result.plan`) without changing anything. */
  dryRun?: boolean | undefined;
  maxDeletes?: number | undefined;
  maxTotalBytes?: number | undefined;
  allowEmptyRemote?: boolean | undefined;
  overwriteLocalChanges?: boolean | undefined;
  conflictPolicy?: ConflictPolicy | undefined;
  /**
   * Transfer these workspace paths first, in this order: a file, or a
   * directory with everything under it (`'config/'`, `'.agents/'`). The rest
   * follows. With `startBackgroundPull()`, `waitForPaths()` resolves as soon
   * as they are restored.
   */
  priority?: readonly string[] | undefined;
  /**
   * Push only: the workspace paths that may have changed since this
   * instance's last sync — files, or directories with everything under them
   * (`'src/'`); created, modified and deleted ones alike. The push looks at
   * these paths only and takes every other file as unchanged, so its cost
   * grows with the change, not with the tree. Watch mode passes what the
   * watcher saw. A path left out is not pushed: name every change. Ignored
   * without a snapshot (a first push looks at everything), or when
   * `.syncignore` is among them (the rules changed).
   */
  changedPaths?: readonly string[] | undefined;
}

/** Options after defaults and validation. */
export interface ResolvedOptions {
  bucket: string;
  prefix: string;
  workspaceDir: string;
  region: string;
  downloadConcurrency: number;
  uploadConcurrency: number;
  logger: SyncLogger;
  ignorePatterns: readonly string[];
  contentTypeResolver: (filename: string) => string;
  client: S3Client;
  /** Whether the library built (and owns) the client. */
  ownsClient: boolean;
  maxDeletes: number | undefined;
  maxTotalBytes: number;
  allowEmptyRemote: boolean;
  overwriteLocalChanges: boolean;
  conflictPolicy: ConflictPolicy;
  maxAttempts: number;
  timeoutMs: number | undefined;
  expectedBucketOwner: string | undefined;
  multipartThreshold: number;
  partSize: number;
  partConcurrency: number;
  abortStaleUploadsAfterHours: number | undefined;
  hashThreads: number;
  prehashMultipart: boolean;
  /** Where the state file lives; `undefined`: memory only. */
  stateDir: string | undefined;
  /** Upload settings of one file (checked), or `undefined`. */
  uploadParams: ((file: { path: string; size: number }) => CheckedUploadParams | undefined) | undefined;
  /** SSE-C parameters sent with every object request, or `undefined`. */
  sseCustomer: { SSECustomerAlgorithm: 'AES256'; SSECustomerKey: string } | undefined;
  /** Idle time after which a request is abandoned (0: the client's own timeouts only). */
  stallTimeoutMs: number;
  /** How long a sync waits for another sync of the same workspace (ms). */
  lockWaitMs: number;
  requireConditionalWrites: boolean;
  /** How long a sync waits for another process's push to commit (ms). */
  waitForPushMs: number;
  trustManifest: boolean;
  /** GetObject and single-request PutObject: `'auto'` (the fast path where safe) or `'sdk'`. */
  transport: 'auto' | 'sdk';
  /** `'bundle'`: push and pull carry the workspace's git repository (see `pipeline/git.ts`). */
  git: 'bundle' | 'off';
  /** The `git` executable. */
  gitBinary: string;
}

export const DEFAULT_MULTIPART_THRESHOLD = 16 * 1024 * 1024;
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
export const DEFAULT_PART_CONCURRENCY = 8;

export const DEFAULT_DOWNLOAD_CONCURRENCY = 50;
/** How long a sync waits for another sync of the same workspace, by default (ms). */
export const DEFAULT_LOCK_WAIT_MS = 60_000;
/** How long a sync waits for another process's push to the prefix to commit, by default (ms). */
export const DEFAULT_WAIT_FOR_PUSH_MS = 60_000;
export const DEFAULT_UPLOAD_CONCURRENCY = 10;
/** Idle time after which a socket that stopped moving bytes fails the request. */
export const SOCKET_TIMEOUT_MS = 60_000;
export const CONNECTION_TIMEOUT_MS = 10_000;

/** Longest `setTimeout` delay Node honours; a larger `timeoutMs` would fire at once. */
const MAX_TIMEOUT_MS = 2_147_483_647;

/**
 * Every option `new S3WorkspaceSync()` knows. A record rather than a list, so
 * the compiler fails when an option is added to {@link S3WorkspaceSyncOptions}
 * and not here (or the other way round).
 */
const CONSTRUCTOR_OPTIONS: Record<keyof S3WorkspaceSyncOptions, true> = {
  bucket: true,
  prefix: true,
  workspaceDir: true,
  region: true,
  s3Client: true,
  downloadConcurrency: true,
  uploadConcurrency: true,
  logger: true,
  ignorePatterns: true,
  contentTypeResolver: true,
  maxDeletes: true,
  maxTotalBytes: true,
  allowEmptyRemote: true,
  overwriteLocalChanges: true,
  conflictPolicy: true,
  maxAttempts: true,
  timeoutMs: true,
  expectedBucketOwner: true,
  multipartThreshold: true,
  partSize: true,
  partConcurrency: true,
  abortStaleUploadsAfterHours: true,
  hashThreads: true,
  prehashMultipart: true,
  persistState: true,
  stateDir: true,
  uploadParams: true,
  sseCustomerKey: true,
  stallTimeoutMs: true,
  lockWaitMs: true,
  requireConditionalWrites: true,
  waitForPushMs: true,
  trustManifest: true,
  transport: true,
  git: true,
  gitBinary: true,
};

/** Every option of one `pull()`, `push()` or `plan()` call (see {@link CONSTRUCTOR_OPTIONS}). */
const CALL_OPTIONS: Record<keyof SyncCallOptions, true> = {
  signal: true,
  dryRun: true,
  maxDeletes: true,
  maxTotalBytes: true,
  allowEmptyRemote: true,
  overwriteLocalChanges: true,
  conflictPolicy: true,
  priority: true,
  changedPaths: true,
};

const CONSTRUCTOR = 'new S3WorkspaceSync()';
const CALLS = 'pull(), push() and plan()';
const LOG_METHODS = ['debug', 'info', 'warn', 'error'] as const;

/** An option as the caller passed it: anything, since JavaScript callers are not type-checked. */
type Raw = Record<string, unknown>;

/**
 * Validate user options and fill in defaults, in one place. Every option's
 * type and range is checked here, at construction, so a mistake fails at once
 * with a message that names the option and shows the value (a string quoted
 * and shortened; an object only as `an object`, never its contents) instead
 * of failing later, inside a request. An option whose value is `undefined`
 * counts as absent.
 *
 * @throws {ConfigError} (`code` `CONFIG`, `details: { option, value }`) for a
 *   missing required option, a value of the wrong type or out of range, or an
 *   unknown option (with a "did you mean" hint for a near miss).
 * @example
 * resolveOptions({ bucket: 'my-bucket', prefix: 'users/u1', workspaceDir: '/tmp/ws', downloadConcurrency: '5' });
 * // ConfigError: `downloadConcurrency` must be an integer from 1 to 1000 (got "5")
 */
export function resolveOptions(options: S3WorkspaceSyncOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw invalid('options', options, `of ${CONSTRUCTOR} must be an object`);
  }
  const o = options as unknown as Raw;
  rejectUnknown(o, CONSTRUCTOR_OPTIONS, CALL_OPTIONS, CALLS);
  const bucket = checkBucket(o.bucket, o.prefix);
  const prefix = checkPrefix(o.prefix);
  const workspaceDir = resolve(checkWorkspaceDir(o.workspaceDir));
  const region = checkRegion(o.region) ?? (process.env.AWS_REGION || 'us-east-1');
  const s3Client = checkClient(o.s3Client);
  const downloadConcurrency = integer(o, 'downloadConcurrency', 1, 1000) ?? DEFAULT_DOWNLOAD_CONCURRENCY;
  const uploadConcurrency = integer(o, 'uploadConcurrency', 1, 1000) ?? DEFAULT_UPLOAD_CONCURRENCY;
  const logger = checkLogger(o.logger);
  const ignorePatterns = stringArray(o, 'ignorePatterns') ?? [];
  const contentTypeResolver = checkFunction(o, 'contentTypeResolver', 'must be a function (path) => content type') as
    | ((filename: string) => string)
    | undefined;
  const guards = guardOptions(o);
  const allowEmptyRemote = boolean(o, 'allowEmptyRemote') ?? false;
  const overwriteLocalChanges = boolean(o, 'overwriteLocalChanges') ?? false;
  const conflictPolicy = checkConflictPolicy(o) ?? 'fail';
  const maxAttempts = integer(o, 'maxAttempts', 1, 1000) ?? DEFAULT_MAX_ATTEMPTS;
  const timeoutMs = checkNumber(o, 'timeoutMs', (v) => v > 0 && v <= MAX_TIMEOUT_MS, `must be a number of milliseconds from 1 to ${MAX_TIMEOUT_MS} (about 24.8 days)`);
  const expectedBucketOwner = o.expectedBucketOwner;
  if (expectedBucketOwner !== undefined && !(typeof expectedBucketOwner === 'string' && /^\d{12}$/.test(expectedBucketOwner))) {
    throw invalid('expectedBucketOwner', expectedBucketOwner, 'must be a 12-digit AWS account id, as a string');
  }
  const multipartThreshold = byteSize(o, 'multipartThreshold') ?? DEFAULT_MULTIPART_THRESHOLD;
  const partSize = byteSize(o, 'partSize') ?? DEFAULT_PART_SIZE;
  const partConcurrency = integer(o, 'partConcurrency', 1, 1000) ?? DEFAULT_PART_CONCURRENCY;
  const abortStaleUploadsAfterHours = checkNumber(o, 'abortStaleUploadsAfterHours', (v) => Number.isFinite(v) && v >= 0, 'must be a number of hours >= 0');
  const hashThreads = integer(o, 'hashThreads', 0, 64) ?? Math.min(4, Math.max(1, availableParallelism() - 1));
  const prehashMultipart = boolean(o, 'prehashMultipart') ?? false;
  const stateDir = resolveStateDir(o, workspaceDir);
  const sseCustomer = checkCustomerKey(o.sseCustomerKey);
  const uploadParams = resolveUploadParams(o.uploadParams, sseCustomer !== undefined);
  const stallTimeoutMs =
    checkNumber(o, 'stallTimeoutMs', (v) => Number.isInteger(v) && (v === 0 || (v >= 100 && v <= 3_600_000)), 'must be 0 or a whole number of milliseconds from 100 to 3600000') ??
    DEFAULT_STALL_TIMEOUT_MS;
  const lockWaitMs =
    checkNumber(o, 'lockWaitMs', (v) => Number.isInteger(v) && v >= 0 && v <= MAX_TIMEOUT_MS, `must be a whole number of milliseconds from 0 to ${MAX_TIMEOUT_MS}`) ??
    DEFAULT_LOCK_WAIT_MS;
  const client = s3Client ?? buildClient(region, Math.max(downloadConcurrency, uploadConcurrency, partConcurrency), maxAttempts, stallTimeoutMs);
  return {
    bucket,
    prefix,
    workspaceDir,
    region,
    downloadConcurrency,
    uploadConcurrency,
    logger,
    ignorePatterns,
    contentTypeResolver: contentTypeResolver ?? guessContentType,
    client,
    ownsClient: s3Client === undefined,
    maxDeletes: guards.maxDeletes,
    maxTotalBytes: guards.maxTotalBytes ?? Infinity,
    allowEmptyRemote,
    overwriteLocalChanges,
    conflictPolicy,
    maxAttempts,
    timeoutMs,
    expectedBucketOwner,
    multipartThreshold,
    partSize,
    partConcurrency,
    abortStaleUploadsAfterHours,
    hashThreads,
    prehashMultipart,
    stateDir,
    uploadParams,
    sseCustomer,
    stallTimeoutMs,
    lockWaitMs,
    requireConditionalWrites: boolean(o, 'requireConditionalWrites') ?? false,
    waitForPushMs:
      checkNumber(o, 'waitForPushMs', (v) => Number.isInteger(v) && v >= 0 && v <= MAX_TIMEOUT_MS, `must be a whole number of milliseconds from 0 to ${MAX_TIMEOUT_MS}`) ??
      DEFAULT_WAIT_FOR_PUSH_MS,
    trustManifest: boolean(o, 'trustManifest') ?? false,
    transport: checkTransport(o) ?? 'auto',
    git: checkGit(o) ?? 'off',
    gitBinary: checkGitBinary(o) ?? 'git',
  };
}

/**
 * `uploadParams` as a function of the file, its result checked: a fixed
 * value is checked once here; a function's result for each file, when it is
 * called (a bad result fails that file's upload with a ConfigError).
 */
function resolveUploadParams(
  value: unknown,
  withCustomerKey: boolean,
): ResolvedOptions['uploadParams'] {
  if (value === undefined) return undefined;
  const noSseWithCustomerKey = (params: CheckedUploadParams, where: string): CheckedUploadParams => {
    if (withCustomerKey && params.ServerSideEncryption !== undefined) {
      throw invalid(`${where}.ServerSideEncryption`, params.ServerSideEncryption, 'cannot be combined with sseCustomerKey (SSE-C): S3 takes one encryption per object');
    }
    return params;
  };
  if (typeof value === 'function') {
    const fn = value as (file: { path: string; size: number }) => unknown;
    return (file) => {
      const got = fn(file);
      return got === undefined ? undefined : noSseWithCustomerKey(checkUploadParams(got, 'uploadParams(file)'), 'uploadParams(file)');
    };
  }
  const fixed = noSseWithCustomerKey(checkUploadParams(value, 'uploadParams'), 'uploadParams');
  return () => fixed;
}

/** A 256-bit SSE-C key: 32 characters, or the base64 of 32 bytes. */
function checkCustomerKey(value: unknown): ResolvedOptions['sseCustomer'] {
  if (value === undefined) return undefined;
  const ok =
    typeof value === 'string' &&
    (Buffer.byteLength(value, 'utf8') === 32 || (/^[A-Za-z0-9+/]{43}=$/.test(value) && Buffer.from(value, 'base64').length === 32));
  if (!ok) {
    // never show the value: it is a key
    throw new ConfigError('`sseCustomerKey` must be a 256-bit key: 32 characters, or the base64 of 32 bytes (got a value of another length or type)', {
      details: { option: 'sseCustomerKey', value: '[redacted]' },
    });
  }
  return { SSECustomerAlgorithm: 'AES256', SSECustomerKey: value };
}

/**
 * Check the options of one `pull()`, `push()` or `plan()` call — every field
 * of {@link SyncCallOptions}, with the same rules and messages as the
 * constructor's, unknown keys included — and return its guard overrides. The
 * facade calls it first thing, so a bad option rejects the call before any
 * request is made or any file is touched.
 *
 * @throws {ConfigError} (`details: { option, value }`)
 * @example
 * await sync.pull({ maxDeletes: -1 });
 * // ConfigError: `maxDeletes` must be a count (integer >= 0), a fraction between 0 and 1, or Infinity (got -1)
 */
export function validateGuards(call: SyncCallOptions): { maxDeletes: number | undefined; maxTotalBytes: number | undefined } {
  if (call === null || typeof call !== 'object' || Array.isArray(call)) {
    throw invalid('options', call, `of ${CALLS} must be an object`);
  }
  const o = call as unknown as Raw;
  rejectUnknown(o, CALL_OPTIONS, CONSTRUCTOR_OPTIONS, CONSTRUCTOR);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalid('signal', o.signal, 'must be an AbortSignal');
  boolean(o, 'dryRun');
  boolean(o, 'allowEmptyRemote');
  boolean(o, 'overwriteLocalChanges');
  checkConflictPolicy(o);
  // Only the type here; the facade checks each entry is a workspace path.
  stringArray(o, 'priority');
  return guardOptions(o);
}

/** The deletion and size guards, per instance or per call. */
function guardOptions(o: Raw): { maxDeletes: number | undefined; maxTotalBytes: number | undefined } {
  const maxDeletes = checkNumber(
    o,
    'maxDeletes',
    (v) => (Number.isInteger(v) && v >= 0) || (v > 0 && v < 1) || v === Infinity,
    'must be a count (integer >= 0), a fraction between 0 and 1, or Infinity',
  );
  const maxTotalBytes = checkNumber(o, 'maxTotalBytes', (v) => v >= 0, 'must be a number of bytes >= 0 (Infinity: no limit)');
  return { maxDeletes, maxTotalBytes };
}

// ------------------------------------------------------------------ messages

/** `` `option` requirement (got value)[: hint] ``, with `details: { option, value }`. */
function invalid(option: string, value: unknown, requirement: string, hint?: string, cause?: unknown): ConfigError {
  const shown = describeValue(value);
  const message = `\`${option}\` ${requirement} (got ${shown})${hint === undefined ? '' : `: ${hint}`}`;
  return new ConfigError(message, { details: { option, value: shown }, ...(cause === undefined ? {} : { cause }) });
}

function missing(option: string, requirement: string): ConfigError {
  return new ConfigError(`\`${option}\` is required (${requirement})`, { details: { option, value: 'undefined' } });
}

/**
 * Refuse keys that are not options (keys whose value is `undefined` count as
 * absent). A key of the other kind (a per-call option given to the
 * constructor, or the reverse) says where it belongs; a near miss gets a
 * "did you mean" hint.
 */
function rejectUnknown(o: Raw, known: object, elsewhere: object, elsewhereName: string): void {
  const unknown = Object.keys(o).filter((key) => !Object.hasOwn(known, key) && o[key] !== undefined);
  const first = unknown[0];
  if (first === undefined) return;
  const names = Object.keys(known);
  const parts = unknown.map((key) => {
    const shown = escapeForLog(JSON.stringify(key.length > MAX_SHOWN ? `${key.slice(0, MAX_SHOWN - 1)}…` : key));
    if (Object.hasOwn(elsewhere, key)) return `Unknown option ${shown} (it is an option of ${elsewhereName})`;
    const near = closestName(key, names);
    return near === undefined ? `Unknown option ${shown}` : `Unknown option ${shown} (did you mean "${near}"?)`;
  });
  const message = parts.map((part, i) => (i === 0 ? part : `u${part.slice(1)}`)).join('; ');
  throw new ConfigError(message, { details: { option: first, value: describeValue(o[first]) } });
}

export { closestName, describeValue } from './option-checks.js';

// ------------------------------------------------------------------- checks

function integer(o: Raw, name: string, min: number, max: number): number | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalid(name, v, `must be an integer from ${min} to ${max}`);
  }
  return v;
}

function byteSize(o: Raw, name: string): number | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < MIN_PART_SIZE || v > MAX_PART_SIZE) {
    throw invalid(name, v, 'must be a whole number of bytes from 5 MiB to 5 GiB (5242880 to 5368709120)');
  }
  return v;
}

/** A number accepted by `ok` (never NaN, never a numeric string). */
function checkNumber(o: Raw, name: string, ok: (v: number) => boolean, requirement: string): number | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || Number.isNaN(v) || !ok(v)) throw invalid(name, v, requirement);
  return v;
}

function boolean(o: Raw, name: string): boolean | undefined {
  const v = o[name];
  if (v === undefined || typeof v === 'boolean') return v;
  throw invalid(name, v, 'must be true or false');
}

function checkFunction(o: Raw, name: string, requirement: string): unknown {
  const v = o[name];
  if (v === undefined || typeof v === 'function') return v;
  throw invalid(name, v, requirement);
}

/** An array of strings, copied (a later change to the caller's array changes nothing). */
function stringArray(o: Raw, name: string): string[] | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw invalid(name, v, 'must be an array of strings');
  const copy: string[] = [];
  for (let i = 0; i < v.length; i++) {
    const entry: unknown = v[i];
    if (typeof entry !== 'string') {
      const shown = describeValue(entry);
      throw new ConfigError(`\`${name}\` must be an array of strings (got ${shown} at index ${i})`, { details: { option: name, value: shown, index: i } });
    }
    copy.push(entry);
  }
  return copy;
}

/**
 * A bucket name as S3 accepts it in requests: 3 to 63 letters, digits, dots,
 * hyphens or underscores, starting and ending with a letter or digit, no two
 * dots in a row, not an IP address. Upper case and underscores are allowed
 * (new buckets cannot have them on AWS, R2 or MinIO, but AWS still serves
 * legacy us-east-1 buckets named so, and MinIO accepts them in object
 * requests); a name that exists nowhere fails later with `BUCKET_NOT_FOUND`.
 * A string starting with `arn:` (an access point, Object Lambda access point
 * or Outposts ARN, which the SDK accepts as `Bucket`) is taken as it is. An
 * S3 URL or `bucket/prefix` is refused with the options to write instead.
 */
function checkBucket(value: unknown, prefix: unknown): string {
  if (value === undefined) throw missing('bucket', 'a bucket name such as "my-bucket"');
  if (typeof value !== 'string') throw invalid('bucket', value, 'must be a bucket name (a string)');
  if (value.startsWith('arn:')) {
    if (value.length > 4 && !/[\s\u0000-\u001f\u007f]/.test(value)) return value;
    throw invalid('bucket', value, 'must be a bucket name or an ARN without spaces');
  }
  const url = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(value);
  if (url !== null) {
    const [scheme = '', rest = ''] = url.slice(1);
    if (!/^s3[an]?$/i.test(scheme)) {
      throw invalid('bucket', value, 'must be a bucket name, not a URL', 'give the endpoint to an S3Client (`endpoint`, passed as `s3Client`) and the bucket name here');
    }
    const slash = rest.indexOf('/');
    throw invalid('bucket', value, 'must be a bucket name, not an S3 URL', suggestion(slash < 0 ? rest : rest.slice(0, slash), slash < 0 ? '' : rest.slice(slash + 1), prefix));
  }
  const slash = value.indexOf('/');
  if (slash >= 0) {
    throw invalid('bucket', value, 'must be a bucket name, without a key prefix', suggestion(value.slice(0, slash), value.slice(slash + 1), prefix));
  }
  const problem = bucketNameProblem(value);
  if (problem === undefined) return value;
  const trimmed = value.trim();
  const hint = trimmed !== value && bucketNameProblem(trimmed) === undefined ? `use bucket: ${JSON.stringify(trimmed)}` : undefined;
  throw invalid('bucket', value, `is not a valid bucket name: ${problem}`, hint);
}

function bucketNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 63) return 'it must be 3 to 63 characters long';
  if (!/^[A-Za-z0-9._-]+$/.test(name)) return 'it may contain only letters, digits, dots (.), hyphens (-) and underscores (_)';
  if (!/^[A-Za-z0-9]/.test(name) || !/[A-Za-z0-9]$/.test(name)) return 'it must start and end with a letter or a digit';
  if (name.includes('..')) return 'it must not contain two dots in a row';
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return 'it must not be an IP address';
  return undefined;
}

/** `use bucket: "b", prefix: "p/"`: the key part of what was given, in front of the prefix given (if any). */
function suggestion(bucket: string, keyPart: string, prefix: unknown): string {
  const segments = [keyPart, typeof prefix === 'string' ? prefix : ''].map((s) => s.replace(/^\/+|\/+$/g, '')).filter((s) => s !== '');
  const show = (s: string) => escapeForLog(JSON.stringify(s));
  return `use bucket: ${show(bucket)}${segments.length === 0 ? '' : `, prefix: ${show(`${segments.join('/')}/`)}`}`;
}

function checkPrefix(value: unknown): string {
  if (value === undefined) throw missing('prefix', 'a string; use "" for the bucket root');
  if (typeof value !== 'string') throw invalid('prefix', value, 'must be a string (use "" for the bucket root)');
  try {
    return normalizePrefix(value);
  } catch (error) {
    throw invalid('prefix', value, `is not usable: ${(error as PathValidationError).reason}`, undefined, error);
  }
}

function checkWorkspaceDir(value: unknown): string {
  if (value === undefined) throw missing('workspaceDir', 'the path of a local directory');
  if (typeof value !== 'string' || value.trim() === '') throw invalid('workspaceDir', value, 'must be a non-empty string (a directory path)');
  if (value.includes('\0')) throw invalid('workspaceDir', value, 'must not contain a NUL character');
  return value;
}

function checkRegion(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[^\s\u0000-\u001f\u007f]+$/.test(value)) {
    throw invalid('region', value, 'must be a region name such as "eu-west-1" (a non-empty string without spaces)');
  }
  return value;
}

/**
 * What the library uses of a client: `send()` for every request and `config`
 * (endpoint and request handler, read when present). `destroy()` is only
 * called on the client the library builds itself.
 */
function checkClient(value: unknown): S3Client | undefined {
  if (value === undefined) return undefined;
  const requirement = 'must be an S3Client from @aws-sdk/client-s3';
  if (value === null || typeof value !== 'object') throw invalid('s3Client', value, requirement);
  const client = value as { send?: unknown; config?: unknown };
  const absent = [
    ...(typeof client.send === 'function' ? [] : ['send()']),
    ...(typeof client.config === 'object' && client.config !== null ? [] : ['config']),
  ];
  if (absent.length === 0) return value as S3Client;
  const settings = ['region', 'endpoint', 'credentials', 'forcePathStyle'].some((key) => key in client);
  const hint = settings ? 'these look like client settings: pass new S3Client({ ... }) built from them' : undefined;
  throw invalid('s3Client', value, `${requirement}, with send() and config; missing: ${absent.join(', ')}`, hint);
}

function checkLogger(value: unknown): SyncLogger {
  if (value === undefined) return createDefaultLogger();
  const requirement = 'must be an object with debug, info, warn and error methods';
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) throw invalid('logger', value, requirement);
  const logger = value as Record<string, unknown>;
  const absent = LOG_METHODS.filter((method) => typeof logger[method] !== 'function');
  if (absent.length > 0) throw invalid('logger', value, `${requirement}; missing: ${absent.join(', ')}`);
  return value as SyncLogger;
}

function resolveStateDir(o: Raw, workspaceDir: string): string | undefined {
  const persistState = boolean(o, 'persistState');
  const { stateDir } = o;
  if (stateDir !== undefined && (typeof stateDir !== 'string' || stateDir.trim() === '' || stateDir.includes('\0'))) {
    throw invalid('stateDir', stateDir, 'must be a non-empty string (a directory path)');
  }
  if (persistState === false) return undefined;
  const reserved = join(workspaceDir, STATE_DIR_NAME);
  if (stateDir === undefined) return reserved;
  const dir = resolve(stateDir);
  const inReserved = dir === reserved || dir.startsWith(reserved + sep);
  const inWorkspace = dir === workspaceDir || dir.startsWith(workspaceDir + sep);
  if (inWorkspace && !inReserved) {
    throw invalid(
      'stateDir',
      stateDir,
      'is inside the workspace, where the state file would be synced',
      `use a directory outside it or under ${STATE_DIR_NAME}/`,
    );
  }
  return dir;
}

/**
 * The client built when none is given: keep-alive agents with `maxSockets`
 * equal to the larger concurrency, a connect timeout, an idle-socket timeout
 * (a stalled body fails instead of hanging), and checksums only when S3
 * requires them (the library sends Content-MD5 and verifies MD5s itself; this
 * also keeps R2, MinIO and other S3-compatible servers happy). Its middleware
 * stack is resolved once per command type (`cacheMiddleware`; nothing adds
 * middleware to this private client) instead of once per request: that was
 * ~8% of a cold pull's CPU with many small files.
 */
/**
 * The client the library builds: keep-alive agents sized to the concurrency,
 * checksums only when required, and sockets that time out after
 * `stallTimeoutMs` idle (Node measures it on the socket, uploads included), so
 * the store adds no watchdog of its own and the SDK's middleware cache works.
 */
function buildClient(region: string, maxSockets: number, maxAttempts: number, stallTimeoutMs: number): S3Client {
  return new S3Client({
    region,
    maxAttempts,
    cacheMiddleware: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets }),
      connectionTimeout: stallTimeoutMs > 0 ? Math.min(CONNECTION_TIMEOUT_MS, stallTimeoutMs) : CONNECTION_TIMEOUT_MS,
      socketTimeout: stallTimeoutMs > 0 ? stallTimeoutMs : SOCKET_TIMEOUT_MS,
    },
  });
}

/**
 * The socket limit of a client's HTTP handler, when it can be read (the SDK's
 * NodeHttpHandler; its configuration resolves lazily, so this awaits it).
 * `undefined` when unknown — best effort over SDK internals, never throws.
 */
export async function clientMaxSockets(client: S3Client, protocol: 'http:' | 'https:'): Promise<number | undefined> {
  try {
    type AgentLike = { maxSockets?: number } | undefined;
    type Resolved = { httpAgent?: AgentLike; httpsAgent?: AgentLike; httpAgentProvider?: () => Promise<AgentLike> };
    const handler = client.config.requestHandler as unknown as
      | { configProvider?: Promise<Resolved>; httpHandlerConfigs?: () => Resolved }
      | undefined;
    const cfg: Resolved | undefined = handler?.configProvider
      ? await handler.configProvider
      : handler?.httpHandlerConfigs?.();
    if (cfg === undefined) return undefined;
    let agent: AgentLike;
    if (protocol === 'https:') agent = cfg.httpsAgent;
    else agent = typeof cfg.httpAgentProvider === 'function' ? await cfg.httpAgentProvider() : cfg.httpAgent;
    const max = agent?.maxSockets;
    return typeof max === 'number' && Number.isFinite(max) ? max : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A warning for a user-supplied client that cannot open as many sockets as
 * `concurrency` transfers need (`undefined`: enough, or unknown).
 */
export async function socketWarning(client: S3Client, concurrency: number): Promise<string | undefined> {
  const config = client.config as { endpoint?: () => Promise<{ protocol?: string }> };
  let protocol = 'https:';
  try {
    if (typeof config.endpoint === 'function') protocol = (await config.endpoint()).protocol ?? 'https:';
  } catch {
    // no custom endpoint: AWS, https
  }
  const max = await clientMaxSockets(client, protocol === 'http:' ? 'http:' : 'https:');
  if (max === undefined || max >= concurrency) return undefined;
  return (
    `The S3 client allows ${max} sockets but up to ${concurrency} transfers run at once; ` +
    'give its requestHandler an agent with maxSockets >= the concurrency, or lower the concurrency.'
  );
}

const TRANSPORTS = ['auto', 'sdk'] as const;

function checkTransport(o: Raw): 'auto' | 'sdk' | undefined {
  const v = o.transport;
  if (v === undefined) return undefined;
  if (typeof v === 'string' && (TRANSPORTS as readonly string[]).includes(v)) return v as 'auto' | 'sdk';
  throw invalid('transport', v, `must be one of ${TRANSPORTS.map((t) => `'${t}'`).join(', ')}`);
}

const CONFLICT_POLICIES: readonly ConflictPolicy[] = ['fail', 'keep-local', 'keep-remote', 'keep-both'];

function checkConflictPolicy(o: Raw): ConflictPolicy | undefined {
  const v = o.conflictPolicy;
  if (v === undefined) return undefined;
  if (typeof v === 'string' && (CONFLICT_POLICIES as readonly string[]).includes(v)) return v as ConflictPolicy;
  throw invalid('conflictPolicy', v, `must be one of ${CONFLICT_POLICIES.map((p) => `'${p}'`).join(', ')}`);
}

const GIT_MODES = ['off', 'bundle'] as const;

function checkGit(o: Raw): 'bundle' | 'off' | undefined {
  const v = o.git;
  if (v === undefined) return undefined;
  if (typeof v === 'string' && (GIT_MODES as readonly string[]).includes(v)) return v as 'bundle' | 'off';
  throw invalid('git', v, `must be one of ${GIT_MODES.map((m) => `'${m}'`).join(', ')}`);
}

/** A command name or a path: a non-empty string without NUL or line breaks (it is never given to a shell). */
function checkGitBinary(o: Raw): string | undefined {
  const v = o.gitBinary;
  if (v === undefined) return undefined;
  if (typeof v === 'string' && v.trim() !== '' && !/[\0\r\n]/.test(v)) return v;
  throw invalid('gitBinary', v, 'must be the name or path of the git executable (a non-empty string)');
}
