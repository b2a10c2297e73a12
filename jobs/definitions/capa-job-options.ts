import type { JobsOptions } from 'bullmq';

/** Capa calls an operator is waiting for: retried long (the customer is on the phone), kept a while for the timeline. */
export const CONSOLE_CAPA_JOB: JobsOptions = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: 3600 },
  removeOnFail: { age: 7 * 86400 },
};

/**
 * Capa calls of an import: lower priority than a single customer created from the console (an
 * import never holds an operator's click behind thousands of rows), few attempts because the
 * import's own outage pause and row retries take over.
 */
export const IMPORT_CAPA_JOB: JobsOptions = {
  attempts: 3,
  backoff: { type: 'exponential', delay: 1000 },
  priority: 10,
  removeOnComplete: true,
  removeOnFail: { age: 7 * 86400 },
};
