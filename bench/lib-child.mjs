#!/usr/bin/env node
// One pull or push of s3-workspace-sync in its own process, for `npm run bench`.
// Runs on plain node against the BUILT package (dist/index.js, `npm run build`),
// which is what users run; tsx would add its loader to start-up time and RSS.
//
//   node bench/lib-child.mjs '{"op":"push","endpoint":"http://127.0.0.1:PORT","bucket":"b","prefix":"p","dir":"/ws","concurrency":16}'
//
// Optional job fields: "lib", the path of another build's dist/index.js (e.g. a
// peer's worktree) to benchmark instead of this worktree's; "options", more
// constructor options (e.g. {"transport":"auto"}).
//
// Prints exactly one line of JSON on stdout (the summary of the SyncResult plus
// a few timings) and exits 0 when the sync succeeded, 1 when it did not, 2 on
// a thrown error (message on stderr and in the JSON).

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const t0 = performance.now();
const job = JSON.parse(process.argv[2] ?? '{}');
const libPath = job.lib ?? new URL('../dist/index.js', import.meta.url).pathname;

let out;
let code = 0;
try {
  const [{ localS3Client }, lib] = await Promise.all([import('./local-client.mjs'), import(pathToFileURL(libPath).href)]);
  const loadedMs = performance.now() - t0;
  const concurrency = job.concurrency ?? 16;
  // Sockets: one per file transfer, and the library's parts (8 by default) may run beside them.
  const maxSockets = concurrency + 8;
  const s3Client = localS3Client(job.endpoint, maxSockets);
  const sync = new lib.S3WorkspaceSync({
    bucket: job.bucket,
    prefix: job.prefix,
    workspaceDir: job.dir,
    s3Client,
    logger: lib.silentLogger,
    uploadConcurrency: concurrency,
    downloadConcurrency: concurrency,
    // more constructor options from the job (e.g. {"transport":"auto"}), for experiments
    ...(job.options ?? {}),
  });
  const t1 = performance.now();
  const r = job.op === 'pull' ? await sync.pull() : await sync.push();
  const opMs = performance.now() - t1;
  s3Client.destroy();
  out = {
    ok: r.success,
    op: job.op,
    loadMs: Math.round(loadedMs),
    opMs: Math.round(opMs),
    downloaded: r.downloadedFiles,
    uploaded: r.uploadedFiles,
    deleted: r.deletedFiles,
    unchanged: r.plan?.unchangedFiles,
    skipped: r.skippedFiles.length,
    keptLocal: r.keptLocal?.length ?? 0,
    hashed: r.hashedFiles,
    failed: r.failedFiles.length,
    bytes: r.bytesTransferred,
    errors: r.errors.slice(0, 3),
    // Counters the result exposes (beyond the standard ones) are passed through as they are.
    ...(r.stats !== undefined ? { stats: r.stats } : {}),
    stateDir: existsSync(join(job.dir, '.s3-workspace-sync')),
  };
  code = r.success ? 0 : 1;
} catch (error) {
  out = { ok: false, op: job.op, error: String(error?.stack ?? error).slice(0, 2000) };
  process.stderr.write(`lib-child: ${error?.stack ?? error}\n`);
  code = 2;
}
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exitCode = code;
// Exit naturally, as a user's process would. Something still holding the event
// loop 5 s later is a finding: say so on stderr (the harness reports it) and exit.
setTimeout(() => {
  process.stderr.write('lib-child: LINGER: the event loop was still alive 5 s after the sync finished\n');
  process.exit(code);
}, 5000).unref();
