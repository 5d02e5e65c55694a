// Programmatic launcher for scripts/local-s3.mjs (a local s3rver), shared by
// the test suite, examples/demo.ts and the benchmarks.
//
//   import { startLocalS3 } from '../scripts/local-s3-launcher.mjs';
//   const s3 = await startLocalS3({ buckets: ['demo'] });
//   // ... new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: 'us-east-1',
//   //       credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
//   //       requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' })
//   await s3.stop();
//
// The server runs in a child process started with `process.execPath
// --openssl-legacy-provider`, so it uses the same Node binary as the caller.
// The child is unref'd once it is ready: a caller that forgets stop() can still
// exit, and the child then shuts itself down (and deletes its temporary
// directory) when its stdin pipe closes.

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./local-s3.mjs', import.meta.url));
const START_DEADLINE_MS = 15_000;
const STOP_GRACE_MS = 10_000;
const STDERR_LIMIT = 64 * 1024;

/** Children not yet stopped; killed synchronously if this process exits first. */
const live = new Set();
let exitHookInstalled = false;
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) {
      try {
        child.kill('SIGTERM');
      } catch {
        // already gone
      }
    }
  });
}

/**
 * Start a local S3 server (s3rver) in a child process.
 *
 * @param {{ buckets?: string[] }} [options]
 * @returns {Promise<{ endpoint: string, port: number, directory: string, stop: () => Promise<void> }>}
 */
export async function startLocalS3({ buckets = [] } = {}) {
  const args = ['--openssl-legacy-provider', SCRIPT];
  for (const bucket of buckets) args.push('--bucket', bucket);

  const child = spawn(process.execPath, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    windowsHide: true,
  });
  live.add(child);
  installExitHook();

  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    // Keep draining for the child's whole life (a full pipe would block it);
    // remember only the tail for error messages.
    stderr = (stderr + chunk).slice(-STDERR_LIMIT);
  });
  child.stdin.on('error', () => {}); // EPIPE if the child is already gone
  child.on('error', () => {}); // reported through the promises below

  let exited = false;
  let exitCode = null;
  let exitSignal = null;
  const exitPromise = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      exitCode = code;
      exitSignal = signal;
      live.delete(child);
      resolve();
    });
    // Spawn failure (e.g. ENOENT) emits 'error' and possibly no 'exit'.
    child.once('error', () => {
      if (child.pid === undefined) {
        exited = true;
        live.delete(child);
        resolve();
      }
    });
  });

  const describe = () =>
    `${exitCode !== null ? `exit code ${exitCode}` : exitSignal ? `signal ${exitSignal}` : 'still running'}` +
    (stderr.trim() ? `; stderr:\n${stderr.trim()}` : '; no stderr output');

  const info = await new Promise((resolve, reject) => {
    let stdout = '';
    let settled = false;
    const settle = (fn, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn(value);
    };
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      settle(
        reject,
        new Error(`local S3 server did not report ready within ${START_DEADLINE_MS} ms (${describe()})`),
      );
    }, START_DEADLINE_MS);

    child.once('error', (err) => {
      settle(reject, new Error(`could not start local S3 server: ${err.message}`, { cause: err }));
    });
    child.once('exit', () => {
      // Let the stderr pipe drain before composing the message.
      setImmediate(() =>
        settle(reject, new Error(`local S3 server exited before it was ready (${describe()})`)),
      );
    });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      if (settled) return; // keep draining, ignore
      stdout += chunk;
      const newline = stdout.indexOf('\n');
      if (newline === -1) return;
      const line = stdout.slice(0, newline);
      try {
        const parsed = JSON.parse(line);
        if (typeof parsed.endpoint !== 'string' || typeof parsed.port !== 'number') {
          throw new Error('missing endpoint/port');
        }
        settle(resolve, parsed);
      } catch (err) {
        child.kill('SIGTERM');
        settle(
          reject,
          new Error(
            `local S3 server printed an unexpected line ${JSON.stringify(line)}: ${err.message} (${describe()})`,
          ),
        );
      }
    });
  });

  // Ready: don't let the child keep the caller's event loop alive.
  setRef(child, false);

  let stopping;
  const stop = () => {
    stopping ??= (async () => {
      if (exited) return;
      setRef(child, true); // keep the loop alive until the child is gone
      // Closing stdin asks for a graceful shutdown; SIGTERM does the same and
      // also works if stdin handling is broken.
      child.stdin.end();
      child.kill('SIGTERM');
      let timer;
      const timedOut = await Promise.race([
        exitPromise.then(() => false),
        new Promise((resolve) => {
          timer = setTimeout(() => resolve(true), STOP_GRACE_MS);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        child.kill('SIGKILL');
        await exitPromise;
      }
    })();
    return stopping;
  };

  return { endpoint: info.endpoint, port: info.port, directory: info.directory, stop };
}

function setRef(child, ref) {
  for (const handle of [child, child.stdin, child.stdout, child.stderr]) {
    if (!handle) continue;
    if (ref) handle.ref?.();
    else handle.unref?.();
  }
}
