import { Agent } from 'node:http';
import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it, onTestFinished } from 'vitest';
import { S3WorkspaceSync, type SyncLogger } from '../../src/index.js';
import { createTestBucket, putObjects, s3Endpoint, TEST_CREDENTIALS, TEST_REGION } from '../helpers/s3.js';
import { tempDir } from '../helpers/sync-fixture.js';
import { readTree } from '../helpers/tree.js';

function recordingLogger(): SyncLogger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, debug: () => undefined, info: () => undefined, error: () => undefined, warn: (m: string) => warnings.push(m) };
}

function clientWithSockets(maxSockets: number): S3Client {
  const agent = new Agent({ keepAlive: true, maxSockets });
  const client = new S3Client({
    endpoint: s3Endpoint(),
    region: TEST_REGION,
    forcePathStyle: true,
    credentials: { ...TEST_CREDENTIALS },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: { httpAgent: agent },
  });
  onTestFinished(() => {
    client.destroy();
    agent.destroy();
  });
  return client;
}

describe('socket budget of a user-supplied client', () => {
  it('warns once when the client allows fewer sockets than the concurrency, and still syncs', async () => {
    const client = clientWithSockets(4);
    const bucket = await createTestBucket(client);
    await putObjects(client, bucket, { 'ws/a.txt': 'a', 'ws/b.txt': 'b' });
    const logger = recordingLogger();
    const ws = await tempDir();
    const sync = new S3WorkspaceSync({ bucket, prefix: 'ws', workspaceDir: ws, s3Client: client, logger, downloadConcurrency: 20 });
    expect((await sync.pull()).success).toBe(true);
    expect((await sync.push()).success).toBe(true);
    expect(logger.warnings.filter((w) => /allows 4 sockets but up to 20 transfers/.test(w))).toHaveLength(1);
    expect(Object.keys(await readTree(ws)).sort()).toEqual(['a.txt', 'b.txt']);
  });

  it('stays quiet when the pool is large enough', async () => {
    const client = clientWithSockets(64);
    const bucket = await createTestBucket(client);
    await putObjects(client, bucket, { 'ws/a.txt': 'a' });
    const logger = recordingLogger();
    const sync = new S3WorkspaceSync({ bucket, prefix: 'ws', workspaceDir: await tempDir(), s3Client: client, logger });
    expect((await sync.pull()).success).toBe(true);
    expect(logger.warnings).toEqual([]);
  });
});
