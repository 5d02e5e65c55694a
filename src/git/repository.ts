/**
 * Reading a workspace's git repository without changing it: where it is,
 * what a bundle must carry, and its fingerprint.
 */
import { createHash } from 'node:crypto';
import type { Dirent, Stats } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

import { GitError } from './GitError.js';
import { requireGit, runGit, type GitOptions } from './run.js';
import { INFO_FILES, parseReflog, redactConfig, redactUrls, type ReflogEntry, type SavedHead, type SavedHook, type SavedRemote } from './sidecar.js';

/** What {@link findRepository} found at `<workspaceDir>/.git`. */
export type RepositoryInfo =
  /** No `.git` at all. */
  | { kind: 'none' }
  /**
   * A `.git` this module does not carry: a `.git` *file* (the workspace is a
   * linked worktree or a submodule checkout of a repository elsewhere), a
   * symlink, a directory that is not a repository, or a reftable repository.
   */
  | { kind: 'unsupported'; reason: string }
  /** A repository in `.git/`. */
  | {
      kind: 'repository';
      /** Absolute path of `.git/`. */
      gitDir: string;
      objectFormat: 'sha1' | 'sha256';
      /** A shallow clone (`.git/shallow`): supported, its boundary is saved and restored. */
      shallow: boolean;
      /** Submodule repositories under `.git/modules/` (relative to `.git/`, e.g. `modules/lib`): bundled with it. */
      submodules: string[];
      /** `.git/lfs/` exists: its objects are not carried (the synced files are the content). */
      lfs: boolean;
      /** Linked worktrees (`.git/worktrees/`): not carried. */
      worktrees: boolean;
    };

/**
 * Look at `<workspaceDir>/.git` without running git (no git needed).
 *
 * @example
 * const found = await findRepository('/tmp/ws');
 * if (found.kind === 'repository' && (await gitAvailable()) === undefined) warn('git is missing: the repository is not bundled');
 */
export async function findRepository(workspaceDir: string): Promise<RepositoryInfo> {
  const gitDir = path.resolve(workspaceDir, '.git');
  const stat = await lstatOrUndefined(gitDir);
  if (stat === undefined) return { kind: 'none' };
  if (stat.isSymbolicLink()) return { kind: 'unsupported', reason: '.git is a symbolic link' };
  if (stat.isFile()) {
    const text = await readFile(gitDir, 'utf8').catch(() => '');
    const target = /^gitdir:\s*(.+)$/m.exec(text)?.[1]?.trim();
    const what = target?.includes('/worktrees/') === true ? 'a linked worktree' : target?.includes('/modules/') === true ? 'a submodule checkout' : 'a link to another git directory';
    return { kind: 'unsupported', reason: `.git is a file: the workspace is ${what}${target ? ` (gitdir: ${target})` : ''}` };
  }
  if (!stat.isDirectory()) return { kind: 'unsupported', reason: '.git is not a directory' };
  if (!(await isGitDir(gitDir))) return { kind: 'unsupported', reason: '.git is not a git repository (no HEAD, objects/ or refs/)' };
  const config = await readFile(path.join(gitDir, 'config'), 'utf8').catch(() => '');
  if (/^\s*refstorage\s*=\s*reftable/im.test(config)) return { kind: 'unsupported', reason: 'reftable repositories are not supported' };
  const worktrees = await readdir(path.join(gitDir, 'worktrees')).catch(() => [] as string[]);
  return {
    kind: 'repository',
    gitDir,
    objectFormat: objectFormatOf(config),
    shallow: (await lstatOrUndefined(path.join(gitDir, 'shallow'))) !== undefined,
    submodules: await findSubmoduleGitDirs(gitDir),
    lfs: (await lstatOrUndefined(path.join(gitDir, 'lfs'))) !== undefined,
    worktrees: worktrees.length > 0,
  };
}

/** The repository of a workspace, or the error that says why there is none to work on. */
export async function requireRepository(workspaceDir: string): Promise<Extract<RepositoryInfo, { kind: 'repository' }>> {
  const found = await findRepository(workspaceDir);
  if (found.kind === 'none') {
    throw new GitError('GIT_NOT_A_REPOSITORY', `${workspaceDir} has no .git directory`, { details: { workspaceDir } });
  }
  if (found.kind === 'unsupported') {
    throw new GitError('GIT_UNSUPPORTED', `The repository of ${workspaceDir} cannot be bundled: ${found.reason}`, { details: { workspaceDir, reason: found.reason } });
  }
  return found;
}

/** git's own test of a git directory: HEAD, objects/ and refs/. */
async function isGitDir(dir: string): Promise<boolean> {
  const [head, objects, refs] = await Promise.all(['HEAD', 'objects', 'refs'].map((name) => lstatOrUndefined(path.join(dir, name))));
  return head?.isFile() === true && objects?.isDirectory() === true && refs?.isDirectory() === true;
}

/** Submodule git dirs under `<gitDir>/modules/` (names may hold `/`; nested submodules are under their parent's `modules/`). */
async function findSubmoduleGitDirs(gitDir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (absolute: string, relative: string, depth: number): Promise<void> => {
    if (depth > 8) return;
    let entries: Dirent[];
    try {
      entries = await readdir(absolute, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (!entry.isDirectory()) continue;
      const childAbs = path.join(absolute, entry.name);
      const childRel = `${relative}/${entry.name}`;
      if (await isGitDir(childAbs)) {
        found.push(childRel);
        await walk(path.join(childAbs, 'modules'), `${childRel}/modules`, depth + 1);
      } else {
        await walk(childAbs, childRel, depth + 1);
      }
    }
  };
  await walk(path.join(gitDir, 'modules'), 'modules', 0);
  return found;
}

function objectFormatOf(config: string): 'sha1' | 'sha256' {
  return /^\s*objectformat\s*=\s*sha256\s*$/im.test(config) ? 'sha256' : 'sha1';
}

/** A ref as `for-each-ref` lists it. */
export interface ListedRef {
  ref: string;
  oid: string;
  /** Target of a symbolic ref (`refs/remotes/origin/HEAD`), else `''`. */
  symref: string;
}

/** Everything about one repository that a bundle and its sidecar carry, and that its fingerprint covers. */
export interface RepositoryState {
  /** Absolute git dir. */
  gitDir: string;
  /** Relative to the workspace's `.git/`: `''`, or `modules/<name>`. */
  relativeGitDir: string;
  objectFormat: 'sha1' | 'sha256';
  head: SavedHead;
  refs: ListedRef[];
  /** `git ls-files -s -z` of the index (mode, object, stage, path), or `null` with no index file. */
  indexListing: Buffer | null;
  /** Whether the index has unmerged entries (stage > 0). */
  unmerged: boolean;
  config: { text: string; redacted: string[] };
  remotes: SavedRemote[];
  hooks: SavedHook[];
  /** Hooks left out (symbolic links, unreadable), by name. */
  skippedHooks: string[];
  info: Array<{ name: string; text: string }>;
  stash: ReflogEntry[];
  shallow: string[] | null;
}

/** Options of {@link readRepositoryState}. */
export interface ReadStateOptions extends GitOptions {
  /** Read this copy of the index instead of `<gitDir>/index` (a snapshot taken for a bundle). */
  indexFile?: string | undefined;
}

/**
 * Read one repository's state: refs and HEAD, the index's listing, config,
 * hooks, `info/` files, stash reflog and shallow boundary. Read-only: with
 * `GIT_OPTIONAL_LOCKS=0` and no command that refreshes, the index is never
 * rewritten. Two git commands (three with remotes in the config).
 */
export async function readRepositoryState(gitDir: string, relativeGitDir: string, options: ReadStateOptions = {}): Promise<RepositoryState> {
  const configRaw = await readFile(path.join(gitDir, 'config'), 'utf8').catch(() => '');
  const headText = (await readFile(path.join(gitDir, 'HEAD'), 'utf8')).trim();
  const indexFile = options.indexFile ?? path.join(gitDir, 'index');
  const hasIndex = (await lstatOrUndefined(indexFile)) !== undefined;
  const [refsOut, indexOut, remotes] = await Promise.all([
    runGit([`--git-dir=${gitDir}`, 'for-each-ref', '--format=%(objectname) %(refname) %(symref)'], options),
    hasIndex
      ? runGit([`--git-dir=${gitDir}`, 'ls-files', '--stage', '-z'], { ...options, env: { GIT_INDEX_FILE: indexFile }, cwd: gitDir })
      : Promise.resolve(undefined),
    /^\s*\[remote\b/im.test(configRaw) ? readRemotes(gitDir, options) : Promise.resolve([]),
  ]);
  const refs: ListedRef[] = [];
  for (const line of refsOut.stdout.toString('utf8').split('\n')) {
    const m = /^([0-9a-f]+) (\S+) ?(\S*)$/.exec(line);
    if (m) refs.push({ oid: m[1]!, ref: m[2]!, symref: m[3]! });
  }
  let head: SavedHead;
  const symbolic = /^ref:\s*(\S+)$/.exec(headText);
  if (symbolic) {
    const ref = symbolic[1]!;
    const commit = refs.find((r) => r.ref === ref)?.oid;
    head = commit === undefined ? { kind: 'branch', ref } : { kind: 'branch', ref, commit };
  } else if (/^[0-9a-f]{40,64}$/.test(headText)) {
    head = { kind: 'detached', commit: headText };
  } else {
    throw new GitError('GIT_UNSUPPORTED', `${gitDir}/HEAD is neither a ref nor an object id`, { details: { gitDir } });
  }
  const indexListing = indexOut?.stdout ?? null;
  const { hooks, skipped } = await readHooks(gitDir);
  const info: Array<{ name: string; text: string }> = [];
  for (const name of INFO_FILES) {
    const text = await readFile(path.join(gitDir, 'info', name), 'utf8').catch(() => undefined);
    if (text !== undefined) info.push({ name, text });
  }
  const stashLog = await readFile(path.join(gitDir, 'logs', 'refs', 'stash'), 'utf8').catch(() => '');
  const shallowText = await readFile(path.join(gitDir, 'shallow'), 'utf8').catch(() => undefined);
  return {
    gitDir,
    relativeGitDir,
    objectFormat: objectFormatOf(configRaw),
    head,
    refs,
    indexListing,
    unmerged: indexListing !== null && hasUnmergedEntries(indexListing),
    config: redactConfig(configRaw),
    remotes,
    hooks,
    skippedHooks: skipped,
    info,
    stash: parseReflog(stashLog),
    shallow: shallowText === undefined ? null : shallowText.split('\n').filter((l) => /^[0-9a-f]{40,64}$/.test(l)).sort(),
  };
}

/** Entries of `ls-files -s -z` are `<mode> <oid> <stage>\t<path>\0`. */
function hasUnmergedEntries(listing: Buffer): boolean {
  for (const entry of listing.toString('utf8').split('\0')) {
    const m = /^\d+ [0-9a-f]+ (\d)\t/.exec(entry);
    if (m && m[1] !== '0') return true;
  }
  return false;
}

async function readRemotes(gitDir: string, options: GitOptions): Promise<SavedRemote[]> {
  const out = await runGit(['config', '--file', path.join(gitDir, 'config'), '--null', '--get-regexp', '^remote\\..*\\.(url|pushurl)$'], {
    ...options,
    okExitCodes: [1],
  });
  const remotes = new Map<string, SavedRemote>();
  for (const item of out.stdout.toString('utf8').split('\0')) {
    const newline = item.indexOf('\n');
    if (newline < 0) continue;
    const key = item.slice(0, newline);
    const value = redactUrls(item.slice(newline + 1));
    const m = /^remote\.(.+)\.(url|pushurl)$/.exec(key);
    if (!m) continue;
    const name = m[1]!;
    const remote = remotes.get(name) ?? { name, fetchUrls: [], pushUrls: [] };
    (m[2] === 'url' ? remote.fetchUrls : remote.pushUrls).push(value);
    remotes.set(name, remote);
  }
  return [...remotes.values()];
}

async function readHooks(gitDir: string): Promise<{ hooks: SavedHook[]; skipped: string[] }> {
  const dir = path.join(gitDir, 'hooks');
  const names = await readdir(dir).catch(() => [] as string[]);
  const hooks: SavedHook[] = [];
  const skipped: string[] = [];
  for (const name of names.sort()) {
    if (name.endsWith('.sample')) continue;
    const file = path.join(dir, name);
    const stat = await lstatOrUndefined(file);
    if (stat === undefined || stat.isDirectory()) continue;
    if (!stat.isFile()) {
      skipped.push(name);
      continue;
    }
    const content = await readFile(file).catch(() => undefined);
    if (content === undefined) {
      skipped.push(name);
      continue;
    }
    hooks.push({ name, mode: stat.mode & 0o777, base64: content.toString('base64') });
  }
  return { hooks, skipped };
}

/**
 * The fingerprint of repositories' states: SHA-256 over a canonical text of
 * HEAD, every ref (with symbolic targets), the index listing, the config
 * (as saved, credentials removed), hooks (name, mode, content), `info/` files,
 * the stash's entries and the shallow boundary; the first 32 hex digits,
 * prefixed with the fingerprint's version (`g1-`).
 */
export function fingerprintOf(states: readonly RepositoryState[]): string {
  const hash = createHash('sha256');
  const line = (...parts: string[]): void => {
    hash.update(parts.join('\u0001'));
    hash.update('\n');
  };
  for (const s of states) {
    line('repository', s.relativeGitDir, s.objectFormat);
    line('head', s.head.kind === 'branch' ? `ref:${s.head.ref}` : s.head.commit);
    for (const r of s.refs) line('ref', r.ref, r.oid, r.symref);
    line('index', s.indexListing === null ? 'none' : createHash('sha256').update(s.indexListing).digest('hex'));
    line('config', createHash('sha256').update(s.config.text).digest('hex'));
    for (const h of s.hooks) line('hook', h.name, String(h.mode), createHash('sha256').update(h.base64).digest('hex'));
    for (const f of s.info) line('info', f.name, createHash('sha256').update(f.text).digest('hex'));
    for (const e of s.stash) line('stash', e.commit, e.message);
    line('shallow', ...(s.shallow ?? ['none']));
  }
  return `g1-${hash.digest('hex').slice(0, 32)}`;
}

/** States of a workspace's repository and of its submodules, in the order of {@link RepositoryInfo.submodules}. */
export async function readWorkspaceStates(
  found: Extract<RepositoryInfo, { kind: 'repository' }>,
  options: GitOptions & { indexFiles?: ReadonlyMap<string, string> } = {},
): Promise<RepositoryState[]> {
  const dirs = ['', ...found.submodules];
  return Promise.all(
    dirs.map((relative) =>
      readRepositoryState(relative === '' ? found.gitDir : path.join(found.gitDir, ...relative.split('/')), relative, {
        ...options,
        indexFile: options.indexFiles?.get(relative),
      }),
    ),
  );
}

/**
 * A short string that changes when the repository's refs (all of them,
 * packed or loose, HEAD, the stash), its index (what is staged), its local
 * config, hooks or `info/exclude` change, or those of a submodule; and not
 * when only working-tree files change. Costs two or three `git` commands per
 * repository (`for-each-ref`, `ls-files --stage`) and a few small file reads:
 * no object is packed. Compare it with the one of the last push
 * (`GitSidecar.fingerprint`) to skip writing an unchanged bundle.
 *
 * @throws {GitError} `GIT_UNAVAILABLE`, `GIT_NOT_A_REPOSITORY`, `GIT_UNSUPPORTED`, `GIT_FAILED`.
 * @example
 * if ((await repositoryFingerprint(dir)) !== remembered) await createBundle(dir, outDir);
 */
export async function repositoryFingerprint(workspaceDir: string, options: GitOptions = {}): Promise<string> {
  await requireGit(options);
  const found = await requireRepository(workspaceDir);
  return fingerprintOf(await readWorkspaceStates(found, options));
}

export async function lstatOrUndefined(file: string): Promise<Stats | undefined> {
  try {
    return await lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw err;
  }
}
