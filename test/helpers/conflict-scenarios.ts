// The conflict policies, scenario by scenario, on any bucket: two writers A
// and B on one prefix; A changes the bucket, B changed its workspace; B
// syncs under each policy. Run on the in-memory store
// (test/pipeline/conflict-policies.test.ts) and over HTTP on the strict S3
// double (test/integration/conflict-policies.test.ts). Every case checks the
// bytes on disk, the objects in the bucket (the conflicts area included),
// result.conflicts and success, and that nothing anyone wrote is gone.
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import type { ConflictPolicy, S3WorkspaceSync, SyncResult } from '../../src/index.js';

export const PREFIX = 'ws/';
const AREA = `${PREFIX}.s3-workspace-sync/conflicts/`;
const T = { timeout: 30_000 };

/** One writer: a workspace and an instance on it. */
export interface PolicyWriter {
  ws: string;
  sync: S3WorkspaceSync;
}

/** A bucket under test, seeded, with two ways in. */
export interface PolicyEnv {
  /** A new instance (fresh, not pulled) on its own workspace. */
  writer(): Promise<PolicyWriter>;
  /** Bytes of a key, or undefined. */
  bodyOf(key: string): Promise<Buffer | undefined>;
  /** Every key under a prefix. */
  keys(prefix: string): Promise<string[]>;
}

export type PolicyEnvFactory = (files: Record<string, string>) => Promise<PolicyEnv>;

type Scenario = 'edit/edit' | 'create/create' | 'delete/edit' | 'edit/delete';

const read = (w: PolicyWriter, rel: string): Promise<string | undefined> => readFile(path.join(w.ws, rel), 'utf8').catch(() => undefined);
const write = async (w: PolicyWriter, rel: string, body: string): Promise<void> => {
  await mkdir(path.dirname(path.join(w.ws, rel)), { recursive: true });
  await writeFile(path.join(w.ws, rel), body);
};

/** Files under the workspace's recovery area, by workspace path, with their bytes. */
export async function recovered(ws: string): Promise<Record<string, string>> {
  const root = path.join(ws, '.s3-workspace-sync', 'recovered');
  const out: Record<string, string> = {};
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const abs = path.join(dir, e.name);
      if (e.isDirectory()) await walk(abs, rel === '' ? e.name : `${rel}/${e.name}`);
      else out[rel.split('/').slice(1).concat(e.name).join('/')] = await readFile(abs, 'utf8');
    }
  };
  await walk(root, '');
  return out;
}

/** Objects of the conflicts area by workspace path (the stamp folder dropped), with their bytes. */
async function savedInBucket(env: PolicyEnv): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const key of await env.keys(AREA)) {
    const rel = key.slice(AREA.length).split('/').slice(1).join('/');
    out[rel] = (await env.bodyOf(key))!.toString();
  }
  return out;
}

async function workspaceFiles(w: PolicyWriter): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string, rel: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      if (e.name === '.s3-workspace-sync') continue;
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) await walk(path.join(dir, e.name), r);
      else out[r] = await readFile(path.join(dir, e.name), 'utf8');
    }
  };
  await walk(w.ws, '');
  return out;
}

async function bucketFiles(env: PolicyEnv): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const key of await env.keys(PREFIX)) {
    if (key.includes('.s3-workspace-sync/')) continue;
    out[key.slice(PREFIX.length)] = (await env.bodyOf(key))!.toString();
  }
  return out;
}

/** A and B pulled `files`; A then changed the bucket and B its workspace, as `scenario` says. Returns the path in conflict. */
async function setUp(env: PolicyEnv, scenario: Scenario): Promise<{ a: PolicyWriter; b: PolicyWriter; path: string }> {
  const a = await env.writer();
  const b = await env.writer();
  expect((await a.sync.pull()).success).toBe(true);
  expect((await b.sync.pull()).success).toBe(true);
  switch (scenario) {
    case 'edit/edit':
      await write(a, 'notes.md', 'A was here');
      expect((await a.sync.push()).success).toBe(true);
      await write(b, 'notes.md', 'B was here');
      return { a, b, path: 'notes.md' };
    case 'create/create':
      await write(a, 'new.md', 'A was here');
      expect((await a.sync.push()).success).toBe(true);
      await write(b, 'new.md', 'B was here');
      return { a, b, path: 'new.md' };
    case 'delete/edit': // B deleted locally, A changed it
      await write(a, 'notes.md', 'A was here');
      expect((await a.sync.push()).success).toBe(true);
      await rm(path.join(b.ws, 'notes.md'));
      return { a, b, path: 'notes.md' };
    case 'edit/delete': // B changed it, A deleted it
      await rm(path.join(a.ws, 'notes.md'));
      expect((await a.sync.push()).deletedFiles).toBe(1);
      await write(b, 'notes.md', 'B was here');
      return { a, b, path: 'notes.md' };
  }
}

const SEED = { 'notes.md': 'v1', 'other.md': 'o1' };

/** Register the scenarios on one kind of bucket. */
export function describeConflictPolicies(name: string, makeEnv: PolicyEnvFactory): void {
  describe(`conflict policies on ${name}: push`, () => {
    const scenarios: Scenario[] = ['edit/edit', 'create/create', 'delete/edit', 'edit/delete'];
    for (const scenario of scenarios) {
      it(`fail · ${scenario}: reported, nothing changed on either side`, T, async () => {
        const env = await makeEnv(SEED);
        const { b, path: p } = await setUp(env, scenario);
        const before = { bucket: await bucketFiles(env), disk: await workspaceFiles(b) };
        const pushed = await b.sync.push();
        expect(pushed.success).toBe(false);
        expect(pushed.conflicts).toEqual([expect.objectContaining({ path: p, resolution: 'reported', action: scenario === 'delete/edit' ? 'delete' : 'upload' })]);
        expect(pushed.failedFiles).toEqual([expect.objectContaining({ path: p, code: 'CONFLICT' })]);
        expect(await bucketFiles(env)).toEqual(before.bucket);
        expect(await workspaceFiles(b)).toEqual(before.disk);
        expect(await env.keys(AREA)).toEqual([]);
      });

      for (const policy of ['keep-local', 'keep-remote', 'keep-both'] as const) {
        it(`${policy} · ${scenario}`, T, async () => {
          const env = await makeEnv(SEED);
          const { a, b, path: p } = await setUp(env, scenario);
          const pushed = await b.sync.push({ conflictPolicy: policy });
          expect(pushed.failedFiles).toEqual([]);
          expect(pushed.success).toBe(true);
          expect(pushed.conflicts).toHaveLength(1);
          const c = pushed.conflicts[0]!;
          expect(c).toMatchObject({ path: p, key: PREFIX + p });
          await expectOutcome(env, b, p, scenario, policy, pushed);
          // resolved: the two sides agree, and B's next push has nothing to do
          expect((await b.sync.verify()).ok).toBe(true);
          expect(await b.sync.push()).toMatchObject({ success: true, uploadedFiles: 0, deletedFiles: 0, conflicts: [] });
          // and A sees what B resolved to
          expect((await a.sync.pull()).success).toBe(true);
          expect(await workspaceFiles(a)).toEqual(await bucketFiles(env));
        });
      }
    }
  });

  describe(`conflict policies on ${name}: pull, a file changed on both sides`, () => {
    async function bothChanged() {
      const env = await makeEnv(SEED);
      const { a, b } = await setUp(env, 'edit/edit');
      await write(b, 'mine.md', 'only local'); // modified only locally: kept, never a conflict
      return { env, a, b };
    }

    it('fail (default): the local file stays, nothing downloaded for it, a CONFLICT failure; other files still sync', T, async () => {
      const { env, b } = await bothChanged();
      await write(b, 'other.md', 'o1'); // untouched
      const pulled = await b.sync.pull();
      expect(pulled.success).toBe(false);
      expect(pulled.conflicts).toEqual([
        { path: 'notes.md', key: 'ws/notes.md', action: 'download', expectedEtag: expect.any(String), currentEtag: expect.any(String), resolution: 'reported' },
      ]);
      expect(pulled.failedFiles).toEqual([expect.objectContaining({ path: 'notes.md', code: 'CONFLICT' })]);
      expect(pulled.keptLocal.map((k) => k.path).sort()).toEqual(['mine.md', 'notes.md']);
      expect(await read(b, 'notes.md')).toBe('B was here');
      expect(await read(b, 'mine.md')).toBe('only local');
      expect(await env.keys(AREA)).toEqual([]);
    });

    it('keep-local: the local file stays, not a failure; the next push (keep-local) saves the remote version and replaces it', T, async () => {
      const { env, b } = await bothChanged();
      const pulled = await b.sync.pull({ conflictPolicy: 'keep-local' });
      expect(pulled.success).toBe(true);
      expect(pulled.conflicts).toEqual([expect.objectContaining({ path: 'notes.md', action: 'download', resolution: 'kept-local' })]);
      expect(await read(b, 'notes.md')).toBe('B was here');
      const pushed = await b.sync.push({ conflictPolicy: 'keep-local' });
      expect(pushed.success).toBe(true);
      expect(pushed.conflicts).toEqual([expect.objectContaining({ path: 'notes.md', resolution: 'kept-local', remoteSavedTo: expect.stringContaining(AREA) })]);
      expect((await env.bodyOf('ws/notes.md'))?.toString()).toBe('B was here');
      expect(await savedInBucket(env)).toEqual({ 'notes.md': 'A was here' });
    });

    it('keep-remote: the remote version downloaded; the local bytes saved in the bucket\'s conflicts area and in the recovery area', T, async () => {
      const { env, b } = await bothChanged();
      const pulled = await b.sync.pull({ conflictPolicy: 'keep-remote' });
      expect(pulled.success).toBe(true);
      expect(pulled.conflicts).toEqual([expect.objectContaining({ path: 'notes.md', action: 'download', resolution: 'kept-remote', localSavedTo: expect.stringContaining(AREA) })]);
      expect(pulled.keptLocal.map((k) => k.path)).toEqual(['mine.md']);
      expect(pulled.movedAside).toEqual([expect.objectContaining({ path: 'notes.md', reason: 'differs-from-remote' })]);
      expect(await read(b, 'notes.md')).toBe('A was here');
      expect(await read(b, 'mine.md')).toBe('only local');
      expect(await recovered(b.ws)).toEqual({ 'notes.md': 'B was here' });
      expect(await savedInBucket(env)).toEqual({ 'notes.md': 'B was here' });
      // the snapshot records the remote version: the next push uploads only mine.md
      expect(await b.sync.push()).toMatchObject({ success: true, uploadedFiles: 1, conflicts: [] });
    });

    it('keep-both: the local file renamed to a conflict copy (pushed next as a new file), the remote version downloaded at the path', T, async () => {
      const { env, b } = await bothChanged();
      const pulled = await b.sync.pull({ conflictPolicy: 'keep-both' });
      expect(pulled.success).toBe(true);
      const c = pulled.conflicts[0]!;
      expect(c).toMatchObject({ path: 'notes.md', action: 'download', resolution: 'kept-both', conflictCopy: expect.stringMatching(/^notes \(conflict \d{4}-\d\d-\d\d \d{6} [A-Za-z0-9_-]+\)\.md$/) });
      expect(await read(b, 'notes.md')).toBe('A was here');
      expect(await read(b, c.conflictCopy!)).toBe('B was here');
      expect(await env.keys(AREA)).toEqual([]);
      const pushed = await b.sync.push();
      expect(pushed).toMatchObject({ success: true, uploadedFiles: 2, conflicts: [] });
      expect((await env.bodyOf(PREFIX + c.conflictCopy!))?.toString()).toBe('B was here');
    });

    it('overwriteLocalChanges still makes the bucket win, as before (moved into the recovery area, no conflict)', T, async () => {
      const { b } = await bothChanged();
      const pulled = await b.sync.pull({ overwriteLocalChanges: true });
      expect(pulled).toMatchObject({ success: true, conflicts: [] });
      expect(await read(b, 'notes.md')).toBe('A was here');
      expect((await recovered(b.ws))['notes.md']).toBe('B was here');
    });
  });
}

/** What each policy leaves, per scenario (B resolved a conflict with A's change). */
async function expectOutcome(env: PolicyEnv, b: PolicyWriter, p: string, scenario: Scenario, policy: Exclude<ConflictPolicy, 'fail'>, pushed: SyncResult): Promise<void> {
  const c = pushed.conflicts[0]!;
  const remote = async (): Promise<string | undefined> => (await env.bodyOf(PREFIX + p))?.toString();
  const saved = await savedInBucket(env);
  const exists = async (rel: string): Promise<boolean> => stat(path.join(b.ws, rel)).then(() => true, () => false);
  if (scenario === 'delete/edit') {
    if (policy === 'keep-local') {
      // A's version saved, then deleted
      expect(c).toMatchObject({ action: 'delete', resolution: 'kept-local', remoteSavedTo: expect.stringContaining(AREA) });
      expect(await remote()).toBeUndefined();
      expect(saved).toEqual({ [p]: 'A was here' });
      expect(await exists(p)).toBe(false);
    } else {
      // A's version restored in B's workspace
      expect(c).toMatchObject({ action: 'delete', resolution: 'kept-remote' });
      expect(await remote()).toBe('A was here');
      expect(await read(b, p)).toBe('A was here');
      expect(saved).toEqual({});
    }
    return;
  }
  if (scenario === 'edit/delete') {
    if (policy === 'keep-remote') {
      // the remote absence wins; B's bytes saved in the bucket and in the recovery area
      expect(c).toMatchObject({ action: 'upload', resolution: 'kept-remote', currentEtag: null, localSavedTo: expect.stringContaining(AREA) });
      expect(await remote()).toBeUndefined();
      expect(await exists(p)).toBe(false);
      expect(saved).toEqual({ [p]: 'B was here' });
      expect(await recovered(b.ws)).toEqual({ [p]: 'B was here' });
    } else {
      // created again (If-None-Match: *)
      expect(c).toMatchObject({ action: 'upload', resolution: 'kept-local', currentEtag: null });
      expect(c.remoteSavedTo).toBeUndefined();
      expect(await remote()).toBe('B was here');
      expect(await read(b, p)).toBe('B was here');
      expect(saved).toEqual({});
    }
    return;
  }
  // edit/edit, create/create
  if (policy === 'keep-local') {
    expect(c).toMatchObject({ action: 'upload', resolution: 'kept-local', remoteSavedTo: expect.stringContaining(AREA) });
    expect(await remote()).toBe('B was here');
    expect(await read(b, p)).toBe('B was here');
    expect(saved).toEqual({ [p]: 'A was here' });
  } else if (policy === 'keep-remote') {
    expect(c).toMatchObject({ action: 'upload', resolution: 'kept-remote', localSavedTo: expect.stringContaining(AREA) });
    expect(await remote()).toBe('A was here');
    expect(await read(b, p)).toBe('A was here');
    expect(saved).toEqual({ [p]: 'B was here' });
    expect(await recovered(b.ws)).toEqual({ [p]: 'B was here' });
    expect(pushed.movedAside).toEqual([expect.objectContaining({ path: p })]);
  } else {
    expect(c).toMatchObject({ action: 'upload', resolution: 'kept-both', conflictCopy: expect.stringContaining(' (conflict ') });
    expect(await remote()).toBe('A was here');
    expect(await read(b, p)).toBe('A was here');
    expect(await read(b, c.conflictCopy!)).toBe('B was here');
    expect((await env.bodyOf(PREFIX + c.conflictCopy!))?.toString()).toBe('B was here');
    expect(saved).toEqual({});
  }
}
