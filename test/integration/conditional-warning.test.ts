// The default conditional-write check (no requireConditionalWrites): before the
// first push that writes, the library probes whether the server enforces
// If-None-Match / If-Match (2 PUTs + 1 delete of a scratch key in
// `<prefix>.s3-workspace-sync/`, cached) and, where it does not, warns once per
// instance that pushes are last-writer-wins. Never fails the push.
//
// Three servers: s3rver (ignores conditional writes: a documented s3rver gap,
// see test/helpers/s3.ts), the strict S3 double (test/helpers/strict-s3.ts,
// enforces them, over the real SDK) and the in-memory store (enforces them).
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';

import { S3WorkspaceSync, type S3WorkspaceSyncOptions, type SyncLogger } from '../../src/index.js';
import { MemoryObjectStore, s3LikeError } from '../../src/storage/MemoryObjectStore.js';
import { MAX_INCONCLUSIVE } from '../../src/pipeline/capabilities.js';
import { PROBE_NAME_PREFIX } from '../../src/storage/capabilities.js';
import { recordCommands } from '../helpers/commands.js';
import { isProbeInput, isProbeKey } from '../helpers/probe.js';
import { listAllKeys } from '../helpers/s3.js';
import { startStrictS3, type StrictS3 } from '../helpers/strict-s3.js';
import { fixture, tempDir } from '../helpers/sync-fixture.js';
import { writeTree } from '../helpers/tree.js';

const PREFIX = 'ws/';

/** A logger that keeps every line, by level. */
function capture(): SyncLogger & { lines: Record<'debug' | 'info' | 'warn' | 'error', string[]> } {
  const lines = { debug: [] as string[], info: [] as string[], warn: [] as string[], error: [] as string[] };
  return {
    lines,
    debug: (m) => void lines.debug.push(m),
    info: (m) => void lines.info.push(m),
    warn: (m) => void lines.warn.push(m),
    error: (m) => void lines.error.push(m),
  };
}

const conditionalWarnings = (log: ReturnType<typeof capture>): string[] => log.lines.warn.filter((l) => /conditional writes/.test(l));
const PROBE_KEY = new RegExp(`^${PREFIX}${PROBE_NAME_PREFIX.replace(/[.]/g, '\\.')}`);

describe('default conditional-write check on s3rver (ignores conditions)', () => {
  it('one clear warning across two writing pushes of one instance; none for a pull or a no-op push', { timeout: 30_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    const log = capture();
    const commands = recordCommands(f.client);
    const sync = f.sync({ workspaceDir: ws, logger: log });

    // a pull of the empty prefix, then a push with nothing to write: no probe, no warning
    expect((await sync.pull()).success).toBe(true);
    expect((await sync.push()).uploadedFiles).toBe(0);
    expect(commands.calls.filter((c) => isProbeInput(c.input))).toEqual([]);
    expect(conditionalWarnings(log)).toEqual([]);

    await writeTree(ws, { 'a.txt': 'a' });
    commands.reset();
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 1 });
    // the probe: 2 PUTs and 1 delete of one scratch key, before the upload
    const probe = commands.calls.filter((c) => isProbeInput(c.input));
    expect(probe.map((c) => c.name)).toEqual(['PutObjectCommand', 'PutObjectCommand', 'DeleteObjectsCommand']);
    expect(probe[1]!.input.Key).toBe(probe[0]!.input.Key);
    const upload = commands.calls.findIndex((c) => c.name === 'PutObjectCommand' && c.input.Key === `${PREFIX}a.txt`);
    expect(upload).toBeGreaterThan(commands.calls.indexOf(probe[1]!));

    const warnings = conditionalWarnings(log);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`s3://${f.bucket}/${PREFIX}`);
    expect(warnings[0]).toContain('ignores conditional writes');
    expect(warnings[0]).toContain('last-writer-wins');
    expect(warnings[0]).toContain('overwritten');
    expect(warnings[0]).toContain('requireConditionalWrites');

    // a second writing push, a no-op push and a pull: the answer is cached, no probe, no second warning
    commands.reset();
    await writeFile(path.join(ws, 'a.txt'), 'a2');
    await writeTree(ws, { 'b.txt': 'b' });
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 2 });
    expect((await sync.push()).uploadedFiles).toBe(0);
    expect((await sync.pull()).success).toBe(true);
    expect(commands.calls.filter((c) => isProbeInput(c.input))).toEqual([]);
    expect(conditionalWarnings(log)).toHaveLength(1);
    // the answer, without reading logs and without another request
    expect(await sync.checkConditionalWrites()).toBe('ignored');
    expect(commands.calls.filter((c) => isProbeInput(c.input))).toEqual([]);
    // no scratch object left behind
    expect((await listAllKeys(f.other, f.bucket)).filter(isProbeKey)).toEqual([]);
  });

  it('a dry run writes nothing: no probe, no warning', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'a' });
    const log = capture();
    const commands = recordCommands(f.client);
    const result = await f.sync({ workspaceDir: ws, logger: log }).push({ dryRun: true });
    expect(result.plan.transfers).toHaveLength(1);
    expect(commands.calls.filter((c) => c.name === 'PutObjectCommand')).toEqual([]);
    expect(conditionalWarnings(log)).toEqual([]);
  });

  it('each instance warns once (the probe itself runs once per process and bucket)', { timeout: 30_000 }, async () => {
    const f = await fixture();
    const commands = recordCommands(f.client);
    const logs = [capture(), capture()];
    for (const log of logs) {
      const ws = await tempDir();
      await writeTree(ws, { [`${logs.indexOf(log)}.txt`]: 'x' });
      expect((await f.sync({ workspaceDir: ws, logger: log, prefix: PREFIX }).push()).success).toBe(true);
      expect(conditionalWarnings(log)).toHaveLength(1);
    }
    expect(commands.keysAll('PutObjectCommand').filter(isProbeKey)).toHaveLength(2); // one probe: 2 PUTs of one key
  });

  it('a probe that fails does not fail the push (and is tried again at the next writing push)', { timeout: 30_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'a' });
    const log = capture();
    let failProbe = true;
    const commands = recordCommands(f.client, (name, input) => {
      if (failProbe && name === 'PutObjectCommand' && isProbeKey(String(input.Key))) {
        throw Object.assign(new Error('socket hang up'), { name: 'TimeoutError', code: 'ECONNRESET', $metadata: {} });
      }
    });
    const sync = f.sync({ workspaceDir: ws, logger: log });
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 1, failedFiles: [] });
    expect(commands.keysAll('PutObjectCommand').filter(isProbeKey)).toHaveLength(1); // the first PUT failed: no second
    expect(conditionalWarnings(log)).toEqual([]); // a transient failure: a debug line only
    expect(log.lines.debug.some((l) => l.includes('conditional-write check inconclusive'))).toBe(true);
    expect((await listAllKeys(f.other, f.bucket)).sort()).toContain(`${PREFIX}a.txt`);

    failProbe = false;
    await writeFile(path.join(ws, 'a.txt'), 'a2');
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 1 });
    expect(commands.keysAll('PutObjectCommand').filter(isProbeKey)).toHaveLength(3);
    expect(conditionalWarnings(log)).toHaveLength(1);
  });

  it('requireConditionalWrites keeps refusing (and does not warn besides)', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'a' });
    const log = capture();
    await expect(f.sync({ workspaceDir: ws, logger: log, requireConditionalWrites: true }).push()).rejects.toMatchObject({
      code: 'CONDITIONAL_WRITES_UNSUPPORTED',
    });
    expect(conditionalWarnings(log)).toEqual([]);
  });

  it('an abort during the probe still aborts the push', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'a' });
    const controller = new AbortController();
    const commands = recordCommands(f.client, (name, input) => {
      if (name === 'PutObjectCommand' && isProbeKey(String(input.Key))) controller.abort();
    });
    await expect(f.sync({ workspaceDir: ws, logger: capture() }).push({ signal: controller.signal })).rejects.toMatchObject({
      name: 'AbortError',
      code: 'ABORTED',
    });
    expect(commands.keys('PutObjectCommand')).toEqual([]); // nothing of the workspace
    expect((await listAllKeys(f.other, f.bucket)).filter((k) => k.endsWith('a.txt'))).toEqual([]);
  });
});

describe('default conditional-write check on the strict S3 double (enforces conditions)', () => {
  let s3: StrictS3;
  beforeAll(async () => {
    s3 = await startStrictS3({ buckets: ['warn'] });
  });
  afterAll(async () => {
    await s3.close();
  });

  it('no warning; the probe is 2 PUTs + 1 delete, once', { timeout: 20_000 }, async () => {
    const client = new S3Client({
      endpoint: s3.endpoint,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    onTestFinished(() => client.destroy());
    const commands = recordCommands(client);
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'a' });
    const log = capture();
    const sync = new S3WorkspaceSync({ bucket: 'warn', prefix: PREFIX, workspaceDir: ws, s3Client: client, logger: log, persistState: false });
    onTestFinished(() => sync.destroy());
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 1 });
    await writeFile(path.join(ws, 'a.txt'), 'a2');
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 1 });
    expect(conditionalWarnings(log)).toEqual([]);
    expect(log.lines.warn).toEqual([]);
    const probes = s3.state.requests.filter((r) => r.key !== undefined && isProbeKey(r.key));
    expect(probes.map((r) => r.op)).toEqual(['PutObject', 'PutObject']);
    expect(probes.map((r) => r.status)).toEqual([200, 412]);
    expect(commands.calls.filter((c) => isProbeInput(c.input)).map((c) => c.name)).toEqual(['PutObjectCommand', 'PutObjectCommand', 'DeleteObjectsCommand']);
    expect(s3.state.keys('warn').filter(isProbeKey)).toEqual([]);
    expect(s3.state.keys('warn')).toContain(`${PREFIX}a.txt`);
    expect(await sync.checkConditionalWrites()).toBe('enforced');
  });
});

describe('default conditional-write check on the in-memory store (enforces conditions)', () => {
  async function setup(extra: Partial<S3WorkspaceSyncOptions> = {}) {
    const store = new MemoryObjectStore();
    // the keys each push writes and deletes (its requests, the library's own objects included)
    const puts: string[] = [];
    const deletes: string[] = [];
    const put = store.put.bind(store);
    const deleteMany = store.deleteMany.bind(store);
    store.put = (input) => (puts.push(input.key), put(input));
    store.deleteMany = (keys, signal) => (deletes.push(...keys.map((k) => (typeof k === 'string' ? k : k.key))), deleteMany(keys, signal));
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'a' });
    const log = capture();
    const sync = new S3WorkspaceSync(
      { bucket: 'mem', prefix: PREFIX, workspaceDir: ws, logger: log, persistState: false, ...extra },
      { store: () => store },
    );
    onTestFinished(() => sync.destroy());
    const probeRequests = () => ({ puts: puts.filter(isProbeKey).length, deletes: deletes.filter(isProbeKey).length });
    const reset = () => {
      puts.length = 0;
      deletes.length = 0;
    };
    return { store, ws, log, sync, puts, probeRequests, reset };
  }

  it('no warning; the probe costs 2 PUTs + 1 delete at the first writing push, nothing later', { timeout: 10_000 }, async () => {
    const { store, ws, log, sync, puts, probeRequests, reset } = await setup();
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 1 });
    expect(probeRequests()).toEqual({ puts: 2, deletes: 1 });
    expect(puts.indexOf(`${PREFIX}a.txt`)).toBeGreaterThan(puts.findLastIndex(isProbeKey)); // probed before the upload
    reset();
    await writeFile(path.join(ws, 'a.txt'), 'a2');
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 1 });
    expect(probeRequests()).toEqual({ puts: 0, deletes: 0 });
    expect(puts).toContain(`${PREFIX}a.txt`);
    expect(log.lines.warn).toEqual([]);
    expect(store.keys(PREFIX).filter(isProbeKey)).toEqual([]);
    expect(await sync.checkConditionalWrites()).toBe('enforced');
  });

  it('a probe that fails (throttled) does not fail the push; it is tried again next time', { timeout: 10_000 }, async () => {
    const { store, ws, log, sync, probeRequests, reset } = await setup();
    store.failNext('put', s3LikeError('SlowDown', 503), 1, { key: PROBE_KEY });
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 1, failedFiles: [] });
    expect(store.pendingFaults()).toBe(0);
    expect(probeRequests()).toEqual({ puts: 1, deletes: 1 }); // the first PUT refused; its scratch key deleted all the same
    expect(log.lines.warn).toEqual([]);
    expect(log.lines.debug.some((l) => l.includes('conditional-write check inconclusive') && l.includes('THROTTLED'))).toBe(true);
    reset();
    await writeFile(path.join(ws, 'a.txt'), 'a2');
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 1 });
    expect(probeRequests()).toEqual({ puts: 2, deletes: 1 }); // probed again: enforced
    expect(await sync.checkConditionalWrites()).toBe('enforced');
    expect(log.lines.warn).toEqual([]);
  });

  it('a probe that keeps failing (access denied): a debug line twice, then one warning that it cannot be checked, and no more probes', { timeout: 10_000 }, async () => {
    const { store, ws, log, sync, probeRequests, reset } = await setup();
    store.failNext('put', s3LikeError('AccessDenied', 403), 99, { key: PROBE_KEY });
    const probes: Array<{ puts: number; deletes: number }> = [];
    for (let i = 1; i <= MAX_INCONCLUSIVE + 1; i++) {
      await writeFile(path.join(ws, 'a.txt'), `a${i}`);
      reset();
      expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 1 });
      probes.push(probeRequests());
      expect(conditionalWarnings(log)).toHaveLength(i < MAX_INCONCLUSIVE ? 0 : 1);
    }
    // a refused probe: 1 PUT (refused) + 1 delete (best effort); after the third, none
    expect(MAX_INCONCLUSIVE).toBe(3);
    expect(probes).toEqual([
      { puts: 1, deletes: 1 },
      { puts: 1, deletes: 1 },
      { puts: 1, deletes: 1 },
      { puts: 0, deletes: 0 },
    ]);
    expect(log.lines.debug.filter((l) => l.includes('conditional-write check inconclusive'))).toHaveLength(MAX_INCONCLUSIVE - 1);
    const warning = conditionalWarnings(log)[0]!;
    expect(warning).toContain('s3://mem/ws/');
    expect(warning).toContain('could not check');
    expect(warning).toContain('ACCESS_DENIED');
    expect(warning).toContain('requireConditionalWrites');
    // checkConditionalWrites() still asks when called
    expect(await sync.checkConditionalWrites()).toBe('unknown');
    expect(probeRequests()).toEqual({ puts: 1, deletes: 1 });
  });

  it('requireConditionalWrites: enforced, so the push goes through without a warning', { timeout: 10_000 }, async () => {
    const { log, sync, probeRequests } = await setup({ requireConditionalWrites: true });
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 1 });
    expect(probeRequests()).toEqual({ puts: 2, deletes: 1 });
    expect(log.lines.warn).toEqual([]);
  });
});
