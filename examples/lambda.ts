/**
 * AWS Lambda: restore the agent's workspace at cold start, persist it before
 * returning.
 *
 * - The sync is created ONCE per execution environment (module scope), so its
 *   snapshot of what was synced survives between warm invocations and later
 *   syncs only transfer what changed.
 * - `startBackgroundPull()` at init lets the restore overlap the rest of the
 *   cold start; the handler waits for it with `waitForPull()`.
 * - `push()` runs before the handler returns: once it has returned, the
 *   environment may be frozen or discarded at any time.
 *
 * /tmp is the only writable path in Lambda. It holds 512 MB by default and can
 * be raised to 10,240 MB (10 GB) with the function's ephemeral storage setting;
 * the workspace (plus whatever your tools write) must fit. /tmp survives
 * between invocations of a warm environment, and is empty in a new one.
 *
 * Memory: uploads of files up to 8 MiB are buffered, so a push holds at most
 * `uploadConcurrency × 8 MiB` of file data (80 MiB with the default 10). Lower
 * `uploadConcurrency` on small functions.
 *
 * Environment: WORKSPACE_BUCKET (required), WORKSPACE_PREFIX. The execution
 * role needs s3:ListBucket on the bucket and s3:GetObject, s3:PutObject,
 * s3:DeleteObject on the prefix. AWS_REGION is set by Lambda.
 */
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IncompleteSyncError, S3WorkspaceSync } from 's3-workspace-sync';

/** Minimal shapes of the Lambda event and context this handler uses (or use `@types/aws-lambda`). */
export interface AgentTaskEvent {
  task: string;
}
export interface LambdaContext {
  awsRequestId: string;
  getRemainingTimeInMillis(): number;
}
export interface AgentTaskResult {
  requestId: string;
  filesRestored: number;
  filesPersisted: number;
  answer: string;
}

const WORKSPACE_DIR = '/tmp/workspace';

// ---------------------------------------------------------------- init (once per environment)

const bucket = process.env.WORKSPACE_BUCKET;
if (bucket === undefined || bucket === '') throw new Error('WORKSPACE_BUCKET is not set');

const sync = new S3WorkspaceSync({
  bucket,
  // One prefix per agent or user. Two environments pushing to the same prefix
  // at once overwrite each other's files (last writer wins): give each agent
  // its own prefix, or set the function's reserved concurrency to 1.
  prefix: process.env.WORKSPACE_PREFIX ?? 'agents/default/',
  workspaceDir: WORKSPACE_DIR,
  uploadConcurrency: 4, // ≤ 32 MiB of buffered file data per push
});

// Never rejects; a failure is reported by waitForPull() below.
sync.startBackgroundPull();

/** Whether an invocation of this environment has restored the workspace already. */
let restoredOnce = false;

// ---------------------------------------------------------------- handler

export async function handler(event: AgentTaskEvent, context: LambdaContext): Promise<AgentTaskResult> {
  // First invocation of this environment: wait for the init-time pull (it
  // rejects with IncompleteSyncError if any file failed, and the next
  // waitForPull() starts a new attempt). Warm invocations: that pull is done;
  // pull again to pick up what other environments pushed since. With the
  // snapshot this is one listing plus only the objects that changed.
  const restored = restoredOnce ? await sync.pull() : await sync.waitForPull();
  if (!restored.success) throw new IncompleteSyncError(restored);
  restoredOnce = true;

  const answer = await doWork(event.task, context);

  // Persist before returning. If some files failed, fail the invocation: the
  // next push from this environment retries them, but a new environment would
  // not have them.
  // Stop the push before the function's own deadline (keep 2 s to report):
  // an aborted push leaves every object complete, and the next one finishes it.
  const deadline = AbortSignal.timeout(Math.max(1_000, context.getRemainingTimeInMillis() - 2_000));
  const pushed = await sync.push({ signal: deadline });
  if (!pushed.success) {
    throw new Error(`Workspace push incomplete: ${pushed.errors.slice(0, 3).join('; ')}`);
  }
  return {
    requestId: context.awsRequestId,
    filesRestored: restored.downloadedFiles,
    filesPersisted: pushed.uploadedFiles + pushed.deletedFiles,
    answer,
  };
}

/** Stand-in for the agent: reads and writes files in the workspace. */
async function doWork(task: string, context: LambdaContext): Promise<string> {
  const notes = join(WORKSPACE_DIR, 'notes');
  await mkdir(notes, { recursive: true });
  const today = new Date().toISOString().slice(0, 10);
  await appendFile(join(notes, `${today}.md`), `- ${new Date().toISOString()} ${task}\n`);

  const statePath = join(WORKSPACE_DIR, 'data', 'state.json');
  const state = await readFile(statePath, 'utf8')
    .then((text) => JSON.parse(text) as { runs: number })
    .catch(() => ({ runs: 0 }));
  state.runs++;
  await mkdir(join(WORKSPACE_DIR, 'data'), { recursive: true });
  await writeFile(statePath, `${JSON.stringify(state, null, 2)}\n`);

  // Keep time for the push: stop working well before the function's timeout.
  if (context.getRemainingTimeInMillis() < 10_000) return `run ${state.runs}: stopped early to leave time for the push`;
  return `run ${state.runs}: done "${task}"`;
}
