/**
 * Generations of the remote workspace: the committed manifest and the push
 * lease (format and pure rules in `core/manifest.ts`), as one instance reads
 * and writes them.
 *
 * A push that changes anything takes the lease first (create-only), renews
 * it while it runs, commits the next manifest conditionally on the one it
 * started from (rebasing when another push committed first), then deletes
 * the lease. A pull that sees a live lease waits for the commit; one whose
 * listing is not exactly the manifest checks afterwards that no push
 * started or committed meanwhile, and runs again when one did. So a pull
 * returns one generation, plus whatever other tools wrote around the
 * manifest.
 *
 * Costs: a push that changes something makes 3 requests more (lease PUT,
 * manifest PUT, lease DELETE; a GET of the manifest when this instance has
 * not seen it yet, and a listing when the prefix has none). A pull whose
 * listing is the manifest makes none more (a GET of the manifest when it
 * changed since this instance last saw it); otherwise one listing of the
 * library's folder.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { md5FromEtag, md5Hex } from '../core/md5.js';
import { libraryFolder } from '../core/names.js';
import {
  LEASE_NAME,
  MANIFEST_NAME,
  ManifestFormatError,
  decodeLease,
  decodeManifest,
  encodeLease,
  encodeManifest,
  leaseStatus,
  listingMatches,
  nextManifest,
  patchManifest,
  rebase,
  sameEntry,
  type Manifest,
  type ManifestEntry,
  type PushChanges,
  type Writer,
  manifestHead,
} from '../core/manifest.js';
import type { ListedObject, Snapshot } from '../core/model.js';
import { StorageError, SyncError, escapeForLog, isConditionRefused, messageOf } from '../errors.js';
import type { ObjectStore } from '../storage/ObjectStore.js';
import type { SyncContext } from './context.js';

/** How long leases live and how often they are renewed and polled. */
export interface LeaseTiming {
  /** A lease not renewed for this long is expired (a crashed pusher). */
  leaseMs: number;
  /** A running push renews its lease this often. */
  renewMs: number;
  /** A reader waiting for a push checks the lease this often. */
  pollMs: number;
}

export const DEFAULT_LEASE_TIMING: LeaseTiming = { leaseMs: 30_000, renewMs: 10_000, pollMs: 500 };

/**
 * The manifest as last read or written: its ETag and content (`null`: the
 * prefix has none). Its bytes are kept for the state file (a new process then
 * needs no GET while the bucket shows this ETag). Bytes taken from the state
 * file are decoded only when something needs the files: a push with nothing
 * to commit never pays for decoding a large manifest.
 */
class Seen {
  private decoded: Manifest | undefined | null;

  /** `manifest`: already decoded (`undefined`: damaged, not this library's format); omitted: decode `body` when first needed. */
  constructor(
    readonly etag: string,
    readonly body: Buffer | undefined,
    ...manifest: [] | [Manifest | undefined]
  ) {
    this.decoded = manifest.length === 0 ? null : manifest[0];
  }

  /**
   * The manifest's generation and lease token: what the push lease needs.
   * Read from the head of the bytes (everything before the files) when the
   * files are not decoded yet, so that taking a lease costs no decoding of a
   * large manifest.
   */
  get head(): Pick<Manifest, 'generation' | 'lease'> | undefined {
    if (this.decoded === null && this.body !== undefined) {
      const head = manifestHead(this.body);
      if (head !== undefined) return head;
    }
    return this.manifest;
  }

  /** The bytes to patch for the next commit: `undefined` when there are none, or they were found not to decode. */
  get patchable(): Buffer | undefined {
    return this.decoded === undefined ? undefined : this.body;
  }

  get manifest(): Manifest | undefined {
    if (this.decoded === null) {
      try {
        this.decoded = decodeManifest(this.body ?? '');
      } catch {
        this.decoded = undefined; // the same bytes as the bucket's object (MD5 checked): damaged there too
      }
    }
    return this.decoded;
  }

  /**
   * Drop the decoded files (decoded again from the bytes when next needed):
   * at 100,000 paths they are some 25 MB that would otherwise live as long as
   * the instance, between syncs included. Kept when there are no bytes to
   * decode them from.
   */
  release(): void {
    if (this.body !== undefined && this.decoded !== undefined) this.decoded = null;
  }
}

/** The library's two objects, as a listing of the prefix shows them. */
export interface AreaObjects {
  manifest: ListedObject | undefined;
  lease: ListedObject | undefined;
}

/** What a pull learnt from its listing about pushes. */
export interface PullView {
  /** `push-in-progress`: a live lease; wait, then list again. */
  status: 'clear' | 'push-in-progress';
  /** The listing is exactly the committed manifest: nothing to check afterwards. */
  exact: boolean;
  /** The area as listed, for the check afterwards. */
  area: AreaObjects;
}

export class Generations {
  readonly writer: Writer = { host: hostname(), pid: process.pid, instance: randomUUID() };
  private seen: Seen | null | undefined;
  private readonly manifestKey: string;
  private readonly leaseKey: string;

  constructor(
    private readonly ctx: Pick<SyncContext, 'store' | 'options' | 'location'>,
    readonly timing: LeaseTiming = DEFAULT_LEASE_TIMING,
  ) {
    this.manifestKey = ctx.options.prefix + MANIFEST_NAME;
    this.leaseKey = ctx.options.prefix + LEASE_NAME;
  }

  private get store(): ObjectStore {
    return this.ctx.store;
  }

  /**
   * The manifest a previous process saw (from the state file): used as if
   * read, only while the bucket shows the same ETag (a pull compares it with
   * the listing; a push's commit is conditional on it). Bytes whose MD5 is
   * not the ETag (when the ETag is an MD5) are not trusted.
   */
  adopt(cached: { etag: string; body: Buffer } | undefined): void {
    if (cached === undefined || this.seen !== undefined) return;
    const md5 = md5FromEtag(cached.etag);
    if (md5 === undefined) {
      // an ETag that is no MD5 (SSE-KMS) cannot vouch for the bytes: adopt only what decodes
      try {
        this.seen = new Seen(cached.etag, cached.body, decodeManifest(cached.body));
      } catch {
        // not a manifest of this format: read it again when needed
      }
      return;
    }
    if (md5Hex(cached.body) === md5) this.seen = new Seen(cached.etag, cached.body);
  }

  /** The manifest to keep in the state file (`undefined`: none known). */
  get cached(): { etag: string; body: Buffer } | undefined {
    const seen = this.seen;
    return seen?.body === undefined ? undefined : { etag: seen.etag, body: seen.body };
  }

  /** Take the library's two objects out of a listing of the prefix. */
  area(listed: readonly ListedObject[]): AreaObjects {
    let manifest: ListedObject | undefined;
    let lease: ListedObject | undefined;
    for (const o of listed) {
      if (o.key === this.manifestKey) manifest = o;
      else if (o.key === this.leaseKey) lease = o;
    }
    return { manifest, lease };
  }

  /** The manifest now (`null`: none), read only when its ETag differs from the one seen (`known`), or conditionally. */
  async read(signal: AbortSignal | undefined, known?: string | null): Promise<Seen | null> {
    if (known === null) return (this.seen = null);
    if (known !== undefined && this.seen?.etag === known) return this.seen;
    try {
      const cached = this.seen ?? undefined;
      const got = await this.store.get(this.manifestKey, signal, cached === undefined ? undefined : { ifNoneMatch: cached.etag });
      const body = await readBody(got.body);
      let manifest: Manifest | undefined;
      try {
        manifest = decodeManifest(body);
      } catch (error) {
        if (!(error instanceof ManifestFormatError)) throw error;
        this.ctx.options.logger.warn(`The manifest ${escapeForLog(this.manifestKey)} is not readable (${error.message}); it is ignored and the next push replaces it.`);
      }
      return (this.seen = new Seen(got.etag, manifest === undefined ? undefined : body, manifest));
    } catch (error) {
      if (error instanceof StorageError && error.code === 'NOT_MODIFIED' && this.seen != null) return this.seen;
      if (error instanceof StorageError && error.code === 'NOT_FOUND') return (this.seen = null);
      throw error;
    }
  }

  /**
   * The objects of the committed manifest as a listing (the `trustManifest`
   * pull: one conditional GET instead of a listing), or `undefined` when
   * the prefix has no usable manifest.
   */
  async listFromManifest(signal: AbortSignal | undefined): Promise<ListedObject[] | undefined> {
    const seen = await this.read(signal);
    if (seen?.manifest === undefined) return undefined;
    const { prefix } = this.ctx.options;
    const out: ListedObject[] = [];
    // the MD5s the committing pushes recorded: no HEAD to learn them (multipart objects, SSE-KMS)
    for (const [path, e] of seen.manifest.files) out.push({ key: prefix + path, size: e.size, etag: e.etag, md5: e.md5, mtimeMs: e.mtimeMs });
    seen.release();
    return out;
  }

  /** What a pull makes of its listing: is a push changing objects, and is the listing one generation? */
  async pullView(listed: readonly ListedObject[], own: readonly ListedObject[], signal: AbortSignal | undefined): Promise<PullView> {
    const area = this.area(listed);
    // no manifest in the listing: known absent (a push then creates the first one without looking)
    const seen = area.manifest === undefined ? (this.seen = null) : await this.readQuietly(signal, area.manifest.etag);
    try {
      if (area.lease !== undefined && (await this.leaseIsLive(area.lease.etag, seen?.manifest, signal))) return { status: 'push-in-progress', exact: false, area };
      return { status: 'clear', exact: listingMatches(seen?.manifest, own, this.ctx.options.prefix), area };
    } finally {
      seen?.release(); // the pull plans from its listing: the decoded files are not needed while it runs
    }
  }

  /**
   * After a pull acted on `view`: whether no push started or committed since
   * its listing (one listing of the library's folder; none when the listing
   * was exactly the manifest).
   */
  async unchangedSince(view: PullView, signal: AbortSignal | undefined): Promise<boolean> {
    if (view.exact) return true;
    const now = this.area(await listArea(this.store, this.ctx.options.prefix, signal));
    if (now.manifest?.etag !== view.area.manifest?.etag) return false;
    if (now.lease === undefined || now.lease.etag === view.area.lease?.etag) return true;
    const seen = now.manifest === undefined ? null : await this.readQuietly(signal, now.manifest.etag);
    return !(await this.leaseIsLive(now.lease.etag, seen?.head, signal));
  }

  /**
   * Wait until no push holds a live lease (it committed, released, or its
   * lease expired), polling the library's folder (one LIST per poll);
   * bounded by `until` (epoch ms).
   * @throws {SyncError} `PUSH_IN_PROGRESS` when the wait ends first.
   */
  async waitForPush(signal: AbortSignal | undefined, until: number): Promise<void> {
    // one listing of the library's folder per poll (the lease's and the manifest's ETags); the lease and the
    // manifest are read again only when one of them changed, or the lease's expiry passed
    let judged: { lease: string; manifest: string | undefined; expiresAt: number } | undefined;
    for (;;) {
      const now = this.area(await listArea(this.store, this.ctx.options.prefix, signal));
      if (now.lease === undefined) return;
      if (judged === undefined || judged.lease !== now.lease.etag || judged.manifest !== now.manifest?.etag || Date.now() >= judged.expiresAt) {
        const seen = now.manifest === undefined ? null : await this.readQuietly(signal, now.manifest.etag);
        if (!(await this.leaseIsLive(now.lease.etag, seen?.head, signal))) return;
        judged = { lease: now.lease.etag, manifest: now.manifest?.etag, expiresAt: this.lastLease?.expiresAt ?? 0 };
      }
      if (Date.now() >= until) throw pushInProgress(this.ctx.location, this.lastLease);
      await sleep(Math.min(this.timing.pollMs, Math.max(0, until - Date.now())), undefined, { signal });
    }
  }

  /** The lease last read (for messages). */
  private lastLease: ReturnType<typeof decodeLease> | undefined;

  private async leaseIsLive(etag: string, manifest: Pick<Manifest, 'lease'> | undefined, signal: AbortSignal | undefined): Promise<boolean> {
    try {
      const got = await this.store.get(this.leaseKey, signal, { ifMatch: etag });
      const lease = decodeLease(await readBody(got.body));
      this.lastLease = lease;
      return leaseStatus(lease, manifest, Date.now()) === 'live';
    } catch (error) {
      if (signal?.aborted) throw error;
      if (error instanceof ManifestFormatError) return false; // not a lease this library wrote
      if (error instanceof StorageError && (error.code === 'NOT_FOUND' || error.code === 'PRECONDITION_FAILED')) return false; // gone or replaced: look again later
      throw error;
    }
  }

  /** `read()`, where a failure only costs the optimisation (a pull goes on without the manifest). */
  private async readQuietly(signal: AbortSignal | undefined, known?: string | null): Promise<Seen | null> {
    try {
      return await this.read(signal, known);
    } catch (error) {
      if (signal?.aborted) throw error;
      this.ctx.options.logger.debug(`Could not read the manifest ${escapeForLog(this.manifestKey)}: ${messageOf(error)}`);
      return null;
    }
  }

  // ------------------------------------------------------------------ push

  /**
   * Take the push lease before the first change: create it; when another
   * push holds a live one, wait for it (until `until`); take over an expired
   * one or one whose push has committed. A server or policy that refuses the
   * lease altogether (access denied) leaves the push without one: logged,
   * not fatal (per-object conditions still protect every write).
   */
  async beginPush(signal: AbortSignal | undefined, until: number): Promise<PushSession | undefined> {
    const lease = (generation: number) => ({
      token: randomUUID(),
      writer: this.writer,
      baseGeneration: generation,
      startedAt: new Date().toISOString(),
      expiresAt: Date.now() + this.timing.leaseMs,
    });
    for (;;) {
      // the manifest as last seen (the commit's condition catches a newer one); unreadable: the lease says generation 0
      const seen = this.seen !== undefined ? this.seen : await this.readQuietly(signal);
      const mine = lease(seen?.head?.generation ?? 0);
      try {
        const etag = await this.putLease(mine, { ifNoneMatch: true }, signal);
        return new PushSession(this, mine, etag, signal);
      } catch (error) {
        if (signal?.aborted) throw error;
        if (!isConditionFailure(error)) {
          this.ctx.options.logger.warn(`Could not take the push lease ${escapeForLog(this.leaseKey)}: ${messageOf(error)}; pushing without it (pulls running now may see a mix of old and new files).`);
          return undefined;
        }
      }
      // Someone holds it: live (wait), or expired / committed (take over).
      let held: { etag: string };
      try {
        held = await this.store.head(this.leaseKey, signal);
      } catch (error) {
        if (error instanceof StorageError && error.code === 'NOT_FOUND') continue;
        throw error;
      }
      const current = await this.read(signal);
      if (await this.leaseIsLive(held.etag, current?.head, signal)) {
        await this.waitForPush(signal, until); // until it is gone, committed or expired (or PUSH_IN_PROGRESS)
        continue;
      }
      try {
        const takeover = lease(current?.head?.generation ?? 0);
        const etag = await this.putLease(takeover, { ifMatch: held.etag }, signal);
        if (this.lastLease !== undefined) this.ctx.options.logger.warn(`Took over an expired push lease of ${this.lastLease.writer.host} (pid ${this.lastLease.writer.pid}) on ${this.ctx.location}.`);
        return new PushSession(this, takeover, etag, signal);
      } catch (error) {
        if (signal?.aborted || !isConditionFailure(error)) throw error;
      }
    }
  }

  /** @internal PushSession's writes. */
  async putLease(lease: ReturnType<typeof decodeLease>, condition: { ifMatch?: string; ifNoneMatch?: boolean }, signal: AbortSignal | undefined): Promise<string> {
    const body = encodeLease(lease);
    const put = await this.store.put({ key: this.leaseKey, body, size: body.length, md5: md5Hex(body), contentType: 'application/json', mtimeMs: Date.now(), ...condition, signal });
    return put.etag;
  }

  /** @internal Delete the lease, only the version given. */
  async dropLease(etag: string): Promise<void> {
    await this.store.deleteMany([{ key: this.leaseKey, etag }]);
  }

  /** The listing of the prefix the running push made (it had no snapshot): the first manifest starts from it, no second listing. */
  private listing: readonly ListedObject[] | undefined;

  /**
   * The push running now listed the prefix before changing anything: its
   * first manifest starts from that listing (see `fromListing`), and a
   * manifest absent from it needs no GET.
   */
  listedBeforePush(listed: readonly ListedObject[] | undefined): void {
    this.listing = listed;
    if (listed !== undefined && this.area(listed).manifest === undefined) this.seen = null;
  }

  /** Changes pushed but not yet in a committed manifest (a commit failed): folded into the next commit. */
  private pending = { put: new Map<string, ManifestEntry>(), removed: new Set<string>() };

  /** Whether a push's changes still wait for a manifest commit (the next push commits them, even with nothing else to do). */
  get uncommitted(): boolean {
    return this.pending.put.size + this.pending.removed.size > 0;
  }

  /** Changes made but not committed (an aborted push): the next commit of this instance includes them. */
  remember(changes: PushChanges): void {
    for (const path of changes.removed) {
      this.pending.put.delete(path);
      this.pending.removed.add(path);
    }
    for (const [path, entry] of changes.put) {
      this.pending.removed.delete(path);
      this.pending.put.set(path, entry);
    }
  }

  /**
   * Commit the next manifest: the one this instance saw with `changes` (and
   * any left from a failed commit), on condition that it is still current;
   * when another push committed first, rebase onto its manifest (overlapping
   * paths: the bucket decides) and try again. Returns the overlapping paths.
   */
  async commit(changes: PushChanges, lease: string | undefined, snapshot: Snapshot, signal: AbortSignal | undefined): Promise<string[]> {
    this.remember(changes);
    const all: PushChanges = this.pending;
    let base = this.seen === undefined ? await this.read(signal) : this.seen;
    // the usual case, a push on top of the manifest it saw: patch its bytes (no decoding of every path)
    const bytes = base?.patchable;
    const patched = bytes === undefined ? undefined : patchManifest(bytes, all, this.writer, new Date(), lease);
    let baseManifest: Manifest | undefined;
    let next: Manifest | undefined;
    if (patched === undefined) {
      baseManifest = base?.manifest ?? (await this.fromListing(snapshot, signal));
      next = nextManifest(baseManifest, all, this.writer, new Date(), lease);
    }
    let overlap: string[] = [];
    for (let attempt = 0; ; attempt++) {
      const body = next === undefined ? (patched as Buffer) : encodeManifest(next);
      try {
        const put = await this.store.put({
          key: this.manifestKey,
          body,
          size: body.length,
          md5: md5Hex(body),
          contentType: 'application/json',
          mtimeMs: Date.now(),
          ...(base === null ? { ifNoneMatch: true } : { ifMatch: base.etag }),
          signal,
        });
        // bytes only: the next commit patches them, and nothing else needs the files decoded between syncs
        this.seen = new Seen(put.etag, body);
        this.pending = { put: new Map(), removed: new Set() };
        return overlap;
      } catch (error) {
        if (signal?.aborted || !isConditionFailure(error) || attempt >= 4) throw error;
      }
      // Another push committed first: rebase onto it.
      baseManifest ??= base?.manifest ?? (await this.fromListing(snapshot, signal));
      this.seen = undefined;
      base = await this.read(signal);
      const theirs = base?.manifest ?? (await this.fromListing(snapshot, signal));
      const touched = [...all.put.keys(), ...all.removed];
      const current = await this.lookUp(touched.filter((p) => !sameEntry(baseManifest?.files.get(p), theirs.files.get(p))), signal);
      const rebased = rebase(baseManifest, all, theirs, this.writer, new Date(), current, lease);
      overlap = [...new Set([...overlap, ...rebased.overlap])];
      next = rebased.manifest;
      baseManifest = theirs;
    }
  }

  /** What the bucket holds at these paths now (HEAD each; `null`: none). */
  private async lookUp(paths: string[], signal: AbortSignal | undefined): Promise<Map<string, ManifestEntry | null>> {
    const out = new Map<string, ManifestEntry | null>();
    for (const path of paths) {
      try {
        const info = await this.store.head(this.ctx.options.prefix + path, signal);
        out.set(path, { size: info.size, etag: info.etag, md5: info.md5, mtimeMs: info.mtimeMs });
      } catch (error) {
        if (error instanceof StorageError && error.code === 'NOT_FOUND') out.set(path, null);
        else if (signal?.aborted) throw error;
      }
    }
    return out;
  }

  /**
   * The prefix has no manifest yet (a bucket filled before this version, or
   * by other tools): its first one describes the bucket as listed, with the
   * MD5 and mtime this instance knows for the objects it synced.
   */
  private async fromListing(snapshot: Snapshot, signal: AbortSignal | undefined): Promise<Manifest> {
    const { prefix } = this.ctx.options;
    const area = libraryFolder(prefix);
    const files = new Map<string, ManifestEntry>();
    const pages = this.listing !== undefined ? [this.listing] : this.store.list(prefix, signal);
    for await (const page of pages) {
      for (const o of page) {
        if (o.key.startsWith(area) || o.key.endsWith('/')) continue;
        const path = o.key.slice(prefix.length);
        const known = snapshot.get(path);
        const entry: ManifestEntry = { size: o.size, etag: o.etag };
        if (known !== undefined && known.etag === o.etag) {
          entry.md5 = known.md5;
          entry.mtimeMs = known.mtimeMs;
        }
        files.set(path, entry);
      }
    }
    return { generation: 0, committedAt: new Date(0).toISOString(), writer: this.writer, files };
  }
}

/** One push's hold on the lease: renewed in the background until released. */
export class PushSession {
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> = Promise.resolve();
  private lost = false;

  constructor(
    private readonly owner: Generations,
    private lease: ReturnType<typeof decodeLease>,
    private etag: string,
    signal: AbortSignal | undefined,
  ) {
    this.timer = setInterval(() => {
      this.renewing = this.renew(signal);
    }, owner.timing.renewMs);
    this.timer.unref();
  }

  /** The lease's token (a manifest committed under it names it). */
  get token(): string {
    return this.lease.token;
  }

  private async renew(signal: AbortSignal | undefined): Promise<void> {
    if (this.lost || signal?.aborted) return;
    const next = { ...this.lease, expiresAt: Date.now() + this.owner.timing.leaseMs };
    try {
      this.etag = await this.owner.putLease(next, { ifMatch: this.etag }, undefined);
      this.lease = next;
    } catch (error) {
      if (isConditionFailure(error)) this.lost = true; // taken over (it had expired): per-object conditions still hold
    }
  }

  /** Stop renewing and delete the lease (best effort: it expires anyway). */
  async release(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.renewing;
    if (this.lost) return;
    await this.owner.dropLease(this.etag).catch(() => undefined);
  }
}


/** A commit's condition failed: refused, or the manifest it was conditional on is gone (404 on `If-Match`). */
function isConditionFailure(error: unknown): boolean {
  return isConditionRefused(error) || (error instanceof StorageError && error.code === 'NOT_FOUND');
}

function pushInProgress(location: string, lease: ReturnType<typeof decodeLease> | undefined): SyncError {
  const who = lease === undefined ? 'another process' : `${lease.writer.host} (pid ${lease.writer.pid}, since ${lease.startedAt})`;
  return new SyncError(
    'PUSH_IN_PROGRESS',
    `${location}: a push by ${who} is still changing the bucket; gave up waiting for it to commit (waitForPushMs). Nothing was changed; try again later.`,
    { details: { holder: lease?.writer, startedAt: lease?.startedAt } },
  );
}

async function listArea(store: ObjectStore, prefix: string, signal: AbortSignal | undefined): Promise<ListedObject[]> {
  const out: ListedObject[] = [];
  for await (const page of store.list(libraryFolder(prefix), signal)) out.push(...page);
  return out;
}

/** A whole response body (the library's small JSON objects, a `.syncignore`). */
export async function readBody(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
