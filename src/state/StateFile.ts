/**
 * The snapshot, persisted: what was identical on both sides at the last sync
 * (path → size, mtime, ctime, inode, MD5, ETag), so a new process — a Lambda
 * cold start on a warm `/tmp`, a restarted container — neither re-hashes an
 * unchanged workspace nor lists the bucket to push nothing.
 *
 * One JSON file per (bucket, prefix), written atomically (temp file, fsync,
 * rename, fsync of the directory). It is bound to where it came from, and
 * trusted only there:
 * - the workspace directory it describes (real path, device, inode and birth time);
 * - the remote side: endpoint, bucket, prefix, expected bucket owner, and the
 *   identity of the remote workspace (the ETag of the identity object the
 *   library keeps in the prefix; checked against the bucket by the caller).
 * A state file from another directory or origin, another format version, or
 * one that does not parse or validate completely is ignored with a warning
 * and never trusted in part. A save that fails leaves no state at all.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { MD5_HEX } from '../core/md5.js';
import type { Snapshot, SnapshotEntry } from '../core/model.js';
import { storagePathProblem } from '../core/paths.js';
import { messageOf } from '../errors.js';
import type { SyncLogger } from '../types.js';

const FORMAT = 's3-workspace-sync/state';
const VERSION = 2;
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
  manifest?: { etag: string; body: string } | undefined;
  conditionalWrites?: 'enforced' | 'ignored' | undefined;
}

/** One entry on disk: [size, mtimeMs, ctimeMs, ino, md5, etag | null, racy (0|1)]. */
type Row = [number, number, number, number, string, string | null, number];

interface StateDocument {
  format: string;
  version: number;
  origin: StateOrigin & { remoteId: string | null };
  workspace: { path: string; dev: number; ino: number; birthtimeMs: number };
  synced: boolean;
  savedAtMs: number;
  entries: Record<string, Row>;
  remote?: RemoteCache;
}

/** The state file of one (bucket, prefix) in `dir`. */
export class StateFile {
  readonly path: string;

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
    let text: string;
    try {
      const st = await stat(this.path);
      if (st.size > MAX_STATE_BYTES) {
        this.logger.warn(`Ignoring the sync state file ${this.path}: larger than ${MAX_STATE_BYTES} bytes; ${CONSEQUENCE}`);
        return undefined;
      }
      text = await readFile(this.path, 'utf8');
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
    return parsed;
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
      const entries: Record<string, Row> = Object.create(null) as Record<string, Row>; // a path may be "__proto__"
      for (const [path, e] of state.snapshot) {
        entries[path] = [e.size, e.mtimeMs, e.ctimeMs, e.ino, e.md5, e.etag ?? null, e.racy === true ? 1 : 0];
      }
      const doc: StateDocument = {
        format: FORMAT,
        version: VERSION,
        origin: { ...origin, remoteId: state.remoteId },
        workspace: { path: root, ...pick(identity) },
        synced: state.synced,
        savedAtMs: Date.now(),
        entries,
      };
      if (state.remote !== undefined) doc.remote = state.remote;
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const fh = await open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(JSON.stringify(doc));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.path);
      renamed = true;
      await syncDirectory(this.dir);
    } catch (error) {
      if (renamed) {
        // only the directory flush failed: the file is complete, the rename may not survive a power loss
        this.logger.debug(`Could not flush the directory of ${this.path}: ${messageOf(error)}`);
        return;
      }
      this.logger.warn(`Could not save the sync state to ${this.path}: ${messageOf(error)}; the next process starts without state`);
      await unlink(tmp).catch(() => undefined);
      await unlink(this.path).catch(() => undefined);
    }
  }

  /** Temp files of saves interrupted by a crash (only this target's). */
  private async removeLeftoverTemps(): Promise<void> {
    const base = basename(this.path);
    const names = await readdir(this.dir).catch(() => [] as string[]);
    for (const name of names) {
      if (name.startsWith(`${base}.`) && name.endsWith('.tmp')) await unlink(join(this.dir, name)).catch(() => undefined);
    }
  }

  /** Remove the state file (best effort). */
  async remove(): Promise<void> {
    await unlink(this.path).catch(() => undefined);
  }
}

const CONSEQUENCE =
  'files will be re-hashed, and a pull moves local files it cannot prove were synced into the recovery area instead of deleting them';

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

/** Parse and validate a state document completely; a string is the reason it is refused. */
export function parseState(text: string, expected: Expected): LoadedState | string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return 'not valid JSON (corrupt or truncated)';
  }
  if (!isObject(doc) || doc.format !== FORMAT) return 'not a state file of this library';
  if (doc.version !== VERSION) return `format version ${String(doc.version)} is not ${VERSION}`;
  const origin = doc.origin;
  if (!isObject(origin)) return 'malformed (origin)';
  const want = expected.origin;
  if (origin.bucket !== want.bucket || origin.prefix !== want.prefix) return 'written for another bucket or prefix';
  if (origin.endpoint !== want.endpoint) return `written for another endpoint (${String(origin.endpoint)}, now ${want.endpoint})`;
  if (origin.owner !== want.owner) return 'written for another expected bucket owner';
  const remoteId = origin.remoteId;
  if (remoteId !== null && (typeof remoteId !== 'string' || remoteId.length === 0 || remoteId.length > 200)) return 'malformed (origin.remoteId)';
  const ws = doc.workspace;
  if (!isObject(ws) || ws.path !== expected.root) return 'written for another workspace directory';
  if (ws.dev !== expected.dev || ws.ino !== expected.ino || ws.birthtimeMs !== expected.birthtimeMs) {
    return 'the workspace directory was replaced since it was written';
  }
  if (typeof doc.synced !== 'boolean') return 'malformed (synced)';
  if (!isObject(doc.entries)) return 'malformed (entries)';
  const snapshot: Snapshot = new Map();
  for (const [path, row] of Object.entries(doc.entries)) {
    const entry = toEntry(row);
    if (entry === undefined || storagePathProblem(path) !== undefined) return `malformed entry for ${JSON.stringify(path).slice(0, 200)}`;
    snapshot.set(path, entry);
  }
  const remote = toRemoteCache(doc.remote);
  return remote === undefined ? { synced: doc.synced, snapshot, remoteId } : { synced: doc.synced, snapshot, remoteId, remote };
}

/** The remote cache, or `undefined` when absent or malformed (a cache: dropped alone, the rest of the state stands). */
function toRemoteCache(v: unknown): RemoteCache | undefined {
  if (!isObject(v)) return undefined;
  const out: RemoteCache = {};
  const m = v.manifest;
  if (isObject(m) && typeof m.etag === 'string' && m.etag.length > 0 && m.etag.length <= 200 && typeof m.body === 'string') out.manifest = { etag: m.etag, body: m.body };
  if (v.conditionalWrites === 'enforced' || v.conditionalWrites === 'ignored') out.conditionalWrites = v.conditionalWrites;
  return out.manifest === undefined && out.conditionalWrites === undefined ? undefined : out;
}

function toEntry(row: unknown): SnapshotEntry | undefined {
  if (!Array.isArray(row) || row.length !== 7) return undefined;
  const [size, mtimeMs, ctimeMs, ino, md5, etag, racy] = row as unknown[];
  if (!isCount(size) || !isNumber(mtimeMs) || !isNumber(ctimeMs) || !isCount(ino)) return undefined;
  if (typeof md5 !== 'string' || !MD5_HEX.test(md5)) return undefined;
  if (etag !== null && (typeof etag !== 'string' || etag.length === 0 || etag.length > 200)) return undefined;
  if (racy !== 0 && racy !== 1) return undefined;
  const entry: SnapshotEntry = { size, mtimeMs, ctimeMs, ino, md5 };
  if (etag !== null) entry.etag = etag;
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
