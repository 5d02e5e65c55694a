// Credential files are left out of a default push (DEFAULT_IGNORE_PATTERNS),
// at the root and nested, while ordinary files — including look-alikes such as
// `id_utils.py` and `.ssh/known_hosts` — are uploaded; `!pattern` in
// .syncignore re-includes one of them.
import { describe, expect, it } from 'vitest';

import { listAllKeys, putObjects } from '../helpers/s3.js';
import { fixture, tempDir, type Fixture } from '../helpers/sync-fixture.js';
import { readTree, writeTree } from '../helpers/tree.js';

const CREDENTIALS: Record<string, string> = {
  // SSH private keys
  'id_rsa': 'PRIVATE KEY',
  '.ssh/id_rsa': 'PRIVATE KEY',
  '.ssh/id_ed25519': 'PRIVATE KEY',
  '.ssh/id_ed25519_sk': 'PRIVATE KEY',
  '.ssh/id_github': 'PRIVATE KEY',
  'sub/dir/.ssh/id_ecdsa': 'PRIVATE KEY',
  'putty.ppk': 'PRIVATE KEY',
  'certs/client.p12': 'PKCS12',
  'certs/client.pfx': 'PKCS12',
  // cloud CLIs
  '.aws/credentials': '[default]\naws_access_key_id=AKIAIOSFODNN7EXAMPLE',
  '.aws/config': '[default]\nregion=us-east-1',
  'home/.aws/credentials': '[default]\naws_access_key_id=AKIAIOSFODNN7EXAMPLE',
  '.aws/sso/cache/0123abcd.json': '{"accessToken":"x"}',
  '.aws/cli/cache/role.json': '{"Credentials":{}}',
  'credentials.json': '{"installed":{"client_secret":"x"}}',
  'keys/service-account-prod.json': '{"private_key":"x"}',
  'service_account.json': '{"private_key":"x"}',
  '.config/gcloud/application_default_credentials.json': '{"refresh_token":"x"}',
  '.config/gcloud/credentials.db': 'sqlite',
  '.config/gcloud/access_tokens.db': 'sqlite',
  '.config/gcloud/legacy_credentials/me@example.com/adc.json': '{}',
  '.azure/accessTokens.json': '[]',
  '.azure/msal_token_cache.json': '{}',
  '.azure/service_principal_entries.json': '[]',
  '.boto': '[Credentials]',
  '.s3cfg': 'secret_key = x',
  // registries and package managers
  '.npmrc': '//registry.npmjs.org/:_authToken=npm_x',
  'project/.npmrc': '//registry.npmjs.org/:_authToken=npm_y',
  '.pypirc': '[pypi]\npassword = x',
  '.docker/config.json': '{"auths":{}}',
  '.cargo/credentials.toml': '[registry]\ntoken = "x"',
  '.gem/credentials': ':rubygems_api_key: x',
  // git, HTTP, databases
  '.netrc': 'machine example.com login me password x',
  '_netrc': 'machine example.com login me password x',
  '.git-credentials': 'https://me:x@github.com',
  '.config/gh/hosts.yml': 'github.com:\n  oauth_token: x',
  '.pgpass': 'localhost:5432:*:me:x',
  '.my.cnf': '[client]\npassword=x',
  'site/.htpasswd': 'me:$apr1$x',
  // infrastructure tools
  '.kube/config': 'users: []',
  '.terraformrc': 'credentials "app.terraform.io" { token = "x" }',
  'terraform.rc': 'credentials "app.terraform.io" { token = "x" }',
  '.terraform.d/credentials.tfrc.json': '{"credentials":{}}',
  '.vault-token': 'hvs.x',
  '.gnupg/private-keys-v1.d/0123ABCD.lock': 'x',
  '.gnupg/secring.gpg': 'x',
};

const NORMAL: Record<string, string> = {
  'src/app.ts': 'app',
  'id_utils.py': 'def make_id(): ...',
  'id_map.json': '{}',
  'src/id_generator.ts': 'export {}',
  'src/netrc.ts': 'export {}',
  'docs/credentials.md': '# Credentials',
  '.ssh/known_hosts': 'github.com ssh-ed25519 AAAA',
  '.ssh/config': 'Host *',
  '.ssh/authorized_keys': 'ssh-ed25519 AAAA',
  '.ssh/id_rsa.pub': 'ssh-rsa AAAA',
  '.ssh/id_github.pub': 'ssh-ed25519 AAAA',
  'id_ed25519.pub': 'ssh-ed25519 AAAA',
  '.aws/README': 'notes',
  '.aws/cli/alias': '[toplevel]',
  '.docker/daemon.json': '{}',
  '.config/gcloud/configurations/config_default': '[core]',
};

const keysOf = (files: Record<string, string>) => Object.keys(files).map((p) => `ws/${p}`);
const sorted = (keys: string[]) => [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

/** The bucket's keys of workspace files (not the library's own objects under `.s3-workspace-sync/`). */
async function workspaceKeys(f: Fixture): Promise<string[]> {
  return (await listAllKeys(f.other, f.bucket)).filter((key) => !key.startsWith('ws/.s3-workspace-sync/'));
}

describe('credential files', () => {
  it('a default push uploads the normal files and none of the credential files', { timeout: 30_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { ...CREDENTIALS, ...NORMAL });
    const result = await f.sync({ workspaceDir: ws }).push();
    expect(result).toMatchObject({ success: true, uploadedFiles: Object.keys(NORMAL).length, failedFiles: [] });
    const keys = await workspaceKeys(f);
    expect(keys).toEqual(sorted(keysOf(NORMAL)));
    for (const key of keysOf(CREDENTIALS)) expect(keys).not.toContain(key);
  });

  it('`!.npmrc` in .syncignore re-includes the .npmrc files, and only them', { timeout: 30_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { ...CREDENTIALS, ...NORMAL, '.syncignore': '# this workspace publishes with its token\n!.npmrc\n' });
    const result = await f.sync({ workspaceDir: ws }).push();
    expect(result.success).toBe(true);
    const expected = [...keysOf(NORMAL), 'ws/.syncignore', 'ws/.npmrc', 'ws/project/.npmrc'];
    expect(await workspaceKeys(f)).toEqual(sorted(expected));
  });

  it('ignorePatterns re-includes by path (a key two patterns match)', { timeout: 30_000 }, async () => {
    const f = await fixture();
    const ws = await tempDir();
    await writeTree(ws, { ...CREDENTIALS, ...NORMAL });
    const result = await f.sync({ workspaceDir: ws, ignorePatterns: ['!.ssh/id_rsa'] }).push();
    expect(result.success).toBe(true);
    expect(await workspaceKeys(f)).toEqual(sorted([...keysOf(NORMAL), 'ws/.ssh/id_rsa']));
  });

  it('a pull neither downloads the credential files a bucket holds nor touches local ones', { timeout: 30_000 }, async () => {
    const f = await fixture();
    // Another, permissive writer put them in the bucket.
    await putObjects(f.other, f.bucket, Object.fromEntries(Object.entries({ ...CREDENTIALS, 'src/app.ts': 'app' }).map(([p, body]) => [`ws/${p}`, body])));
    const ws = await tempDir();
    await writeTree(ws, { '.npmrc': 'local token', '.ssh/id_rsa': 'local key' });
    const result = await f.sync({ workspaceDir: ws }).pull();
    expect(result).toMatchObject({ success: true, downloadedFiles: 1, deletedFiles: 0, failedFiles: [] });
    for (const path of Object.keys(CREDENTIALS)) expect(result.skippedFiles).toContainEqual({ path, reason: 'ignored' });
    expect(await readTree(ws)).toEqual({
      '.npmrc': Buffer.from('local token'),
      '.ssh/id_rsa': Buffer.from('local key'),
      'src/app.ts': Buffer.from('app'),
    });
  });
});
