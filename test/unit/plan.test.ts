import { describe, expect, it } from 'vitest';
import { toConfirm } from '../../src/core/compare.js';
import { remoteChangedSince,
  classifyRemote,
  md5FromEtag,
  planPull,
  planPush,
  pullNeeds,
  pushNeeds,
  statMatches,
  type LocalFile,
  type PlanInput,
  type RemoteObject,
  type SnapshotEntry,
} from '../../src/core/plan.js';

const P = 'ws/';
const MD5 = (c: string): string => c.repeat(32);

function local(path: string, size = 10, mtimeMs = 1000, ino = 1): LocalFile {
  return { path, size, mtimeMs, ctimeMs: mtimeMs, ino };
}
function remote(path: string, md5: string | undefined, size = 10, etag = md5 ?? 'abc-2'): RemoteObject {
  return { key: P + path, path, size, etag, md5 };
}
function snap(l: LocalFile, md5: string, etag: string | undefined = md5): SnapshotEntry {
  return { size: l.size, mtimeMs: l.mtimeMs, ctimeMs: l.ctimeMs, ino: l.ino, md5, etag };
}

function input(parts: {
  local?: LocalFile[];
  remote?: RemoteObject[];
  snapshot?: Array<[string, SnapshotEntry]>;
  hasSnapshot?: boolean;
  md5?: Array<[string, string]>;
  dirs?: string[];
  blocked?: string[];
  ignored?: string[];
}): PlanInput {
  return {
    prefix: P,
    local: new Map((parts.local ?? []).map((l) => [l.path, l])),
    localDirs: new Set(parts.dirs ?? []),
    remote: new Map((parts.remote ?? []).map((r) => [r.path, r])),
    snapshot: new Map(parts.snapshot ?? []),
    hasSnapshot: parts.hasSnapshot ?? (parts.snapshot?.length ?? 0) > 0,
    localMd5: new Map(parts.md5 ?? []),
    localBlocked: new Set(parts.blocked ?? []),
    isIgnored: (p) => (parts.ignored ?? []).includes(p),
  };
}

describe('md5FromEtag / statMatches', () => {
  it('recognises plain MD5 ETags only', () => {
    expect(md5FromEtag('"0123456789abcdef0123456789abcdef"')).toBe('0123456789abcdef0123456789abcdef');
    expect(md5FromEtag('0123456789ABCDEF0123456789ABCDEF')).toBe('0123456789abcdef0123456789abcdef');
    expect(md5FromEtag('"0123456789abcdef0123456789abcdef-3"')).toBeUndefined();
    expect(md5FromEtag(undefined)).toBeUndefined();
    expect(md5FromEtag('xyz')).toBeUndefined();
  });
  it('compares size, mtime, ctime and inode', () => {
    const l = local('a');
    expect(statMatches(l, snap(l, MD5('a')))).toBe(true);
    expect(statMatches({ ...l, mtimeMs: 2 }, snap(l, MD5('a')))).toBe(false);
    expect(statMatches({ ...l, ctimeMs: 2 }, snap(l, MD5('a')))).toBe(false);
    expect(statMatches({ ...l, ino: 9 }, snap(l, MD5('a')))).toBe(false);
    expect(statMatches({ ...l, size: 11 }, snap(l, MD5('a')))).toBe(false);
    expect(statMatches(l, undefined)).toBe(false);
  });
});

describe('classifyRemote', () => {
  const listed = (key: string, size = 5) => ({ key, size, etag: `"${MD5('e')}"` });
  it('keeps valid keys under the prefix and skips the rest with reasons', () => {
    const { remote, skipped } = classifyRemote(
      [
        listed('ws/a.txt'),
        listed('ws/dir/', 0),
        listed('ws/dir2/', 3),
        listed('ws/../../etc/passwd'),
        listed('ws/a//b'),
        listed('ws/a\\b'),
        listed('ws/n\u0000ul'),
        listed('ws/%2e%2e/x'),
        listed('ws/node_modules/x.js'),
        listed('other/x'),
        listed('ws/a.txt'),
      ],
      P,
      (p) => p.startsWith('node_modules'),
    );
    expect([...remote.keys()]).toEqual(['a.txt']);
    expect(remote.get('a.txt')).toMatchObject({ key: 'ws/a.txt', md5: MD5('e'), etag: MD5('e') });
    const reasons = Object.fromEntries(skipped.map((s) => [s.path, s.reason]));
    expect(reasons['ws/dir/']).toBe('directory-marker');
    expect(reasons['ws/dir2/']).toMatch(/^invalid-key/);
    expect(reasons['ws/../../etc/passwd']).toMatch(/^invalid-key: contains a '\.\.' segment/);
    expect(reasons['ws/a//b']).toMatch(/^invalid-key/);
    expect(reasons['ws/a\\b']).toMatch(/^invalid-key: contains a backslash/);
    expect(reasons['ws/n\u0000ul']).toMatch(/^invalid-key: contains a control/);
    expect(reasons['ws/%2e%2e/x']).toMatch(/^invalid-key: contains an encoded dot/);
    expect(reasons['node_modules/x.js']).toBe('ignored');
    expect(reasons['other/x']).toBe('outside-prefix');
    expect(skipped.filter((s) => s.path === 'a.txt').map((s) => s.reason)).toEqual(['duplicate-key']);
  });

  it('skips a key used both as a file and as a directory', () => {
    const { remote, skipped } = classifyRemote([listed('ws/a'), listed('ws/a/b')], P, () => false);
    expect([...remote.keys()]).toEqual(['a/b']);
    expect(skipped).toEqual([{ path: 'a', reason: expect.stringMatching(/^file-directory-conflict/) }]);
  });

  it('skips keys below an ignored directory', () => {
    const { remote } = classifyRemote([listed('ws/build/x/y.js')], P, (p) => p === 'build/');
    expect(remote.size).toBe(0);
  });
});

describe('planPull', () => {
  it('fresh instance: downloads new and changed, skips identical, mirrors deletions', () => {
    const same = local('same.txt');
    const changed = local('changed.txt');
    const extra = local('extra.txt');
    const i = input({
      local: [same, changed, extra],
      remote: [remote('same.txt', MD5('1')), remote('changed.txt', MD5('2')), remote('new.txt', MD5('3'), 7)],
      md5: [
        ['same.txt', MD5('1')],
        ['changed.txt', MD5('9')],
      ],
    });
    const plan = planPull(i);
    expect(plan.transfers.map((t) => [t.path, t.reason])).toEqual([
      ['changed.txt', 'changed'],
      ['new.txt', 'new'],
    ]);
    expect(plan.transferBytes).toBe(17);
    expect(plan.unchanged.map((u) => u.path)).toEqual(['same.txt']);
    expect(plan.deletions).toEqual([{ path: 'extra.txt', key: 'ws/extra.txt', reason: 'not-in-remote', local: extra }]);
    // nothing proves the replaced file: it is moved aside, not overwritten in place
    expect(plan.transfers.find((t) => t.path === 'changed.txt')).toMatchObject({ local: changed });
    expect(plan.transfers.find((t) => t.path === 'changed.txt')?.provenMd5).toBeUndefined();
    expect(plan.transfers.find((t) => t.path === 'new.txt')?.local).toBeUndefined();
    expect(plan.kept).toEqual([]);
  });

  it('synced instance: keeps files created or modified locally, deletes only untouched ones', () => {
    const untouched = local('untouched.txt');
    const modified = local('modified.txt', 10, 5000);
    const created = local('created.txt');
    const touched = local('touched.txt', 10, 7000); // mtime changed, same content
    const i = input({
      local: [untouched, modified, created, touched],
      remote: [],
      snapshot: [
        ['untouched.txt', snap(untouched, MD5('u'))],
        ['modified.txt', snap(local('modified.txt'), MD5('m'))],
        ['touched.txt', snap(local('touched.txt'), MD5('t'))],
      ],
      md5: [
        ['modified.txt', MD5('x')],
        ['touched.txt', MD5('t')],
      ],
    });
    const plan = planPull(i);
    expect(plan.deletions.map((d) => [d.path, d.reason]).sort()).toEqual([
      ['touched.txt', 'deleted-remotely'],
      ['untouched.txt', 'deleted-remotely'],
    ]);
    expect(plan.kept).toEqual([
      { path: 'modified.txt', reason: 'modified-locally' },
      { path: 'created.txt', reason: 'created-locally' },
    ]);
  });

  it('synced instance: never overwrites unpushed local edits; downloads remote edits of untouched files', () => {
    const mine = local('mine.txt', 10, 5000);
    const theirs = local('theirs.txt');
    const i = input({
      local: [mine, theirs],
      remote: [remote('mine.txt', MD5('r')), remote('theirs.txt', MD5('n'))],
      snapshot: [
        ['mine.txt', snap(local('mine.txt'), MD5('o'))],
        ['theirs.txt', snap(theirs, MD5('o'))],
      ],
      md5: [['mine.txt', MD5('l')]],
    });
    const plan = planPull(i);
    expect(plan.transfers.map((t) => t.path)).toEqual(['theirs.txt']);
    expect(plan.kept).toEqual([{ path: 'mine.txt', reason: 'modified-locally' }]);
  });

  it('a locally edited file that now equals the remote is unchanged, not a conflict', () => {
    const f = local('f.txt', 10, 5000);
    const plan = planPull(
      input({
        local: [f],
        remote: [remote('f.txt', MD5('r'))],
        snapshot: [['f.txt', snap(local('f.txt'), MD5('o'))]],
        md5: [['f.txt', MD5('r')]],
      }),
    );
    expect(plan.transfers).toEqual([]);
    expect(plan.kept).toEqual([]);
    expect(plan.unchanged.map((u) => u.path)).toEqual(['f.txt']);
  });

  it('trusts the snapshot when stat and ETag are unchanged (no hash needed)', () => {
    const f = local('f.bin');
    const i = input({ local: [f], remote: [remote('f.bin', undefined, 10, 'etag-3')], snapshot: [['f.bin', snap(f, MD5('a'), 'etag-3')]] });
    expect(pullNeeds(i)).toEqual({ hash: [], head: [] });
    const plan = planPull(i);
    expect(plan.unchanged).toHaveLength(1);
    expect(plan.transfers).toHaveLength(0);
  });

  it('restores a file deleted locally (the bucket is the source of truth)', () => {
    const plan = planPull(
      input({ remote: [remote('gone.txt', MD5('g'))], snapshot: [['gone.txt', snap(local('gone.txt'), MD5('g'))]] }),
    );
    expect(plan.transfers.map((t) => [t.path, t.reason])).toEqual([['gone.txt', 'missing-locally']]);
  });

  it('skips remote files that collide with local directories or non-files', () => {
    const plan = planPull(
      input({
        local: [local('file')],
        remote: [remote('dir', MD5('1')), remote('file/child', MD5('2')), remote('link', MD5('3'))],
        dirs: ['dir'],
        blocked: ['link'],
      }),
    );
    expect(plan.transfers).toEqual([]);
    // the local file in the way is deleted (mirror) so the next pull can write file/child
    expect(plan.skipped).toEqual([{ path: 'file/child', reason: 'parent-is-not-a-directory-locally' }]);
    expect(plan.deletions.map((d) => d.path)).toEqual(['file']);
    // a directory or symlink where the bucket has a file: the sides cannot match — a failure
    expect(plan.blocked).toEqual([
      { path: 'dir', reason: 'directory-exists-locally', code: 'EISDIR' },
      { path: 'link', reason: 'local-path-is-not-a-regular-file', code: 'NOT_A_FILE' },
    ]);
  });

  it('never deletes a local file whose key exists remotely but cannot be synced', () => {
    const plan = planPull({ ...input({ local: [local('x')], remote: [remote('x/inner.txt', MD5('1'))] }), remoteBlocked: new Set(['x']) });
    expect(plan.deletions).toEqual([]);
    expect(plan.skipped).toEqual([
      { path: 'x/inner.txt', reason: 'parent-is-not-a-directory-locally' },
      { path: 'x', reason: expect.stringMatching(/^not-deleted/) },
    ]);
  });

  it('downloads when the remote MD5 is unknown and cannot be compared', () => {
    const f = local('f.bin');
    const plan = planPull(input({ local: [f], remote: [remote('f.bin', undefined)], md5: [['f.bin', MD5('a')]] }));
    expect(plan.transfers.map((t) => t.path)).toEqual(['f.bin']);
  });
});

describe('pullNeeds', () => {
  it('hashes only what the snapshot and sizes cannot decide', () => {
    const a = local('a', 10); // same size as remote, no snapshot → hash
    const b = local('b', 11); // different size, fresh → download, no hash
    const c = local('c', 10); // local only, fresh → delete, no hash
    const d = local('d', 10); // non-MD5 ETag, same size → hash + head
    expect(
      pullNeeds(input({ local: [a, b, c, d], remote: [remote('a', MD5('1')), remote('b', MD5('2')), remote('d', undefined)] })),
    ).toEqual({ hash: ['a', 'd'], head: ['d'] });
  });

  it('with a snapshot, hashes changed-stat files to tell edits from touches', () => {
    const a = local('a', 10, 2000);
    const i = input({ local: [a], remote: [], snapshot: [['a', snap(local('a'), MD5('1'))]] });
    expect(pullNeeds(i).hash).toEqual(['a']);
  });
});

describe('planPush', () => {
  it('without a snapshot: uploads new files (create-only), skips identical ones, reports differing ones as conflicts, deletes nothing', () => {
    const same = local('same.txt');
    const diff = local('diff.txt');
    const fresh = local('fresh.txt', 4);
    const plan = planPush(
      input({
        local: [same, diff, fresh],
        remote: [remote('same.txt', MD5('1')), remote('diff.txt', MD5('2')), remote('remote-only.txt', MD5('3'))],
        md5: [
          ['same.txt', MD5('1')],
          ['diff.txt', MD5('9')],
        ],
      }),
    );
    // A differing object this instance never saw is another writer's: a conflict, not an overwrite (issue 16).
    expect(plan.transfers.map((t) => [t.path, t.key, t.reason, t.expectedEtag])).toEqual([['fresh.txt', 'ws/fresh.txt', 'new', null]]);
    expect(plan.conflicts).toEqual([{ path: 'diff.txt', key: 'ws/diff.txt', action: 'upload', expectedEtag: null, currentEtag: MD5('2'), resolution: 'reported' }]);
    expect(plan.transferBytes).toBe(4);
    expect(plan.unchanged.map((u) => u.path)).toEqual(['same.txt']);
    expect(plan.deletions).toEqual([]);
    // keep-local: uploaded, on condition that the object is still the version listed
    const keep = planPush({
      ...input({
        local: [same, diff, fresh],
        remote: [remote('same.txt', MD5('1')), remote('diff.txt', MD5('2')), remote('remote-only.txt', MD5('3'))],
        md5: [
          ['same.txt', MD5('1')],
          ['diff.txt', MD5('9')],
        ],
      }),
      conflictPolicy: 'keep-local',
    });
    expect(keep.transfers.map((t) => [t.path, t.key, t.reason, t.expectedEtag])).toEqual([
      ['diff.txt', 'ws/diff.txt', 'changed', MD5('2')],
      ['fresh.txt', 'ws/fresh.txt', 'new', null],
    ]);
    expect(keep.transferBytes).toBe(14);
    expect(keep.conflicts).toEqual([]);
  });

  it('with a snapshot: uploads what changed, deletes only synced files gone locally', () => {
    const kept = local('kept.txt');
    const edited = local('edited.txt', 12, 3000);
    const touched = local('touched.txt', 10, 3000);
    const plan = planPush(
      input({
        local: [kept, edited, touched, local('new.txt')],
        snapshot: [
          ['kept.txt', snap(kept, MD5('k'))],
          ['edited.txt', snap(local('edited.txt'), MD5('e'))],
          ['touched.txt', snap(local('touched.txt'), MD5('t'))],
          ['deleted.txt', snap(local('deleted.txt'), MD5('d'))],
          ['now-ignored.txt', snap(local('now-ignored.txt'), MD5('i'))],
          ['now-a-symlink', snap(local('now-a-symlink'), MD5('s'))],
        ],
        md5: [
          ['edited.txt', MD5('E')],
          ['touched.txt', MD5('t')],
        ],
        ignored: ['now-ignored.txt'],
        blocked: ['now-a-symlink'],
      }),
    );
    expect(plan.transfers.map((t) => [t.path, t.reason])).toEqual([
      ['edited.txt', 'changed'],
      ['new.txt', 'new'],
    ]);
    // every write is conditional: replace the version last synced; create a new path only if still free
    expect(plan.transfers.map((t) => t.expectedEtag)).toEqual([MD5('e'), null]);
    expect(plan.unchanged.map((u) => u.path).sort()).toEqual(['kept.txt', 'touched.txt']);
    expect(plan.deletions).toEqual([{ path: 'deleted.txt', key: 'ws/deleted.txt', reason: 'deleted-locally', expectedEtag: MD5('d') }]);
    expect(plan.skipped).toEqual([{ path: 'now-a-symlink', reason: expect.stringMatching(/^not-deleted/) }]);
  });

  it('deletes the object of a file replaced by a directory', () => {
    const plan = planPush(
      input({ local: [local('a/b')], dirs: ['a'], snapshot: [['a', snap(local('a'), MD5('a'))]] }),
    );
    expect(plan.deletions.map((d) => d.path)).toEqual(['a']);
    expect(plan.transfers.map((t) => t.path)).toEqual(['a/b']);
  });

  it('running the plan again after it succeeded changes nothing', () => {
    const f = local('f.txt');
    const first = planPush(input({ local: [f], hasSnapshot: true }));
    expect(first.transfers).toHaveLength(1);
    const second = planPush(input({ local: [f], snapshot: [['f.txt', snap(f, MD5('f'))]] }));
    expect(second.transfers).toHaveLength(0);
    expect(second.deletions).toHaveLength(0);
  });
});

describe('planPush key length', () => {
  it('blocks (a failure, not a skip) a file whose key (prefix + path) would exceed 1,024 bytes', () => {
    const long = `${'d/'.repeat(300)}${'x'.repeat(400)}`; // under 1,024 bytes, over it with the prefix
    const plan = planPush({ ...input({ local: [local(long), local('ok.txt')] }), prefix: 'p'.repeat(30) + '/' });
    expect(plan.transfers.map((t) => t.path)).toEqual(['ok.txt']);
    expect(plan.skipped).toEqual([]);
    expect(plan.blocked).toEqual([
      { path: long, code: 'INVALID_NAME', reason: expect.stringMatching(/^invalid-name: the key would be longer than 1024 bytes/) },
    ]);
  });

  it('blocks a file larger than an S3 object can be (5 TiB)', () => {
    const plan = planPush(input({ local: [local('huge.img', 5 * 1024 ** 4 + 1), local('ok.txt')] }));
    expect(plan.transfers.map((t) => t.path)).toEqual(['ok.txt']);
    expect(plan.blocked).toEqual([{ path: 'huge.img', code: 'TOO_LARGE', reason: expect.stringMatching(/^too-large/) }]);
  });
});

/**
 * Rule one: a pull destroys (overwrites or deletes) a local file in place
 * only with proof that its content is what the last sync recorded. Without
 * proof it keeps the file (an instance that has synced) or moves it aside
 * first (`proven: false`).
 */
describe('planPull: proof before destruction', () => {
  const A = MD5('a');
  const B = MD5('b');
  const C = MD5('c');
  type Row = [
    label: string,
    opts: { snap?: 'match' | 'stat-differs-same-md5' | 'stat-differs-other-md5' | 'none'; hasSnapshot: boolean; remote: 'other' | 'missing'; overwrite?: boolean },
    expected: 'overwrite' | 'delete' | 'move-aside-overwrite' | 'move-aside-delete' | 'keep',
  ];
  const rows: Row[] = [
    ['no state, file differs from the bucket', { snap: 'none', hasSnapshot: false, remote: 'other' }, 'move-aside-overwrite'],
    ['no state, file not in the bucket', { snap: 'none', hasSnapshot: false, remote: 'missing' }, 'move-aside-delete'],
    ['entry matches by stat, bucket changed', { snap: 'match', hasSnapshot: true, remote: 'other' }, 'overwrite'],
    ['entry matches by stat, bucket deleted it', { snap: 'match', hasSnapshot: true, remote: 'missing' }, 'delete'],
    ['entry matches by MD5 (touched), bucket deleted it', { snap: 'stat-differs-same-md5', hasSnapshot: true, remote: 'missing' }, 'delete'],
    ['modified since the entry, synced instance', { snap: 'stat-differs-other-md5', hasSnapshot: true, remote: 'other' }, 'keep'],
    ['modified since the entry, bucket deleted it, synced instance', { snap: 'stat-differs-other-md5', hasSnapshot: true, remote: 'missing' }, 'keep'],
    ['not covered by the state, synced instance', { snap: 'none', hasSnapshot: true, remote: 'missing' }, 'keep'],
    ['modified, overwriteLocalChanges', { snap: 'stat-differs-other-md5', hasSnapshot: true, remote: 'other', overwrite: true }, 'move-aside-overwrite'],
    ['not covered, overwriteLocalChanges', { snap: 'none', hasSnapshot: true, remote: 'missing', overwrite: true }, 'move-aside-delete'],
    ['entry of a fresh instance (partial first pull) matches', { snap: 'match', hasSnapshot: false, remote: 'missing' }, 'delete'],
    ['entry of a fresh instance, file modified', { snap: 'stat-differs-other-md5', hasSnapshot: false, remote: 'missing' }, 'move-aside-delete'],
  ];
  it.each(rows)('%s', (_label, o, expected) => {
    const file = local('f.txt', 10, 1000);
    const statDiffers = o.snap === 'stat-differs-same-md5' || o.snap === 'stat-differs-other-md5';
    const scanned = statDiffers ? local('f.txt', 10, 2000) : file;
    const snapshot: Array<[string, SnapshotEntry]> = o.snap === undefined || o.snap === 'none' ? [] : [['f.txt', snap(file, A)]];
    const md5: Array<[string, string]> = o.snap === 'stat-differs-same-md5' ? [['f.txt', A]] : o.snap === 'match' ? [] : [['f.txt', C]];
    const i = {
      ...input({ local: [scanned], remote: o.remote === 'other' ? [remote('f.txt', B)] : [], snapshot, hasSnapshot: o.hasSnapshot, md5 }),
      overwriteLocalChanges: o.overwrite === true,
    };
    // pullNeeds asks for exactly the hash the decision needs
    const needs = pullNeeds(i);
    expect(needs.hash.includes('f.txt')).toBe(o.snap !== 'match' && (o.remote === 'other' || o.snap !== 'none'));
    const plan = planPull(i);
    const t = plan.transfers.find((x) => x.path === 'f.txt');
    const d = plan.deletions.find((x) => x.path === 'f.txt');
    const got =
      plan.kept.some((k) => k.path === 'f.txt')
        ? 'keep'
        : t !== undefined
          ? t.provenMd5 !== undefined
            ? 'overwrite'
            : 'move-aside-overwrite'
          : d !== undefined
            ? d.provenMd5 !== undefined
              ? 'delete'
              : 'move-aside-delete'
            : 'none';
    expect(got).toBe(expected);
    if (t !== undefined) expect(t.local).toEqual(scanned);
    if (d !== undefined) expect(d.local).toEqual(scanned);
    // the proof names the content it vouches for: the entry's MD5
    for (const x of [t, d]) if (x?.provenMd5 !== undefined) expect(x.provenMd5).toBe(A);
  });
});

describe('pushNeeds', () => {
  it('never hashes files the snapshot vouches for; new files are hashed during upload', () => {
    const a = local('a');
    const b = local('b', 10, 2000);
    const c = local('c');
    expect(
      pushNeeds(input({ local: [a, b, c], snapshot: [['a', snap(a, MD5('a'))], ['b', snap(local('b'), MD5('b'))]] })),
    ).toEqual({ hash: ['b'], head: [] });
  });
  it('without a snapshot, hashes only files whose object has the same size', () => {
    const a = local('a');
    const b = local('b', 3);
    const c = local('c');
    expect(
      pushNeeds(input({ local: [a, b, c], remote: [remote('a', MD5('1')), remote('b', MD5('2')), remote('c', undefined)] })),
    ).toEqual({ hash: ['a', 'c'], head: ['c'] });
  });
});

/** The objects whose ETag-as-MD5 must be confirmed by a HEAD, knowing only the hashes in the input. */
const etagsToConfirm = (i: PlanInput): string[] => toConfirm(i, { localMd5: i.localMd5, localEtags: new Map(), heads: new Map() });

describe('etagsToConfirm', () => {
  it('names same-size objects whose ETag-as-MD5 disagrees with the local MD5, and nothing else', () => {
    const fromEtag = (path: string, md5: string, size = 10): RemoteObject => ({ ...remote(path, md5, size), md5FromEtag: true });
    const i = input({
      local: [local('same.txt'), local('differs.txt'), local('other-size.txt', 12), local('meta.txt'), local('unhashed.txt')],
      remote: [
        fromEtag('same.txt', MD5('1')),
        fromEtag('differs.txt', MD5('2')),
        fromEtag('other-size.txt', MD5('3')),
        { ...remote('meta.txt', MD5('4')), md5FromEtag: false },
        fromEtag('unhashed.txt', MD5('5')),
        fromEtag('remote-only.txt', MD5('6')),
      ],
      md5: [
        ['same.txt', MD5('1')],
        ['differs.txt', MD5('9')],
        ['other-size.txt', MD5('9')],
        ['meta.txt', MD5('9')],
      ],
    });
    expect(etagsToConfirm(i)).toEqual(['differs.txt']);
  });

  it('skips an object this instance synced and that is still there (same ETag as the snapshot): no HEAD per pull of an SSE-KMS tree', () => {
    const f = local('kms.txt');
    const kmsEtag = MD5('e'); // looks like an MD5, is not the content's
    const synced = { ...snap(f, MD5('1')), etag: kmsEtag };
    const i = input({ local: [f], remote: [{ ...remote('kms.txt', kmsEtag), md5FromEtag: true }], snapshot: [['kms.txt', synced]] });
    expect(etagsToConfirm(i)).toEqual([]);
    expect(planPull({ ...i }).unchanged.map((u) => u.path)).toEqual(['kms.txt']);
    // replaced remotely since (another ETag): confirmed
    const replaced = input({ local: [f], remote: [{ ...remote('kms.txt', MD5('f')), md5FromEtag: true }], snapshot: [['kms.txt', synced]] });
    expect(etagsToConfirm(replaced)).toEqual(['kms.txt']);
  });
});

describe('conflicts the policy settles (Plan.bothChanged)', () => {
  it('pull: a file modified locally whose object changed, or created on both sides, is kept and changed on both sides; modified only locally (or a rewrite of the synced bytes) is only kept', { timeout: 5_000 }, () => {
    const both = local('both.txt', 10, 5000);
    const created = local('created.txt');
    const mine = local('mine.txt', 10, 5000);
    const rewritten = local('rewritten.txt', 10, 5000);
    const plan = planPull(
      input({
        local: [both, created, mine, rewritten],
        remote: [remote('both.txt', MD5('r')), remote('created.txt', MD5('t')), remote('mine.txt', MD5('o')), remote('rewritten.txt', MD5('o'), 10, MD5('k'))],
        snapshot: [
          ['both.txt', snap(local('both.txt'), MD5('o'))],
          ['mine.txt', snap(local('mine.txt'), MD5('o'))],
          ['rewritten.txt', snap(local('rewritten.txt'), MD5('o'))],
        ],
        md5: [
          ['both.txt', MD5('l')],
          ['created.txt', MD5('c')],
          ['mine.txt', MD5('l')],
          ['rewritten.txt', MD5('l')],
        ],
      }),
    );
    expect(plan.transfers).toEqual([]);
    expect(plan.kept.map((k) => k.path).sort()).toEqual(['both.txt', 'created.txt', 'mine.txt', 'rewritten.txt']);
    expect(plan.bothChanged.map((b) => [b.path, b.key, b.expectedEtag, b.remote.etag])).toEqual([
      ['both.txt', 'ws/both.txt', MD5('o'), MD5('r')],
      ['created.txt', 'ws/created.txt', null, MD5('t')],
    ]);
    // overwriteLocalChanges: the bucket wins, as before (no conflict)
    const wins = planPull({ ...input({ local: [both], remote: [remote('both.txt', MD5('r'))], snapshot: [['both.txt', snap(local('both.txt'), MD5('o'))]], md5: [['both.txt', MD5('l')]] }), overwriteLocalChanges: true });
    expect(wins.bothChanged).toEqual([]);
    expect(wins.transfers.map((t) => t.path)).toEqual(['both.txt']);
  });

  it('remoteChangedSince: the recorded version did not change; a known MD5 decides; unknown counts as changed; no entry: appeared', { timeout: 5_000 }, () => {
    const entry = snap(local('f'), MD5('o'));
    expect(remoteChangedSince(remote('f', MD5('o')), entry)).toBe(false);
    expect(remoteChangedSince(remote('f', MD5('o'), 10, MD5('k')), entry)).toBe(false); // a rewrite of the same bytes
    expect(remoteChangedSince(remote('f', MD5('r')), entry)).toBe(true);
    expect(remoteChangedSince(remote('f', undefined), entry)).toBe(true);
    expect(remoteChangedSince(remote('f', MD5('o')), undefined)).toBe(true);
  });

  it('push without a snapshot: keep-remote / keep-both leave other content to the execute stage; keep-local saves it first (replaces)', { timeout: 5_000 }, () => {
    const diff = local('diff.txt');
    const parts = { local: [diff], remote: [remote('diff.txt', MD5('2'), 7)], md5: [['diff.txt', MD5('9')]] as Array<[string, string]> };
    for (const policy of ['keep-remote', 'keep-both'] as const) {
      const plan = planPush({ ...input(parts), conflictPolicy: policy });
      expect(plan.transfers).toEqual([]);
      expect(plan.conflicts).toEqual([]);
      expect(plan.bothChanged.map((b) => [b.path, b.expectedEtag, b.remote.etag])).toEqual([['diff.txt', null, MD5('2')]]);
    }
    const keep = planPush({ ...input(parts), conflictPolicy: 'keep-local' });
    expect(keep.transfers.map((t) => [t.path, t.expectedEtag, t.replaces])).toEqual([['diff.txt', MD5('2'), { etag: MD5('2'), size: 7 }]]);
    expect(keep.bothChanged).toEqual([]);
  });
});
