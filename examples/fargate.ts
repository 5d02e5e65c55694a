/**
 * A long-running worker on ECS / Fargate: pull on start, push periodically,
 * push once more on SIGTERM, then exit.
 *
 * When a task is stopped (deployment, scale-in, Spot interruption), ECS sends
 * SIGTERM to the container and SIGKILL after `stopTimeout`: 30 s by default,
 * up to 120 s on Fargate (set it in the task definition's container
 * definition). The final push must fit in that window, so the worker pushes
 * every minute: at shutdown only the last minute's changes remain.
 *
 * Run node as the container's main process (exec-form `CMD ["node",
 * "worker.js"]`) or enable `initProcessEnabled`: a shell wrapper may not
 * forward SIGTERM, and the task is then killed without a final push.
 *
 * Local disk: the task's ephemeral storage (20 GiB by default on Fargate
 * platform 1.4.0+, configurable up to 200 GiB) is lost when the task stops.
 *
 * Environment: WORKSPACE_BUCKET (required), WORKSPACE_PREFIX, WORKSPACE_DIR.
 * The task role needs s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { S3WorkspaceSync, type SyncResult } from 's3-workspace-sync';

const PUSH_INTERVAL_MS = 60_000;
/** Leave a margin under the 30 s stopTimeout for the process to exit. */
const SHUTDOWN_PUSH_BUDGET_MS = 25_000;

const bucket = process.env.WORKSPACE_BUCKET;
if (bucket === undefined || bucket === '') throw new Error('WORKSPACE_BUCKET is not set');
const workspaceDir = process.env.WORKSPACE_DIR ?? '/workspace';

const sync = new S3WorkspaceSync({
  bucket,
  prefix: process.env.WORKSPACE_PREFIX ?? 'agents/worker-1/',
  workspaceDir,
});

const stopWork = new AbortController();
let pushTimer: NodeJS.Timeout | undefined;

function describe(r: SyncResult): string {
  return `${r.uploadedFiles} uploaded, ${r.deletedFiles} deleted, ${r.failedFiles.length} failed in ${r.duration} ms`;
}

/**
 * Push and log. Pushes on one instance run one at a time, in call order, so a
 * shutdown push simply runs after a periodic push that is still in flight.
 */
async function pushNow(why: string): Promise<SyncResult | undefined> {
  try {
    const result = await sync.push();
    if (result.uploadedFiles + result.deletedFiles + result.failedFiles.length > 0) {
      console.log(`push (${why}): ${describe(result)}`);
    }
    for (const f of result.failedFiles) console.error(`  not persisted: ${f.path}: ${f.error}`);
    return result;
  } catch (error) {
    // Fatal for this push (bucket unreachable, access denied…); the next one tries again.
    console.error(`push (${why}) failed:`, error);
    return undefined;
  }
}

/** Stand-in for the agent's work loop: writes to the workspace until told to stop. */
async function work(signal: AbortSignal): Promise<void> {
  await mkdir(join(workspaceDir, 'logs'), { recursive: true });
  while (!signal.aborted) {
    await appendFile(join(workspaceDir, 'logs', 'activity.md'), `- ${new Date().toISOString()} step done\n`);
    await sleep(5_000, undefined, { signal }).catch(() => undefined);
  }
}

async function shutdown(signal: NodeJS.Signals, working: Promise<void>): Promise<never> {
  console.log(`${signal}: stopping work and pushing the workspace`);
  clearInterval(pushTimer);
  stopWork.abort();
  await working; // let the current step finish writing its files

  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), SHUTDOWN_PUSH_BUDGET_MS);
  });
  const outcome = await Promise.race([pushNow('shutdown'), deadline]);
  clearTimeout(timer);

  sync.destroy();
  if (outcome === 'timeout') {
    console.error(`final push did not finish within ${SHUTDOWN_PUSH_BUDGET_MS} ms; unpushed changes are lost`);
    process.exit(1);
  }
  process.exit(outcome?.success ? 0 : 1);
}

async function main(): Promise<void> {
  // A fresh instance mirrors the bucket: the workspace becomes exactly the prefix.
  const restored = await sync.pull();
  if (!restored.success) {
    // Do not start on a half-restored workspace (and never push one).
    console.error(`pull incomplete: ${restored.errors.slice(0, 3).join('; ')}`);
    process.exit(1);
  }
  console.log(`workspace restored: ${restored.downloadedFiles} files in ${restored.duration} ms`);

  const working = work(stopWork.signal);
  pushTimer = setInterval(() => void pushNow('periodic'), PUSH_INTERVAL_MS);
  process.once('SIGTERM', (s) => void shutdown(s, working));
  process.once('SIGINT', (s) => void shutdown(s, working));
  await working;
}

await main();
