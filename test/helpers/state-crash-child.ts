// Child process for test/faults/state-crash.test.ts: runs ONE pull or push of
// a workspace against the local S3 server with `node:fs` instrumented, so the
// parent can list every filesystem call the library makes inside the state
// directory (trace mode) and then SIGKILL the process right before or right
// after any one of them (kill mode), or make one of them fail (fail mode).
//
//   node --import tsx test/helpers/state-crash-child.ts      (cwd: the repository root)
//
// Configuration comes from the environment variable S3WS_STATE_CRASH_CHILD (JSON):
//   { endpoint, bucket, prefix, workspaceDir, stateDir, operation: 'pull' | 'push',
//     kill?: { step, when: 'before' | 'after' }, fail?: { step, code } }
//
// A "step" is one mutating call (open, write, sync, close, rename, unlink,
// mkdir, …; see MUTATING) whose path — or whose file descriptor's / FileHandle's
// path — lies inside the state directory. Steps are numbered from 0 in the
// order they start. Reads (stat, readFile, readdir…) are reported but are not
// steps: killing around a read changes nothing on disk that killing around the
// neighbouring steps does not. Neither are calls in the recovery area
// (`recovered/…`, see RECOVERY).
//
// Protocol on stdout, one JSON object per line, written synchronously (fd 1):
//   {"event":"fs","step":3,"op":"rename","path":"state-<id>.json.<hex>.tmp -> state-<id>.json"}
//   {"event":"fs","step":null,"op":"readFile","path":"state-<id>.json"}     (a read)
//   {"event":"kill","step":3,"when":"after","op":"rename","path":"…"}      right before SIGKILL
//   {"event":"fail","step":2,"op":"…","path":"…","code":"EIO"}               an injected error
//   {"event":"warn","message":"…"}                                          the library logged a warning
//   {"event":"start"} / {"event":"done","result":{…}} / {"event":"error","message":"…"}
// Paths are relative to the state directory, with the random parts replaced
// (`state-<id>`, `.<hex>.tmp`, `recovered/<stamp>`), so traces of different
// runs compare equal.
//
// The patch is applied to the CommonJS objects (`require('node:fs')` and its
// `promises`, plus the FileHandle prototype) and published to ESM named imports
// with syncBuiltinESMExports() BEFORE the library is imported (dynamically).
import { createRequire, syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface ChildConfig {
  endpoint: string;
  bucket: string;
  prefix: string;
  workspaceDir: string;
  stateDir: string;
  operation: 'pull' | 'push';
  kill?: { step: number; when: 'before' | 'after' };
  fail?: { step: number; code: string };
}

const raw = process.env.S3WS_STATE_CRASH_CHILD;
if (raw === undefined) throw new Error('S3WS_STATE_CRASH_CHILD is not set');
const cfg = JSON.parse(raw) as ChildConfig;
if (cfg.operation !== 'pull' && cfg.operation !== 'push') throw new Error(`unknown operation ${String(cfg.operation)}`);

const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fs = require('node:fs') as typeof import('node:fs');
const fsp = fs.promises;
const writeOut = fs.writeSync.bind(fs);

function send(message: Record<string, unknown>): void {
  // Synchronous write to fd 1 (with the unpatched writeSync): the line is in the pipe before any SIGKILL.
  const line = `${JSON.stringify(message)}\n`;
  const buf = Buffer.from(line);
  let off = 0;
  while (off < buf.length) off += writeOut(1, buf, off, buf.length - off);
}

// ---------------------------------------------------------------- what is "inside the state directory"

const roots = [...new Set([path.resolve(cfg.stateDir), path.join(fs.realpathSync(cfg.workspaceDir), path.relative(cfg.workspaceDir, cfg.stateDir))])];

function toPath(arg: unknown): string | undefined {
  if (typeof arg === 'string') return path.resolve(arg);
  if (Buffer.isBuffer(arg)) return path.resolve(arg.toString());
  if (arg instanceof URL) return arg.protocol === 'file:' ? fileURLToPath(arg) : undefined;
  return undefined;
}

/** The path relative to the state directory, normalised; undefined when outside it. */
function inside(arg: unknown): string | undefined {
  const p = toPath(arg);
  if (p === undefined) return undefined;
  for (const root of roots) {
    if (p === root) return '.';
    if (p.startsWith(root + path.sep)) return normalise(p.slice(root.length + 1));
  }
  return undefined;
}

function normalise(rel: string): string {
  return rel
    .replace(/state-[0-9a-f]{16}/g, 'state-<id>')
    .replace(/\.[0-9a-f]{12}\.tmp$/, '.<hex>.tmp')
    .replace(/^recovered\/[^/]+/, 'recovered/<stamp>');
}

// ---------------------------------------------------------------- steps

let nextStep = 0;

function die(step: number, when: 'before' | 'after', op: string, rel: string): never {
  send({ event: 'kill', step, when, op, path: rel });
  process.kill(process.pid, 'SIGKILL');
  // SIGKILL to ourselves is delivered before kill(2) returns; never go on if it somehow is not.
  const cell = new Int32Array(new SharedArrayBuffer(4));
  for (;;) Atomics.wait(cell, 0, 0, 1000);
}

function injected(op: string, rel: string, code: string): NodeJS.ErrnoException {
  const messages: Record<string, string> = { EIO: 'i/o error', ENOSPC: 'no space left on device', EROFS: 'read-only file system' };
  const error = new Error(`${code}: ${messages[code] ?? 'injected error'} (injected by state-crash-child), ${op} '${rel}'`) as NodeJS.ErrnoException;
  error.code = code;
  error.syscall = op;
  return error;
}

type Kind = 'sync' | 'promise' | 'callback';

/**
 * Calls in the recovery area (`recovered/…`, where a pull moves local files
 * aside) are reported but are not steps: they belong to the transfers, not to
 * the state save, and their order follows the downloads' (concurrent) order.
 */
const RECOVERY = /(^|-> )recovered(\/|$)/;

/**
 * Run `call` as step (or read) `op` on `rel`. `kind` says how the call reports
 * completion, so "after" means after it completed (a promise settled, a
 * callback was called) and an injected failure is reported the same way.
 */
function around(kind: Kind, op: string, rel: string, mutating: boolean, args: unknown[], call: (args: unknown[]) => unknown): unknown {
  if (!mutating || RECOVERY.test(rel)) {
    send({ event: 'fs', step: null, op, path: rel });
    return call(args);
  }
  const step = nextStep++;
  send({ event: 'fs', step, op, path: rel });
  const kill = cfg.kill !== undefined && cfg.kill.step === step ? cfg.kill.when : undefined;
  if (kill === 'before') die(step, 'before', op, rel);
  if (cfg.fail !== undefined && cfg.fail.step === step) {
    send({ event: 'fail', step, op, path: rel, code: cfg.fail.code });
    const error = injected(op, rel, cfg.fail.code);
    if (kind === 'promise') return Promise.reject(error);
    if (kind === 'callback') {
      const cb = args[args.length - 1] as (e: unknown) => void;
      process.nextTick(() => cb(error));
      return undefined;
    }
    throw error;
  }
  if (kill !== 'after') return call(args);
  if (kind === 'callback') {
    const cb = args[args.length - 1] as (...a: unknown[]) => void;
    return call([...args.slice(0, -1), (...a: unknown[]) => (die(step, 'after', op, rel), cb(...a))]);
  }
  let result: unknown;
  try {
    result = call(args);
  } catch (error) {
    die(step, 'after', op, rel);
    throw error;
  }
  if (kind === 'promise') {
    return (result as Promise<unknown>).then(
      () => die(step, 'after', op, rel),
      () => die(step, 'after', op, rel),
    );
  }
  die(step, 'after', op, rel);
}

const MUTATING = new Set([
  'open', 'writeFile', 'appendFile', 'rename', 'unlink', 'rm', 'rmdir', 'mkdir', 'mkdtemp', 'copyFile', 'cp', 'link', 'symlink',
  'truncate', 'chmod', 'chown', 'utimes', 'lutimes',
  'write', 'writev', 'fsync', 'fdatasync', 'close', 'ftruncate', 'futimes', 'fchmod',
  'FileHandle.write', 'FileHandle.writev', 'FileHandle.writeFile', 'FileHandle.appendFile', 'FileHandle.truncate',
  'FileHandle.sync', 'FileHandle.datasync', 'FileHandle.close', 'FileHandle.chmod', 'FileHandle.utimes',
]);
const READS = ['readFile', 'readdir', 'stat', 'lstat', 'access', 'realpath', 'opendir', 'statfs', 'readlink', 'exists'];
const TWO_PATHS = new Set(['rename', 'copyFile', 'cp', 'link', 'symlink']);
/** Descriptor-based calls (fs.writeSync(fd, …) etc.). */
const FD_OPS = ['write', 'writev', 'fsync', 'fdatasync', 'close', 'ftruncate', 'futimes', 'fchmod', 'read', 'fstat'];

/** fds opened inside the state directory (by fs.open*, or behind a FileHandle) -> their relative path. */
const fds = new Map<number, string>();
/** FileHandles opened inside the state directory -> their relative path. */
const handles = new WeakMap<object, string>();

/** A path outside the state directory, for the trace: `<ws>/…` inside the workspace. */
function outside(arg: unknown): string {
  const p = toPath(arg) ?? String(arg);
  const ws = path.resolve(cfg.workspaceDir);
  return p.startsWith(ws + path.sep) ? `<ws>/${p.slice(ws.length + 1)}` : `(outside) ${p}`;
}

function relOfPaths(op: string, args: unknown[]): string | undefined {
  if (TWO_PATHS.has(op)) {
    const a = inside(args[0]);
    const b = inside(args[1]);
    if (a === undefined && b === undefined) return undefined;
    return `${a ?? outside(args[0])} -> ${b ?? outside(args[1])}`;
  }
  if (typeof args[0] === 'number') return fds.get(args[0]);
  return inside(args[0]);
}

type AnyFn = (...args: unknown[]) => unknown;

/** Keep the original's own properties (`realpathSync.native`, `util.promisify.custom`…) on its wrapper. */
function withProps(wrapper: AnyFn, orig: AnyFn): AnyFn {
  for (const key of Reflect.ownKeys(orig)) {
    if (key === 'length' || key === 'name' || key === 'prototype') continue;
    Object.defineProperty(wrapper, key, Object.getOwnPropertyDescriptor(orig, key)!);
  }
  return wrapper;
}

function patchPathFn(target: Record<string, unknown>, name: string, op: string, kind: Kind, mutating: boolean, onOpened?: (fd: number, rel: string) => void): void {
  const orig = target[name];
  if (typeof orig !== 'function') return;
  const fn = orig as AnyFn;
  target[name] = withProps(function (this: unknown, ...args: unknown[]): unknown {
    const rel = relOfPaths(op, args);
    if (rel === undefined) return fn.apply(this, args);
    const call = (a: unknown[]): unknown => {
      if (onOpened === undefined) return fn.apply(this, a);
      if (kind === 'sync') {
        const fd = fn.apply(this, a) as number;
        onOpened(fd, rel);
        return fd;
      }
      // callback
      const cb = a[a.length - 1] as (e: unknown, fd?: number) => void;
      return fn.apply(this, [...a.slice(0, -1), (e: unknown, fd?: number) => (e == null && fd !== undefined && onOpened(fd, rel), cb(e, fd))]);
    };
    return around(kind, op, rel, mutating, args, call);
  }, fn);
}

function patchFdFn(name: string, op: string, kind: Kind, mutating: boolean): void {
  const orig = (fs as unknown as Record<string, unknown>)[name];
  if (typeof orig !== 'function') return;
  const fn = orig as AnyFn;
  (fs as unknown as Record<string, unknown>)[name] = withProps(function (this: unknown, ...args: unknown[]): unknown {
    const fd = args[0];
    const rel = typeof fd === 'number' ? fds.get(fd) : undefined;
    if (rel === undefined) return fn.apply(this, args);
    if (op === 'close') fds.delete(fd as number);
    return around(kind, op, rel, mutating, args, (a) => fn.apply(this, a));
  }, fn);
}

const fsObj = fs as unknown as Record<string, unknown>;
const fspObj = fsp as unknown as Record<string, unknown>;

for (const op of [...MUTATING].filter((o) => !o.startsWith('FileHandle.') && !FD_OPS.includes(o))) {
  const opened = op === 'open' ? (fd: number, rel: string) => fds.set(fd, rel) : undefined;
  patchPathFn(fsObj, `${op}Sync`, op, 'sync', true, opened);
  patchPathFn(fsObj, op, op, 'callback', true, opened);
}
for (const op of READS) {
  patchPathFn(fsObj, `${op}Sync`, op, 'sync', false);
  if (op !== 'exists') patchPathFn(fsObj, op, op, 'callback', false);
}
for (const op of FD_OPS) {
  const mutating = op !== 'read' && op !== 'fstat';
  patchFdFn(`${op}Sync`, op, 'sync', mutating);
  patchFdFn(op, op, 'callback', mutating);
}

// fs.promises: path-based calls; open() registers the FileHandle (and its fd).
for (const op of [...MUTATING].filter((o) => !o.startsWith('FileHandle.') && !FD_OPS.includes(o))) {
  const orig = fspObj[op];
  if (typeof orig !== 'function') continue;
  const fn = orig as AnyFn;
  fspObj[op] = function (this: unknown, ...args: unknown[]): unknown {
    const rel = relOfPaths(op, args);
    if (rel === undefined) return fn.apply(this, args);
    const call = (a: unknown[]): unknown => {
      const p = fn.apply(this, a) as Promise<unknown>;
      if (op !== 'open') return p;
      return p.then((fh) => {
        handles.set(fh as object, rel);
        fds.set((fh as { fd: number }).fd, rel);
        patchOwnClose(fh as { fd: number; close: AnyFn }, rel);
        return fh;
      });
    };
    return around('promise', op, rel, true, args, call);
  };
}
for (const op of READS) {
  const orig = fspObj[op];
  if (typeof orig !== 'function') continue;
  const fn = orig as AnyFn;
  fspObj[op] = function (this: unknown, ...args: unknown[]): unknown {
    const rel = relOfPaths(op, args);
    if (rel === undefined) return fn.apply(this, args);
    return around('promise', op, rel, false, args, (a) => fn.apply(this, a));
  };
}

/** FileHandle#close is an own property of each handle (a class field), not a prototype method. */
function patchOwnClose(fh: { fd: number; close: AnyFn }, rel: string): void {
  if (!Object.prototype.hasOwnProperty.call(fh, 'close')) return; // then the prototype's (patched below) is used
  const orig = fh.close;
  const fd = fh.fd;
  fh.close = withProps(function (this: unknown, ...args: unknown[]): unknown {
    fds.delete(fd);
    return around('promise', 'FileHandle.close', rel, true, args, (a) => orig.apply(this, a));
  }, orig);
}

// The FileHandle prototype (one class for every handle).
{
  const probe = await fsp.open(process.execPath, 'r');
  const proto = Object.getPrototypeOf(probe) as Record<string, unknown>;
  await probe.close();
  for (const op of [...MUTATING].filter((o) => o.startsWith('FileHandle.'))) {
    const name = op.slice('FileHandle.'.length);
    const orig = proto[name];
    if (typeof orig !== 'function') continue;
    const fn = orig as AnyFn;
    proto[name] = function (this: object, ...args: unknown[]): unknown {
      const rel = handles.get(this);
      if (rel === undefined) return fn.apply(this, args);
      if (name === 'close') fds.delete((this as { fd: number }).fd);
      return around('promise', op, rel, true, args, (a) => fn.apply(this, a));
    };
  }
}

syncBuiltinESMExports();

// ---------------------------------------------------------------- the operation

const { S3Client } = await import('@aws-sdk/client-s3');
const { S3WorkspaceSync } = await import('../../src/index.js');

async function main(): Promise<void> {
  const client = new S3Client({
    endpoint: cfg.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const logger = {
    debug: () => undefined,
    info: () => undefined,
    warn: (message: string) => send({ event: 'warn', message }),
    error: (message: string) => send({ event: 'warn', message: `[error] ${message}` }),
  };
  const sync = new S3WorkspaceSync({
    bucket: cfg.bucket,
    prefix: cfg.prefix,
    workspaceDir: cfg.workspaceDir,
    s3Client: client,
    logger,
    downloadConcurrency: 4,
    uploadConcurrency: 4,
  });
  send({ event: 'start' });
  try {
    const result = cfg.operation === 'pull' ? await sync.pull() : await sync.push();
    const { skippedFiles, plan, ...rest } = result;
    void plan;
    send({ event: 'done', result: { ...rest, skipped: skippedFiles.length } });
  } finally {
    client.destroy();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    send({ event: 'error', message: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
    process.exit(1);
  },
);
