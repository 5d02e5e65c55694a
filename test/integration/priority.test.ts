// Priority restore: startBackgroundPull({ priority }) downloads those paths
// first; waitForPaths() / waitForPull({ paths }) resolves as soon as they are
// restored while the rest goes on, and never for paths that were not.
import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';

import { S3ServiceException, type S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';

import { ConfigError, IncompletePathsError, IncompleteSyncError, StorageError } from '../../src/index.js';
import { recordCommands } from '../helpers/commands.js';
import { putObjects } from '../helpers/s3.js';
import { fixture, tempDir } from '../helpers/sync-fixture.js';
import { readTree, writeTree } from '../helpers/tree.js';

const REMOTE: Record<string, string> = {
  'ws/README.md': 'readme',
  'ws/src/a.ts': 'a',
  'ws/src/b.ts': 'b',
  'ws/config/app.json': '{"app":1}',
  'ws/config/nested/db.json': '{"db":1}',
  'ws/.agents/plan.md': 'plan',
  'ws/zzz/late.bin': 'late',
};

/** Hold every GET whose key matches until `open()`; `held()` tells how many are waiting. */
function gateGets(client: S3Client, matches: (key: string) => boolean): { open(): void; held(): number } {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  let held = 0;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const key = String((args.input as { Key?: unknown }).Key ?? '');
      if (context.commandName === 'GetObjectCommand' && matches(key)) {
        held++;
        await gate;
      }
      return next(args);
    },
    { step: 'initialize', name: 'testGateGets' },
  );
  return { open: () => release(), held: () => held };
}

/** Fail every GET of the given key with a 500 (after the SDK's retries). */
function failGets(client: S3Client, key: string): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'GetObjectCommand' && (args.input as { Key?: unknown }).Key === key) {
        throw new S3ServiceException({ name: 'InternalError', $fault: 'server', $metadata: { httpStatusCode: 500 }, message: 'injected' });
      }
      return next(args);
    },
    { step: 'initialize', name: 'testFailGets' },
  );
}

describe('priority restore', () => {
  it('priority paths are downloaded first, in the order given, then the rest', { timeout: 20_000 }, async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, REMOTE);
    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws, downloadConcurrency: 1 });
    const log = recordCommands(f.client);
    sync.startBackgroundPull({ priority: ['.agents/', 'config'] });
    await sync.waitForPull();
    const order = log.keys('GetObjectCommand');
    expect(order.slice(0, 3)).toEqual(['ws/.agents/plan.md', 'ws/config/app.json', 'ws/config/nested/db.json']);
    expect(order.slice(3).sort()).toEqual(['ws/README.md', 'ws/src/a.ts', 'ws/src/b.ts', 'ws/zzz/late.bin']);
  });

  it('waitForPaths() resolves once those paths are on disk while the rest of the pull is still held back', { timeout: 20_000 }, async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, REMOTE);
    const ws = await tempDir();
    const gate = gateGets(f.client, (key) => !key.startsWith('ws/config/') && !key.startsWith('ws/.agents/'));
    const sync = f.sync({ workspaceDir: ws, downloadConcurrency: 4 });
    sync.startBackgroundPull({ priority: ['config/', '.agents/'] });

    const ready = await sync.waitForPaths(['config/', '.agents/']);
    expect(ready).toEqual({ paths: ['config/', '.agents/'], downloaded: 3, deleted: 0, unchanged: 0 });
    expect(await readFile(path.join(ws, 'config/nested/db.json'), 'utf8')).toBe('{"db":1}');
    expect(await readFile(path.join(ws, '.agents/plan.md'), 'utf8')).toBe('plan');
    // the rest is genuinely not there yet
    expect(sync.isPullComplete()).toBe(false);
    await expect(stat(path.join(ws, 'zzz/late.bin'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(gate.held()).toBeGreaterThan(0);

    gate.open();
    const all = await sync.waitForPull();
    expect(all).toMatchObject({ success: true, downloadedFiles: 7 });
    expect(sync.isPullComplete()).toBe(true);
    // after the pull, waiting again (a file path this time) resolves at once
    expect(await sync.waitForPull({ paths: ['README.md'] })).toEqual({ paths: ['README.md'], downloaded: 1, deleted: 0, unchanged: 0 });
  });

  it('a failed file under the paths rejects waitForPaths with IncompletePathsError; the pull is not reported complete', { timeout: 30_000 }, async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, REMOTE);
    const ws = await tempDir();
    failGets(f.client, 'ws/config/nested/db.json');
    const sync = f.sync({ workspaceDir: ws, maxAttempts: 1 });
    sync.startBackgroundPull({ priority: ['config/'] });
    const waited = sync.waitForPaths(['config/']);
    const other = sync.waitForPaths(['src/']);
    const error = await waited.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IncompletePathsError);
    expect((error as IncompletePathsError).failedFiles.map((x) => x.path)).toEqual(['config/nested/db.json']);
    // other paths are restored all the same
    expect(await other).toMatchObject({ downloaded: 2 });
    await expect(sync.waitForPull()).rejects.toBeInstanceOf(IncompleteSyncError);
    expect(sync.isPullComplete()).toBe(false);
    await expect(stat(path.join(ws, 'config/nested/db.json'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('paths already identical locally resolve without downloads; a path with a pending local deletion waits for it', { timeout: 20_000 }, async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, REMOTE);
    const ws = await tempDir();
    await writeTree(ws, { 'config/app.json': '{"app":1}', 'config/nested/db.json': '{"db":1}', 'config/stale.json': 'gone remotely' });
    const sync = f.sync({ workspaceDir: ws });
    const ready = await sync.waitForPaths(['config/']);
    expect(ready).toEqual({ paths: ['config/'], downloaded: 0, deleted: 1, unchanged: 2 });
    expect(Object.keys(await readTree(path.join(ws, 'config'))).sort()).toEqual(['app.json', 'nested/db.json']);
    await sync.waitForPull();
  });

  it('a pull that fails as a whole rejects waitForPaths with its own error; a later call starts a new attempt', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws });
    const missing = f.sync({ workspaceDir: ws, bucket: `t-missing-${randomBytes(6).toString('hex')}` });
    await expect(missing.waitForPaths(['config/'])).rejects.toBeInstanceOf(StorageError);
    await putObjects(f.other, f.bucket, REMOTE);
    expect(await sync.waitForPaths(['config/'])).toMatchObject({ downloaded: 2 });
  });

  it('invalid paths or priority entries are refused with a ConfigError', async () => {
    const f = await fixture();
    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws });
    await expect(sync.waitForPaths(['../etc'])).rejects.toBeInstanceOf(ConfigError);
    await expect(sync.waitForPaths('config/' as unknown as string[])).rejects.toBeInstanceOf(ConfigError);
    await expect(sync.pull({ priority: ['/abs'] })).rejects.toBeInstanceOf(ConfigError);
  });
});
