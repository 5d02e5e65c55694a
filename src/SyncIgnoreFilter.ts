import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import ignore, { type Ignore } from 'ignore';

/** Name of the ignore file read from the workspace root. */
export const SYNCIGNORE_FILE = '.syncignore';

/** Directory (under the workspace) reserved for the library's own state. */
export const STATE_DIR_NAME = '.s3-workspace-sync';

/** Suffix of the temporary files downloads are written to before the rename. */
export const TEMP_SUFFIX = '.s3ws-tmp';

/**
 * Patterns ignored unless the workspace's `.syncignore` or `ignorePatterns`
 * re-include them with a `!pattern` line (gitignore syntax).
 */
export const DEFAULT_IGNORE_PATTERNS: readonly string[] = Object.freeze([
  // version control and dependencies
  '.git/',
  '.hg/',
  '.svn/',
  'node_modules/',
  '.pnpm-store/',
  // Python
  '__pycache__/',
  '*.pyc',
  '.venv/',
  'venv/',
  '.pytest_cache/',
  '.mypy_cache/',
  // build output
  'dist/',
  'build/',
  // logs and OS / editor litter
  '*.log',
  '.DS_Store',
  'Thumbs.db',
  '.idea/',
  '.vscode/',
  '*.swp',
  // secrets
  '.env',
  '.env.*',
  '!.env.example',
  '*.pem',
  '*.key',
]);

/** Patterns that can never be re-included: the library's own files. */
export const RESERVED_IGNORE_PATTERNS: readonly string[] = Object.freeze([`${STATE_DIR_NAME}/`, `*${TEMP_SUFFIX}`]);

/** Options of {@link SyncIgnoreFilter}. */
export interface SyncIgnoreFilterOptions {
  /** Contents of a `.syncignore` file (gitignore syntax). */
  syncignore?: string | undefined;
  /** Extra gitignore-style patterns, applied after `.syncignore`. */
  patterns?: readonly string[] | undefined;
  /** Include {@link DEFAULT_IGNORE_PATTERNS}. Default `true`. */
  useDefaults?: boolean | undefined;
}

/**
 * Decides which workspace paths are synced. Rules, in order (later rules win,
 * as in gitignore): built-in defaults, the workspace's `.syncignore`, then
 * `ignorePatterns`. The library's own temporary and state files are always
 * ignored. Paths are workspace-relative POSIX paths; a directory is tested with
 * `isDirectory = true` (or a trailing `/`).
 *
 * @example
 * const filter = new SyncIgnoreFilter({ syncignore: 'data/\n!data/keep.csv', patterns: ['*.tmp'] });
 * filter.ignores('node_modules/x/index.js'); // true (default)
 * filter.ignores('src/app.ts');              // false
 */
export class SyncIgnoreFilter {
  private readonly rules: Ignore;
  private readonly reserved: Ignore;

  constructor(options: SyncIgnoreFilterOptions = {}) {
    this.rules = ignore({ allowRelativePaths: false });
    if (options.useDefaults !== false) this.rules.add([...DEFAULT_IGNORE_PATTERNS]);
    if (options.syncignore) this.rules.add(options.syncignore);
    if (options.patterns && options.patterns.length > 0) this.rules.add([...options.patterns]);
    this.reserved = ignore().add([...RESERVED_IGNORE_PATTERNS]);
  }

  /**
   * Build a filter from `<workspaceDir>/.syncignore` (absent is fine) plus
   * extra patterns.
   */
  static async fromWorkspace(workspaceDir: string, patterns: readonly string[] = []): Promise<SyncIgnoreFilter> {
    let syncignore: string | undefined;
    try {
      syncignore = await readFile(join(workspaceDir, SYNCIGNORE_FILE), 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'EISDIR') throw error;
    }
    return new SyncIgnoreFilter({ syncignore, patterns });
  }

  /** Whether `path` is excluded from sync. */
  ignores(path: string, isDirectory = false): boolean {
    const p = isDirectory && !path.endsWith('/') ? `${path}/` : path;
    if (p === '' || p === '/') return false;
    try {
      return this.reserved.ignores(p) || this.rules.ignores(p);
    } catch {
      // `ignore` throws on paths it considers invalid (absolute, `..`); such
      // paths are refused elsewhere, and never synced.
      return true;
    }
  }

  /** A predicate usable with `Array.prototype.filter` (keeps synced paths). */
  createFilter(): (path: string) => boolean {
    return (path) => !this.ignores(path);
  }
}
