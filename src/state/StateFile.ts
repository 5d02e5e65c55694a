/**
 * The snapshot, persisted: what was identical on both sides at the last sync
 * (path → size, mtime, ctime, inode, MD5, ETag), so a new process — a Lambda
 * cold start on a warm `/tmp`, a restarted container — neither re-hashes an
 * unchanged workspace nor lists the bucket to push nothing.
 *
 * One JSON file per (bucket, prefix), written atomically (temp file + rename).
 * It is bound to the workspace directory it describes (real path, device,
 * inode and birth time): a state file from another directory, another target, another format
 * version, or one that does not parse or validate completely is ignored with a
 * warning and never trusted in part.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Snapshot, SnapshotEntry } from '../core/plan.js';
import { storagePathProblem } from '../core/paths.js';
import { messageOf } from '../errors.js';
import type { SyncLogger } from '../types.js';

const FORMAT = 's3-workspace-sync/state';
const VERSION = 1;
/** A state file larger than this is not read (a workspace of millions of files would need more; it then re-hashes). */
const MAX_STATE_BYTES = 512 * 1024 * 1024;
const MD5_HEX = /^[0-9a-f]{32}$/;

/** What a sync needs back from the state file. */
export interface LoadedState {
  /** Whether the instance that saved it had completed a sync (a fresh instance mirrors the bucket on pull). */
  synced: boolean;
  snapshot: Snapshot;
}

/** One entry on disk: [size, mtimeMs, ctimeMs, ino, md5, etag | null, racy (0|1)]. */
type Row = [number, number, number, number, string, string | null, number];

interface StateDocument {
  format: string;
  version: number;
  bucket: string;
  prefix: string;
  workspace: { path: string; dev: number; ino: number; birthtimeMs: number };
  synced: boolean;
  savedAtMs: number;
  entries: Record<string, Row>;
}

/** The state file of one (bucket, prefix) in `dir`. */
export class StateFile {
  readonly path: string;

  constructor(
    private readonly dir: string,
    private readonly bucket: string,
    private readonly prefix: string,
    private readonly logger: SyncLogger,
  ) {
    const id = createHash('sha256').update(`${bucket}\0${prefix}`).digest('hex').slice(0, 16);
    this.path = join(dir, `state-${id}.json`);
  }

  /**
   * The saved state for the workspace at `root` (its real path), or
   * `undefined` when there is none or it cannot be trusted (with a warning).
   */
  async load(root: string): Promise<LoadedState | undefined> {
    await this.removeLeftoverTemps();
    let text: string;
    try {
      const st = await stat(this.path);
      if (st.size > MAX_STATE_BYTES) {
        this.logger.warn(`Ignoring the sync state file ${this.path}: larger than ${MAX_STATE_BYTES} bytes`);
        return undefined;
      }
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.logger.warn(`Ignoring the sync state file ${this.path}: ${messageOf(error)}`);
      }
      return undefined;
    }
    let identity: { dev: number; ino: number; birthtimeMs: number };
    try {
      identity = await stat(root);
    } catch {
      return undefined;
    }
    const problem = parseState(text, { bucket: this.bucket, prefix: this.prefix, root, ...pick(identity) });
    if (typeof problem === 'string') {
      this.logger.warn(`Ignoring the sync state file ${this.path}: ${problem}; files will be re-hashed`);
      return undefined;
    }
    return problem;
  }

  /**
   * Write the state atomically. A failure is logged, never thrown (the sync
   * itself succeeded), and the previous file is removed so that stale state is
   * never trusted.
   */
  async save(root: string, state: LoadedState): Promise<void> {
    const tmp = `${this.path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      const identity = await stat(root);
      const entries: Record<string, Row> = Object.create(null) as Record<string, Row>; // a path may be "__proto__"
      for (const [path, e] of state.snapshot) {
        entries[path] = [e.size, e.mtimeMs, e.ctimeMs, e.ino, e.md5, e.etag ?? null, e.racy === true ? 1 : 0];
      }
      const doc: StateDocument = {
        format: FORMAT,
        version: VERSION,
        bucket: this.bucket,
        prefix: this.prefix,
        workspace: { path: root, ...pick(identity) },
        synced: state.synced,
        savedAtMs: Date.now(),
        entries,
      };
      await mkdir(this.dir, { recursive: true });
      await writeFile(tmp, JSON.stringify(doc), { flag: 'wx', mode: 0o600 });
      await rename(tmp, this.path);
    } catch (error) {
      this.logger.warn(`Could not save the sync state to ${this.path}: ${messageOf(error)}; the next process will re-hash`);
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

interface Identity {
  dev: number;
  ino: number;
  /** 0 where the filesystem does not record it. */
  birthtimeMs: number;
}

interface Expected extends Identity {
  bucket: string;
  prefix: string;
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
  if (doc.bucket !== expected.bucket || doc.prefix !== expected.prefix) return 'written for another bucket or prefix';
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
  return { synced: doc.synced, snapshot };
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
