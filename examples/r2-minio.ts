/**
 * Using s3-workspace-sync with S3-compatible servers: Cloudflare R2 and MinIO.
 *
 * Pass your own S3Client with `s3Client`. Two settings matter for every
 * S3-compatible server:
 *
 * - `requestChecksumCalculation: 'WHEN_REQUIRED'` and
 *   `responseChecksumValidation: 'WHEN_REQUIRED'`. The library sends
 *   Content-MD5 and verifies MD5s itself. With the SDK's default (flexible
 *   checksums on every request), streamed uploads are sent with `aws-chunked`
 *   framing, which some S3-compatible servers store inside the object.
 * - A socket pool at least as large as the concurrency: with a client you
 *   built, the library cannot size it (it warns once when it is too small).
 *   Also set a socket timeout so a stalled transfer fails instead of hanging.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import { DEFAULT_DOWNLOAD_CONCURRENCY, S3WorkspaceSync } from 's3-workspace-sync';

/** Shared HTTP settings: keep-alive sockets for every concurrent transfer, timeouts. */
const requestHandler = {
  httpAgent: new HttpAgent({ keepAlive: true, maxSockets: DEFAULT_DOWNLOAD_CONCURRENCY }),
  httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: DEFAULT_DOWNLOAD_CONCURRENCY }),
  connectionTimeout: 10_000,
  socketTimeout: 60_000,
};

/**
 * Cloudflare R2. Create an API token with Object Read & Write on the bucket;
 * it gives an access key id and a secret. The region is always `auto`.
 */
export function createR2Client(accountId: string, accessKeyId: string, secretAccessKey: string): S3Client {
  return new S3Client({
    region: 'auto',
    endpoint: `https://${accountId}.r2.cloudflarestorage.com`,
    credentials: { accessKeyId, secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler,
  });
}

/**
 * MinIO (or another self-hosted S3-compatible server). Path-style addressing
 * (`http://host:9000/bucket/key`), since bucket sub-domains usually do not
 * resolve. MinIO's default region is `us-east-1`.
 */
export function createMinioClient(endpoint: string, accessKeyId: string, secretAccessKey: string): S3Client {
  return new S3Client({
    region: 'us-east-1',
    endpoint, // e.g. 'http://127.0.0.1:9000' or 'https://minio.internal.example:9000'
    forcePathStyle: true,
    credentials: { accessKeyId, secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler,
  });
}

/** Example: restore a workspace from R2, work, push it back. */
export async function runWithR2(workspaceDir: string): Promise<void> {
  const client = createR2Client(env('R2_ACCOUNT_ID'), env('R2_ACCESS_KEY_ID'), env('R2_SECRET_ACCESS_KEY'));
  const sync = new S3WorkspaceSync({ bucket: env('R2_BUCKET'), prefix: 'agents/a1/', workspaceDir, s3Client: client });
  try {
    const pulled = await sync.pull();
    console.log(`pulled ${pulled.downloadedFiles} files`);
    // ... work on workspaceDir ...
    const pushed = await sync.push();
    console.log(`pushed ${pushed.uploadedFiles} files, deleted ${pushed.deletedFiles}`);
  } finally {
    client.destroy(); // the client is yours: sync.destroy() leaves it alone
  }
}

/** Example: the same against MinIO. */
export async function runWithMinio(workspaceDir: string): Promise<void> {
  const client = createMinioClient(env('MINIO_ENDPOINT'), env('MINIO_ACCESS_KEY'), env('MINIO_SECRET_KEY'));
  const sync = new S3WorkspaceSync({ bucket: env('MINIO_BUCKET'), prefix: 'agents/a1/', workspaceDir, s3Client: client });
  try {
    await sync.pull();
    // ... work on workspaceDir ...
    await sync.push();
  } finally {
    client.destroy();
  }
}

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
}
