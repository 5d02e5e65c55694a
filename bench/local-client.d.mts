import type { S3Client } from '@aws-sdk/client-s3';

/** An S3 client for the benchmarks' local s3rver (path style, its credentials, WHEN_REQUIRED checksums, keep-alive sockets). */
export function localS3Client(endpoint: string, maxSockets?: number): S3Client;
