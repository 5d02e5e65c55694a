// The ObjectStore contract on MemoryObjectStore (the strict in-memory fake).
// Nothing is skipped: it has every capability S3 has.
import { MemoryObjectStore } from '../../src/storage/MemoryObjectStore.js';
import { describeObjectStoreContract } from './object-store-contract.js';

const MIN_PART = 1024; // S3: 5 MiB; small parts keep the suite fast

describeObjectStoreContract(
  'MemoryObjectStore',
  async (options = {}) => {
    const store = new MemoryObjectStore({ minPartSize: MIN_PART, ...(options.bucketKms === true ? { bucketEncryption: 'aws:kms' as const } : {}) });
    return {
      store,
      seed: async (objects) => {
        for (const [key, body] of objects) store.seedObject(key, body);
      },
      requests: (kind) => store.requestCount(kind),
      failDeleteOf: (key) => store.failDeleteOf(key),
      conflictNext: (key) => store.conflictNext(1, key),
    };
  },
  {
    minPartSize: MIN_PART,
    conditionalWrites: true,
    conditionalDeletes: true,
    readIfMatch: true,
    readIfNoneMatch: true,
    contentMd5: true,
    multipartEtag: true,
    multipartValidation: true,
    multipartAbortAndListing: true,
    copySourceConditions: true,
    copySourceDecoding: true,
    byteOrderListing: true,
    partNumberHead: true,
    sseKms: true,
    reportsSseS3: true,
    emptyObjectRange: true,
    // MemoryObjectStore rejects with signal.reason itself (S3ObjectStore wraps it in a StorageError).
    abortRejectsWithReason: true,
  },
  { bucketDefaultKms: true },
);
