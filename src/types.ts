/** One file the sync did not act on, and why. */
export interface SkippedFile {
  /** Workspace-relative POSIX path (or the object key, for keys that are not valid paths). */
  path: string;
  /** Why it was skipped, e.g. `ignored`, `symlink`, `invalid-key: contains a '..' segment`. */
  reason: string;
}

/** One file whose transfer or deletion failed. */
export interface FailedFile {
  path: string;
  /** Error message. */
  error: string;
  /** Machine-readable code: a `SyncError` code (`INTEGRITY`, `ACCESS_DENIED`, `SYMLINK_IN_PATH`…) or an errno (`EACCES`, `ENOSPC`…). */
  code?: string;
}

/** Outcome of `pull()` or `push()`. */
export interface SyncResult {
  /** `true` when no file failed and no error occurred. */
  success: boolean;
  /** Files written to the workspace (pull). */
  downloadedFiles: number;
  /** Objects written to the bucket (push). */
  uploadedFiles: number;
  /** Local files (pull) or objects (push) deleted. */
  deletedFiles: number;
  /** Files left alone, each with a reason. */
  skippedFiles: SkippedFile[];
  /** Files whose transfer or deletion failed. */
  failedFiles: FailedFile[];
  /** Human-readable messages for every failure. */
  errors: string[];
  /** Bytes downloaded or uploaded. */
  bytesTransferred: number;
  /** Wall time in milliseconds. */
  duration: number;
}

/** Payload of the `progress` event. */
export interface SyncProgress {
  /** `download` (pull), `upload` (push), `cleanup` (deletions, either direction). */
  phase: 'download' | 'upload' | 'cleanup';
  /** Files finished in this phase so far (succeeded or failed). */
  current: number;
  /** Files this phase will process, known from the plan. */
  total: number;
  /** `round(current / total * 100)`; 100 when `total` is 0. */
  percentage: number;
  /** The file that just finished, when there is one. */
  currentFile?: string;
  /** Bytes moved so far in this phase. */
  transferredBytes: number;
  /** Bytes this phase will move, known from the plan. */
  totalBytes: number;
}

/** Logger interface; pass pino, winston, console or your own. */
export interface SyncLogger {
  debug(message: string, ...args: unknown[]): void;
  info(message: string, ...args: unknown[]): void;
  warn(message: string, ...args: unknown[]): void;
  error(message: string, ...args: unknown[]): void;
}
