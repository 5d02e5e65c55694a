/**
 * S3's answers, in the library's words: how an S3 error (by name and HTTP
 * status, as the SDK reports it) or a network error becomes a
 * {@link StorageError}. One home for every store: `S3ObjectStore` maps the
 * SDK's errors with it, `MemoryObjectStore` its own refusals.
 */
import { NETWORK_ERROR_CODES, StorageError, escapeForLog, redactSecrets, sanitizeCause, type StorageErrorCode } from '../errors.js';
import { describeSdkTimeout } from './stall.js';

/**
 * Map an SDK or network error to a {@link StorageError} (the core never sees
 * SDK error types). Its `cause` is a sanitized copy of the SDK error (see
 * `sanitizeCause`): no `$response`, no echoed `AWSAccessKeyId`, signature or
 * string-to-sign, and the message says nothing the cause does not.
 */
export function toStorageError(raw: unknown, bucket: string, subject: string, replayable = true): StorageError {
  if (raw instanceof StorageError) return raw;
  const error = sanitizeCause(raw);
  // A request with a replayable body (no stream) has been through the SDK's retry strategy already.
  const retriedBySdk = replayable;
  const e = error as {
    name?: string;
    code?: string;
    message?: string;
    $metadata?: { httpStatusCode?: number };
    $retryable?: unknown;
  };
  const status = e.$metadata?.httpStatusCode;
  const name = e.name ?? '';
  const where = `s3://${bucket}/${escapeForLog(subject)}`;
  let code: StorageErrorCode = 'STORAGE';
  let retryable = false;
  let what = 'request failed';
  if (name === 'AbortError') {
    return new StorageError('STORAGE', `Request for ${where} was aborted`, { cause: error, statusCode: status });
  }
  if (status === 408 || name === 'RequestTimeout') {
    return new StorageError('NETWORK', `${where}: request timed out (${status ?? name})`, {
      cause: error,
      statusCode: status,
      retryable: true,
      retriedBySdk,
    });
  }
  if (status === 304 || name === 'NotModified') {
    // A GET/HEAD whose If-None-Match still matches: no body (so no S3 code either).
    code = 'NOT_MODIFIED';
    what = 'not modified (If-None-Match matched the current ETag)';
  } else if (isConflict(name, status)) {
    // S3 asks the client to re-read the ETag and decide again: not a blind retry.
    code = 'CONFLICT';
    what = 'conflicting conditional request in progress on this key';
  } else if (name === 'NoSuchBucket') {
    code = 'BUCKET_NOT_FOUND';
    what = `bucket "${bucket}" does not exist`;
  } else if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) {
    code = 'NOT_FOUND';
    what = 'not found';
  } else if (name === 'AccessDenied' || name === 'Forbidden' || status === 403) {
    code = name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' ? 'INVALID_CREDENTIALS' : 'ACCESS_DENIED';
    what = code === 'ACCESS_DENIED' ? 'access denied' : 'credentials were refused';
  } else if (name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch' || name === 'CredentialsProviderError') {
    code = 'INVALID_CREDENTIALS';
    what = 'credentials were refused or are missing';
  } else if (name === 'PreconditionFailed' || status === 412) {
    code = 'PRECONDITION_FAILED';
    what = 'precondition failed';
  } else if (name === 'SlowDown' || name === 'Throttling' || name === 'ThrottlingException' || status === 429 || status === 503) {
    code = 'THROTTLED';
    retryable = true;
    what = 'throttled by the server';
  } else if (status !== undefined && status >= 500) {
    retryable = true;
    what = `server error ${status}`;
  } else if (NETWORK_ERROR_CODES.has(e.code ?? '') || NETWORK_ERROR_CODES.has(name) || name === 'TimeoutError') {
    code = 'NETWORK';
    retryable = true;
    // The SDK's socket idle timeout (stallTimeoutMs on the client the library builds): "no data for 20 s".
    const timeout = name === 'TimeoutError' && e.message ? describeSdkTimeout(e.message) : undefined;
    if (timeout !== undefined) {
      return new StorageError(code, `${where}: ${timeout}`, { cause: error, statusCode: status, retryable, retriedBySdk });
    }
    what = `network error (${e.code ?? name})`;
  }
  // A status-only answer (HEAD errors and 304 have no body): the SDK names it `Unknown`, "UnknownError".
  const bodiless = name === 'Unknown' && (e.message === undefined || e.message === 'UnknownError');
  const detail = bodiless ? ` (HTTP ${status ?? '?'})` : e.message && e.message !== name ? `: ${redactSecrets(e.message)}` : name ? ` (${name})` : '';
  return new StorageError(code, `${where}: ${what}${detail}`, { cause: error, statusCode: status, retryable, retriedBySdk });
}

/**
 * A 409 about a conditional request: S3's `ConditionalRequestConflict` (a
 * conditional write racing another write of the same key). A 409 without a
 * body (a HEAD, named `Unknown` by the SDK) counts too; other 409 codes
 * (`BucketNotEmpty`, `OperationAborted`…) do not.
 */
function isConflict(name: string, status: number | undefined): boolean {
  return name === 'ConditionalRequestConflict' || (status === 409 && (name === '' || name === 'Unknown' || name === 'Conflict'));
}

/**
 * The library's code for an S3 error code reported without an HTTP status of
 * its own: a per-key `<Error><Code>` of a DeleteObjects answer
 * (`PreconditionFailed` → `PRECONDITION_FAILED`, `NoSuchKey` → `NOT_FOUND`,
 * `AccessDenied` → `ACCESS_DENIED`…). The same names as {@link toStorageError}.
 */
export function storageCodeOf(s3Code: string): StorageErrorCode {
  switch (s3Code) {
    case 'PreconditionFailed':
      return 'PRECONDITION_FAILED';
    case 'ConditionalRequestConflict':
      return 'CONFLICT';
    case 'NoSuchKey':
    case 'NotFound':
      return 'NOT_FOUND';
    case 'NoSuchBucket':
      return 'BUCKET_NOT_FOUND';
    case 'AccessDenied':
    case 'Forbidden':
      return 'ACCESS_DENIED';
    case 'InvalidAccessKeyId':
    case 'SignatureDoesNotMatch':
      return 'INVALID_CREDENTIALS';
    case 'SlowDown':
    case 'Throttling':
    case 'ThrottlingException':
    case 'ServiceUnavailable':
      return 'THROTTLED';
    default:
      return 'STORAGE';
  }
}
