// The library's own S3Client resolves its middleware stack once per command
// type (`cacheMiddleware`), and S3ObjectStore sends without an options object
// when there is no signal, which is what lets that cache work (the SDK
// rebuilds the stack for every send() given options).
import { Readable } from 'node:stream';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it, vi } from 'vitest';
import { resolveOptions } from '../../src/options.js';
import { softSignal } from '../../src/storage/ObjectStore.js';
import { S3ObjectStore } from '../../src/storage/S3ObjectStore.js';

describe('middleware cache', () => {
  it('the client built when none is given caches its middleware; a given client is left as it is', () => {
    const own = resolveOptions({ bucket: 'bkt', prefix: 'p', workspaceDir: '/tmp/x' });
    expect(own.client.config.cacheMiddleware).toBe(true);
    own.client.destroy();
    const given = new S3Client({ region: 'us-east-1' });
    const resolved = resolveOptions({ bucket: 'bkt', prefix: 'p', workspaceDir: '/tmp/x', s3Client: given });
    expect(resolved.client).toBe(given);
    expect(given.config.cacheMiddleware).toBeUndefined();
    given.destroy();
  });

  it('S3ObjectStore (a client that detects stalls itself) sends without an options object when there is no signal or only a soft one, with { abortSignal } when there is', async () => {
    const send = vi.fn(async (..._args: unknown[]) => ({ Body: Readable.from([Buffer.from('x')]), ContentLength: 1, ETag: '"9dd4e461268c8034f5c8564e155c67a6"' }));
    const store = new S3ObjectStore({ send } as unknown as S3Client, 'bkt', { clientDetectsStalls: true });
    await store.get('k');
    expect(send).toHaveBeenCalledTimes(1);
    expect(send.mock.calls[0]).toHaveLength(1);
    expect(send.mock.calls[0]![0]).toBeInstanceOf(GetObjectCommand);
    const ac = new AbortController();
    await store.get('k', ac.signal);
    expect(send.mock.calls[1]).toEqual([expect.any(GetObjectCommand), { abortSignal: ac.signal }]);
    // the instance's destroy() signal, when the caller gave none: not handed to the SDK (its middleware cache stays on)
    await store.get('k', softSignal(new AbortController().signal));
    expect(send.mock.calls[2]).toHaveLength(1);
  });
});
