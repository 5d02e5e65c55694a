// Equality (src/core/compare.ts), table-tested:
// 1. what an object's MD5 is, for every kind of ETag and every HEAD answer;
// 2. every cell of local state × remote state × snapshot state, for pull and
//    push, run through the same steps as the prepare stage (needs → HEADs and
//    hashes → confirmations → resolveRemotes → plan), each cell named.
import { describe, expect, it } from 'vitest';
import {
  contentMd5,
  etagPartSizes,
  pullNeeds,
  pushNeeds,
  resolveRemote,
  resolveRemotes,
  toConfirm,
  type CompareInput,
  type Learned,
  type ObjectFacts,
} from '../../src/core/compare.js';
import { multipartPartCount } from '../../src/core/md5.js';
import type { LocalFile, RemoteObject, SnapshotEntry } from '../../src/core/model.js';
import { planPull, planPush, type Plan } from '../../src/core/plan.js';

const P = 'ws/';
const hex = (c: string): string => c.repeat(32);
const MiB = 1024 * 1024;

function listed(path: string, etag: string, size = 10): RemoteObject {
  const md5 = /^[0-9a-f]{32}$/.test(etag) ? etag : undefined;
  return { key: P + path, path, size, etag, md5, md5FromEtag: md5 !== undefined };
}

function learned(parts: Partial<{ localMd5: Array<[string, string]>; localEtags: Array<[string, string[]]>; heads: Array<[string, ObjectFacts]> }>): Learned {
  return { localMd5: new Map(parts.localMd5 ?? []), localEtags: new Map(parts.localEtags ?? []), heads: new Map(parts.heads ?? []) };
}

const file = (path: string, size = 10, mtimeMs = 1000): LocalFile => ({ path, size, mtimeMs, ctimeMs: mtimeMs, ino: 7 });

describe("an object's MD5 (rules 3 and 4)", () => {
  const L = hex('1'); // the local file's MD5
  const ETAG = hex('e'); // a plain ETag (looks like an MD5)
  const MP = `${hex('f')}-3`; // a multipart ETag
  const f = file('x', 3 * 5 * MiB - 1, 5000);
  const cells: Array<{ name: string; obj: RemoteObject; learn: Learned; md5: string | undefined; tentative: boolean }> = [
    { name: 'plain ETag, listing only: the ETag, tentative', obj: listed('x', ETAG), learn: learned({}), md5: ETAG, tentative: true },
    { name: 'plain ETag, HEAD without encryption: the ETag, confirmed', obj: listed('x', ETAG), learn: learned({ heads: [['x', { etag: ETAG, serverSideEncryption: 'AES256' }]] }), md5: ETAG, tentative: false },
    { name: 'plain ETag, HEAD with a metadata MD5: the metadata', obj: listed('x', ETAG), learn: learned({ heads: [['x', { etag: ETAG, md5: L }]] }), md5: L, tentative: false },
    { name: 'SSE-KMS, metadata MD5: the metadata', obj: listed('x', ETAG), learn: learned({ heads: [['x', { etag: ETAG, md5: L, serverSideEncryption: 'aws:kms' }]] }), md5: L, tentative: false },
    { name: 'SSE-KMS, no metadata MD5: unknown', obj: listed('x', ETAG), learn: learned({ heads: [['x', { etag: ETAG, serverSideEncryption: 'aws:kms' }]] }), md5: undefined, tentative: false },
    { name: 'DSSE-KMS, no metadata MD5: unknown', obj: listed('x', ETAG), learn: learned({ heads: [['x', { etag: ETAG, serverSideEncryption: 'aws:kms:dsse' }]] }), md5: undefined, tentative: false },
    { name: 'SSE-C, no metadata MD5: unknown', obj: listed('x', ETAG), learn: learned({ heads: [['x', { etag: ETAG, serverSideEncryption: 'sse-c' }]] }), md5: undefined, tentative: false },
    {
      name: 'SSE-KMS, no metadata MD5, same size and recorded mtime: the local MD5 (last resort)',
      obj: listed('x', ETAG, f.size),
      learn: learned({ localMd5: [['x', L]], heads: [['x', { etag: ETAG, serverSideEncryption: 'aws:kms', mtimeMs: f.mtimeMs }]] }),
      md5: L,
      tentative: false,
    },
    { name: 'a HEAD of a replaced object (other ETag) says nothing: the listing', obj: listed('x', ETAG), learn: learned({ heads: [['x', { etag: hex('9'), md5: L }]] }), md5: ETAG, tentative: true },
    { name: 'multipart, metadata MD5: the metadata', obj: listed('x', MP, f.size), learn: learned({ heads: [['x', { etag: MP, md5: L }]] }), md5: L, tentative: false },
    {
      name: "multipart, no metadata, the local file's multipart ETag matches: the local MD5",
      obj: listed('x', MP, f.size),
      learn: learned({ localMd5: [['x', L]], localEtags: [['x', ['nope-3', MP]]], heads: [['x', { etag: MP, partSize: 5 * MiB }]] }),
      md5: L,
      tentative: false,
    },
    {
      name: 'multipart, no metadata, no local multipart ETag matches: unknown (even with the same mtime)',
      obj: listed('x', MP, f.size),
      learn: learned({ localMd5: [['x', L]], localEtags: [['x', ['nope-3']]], heads: [['x', { etag: MP, partSize: 5 * MiB, mtimeMs: f.mtimeMs }]] }),
      md5: undefined,
      tentative: false,
    },
    {
      name: 'another server\'s ETag (not hex), same size and recorded mtime: the local MD5',
      obj: listed('x', 'opaque-etag', f.size),
      learn: learned({ localMd5: [['x', L]], heads: [['x', { etag: 'opaque-etag', mtimeMs: f.mtimeMs }]] }),
      md5: L,
      tentative: false,
    },
    {
      name: "another server's ETag, another recorded mtime: unknown",
      obj: listed('x', 'opaque-etag', f.size),
      learn: learned({ localMd5: [['x', L]], heads: [['x', { etag: 'opaque-etag', mtimeMs: f.mtimeMs + 1000 }]] }),
      md5: undefined,
      tentative: false,
    },
    {
      name: "another server's ETag, same mtime but another size: unknown",
      obj: listed('x', 'opaque-etag', f.size + 1),
      learn: learned({ localMd5: [['x', L]], heads: [['x', { etag: 'opaque-etag', mtimeMs: f.mtimeMs }]] }),
      md5: undefined,
      tentative: false,
    },
  ];
  for (const c of cells) {
    it(c.name, { timeout: 5_000 }, () => {
      const out = resolveRemote(c.obj, f, c.learn);
      expect(out.md5).toBe(c.md5);
      expect(out.md5FromEtag === true).toBe(c.tentative);
      expect(c.obj.md5).toBe(listed(c.obj.path, c.obj.etag, c.obj.size).md5); // the listing's object is not changed
    });
  }

  it("the version this instance synced (ETag recorded in the snapshot): the snapshot's MD5, whatever the ETag means, with no HEAD", { timeout: 5_000 }, () => {
    const entry = { size: f.size, mtimeMs: 1, ctimeMs: 1, ino: 1, md5: L, etag: ETAG };
    const out = resolveRemote(listed('x', ETAG, f.size), f, learned({ heads: [['x', { etag: ETAG, serverSideEncryption: 'aws:kms' }]] }), entry);
    expect(out.md5).toBe(L);
    expect(out.md5FromEtag).toBe(false);
    // another version at the key: the snapshot says nothing about it
    expect(resolveRemote(listed('x', hex('9'), f.size), f, learned({}), entry).md5).toBe(hex('9'));
    const input = { local: new Map([['x', { ...f, mtimeMs: 2 }]]), remote: new Map([['x', listed('x', ETAG, f.size)]]), snapshot: new Map([['x', entry]]), hasSnapshot: true };
    expect(toConfirm(input, learned({ localMd5: [['x', hex('2')]] }))).toEqual([]);
  });

  it('contentMd5: what an answer proves (metadata, else an ETag that is an MD5 under its encryption)', { timeout: 5_000 }, () => {
    expect(contentMd5({ etag: ETAG })).toBe(ETAG);
    expect(contentMd5({ etag: `"${ETAG.toUpperCase()}"` })).toBe(ETAG);
    expect(contentMd5({ etag: ETAG, md5: L })).toBe(L);
    expect(contentMd5({ etag: ETAG, serverSideEncryption: 'aws:kms' })).toBeUndefined();
    expect(contentMd5({ etag: ETAG, serverSideEncryption: 'AES256' })).toBe(ETAG);
    expect(contentMd5({ etag: MP })).toBeUndefined();
  });

  it('etagPartSizes: multipart ETags are computed only for a multipart object whose MD5 is unknown, the known part size first', { timeout: 5_000 }, () => {
    const mp = listed('x', MP, f.size);
    expect(multipartPartCount(MP)).toBe(3);
    expect(etagPartSizes(mp, { etag: MP, partSize: 6 * MiB })[0]).toBe(6 * MiB);
    expect(etagPartSizes(mp, { etag: MP, md5: L })).toEqual([]);
    expect(etagPartSizes(listed('x', ETAG), undefined)).toEqual([]);
    expect(etagPartSizes(undefined, undefined)).toEqual([]);
  });
});

// ---------------------------------------------------------------- the three-way table

type LocalState = 'absent' | 'same' | 'touched' | 'modified';
type RemoteState = 'absent' | 'same' | 'rewritten' | 'changed';
type SnapState = 'fresh' | 'no-entry' | 'entry';

const O = hex('a'); // the content at the last sync
const M = hex('b'); // a local modification
const R = hex('c'); // a remote change
const KMS = hex('d'); // the ETag of an SSE-KMS rewrite of O: looks like an MD5, is not one
const ENTRY: SnapshotEntry = { size: 10, mtimeMs: 1000, ctimeMs: 1000, ino: 7, md5: O, etag: O };

/** Runs the prepare stage's steps on one path, with a bucket and a disk that answer as the states say. */
function decide(direction: 'pull' | 'push', l: LocalState, r: RemoteState, s: SnapState): string {
  const path = 'f.txt';
  const local = new Map<string, LocalFile>();
  if (l !== 'absent') local.set(path, { path, size: 10, mtimeMs: l === 'same' ? 1000 : 2000, ctimeMs: l === 'same' ? 1000 : 2000, ino: 7 });
  const contentOnDisk = l === 'modified' ? M : O;
  const bucket = new Map<string, { obj: RemoteObject; facts: ObjectFacts }>();
  if (r === 'same') bucket.set(path, { obj: listed(path, O), facts: { etag: O, md5: O } });
  if (r === 'changed') bucket.set(path, { obj: listed(path, R), facts: { etag: R, md5: R } });
  if (r === 'rewritten') bucket.set(path, { obj: listed(path, KMS), facts: { etag: KMS, md5: O, serverSideEncryption: 'aws:kms' } });
  const hasSnapshot = s !== 'fresh';
  // A push with a snapshot does not list the bucket (issue 16 changes that): it sees no remote.
  const seen = direction === 'push' && hasSnapshot ? new Map<string, RemoteObject>() : new Map([...bucket].map(([p, b]) => [p, b.obj]));
  const base: CompareInput = { local, remote: seen, snapshot: new Map(s === 'entry' ? [[path, ENTRY]] : []), hasSnapshot };
  const needs = direction === 'pull' ? pullNeeds(base) : pushNeeds(base);
  const head = (paths: string[]): Array<[string, ObjectFacts]> => paths.flatMap((p) => (bucket.has(p) ? [[p, bucket.get(p)!.facts] as [string, ObjectFacts]] : []));
  let learn = learned({ heads: head(needs.head), localMd5: needs.hash.map((p) => [p, contentOnDisk]) });
  const confirm = toConfirm(base, learn);
  learn = { ...learn, heads: new Map([...learn.heads, ...head(confirm)]) };
  const input = { ...base, prefix: P, localDirs: new Set<string>(), remote: resolveRemotes(base, learn), localMd5: learn.localMd5 };
  return summary(direction === 'pull' ? planPull(input) : planPush(input));
}

function summary(plan: Plan): string {
  const out: string[] = [];
  const verb = plan.direction === 'pull' ? 'download' : 'upload';
  for (const t of plan.transfers) out.push(`${verb} ${t.reason}${t.local !== undefined && t.provenMd5 === undefined ? ', moves aside' : ''}`);
  for (const d of plan.deletions) out.push(`delete ${d.reason}${d.local !== undefined && d.provenMd5 === undefined ? ', moves aside' : ''}`);
  for (const _ of plan.unchanged) out.push('unchanged');
  for (const k of plan.kept) out.push(`kept ${k.reason}`);
  for (const c of plan.conflicts) out.push(`conflict (${c.currentEtag === undefined ? '?' : 'remote version kept'})`);
  return out.length === 0 ? 'nothing' : out.join(' + ');
}

/**
 * Every cell: `local remote snapshot → pull | push`.
 * - local: absent; same (the synced content, stat as recorded); touched (the
 *   synced content, new stat); modified (other content).
 * - remote: absent; same (as synced); rewritten (the synced content, another
 *   ETag: an SSE-KMS copy); changed (other content).
 * - snapshot: fresh (this instance never synced); no-entry (it synced, not
 *   this path); entry (it synced this path).
 * A fresh instance's push never overwrites an object it did not see before:
 * other content there is a conflict (policy `fail`, the default).
 */
const TABLE = `
absent   absent    fresh    | nothing                         | nothing
absent   absent    no-entry | nothing                         | nothing
absent   absent    entry    | nothing                         | delete deleted-locally
absent   same      fresh    | download new                    | nothing
absent   same      no-entry | download new                    | nothing
absent   same      entry    | download missing-locally        | delete deleted-locally
absent   rewritten fresh    | download new                    | nothing
absent   rewritten no-entry | download new                    | nothing
absent   rewritten entry    | download missing-locally        | delete deleted-locally
absent   changed   fresh    | download new                    | nothing
absent   changed   no-entry | download new                    | nothing
absent   changed   entry    | download missing-locally        | delete deleted-locally
same     absent    fresh    | delete not-in-remote, moves aside | upload new
same     absent    no-entry | kept created-locally            | upload new
same     absent    entry    | delete deleted-remotely         | unchanged
same     same      fresh    | unchanged                       | unchanged
same     same      no-entry | unchanged                       | upload new
same     same      entry    | unchanged                       | unchanged
same     rewritten fresh    | unchanged                       | unchanged
same     rewritten no-entry | unchanged                       | upload new
same     rewritten entry    | unchanged                       | unchanged
same     changed   fresh    | download changed, moves aside   | conflict (remote version kept)
same     changed   no-entry | kept created-locally            | upload new
same     changed   entry    | download changed                | unchanged
touched  absent    fresh    | delete not-in-remote, moves aside | upload new
touched  absent    no-entry | kept created-locally            | upload new
touched  absent    entry    | delete deleted-remotely         | unchanged
touched  same      fresh    | unchanged                       | unchanged
touched  same      no-entry | unchanged                       | upload new
touched  same      entry    | unchanged                       | unchanged
touched  rewritten fresh    | unchanged                       | unchanged
touched  rewritten no-entry | unchanged                       | upload new
touched  rewritten entry    | unchanged                       | unchanged
touched  changed   fresh    | download changed, moves aside   | conflict (remote version kept)
touched  changed   no-entry | kept created-locally            | upload new
touched  changed   entry    | download changed                | unchanged
modified absent    fresh    | delete not-in-remote, moves aside | upload new
modified absent    no-entry | kept created-locally            | upload new
modified absent    entry    | kept modified-locally           | upload changed
modified same      fresh    | download changed, moves aside   | conflict (remote version kept)
modified same      no-entry | kept created-locally            | upload new
modified same      entry    | kept modified-locally           | upload changed
modified rewritten fresh    | download changed, moves aside   | conflict (remote version kept)
modified rewritten no-entry | kept created-locally            | upload new
modified rewritten entry    | kept modified-locally           | upload changed
modified changed   fresh    | download changed, moves aside   | conflict (remote version kept)
modified changed   no-entry | kept created-locally            | upload new
modified changed   entry    | kept modified-locally           | upload changed
`;

const rows = TABLE.trim()
  .split('\n')
  .map((line) => {
    const [key, pull, push] = line.split('|').map((x) => x.trim()) as [string, string, string];
    const [l, r, s] = key.split(/\s+/) as [LocalState, RemoteState, SnapState];
    return { l, r, s, pull, push };
  });

describe('local × remote × snapshot: what a pull and a push decide', () => {
  it('the table covers every cell exactly once', { timeout: 5_000 }, () => {
    const keys = new Set(rows.map((c) => `${c.l} ${c.r} ${c.s}`));
    expect(keys.size).toBe(4 * 4 * 3);
    expect(rows).toHaveLength(4 * 4 * 3);
  });
  for (const c of rows) {
    it(`local ${c.l} · remote ${c.r} · snapshot ${c.s} → pull: ${c.pull}; push: ${c.push}`, { timeout: 5_000 }, () => {
      expect(decide('pull', c.l, c.r, c.s)).toBe(c.pull);
      expect(decide('push', c.l, c.r, c.s)).toBe(c.push);
    });
  }
});
