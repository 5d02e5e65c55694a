/**
 * A long-running agent loop with watch mode: restore the workspace, push
 * changes as the agent makes them, and push everything once more when the
 * container is stopped.
 *
 * `sync.watch()` pulls first (`initial: 'pull'`), then pushes what changed
 * once nothing changed for `debounceMs`, and at least every `maxDelayMs`
 * under continuous writes: at any moment, at most about `maxDelayMs` of work
 * is not in the bucket yet. On SIGTERM, `close({ full: true })` stops
 * watching and runs a full push, which also catches anything the watcher
 * missed. Nothing bounds that push but the push itself, and ECS/Fargate sends
 * SIGKILL 30 s after SIGTERM by default (`stopTimeout`, up to 120 s): the
 * deadline below gives up (cleanly: nothing half-written) before that.
 *
 * Without code changes, `s3-workspace-sync watch` beside the agent does the
 * same from a shell (see examples/entrypoint.sh).
 *
 * Environment: WORKSPACE_BUCKET (required), WORKSPACE_PREFIX, WORKSPACE_DIR.
 * Run node as the container's main process so that it receives SIGTERM.
 */
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { S3WorkspaceSync } from 's3-workspace-sync';

/** Leave a margin under the 30 s stopTimeout for the process to exit. */
const SHUTDOWN_PUSH_BUDGET_MS = 25_000;

const bucket = process.env.WORKSPACE_BUCKET;
if (bucket === undefined || bucket === '') throw new Error('WORKSPACE_BUCKET is not set');
const workspaceDir = process.env.WORKSPACE_DIR ?? '/workspace';

const sync = new S3WorkspaceSync({ bucket, prefix: process.env.WORKSPACE_PREFIX ?? 'agents/worker-1/', workspaceDir });

// Rejects (watching nothing) if the initial pull fails as a whole.
const watcher = await sync.watch({ debounceMs: 1_000, maxDelayMs: 10_000, initial: 'pull' });
if (watcher.initial !== undefined && !watcher.initial.success) {
  // Do not work on a half-restored workspace: stop without pushing.
  console.error(`pull incomplete: ${watcher.initial.errors.slice(0, 3).join('; ')}`);
  sync.destroy();
  process.exit(1);
}
console.log(`workspace restored: ${watcher.initial?.downloadedFiles ?? 0} files`);

watcher.on('push-end', ({ reason, paths, result, durationMs }) => {
  const what = paths === 'all' ? 'all files' : `${paths} path${paths === 1 ? '' : 's'}`;
  console.log(`push (${reason}, ${what}): ${result.uploadedFiles} uploaded, ${result.deletedFiles} deleted, ${result.failedFiles.length} failed in ${durationMs} ms`);
  for (const f of result.failedFiles.slice(0, 5)) console.error(`  not persisted yet: ${f.path}: ${f.error}`);
});
// A push that failed as a whole (network, access…) is tried again; its changes stay pending.
watcher.on('error', (error, { reason }) => console.error(`push (${reason}) failed, retrying:`, error));
watcher.on('degraded', ({ message }) => console.warn(`watcher degraded (${message}): every push is now a full push`));

/** Stand-in for the agent: writes to the workspace until told to stop. */
async function agentWork(signal: AbortSignal): Promise<void> {
  await mkdir(join(workspaceDir, 'notes'), { recursive: true });
  for (let step = 1; !signal.aborted; step++) {
    await writeFile(join(workspaceDir, 'notes', `step-${step}.md`), `# Step ${step}\n\ndone at ${new Date().toISOString()}\n`);
    await appendFile(join(workspaceDir, 'activity.md'), `- ${new Date().toISOString()} step ${step}\n`); // (*.log is ignored by default)
    await sleep(2_000, undefined, { signal }).catch(() => undefined);
  }
}

const stopWork = new AbortController();
const working = agentWork(stopWork.signal);

let finishing: Promise<never> | undefined;
/** Stop the agent, push everything, exit 0 if the push put every file in the bucket, else 1. */
function finish(why: string): Promise<never> {
  finishing ??= (async () => {
    console.log(`${why}: stopping the agent and pushing the workspace`);
    stopWork.abort();
    await working.catch((error: unknown) => console.error('agent failed:', error)); // its last step finishes writing
    // destroy() aborts a push still running at the deadline: it rejects, nothing is half-written
    const deadline = setTimeout(() => sync.destroy(), SHUTDOWN_PUSH_BUDGET_MS);
    let code = 1;
    try {
      const result = await watcher.close({ full: true });
      code = result === undefined || result.success ? 0 : 1;
    } catch (error) {
      console.error('final push failed; unpushed changes are lost:', error);
    }
    clearTimeout(deadline);
    sync.destroy();
    process.exit(code);
  })();
  return finishing;
}

process.once('SIGTERM', () => void finish('SIGTERM'));
process.once('SIGINT', () => void finish('SIGINT'));
await working.catch(() => undefined);
await finish('agent done');
