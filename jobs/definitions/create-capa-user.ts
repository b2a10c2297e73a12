import { z } from 'zod';
import { defineJob } from '../types.js';
import { CONSOLE_CAPA_JOB } from './capa-job-options.js';

export const LinkRequestSchema = z.object({
  country: z.enum(['MX', 'DO']),
  redirectUri: z.string().max(2000).nullable().optional(),
  requestId: z.string().min(1).max(100),
  /** E-mail the link to the customer once it exists (notifications). */
  notify: z.boolean().optional(),
  /** Language of that e-mail; unset: from the customer's country. */
  locale: z.enum(['es', 'en']).nullable().optional(),
});

/**
 * Creates the customer in Capa once. The side effect is claimed (idempotency key on the
 * externalUserId) before the call, so a retried or duplicated job never creates twice.
 */
export const createCapaUser = defineJob({
  name: 'create-capa-user',
  queue: 'capa',
  schema: z.object({
    userId: z.string().min(1),
    requestedBy: z.string().nullable().optional(),
    sendLink: LinkRequestSchema.nullable().optional(),
  }),
  jobId: (p) => `create-${p.userId}`,
  userOf: (p) => p.userId,
  options: CONSOLE_CAPA_JOB,
});
