// Child process for test/local/workspace-lock.test.ts: one WorkspaceLock on a
// workspace directory, driven by commands on stdin, so the parent can make
// several processes contend for one lock, SIGKILL a holder, or run one as
// another user.
//
//   node --import tsx test/helpers/lock-child.ts      (cwd: the repository root)
//
// Configuration: the environment variable S3WS_LOCK_CHILD (JSON):
//   { workspaceDir, staleAfterMs? }
//
// Commands on stdin, one JSON object per line:
//   {"cmd":"acquire","waitMs":0,"at":<epoch ms>?}  acquire (busy-waiting until `at`, when given, so
//                                                  that several children start within a millisecond)
//   {"cmd":"release"}                              release the held lock
//   {"cmd":"exit"}                                 exit at once, without releasing
// stdin closing releases the lock and exits.
//
// Replies on stdout, one JSON object per line:
//   {"event":"ready","pid":…}                               once, at start
//   {"event":"acquired","token":"…","lockPath":"…"}         acquire() returned a lock
//   {"event":"none"}                                        acquire() returned undefined (read-only)
//   {"event":"locked","code":"WORKSPACE_LOCKED","holder":{…},"lockPath":"…"}
//   {"event":"error","message":"…"}                         any other rejection
//   {"event":"released"}
import { createInterface } from 'node:readline';

import { WorkspaceLockedError } from '../../src/errors.js';
import { WorkspaceLock, type LockHandle } from '../../src/state/WorkspaceLock.js';

interface ChildConfig {
  workspaceDir: string;
  staleAfterMs?: number;
}

interface Command {
  cmd: 'acquire' | 'release' | 'exit';
  waitMs?: number;
  at?: number;
}

function send(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

const raw = process.env.S3WS_LOCK_CHILD;
if (raw === undefined) throw new Error('S3WS_LOCK_CHILD is not set');
const cfg = JSON.parse(raw) as ChildConfig;
const lock = new WorkspaceLock(cfg.workspaceDir, cfg.staleAfterMs === undefined ? {} : { staleAfterMs: cfg.staleAfterMs });
let held: LockHandle | undefined;

async function acquire(command: Command): Promise<void> {
  if (command.at !== undefined) {
    const wait = command.at - Date.now() - 5;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    while (Date.now() < command.at) {
      // spin: start within a millisecond of the other children
    }
  }
  try {
    held = await lock.acquire({ waitMs: command.waitMs ?? 0 });
    send(held === undefined ? { event: 'none' } : { event: 'acquired', token: held.token, lockPath: held.lockPath });
  } catch (error) {
    if (error instanceof WorkspaceLockedError) send({ event: 'locked', code: error.code, holder: error.holder, lockPath: error.lockPath });
    else send({ event: 'error', message: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
  }
}

async function release(): Promise<void> {
  await held?.release();
  held = undefined;
  send({ event: 'released' });
}

// Commands run one after another, in the order they arrive.
let queue: Promise<void> = Promise.resolve();
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const command = JSON.parse(line) as Command;
  if (command.cmd === 'exit') process.exit(0); // no release: what a crash or a forgotten release leaves
  queue = queue.then(() => (command.cmd === 'acquire' ? acquire(command) : release()));
});
lines.on('close', () => {
  void queue.then(release).then(() => process.exit(0));
});
send({ event: 'ready', pid: process.pid });
