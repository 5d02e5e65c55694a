import { setTimeout as sleep } from 'node:timers/promises';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it, onTestFinished } from 'vitest';
import { SyncAbortedError } from '../../src/index.js';
import { recordCommands } from '../helpers/commands.js';
import { startAtomicPutProxy } from '../helpers/atomic-put-proxy.js';
import { getObjectBytes, listAllKeys, putObjects, s3Endpoint, TEST_CREDENTIALS, TEST_REGION } from '../helpers/s3.js';
import { fixture, listEntries, tempDir } from '../helpers/sync-fixture.js';
import { readTree, writeTree } from '../helpers/tree.js';

const objects = (n: number, tag: string): Record<string, string> =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`ws/d${i % 3}/f${i}.txt`, `${tag} ${i} `.repeat(200)]));

const clientConfig = () => ({
  region: TEST_REGION,
  forcePathStyle: true,
  credentials: { ...TEST_CREDENTIALS },
  requestChecksumCalculation: 'WHEN_REQUIRED' as const,
  responseChecksumValidation: 'WHEN_REQUIRED' as const,
});

describe('cancellation', () => {
  it('an aborted pull stops, leaves no partial or temp file, reports what completed, and a later pull finishes', async () => {
    const f = await fixture();
    const remote = objects(30, 'new');
    await putObjects(f.other, f.bucket, remote);
    const ws = await tempDir();
    // old versions of every file: each must end either old or new, never partial
    await writeTree(ws, Object.fromEntries(Object.keys(remote).map((k) => [k.slice(3), 'old'])));
    const sync = f.sync({ workspaceDir: ws, downloadConcurrency: 2, overwriteLocalChanges: true });
    const controller = new AbortController();
    let gets = 0;
    recordCommands(f.client, async (name) => {
      if (name !== 'GetObjectCommand') return;
      gets++;
      if (gets === 8) controller.abort();
      await sleep(5);
    });
    const err = await sync.pull({ signal: controller.signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SyncAbortedError);
    const aborted = err as SyncAbortedError;
    expect(aborted.name).toBe('AbortError');
    expect(aborted.code).toBe('ABORTED');
    expect(aborted.result.downloadedFiles).toBeGreaterThan(0);
    expect(aborted.result.downloadedFiles).toBeLessThan(30);
    expect(aborted.result.failedFiles).toEqual([]);
    const entries = await listEntries(ws);
    expect(entries.filter((e) => e.endsWith('.s3ws-tmp'))).toEqual([]);
    const local = await readTree(ws);
    let fresh = 0;
    for (const [k, v] of Object.entries(remote)) {
      const got = local[k.slice(3)]?.toString();
      expect([v, 'old']).toContain(got);
      if (got === v) fresh++;
    }
    expect(fresh).toBe(aborted.result.downloadedFiles);

    const done = await sync.pull();
    expect(done.success).toBe(true);
    expect(done.downloadedFiles).toBe(30 - fresh);
    for (const [k, v] of Object.entries(remote)) expect((await readTree(ws))[k.slice(3)]?.toString()).toBe(v);
  });

  it('an aborted push uploads part of the files, deletes nothing, and a later push finishes', async () => {
    const f = await fixture();
    // S3 stores a PUT whole or not at all; s3rver keeps the partial body of a
    // PUT whose client went away. The proxy forwards only complete PUTs, as S3 would.
    const proxy = await startAtomicPutProxy(s3Endpoint());
    const client = new S3Client({ ...clientConfig(), endpoint: proxy.endpoint });
    onTestFinished(async () => {
      client.destroy();
      await proxy.stop();
    });
    const ws = await tempDir();
    await writeTree(ws, { 'old.txt': 'to be deleted' });
    const sync = f.sync({ workspaceDir: ws, uploadConcurrency: 2, s3Client: client });
    await sync.push();
    await writeTree(ws, Object.fromEntries(Object.entries(objects(20, 'v')).map(([k, v]) => [k.slice(3), v])));
    await rm(path.join(ws, 'old.txt'));
    const controller = new AbortController();
    let puts = 0;
    recordCommands(client, async (name) => {
      if (name !== 'PutObjectCommand') return;
      if (++puts === 5) controller.abort();
      await sleep(5);
    });
    const err = (await sync.push({ signal: controller.signal }).catch((e: unknown) => e)) as SyncAbortedError;
    expect(err).toBeInstanceOf(SyncAbortedError);
    expect(err.result.deletedFiles).toBe(0);
    await proxy.idle();
    const keys = await listAllKeys(f.other, f.bucket);
    expect(keys).toContain('ws/old.txt');
    // every object present is complete
    for (const key of keys.filter((k) => k !== 'ws/old.txt')) {
      expect((await getObjectBytes(f.other, f.bucket, key)).toString()).toBe(objects(20, 'v')[key]);
    }
    const done = await sync.push();
    expect(done.success).toBe(true);
    expect(done.deletedFiles).toBe(1);
    expect((await listAllKeys(f.other, f.bucket)).sort()).toEqual(Object.keys(objects(20, 'v')).sort());
  });

  it('an already aborted signal changes nothing', async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, { 'ws/a.txt': 'a' });
    const ws = await tempDir();
    const err = await f.sync({ workspaceDir: ws }).pull({ signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SyncAbortedError);
    expect(await listEntries(ws)).toEqual([]);
  });

  it('a background pull takes a signal: waitForPull rejects with SyncAbortedError, and the next attempt succeeds', async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, { 'ws/a.txt': 'a' });
    const ws = await tempDir();
    const sync = f.sync({ workspaceDir: ws });
    sync.startBackgroundPull({ signal: AbortSignal.abort() });
    await expect(sync.waitForPull()).rejects.toBeInstanceOf(SyncAbortedError);
    expect(sync.isPullComplete()).toBe(false);
    await expect(sync.waitForPull()).resolves.toMatchObject({ success: true, downloadedFiles: 1 });
    expect(sync.isPullComplete()).toBe(true);
  });

  it('timeoutMs aborts a slow sync with code TIMEOUT', async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, objects(6, 't'));
    const ws = await tempDir();
    recordCommands(f.client, async (name) => {
      if (name === 'GetObjectCommand') await sleep(400);
    });
    const sync = f.sync({ workspaceDir: ws, downloadConcurrency: 1, timeoutMs: 600 });
    const started = Date.now();
    const err = (await sync.pull().catch((e: unknown) => e)) as SyncAbortedError;
    expect(err).toBeInstanceOf(SyncAbortedError);
    expect(err.code).toBe('TIMEOUT');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect((await listEntries(ws)).filter((e) => e.endsWith('.s3ws-tmp'))).toEqual([]);
  });
});
