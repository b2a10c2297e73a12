import { z } from 'zod';
import { defineJob } from '../types.js';
import { CONSOLE_CAPA_JOB } from './capa-job-options.js';

/**
 * Generates a KYC link (superseding the previous one). Keyed by the operator's request id, so a
 * double click or a retried job asks Capa once and records one link. With `notify` the link is
 * e-mailed (in `locale`, else the customer's country's language) through the link-issued hook.
 */
export const generateLink = defineJob({
  name: 'generate-link',
  queue: 'capa',
  schema: z.object({
    userId: z.string().min(1),
    country: z.enum(['MX', 'DO']),
    redirectUri: z.string().max(2000).nullable().optional(),
    requestId: z.string().min(1).max(100),
    requestedBy: z.string().nullable().optional(),
    notify: z.boolean().optional(),
    /** Language of the e-mail sent with `notify`; unset: from the customer's country. */
    locale: z.enum(['es', 'en']).nullable().optional(),
  }),
  jobId: (p) => `link-${p.requestId}`,
  userOf: (p) => p.userId,
  options: CONSOLE_CAPA_JOB,
});
