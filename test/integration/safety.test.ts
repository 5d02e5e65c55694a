// Safety, round two: a pull never destroys the only copy of anything, and a
// state is trusted only for the remote it came from. Each scenario here lost
// a user's work (and reported success) before the recovery area and the
// origin binding existed.
//
// "Unpushed work" below is a file created and a file edited after the last
// sync, neither pushed. A pull that cannot prove a local file was in sync must
// leave its bytes somewhere: in place, or in the recovery area
// (`.s3-workspace-sync/recovered/<time>/<path>`).
import { lstat, readdir, readFile, rm, truncate, unlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it, onTestFinished } from 'vitest';

import { S3WorkspaceSync, type SyncLogger } from '../../src/index.js';
import { startLocalS3 } from '../../scripts/local-s3-launcher.mjs';
import { recordCommands } from '../helpers/commands.js';
import { getObjectBytes, listAllKeys, putObjects, TEST_CREDENTIALS, TEST_REGION } from '../helpers/s3.js';
import { fixture, listEntries, md5Hex, recoveredFiles, tempDir, type Fixture } from '../helpers/sync-fixture.js';
import { readTree, writeTree } from '../helpers/tree.js';

const STATE_DIR = '.s3-workspace-sync';

const BASE: Record<string, string> = {
  'notes.txt': 'remote notes',
  'src/a.ts': 'export const a = 1;\n',
  'src/b.ts': 'export const b = 2;\n',
  'docs/readme.md': '# readme\n',
  'data.json': '{"v":1}',
};

function buf(files: Record<string, string>): Record<string, Buffer> {
  return Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.from(v)]));
}

function warnings(): { logger: SyncLogger; lines: string[] } {
  const lines: string[] = [];
  const logger: SyncLogger = { debug: () => undefined, info: () => undefined, warn: (m) => lines.push(m), error: (m) => lines.push(m) };
  return { logger, lines };
}

async function age(root: string, rels: Iterable<string>): Promise<void> {
  const past = new Date(Date.now() - 3_600_000);
  for (const rel of rels) await utimes(path.join(root, rel), past, past);
}

async function stateFile(ws: string): Promise<string> {
  const names = (await readdir(path.join(ws, STATE_DIR))).filter((n) => n.endsWith('.json'));
  expect(names).toHaveLength(1);
  return path.join(ws, STATE_DIR, names[0]!);
}

/** A workspace pulled from a bucket holding BASE (state saved), then unpushed work: a new file and an edit. */
async function syncedWithUnpushedWork(f: Fixture): Promise<string> {
  await putObjects(f.other, f.bucket, Object.fromEntries(Object.entries(BASE).map(([k, v]) => [`ws/${k}`, v])));
  const ws = await tempDir();
  expect(await f.sync({ workspaceDir: ws }).pull()).toMatchObject({ success: true, downloadedFiles: 5 });
  await writeFile(path.join(ws, 'draft.md'), 'unpushed new file');
  await writeFile(path.join(ws, 'notes.txt'), 'unpushed edit of the notes');
  await age(ws, [...Object.keys(BASE), 'draft.md']);
  return ws;
}

const UNPUSHED = { 'draft.md': 'unpushed new file', 'notes.txt': 'unpushed edit of the notes' };

describe('a pull without proof moves local files aside, never destroys them', () => {
  it.each([
    ['truncated', async (file: string) => truncate(file, 40)],
    ['missing', async (file: string) => unlink(file)],
    ['empty (a crash of an older version mid-save)', async (file: string) => writeFile(file, '')],
  ])('state file %s: the unpushed work is moved into the recovery area byte for byte, the workspace mirrors the bucket', { timeout: 20_000 }, async (_label, damage) => {
    const f = await fixture();
    const ws = await syncedWithUnpushedWork(f);
    await damage(await stateFile(ws));

    const { logger, lines } = warnings();
    const result = await f.sync({ workspaceDir: ws, logger }).pull();
    expect(result.success).toBe(true);
    // the workspace mirrors the bucket…
    expect(await readTree(ws)).toEqual(buf(BASE));
    // …and nothing is lost: the new file and the edit are in the recovery area
    expect(await recoveredFiles(ws)).toEqual(buf(UNPUSHED));
    expect(result.movedAside.map((m) => [m.path, m.reason]).sort()).toEqual([
      ['draft.md', 'not-in-remote'],
      ['notes.txt', 'differs-from-remote'],
    ]);
    for (const m of result.movedAside) expect(await readFile(m.movedTo, 'utf8')).toBe(UNPUSHED[m.path as keyof typeof UNPUSHED]);
    expect(lines.some((l) => l.includes('Moved 2 local file(s)') && l.includes('recovered'))).toBe(true);
  });

  it('with its state intact, the same pull keeps the unpushed work in place', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await syncedWithUnpushedWork(f);
    const result = await f.sync({ workspaceDir: ws }).pull();
    expect(result).toMatchObject({ success: true, downloadedFiles: 0, deletedFiles: 0, movedAside: [] });
    expect(result.keptLocal.map((k) => k.path).sort()).toEqual(['draft.md', 'notes.txt']);
    expect(await readTree(ws)).toEqual(buf({ ...BASE, ...UNPUSHED }));
    expect(await recoveredFiles(ws)).toEqual({});
  });

  it('overwriteLocalChanges: remote wins, and local changes are moved aside rather than destroyed', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await syncedWithUnpushedWork(f);
    const result = await f.sync({ workspaceDir: ws }).pull({ overwriteLocalChanges: true });
    expect(result).toMatchObject({ success: true, downloadedFiles: 1, deletedFiles: 1 });
    expect(await readTree(ws)).toEqual(buf(BASE));
    expect(await recoveredFiles(ws)).toEqual(buf(UNPUSHED));
  });

  it('proven files are replaced and deleted in place; the recovery area is left empty (removed)', { timeout: 20_000 }, async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, Object.fromEntries(Object.entries(BASE).map(([k, v]) => [`ws/${k}`, v])));
    const ws = await tempDir();
    expect(await f.sync({ workspaceDir: ws }).pull()).toMatchObject({ success: true });
    await putObjects(f.other, f.bucket, { 'ws/src/a.ts': 'export const a = 42;\n' });
    await f.other.send(new DeleteObjectsCommand({ Bucket: f.bucket, Delete: { Objects: [{ Key: 'ws/data.json' }] } }));
    const result = await f.sync({ workspaceDir: ws }).pull();
    expect(result).toMatchObject({ success: true, downloadedFiles: 1, deletedFiles: 1, movedAside: [] });
    const { 'data.json': _gone, ...rest } = BASE;
    expect(await readTree(ws)).toEqual(buf({ ...rest, 'src/a.ts': 'export const a = 42;\n' }));
    expect(await readdir(path.join(ws, STATE_DIR))).not.toContain('recovered');
  });

  it('the recovery area is never pushed, and never touched by later pulls', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await syncedWithUnpushedWork(f);
    await rm(await stateFile(ws));
    await f.sync({ workspaceDir: ws }).pull(); // moves the unpushed work aside
    const sync = f.sync({ workspaceDir: ws });
    expect(await sync.push()).toMatchObject({ success: true, uploadedFiles: 0 });
    expect(await listAllKeys(f.other, f.bucket)).toEqual(Object.keys(BASE).map((k) => `ws/${k}`).sort());
    await rm(await stateFile(ws));
    expect(await f.sync({ workspaceDir: ws }).pull()).toMatchObject({ success: true, movedAside: [] });
    expect(await recoveredFiles(ws)).toEqual(buf(UNPUSHED));
  });
});

describe('a file written while the pull runs is kept', () => {
  it('a path the agent creates while its download is in flight: the download does not replace it', { timeout: 20_000 }, async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, { 'ws/plan.md': 'from the bucket', 'ws/other.txt': 'o' });
    const ws = await tempDir();
    recordCommands(f.client, async (name, input) => {
      if (name === 'GetObjectCommand' && input.Key === 'ws/plan.md') await writeFile(path.join(ws, 'plan.md'), 'the agent wrote this');
    });
    const result = await f.sync({ workspaceDir: ws }).pull();
    expect(await readFile(path.join(ws, 'plan.md'), 'utf8')).toBe('the agent wrote this');
    expect(result.keptLocal).toEqual([{ path: 'plan.md', reason: 'changed-during-sync' }]);
    expect(result).toMatchObject({ downloadedFiles: 1, failedFiles: [] });
    expect(await readFile(path.join(ws, 'other.txt'), 'utf8')).toBe('o');
    expect((await listEntries(ws)).filter((e) => e.endsWith('.s3ws-tmp'))).toEqual([]);
  });

  it('a file edited between the scan and its replacement or deletion is kept (fresh instance)', { timeout: 20_000 }, async () => {
    const f = await fixture();
    await putObjects(f.other, f.bucket, { 'ws/a.txt': 'remote a', 'ws/z.txt': 'remote z' });
    const ws = await tempDir();
    await writeTree(ws, { 'a.txt': 'local a', 'stale.txt': 'stale' });
    recordCommands(f.client, async (name, input) => {
      if (name !== 'GetObjectCommand') return;
      if (input.Key === 'ws/a.txt') await writeFile(path.join(ws, 'a.txt'), 'local a, edited during the pull');
      if (input.Key === 'ws/z.txt') await writeFile(path.join(ws, 'stale.txt'), 'stale, edited during the pull');
    });
    const result = await f.sync({ workspaceDir: ws, downloadConcurrency: 1 }).pull();
    expect(result.keptLocal.map((k) => [k.path, k.reason]).sort()).toEqual([
      ['a.txt', 'changed-during-sync'],
      ['stale.txt', 'changed-during-sync'],
    ]);
    expect(await readTree(ws)).toEqual(
      buf({ 'a.txt': 'local a, edited during the pull', 'stale.txt': 'stale, edited during the pull', 'z.txt': 'remote z' }),
    );
    expect(await recoveredFiles(ws)).toEqual({});
  });
});

describe('state bound to its origin', () => {
  /** A second local S3 server with a bucket of the same name. */
  async function otherServer(bucket: string): Promise<S3Client> {
    const server = await startLocalS3({ buckets: [bucket] });
    onTestFinished(() => server.stop());
    const client = new S3Client({
      endpoint: server.endpoint,
      region: TEST_REGION,
      forcePathStyle: true,
      credentials: { ...TEST_CREDENTIALS },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    onTestFinished(() => client.destroy());
    return client;
  }

  it('another server with the same bucket and prefix: push uploads what it lacks, pull deletes none of the five local files', { timeout: 40_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, BASE);
    await age(ws, Object.keys(BASE));
    expect(await f.sync({ workspaceDir: ws }).push()).toMatchObject({ success: true, uploadedFiles: 5 });

    const moved = await otherServer(f.bucket);
    await putObjects(moved, f.bucket, { 'ws/unrelated.txt': 'someone else' });
    const { logger, lines } = warnings();
    const pulled = await new S3WorkspaceSync({ bucket: f.bucket, prefix: 'ws/', workspaceDir: ws, s3Client: moved, logger }).pull();
    expect(lines.some((l) => l.includes('Ignoring the sync state file') && l.includes('another endpoint'))).toBe(true);
    expect(pulled).toMatchObject({ success: true, downloadedFiles: 1 });
    expect(await recoveredFiles(ws)).toEqual(buf(BASE));
    expect(await readTree(ws)).toEqual(buf({ 'unrelated.txt': 'someone else' }));
  });

  it('another server, push: the state from the old one is not trusted, so everything is uploaded', { timeout: 40_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, BASE);
    await age(ws, Object.keys(BASE));
    await f.sync({ workspaceDir: ws }).push();
    const moved = await otherServer(f.bucket);
    await putObjects(moved, f.bucket, { 'ws/unrelated.txt': 'someone else' });
    const pushed = await new S3WorkspaceSync({ bucket: f.bucket, prefix: 'ws/', workspaceDir: ws, s3Client: moved, logger: warnings().logger }).push();
    expect(pushed).toMatchObject({ success: true, uploadedFiles: 5, deletedFiles: 0 });
    expect(await listAllKeys(moved, f.bucket)).toEqual([...Object.keys(BASE), 'unrelated.txt'].map((k) => `ws/${k}`).sort());
    for (const [k, v] of Object.entries(BASE)) expect((await getObjectBytes(moved, f.bucket, `ws/${k}`)).toString()).toBe(v);
  });

  it('a re-created bucket (same server, same names): push re-uploads, pull moves the local files aside', { timeout: 30_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, BASE);
    await age(ws, Object.keys(BASE));
    await f.sync({ workspaceDir: ws }).push();
    expect(await listAllKeys(f.other, f.bucket, 'ws/', { includeLibrary: true })).toContain('ws/.s3-workspace-sync/workspace-id');

    const recreate = async (): Promise<void> => {
      const keys = await listAllKeys(f.other, f.bucket, undefined, { includeLibrary: true });
      await f.other.send(new DeleteObjectsCommand({ Bucket: f.bucket, Delete: { Objects: keys.map((Key) => ({ Key })) } }));
      await f.other.send(new DeleteBucketCommand({ Bucket: f.bucket }));
      await f.other.send(new CreateBucketCommand({ Bucket: f.bucket }));
      await putObjects(f.other, f.bucket, { 'ws/unrelated.txt': 'someone else' });
    };
    await recreate();
    const { logger, lines } = warnings();
    const log = recordCommands(f.client);
    const pushed = await f.sync({ workspaceDir: ws, logger }).push();
    expect(lines.some((l) => l.includes("workspace identity") && l.includes('missing'))).toBe(true);
    expect(log.count('ListObjectsV2Command')).toBe(1); // not trusted: it compares with a listing
    expect(pushed).toMatchObject({ success: true, uploadedFiles: 5, deletedFiles: 0 });
    expect(await listAllKeys(f.other, f.bucket, 'ws/')).toEqual([...Object.keys(BASE), 'unrelated.txt'].map((k) => `ws/${k}`).sort());

    // and a pull after another re-creation: the five local files are kept (moved aside), not deleted
    await recreate();
    const pulled = await f.sync({ workspaceDir: ws, logger }).pull();
    expect(pulled).toMatchObject({ success: true, downloadedFiles: 1 });
    expect(await readTree(ws)).toEqual(buf({ 'unrelated.txt': 'someone else' }));
    expect(await recoveredFiles(ws)).toEqual(buf(BASE));
  });

  it('a forged or stale remote identity in the state file is not trusted', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await syncedWithUnpushedWork(f);
    const file = await stateFile(ws);
    const doc = JSON.parse(await readFile(file, 'utf8')) as { origin: { remoteId: string | null } };
    expect(typeof doc.origin.remoteId).toBe('string'); // the first pull of a prefix with content gave it an identity
    doc.origin.remoteId = 'ffffffffffffffffffffffffffffffff';
    await writeFile(file, JSON.stringify(doc));
    const { logger, lines } = warnings();
    const result = await f.sync({ workspaceDir: ws, logger }).pull();
    expect(lines.some((l) => l.includes('Not trusting the sync state'))).toBe(true);
    expect(result.success).toBe(true);
    expect(await recoveredFiles(ws)).toEqual(buf(UNPUSHED));
    expect(await readTree(ws)).toEqual(buf(BASE));
  });

  it('a forged or stale entry that matches the file\'s stat but not its content proves nothing: the pull keeps the file (recovery area)', { timeout: 20_000 }, async () => {
    const f = await fixture();
    const ws = await syncedWithUnpushedWork(f);
    const file = await stateFile(ws);
    const doc = JSON.parse(await readFile(file, 'utf8')) as { entries: Record<string, unknown[]> };
    // claim that draft.md (never pushed) was synced: its exact current stat, some other content's MD5
    const st = await lstat(path.join(ws, 'draft.md'));
    doc.entries['draft.md'] = [st.size, st.mtimeMs, st.ctimeMs, st.ino, md5Hex('what the bucket supposedly had'), null, 0];
    await writeFile(file, JSON.stringify(doc));
    const result = await f.sync({ workspaceDir: ws }).pull();
    expect(result.success).toBe(true);
    // the pull believed the entry (the object is gone, so: deleted remotely), moved the file aside, found other bytes, kept them
    expect(result.movedAside.map((m) => [m.path, m.reason])).toEqual([['draft.md', 'not-in-remote']]);
    expect(await recoveredFiles(ws)).toEqual({ 'draft.md': Buffer.from(UNPUSHED['draft.md']) });
    // the edit of notes.txt is not covered by the entry's stat: kept in place, as with any synced instance
    expect(await readFile(path.join(ws, 'notes.txt'), 'utf8')).toBe(UNPUSHED['notes.txt']);
  });
});
