// Records the S3 commands a client sends (name + input), through a middleware
// at the `initialize` step: one entry per `client.send()`, before the SDK's
// own retries (a retried request is counted once).
//
//   const log = recordCommands(client);
//   await sync.push();
//   expect(log.count('PutObjectCommand')).toBe(0);
//
// `count` and `keys` see the workspace's own traffic: requests for the
// library's bookkeeping objects under `<prefix>.s3-workspace-sync/` (the
// workspace identity, the manifest, the push lease, the capability probe)
// are left out; `countAll` / `keysAll` / `library` include them (tests of the
// request cost use those).
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
  /** How many commands named `name` (e.g. `PutObjectCommand`) were sent for the workspace's objects. */
  count(name: string): number;
  /** The `Key` inputs of the commands named `name` for the workspace's objects, in send order. */
  keys(name: string): string[];
  /** How many commands named `name` were sent, the library's own objects included. */
  countAll(name: string): number;
  /** The `Key` inputs of the commands named `name`, the library's own objects included. */
  keysAll(name: string): string[];
  /** The commands sent for the library's own objects (`<prefix>.s3-workspace-sync/…`). */
  library(): RecordedCommand[];
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
  const own = (): RecordedCommand[] => calls.filter((c) => !isLibrary(c));
  return {
    calls,
    count: (name) => own().filter((c) => c.name === name).length,
    keys: (name) => own().filter((c) => c.name === name).map((c) => String(c.input.Key)),
    countAll: (name) => calls.filter((c) => c.name === name).length,
    keysAll: (name) => calls.filter((c) => c.name === name).map((c) => String(c.input.Key)),
    library: () => calls.filter(isLibrary),
    reset: () => {
      calls.length = 0;
    },
  };
}

const AREA = '.s3-workspace-sync/';

/** A request for the library's own objects only. */
export function isLibrary(c: RecordedCommand): boolean {
  return isLibraryInput(c.input);
}

/** An SDK command input (PutObject, DeleteObjects, ListObjectsV2…) about the library's own folder only: identity, manifest, lease, probe. */
export function isLibraryInput(input: unknown): boolean {
  const { Key, Prefix, Delete } = (input ?? {}) as { Key?: unknown; Prefix?: unknown; Delete?: { Objects?: Array<{ Key?: unknown }> } };
  if (typeof Key === 'string') return Key.includes(AREA);
  if (typeof Prefix === 'string' && Prefix.endsWith(AREA)) return true;
  const objects = Delete?.Objects;
  return Array.isArray(objects) && objects.length > 0 && objects.every((o) => String(o.Key).includes(AREA));
}
