/**
 * Pure safety guards, evaluated on a finished plan before anything changes.
 * Each verdict says what would have happened and which option overrides it.
 */
import type { GuardCode } from '../errors.js';
import type { Plan } from './plan.js';

/** Limits in force for one sync (instance options, overridden per call). */
export interface GuardLimits {
  /** Count (integer ≥ 0), fraction (0–1) or Infinity; `undefined` = the default rule. */
  maxDeletes: number | undefined;
  maxTotalBytes: number;
  allowEmptyRemote: boolean;
}

/** What the guards need to know besides the plan. */
export interface GuardFacts {
  /** Where: `s3://bucket/prefix`, for messages. */
  location: string;
  /** Files in the tree the deletions come from: local synced files (pull) or synced objects (push). */
  treeSize: number;
  /** Objects the listing returned (pull); `undefined` when nothing was listed. */
  listed?: number | undefined;
}

export interface GuardVerdict {
  code: GuardCode;
  message: string;
  details: Record<string, unknown>;
}

/** The default deletion guard: more than this fraction… */
export const DEFAULT_MAX_DELETE_FRACTION = 0.5;
/** …of a tree of more than this many files is refused. */
export const DEFAULT_GUARDED_TREE_SIZE = 10;

/** The first guard the plan violates, or `undefined`. */
export function evaluateGuards(plan: Plan, facts: GuardFacts, limits: GuardLimits): GuardVerdict | undefined {
  const op = plan.direction;
  const deletes = plan.deletions.length;
  const what = op === 'pull' ? 'local files' : 'objects';
  const unchanged = 'Nothing was changed.';

  if (op === 'pull' && facts.listed === 0 && deletes > 0 && !limits.allowEmptyRemote) {
    return {
      code: 'EMPTY_REMOTE',
      message:
        `The listing of ${facts.location} is empty, so pull would delete all ${deletes} local file(s). ` +
        `Is the prefix right? ${unchanged} To mirror an empty prefix, pass allowEmptyRemote: true.`,
      details: { wouldDelete: deletes, listed: 0, option: 'allowEmptyRemote' },
    };
  }

  const limit = limits.maxDeletes;
  let allowed: number;
  let rule: string;
  if (limit === undefined) {
    allowed = facts.treeSize > DEFAULT_GUARDED_TREE_SIZE ? Math.floor(facts.treeSize * DEFAULT_MAX_DELETE_FRACTION) : Infinity;
    rule = `the default limit (${DEFAULT_MAX_DELETE_FRACTION * 100}% of a tree of more than ${DEFAULT_GUARDED_TREE_SIZE} files)`;
  } else if (limit > 0 && limit < 1) {
    allowed = Math.floor(facts.treeSize * limit);
    rule = `maxDeletes (${limit * 100}% of ${facts.treeSize} = ${allowed})`;
  } else {
    allowed = limit;
    rule = `maxDeletes (${limit})`;
  }
  if (deletes > allowed) {
    const pct = facts.treeSize > 0 ? ` (${Math.round((deletes / facts.treeSize) * 100)}%)` : '';
    return {
      code: 'MAX_DELETES',
      message:
        `${op} would delete ${deletes} of ${facts.treeSize} ${what}${pct} at ${facts.location}, more than ${rule}. ` +
        `${unchanged} To allow it, raise maxDeletes (e.g. maxDeletes: Infinity) for this call or the instance.`,
      details: { wouldDelete: deletes, treeSize: facts.treeSize, limit: allowed, option: 'maxDeletes' },
    };
  }

  if (plan.transferBytes > limits.maxTotalBytes) {
    return {
      code: 'MAX_TOTAL_BYTES',
      message:
        `${op} would transfer ${plan.transferBytes} bytes (${plan.transfers.length} file(s)) at ${facts.location}, ` +
        `more than maxTotalBytes (${limits.maxTotalBytes}). ${unchanged} To allow it, raise maxTotalBytes for this call or the instance.`,
      details: { wouldTransferBytes: plan.transferBytes, limit: limits.maxTotalBytes, option: 'maxTotalBytes' },
    };
  }
  return undefined;
}
