import { S3Client } from '@aws-sdk/client-s3';

/**
 * An S3 client for the benchmarks' local s3rver: path style, its fixed
 * credentials, checksums only when required (s3rver stores aws-chunked framing
 * otherwise), keep-alive sockets.
 */
export function localS3Client(endpoint: string, maxSockets = 64): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { httpAgent: { keepAlive: true, maxSockets } },
  });
}
