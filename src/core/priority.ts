/**
 * Priority restore: the paths an agent needs first (`.agents/`, `config/`)
 * are downloaded first, and a caller can wait for just those while the rest of
 * the pull goes on. Pure logic; the facade feeds it the plan and each file's
 * outcome.
 */
import { ConfigError, IncompletePathsError } from '../errors.js';
import type { FailedFile } from './model.js';
import { storagePathProblem } from './paths.js';

/**
 * Check and normalise path patterns: workspace-relative POSIX paths; a
 * trailing `/` is optional (`config` and `config/` both mean the file `config`
 * or everything under the directory `config`). @throws {ConfigError}
 */
export function normalizePathPatterns(patterns: unknown, option: string): string[] {
  if (!Array.isArray(patterns)) throw new ConfigError(`\`${option}\` must be an array of workspace-relative paths`);
  return patterns.map((p: unknown) => {
    if (typeof p !== 'string') throw new ConfigError(`\`${option}\` must contain strings (got ${typeof p})`);
    const trimmed = p.endsWith('/') ? p.slice(0, -1) : p;
    const problem = storagePathProblem(trimmed);
    if (problem !== undefined) throw new ConfigError(`\`${option}\` entry ${JSON.stringify(p)} is not a workspace path: ${problem}`);
    return trimmed;
  });
}

/** Whether `path` is `pattern` or lies under it (patterns normalised, without a trailing `/`). */
export function matchesPath(path: string, pattern: string): boolean {
  return path === pattern || (path.length > pattern.length && path.startsWith(pattern) && path[pattern.length] === '/');
}

export function matchesAnyPath(path: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => matchesPath(path, p));
}

/** Items under the first pattern first, then the second's…, then the rest; otherwise in their order. */
export function orderByPriority<T extends { path: string }>(items: readonly T[], patterns: readonly string[]): T[] {
  if (patterns.length === 0) return [...items];
  const rank = (path: string): number => {
    const i = patterns.findIndex((p) => matchesPath(path, p));
    return i === -1 ? patterns.length : i;
  };
  return items
    .map((item, index) => ({ item, index, rank: rank(item.path) }))
    .sort((a, b) => a.rank - b.rank || a.index - b.index)
    .map((x) => x.item);
}

/** What `waitForPaths()` resolves with. */
export interface PathsReady {
  /** The paths waited for, as given (`'.agents/'` stays `'.agents/'`). */
  paths: string[];
  /** Files under them that this pull downloaded. */
  downloaded: number;
  /** Local files under them that this pull deleted (gone from the bucket). */
  deleted: number;
  /** Files under them that were already identical. */
  unchanged: number;
}

interface Waiter {
  patterns: string[];
  /** The paths as the caller gave them (for results and errors). */
  shown: string[];
  /** Planned actions under the patterns not yet settled. */
  remaining: number;
  downloaded: number;
  deleted: number;
  unchanged: number;
  resolve(ready: PathsReady): void;
  reject(error: unknown): void;
}

/**
 * Tracks one pull: which planned actions (downloads and local deletions) are
 * still pending under each set of paths callers wait for. A set is ready when
 * every planned action under it succeeded; it fails as soon as one of them
 * failed, or when the pull ends (or throws) with any of them not done.
 */
export class PathTracker {
  private phase: 'planning' | 'running' | 'ended' = 'planning';
  private wasPlanned = false;
  /** Planned actions not settled yet, by path. */
  private pending = new Map<string, 'download' | 'delete'>();
  private readonly done = new Map<string, 'download' | 'delete'>();
  private readonly failures = new Map<string, FailedFile>();
  private unchangedPaths: string[] = [];
  private ended: unknown;
  private waiters: Waiter[] = [];

  /** The plan is known: these downloads and local deletions will run; `failures` are already known. */
  planned(plan: { downloads: Iterable<string>; deletions: Iterable<string>; unchanged: Iterable<string>; failures?: Iterable<FailedFile> }): void {
    if (this.phase !== 'planning') return;
    this.phase = 'running';
    this.wasPlanned = true;
    for (const p of plan.downloads) this.pending.set(p, 'download');
    for (const p of plan.deletions) this.pending.set(p, 'delete');
    const { unchanged, failures = [] } = plan;
    for (const f of failures) this.failures.set(f.path, f);
    this.unchangedPaths = [...unchanged];
    for (const w of this.waiters) this.count(w);
    this.sweep();
  }

  /** One planned action finished (`failure` set when it failed for good). */
  settled(path: string, failure?: FailedFile): void {
    const kind = this.pending.get(path);
    if (kind === undefined) return;
    this.pending.delete(path);
    if (failure !== undefined) this.failures.set(path, failure);
    else this.done.set(path, kind);
    for (const w of this.waiters) {
      if (!matchesAnyPath(path, w.patterns)) continue;
      w.remaining--;
      if (failure === undefined && kind === 'download') w.downloaded++;
      if (failure === undefined && kind === 'delete') w.deleted++;
    }
    this.sweep();
  }

  /** The pull is over: whatever is still pending will not happen in it. `error` when it threw. */
  end(error?: unknown): void {
    if (this.phase === 'ended') return;
    this.phase = 'ended';
    this.ended = error;
    this.sweep();
  }

  waitFor(patterns: string[], shown: string[] = patterns): Promise<PathsReady> {
    return new Promise<PathsReady>((resolve, reject) => {
      const w: Waiter = { patterns, shown, remaining: 0, downloaded: 0, deleted: 0, unchanged: 0, resolve, reject };
      if (this.phase !== 'planning') this.count(w);
      this.waiters.push(w);
      this.sweep();
    });
  }

  private count(w: Waiter): void {
    const mine = ([p]: [string, unknown]): boolean => matchesAnyPath(p, w.patterns);
    w.remaining = [...this.pending].filter(mine).length;
    const done = [...this.done].filter(mine);
    w.downloaded = done.filter(([, kind]) => kind === 'download').length;
    w.deleted = done.filter(([, kind]) => kind === 'delete').length;
    w.unchanged = this.unchangedPaths.filter((p) => matchesAnyPath(p, w.patterns)).length;
  }

  /** Settle every waiter whose outcome is known. */
  private sweep(): void {
    this.waiters = this.waiters.filter((w) => {
      const failed = [...this.failures.values()].filter((f) => matchesAnyPath(f.path, w.patterns));
      if (failed.length > 0) {
        w.reject(new IncompletePathsError(w.shown, failed));
      } else if (this.phase === 'planning') {
        return true; // outcome not known yet
      } else if (!this.wasPlanned) {
        w.reject(this.ended ?? new IncompletePathsError(w.shown, []));
      } else if (w.remaining === 0) {
        w.resolve({ paths: w.shown, downloaded: w.downloaded, deleted: w.deleted, unchanged: w.unchanged });
      } else if (this.phase === 'ended') {
        const notDone = [...this.pending.keys()]
          .filter((p) => matchesAnyPath(p, w.patterns))
          .map((path) => ({ path, error: 'not synced: the pull ended before it did (a failure elsewhere stops deletions)' }));
        w.reject(this.ended ?? new IncompletePathsError(w.shown, notDone));
      } else {
        return true;
      }
      return false;
    });
  }
}
