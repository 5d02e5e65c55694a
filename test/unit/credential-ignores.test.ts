// Credential files are ignored by default (DEFAULT_IGNORE_PATTERNS), at the
// root and at any depth; look-alikes stay synced; every credential pattern can
// be re-included with `!` (ignorePatterns or .syncignore text).
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { DEFAULT_IGNORE_PATTERNS, SyncIgnoreFilter } from '../../src/SyncIgnoreFilter.js';

/**
 * Each credential pattern with paths that only it matches among the defaults
 * (so that `!pattern` alone re-includes them). Nested variants are derived.
 */
const CREDENTIAL_PATTERNS: ReadonlyArray<readonly [pattern: string, paths: readonly string[]]> = [
  // SSH private keys
  ['id_rsa', ['id_rsa']],
  ['id_dsa', ['id_dsa']],
  ['id_ecdsa', ['id_ecdsa']],
  ['id_ecdsa_sk', ['id_ecdsa_sk']],
  ['id_ed25519', ['id_ed25519']],
  ['id_ed25519_sk', ['id_ed25519_sk']],
  ['id_xmss', ['id_xmss']],
  ['**/.ssh/id_*', ['.ssh/id_github', '.ssh/id_rsa.old', '.ssh/id_work_ed25519']],
  ['*.ppk', ['server.ppk']],
  // key stores
  ['*.p12', ['cert.p12']],
  ['*.pfx', ['cert.pfx']],
  // cloud CLIs
  ['**/.aws/credentials', ['.aws/credentials']],
  ['**/.aws/config', ['.aws/config']],
  ['**/.aws/sso/cache/', ['.aws/sso/cache/0123abcd.json']],
  ['**/.aws/cli/cache/', ['.aws/cli/cache/role.json']],
  ['credentials.json', ['credentials.json']],
  ['service-account*.json', ['service-account.json', 'service-account-prod.json']],
  ['service_account*.json', ['service_account.json']],
  ['application_default_credentials.json', ['.config/gcloud/application_default_credentials.json']],
  ['**/gcloud/credentials.db', ['.config/gcloud/credentials.db', 'AppData/Roaming/gcloud/credentials.db']],
  ['**/gcloud/access_tokens.db', ['.config/gcloud/access_tokens.db']],
  ['**/gcloud/legacy_credentials/', ['.config/gcloud/legacy_credentials/me@example.com/adc.json']],
  ['**/.azure/accessTokens.json', ['.azure/accessTokens.json']],
  ['**/.azure/msal_token_cache.*', ['.azure/msal_token_cache.json', '.azure/msal_token_cache.bin']],
  ['**/.azure/service_principal_entries.json', ['.azure/service_principal_entries.json']],
  ['.boto', ['.boto']],
  ['.s3cfg', ['.s3cfg']],
  // registries and package managers
  ['.npmrc', ['.npmrc']],
  ['.pypirc', ['.pypirc']],
  ['**/.docker/config.json', ['.docker/config.json']],
  ['**/.cargo/credentials', ['.cargo/credentials']],
  ['**/.cargo/credentials.toml', ['.cargo/credentials.toml']],
  ['**/.gem/credentials', ['.gem/credentials']],
  // git, HTTP, databases
  ['.netrc', ['.netrc']],
  ['_netrc', ['_netrc']],
  ['.git-credentials', ['.git-credentials']],
  ['**/.config/gh/hosts.yml', ['.config/gh/hosts.yml']],
  ['.pgpass', ['.pgpass']],
  ['.my.cnf', ['.my.cnf']],
  ['.htpasswd', ['.htpasswd']],
  // infrastructure tools
  ['**/.kube/config', ['.kube/config']],
  ['.terraformrc', ['.terraformrc']],
  ['terraform.rc', ['terraform.rc']],
  ['**/.terraform.d/credentials.tfrc.json', ['.terraform.d/credentials.tfrc.json']],
  ['.vault-token', ['.vault-token']],
  ['**/.gnupg/private-keys-v1.d/', ['.gnupg/private-keys-v1.d/0123ABCD.lock', '.gnupg/private-keys-v1.d/sub/x']],
  ['**/.gnupg/secring.gpg', ['.gnupg/secring.gpg']],
];

/** Paths matched by more than one default pattern (re-included by path). */
const DOUBLY_MATCHED = ['.ssh/id_rsa', '.ssh/id_ed25519', '.ssh/id_ed25519_sk', 'sub/dir/.ssh/id_ed25519'];

const nested = (p: string) => [p, `sub/${p}`, `home/user/${p}`];

const CREDENTIAL_PATHS = [...CREDENTIAL_PATTERNS.flatMap(([, paths]) => paths.flatMap(nested)), ...DOUBLY_MATCHED];

/** Look-alikes that must stay synced (at the root and nested). */
const SYNCED = [
  // SSH public material and configuration
  '.ssh/known_hosts',
  '.ssh/known_hosts.old',
  '.ssh/config',
  '.ssh/authorized_keys',
  '.ssh/id_rsa.pub',
  '.ssh/id_ed25519.pub',
  '.ssh/id_ed25519_sk.pub',
  '.ssh/id_github.pub',
  '.ssh/id_ed25519-cert.pub',
  'id_rsa.pub',
  'id_ed25519.pub',
  'keys/deploy.pub',
  // ordinary source files named id_*
  'id_utils.py',
  'id_map.json',
  'id_generator.ts',
  'src/id_rsa_parser.ts',
  'id_rsa.md',
  'lib/id_ecdsa.go',
  'id_.txt',
  // names that mention credentials
  'docs/credentials.md',
  'credentials.ts',
  'src/credentials/index.ts',
  'credentials.example.json',
  'my-credentials.json',
  'src/netrc.ts',
  'netrc',
  'npmrc.md',
  'docs/npmrc.md',
  '.npmrc.example',
  'pypirc.txt',
  'service.json',
  'account-service.json',
  'kube/config',
  '.kube/config.d/notes.md',
  '.kube/cache/discovery/x.json',
  'config/gcloud.md',
  'gcloud/README.md',
  // the rest of the credential directories
  '.aws/README',
  '.aws/cli/alias',
  '.aws/sso/README',
  '.docker/daemon.json',
  '.azure/azureProfile.json',
  '.azure/config',
  '.gnupg/pubring.kbx',
  '.gnupg/trustdb.gpg',
  '.config/gh/config.yml',
  '.config/gcloud/configurations/config_default',
  '.cargo/config.toml',
  '.terraform.d/plugins/x.txt',
  'terraform.tfvars.example',
  '.pgpass.example',
  'htpasswd.md',
];

describe('credential files are ignored by default', () => {
  const filter = new SyncIgnoreFilter();

  it('every pattern of the table is a default', { timeout: 5_000 }, () => {
    for (const [pattern] of CREDENTIAL_PATTERNS) expect(DEFAULT_IGNORE_PATTERNS, pattern).toContain(pattern);
    expect(DEFAULT_IGNORE_PATTERNS).toContain('!**/.ssh/id_*.pub');
    // and the negation comes after what it re-includes
    expect(DEFAULT_IGNORE_PATTERNS.indexOf('!**/.ssh/id_*.pub')).toBeGreaterThan(DEFAULT_IGNORE_PATTERNS.indexOf('**/.ssh/id_*'));
  });

  it.each(CREDENTIAL_PATHS)('%s is ignored', { timeout: 5_000 }, (path) => {
    expect(filter.ignores(path)).toBe(true);
  });

  it.each(SYNCED.flatMap((p) => [p, `sub/dir/${p}`]))('%s stays synced', { timeout: 5_000 }, (path) => {
    expect(filter.ignores(path)).toBe(false);
  });

  it('credential directories themselves are not excluded (their other files can sync)', { timeout: 5_000 }, () => {
    for (const dir of ['.ssh', '.aws', '.aws/sso', '.aws/cli', '.docker', '.kube', '.azure', '.config', '.config/gcloud', '.config/gh', '.gnupg', '.cargo', '.gem', '.terraform.d']) {
      expect(filter.ignores(dir, true), dir).toBe(false);
      expect(filter.ignores(`home/${dir}`, true), dir).toBe(false);
    }
  });

  it('the token cache directories are excluded as directories (the scanner does not enter them)', { timeout: 5_000 }, () => {
    for (const dir of ['.aws/sso/cache', '.aws/cli/cache', '.config/gcloud/legacy_credentials', '.gnupg/private-keys-v1.d']) {
      expect(filter.ignores(dir, true), dir).toBe(true);
      expect(filter.ignores(`home/${dir}`, true), dir).toBe(true);
    }
  });

  it('useDefaults: false drops the credential patterns too', { timeout: 5_000 }, () => {
    const bare = new SyncIgnoreFilter({ useDefaults: false });
    for (const path of CREDENTIAL_PATHS) expect(bare.ignores(path), path).toBe(false);
  });
});

describe('credential patterns can be re-included', () => {
  it.each(CREDENTIAL_PATTERNS)('!%s in ignorePatterns re-includes %j (root and nested)', { timeout: 5_000 }, (pattern, paths) => {
    const filter = new SyncIgnoreFilter({ patterns: [`!${pattern}`] });
    for (const path of paths.flatMap(nested)) expect(filter.ignores(path), path).toBe(false);
  });

  it.each(CREDENTIAL_PATTERNS)('!%s in .syncignore re-includes %j (root and nested)', { timeout: 5_000 }, (pattern, paths) => {
    const filter = new SyncIgnoreFilter({ syncignore: `# keep this one\n!${pattern}\n` });
    for (const path of paths.flatMap(nested)) expect(filter.ignores(path), path).toBe(false);
  });

  it('re-including one pattern leaves the other credentials ignored', { timeout: 5_000 }, () => {
    const filter = new SyncIgnoreFilter({ syncignore: '!.npmrc\n' });
    expect(filter.ignores('.npmrc')).toBe(false);
    expect(filter.ignores('pkg/.npmrc')).toBe(false);
    expect(filter.ignores('.pypirc')).toBe(true);
    expect(filter.ignores('.aws/credentials')).toBe(true);
    expect(filter.ignores('id_rsa')).toBe(true);
  });

  it('a path matched by two patterns is re-included by its path', { timeout: 5_000 }, () => {
    const byPath = new SyncIgnoreFilter({ patterns: ['!.ssh/id_rsa', '!sub/dir/.ssh/id_ed25519'] });
    expect(byPath.ignores('.ssh/id_rsa')).toBe(false);
    expect(byPath.ignores('sub/dir/.ssh/id_ed25519')).toBe(false);
    expect(byPath.ignores('.ssh/id_ed25519')).toBe(true);
    expect(byPath.ignores('other/.ssh/id_rsa')).toBe(true);

    const byBoth = new SyncIgnoreFilter({ syncignore: '!id_ed25519\n!**/.ssh/id_*\n' });
    for (const path of DOUBLY_MATCHED.filter((p) => p.endsWith('/id_ed25519'))) expect(byBoth.ignores(path), path).toBe(false);
    expect(byBoth.ignores('.ssh/id_rsa')).toBe(false);
    expect(byBoth.ignores('id_rsa')).toBe(true);
  });

  it('a re-included token cache directory syncs its files', { timeout: 5_000 }, () => {
    const filter = new SyncIgnoreFilter({ syncignore: '!.aws/sso/cache/\n' });
    expect(filter.ignores('.aws/sso/cache', true)).toBe(false);
    expect(filter.ignores('.aws/sso/cache/0123abcd.json')).toBe(false);
    expect(filter.ignores('home/.aws/sso/cache/0123abcd.json')).toBe(true);
  });

  it('a user rule can still exclude the public keys the defaults keep', { timeout: 5_000 }, () => {
    const filter = new SyncIgnoreFilter({ syncignore: '*.pub\n' });
    expect(filter.ignores('.ssh/id_rsa.pub')).toBe(true);
    expect(filter.ignores('.ssh/known_hosts')).toBe(false);
  });
});

describe('the documented default list', () => {
  const root = new URL('../../', import.meta.url);

  it('.syncignore.example lists DEFAULT_IGNORE_PATTERNS, in order', { timeout: 5_000 }, () => {
    const text = readFileSync(new URL('.syncignore.example', root), 'utf8');
    const block = text.slice(text.indexOf('# Built-in defaults'), text.indexOf('# Always ignored'));
    const listed = block
      .split('\n')
      .filter((line) => line.startsWith('#   ') && !line.startsWith('#   #'))
      .map((line) => line.slice(4).trim());
    expect(listed).toEqual([...DEFAULT_IGNORE_PATTERNS]);
  });

  it('the README `.syncignore` section lists DEFAULT_IGNORE_PATTERNS, in order', { timeout: 5_000 }, () => {
    const text = readFileSync(new URL('README.md', root), 'utf8');
    const section = text.slice(text.indexOf('## `.syncignore`'));
    const block = section.slice(section.indexOf('```gitignore') + '```gitignore'.length, section.indexOf('```', section.indexOf('```gitignore') + 3));
    const listed = block
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'))
      .flatMap((line) => line.split(/\s+/));
    expect(listed).toEqual([...DEFAULT_IGNORE_PATTERNS]);
  });
});
