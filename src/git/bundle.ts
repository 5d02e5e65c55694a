/**
 * A workspace's git repository kept whole: one `git bundle` of every ref plus
 * a sidecar JSON of what a bundle does not carry, and the way back. Local
 * only: the caller moves the two files to and from the bucket.
 *
 * See docs/git-bundles.md for the design, what is supported and the costs.
 */
import { randomBytes, createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, realpath, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { TEMP_SUFFIX } from '../core/names.js';
import { GitError } from './GitError.js';
import {
  fingerprintOf,
  findRepository,
  lstatOrUndefined,
  readWorkspaceStates,
  requireRepository,
  type RepositoryState,
} from './repository.js';
import { checkAborted, HEAVY_TIMEOUT_MS, requireGit, runGit, type GitOptions } from './run.js';
import { parseSidecar, SIDECAR_KIND, SIDECAR_SCHEMA, type GitSidecar, type SavedIndex, type SavedRepository } from './sidecar.js';

export { GitError, type GitErrorCode } from './GitError.js';
export { gitAvailable, type GitOptions } from './run.js';
export { findRepository, repositoryFingerprint, type RepositoryInfo } from './repository.js';
export {
  parseSidecar,
  redactConfig,
  SIDECAR_SCHEMA,
  type GitSidecar,
  type SavedHead,
  type SavedHook,
  type SavedIndex,
  type SavedRemote,
  type SavedRepository,
  type SavedStashEntry,
} from './sidecar.js';

/** File name of the bundle written by {@link createBundle}. */
export const BUNDLE_FILE = 'repository.bundle';
/** File name of the sidecar written by {@link createBundle}. */
export const SIDECAR_FILE = 'repository.json';

/** Namespace of the refs this module adds to a bundle (the index, a detached HEAD, stash entries, submodules). */
const OWN_REFS = 'refs/s3-workspace-sync/';

/** Identity and date of the commit that holds a saved index: fixed, so the same index gives the same commit. */
const INDEX_COMMIT_ENV = {
  GIT_AUTHOR_NAME: 's3-workspace-sync',
  GIT_AUTHOR_EMAIL: 's3-workspace-sync@localhost',
  GIT_AUTHOR_DATE: '@0 +0000',
  GIT_COMMITTER_NAME: 's3-workspace-sync',
  GIT_COMMITTER_EMAIL: 's3-workspace-sync@localhost',
  GIT_COMMITTER_DATE: '@0 +0000',
};

/** What {@link createBundle} wrote. */
export interface CreatedBundle {
  /** The bundle (`<outDir>/repository.bundle`), or `null` when there was nothing to bundle (no commits, nothing staged). */
  bundlePath: string | null;
  /** The sidecar JSON (`<outDir>/repository.json`). */
  sidecarPath: string;
  sidecar: GitSidecar;
}

/**
 * Bundle the repository of `workspaceDir` (`.git/`, with its submodules under
 * `.git/modules/`) into `outDir`: `repository.bundle` (`git bundle create
 * --all`, plus refs of this module for the index, a detached HEAD, stash
 * entries and submodules) and `repository.json` (the {@link GitSidecar}).
 *
 * The user's repository is only read: the bundle is made in a temporary
 * repository under `outDir` that borrows its objects (`objects/info/alternates`)
 * and a copy of its index. Files in `outDir` with the two names are replaced
 * (each written under a temporary name, then renamed).
 *
 * The fingerprint is taken from the same snapshot of refs and index the bundle
 * is made from; the commit a concurrent `git` makes meanwhile is in the next
 * bundle, never lost from the fingerprint's point of view.
 *
 * Cost: one `git bundle create` (reads and compresses the whole history:
 * see docs/git-bundles.md for figures) and ~10 small `git` commands.
 *
 * @throws {GitError} `GIT_UNAVAILABLE` (no git), `GIT_NOT_A_REPOSITORY`,
 *   `GIT_UNSUPPORTED` (`.git` is a file or a symlink; reftable; submodules
 *   of another object format), `GIT_FAILED`, `GIT_TIMEOUT`, `GIT_ABORTED`.
 * @example
 * const { bundlePath, sidecarPath, sidecar } = await createBundle('/tmp/ws', '/tmp/out');
 */
export async function createBundle(workspaceDir: string, outDir: string, options: GitOptions = {}): Promise<CreatedBundle> {
  checkAborted(options.signal, 'bundle');
  const gitVersion = await requireGit(options);
  const found = await requireRepository(workspaceDir);
  await mkdir(outDir, { recursive: true });
  const shadow = await mkdtemp(path.join(outDir, '.git-bundle-'));
  try {
    // A copy of each index: the user's git may rewrite it while we work, and
    // write-tree must not update its cache-tree extension in place.
    const indexFiles = new Map<string, string>();
    for (const [n, relative] of ['', ...found.submodules].entries()) {
      const source = path.join(found.gitDir, ...relative.split('/').filter(Boolean), 'index');
      const copy = path.join(shadow, `index-${n}`);
      try {
        await copyFile(source, copy);
        indexFiles.set(relative, copy);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        indexFiles.set(relative, path.join(shadow, `no-index-${n}`));
      }
    }
    const states = await readWorkspaceStates(found, { ...options, indexFiles });
    const fingerprint = fingerprintOf(states);
    const root = states[0]!;
    if (states.some((s) => s.objectFormat !== root.objectFormat)) {
      throw new GitError('GIT_UNSUPPORTED', 'A submodule uses another object format than its superproject (sha1 and sha256)', {
        details: { workspaceDir },
      });
    }

    const repo = path.join(shadow, 'repo');
    await runGit(['init', '--bare', '--quiet', '--template=', ...(root.objectFormat === 'sha256' ? ['--object-format=sha256'] : []), repo], options);
    const objectDirs = await Promise.all(states.map((s) => realpath(path.join(s.gitDir, 'objects'))));
    await writeFile(path.join(repo, 'objects', 'info', 'alternates'), `${objectDirs.join('\n')}\n`);
    const shallow = [...new Set(states.flatMap((s) => s.shallow ?? []))].sort();
    if (shallow.length > 0) await writeFile(path.join(repo, 'shallow'), `${shallow.join('\n')}\n`);

    const warnings: string[] = [];
    const saved: SavedRepository[] = [];
    const updates: string[] = [];
    for (const [n, state] of states.entries()) {
      const prefix = n === 0 ? '' : `${OWN_REFS}m/${n - 1}/`;
      const where = n === 0 ? '' : ` (submodule ${state.relativeGitDir})`;
      let refCount = 0;
      for (const r of state.refs) {
        if (r.ref.startsWith(OWN_REFS)) continue;
        updates.push(`create ${prefix}${r.ref} ${r.oid}`);
        refCount++;
      }
      if (state.head.kind === 'detached') updates.push(`create ${prefix}${OWN_REFS}head ${state.head.commit}`);
      state.stash.forEach((entry, i) => updates.push(`create ${prefix}${OWN_REFS}stash/${i} ${entry.commit}`));
      const index = await saveIndex(repo, state, indexFiles.get(state.relativeGitDir), options);
      if (index.commit !== undefined) updates.push(`create ${prefix}${OWN_REFS}index ${index.commit}`);
      if (index.saved.kind === 'head') warnings.push(`The index${where} was not saved (${index.saved.reason}): it is restored from HEAD, staged changes come back unstaged`);
      for (const name of state.skippedHooks) warnings.push(`Hook ${name}${where} is not a regular file (a symbolic link?): not saved`);
      warnings.push(...(await inProgressWarnings(state.gitDir, where)));
      saved.push(toSaved(state, prefix, refCount, index.saved));
    }
    if (found.lfs || /^\s*\[filter\s+"lfs"\]/im.test(root.config.text)) {
      warnings.push('Git LFS objects (.git/lfs/) are not carried: the synced files are the content; run `git lfs fetch` to refill the LFS cache');
    }
    if (found.worktrees) warnings.push('Linked worktrees (.git/worktrees/) are not carried');

    let bundlePath: string | null = null;
    let bundle: GitSidecar['bundle'] = null;
    if (updates.length > 0) {
      await runGit([`--git-dir=${repo}`, 'update-ref', '--stdin'], { ...options, input: `${updates.join('\n')}\n` });
      const temporary = path.join(shadow, BUNDLE_FILE);
      await runGit([`--git-dir=${repo}`, 'bundle', 'create', '--quiet', temporary, '--all'], { ...options, defaultTimeoutMs: HEAVY_TIMEOUT_MS });
      const { size, sha256 } = await sizeAndSha256(temporary, options.signal);
      bundlePath = path.join(outDir, BUNDLE_FILE);
      await rename(temporary, bundlePath);
      bundle = { size, sha256 };
    } else {
      await rm(path.join(outDir, BUNDLE_FILE), { force: true });
    }

    const sidecar: GitSidecar = {
      schema: SIDECAR_SCHEMA,
      kind: SIDECAR_KIND,
      createdAt: new Date().toISOString(),
      gitVersion,
      fingerprint,
      bundle,
      repository: saved[0]!,
      submodules: saved.slice(1),
      warnings,
    };
    const sidecarPath = path.join(outDir, SIDECAR_FILE);
    const temporarySidecar = path.join(shadow, SIDECAR_FILE);
    await writeFile(temporarySidecar, `${JSON.stringify(sidecar, null, 2)}\n`);
    await rename(temporarySidecar, sidecarPath);
    return { bundlePath, sidecarPath, sidecar };
  } finally {
    await rm(shadow, { recursive: true, force: true });
  }
}

/** The index as a tree, committed in the temporary repository: `commit` goes into the bundle. */
async function saveIndex(
  repo: string,
  state: RepositoryState,
  indexFile: string | undefined,
  options: GitOptions,
): Promise<{ saved: SavedIndex; commit?: string }> {
  if (state.indexListing === null || indexFile === undefined) return { saved: { kind: 'none' } };
  if (state.unmerged) return { saved: { kind: 'head', reason: 'it has unmerged entries (a merge in progress)' } };
  let tree: string;
  try {
    const out = await runGit([`--git-dir=${repo}`, 'write-tree'], { ...options, env: { GIT_INDEX_FILE: indexFile } });
    tree = out.stdout.toString('utf8').trim();
  } catch (err) {
    if (!(err instanceof GitError) || err.code !== 'GIT_FAILED') throw err;
    return { saved: { kind: 'head', reason: `git write-tree failed: ${String(err.details.stderr ?? '').slice(0, 200)}` } };
  }
  const out = await runGit([`--git-dir=${repo}`, 'commit-tree', tree, '-m', 's3-workspace-sync: index'], { ...options, env: INDEX_COMMIT_ENV });
  return { saved: { kind: 'tree', tree }, commit: out.stdout.toString('utf8').trim() };
}

function toSaved(state: RepositoryState, refPrefix: string, refCount: number, index: SavedIndex): SavedRepository {
  return {
    gitDir: state.relativeGitDir,
    refPrefix,
    objectFormat: state.objectFormat,
    head: state.head,
    symrefs: state.refs.filter((r) => r.symref !== '' && !r.ref.startsWith(OWN_REFS)).map((r) => ({ ref: r.ref, target: r.symref })),
    refCount,
    index,
    stash: state.stash.map((e) => ({ commit: e.commit, message: e.message, who: e.who, when: e.when })),
    remotes: state.remotes,
    config: state.config.text,
    redacted: state.config.redacted,
    hooks: state.hooks,
    info: state.info,
    shallow: state.shallow,
  };
}

/** Operations in progress that a bundle does not carry. */
async function inProgressWarnings(gitDir: string, where: string): Promise<string[]> {
  const markers: Array<[string, string]> = [
    ['MERGE_HEAD', 'a merge'],
    ['rebase-merge', 'a rebase'],
    ['rebase-apply', 'a rebase or am'],
    ['CHERRY_PICK_HEAD', 'a cherry-pick'],
    ['REVERT_HEAD', 'a revert'],
    ['BISECT_LOG', 'a bisect'],
  ];
  const out: string[] = [];
  for (const [file, what] of markers) {
    if ((await lstatOrUndefined(path.join(gitDir, file))) !== undefined) out.push(`${what} in progress${where} is not carried (.git/${file})`);
  }
  return out;
}

async function sizeAndSha256(file: string, signal: AbortSignal | undefined): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file, signal ? { signal } : {})) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: hash.digest('hex') };
}

/** Options of {@link restoreRepository}. */
export interface RestoreOptions extends GitOptions {
  /**
   * Write the saved hooks (`.git/hooks/`, with their modes). Default: `true`.
   * Hooks are programs: whoever can write the bucket can make them run on
   * the next `git commit` — as they can any script in the workspace.
   */
  hooks?: boolean | undefined;
  /**
   * Refresh the restored index's stat data (`git update-index --refresh`),
   * so the first `git status` does not hash every file. Reads every tracked
   * file once. Default: `true`.
   */
  refreshIndex?: boolean | undefined;
}

/** What {@link restoreRepository} did. */
export interface RestoredRepository {
  /** `<workspaceDir>/.git`. */
  gitDir: string;
  /** The sidecar's warnings (what the bundle did not carry). */
  warnings: string[];
}

/**
 * Recreate `<workspaceDir>/.git` from a bundle and its sidecar, without
 * touching any working-tree file: the synced files (already there, or
 * arriving later) are the working tree, so uncommitted changes show in
 * `git status` as they did where the bundle was made.
 *
 * The repository is built in `<workspaceDir>/.git.<random>.s3ws-tmp` (a name
 * the sync never uploads) and renamed to `.git` as the last step, so a crash
 * leaves no half `.git`; a leftover temporary directory from an earlier crash
 * is removed first. In it: the bundle's refs are fetched (all branches, tags,
 * remote-tracking refs, the stash with its entries), HEAD is set to the saved
 * branch or commit, symbolic refs are recreated, the index is read from the
 * saved tree (staged changes survive) or from HEAD, then the config, `info/`
 * files and hooks are written, and the index's stat data refreshed. No hook
 * runs during the restore. Submodule repositories are restored into
 * `.git/modules/` the same way.
 *
 * @param bundlePath the bundle file, or `null` when `sidecar.bundle` is `null`.
 * @param sidecar the sidecar, parsed or as JSON text (checked with {@link parseSidecar}).
 * @throws {GitError} `GIT_EXISTS` (a `.git` is there: it is never replaced),
 *   `GIT_INVALID_SIDECAR`, `GIT_BUNDLE_MISMATCH` (the bundle's size or SHA-256
 *   is not the sidecar's, or it is missing), `GIT_UNAVAILABLE`,
 *   `GIT_FAILED`, `GIT_TIMEOUT`, `GIT_ABORTED`. On any error no `.git` is
 *   left behind.
 * @example
 * await restoreRepository('/tmp/ws', '/tmp/in/repository.bundle', await readFile('/tmp/in/repository.json', 'utf8'));
 */
export async function restoreRepository(
  workspaceDir: string,
  bundlePath: string | null,
  sidecar: GitSidecar | string | Buffer,
  options: RestoreOptions = {},
): Promise<RestoredRepository> {
  checkAborted(options.signal, 'restore');
  const saved = parseSidecar(sidecar);
  const target = path.resolve(workspaceDir, '.git');
  if ((await lstatOrUndefined(target)) !== undefined) {
    throw new GitError('GIT_EXISTS', `${target} already exists: it is never replaced by a restore`, { details: { gitDir: target } });
  }
  await requireGit(options);
  let bundle: string | null = null;
  if (saved.bundle !== null) {
    if (bundlePath === null) throw new GitError('GIT_BUNDLE_MISMATCH', 'The sidecar describes a bundle and none was given');
    bundle = path.resolve(bundlePath);
    const actual = await sizeAndSha256(bundle, options.signal).catch((err: unknown) => {
      checkAborted(options.signal, 'restore');
      throw new GitError('GIT_BUNDLE_MISMATCH', `The bundle ${bundle} cannot be read`, { cause: err });
    });
    if (actual.size !== saved.bundle.size || actual.sha256 !== saved.bundle.sha256) {
      throw new GitError('GIT_BUNDLE_MISMATCH', 'The bundle is not the one the sidecar describes (size or SHA-256 differ): they come from different pushes', {
        details: { expected: saved.bundle, actual },
      });
    }
  }

  await removeLeftovers(workspaceDir);
  const temporary = path.resolve(workspaceDir, `.git.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
  try {
    const heads = bundle === null ? [] : await listBundleRefs(bundle, options);
    const workspace = path.resolve(workspaceDir);
    await restoreOne(temporary, workspace, saved.repository, bundle, heads, options);
    for (const submodule of saved.submodules) {
      const segments = submodule.gitDir.split('/');
      await restoreOne(path.join(temporary, ...segments), submoduleWorkTree(workspace, segments, submodule.config), submodule, bundle, heads, options);
    }
    if ((await lstatOrUndefined(target)) !== undefined) {
      throw new GitError('GIT_EXISTS', `${target} appeared while the repository was being restored: it is left alone`, { details: { gitDir: target } });
    }
    try {
      await rename(temporary, target);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR' || code === 'EISDIR') {
        throw new GitError('GIT_EXISTS', `${target} appeared while the repository was being restored: it is left alone`, { cause: err });
      }
      throw err;
    }
  } catch (err) {
    await rm(temporary, { recursive: true, force: true });
    throw err;
  }
  return { gitDir: target, warnings: saved.warnings };
}

/**
 * A submodule's work tree, from its config's `core.worktree` (relative to its
 * final git dir, `<workspace>/.git/modules/<name>`), when it lies inside the
 * workspace; else `undefined` (its index is then not refreshed).
 */
function submoduleWorkTree(workspace: string, gitDirSegments: readonly string[], config: string): string | undefined {
  const configured = /^\s*worktree\s*=\s*(.+?)\s*$/im.exec(config)?.[1]?.replace(/^"(.*)"$/, '$1');
  if (configured === undefined) return undefined;
  const resolved = path.resolve(workspace, '.git', ...gitDirSegments, configured);
  const relative = path.relative(workspace, resolved);
  return relative === '' || relative.startsWith('..') || path.isAbsolute(relative) ? undefined : resolved;
}

/** Remove `.git.*.s3ws-tmp` directories an interrupted restore left in the workspace. */
async function removeLeftovers(workspaceDir: string): Promise<void> {
  const names = await readdir(workspaceDir).catch(() => [] as string[]);
  for (const name of names) {
    if (/^\.git\.[0-9a-f]+\.s3ws-tmp$/.test(name)) await rm(path.join(workspaceDir, name), { recursive: true, force: true });
  }
}

async function listBundleRefs(bundle: string, options: GitOptions): Promise<string[]> {
  const out = await runGit(['bundle', 'list-heads', bundle], { ...options, defaultTimeoutMs: HEAVY_TIMEOUT_MS });
  return out.stdout
    .toString('utf8')
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter(Boolean);
}

/**
 * One repository into `gitDir` (created): fetch its refs, set HEAD, symbolic
 * refs, stash, index; write config, info files, hooks. `workTree`: the
 * workspace, or a submodule's folder in it (`undefined`: the index is not refreshed).
 */
async function restoreOne(
  gitDir: string,
  workTree: string | undefined,
  repo: SavedRepository,
  bundle: string | null,
  bundleRefs: readonly string[],
  options: RestoreOptions,
): Promise<void> {
  const git = (args: string[], extra: Parameters<typeof runGit>[1] = {}): ReturnType<typeof runGit> =>
    runGit([`--git-dir=${gitDir}`, ...args], { ...options, ...extra });
  // No template (`--template=`): a machine's init.templateDir could add hooks or an
  // info/exclude the original did not have. Only what the sidecar lists is written.
  await runGit(['init', '--bare', '--quiet', '--template=', ...(repo.objectFormat === 'sha256' ? ['--object-format=sha256'] : []), gitDir], options);
  await mkdir(path.join(gitDir, 'hooks'), { recursive: true });
  if (repo.shallow !== null) await writeFile(path.join(gitDir, 'shallow'), `${repo.shallow.join('\n')}\n`);

  const own = `${repo.refPrefix}refs/`;
  const mine = bundleRefs.filter((ref) => ref.startsWith(own) && (repo.refPrefix !== '' || !ref.startsWith(`${OWN_REFS}m/`)));
  if (bundle !== null && mine.length > 0) {
    await git(['fetch', '--quiet', '--no-tags', '--update-head-ok', bundle, `+${own}*:refs/*`], { defaultTimeoutMs: HEAVY_TIMEOUT_MS });
  }

  if (repo.head.kind === 'branch') await git(['symbolic-ref', 'HEAD', repo.head.ref]);
  else await git(['update-ref', '--no-deref', 'HEAD', repo.head.commit]);
  for (const link of repo.symrefs) await git(['symbolic-ref', link.ref, link.target]);

  if (repo.stash.length > 0) {
    await git(['update-ref', '-d', 'refs/stash']);
    for (const entry of repo.stash) {
      const m = /^(.*?)\s*<([^<>]*)>$/.exec(entry.who);
      await git(['update-ref', '--create-reflog', '-m', entry.message, 'refs/stash', entry.commit], {
        env: { GIT_COMMITTER_NAME: m?.[1] ?? '', GIT_COMMITTER_EMAIL: m?.[2] ?? '', GIT_COMMITTER_DATE: `@${entry.when}` },
      });
    }
  }

  const indexEnv = { GIT_INDEX_FILE: path.join(gitDir, 'index') };
  if (repo.index.kind === 'tree') await git(['read-tree', repo.index.tree], { env: indexEnv });
  else if (repo.index.kind === 'head' && (repo.head.kind === 'detached' || repo.head.commit !== undefined)) await git(['read-tree', 'HEAD'], { env: indexEnv });

  // This module's own refs and the fetch's leftovers.
  const ownRefs = (await git(['for-each-ref', '--format=%(refname)', OWN_REFS])).stdout.toString('utf8').split('\n').filter(Boolean);
  if (ownRefs.length > 0) await git(['update-ref', '--stdin'], { input: ownRefs.map((r) => `delete ${r}\n`).join('') });
  await rm(path.join(gitDir, 'FETCH_HEAD'), { force: true });

  await writeFile(path.join(gitDir, 'config'), repo.config);
  await mkdir(path.join(gitDir, 'info'), { recursive: true });
  for (const file of repo.info) await writeFile(path.join(gitDir, 'info', file.name), file.text);

  if (options.refreshIndex !== false && repo.index.kind !== 'none' && workTree !== undefined && (await lstatOrUndefined(workTree))?.isDirectory() === true) {
    await runGit([`--git-dir=${gitDir}`, `--work-tree=${workTree}`, 'update-index', '-q', '--refresh'], {
      ...options,
      cwd: workTree,
      okExitCodes: [1],
      defaultTimeoutMs: HEAVY_TIMEOUT_MS,
    });
  }

  if (options.hooks !== false) {
    const hooksDir = path.join(gitDir, 'hooks');
    for (const hook of repo.hooks) {
      const file = path.join(hooksDir, hook.name);
      await writeFile(file, Buffer.from(hook.base64, 'base64'), { mode: hook.mode });
      await chmod(file, hook.mode);
    }
  }
}

/**
 * Whether `<workspaceDir>/.git` is a repository whose fingerprint is the
 * sidecar's: a pull leaves such a repository alone. `false` when there is no
 * repository (or an unsupported `.git`); a repository that differs is also
 * left alone by a pull (it is never replaced), this only tells whether it is
 * the pushed one.
 *
 * @throws {GitError} `GIT_UNAVAILABLE`, `GIT_INVALID_SIDECAR`, `GIT_FAILED`.
 * @example
 * if (!(await repositoryMatches(dir, sidecar))) logger.info('the workspace repository differs from the pushed one');
 */
export async function repositoryMatches(workspaceDir: string, sidecar: GitSidecar | string | Buffer, options: GitOptions = {}): Promise<boolean> {
  const saved = parseSidecar(sidecar);
  const found = await findRepository(workspaceDir);
  if (found.kind !== 'repository') return false;
  await requireGit(options);
  return fingerprintOf(await readWorkspaceStates(found, options)) === saved.fingerprint;
}
