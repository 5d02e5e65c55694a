import type { HashPool } from '../local/HashPool.js';
import type { Generations, LeaseTiming } from './generations.js';
import type { GuardLimits } from '../core/guards.js';
import { validateGuards, type ResolvedOptions, type SyncCallOptions } from '../options.js';
import type { WorkspaceState } from '../state/WorkspaceState.js';
import type { ObjectStore } from '../storage/ObjectStore.js';
import { S3ObjectStore } from '../storage/S3ObjectStore.js';
import type { ConflictPolicy, SyncProgress } from '../types.js';

/**
 * What every stage of a sync works with: the instance's resolved options, its
 * store and state, and where progress goes. The facade builds one per
 * instance; stages never reach back into the facade.
 */
export interface SyncContext {
  readonly options: ResolvedOptions;
  readonly store: ObjectStore;
  readonly state: WorkspaceState;
  /** The remote workspace's manifest and push lease, as this instance knows them. */
  readonly generations: Generations;
  /** Emits a `progress` event (a throwing listener is logged, never fatal). */
  readonly emit: (progress: SyncProgress) => void;
  /** MD5 worker threads for large files, started on first use. */
  readonly hashPool: () => HashPool;
  /** `s3://bucket/prefix`, for messages. */
  readonly location: string;
}

/** One sync's own settings, after the call's overrides. */
export interface SyncCall {
  readonly direction: 'pull' | 'push';
  readonly dryRun: boolean;
  /** Pull: remote wins over files created or modified locally since the last sync. */
  readonly overwriteLocalChanges: boolean;
  /** Push: what a write whose condition fails does. */
  readonly conflictPolicy: ConflictPolicy;
  readonly signal: AbortSignal | undefined;
  /** Push: the only paths that may have changed (`changedPaths`, normalised); `undefined`: all of them. */
  readonly changedPaths?: readonly string[] | undefined;
  /** Wall clock at the start of the sync (no stat taken during it is older). */
  readonly started: number;
}

/**
 * Internal seams (not public API): the store a sync talks to. Tests pass an
 * in-memory store; later a decorator or another transport.
 * @internal
 */
export interface SyncParts {
  store?: (options: ResolvedOptions) => ObjectStore;
  /** Lease timing (tests shorten it). */
  leaseTiming?: LeaseTiming;
}

export function defaultStore(o: ResolvedOptions): ObjectStore {
  return new S3ObjectStore(o.client, o.bucket, {
    expectedBucketOwner: o.expectedBucketOwner,
    stallTimeoutMs: o.stallTimeoutMs,
    maxAttempts: o.maxAttempts,
    // the library's own client times idle sockets out after stallTimeoutMs (see options.ts)
    clientDetectsStalls: o.ownsClient,
    sseCustomer: o.sseCustomer,
    // the lean GET/PUT path (transport 'auto'): the library's own client always qualifies
    transport: o.transport,
    ownsClient: o.ownsClient,
  });
}

/** One call's settings: its overrides, else the instance's. */
export function callSettings(o: ResolvedOptions, call: SyncCallOptions): GuardLimits & Pick<SyncCall, 'overwriteLocalChanges' | 'conflictPolicy'> {
  const overrides = validateGuards(call);
  return {
    maxDeletes: overrides.maxDeletes ?? o.maxDeletes,
    maxTotalBytes: overrides.maxTotalBytes ?? o.maxTotalBytes,
    allowEmptyRemote: call.allowEmptyRemote ?? o.allowEmptyRemote,
    overwriteLocalChanges: call.overwriteLocalChanges ?? o.overwriteLocalChanges,
    conflictPolicy: call.conflictPolicy ?? o.conflictPolicy,
  };
}
