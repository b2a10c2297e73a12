import { z } from 'zod';
import { defineJob } from '../types.js';

/**
 * Scheduled (ALERTS_EVERY_SECONDS, one schedule for all workers): evaluates the alert rules that
 * workers watch (jobs/alerts/engine.ts) and queues the notification a newly firing alert owes.
 * The rule about missing workers is the web process's (jobs/alerts/watch.ts): it must be noticed
 * precisely when no worker runs this job.
 */
export const alertsEvaluate = defineJob({
  name: 'alerts-evaluate',
  queue: 'maintenance',
  schema: z.object({}).passthrough(),
  options: { attempts: 1, removeOnComplete: { count: 50 }, removeOnFail: { count: 50 } },
  // Not about a customer; each rule's last evaluation is kept in alert_rule_state.
  trackRuns: false,
});
