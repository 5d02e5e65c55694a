import { S3Client } from '@aws-sdk/client-s3';
import { Agent } from 'node:http';
import { describe, expect, it, vi } from 'vitest';
import { ProgressTracker } from '../../src/events.js';
import { ConfigError, escapeForLog, IncompleteSyncError } from '../../src/errors.js';
import { createDefaultLogger } from '../../src/logger.js';
import { clientMaxSockets, resolveOptions } from '../../src/options.js';
import type { SyncProgress } from '../../src/types.js';

describe('ProgressTracker', () => {
  it('emits the first, the last, and at most one event per interval in between', () => {
    let now = 0;
    const events: SyncProgress[] = [];
    const t = new ProgressTracker('download', 5, 500, (p) => events.push(p), () => now);
    t.addBytes(100);
    t.fileDone('a'); // first → emitted
    now = 10;
    t.addBytes(100);
    t.fileDone('b'); // throttled
    now = 150;
    t.fileDone('c'); // interval passed → emitted
    now = 160;
    t.fileDone('d'); // throttled
    t.addBytes(200); // throttled
    now = 400;
    t.addBytes(50, { path: 'e', size: 200 }); // bytes alone, interval passed → emitted (no file finished), naming the file
    t.addBytes(-50); // a failed attempt gives its bytes back: never emitted
    t.fileDone('e'); // last → emitted
    expect(events).toEqual([
      { phase: 'download', current: 1, total: 5, percentage: 20, transferredBytes: 100, totalBytes: 500, currentFile: 'a' },
      { phase: 'download', current: 3, total: 5, percentage: 60, transferredBytes: 200, totalBytes: 500, currentFile: 'c' },
      { phase: 'download', current: 4, total: 5, percentage: 80, transferredBytes: 450, totalBytes: 500, currentFile: 'e', currentFileBytes: 50, currentFileSize: 200 },
      { phase: 'download', current: 5, total: 5, percentage: 100, transferredBytes: 400, totalBytes: 500, currentFile: 'e' },
    ]);
  });
});

describe('resolveOptions', () => {
  const base = { bucket: 'bkt', prefix: 'p', workspaceDir: '/tmp/ws', s3Client: new S3Client({ region: 'us-east-1' }) };

  it('fills defaults in one place', () => {
    const r = resolveOptions(base);
    expect(r).toMatchObject({ prefix: 'p/', downloadConcurrency: 50, uploadConcurrency: 10, ownsClient: false, ignorePatterns: [] });
    expect(r.contentTypeResolver('a.json')).toBe('application/json; charset=utf-8');
  });

  it('hashThreads: default one less than the CPUs (1 to 4); 0 allowed; prehashMultipart off by default', async () => {
    const { availableParallelism } = await import('node:os');
    const r = resolveOptions(base);
    expect(r.hashThreads).toBe(Math.min(4, Math.max(1, availableParallelism() - 1)));
    expect(r.prehashMultipart).toBe(false);
    expect(resolveOptions({ ...base, hashThreads: 0 }).hashThreads).toBe(0);
    expect(resolveOptions({ ...base, prehashMultipart: true }).prehashMultipart).toBe(true);
  });

  it('takes the region from AWS_REGION, else us-east-1', () => {
    const saved = process.env.AWS_REGION;
    try {
      process.env.AWS_REGION = 'eu-west-3';
      expect(resolveOptions({ bucket: 'bkt', prefix: '', workspaceDir: '/w' }).region).toBe('eu-west-3');
      delete process.env.AWS_REGION;
      expect(resolveOptions({ bucket: 'bkt', prefix: '', workspaceDir: '/w' }).region).toBe('us-east-1');
      expect(resolveOptions({ bucket: 'bkt', prefix: '', workspaceDir: '/w', region: 'ap-south-1' }).region).toBe('ap-south-1');
    } finally {
      if (saved === undefined) delete process.env.AWS_REGION;
      else process.env.AWS_REGION = saved;
    }
  });

  it.each([
    [{ bucket: '' }, /bucket/],
    [{ workspaceDir: '' }, /workspaceDir/],
    [{ prefix: undefined }, /prefix/],
    [{ prefix: 'a/../b' }, /prefix/],
    [{ downloadConcurrency: 0 }, /downloadConcurrency/],
    [{ uploadConcurrency: 1.5 }, /uploadConcurrency/],
    [{ ignorePatterns: 'dist/' }, /ignorePatterns/],
    [{ contentTypeResolver: 'text/plain' }, /contentTypeResolver/],
    [{ hashThreads: -1 }, /hashThreads/],
    [{ hashThreads: 1.5 }, /hashThreads/],
    [{ hashThreads: 65 }, /hashThreads/],
    [{ prehashMultipart: 'yes' }, /prehashMultipart/],
  ])('refuses %j with a ConfigError', (override, message) => {
    expect(() => resolveOptions({ ...base, ...(override as object) } as never)).toThrow(ConfigError);
    expect(() => resolveOptions({ ...base, ...(override as object) } as never)).toThrow(message);
  });

  it('builds a client whose agents allow as many sockets as the larger concurrency', async () => {
    const r = resolveOptions({ bucket: 'bkt', prefix: '', workspaceDir: '/w', downloadConcurrency: 70, uploadConcurrency: 20 });
    expect(r.ownsClient).toBe(true);
    expect(r.client.config.requestChecksumCalculation).toBeDefined();
    expect(await clientMaxSockets(r.client, 'https:')).toBe(70);
    expect(await clientMaxSockets(r.client, 'http:')).toBe(70);
    r.client.destroy();
  });

  it('reads the socket limit of a user-supplied client', async () => {
    const client = new S3Client({ region: 'us-east-1', requestHandler: { httpAgent: new Agent({ maxSockets: 4 }) } });
    expect(await clientMaxSockets(client, 'http:')).toBe(4);
    expect(await clientMaxSockets(client, 'https:')).toBe(50); // the SDK's default agent
  });
});

describe('errors and logging', () => {
  it('escapes control characters', () => {
    expect(escapeForLog('a\nb\u0000c')).toBe('a\\u000ab\\u0000c');
  });

  it('IncompleteSyncError carries the result', () => {
    const plan = { direction: 'pull' as const, transfers: [], deletions: [], skipped: [], keptLocal: [], failures: [], conflicts: [], unchangedFiles: 0, transferBytes: 0 };
    const result = { success: false, downloadedFiles: 0, uploadedFiles: 0, deletedFiles: 0, skippedFiles: [], failedFiles: [{ path: 'a', error: 'boom' }], errors: ['a: boom'], bytesTransferred: 0, duration: 1, hashedFiles: 0, keptLocal: [], movedAside: [], conflicts: [], dryRun: false, plan };
    const e = new IncompleteSyncError(result);
    expect(e.code).toBe('INCOMPLETE');
    expect(e.result).toBe(result);
    expect(e.message).toContain('1 failed');
  });

  it('the default logger drops debug unless S3_WORKSPACE_SYNC_DEBUG is set', () => {
    const debug = vi.spyOn(console, 'debug').mockImplementation(() => undefined);
    const info = vi.spyOn(console, 'info').mockImplementation(() => undefined);
    try {
      createDefaultLogger({}).debug('hidden');
      createDefaultLogger({}).info('shown');
      createDefaultLogger({ S3_WORKSPACE_SYNC_DEBUG: '1' }).debug('visible');
      expect(debug.mock.calls.map((c) => c[1])).toEqual(['visible']);
      expect(info.mock.calls.map((c) => c[1])).toEqual(['shown']);
    } finally {
      debug.mockRestore();
      info.mockRestore();
    }
  });
});
