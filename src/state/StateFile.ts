/**
 * The snapshot, persisted: what was identical on both sides at the last sync
 * (path → size, mtime, ctime, inode, MD5, ETag), so a new process — a Lambda
 * cold start on a warm `/tmp`, a restarted container — neither re-hashes an
 * unchanged workspace nor lists the bucket to push nothing.
 *
 * One JSON file per (bucket, prefix), written atomically (temp file, fsync,
 * rename, fsync of the directory), and a journal beside it: a sync that
 * changed a few entries of a large state appends one checksummed line with
 * them instead of rewriting every entry; the journal is folded into a new
 * file once it grows past a quarter of it. The manifest last seen is kept in
 * a third file, raw, written only when it changes. The state is bound to
 * where it came from, and trusted only there:
 * - the workspace directory it describes (real path, device, inode and birth time);
 * - the remote side: endpoint, bucket, prefix, expected bucket owner, and the
 *   identity of the remote workspace (the ETag of the identity object the
 *   library keeps in the prefix; checked against the bucket by the caller).
 * A state file from another directory or origin, another format version, or
 * one that does not parse or validate completely (journal included) is
 * ignored with a warning and never trusted in part. The one exception is a
 * journal line cut short by a crash while it was appended: the save it
 * belonged to never completed, so the state is the one before it (as after a
 * crash before the rename of a whole file), and the next save rewrites the
 * file. A save that fails leaves no state at all.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { jsonMembers, parseWithMembers, withMembers } from '../core/json-chunks.js';
import { MD5_HEX, md5FromEtag, md5Hex } from '../core/md5.js';
import type { Snapshot, SnapshotEntry } from '../core/model.js';
import { storagePathProblem } from '../core/paths.js';
import { messageOf } from '../errors.js';
import type { SyncLogger } from '../types.js';

const FORMAT = 's3-workspace-sync/state';
const VERSION = 3;
/** Beside the state file: the journal of later saves, and the raw bytes of the manifest last seen. */
const JOURNAL_SUFFIX = '.journal';
const MANIFEST_SUFFIX = '.manifest';
/** The journal is folded into a new state file when it would grow past this, or past a quarter of the state file. */
const MIN_JOURNAL_LIMIT = 256 * 1024;
/** A state file larger than this is not read (a workspace of millions of files would need more; it then re-hashes). */
const MAX_STATE_BYTES = 512 * 1024 * 1024;

/** Where the remote side of a state is. */
export interface StateOrigin {
  /** The client's endpoint (`https://host:port/path`), or `aws` for AWS's own endpoints. */
  endpoint: string;
  bucket: string;
  prefix: string;
  /** `expectedBucketOwner`, when configured. */
  owner: string | null;
}

/** What a sync needs back from the state file. */
export interface LoadedState {
  /** Whether the instance that saved it had completed a sync (a fresh instance mirrors the bucket on pull). */
  synced: boolean;
  snapshot: Snapshot;
  /** ETag of the remote workspace's identity object when the state was saved (`null`: it had none). */
  remoteId: string | null;
  /**
   * What the instance had learnt about the remote side, kept so that a new
   * process does not ask again: the manifest last seen (its ETag and bytes:
   * used only while the bucket shows that same ETag) and whether the server
   * enforces conditional writes. A cache: a malformed one is dropped alone.
   */
  remote?: RemoteCache | undefined;
}

export interface RemoteCache {
  manifest?: { etag: string; body: Buffer } | undefined;
  conditionalWrites?: 'enforced' | 'ignored' | undefined;
  /** With `git: 'bundle'`: the repository as this workspace last pushed or restored it (see {@link GitRecord}). */
  git?: GitRecord | undefined;
}

/**
 * The repository pair (`git/repository.json` and its bundle) this workspace
 * last wrote or restored from: a push whose repository still has this
 * fingerprint writes nothing; its next sidecar is written on condition that
 * the bucket's is still `sidecarEtag`. `bundleKey`/`bundleEtag` are set only
 * for a bundle this workspace uploaded itself: the only bundle a later push
 * of this workspace deletes once its new sidecar replaced the old one.
 */
export interface GitRecord {
  fingerprint: string;
  sidecarEtag: string;
  bundleKey?: string | undefined;
  bundleEtag?: string | undefined;
}

/** One entry on disk: [size, mtimeMs, ctimeMs, ino, md5, etag | null, racy (0|1)]. */
type Row = [number, number, number, number, string, string | null, number];

/** The remote cache as the state file and journal record it: the manifest by ETag and the MD5 of the bytes kept beside. */
interface RemoteRecord {
  manifest?: { etag: string; md5: string };
  conditionalWrites?: 'enforced' | 'ignored';
  /** Added without a format version change: an older reader ignores it, a newer one reads a file without it. */
  git?: GitRecord;
}

interface StateDocument {
  format: string;
  version: number;
  /** Random, new for every whole write: journal lines name the file they continue. */
  id: string;
  origin: StateOrigin & { remoteId: string | null };
  workspace: { path: string; dev: number; ino: number; birthtimeMs: number };
  synced: boolean;
  savedAtMs: number;
  entries: Record<string, Row>;
  remote?: RemoteRecord;
}

/** One journal line (after its MD5 and a space): what one save changed. */
interface JournalLine {
  id: string;
  seq: number;
  synced: boolean;
  remoteId: string | null;
  remote?: RemoteRecord;
  set: Record<string, Row>;
  del: string[];
}

/** The state as this instance last read or wrote it, to append the next save's changes to. */
interface OnDisk {
  id: string;
  /** The state file's identity and size, and the journal's size, when written or read: another writer since means a whole write. */
  file: { ino: number; size: number; mtimeMs: number };
  journalBytes: number;
  seq: number;
  snapshot: Snapshot;
  manifest: { etag: string; md5: string } | undefined;
  /** A journal line was cut short (a crash while appending): the next save writes the whole file. */
  torn: boolean;
}

/** A loaded state, or why it is refused. */
type Parsed = (LoadedState & { id: string; manifestRef?: { etag: string; md5: string } | undefined }) | string;

/** The state file of one (bucket, prefix) in `dir`. */
export class StateFile {
  readonly path: string;
  private disk: OnDisk | undefined;

  constructor(
    private readonly dir: string,
    bucket: string,
    prefix: string,
    private readonly logger: SyncLogger,
  ) {
    const id = createHash('sha256').update(`${bucket}\0${prefix}`).digest('hex').slice(0, 16);
    this.path = join(dir, `state-${id}.json`);
  }

  /**
   * The saved state for the workspace at `root` (its real path) and `origin`,
   * or `undefined` when there is none or it cannot be trusted (with a warning).
   */
  /**
   * `cleanup`: also remove temp files of saves that crashed — only under the
   * workspace lock (a temp file may be another process's save in progress).
   */
  async load(root: string, origin: StateOrigin, cleanup = false): Promise<LoadedState | undefined> {
    if (cleanup) await this.removeLeftoverTemps();
    let text: Buffer;
    // the identity and size of the very file read (one descriptor): the next save appends to it only if it is still the one there
    let fileStat: { ino: number; size: number; mtimeMs: number };
    try {
      const fh = await open(this.path, 'r');
      try {
        fileStat = await fh.stat();
        if (fileStat.size > MAX_STATE_BYTES) {
          this.logger.warn(`Ignoring the sync state file ${this.path}: larger than ${MAX_STATE_BYTES} bytes; ${CONSEQUENCE}`);
          return undefined;
        }
        text = await fh.readFile(); // bytes: the entries are parsed from them a slice at a time (parseState)
      } finally {
        await fh.close();
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.logger.warn(`Ignoring the sync state file ${this.path}: ${messageOf(error)}; ${CONSEQUENCE}`);
      }
      return undefined;
    }
    let identity: { dev: number; ino: number; birthtimeMs: number };
    try {
      identity = await stat(root);
    } catch {
      return undefined;
    }
    const parsed = parseState(text, { origin, root, ...pick(identity) });
    if (typeof parsed === 'string') {
      this.logger.warn(`Ignoring the sync state file ${this.path}: ${parsed}; ${CONSEQUENCE}`);
      return undefined;
    }
    let journal: Buffer | undefined;
    try {
      journal = await readFile(this.path + JOURNAL_SUFFIX);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.logger.warn(`Ignoring the sync state file ${this.path}: its journal cannot be read (${messageOf(error)}); ${CONSEQUENCE}`);
        return undefined;
      }
    }
    const replayed = journal === undefined ? { seq: 0, torn: false } : replayJournal(parsed, journal);
    if (typeof replayed === 'string') {
      this.logger.warn(`Ignoring the sync state file ${this.path}: ${replayed}; ${CONSEQUENCE}`);
      return undefined;
    }
    const { id, manifestRef, ...state } = parsed;
    if (manifestRef !== undefined) {
      const body = await readFile(this.path + MANIFEST_SUFFIX).catch(() => undefined);
      // a cache: bytes that are not the ones recorded are dropped alone
      if (body !== undefined && md5Hex(body) === manifestRef.md5) state.remote = { ...state.remote, manifest: { etag: manifestRef.etag, body } };
    }
    this.disk = {
      id,
      file: { ino: fileStat.ino, size: fileStat.size, mtimeMs: fileStat.mtimeMs },
      journalBytes: journal?.length ?? 0,
      seq: replayed.seq,
      snapshot: state.snapshot,
      manifest: manifestRef,
      torn: replayed.torn,
    };
    return state;
  }

  /**
   * Write the state atomically: a new file (mode 0600), flushed to disk,
   * renamed over the old one, and the directory flushed. A failure is logged,
   * never thrown (the sync itself succeeded), and the previous file is
   * removed: a state on disk is always the last one saved completely, or
   * there is none (then the next process proves nothing and moves aside
   * rather than deletes).
   */
  async save(root: string, origin: StateOrigin, state: LoadedState): Promise<void> {
    const tmp = `${this.path}.${randomBytes(6).toString('hex')}.tmp`;
    let renamed = false;
    try {
      const identity = await stat(root);
      const manifest = await this.saveManifest(state.remote?.manifest);
      const remote: RemoteRecord = {};
      if (manifest !== undefined) remote.manifest = manifest;
      if (state.remote?.conditionalWrites !== undefined) remote.conditionalWrites = state.remote.conditionalWrites;
      if (state.remote?.git !== undefined) remote.git = gitRecordOf(state.remote.git);
      if (await this.append(state, remote)) return;
      const id = randomBytes(8).toString('hex');
      const doc: Omit<StateDocument, 'entries'> = {
        format: FORMAT,
        version: VERSION,
        id,
        origin: { ...origin, remoteId: state.remoteId },
        workspace: { path: root, ...pick(identity) },
        synced: state.synced,
        savedAtMs: Date.now(),
      };
      if (Object.keys(remote).length > 0) doc.remote = remote;
      // the entries written in slices (core/json-chunks), not as one object and one string: at 100,000 files
      // those were the peak memory of a cold push; a path may be "__proto__", which a plain object would lose
      const text = withMembers(JSON.stringify(doc), 'entries', jsonMembers(state.snapshot, rowOf));
      this.disk = undefined;
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      await writeDurably(tmp, text);
      await rename(tmp, this.path);
      renamed = true;
      // the old journal continues the old file (another id): its lines would be refused; remove it
      await unlink(this.path + JOURNAL_SUFFIX).catch(() => undefined);
      const written = await stat(this.path);
      this.disk = {
        id,
        file: { ino: written.ino, size: written.size, mtimeMs: written.mtimeMs },
        journalBytes: 0,
        seq: 0,
        snapshot: state.snapshot,
        manifest,
        torn: false,
      };
      await syncDirectory(this.dir);
    } catch (error) {
      if (renamed) {
        // only the directory flush failed: the file is complete, the rename may not survive a power loss
        this.logger.debug(`Could not flush the directory of ${this.path}: ${messageOf(error)}`);
        return;
      }
      this.disk = undefined;
      this.logger.warn(`Could not save the sync state to ${this.path}: ${messageOf(error)}; the next process starts without state`);
      await unlink(tmp).catch(() => undefined);
      await unlink(this.path).catch(() => undefined);
      await unlink(this.path + JOURNAL_SUFFIX).catch(() => undefined);
    }
  }

  /**
   * Append what changed since the state this instance last read or wrote, as
   * one journal line; `false` when the whole file must be written instead (no
   * such state, another writer since, a torn line, or a journal grown past
   * its limit).
   */
  private async append(state: LoadedState, remote: RemoteRecord): Promise<boolean> {
    const disk = this.disk;
    if (disk === undefined || disk.torn) return false;
    const now = await stat(this.path).catch(() => undefined);
    if (now === undefined || now.ino !== disk.file.ino || now.size !== disk.file.size || now.mtimeMs !== disk.file.mtimeMs) return false;
    const journalPath = this.path + JOURNAL_SUFFIX;
    const journalNow = await stat(journalPath).catch(() => undefined);
    if ((journalNow?.size ?? 0) !== disk.journalBytes) return false;
    const set: Record<string, Row> = Object.create(null) as Record<string, Row>;
    const del: string[] = [];
    for (const [path, e] of state.snapshot) {
      const before = disk.snapshot.get(path);
      if (before !== e && (before === undefined || !sameRow(rowOf(before), rowOf(e)))) set[path] = rowOf(e);
    }
    for (const path of disk.snapshot.keys()) if (!state.snapshot.has(path)) del.push(path);
    const line: JournalLine = { id: disk.id, seq: disk.seq + 1, synced: state.synced, remoteId: state.remoteId, set, del };
    if (Object.keys(remote).length > 0) line.remote = remote;
    const json = JSON.stringify(line);
    const text = `${md5Hex(json)} ${json}\n`;
    const bytes = Buffer.byteLength(text);
    if (disk.journalBytes + bytes > Math.max(MIN_JOURNAL_LIMIT, disk.file.size / 4)) return false;
    this.disk = undefined; // until the line is on disk
    const fh = await open(journalPath, 'a', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    this.disk = { ...disk, journalBytes: disk.journalBytes + bytes, seq: line.seq, snapshot: state.snapshot, manifest: remote.manifest };
    return true;
  }

  /** Keep the manifest's bytes beside the state (rewritten only when its ETag changed); what the state records of it. */
  private async saveManifest(manifest: { etag: string; body: Buffer } | undefined): Promise<{ etag: string; md5: string } | undefined> {
    if (manifest === undefined) return undefined;
    if (this.disk?.manifest?.etag === manifest.etag) return this.disk.manifest;
    const md5 = md5FromEtag(manifest.etag) ?? md5Hex(manifest.body);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.path}${MANIFEST_SUFFIX}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeDurably(tmp, manifest.body);
      await rename(tmp, this.path + MANIFEST_SUFFIX);
    } catch (error) {
      await unlink(tmp).catch(() => undefined);
      throw error;
    }
    return { etag: manifest.etag, md5 };
  }

  /** Temp files of saves interrupted by a crash (only this target's). */
  private async removeLeftoverTemps(): Promise<void> {
    const base = basename(this.path);
    const names = await readdir(this.dir).catch(() => [] as string[]);
    for (const name of names) {
      if (name.startsWith(`${base}.`) && name.endsWith('.tmp')) await unlink(join(this.dir, name)).catch(() => undefined);
    }
  }

  /** Remove the state file, its journal and the manifest kept beside it (best effort). */
  async remove(): Promise<void> {
    this.disk = undefined;
    await unlink(this.path).catch(() => undefined);
    await unlink(this.path + JOURNAL_SUFFIX).catch(() => undefined);
    await unlink(this.path + MANIFEST_SUFFIX).catch(() => undefined);
  }
}

const CONSEQUENCE =
  'files will be re-hashed, and a pull moves local files it cannot prove were synced into the recovery area instead of deleting them';

/** Write a new file (mode 0600) and flush it to disk. */
async function writeDurably(path: string, data: string | Buffer | Buffer[]): Promise<void> {
  const fh = await open(path, 'wx', 0o600);
  try {
    if (Array.isArray(data)) for (const chunk of data) await fh.writeFile(chunk); // from the current position, all of it
    else await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function rowOf(e: SnapshotEntry): Row {
  return [e.size, e.mtimeMs, e.ctimeMs, e.ino, e.md5, e.etag ?? null, e.racy === true ? 1 : 0];
}

function sameRow(a: Row, b: Row): boolean {
  return a.every((v, i) => v === b[i]);
}

/**
 * Apply the journal's lines to a parsed state, in order. A line cut short at
 * the end (no newline: a crash while it was appended) is dropped, and so is a
 * journal of an older state file (a crash after a whole write, before the
 * journal's removal); either way the next save writes the whole file. Any
 * other line that is not exactly a checksummed continuation of this file
 * refuses the whole state.
 */
function replayJournal(state: Exclude<Parsed, string>, journal: Buffer): { seq: number; torn: boolean } | string {
  const text = journal.toString('utf8');
  const lines = text.split('\n');
  const last = lines.pop() as string; // '' when the journal ends with a newline
  let seq = 0;
  for (const line of lines) {
    const space = line.indexOf(' ');
    const json = line.slice(space + 1);
    if (space !== 32 || md5Hex(json) !== line.slice(0, 32)) return `journal line ${seq + 1} is damaged`;
    let v: unknown;
    try {
      v = JSON.parse(json);
    } catch {
      return `journal line ${seq + 1} is damaged`;
    }
    if (!isObject(v)) return `journal line ${seq + 1} is malformed`;
    // a journal left by a crash between a whole write and the journal's removal: the file is newer, the journal is void
    if (v.id !== state.id && seq === 0) return { seq: 0, torn: true };
    if (v.id !== state.id) return `journal line ${seq + 1} continues another state file`;
    if (v.seq !== seq + 1) return `journal line ${seq + 1} is out of order`;
    if (typeof v.synced !== 'boolean' || !(v.remoteId === null || isRemoteId(v.remoteId)) || !isObject(v.set) || !Array.isArray(v.del)) {
      return `journal line ${seq + 1} is malformed`;
    }
    const snapshot = state.snapshot; // parsed just now, owned here: changed in place
    for (const path of v.del) {
      if (typeof path !== 'string') return `journal line ${seq + 1} is malformed`;
      snapshot.delete(path);
    }
    for (const [path, row] of Object.entries(v.set)) {
      const entry = toEntry(row);
      if (entry === undefined || storagePathProblem(path) !== undefined) return `malformed entry for ${JSON.stringify(path).slice(0, 200)} in the journal`;
      snapshot.set(path, entry);
    }
    state.synced = v.synced;
    state.remoteId = v.remoteId as string | null;
    const record = toRemoteRecord(v.remote);
    state.manifestRef = record.manifest;
    const cache = remoteCacheOf(record);
    if (cache !== undefined) state.remote = cache;
    else delete state.remote;
    seq++;
  }
  return { seq, torn: last !== '' };
}

/** Flush a directory entry (the rename) to disk; not every filesystem supports it. */
async function syncDirectory(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR' && code !== 'EBADF') throw error;
  } finally {
    await fh.close();
  }
}

interface Identity {
  dev: number;
  ino: number;
  /** 0 where the filesystem does not record it. */
  birthtimeMs: number;
}

interface Expected extends Identity {
  origin: StateOrigin;
  root: string;
}

/** What identifies the workspace directory: an inode number is reused at once by a directory re-created in its place; its birth time is not. */
function pick(st: Identity): Identity {
  return { dev: st.dev, ino: st.ino, birthtimeMs: st.birthtimeMs };
}

/**
 * Parse and validate a state document completely; a string is the reason it
 * is refused. The manifest it refers to is kept in another file
 * (`manifestRef`: read by the caller). From bytes, the entries are parsed
 * a slice at a time into the snapshot (no string of the whole file, no
 * object of every entry: at 100,000 files those were most of the memory a
 * sync held when its heap was first sized).
 */
export function parseState(text: string | Buffer, expected: Expected): Parsed {
  const snapshot: Snapshot = new Map();
  let malformed: string | undefined;
  const add = (path: string, row: unknown): void => {
    if (malformed !== undefined) return;
    const entry = toEntry(row);
    if (entry === undefined || storagePathProblem(path) !== undefined) malformed = `malformed entry for ${JSON.stringify(path).slice(0, 200)}`;
    else snapshot.set(path, entry);
  };
  let doc: unknown;
  let sliced = false;
  try {
    if (typeof text !== 'string') {
      doc = parseWithMembers(text, 'entries', add);
      sliced = doc !== undefined;
    }
    if (!sliced) doc = JSON.parse(typeof text === 'string' ? text : text.toString('utf8'));
  } catch {
    return 'not valid JSON (corrupt or truncated)';
  }
  if (!isObject(doc) || doc.format !== FORMAT) return 'not a state file of this library';
  if (doc.version !== VERSION) return `format version ${String(doc.version)} is not ${VERSION}`;
  if (typeof doc.id !== 'string' || !/^[0-9a-f]{16}$/.test(doc.id)) return 'malformed (id)';
  const origin = doc.origin;
  if (!isObject(origin)) return 'malformed (origin)';
  const want = expected.origin;
  if (origin.bucket !== want.bucket || origin.prefix !== want.prefix) return 'written for another bucket or prefix';
  if (origin.endpoint !== want.endpoint) return `written for another endpoint (${String(origin.endpoint)}, now ${want.endpoint})`;
  if (origin.owner !== want.owner) return 'written for another expected bucket owner';
  const remoteId = origin.remoteId;
  if (remoteId !== null && !isRemoteId(remoteId)) return 'malformed (origin.remoteId)';
  const ws = doc.workspace;
  if (!isObject(ws) || ws.path !== expected.root) return 'written for another workspace directory';
  if (ws.dev !== expected.dev || ws.ino !== expected.ino || ws.birthtimeMs !== expected.birthtimeMs) {
    return 'the workspace directory was replaced since it was written';
  }
  if (typeof doc.synced !== 'boolean') return 'malformed (synced)';
  if (!isObject(doc.entries)) return 'malformed (entries)';
  if (!sliced) for (const [path, row] of Object.entries(doc.entries)) add(path, row);
  if (malformed !== undefined) return malformed;
  const record = toRemoteRecord(doc.remote);
  const out: Exclude<Parsed, string> = { id: doc.id, synced: doc.synced, snapshot, remoteId: remoteId as string | null };
  const cache = remoteCacheOf(record);
  if (cache !== undefined) out.remote = cache;
  if (record.manifest !== undefined) out.manifestRef = record.manifest;
  return out;
}

function isRemoteId(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0 && v.length <= 200;
}

/** The remote cache's record; a malformed part is dropped alone (a cache: the rest of the state stands). */
function toRemoteRecord(v: unknown): RemoteRecord {
  const out: RemoteRecord = {};
  if (!isObject(v)) return out;
  const m = v.manifest;
  if (isObject(m) && isRemoteId(m.etag) && typeof m.md5 === 'string' && MD5_HEX.test(m.md5)) out.manifest = { etag: m.etag, md5: m.md5 };
  if (v.conditionalWrites === 'enforced' || v.conditionalWrites === 'ignored') out.conditionalWrites = v.conditionalWrites;
  const g = v.git;
  if (isObject(g) && isRemoteId(g.fingerprint) && isRemoteId(g.sidecarEtag)) {
    const git: GitRecord = { fingerprint: g.fingerprint, sidecarEtag: g.sidecarEtag };
    if (isRemoteId(g.bundleKey) && g.bundleKey.length <= 1024 && isRemoteId(g.bundleEtag)) {
      git.bundleKey = g.bundleKey;
      git.bundleEtag = g.bundleEtag;
    }
    out.git = git;
  }
  return out;
}

/** The parts of a record kept in the loaded state's remote cache (the manifest's bytes are read apart). */
function remoteCacheOf(record: RemoteRecord): RemoteCache | undefined {
  const cache: RemoteCache = {};
  if (record.conditionalWrites !== undefined) cache.conditionalWrites = record.conditionalWrites;
  if (record.git !== undefined) cache.git = record.git;
  return Object.keys(cache).length > 0 ? cache : undefined;
}

/** A git record as JSON keeps it (no `undefined` fields). */
function gitRecordOf(git: GitRecord): GitRecord {
  const out: GitRecord = { fingerprint: git.fingerprint, sidecarEtag: git.sidecarEtag };
  if (git.bundleKey !== undefined && git.bundleEtag !== undefined) {
    out.bundleKey = git.bundleKey;
    out.bundleEtag = git.bundleEtag;
  }
  return out;
}

function toEntry(row: unknown): SnapshotEntry | undefined {
  if (!Array.isArray(row) || row.length !== 7) return undefined;
  const [size, mtimeMs, ctimeMs, ino, md5, etag, racy] = row as unknown[];
  if (!isCount(size) || !isNumber(mtimeMs) || !isNumber(ctimeMs) || !isCount(ino)) return undefined;
  if (typeof md5 !== 'string' || !MD5_HEX.test(md5)) return undefined;
  if (etag !== null && (typeof etag !== 'string' || etag.length === 0 || etag.length > 200)) return undefined;
  if (racy !== 0 && racy !== 1) return undefined;
  const entry: SnapshotEntry = { size, mtimeMs, ctimeMs, ino, md5 };
  if (etag !== null) entry.etag = etag === md5 ? md5 : etag; // one string, not two equal ones (a plain ETag is the MD5)
  if (racy === 1) entry.racy = true;
  return entry;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function isCount(v: unknown): v is number {
  return isNumber(v) && v >= 0 && Number.isInteger(v);
}
