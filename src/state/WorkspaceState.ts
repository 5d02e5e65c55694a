import type { Snapshot } from '../core/model.js';
import { WORKSPACE_ID_NAME } from '../core/names.js';
import { escapeForLog, messageOf } from '../errors.js';
import type { ObjectStore } from '../storage/ObjectStore.js';
import type { SyncLogger } from '../types.js';
import { createRemoteId, readRemoteId } from './remote-identity.js';
import type { GitRecord, RemoteCache, StateFile, StateOrigin } from './StateFile.js';

/**
 * What an instance knows about its last sync, and where that knowledge is
 * kept: the snapshot (per path, what was identical on both sides), whether
 * the instance has synced, the state file that persists both across
 * processes, and the remote workspace identity that binds them to one bucket.
 *
 * The snapshot only ever changes through {@link commit} (the record stage's
 * result) or by being dropped when it cannot be trusted.
 */
export class WorkspaceState {
  private current: Snapshot = new Map();
  private synced = false;
  private loaded = false;
  /** The snapshot changed since it was loaded or saved. */
  private dirty = false;
  private origin: StateOrigin | undefined;
  /** ETag of the bucket's identity object as this instance last saw it (`null`: none), `undefined` until looked at. */
  private remoteId: string | null | undefined;
  /** The identity recorded in a state file just loaded, not yet compared with the bucket's. */
  private unverifiedRemoteId: string | null | undefined;
  /** Creating the identity object failed once (e.g. read-only credentials): not tried again. */
  private remoteIdRefused = false;
  /** What was learnt about the remote side (manifest, conditional writes), persisted with the snapshot. */
  private remoteCache: RemoteCache = {};

  constructor(
    private readonly file: StateFile | undefined,
    private readonly originOf: () => Promise<StateOrigin>,
    private readonly prefix: string,
    private readonly location: string,
    private readonly logger: SyncLogger,
  ) {}

  /** Per path, what was identical on both sides at the last sync. Read-only: see {@link commit}. */
  get snapshot(): Snapshot {
    return this.current;
  }

  /** Whether this instance (or the process whose state it loaded) has completed a sync. */
  get hasSnapshot(): boolean {
    return this.synced;
  }

  /**
   * Once per instance, before its first sync: take over the persisted
   * snapshot, when there is one to trust for this workspace and origin. Its
   * remote identity is checked against the bucket before it is used.
   */
  async load(root: string, locked = false): Promise<void> {
    if (this.loaded || this.file === undefined) return;
    this.loaded = true;
    // only a sync that holds the workspace lock cleans up after crashed saves
    const state = await this.file.load(root, await this.stateOrigin(), locked);
    if (state === undefined) return;
    this.current = state.snapshot; // loaded just now: nobody else holds it
    this.synced = state.synced;
    this.unverifiedRemoteId = state.remoteId;
    this.remoteCache = { ...(state.remote ?? {}), ...this.remoteCache }; // what this instance learnt already wins
    this.logger.debug(`Loaded the sync state of ${state.snapshot.size} file(s) from ${this.file.path}`);
  }

  async save(root: string): Promise<void> {
    if (this.file === undefined || !this.dirty) return;
    this.dirty = false;
    await this.file.save(root, await this.stateOrigin(), { synced: this.synced, snapshot: this.current, remoteId: this.remoteId ?? null, remote: this.remoteCache });
  }

  /** What the last process learnt about the remote side (see `RemoteCache`); empty when nothing. */
  get remote(): Readonly<RemoteCache> {
    return this.remoteCache;
  }

  /** Remember more about the remote side (saved with the next state save). */
  learnRemote(update: RemoteCache): void {
    const next = { ...this.remoteCache, ...update };
    if (
      next.manifest?.etag === this.remoteCache.manifest?.etag &&
      next.conditionalWrites === this.remoteCache.conditionalWrites &&
      sameGit(next.git, this.remoteCache.git)
    ) {
      return;
    }
    this.remoteCache = next;
    this.dirty = true;
  }

  /** The record stage's result (`undefined`: nothing changed). */
  commit(next: Snapshot | undefined): void {
    if (next === undefined) return;
    this.current = next;
    this.dirty = true;
  }

  /**
   * After a push, or a pull in which no file failed, the instance has synced.
   * Otherwise a fresh instance stays fresh: the next pull still mirrors the
   * bucket instead of mistaking stale local files for unpushed work.
   */
  markSynced(): void {
    if (!this.synced) this.dirty = true;
    this.synced = true;
  }

  /** A push with a snapshot loaded from disk checks it against the bucket first (one HEAD). */
  async verifyBeforePush(store: ObjectStore, signal: AbortSignal | undefined): Promise<void> {
    if (this.synced && (this.unverifiedRemoteId !== undefined || this.remoteId === undefined)) {
      this.verify(await readRemoteId(store, this.prefix, signal));
    }
  }

  /**
   * Compare the bucket's workspace identity (`current`: its ETag, or `null`)
   * with what the snapshot was made against: the identity recorded in a state
   * file just loaded, or the one this instance saw before. When they differ —
   * a re-created bucket, another server, a wiped prefix — the snapshot proves
   * nothing about this bucket: it is dropped, as if there were no state.
   */
  verify(current: string | null): void {
    const loaded = this.unverifiedRemoteId;
    this.unverifiedRemoteId = undefined;
    const known = loaded !== undefined ? loaded : this.remoteId;
    // One seen for the first time in this process (no state loaded, or none recorded and none yet) is adopted.
    const mismatch = loaded !== undefined ? loaded !== current : known !== undefined && known !== null && known !== current;
    this.remoteId = current;
    if (!mismatch || (this.current.size === 0 && !this.synced)) return;
    this.logger.warn(
      `Not trusting the sync state for ${this.location}: the bucket's workspace identity ` +
        `(${escapeForLog(this.prefix)}${WORKSPACE_ID_NAME}) is ${current === null ? 'missing' : 'different'} ` +
        '(a re-created bucket, another server, or a wiped prefix). Files will be re-hashed; a pull moves local files it cannot ' +
        'prove were synced into the recovery area, and a push compares with a listing and deletes nothing.',
    );
    this.current = new Map();
    this.synced = false;
    this.remoteCache = {};
    this.dirty = true;
  }

  /**
   * Give the remote workspace an identity when it has none: always on push;
   * on pull only when the prefix holds something (a mistyped prefix stays
   * empty). Best effort: without it, states are bound to endpoint, bucket and
   * prefix only.
   */
  async ensureIdentity(store: ObjectStore, direction: 'pull' | 'push', listed: number | undefined, signal: AbortSignal | undefined): Promise<void> {
    if (this.remoteId !== null || this.remoteIdRefused) return;
    if (direction === 'pull' && (listed ?? 0) === 0) return;
    try {
      this.remoteId = await createRemoteId(store, this.prefix, signal);
      this.dirty = true;
    } catch (error) {
      if (signal?.aborted) throw error;
      // Not again in this instance (read-only credentials would refuse it on every pull).
      this.remoteIdRefused = true;
      const log = direction === 'push' ? this.logger.warn : this.logger.debug;
      log.call(this.logger, `Could not create the workspace identity object under ${this.location}: ${messageOf(error)}`);
    }
  }

  private async stateOrigin(): Promise<StateOrigin> {
    this.origin ??= await this.originOf();
    return this.origin;
  }
}

function sameGit(a: GitRecord | undefined, b: GitRecord | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.fingerprint === b.fingerprint && a.sidecarEtag === b.sidecarEtag && a.bundleKey === b.bundleKey && a.bundleEtag === b.bundleEtag;
}
