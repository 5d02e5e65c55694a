import { randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { link, mkdir, open, readdir, realpath, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';

import { STATE_DIR_NAME } from '../core/names.js';
import { ConfigError, LocalFileError, WorkspaceLockedError, type WorkspaceLockHolder } from '../errors.js';

/** Name of the lock file in the workspace's `STATE_DIR_NAME` folder. */
export const LOCK_FILE_NAME = 'lock';

/** `format` of a lock file. A later version may add fields, never change the meaning of these. */
const LOCK_FORMAT = 's3-workspace-sync/lock';

/** Default of {@link WorkspaceLockOptions.staleAfterMs}: 60 s. */
export const DEFAULT_LOCK_STALE_AFTER_MS = 60_000;

/** Smallest accepted {@link WorkspaceLockOptions.staleAfterMs}. */
const MIN_STALE_AFTER_MS = 100;

/**
 * How old (mtime) a lock file whose content cannot be parsed must be before it
 * counts as stale: such a file is what a crash between `open('wx')` and the
 * write leaves, but also what a live writer looks like for the microseconds
 * between the two, so it is never taken over at once.
 */
const GARBAGE_GRACE_MS = 2_000;

/** Polling delays while waiting for a held lock: jittered, growing from the first to the last. */
const POLL_MIN_MS = 50;
const POLL_MAX_MS = 500;

/** Bytes read from a lock file; a real one is ~200. A larger file is garbage. */
const MAX_LOCK_BYTES = 4096;

/** Errors of `mkdir`/`open('wx')` that mean "this filesystem does not let us write here". */
const READ_ONLY_CODES: ReadonlySet<string> = new Set(['EROFS', 'EACCES', 'EPERM']);

/** Options of a {@link WorkspaceLock}. */
export interface WorkspaceLockOptions {
  /**
   * How old a lock's heartbeat (the lock file's mtime) must be before the lock
   * counts as abandoned when its holder's pid cannot be checked (another host,
   * another pid namespace) or is alive but no longer heartbeating (a reused
   * pid). The holder refreshes the heartbeat every `staleAfterMs / 4`. The
   * holder writes its value into the lock file and a waiter uses the larger of
   * the two, so processes configured differently do not take over each
   * other's live locks.
   *
   * Default: {@link DEFAULT_LOCK_STALE_AFTER_MS} (60 s). At least 100 ms;
   * a smaller or non-finite value throws a `ConfigError`.
   */
  staleAfterMs?: number;
}

/** Options of {@link WorkspaceLock.acquire}. */
export interface AcquireLockOptions {
  /**
   * How long to wait for a held lock to be released (or to become stale)
   * before rejecting with a `WorkspaceLockedError`. `0` (the default) tries
   * once; `Infinity` waits until the lock is free or `signal` aborts.
   * A negative or NaN value throws a `ConfigError`.
   */
  waitMs?: number;
  /** Aborting it rejects `acquire()` at once with `signal.reason`, and leaves no lock behind. */
  signal?: AbortSignal;
}

/** A held workspace lock. */
export interface LockHandle {
  /** Absolute path of the lock file (under the workspace's real path). */
  readonly lockPath: string;
  /** The random token written into the lock file: what `release()` checks before removing it. */
  readonly token: string;
  /**
   * Aborted (with a `WorkspaceLockedError`) when a heartbeat finds that the
   * lock file is no longer this handle's: another process judged the lock
   * stale and took it over (this process stalled for longer than
   * `staleAfterMs`), or someone deleted it. A sync that holds the lock should
   * stop when it fires. Never aborted by `release()`.
   */
  readonly lost: AbortSignal;
  /**
   * Stop the heartbeat and remove the lock file if it is still this handle's
   * (its token). Best effort: never rejects. Idempotent: later calls return
   * the first call's promise.
   */
  release(): Promise<void>;
}

/** The content of a lock file. */
interface LockContent {
  format: typeof LOCK_FORMAT;
  pid: number;
  host: string;
  startedAt: string;
  token: string;
  /**
   * Where `pid` means something: on Linux the boot id and the pid namespace,
   * on macOS the platform. A waiter checks `pid` only when its own scope is
   * the same (and the host): same hostname alone is not enough (containers on
   * one host with `--network host`, microVMs with a default hostname).
   */
  pidScope?: string;
  /** The holder's `staleAfterMs` (a waiter uses the larger of its own and this). */
  staleAfterMs?: number;
}

/** What a waiter saw of a lock file: enough to judge it, and to recognise the same file after renaming it. */
interface Observed {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  /** The raw bytes read (up to MAX_LOCK_BYTES), or undefined when the file could not be read. */
  raw: Buffer | undefined;
  /** The parsed content, when `raw` is a lock file of this format. */
  content: LockContent | undefined;
}

/**
 * An advisory lock that keeps two processes from syncing one workspace
 * directory at the same time: a file `<workspaceDir>/.s3-workspace-sync/lock`
 * created with `O_CREAT | O_EXCL`, holding the holder's pid, host, start time
 * and a random token.
 *
 * Guarantees and limits:
 * - **Advisory**: only this library (this version or a later one) honours
 *   it. Other tools writing to the workspace are not stopped.
 * - **Per workspace directory**: the lock file lives in the directory itself,
 *   so every path that reaches it (symbolic links, bind mounts, another host's
 *   mount of the same share) meets the same lock. Paths are reported under
 *   the directory's real path. Two processes of one user, or of users who may
 *   both write the state folder, exclude each other.
 * - **One holder at a time**, also within one process: a second
 *   `acquire()` (another instance, another copy of the library) waits like
 *   another process would.
 * - **Stale locks** (a holder that crashed, was SIGKILLed, or whose machine
 *   went away) are taken over without deleting a live lock: a lock whose
 *   holder runs on this machine (same hostname, boot and pid namespace) and
 *   whose pid is not alive is stale at once; any other lock is stale only when
 *   its heartbeat (the file's mtime, refreshed every `staleAfterMs / 4` while
 *   held) is older than `staleAfterMs`; an unreadable lock file only once its
 *   mtime is a few seconds old. Takeover renames the file aside, checks that
 *   what it renamed is the very file judged stale (device, inode, size, mtime,
 *   bytes), and only then removes it: of two processes that take over the same
 *   stale lock, one wins and the other waits.
 * - **Network filesystems** (EFS, NFS, SMB): `O_EXCL` creation and `rename`
 *   are atomic on NFSv3+ and EFS, so exclusion holds across hosts. A holder on
 *   another host is judged by its heartbeat only, which assumes the hosts'
 *   clocks agree to well within `staleAfterMs` (NTP; Lambda and Fargate are
 *   synced), and that the holder's event loop is not blocked for
 *   `staleAfterMs`. A process frozen while holding the lock (a Lambda
 *   environment between invocations) stops heartbeating, and its lock is
 *   taken over after `staleAfterMs`: hold the lock for the duration of a
 *   sync, not across invocations. A holder whose lock was taken over learns it
 *   at its next heartbeat through {@link LockHandle.lost}.
 * - **A crash** leaves the lock file behind: on the same machine the next
 *   process takes it over at once (dead pid); from another host, or after the
 *   machine rebooted into another pid namespace, after `staleAfterMs`. A crash
 *   in the middle of a takeover may leave a `lock.stale-*` file, removed by a
 *   later holder once it has not been touched for `2 × staleAfterMs`.
 * - **Read-only workspaces**: when the state folder cannot be written
 *   (`EROFS`, `EACCES`, `EPERM`), `acquire()` resolves to `undefined`: no
 *   lock, and none needed to keep a second writer from corrupting a workspace
 *   nobody can write. Nothing is logged; the caller decides.
 *
 * @example
 * const lock = await new WorkspaceLock('/mnt/workspace').acquire({ waitMs: 30_000, signal });
 * try {
 *   await syncWith(AbortSignal.any([signal, ...(lock ? [lock.lost] : [])]));
 * } finally {
 *   await lock?.release();
 * }
 */
export class WorkspaceLock {
  private readonly dir: string;
  private readonly staleAfterMs: number;

  /**
   * @param workspaceDir the workspace directory (created, with its state folder, by `acquire()` if missing)
   * @throws ConfigError when `options.staleAfterMs` is not a number >= 100
   */
  constructor(workspaceDir: string, options: WorkspaceLockOptions = {}) {
    const staleAfterMs = options.staleAfterMs ?? DEFAULT_LOCK_STALE_AFTER_MS;
    if (!Number.isFinite(staleAfterMs) || staleAfterMs < MIN_STALE_AFTER_MS) {
      throw new ConfigError(`staleAfterMs must be a finite number >= ${MIN_STALE_AFTER_MS}, got ${String(staleAfterMs)}`);
    }
    this.dir = resolve(workspaceDir);
    this.staleAfterMs = staleAfterMs;
  }

  /**
   * Take the lock, waiting up to `waitMs` for a holder to release it or for
   * its lock to become stale (see the class). Polls with a jittered delay
   * growing from 50 to 500 ms.
   *
   * @returns the held lock; or `undefined` when the workspace's state folder
   *   cannot be written (read-only filesystem, no permission): proceed without one.
   * @throws WorkspaceLockedError when the lock is still held after `waitMs`
   *   (`holder` says by whom)
   * @throws `signal.reason` as soon as `signal` aborts
   * @throws LocalFileError when the filesystem fails otherwise (e.g. `ENOSPC`, `EIO`)
   * @throws ConfigError for a negative or NaN `waitMs`
   */
  async acquire(options: AcquireLockOptions = {}): Promise<LockHandle | undefined> {
    const waitMs = options.waitMs ?? 0;
    if (Number.isNaN(waitMs) || waitMs < 0) throw new ConfigError(`waitMs must be >= 0, got ${String(waitMs)}`);
    const signal = options.signal;
    signal?.throwIfAborted();
    const started = performance.now();

    const stateDir = join(this.dir, STATE_DIR_NAME);
    try {
      await makeStateDir(stateDir);
    } catch (error) {
      if (READ_ONLY_CODES.has(codeOf(error))) return undefined;
      throw localError(error, 'create the state folder');
    }
    signal?.throwIfAborted();
    let realDir: string;
    try {
      realDir = await realpath(this.dir);
    } catch (error) {
      throw localError(error, 'resolve the workspace directory');
    }
    const lockPath = join(realDir, STATE_DIR_NAME, LOCK_FILE_NAME);

    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted();
      const created = await this.tryCreate(lockPath);
      if (created === 'read-only') return undefined;
      if (created !== 'exists') {
        if (signal?.aborted === true) {
          await created.release();
          signal.throwIfAborted();
        }
        await removeLeftovers(join(realDir, STATE_DIR_NAME), 2 * this.staleAfterMs);
        return created;
      }

      const seen = await observe(lockPath);
      if (seen === undefined) continue; // released (or taken over) meanwhile: try again at once
      if (this.isStale(seen)) {
        const outcome = await takeOver(lockPath, seen);
        if (outcome === 'read-only') return undefined;
        // 'kept': someone took over first and the file renamed was their new lock, now back in place
        if (outcome === 'kept') await sleep(POLL_MIN_MS * Math.random(), signal);
        continue; // start again: create, or judge what is there now
      }

      const waited = performance.now() - started;
      if (waited >= waitMs) {
        throw new WorkspaceLockedError(lockPath, holderOf(seen), { waitedMs: waited });
      }
      const delay = Math.min(POLL_MAX_MS, POLL_MIN_MS * 1.5 ** Math.min(attempt, 12)) * (0.5 + Math.random() / 2);
      await sleep(Math.min(delay, waitMs - waited), signal);
    }
  }

  /** Whether an observed lock file is abandoned (see the class for the rules). */
  private isStale(seen: Observed): boolean {
    const ageMs = Date.now() - Number(seen.mtimeNs / 1_000_000n);
    const content = seen.content;
    if (content === undefined) {
      // Unparsable: a crash between create and write (or a writer in between: hence the grace).
      // Unreadable (no permission): judged by its heartbeat alone.
      return seen.raw === undefined ? ageMs > this.staleAfterMs : ageMs > GARBAGE_GRACE_MS;
    }
    if (content.host === hostname() && content.pidScope !== undefined && content.pidScope === PID_SCOPE && !isAlive(content.pid)) return true;
    return ageMs > Math.max(this.staleAfterMs, content.staleAfterMs ?? 0);
  }

  /** Create the lock file; `'exists'` when someone holds it, `'read-only'` when we may not write here. */
  private async tryCreate(lockPath: string): Promise<Handle | 'exists' | 'read-only'> {
    const content: LockContent = {
      format: LOCK_FORMAT,
      pid: process.pid,
      host: hostname(),
      startedAt: new Date().toISOString(),
      token: randomBytes(16).toString('hex'),
      ...(PID_SCOPE === undefined ? {} : { pidScope: PID_SCOPE }),
      staleAfterMs: this.staleAfterMs,
    };
    let fh: FileHandle;
    try {
      fh = await open(lockPath, 'wx', 0o644);
    } catch (error) {
      const code = codeOf(error);
      if (code === 'EEXIST') return 'exists';
      if (READ_ONLY_CODES.has(code)) return 'read-only';
      if (code === 'ENOENT') {
        // the folder went away meanwhile (a sync that made it for its lock alone removes it on release): make it again
        try {
          await makeStateDir(dirname(lockPath));
        } catch (mkdirError) {
          if (READ_ONLY_CODES.has(codeOf(mkdirError))) return 'read-only';
          throw localError(mkdirError, 'create the state folder');
        }
        return 'exists'; // the caller looks again (nothing there) and retries at once
      }
      throw localError(error, 'create the lock file');
    }
    let id: { dev: bigint; ino: bigint } | undefined;
    try {
      const st = await fh.stat({ bigint: true });
      id = { dev: st.dev, ino: st.ino };
      await fh.writeFile(`${JSON.stringify(content)}\n`);
      await fh.sync();
    } catch (error) {
      await fh.close().catch(() => undefined);
      // ours, half written (ENOSPC, EIO): remove it, unless someone already took it over
      if (id !== undefined && (await isAt(lockPath, id))) await unlink(lockPath).catch(() => undefined);
      throw localError(error, 'write the lock file');
    }
    if (!(await stillHeld(lockPath, fh, id))) {
      await fh.close().catch(() => undefined);
      return 'exists';
    }
    return new Handle(lockPath, content.token, fh, id, this.staleAfterMs);
  }
}

/** A held lock: the open lock file, its heartbeat, and its release. */
class Handle implements LockHandle {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private beating = false;
  private released: Promise<void> | undefined;

  constructor(
    readonly lockPath: string,
    readonly token: string,
    private readonly fh: FileHandle,
    private readonly id: { dev: bigint; ino: bigint },
    staleAfterMs: number,
  ) {
    this.timer = setInterval(() => void this.beat(), Math.max(1, Math.floor(staleAfterMs / 4)));
    this.timer.unref();
  }

  get lost(): AbortSignal {
    return this.controller.signal;
  }

  release(): Promise<void> {
    this.released ??= this.doRelease();
    return this.released;
  }

  private async doRelease(): Promise<void> {
    clearInterval(this.timer);
    try {
      await this.fh.close();
    } catch {
      // already closed by a failed heartbeat, or an I/O error: nothing to keep
    }
    try {
      const seen = await observe(this.lockPath);
      if (seen?.content?.token === this.token && seen.dev === this.id.dev && seen.ino === this.id.ino) await unlink(this.lockPath);
    } catch {
      // best effort: a lock left behind is stale at once for the next process on this machine
    }
  }

  /** Refresh our file's mtime (wherever it is now), then check it is still the lock file. */
  private async beat(): Promise<void> {
    if (this.beating || this.released !== undefined || this.controller.signal.aborted) return;
    this.beating = true;
    try {
      const now = new Date();
      await this.fh.utimes(now, now);
      if (this.released === undefined && !(await isAt(this.lockPath, this.id))) {
        clearInterval(this.timer);
        const seen = await observe(this.lockPath).catch(() => undefined);
        const holder = seen === undefined ? { pid: undefined, host: undefined, startedAt: undefined } : holderOf(seen);
        this.controller.abort(
          new WorkspaceLockedError(this.lockPath, holder, {
            message: `This process no longer holds the workspace lock ${this.lockPath}: it was taken over or removed`,
          }),
        );
      }
    } catch {
      // a transient I/O error: the next beat tries again
    } finally {
      this.beating = false;
    }
  }
}

/**
 * Take over a lock judged stale: rename it aside (only one rename of a given
 * file succeeds), check that what was renamed is the file judged stale, and
 * remove it. If it is not (someone took over first and created a fresh lock
 * between our look and our rename), put it back without replacing anything.
 */
async function takeOver(lockPath: string, judged: Observed): Promise<'removed' | 'gone' | 'kept' | 'read-only'> {
  const aside = `${lockPath}.stale-${randomBytes(8).toString('hex')}`;
  try {
    await rename(lockPath, aside);
  } catch (error) {
    const code = codeOf(error);
    if (code === 'ENOENT') return 'gone'; // someone else renamed it (or it was released)
    if (READ_ONLY_CODES.has(code)) return 'read-only'; // a stale lock on a filesystem we cannot write
    throw localError(error, 'take over a stale lock file');
  }
  const moved = await observe(aside);
  if (moved !== undefined && sameFile(moved, judged)) {
    await unlink(aside).catch(() => undefined);
    return 'removed';
  }
  if (moved === undefined) return 'gone'; // removed meanwhile by a leftover cleanup: it was stale
  // Not the file we judged: a live lock. Back to its name, unless a new lock took the name meanwhile
  // (then its holder finds out at its next heartbeat, and the file stays aside, untouched).
  try {
    await link(aside, lockPath);
    await unlink(aside).catch(() => undefined);
  } catch (error) {
    if (codeOf(error) === 'EEXIST') return 'kept';
    // no hard links here (some network or FUSE filesystems): rename back, if the name is still free
    if (!(await exists(lockPath))) await rename(aside, lockPath).catch(() => undefined);
  }
  return 'kept';
}

/** Read a lock file: its identity, mtime and content; undefined when it does not exist. */
async function observe(path: string): Promise<Observed | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (error) {
    const code = codeOf(error);
    if (code === 'ENOENT') return undefined;
    if (code !== 'EACCES' && code !== 'EPERM') throw localError(error, 'read the lock file');
    try {
      const st = await stat(path, { bigint: true });
      return { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, raw: undefined, content: undefined };
    } catch (statError) {
      if (codeOf(statError) === 'ENOENT') return undefined;
      throw localError(statError, 'read the lock file');
    }
  }
  try {
    const st = await fh.stat({ bigint: true });
    const buffer = Buffer.alloc(MAX_LOCK_BYTES + 1);
    const { bytesRead } = await fh.read(buffer, 0, buffer.length, 0);
    const raw = buffer.subarray(0, bytesRead);
    return { dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs, raw, content: bytesRead > MAX_LOCK_BYTES ? undefined : parse(raw) };
  } catch (error) {
    throw localError(error, 'read the lock file');
  } finally {
    await fh.close().catch(() => undefined);
  }
}

function parse(raw: Buffer): LockContent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (
    v.format !== LOCK_FORMAT ||
    typeof v.pid !== 'number' ||
    !Number.isSafeInteger(v.pid) ||
    v.pid <= 0 || // never 0 or negative: process.kill() would signal a process group
    typeof v.host !== 'string' ||
    typeof v.startedAt !== 'string' ||
    typeof v.token !== 'string' ||
    v.token === ''
  ) {
    return undefined;
  }
  return {
    format: LOCK_FORMAT,
    pid: v.pid,
    host: v.host,
    startedAt: v.startedAt,
    token: v.token,
    ...(typeof v.pidScope === 'string' ? { pidScope: v.pidScope } : {}),
    ...(typeof v.staleAfterMs === 'number' && Number.isFinite(v.staleAfterMs) ? { staleAfterMs: v.staleAfterMs } : {}),
  };
}

/** Same file, untouched since it was judged: same device, inode, size, mtime and bytes. */
function sameFile(a: Observed, b: Observed): boolean {
  if (a.dev !== b.dev || a.ino !== b.ino || a.size !== b.size || a.mtimeNs !== b.mtimeNs) return false;
  if (a.raw === undefined || b.raw === undefined) return a.raw === b.raw;
  return a.raw.equals(b.raw);
}

function holderOf(seen: Observed): WorkspaceLockHolder {
  const c = seen.content;
  if (c !== undefined) return { pid: c.pid, host: c.host, startedAt: c.startedAt };
  // a garbage file may still say something
  let v: Record<string, unknown> = {};
  try {
    const parsed: unknown = seen.raw === undefined ? undefined : JSON.parse(seen.raw.toString('utf8'));
    if (typeof parsed === 'object' && parsed !== null) v = parsed as Record<string, unknown>;
  } catch {
    // nothing to say
  }
  return {
    pid: typeof v.pid === 'number' ? v.pid : undefined,
    host: typeof v.host === 'string' ? v.host : undefined,
    startedAt: typeof v.startedAt === 'string' ? v.startedAt : undefined,
  };
}

/** `process.kill(pid, 0)`: false only when no such process exists (ESRCH); EPERM means it exists. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return codeOf(error) !== 'ESRCH';
  }
}

/**
 * Where a pid identifies one process: on Linux the boot id and the pid
 * namespace (containers have their own; a restarted container or another
 * microVM with the same hostname does not share it); on macOS the machine.
 * Undefined when it cannot be known: then no pid is ever checked, and locks
 * are judged by their heartbeat only.
 */
const PID_SCOPE: string | undefined = (() => {
  if (process.platform === 'darwin') return 'darwin';
  if (process.platform !== 'linux') return undefined;
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const ns = readlinkSync('/proc/self/ns/pid');
    return boot !== '' && ns !== '' ? `linux:${boot}:${ns}` : undefined;
  } catch {
    return undefined;
  }
})();

/**
 * After writing a new lock file: whether it is still the lock. Between the
 * create and the write it was garbage, so a process that stalled for the
 * garbage grace may have lost it to a takeover (then the file is unlinked:
 * nlink 0). It may also be renamed aside for a moment by a process that
 * judged the lock before us and is about to put it back (see takeOver): wait
 * for that, briefly.
 */
async function stillHeld(lockPath: string, fh: FileHandle, id: { dev: bigint; ino: bigint }): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    if (await isAt(lockPath, id)) return true;
    if ((await fh.stat({ bigint: true })).nlink === 0n) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return false; // displaced for 200 ms: left aside (a later holder removes it), not ours any more
}

/** Whether `path` is (still) the file `id`. */
async function isAt(path: string, id: { dev: bigint; ino: bigint }): Promise<boolean> {
  try {
    const st = await stat(path, { bigint: true });
    return st.dev === id.dev && st.ino === id.ino;
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Remove `lock.stale-*` files nobody has touched for `olderThanMs` (a crash in the middle of a takeover). */
async function removeLeftovers(stateDir: string, olderThanMs: number): Promise<void> {
  try {
    for (const name of await readdir(stateDir)) {
      if (!name.startsWith(`${LOCK_FILE_NAME}.stale-`)) continue;
      const path = join(stateDir, name);
      const st = await stat(path).catch(() => undefined);
      if (st !== undefined && Date.now() - st.mtimeMs > olderThanMs) await unlink(path).catch(() => undefined);
    }
  } catch {
    // best effort
  }
}

/** Wait `ms`; rejects with `signal.reason` as soon as it aborts. */
/**
 * Make the state folder. Another sync of this workspace removes it when it
 * releases a lock that was all it held, so `mkdir` can meet it half-way
 * (EEXIST, then gone before its check: ENOENT): make it again.
 */
async function makeStateDir(dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      return;
    } catch (error) {
      if (codeOf(error) !== 'ENOENT' || attempt >= 20) throw error;
    }
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolvePromise();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function codeOf(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'EIO';
}

function localError(error: unknown, what: string): LocalFileError {
  const code = codeOf(error);
  return new LocalFileError(code, `${STATE_DIR_NAME}/${LOCK_FILE_NAME}`, `Could not ${what} (${code})`, { cause: error });
}
