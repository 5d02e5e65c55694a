// An S3 client for the benchmarks' local s3rver: path style, its fixed
// credentials, checksums only when required (s3rver stores aws-chunked framing
// otherwise), keep-alive sockets, cacheMiddleware (README's advice). Plain JavaScript so that the child processes
// the benchmarks spawn on plain node (lib-child.mjs, sdk-child.mjs) share it.
import { Agent } from 'node:http';
import { S3Client } from '@aws-sdk/client-s3';

export function localS3Client(endpoint, maxSockets = 64) {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // as README tells users to build their client (the middleware stack resolved once per command)
    cacheMiddleware: true,
    requestHandler: { httpAgent: new Agent({ keepAlive: true, maxSockets }) },
  });
}
