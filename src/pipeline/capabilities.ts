import type { Plan } from '../core/plan.js';
import { messageOf, SyncError } from '../errors.js';
import { socketWarning } from '../options.js';
import { cachedProbe, probeCacheKey, probeConditionalWritesDetailed, type ConditionalWriteSupport } from '../storage/capabilities.js';
import { endpointLabel } from '../storage/endpoint.js';
import type { SyncContext } from './context.js';

/** Inconclusive probes in a row after which the default check warns and stops probing (per instance). */
export const MAX_INCONCLUSIVE = 3;

/** A failed probe request, for a log line: `CODE: message`. */
function describe(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? `${code}: ${messageOf(error)}` : messageOf(error);
}

/**
 * What the library checks about the client and the server, once per
 * instance (the socket limit of a client passed in) or once per process and
 * bucket (conditional writes).
 *
 * Whether the server enforces the conditional writes a push relies on to
 * detect other writers (see `probeConditionalWrites`: 2 PUTs and 1 delete in
 * the library's own folder), learnt once: per process for an endpoint and
 * bucket when the store is the library's own S3 store, per instance
 * otherwise; and kept in the state file, so a new process with the saved
 * state does not probe again. An `unknown` answer (access denied, network) is not kept: the
 * next call tries again (except the default check of {@link require}, see
 * there).
 */
export class ServerChecks {
  private answer: Promise<ConditionalWriteSupport> | undefined;
  /** Why the last probe this instance ran answered `unknown` (undefined: it did not, or another instance ran it). */
  private unknownBecause: unknown;
  private socketsChecked = false;
  /** The default check has warned (the server ignores conditional writes, or it cannot be checked): once per instance. */
  private warned = false;
  /** Inconclusive probes of the default check in a row; at {@link MAX_INCONCLUSIVE} it stops probing. */
  private inconclusive = 0;

  constructor(
    private readonly ctx: SyncContext,
    /** The store is the library's S3ObjectStore over the client (not a test's): answers are shared per endpoint and bucket. */
    private readonly shared: boolean,
  ) {}

  /** Warn once when a user-supplied client cannot open as many sockets as transfers run. */
  async sockets(): Promise<void> {
    const o = this.ctx.options;
    if (this.socketsChecked || o.ownsClient) return;
    this.socketsChecked = true;
    const warning = await socketWarning(o.client, Math.max(o.downloadConcurrency, o.uploadConcurrency));
    if (warning !== undefined) o.logger.warn(warning);
  }

  support(signal: AbortSignal | undefined): Promise<ConditionalWriteSupport> {
    const { store, options } = this.ctx;
    const probe = async (): Promise<ConditionalWriteSupport> => {
      const answer = await probeConditionalWritesDetailed(store, options.prefix, signal);
      this.unknownBecause = answer.support === 'unknown' ? (answer.error ?? new Error('no error recorded')) : undefined;
      return answer.support;
    };
    // a previous process's answer, from the state file (bound to this endpoint, bucket and prefix)
    const remembered = this.ctx.state.remote.conditionalWrites;
    if (this.answer === undefined && remembered !== undefined) this.answer = Promise.resolve(remembered);
    this.answer ??= (this.shared ? endpointLabel(options.client).then((e) => cachedProbe(probeCacheKey(e, options.bucket), probe)) : probe()).then(
      (answer) => {
        if (answer === 'unknown') this.answer = undefined;
        else this.ctx.state.learnRemote({ conditionalWrites: answer }); // saved with the state: a new process does not probe again
        return answer;
      },
      (error: unknown) => {
        this.answer = undefined;
        throw error;
      },
    );
    return this.answer;
  }

  /**
   * Before a push that would write (the plan has transfers or deletions),
   * what the server does with conditional writes. Nothing for a pull, a dry
   * run or a push with nothing to write.
   *
   * - With `requireConditionalWrites`: refuses (before anything changes)
   *   unless the server is known to enforce them.
   * - Without (the default): never fails the push (an abort still throws).
   *   `enforced`: silent. `ignored`: one warning per instance that pushes to
   *   this location are last-writer-wins. `unknown` (the probe failed: no
   *   permission, network, throttling): a debug line, and another probe at
   *   the next writing push; after {@link MAX_INCONCLUSIVE} inconclusive
   *   probes in a row, one warning that it cannot be checked, and no more
   *   probes by this instance.
   *
   * Cost: the probe's 2 PUTs + 1 delete at the first writing push of the
   * process for an endpoint and bucket (of the instance, for a store passed
   * in); nothing once the answer is known; at most {@link MAX_INCONCLUSIVE}
   * probes per instance while it is not.
   *
   * @returns the answer used for this push; `undefined` when none was needed.
   * @throws {SyncError} `CONDITIONAL_WRITES_UNSUPPORTED` under `requireConditionalWrites`; the abort reason when `signal` fired.
   */
  async require(plan: Plan, signal: AbortSignal | undefined): Promise<ConditionalWriteSupport | undefined> {
    if (plan.direction !== 'push' || plan.transfers.length + plan.deletions.length === 0) return undefined;
    if (this.ctx.options.requireConditionalWrites) {
      const answer = await this.support(signal);
      if (answer === 'enforced') return answer;
      throw new SyncError(
        'CONDITIONAL_WRITES_UNSUPPORTED',
        `${this.ctx.location}: the server ${answer === 'ignored' ? 'ignores' : 'could not be shown to enforce'} conditional writes ` +
          "(If-Match / If-None-Match), so another writer's changes could be overwritten unseen; nothing was pushed " +
          '(requireConditionalWrites is set).',
        { details: { support: answer } },
      );
    }
    return this.advise(signal);
  }

  /** The default check: learn the answer, say so once, never fail (except on abort). */
  private async advise(signal: AbortSignal | undefined): Promise<ConditionalWriteSupport> {
    if (this.inconclusive >= MAX_INCONCLUSIVE) return 'unknown';
    const { logger } = this.ctx.options;
    let answer: ConditionalWriteSupport;
    this.unknownBecause = undefined;
    try {
      answer = await this.support(signal);
    } catch (error) {
      if (signal?.aborted) throw error;
      answer = 'unknown'; // not expected (the probe reports failures as `unknown`): never fail a push for it
      this.unknownBecause = error;
    }
    if (answer !== 'unknown') this.inconclusive = 0;
    if (answer === 'ignored' && !this.warned) {
      this.warned = true;
      logger.warn(
        `${await this.where()}: the server ignores conditional writes (If-Match / If-None-Match), so pushes there are ` +
          'last-writer-wins: a change another writer made to the same files can be overwritten or deleted unseen, and no ' +
          'conflict is reported. Set requireConditionalWrites: true to refuse such pushes, or make sure only one writer pushes ' +
          'to this prefix. (Shown once per instance; checkConditionalWrites() returns the answer.)',
      );
    } else if (answer === 'unknown') {
      const reason = this.unknownBecause === undefined ? 'the check failed' : describe(this.unknownBecause);
      if (++this.inconclusive < MAX_INCONCLUSIVE) {
        logger.debug(`${this.ctx.location}: conditional-write check inconclusive (${reason}); pushing anyway, checking again at the next push`);
      } else if (!this.warned) {
        this.warned = true;
        logger.warn(
          `${await this.where()}: could not check whether the server enforces conditional writes (If-Match / If-None-Match) ` +
            `(${MAX_INCONCLUSIVE} tries; last: ${reason}). If it does not, pushes there are last-writer-wins: another ` +
            "writer's changes can be overwritten unseen. Not checked again by this instance; requireConditionalWrites: true " +
            'refuses to push unless the server is known to enforce them.',
        );
      }
    }
    return answer;
  }

  /** The location, and the server when it is not AWS's own: `s3://bucket/prefix (server http://host:port)`. */
  private async where(): Promise<string> {
    const endpoint = await endpointLabel(this.ctx.options.client);
    return endpoint === 'aws' || endpoint === 'unknown' ? this.ctx.location : `${this.ctx.location} (server ${endpoint})`;
  }
}
