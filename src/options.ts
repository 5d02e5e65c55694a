import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { join, resolve, sep } from 'node:path';
import { availableParallelism } from 'node:os';
import { S3Client } from '@aws-sdk/client-s3';
import { normalizePrefix } from './core/paths.js';
import { ConfigError, PathValidationError } from './errors.js';
import { createDefaultLogger } from './logger.js';
import type { SyncLogger } from './types.js';
import { guessContentType } from './core/content-type.js';
import { STATE_DIR_NAME } from './SyncIgnoreFilter.js';

/** Options of `new S3WorkspaceSync(options)`. */
export interface S3WorkspaceSyncOptions {
  /** Bucket name. Required. */
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
}

/**
 * Per-call options of `pull()`, `push()` and `plan()`. The guard options
 * override the instance's for this call.
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
  /**
   * Transfer these workspace paths first, in this order: a file, or a
   * directory with everything under it (`'config/'`, `'.agents/'`). The rest
   * follows. With `startBackgroundPull()`, `waitForPaths()` resolves as soon
   * as they are restored.
   */
  priority?: readonly string[] | undefined;
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
}

export const DEFAULT_MULTIPART_THRESHOLD = 16 * 1024 * 1024;
export const DEFAULT_PART_SIZE = 8 * 1024 * 1024;
export const DEFAULT_PART_CONCURRENCY = 8;
const MIN_PART = 5 * 1024 * 1024;

export const DEFAULT_MAX_ATTEMPTS = 3;

export const DEFAULT_DOWNLOAD_CONCURRENCY = 50;
export const DEFAULT_UPLOAD_CONCURRENCY = 10;
/** Idle time after which a socket that stopped moving bytes fails the request. */
export const SOCKET_TIMEOUT_MS = 60_000;
export const CONNECTION_TIMEOUT_MS = 10_000;

/** Validate user options and fill in defaults, in one place. @throws {ConfigError} */
export function resolveOptions(options: S3WorkspaceSyncOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new ConfigError('options must be an object');
  const { bucket, workspaceDir } = options;
  if (typeof bucket !== 'string' || bucket.trim() === '') throw new ConfigError('`bucket` is required (a non-empty string)');
  if (typeof options.prefix !== 'string') throw new ConfigError('`prefix` is required (a string; use "" for the bucket root)');
  if (typeof workspaceDir !== 'string' || workspaceDir.trim() === '') {
    throw new ConfigError('`workspaceDir` is required (a non-empty string)');
  }
  let prefix: string;
  try {
    prefix = normalizePrefix(options.prefix);
  } catch (error) {
    throw new ConfigError(`\`prefix\` is not usable: ${(error as PathValidationError).reason}`, { cause: error });
  }
  const downloadConcurrency = positiveInt(options.downloadConcurrency, DEFAULT_DOWNLOAD_CONCURRENCY, 'downloadConcurrency');
  const uploadConcurrency = positiveInt(options.uploadConcurrency, DEFAULT_UPLOAD_CONCURRENCY, 'uploadConcurrency');
  if (options.ignorePatterns !== undefined && !Array.isArray(options.ignorePatterns)) {
    throw new ConfigError('`ignorePatterns` must be an array of strings');
  }
  if (options.contentTypeResolver !== undefined && typeof options.contentTypeResolver !== 'function') {
    throw new ConfigError('`contentTypeResolver` must be a function');
  }
  const region = options.region ?? process.env.AWS_REGION ?? 'us-east-1';
  const sockets = Math.max(downloadConcurrency, uploadConcurrency);
  const maxAttempts = options.maxAttempts === undefined ? DEFAULT_MAX_ATTEMPTS : positiveInt(options.maxAttempts, DEFAULT_MAX_ATTEMPTS, 'maxAttempts');
  const guards = validateGuards(options);
  if (options.timeoutMs !== undefined && !(Number.isFinite(options.timeoutMs) && options.timeoutMs > 0)) {
    throw new ConfigError(`\`timeoutMs\` must be a positive number of milliseconds (got ${String(options.timeoutMs)})`);
  }
  if (options.expectedBucketOwner !== undefined && !/^\d{12}$/.test(options.expectedBucketOwner)) {
    throw new ConfigError('`expectedBucketOwner` must be a 12-digit AWS account id');
  }
  const multipartThreshold = sizeOption(options.multipartThreshold, DEFAULT_MULTIPART_THRESHOLD, 'multipartThreshold');
  const partSize = sizeOption(options.partSize, DEFAULT_PART_SIZE, 'partSize');
  const partConcurrency = positiveInt(options.partConcurrency, DEFAULT_PART_CONCURRENCY, 'partConcurrency');
  const stale = options.abortStaleUploadsAfterHours;
  if (stale !== undefined && !(Number.isFinite(stale) && stale >= 0)) {
    throw new ConfigError(`\`abortStaleUploadsAfterHours\` must be a number of hours >= 0 (got ${String(stale)})`);
  }
  const hashThreads =
    options.hashThreads === undefined ? Math.min(4, Math.max(1, availableParallelism() - 1)) : Number.isInteger(options.hashThreads) && options.hashThreads >= 0 && options.hashThreads <= 64 ? options.hashThreads : NaN;
  if (Number.isNaN(hashThreads)) throw new ConfigError(`\`hashThreads\` must be an integer from 0 to 64 (got ${String(options.hashThreads)})`);
  if (options.prehashMultipart !== undefined && typeof options.prehashMultipart !== 'boolean') throw new ConfigError('`prehashMultipart` must be a boolean');
  const stateDir = resolveStateDir(options, resolve(workspaceDir));
  const client = options.s3Client ?? buildClient(region, Math.max(sockets, partConcurrency), maxAttempts);
  return {
    bucket,
    prefix,
    workspaceDir: resolve(workspaceDir),
    region,
    downloadConcurrency,
    uploadConcurrency,
    logger: options.logger ?? createDefaultLogger(),
    ignorePatterns: options.ignorePatterns ?? [],
    contentTypeResolver: options.contentTypeResolver ?? guessContentType,
    client,
    ownsClient: options.s3Client === undefined,
    maxDeletes: guards.maxDeletes,
    maxTotalBytes: guards.maxTotalBytes ?? Infinity,
    allowEmptyRemote: options.allowEmptyRemote ?? false,
    overwriteLocalChanges: options.overwriteLocalChanges ?? false,
    maxAttempts,
    timeoutMs: options.timeoutMs,
    expectedBucketOwner: options.expectedBucketOwner,
    multipartThreshold,
    partSize,
    partConcurrency,
    abortStaleUploadsAfterHours: stale,
    hashThreads,
    prehashMultipart: options.prehashMultipart ?? false,
    stateDir,
  };
}

function resolveStateDir(options: S3WorkspaceSyncOptions, workspaceDir: string): string | undefined {
  const { persistState, stateDir } = options;
  if (persistState !== undefined && typeof persistState !== 'boolean') throw new ConfigError('`persistState` must be a boolean');
  if (persistState === false) return undefined;
  const reserved = join(workspaceDir, STATE_DIR_NAME);
  if (stateDir === undefined) return reserved;
  if (typeof stateDir !== 'string' || stateDir.trim() === '') throw new ConfigError('`stateDir` must be a non-empty string');
  const dir = resolve(stateDir);
  const inReserved = dir === reserved || dir.startsWith(reserved + sep);
  const inWorkspace = dir === workspaceDir || dir.startsWith(workspaceDir + sep);
  if (inWorkspace && !inReserved) {
    throw new ConfigError(
      `\`stateDir\` "${stateDir}" is inside the workspace, where the state file would be synced; ` +
        `use a directory outside it or under ${STATE_DIR_NAME}/`,
    );
  }
  return dir;
}

function sizeOption(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < MIN_PART || value > 5 * 1024 ** 3) {
    throw new ConfigError(`\`${name}\` must be a whole number of bytes from 5 MiB to 5 GiB (got ${String(value)})`);
  }
  return value;
}

/** Check the guard options (instance or per call). @throws {ConfigError} */
export function validateGuards(options: { maxDeletes?: number | undefined; maxTotalBytes?: number | undefined }): {
  maxDeletes: number | undefined;
  maxTotalBytes: number | undefined;
} {
  const { maxDeletes, maxTotalBytes } = options;
  if (maxDeletes !== undefined) {
    const isCount = Number.isInteger(maxDeletes) && maxDeletes >= 0;
    const isFraction = maxDeletes > 0 && maxDeletes < 1;
    if (!(isCount || isFraction || maxDeletes === Infinity)) {
      throw new ConfigError(
        `\`maxDeletes\` must be a count (integer >= 0), a fraction between 0 and 1, or Infinity (got ${String(maxDeletes)})`,
      );
    }
  }
  if (maxTotalBytes !== undefined && !(maxTotalBytes >= 0)) {
    throw new ConfigError(`\`maxTotalBytes\` must be a number >= 0 (got ${String(maxTotalBytes)})`);
  }
  return { maxDeletes, maxTotalBytes };
}

function positiveInt(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > 1000) {
    throw new ConfigError(`\`${name}\` must be an integer from 1 to 1000 (got ${String(value)})`);
  }
  return value;
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
function buildClient(region: string, maxSockets: number, maxAttempts: number): S3Client {
  return new S3Client({
    region,
    maxAttempts,
    cacheMiddleware: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets }),
      connectionTimeout: CONNECTION_TIMEOUT_MS,
      socketTimeout: SOCKET_TIMEOUT_MS,
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
