// ─────────────────────────────────────────────────────────────────────────────
// FOR THE LEAD: facade-level tests of the `stallTimeoutMs` option.
// They SKIP until options.ts / S3WorkspaceSync.ts wire the option (detected by
// resolveOptions() accepting `stallTimeoutMs` and returning it); once wired
// they run with no edit. Wiring expected (see the stall-detection change note):
//   - options: `stallTimeoutMs?: number` (default 20_000, 0 = off, else 100 to
//     3_600_000 ms); resolved as `stallTimeoutMs`;
//   - the client the library builds: requestHandler.socketTimeout =
//     stallTimeoutMs (60 s when it is 0) and connectionTimeout =
//     min(10 s, stallTimeoutMs);
//   - new S3ObjectStore(client, bucket, { expectedBucketOwner, stallTimeoutMs,
//     maxAttempts, clientDetectsStalls: ownsClient }).
// test/integration/stall.test.ts covers the same behaviour at the store level now.
// ─────────────────────────────────────────────────────────────────────────────
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it, onTestFinished } from 'vitest';

import { ConfigError, S3WorkspaceSync, StorageError, silentLogger, type S3WorkspaceSyncOptions } from '../../src/index.js';
import { resolveOptions } from '../../src/options.js';
import { TEST_CREDENTIALS, TEST_REGION } from '../helpers/s3.js';
import { startSilentServer } from '../helpers/stall-servers.js';
import { listEntries, tempDir } from '../helpers/sync-fixture.js';

const offline = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
const base = { bucket: 'bkt', prefix: 'ws/', workspaceDir: '/tmp/stall-option-ws', logger: silentLogger };

function wired(): boolean {
  try {
    const resolved = resolveOptions({ ...base, s3Client: offline, stallTimeoutMs: 300 } as S3WorkspaceSyncOptions) as unknown as { stallTimeoutMs?: unknown };
    return resolved.stallTimeoutMs === 300;
  } catch {
    return false;
  }
}

const withOption = (o: Record<string, unknown>): S3WorkspaceSyncOptions => ({ ...base, s3Client: offline, ...o }) as S3WorkspaceSyncOptions;

describe.skipIf(!wired())('stallTimeoutMs (facade option)', () => {
  it('defaults to 20 s; 0 turns the watchdog off; other values are refused with a ConfigError', () => {
    expect((resolveOptions(withOption({})) as unknown as { stallTimeoutMs: number }).stallTimeoutMs).toBe(20_000);
    expect((resolveOptions(withOption({ stallTimeoutMs: 0 })) as unknown as { stallTimeoutMs: number }).stallTimeoutMs).toBe(0);
    for (const bad of [-1, 50, Number.NaN, Infinity, '20000', 3_600_001]) {
      expect(() => resolveOptions(withOption({ stallTimeoutMs: bad }))).toThrow(ConfigError);
    }
  });

  it('the client the library builds times out idle sockets after stallTimeoutMs, and the store relies on it', async () => {
    const own = resolveOptions({ ...base, stallTimeoutMs: 15_000 } as S3WorkspaceSyncOptions);
    onTestFinished(() => own.client.destroy());
    const handler = own.client.config.requestHandler as unknown as { configProvider?: Promise<{ socketTimeout?: number; connectionTimeout?: number }> };
    const cfg = await handler.configProvider;
    expect(cfg?.socketTimeout).toBe(15_000);
    expect(cfg?.connectionTimeout).toBeLessThanOrEqual(15_000);
    const sync = new S3WorkspaceSync({ ...base, stallTimeoutMs: 15_000 } as S3WorkspaceSyncOptions);
    onTestFinished(() => sync.destroy());
    expect((sync as unknown as { ctx: { store: { watchdog: boolean } } }).ctx.store.watchdog).toBe(false);
  });

  it("README's R2/MinIO client (no socket timeout) against a server that never answers: pull() rejects NETWORK within 3 × stallTimeoutMs + backoff", { timeout: 15_000 }, async () => {
    const server = await startSilentServer();
    onTestFinished(() => server.close());
    const client = new S3Client({
      region: TEST_REGION,
      endpoint: server.endpoint,
      forcePathStyle: true,
      credentials: { ...TEST_CREDENTIALS },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    onTestFinished(() => client.destroy());
    const dir = await tempDir();
    await writeFile(path.join(dir, 'keep.txt'), 'local');
    const sync = new S3WorkspaceSync({ bucket: 'bkt', prefix: 'ws/', workspaceDir: dir, s3Client: client, logger: silentLogger, stallTimeoutMs: 300 } as S3WorkspaceSyncOptions);
    const t0 = performance.now();
    const error = await sync.pull().then(
      () => undefined,
      (e: unknown) => e,
    );
    const ms = performance.now() - t0;
    expect(error).toBeInstanceOf(StorageError);
    expect(error).toMatchObject({ code: 'NETWORK', retryable: true });
    expect((error as Error).message).toMatch(/no data for 0\.3 s/);
    expect(ms).toBeLessThan(3 * 300 + 300 + 1_500);
    expect(server.requests()).toBe(3);
    expect(await listEntries(dir)).toEqual(['keep.txt']);
    expect(await readFile(path.join(dir, 'keep.txt'), 'utf8')).toBe('local');
  });
});
