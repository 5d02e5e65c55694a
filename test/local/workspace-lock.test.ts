// WorkspaceLock (src/state/WorkspaceLock.ts) on real temp dirs, against real
// processes: test/helpers/lock-child.ts (run with `node --import tsx`) holds,
// waits for or races for the lock, or is SIGKILLed while holding it.
//
// "Another host" is a lock file written by this test with another hostname:
// only its heartbeat (mtime) can tell whether it is abandoned. The read-only
// case runs in a child as user `nobody` when the tests run as root (root
// ignores directory permissions), in this process otherwise.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, rename, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it, onTestFinished } from 'vitest';

import { ConfigError, SyncError, WorkspaceLockedError, isSyncError } from '../../src/index.js';
import * as utils from '../../src/utils.js';
import { WorkspaceLock, type LockHandle } from '../../src/state/WorkspaceLock.js';
import { tempDir } from '../helpers/sync-fixture.js';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHILD = fileURLToPath(new URL('../helpers/lock-child.ts', import.meta.url));
const STATE_DIR = '.s3-workspace-sync';
const RACE_ROUNDS = 20;

// ---------------------------------------------------------------- child processes

type Reply = { event: string } & Record<string, unknown>;

interface Child {
  pid: number;
  /** The next reply (in order). */
  next(): Promise<Reply>;
  send(command: Record<string, unknown>): void;
  /** SIGKILL, and wait until the process is gone. */
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

/** Start a lock child on `workspaceDir`; killed when the test finishes. */
/** Whether user 65534 can start this Node binary (needed to test permissions when running as root). */
function unprivilegedCanRunNode(): boolean {
  const r = spawnSync(process.execPath, ['-e', '0'], { uid: 65534, gid: 65534, timeout: 10_000 });
  return r.error === undefined && r.status === 0;
}

/** Whether the read-only cases can run here: not root, or root with a Node binary user 65534 can start. */
const canTestReadOnly = process.getuid?.() !== 0 || unprivilegedCanRunNode();

async function startChild(workspaceDir: string, options: { staleAfterMs?: number; uid?: number; gid?: number } = {}): Promise<Child> {
  const config = { workspaceDir, ...(options.staleAfterMs === undefined ? {} : { staleAfterMs: options.staleAfterMs }) };
  const proc: ChildProcess = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    cwd: REPO_ROOT,
    env: { ...process.env, S3WS_LOCK_CHILD: JSON.stringify(config) },
    stdio: ['pipe', 'pipe', 'pipe'],
    ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.gid ?? options.uid }),
  });
  const replies: Reply[] = [];
  const waiting: Array<(r: Reply) => void> = [];
  let stderr = '';
  let buffer = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  proc.stdout?.on('data', (d: Buffer) => {
    buffer += d.toString();
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      const reply = JSON.parse(buffer.slice(0, i)) as Reply;
      buffer = buffer.slice(i + 1);
      const w = waiting.shift();
      if (w) w(reply);
      else replies.push(reply);
    }
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  onTestFinished(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
  });
  const child: Child = {
    pid: proc.pid ?? -1,
    next: () =>
      new Promise<Reply>((resolve, reject) => {
        const r = replies.shift();
        if (r) return resolve(r);
        const timer = setTimeout(() => reject(new Error(`no reply from lock child within 8 s; stderr: ${stderr.slice(-2000)}`)), 8_000);
        waiting.push((reply) => {
          clearTimeout(timer);
          resolve(reply);
        });
      }),
    send: (command) => proc.stdin?.write(`${JSON.stringify(command)}\n`),
    kill: async () => {
      proc.kill('SIGKILL');
      await exited;
    },
    exited,
  };
  expect(await child.next()).toMatchObject({ event: 'ready' });
  return child;
}

/** Start a child and have it take the lock. */
async function holder(workspaceDir: string, options: { staleAfterMs?: number } = {}): Promise<Child & { token: string }> {
  const child = await startChild(workspaceDir, options);
  child.send({ cmd: 'acquire' });
  const reply = await child.next();
  expect(reply).toMatchObject({ event: 'acquired' });
  return Object.assign(child, { token: reply.token as string });
}

// ---------------------------------------------------------------- lock files written by hand

const lockPathOf = (dir: string): string => path.join(dir, STATE_DIR, 'lock');

/** A pid that no process has: one of a process that just exited. */
function deadPid(): number {
  const pid = spawnSync(process.execPath, ['-e', '']).pid;
  if (pid === undefined) throw new Error('could not spawn');
  return pid;
}

async function writeLock(dir: string, fields: Record<string, unknown>, ageMs = 0): Promise<void> {
  await mkdir(path.join(dir, STATE_DIR), { recursive: true });
  const content = {
    format: 's3-workspace-sync/lock',
    pid: 4242,
    host: 'other-host.example',
    startedAt: new Date().toISOString(),
    token: 'theirs',
    ...fields,
  };
  await writeRaw(dir, JSON.stringify(content), ageMs);
}

async function writeRaw(dir: string, raw: string, ageMs = 0): Promise<void> {
  await mkdir(path.join(dir, STATE_DIR), { recursive: true });
  await writeFile(lockPathOf(dir), raw);
  if (ageMs > 0) await age(lockPathOf(dir), ageMs);
}

async function age(file: string, ms: number): Promise<void> {
  const then = new Date(Date.now() - ms);
  await utimes(file, then, then);
}

async function tokenOnDisk(dir: string): Promise<string | undefined> {
  try {
    return (JSON.parse(await readFile(lockPathOf(dir), 'utf8')) as { token?: string }).token;
  } catch {
    return undefined;
  }
}

async function stateEntries(dir: string): Promise<string[]> {
  return (await readdir(path.join(dir, STATE_DIR))).sort();
}

/** acquire() that must be refused: the WorkspaceLockedError, and how long it took. */
async function refused(lock: WorkspaceLock, waitMs: number): Promise<{ error: WorkspaceLockedError; ms: number }> {
  const started = performance.now();
  const error = await lock.acquire({ waitMs }).then(
    (h) => {
      void h?.release();
      throw new Error('acquire() succeeded; expected WorkspaceLockedError');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WorkspaceLockedError);
  return { error: error as WorkspaceLockedError, ms: performance.now() - started };
}

async function acquired(lock: WorkspaceLock, waitMs = 0): Promise<LockHandle> {
  const handle = await lock.acquire({ waitMs });
  if (handle === undefined) throw new Error('acquire() returned undefined');
  onTestFinished(() => handle.release());
  return handle;
}

// ---------------------------------------------------------------- tests

describe('WorkspaceLock: one holder at a time', () => {
  it('writes the lock file: format, pid, host, start time, token; release removes it', { timeout: 5_000 }, async () => {
    const dir = await tempDir();
    const handle = await acquired(new WorkspaceLock(dir));
    expect(handle.lockPath).toBe(lockPathOf(dir));
    const content = JSON.parse(await readFile(handle.lockPath, 'utf8')) as Record<string, unknown>;
    expect(content).toMatchObject({ format: 's3-workspace-sync/lock', pid: process.pid, host: hostname(), token: handle.token });
    expect(Date.parse(content.startedAt as string)).toBeGreaterThan(Date.now() - 5_000);
    expect(handle.token).toMatch(/^[0-9a-f]{32}$/);
    await handle.release();
    await handle.release(); // idempotent
    expect(await stateEntries(dir)).toEqual([]);
    expect(handle.lost.aborted).toBe(false);
  });

  it('a second acquirer in another process waits, and gets the lock when the first releases', { timeout: 15_000 }, async () => {
    const dir = await tempDir();
    const first = await holder(dir);
    const started = performance.now();
    const waiting = new WorkspaceLock(dir).acquire({ waitMs: 8_000 });
    setTimeout(() => first.send({ cmd: 'release' }), 400);
    const handle = await waiting;
    expect(handle).toBeDefined();
    onTestFinished(() => handle?.release());
    const ms = performance.now() - started;
    expect(ms).toBeGreaterThanOrEqual(350);
    expect(ms).toBeLessThan(3_000);
    expect(await first.next()).toMatchObject({ event: 'released' });
    expect(await tokenOnDisk(dir)).toBe(handle?.token);
  });

  it('times out with a WorkspaceLockedError that names the holder', { timeout: 15_000 }, async () => {
    const dir = await tempDir();
    const child = await holder(dir);
    const { error, ms } = await refused(new WorkspaceLock(dir), 300);
    expect(ms).toBeGreaterThanOrEqual(290);
    expect(ms).toBeLessThan(2_000);
    expect(error.code).toBe('WORKSPACE_LOCKED');
    expect(isSyncError(error)).toBe(true);
    expect(error.lockPath).toBe(lockPathOf(dir));
    expect(error.holder).toEqual({ pid: child.pid, host: hostname(), startedAt: expect.any(String) });
    expect(error.message).toContain(`pid ${child.pid}`);
    expect(error.details).toMatchObject({ lockPath: lockPathOf(dir), holder: error.holder });
    expect(await tokenOnDisk(dir)).toBe(child.token); // untouched
  });

  it('waitMs 0 (the default) tries once', { timeout: 15_000 }, async () => {
    const dir = await tempDir();
    await holder(dir);
    const { ms } = await refused(new WorkspaceLock(dir), 0);
    expect(ms).toBeLessThan(500);
  });

  it('two instances in one process exclude each other too', { timeout: 5_000 }, async () => {
    const dir = await tempDir();
    const first = await acquired(new WorkspaceLock(dir));
    const { error } = await refused(new WorkspaceLock(dir), 100);
    expect(error.holder.pid).toBe(process.pid);
    await first.release();
    await acquired(new WorkspaceLock(dir));
  });

  it('the lock is per directory: a path through a symlink meets the same lock, reported at the real path', { timeout: 5_000 }, async () => {
    const base = await tempDir();
    const dir = path.join(base, 'real');
    await mkdir(dir);
    const { symlink } = await import('node:fs/promises');
    await symlink(dir, path.join(base, 'link'));
    const handle = await acquired(new WorkspaceLock(path.join(base, 'link')));
    expect(handle.lockPath).toBe(lockPathOf(dir));
    await refused(new WorkspaceLock(dir), 0);
  });
});

describe('WorkspaceLock: stale locks', () => {
  it('a SIGKILLed holder on this machine: its lock is taken over at once', { timeout: 15_000 }, async () => {
    const dir = await tempDir();
    const child = await holder(dir);
    await child.kill();
    const started = performance.now();
    const handle = await acquired(new WorkspaceLock(dir)); // default staleAfterMs (60 s): the pid decides
    expect(performance.now() - started).toBeLessThan(2_000); // far below staleAfterMs
    expect(handle.token).not.toBe(child.token);
    expect(await tokenOnDisk(dir)).toBe(handle.token);
    expect(await stateEntries(dir)).toEqual(['lock']); // the stale file was removed, not left aside
  });

  it('a holder that exited without releasing: taken over at once', { timeout: 15_000 }, async () => {
    const dir = await tempDir();
    const child = await holder(dir);
    child.send({ cmd: 'exit' });
    await child.exited;
    expect(await tokenOnDisk(dir)).toBe(child.token);
    await acquired(new WorkspaceLock(dir));
  });

  it('a dead pid in another pid namespace or boot (same hostname) is not trusted: the heartbeat decides', { timeout: 5_000 }, async () => {
    const dir = await tempDir();
    const pid = deadPid();
    await writeLock(dir, { host: hostname(), pid, pidScope: 'linux:another-boot:pid:[4026531836]' });
    await refused(new WorkspaceLock(dir), 100);
    await writeLock(dir, { host: hostname(), pid }); // no scope: a pid that cannot be checked
    await refused(new WorkspaceLock(dir), 100);
    await age(lockPathOf(dir), 61_000);
    await acquired(new WorkspaceLock(dir));
  });

  it('another host, fresh heartbeat: respected; old heartbeat: taken over', { timeout: 5_000 }, async () => {
    const dir = await tempDir();
    await writeLock(dir, { host: 'other-host.example', pid: process.pid }); // a live pid here means nothing there
    const { error } = await refused(new WorkspaceLock(dir), 200);
    expect(error.holder).toMatchObject({ host: 'other-host.example', pid: process.pid });
    await age(lockPathOf(dir), 30_000);
    await refused(new WorkspaceLock(dir), 0); // 30 s < 60 s
    await refused(new WorkspaceLock(dir, { staleAfterMs: 60_000 }), 0);
    await age(lockPathOf(dir), 61_000);
    const handle = await acquired(new WorkspaceLock(dir));
    expect(await tokenOnDisk(dir)).toBe(handle.token);
  });

  it("a waiter uses the holder's staleAfterMs when it is larger than its own", { timeout: 5_000 }, async () => {
    const dir = await tempDir();
    await writeLock(dir, { staleAfterMs: 600_000 }, 120_000);
    await refused(new WorkspaceLock(dir, { staleAfterMs: 1_000 }), 0);
    await writeLock(dir, { staleAfterMs: 100_000 }, 120_000);
    await acquired(new WorkspaceLock(dir, { staleAfterMs: 1_000 }));
  });

  it('another host, live holder: its heartbeat keeps the lock; once it dies, taken over after staleAfterMs', { timeout: 15_000 }, async () => {
    const dir = await tempDir();
    const child = await holder(dir, { staleAfterMs: 400 }); // heartbeat every 100 ms
    // Make it look like another host's lock (same file, same token): only its heartbeat can keep it.
    const content = JSON.parse(await readFile(lockPathOf(dir), 'utf8')) as Record<string, unknown>;
    const before = await stat(lockPathOf(dir), { bigint: true });
    await writeFile(lockPathOf(dir), JSON.stringify({ ...content, host: 'other-host.example' })); // in place
    expect((await stat(lockPathOf(dir), { bigint: true })).ino).toBe(before.ino);
    await refused(new WorkspaceLock(dir, { staleAfterMs: 400 }), 1_200); // 3 × staleAfterMs: it kept beating
    await child.kill();
    const started = performance.now();
    await acquired(new WorkspaceLock(dir, { staleAfterMs: 400 }), 5_000);
    const ms = performance.now() - started;
    expect(ms).toBeGreaterThanOrEqual(150); // not at once: the pid of another host cannot be checked
    expect(ms).toBeLessThan(2_500);
  });

  it.each([
    ['an empty file', ''],
    ['half-written JSON', '{"format":"s3-workspace-sync/lock","pid":12'],
    ['not JSON', 'garbage\n'],
    ['JSON of another format', '{"format":"something-else","pid":1,"host":"h","startedAt":"x","token":"t"}'],
    ['a pid of 0 (would signal a process group)', `{"format":"s3-workspace-sync/lock","pid":0,"host":"${hostname()}","startedAt":"x","token":"t"}`],
  ])('garbage lock file (%s): respected within the grace, taken over after it', { timeout: 5_000 }, async (_name, raw) => {
    const dir = await tempDir();
    await writeRaw(dir, raw);
    const { error } = await refused(new WorkspaceLock(dir), 150);
    expect(error.message).toContain('lock');
    await age(lockPathOf(dir), 1_000);
    await refused(new WorkspaceLock(dir), 0); // 1 s: still within the 2 s grace
    await age(lockPathOf(dir), 3_000);
    const handle = await acquired(new WorkspaceLock(dir));
    expect(await tokenOnDisk(dir)).toBe(handle.token);
  });

  it(`two processes racing to take over one stale lock: exactly one wins (${RACE_ROUNDS} rounds)`, { timeout: 20_000 }, async () => {
    const dir = await tempDir();
    const a = await startChild(dir);
    const b = await startChild(dir);
    const kinds = ['dead pid here', 'old heartbeat elsewhere', 'old garbage'] as const;
    const dead = deadPid();
    const scope = await ownPidScope(await tempDir());
    const wins = { a: 0, b: 0 };
    for (let round = 0; round < RACE_ROUNDS; round++) {
      const kind = kinds[round % kinds.length];
      if (kind === 'dead pid here') await writeLock(dir, { host: hostname(), pid: dead, pidScope: scope });
      else if (kind === 'old heartbeat elsewhere') await writeLock(dir, { token: `old-${round}` }, 120_000);
      else await writeRaw(dir, '{"format":"s3-wor', 10_000);

      const at = Date.now() + 30;
      a.send({ cmd: 'acquire', waitMs: 0, at });
      b.send({ cmd: 'acquire', waitMs: 0, at });
      const [ra, rb] = await Promise.all([a.next(), b.next()]);
      const events = [ra.event, rb.event].sort();
      expect(events, `round ${round} (${kind}): ${JSON.stringify([ra, rb])}`).toEqual(['acquired', 'locked']);
      const [winner, winnerReply, loserReply] = ra.event === 'acquired' ? [a, ra, rb] : [b, rb, ra];
      wins[winner === a ? 'a' : 'b']++;
      // the loser names the winner, or nobody: it read the winner's file between its create and its write
      expect([winner.pid, undefined], `round ${round}`).toContain((loserReply.holder as { pid?: number }).pid);
      expect(await tokenOnDisk(dir), `round ${round}`).toBe(winnerReply.token);
      expect(await stateEntries(dir), `round ${round}: nothing left aside`).toEqual(['lock']);
      winner.send({ cmd: 'release' });
      expect(await winner.next()).toMatchObject({ event: 'released' });
      expect(await stateEntries(dir)).toEqual([]);
    }
    expect(wins.a + wins.b).toBe(RACE_ROUNDS);
  });

  it('leftover lock.stale-* files (a crash mid-takeover) are removed once untouched for 2 × staleAfterMs', { timeout: 5_000 }, async () => {
    const dir = await tempDir();
    await mkdir(path.join(dir, STATE_DIR), { recursive: true });
    const old = path.join(dir, STATE_DIR, 'lock.stale-0123');
    const fresh = path.join(dir, STATE_DIR, 'lock.stale-4567');
    await writeFile(old, '{}');
    await writeFile(fresh, '{}');
    await age(old, 130_000);
    await acquired(new WorkspaceLock(dir));
    expect(await stateEntries(dir)).toEqual(['lock', 'lock.stale-4567']);
  });
});

describe('WorkspaceLock: release and loss', () => {
  it("release never removes someone else's lock (token check)", { timeout: 5_000 }, async () => {
    const dir = await tempDir();
    const handle = await new WorkspaceLock(dir).acquire();
    if (handle === undefined) throw new Error('no lock');
    // someone took it over (as if this process had stalled): a new file at the same path
    await rename(handle.lockPath, `${handle.lockPath}.gone`);
    await writeLock(dir, { token: 'the-new-holder' });
    await handle.release();
    expect(await tokenOnDisk(dir)).toBe('the-new-holder');
    // same token, another file (rewritten by hand): still not removed by a release that already ran
    await handle.release();
    expect(await tokenOnDisk(dir)).toBe('the-new-holder');
  });

  it('a holder whose lock is taken over learns it at its next heartbeat (lost)', { timeout: 5_000 }, async () => {
    const dir = await tempDir();
    const handle = await acquired(new WorkspaceLock(dir, { staleAfterMs: 200 }));
    const lost = new Promise<unknown>((resolve) => handle.lost.addEventListener('abort', () => resolve(handle.lost.reason)));
    await rename(handle.lockPath, `${handle.lockPath}.gone`);
    await writeLock(dir, { token: 'the-new-holder', host: 'other-host.example' });
    const reason = await lost;
    expect(reason).toBeInstanceOf(WorkspaceLockedError);
    expect((reason as WorkspaceLockedError).holder.host).toBe('other-host.example');
    await handle.release();
    expect(await tokenOnDisk(dir)).toBe('the-new-holder');
  });

  it('the heartbeat refreshes the mtime of a held lock', { timeout: 5_000 }, async () => {
    const dir = await tempDir();
    const handle = await acquired(new WorkspaceLock(dir, { staleAfterMs: 200 }));
    await age(handle.lockPath, 10_000);
    await new Promise((r) => setTimeout(r, 200));
    expect(Date.now() - (await stat(handle.lockPath)).mtimeMs).toBeLessThan(1_000);
    expect(handle.lost.aborted).toBe(false);
  });
});

describe('WorkspaceLock: abort, read-only, options', () => {
  it('aborting the signal while waiting rejects at once with its reason', { timeout: 15_000 }, async () => {
    const dir = await tempDir();
    const child = await holder(dir);
    const controller = new AbortController();
    const reason = new Error('stop waiting');
    const waiting = new WorkspaceLock(dir).acquire({ waitMs: 10_000, signal: controller.signal });
    await new Promise((r) => setTimeout(r, 250));
    const aborted = performance.now();
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    expect(performance.now() - aborted).toBeLessThan(250); // not the next poll (up to 500 ms), nor waitMs
    expect(await tokenOnDisk(dir)).toBe(child.token);
  });

  it('an already aborted signal rejects before anything is created', { timeout: 5_000 }, async () => {
    const dir = await tempDir();
    const reason = new Error('already');
    await expect(new WorkspaceLock(dir).acquire({ signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    expect(await readdir(dir)).toEqual([]);
  });

  // Skipped when running as root and user 65534 cannot execute this Node binary (as root, permissions are
  // ignored, so the check runs in a child of user 65534): CI's private Node 22/24 installs are not
  // executable by it; the system Node run and CI's unprivileged step cover the case.
  it.skipIf(!canTestReadOnly).each([
    ['the workspace', false],
    ['the state folder', true],
  ])('%s not writable: resolves to undefined (no lock, proceed)', { timeout: 15_000 }, async (_name, stateDirExists) => {
    const base = await tempDir();
    const dir = path.join(base, 'ws');
    await mkdir(dir);
    await writeFile(path.join(dir, 'a.txt'), 'a');
    if (stateDirExists) await mkdir(path.join(dir, STATE_DIR));
    await chmod(path.join(dir, stateDirExists ? STATE_DIR : '.'), 0o555);
    onTestFinished(() => chmod(path.join(dir, stateDirExists ? STATE_DIR : '.'), 0o755));
    if (process.getuid?.() === 0) {
      // root ignores permissions: ask an unprivileged process
      await chmod(base, 0o755);
      const child = await startChild(dir, { uid: 65534, gid: 65534 });
      child.send({ cmd: 'acquire', waitMs: 1_000 });
      expect(await child.next()).toEqual({ event: 'none' });
    } else {
      await expect(new WorkspaceLock(dir).acquire({ waitMs: 1_000 })).resolves.toBeUndefined();
    }
    expect(await readdir(dir)).toEqual(stateDirExists ? [STATE_DIR, 'a.txt'] : ['a.txt']);
  });

  it('WorkspaceLockedError: a branded SyncError, exported by both entries', { timeout: 5_000 }, () => {
    const error = new WorkspaceLockedError('/w/.s3-workspace-sync/lock', { pid: 7, host: 'h\nforged', startedAt: 'then' });
    expect(utils.WorkspaceLockedError).toBe(WorkspaceLockedError);
    expect((error as unknown as Record<symbol, unknown>)[Symbol.for('s3-workspace-sync/SyncError')]).toEqual(['SyncError', 'WorkspaceLockedError']);
    expect(error).toBeInstanceOf(SyncError);
    expect(error.name).toBe('WorkspaceLockedError');
    expect(error.holder.host).toBe('h\\u000aforged'); // escaped: a lock file cannot forge log lines
    const foreign = Object.defineProperty(new Error('from another build'), Symbol.for('s3-workspace-sync/SyncError'), {
      value: Object.freeze(['SyncError', 'WorkspaceLockedError']),
    });
    expect(foreign instanceof WorkspaceLockedError).toBe(true);
    expect(new ConfigError('x') instanceof WorkspaceLockedError).toBe(false);
  });

  it('refuses bad options with a ConfigError', { timeout: 5_000 }, async () => {
    const dir = await tempDir();
    expect(() => new WorkspaceLock(dir, { staleAfterMs: 10 })).toThrow(ConfigError);
    expect(() => new WorkspaceLock(dir, { staleAfterMs: Number.NaN })).toThrow(ConfigError);
    await expect(new WorkspaceLock(dir).acquire({ waitMs: -1 })).rejects.toBeInstanceOf(ConfigError);
    await expect(new WorkspaceLock(dir).acquire({ waitMs: Number.NaN })).rejects.toBeInstanceOf(ConfigError);
  });
});

/** The pidScope this machine writes into its locks (read from a lock this process takes). */
async function ownPidScope(dir: string): Promise<string | undefined> {
  const probe = path.join(dir, 'probe');
  await mkdir(probe, { recursive: true });
  const handle = await new WorkspaceLock(probe).acquire();
  const scope = (JSON.parse(await readFile(lockPathOf(probe), 'utf8')) as { pidScope?: string }).pidScope;
  await handle?.release();
  return scope;
}
