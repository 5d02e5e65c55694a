import type { Plan } from '../core/plan.js';
import { SyncError } from '../errors.js';
import { socketWarning } from '../options.js';
import { cachedProbe, probeCacheKey, probeConditionalWrites, type ConditionalWriteSupport } from '../storage/capabilities.js';
import { endpointLabel } from '../storage/endpoint.js';
import type { SyncContext } from './context.js';

/**
 * What the library checks about the client and the server, once per
 * instance (the socket limit of a client passed in) or once per process and
 * bucket (conditional writes).
 *
 * Whether the server enforces the conditional writes a push relies on to
 * detect other writers (see `probeConditionalWrites`: 2 PUTs and 1 delete in
 * the library's own folder), learnt once: per process for an endpoint and
 * bucket when the store is the library's own S3 store, per instance
 * otherwise. An `unknown` answer (access denied, network) is not kept: the
 * next call tries again.
 */
export class ServerChecks {
  private answer: Promise<ConditionalWriteSupport> | undefined;
  private socketsChecked = false;

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
    const probe = (): Promise<ConditionalWriteSupport> => probeConditionalWrites(store, options.prefix, signal);
    this.answer ??= (this.shared ? endpointLabel(options.client).then((e) => cachedProbe(probeCacheKey(e, options.bucket), probe)) : probe()).then(
      (answer) => {
        if (answer === 'unknown') this.answer = undefined;
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
   * With `requireConditionalWrites`, a push that would write refuses (before
   * it changes anything) unless the server is known to enforce them.
   */
  async require(plan: Plan, signal: AbortSignal | undefined): Promise<void> {
    if (!this.ctx.options.requireConditionalWrites || plan.direction !== 'push') return;
    if (plan.transfers.length + plan.deletions.length === 0) return;
    const answer = await this.support(signal);
    if (answer === 'enforced') return;
    throw new SyncError(
      'CONDITIONAL_WRITES_UNSUPPORTED',
      `${this.ctx.location}: the server ${answer === 'ignored' ? 'ignores' : 'could not be shown to enforce'} conditional writes ` +
        '(If-Match / If-None-Match), so another writer\'s changes could be overwritten unseen; nothing was pushed ' +
        '(requireConditionalWrites is set).',
      { details: { support: answer } },
    );
  }
}
