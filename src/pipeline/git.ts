/**
 * The workspace's git repository, with `git: 'bundle'`: a push saves it as
 * one bundle plus a sidecar under `<prefix>.s3-workspace-sync/git/` when it
 * changed since the last one this workspace wrote; a pull into a workspace
 * without `.git` restores it under the pulled files. The local work is
 * `src/git/` (docs/git-bundles.md); this module moves the two files and
 * decides what a failure means for the sync.
 *
 * Objects, and the order they are written in:
 * 1. `git/bundle-<sha256[0:16]>.bundle`: content-addressed, create-only
 *    (an existing one is the same bytes);
 * 2. `git/repository.json`: the commit point, replaced on condition that it
 *    is still the one this workspace last wrote or restored from (created
 *    only when it saw none);
 * 3. the previous bundle is deleted, only when this workspace uploaded it
 *    (and only that version: `If-Match` on the delete).
 *
 * Failures: a `GitError` or a storage error is one entry in
 * `result.failedFiles` at path `.git` (the bucket or the workspace does not
 * hold the repository: `success` is false); the files are synced
 * regardless. No `git` on the machine is one warning per instance, not a
 * failure: the option cannot be honoured there, and every sync of that
 * machine would fail otherwise.
 *
 * Costs: a push whose repository did not change runs two or three `git`
 * commands (the fingerprint) and makes no request. A pull makes one
 * conditional GET of the sidecar (a 304 when it has not changed since this
 * workspace last saw it); a restore adds one GET of the bundle.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { libraryFolder, STATE_DIR_NAME } from '../core/names.js';
import { GitError, StorageError, escapeForLog, isConditionRefused, messageOf } from '../errors.js';
import { md5Hex } from '../core/md5.js';
import { calculateFileHash } from '../local/hash.js';
import {
  createBundle,
  findRepository,
  gitAvailable,
  parseSidecar,
  repositoryFingerprint,
  repositoryMatches,
  restoreRepository,
  type GitSidecar,
} from '../git/bundle.js';
import type { GitRecord } from '../state/StateFile.js';
import type { FailedFile, SyncResult } from '../types.js';
import type { SyncCall, SyncContext } from './context.js';
import { readBody } from './generations.js';

/**
 * Path of a repository failure in `result.failedFiles`: the folder, with its
 * slash (no file of the sync has a path ending in `/`, so it is never
 * mistaken for a file's failure).
 */
export const GIT_PATH = '.git/';

/** Key of the sidecar: `<prefix>.s3-workspace-sync/git/repository.json`. */
export function sidecarKey(prefix: string): string {
  return `${libraryFolder(prefix)}git/repository.json`;
}

/** Key of a bundle, named by its content: `<prefix>.s3-workspace-sync/git/bundle-<first 16 hex of its SHA-256>.bundle`. */
export function bundleKey(prefix: string, sha256: string): string {
  return `${libraryFolder(prefix)}git/bundle-${sha256.slice(0, 16)}.bundle`;
}

/** Warnings already logged, per instance (missing git, an unsupported `.git`): once each. */
const warned = new WeakMap<SyncContext, Set<string>>();

/** Per instance: the ETag of a sidecar already found to differ from the workspace's `.git` (not adopted). */
const differing = new WeakMap<SyncContext, string>();

function warnOnce(ctx: SyncContext, key: string, message: string): void {
  let seen = warned.get(ctx);
  if (seen === undefined) warned.set(ctx, (seen = new Set()));
  if (seen.has(key)) return;
  seen.add(key);
  ctx.options.logger.warn(message);
}

function gitOptions(ctx: SyncContext, call: SyncCall): { git: string; signal?: AbortSignal } {
  return call.signal === undefined ? { git: ctx.options.gitBinary } : { git: ctx.options.gitBinary, signal: call.signal };
}

/** A folder for the bundle in the workspace's own never-synced folder, removed by the caller. */
async function scratch(root: string): Promise<string> {
  const base = path.join(root, STATE_DIR_NAME);
  await mkdir(base, { recursive: true });
  return mkdtemp(path.join(base, 'git-'));
}

/** The failure of the repository step, in the result (an abort is thrown instead). */
function fail(result: SyncResult, call: SyncCall, error: unknown, what: string): void {
  if (call.signal?.aborted) throw error;
  const code = error instanceof GitError || error instanceof StorageError ? error.code : 'GIT_FAILED';
  const failed: FailedFile = { path: GIT_PATH, error: `${what}: ${messageOf(error)}`, code };
  result.failedFiles.push(failed);
  result.errors.push(`${GIT_PATH}: ${failed.error}`);
}

function conflict(result: SyncResult, ctx: SyncContext, why: string): void {
  const key = sidecarKey(ctx.options.prefix);
  const error =
    `The repository was not saved: ${why}. Nothing was overwritten. To keep the bucket's repository, move this workspace's .git ` +
    `aside and pull (it is restored); to make this one the saved repository, delete ${escapeForLog(key)} and push again.`;
  result.failedFiles.push({ path: GIT_PATH, error, code: 'GIT_CONFLICT' });
  result.errors.push(`${GIT_PATH}: ${error}`);
}

/** The bucket's sidecar: `null` when there is none, `'unchanged'` when its ETag is still `known` (a 304). */
async function getSidecar(
  ctx: SyncContext,
  call: SyncCall,
  known: string | undefined,
): Promise<{ etag: string; text: string; sidecar: GitSidecar } | null | 'unchanged'> {
  try {
    const got = await ctx.store.get(sidecarKey(ctx.options.prefix), call.signal, known === undefined ? undefined : { ifNoneMatch: known });
    if (known !== undefined && got.etag === known) {
      got.body.destroy(); // a server that ignores If-None-Match
      return 'unchanged';
    }
    const text = (await readBody(got.body)).toString('utf8');
    return { etag: got.etag, text, sidecar: parseSidecar(text) };
  } catch (error) {
    if (error instanceof StorageError && error.code === 'NOT_MODIFIED') return 'unchanged';
    if (error instanceof StorageError && error.code === 'NOT_FOUND') return null;
    throw error;
  }
}

// ------------------------------------------------------------------ push

/**
 * After a push's files: save the repository when it changed since the last
 * bundle this workspace wrote (or restored). Never throws, except an abort.
 */
export async function pushRepository(ctx: SyncContext, call: SyncCall, root: string, result: SyncResult): Promise<void> {
  if (ctx.options.git !== 'bundle' || call.dryRun) return;
  const { logger } = ctx.options;
  const found = await findRepository(root);
  if (found.kind === 'none') return;
  if (found.kind === 'unsupported') {
    warnOnce(ctx, 'unsupported', `git: 'bundle': the repository of ${root} is not saved: ${found.reason}. Its files are pushed as usual.`);
    return;
  }
  const options = gitOptions(ctx, call);
  if ((await gitAvailable(options)) === undefined) {
    warnOnce(
      ctx,
      'no-git',
      `git: 'bundle' is set and ${root} holds a git repository, but "${ctx.options.gitBinary}" cannot be run (is git installed?): ` +
        'the repository is not saved. The files are pushed as usual.',
    );
    return;
  }
  const known = ctx.state.remote.git;
  let dir: string | undefined;
  try {
    const fingerprint = await repositoryFingerprint(root, options);
    if (known?.fingerprint === fingerprint) {
      logger.debug(`git: the repository did not change since the last bundle (${fingerprint}); nothing to save`);
      return;
    }
    // What the bucket holds now: checked before uploading anything, so that a repository
    // another writer saved is reported (and no orphan bundle is left) on any server.
    const current = await getSidecar(ctx, call, known?.sidecarEtag);
    let base: string | undefined; // the sidecar ETag to replace; undefined: create
    if (current === 'unchanged') base = known?.sidecarEtag;
    else if (current !== null) {
      if (current.sidecar.fingerprint === fingerprint) {
        // already saved (by an earlier process of this workspace whose state is gone, or another writer): adopt it
        ctx.state.learnRemote({ git: { fingerprint, sidecarEtag: current.etag } });
        logger.debug(`git: the bucket already holds this repository (${fingerprint}); nothing to save`);
        return;
      }
      conflict(
        result,
        ctx,
        known === undefined
          ? `the bucket already holds a repository (pushed ${escapeForLog(current.sidecar.createdAt)}) that this workspace did not write or restore`
          : `another writer saved a repository (pushed ${escapeForLog(current.sidecar.createdAt)}) since this workspace's last push or pull`,
      );
      return;
    }
    dir = await scratch(root);
    const created = await createBundle(root, dir, options);
    const wrote = created.sidecar.bundle === null || created.bundlePath === null ? undefined : await uploadBundle(ctx, call, created.bundlePath, created.sidecar.bundle);
    const body = Buffer.from(`${JSON.stringify(created.sidecar, null, 2)}\n`);
    let put: { etag: string };
    try {
      put = await putSidecar(ctx, call, body, base);
    } catch (error) {
      if (base !== undefined && error instanceof StorageError && error.code === 'NOT_FOUND') put = await putSidecar(ctx, call, body, undefined); // deleted meanwhile
      else if (isConditionRefused(error)) {
        conflict(result, ctx, 'another writer saved a repository while this push ran');
        return;
      } else throw error;
    }
    const record: GitRecord = { fingerprint: created.sidecar.fingerprint, sidecarEtag: put.etag };
    if (wrote !== undefined) {
      record.bundleKey = wrote.key;
      record.bundleEtag = wrote.etag;
    }
    ctx.state.learnRemote({ git: record });
    const size = created.sidecar.bundle?.size ?? 0;
    logger.info(`git: saved the repository (${size} bytes of bundle) to ${escapeForLog(libraryFolder(ctx.options.prefix))}git/`);
    for (const warning of created.sidecar.warnings) logger.info(`git: ${warning}`);
    // The previous bundle, when this workspace uploaded it and the new sidecar no longer names it.
    const previous = known?.bundleKey;
    if (previous !== undefined && known?.bundleEtag !== undefined && previous !== wrote?.key) {
      const failures = await ctx.store.deleteMany([{ key: previous, etag: known.bundleEtag }], call.signal).catch((error: unknown) => {
        if (call.signal?.aborted) throw error;
        return [{ key: previous, error: messageOf(error) }];
      });
      for (const f of failures) logger.debug(`git: the previous bundle ${escapeForLog(f.key)} was not deleted: ${f.error}`);
    }
  } catch (error) {
    fail(result, call, error, 'The repository could not be saved');
  } finally {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  }
}

/** Upload a bundle under its content-addressed key, create-only; an existing one (same name, same size) is it. */
async function uploadBundle(ctx: SyncContext, call: SyncCall, file: string, bundle: { size: number; sha256: string }): Promise<{ key: string; etag: string }> {
  const key = bundleKey(ctx.options.prefix, bundle.sha256);
  const md5 = await calculateFileHash(file, call.signal);
  try {
    const put = await ctx.store.put({
      key,
      body: () => createReadStream(file),
      size: bundle.size,
      md5,
      contentType: 'application/x-git-bundle',
      mtimeMs: Date.now(),
      ifNoneMatch: true,
      signal: call.signal,
    });
    return { key, etag: put.etag };
  } catch (error) {
    if (!isConditionRefused(error)) throw error;
    const info = await ctx.store.head(key, call.signal);
    if (info.size !== bundle.size) throw error; // a 16-hex-digit prefix collision, or damage: do not name it
    return { key, etag: info.etag };
  }
}

async function putSidecar(ctx: SyncContext, call: SyncCall, body: Buffer, base: string | undefined): Promise<{ etag: string }> {
  return ctx.store.put({
    key: sidecarKey(ctx.options.prefix),
    body,
    size: body.length,
    md5: md5Hex(body),
    contentType: 'application/json',
    mtimeMs: Date.now(),
    ...(base === undefined ? { ifNoneMatch: true } : { ifMatch: base }),
    signal: call.signal,
  });
}

// ------------------------------------------------------------------ pull

/**
 * After a pull's downloads: restore the repository into a workspace without
 * `.git` when the bucket holds one; a `.git` already there is left alone
 * (its match with the bucket's is logged). Never throws, except an abort.
 */
export async function pullRepository(ctx: SyncContext, call: SyncCall, root: string, result: SyncResult): Promise<void> {
  if (ctx.options.git !== 'bundle' || call.dryRun) return;
  const { logger } = ctx.options;
  const options = gitOptions(ctx, call);
  const known = ctx.state.remote.git;
  try {
    const present = await lstat(path.join(root, '.git')).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return false;
        throw error;
      },
    );
    if (present) {
      const current = await getSidecar(ctx, call, known?.sidecarEtag ?? differing.get(ctx));
      if (current === null || current === 'unchanged') return;
      if ((await gitAvailable(options)) === undefined) return; // nothing would be restored anyway
      if (await repositoryMatches(root, current.sidecar, options)) {
        ctx.state.learnRemote({ git: { fingerprint: current.sidecar.fingerprint, sidecarEtag: current.etag } });
        logger.debug(`git: ${root}/.git is the repository saved in the bucket`);
      } else {
        differing.set(ctx, current.etag); // said once per sidecar: the next pulls ask with If-None-Match
        logger.info(
          `git: ${root}/.git differs from the repository saved in the bucket (pushed ${escapeForLog(current.sidecar.createdAt)}); ` +
            'it is left alone (a pull never replaces a .git).',
        );
      }
      return;
    }
    if ((await gitAvailable(options)) === undefined) {
      const exists = await ctx.store.head(sidecarKey(ctx.options.prefix), call.signal).then(
        () => true,
        (error: unknown) => {
          if (error instanceof StorageError && error.code === 'NOT_FOUND') return false;
          throw error;
        },
      );
      if (exists) {
        warnOnce(
          ctx,
          'no-git',
          `git: 'bundle' is set and the bucket holds a git repository, but "${ctx.options.gitBinary}" cannot be run (is git installed?): ` +
            'it is not restored. The files are pulled as usual.',
        );
      }
      return;
    }
    await restore(ctx, call, root, options);
  } catch (error) {
    fail(result, call, error, 'The repository could not be restored');
  }
}

/** GET the sidecar and its bundle, then restore; once more when a push replaced the pair in between. */
async function restore(ctx: SyncContext, call: SyncCall, root: string, options: { git: string; signal?: AbortSignal }): Promise<void> {
  const { logger } = ctx.options;
  for (let attempt = 1; ; attempt++) {
    const current = await getSidecar(ctx, call, undefined);
    if (current === null || current === 'unchanged') return;
    const { sidecar } = current;
    const dir = await scratch(root);
    try {
      let bundlePath: string | null = null;
      if (sidecar.bundle !== null) {
        bundlePath = path.join(dir, 'repository.bundle');
        try {
          const got = await ctx.store.get(bundleKey(ctx.options.prefix, sidecar.bundle.sha256), call.signal);
          await pipeline(got.body, createWriteStream(bundlePath), call.signal === undefined ? {} : { signal: call.signal });
        } catch (error) {
          if (attempt < 2 && error instanceof StorageError && error.code === 'NOT_FOUND') continue; // replaced by a push meanwhile
          throw error;
        }
        logger.debug(`git: downloaded the bundle (${(await stat(bundlePath)).size} bytes)`);
      }
      try {
        await restoreRepository(root, bundlePath, current.text, options);
      } catch (error) {
        // a crash between a push's bundle and sidecar cannot cause this (the bundle goes first); a push racing this pull can
        if (attempt < 2 && error instanceof GitError && error.code === 'GIT_BUNDLE_MISMATCH') continue;
        throw error;
      }
      ctx.state.learnRemote({ git: { fingerprint: sidecar.fingerprint, sidecarEtag: current.etag } });
      const head = sidecar.repository.head;
      logger.info(`git: restored ${root}/.git (${head.kind === 'branch' ? head.ref.replace(/^refs\/heads\//, 'branch ') : `detached at ${head.commit}`})`);
      for (const warning of sidecar.warnings) logger.info(`git: ${warning}`);
      return;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
