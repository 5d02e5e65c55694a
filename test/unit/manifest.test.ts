// The manifest and lease rules, pure (core/manifest.ts): format round trip
// and refusal of foreign content, the next generation, the rebase after a
// lost commit race, listing equality, lease status.
import { describe, expect, it } from 'vitest';

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
