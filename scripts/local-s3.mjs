#!/usr/bin/env node
// Local S3-compatible server (s3rver) for tests, the demo and benchmarks.
//
//   node --openssl-legacy-provider scripts/local-s3.mjs [--bucket NAME]...
//
// Starts s3rver in-process on 127.0.0.1 with an OS-assigned port and a fresh
// temporary directory, then prints exactly ONE line of JSON to stdout:
//
//   {"endpoint":"http://127.0.0.1:PORT","port":PORT,"directory":"/tmp/local-s3-XXXX"}
//
// Nothing else is ever written to stdout (s3rver runs silent); diagnostics go
// to stderr. Credentials are s3rver's fixed pair: S3RVER / S3RVER, path-style.
//
// Shutdown (closing the server and deleting the temporary directory) happens on
// SIGTERM, SIGINT, SIGHUP, and when stdin reaches EOF if stdin is a pipe or a
// socket -- so a parent that spawns this with a stdin pipe and then dies does
// not leave the server running. When stdin is a TTY, /dev/null or a file it is
// not watched (otherwise `node local-s3.mjs </dev/null` would exit at once).
//
// Why --openssl-legacy-provider: s3rver encrypts ListObjects continuation
// tokens with DES, which OpenSSL 3 only offers through the legacy provider.
// Without it every listing of more than 1,000 keys (or any MaxKeys
// truncation) answers HTTP 500. This script checks for it at start-up and
// refuses to run without it.
//
// Use scripts/local-s3-launcher.mjs (startLocalS3) to run it from code.

import { createCipheriv } from 'node:crypto';
import { fstatSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';

import S3rver from 's3rver';

const USAGE =
  'usage: node --openssl-legacy-provider scripts/local-s3.mjs [--bucket NAME]...';

// Valid S3 bucket names (also keeps s3rver from creating directories outside
// its root: it maps bucket names straight to directory names).
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function fail(message, code = 2) {
  process.stderr.write(`local-s3: ${message}\n`);
  process.exit(code);
}

function parseArgs(argv) {
  const buckets = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    let name;
    if (arg === '--bucket') {
      name = argv[++i];
      if (name === undefined) fail(`--bucket needs a value\n${USAGE}`);
    } else if (arg.startsWith('--bucket=')) {
      name = arg.slice('--bucket='.length);
    } else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else {
      fail(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
    }
    if (!BUCKET_NAME.test(name) || name.includes('..')) {
      fail(`invalid bucket name ${JSON.stringify(name)}`);
    }
    if (!buckets.includes(name)) buckets.push(name);
  }
  return { buckets };
}

function checkLegacyProvider() {
  try {
    createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
  } catch {
    fail(
      'the DES cipher is unavailable: run this script with ' +
        '`node --openssl-legacy-provider` (s3rver needs it for listings over 1,000 keys)',
      1,
    );
  }
}

function stdinIsPipeOrSocket() {
  try {
    const st = fstatSync(0);
    return st.isFIFO() || st.isSocket();
  } catch {
    return false; // no stdin at all (fd 0 closed)
  }
}

const { buckets } = parseArgs(process.argv.slice(2));
checkLegacyProvider();

const directory = await mkdtemp(join(tmpdir(), 'local-s3-'));

const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  vhostBuckets: false,
  configureBuckets: buckets.map((name) => ({ name, configs: [] })),
});

let shuttingDown = false;

async function shutdown(reason, exitCode = 0) {
  if (shuttingDown) {
    // Second request (e.g. a second Ctrl+C): stop waiting for connections.
    try {
      rmSync(directory, { recursive: true, force: true });
    } finally {
      process.exit(exitCode || 1);
    }
  }
  shuttingDown = true;
  // Never hang: if closing takes too long, clean up and exit regardless.
  const guard = setTimeout(() => {
    process.stderr.write(`local-s3: shutdown (${reason}) timed out, forcing exit\n`);
    try {
      rmSync(directory, { recursive: true, force: true });
    } finally {
      process.exit(exitCode || 1);
    }
  }, 5000);
  guard.unref();
  try {
    if (process.stdin.readable) process.stdin.destroy();
    const http = server.httpServer;
    if (http?.listening) {
      const closed = server.close();
      // Keep-alive sockets (the SDK's agent) would hold close() open.
      http.closeAllConnections?.();
      await closed;
    }
  } catch (err) {
    process.stderr.write(`local-s3: error while closing: ${err?.stack ?? err}\n`);
    exitCode ||= 1;
  }
  try {
    await rm(directory, { recursive: true, force: true, maxRetries: 3 });
  } catch (err) {
    process.stderr.write(`local-s3: could not remove ${directory}: ${err?.message ?? err}\n`);
    exitCode ||= 1;
  }
  clearTimeout(guard);
  process.exit(exitCode);
}

for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(signal, () => void shutdown(signal));
}

// If the parent is gone, writing to our stdout/stderr fails with EPIPE; treat
// that as a request to shut down rather than crashing with the temp dir left.
process.stdout.on('error', () => void shutdown('stdout closed'));

process.on('uncaughtException', (err) => {
  process.stderr.write(`local-s3: uncaught exception: ${err?.stack ?? err}\n`);
  void shutdown('uncaughtException', 1);
});
process.on('unhandledRejection', (err) => {
  process.stderr.write(`local-s3: unhandled rejection: ${err?.stack ?? err}\n`);
  void shutdown('unhandledRejection', 1);
});

if (stdinIsPipeOrSocket()) {
  process.stdin.on('data', () => {}); // content is ignored; we only want EOF
  process.stdin.on('end', () => void shutdown('stdin closed'));
  process.stdin.on('error', () => void shutdown('stdin error'));
}

let address;
try {
  // With port 0, s3rver.serverOptions.port stays 0; the port the OS picked
  // is only in the AddressInfo that run() resolves with.
  address = await server.run();
} catch (err) {
  process.stderr.write(`local-s3: failed to start: ${err?.stack ?? err}\n`);
  await rm(directory, { recursive: true, force: true });
  process.exit(1);
}

if (!shuttingDown) {
  const port = address.port;
  process.stdout.write(
    `${JSON.stringify({ endpoint: `http://127.0.0.1:${port}`, port, directory })}\n`,
  );
}
