/**
 * Running `git`: one place that spawns it (execFile, no shell, arguments as an
 * array), with a timeout, an AbortSignal, a clean environment and errors
 * mapped to {@link GitError}.
 */
import { execFile } from 'node:child_process';

import { redactSecrets } from '../errors.js';
import { GitError } from './GitError.js';

/** Options every function of `src/git/` takes. */
export interface GitOptions {
  /**
   * The `git` executable: a name looked up on `PATH`, or a path.
   * Default: `'git'`.
   */
  git?: string | undefined;
  /** Stops the running `git` command (SIGTERM) and rejects with `GIT_ABORTED`. */
  signal?: AbortSignal | undefined;
  /**
   * Longest time one `git` command may run before it is killed (`GIT_TIMEOUT`).
   * Default: 30 s for queries, 10 min for commands that read or write a whole
   * pack (bundle create, fetch from a bundle, index refresh).
   */
  timeoutMs?: number | undefined;
}

/** Default timeout of a query (`rev-parse`, `for-each-ref`, `ls-files`…). */
export const QUERY_TIMEOUT_MS = 30_000;
/** Default timeout of a command that packs or indexes the whole history. */
export const HEAVY_TIMEOUT_MS = 600_000;

/** Largest output kept from one command (ls-files of ~1M paths fits). */
const MAX_OUTPUT = 512 * 1024 * 1024;
/** Stderr kept in an error's details and message. */
const STDERR_SHOWN = 2_000;

/**
 * Variables that would make `git` act on another repository, index or object
 * store than the one named on its command line (set when the library runs
 * inside a git hook, say). Every command here names its repository with
 * `--git-dir` and never relies on discovery.
 */
const LOCATING_VARIABLES = [
  'GIT_DIR',
  'GIT_WORK_TREE',
  'GIT_INDEX_FILE',
  'GIT_OBJECT_DIRECTORY',
  'GIT_ALTERNATE_OBJECT_DIRECTORIES',
  'GIT_COMMON_DIR',
  'GIT_NAMESPACE',
  'GIT_PREFIX',
  'GIT_QUARANTINE_PATH',
  'GIT_SHALLOW_FILE',
  'GIT_GRAFT_FILE',
  'GIT_REPLACE_REF_BASE',
  'GIT_CONFIG',
  'GIT_CONFIG_PARAMETERS',
  'GIT_CONFIG_COUNT',
  'GIT_INTERNAL_SUPER_PREFIX',
  'GIT_TRACE',
  'GIT_TRACE2',
  'GIT_TRACE2_EVENT',
  'GIT_TRACE2_PERF',
];

/**
 * Settings given to every command: no automatic gc or maintenance after a
 * fetch, no hooks (a restore writes the user's hooks last, but a template's
 * or a global `core.hooksPath` must not run either), no pager, no fsmonitor.
 */
const FIXED_CONFIG = [
  '-c',
  'gc.auto=0',
  '-c',
  'maintenance.auto=false',
  '-c',
  'core.hooksPath=/dev/null',
  '-c',
  'core.fsmonitor=false',
  '-c',
  'core.pager=cat',
  '-c',
  'advice.detachedHead=false',
];

/** The environment of a `git` command: the process's, minus what relocates git, plus `extra`. */
export function gitEnvironment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of LOCATING_VARIABLES) delete env[name];
  for (const name of Object.keys(env)) if (/^GIT_CONFIG_(?:KEY|VALUE)_\d+$/.test(name)) delete env[name];
  return {
    ...env,
    GIT_TERMINAL_PROMPT: '0',
    // Queries on the user's repository never write its index (no opportunistic refresh).
    GIT_OPTIONAL_LOCKS: '0',
    // Bundles carry the real objects, not replacements.
    GIT_NO_REPLACE_OBJECTS: '1',
    LC_ALL: 'C',
    ...extra,
  };
}

/** Options of one {@link runGit} call. */
export interface RunOptions extends GitOptions {
  cwd?: string | undefined;
  /** Written to the command's stdin, which is then closed. */
  input?: string | Buffer | undefined;
  /** Added to the environment (GIT_INDEX_FILE for a copy of an index, identities…). */
  env?: Record<string, string> | undefined;
  /** Exit codes that are answers, not failures (`rev-parse -q --verify` exits 1 for "no such ref"). */
  okExitCodes?: readonly number[] | undefined;
  /** Default timeout for this command when the caller gave none. */
  defaultTimeoutMs?: number | undefined;
}

/** What a command printed, and its exit code (0, or one of `okExitCodes`). */
export interface RunResult {
  stdout: Buffer;
  stderr: string;
  exitCode: number;
}

/**
 * Run `git <args>` with no shell. Rejects with a {@link GitError}:
 * `GIT_UNAVAILABLE` when the binary cannot be started, `GIT_TIMEOUT`,
 * `GIT_ABORTED`, or `GIT_FAILED` with the exit code and stderr.
 */
export function runGit(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const git = options.git ?? 'git';
  const timeout = options.timeoutMs ?? options.defaultTimeoutMs ?? QUERY_TIMEOUT_MS;
  const signal = options.signal;
  const fullArgs = [...FIXED_CONFIG, ...args];
  if (signal?.aborted) return Promise.reject(abortedError(args, signal));
  return new Promise<RunResult>((resolve, reject) => {
    const child = execFile(
      git,
      fullArgs,
      {
        cwd: options.cwd,
        env: gitEnvironment(options.env),
        encoding: 'buffer',
        maxBuffer: MAX_OUTPUT,
        timeout,
        killSignal: 'SIGTERM',
        windowsHide: true,
        ...(signal ? { signal } : {}),
      },
      (error, stdout, stderrBuffer) => {
        const stderr = stderrBuffer.toString('utf8');
        if (!error) {
          resolve({ stdout, stderr, exitCode: 0 });
          return;
        }
        const failure = error as NodeJS.ErrnoException & { code?: unknown; killed?: boolean; signal?: string | null };
        if (signal?.aborted || failure.name === 'AbortError') {
          reject(abortedError(args, signal));
          return;
        }
        if (typeof failure.code === 'string' && (failure.code === 'ENOENT' || failure.code === 'EACCES' || failure.code === 'ENOTDIR')) {
          reject(
            new GitError('GIT_UNAVAILABLE', `git is not available (${failure.code} running ${git}): install git or set the git binary path`, {
              cause: error,
              details: { git, errno: failure.code },
            }),
          );
          return;
        }
        if (failure.killed === true && failure.signal === 'SIGTERM') {
          reject(
            new GitError('GIT_TIMEOUT', `git ${describe(args)} did not finish within ${timeout} ms and was stopped`, {
              details: { args: describe(args), timeoutMs: timeout },
            }),
          );
          return;
        }
        const exitCode = typeof failure.code === 'number' ? failure.code : -1;
        if (options.okExitCodes?.includes(exitCode) === true) {
          resolve({ stdout, stderr, exitCode });
          return;
        }
        reject(gitFailed(args, exitCode, stderr, failure.signal ?? undefined));
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
    // An EPIPE on stdin (git exited before reading it) is reported by the exit callback.
    child.stdin?.on('error', () => undefined);
  });
}

/** The first `git` word of a command line, for messages (never file contents). */
function describe(args: readonly string[]): string {
  return args
    .filter((a) => !a.startsWith('--git-dir=') && !a.startsWith('--work-tree='))
    .slice(0, 4)
    .join(' ');
}

function gitFailed(args: readonly string[], exitCode: number, stderr: string, signal: string | undefined): GitError {
  const shown = redactSecrets(stderr.trim()).slice(0, STDERR_SHOWN);
  const how = signal ? `was killed by ${signal}` : `exited with ${exitCode}`;
  return new GitError('GIT_FAILED', `git ${describe(args)} ${how}${shown ? `: ${shown}` : ''}`, {
    details: { args: describe(args), exitCode, ...(signal ? { signal } : {}), stderr: shown },
  });
}

/** Throw `GIT_ABORTED` when `signal` has fired (between steps of an operation). */
export function checkAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted === true) throw abortedError([what], signal);
}

function abortedError(args: readonly string[], signal: AbortSignal | undefined): GitError {
  return new GitError('GIT_ABORTED', `git ${describe(args)} was aborted`, {
    ...(signal?.reason === undefined ? {} : { cause: signal.reason }),
    details: { args: describe(args) },
  });
}

const versions = new Map<string, Promise<string | undefined>>();

/**
 * The version of `git` (`'2.39.5'`), or `undefined` when it cannot be run.
 * Cached per binary for the life of the process (a failed probe too: install
 * git and restart). Never throws.
 *
 * @example
 * if ((await gitAvailable()) === undefined) logger.warn('git is not installed: the repository is not bundled');
 */
export function gitAvailable(options: Pick<GitOptions, 'git'> = {}): Promise<string | undefined> {
  const git = options.git ?? 'git';
  let probe = versions.get(git);
  if (probe === undefined) {
    probe = runGit(['--version'], { git, timeoutMs: 10_000 }).then(
      ({ stdout }) => /git version (\S+)/.exec(stdout.toString('utf8'))?.[1] ?? stdout.toString('utf8').trim(),
      () => undefined,
    );
    versions.set(git, probe);
  }
  return probe;
}

/**
 * The version of git, or a `GIT_UNAVAILABLE` {@link GitError}: the first call
 * of every operation, so "git missing" is one clear error.
 */
export async function requireGit(options: GitOptions): Promise<string> {
  const version = await gitAvailable(options);
  if (version === undefined) {
    const git = options.git ?? 'git';
    throw new GitError('GIT_UNAVAILABLE', `git is not available (could not run "${git} --version"): install git, or the repository is not bundled/restored`, {
      details: { git },
    });
  }
  return version;
}
