import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { describe, expect, it } from 'vitest';

import { isRacy, statMatches, type Snapshot } from '../../src/core/plan.js';
import { silentLogger } from '../../src/index.js';
import { parseState, StateFile } from '../../src/state/StateFile.js';

const MD5 = 'd41d8cd98f00b204e9800998ecf8427e';
const ORIGIN = { endpoint: 'http://127.0.0.1:9000', bucket: 'b', prefix: 'p/', owner: null };
const ID = { origin: ORIGIN, root: '/ws', dev: 1, ino: 2, birthtimeMs: 3 };

function doc(overrides: Record<string, unknown> = {}, entries: Record<string, unknown> = { 'a.txt': [0, 1, 2, 3, MD5, 'etag', 0] }): string {
  return JSON.stringify({
    format: 's3-workspace-sync/state',
    version: 2,
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
    const remote = { manifest: { etag: 'e1', body: '{"format":"s3-workspace-sync/manifest"}' }, conditionalWrites: 'enforced' };
    expect(parseState(doc({ remote }), ID)).toMatchObject({ synced: true, remote });
    const remoteOf = (text: string) => {
      const parsed = parseState(text, ID);
      if (typeof parsed === 'string') throw new Error(parsed);
      expect(parsed.snapshot.size).toBe(1);
      return parsed.remote;
    };
    expect(remoteOf(doc({ remote: { conditionalWrites: 'maybe', manifest: { etag: '', body: 'x' } } }))).toBeUndefined();
    const partial = parseState(doc({ remote: { conditionalWrites: 'ignored', manifest: { etag: 'e', body: 5 } } }), ID);
    expect(partial).toMatchObject({ remote: { conditionalWrites: 'ignored' } });
    if (typeof partial === 'object') expect(partial.remote?.manifest).toBeUndefined();
    expect(remoteOf(doc({ remote: 'nonsense' }))).toBeUndefined();
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
