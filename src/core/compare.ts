/**
 * Equality, in one place: whether a local file and an object hold the same
 * bytes, and what must be learnt first (files to hash, objects to HEAD)
 * before that can be decided. Pure: the prepare stage does the I/O this
 * module asks for and hands the answers back as {@link Learned}.
 *
 * The rules, in order:
 * 1. **Stat rule.** A local file whose size, mtime, ctime and inode are what
 *    the snapshot recorded still has the recorded MD5 (unless the entry is
 *    racy: {@link isRacy}). Otherwise it is hashed when the answer matters.
 * 2. **Unchanged since the sync.** Same stat and the object's ETag is the one
 *    recorded: identical, without knowing any MD5.
 * 3. **The object's MD5**, in order of trust: the snapshot's, when the
 *    object's ETag is the one recorded with it (the version this instance
 *    synced: its content is the MD5 recorded then, whatever the ETag means);
 *    the MD5 stored in its metadata
 *    (`md5chksum`, as rclone and this library write it); its ETag, when it is
 *    one (32 hex digits, a single-part upload, not SSE-KMS or SSE-C); for a
 *    multipart object, the local file's multipart ETag computed with the
 *    object's part size, which, when equal, proves the contents equal. A plain
 *    ETag seen only in a listing is *tentative* (encryption is not listed):
 *    when it disagrees with a local file of the same size, a HEAD confirms it
 *    before the two count as different ({@link toConfirm}).
 * 4. **Size and mtime**, the last resort for an object whose MD5 cannot be
 *    known (another tool's multipart object without part size or metadata
 *    MD5): equal size and equal recorded mtime.
 * 5. Two contents are equal when their sizes and MD5s are; an unknown MD5 on
 *    either side means "different" (transfer again: safe, never a loss).
 */
import { multipartPartCount, md5FromEtag } from './md5.js';
import type { LocalFile, RemoteObject, SnapshotEntry } from './model.js';
import { partSizesFor } from './multipart.js';

/** What `serverSideEncryption` says for an SSE-C object (S3 answers with `SSECustomerAlgorithm` instead). */
export const SSE_C = 'sse-c';

/** Whether an object's ETag cannot be its MD5 because of how it is encrypted (SSE-KMS, DSSE-KMS, SSE-C). */
export function etagIsNotMd5(serverSideEncryption: string | undefined): boolean {
  return serverSideEncryption !== undefined && (serverSideEncryption.startsWith('aws:kms') || serverSideEncryption === SSE_C);
}

/**
 * The MD5 an object's own answer (HEAD, GET, PUT, UploadPart) proves it has:
 * the metadata MD5, else its ETag when that is an MD5 under its encryption.
 */
export function contentMd5(info: { etag: string; md5?: string | undefined; serverSideEncryption?: string | undefined }): string | undefined {
  if (info.md5 !== undefined) return info.md5;
  return etagIsNotMd5(info.serverSideEncryption) ? undefined : md5FromEtag(info.etag);
}

/** What a HEAD told about an object. */
export interface ObjectFacts {
  /** ETag without quotes: the facts hold only for the object the listing saw (same ETag). */
  etag: string;
  md5?: string | undefined;
  /** The file's mtime recorded in metadata at upload. */
  mtimeMs?: number | undefined;
  /** Part size of a multipart object (`partsize` metadata, or the size of part 1). */
  partSize?: number | undefined;
  serverSideEncryption?: string | undefined;
}

/** What the prepare stage learnt by reading files and objects, per path. */
export interface Learned {
  /** MD5 of local files that were hashed. */
  localMd5: ReadonlyMap<string, string>;
  /** Multipart ETags of local files, computed with the part sizes {@link etagPartSizes} asked for. */
  localEtags: ReadonlyMap<string, readonly string[]>;
  /** What HEADs said, for objects that were HEADed. */
  heads: ReadonlyMap<string, ObjectFacts>;
}

export const NOTHING_LEARNED: Learned = { localMd5: new Map(), localEtags: new Map(), heads: new Map() };

/** What equality needs to know about both sides (a subset of the plan's input). */
export interface CompareInput {
  readonly local: ReadonlyMap<string, LocalFile>;
  readonly remote: ReadonlyMap<string, RemoteObject>;
  readonly snapshot: ReadonlyMap<string, SnapshotEntry>;
  /** Whether this instance has synced before. */
  readonly hasSnapshot: boolean;
}

// ---------------------------------------------------------------- stat rule

/**
 * Filesystem timestamps are coarser than the clock (kernel ticks of a few ms;
 * whole seconds, or 2 s on FAT, on some filesystems). A file whose mtime is
 * within this margin of the moment its stat was taken might be modified again
 * with the same timestamps.
 */
export function racyMarginMs(mtimeMs: number, ctimeMs?: number): number {
  return coarse(mtimeMs, ctimeMs) ? 2000 : 100;
}

/**
 * Whether the timestamps come from a filesystem that stores whole seconds.
 * A whole-second mtime alone does not say so: a restored mtime (a download,
 * stored with millisecond precision) lands on a whole second once in a
 * thousand. A ctime with a fraction proves the filesystem keeps fractions.
 */
function coarse(mtimeMs: number, ctimeMs: number | undefined): boolean {
  return mtimeMs % 1000 === 0 && (ctimeMs === undefined || ctimeMs % 1000 === 0);
}

/**
 * Whether an entry whose stat was taken no earlier than `statFloorMs` (the
 * wall clock at the start of the sync that took it) is racy: a later write
 * could leave its size, mtime and ctime unchanged.
 *
 * A write sets both mtime and ctime to the (coarse) current time. So a later
 * write can only reproduce the recorded stat when the recorded mtime falls
 * within the timestamp granularity of the stat (or in the future) *and* the
 * recorded ctime is that same moment. A file whose mtime was set in the past
 * (a download with its original mtime restored, an extracted archive) has a
 * ctime apart from its mtime: any later write moves its mtime, and any later
 * `utimes` moves its ctime, so it is not racy. With `ctimeMs` omitted, only
 * the mtime is considered (the conservative rule).
 */
export function isRacy(mtimeMs: number, statFloorMs: number, ctimeMs?: number): boolean {
  if (mtimeMs < statFloorMs - racyMarginMs(mtimeMs, ctimeMs)) return false;
  return ctimeMs === undefined || Math.abs(ctimeMs - mtimeMs) <= sameMomentMs(mtimeMs, ctimeMs);
}

/**
 * How far apart the mtime and ctime of one write can be: 0 on most
 * filesystems (one clock reading sets both), up to a kernel tick (≤ 10 ms)
 * where they are stored with different precisions, 2 s on filesystems with
 * whole-second (FAT: 2 s) timestamps.
 */
function sameMomentMs(mtimeMs: number, ctimeMs: number): number {
  return coarse(mtimeMs, ctimeMs) ? 2000 : 10;
}

/** Whether a file's stat is what the snapshot recorded (so its recorded MD5 still holds). A racy entry never matches. */
export function statMatches(local: LocalFile, entry: SnapshotEntry | undefined): boolean {
  return (
    entry !== undefined &&
    entry.racy !== true &&
    local.size === entry.size &&
    local.mtimeMs === entry.mtimeMs &&
    local.ctimeMs === entry.ctimeMs &&
    local.ino === entry.ino
  );
}

/** The local file's MD5 when known: the snapshot's (stat rule) or the one just computed. */
export function localMd5Of(local: LocalFile, entry: SnapshotEntry | undefined, localMd5: ReadonlyMap<string, string>): string | undefined {
  return statMatches(local, entry) ? entry?.md5 : localMd5.get(local.path);
}

/** Rule 2: the file and the object are both exactly as the last sync left them. */
export function unchangedSinceSync(local: LocalFile, entry: SnapshotEntry | undefined, remote: RemoteObject): boolean {
  return statMatches(local, entry) && entry?.etag !== undefined && entry.etag === remote.etag;
}

/** Rule 5: same size and the same known MD5. */
export function sameContent(local: LocalFile, md5: string | undefined, remote: RemoteObject): md5 is string {
  return md5 !== undefined && remote.md5 !== undefined && md5 === remote.md5 && local.size === remote.size;
}

/** Rule 4: same size and the same recorded mtime (within a millisecond). */
export function sameSizeAndMtime(local: { size: number; mtimeMs: number }, remote: { size: number; mtimeMs?: number | undefined }): boolean {
  return remote.mtimeMs !== undefined && local.size === remote.size && Math.abs(local.mtimeMs - remote.mtimeMs) < 1;
}

// ---------------------------------------------------------------- what to learn

/** Files to hash and objects to HEAD before the planner can decide. */
export interface Needs {
  hash: string[];
  head: string[];
}

/**
 * Pull: which local files must be hashed, and which objects HEADed (their MD5
 * is not in the listing), before {@link planPull} can decide. Hashing is
 * skipped whenever the snapshot or the sizes already decide.
 */
export function pullNeeds(input: CompareInput): Needs {
  const hash: string[] = [];
  const head: string[] = [];
  for (const [path, local] of input.local) {
    const snap = input.snapshot.get(path);
    const remote = input.remote.get(path);
    if (statMatches(local, snap)) {
      if (remote && remote.md5 === undefined && snap?.etag !== remote.etag && local.size === remote.size) head.push(path);
      continue;
    }
    if (remote !== undefined && remote.size === local.size) {
      // Maybe identical: the hash decides (and proves the file, when the snapshot knows it).
      hash.push(path);
      if (remote.md5 === undefined) head.push(path);
    } else if (snap !== undefined) {
      // Deleted or changed remotely: hash only to tell "as last synced" (proven) from "modified locally".
      hash.push(path);
    }
  }
  return { hash, head };
}

/**
 * Push: which local files must be hashed (and objects HEADed) before
 * {@link planPush} can decide. Without a snapshot, only files whose object
 * has the same size need a hash; new files are hashed while they are uploaded.
 */
export function pushNeeds(input: CompareInput): Needs {
  const hash: string[] = [];
  const head: string[] = [];
  for (const [path, local] of input.local) {
    const snap = input.snapshot.get(path);
    if (statMatches(local, snap)) continue;
    if (input.hasSnapshot) {
      if (snap !== undefined) hash.push(path);
      continue;
    }
    const remote = input.remote.get(path);
    if (remote !== undefined && remote.size === local.size) {
      hash.push(path);
      if (remote.md5 === undefined) head.push(path);
    }
  }
  return { hash, head };
}

/**
 * Whether the part size of a multipart object must be read from the object
 * itself (its part 1) because neither the HEAD's metadata MD5 nor its
 * `partsize` metadata tells.
 */
export function needsFirstPartSize(remote: RemoteObject, facts: ObjectFacts): boolean {
  return facts.md5 === undefined && facts.partSize === undefined && multipartPartCount(remote.etag) !== undefined;
}

/**
 * The part sizes to compute multipart ETags with while hashing the local file
 * at `remote.path` (empty: a plain MD5 is enough): for a multipart object
 * whose MD5 is unknown, the known part size first, then the likely ones.
 */
export function etagPartSizes(remote: RemoteObject | undefined, facts: ObjectFacts | undefined): number[] {
  if (remote === undefined || resolved(remote, facts).md5 !== undefined) return [];
  const parts = multipartPartCount(remote.etag);
  if (parts === undefined) return [];
  return partSizesFor(remote.size, parts, facts?.etag === remote.etag ? facts.partSize : remote.partSize);
}

/**
 * Objects whose MD5 was read off their ETag in the listing and differs from
 * the MD5 of the local file of the same size (known from the snapshot or just
 * hashed). Such an ETag may not be an MD5 at all (SSE-KMS and SSE-C objects
 * have ETags that look like one): the object's metadata (a HEAD) decides
 * before the two count as different. A genuinely changed file of the same
 * size costs one HEAD.
 */
export function toConfirm(input: CompareInput, learned: Learned): string[] {
  const out: string[] = [];
  for (const [path, remote] of input.remote) {
    const known = resolved(remote, learned.heads.get(path));
    if (!known.tentative || known.md5 === undefined) continue;
    const local = input.local.get(path);
    if (local === undefined || local.size !== remote.size) continue;
    const snap = input.snapshot.get(path);
    // the object this instance synced, still there: the snapshot knows its MD5 (no HEAD on every pull of an SSE-KMS tree)
    if (snap?.etag !== undefined && snap.etag === remote.etag) continue;
    const md5 = localMd5Of(local, snap, learned.localMd5);
    if (md5 !== undefined && md5 !== known.md5) out.push(path);
  }
  return out;
}

// ---------------------------------------------------------------- the object's MD5

/**
 * The object as the planner sees it: its MD5 settled by everything learnt
 * (rules 3 and 4). Returns a new object; the listing's is not changed.
 */
export function resolveRemote(remote: RemoteObject, local: LocalFile | undefined, learned: Learned, entry?: SnapshotEntry): RemoteObject {
  const facts = learned.heads.get(remote.path);
  const headed = facts !== undefined && facts.etag === remote.etag;
  // the version this instance synced: the snapshot knows its content (an SSE-KMS object without metadata MD5 included)
  if (entry?.etag !== undefined && entry.etag === remote.etag) {
    return remoteWith(remote, entry.md5, false, headed ? facts.mtimeMs : remote.mtimeMs, remote.partSize);
  }
  const known = resolved(remote, facts);
  let md5 = known.md5;
  const mtimeMs = headed ? facts.mtimeMs : remote.mtimeMs;
  const partSize = headed ? (facts.partSize ?? remote.partSize) : remote.partSize;
  const localMd5 = learned.localMd5.get(remote.path);
  if (md5 === undefined && local !== undefined && localMd5 !== undefined) {
    const etags = learned.localEtags.get(remote.path);
    if (etags !== undefined && etags.length > 0) {
      // a multipart ETag computed with the right part size proves the contents equal
      if (etags.includes(remote.etag)) md5 = localMd5;
    } else if (multipartPartCount(remote.etag) === undefined || etagPartSizes(remote, facts).length === 0) {
      if (sameSizeAndMtime(local, { size: remote.size, mtimeMs })) md5 = localMd5;
    }
  }
  return remoteWith(remote, md5, known.tentative, mtimeMs, partSize);
}

/**
 * A copy of `remote` with what was learnt. One literal, not a spread: on
 * Node 20 a spread followed by more properties gives every object a hidden
 * class of its own (old-space memory per object, for every object of a pull).
 */
function remoteWith(remote: RemoteObject, md5: string | undefined, md5FromEtag: boolean, mtimeMs: number | undefined, partSize: number | undefined): RemoteObject {
  return { key: remote.key, path: remote.path, size: remote.size, etag: remote.etag, md5, md5FromEtag, lastModifiedMs: remote.lastModifiedMs, mtimeMs, partSize };
}

/** {@link resolveRemote} for every object of the listing. */
export function resolveRemotes(input: CompareInput, learned: Learned): Map<string, RemoteObject> {
  const out = new Map<string, RemoteObject>();
  for (const [path, remote] of input.remote) out.set(path, resolveRemote(remote, input.local.get(path), learned, input.snapshot.get(path)));
  return out;
}

/**
 * The object's MD5 from the listing and its HEAD (if any): `tentative` when it
 * is the listing's ETag, not yet confirmed to be an MD5.
 */
function resolved(remote: RemoteObject, facts: ObjectFacts | undefined): { md5: string | undefined; tentative: boolean } {
  if (facts === undefined || facts.etag !== remote.etag) {
    // a HEAD of a replaced object says nothing about the listed one
    return { md5: remote.md5, tentative: remote.md5 !== undefined && remote.md5FromEtag === true };
  }
  return { md5: contentMd5({ etag: remote.etag, md5: facts.md5 ?? (remote.md5FromEtag === true ? undefined : remote.md5), serverSideEncryption: facts.serverSideEncryption }), tentative: false };
}
