// Records the S3 commands a client sends (name + input), through a middleware
// at the `initialize` step: one entry per `client.send()`, before the SDK's
// own retries (a retried request is counted once).
//
//   const log = recordCommands(client);
//   await sync.push();
//   expect(log.count('PutObjectCommand')).toBe(0);
//
// `before` runs ahead of each command and may throw (the send rejects with that
// error) or do other work first, e.g. delete the object a GetObject is about
// to read, so a real server answers with a real error.
import type { S3Client } from '@aws-sdk/client-s3';

export interface RecordedCommand {
  name: string;
  input: Record<string, unknown>;
}

export interface CommandLog {
  readonly calls: RecordedCommand[];
  /** How many commands named `name` (e.g. `PutObjectCommand`) were sent. */
  count(name: string): number;
  /** The `Key` inputs of the commands named `name`, in send order. */
  keys(name: string): string[];
  /** Forget what was recorded so far. */
  reset(): void;
}

export function recordCommands(
  client: S3Client,
  before?: (name: string, input: Record<string, unknown>) => void | Promise<void>,
): CommandLog {
  const calls: RecordedCommand[] = [];
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const name = String(context.commandName ?? '?');
      const input = args.input as Record<string, unknown>;
      calls.push({ name, input });
      if (before) await before(name, input);
      return next(args);
    },
    { step: 'initialize', name: `recordCommands-${Math.random().toString(36).slice(2)}` },
  );
  return {
    calls,
    count: (name) => calls.filter((c) => c.name === name).length,
    keys: (name) => calls.filter((c) => c.name === name).map((c) => String(c.input.Key)),
    reset: () => {
      calls.length = 0;
    },
  };
}
