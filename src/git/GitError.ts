/**
 * {@link GitError} lives in `errors.ts` with the other `SyncError` subclasses
 * (its class id is registered there, so `instanceof` works across the ESM and
 * CommonJS builds); re-exported here for `src/git/`.
 */
export { GitError, type GitErrorCode } from '../errors.js';
