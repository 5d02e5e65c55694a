// The manifest and lease rules, pure (core/manifest.ts): format round trip
// and refusal of foreign content, the next generation, the rebase after a
// lost commit race, listing equality, lease status.
import { describe, expect, it } from 'vitest';

import { mulberry32 } from '../helpers/fault-proxy.js';

import {
  ManifestFormatError,
  decodeLease,
  decodeManifest,
  encodeLease,
  encodeManifest,
  leaseStatus,
  listingMatches,
  manifestHead,
  nextManifest,
  patchManifest,
  rebase,
  type Lease,
  type Manifest,
  type ManifestEntry,
} from '../../src/core/manifest.js';

const writer = { host: 'h', pid: 1, instance: 'i' };
const now = new Date('2026-12-06T06:00:00Z');
const e = (etag: string, size = 1): ManifestEntry => ({ size, etag });
const manifest = (generation: number, files: Record<string, ManifestEntry>, lease?: string): Manifest => ({
  generation,
  committedAt: now.toISOString(),
  writer,
  lease,
  files: new Map(Object.entries(files)),
});

describe('manifest format', () => {
  it('round-trips every field, paths sorted, optional fields kept or absent', () => {
    const m = manifest(7, { 'b.txt': { size: 3, etag: 'e2', md5: 'm2', mtimeMs: 1_700_000_000_123, mode: 0o755 }, 'a.txt': e('e1', 0) }, 'tok');
    const body = encodeManifest(m);
    expect(body.toString().indexOf('"a.txt"')).toBeLessThan(body.toString().indexOf('"b.txt"'));
    const back = decodeManifest(body);
    expect(back).toEqual({ ...m, files: new Map([['a.txt', e('e1', 0)], ['b.txt', { size: 3, etag: 'e2', md5: 'm2', mtimeMs: 1_700_000_000_123, mode: 0o755 }]]) });
    expect(decodeManifest(encodeManifest(manifest(1, {}))).lease).toBeUndefined();
  });

  it("an MD5 equal to the ETag is written once (0 in its place) and read back", () => {
    const md5 = '0cc175b9c0f1b6a831c399e269772661';
    const m = manifest(1, { a: { size: 1, etag: md5, md5 }, b: { size: 1, etag: `${md5}-2`, md5 } });
    const text = encodeManifest(m).toString();
    expect(text.split(md5).length - 1).toBe(3); // a's ETag, b's ETag and b's MD5
    expect(decodeManifest(text).files).toEqual(m.files);
  });

  it.each([
    ['not JSON', '{'],
    ['another format', JSON.stringify({ format: 'other', version: 1 })],
    ['a newer version', JSON.stringify({ format: 's3-workspace-sync/manifest', version: 2 })],
    ['generation 0', JSON.stringify({ format: 's3-workspace-sync/manifest', version: 1, generation: 0, committedAt: 'x', files: {} })],
    ['a bad entry', JSON.stringify({ format: 's3-workspace-sync/manifest', version: 1, generation: 1, committedAt: 'x', files: { a: [1, ''] } })],
    ['a negative size', JSON.stringify({ format: 's3-workspace-sync/manifest', version: 1, generation: 1, committedAt: 'x', files: { a: [-1, 'e', null, null] } })],
  ])('refuses %s with a ManifestFormatError', (_, body) => {
    expect(() => decodeManifest(body)).toThrow(ManifestFormatError);
  });

  it('a lease round-trips and a foreign one is refused', () => {
    const lease: Lease = { token: 't', writer, baseGeneration: 3, startedAt: now.toISOString(), expiresAt: 123 };
    expect(decodeLease(encodeLease(lease))).toEqual(lease);
    expect(() => decodeLease(encodeManifest(manifest(1, {})))).toThrow(ManifestFormatError);
  });
});

describe('manifest decoding in slices (from bytes) agrees with a whole parse (from text)', () => {
  /** decodeManifest of the bytes (sliced) and of the same text as a string (one JSON.parse): same manifest, or both refuse. */
  const both = (body: Buffer): { sliced: Manifest | Error; whole: Manifest | Error } => {
    const run = (input: Buffer | string): Manifest | Error => {
      try {
        return decodeManifest(input);
      } catch (error) {
        return error as Error;
      }
    };
    return { sliced: run(body), whole: run(body.toString('utf8')) };
  };
  const sorted = (m: Manifest): unknown => ({ ...m, files: [...m.files].sort(([a], [b]) => (a < b ? -1 : 1)) });

  it('well-formed manifests, across slice boundaries, with keys JSON must escape, integer-like and __proto__ keys', () => {
    const rand = mulberry32(20261206);
    for (const count of [0, 1, 2047, 2048, 2049, 5000]) {
      const files: Record<string, ManifestEntry> = {};
      for (let i = 0; i < count; i++) {
        const odd = ['"q"', 'back\\slash', 'uni-é-😀', '123', '__proto__', 'tab\t', 'a,b:{c}'][i % 7] as string;
        const path = `dir${i % 13}/${i % 50 === 0 ? odd : ''}f${i}`;
        const r = rand();
        files[path] = r < 0.3 ? e(`etag${i}`, i) : r < 0.6 ? { size: i, etag: `et${i}-2`, md5: `m${i}`, mtimeMs: 1.7e12 + i * 0.5 } : { size: 0, etag: `e${i}`, md5: `e${i}`, mode: 0o644 };
      }
      files['123'] = e('int');
      const body = encodeManifest(manifest(count + 1, files, count % 2 === 0 ? 'lease' : undefined));
      const { sliced, whole } = both(body);
      expect(sliced).not.toBeInstanceOf(Error);
      expect(sorted(sliced as Manifest)).toEqual(sorted(whole as Manifest));
      expect((sliced as Manifest).files.size).toBe(count + 1);
    }
  });

  it('damaged manifests are refused both ways: cut short, stray commas at a slice boundary, bad entries, foreign or trailing text', () => {
    const files: Record<string, ManifestEntry> = {};
    for (let i = 0; i < 4100; i++) files[`p${String(i).padStart(5, '0')}`] = e(`etag${i}`, i);
    const good = encodeManifest(manifest(3, files)).toString('utf8');
    const boundary = good.indexOf('"p02048"'); // the first member of the second slice
    const variants: string[] = [
      good.slice(0, good.length - 2), // cut short
      good.slice(0, Math.floor(good.length / 2)),
      `${good.slice(0, boundary)},${good.slice(boundary)}`, // a stray comma where a slice starts
      `${good.slice(0, boundary - 1)}${good.slice(boundary)}`, // a missing comma there
      good.replace('"p00007":[7,"etag7",', '"p00007":[7,"",'), // an empty ETag
      good.replace('"p03000":[3000,"etag3000",null,null,null]', '"p03000":"oops"'), // not an entry, in a later slice
      good.replace('"p00001":[1,', '"p00001":[-1,'),
      good.replace('"format":"s3-workspace-sync/manifest"', '"format":"something-else"'),
      good.replace('"version":1', '"version":2'),
      good.replace('"generation":3', '"generation":0'),
      `${good.trimEnd()} trailing`,
      `${good.trimEnd()}{}`,
      good.replace('"files":{', '"files":['),
    ];
    for (const [i, text] of variants.entries()) {
      expect(text, `variant ${i} differs from the good text`).not.toBe(good);
      const { sliced, whole } = both(Buffer.from(text));
      expect(sliced, `variant ${i}`).toBeInstanceOf(ManifestFormatError);
      expect(whole, `variant ${i}`).toBeInstanceOf(ManifestFormatError);
      expect((sliced as Error).message, `variant ${i}`).toBe((whole as Error).message);
    }
  });
});

describe('next generation and rebase', () => {
  it('nextManifest applies removals and puts, one generation on, under the lease given', () => {
    const base = manifest(4, { a: e('a1'), b: e('b1'), c: e('c1') });
    const next = nextManifest(base, { put: new Map([['a', e('a2')], ['d', e('d1')]]), removed: new Set(['b']) }, writer, now, 'tok');
    expect(next.generation).toBe(5);
    expect(next.lease).toBe('tok');
    expect(Object.fromEntries(next.files)).toEqual({ a: e('a2'), c: e('c1'), d: e('d1') });
    expect(Object.fromEntries(base.files)).toEqual({ a: e('a1'), b: e('b1'), c: e('c1') }); // base untouched
    expect(nextManifest(undefined, { put: new Map([['x', e('x1')]]), removed: new Set() }, writer, now).generation).toBe(1);
  });

  it('rebase keeps what the other push committed and adds ours where they did not touch the same path', () => {
    const base = manifest(4, { a: e('a1'), b: e('b1'), c: e('c1') });
    // they changed c and added t; we changed a and removed b
    const theirs = manifest(5, { a: e('a1'), b: e('b1'), c: e('c2'), t: e('t1') });
    const { manifest: m, overlap } = rebase(base, { put: new Map([['a', e('a2')]]), removed: new Set(['b']) }, theirs, writer, now);
    expect(overlap).toEqual([]);
    expect(m.generation).toBe(6);
    expect(Object.fromEntries(m.files)).toEqual({ a: e('a2'), c: e('c2'), t: e('t1') });
  });

  it('an overlap (both changed one path differently) is reported; the bucket decides, or theirs stands when unknown', () => {
    const base = manifest(4, { a: e('a1'), b: e('b1') });
    const theirs = manifest(5, { a: e('aT'), b: e('bT') });
    const ours = { put: new Map([['a', e('aO')], ['b', e('bO')]]), removed: new Set<string>() };
    const { manifest: m, overlap } = rebase(base, ours, theirs, writer, now, new Map([['a', e('aO')]]));
    expect(overlap).toEqual(['a', 'b']);
    expect(Object.fromEntries(m.files)).toEqual({ a: e('aO'), b: e('bT') });
    // the bucket says the key is gone
    const gone = rebase(base, ours, theirs, writer, now, new Map([['a', null]]));
    expect(gone.manifest.files.has('a')).toBe(false);
  });

  it('the same change on both sides is not an overlap', () => {
    const base = manifest(1, { a: e('a1') });
    const theirs = manifest(2, { a: e('a2') });
    expect(rebase(base, { put: new Map([['a', e('a2')]]), removed: new Set() }, theirs, writer, now).overlap).toEqual([]);
  });
});

describe('listing and lease', () => {
  it('listingMatches: exactly the same keys and ETags', () => {
    const m = manifest(2, { a: e('a1'), 'd/b': e('b1') });
    const listed = [{ key: 'p/a', etag: 'a1' }, { key: 'p/d/b', etag: 'b1' }];
    expect(listingMatches(m, listed, 'p/')).toBe(true);
    expect(listingMatches(m, [listed[0]!, { key: 'p/d/b', etag: 'b2' }], 'p/')).toBe(false); // replaced
    expect(listingMatches(m, [listed[0]!], 'p/')).toBe(false); // deleted
    expect(listingMatches(m, [...listed, { key: 'p/new', etag: 'n' }], 'p/')).toBe(false); // another tool's upload
    expect(listingMatches(undefined, [], 'p/')).toBe(false);
  });

  it('leaseStatus: committed when the manifest names it, expired after its expiry, live before', () => {
    const lease: Lease = { token: 't', writer, baseGeneration: 1, startedAt: now.toISOString(), expiresAt: 1_000 };
    expect(leaseStatus(lease, { lease: 't' }, 0)).toBe('committed');
    expect(leaseStatus(lease, { lease: 'other' }, 999)).toBe('live');
    expect(leaseStatus(lease, undefined, 1_000)).toBe('expired');
  });
});

describe('manifestHead', () => {
  it('reads the generation and lease from the head of an encoded manifest, without its files', () => {
    const files = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`f${i}.txt`, e(`e${i}`)]));
    expect(manifestHead(encodeManifest(manifest(42, files, 'token-1')))).toEqual({ generation: 42, lease: 'token-1' });
    expect(manifestHead(encodeManifest(manifest(3, files)))).toEqual({ generation: 3 });
  });

  it('gives up (undefined: decode the whole manifest) on anything not this format', () => {
    expect(manifestHead(Buffer.from('{"format":"other","version":1,"generation":2,"files":{}}'))).toBeUndefined();
    expect(manifestHead(Buffer.from('{"format":"s3-workspace-sync/manifest","version":1,"generation":0,"files":{}}'))).toBeUndefined();
    expect(manifestHead(Buffer.from('{"format":"s3-workspace-sync/manifest","version":1,"generation":2}'))).toBeUndefined(); // no files
    expect(manifestHead(Buffer.from('not json,"files":{}'))).toBeUndefined();
  });
});

describe('patchManifest: the next manifest from the bytes, without decoding them', () => {
  /** xorshift32: the same cases every run. */
  function rng(seed: number): () => number {
    let x = seed >>> 0 || 1;
    return () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 2 ** 32;
    };
  }
  const NAMES = ['a', 'b', 'a/b', 'a,b', 'é/ü.txt', 'quote"d', 'x":[y', 'br]ack[et', '日本/語', 'z'.repeat(40), 'sp ace', 'comma,', ',lead'];
  const entryOf = (r: () => number): ManifestEntry => {
    const etag = Math.floor(r() * 2 ** 32).toString(16).padStart(8, '0').repeat(4);
    const out: ManifestEntry = { size: Math.floor(r() * 1000), etag };
    const k = r();
    if (k < 0.5) out.md5 = etag;
    else if (k < 0.7) out.md5 = 'f'.repeat(32);
    if (r() < 0.7) out.mtimeMs = 1_700_000_000_000 + Math.floor(r() * 1e9) + (r() < 0.5 ? 0.5 : 0);
    if (r() < 0.5) out.mode = r() < 0.5 ? 0o644 : 0o755;
    if (r() < 0.1) out.etag = `${etag.slice(0, 8)}]-"odd,"etag[`; // what some server might answer
    return out;
  };
  const plain = (m: Manifest): Record<string, ManifestEntry> => Object.fromEntries([...m.files].sort(([a], [b]) => (a < b ? -1 : 1)));

  it('decodes to what nextManifest gives, over 500 random pushes (fixed seed)', { timeout: 10_000 }, () => {
    const r = rng(20261206);
    for (let round = 0; round < 500; round++) {
      const size = Math.floor(r() * 8);
      const names = [...NAMES, ...Array.from({ length: 5 }, (_, i) => `gen/${round}/${i}`)];
      const files: Record<string, ManifestEntry> = {};
      for (let i = 0; i < size; i++) files[names[Math.floor(r() * names.length)] as string] = entryOf(r);
      const base = manifest(1 + Math.floor(r() * 50), files, r() < 0.5 ? 'old-lease' : undefined);
      const existing = Object.keys(files);
      const put = new Map<string, ManifestEntry>();
      const removed = new Set<string>();
      for (let i = Math.floor(r() * 5); i > 0; i--) {
        const pick = r();
        if (pick < 0.4 && existing.length > 0) removed.add(existing[Math.floor(r() * existing.length)] as string);
        else if (pick < 0.7 && existing.length > 0) put.set(existing[Math.floor(r() * existing.length)] as string, entryOf(r));
        else put.set(names[Math.floor(r() * names.length)] as string, entryOf(r));
      }
      for (const p of put.keys()) removed.delete(p);
      const changes = { put, removed };
      const lease = r() < 0.5 ? 'new-lease' : undefined;
      const patched = patchManifest(encodeManifest(base), changes, writer, now, lease);
      expect(patched, `round ${round}`).toBeDefined();
      const got = decodeManifest(patched as Buffer);
      const want = nextManifest(base, changes, writer, now, lease);
      expect(plain(got), `round ${round}`).toEqual(plain(want));
      expect({ generation: got.generation, lease: got.lease, committedAt: got.committedAt, writer: got.writer }).toEqual({
        generation: want.generation,
        lease: want.lease,
        committedAt: want.committedAt,
        writer: want.writer,
      });
      // its head reads like an encoded one (the push lease reads only the head)
      expect(manifestHead(patched as Buffer)).toEqual(lease === undefined ? { generation: want.generation } : { generation: want.generation, lease });
    }
  });

  it('a patched manifest patches again (a long-running watcher commits many times)', { timeout: 5_000 }, () => {
    let body = encodeManifest(manifest(1, { a: e('1'), b: e('2') }));
    let expected = manifest(1, { a: e('1'), b: e('2') });
    for (let i = 0; i < 20; i++) {
      const changes = { put: new Map([[`n${i}`, e(String(i))]]), removed: new Set(i % 2 === 0 ? ['a', `n${i - 1}`].filter((p) => expected.files.has(p)) : []) };
      body = patchManifest(body, changes, writer, now) as Buffer;
      expected = nextManifest(expected, changes, writer, now);
      expect(plain(decodeManifest(body))).toEqual(plain(expected));
    }
    expect(decodeManifest(body).generation).toBe(21);
  });

  it('refuses what it cannot patch safely: not this layout, or a removed path it cannot find', { timeout: 5_000 }, () => {
    const base = encodeManifest(manifest(3, { 'a.txt': e('1') }));
    expect(patchManifest(base, { put: new Map(), removed: new Set(['missing.txt']) }, writer, now)).toBeUndefined();
    // the same manifest written with other escapes (\u00e9 for é): the path is not found, so no patch
    const escaped = Buffer.from(encodeManifest(manifest(3, { 'é.txt': e('1') })).toString('utf8').replace('é', '\\u00e9'));
    expect(decodeManifest(escaped).files.has('é.txt')).toBe(true);
    expect(patchManifest(escaped, { put: new Map(), removed: new Set(['é.txt']) }, writer, now)).toBeUndefined();
    // pretty-printed or truncated bytes
    expect(patchManifest(Buffer.from(JSON.stringify(JSON.parse(base.toString()), null, 2)), { put: new Map([['b', e('2')]]), removed: new Set() }, writer, now)).toBeUndefined();
    expect(patchManifest(base.subarray(0, base.length - 5), { put: new Map([['b', e('2')]]), removed: new Set() }, writer, now)).toBeUndefined();
    expect(patchManifest(Buffer.from('not a manifest'), { put: new Map(), removed: new Set() }, writer, now)).toBeUndefined();
  });
});
