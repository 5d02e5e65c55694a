// Child process for test/faults/crash.test.ts: runs ONE pull or push of a
// workspace against a local S3 endpoint, so the parent can SIGKILL it at any
// moment and check what a crash leaves behind.
//
//   node --import tsx test/helpers/crash-child.ts      (cwd: the repository root)
//
// Configuration comes from the environment variable S3WS_CRASH_CHILD (JSON):
//   { endpoint, bucket, prefix, workspaceDir, operation: 'pull' | 'push', concurrency }
//
// Protocol on stdout, one JSON object per line:
//   {"event":"start"}                      printed right before pull()/push() is called
//   {"event":"done","ms":…,"result":{…}}   the operation finished (SyncResult, without skipped lists)
//   {"event":"error","message":"…"}        the operation rejected (exit code 1)
// Nothing else is written to stdout; the SDK's warnings go to stderr.
import { S3Client } from '@aws-sdk/client-s3';

import { S3WorkspaceSync, silentLogger } from '../../src/index.js';

interface ChildConfig {
  endpoint: string;
  bucket: string;
  prefix: string;
  workspaceDir: string;
  operation: 'pull' | 'push';
  concurrency: number;
}

function send(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

async function main(): Promise<void> {
  const raw = process.env.S3WS_CRASH_CHILD;
  if (raw === undefined) throw new Error('S3WS_CRASH_CHILD is not set');
  const cfg = JSON.parse(raw) as ChildConfig;
  if (cfg.operation !== 'pull' && cfg.operation !== 'push') throw new Error(`unknown operation ${String(cfg.operation)}`);

  const client = new S3Client({
    endpoint: cfg.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const sync = new S3WorkspaceSync({
    bucket: cfg.bucket,
    prefix: cfg.prefix,
    workspaceDir: cfg.workspaceDir,
    s3Client: client,
    logger: silentLogger,
    downloadConcurrency: cfg.concurrency,
    uploadConcurrency: cfg.concurrency,
    // a fresh instance pushes its new versions over the old objects on purpose (no snapshot: a conflict otherwise)
    conflictPolicy: 'keep-local',
  });
  send({ event: 'start' });
  const started = performance.now();
  try {
    const result = cfg.operation === 'pull' ? await sync.pull() : await sync.push();
    const { skippedFiles, ...rest } = result;
    send({ event: 'done', ms: performance.now() - started, result: { ...rest, skipped: skippedFiles.length } });
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
