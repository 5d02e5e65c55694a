// Where the fast path sends a bucket's requests, and when it declines (the
// endpoint resolved once per bucket with the client's own endpoint provider).
// No request is sent.
import type { IncomingMessage } from 'node:http';

import { GetObjectCommand, S3Client, S3ServiceException, type S3ClientConfig } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';

import { FINAL_ERROR_STATUSES, FastPath, encodeKey, errorAnswer, isStockClient } from '../../src/storage/fast-path.js';

const QUICK = { timeout: 5_000 };

function client(config: S3ClientConfig = {}): S3Client {
  return new S3Client({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...config,
  });
}

/** The URL the SDK itself sends a GetObject of `key` to (captured after endpoint resolution; nothing is sent). */
async function sdkUrl(config: S3ClientConfig, bucket: string, key: string): Promise<string> {
  const probe = client(config);
  let seen = '';
  probe.middlewareStack.add(
    () => async (args) => {
      const r = args.request as { protocol: string; hostname: string; port?: number; path: string };
      seen = `${r.protocol}//${r.hostname}${r.port !== undefined ? `:${r.port}` : ''}${r.path}`;
      throw new Error('captured');
    },
    { step: 'build', priority: 'low', name: 'capture' },
  );
  await probe.send(new GetObjectCommand({ Bucket: bucket, Key: key })).catch(() => undefined);
  probe.destroy();
  return seen;
}

async function url(c: S3Client, bucket: string, trusted = false): Promise<string | undefined> {
  try {
    return (await FastPath.open(c, bucket, trusted))?.url('a b/c+d');
  } finally {
    c.destroy();
  }
}

describe('fast path: route', () => {
  it.each([
    ['AWS, virtual-host style', {}, 'my-bucket', 'https://my-bucket.s3.eu-west-1.amazonaws.com/a%20b/c%2Bd'],
    ['AWS, a dotted bucket (path style over https, as the SDK decides)', {}, 'my.bucket', 'https://s3.eu-west-1.amazonaws.com/my.bucket/a%20b/c%2Bd'],
    ['AWS, forcePathStyle', { forcePathStyle: true }, 'my-bucket', 'https://s3.eu-west-1.amazonaws.com/my-bucket/a%20b/c%2Bd'],
    ['FIPS', { useFipsEndpoint: true, region: 'us-east-1' }, 'my-bucket', 'https://my-bucket.s3-fips.us-east-1.amazonaws.com/a%20b/c%2Bd'],
    ['a custom endpoint with a path, path style', { endpoint: 'http://127.0.0.1:9000/base', forcePathStyle: true }, 'b1', 'http://127.0.0.1:9000/base/b1/a%20b/c%2Bd'],
    ['a custom endpoint, no path style (R2-like)', { endpoint: 'https://acct.r2.cloudflarestorage.com', region: 'auto' }, 'b1', 'https://acct.r2.cloudflarestorage.com/b1/a%20b/c%2Bd'],
    ['a custom endpoint, a bucket name that is a DNS label', { endpoint: 'https://minio.example.com:9000' }, 'my-bucket', 'https://my-bucket.minio.example.com:9000/a%20b/c%2Bd'],
  ] as const)('%s: the same URL as the SDK', QUICK, async (_name, config, bucket, expected) => {
    const sdk = await sdkUrl(config as S3ClientConfig, bucket, 'a b/c+d');
    expect(sdk).toBe(expected);
    expect(await url(client(config as S3ClientConfig), bucket)).toBe(sdk);
  });

  it.each([
    ['an S3 Express bucket', {}, 'b--euw1-az1--x-s3'],
    ['an access point ARN', {}, 'arn:aws:s3:eu-west-1:111122223333:accesspoint/ap'],
    ['a multi-region access point', {}, 'arn:aws:s3::111122223333:accesspoint/mfzwi23gnjvgw.mrap'],
    ['accelerate', { useAccelerateEndpoint: true }, 'my-bucket'],
    ['dual-stack', { useDualstackEndpoint: true }, 'my-bucket'],
    ['checksums at the SDK default on both sides', { requestChecksumCalculation: 'WHEN_SUPPORTED', responseChecksumValidation: 'WHEN_SUPPORTED' }, 'my-bucket'],
  ] as const)('declined: %s', QUICK, async (_name, config, bucket) => {
    expect(await url(client(config as S3ClientConfig), bucket)).toBeUndefined();
  });

  it('declined: middleware of the user\'s, a stubbed send(), another request handler; trusted (the library\'s client) skips the middleware check only', QUICK, async () => {
    const extra = client();
    extra.middlewareStack.add((next) => (args) => next(args), { step: 'build', name: 'mine' });
    expect(isStockClient(extra)).toBe(false);
    expect(await url(extra, 'b')).toBeUndefined();
    const trusted = client();
    trusted.middlewareStack.add((next) => (args) => next(args), { step: 'build', name: 'mine' });
    expect(await url(trusted, 'b', true)).toBe('https://s3.eu-west-1.amazonaws.com/b/a%20b/c%2Bd'); // 'b' is no DNS name: path style, as the SDK
    const stubbed = client();
    Object.assign(stubbed, { send: () => Promise.resolve({}) });
    expect(await url(stubbed, 'b')).toBeUndefined();
    const trustedStub = client();
    Object.assign(trustedStub, { send: Object.assign(() => Promise.resolve({}), { restore: () => undefined }) });
    expect(await url(trustedStub, 'b', true)).toBeUndefined();
    const handler = client({ requestHandler: { handle: () => Promise.reject(new Error('no')), metadata: { handlerProtocol: 'h1' } } } as unknown as S3ClientConfig);
    expect(await url(handler, 'b', true)).toBeUndefined();
    expect(isStockClient(client())).toBe(true);
  });

  it('keys are encoded per segment as the SDK does (RFC 3986: !\'()* too; / kept)', QUICK, () => {
    expect(encodeKey("a/b c/!'()*~é%")).toBe('a/b%20c/%21%27%28%29%2A~%C3%A9%25');
  });

  it('declined under aws-sdk-client-mock, on the class or on the instance, even for the library\'s own client', QUICK, async () => {
    const onClass = mockClient(S3Client);
    try {
      expect(await url(client(), 'my-bucket', true)).toBeUndefined();
    } finally {
      onClass.restore();
    }
    const c = client();
    const onInstance = mockClient(c);
    try {
      expect(await url(c, 'my-bucket', true)).toBeUndefined();
    } finally {
      onInstance.restore();
    }
    expect(await url(client(), 'my-bucket', true)).toBe('https://my-bucket.s3.eu-west-1.amazonaws.com/a%20b/c%2Bd');
  });
});

describe('fast path: error answers it gives back as the SDK would', () => {
  const answer = (status: number, body: string, headers: Record<string, string> = {}) =>
    errorAnswer({ statusCode: status, headers: { 'x-amz-request-id': 'REQ1', 'x-amz-id-2': 'HOST2', ...headers } } as unknown as IncomingMessage, body);

  it("S3's <Error> document: named after its Code, its Message (entities decoded), the other elements as properties, the ids in $metadata", QUICK, () => {
    const e = answer(412, '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold &amp; &lt;so&gt; &#x263A;</Message><Condition>If-Match</Condition><RequestId>REQ1</RequestId><HostId>HOST2</HostId></Error>');
    expect(e).toBeInstanceOf(S3ServiceException);
    expect(e).toMatchObject({
      name: 'PreconditionFailed',
      $fault: 'client',
      message: 'At least one of the pre-conditions you specified did not hold & <so> \u263a',
      Condition: 'If-Match',
      Code: 'PreconditionFailed',
      $metadata: { httpStatusCode: 412, requestId: 'REQ1', extendedRequestId: 'HOST2', attempts: 1, totalRetryDelay: 0 },
    });
  });

  it('anything else is not read as an answer (the SDK is asked): no body, HTML, an <Error> without a Code', QUICK, () => {
    expect(answer(404, '')).toBeUndefined();
    expect(answer(404, '<html><body>404 Not Found</body></html>')).toBeUndefined();
    expect(answer(409, '<Error><Message>no code</Message></Error>')).toBeUndefined();
    expect(answer(412, '<Error><Code></Code></Error>')).toBeUndefined();
  });

  it('only 404, 409 and 412 are answered on the fast path (403 may be clock skew, 400 expired credentials, 5xx is retried)', QUICK, () => {
    expect([...FINAL_ERROR_STATUSES].sort()).toEqual([404, 409, 412]);
  });
});
