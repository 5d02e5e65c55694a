/**
 * The sidecar: what a git bundle does not carry, saved beside it as JSON.
 * Pure (no I/O): the schema, its validation, and the credential redaction of
 * a repository's config text.
 */
import { GitError } from './GitError.js';

/** Version of the sidecar schema; a sidecar of another version is refused (`GIT_INVALID_SIDECAR`). */
export const SIDECAR_SCHEMA = 1;
/** The `kind` field of every sidecar, so that no other JSON is mistaken for one. */
export const SIDECAR_KIND = 's3-workspace-sync/git-repository';

/** Where the repository's HEAD was. */
export type SavedHead =
  /** On a branch (`ref: refs/heads/main`); `commit` is absent for an unborn branch (no commits yet). */
  | { kind: 'branch'; ref: string; commit?: string | undefined }
  /** Detached at a commit. */
  | { kind: 'detached'; commit: string };

/** A remote, as the config names it (credentials removed from the URLs: see {@link SavedRepository.redacted}). */
export interface SavedRemote {
  name: string;
  fetchUrls: string[];
  pushUrls: string[];
}

/** A hook that was not a `*.sample`, with its permission bits. */
export interface SavedHook {
  name: string;
  /** Permission bits (`0o755` is 493). */
  mode: number;
  /** Content, base64. */
  base64: string;
}

/** One entry of the stash (oldest first), with its reflog identity so that `git stash list` reads the same. */
export interface SavedStashEntry {
  commit: string;
  message: string;
  /** `Name <email>` of the reflog line. */
  who: string;
  /** `<seconds> <tz>` of the reflog line. */
  when: string;
}

/** How the index was saved. */
export type SavedIndex =
  /** As a tree, committed under `refs/s3-workspace-sync/.../index` in the bundle: staged changes survive. */
  | { kind: 'tree'; tree: string }
  /** Not saved (an unmerged index, or one git could not read): restored from HEAD; staged changes come back as unstaged. */
  | { kind: 'head'; reason: string }
  /** No index (a repository with nothing staged and no commits). */
  | { kind: 'none' };

/** One repository: the workspace's, or a submodule's under `.git/modules/`. */
export interface SavedRepository {
  /** Where its git dir lives, relative to the workspace's `.git/`: `''` for the repository itself, `modules/<name>` for a submodule. */
  gitDir: string;
  /** Prefix of its refs in the bundle: `''` for the workspace's repository, `refs/s3-workspace-sync/m/<n>/` for a submodule. */
  refPrefix: string;
  objectFormat: 'sha1' | 'sha256';
  head: SavedHead;
  /** Symbolic refs other than HEAD (`refs/remotes/origin/HEAD` → `refs/remotes/origin/main`): a bundle carries them as plain refs. */
  symrefs: Array<{ ref: string; target: string }>;
  /** Number of refs in the bundle (informational). */
  refCount: number;
  index: SavedIndex;
  stash: SavedStashEntry[];
  remotes: SavedRemote[];
  /** The repository's own config file (`.git/config`), credentials removed. */
  config: string;
  /** What was removed from `config` (e.g. `http.extraheader`, `URL credentials`); never the values. */
  redacted: string[];
  hooks: SavedHook[];
  /** `info/exclude`, `info/attributes`, `info/sparse-checkout`: text files that change what `git status` shows. */
  info: Array<{ name: string; text: string }>;
  /** Commit ids of a shallow clone's boundary (`.git/shallow`), or `null` for a complete history. */
  shallow: string[] | null;
}

/** The JSON saved beside a bundle. */
export interface GitSidecar {
  schema: typeof SIDECAR_SCHEMA;
  kind: typeof SIDECAR_KIND;
  /** ISO time of the push that made it. */
  createdAt: string;
  /** `git --version` of the machine that made it. */
  gitVersion: string;
  /** {@link repositoryFingerprint} of the repository when it was saved. */
  fingerprint: string;
  /** The bundle file, or `null` when there was nothing to bundle (no commits, nothing staged). */
  bundle: { size: number; sha256: string } | null;
  /** The workspace's repository. */
  repository: SavedRepository;
  /** Submodule repositories found under `.git/modules/` (each restored into its place there). */
  submodules: SavedRepository[];
  /** What the bundle and the sidecar do not carry (reflogs, LFS objects, linked worktrees, a merge in progress…). */
  warnings: string[];
}

/** Names of `info/` files carried. */
export const INFO_FILES = ['exclude', 'attributes', 'sparse-checkout'] as const;

const OID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
const HOOK_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const SUBMODULE_SEGMENT = /^[^\0/\\]+$/;

/** A ref name that is safe to hand to git (a subset of `git check-ref-format`). */
export function isSafeRefName(name: string): boolean {
  if (!/^refs\/[A-Za-z0-9._\-/+@]+$/.test(name) && name !== 'HEAD') return false;
  if (name.includes('..') || name.includes('//') || name.includes('@{') || name.endsWith('/') || name.endsWith('.lock') || name.endsWith('.')) return false;
  return !name.split('/').some((part) => part.startsWith('.'));
}

/** Parse and check a sidecar (from the bucket: untrusted). Throws `GIT_INVALID_SIDECAR`. */
export function parseSidecar(json: string | Buffer | unknown): GitSidecar {
  let value: unknown = json;
  if (typeof json === 'string' || Buffer.isBuffer(json)) {
    try {
      value = JSON.parse(json.toString());
    } catch (err) {
      throw invalid('it is not JSON', err);
    }
  }
  const s = asObject(value, 'the sidecar');
  if (s.kind !== SIDECAR_KIND) throw invalid(`kind is not "${SIDECAR_KIND}"`);
  if (s.schema !== SIDECAR_SCHEMA) throw invalid(`schema ${String(s.schema)} is not ${SIDECAR_SCHEMA} (made by another version of the library)`);
  str(s.createdAt, 'createdAt');
  str(s.gitVersion, 'gitVersion');
  str(s.fingerprint, 'fingerprint');
  if (s.bundle !== null) {
    const b = asObject(s.bundle, 'bundle');
    if (!Number.isSafeInteger(b.size) || (b.size as number) < 0) throw invalid('bundle.size');
    if (typeof b.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(b.sha256)) throw invalid('bundle.sha256');
  }
  checkRepository(s.repository, 'repository', true);
  if (!Array.isArray(s.submodules)) throw invalid('submodules');
  s.submodules.forEach((m, i) => checkRepository(m, `submodules[${i}]`, false));
  if (!Array.isArray(s.warnings) || !s.warnings.every((w) => typeof w === 'string')) throw invalid('warnings');
  return s as unknown as GitSidecar;
}

function checkRepository(value: unknown, where: string, root: boolean): void {
  const r = asObject(value, where);
  if (root) {
    if (r.gitDir !== '' || r.refPrefix !== '') throw invalid(`${where}.gitDir`);
  } else {
    const gitDir = str(r.gitDir, `${where}.gitDir`);
    const segments = gitDir.split('/');
    if (segments[0] !== 'modules' || segments.length < 2 || !segments.every((p) => SUBMODULE_SEGMENT.test(p) && p !== '.' && p !== '..')) {
      throw invalid(`${where}.gitDir "${gitDir}" is not under modules/`);
    }
    if (typeof r.refPrefix !== 'string' || !/^refs\/s3-workspace-sync\/m\/\d+\/$/.test(r.refPrefix)) throw invalid(`${where}.refPrefix`);
  }
  if (r.objectFormat !== 'sha1' && r.objectFormat !== 'sha256') throw invalid(`${where}.objectFormat`);
  const head = asObject(r.head, `${where}.head`);
  if (head.kind === 'branch') {
    if (typeof head.ref !== 'string' || !head.ref.startsWith('refs/') || !isSafeRefName(head.ref)) throw invalid(`${where}.head.ref`);
    if (head.commit !== undefined) oid(head.commit, `${where}.head.commit`);
  } else if (head.kind === 'detached') {
    oid(head.commit, `${where}.head.commit`);
  } else throw invalid(`${where}.head.kind`);
  if (!Array.isArray(r.symrefs)) throw invalid(`${where}.symrefs`);
  for (const link of r.symrefs) {
    const l = asObject(link, `${where}.symrefs[]`);
    if (typeof l.ref !== 'string' || !isSafeRefName(l.ref) || typeof l.target !== 'string' || !isSafeRefName(l.target)) throw invalid(`${where}.symrefs`);
  }
  if (!Number.isSafeInteger(r.refCount)) throw invalid(`${where}.refCount`);
  const index = asObject(r.index, `${where}.index`);
  if (index.kind === 'tree') oid(index.tree, `${where}.index.tree`);
  else if (index.kind === 'head') str(index.reason, `${where}.index.reason`);
  else if (index.kind !== 'none') throw invalid(`${where}.index.kind`);
  if (!Array.isArray(r.stash)) throw invalid(`${where}.stash`);
  for (const entry of r.stash) {
    const e = asObject(entry, `${where}.stash[]`);
    oid(e.commit, `${where}.stash[].commit`);
    str(e.message, `${where}.stash[].message`);
    if (typeof e.who !== 'string' || !/^[^<>\n]*<[^<>\n]*>$/.test(e.who)) throw invalid(`${where}.stash[].who`);
    if (typeof e.when !== 'string' || !/^\d+ [+-]\d{4}$/.test(e.when)) throw invalid(`${where}.stash[].when`);
  }
  if (!Array.isArray(r.remotes)) throw invalid(`${where}.remotes`);
  for (const remote of r.remotes) {
    const m = asObject(remote, `${where}.remotes[]`);
    str(m.name, `${where}.remotes[].name`);
    if (!Array.isArray(m.fetchUrls) || !Array.isArray(m.pushUrls)) throw invalid(`${where}.remotes[]`);
  }
  str(r.config, `${where}.config`);
  if (!Array.isArray(r.redacted) || !r.redacted.every((x) => typeof x === 'string')) throw invalid(`${where}.redacted`);
  if (!Array.isArray(r.hooks)) throw invalid(`${where}.hooks`);
  for (const hook of r.hooks) {
    const h = asObject(hook, `${where}.hooks[]`);
    if (typeof h.name !== 'string' || !HOOK_NAME.test(h.name)) throw invalid(`${where}.hooks[].name "${String(h.name)}"`);
    if (!Number.isInteger(h.mode) || (h.mode as number) < 0 || (h.mode as number) > 0o777) throw invalid(`${where}.hooks[].mode`);
    str(h.base64, `${where}.hooks[].base64`);
  }
  if (!Array.isArray(r.info)) throw invalid(`${where}.info`);
  for (const file of r.info) {
    const f = asObject(file, `${where}.info[]`);
    if (!(INFO_FILES as readonly unknown[]).includes(f.name)) throw invalid(`${where}.info[].name`);
    str(f.text, `${where}.info[].text`);
  }
  if (r.shallow !== null) {
    if (!Array.isArray(r.shallow)) throw invalid(`${where}.shallow`);
    r.shallow.forEach((c) => oid(c, `${where}.shallow[]`));
  }
}

function asObject(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${where} is not an object`);
  return value as Record<string, unknown>;
}

function str(value: unknown, where: string): string {
  if (typeof value !== 'string') throw invalid(`${where} is not a string`);
  return value;
}

function oid(value: unknown, where: string): string {
  if (typeof value !== 'string' || !OID.test(value)) throw invalid(`${where} is not an object id`);
  return value;
}

function invalid(why: string, cause?: unknown): GitError {
  return new GitError('GIT_INVALID_SIDECAR', `Invalid git sidecar: ${why}`, cause === undefined ? {} : { cause });
}

/**
 * A repository's config text with its credentials removed, and what was
 * removed (kinds, never values):
 * - `http.extraheader` lines (how CI checkouts keep a token: `AUTHORIZATION: basic …`);
 * - the user info of `http(s)://user:token@host` URLs (the whole user info:
 *   a personal access token is often the user name), and the password of any
 *   other `scheme://user:password@` URL.
 *
 * The rest (comments, order, other sections) is kept byte for byte, so a
 * restored repository's config is this text.
 */
export function redactConfig(text: string): { text: string; redacted: string[] } {
  const redacted = new Set<string>();
  const lines = text.split('\n');
  const kept: string[] = [];
  let dropping = false;
  for (const line of lines) {
    if (dropping) {
      dropping = /\\\s*$/.test(line);
      continue;
    }
    if (/^\s*extraheader\s*=/i.test(line)) {
      redacted.add('http.extraheader');
      dropping = /\\\s*$/.test(line);
      continue;
    }
    kept.push(line);
  }
  const out = redactUrls(kept.join('\n'), () => redacted.add('URL credentials'));
  return { text: out, redacted: [...redacted] };
}

/** `text` with URL credentials removed (see {@link redactConfig}); `found` is called once per URL changed. */
export function redactUrls(text: string, found: () => void = () => undefined): string {
  return text.replace(/\b([A-Za-z][A-Za-z0-9+.-]*):\/\/([^\s/@"']+)@/g, (match, scheme: string, userinfo: string) => {
    if (/^https?$/i.test(scheme)) {
      found();
      return `${scheme}://`;
    }
    const colon = userinfo.indexOf(':');
    if (colon < 0) return match;
    found();
    return `${scheme}://${userinfo.slice(0, colon)}@`;
  });
}

/** One line of a reflog (`logs/refs/stash`): old and new ids, identity, time, message. */
export interface ReflogEntry {
  old: string;
  commit: string;
  who: string;
  when: string;
  message: string;
}

/** Parse a reflog file's text; lines that do not parse are skipped. */
export function parseReflog(text: string): ReflogEntry[] {
  const out: ReflogEntry[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{40,64}) ([0-9a-f]{40,64}) ([^<>\n]*<[^<>\n]*>) (\d+ [+-]\d{4})(?:\t(.*))?$/.exec(line);
    if (m) out.push({ old: m[1]!, commit: m[2]!, who: m[3]!, when: m[4]!, message: m[5] ?? '' });
  }
  return out;
}
