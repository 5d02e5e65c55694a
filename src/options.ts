import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { resolve } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { normalizePrefix } from './core/paths.js';
import { ConfigError, PathValidationError } from './errors.js';
import { createDefaultLogger } from './logger.js';
import type { SyncLogger } from './types.js';
import { guessContentType } from './core/content-type.js';

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
  /** Parallel downloads during `pull()`. Default 50. Sockets used ≤ this number. */
  downloadConcurrency?: number | undefined;
  /** Parallel uploads during `push()`. Default 10. Memory ≤ this × 8 MiB for buffered small files. */
  uploadConcurrency?: number | undefined;
  /** Diagnostics sink. Default: console, `info` and above. */
  logger?: SyncLogger | undefined;
  /** Extra gitignore-style patterns, applied after the workspace's `.syncignore`. */
  ignorePatterns?: readonly string[] | undefined;
  /** Content-Type for an uploaded file (gets the workspace-relative path). Default: {@link guessContentType}. */
  contentTypeResolver?: ((filename: string) => string) | undefined;
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
}

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
  const client = options.s3Client ?? buildClient(region, sockets);
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
  };
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
 * also keeps R2, MinIO and other S3-compatible servers happy).
 */
function buildClient(region: string, maxSockets: number): S3Client {
  return new S3Client({
    region,
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
