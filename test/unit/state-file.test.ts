import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { isRacy, statMatches, type Snapshot } from '../../src/core/plan.js';
import type { SnapshotEntry } from '../../src/core/model.js';
import { silentLogger, type SyncLogger } from '../../src/index.js';
import { SLICE } from '../../src/core/json-chunks.js';
import { parseState, StateFile } from '../../src/state/StateFile.js';
import { mulberry32 } from '../helpers/fault-proxy.js';

const MD5 = 'd41d8cd98f00b204e9800998ecf8427e';
const ORIGIN = { endpoint: 'http://127.0.0.1:9000', bucket: 'b', prefix: 'p/', owner: null };
const ID = { origin: ORIGIN, root: '/ws', dev: 1, ino: 2, birthtimeMs: 3 };

function doc(overrides: Record<string, unknown> = {}, entries: Record<string, unknown> = { 'a.txt': [0, 1, 2, 3, MD5, 'etag', 0] }): string {
  return JSON.stringify({
    format: 's3-workspace-sync/state',
    version: 3,
    id: '0123456789abcdef',
    origin: { ...ORIGIN, remoteId: 'abc' },
    workspace: { path: '/ws', dev: 1, ino: 2, birthtimeMs: 3 },
    synced: true,
    savedAtMs: 0,
    entries,
    ...overrides,
  });
}

describe('state file parsing (every field validated; anything wrong refuses the whole file)', () => {
  it('accepts a well-formed document', () => {
    const parsed = parseState(doc(), ID);
    expect(typeof parsed).toBe('object');
    expect(parsed).toMatchObject({ synced: true, remoteId: 'abc' });
    if (typeof parsed === 'object') expect(parsed.snapshot.get('a.txt')).toEqual({ size: 0, mtimeMs: 1, ctimeMs: 2, ino: 3, md5: MD5, etag: 'etag' });
  });

  it('keeps the remote cache (manifest seen, conditional writes); a malformed one is dropped alone, the snapshot stands', () => {
    const remote = { manifest: { etag: 'e1', md5: MD5 }, conditionalWrites: 'enforced' };
    // the manifest's bytes are kept in another file: the state names them by ETag and MD5
    expect(parseState(doc({ remote }), ID)).toMatchObject({ synced: true, remote: { conditionalWrites: 'enforced' }, manifestRef: { etag: 'e1', md5: MD5 } });
    const remoteOf = (text: string) => {
      const parsed = parseState(text, ID);
      if (typeof parsed === 'string') throw new Error(parsed);
      expect(parsed.snapshot.size).toBe(1);
      return parsed.remote;
    };
    expect(remoteOf(doc({ remote: { conditionalWrites: 'maybe', manifest: { etag: '', md5: MD5 } } }))).toBeUndefined();
    const partial = parseState(doc({ remote: { conditionalWrites: 'ignored', manifest: { etag: 'e', md5: 'not-an-md5' } } }), ID);
    expect(partial).toMatchObject({ remote: { conditionalWrites: 'ignored' } });
    if (typeof partial === 'object') expect(partial.manifestRef).toBeUndefined();
    expect(remoteOf(doc({ remote: 'nonsense' }))).toBeUndefined();
  });

  it('keeps the repository record of git: bundle (no format change); a malformed one is dropped alone, a file without one still loads', () => {
    const git = { fingerprint: 'g1-abc', sidecarEtag: 'e2', bundleKey: 'p/.s3-workspace-sync/git/bundle-0123456789abcdef.bundle', bundleEtag: 'e3' };
    expect(parseState(doc({ remote: { git } }), ID)).toMatchObject({ remote: { git } });
    // a bundle this workspace did not write: no key, nothing to delete later
    expect(parseState(doc({ remote: { git: { fingerprint: 'g1-abc', sidecarEtag: 'e2', bundleKey: 'k' } } }), ID)).toMatchObject({ remote: { git: { fingerprint: 'g1-abc', sidecarEtag: 'e2' } } });
    for (const bad of [{ fingerprint: '', sidecarEtag: 'e' }, { fingerprint: 'g', sidecarEtag: 7 }, 'g1', null]) {
      const parsed = parseState(doc({ remote: { git: bad, conditionalWrites: 'enforced' } }), ID);
      expect(parsed).toMatchObject({ synced: true, remote: { conditionalWrites: 'enforced' } });
      if (typeof parsed === 'object') expect(parsed.remote?.git).toBeUndefined();
    }
    expect(parseState(doc(), ID)).not.toHaveProperty('remote');
  });

  it.each<[string, string]>([
    ['another workspace path', doc({ workspace: { path: '/other', dev: 1, ino: 2, birthtimeMs: 3 } })],
    ['a re-created directory (same inode, new birth time)', doc({ workspace: { path: '/ws', dev: 1, ino: 2, birthtimeMs: 4 } })],
    ['another prefix', doc({ origin: { ...ORIGIN, prefix: 'q/', remoteId: 'abc' } })],
    ['another bucket', doc({ origin: { ...ORIGIN, bucket: 'c', remoteId: 'abc' } })],
    ['another endpoint (same bucket and prefix)', doc({ origin: { ...ORIGIN, endpoint: 'https://r2.example', remoteId: 'abc' } })],
    ['another expected bucket owner', doc({ origin: { ...ORIGIN, owner: '111122223333', remoteId: 'abc' } })],
    ['no origin (format version 1)', doc({ version: 1, origin: undefined, bucket: 'b', prefix: 'p/' })],
    ['no origin', doc({ origin: undefined })],
    ['a remote id that is not a string', doc({ origin: { ...ORIGIN, remoteId: 5 } })],
    ['synced not a boolean', doc({ synced: 'yes' })],
    ['entries an array', doc({ entries: [] })],
    ['a negative size', doc({}, { 'a.txt': [-1, 1, 2, 3, MD5, null, 0] })],
    ['a fractional size', doc({}, { 'a.txt': [1.5, 1, 2, 3, MD5, null, 0] })],
    ['an upper-case MD5', doc({}, { 'a.txt': [0, 1, 2, 3, MD5.toUpperCase(), null, 0] })],
    ['a row too short', doc({}, { 'a.txt': [0, 1, 2, 3, MD5, null] })],
    ['a racy flag of 2', doc({}, { 'a.txt': [0, 1, 2, 3, MD5, null, 2] })],
    ['an absolute path', doc({}, { '/etc/passwd': [0, 1, 2, 3, MD5, null, 0] })],
    ['a NUL in a path', doc({}, { 'a\u0000b': [0, 1, 2, 3, MD5, null, 0] })],
    ['a foreign format', JSON.stringify({ format: 'something-else', version: 1 })],
    ['a JSON array', '[]'],
  ])('refuses %s', (_label, text) => {
    expect(typeof parseState(text, ID)).toBe('string');
  });

  it('round-trips through save and load, including a path named __proto__ and the racy flag', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 's3ws-state-'));
    try {
      const snapshot: Snapshot = new Map([
        ['__proto__', { size: 1, mtimeMs: 10.5, ctimeMs: 11.25, ino: 12, md5: MD5 }],
        ['x/y.txt', { size: 2, mtimeMs: 20, ctimeMs: 21, ino: 22, md5: MD5, etag: 'abc-2', racy: true }],
      ]);
      const file = new StateFile(path.join(dir, 'state'), 'b', 'p/', silentLogger);
      await file.save(dir, ORIGIN, { synced: false, snapshot, remoteId: null });
      expect((await stat(file.path)).mode & 0o777).toBe(0o600);
      const loaded = await new StateFile(path.join(dir, 'state'), 'b', 'p/', silentLogger).load(dir, ORIGIN);
      expect(loaded?.synced).toBe(false);
      expect(loaded?.remoteId).toBeNull();
      // the same file read for another endpoint is not trusted
      expect(await new StateFile(path.join(dir, 'state'), 'b', 'p/', silentLogger).load(dir, { ...ORIGIN, endpoint: 'https://elsewhere' })).toBeUndefined();
      expect([...(loaded?.snapshot ?? new Map())]).toEqual([...snapshot]);
      // another (bucket, prefix) has its own file
      expect(await new StateFile(path.join(dir, 'state'), 'b', 'other/', silentLogger).load(dir, { ...ORIGIN, prefix: 'other/' })).toBeUndefined();
      expect(JSON.parse(await readFile(file.path, 'utf8')).entries).toHaveProperty('__proto__');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('state file parsing from bytes (the entries a slice at a time) decides exactly as parsing the whole text', () => {
  const same = (text: string): void => {
    const whole = parseState(text, ID);
    const sliced = parseState(Buffer.from(text, 'utf8'), ID);
    if (typeof whole === 'string') {
      expect(sliced, text.slice(0, 200)).toBe(whole);
      return;
    }
    expect(typeof sliced, text.slice(0, 200)).toBe('object');
    if (typeof sliced === 'string') return;
    expect([...sliced.snapshot].sort(([a], [b]) => (a < b ? -1 : 1))).toEqual([...whole.snapshot].sort(([a], [b]) => (a < b ? -1 : 1)));
    expect({ ...sliced, snapshot: undefined }).toEqual({ ...whole, snapshot: undefined });
  };
  const many = (n: number, rnd: () => number): Record<string, unknown> => {
    const entries: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const odd of ['__proto__', '0', '42', 'q"uote/x', 'back\\slash', 'ünï/cödé.txt', '😀.md', 'a,b', 'c}d', '{e]']) entries[odd] = [1, 2.5, 3.25, 4, MD5, null, 1];
    for (let i = 0; i < n; i++) entries[`d${Math.floor(rnd() * 40)}/f${i}.txt`] = [Math.floor(rnd() * 1e6), 1.7e12 + rnd(), 1.7e12 + rnd(), 1000 + i, MD5, rnd() < 0.5 ? MD5 : `${MD5}-2`, rnd() < 0.1 ? 1 : 0];
    return entries;
  };

  it('for well-formed documents: many entries (several slices), odd paths, entries first or last, indented text', { timeout: 20_000 }, () => {
    const rnd = mulberry32(7);
    const entries = many(5000, rnd);
    same(doc({}, entries));
    same(doc({ remote: { manifest: { etag: 'e1', md5: MD5 }, conditionalWrites: 'enforced' } }, entries));
    same(JSON.stringify({ entries, ...(JSON.parse(doc({}, {})) as Record<string, unknown>) }).replace(`"entries":{}`, `"entries":${JSON.stringify(entries)}`));
    same(JSON.stringify(JSON.parse(doc({}, many(50, rnd))), null, 2));
    same(doc({}, {}));
    same(` \n${doc({}, many(3, rnd))}\n `);
    // the layout StateFile.save writes: the entries member last
    const { entries: _e, ...head } = JSON.parse(doc({ remote: { conditionalWrites: 'ignored' } }, {})) as Record<string, unknown>;
    same(`${JSON.stringify(head).slice(0, -1)},"entries":${JSON.stringify(entries)}}`);
  });

  it('for damaged documents: cut short anywhere, stray commas, bad entries, text after the end, duplicate members', { timeout: 60_000 }, () => {
    const rnd = mulberry32(11);
    const text = doc({ remote: { conditionalWrites: 'enforced' } }, many(2100, rnd));
    // cut short at many points, including inside the entries and across a slice boundary
    for (let k = 0; k < 300; k++) same(text.slice(0, Math.floor(rnd() * text.length)));
    for (const cut of [1, 2, 3, 10]) same(text.slice(0, text.length - cut));
    same(doc({}, {}).replace('"entries":{}', '"entries":{,}'));
    same(doc({}, { a: [0, 1, 2, 3, MD5, null, 0] }).replace('0]}', '0],}'));
    same(doc({}, { a: [0, 1, 2, 3, MD5, null, 0] }).replace('"entries":{', '"entries":{,'));
    same(doc({}, { a: [0, 1, 2, 3, MD5, null, 0], b: [0, 1, 2, 3, MD5, null, 0] }).replace('0],"b"', '0],,"b"'));
    same(doc({}, { a: [0, 1, 2, 3, 'not-md5', null, 0] }));
    same(doc({}, { '../escape': [0, 1, 2, 3, MD5, null, 0] }));
    same(doc({}, { a: [0, 1, 2, 3, MD5, null] }));
    // a stray comma exactly where a slice ends (after SLICE members): the slice after it is empty
    const exact: Record<string, unknown> = {};
    for (let i = 0; i < SLICE; i++) exact[`s${i}`] = [0, 1, 2, 3, MD5, null, 0];
    same(doc({}, exact));
    same(doc({}, exact).replace('0]}', '0],}'));
    same(doc({}, { ...exact, last: [0, 1, 2, 3, MD5, null, 0] }).replace('"last"', ',"last"'));
    same(`${doc()}x`);
    same(`${doc()}}`);
    same(doc().replace('"entries":{', '"entries":['));
    same(doc({}, 'entries' as unknown as Record<string, unknown>));
    same(doc().replace('"synced":true', '"synced":true,"entries":{"b":[0,1,2,3,"' + MD5 + '",null,0]}'));
    same(`\ufeff${doc()}`);
    // a byte replaced anywhere in a sample of positions
    for (let k = 0; k < 300; k++) {
      const at = Math.floor(rnd() * text.length);
      const ch = '{}[],:"\\ x0'[Math.floor(rnd() * 12)] as string;
      same(text.slice(0, at) + ch + text.slice(at + 1));
    }
  });
});

describe('racy entries', () => {
  const floor = 1_700_000_000_123.5;
  it('a file modified within the timestamp granularity of the stat, or later, is racy', () => {
    expect(isRacy(floor - 50.25, floor)).toBe(true);
    expect(isRacy(floor + 5000.5, floor)).toBe(true); // future mtime
    expect(isRacy(floor - 150.25, floor)).toBe(false);
  });

  it('a recent mtime is racy only with a ctime at the same moment: a restored mtime (a download) is not', () => {
    // written just now: mtime and ctime are the same write
    expect(isRacy(floor - 50.25, floor, floor - 50.25)).toBe(true);
    expect(isRacy(floor - 50.25, floor, floor - 45)).toBe(true); // within a kernel tick (10 ms)
    // downloaded: the original mtime (80 ms before the sync) was restored, ctime is the rename during the sync
    expect(isRacy(floor - 80, floor, floor + 35)).toBe(false);
    expect(isRacy(floor - 80, floor, floor - 60)).toBe(false); // 20 ms apart: two different moments
    // whole-second timestamps (a coarse filesystem): ctime within 2 s is the same moment
    const second = Math.floor(floor / 1000) * 1000;
    expect(isRacy(second, floor, second + 1000)).toBe(true);
    // a restored mtime that happens to fall on a whole second, on a filesystem whose ctime has a fraction: not racy
    const soon = second + 50; // a sync starting 50 ms after that second
    expect(isRacy(second, soon, second + 1500.25)).toBe(false);
    expect(isRacy(second, soon, second + 60.5)).toBe(false);
    expect(isRacy(second, soon, second + 4.5)).toBe(true); // still the same moment within a kernel tick
    expect(isRacy(second, soon, second + 1000)).toBe(true); // both whole seconds: a coarse filesystem
    // a restored mtime in the future (a remote clock ahead) stays racy when the ctime is the same moment only
    expect(isRacy(floor + 5000.5, floor, floor + 10)).toBe(false);
    expect(isRacy(floor + 5000.5, floor, floor + 5000.5)).toBe(true);
    // old mtimes are never racy, whatever the ctime
    expect(isRacy(floor - 150.25, floor, floor)).toBe(false);
  });

  it('whole-second mtimes (a coarse filesystem) widen the margin to 2 s', () => {
    const second = Math.floor(floor / 1000) * 1000;
    expect(isRacy(second - 1000, floor)).toBe(true);
    expect(isRacy(second - 3000, floor)).toBe(false);
  });

  it('a racy entry never matches a stat, even an identical one', () => {
    const local = { path: 'a', size: 1, mtimeMs: 5, ctimeMs: 6, ino: 7 };
    expect(statMatches(local, { size: 1, mtimeMs: 5, ctimeMs: 6, ino: 7, md5: MD5 })).toBe(true);
    expect(statMatches(local, { size: 1, mtimeMs: 5, ctimeMs: 6, ino: 7, md5: MD5, racy: true })).toBe(false);
  });
});

describe('the journal: a save that changed a few entries appends them', () => {
  const entry = (i: number, md5 = MD5): SnapshotEntry => ({ size: i, mtimeMs: 1000 + i, ctimeMs: 2000 + i, ino: 3000 + i, md5 });
  const many = (n: number): Snapshot => new Map(Array.from({ length: n }, (_, i) => [`dir/file-${i}.txt`, entry(i)]));
  const OTHER_MD5 = '0cc175b9c0f1b6a831c399e269772661';

  async function withDir(fn: (dir: string, stateDir: string) => Promise<void>): Promise<void> {
    const dir = await mkdtemp(path.join(tmpdir(), 's3ws-journal-'));
    try {
      await fn(dir, path.join(dir, 'state'));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  function recording(): { logger: SyncLogger; warnings: string[] } {
    const warnings: string[] = [];
    return { logger: { ...silentLogger, warn: (m: string) => void warnings.push(m) }, warnings };
  }

  it('appends one checksummed line per save; the state file is not rewritten; a new process reads both', { timeout: 10_000 }, async () => {
    await withDir(async (dir, stateDir) => {
      const file = new StateFile(stateDir, 'b', 'p/', silentLogger);
      const first = many(2000);
      await file.save(dir, ORIGIN, { synced: true, snapshot: first, remoteId: 'r1' });
      const base = await readFile(file.path, 'utf8');
      const second = new Map(first);
      second.set('dir/file-1.txt', entry(1, OTHER_MD5));
      second.delete('dir/file-2.txt');
      second.set('new.txt', { ...entry(5), etag: 'e5', racy: true });
      await file.save(dir, ORIGIN, { synced: true, snapshot: second, remoteId: 'r2' });
      expect(await readFile(file.path, 'utf8')).toBe(base);
      const journal = await readFile(`${file.path}.journal`, 'utf8');
      expect(journal.split('\n')).toHaveLength(2); // one line and the final newline
      expect(journal.length).toBeLessThan(600);
      const loaded = await new StateFile(stateDir, 'b', 'p/', silentLogger).load(dir, ORIGIN);
      expect(loaded?.remoteId).toBe('r2');
      expect([...(loaded?.snapshot ?? new Map())].sort()).toEqual([...second].sort());
    });
  });

  it('the repository record of git: bundle survives a whole write and a journal line', { timeout: 10_000 }, async () => {
    await withDir(async (dir, stateDir) => {
      const file = new StateFile(stateDir, 'b', 'p/', silentLogger);
      const first = many(10);
      await file.save(dir, ORIGIN, { synced: true, snapshot: first, remoteId: 'r1', remote: { git: { fingerprint: 'g1-a', sidecarEtag: 's1', bundleKey: 'k1', bundleEtag: 'b1' } } });
      expect((await new StateFile(stateDir, 'b', 'p/', silentLogger).load(dir, ORIGIN))?.remote?.git).toEqual({ fingerprint: 'g1-a', sidecarEtag: 's1', bundleKey: 'k1', bundleEtag: 'b1' });
      await file.save(dir, ORIGIN, { synced: true, snapshot: first, remoteId: 'r1', remote: { conditionalWrites: 'ignored', git: { fingerprint: 'g1-b', sidecarEtag: 's2' } } });
      expect(await readFile(`${file.path}.journal`, 'utf8')).toContain('g1-b');
      const loaded = await new StateFile(stateDir, 'b', 'p/', silentLogger).load(dir, ORIGIN);
      expect(loaded?.remote).toEqual({ conditionalWrites: 'ignored', git: { fingerprint: 'g1-b', sidecarEtag: 's2' } });
    });
  });

  it('a line cut short by a crash is dropped (the state before it stands) and the next save writes the whole file', { timeout: 10_000 }, async () => {
    await withDir(async (dir, stateDir) => {
      const file = new StateFile(stateDir, 'b', 'p/', silentLogger);
      const first = many(10);
      await file.save(dir, ORIGIN, { synced: true, snapshot: first, remoteId: 'r1' });
      const second = new Map(first).set('a.txt', entry(1));
      await file.save(dir, ORIGIN, { synced: true, snapshot: second, remoteId: 'r1' });
      const journal = await readFile(`${file.path}.journal`, 'utf8');
      await writeFile(`${file.path}.journal`, `${journal}${journal.slice(0, 40)}`); // a second line, torn
      const reader = new StateFile(stateDir, 'b', 'p/', silentLogger);
      const loaded = await reader.load(dir, ORIGIN);
      expect([...(loaded?.snapshot ?? new Map())].sort()).toEqual([...second].sort());
      const idBefore = JSON.parse(await readFile(file.path, 'utf8')).id;
      await reader.save(dir, ORIGIN, { synced: true, snapshot: new Map(second).set('b.txt', entry(2)), remoteId: 'r1' });
      expect(JSON.parse(await readFile(file.path, 'utf8')).id).not.toBe(idBefore);
      await expect(stat(`${file.path}.journal`)).rejects.toMatchObject({ code: 'ENOENT' });
      expect((await new StateFile(stateDir, 'b', 'p/', silentLogger).load(dir, ORIGIN))?.snapshot.has('b.txt')).toBe(true);
    });
  });

  it('a damaged line refuses the whole state, with a warning', { timeout: 10_000 }, async () => {
    await withDir(async (dir, stateDir) => {
      const file = new StateFile(stateDir, 'b', 'p/', silentLogger);
      await file.save(dir, ORIGIN, { synced: true, snapshot: many(10), remoteId: 'r1' });
      await file.save(dir, ORIGIN, { synced: true, snapshot: many(11), remoteId: 'r1' });
      const journal = await readFile(`${file.path}.journal`, 'utf8');
      await writeFile(`${file.path}.journal`, journal.replace('file-10', 'file-99'));
      const { logger, warnings } = recording();
      expect(await new StateFile(stateDir, 'b', 'p/', logger).load(dir, ORIGIN)).toBeUndefined();
      expect(warnings.join('\n')).toMatch(/journal line 1 is damaged/);
    });
  });

  it('a journal left beside a newer state file (a crash before its removal) is void', { timeout: 10_000 }, async () => {
    await withDir(async (dir, stateDir) => {
      const a = new StateFile(stateDir, 'b', 'p/', silentLogger);
      await a.save(dir, ORIGIN, { synced: true, snapshot: many(10), remoteId: 'r1' });
      await a.save(dir, ORIGIN, { synced: true, snapshot: many(11), remoteId: 'r1' });
      const stale = await readFile(`${a.path}.journal`);
      // another instance writes the whole file; then the old journal comes back
      await new StateFile(stateDir, 'b', 'p/', silentLogger).save(dir, ORIGIN, { synced: true, snapshot: many(5), remoteId: 'r1' });
      await writeFile(`${a.path}.journal`, stale);
      const loaded = await new StateFile(stateDir, 'b', 'p/', silentLogger).load(dir, ORIGIN);
      expect(loaded?.snapshot.size).toBe(5);
    });
  });

  it('a state file another writer replaced, or a journal grown past a quarter of the file, means a whole write', { timeout: 10_000 }, async () => {
    await withDir(async (dir, stateDir) => {
      const a = new StateFile(stateDir, 'b', 'p/', silentLogger);
      await a.save(dir, ORIGIN, { synced: true, snapshot: many(100), remoteId: 'r1' });
      await new StateFile(stateDir, 'b', 'p/', silentLogger).save(dir, ORIGIN, { synced: true, snapshot: many(50), remoteId: 'r1' });
      const other = JSON.parse(await readFile(a.path, 'utf8')).id;
      await a.save(dir, ORIGIN, { synced: true, snapshot: many(101), remoteId: 'r1' });
      expect(JSON.parse(await readFile(a.path, 'utf8')).id).not.toBe(other); // not appended to a file it did not write
      expect((await new StateFile(stateDir, 'b', 'p/', silentLogger).load(dir, ORIGIN))?.snapshot.size).toBe(101);

      // 5,000 entries changed at once: a line larger than the limit (256 KiB for a small file)
      const big = many(5000);
      const before = JSON.parse(await readFile(a.path, 'utf8')).id;
      await a.save(dir, ORIGIN, { synced: true, snapshot: big, remoteId: 'r1' });
      expect(JSON.parse(await readFile(a.path, 'utf8')).id).not.toBe(before);
      await expect(stat(`${a.path}.journal`)).rejects.toMatchObject({ code: 'ENOENT' });
    });
  });

  it('the manifest seen is kept raw beside the state, rewritten only when its ETag changes; bytes that do not match are dropped alone', { timeout: 10_000 }, async () => {
    await withDir(async (dir, stateDir) => {
      const file = new StateFile(stateDir, 'b', 'p/', silentLogger);
      const body = Buffer.from('{"format":"s3-workspace-sync/manifest","files":{}}\n');
      const etag = createHash('md5').update(body).digest('hex');
      await file.save(dir, ORIGIN, { synced: true, snapshot: many(3), remoteId: 'r1', remote: { manifest: { etag, body } } });
      const kept = `${file.path}.manifest`;
      expect(await readFile(kept)).toEqual(body);
      const inode = (await stat(kept)).ino;
      await file.save(dir, ORIGIN, { synced: true, snapshot: many(4), remoteId: 'r1', remote: { manifest: { etag, body } } });
      expect((await stat(kept)).ino).toBe(inode); // the same ETag: not written again
      const loaded = await new StateFile(stateDir, 'b', 'p/', silentLogger).load(dir, ORIGIN);
      expect(loaded?.remote?.manifest).toEqual({ etag, body });
      expect(loaded?.snapshot.size).toBe(4);
      await writeFile(kept, body.toString().replace('files', 'fileZ'));
      const again = await new StateFile(stateDir, 'b', 'p/', silentLogger).load(dir, ORIGIN);
      expect(again?.remote?.manifest).toBeUndefined();
      expect(again?.snapshot.size).toBe(4);
    });
  });
});
