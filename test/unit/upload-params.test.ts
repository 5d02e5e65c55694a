// uploadParams and sseCustomerKey: checked up front (a fixed value) or per
// file (a function's result), with messages that name the field; SSE-C keys
// are never shown.
import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';

import { ConfigError } from '../../src/errors.js';
import { resolveOptions } from '../../src/options.js';
import { checkUploadParams } from '../../src/upload-params.js';

const client = new S3Client({ region: 'us-east-1' });
const base = { bucket: 'bkt', prefix: 'p/', workspaceDir: '/tmp/ws', s3Client: client };

describe('checkUploadParams', () => {
  it('accepts the settings enterprises need and normalises tags to their URL-encoded form', () => {
    const expires = new Date('2030-01-01T00:00:00Z');
    expect(
      checkUploadParams(
        {
          ServerSideEncryption: 'aws:kms',
          SSEKMSKeyId: 'arn:aws:kms:eu-west-1:111122223333:key/abc',
          BucketKeyEnabled: true,
          StorageClass: 'INTELLIGENT_TIERING',
          CacheControl: 'no-cache',
          ContentDisposition: 'attachment',
          ContentEncoding: 'gzip',
          ContentLanguage: 'en',
          Expires: expires,
          ACL: 'bucket-owner-full-control',
          Tagging: { team: 'agents', 'cost center': 'r&d' },
          Metadata: { Owner: 'u1' },
          CacheControlUnset: undefined,
        } as never,
        'uploadParams',
      ),
    ).toEqual({
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: 'arn:aws:kms:eu-west-1:111122223333:key/abc',
      BucketKeyEnabled: true,
      StorageClass: 'INTELLIGENT_TIERING',
      CacheControl: 'no-cache',
      ContentDisposition: 'attachment',
      ContentEncoding: 'gzip',
      ContentLanguage: 'en',
      Expires: expires,
      ACL: 'bucket-owner-full-control',
      Tagging: 'team=agents&cost+center=r%26d',
      Metadata: { owner: 'u1' },
    });
  });

  it.each<[string, unknown, RegExp]>([
    ['not an object', 'aws:kms', /`uploadParams` must be an object/],
    ['an unknown field, with a hint', { StorageClas: 'STANDARD' }, /Unknown field "StorageClas".*did you mean "StorageClass"/],
    ['an unknown encryption', { ServerSideEncryption: 'kms' }, /ServerSideEncryption` must be "AES256"/],
    ['a KMS key without KMS encryption', { SSEKMSKeyId: 'k' }, /SSEKMSKeyId` needs ServerSideEncryption "aws:kms"/],
    ['a header with a line break', { CacheControl: 'a\r\nx-amz-acl: public-read' }, /CacheControl` must be a non-empty string without line breaks/],
    ['a reserved metadata key', { Metadata: { md5chksum: 'x' } }, /cannot set "md5chksum": the library writes it/],
    ['a metadata value that is not a string', { Metadata: { a: 1 } }, /Metadata` must map keys to strings/],
    ['too many tags', { Tagging: Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`t${i}`, 'v'])) }, /more than 10 tags/],
    ['an invalid Expires', { Expires: new Date('nope') }, /Expires` must be a valid Date/],
    ['BucketKeyEnabled not a boolean', { BucketKeyEnabled: 'yes' }, /BucketKeyEnabled` must be a boolean \(got "yes"\)/],
  ])('refuses %s', (_label, value, message) => {
    expect(() => checkUploadParams(value, 'uploadParams')).toThrow(ConfigError);
    expect(() => checkUploadParams(value, 'uploadParams')).toThrow(message);
  });
});

describe('the options', () => {
  it('a fixed uploadParams is checked at construction; a function\'s result when it is called', () => {
    expect(() => resolveOptions({ ...base, uploadParams: { StorageClass: '' } })).toThrow(ConfigError);
    const r = resolveOptions({ ...base, uploadParams: ({ path }) => (path === 'bad' ? ({ Bogus: 1 } as never) : { CacheControl: 'max-age=60' }) });
    expect(r.uploadParams?.({ path: 'ok', size: 1 })).toEqual({ CacheControl: 'max-age=60' });
    expect(() => r.uploadParams?.({ path: 'bad', size: 1 })).toThrow(/Unknown field "Bogus" in `uploadParams\(file\)`/);
  });

  it('sseCustomerKey: 32 characters or base64 of 32 bytes; never shown in a message; not with ServerSideEncryption', () => {
    expect(resolveOptions({ ...base, sseCustomerKey: 'k'.repeat(32) }).sseCustomer).toEqual({ SSECustomerAlgorithm: 'AES256', SSECustomerKey: 'k'.repeat(32) });
    const b64 = Buffer.alloc(32, 7).toString('base64');
    expect(resolveOptions({ ...base, sseCustomerKey: b64 }).sseCustomer?.SSECustomerKey).toBe(b64);
    const secret = 'my-secret-key-that-is-too-short';
    const error = (() => {
      try {
        resolveOptions({ ...base, sseCustomerKey: secret });
      } catch (e) {
        return e as ConfigError;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(JSON.stringify({ message: error?.message, details: error?.details })).not.toContain(secret);
    expect(() => resolveOptions({ ...base, sseCustomerKey: 'k'.repeat(32), uploadParams: { ServerSideEncryption: 'AES256' } })).toThrow(/cannot be combined with sseCustomerKey/);
  });
});
