// A StorageError carries no credential anywhere: not in its message, details
// or `cause`, not in the cause's own properties or nested causes, not in
// JSON.stringify or util.inspect of it. S3 error bodies echo the access key
// id (`<AWSAccessKeyId>…</AWSAccessKeyId>`) and what was signed, and the SDK
// copies those fields onto the exception, next to a hidden `$response`.
//
// Checked with aws-sdk-client-mock (an S3ServiceException shaped like the
// SDK's, with every leaky field) and against the local s3rver: s3rver does
// NOT check SigV4 signatures, so a wrong secret is simply accepted; but an
// unknown access key id is refused with 403 InvalidAccessKeyId and echoed in
// `<AWSAccessKeyId>`, which the SDK puts on the exception as `AWSAccessKeyId`.
import { inspect } from 'node:util';

import { ListObjectsV2Command, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it, onTestFinished } from 'vitest';

import { StorageError, redactSecrets, S3WorkspaceSync, silentLogger } from '../../src/index.js';
import { sanitizeCause } from '../../src/errors.js';
import { toStorageError } from '../../src/storage/S3ObjectStore.js';
import { s3Endpoint, TEST_CREDENTIALS, TEST_REGION } from '../helpers/s3.js';
import { fixture, tempDir } from '../helpers/sync-fixture.js';
import { writeTree } from '../helpers/tree.js';

const ACCESS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const SIGNATURE = 'fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024';
const STRING_TO_SIGN =
  'AWS4-HMAC-SHA256\n20240101T000000Z\n20240101/us-east-1/s3/aws4_request\n9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d';
const STRING_TO_SIGN_BYTES = Buffer.from(STRING_TO_SIGN).toString('hex').match(/../g)!.join(' ');
const CANONICAL_REQUEST = `GET\n/mock-bucket\nlist-type=2&prefix=prefix%2F&X-Amz-Credential=${ACCESS_KEY_ID}%2F20240101\nhost:s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD`;
const AUTHORIZATION = `AWS4-HMAC-SHA256 Credential=${ACCESS_KEY_ID}/20240101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=${SIGNATURE}`;

/** Strings that must appear nowhere in what a caller can reach from the error. */
const FORBIDDEN = [ACCESS_KEY_ID, SECRET, SIGNATURE, '9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d', STRING_TO_SIGN_BYTES.slice(0, 40)];

function xmlBody(keyId: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code>' +
    '<Message>The request signature we calculated does not match the signature you provided.</Message>' +
    `<AWSAccessKeyId>${keyId}</AWSAccessKeyId><StringToSign>${STRING_TO_SIGN}</StringToSign>` +
    `<SignatureProvided>${SIGNATURE}</SignatureProvided><StringToSignBytes>${STRING_TO_SIGN_BYTES}</StringToSignBytes>` +
    `<CanonicalRequest>${CANONICAL_REQUEST}</CanonicalRequest>` +
    '<RequestId>4442587FB7D0A2F9</RequestId><HostId>host-id-1</HostId></Error>'
  );
}

/** An exception shaped the way the SDK builds one from that body. */
function leakyException(keyId = ACCESS_KEY_ID): S3ServiceException {
  const error = new S3ServiceException({
    name: 'SignatureDoesNotMatch',
    $fault: 'client',
    $metadata: { httpStatusCode: 403, requestId: '4442587FB7D0A2F9', extendedRequestId: 'host-id-1', attempts: 1, totalRetryDelay: 0 },
    // Some proxies and servers put the body into the message.
    message: `The request signature we calculated does not match the signature you provided. ${xmlBody(keyId)}`,
  });
  Object.assign(error, {
    Code: 'SignatureDoesNotMatch',
    AWSAccessKeyId: keyId,
    SignatureProvided: SIGNATURE,
    StringToSign: STRING_TO_SIGN,
    StringToSignBytes: STRING_TO_SIGN_BYTES,
    CanonicalRequest: CANONICAL_REQUEST,
    CanonicalRequestBytes: Buffer.from(CANONICAL_REQUEST).toString('hex'),
    RequestId: '4442587FB7D0A2F9',
    HostId: 'host-id-1',
    $retryable: { throttling: false },
    cause: new Error(`socket note: Authorization: ${AUTHORIZATION}; key ${keyId}`),
  });
  // The SDK attaches the raw response as a hidden property.
  Object.defineProperty(error, '$response', {
    enumerable: false,
    value: {
      statusCode: 403,
      headers: { authorization: AUTHORIZATION, 'x-amz-request-id': '4442587FB7D0A2F9', 'x-amz-security-token': 'session-token-value' },
      body: xmlBody(keyId),
    },
  });
  Object.defineProperty(error, '$responseBodyText', { enumerable: false, value: xmlBody(keyId) });
  return error;
}

/** Every string reachable from `value` through own properties (enumerable or not, symbols included). */
function reachableStrings(value: unknown, seen = new Set<unknown>()): string[] {
  if (typeof value === 'string') return [value];
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null || seen.has(value)) return [];
  seen.add(value);
  const out: string[] = [];
  for (const key of Reflect.ownKeys(value)) {
    if (typeof key === 'string') out.push(key);
    const descriptor = Object.getOwnPropertyDescriptor(value, key);
    if (descriptor && 'value' in descriptor) out.push(...reachableStrings(descriptor.value, seen));
  }
  return out;
}

function expectNoSecrets(error: unknown, forbidden: readonly string[]): void {
  const views = {
    inspect: inspect(error, { depth: 10 }),
    inspectHidden: inspect(error, { depth: 10, showHidden: true }),
    json: String(JSON.stringify(error)),
    jsonCause: String(JSON.stringify((error as Error).cause)),
    string: String(error),
    stack: String((error as Error).stack),
    reachable: reachableStrings(error).join('\n'),
  };
  for (const [view, text] of Object.entries(views)) {
    for (const secret of forbidden) expect(text, `${view} contains ${secret}`).not.toContain(secret);
  }
}

function mockedSync(workspaceDir: string, accessKeyId = ACCESS_KEY_ID) {
  const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId, secretAccessKey: SECRET } });
  const s3 = mockClient(client);
  onTestFinished(() => {
    s3.restore();
    client.destroy();
  });
  const sync = new S3WorkspaceSync({ bucket: 'mock-bucket', prefix: 'prefix/', workspaceDir, s3Client: client, logger: silentLogger });
  return { s3, sync };
}

describe('StorageError.cause is sanitized (aws-sdk-client-mock)', () => {
  it('an S3ServiceException echoing the key id, signature and string-to-sign leaves no trace of them', { timeout: 10_000 }, async () => {
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'a' });
    const { s3, sync } = mockedSync(ws);
    s3.on(ListObjectsV2Command).rejects(leakyException());

    for (const op of [() => sync.pull(), () => sync.push()]) {
      const error = await op().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect(error).toMatchObject({ code: 'INVALID_CREDENTIALS', statusCode: 403, retryable: false });
      expectNoSecrets(error, FORBIDDEN);

      // What stays useful: name, status, request ids, Code, fault, the prototype.
      const cause = (error as StorageError).cause as S3ServiceException & Record<string, unknown>;
      expect(cause).toBeInstanceOf(S3ServiceException);
      expect(cause).toBeInstanceOf(Error);
      expect(cause.name).toBe('SignatureDoesNotMatch');
      expect(cause.$metadata).toEqual({ httpStatusCode: 403, requestId: '4442587FB7D0A2F9', extendedRequestId: 'host-id-1', attempts: 1, totalRetryDelay: 0 });
      expect(cause).toMatchObject({ $fault: 'client', Code: 'SignatureDoesNotMatch', RequestId: '4442587FB7D0A2F9', HostId: 'host-id-1', $retryable: { throttling: false } });
      expect(cause.message).toMatch(/^The request signature we calculated does not match/);
      expect(cause.message).toContain('<AWSAccessKeyId>[redacted]</AWSAccessKeyId>');
      expect(cause.stack).toMatch(/^SignatureDoesNotMatch: The request signature/);
      // What is gone.
      for (const field of ['$response', '$responseBodyText', 'AWSAccessKeyId', 'SignatureProvided', 'StringToSign', 'StringToSignBytes', 'CanonicalRequest', 'CanonicalRequestBytes']) {
        expect(cause[field], field).toBeUndefined();
      }
      // The nested cause is sanitized too, and still there.
      expect(String((cause.cause as Error).message)).toMatch(/^socket note: Authorization: \[redacted\]/);
      expect((error as Error).message).toMatch(/s3:\/\/mock-bucket\/prefix\/: credentials were refused: The request signature/);
    }
  });

  it('a non-AWS key id (R2, MinIO) is removed by field name, wherever it was echoed', { timeout: 10_000 }, async () => {
    const keyId = 'minio-admin-key-7';
    const ws = await tempDir();
    const { s3, sync } = mockedSync(ws, keyId);
    s3.on(ListObjectsV2Command).rejects(leakyException(keyId));
    const error = await sync.pull().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageError);
    expectNoSecrets(error, [keyId, SIGNATURE, SECRET]);
    expect(((error as StorageError).cause as Error).name).toBe('SignatureDoesNotMatch');
  });

  it('toStorageError keeps the mapping fields of network and abort errors', { timeout: 10_000 }, () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', errno: -104, syscall: 'read' });
    const mapped = toStorageError(reset, 'b', 'k');
    expect(mapped).toMatchObject({ code: 'NETWORK', retryable: true });
    expect(mapped.cause).toMatchObject({ name: 'Error', message: 'read ECONNRESET', code: 'ECONNRESET', errno: -104, syscall: 'read' });
    expect(mapped.cause).not.toBe(reset);

    const abort = Object.assign(new Error('Request aborted'), { name: 'AbortError' });
    expect(toStorageError(abort, 'b', 'k').cause).toMatchObject({ name: 'AbortError' });

    const throttled = new S3ServiceException({ name: 'SlowDown', $fault: 'server', $metadata: { httpStatusCode: 503 }, message: 'Please reduce your request rate.' });
    expect(toStorageError(throttled, 'b', 'k')).toMatchObject({ code: 'THROTTLED', retryable: true, statusCode: 503, cause: { name: 'SlowDown', $fault: 'server' } });
  });

  it('a StorageError made elsewhere with a raw cause stores the sanitized copy', { timeout: 10_000 }, () => {
    const raw = leakyException();
    const error = new StorageError('NETWORK', 'k: the download failed mid-way', { cause: raw, retryable: true });
    expectNoSecrets(error, FORBIDDEN);
    expect((error.cause as Error).name).toBe('SignatureDoesNotMatch');
    // An error that is already a StorageError is not copied again.
    expect(toStorageError(error, 'b', 'k')).toBe(error);
  });
});

describe('sanitizeCause', () => {
  it('keeps the prototype, so instanceof on the SDK classes still works', { timeout: 10_000 }, () => {
    const copy = sanitizeCause(leakyException());
    expect(copy).toBeInstanceOf(S3ServiceException);
    expect(Object.keys(copy).sort()).toEqual(['$fault', '$metadata', '$retryable', 'Code', 'HostId', 'RequestId', 'name']);
  });

  it('sanitizes AggregateError members, strings and plain objects; bounds the depth', { timeout: 10_000 }, () => {
    const aggregate = new AggregateError([leakyException(), new Error(`AWSAccessKeyId: "${ACCESS_KEY_ID}"`)], 'connect failed');
    const copy = sanitizeCause(aggregate) as AggregateError;
    expect(copy.errors).toHaveLength(2);
    expectNoSecrets(copy, FORBIDDEN);
    expect(sanitizeCause(`<AWSAccessKeyId>${ACCESS_KEY_ID}</AWSAccessKeyId>`)).toBe('<AWSAccessKeyId>[redacted]</AWSAccessKeyId>');
    expect(sanitizeCause({ message: 'plain', AWSAccessKeyId: 'S3RVER', Code: 'X' })).toMatchObject({ name: 'Error', message: 'plain', Code: 'X' });
    expect(sanitizeCause(42)).toBe(42);

    let deep: Error = new Error('bottom');
    for (let i = 0; i < 20; i++) deep = new Error(`level ${i}`, { cause: deep });
    let depth = 0;
    for (let e: unknown = sanitizeCause(deep); e instanceof Error; e = e.cause) depth++;
    expect(depth).toBeLessThanOrEqual(6);
  });
});

const REDACTIONS: ReadonlyArray<readonly [input: string, expected: string]> = [
  ['<AWSAccessKeyId>S3RVER</AWSAccessKeyId>', '<AWSAccessKeyId>[redacted]</AWSAccessKeyId>'],
  ['<Error><AWSAccessKeyId>r2-token-id</AWSAccessKeyId><RequestId>1</RequestId></Error>', '<Error><AWSAccessKeyId>[redacted]</AWSAccessKeyId><RequestId>1</RequestId></Error>'],
  ["{ AWSAccessKeyId: 'S3RVER', Code: 'X' }", "{ AWSAccessKeyId: '[redacted]', Code: 'X' }"],
  ['{"AWSAccessKeyId":"minioadmin","Code":"X"}', '{"AWSAccessKeyId":"[redacted]","Code":"X"}'],
  ['AWSAccessKeyId=minioadmin&Expires=1', 'AWSAccessKeyId=[redacted]&Expires=1'],
  ['accessKeyId: "my key id"', 'accessKeyId: "[redacted]"'],
  ['aws_access_key_id = minio', 'aws_access_key_id = [redacted]'],
  [`<StringToSign>${STRING_TO_SIGN}</StringToSign>`, '<StringToSign>[redacted]</StringToSign>'],
  [`<SignatureProvided>${SIGNATURE}</SignatureProvided>`, '<SignatureProvided>[redacted]</SignatureProvided>'],
  [`<CanonicalRequest>${CANONICAL_REQUEST}</CanonicalRequest>`, '<CanonicalRequest>[redacted]</CanonicalRequest>'],
  [`SignatureProvided: '${SIGNATURE}'`, "SignatureProvided: '[redacted]'"],
  [`key ${ACCESS_KEY_ID} here`, 'key [redacted-access-key] here'],
  ['The AWS Access Key Id you provided does not exist in our records.', 'The AWS Access Key Id you provided does not exist in our records.'],
  ['Missing accessKeyId in the options', 'Missing accessKeyId in the options'],
];

describe('redactSecrets', () => {
  it.each(REDACTIONS.map(([input, expected]) => ({ label: JSON.stringify(input).slice(0, 72), input, expected })))(
    '$label',
    { timeout: 5_000 },
    ({ input, expected }) => {
      expect(redactSecrets(input)).toBe(expected);
    },
  );
});

describe('against the local s3rver', () => {
  it('an unknown key id is echoed by the server and the SDK, but not by the StorageError', { timeout: 30_000 }, async () => {
    const f = await fixture();
    const keyId = 'WRONG-KEY-ID-7f3a';
    const client = new S3Client({
      endpoint: s3Endpoint(),
      region: TEST_REGION,
      forcePathStyle: true,
      credentials: { accessKeyId: keyId, secretAccessKey: 'not-the-secret' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    onTestFinished(() => client.destroy());

    // The raw SDK error does carry the key id (what this change protects against).
    const raw = await client.send(new ListObjectsV2Command({ Bucket: f.bucket })).catch((e: unknown) => e);
    expect(raw).toMatchObject({ name: 'InvalidAccessKeyId', AWSAccessKeyId: keyId, $metadata: { httpStatusCode: 403 } });
    expect(inspect(raw, { depth: 10 })).toContain(keyId);

    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'a' });
    const sync = new S3WorkspaceSync({ bucket: f.bucket, prefix: 'ws/', workspaceDir: ws, s3Client: client, logger: silentLogger });
    for (const op of [() => sync.pull(), () => sync.push()]) {
      const error = await op().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StorageError);
      expect(error).toMatchObject({ code: 'INVALID_CREDENTIALS', statusCode: 403 });
      expectNoSecrets(error, [keyId, 'not-the-secret']);
      const cause = (error as StorageError).cause as Error & { $metadata?: { httpStatusCode?: number } };
      expect(cause.name).toBe('InvalidAccessKeyId');
      expect(cause.$metadata?.httpStatusCode).toBe(403);
    }

    // s3rver does not verify SigV4 signatures: a known key id with a wrong
    // secret is accepted, so there is no SignatureDoesNotMatch to test here.
    const wrongSecret = new S3Client({
      endpoint: s3Endpoint(),
      region: TEST_REGION,
      forcePathStyle: true,
      credentials: { accessKeyId: TEST_CREDENTIALS.accessKeyId, secretAccessKey: 'not-the-secret' },
    });
    onTestFinished(() => wrongSecret.destroy());
    const listed = await wrongSecret.send(new ListObjectsV2Command({ Bucket: f.bucket }));
    expect(listed.$metadata.httpStatusCode).toBe(200);
  });
});

describe('causes whose prototype has getter-only fields', () => {
  it('a DOMException cause (what a cancelled request carries with recent @smithy/core) is copied, not a TypeError', () => {
    const abort = new DOMException('This operation was aborted', 'AbortError');
    const wrapped = Object.assign(new Error('Request aborted'), { name: 'AbortError', cause: abort });
    const error = new StorageError('STORAGE', 'Request for s3://b/k was aborted', { cause: wrapped });
    const cause = error.cause as Error & { cause?: Error };
    expect(cause.name).toBe('AbortError');
    expect(cause.cause?.name).toBe('AbortError');
    expect(cause.cause?.message).toBe('This operation was aborted');
    const direct = sanitizeCause(abort) as Error;
    expect(direct).toBeInstanceOf(DOMException);
    expect(direct.name).toBe('AbortError');
  });
});
