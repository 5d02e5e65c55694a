import type { SyncProgress } from './types.js';

/**
 * Events emitted by `S3WorkspaceSync` (eventemitter3, typed). A listener that
 * throws is logged and ignored: it never breaks a sync.
 */
export interface SyncEvents {
  /**
   * Progress of the current phase, as files finish and as bytes move (a large
   * file's progress moves while it transfers); throttled to one event per
   * 100 ms, plus the first and last of each phase. Every sync starts with
   * `plan` events (the last one at 100% once the plan is known); every pull
   * then ends with a `download` event and every push with an `upload` event
   * at 100% (with `total: 0` when there was nothing to transfer); `cleanup`
   * events appear only when something is deleted.
   */
  progress: (progress: SyncProgress) => void;
}

/** Minimum interval between two `progress` events of one phase, in ms. */
export const PROGRESS_INTERVAL_MS = 100;

/** Counts one phase's progress and emits throttled `progress` events. */
export class ProgressTracker {
  private current = 0;
  private bytes = 0;
  private lastEmit = 0;

  constructor(
    private readonly phase: SyncProgress['phase'],
    private readonly total: number,
    private readonly totalBytes: number,
    private readonly emit: (p: SyncProgress) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Per file in flight: its bytes moved so far and its size (for byte events). */
  private readonly inFlight = new Map<string, { bytes: number; size: number }>();

  /**
   * Bytes moved (negative: a failed attempt's bytes given back), without
   * finishing a file; emits when the interval has passed, naming the file the
   * bytes belong to and its own progress when `file` is given.
   */
  addBytes(n: number, file?: { path: string; size: number }): void {
    this.bytes += n;
    let mine: { bytes: number; size: number } | undefined;
    if (file !== undefined) {
      mine = this.inFlight.get(file.path) ?? { bytes: 0, size: file.size };
      mine.bytes = Math.max(0, mine.bytes + n);
      this.inFlight.set(file.path, mine);
    }
    if (n <= 0) return;
    const t = this.now();
    if (t - this.lastEmit >= PROGRESS_INTERVAL_MS) {
      this.lastEmit = t;
      this.send(file?.path, mine);
    }
  }


  /** One file of this phase finished (succeeded or failed). */
  fileDone(path: string): void {
    this.inFlight.delete(path);
    this.current++;
    const t = this.now();
    if (this.current === this.total || this.current === 1 || t - this.lastEmit >= PROGRESS_INTERVAL_MS) {
      this.lastEmit = t;
      this.send(path);
    }
  }

  /** Emit the final state of a phase that had nothing to do, so every sync ends with an event. */
  finishEmpty(): void {
    if (this.total === 0) this.send(undefined);
  }

  private send(path: string | undefined, file?: { bytes: number; size: number }): void {
    const progress: SyncProgress = {
      phase: this.phase,
      current: this.current,
      total: this.total,
      percentage: this.total === 0 ? 100 : Math.round((this.current / this.total) * 100),
      transferredBytes: this.bytes,
      totalBytes: this.totalBytes,
    };
    if (path !== undefined) progress.currentFile = path;
    if (file !== undefined) {
      progress.currentFileBytes = file.bytes;
      progress.currentFileSize = file.size;
    }
    this.emit(progress);
  }
}

/**
 * The `plan` phase's progress: throttled events while files are hashed
 * (files and bytes), and one at 100% when the plan is known.
 */
export class PlanningProgress {
  private tracker: ProgressTracker;

  constructor(private readonly emit: (p: SyncProgress) => void) {
    this.tracker = new ProgressTracker('plan', 0, 0, emit);
  }

  /** Hashing starts: these are the sizes of the files to read. */
  hashing(sizes: number[]): void {
    if (sizes.length === 0) return;
    this.tracker = new ProgressTracker('plan', sizes.length, sizes.reduce((a, b) => a + b, 0), this.emit);
  }

  hashed(path: string, bytes: number): void {
    this.tracker.addBytes(bytes);
    this.tracker.fileDone(path);
  }

  /** The plan is known (an event at 100%, unless hashing just sent it). */
  done(): void {
    this.tracker.finishEmpty();
  }
}
