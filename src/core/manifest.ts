/**
 * The committed manifest and the push lease, pure: their format, the next
 * generation after a push, the rebase after a lost commit race, and what a
 * reader makes of a lease. The I/O (reading, conditional writes, waiting)
 * is in `pipeline/generations.ts`.
 *
 * Two objects in the library's own folder of the prefix:
 * - `manifest.json`: every path of the remote workspace (size, MD5, ETag,
 *   mtime, permission bits), a generation number, who committed it and when. Written only
 *   at the end of a push, conditionally on the previous manifest's ETag, so
 *   two pushes cannot both commit the same generation.
 * - `push-lease.json`: written (create-only) before a push changes anything
 *   and deleted after it commits; it expires unless renewed, so a crashed
 *   pusher does not hold up readers for long. A pull that sees a live lease
 *   knows a push is changing objects and waits for its commit.
 */
import { jsonMembers, parseWithMembers, withMembers } from './json-chunks.js';
import { STATE_DIR_NAME } from './names.js';

/** Key of the manifest, relative to the prefix. */
export const MANIFEST_NAME = `${STATE_DIR_NAME}/manifest.json`;
/** Key of the push lease, relative to the prefix. */
export const LEASE_NAME = `${STATE_DIR_NAME}/push-lease.json`;

const MANIFEST_FORMAT = 's3-workspace-sync/manifest';
const LEASE_FORMAT = 's3-workspace-sync/push-lease';

/** Who wrote a manifest or holds a lease (for messages and for telling leases apart). */
export interface Writer {
  host: string;
  pid: number;
  /** Random per instance. */
  instance: string;
}

/** One object of the remote workspace, as a push committed it. */
export interface ManifestEntry {
  size: number;
  /** ETag without quotes. */
  etag: string;
  /** MD5 hex of the content, when known. */
  md5?: string | undefined;
  /** The file's mtime at upload, when known. */
  mtimeMs?: number | undefined;
  /** The file's permission bits at upload (e.g. `0o755`), when known. Recorded, not restored by pull. */
  mode?: number | undefined;
}

export interface Manifest {
  /** 1 for the first commit; +1 per commit. */
  generation: number;
  /** ISO time of the commit (the committer's clock). */
  committedAt: string;
  writer: Writer;
  /** The token of the lease the push held when it committed this (`undefined`: none). */
  lease?: string | undefined;
  /** Workspace-relative path → entry (the library's own folder is never in it). */
  files: ReadonlyMap<string, ManifestEntry>;
}

export interface Lease {
  /** Random per lease: a renewal or release only acts on its own. */
  token: string;
  writer: Writer;
  /** The generation the push started from, as it knew it (0: none). For people reading the object. */
  baseGeneration: number;
  startedAt: string;
  /** Epoch ms after which readers may ignore the lease (renewed while the push runs). */
  expiresAt: number;
}

/** A manifest or lease that is not in the format this library writes. */
export class ManifestFormatError extends Error {
  override readonly name = 'ManifestFormatError';
}

export function encodeManifest(m: Manifest): Buffer {
  // [size, etag, md5, mtimeMs, mode]: compact, since a manifest names every path; md5 is 0 when it is the
  // ETag itself (a single-part upload without SSE-KMS: most objects), null when unknown
  // written in slices (core/json-chunks): at 100,000 paths one object and one string of the whole were the peak of a cold push
  const paths = [...m.files.keys()].sort();
  const files = jsonMembers(
    paths.map((path) => [path, m.files.get(path) as ManifestEntry] as const),
    entryArray,
  );
  const lease = m.lease ?? null;
  // "files" last: manifestHead reads everything before it
  return Buffer.concat(withMembers(JSON.stringify({ format: MANIFEST_FORMAT, version: 1, generation: m.generation, committedAt: m.committedAt, writer: m.writer, lease }), 'files', files, '\n'));
}

/**
 * The generation and lease token of an encoded manifest, read from its head
 * (everything before `"files"`, which {@link encodeManifest} writes last),
 * without decoding the files. `undefined` when the head does not parse as
 * this format's: decode the whole manifest then.
 */
export function manifestHead(body: Buffer): Pick<Manifest, 'generation' | 'lease'> | undefined {
  const end = body.indexOf(',"files":');
  if (end < 0 || end > 4096) return undefined;
  let v: Record<string, unknown>;
  try {
    v = parse(`${body.subarray(0, end).toString('utf8')}}`, MANIFEST_FORMAT);
  } catch {
    return undefined;
  }
  if (!Number.isSafeInteger(v.generation) || (v.generation as number) < 1) return undefined;
  if (v.lease !== undefined && v.lease !== null && typeof v.lease !== 'string') return undefined;
  return typeof v.lease === 'string' ? { generation: v.generation as number, lease: v.lease } : { generation: v.generation as number };
}

/**
 * The manifest in `body`. From a Buffer, the files are parsed a slice at a
 * time (`core/json-chunks`): at 100,000 paths, a tree of the whole JSON
 * (an array per path) beside the Map it becomes was most of what a pull
 * held while it planned (some 40 MB more in the heap), which V8 then sized
 * the heap from.
 */
export function decodeManifest(body: Buffer | string): Manifest {
  const files = new Map<string, ManifestEntry>();
  let bad: string | undefined; // the first bad entry, reported after the head is checked (as a whole parse would)
  const add = (path: string, e: unknown): void => {
    const entry = bad === undefined ? entryOf(e) : undefined;
    if (entry !== undefined) files.set(path, entry);
    else bad ??= path;
  };
  let v: Record<string, unknown> | undefined;
  if (typeof body !== 'string') {
    try {
      v = parseWithMembers(body, 'files', add);
    } catch {
      throw new ManifestFormatError(`${MANIFEST_FORMAT}: not JSON`);
    }
  }
  const sliced = v !== undefined;
  if (!sliced) {
    files.clear();
    bad = undefined;
  }
  v = checkFormat(v ?? parse(body, MANIFEST_FORMAT), MANIFEST_FORMAT);
  if (!Number.isSafeInteger(v.generation) || (v.generation as number) < 1) throw new ManifestFormatError('manifest: bad generation');
  if (typeof v.committedAt !== 'string') throw new ManifestFormatError('manifest: bad committedAt');
  const raw = v.files;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ManifestFormatError('manifest: bad files');
  if (!sliced) for (const [path, e] of Object.entries(raw as Record<string, unknown>)) add(path, e);
  if (bad !== undefined) throw new ManifestFormatError(`manifest: bad entry for ${JSON.stringify(bad)}`);
  const m: Manifest = { generation: v.generation as number, committedAt: v.committedAt, writer: writerOf(v.writer), files };
  if (typeof v.lease === 'string') m.lease = v.lease;
  return m;
}

/** One path's entry, `[size, etag, md5, mtimeMs, mode]`; `undefined` when it is not one. */
function entryOf(e: unknown): ManifestEntry | undefined {
  if (!Array.isArray(e) || e.length < 4) return undefined;
  const [size, etag, md5, mtimeMs, mode] = e as unknown[];
  if (!Number.isSafeInteger(size) || (size as number) < 0 || typeof etag !== 'string' || etag === '') return undefined;
  const entry: ManifestEntry = { size: size as number, etag };
  if (typeof md5 === 'string') entry.md5 = md5;
  else if (md5 === 0) entry.md5 = etag;
  if (typeof mtimeMs === 'number' && Number.isFinite(mtimeMs)) entry.mtimeMs = mtimeMs;
  if (typeof mode === 'number' && Number.isInteger(mode) && mode >= 0 && mode <= 0o7777) entry.mode = mode;
  return entry;
}

export function encodeLease(l: Lease): Buffer {
  return Buffer.from(`${JSON.stringify({ format: LEASE_FORMAT, version: 1, ...l })}\n`, 'utf8');
}

export function decodeLease(body: Buffer | string): Lease {
  const v = parse(body, LEASE_FORMAT);
  if (typeof v.token !== 'string' || typeof v.startedAt !== 'string') throw new ManifestFormatError('lease: bad token');
  if (!Number.isSafeInteger(v.baseGeneration) || !Number.isFinite(v.expiresAt)) throw new ManifestFormatError('lease: bad generation or expiry');
  return {
    token: v.token,
    writer: writerOf(v.writer),
    baseGeneration: v.baseGeneration as number,
    startedAt: v.startedAt,
    expiresAt: v.expiresAt as number,
  };
}

/** What the changes of one push are, for the next manifest. */
export interface PushChanges {
  /** Paths written (uploaded, or brought back into agreement), with what the bucket now holds. */
  readonly put: ReadonlyMap<string, ManifestEntry>;
  /** Paths whose objects the push deleted. */
  readonly removed: ReadonlySet<string>;
}

/**
 * The manifest after a push: `base` (`undefined`: none yet) with the push's
 * changes, one generation on, committed under `lease` (its token).
 */
export function nextManifest(base: Manifest | undefined, changes: PushChanges, writer: Writer, now: Date, lease?: string): Manifest {
  const files = new Map(base?.files ?? []);
  for (const path of changes.removed) files.delete(path);
  for (const [path, entry] of changes.put) files.set(path, entry);
  return { generation: (base?.generation ?? 0) + 1, committedAt: now.toISOString(), writer, lease, files };
}

/**
 * A push lost the commit race: `theirs` was committed after the `base` it
 * started from. Its changes go on top of `theirs`, except where `theirs`
 * changed the same path differently since `base` (`overlap`): there the
 * bucket decides (the caller looks the object up and passes what it holds
 * in `current`, `null` for none), since each write was conditional and the
 * later one saw the earlier.
 */
export function rebase(
  base: Manifest | undefined,
  changes: PushChanges,
  theirs: Manifest,
  writer: Writer,
  now: Date,
  current: ReadonlyMap<string, ManifestEntry | null> = new Map(),
  lease?: string,
): { manifest: Manifest; overlap: string[] } {
  const overlap: string[] = [];
  const put = new Map<string, ManifestEntry>();
  const removed = new Set<string>();
  const touched = new Set([...changes.put.keys(), ...changes.removed]);
  for (const path of touched) {
    const before = base?.files.get(path);
    const after = theirs.files.get(path);
    const mine = changes.put.get(path);
    if (!sameEntry(before, after) && !sameEntry(mine, after)) {
      overlap.push(path);
      if (!current.has(path)) continue; // unknown: theirs stands
      const truth = current.get(path) ?? null;
      if (truth === null) removed.add(path);
      else put.set(path, truth);
      continue;
    }
    if (mine !== undefined) put.set(path, mine);
    else removed.add(path);
  }
  return { manifest: nextManifest(theirs, { put, removed }, writer, now, lease), overlap: overlap.sort() };
}

/** The same object version (an absent entry only equals another absent one). */
export function sameEntry(a: ManifestEntry | undefined, b: ManifestEntry | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.etag === b.etag && a.size === b.size;
}

/**
 * Whether a listing of the workspace's objects (the library's folder left
 * out) is exactly `manifest`'s generation: same keys, same ETags. Then what a
 * pull acts on is that generation, whatever happened during the listing.
 */
export function listingMatches(manifest: Manifest | undefined, listed: ReadonlyArray<{ key: string; etag: string }>, prefix: string): boolean {
  if (manifest === undefined || listed.length !== manifest.files.size) return false;
  for (const o of listed) {
    if (!o.key.startsWith(prefix)) return false;
    const entry = manifest.files.get(o.key.slice(prefix.length));
    if (entry === undefined || entry.etag !== o.etag) return false;
  }
  return true;
}

/**
 * What a reader makes of a lease, given the current manifest: `live` (a push
 * is changing objects: wait for its commit), `committed` (the manifest was
 * committed under this lease: the push is done and about to delete it),
 * `expired` (its holder stopped renewing it: crashed, or cut off).
 */
export function leaseStatus(lease: Lease, manifest: Pick<Manifest, 'lease'> | undefined, nowMs: number): 'live' | 'committed' | 'expired' {
  if (manifest?.lease === lease.token) return 'committed';
  return nowMs >= lease.expiresAt ? 'expired' : 'live';
}

function parse(body: Buffer | string, format: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch {
    throw new ManifestFormatError(`${format}: not JSON`);
  }
  return checkFormat(v, format);
}

function checkFormat(v: unknown, format: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || (v as { format?: unknown }).format !== format) throw new ManifestFormatError(`not a ${format}`);
  if ((v as { version?: unknown }).version !== 1) throw new ManifestFormatError(`${format}: unsupported version`);
  return v as Record<string, unknown>;
}

function writerOf(v: unknown): Writer {
  const w = (v ?? {}) as Record<string, unknown>;
  return {
    host: typeof w.host === 'string' ? w.host : '?',
    pid: typeof w.pid === 'number' ? w.pid : 0,
    instance: typeof w.instance === 'string' ? w.instance : '?',
  };
}

/**
 * The next manifest's bytes, made from `body` (the encoded base manifest)
 * without decoding it: a new head (generation + 1, time, writer, lease),
 * the base's entries as they are, except those the push changed — replaced
 * or removed in place — and the new ones appended. What a small push of a
 * large workspace commits costs a few searches through the bytes instead of
 * decoding and encoding every path (about 0.3 s at 100,000 paths).
 *
 * Returns `undefined` when the bytes are not laid out as
 * {@link encodeManifest} writes them, or a removed path cannot be found
 * there (it may be spelt with other escapes): decode and encode then.
 * Entries are not kept sorted (readers do not rely on the order).
 */
export function patchManifest(body: Buffer, changes: PushChanges, writer: Writer, now: Date, lease?: string): Buffer | undefined {
  const head = manifestHead(body);
  if (head === undefined) return undefined;
  const marker = Buffer.from(',"files":{', 'utf8');
  const start = body.indexOf(marker);
  if (start < 0) return undefined;
  const first = start + marker.length; // the first entry (or the closing brace)
  const tail = Buffer.from('}}\n', 'utf8');
  if (body.length < first + tail.length - 1 || !body.subarray(body.length - tail.length).equals(tail)) return undefined;
  const end = body.length - tail.length; // just after the last entry
  // The byte ranges to drop: each changed path's entry, with the comma that joins it to the next (or the previous).
  const cuts: Array<[number, number]> = [];
  for (const path of new Set([...changes.removed, ...changes.put.keys()])) {
    const at = findEntry(body, path, first, end);
    if (at === null) return undefined; // malformed
    if (at === undefined) {
      if (changes.removed.has(path) && !changes.put.has(path)) return undefined; // not found: maybe other escapes
      continue;
    }
    cuts.push(at);
  }
  cuts.sort((a, b) => a[0] - b[0]);
  const parts: Buffer[] = [];
  const newHead = JSON.stringify({ format: MANIFEST_FORMAT, version: 1, generation: head.generation + 1, committedAt: now.toISOString(), writer, lease: lease ?? null });
  parts.push(Buffer.from(`${newHead.slice(0, -1)},"files":{`, 'utf8'));
  // the kept ranges: whole entries joined by their commas (overlapping cuts share a comma)
  let pos = first;
  for (const [from, to] of cuts) {
    if (from > pos) parts.push(body.subarray(pos, from));
    pos = Math.max(pos, to);
  }
  if (end > pos) parts.push(body.subarray(pos, end));
  let files = Buffer.concat(parts.slice(1));
  // no comma left dangling at either end by the cuts
  let lo = 0;
  let hi = files.length;
  while (lo < hi && files[lo] === 0x2c) lo++;
  while (hi > lo && files[hi - 1] === 0x2c) hi--;
  files = files.subarray(lo, hi);
  const added: string[] = [];
  for (const [path, e] of changes.put) added.push(`${JSON.stringify(path)}:${JSON.stringify(entryArray(e))}`);
  const extra = added.join(',');
  const sep = files.length > 0 && extra.length > 0 ? ',' : '';
  return Buffer.concat([parts[0] as Buffer, files, Buffer.from(`${sep}${extra}}}\n`, 'utf8')]);
}

/** The compact array of one entry (see {@link encodeManifest}). */
function entryArray(e: ManifestEntry): [number, string, string | 0 | null, number | null, number | null] {
  return [e.size, e.etag, e.md5 === undefined ? null : e.md5 === e.etag ? 0 : e.md5, e.mtimeMs ?? null, e.mode ?? null];
}

/**
 * Where `path`'s entry is in `body[first, end)`: `[from, to)` covering the
 * entry and the comma after it (or, for the last entry, the comma before
 * it); `undefined` when absent; `null` when the bytes are not as expected.
 */
function findEntry(body: Buffer, path: string, first: number, end: number): [number, number] | undefined | null {
  const key = Buffer.from(`${JSON.stringify(path)}:[`, 'utf8');
  let at = body.indexOf(key, first);
  // a key starts an entry: right after the opening brace or a comma between entries (not inside a string: `\"`)
  while (at >= 0 && at < end && at !== first && body[at - 1] !== 0x2c) at = body.indexOf(key, at + 1);
  if (at < 0 || at >= end) return undefined;
  // the value: an array of numbers, strings and nulls; find its closing bracket outside strings
  let i = at + key.length;
  let inString = false;
  for (; i < end; i++) {
    const c = body[i];
    if (inString) {
      if (c === 0x5c) i++; // an escape: skip the next byte
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) return null; // nested: not this format
    else if (c === 0x5d) break;
  }
  if (i >= end && body[i] !== 0x5d) return null;
  const after = i + 1;
  if (after < end && body[after] !== 0x2c) return null;
  if (after < end) return [at, after + 1];
  // the last entry: take the comma before it instead (if any)
  return at > first ? [at - 1, after] : [at, after];
}
