// Per-test fixture for integration tests against the run's local S3 server:
// a fresh client (destroyed when the test ends), a fresh bucket, temp dirs
// removed when the test ends, and S3WorkspaceSync instances wired to them.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

import type { S3Client } from '@aws-sdk/client-s3';
import { onTestFinished } from 'vitest';

import { S3WorkspaceSync, silentLogger, type S3WorkspaceSyncOptions } from '../../src/index.js';
import { createTestBucket, makeTestClient } from './s3.js';
import { makeTempDir } from './tree.js';

/** A temp dir removed when the current test finishes. */
export async function tempDir(prefix?: string): Promise<string> {
  const t = await makeTempDir(prefix);
  onTestFinished(t.cleanup);
  return t.dir;
}

/** A client for the local server, destroyed when the current test finishes. */
export function testClient(): S3Client {
  const client = makeTestClient();
  onTestFinished(() => client.destroy());
  return client;
}

export interface Fixture {
  /** Client used by the sync instances made with `sync()` (unless overridden). */
  client: S3Client;
  /** A second, independent client ("another writer"). */
  other: S3Client;
  bucket: string;
  /** New S3WorkspaceSync on this bucket; defaults: prefix `ws/`, silent logger, `client`. */
  sync(options: Partial<S3WorkspaceSyncOptions> & { workspaceDir: string }): S3WorkspaceSync;
}

export async function fixture(): Promise<Fixture> {
  const client = testClient();
  const other = testClient();
  const bucket = await createTestBucket(other);
  return {
    client,
    other,
    bucket,
    sync: (options) =>
      new S3WorkspaceSync({ bucket, prefix: 'ws/', s3Client: client, logger: silentLogger, ...options }),
  };
}

/**
 * Every file (any type, not only regular files) under `root`, as sorted posix
 * relative paths. A library state directory (`.s3-workspace-sync/`, at any
 * depth, so also in a workspace under `root`) is left out when it holds
 * nothing but state files (`state-<16 hex>.json`), unless `includeState` is
 * set; anything else in it is listed.
 */
export async function listEntries(root: string, options: { includeState?: boolean } = {}): Promise<string[]> {
  const out: string[] = [];
  const walk = async (abs: string, rel: string): Promise<void> => {
    for (const e of await readdir(abs, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.name === '.s3-workspace-sync' && e.isDirectory() && options.includeState !== true) {
        const inside = await readdir(path.join(abs, e.name));
        // state files, the temp file of a save a crash interrupted, and the recovery area (see recoveredFiles)
        if (inside.every((n) => n === 'recovered' || /^state-[0-9a-f]{16}\.json(\.[0-9a-f]{12}\.tmp)?$/.test(n))) continue;
      }
      out.push(e.isDirectory() ? `${r}/` : r);
      if (e.isDirectory()) await walk(path.join(abs, e.name), r);
    }
  };
  await walk(root, '');
  return out.sort();
}

/**
 * Every file in the workspace's recovery area
 * (`.s3-workspace-sync/recovered/<time>/<path>`), by `<path>`, with its bytes;
 * sorted by path. A path moved aside by two syncs appears once per sync, as
 * `<path>` and `<path>#2`… in time order.
 */
export async function recoveredFiles(ws: string): Promise<Record<string, Buffer>> {
  const base = path.join(ws, '.s3-workspace-sync', 'recovered');
  const stamps = (await readdir(base).catch(() => [] as string[])).sort();
  const out: Record<string, Buffer> = {};
  for (const stamp of stamps) {
    const walk = async (abs: string, rel: string): Promise<void> => {
      for (const e of await readdir(abs, { withFileTypes: true })) {
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) await walk(path.join(abs, e.name), r);
        else {
          let name = r;
          for (let n = 2; name in out; n++) name = `${r}#${n}`;
          out[name] = await readFile(path.join(abs, e.name));
        }
      }
    };
    await walk(path.join(base, stamp), '');
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** MD5 of bytes as lowercase hex. */
export function md5Hex(data: string | Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

/** MD5 of bytes as base64 (the form of Content-MD5 and of the `md5chksum` metadata). */
export function md5Base64(data: string | Buffer): string {
  return createHash('md5').update(data).digest('base64');
}
