/**
 * S3 settings for the objects a push writes: encryption, storage class,
 * headers, ACL, tags and metadata. Checked once (at construction for a fixed
 * value, per file for a callback's result) and applied to single-request and
 * multipart uploads alike.
 */
import { ConfigError } from './errors.js';
import { closestName, describeValue } from './option-checks.js';

/**
 * S3 settings applied to every object a push writes (`PutObject` and
 * `CreateMultipartUpload` alike). Names and values are the AWS SDK's.
 *
 * @example
 * // a bucket whose policy denies unencrypted PUTs
 * { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: 'arn:aws:kms:eu-west-1:111122223333:key/…', BucketKeyEnabled: true }
 */
export interface UploadParams {
  /** `AES256` (SSE-S3), `aws:kms` (SSE-KMS) or `aws:kms:dsse`. */
  ServerSideEncryption?: 'AES256' | 'aws:kms' | 'aws:kms:dsse' | undefined;
  /** KMS key id or ARN (with `aws:kms` / `aws:kms:dsse`). */
  SSEKMSKeyId?: string | undefined;
  /** Base64 JSON of the KMS encryption context. */
  SSEKMSEncryptionContext?: string | undefined;
  /** Use an S3 Bucket Key for SSE-KMS (fewer KMS requests, lower cost). */
  BucketKeyEnabled?: boolean | undefined;
  /** `STANDARD`, `INTELLIGENT_TIERING`, `STANDARD_IA`, `ONEZONE_IA`, `GLACIER_IR`, … (what the server accepts). */
  StorageClass?: string | undefined;
  CacheControl?: string | undefined;
  ContentDisposition?: string | undefined;
  ContentEncoding?: string | undefined;
  ContentLanguage?: string | undefined;
  Expires?: Date | undefined;
  /** A canned ACL (`private`, `bucket-owner-full-control`, …). */
  ACL?: string | undefined;
  /** Object tags: `{ team: 'agents' }`, or the URL-encoded form `team=agents&env=prod`. */
  Tagging?: string | Readonly<Record<string, string>> | undefined;
  /**
   * User metadata (`x-amz-meta-*`), lower-case keys. The library's own keys
   * (`md5chksum`, `mtime`, `partsize`) cannot be set: they are how it
   * recognises its objects.
   */
  Metadata?: Readonly<Record<string, string>> | undefined;
}

/** The `uploadParams` option: fixed settings, or a function of the file (`undefined`: none for that file). */
export type UploadParamsOption = UploadParams | ((file: { path: string; size: number }) => UploadParams | undefined);

/** Upload settings after checking: what the store sends (Tagging in its URL-encoded form). */
export type CheckedUploadParams = Omit<UploadParams, 'Tagging'> & { Tagging?: string | undefined };

/** Metadata keys the library writes itself. */
export const RESERVED_METADATA = ['md5chksum', 'mtime', 'partsize'] as const;

const STRING_FIELDS = [
  'SSEKMSKeyId',
  'SSEKMSEncryptionContext',
  'StorageClass',
  'CacheControl',
  'ContentDisposition',
  'ContentEncoding',
  'ContentLanguage',
  'ACL',
] as const;
const FIELDS: Record<keyof UploadParams, true> = {
  ServerSideEncryption: true,
  SSEKMSKeyId: true,
  SSEKMSEncryptionContext: true,
  BucketKeyEnabled: true,
  StorageClass: true,
  CacheControl: true,
  ContentDisposition: true,
  ContentEncoding: true,
  ContentLanguage: true,
  Expires: true,
  ACL: true,
  Tagging: true,
  Metadata: true,
};
const SSE = new Set(['AES256', 'aws:kms', 'aws:kms:dsse']);

/**
 * Check upload settings (`where` names them in messages: the option, or the
 * callback's result for a file) and return them as the store sends them.
 *
 * @throws {ConfigError} for an unknown field (with a "did you mean" hint), a
 *   value of the wrong type, an unknown encryption, a KMS key without KMS
 *   encryption, or a reserved or invalid metadata key.
 */
export function checkUploadParams(value: unknown, where: string): CheckedUploadParams {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`\`${where}\` must be an object of S3 upload settings (got ${describeValue(value)})`, {
      details: { option: where, value: describeValue(value) },
    });
  }
  const raw = value as Record<string, unknown>;
  const bad = (field: string, why: string): ConfigError =>
    new ConfigError(`\`${where}.${field}\` ${why} (got ${describeValue(raw[field])})`, { details: { option: `${where}.${field}`, value: describeValue(raw[field]) } });
  const out: CheckedUploadParams = {};
  for (const [field, v] of Object.entries(raw)) {
    if (v === undefined) continue;
    if (!(field in FIELDS)) {
      const hint = closestName(field, Object.keys(FIELDS));
      throw new ConfigError(`Unknown field "${field}" in \`${where}\`${hint === undefined ? '' : ` (did you mean "${hint}"?)`}`, {
        details: { option: `${where}.${field}` },
      });
    }
  }
  if (raw.ServerSideEncryption !== undefined) {
    if (typeof raw.ServerSideEncryption !== 'string' || !SSE.has(raw.ServerSideEncryption)) throw bad('ServerSideEncryption', 'must be "AES256", "aws:kms" or "aws:kms:dsse"');
    out.ServerSideEncryption = raw.ServerSideEncryption as UploadParams['ServerSideEncryption'];
  }
  for (const field of STRING_FIELDS) {
    const v = raw[field];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v.length === 0 || /[\r\n]/.test(v)) throw bad(field, 'must be a non-empty string without line breaks');
    out[field] = v;
  }
  if ((out.SSEKMSKeyId !== undefined || out.SSEKMSEncryptionContext !== undefined) && !out.ServerSideEncryption?.startsWith('aws:kms')) {
    throw bad(out.SSEKMSKeyId !== undefined ? 'SSEKMSKeyId' : 'SSEKMSEncryptionContext', 'needs ServerSideEncryption "aws:kms" or "aws:kms:dsse"');
  }
  if (raw.BucketKeyEnabled !== undefined) {
    if (typeof raw.BucketKeyEnabled !== 'boolean') throw bad('BucketKeyEnabled', 'must be a boolean');
    out.BucketKeyEnabled = raw.BucketKeyEnabled;
  }
  if (raw.Expires !== undefined) {
    if (!(raw.Expires instanceof Date) || Number.isNaN(raw.Expires.getTime())) throw bad('Expires', 'must be a valid Date');
    out.Expires = raw.Expires;
  }
  if (raw.Tagging !== undefined) out.Tagging = tagging(raw.Tagging, bad);
  if (raw.Metadata !== undefined) out.Metadata = metadata(raw.Metadata, bad);
  return out;
}

function tagging(v: unknown, bad: (field: string, why: string) => ConfigError): string {
  if (typeof v === 'string') {
    if (v.length === 0 || /[\r\n]/.test(v)) throw bad('Tagging', 'must be a URL-encoded "key=value&…" string or an object of strings');
    return v;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw bad('Tagging', 'must be an object of strings or a URL-encoded string');
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > 10) throw bad('Tagging', 'has more than 10 tags (the S3 limit)');
  for (const [, value] of entries) if (typeof value !== 'string') throw bad('Tagging', 'must map tag names to strings');
  return new URLSearchParams(entries as Array<[string, string]>).toString();
}

function metadata(v: unknown, bad: (field: string, why: string) => ConfigError): Record<string, string> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw bad('Metadata', 'must be an object of strings');
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(v as Record<string, unknown>)) {
    const k = key.toLowerCase();
    if ((RESERVED_METADATA as readonly string[]).includes(k)) throw bad('Metadata', `cannot set "${key}": the library writes it`);
    if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(k)) throw bad('Metadata', `has a key that is not a valid header name: "${key}"`);
    if (typeof value !== 'string' || /[\r\n]/.test(value)) throw bad('Metadata', `must map keys to strings without line breaks ("${key}")`);
    out[k] = value;
  }
  return out;
}
