/**
 * Exit codes of the command line. Distinct per outcome and stable: scripts
 * and container platforms branch on them (README, "Command line").
 */
export const EXIT = {
  /** Done: every file synced (pull, push), in step (verify), or it ran (plan, status). */
  OK: 0,
  /** Some files failed (the run went on; `failures` says why), or verify found differences. */
  INCOMPLETE: 1,
  /** Usage or configuration: a bad flag, environment variable, config file or option value, a missing peer dependency. Nothing was done. */
  USAGE: 2,
  /** A conflict the conflict policy left unresolved (both sides changed a file); neither side was changed there. */
  CONFLICT: 3,
  /** A guard refused the sync (max deletes, max total bytes, empty remote, conditional writes required) before anything changed. */
  REFUSED: 4,
  /** The command could not run or complete: bucket missing, access denied, credentials, network, timeout, the workspace locked, a local error. */
  ERROR: 5,
  /** Interrupted by SIGINT or SIGTERM: cancelled cleanly (no partial file, state saved); run again to finish. */
  INTERRUPTED: 130,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
