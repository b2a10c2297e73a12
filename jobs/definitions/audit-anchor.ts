import { z } from 'zod';
import { defineJob } from '../types.js';

/** How often the audit chain is anchored (one schedule for all workers; "at least daily" with room). */
export const AUDIT_ANCHOR_EVERY_MS = 3_600_000;

/**
 * Scheduled: anchors the audit chain outside the database. The head hash and row count go to the
 * log stream as one structured line ({ msg: 'audit chain anchor', head, count, at }) — the copy
 * someone with write access to the database cannot change — and to audit_anchors for /audit's
 * history. An auditor keeps a line and later checks on /audit that today's chain still has that
 * hash at that position. Written every run, idle or not: a gap in the lines is itself a signal.
 */
export const auditAnchor = defineJob({
  name: 'audit-anchor',
  queue: 'maintenance',
  schema: z.object({}).passthrough(),
  options: { attempts: 3, backoff: { type: 'exponential', delay: 10_000 }, removeOnComplete: { count: 50 }, removeOnFail: { count: 50 } },
  // Not about a customer, and the anchor rows already say when each run happened.
  trackRuns: false,
});
