import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { STATE_DIR_NAME, SYNCIGNORE_FILE, TEMP_SUFFIX } from './core/names.js';

export { STATE_DIR_NAME, SYNCIGNORE_FILE, TEMP_SUFFIX };

/**
 * Patterns ignored unless the workspace's `.syncignore` or `ignorePatterns`
 * re-include them with a `!pattern` line (gitignore syntax; later rules win).
 *
 * **Credentials are ignored by default**, so a plain `push()` of a workspace
 * that holds a home directory or a project's tool configuration uploads no
 * keys or tokens. A pattern without a `/` matches that name at any depth.
 * Every pattern below written with a directory (`.aws/credentials`) is
 * written in the array with a leading `**` and `/`, so it matches at any
 * depth too (`home/.aws/credentials`). Files are excluded, not their
 * directories, wherever the rest of the directory is worth syncing (`.ssh/`,
 * `.aws/`, `.docker/`, `.kube/`, `.azure/`, `.config/` stay in): gitignore
 * cannot re-include a file inside an excluded directory.
 *
 * What is matched, and why:
 *
 * SSH private keys (keys):
 * - `id_rsa`, `id_dsa`, `id_ecdsa`, `id_ecdsa_sk`, `id_ed25519`,
 *   `id_ed25519_sk`, `id_xmss`: the names ssh-keygen gives private keys,
 *   exact names at any depth. Not `id_*` everywhere: that would swallow
 *   ordinary source files (`id_utils.py`, `id_map.json`, `id_generator.ts`).
 * - `.ssh/id_*` followed by `!.ssh/id_*.pub`: inside a `.ssh/` directory,
 *   every `id_*` file except public keys (custom names such as
 *   `.ssh/id_github`, backups such as `.ssh/id_rsa.old`). `.ssh/known_hosts`,
 *   `.ssh/config`, `.ssh/authorized_keys` and every `*.pub` stay synced. A
 *   private key named otherwise (`.ssh/deploy_key`) is not recognised: add
 *   it to `.syncignore`.
 * - `*.ppk` (keys: PuTTY), besides the older `*.pem` and `*.key`.
 *
 * Key stores: `*.p12`, `*.pfx` (keys: PKCS#12 holds the private key).
 *
 * Cloud CLIs:
 * - AWS: `.aws/credentials` (keys), `.aws/config` (keys), `.aws/sso/cache/`
 *   and `.aws/cli/cache/` (tokens).
 * - Google: `credentials.json` (secret: OAuth client), `service-account*.json`
 *   and `service_account*.json` (keys), `application_default_credentials.json`
 *   (tokens; gcloud writes it under `.config/gcloud/`), `gcloud/credentials.db`,
 *   `gcloud/access_tokens.db` and `gcloud/legacy_credentials/` (tokens; in
 *   `~/.config/gcloud/` or `%APPDATA%/gcloud/`).
 * - Azure: `.azure/accessTokens.json` and `.azure/msal_token_cache.*`
 *   (tokens), `.azure/service_principal_entries.json` (secrets).
 * - `.boto` (keys: gsutil, boto), `.s3cfg` (keys: s3cmd).
 *
 * Registries and package managers: `.npmrc` (tokens), `.pypirc` (passwords),
 * `.docker/config.json` (auths), `.cargo/credentials` and
 * `.cargo/credentials.toml` (tokens), `.gem/credentials` (keys).
 *
 * Git, HTTP, databases: `.netrc` and `_netrc` (passwords), `.git-credentials`
 * (tokens), `.config/gh/hosts.yml` (tokens: GitHub CLI), `.pgpass`
 * (passwords), `.my.cnf` (passwords), `.htpasswd` (hashes).
 *
 * Infrastructure: `.kube/config` (certificates, tokens), `.terraformrc` and
 * `terraform.rc` (tokens), `.terraform.d/credentials.tfrc.json` (tokens:
 * `terraform login`), `.vault-token` (token), `.gnupg/private-keys-v1.d/` and
 * `.gnupg/secring.gpg` (keys).
 *
 * Every one of them can be re-included with a `!` line in `.syncignore` or
 * `ignorePatterns`: the same pattern (`!.npmrc`) or the path
 * (`!.ssh/id_rsa`). A path two patterns match (`.ssh/id_rsa` is matched by
 * `id_rsa` and by `.ssh/id_*`) is re-included by its path. A directory
 * pattern (`.aws/sso/cache/`) is re-included as a directory
 * (`!.aws/sso/cache/`), never file by file.
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
  // credentials: SSH private keys (ssh-keygen's names anywhere; id_* inside .ssh/ except *.pub)
  'id_rsa',
  'id_dsa',
  'id_ecdsa',
  'id_ecdsa_sk',
  'id_ed25519',
  'id_ed25519_sk',
  'id_xmss',
  '**/.ssh/id_*',
  '!**/.ssh/id_*.pub',
  '*.ppk',
  // credentials: key stores
  '*.p12',
  '*.pfx',
  // credentials: cloud CLIs
  '**/.aws/credentials',
  '**/.aws/config',
  '**/.aws/sso/cache/',
  '**/.aws/cli/cache/',
  'credentials.json',
  'service-account*.json',
  'service_account*.json',
  'application_default_credentials.json',
  '**/gcloud/credentials.db',
  '**/gcloud/access_tokens.db',
  '**/gcloud/legacy_credentials/',
  '**/.azure/accessTokens.json',
  '**/.azure/msal_token_cache.*',
  '**/.azure/service_principal_entries.json',
  '.boto',
  '.s3cfg',
  // credentials: registries and package managers
  '.npmrc',
  '.pypirc',
  '**/.docker/config.json',
  '**/.cargo/credentials',
  '**/.cargo/credentials.toml',
  '**/.gem/credentials',
  // credentials: git, HTTP, databases
  '.netrc',
  '_netrc',
  '.git-credentials',
  '**/.config/gh/hosts.yml',
  '.pgpass',
  '.my.cnf',
  '.htpasswd',
  // credentials: infrastructure tools
  '**/.kube/config',
  '.terraformrc',
  'terraform.rc',
  '**/.terraform.d/credentials.tfrc.json',
  '.vault-token',
  '**/.gnupg/private-keys-v1.d/',
  '**/.gnupg/secring.gpg',
]);

/** Patterns that can never be re-included: the library's own files. */
export const RESERVED_IGNORE_PATTERNS: readonly string[] = Object.freeze([`${STATE_DIR_NAME}/`, `*${TEMP_SUFFIX}`]);

/**
 * {@link RESERVED_IGNORE_PATTERNS} as two expressions, with the `ignore`
 * package's meaning (a directory `.s3-workspace-sync/` at any depth, any path
 * segment ending in `.s3ws-tmp`, case-insensitive); tested against the
 * package on every combination of the names involved. Not an `ignore`
 * instance: that caches a result per path tested (some 10 MB at 100,000
 * files) and costs a rule walk per path.
 */
const RESERVED_DIR = new RegExp(`(?:^|/)${escapeRegExp(STATE_DIR_NAME)}/`, 'i');
const RESERVED_TEMP = new RegExp(`${escapeRegExp(TEMP_SUFFIX)}(?:/|$)`, 'i');

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function isReserved(path: string): boolean {
  return RESERVED_DIR.test(path) || RESERVED_TEMP.test(path);
}

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

  constructor(options: SyncIgnoreFilterOptions = {}) {
    this.rules = ignore({ allowRelativePaths: false });
    if (options.useDefaults !== false) this.rules.add([...DEFAULT_IGNORE_PATTERNS]);
    if (options.syncignore) this.rules.add(options.syncignore);
    if (options.patterns && options.patterns.length > 0) this.rules.add([...options.patterns]);
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
      return isReserved(p) || this.rules.ignores(p);
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
