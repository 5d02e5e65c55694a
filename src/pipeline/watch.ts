/**
 * Watch mode: push local changes as they happen. A change source (the tree
 * watcher) reports paths that may have changed; they are batched and pushed
 * with `changedPaths` (a targeted push: its cost grows with the change) after
 * a quiet period of `debounceMs`, and at least every `maxDelayMs` under
 * continuous writes. A full push every `reconcileMs` catches what a watcher
 * can miss. One push at a time: changes that arrive during a push wait for
 * the next one. A push that fails keeps its paths for the next attempt.
 */
import { watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { EventEmitter } from 'eventemitter3';
import { storagePathProblem } from '../core/paths.js';
import { SYNCIGNORE_FILE } from '../core/names.js';
import { ConfigError, SyncError, messageOf } from '../errors.js';
import { TreeWatcher } from '../local/TreeWatcher.js';
import type { SyncCallOptions } from '../options.js';
import { SyncIgnoreFilter } from '../SyncIgnoreFilter.js';
import type { SyncLogger, SyncResult } from '../types.js';

/** What `watch()` takes. */
export interface WatchOptions {
  /** Push once no change was seen for this long (ms). Default 1000. */
  debounceMs?: number | undefined;
  /** Under continuous writes, push at least this often (ms from the first unpushed change). Default 10000. */
  maxDelayMs?: number | undefined;
  /** A full push (every file looked at) this often, to catch changes a watcher missed (ms; 0: never). Default 300000. */
  reconcileMs?: number | undefined;
  /** What runs before watching starts: `'pull'` (default), `'push'` (a full push), or `'none'`. */
  initial?: 'pull' | 'push' | 'none' | undefined;
  /** Options of every push (and of the initial sync): guards, `conflictPolicy`. */
  syncOptions?: Omit<SyncCallOptions, 'signal' | 'dryRun' | 'changedPaths' | 'priority'> | undefined;
}

/** Why a watch push ran. */
export type WatchPushReason = 'quiet' | 'max-delay' | 'reconcile' | 'retry' | 'flush' | 'close';

export interface WatchPushInfo {
  reason: WatchPushReason;
  /** Paths the push was told about, or `'all'` for a full push. */
  paths: number | 'all';
}

/** Events of a {@link SyncWatcher} (eventemitter3, typed). A throwing listener is logged and ignored. */
export interface WatchEvents {
  'push-start': (info: WatchPushInfo) => void;
  /** A push ended with a result (`result.success` says whether everything it looked at is in step). */
  'push-end': (info: WatchPushInfo & { result: SyncResult; durationMs: number }) => void;
  /** A push failed as a whole (bucket unreachable, a guard, the workspace locked…): its changes are tried again. */
  error: (error: unknown, info: WatchPushInfo) => void;
  /** The watcher may miss changes from now on (watch limit reached…): every push is full, and runs at least every `maxDelayMs`. */
  degraded: (reason: { code: string; message: string; path?: string | undefined }) => void;
}

/** The handle `watch()` returns. */
export interface SyncWatcher extends EventEmitter<WatchEvents> {
  /** The initial sync's result (`undefined` with `initial: 'none'`). */
  readonly initial: SyncResult | undefined;
  /** Paths seen changing and not pushed yet (after more than 50,000, the next push is a full one and this counts from 0 again). */
  readonly pendingPaths: number;
  /** Whether the watcher may miss changes (see the `degraded` event). */
  readonly degraded: boolean;
  /**
   * Push what is pending now (waiting for a push already running first).
   * Resolves with that push's result, or `undefined` when nothing was
   * pending. With `{ full: true }`, a full push whatever is pending.
   */
  flush(options?: { full?: boolean }): Promise<SyncResult | undefined>;
  /**
   * Stop watching, then flush (see {@link flush}); later changes are not
   * pushed. Idempotent: a second call returns the first one's promise.
   */
  close(options?: { full?: boolean }): Promise<SyncResult | undefined>;
}

/** What reports changes (through {@link ChangeSourceOptions}): the tree watcher, or a test's fake. */
export interface ChangeSource {
  close(): void;
}

export interface ChangeSourceOptions {
  onChange: (paths: readonly string[]) => void;
  onDegraded: (reason: { code: string; message: string; path?: string | undefined }) => void;
}

/** What a watch session needs from the instance it runs on. */
export interface WatchDeps {
  /** A push through the instance's queue. */
  push(options: SyncCallOptions): Promise<SyncResult>;
  pull(options: SyncCallOptions): Promise<SyncResult>;
  /** Start watching the workspace (again, after the ignore rules changed). */
  watch(options: ChangeSourceOptions): Promise<ChangeSource>;
  logger: SyncLogger;
  /** Called once the session is closed (the instance forgets it). */
  closed(): void;
}

export const DEFAULT_DEBOUNCE_MS = 1000;
export const DEFAULT_MAX_DELAY_MS = 10_000;
export const DEFAULT_RECONCILE_MS = 300_000;
/**
 * More pending paths than this (a huge burst, or pushes failing for a long
 * time while writes go on) are forgotten for one full push: it costs about
 * the same, and memory stays bounded.
 */
export const MAX_PENDING_PATHS = 50_000;
/** A failing push is tried again after 1 s, 2 s, 4 s… at most this long. */
const MAX_RETRY_MS = 60_000;
/** Timers longer than this overflow (Node clamps them to 1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Resolved {
  debounceMs: number;
  maxDelayMs: number;
  reconcileMs: number;
  initial: 'pull' | 'push' | 'none';
  syncOptions: SyncCallOptions;
}

export function resolveWatchOptions(o: WatchOptions = {}): Resolved {
  if (o === null || typeof o !== 'object') throw new ConfigError('watch() takes an options object');
  const known = new Set(['debounceMs', 'maxDelayMs', 'reconcileMs', 'initial', 'syncOptions']);
  for (const key of Object.keys(o)) if (!known.has(key)) throw new ConfigError(`Unknown watch() option "${key}"`);
  const ms = (name: keyof WatchOptions, value: unknown, fallback: number, min: number): number => {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_TIMER_MS) {
      throw new ConfigError(`watch() option "${name}" must be a whole number of milliseconds from ${min} to ${MAX_TIMER_MS} (got ${String(value)})`);
    }
    return value;
  };
  const debounceMs = ms('debounceMs', o.debounceMs, DEFAULT_DEBOUNCE_MS, 0);
  const maxDelayMs = ms('maxDelayMs', o.maxDelayMs, Math.max(DEFAULT_MAX_DELAY_MS, debounceMs), 1);
  if (maxDelayMs < debounceMs) throw new ConfigError(`watch() option "maxDelayMs" (${maxDelayMs}) must not be shorter than "debounceMs" (${debounceMs})`);
  const reconcileMs = ms('reconcileMs', o.reconcileMs, DEFAULT_RECONCILE_MS, 0);
  const initial = o.initial ?? 'pull';
  if (initial !== 'pull' && initial !== 'push' && initial !== 'none') throw new ConfigError(`watch() option "initial" must be 'pull', 'push' or 'none'`);
  const syncOptions = { ...(o.syncOptions ?? {}) } as SyncCallOptions & Record<string, unknown>;
  for (const key of ['signal', 'dryRun', 'changedPaths', 'priority']) {
    if (syncOptions[key] !== undefined) throw new ConfigError(`watch() option "syncOptions" cannot set "${key}"`);
  }
  return { debounceMs, maxDelayMs, reconcileMs, initial, syncOptions };
}

export class WatchSession extends EventEmitter<WatchEvents> implements SyncWatcher {
  initial: SyncResult | undefined;
  private source: ChangeSource | undefined;
  /** Paths seen changing since the last push started. */
  private pending = new Set<string>();
  /** The next push looks at everything (reconciliation, rules changed, a degraded watcher). */
  private full = false;
  private firstChangeAt: number | undefined;
  private lastChangeAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private running: Promise<SyncResult | undefined> | undefined;
  /** Consecutive failed pushes (retry backoff). */
  private failures = 0;
  private retryAt = 0;
  private closing: Promise<SyncResult | undefined> | undefined;
  private stopped = false;
  private isDegraded = false;
  /** The ignore rules changed: the watcher restarts (directories it skipped may now be synced). */
  private restart = false;

  constructor(
    private readonly deps: WatchDeps,
    private readonly o: Resolved,
  ) {
    super();
  }

  get pendingPaths(): number {
    return this.pending.size;
  }

  get degraded(): boolean {
    return this.isDegraded;
  }

  /** Watch first (nothing written during the initial sync is missed), then the initial sync. */
  async start(): Promise<void> {
    try {
      this.source = await this.deps.watch(this.sourceOptions());
      if (this.o.initial === 'pull') this.initial = await this.deps.pull(this.o.syncOptions);
      else if (this.o.initial === 'push') this.initial = await this.deps.push(this.o.syncOptions);
    } catch (error) {
      this.abandon();
      throw error;
    }
    if (this.initial !== undefined && !this.initial.success) {
      this.deps.logger.warn(`Watch: the initial ${this.o.initial} did not complete (${this.initial.failedFiles.length} file(s) failed); watching anyway`);
    }
    this.armReconcile();
    this.schedule();
  }

  flush(options: { full?: boolean } = {}): Promise<SyncResult | undefined> {
    if (this.stopped) return Promise.resolve(undefined);
    return this.flushNow(options.full === true, 'flush');
  }

  close(options: { full?: boolean } = {}): Promise<SyncResult | undefined> {
    this.closing ??= (async () => {
      this.stopSource();
      try {
        return await this.flushNow(options.full === true, 'close');
      } finally {
        this.abandon();
      }
    })();
    return this.closing;
  }

  /** Stop everything without pushing (the instance was destroyed). */
  abandon(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stopSource();
    clearTimeout(this.timer);
    clearInterval(this.reconcileTimer);
    this.deps.closed();
  }

  private sourceOptions(): ChangeSourceOptions {
    return { onChange: (paths) => this.note(paths), onDegraded: (reason) => this.onDegraded(reason) };
  }

  private stopSource(): void {
    const source = this.source;
    this.source = undefined;
    source?.close();
  }

  private note(paths: readonly string[]): void {
    if (this.stopped || paths.length === 0) return;
    for (const path of paths) {
      if (path === SYNCIGNORE_FILE) {
        this.full = true;
        this.restart = true;
      }
      this.pending.add(path);
    }
    if (this.pending.size > MAX_PENDING_PATHS) this.forgetForFullPush();
    const now = Date.now();
    this.lastChangeAt = now;
    this.firstChangeAt ??= now;
    this.schedule();
  }

  private onDegraded(reason: { code: string; message: string; path?: string | undefined }): void {
    const first = !this.isDegraded;
    this.isDegraded = true;
    if (first) {
      this.deps.logger.warn(`Watch: ${reason.message}; pushing the whole workspace at least every ${this.o.maxDelayMs} ms from now on`);
      if (this.reconcileTimer !== undefined) this.armReconcile();
    }
    this.full = true;
    this.lastChangeAt = Date.now();
    this.firstChangeAt ??= this.lastChangeAt;
    this.safeEmit('degraded', reason);
    this.schedule();
  }

  /** Full pushes every `reconcileMs` (every `maxDelayMs` once degraded: the watcher may miss anything). */
  private armReconcile(): void {
    clearInterval(this.reconcileTimer);
    const every = this.isDegraded ? Math.min(this.o.maxDelayMs, this.o.reconcileMs || this.o.maxDelayMs) : this.o.reconcileMs;
    if (every === 0 || this.stopped) return;
    this.reconcileTimer = setInterval(() => {
      this.full = true;
      this.firstChangeAt ??= Date.now();
      this.lastChangeAt = 0;
      this.schedule();
    }, every);
    this.reconcileTimer.unref?.();
  }

  /** (Re)arm the one timer: the quiet period, the max delay, the retry backoff, whichever applies. */
  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped || this.closing !== undefined || this.running !== undefined) return; // a running push reschedules when it ends
    if (this.pending.size === 0 && !this.full) return;
    const first = this.firstChangeAt ?? Date.now();
    const quietAt = this.lastChangeAt + this.o.debounceMs;
    const latest = first + this.o.maxDelayMs;
    let at = Math.min(quietAt, latest);
    let reason: WatchPushReason = quietAt <= latest ? 'quiet' : 'max-delay';
    if (this.failures > 0 && this.retryAt > at) {
      at = this.retryAt;
      reason = 'retry';
    }
    this.timer = setTimeout(() => void this.runPush(reason), Math.min(Math.max(0, at - Date.now()), MAX_TIMER_MS));
  }

  private async flushNow(full: boolean, reason: WatchPushReason): Promise<SyncResult | undefined> {
    await settle(); // let the watcher deliver what was written just before
    while (this.running !== undefined) await this.running.catch(() => undefined);
    if (full) this.full = true;
    if (this.pending.size === 0 && !this.full) return undefined;
    clearTimeout(this.timer);
    return this.runPush(reason, true);
  }

  /** One push of what is pending. `rethrow`: a flush reports a failed push as a rejection. */
  private runPush(reason: WatchPushReason, rethrow = false): Promise<SyncResult | undefined> {
    if (this.running !== undefined) return this.running; // a timer fired during a flush's push
    const run = this.push(reason, rethrow).finally(() => {
      this.running = undefined;
      this.schedule();
    });
    this.running = run;
    return run;
  }

  private async push(reason: WatchPushReason, rethrow: boolean): Promise<SyncResult | undefined> {
    this.timer = undefined;
    const batch = this.pending;
    const full = this.full || this.isDegraded || [...batch].some((p) => storagePathProblem(p) !== undefined);
    this.pending = new Set();
    this.full = false;
    this.firstChangeAt = undefined;
    if (this.restart && !this.stopped && this.closing === undefined) await this.restartSource();
    const info: WatchPushInfo = { reason, paths: full ? 'all' : batch.size };
    this.safeEmit('push-start', info);
    const started = Date.now();
    try {
      const result = await this.deps.push(full ? this.o.syncOptions : { ...this.o.syncOptions, changedPaths: [...batch] });
      this.safeEmit('push-end', { ...info, result, durationMs: Date.now() - started });
      if (result.success) this.failures = 0;
      else this.requeue(batch, full); // the failed paths are tried again (the rest is now unchanged: cheap)
      return result;
    } catch (error) {
      this.requeue(batch, full);
      if (error instanceof SyncError && error.code === 'DESTROYED') this.abandon();
      this.safeEmit('error', error, info);
      if (rethrow) throw error;
      this.deps.logger.warn(`Watch: a push failed (${messageOf(error)}); trying again`);
      return undefined;
    }
  }

  private requeue(batch: Set<string>, full: boolean): void {
    for (const p of batch) this.pending.add(p);
    if (full) this.full = true;
    if (this.pending.size > MAX_PENDING_PATHS) this.forgetForFullPush();
    this.failures++;
    this.retryAt = Date.now() + Math.min(MAX_RETRY_MS, 1000 * 2 ** (this.failures - 1));
    this.firstChangeAt ??= Date.now();
  }

  /** Too many paths to keep: the next push is a full one, which looks at all of them anyway. */
  private forgetForFullPush(): void {
    this.full = true;
    this.pending.clear();
  }

  private async restartSource(): Promise<void> {
    this.restart = false;
    this.stopSource();
    try {
      this.source = await this.deps.watch(this.sourceOptions());
    } catch (error) {
      this.onDegraded({ code: 'WATCH_FAILED', message: `could not watch the workspace again after its ignore rules changed (${messageOf(error)})` });
    }
  }

  private safeEmit<E extends keyof WatchEvents>(event: E, ...args: Parameters<WatchEvents[E]>): void {
    try {
      (this.emit as (e: E, ...a: Parameters<WatchEvents[E]>) => boolean)(event, ...args);
    } catch (error) {
      this.deps.logger.warn(`A watch listener threw: ${messageOf(error)}`);
    }
  }
}

/** Two turns of the event loop: file-system events already queued are delivered. */
async function settle(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Watch the workspace at `root` (its real path) with the tree watcher: one
 * watch per synced directory, with the workspace's ignore rules as they are
 * now (the session restarts it when `.syncignore` changes).
 */
export async function watchWorkspace(root: string, patterns: readonly string[], options: ChangeSourceOptions, git = false): Promise<ChangeSource> {
  const filter = await SyncIgnoreFilter.fromWorkspace(root, patterns);
  const tree = await startTree(root, filter, options);
  if (!git) return tree;
  // git: 'bundle': commits, checkouts and staging rewrite files directly in
  // .git/ (index, HEAD, COMMIT_EDITMSG, packed-refs…), which the tree
  // watcher ignores. A change there is reported as the path `.git`: the
  // push looks at no file (it is ignored) and runs its repository step.
  let gitWatch: FSWatcher | undefined;
  try {
    gitWatch = watch(join(root, '.git'), { persistent: true }, () => options.onChange([GIT_DIR]));
    gitWatch.on('error', () => gitWatch?.close());
  } catch {
    // no .git (yet), or a file (a linked worktree): the periodic full push covers it
  }
  return {
    close() {
      gitWatch?.close();
      tree.close();
    },
  };
}

const GIT_DIR = '.git';

async function startTree(root: string, filter: SyncIgnoreFilter, options: ChangeSourceOptions): Promise<ChangeSource> {
  // the callbacks run inside fs.watch's: an exception there would be uncaught
  const guard =
    <A extends unknown[]>(fn: (...args: A) => void) =>
    (...args: A): void => {
      try {
        fn(...args);
      } catch {
        // the session's own handlers do not throw; nothing to do if one did
      }
    };
  return TreeWatcher.start({ root, ignores: (path) => filter.ignores(path), onChange: guard(options.onChange), onDegraded: guard(options.onDegraded) });
}
